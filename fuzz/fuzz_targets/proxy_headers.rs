//! The proxy-header parsers (`parse_proxy_headers`, `undquote`,
//! `TrustedProxies::parse`) fed arbitrary values.
//!
//! Input: byte 0's low six bits are the trusted headers, byte 1 the
//! `trusted_proxy_count` (0 to 7), byte 2 bit 0 the current scheme (`http`
//! or `https`); the rest is split on `\n` (a byte no header value can hold)
//! into the values of X-Forwarded-For, -Host, -Proto, -Port, -By and
//! Forwarded, in that order (missing segments are absent headers); the
//! first segment is also parsed as a `trusted_proxy` value.
//!
//! Checks: no panic; the same input gives the same outcome; headers that
//! are not trusted stay untrusted; the scheme is `http` or `https`; every
//! rewritten header is a piece of its received value, the client address a
//! piece of the header it came from, the new `Host` no longer than a
//! forwarded host and port together; a malformed header has one of waitress's names and a
//! 400 response; `undquote` never lengthens a value and leaves unquoted
//! values alone. All work is linear in the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maitred::proxy_headers::{
    parse_proxy_headers, undquote, HeaderSet, ProxyHeader, ProxyHeaderValues, TrustedProxies,
};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let mut trusted = HeaderSet::EMPTY;
    for (i, h) in ProxyHeader::ALL.into_iter().enumerate() {
        if data[0] & (1 << i) != 0 {
            trusted.insert(h);
        }
    }
    let count = usize::from(data[1] & 7);
    let scheme = if data[2] & 1 == 0 { "http" } else { "https" };
    let rest = &data[3..];

    let mut values = ProxyHeaderValues::new();
    for (h, v) in ProxyHeader::ALL.into_iter().zip(rest.split(|&b| b == b'\n')) {
        values.set(h, v);
        let u = undquote(v);
        if let Ok(u) = &u {
            assert!(u.len() <= v.len());
            if v.first() != Some(&b'"') && v.last() != Some(&b'"') {
                assert_eq!(u.as_ref(), v);
            }
        }
        assert_eq!(u, undquote(v));
    }

    if let Some(first) = rest.split(|&b| b == b'\n').next() {
        if let Ok(spec) = std::str::from_utf8(first) {
            if let Ok(t) = TrustedProxies::parse(spec) {
                let _ = t.trusts(spec);
                let _ = t.trusts("127.0.0.1");
                let _ = t.trusts("::ffff:10.0.0.1");
                let _ = t.trusts("localhost");
            }
        }
    }

    let mut warnings = 0usize;
    let first = parse_proxy_headers(&values, count, trusted, scheme, &mut |_| warnings += 1);
    let second = parse_proxy_headers(&values, count, trusted, scheme, &mut |_| {});
    assert_eq!(first, second);
    // At most one warning per `;`-separated pair.
    let forwarded_len = values.get(ProxyHeader::Forwarded).map_or(0, <[u8]>::len);
    assert!(warnings <= forwarded_len + 1);

    match first {
        Ok(out) => {
            for h in ProxyHeader::ALL {
                if !trusted.contains(h) {
                    assert!(out.untrusted.contains(h), "{h} untrusted");
                }
            }
            if let Some(s) = out.url_scheme {
                assert!(s == "http" || s == "https");
            }
            for (h, v) in &out.rewritten {
                let received = values.get(*h).expect("rewritten header was received");
                assert!(contains(received, v), "{h} rewritten to a piece of itself");
                assert!(trusted.contains(*h));
            }
            let lens = ProxyHeader::ALL
                .into_iter()
                .filter_map(|h| values.get(h))
                .map(<[u8]>::len);
            let longest = lens.clone().max().unwrap_or(0);
            let total: usize = lens.sum();
            if let Some(host) = &out.host {
                // A forwarded host, perhaps with ":" and a forwarded port.
                assert!(!host.is_empty() && host.len() <= total + 1);
            }
            if let Some(a) = &out.remote_addr {
                assert!(!a.is_empty() && a.chars().count() <= longest);
            }
            if let Some(n) = &out.server_name {
                assert!(n.chars().count() <= longest);
            }
        }
        Err(e) => {
            assert!(matches!(
                e.header,
                "X-Forwarded-For"
                    | "X-Forwarded-Host"
                    | "X-Forwarded-Proto"
                    | "X-Forwarded-Port"
                    | "Forwarded"
                    | "Forwarded Proto="
            ));
            let r = e.response();
            assert_eq!(r.status(), 400);
        }
    }
});
