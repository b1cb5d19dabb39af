//! What a trusted proxy's headers say: waitress's `parse_proxy_headers`
//! and `undquote`, their input ([`ProxyHeaderValues`]) and output
//! ([`ProxyOutcome`], [`MalformedProxyHeader`]), and the Python string
//! helpers they rely on. The rules are stated in the module documentation
//! of `proxy_headers`, whose middleware calls [`parse_proxy_headers`] for a
//! request from a trusted proxy.
//!
//! Thread: a worker thread (before the application).

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv6Addr;

use super::{HeaderSet, ProxyHeader};
use crate::error::HttpError;
use crate::grammar::{is_port, is_qdtext, is_quoted_pair_byte, is_unreserved, latin1, trim_by};
use crate::parser::RequestHead;
use crate::response::{Body, Response};

// ---------------------------------------------------------------------------
// Python string helpers, on latin-1 bytes (WSGI header values are latin-1
// text; these do what Python's `str` methods do on them).

/// Python's `str.isspace()` for a latin-1 character.
fn is_py_space(b: u8) -> bool {
    matches!(b, 0x09..=0x0D | 0x1C..=0x20 | 0x85 | 0xA0)
}

/// Python's `str.strip()`.
pub(super) fn py_strip(s: &[u8]) -> &[u8] {
    trim_by(s, is_py_space)
}

/// Python's `str.lower()` on latin-1 text.
pub(super) fn py_lower(s: &[u8]) -> Vec<u8> {
    s.iter()
        .map(|&b| match b {
            b'A'..=b'Z' => b + 32,
            0xC0..=0xDE if b != 0xD7 => b + 32,
            _ => b,
        })
        .collect()
}

const INVALID_QUOTING: &str = "Invalid quoting in value";

/// waitress's `undquote`: a value in double quotes must be a valid
/// `quoted-string` and is returned without its quotes and escapes; a value
/// with no quote at either end is returned as is; a quote at one end only
/// is an error.
///
/// ```
/// use maitred::__private::undquote;
///
/// assert_eq!(undquote(b"plain").unwrap().as_ref(), b"plain");
/// assert_eq!(undquote(br#""[2001:db8::1]:80""#).unwrap().as_ref(), b"[2001:db8::1]:80");
/// assert_eq!(undquote(br#""a\"b""#).unwrap().as_ref(), b"a\"b");
/// assert!(undquote(br#""open"#).is_err());
/// ```
pub fn undquote(value: &[u8]) -> Result<Cow<'_, [u8]>, &'static str> {
    let starts = value.first() == Some(&b'"');
    let ends = value.last() == Some(&b'"');
    if !starts && !ends {
        return Ok(Cow::Borrowed(value));
    }
    if !(starts && ends) || value.len() < 2 {
        return Err(INVALID_QUOTING);
    }
    let inner = &value[1..value.len() - 1];
    if !inner.contains(&b'\\') {
        return if inner.iter().all(|&b| is_qdtext(b)) {
            Ok(Cow::Borrowed(inner))
        } else {
            Err(INVALID_QUOTING)
        };
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut it = inner.iter();
    while let Some(&b) = it.next() {
        if b == b'\\' {
            match it.next() {
                Some(&c) if is_quoted_pair_byte(c) => out.push(c),
                _ => return Err(INVALID_QUOTING),
            }
        } else if is_qdtext(b) {
            out.push(b);
        } else {
            return Err(INVALID_QUOTING);
        }
    }
    Ok(Cow::Owned(out))
}

// ---------------------------------------------------------------------------
// parse_proxy_headers

/// The proxy headers of a request, as received (the input of
/// [`parse_proxy_headers`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyHeaderValues<'a> {
    values: [Option<&'a [u8]>; 6],
}

impl<'a> ProxyHeaderValues<'a> {
    /// No header present.
    pub fn new() -> ProxyHeaderValues<'a> {
        ProxyHeaderValues::default()
    }

    /// The proxy headers of a parsed request head.
    pub fn from_head(head: &'a RequestHead) -> ProxyHeaderValues<'a> {
        let mut v = ProxyHeaderValues::new();
        for (name, value) in head.raw_headers() {
            if let Some(h) = ProxyHeader::from_name_bytes(name) {
                v.set(h, value);
            }
        }
        v
    }

    /// With header `h` present with this value.
    pub fn with(mut self, h: ProxyHeader, value: &'a [u8]) -> ProxyHeaderValues<'a> {
        self.set(h, value);
        self
    }

    /// Sets header `h`'s value.
    pub fn set(&mut self, h: ProxyHeader, value: &'a [u8]) {
        self.values[h as usize] = Some(value);
    }

    /// Header `h`'s value, if present.
    pub fn get(&self, h: ProxyHeader) -> Option<&'a [u8]> {
        self.values[h as usize]
    }

    /// The headers present.
    pub fn present(&self) -> HeaderSet {
        let mut s = HeaderSet::EMPTY;
        for h in ProxyHeader::ALL {
            if self.get(h).is_some() {
                s.insert(h);
            }
        }
        s
    }
}

/// A trusted proxy header that could not be used (waitress's
/// `MalformedProxyHeader`): the request is answered 400.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedProxyHeader {
    /// The name used in the response: `X-Forwarded-For`,
    /// `X-Forwarded-Host`, `X-Forwarded-Proto`, `X-Forwarded-Port`,
    /// `Forwarded`, or `Forwarded Proto=` (an unsupported `proto=` in
    /// `Forwarded`).
    pub header: &'static str,
    /// What is wrong (for the log).
    pub reason: &'static str,
    /// The offending value, as latin-1 text (for the log).
    pub value: String,
}

impl MalformedProxyHeader {
    fn new(header: &'static str, reason: &'static str, value: &[u8]) -> MalformedProxyHeader {
        MalformedProxyHeader {
            header,
            reason,
            value: latin1(value),
        }
    }

    /// The response: `400 Bad Request`, `text/plain; charset=utf-8`, the
    /// body `Bad Request\r\n\r\nHeader "<name>" malformed.\r\n\r\n(generated
    /// by server)` (waitress's `BadRequest(...).wsgi_response`, which never
    /// names the server), with no length, so it is sent chunked on HTTP/1.1
    /// and up to the close on HTTP/1.0, as waitress sends it.
    pub fn response(&self) -> Response {
        let body = HttpError::bad_request(format!("Header \"{}\" malformed.", self.header))
            .body(None)
            .into_bytes();
        Response::new(400)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(Body::from_chunks(std::iter::once(body)))
    }
}

impl fmt::Display for MalformedProxyHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Header \"{}\" malformed: {} value: {}",
            self.header, self.reason, self.value
        )
    }
}

impl std::error::Error for MalformedProxyHeader {}

/// What a trusted proxy's headers change in a request (the output of
/// [`parse_proxy_headers`]). `None` fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyOutcome {
    /// The proxy headers still untrusted: to remove when
    /// `clear_untrusted_proxy_headers`.
    pub untrusted: HeaderSet,
    /// The client's address (`REMOTE_ADDR`, `REMOTE_HOST`).
    pub remote_addr: Option<String>,
    /// The client's port (`REMOTE_PORT`); `Some(None)` when the forwarded
    /// address ended in an empty port (`192.0.2.1:`).
    pub remote_port: Option<Option<u16>>,
    /// `SERVER_NAME`.
    pub server_name: Option<String>,
    /// `SERVER_PORT`.
    pub server_port: Option<u16>,
    /// `wsgi.url_scheme`: `http` or `https`.
    pub url_scheme: Option<&'static str>,
    /// The new `Host` header value.
    pub host: Option<Vec<u8>>,
    /// Headers rewritten to the trusted hops only (`X-Forwarded-For`,
    /// `X-Forwarded-Host`, `Forwarded`), with their new values.
    pub rewritten: Vec<(ProxyHeader, Vec<u8>)>,
}

/// Which elements of a comma-separated value are kept: the index of the
/// first of the last `count` (`count` 0 keeps all, as Python's
/// `list[-0:]`), and the byte where it starts.
fn kept_elements(value: &[u8], count: usize) -> (usize, usize) {
    let n = value.iter().filter(|&&b| b == b',').count() + 1;
    let first_kept = if count == 0 || count >= n {
        0
    } else {
        n - count
    };
    let mut start = 0;
    if first_kept > 0 {
        let mut seen = 0;
        for (i, &b) in value.iter().enumerate() {
            if b == b',' {
                seen += 1;
                if seen == first_kept {
                    start = i + 1;
                    break;
                }
            }
        }
    }
    (first_kept, start)
}

/// A list-valued `X-Forwarded-*` header: every element unquoted (an error
/// names the header), the first kept one returned, and the rewritten value
/// (the kept raw elements) when it differs.
fn forwarded_list(
    h: ProxyHeader,
    value: &[u8],
    count: usize,
) -> Result<(Vec<u8>, Option<Vec<u8>>), MalformedProxyHeader> {
    let (first_kept, start) = kept_elements(value, count);
    let mut first = Vec::new();
    for (i, el) in value.split(|&b| b == b',').enumerate() {
        let v = undquote(py_strip(el))
            .map_err(|reason| MalformedProxyHeader::new(h.name(), reason, value))?;
        if i == first_kept {
            first = v.into_owned();
        }
    }
    let kept = py_strip(&value[start..]);
    let rewritten = (kept != value).then(|| kept.to_vec());
    Ok((first, rewritten))
}

/// One `Forwarded` element's values.
#[derive(Default)]
struct ForwardedElement {
    for_: Vec<u8>,
    host: Vec<u8>,
    proto: Vec<u8>,
}

fn forwarded_element(
    element: &[u8],
    warn: &mut dyn FnMut(String),
) -> Result<ForwardedElement, &'static str> {
    let mut out = ForwardedElement::default();
    for pair in py_strip(element).split(|&b| b == b';') {
        if pair.is_empty() {
            continue;
        }
        let pair = py_lower(pair);
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            return Err("Invalid forwarded-pair missing \"=\"");
        };
        let (token, value) = (&pair[..eq], &pair[eq + 1..]);
        if py_strip(token).len() != token.len() {
            return Err("Token may not be surrounded by whitespace");
        }
        if py_strip(value).len() != value.len() {
            return Err("Value may not be surrounded by whitespace");
        }
        match token {
            b"by" => {
                undquote(value)?;
            }
            b"for" => out.for_ = undquote(value)?.into_owned(),
            b"host" => out.host = undquote(value)?.into_owned(),
            b"proto" => out.proto = undquote(value)?.into_owned(),
            _ => warn(format!("Unknown Forwarded token: {}", latin1(token))),
        }
    }
    Ok(out)
}

/// A port as forwarded: decimal digits (leading zeros allowed) for a
/// number up to 65535.
pub(super) fn port_number(p: &[u8]) -> Option<u16> {
    if p.is_empty() || !is_port(p) {
        return None;
    }
    let significant = match p.iter().position(|&b| b != b'0') {
        Some(i) => &p[i..],
        None => return Some(0),
    };
    if significant.len() > 5 {
        return None;
    }
    std::str::from_utf8(significant).ok()?.parse().ok()
}

/// An IPv6 address, with an optional zone (`fe80::1%eth0`).
fn is_ipv6(s: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(s) else {
        return false;
    };
    // A zone is RFC 6874's ZoneID: unreserved characters.
    let addr = match s.split_once('%') {
        Some((a, zone)) if !zone.is_empty() && zone.bytes().all(is_unreserved) => a,
        Some(_) => return false,
        None => s,
    };
    addr.parse::<Ipv6Addr>().is_ok()
}

/// waitress's `strip_brackets`.
fn strip_brackets(addr: &[u8]) -> &[u8] {
    match addr {
        [b'[', inner @ .., b']'] => inner,
        _ => addr,
    }
}

/// The client's address and port from a forwarded `for` value or
/// `X-Forwarded-For` element (waitress's rules, except that IPv6 addresses
/// are recognised whole, with or without brackets and with a port after
/// brackets, and that ports must be numbers).
#[allow(clippy::type_complexity)]
pub(super) fn client_address(
    c: &[u8],
    from_xff: bool,
) -> Result<(Vec<u8>, Option<Option<u16>>), &'static str> {
    let c = py_strip(c);
    let (addr, port): (&[u8], Option<&[u8]>) = if is_ipv6(strip_brackets(c)) {
        (strip_brackets(c), None)
    } else if let Some(close) = c
        .strip_prefix(b"[")
        .and_then(|r| r.iter().position(|&b| b == b']'))
        .filter(|&i| {
            c.get(i + 2) == Some(&b':')
                && c.len() > i + 3
                && is_port(&c[i + 3..])
                && is_ipv6(&c[1..i + 1])
        })
    {
        (&c[1..close + 1], Some(&c[close + 3..]))
    } else if from_xff && !c.contains(&b'.') && c.contains(&b':') && c.last() != Some(&b']') {
        // waitress brackets such an element, so it is an address whole.
        (c, None)
    } else if c.contains(&b':') && c.last() != Some(&b']') {
        let i = c.iter().rposition(|&b| b == b':').unwrap_or(0);
        (
            strip_brackets(py_strip(&c[..i])),
            Some(py_strip(&c[i + 1..])),
        )
    } else {
        (strip_brackets(c), None)
    };
    if addr.is_empty() {
        return Err("empty client address");
    }
    let port = match port {
        None => None,
        Some([]) => Some(None),
        Some(p) => Some(Some(port_number(p).ok_or("invalid client port")?)),
    };
    Ok((addr.to_vec(), port))
}

/// waitress's `parse_proxy_headers`: what the trusted proxy headers in
/// `values` say, given the `trusted_proxy_count` (`count`), the headers
/// trusted, and the request's current URL scheme (for the `Host` port rule).
/// `warn` receives the warnings (`Unknown Forwarded token: ...`).
///
/// The work is linear in the length of the values.
///
/// ```
/// use maitred::__private::{parse_proxy_headers, HeaderSet, ProxyHeader, ProxyHeaderValues};
///
/// let values = ProxyHeaderValues::new()
///     .with(ProxyHeader::XForwardedFor, b"10.0.0.9, 192.0.2.1, 198.51.100.7")
///     .with(ProxyHeader::XForwardedProto, b"https");
/// let trusted = HeaderSet::of(&[ProxyHeader::XForwardedFor, ProxyHeader::XForwardedProto]);
/// let out = parse_proxy_headers(&values, 1, trusted, "http", &mut |_| {}).unwrap();
/// assert_eq!(out.remote_addr.as_deref(), Some("198.51.100.7"));
/// assert_eq!(out.url_scheme, Some("https"));
/// assert_eq!(out.server_port, Some(443));
/// ```
pub fn parse_proxy_headers(
    values: &ProxyHeaderValues<'_>,
    count: usize,
    trusted: HeaderSet,
    url_scheme: &str,
    warn: &mut dyn FnMut(String),
) -> Result<ProxyOutcome, MalformedProxyHeader> {
    use ProxyHeader::*;
    let mut out = ProxyOutcome {
        untrusted: HeaderSet::ALL,
        ..ProxyOutcome::default()
    };
    // Where each value came from: the header named in errors about it.
    let mut client_addr: Option<(Vec<u8>, ProxyHeader)> = None;
    let mut forwarded_host: (Vec<u8>, ProxyHeader) = (Vec::new(), XForwardedHost);
    let mut forwarded_proto: Vec<u8> = Vec::new();
    let mut forwarded_port: (Vec<u8>, ProxyHeader) = (Vec::new(), XForwardedPort);

    if trusted.contains(XForwardedFor) {
        if let Some(v) = values.get(XForwardedFor) {
            let (first, rewritten) = forwarded_list(XForwardedFor, v, count)?;
            client_addr = Some((first, XForwardedFor));
            out.untrusted.remove(XForwardedFor);
            if let Some(r) = rewritten {
                out.rewritten.push((XForwardedFor, r));
            }
        }
    }
    if trusted.contains(XForwardedHost) {
        if let Some(v) = values.get(XForwardedHost) {
            let (first, rewritten) = forwarded_list(XForwardedHost, v, count)?;
            forwarded_host = (first, XForwardedHost);
            out.untrusted.remove(XForwardedHost);
            if let Some(r) = rewritten {
                out.rewritten.push((XForwardedHost, r));
            }
        }
    }
    for h in [XForwardedProto, XForwardedPort] {
        if !trusted.contains(h) {
            continue;
        }
        let v = values.get(h).unwrap_or(b"");
        let single = undquote(v)
            .and_then(|s| {
                if s.contains(&b',') {
                    Err("Unspecified behavior for multiple values found in header")
                } else {
                    Ok(s)
                }
            })
            .map_err(|reason| MalformedProxyHeader::new(h.name(), reason, v))?
            .into_owned();
        out.untrusted.remove(h);
        if h == XForwardedProto {
            forwarded_proto = single;
        } else {
            forwarded_port.0 = single;
        }
    }
    if trusted.contains(XForwardedBy) {
        out.untrusted.remove(XForwardedBy);
    }
    let mut forwarded: &[u8] = b"";
    if trusted.contains(Forwarded) {
        forwarded = values.get(Forwarded).unwrap_or(b"");
        out.untrusted = HeaderSet::ALL;
        out.untrusted.remove(Forwarded);
    }
    if !forwarded.is_empty() {
        let (first_kept, start) = kept_elements(forwarded, count);
        let (mut for_, mut host, mut proto) = (None, None, None);
        for (i, element) in forwarded.split(|&b| b == b',').enumerate() {
            let e = forwarded_element(element, warn)
                .map_err(|reason| MalformedProxyHeader::new("Forwarded", reason, forwarded))?;
            if i >= first_kept {
                // The oldest kept element with a value wins.
                if for_.is_none() && !e.for_.is_empty() {
                    for_ = Some(e.for_);
                }
                if host.is_none() && !e.host.is_empty() {
                    host = Some(e.host);
                }
                if proto.is_none() && !e.proto.is_empty() {
                    proto = Some(e.proto);
                }
            }
        }
        let kept = py_strip(&forwarded[start..]);
        if kept != forwarded {
            out.rewritten.push((Forwarded, kept.to_vec()));
        }
        if let Some(f) = for_ {
            client_addr = Some((f, Forwarded));
        }
        // waitress reuses its X-Forwarded-* variables while it reads the
        // elements, so what they held (only reachable when both kinds are
        // trusted, which the settings forbid) is replaced: the host and
        // proto by the elements' (the newest element is among the kept
        // ones), the port by nothing.
        forwarded_host = (host.unwrap_or_default(), Forwarded);
        forwarded_proto = proto.unwrap_or_default();
        forwarded_port = (Vec::new(), XForwardedPort);
    }

    let mut scheme: &str = url_scheme;
    if !forwarded_proto.is_empty() {
        let proto = py_lower(&forwarded_proto);
        let s = match proto.as_slice() {
            b"http" => "http",
            b"https" => "https",
            _ => {
                let name = if forwarded.is_empty() {
                    "X-Forwarded-Proto"
                } else {
                    "Forwarded Proto="
                };
                return Err(MalformedProxyHeader::new(
                    name,
                    "unsupported proto value",
                    &proto,
                ));
            }
        };
        out.url_scheme = Some(s);
        scheme = s;
        if forwarded_port.0.is_empty() {
            forwarded_port = (
                if s == "http" {
                    b"80".to_vec()
                } else {
                    b"443".to_vec()
                },
                XForwardedProto,
            );
        }
    }

    let (fhost, host_source) = forwarded_host;
    if !fhost.is_empty() {
        match fhost.iter().rposition(|&b| b == b':') {
            Some(i) if fhost.last() != Some(&b']') => {
                // host:port: the port wins over X-Forwarded-Port and the
                // scheme's default.
                forwarded_port = (fhost[i + 1..].to_vec(), host_source);
                out.server_name = Some(latin1(py_strip(&fhost[..i])));
                out.host = Some(fhost);
            }
            _ => {
                out.server_name = Some(latin1(&fhost));
                let port = forwarded_port.0.as_slice();
                let default = matches!((port, scheme), (b"80", "http") | (b"443", "https"));
                out.host = Some(if port.is_empty() || default {
                    fhost
                } else {
                    let mut h = fhost;
                    h.push(b':');
                    h.extend_from_slice(port);
                    h
                });
            }
        }
    }

    let (port, port_source) = forwarded_port;
    if !port.is_empty() {
        let n = port_number(&port).ok_or_else(|| {
            let value = values.get(port_source).unwrap_or(&port);
            MalformedProxyHeader::new(port_source.name(), "invalid port", value)
        })?;
        out.server_port = Some(n);
    }

    if let Some((c, source)) = client_addr {
        if !c.is_empty() {
            let (addr, port) = client_address(&c, source == XForwardedFor).map_err(|reason| {
                MalformedProxyHeader::new(source.name(), reason, values.get(source).unwrap_or(&c))
            })?;
            out.remote_addr = Some(latin1(&addr));
            out.remote_port = port;
        }
    }
    Ok(out)
}
