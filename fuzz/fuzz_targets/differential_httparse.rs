//! Differential fuzzing against httparse.
//!
//! For every input, the request head is parsed by httparse and by maitred:
//!
//! * both accept: method, request-target, version, and the header names and
//!   values must agree, once httparse's list is normalised the way maitred
//!   documents (names with `_` dropped, repeated fields combined with ", ",
//!   `Transfer-Encoding` removed from a chunked request, `Host` replaced by
//!   the authority of an absolute-form target);
//! * one accepts and the other rejects: the disagreement must be one of the
//!   intended differences listed in [`Difference`] (and in fuzz/README.md),
//!   each checked on the input independently of maitred's answer.
//!
//! Anything else is a bug in one of the two parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maitred::__private::{ParserConfig, RequestParser, Version};

#[path = "common.rs"]
mod common;

/// The intended differences: maitred rejects a head httparse accepts
/// (httparse is a syntax-only parser; maitred also applies RFC 9112's
/// semantic rules and waitress's stricter ones). There is no intended
/// difference the other way round.
#[derive(Clone, Copy, Debug)]
enum Difference {
    /// A bare LF (not preceded by CR) ends a line: httparse accepts it
    /// (RFC 9112 §2.2 MAY), maitred answers 400 as soon as it reads it
    /// (CVE-2019-16785).
    BareLf,
    /// The method has a lower-case letter: waitress's rule, kept.
    LowercaseMethod,
    /// The request-target is not origin-form, absolute-form or `*` with
    /// OPTIONS (RFC 9112 §3.2), or an absolute-form authority is invalid
    /// (RFC 9110 §4.2): 400.
    TargetForm,
    /// A raw non-ASCII byte in the request-target: waitress's `Bad URI`.
    NonAsciiTarget,
    /// HTTP/1.1 without Host (RFC 9112 §3.2): 400.
    MissingHost,
    /// A Host value that is not `uri-host [":" port]` with a non-empty host
    /// (RFC 9112 §3.2, RFC 9110 §4.2.1): 400.
    InvalidHost,
    /// A second Host, Content-Length or Content-Type field: 400.
    DuplicateSingleton,
    /// Content-Length not `1*DIGIT` (400), or at or over the body limit
    /// (413): RFC 9112 §6.3, CVE-2019-16792, CVE-2022-24761.
    ContentLength,
    /// Transfer-Encoding rules (RFC 9112 §6.1, §6.3): in HTTP/1.0, together
    /// with Content-Length, chunked not final (400), other codings or
    /// chunked twice (501).
    TransferEncoding,
    /// More field lines than `max_header_fields` (100 by default): 431.
    /// (The request-line and field-line limits, 8192 bytes each, cannot be
    /// passed by an input of at most 8192 bytes.)
    TooManyFields,
}

/// What maitred made of the head.
enum Ours {
    Accept(common::Head),
    Reject(u16, String),
    Incomplete,
}

/// Runs maitred over `data` like the channel does (empty requests skipped)
/// and classifies the first request.
fn ours(data: &[u8]) -> Ours {
    let mut rest = data;
    loop {
        let mut p = RequestParser::new(ParserConfig::default());
        let n = p.received(rest);
        if p.is_empty() {
            rest = &rest[n..];
            continue;
        }
        if let Some(e) = p.error() {
            return Ours::Reject(e.code(), e.detail().to_owned());
        }
        return match p.head() {
            Some(h) => Ours::Accept(common::Head {
                method: h.method().to_owned(),
                uri: h.uri().to_owned(),
                version: h.version(),
                path: h.path().to_vec(),
                query: h.query().to_owned(),
                headers: h
                    .headers()
                    .map(|(n, v)| (n.to_owned(), v.to_vec()))
                    .collect(),
                content_length: h.content_length(),
            }),
            None => Ours::Incomplete,
        };
    }
}

fn has_bare_lf(head: &[u8]) -> bool {
    head.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
}

/// The fields httparse saw, as (name, value).
type Fields<'a> = Vec<(&'a str, &'a [u8])>;

fn values<'a>(fields: &Fields<'a>, name: &str) -> Vec<&'a [u8]> {
    fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
        .collect()
}

/// `host[:port]` in its plainest form: a non-empty run of letters, digits,
/// `-` and `.`, then optional `:digits`. maitred must accept such a Host.
fn plain_host(v: &[u8]) -> bool {
    let (host, port) = match v.iter().position(|&b| b == b':') {
        Some(c) => (&v[..c], Some(&v[c + 1..])),
        None => (v, None),
    };
    !host.is_empty()
        && host
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
        && port.is_none_or(|p| p.iter().all(u8::is_ascii_digit))
}

/// Which intended difference explains maitred rejecting a head httparse
/// accepted, if any.
fn explain_reject(
    head: &[u8],
    method: &str,
    target: &str,
    version: u8,
    fields: &Fields<'_>,
    code: u16,
    detail: &str,
) -> Option<Difference> {
    // Every field line counts against max_header_fields, dropped ones too.
    let field_lines = fields.len();
    let fields: Fields<'_> = fields
        .iter()
        .copied()
        .filter(|(n, _)| !n.contains('_'))
        .collect();
    let te = values(&fields, "transfer-encoding");
    let cl = values(&fields, "content-length");
    let host = values(&fields, "host");
    let ct = values(&fields, "content-type");
    if detail.starts_with("Bare CR or LF") && has_bare_lf(head) {
        return Some(Difference::BareLf);
    }
    if detail.starts_with("Malformed HTTP method") && method.bytes().any(|b| b.is_ascii_lowercase())
    {
        return Some(Difference::LowercaseMethod);
    }
    if detail == "Request target is invalid"
        && (!target.starts_with('/') || (target == "*" && method != "OPTIONS"))
    {
        return Some(Difference::TargetForm);
    }
    if detail == "Bad URI" && target.bytes().any(|b| b >= 0x80) {
        return Some(Difference::NonAsciiTarget);
    }
    if detail == "Missing Host header" && version == 1 && host.is_empty() {
        return Some(Difference::MissingHost);
    }
    if detail == "Host header is invalid" && host.iter().any(|v| !plain_host(v)) {
        return Some(Difference::InvalidHost);
    }
    if detail.starts_with("Duplicate header: ") && (host.len() > 1 || cl.len() > 1 || ct.len() > 1)
    {
        return Some(Difference::DuplicateSingleton);
    }
    if detail == "Content-Length is invalid"
        && cl
            .iter()
            .any(|v| v.is_empty() || !v.iter().all(u8::is_ascii_digit))
    {
        return Some(Difference::ContentLength);
    }
    if code == 413 && cl.iter().any(|v| v.len() >= 10) {
        return Some(Difference::ContentLength);
    }
    if detail.contains("Transfer-Encoding") && !te.is_empty() {
        return Some(Difference::TransferEncoding);
    }
    if code == 431 && detail == "exceeds max_header_fields of 100" && field_lines > 100 {
        return Some(Difference::TooManyFields);
    }
    None
}

/// httparse's fields normalised the way maitred presents them.
fn expected_headers(fields: &Fields<'_>, target: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for (n, v) in fields {
        if n.contains('_') {
            continue;
        }
        match out.iter_mut().find(|(m, _)| m.eq_ignore_ascii_case(n)) {
            Some((_, val)) => {
                val.extend_from_slice(b", ");
                val.extend_from_slice(v);
            }
            None => out.push(((*n).to_owned(), v.to_vec())),
        }
    }
    // An accepted Transfer-Encoding is a lone chunked: removed.
    out.retain(|(n, _)| !n.eq_ignore_ascii_case("transfer-encoding"));
    if !target.starts_with('/') && target != "*" {
        // Absolute-form: the authority replaces Host.
        let after = &target[target.find("://").map_or(0, |i| i + 3)..];
        let authority = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
        match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case("host")) {
            Some((_, v)) => *v = authority.as_bytes().to_vec(),
            None => out.push(("Host".to_owned(), authority.as_bytes().to_vec())),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 8192 {
        return;
    }
    // Room for every field line an 8 KiB input can hold.
    let mut storage = vec![httparse::EMPTY_HEADER; 4096];
    let mut req = httparse::Request::new(&mut storage);
    let theirs = req.parse(data);
    match theirs {
        Ok(httparse::Status::Complete(n)) => {
            let head = &data[..n];
            let method = req.method.unwrap_or_default();
            let target = req.path.unwrap_or_default();
            let version = req.version.unwrap_or_default();
            let fields: Fields<'_> = req.headers.iter().map(|h| (h.name, h.value)).collect();
            match ours(head) {
                Ours::Accept(h) => {
                    assert_eq!(h.method, method);
                    assert_eq!(h.uri, target);
                    let v = if version == 0 {
                        Version::Http10
                    } else {
                        Version::Http11
                    };
                    assert_eq!(h.version, v);
                    assert_eq!(h.headers, expected_headers(&fields, target));
                }
                Ours::Reject(code, detail) => {
                    let why = explain_reject(head, method, target, version, &fields, code, &detail);
                    assert!(
                        why.is_some(),
                        "maitred rejects ({code} {detail:?}) a head httparse accepts: {head:?}"
                    );
                }
                Ours::Incomplete => {
                    // A bare LF is answered at once now: nothing httparse
                    // sees as a whole head leaves maitred waiting.
                    panic!("maitred waits on a head httparse accepts: {head:?}");
                }
            }
        }
        Ok(httparse::Status::Partial) | Err(_) => {
            if let Ours::Accept(h) = ours(data) {
                panic!("maitred accepts a head httparse does not ({theirs:?}): {h:?}");
            }
        }
    }
});
