//! Parser tests.
//!
//! Every case goes through [`outcome`], which feeds the input three ways
//! (whole, one byte at a time, and at pseudo-random split points) and
//! asserts that all of them end the same: completed / empty / error code,
//! detail and version / head fields / body bytes / bytes consumed. The
//! cases port the behaviours of waitress's `tests/test_parser.py`, the wire
//! captures of waitress 3.0.2, and the security advisories (named
//! `cve_*`).
//!
//! This file is the harness and the request builders the cases share; the
//! cases are in `tests/`: `waitress` (the ports of `test_parser.py`),
//! `lines` (request line, field lines, bare CR and LF, `Host`), `framing`
//! (lengths, `Transfer-Encoding`, `100-continue`, chunked bodies),
//! `limits` (the element and head limits), `advisories` (the CVEs) and
//! `api` (pipelining, the API, fuzzing's finds).

use super::*;

// ---------------------------------------------------------------------------
// Harness.

/// A tiny xorshift64 PRNG (no dependencies).
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Sorted, distinct cut points in `1..len`.
    pub(crate) fn cuts(&mut self, len: usize) -> Vec<usize> {
        if len < 2 {
            return Vec::new();
        }
        let n = (self.next() % 8 + 1) as usize;
        let mut v: Vec<usize> = (0..n)
            .map(|_| 1 + (self.next() as usize) % (len - 1))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// What the head looked like, in owned form.
#[derive(Clone, Debug, PartialEq)]
struct Snapshot {
    method: String,
    uri: String,
    version: Version,
    path: Vec<u8>,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
    content_length: Option<u64>,
}

impl Snapshot {
    fn of(h: &RequestHead) -> Snapshot {
        Snapshot {
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
        }
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// Everything observable about one parse.
#[derive(Clone, Debug, PartialEq)]
struct Outcome {
    consumed: usize,
    completed: bool,
    empty: bool,
    headers_finished: bool,
    expect_continue: bool,
    /// Code, detail, status-line version.
    error: Option<(u16, String, Version)>,
    head: Option<Snapshot>,
    body: Option<Vec<u8>>,
}

impl Outcome {
    /// The request, asserting there was no error.
    #[track_caller]
    fn ok(&self) -> &Snapshot {
        assert!(self.completed, "not completed: {self:?}");
        assert_eq!(self.error, None, "unexpected error");
        self.head.as_ref().expect("no head")
    }

    /// Asserts the error's code and detail.
    #[track_caller]
    fn err(&self, code: u16, detail: &str) {
        assert!(self.completed, "not completed: {self:?}");
        match &self.error {
            Some((c, d, _)) => assert_eq!((*c, d.as_str()), (code, detail), "{self:?}"),
            None => panic!("expected {code} {detail:?}, got {self:?}"),
        }
        assert!(self.head.is_none());
        assert!(!self.expect_continue);
    }

    #[track_caller]
    fn err_version(&self) -> Version {
        self.error.as_ref().expect("no error").2
    }

    #[track_caller]
    fn body(&self) -> &[u8] {
        self.body.as_deref().expect("no body")
    }
}

/// Feeds `input` cut at `cuts`, the way the channel does: each piece is
/// offered until the parser completes or has taken it all.
fn feed(cfg: ParserConfig, input: &[u8], cuts: &[usize]) -> Outcome {
    let mut p = RequestParser::new(cfg);
    let mut consumed = 0;
    let mut start = 0;
    let limit = cfg.max_request_header_size;
    for end in cuts.iter().copied().chain(std::iter::once(input.len())) {
        let mut piece = &input[start..end];
        start = end;
        while !piece.is_empty() && !p.is_completed() {
            let n = p.received(piece);
            assert!(n <= piece.len());
            assert!(n > 0, "no progress on {piece:?}");
            assert!(
                (p.buffered_head_bytes() as u64) < limit.max(1),
                "holds {} head bytes",
                p.buffered_head_bytes()
            );
            consumed += n;
            piece = &piece[n..];
        }
        if p.is_completed() {
            break;
        }
    }
    if p.is_completed() {
        assert_eq!(p.received(b"GET / HTTP/1.1\r\n\r\n"), 0);
        assert!(p.headers_finished());
    }
    let completed = p.is_completed();
    let empty = p.is_empty();
    let headers_finished = p.headers_finished();
    let expect_continue = p.expect_continue();
    let head = p.head().map(Snapshot::of);
    if p.error().is_some() {
        assert!(head.is_none());
    }
    let (error, body) = if completed && !empty {
        match p.into_parsed() {
            Parsed::Request(h, mut b) => {
                assert_eq!(Some(Snapshot::of(&h)), head);
                let bytes = b.to_vec().expect("body");
                (None, Some(bytes))
            }
            Parsed::Error(e, v) => (Some((e.code(), e.detail().to_owned(), v)), None),
        }
    } else {
        (None, None)
    };
    Outcome {
        consumed,
        completed,
        empty,
        headers_finished,
        expect_continue,
        error,
        head,
        body,
    }
}

/// Runs `input` whole, byte by byte and at pseudo-random split points, and
/// asserts the outcomes are identical.
fn outcome_with(cfg: ParserConfig, input: &[u8]) -> Outcome {
    let whole = feed(cfg, input, &[]);
    let bytewise: Vec<usize> = (1..input.len()).collect();
    assert_eq!(whole, feed(cfg, input, &bytewise), "byte by byte differs");
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ input.len() as u64);
    for _ in 0..6 {
        let cuts = rng.cuts(input.len());
        assert_eq!(whole, feed(cfg, input, &cuts), "split at {cuts:?} differs");
    }
    whole
}

fn outcome(input: &[u8]) -> Outcome {
    outcome_with(ParserConfig::default(), input)
}

fn cfg(max_header: u64, max_body: u64) -> ParserConfig {
    ParserConfig {
        max_request_header_size: max_header,
        max_request_body_size: max_body,
        ..ParserConfig::default()
    }
}

/// `c` without the limits on a head's elements (only the head limit).
fn no_element_limits(c: ParserConfig) -> ParserConfig {
    ParserConfig {
        max_request_line_size: u64::MAX,
        max_header_field_size: u64::MAX,
        max_header_fields: usize::MAX,
        ..c
    }
}

/// A table-driven case (httparse's `req!`): a name, the input, optionally a
/// config, and a closure checking the [`Outcome`].
macro_rules! req {
    ($name:ident, config: $cfg:expr, $input:expr, |$o:ident| $body:expr) => {
        #[test]
        fn $name() {
            let $o = outcome_with($cfg, $input);
            $body;
        }
    };
    ($name:ident, $input:expr, |$o:ident, $inp:ident| $body:expr) => {
        #[test]
        fn $name() {
            let $inp: &[u8] = $input;
            let $o = outcome($inp);
            $body;
        }
    };
    ($name:ident, $input:expr, |$o:ident| $body:expr) => {
        #[test]
        fn $name() {
            let $o = outcome($input);
            $body;
        }
    };
}

/// A case that must fail with `code` and `detail` (and, when given, with
/// `consumed` bytes taken: the error's byte is the last one).
macro_rules! req_err {
    ($name:ident, config: $cfg:expr, $input:expr, $code:expr, $detail:expr, consumed: $n:expr) => {
        #[test]
        fn $name() {
            let o = outcome_with($cfg, $input);
            o.err($code, $detail);
            assert_eq!(o.consumed, $n);
        }
    };
    ($name:ident, $input:expr, $code:expr, $detail:expr, consumed: $n:expr) => {
        req_err!($name, config: ParserConfig::default(), $input, $code, $detail, consumed: $n);
    };
    ($name:ident, config: $cfg:expr, $input:expr, $code:expr, $detail:expr) => {
        #[test]
        fn $name() {
            outcome_with($cfg, $input).err($code, $detail);
        }
    };
    ($name:ident, $input:expr, $code:expr, $detail:expr) => {
        #[test]
        fn $name() {
            outcome($input).err($code, $detail);
        }
    };
}

/// A request with a chunked body.
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut v = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    v.extend_from_slice(body);
    v
}

/// A request with one extra header line.
fn with_header(line: &[u8]) -> Vec<u8> {
    let mut v = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    v.extend_from_slice(line);
    v.extend_from_slice(b"\r\n\r\n");
    v
}

/// A request with this request line (and a Host).
fn with_line(line: &[u8]) -> Vec<u8> {
    let mut v = line.to_vec();
    v.extend_from_slice(b"\r\nHost: x\r\n\r\n");
    v
}

/// `n` bytes of `b`.
fn run(b: u8, n: usize) -> Vec<u8> {
    vec![b; n]
}

/// `prefix` followed by `n` bytes of `b`.
fn then(prefix: &[u8], b: u8, n: usize) -> Vec<u8> {
    [prefix, &run(b, n)].concat()
}

/// A request with this `Transfer-Encoding` and an empty chunked body.
fn chunked_te(te: &[u8]) -> Vec<u8> {
    chunked_te_body(te, b"0\r\n\r\n")
}

/// A request with this `Transfer-Encoding` and this body.
fn chunked_te_body(te: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ".to_vec();
    v.extend_from_slice(te);
    v.extend_from_slice(b"\r\n\r\n");
    v.extend_from_slice(body);
    v
}

mod advisories;
mod api;
mod framing;
mod limits;
mod lines;
mod waitress;
