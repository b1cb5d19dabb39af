//! The PROXY protocol parser (`proxy_protocol::parse`, v1 and v2) fed
//! arbitrary bytes, as the first bytes of a trusted peer's connection.
//!
//! Checks: no panic; the answer for the whole input, and for every prefix
//! up to 128 bytes, at pseudo-random lengths and right around the point
//! where it is decided (the header's end, or the error's byte), is
//! `Incomplete` before that point and the same answer from it on; bytes
//! after that point change nothing; `consumed` is at most the input and
//! `MAX_HEADER_LEN` (`V1_MAX_LEN` for a v1 line), an error's offset is
//! inside the input, and an input of `MAX_HEADER_LEN` bytes or more is never
//! `Incomplete`; a complete header, written again by `encode_v1` and
//! `encode_v2` (with and without TLVs), parses back to the same header
//! with `consumed` the encoding's length; a v1 TCP line's addresses are
//! what `std` makes of their text. And when the input is short text, it is
//! tried as a TCP4 and a TCP6 address: the line parses exactly when `std`
//! parses the address, to the same address.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use maitred::__private::proxy_protocol::{
    encode_v1, encode_v2, parse, Header, Parsed, ProxyError, MAX_HEADER_LEN, V1_MAX_LEN,
};

#[path = "common.rs"]
mod common;

use common::XorShift;

/// Where the answer for `data` is decided: the header's end, or one past
/// the error's byte; `None` while it is `Incomplete`.
fn decided(answer: &Result<Parsed, ProxyError>) -> Option<usize> {
    match answer {
        Ok(Parsed::Incomplete) => None,
        Ok(Parsed::Complete { consumed, .. }) => Some(*consumed),
        Err(e) => Some(e.offset() + 1),
    }
}

/// A v1 TCP line's addresses, as `std` parses the text of the line.
fn std_addresses(line: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let line = std::str::from_utf8(line).ok()?;
    let fields: Vec<&str> = line.strip_suffix("\r\n")?.split(' ').collect();
    let [_, protocol, source, destination, _, _] = fields[..] else {
        return None;
    };
    let ip = |s: &str| -> Option<IpAddr> {
        if protocol == "TCP4" {
            s.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
        } else {
            s.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        }
    };
    Some((ip(source)?, ip(destination)?))
}

/// Tries `text` as the source address of a TCP4 and a TCP6 line.
fn address_differential(text: &str) {
    let cases = [
        (
            "TCP4",
            "127.0.0.1",
            text.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        ),
        ("TCP6", "::1", text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)),
    ];
    for (protocol, destination, expected) in cases {
        let line = format!("PROXY {protocol} {text} {destination} 1 2\r\n");
        let got = match parse(line.as_bytes()) {
            Ok(Parsed::Complete { header, consumed }) => {
                assert_eq!(consumed, line.len());
                header.client().map(|a| a.ip())
            }
            Ok(Parsed::Incomplete) => panic!("{line:?} is incomplete"),
            Err(_) => None,
        };
        assert_eq!(got, expected, "{line:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    assert_eq!(parse(data), whole);
    match &whole {
        Ok(Parsed::Incomplete) => assert!(data.len() < MAX_HEADER_LEN),
        Ok(Parsed::Complete { consumed, .. }) => {
            assert!(*consumed <= data.len() && *consumed <= MAX_HEADER_LEN);
            if data[0] == b'P' {
                assert!(*consumed <= V1_MAX_LEN);
            }
        }
        Err(e) => assert!(e.offset() < data.len() && !e.reason().is_empty()),
    }

    // The same answer from the point where it is decided, `Incomplete`
    // before.
    let decided_at = decided(&whole);
    let check = |n: usize| {
        let answer = parse(&data[..n]);
        match decided_at {
            Some(d) if n >= d => assert_eq!(answer, whole, "prefix {n}"),
            _ => assert_eq!(answer, Ok(Parsed::Incomplete), "prefix {n}"),
        }
    };
    for n in 0..=data.len().min(128) {
        check(n);
    }
    let seed = data.iter().fold(0x9e37_79b9_7f4a_7c15u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    for n in XorShift(seed).cuts(data.len()) {
        check(n);
    }
    if let Some(d) = decided_at {
        check(d - 1);
        check(d);
        // What follows the decided bytes is never looked at.
        let mut other = data[..d].to_vec();
        other.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(parse(&other), whole);
    }

    if let Ok(Parsed::Complete { header, consumed }) = &whole {
        // Written again, it parses back the same.
        let tlvs: [(u8, &[u8]); 2] = [(0x01, b"h2"), (0xea, &data[..*consumed])];
        let encodings = [
            encode_v1(header),
            encode_v2(header, &[]),
            encode_v2(header, &tlvs),
        ];
        assert!(encodings.iter().any(Option::is_some), "{header:?}");
        if matches!(header, Header::Inet { .. }) {
            assert!(encodings[0].is_some() && encodings[1].is_some());
        }
        for encoded in encodings.into_iter().flatten() {
            let back = Ok(Parsed::Complete {
                header: header.clone(),
                consumed: encoded.len(),
            });
            assert_eq!(parse(&encoded), back, "{header:?}");
        }
        // A v1 TCP line's addresses are what std makes of their text.
        if data.starts_with(b"PROXY TCP") {
            let Header::Inet {
                source,
                destination,
            } = header
            else {
                panic!("a TCP line gave {header:?}");
            };
            assert_eq!(
                std_addresses(&data[..*consumed]),
                Some((source.ip(), destination.ip()))
            );
        }
    }

    if !data.is_empty() && data.len() <= 48 && !data.iter().any(|b| b" \r\n".contains(b)) {
        if let Ok(text) = std::str::from_utf8(data) {
            address_differential(text);
        }
    }
});
