//! Parser tests.
//!
//! Every case goes through [`outcome`], which feeds the input three ways
//! (whole, one byte at a time, and at pseudo-random split points) and
//! asserts that all of them end the same: completed / empty / error code,
//! detail and version / head fields / body bytes / bytes consumed. The
//! cases port the behaviours of waitress's `tests/test_parser.py`, the wire
//! captures of waitress 3.0.2, and the security advisories (named
//! `cve_*`).

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

// ---------------------------------------------------------------------------
// Ports of waitress's test_parser.py (TestHTTPRequestParser and friends).

req!(
    waitress_simple_get,
    b"GET /foobar HTTP/1.1\r\nHost: x\r\nFirstName: mickey\r\nlastname: Mouse\r\ncontent-length: 6\r\n\r\nHello.",
    |o| {
        let h = o.ok();
        assert_eq!(h.method, "GET");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.path, b"/foobar");
        assert_eq!(h.query, "");
        assert_eq!(h.names(), ["Host", "FirstName", "lastname", "content-length"]);
        assert_eq!(h.header("FIRSTNAME"), Some(&b"mickey"[..]));
        assert_eq!(h.header("LastName"), Some(&b"Mouse"[..]));
        assert_eq!(h.content_length, Some(6));
        assert_eq!(o.body(), b"Hello.");
        assert!(!o.empty);
        assert_eq!(o.consumed, 94);
    }
);

req!(
    waitress_complex_get,
    b"GET /foo/a+%2B%2F%C3%A4%3D%26a%3Aint?d=b+%2B%2F%3D%26b%3Aint&c+%2B%2F%3D%26c%3Aint=6 HTTP/1.1\r\nHost: x\r\nFirstName: mickey\r\nlastname: Mouse\r\ncontent-length: 10\r\n\r\nHello mickey.",
    |o, input| {
        let h = o.ok();
        assert_eq!(h.path, b"/foo/a++/\xc3\xa4=&a:int");
        assert_eq!(
            h.uri,
            "/foo/a+%2B%2F%C3%A4%3D%26a%3Aint?d=b+%2B%2F%3D%26b%3Aint&c+%2B%2F%3D%26c%3Aint=6"
        );
        assert_eq!(h.query, "d=b+%2B%2F%3D%26b%3Aint&c+%2B%2F%3D%26c%3Aint=6");
        assert_eq!(o.body(), b"Hello mick");
        // The three extra bytes belong to the next request.
        assert_eq!(o.consumed, input.len() - 3);
    }
);

req!(
    waitress_proxy_get,
    b"GET https://example.com:8080/foobar HTTP/1.1\r\nHost: other\r\ncontent-length: 6\r\n\r\nHello.",
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"/foobar");
        assert_eq!(h.uri, "https://example.com:8080/foobar");
        // RFC 9112 §3.2.2: the authority replaces Host.
        assert_eq!(h.header("host"), Some(&b"example.com:8080"[..]));
        assert_eq!(h.names(), ["Host", "content-length"]);
        assert_eq!(o.body(), b"Hello.");
    }
);

req!(
    waitress_duplicate_headers_combined,
    b"GET /foobar HTTP/1.1\r\nHost: x\r\nx-forwarded-for: 10.11.12.13\r\nx-forwarded-for: unknown,127.0.0.1\r\nX-Forwarded_for: 255.255.255.255\r\ncontent-length: 6\r\n\r\nHello.",
    |o| {
        let h = o.ok();
        assert_eq!(
            h.headers,
            [
                ("Host".to_owned(), b"x".to_vec()),
                (
                    "x-forwarded-for".to_owned(),
                    b"10.11.12.13, unknown,127.0.0.1".to_vec()
                ),
                ("content-length".to_owned(), b"6".to_vec()),
            ]
        );
    }
);

req!(
    waitress_spoofed_underscore_header_dropped,
    b"GET /foobar HTTP/1.1\r\nHost: x\r\nx-auth_user: bob\r\ncontent-length: 6\r\n\r\nHello.",
    |o| {
        assert_eq!(o.ok().names(), ["Host", "content-length"]);
    }
);

req!(waitress_nonsense_nothing_is_empty, b"\r\n\r\n", |o| {
    assert!(o.completed && o.empty && o.headers_finished);
    assert_eq!(o.consumed, 4);
    assert_eq!(o.error, None);
});

req!(
    waitress_no_double_crlf_is_incomplete,
    b"GET /foobar HTTP/1.1\r\n",
    |o| {
        assert!(!o.completed && !o.headers_finished);
        assert_eq!(o.consumed, 22);
    }
);

req_err!(
    waitress_start_line_not_a_request,
    b"HTTP/1.0 GET /foobar\r\n\r\n",
    400,
    "Start line is invalid"
);

req!(
    waitress_bad_transfer_encoding,
    b"GET /foobar HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n\r\n1d;\r\nThis string has 29 characters\r\n0\r\n\r\n",
    |o| {
        o.err(400, TE_NOT_FINAL);
        assert_eq!(o.consumed, 57);
    }
);

req!(
    waitress_cl_too_large,
    config: cfg(262_144, 2),
    b"GET /foobar HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
    |o| {
        o.err(413, "exceeds max_body of 2");
        assert_eq!(o.err_version(), Version::Http11);
    }
);

#[test]
fn waitress_headers_not_too_large_multiple_chunks() {
    let data = b"GET /foobar HTTP/1.1\r\nHost: x\r\nX-Foo: 1\r\nX-Foo-Other: 3\r\n\r\n";
    let o = outcome_with(cfg(data.len() as u64 + 1, 100), data);
    o.ok();
    assert_eq!(o.consumed, data.len());
}

req!(
    waitress_headers_too_large,
    config: cfg(2, 100),
    b"GET /foobar HTTP/1.1\r\nX-Foo: 1\r\n\r\n",
    |o| {
        o.err(431, "exceeds max_header of 2");
        assert_eq!(o.consumed, 2);
        assert_eq!(o.err_version(), Version::Http11);
    }
);

req!(
    waitress_chunked_body_too_large,
    config: cfg(262_144, 2),
    &chunked(b"1d;\r\nThis string has 29 characters\r\n0\r\n\r\n"),
    |o| o.err(413, "exceeds max_body of 2")
);

req_err!(
    waitress_chunked_garbage,
    &chunked(b"garbage\r\n"),
    400,
    "Invalid chunk size"
);

req!(
    waitress_chunked_completed_sets_content_length,
    &chunked(b"1d\r\nThis string has 29 characters\r\n0\r\n\r\n"),
    |o| {
        let h = o.ok();
        assert_eq!(h.header("content-length"), Some(&b"29"[..]));
        assert_eq!(h.header("transfer-encoding"), None);
        assert_eq!(h.content_length, Some(29));
        assert_eq!(o.body(), b"This string has 29 characters");
    }
);

req!(
    waitress_parse_header_gardenpath,
    &with_header(b"foo: bar"),
    |o| {
        assert_eq!(o.ok().header("FOO"), Some(&b"bar"[..]));
    }
);

req_err!(
    waitress_bad_content_length,
    &with_header(b"content-length: abc"),
    400,
    "Content-Length is invalid"
);
req_err!(
    waitress_bad_content_length_plus,
    &with_header(b"content-length: +10"),
    400,
    "Content-Length is invalid"
);
req_err!(
    waitress_bad_content_length_minus,
    &with_header(b"content-length: -10"),
    400,
    "Content-Length is invalid"
);
req_err!(
    waitress_multiple_content_length,
    &with_header(b"content-length: 10\r\ncontent-length: 20"),
    400,
    "Duplicate header: content-length"
);

req!(
    waitress_te_chunked_any_case,
    b"GET /foobar HTTP/1.1\r\nHost: x\r\ntransfer-encoding: ChUnKed\r\n\r\n0\r\n\r\n",
    |o| {
        assert_eq!(o.ok().content_length, Some(0));
        assert_eq!(o.body(), b"");
    }
);

req_err!(
    waitress_te_gzip,
    &with_header(b"transfer-encoding: gzip"),
    400,
    TE_NOT_FINAL
);
req_err!(
    waitress_te_gzip_then_chunked_two_lines,
    &with_header(b"transfer-encoding: gzip\r\ntransfer-encoding: chunked"),
    501,
    TE_UNSUPPORTED
);
req_err!(
    waitress_te_invalid_whitespace,
    &with_header(b"Transfer-Encoding:\x85chunked"),
    400,
    TE_NOT_FINAL
);
req_err!(
    waitress_te_invalid_unicode,
    &with_header(b"Transfer-Encoding: chun\xe2\x84\xaaed"),
    400,
    TE_NOT_FINAL
);

req!(
    waitress_expect_continue,
    b"POST /foobar HTTP/1.1\r\nHost: x\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\nab",
    |o| {
        o.ok();
        assert!(o.expect_continue);
    }
);

req!(
    waitress_connection_close_is_a_header,
    &with_header(b"Connection: close"),
    |o| assert_eq!(o.ok().header("connection"), Some(&b"close"[..]))
);

req_err!(
    waitress_lf_only,
    b"GET /foobar HTTP/1.1\nfoo: bar\r\n\r\n",
    400,
    "Bare CR or LF found in HTTP message"
);
req_err!(
    waitress_cr_only,
    b"GET /foobar HTTP/1.1\rfoo: bar\r\n\r\n",
    400,
    "Bare CR or LF found in HTTP message"
);
// waitress quotes the whole line; the answer is given at the LF here, so the
// quote stops there.
req_err!(
    waitress_extra_lf_in_header,
    &with_header(b"foo: \nbar"),
    400,
    "Bare CR or LF found in header line \"foo: \n\""
);
req_err!(
    waitress_extra_lf_in_first_line,
    b"GET /foobar\n HTTP/1.1\r\n\r\n",
    400,
    "Bare CR or LF found in HTTP message"
);
req_err!(
    waitress_whitespace_before_colon,
    &with_header(b"foo : bar"),
    400,
    "Invalid header"
);
req_err!(
    waitress_vtab_after_colon,
    &with_header(b"foo:\x0bbar"),
    400,
    "Invalid header"
);
req_err!(
    waitress_no_colon,
    &with_header(b"foo: bar\r\nnotvalid"),
    400,
    "Invalid header"
);
req_err!(
    waitress_folding_with_vtab,
    &with_header(b"foo: bar\r\n\t\x0bbaz"),
    400,
    "Malformed header line \"\t\x0bbaz\""
);
req_err!(
    waitress_invalid_chars,
    &with_header(b"foo: bar\r\nfoo: \x0bbaz"),
    400,
    "Invalid header"
);

req!(
    waitress_other_whitespace_kept,
    &with_header(b"foo: \xa0something\x85"),
    |o| assert_eq!(o.ok().header("foo"), Some(&b"\xa0something\x85"[..]))
);

req!(
    waitress_empty_value,
    &with_header(b"foo: bar\r\nempty:"),
    |o| {
        let h = o.ok();
        assert_eq!(h.header("empty"), Some(&b""[..]));
        assert_eq!(h.header("foo"), Some(&b"bar"[..]));
    }
);

req!(
    waitress_multiple_values,
    &with_header(b"foo: bar, whatever, more, please, yes"),
    |o| assert_eq!(
        o.ok().header("foo"),
        Some(&b"bar, whatever, more, please, yes"[..])
    )
);

req_err!(
    waitress_folded_value_rejected,
    &with_header(b"foo: bar, whatever,\r\n more, please, yes"),
    400,
    "Malformed header line \" more, please, yes\""
);

req!(
    waitress_value_with_inner_spaces,
    &with_header(b"foo: abrowser/0.001 (C O M M E N T)"),
    |o| assert_eq!(
        o.ok().header("foo"),
        Some(&b"abrowser/0.001 (C O M M E N T)"[..])
    )
);

req_err!(
    waitress_invalid_backtrack_bad,
    &with_header(b"foo: bar\r\nfoo: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\x10"),
    400,
    "Invalid header"
);

req!(
    waitress_short_values,
    &with_header(b"one: 1\r\ntwo: 22"),
    |o| {
        let h = o.ok();
        assert_eq!(h.header("one"), Some(&b"1"[..]));
        assert_eq!(h.header("two"), Some(&b"22"[..]));
    }
);

// split_uri

req!(
    waitress_split_uri_unquoting,
    &with_line(b"GET http://localhost:8080/abc%20def HTTP/1.1"),
    |o| assert_eq!(o.ok().path, b"/abc def")
);
req!(
    waitress_split_uri_query,
    &with_line(b"GET http://localhost:8080/abc?a=1&b=2 HTTP/1.1"),
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"/abc");
        assert_eq!(h.query, "a=1&b=2");
    }
);
req!(
    waitress_split_uri_query_empty,
    &with_line(b"GET http://localhost:8080/abc? HTTP/1.1"),
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"/abc");
        assert_eq!(h.query, "");
    }
);
req!(
    waitress_split_uri_fragment,
    &with_line(b"GET http://localhost:8080/#foo HTTP/1.1"),
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"/");
        assert_eq!(h.query, "");
        assert_eq!(h.uri, "http://localhost:8080/#foo");
    }
);
req!(
    waitress_split_uri_https,
    &with_line(b"GET https://localhost:8080/ HTTP/1.1"),
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"/");
        assert_eq!(h.header("host"), Some(&b"localhost:8080"[..]));
    }
);
req_err!(
    waitress_split_uri_non_ascii,
    &with_line(b"GET /\xd0 HTTP/1.1"),
    400,
    "Bad URI"
);
req!(
    waitress_split_uri_double_slash_is_path,
    &with_line(b"GET //testing/whatever HTTP/1.1"),
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"//testing/whatever");
        assert_eq!(h.query, "");
        assert_eq!(h.header("host"), Some(&b"x"[..]));
    }
);
req!(
    waitress_split_uri_double_slash_query,
    &with_line(b"GET //testing/whatever?a=1&b=2 HTTP/1.1"),
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"//testing/whatever");
        assert_eq!(h.query, "a=1&b=2");
    }
);
req!(
    waitress_split_uri_double_slash_query_fragment,
    &with_line(b"GET //testing/whatever?a=1&b=2#fragment HTTP/1.1"),
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"//testing/whatever");
        assert_eq!(h.query, "a=1&b=2");
        assert_eq!(h.uri, "//testing/whatever?a=1&b=2#fragment");
    }
);
req!(
    waitress_unquote_high_order,
    &with_line(b"GET /a%C5%9B HTTP/1.1"),
    |o| assert_eq!(o.ok().path, b"/a\xc5\x9b")
);

// crack_first_line

req!(waitress_first_line_ok, b"GET / HTTP/1.0\r\n\r\n", |o| {
    let h = o.ok();
    assert_eq!((h.method.as_str(), h.uri.as_str()), ("GET", "/"));
    assert_eq!(h.version, Version::Http10);
});
req!(
    waitress_first_line_lowercase_method,
    b"get / HTTP/1.0\r\n\r\n",
    |o| {
        o.err(400, "Malformed HTTP method \"get\"");
        assert_eq!(o.err_version(), Version::Http10);
    }
);
req_err!(
    waitress_first_line_no_match,
    b"GET / bleh\r\n\r\n",
    400,
    "Start line is invalid"
);
req_err!(
    waitress_first_line_rtsp,
    b"GET /info?txtAirPlay&txtRAOP RTSP/1.0\r\n\r\n",
    400,
    "Start line is invalid"
);
req_err!(
    waitress_first_line_missing_version,
    b"GET /\r\n\r\n",
    400,
    "Start line is invalid"
);
req_err!(
    waitress_first_line_bad_method,
    b"GE\x00 /foobar HTTP/1.1\r\n\r\n",
    400,
    "Start line is invalid"
);
req_err!(
    waitress_first_line_bad_version,
    b"GET /foobar HTTP/.1.\r\n\r\n",
    400,
    "Start line is invalid"
);

// ---------------------------------------------------------------------------
// Request line (waitress captures and RFC 9112 §3).

req!(mixed_case_method, b"Get / HTTP/1.1\r\n\r\n", |o| {
    o.err(400, "Malformed HTTP method \"Get\"");
    assert_eq!(o.err_version(), Version::Http11);
});
req_err!(
    double_space,
    b"GET  / HTTP/1.1\r\n\r\n",
    400,
    START_LINE_INVALID
);
req_err!(
    space_before_version_doubled,
    b"GET /  HTTP/1.1\r\n\r\n",
    400,
    START_LINE_INVALID
);
req_err!(
    trailing_spaces_after_version,
    b"GET / HTTP/1.1   \r\n\r\n",
    400,
    START_LINE_INVALID
);
req_err!(
    tab_separator,
    b"GET\t/ HTTP/1.1\r\n\r\n",
    400,
    START_LINE_INVALID
);
req_err!(
    lowercase_http,
    b"GET / http/1.1\r\n\r\n",
    400,
    START_LINE_INVALID
);
req_err!(
    two_digit_minor,
    b"GET / HTTP/1.10\r\n\r\n",
    400,
    START_LINE_INVALID
);
req_err!(
    leading_space_before_method,
    b" GET / HTTP/1.1\r\n\r\n",
    400,
    START_LINE_INVALID
);
req_err!(
    empty_method,
    b" / HTTP/1.1\r\n\r\n",
    400,
    START_LINE_INVALID
);
req_err!(
    method_with_separator,
    b"GE(T / HTTP/1.1\r\n\r\n",
    400,
    START_LINE_INVALID
);
req!(version_2_0_is_505, b"GET / HTTP/2.0\r\n\r\n", |o| {
    o.err(505, VERSION_UNSUPPORTED);
    assert_eq!(o.err_version(), Version::Http11);
});
req_err!(
    version_0_9_is_505,
    b"GET / HTTP/0.9\r\n\r\n",
    505,
    VERSION_UNSUPPORTED
);
req_err!(
    version_8_4_is_505,
    b"GET / HTTP/8.4\r\n",
    505,
    VERSION_UNSUPPORTED
);
req_err!(
    garbage_method_and_version_cve_like_423,
    b"\x00 / HTTP/............0596.7407.\r\n\r\n",
    400,
    START_LINE_INVALID
);
req!(
    token_method_accepted,
    &with_line(b"M-SEARCH.X~1! / HTTP/1.1"),
    |o| assert_eq!(o.ok().method, "M-SEARCH.X~1!")
);
req!(
    absolute_form_with_fragment,
    b"GET http://example.com:81/a/b?x=1#frag HTTP/1.1\r\nHost: other\r\n\r\n",
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"/a/b");
        assert_eq!(h.query, "x=1");
        assert_eq!(h.uri, "http://example.com:81/a/b?x=1#frag");
        assert_eq!(h.header("Host"), Some(&b"example.com:81"[..]));
    }
);
req!(
    absolute_form_http10_without_host_gets_host,
    b"GET HTTP://Example.COM HTTP/1.0\r\n\r\n",
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"");
        assert_eq!(h.headers, [("Host".to_owned(), b"Example.COM".to_vec())]);
    }
);
req!(
    absolute_form_query_without_path,
    &with_line(b"GET svn+ssh.x-y://h?x=1 HTTP/1.1"),
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"");
        assert_eq!(h.query, "x=1");
        assert_eq!(h.header("host"), Some(&b"h"[..]));
    }
);
req!(
    absolute_form_ipv6,
    &with_line(b"GET http://[::1]:8080/p HTTP/1.1"),
    |o| assert_eq!(o.ok().header("host"), Some(&b"[::1]:8080"[..]))
);
req_err!(
    absolute_form_userinfo_rejected,
    &with_line(b"GET http://user:pw@example.com/ HTTP/1.1"),
    400,
    INVALID_TARGET
);
req_err!(
    absolute_form_empty_host_rejected,
    &with_line(b"GET http:///path HTTP/1.1"),
    400,
    INVALID_TARGET
);
req_err!(
    absolute_form_bad_port,
    &with_line(b"GET http://example.com:8o/ HTTP/1.1"),
    400,
    INVALID_TARGET
);
req_err!(
    relative_target_rejected,
    &with_line(b"GET foo/bar HTTP/1.1"),
    400,
    INVALID_TARGET
);
req_err!(
    authority_form_rejected,
    &with_line(b"CONNECT example.com:443 HTTP/1.1"),
    400,
    INVALID_TARGET
);
req_err!(
    scheme_without_slashes_rejected,
    &with_line(b"GET http:/x HTTP/1.1"),
    400,
    INVALID_TARGET
);
req!(
    asterisk_form_options,
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"*");
        assert_eq!(h.uri, "*");
        assert_eq!(h.query, "");
    }
);
req_err!(
    asterisk_form_other_method_rejected,
    &with_line(b"M-SEARCH * HTTP/1.1"),
    400,
    INVALID_TARGET
);
req_err!(
    asterisk_followed_by_more_rejected,
    &with_line(b"OPTIONS *x HTTP/1.1"),
    400,
    INVALID_TARGET
);
req!(
    percent_encoded_path,
    &with_line(b"GET /a%20b/%2F%C3%A9?q=%20x HTTP/1.1"),
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"/a b//\xc3\xa9");
        assert_eq!(h.query, "q=%20x");
        assert_eq!(h.uri, "/a%20b/%2F%C3%A9?q=%20x");
    }
);
req!(
    percent_incomplete_left_as_is,
    &with_line(b"GET /%zz%4%%41% HTTP/1.1"),
    |o| assert_eq!(o.ok().path, b"/%zz%4%A%")
);
req!(
    percent_only_in_query_is_not_decoded,
    &with_line(b"GET /a?b=%41 HTTP/1.1"),
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"/a");
        assert_eq!(h.query, "b=%41");
    }
);
req!(
    fragment_before_question_mark,
    &with_line(b"GET /a#b?c HTTP/1.1"),
    |o| {
        let h = o.ok();
        assert_eq!(h.path, b"/a");
        assert_eq!(h.query, "");
    }
);
req_err!(
    control_char_in_target,
    &with_line(b"GET /a\x01b HTTP/1.1"),
    400,
    START_LINE_INVALID
);
req_err!(
    del_in_target,
    &with_line(b"GET /a\x7fb HTTP/1.1"),
    400,
    START_LINE_INVALID
);
req_err!(
    raw_non_ascii_in_target,
    b"GET /\xe9 HTTP/1.1\r\n\r\n",
    400,
    "Bad URI"
);
req!(
    bad_uri_carries_request_version,
    b"GET /\xe9 HTTP/1.0\r\n\r\n",
    |o| {
        o.err(400, "Bad URI");
        assert_eq!(o.err_version(), Version::Http10);
    }
);

// ---------------------------------------------------------------------------
// Before the request line.

req!(
    leading_crlf_pair_is_an_empty_request,
    b"\r\n\r\nGET /afterblank HTTP/1.1\r\nHost: x\r\n\r\n",
    |o| {
        assert!(o.completed && o.empty);
        assert_eq!(o.consumed, 4);
    }
);
req!(
    single_leading_crlf_skipped,
    b"\r\nGET /afterblank HTTP/1.1\r\nHost: x\r\n\r\n",
    |o| {
        assert_eq!(o.ok().path, b"/afterblank");
        assert_eq!(o.consumed, 39);
    }
);
req!(three_crlfs_leave_one, b"\r\n\r\n\r\n", |o| {
    assert!(o.empty);
    assert_eq!(o.consumed, 4);
});
req!(one_crlf_is_incomplete, b"\r\n", |o| {
    assert!(!o.completed);
    assert_eq!(o.consumed, 2);
});
req_err!(
    leading_bare_lf_rejected,
    b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    400,
    BARE_CR_LF_START
);
req_err!(
    leading_space_line_rejected,
    b" \r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    400,
    START_LINE_INVALID
);

// ---------------------------------------------------------------------------
// Field lines.

req!(
    names_as_sent_and_order_of_first_occurrence,
    b"GET / HTTP/1.1\r\nX-Foo: a\r\nHost: h\r\nx-foo: b\r\nAccept: */*\r\nX-FOO: c\r\n\r\n",
    |o| {
        let h = o.ok();
        assert_eq!(
            h.headers,
            [
                ("X-Foo".to_owned(), b"a, b, c".to_vec()),
                ("Host".to_owned(), b"h".to_vec()),
                ("Accept".to_owned(), b"*/*".to_vec()),
            ]
        );
    }
);

req!(
    many_duplicates_use_the_sorting_path,
    &{
        let mut v = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..40 {
            v.extend_from_slice(format!("X-{}: {}\r\n", i % 7, i).as_bytes());
        }
        v.extend_from_slice(b"\r\n");
        v
    },
    |o| {
        let h = o.ok();
        assert_eq!(h.headers.len(), 8);
        assert_eq!(h.headers[1].0, "X-0");
        assert_eq!(h.header("x-0"), Some(&b"0, 7, 14, 21, 28, 35"[..]));
        assert_eq!(h.header("X-6"), Some(&b"6, 13, 20, 27, 34"[..]));
    }
);

req!(
    many_distinct_fields,
    config: no_element_limits(ParserConfig::default()),
    &{
        let mut v = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..300 {
            v.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        v.extend_from_slice(b"\r\n");
        v
    },
    |o| {
        let h = o.ok();
        assert_eq!(h.headers.len(), 301);
        assert_eq!(h.header("x-299"), Some(&b"299"[..]));
    }
);

req!(
    value_ows_stripped_inner_kept,
    &with_header(b"X-Foo: \t a  b \t"),
    |o| assert_eq!(o.ok().header("x-foo"), Some(&b"a  b"[..]))
);
req!(
    value_long_clean_and_with_tabs,
    &with_header(b"X-Foo: abcdefghijklmnop\tqrstuvwxyz0123456789\xff\x80~!"),
    |o| assert_eq!(
        o.ok().header("x-foo"),
        Some(&b"abcdefghijklmnop\tqrstuvwxyz0123456789\xff\x80~!"[..])
    )
);
req!(empty_header_value, &with_header(b"X-Empty:"), |o| {
    assert_eq!(o.ok().header("x-empty"), Some(&b""[..]))
});
req!(whitespace_only_value, &with_header(b"X-Empty: \t "), |o| {
    assert_eq!(o.ok().header("x-empty"), Some(&b""[..]))
});
req_err!(empty_header_name, &with_header(b": v"), 400, INVALID_HEADER);
req_err!(
    header_without_colon,
    &with_header(b"NoColon"),
    400,
    INVALID_HEADER
);
req_err!(
    tab_before_colon,
    &with_header(b"Host\t: x"),
    400,
    INVALID_HEADER
);
req_err!(
    nul_in_value,
    &with_header(b"X-Foo: a\x00b"),
    400,
    INVALID_HEADER
);
req_err!(
    del_in_value,
    &with_header(b"X-Foo: a\x7fb"),
    400,
    INVALID_HEADER
);
req_err!(
    ff_in_long_value,
    &with_header(b"X-Foo: aaaaaaaaaaaaaaaa\x0cbbbbbbbbbbbbbb"),
    400,
    INVALID_HEADER
);
req_err!(
    non_tchar_in_name,
    &with_header(b"X(Foo): a"),
    400,
    INVALID_HEADER
);
req_err!(
    obs_text_in_name,
    &with_header(b"X-F\xe9o: a"),
    400,
    INVALID_HEADER
);
req!(
    bare_cr_in_header_line,
    &with_header(b"X-Header: x\rY"),
    |o| {
        o.err(400, "Bare CR or LF found in header line \"X-Header: x\r\"");
        // Decided at the byte after the CR.
        assert_eq!(o.consumed, with_header(b"X-Header: x\rY").len() - 4);
    }
);
req_err!(
    bare_cr_wins_over_invalid_byte,
    &with_header(b"X H\x00eader: x\rY"),
    400,
    "Bare CR or LF found in header line \"X H\x00eader: x\r\""
);
req_err!(
    cr_cr_lf_is_bare_cr,
    b"GET / HTTP/1.1\r\nHost: x\r\r\n\r\n",
    400,
    "Bare CR or LF found in header line \"Host: x\r\""
);
req!(
    bare_lf_after_request_line,
    b"GET / HTTP/1.1\nHost: x\r\n\r\n",
    |o| {
        o.err(400, BARE_CR_LF_START);
        assert_eq!(o.consumed, 15);
        // The line named its version before the LF.
        assert_eq!(o.err_version(), Version::Http11);
    }
);

// ---------------------------------------------------------------------------
// A bare LF or CR is answered as soon as it is read (RFC 9112 §2.2),
// whatever follows: no CRLF, no end of head, no timeout needed.

/// The head of issue 11: a folded field line ending in a bare LF, and
/// nothing after it.
const FOLDED_BARE_LF: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nFoo: a\n bar";

req!(
    bare_lf_in_a_folded_line_is_answered_at_once,
    FOLDED_BARE_LF,
    |o| {
        o.err(400, "Bare CR or LF found in header line \"Foo: a\n\"");
        assert_eq!(o.consumed, FOLDED_BARE_LF.len() - 4);
        assert_eq!(o.err_version(), Version::Http11);
    }
);
req!(
    bare_lf_as_the_last_byte_received_is_answered,
    &FOLDED_BARE_LF[..FOLDED_BARE_LF.len() - 4],
    |o, input| {
        o.err(400, "Bare CR or LF found in header line \"Foo: a\n\"");
        assert_eq!(o.consumed, input.len());
    }
);
req!(
    bare_lf_on_the_request_line_is_answered_at_once,
    b"GET /a\n",
    |o| {
        o.err(400, BARE_CR_LF_START);
        assert_eq!(o.consumed, 7);
        assert_eq!(o.err_version(), Version::Http11);
    }
);
req_err!(
    bare_lf_after_a_blank_line_is_answered_at_once,
    b"\r\n\n",
    400,
    BARE_CR_LF_START,
    consumed: 3
);
req!(
    bare_lf_on_a_http_1_0_request_line_keeps_its_version,
    b"GET / HTTP/1.0\nHost: x",
    |o| {
        o.err(400, BARE_CR_LF_START);
        assert_eq!(o.err_version(), Version::Http10);
    }
);
req!(
    cr_as_the_last_byte_received_waits_for_the_next,
    b"GET / HTTP/1.1\r\nHost: x\r",
    |o, input| {
        assert!(!o.completed && !o.headers_finished);
        assert_eq!(o.consumed, input.len());
    }
);
req_err!(
    bare_cr_is_decided_by_the_next_byte,
    b"GET / HTTP/1.1\r\nHost: x\rHost: y\r\n\r\n",
    400,
    "Bare CR or LF found in header line \"Host: x\r\"",
    consumed: 25
);
req!(bare_cr_on_the_request_line, b"GET / HTTP/1.1\rX", |o| {
    o.err(400, BARE_CR_LF_START);
    assert_eq!(o.consumed, 16);
    assert_eq!(o.err_version(), Version::Http11);
});
req!(cr_cr_before_the_request_line, b"\r\r\n", |o| {
    o.err(400, BARE_CR_LF_START);
    assert_eq!(o.consumed, 2);
});
req!(
    crlf_split_over_two_reads_is_a_line_end,
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    |o| {
        // The harness cuts between every CR and its LF, among others.
        assert_eq!(o.ok().header("host"), Some(&b"x"[..]));
    }
);
req_err!(
    obs_fold_on_first_header_line,
    b"GET / HTTP/1.1\r\n X-Foo: a\r\n\r\n",
    400,
    "Malformed header line \" X-Foo: a\""
);
req_err!(
    obs_fold_continuation,
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a,\r\n  b\r\n\tc\r\n\r\n",
    400,
    "Malformed header line \"  b\""
);
req!(
    underscore_header_dropped,
    &with_header(b"X_Foo: under\r\nX-Foo: dash"),
    |o| {
        let h = o.ok();
        assert_eq!(h.names(), ["Host", "X-Foo"]);
        assert_eq!(h.header("x-foo"), Some(&b"dash"[..]));
    }
);
req_err!(
    underscore_header_still_validated,
    &with_header(b"X_Foo: a\x01"),
    400,
    INVALID_HEADER
);
req!(
    underscore_content_length_is_not_framing,
    &with_header(b"Content_Length: 5"),
    |o| {
        let h = o.ok();
        assert_eq!(h.content_length, None);
        assert_eq!(o.body(), b"");
    }
);
req!(
    header_error_carries_http10,
    b"GET / HTTP/1.0\r\nX: \x01\r\n\r\n",
    |o| {
        o.err(400, INVALID_HEADER);
        assert_eq!(o.err_version(), Version::Http10);
    }
);

// ---------------------------------------------------------------------------
// Host (RFC 9112 §3.2).

req_err!(
    http11_without_host,
    b"GET / HTTP/1.1\r\n\r\n",
    400,
    HOST_MISSING
);
req!(http10_without_host, b"GET / HTTP/1.0\r\n\r\n", |o| {
    assert!(o.ok().headers.is_empty());
});
req_err!(
    duplicate_host,
    b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
    400,
    "Duplicate header: host"
);
// Issue 11: an empty Host is invalid (RFC 9110 §4.2.1), in both versions.
req_err!(
    empty_host_is_invalid,
    b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
    400,
    HOST_INVALID
);
req!(
    empty_host_is_invalid_in_http10,
    b"GET / HTTP/1.0\r\nHost: \t \r\n\r\n",
    |o| {
        o.err(400, HOST_INVALID);
        assert_eq!(o.err_version(), Version::Http10);
        // Decided at the end of the Host line.
        assert_eq!(o.consumed, 26);
    }
);
req_err!(
    empty_host_with_a_port_is_invalid,
    b"GET / HTTP/1.1\r\nHost: :80\r\n\r\n",
    400,
    HOST_INVALID
);
// The target's authority replaces Host, but the Host received is checked
// all the same (RFC 9112 §3.2 makes no exception for absolute-form).
req_err!(
    empty_host_with_an_absolute_form_target_is_invalid,
    b"GET http://example.com/ HTTP/1.1\r\nHost:\r\n\r\n",
    400,
    HOST_INVALID
);
req!(
    absolute_form_without_host_in_http10_takes_the_authority,
    b"GET http://example.com/ HTTP/1.0\r\n\r\n",
    |o| assert_eq!(o.ok().header("host"), Some(&b"example.com"[..]))
);
req_err!(
    absolute_form_with_an_empty_authority_is_invalid,
    b"GET http:///a HTTP/1.1\r\nHost: x\r\n\r\n",
    400,
    INVALID_TARGET
);

#[test]
fn host_values() {
    let good: &[&[u8]] = &[
        b"example.com",
        b"example.com:8080",
        b"example.com:",
        b"1.2.3.4",
        b"[::1]",
        b"[::1]:80",
        b"[2001:db8::ffff:1.2.3.4]",
        b"[v1.fe:x]",
        b"a%20b",
        b"sub-delims!$&'()*+,;=",
        b"xn--bcher-kva.example",
        b"under_score~dot.",
    ];
    for v in good {
        let mut line = b"Host: ".to_vec();
        line.extend_from_slice(v);
        let o = outcome(&with_line_host(&line));
        assert_eq!(o.ok().header("host"), Some(*v), "{}", latin1(v));
    }
    let bad: &[&[u8]] = &[
        b"",
        b":80",
        b":",
        b"a b",
        b"a/b",
        b"user@host",
        b"[::1",
        b"[zz]",
        b"[::1]x",
        b"[::1]:8x",
        b"example.com:8x",
        b"example.com:80:80",
        b"%zz",
        b"a%2",
        b"\xe9.example",
        b"a\"b",
        b"[v.x]",
        b"[v1.]",
        b"[fe80::1%25eth0]",
    ];
    for v in bad {
        let mut line = b"Host: ".to_vec();
        line.extend_from_slice(v);
        outcome(&with_line_host(&line)).err(400, HOST_INVALID);
    }
}

fn with_line_host(host_line: &[u8]) -> Vec<u8> {
    let mut v = b"GET / HTTP/1.1\r\n".to_vec();
    v.extend_from_slice(host_line);
    v.extend_from_slice(b"\r\n\r\n");
    v
}

// ---------------------------------------------------------------------------
// Framing (RFC 9112 §6).

req!(
    content_length_body,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET",
    |o, input| {
        assert_eq!(o.ok().content_length, Some(5));
        assert_eq!(o.body(), b"hello");
        assert_eq!(o.consumed, input.len() - 3);
    }
);
req!(
    content_length_ows,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \t5 \t\r\n\r\nhello",
    |o| {
        assert_eq!(o.ok().header("content-length"), Some(&b"5"[..]));
        assert_eq!(o.body(), b"hello");
    }
);
req!(
    content_length_leading_zeros,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 005\r\n\r\nhello",
    |o| {
        let h = o.ok();
        assert_eq!(h.header("content-length"), Some(&b"005"[..]));
        assert_eq!(h.content_length, Some(5));
    }
);
req!(
    content_length_zero,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    |o| {
        assert_eq!(o.ok().content_length, Some(0));
        assert_eq!(o.body(), b"");
    }
);
req_err!(
    content_length_empty,
    &with_header(b"Content-Length:"),
    400,
    CL_INVALID
);
req_err!(
    content_length_hex,
    &with_header(b"Content-Length: 0x5"),
    400,
    CL_INVALID
);
req_err!(
    content_length_list,
    &with_header(b"Content-Length: 5, 5"),
    400,
    CL_INVALID
);
req_err!(
    content_length_inner_space,
    &with_header(b"Content-Length: 5 5"),
    400,
    CL_INVALID
);
req!(
    content_length_huge_is_413,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    |o| {
        o.err(413, "exceeds max_body of 1073741824");
        assert_eq!(o.err_version(), Version::Http11);
    }
);
// Issue 11, point 6: a length too large to represent stays 413 (it is a
// valid length, RFC 9110 §8.6, and over any limit), not 400.
req!(
    content_length_one_past_u64_max_is_413,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n",
    |o| o.err(413, "exceeds max_body of 1073741824")
);
req!(
    content_length_of_a_thousand_digits_is_413,
    &with_header(&then(b"Content-Length: ", b'9', 1000)),
    |o| o.err(413, "exceeds max_body of 1073741824")
);
req!(
    content_length_past_u64_is_413_even_with_the_largest_limit,
    config: cfg(262_144, u64::MAX),
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n",
    |o| o.err(413, "exceeds max_body of 18446744073709551615")
);
req!(
    content_length_with_many_leading_zeros_is_its_value,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 000000000000000000000000005\r\n\r\nhello",
    |o| {
        assert_eq!(o.ok().content_length, Some(5));
        assert_eq!(o.body(), b"hello");
    }
);
req!(
    content_length_u64_max_is_413,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n",
    |o| o.err(413, "exceeds max_body of 1073741824")
);
req!(
    content_length_just_under_max_body,
    config: cfg(1000, 10),
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n123456789",
    |o| assert_eq!(o.body(), b"123456789")
);
req_err!(
    content_length_at_max_body,
    config: cfg(1000, 10),
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
    413,
    "exceeds max_body of 10"
);
req!(
    content_length_zero_with_max_body_zero,
    config: cfg(1000, 0),
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    |o| assert_eq!(o.body(), b"")
);
req!(
    incomplete_body_is_incomplete,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello",
    |o, input| {
        assert!(!o.completed && o.headers_finished);
        assert_eq!(o.consumed, input.len());
    }
);
req_err!(
    transfer_encoding_in_http10,
    b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    400,
    TE_HTTP10
);
req_err!(
    content_length_then_transfer_encoding,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    400,
    CL_AND_TE
);
req_err!(
    transfer_encoding_then_content_length,
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    400,
    CL_AND_TE
);
req_err!(
    empty_transfer_encoding_with_content_length,
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\nContent-Length: 5\r\n\r\nhello",
    400,
    CL_AND_TE
);
req_err!(
    empty_transfer_encoding,
    &with_header(b"Transfer-Encoding:"),
    400,
    TE_NOT_FINAL
);
req_err!(
    transfer_encoding_only_commas,
    &with_header(b"Transfer-Encoding: , \t,"),
    400,
    TE_NOT_FINAL
);
req_err!(
    transfer_encoding_chunked_then_gzip,
    &chunked_te(b"chunked, gzip"),
    400,
    TE_NOT_FINAL
);
req_err!(
    transfer_encoding_identity,
    &chunked_te(b"identity"),
    400,
    TE_NOT_FINAL
);
req_err!(
    transfer_encoding_gzip_chunked,
    &chunked_te(b"gzip, chunked"),
    501,
    TE_UNSUPPORTED
);
req_err!(
    transfer_encoding_chunked_twice_one_line,
    &chunked_te(b"chunked, chunked"),
    501,
    TE_MULTIPLE
);
req_err!(
    transfer_encoding_chunked_twice_two_lines,
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    501,
    TE_MULTIPLE
);
req_err!(
    transfer_encoding_with_parameter,
    &chunked_te(b"chunked;q=1"),
    400,
    TE_NOT_FINAL
);
req!(
    transfer_encoding_trailing_comma,
    &chunked_te_body(b"chunked,", b"5\r\nhello\r\n0\r\n\r\n"),
    |o| assert_eq!(o.body(), b"hello")
);
req!(
    transfer_encoding_empty_elements_ignored,
    &chunked_te_body(b" ,chunked, \t, ", b"5\r\nhello\r\n0\r\n\r\n"),
    |o| assert_eq!(o.body(), b"hello")
);

fn chunked_te(te: &[u8]) -> Vec<u8> {
    chunked_te_body(te, b"0\r\n\r\n")
}

fn chunked_te_body(te: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ".to_vec();
    v.extend_from_slice(te);
    v.extend_from_slice(b"\r\n\r\n");
    v.extend_from_slice(body);
    v
}

// ---------------------------------------------------------------------------
// Expect: 100-continue.

req!(
    expect_continue_uppercase,
    b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\nhello",
    |o| {
        assert!(o.expect_continue);
        assert_eq!(o.body(), b"hello");
    }
);
req!(
    expect_continue_chunked,
    &{
        let mut v = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        v.extend_from_slice(b"5\r\nhello\r\n0\r\n\r\n");
        v
    },
    |o| assert!(o.expect_continue)
);
req!(
    expect_continue_without_body,
    b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
    |o| {
        o.ok();
        assert!(!o.expect_continue);
    }
);
req!(
    expect_continue_with_zero_length,
    b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
    |o| assert!(!o.expect_continue)
);
req!(
    expect_continue_http10_ignored,
    b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
    |o| {
        o.ok();
        assert!(!o.expect_continue);
    }
);
req!(
    expect_other_value,
    b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, x\r\nContent-Length: 1\r\n\r\na",
    |o| assert!(!o.expect_continue)
);

#[test]
fn expect_continue_is_known_at_head_end_and_cleared_by_error() {
    let mut p = RequestParser::new(ParserConfig::default());
    let head =
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(p.received(head), head.len());
    assert!(p.headers_finished() && !p.is_completed());
    assert!(p.expect_continue());
    assert_eq!(p.head().map(|h| h.header("expect").is_some()), Some(true));
    p.received(b"zz");
    assert!(p.is_completed());
    assert!(!p.expect_continue());
    assert!(p.head().is_none());
}

// ---------------------------------------------------------------------------
// Chunked bodies through the parser (the receiver has its own tests).

req!(
    chunk_sizes_leading_zeros_and_upper_case,
    &chunked(b"0005\r\nhello\r\n00A\r\n0123456789\r\n0\r\n\r\n"),
    |o| {
        let h = o.ok();
        assert_eq!(h.header("Content-Length"), Some(&b"15"[..]));
        assert_eq!(o.body(), b"hello0123456789");
    }
);
req!(
    chunk_valid_extensions,
    &chunked(b"5;a=b;c;d=\"q\\\"x\"\r\nhello\r\n0;last\r\n\r\n"),
    |o| assert_eq!(o.body(), b"hello")
);
req_err!(
    chunk_ext_bws,
    &chunked(b"5 ;a\r\nhello\r\n0\r\n\r\n"),
    400,
    "Invalid chunk size"
);
req_err!(
    chunk_size_trailing_space,
    &chunked(b"5 \r\nhello\r\n0\r\n\r\n"),
    400,
    "Invalid chunk size"
);
req_err!(
    chunk_ext_bare_lf,
    &chunked(b"5;\n\r\nhello\r\n0\r\n\r\n"),
    400,
    "Invalid chunk extension"
);
req_err!(
    chunk_ext_lone_semicolon,
    &chunked(b"5;\r\nhello\r\n0\r\n\r\n"),
    400,
    "Invalid chunk extension"
);
// Issue 11: chunk-size = 1*HEXDIG, so no empty line before a size (waitress
// skips them). Right after the head:
req!(
    chunk_empty_line_after_the_head_rejected,
    &chunked(b"\r\n5\r\nhello\r\n0\r\n\r\n"),
    |o| {
        o.err(400, "Invalid chunk size");
        // Decided at the CR, the first byte of the body.
        assert_eq!(o.consumed, chunked(b"").len() + 1);
        assert_eq!(o.err_version(), Version::Http11);
    }
);
// ... and between a chunk's CRLF and the next size.
req_err!(
    chunk_empty_line_between_chunks_rejected,
    &chunked(b"5\r\nhello\r\n\r\n0\r\n\r\n"),
    400,
    "Invalid chunk size",
    consumed: chunked(b"5\r\nhello\r\n\r").len()
);
req_err!(
    chunk_data_not_followed_by_crlf,
    &chunked(b"5\r\nhelloXX0\r\n\r\n"),
    400,
    "Chunk not properly terminated"
);
req_err!(
    chunk_data_followed_by_bare_lf,
    &chunked(b"5\r\nhello\n0\r\n\r\n"),
    400,
    "Chunk not properly terminated"
);
req!(
    chunk_trailers_discarded,
    &chunked(b"5\r\nhello\r\n0\r\nX-Trailer: v\r\nOther:\r\n\r\nGET /next HTTP/1.1\r\n\r\n"),
    |o| {
        let h = o.ok();
        assert_eq!(h.header("x-trailer"), None);
        assert_eq!(o.body(), b"hello");
        assert_eq!(
            o.consumed,
            chunked(b"5\r\nhello\r\n0\r\nX-Trailer: v\r\nOther:\r\n\r\n").len()
        );
    }
);
req_err!(
    chunk_trailer_garbage_rejected,
    &chunked(b"5\r\nhello\r\n0\r\nX-Trailer: v\r\ngarbage line\r\n\r\n"),
    400,
    "Invalid trailer"
);
req!(
    chunked_body_spills_to_a_file,
    config: ParserConfig { inbuf_overflow: 8, ..ParserConfig::default() },
    &chunked(b"6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n"),
    |o| assert_eq!(o.body(), b"hello world!")
);
req!(
    fixed_body_spills_to_a_file,
    config: ParserConfig { inbuf_overflow: 4, ..ParserConfig::default() },
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\nhello world!",
    |o| assert_eq!(o.body(), b"hello world!")
);
req!(
    chunked_wire_bytes_count_against_max_body,
    config: cfg(1000, 10),
    &chunked(b"3\r\nabc\r\n0\r\n\r\n"),
    |o| {
        o.err(413, "exceeds max_body of 10");
        assert_eq!(o.err_version(), Version::Http11);
        // Decided at the tenth wire byte.
        assert_eq!(o.consumed, chunked(b"").len() + 10);
    }
);
req!(
    chunked_wire_bytes_just_under_max_body,
    config: cfg(1000, 12),
    &chunked(b"1\r\na\r\n0\r\n\r\n"),
    |o| assert_eq!(o.body(), b"a")
);
req!(
    chunked_invalid_extension_at_limit_is_413,
    // waitress's test_request_body_too_large_chunked_encoding: `20;` is an
    // invalid extension, but the limit is reached first.
    config: cfg(1000, 3),
    &chunked(b"20;\r\n"),
    |o| o.err(413, "exceeds max_body of 3")
);

// ---------------------------------------------------------------------------
// Limits on the elements of a head (issue 11): max_request_line_size,
// max_header_field_size, max_header_fields. Each is decided at the first
// byte past it, without reading (or holding) the rest.

/// Element limits: request line, one field line, number of field lines.
fn limits(line: u64, field: u64, fields: usize) -> ParserConfig {
    ParserConfig {
        max_request_line_size: line,
        max_header_field_size: field,
        max_header_fields: fields,
        ..ParserConfig::default()
    }
}

/// `n` bytes of `b`.
fn run(b: u8, n: usize) -> Vec<u8> {
    vec![b; n]
}

/// `prefix` followed by `n` bytes of `b`.
fn then(prefix: &[u8], b: u8, n: usize) -> Vec<u8> {
    [prefix, &run(b, n)].concat()
}

/// `GET /aaa... HTTP/1.1` of exactly `len` bytes (CRLF not counted), and a
/// Host.
fn line_of(len: usize) -> Vec<u8> {
    let mut l = b"GET /".to_vec();
    l.extend(run(b'a', len - b"GET / HTTP/1.1".len()));
    l.extend_from_slice(b" HTTP/1.1");
    assert_eq!(l.len(), len);
    with_line(&l)
}

req!(request_line_at_its_limit, &line_of(8192), |o| {
    assert_eq!(o.ok().uri.len(), 8192 - 13);
});
req!(request_line_past_its_limit_is_414, &line_of(8193), |o| {
    o.err(414, "exceeds max_request_line_size of 8192");
    // The byte past the limit is the last one consumed.
    assert_eq!(o.consumed, 8193);
    assert_eq!(o.err_version(), Version::Http11);
});
req!(
    a_100_kb_target_is_refused_at_the_limit,
    &then(b"GET /", b'x', 100_000),
    |o| {
        o.err(414, "exceeds max_request_line_size of 8192");
        assert_eq!(o.consumed, 8193);
    }
);
req!(
    a_100_kb_absolute_form_target_is_414,
    &then(b"GET http://example.com/", b'x', 100_000),
    |o| o.err(414, "exceeds max_request_line_size of 8192")
);
req!(a_100_kb_method_is_400, &run(b'G', 100_000), |o| {
    o.err(400, "exceeds max_request_line_size of 8192");
    assert_eq!(o.consumed, 8193);
});
req_err!(
    request_line_long_method_short_target_is_400,
    config: limits(20, 8192, 100),
    b"ABCDEFGHIJKLMNOP /ab HTTP/1.1\r\nHost: x\r\n\r\n",
    400,
    "exceeds max_request_line_size of 20",
    consumed: 21
);
req!(
    request_line_crossing_in_the_version_after_a_long_target_is_414,
    config: limits(20, 8192, 100),
    b"GET /abcdefghijklm HTTP/1.1\r\nHost: x\r\n\r\n",
    |o| o.err(414, "exceeds max_request_line_size of 20")
);
req!(
    request_line_with_a_long_tail_after_the_version_is_400,
    config: limits(20, 8192, 100),
    b"GET /a HTTP/1.1 aaaaaaaaaaaaaaa\r\nHost: x\r\n\r\n",
    |o| o.err(400, "exceeds max_request_line_size of 20")
);
req!(
    request_line_limit_counts_no_crlf,
    config: limits(14, 8192, 100),
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    |o| {
        o.ok();
    }
);
req!(
    bare_cr_at_the_request_line_limit_is_a_bare_cr,
    config: limits(14, 8192, 100),
    b"GET / HTTP/1.1\rX",
    |o| o.err(400, BARE_CR_LF_START)
);
req!(
    head_limit_wins_over_the_line_limit_on_the_same_byte,
    config: ParserConfig {
        max_request_header_size: 11,
        ..limits(10, 8192, 100)
    },
    b"GET /abcdefghij HTTP/1.1\r\n\r\n",
    |o| o.err(431, "exceeds max_header of 11")
);

/// A request with one field line `name: value` of exactly `len` bytes.
fn field_of(len: usize) -> Vec<u8> {
    let mut l = b"X-Long: ".to_vec();
    l.extend(run(b'v', len - 8));
    with_header(&l)
}

req!(field_line_at_its_limit, &field_of(8192), |o| {
    assert_eq!(o.ok().header("x-long").map(<[u8]>::len), Some(8184));
});
req!(field_line_past_its_limit_is_431, &field_of(8193), |o| {
    o.err(431, "exceeds max_header_field_size of 8192");
    let head = b"GET / HTTP/1.1\r\nHost: x\r\n".len();
    assert_eq!(o.consumed, head + 8193);
    assert_eq!(o.err_version(), Version::Http11);
});
req!(
    a_100_kb_header_value_is_refused_at_the_limit,
    &then(b"GET / HTTP/1.0\r\nX: ", b'v', 100_000),
    |o| {
        o.err(431, "exceeds max_header_field_size of 8192");
        assert_eq!(o.consumed, 16 + 8193);
        assert_eq!(o.err_version(), Version::Http10);
    }
);
req!(
    a_100_kb_header_name_is_refused_at_the_limit,
    &then(b"GET / HTTP/1.1\r\n", b'N', 100_000),
    |o| {
        o.err(431, "exceeds max_header_field_size of 8192");
        assert_eq!(o.consumed, 16 + 8193);
    }
);
req!(
    field_line_limit_counts_no_crlf,
    config: limits(8192, 7, 100),
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    |o| {
        o.ok();
    }
);
req!(
    bare_lf_at_the_field_line_limit_is_a_bare_lf,
    config: limits(8192, 7, 100),
    b"GET / HTTP/1.1\r\nHost: x\n",
    |o| o.err(400, "Bare CR or LF found in header line \"Host: x\n\"")
);

/// A request with `n` field lines (Host first).
fn fields(n: usize) -> Vec<u8> {
    let mut v = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 1..n {
        v.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
    }
    v.extend_from_slice(b"\r\n");
    v
}

req!(max_header_fields_at_the_limit, &fields(100), |o| {
    assert_eq!(o.ok().headers.len(), 100);
});
req!(one_field_line_too_many_is_431, &fields(101), |o| {
    o.err(431, "exceeds max_header_fields of 100");
    // Decided at the first byte of the 101st field line.
    let before: usize = fields(100).len() - 2;
    assert_eq!(o.consumed, before + 1);
});
#[test]
fn ten_thousand_tiny_fields_are_refused_at_the_101st() {
    let mut v = b"GET / HTTP/1.1\r\n".to_vec();
    for _ in 0..10_000 {
        v.extend_from_slice(b"a:\r\n");
    }
    v.extend_from_slice(b"\r\n");
    // Whole and at random cuts (a byte-by-byte feed of 40 KB is slow in
    // debug builds and adds nothing here).
    let whole = feed(ParserConfig::default(), &v, &[]);
    whole.err(431, "exceeds max_header_fields of 100");
    assert_eq!(whole.consumed, 16 + 100 * 4 + 1);
    let mut rng = XorShift(11);
    for _ in 0..6 {
        assert_eq!(whole, feed(ParserConfig::default(), &v, &rng.cuts(v.len())));
    }
}
#[test]
fn long_elements_are_never_held_past_their_limit() {
    let mut inputs = Vec::new();
    for (prefix, fill) in [
        (&b""[..], b'M'),
        (b"GET /", b't'),
        (b"GET / HTTP/1.1\r\n", b'n'),
        (b"GET / HTTP/1.1\r\nX: ", b'v'),
    ] {
        inputs.push(then(prefix, fill, 100_000));
    }
    for input in inputs {
        let mut p = RequestParser::new(ParserConfig::default());
        let mut held = 0;
        let mut consumed = 0;
        for piece in input.chunks(1000) {
            consumed += p.received(piece);
            held = held.max(p.buffered_head_bytes());
            if p.is_completed() {
                break;
            }
        }
        assert!(p.is_completed() && p.error().is_some());
        // At most the request line and one field line, each at its limit.
        assert!(consumed <= 16 + 8193, "{consumed}");
        assert!(held <= 16 + 8192, "{held}");
        assert_eq!(p.buffered_head_bytes(), 0);
    }
}
req!(
    dropped_fields_count_as_field_lines,
    config: limits(8192, 8192, 2),
    b"GET / HTTP/1.1\r\nHost: x\r\nX_Under: y\r\nZ: z\r\n\r\n",
    |o| o.err(431, "exceeds max_header_fields of 2")
);
req!(
    an_obs_fold_past_the_field_count_is_431,
    config: limits(8192, 8192, 1),
    b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
    |o| o.err(431, "exceeds max_header_fields of 1")
);
req!(
    the_end_of_head_after_the_last_allowed_field_is_fine,
    config: limits(8192, 8192, 1),
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    |o| {
        o.ok();
    }
);
req!(
    a_bare_cr_after_the_last_allowed_field_is_a_bare_cr,
    config: limits(8192, 8192, 1),
    b"GET / HTTP/1.1\r\nHost: x\r\n\rX",
    |o| o.err(400, "Bare CR or LF found in header line \"\r\"")
);

// ---------------------------------------------------------------------------
// Head size limit (max_request_header_size, waitress's `>=`).

/// `GET / HTTP/1.1\r\nX-Pad: aaa...\r\n\r\n` of exactly `len` bytes.
fn padded(len: usize) -> Vec<u8> {
    let base = b"GET / HTTP/1.0\r\nX-Pad: \r\n\r\n".len();
    let mut v = b"GET / HTTP/1.0\r\nX-Pad: ".to_vec();
    v.extend(std::iter::repeat_n(b'a', len - base));
    v.extend_from_slice(b"\r\n\r\n");
    assert_eq!(v.len(), len);
    v
}

req!(head_one_under_limit, config: cfg(100, 1000), &padded(99), |o| {
    o.ok();
    assert_eq!(o.consumed, 99);
});
req!(head_at_limit, config: cfg(100, 1000), &padded(100), |o| {
    o.err(431, "exceeds max_header of 100");
    assert_eq!(o.consumed, 100);
    // The request line was read: the answer carries its version.
    assert_eq!(o.err_version(), Version::Http10);
});
req!(
    incomplete_head_reaching_limit,
    config: cfg(100, 1000),
    &[b'a'; 300],
    |o| {
        o.err(431, "exceeds max_header of 100");
        assert_eq!(o.consumed, 100);
        assert_eq!(o.err_version(), Version::Http11);
    }
);
req!(
    leading_blank_lines_count,
    config: cfg(20, 1000),
    b"\r\nGET / HTTP/1.0\r\n\r\n",
    |o| o.err(431, "exceeds max_header of 20")
);
req!(
    leading_blank_lines_count_under,
    config: cfg(21, 1000),
    b"\r\nGET / HTTP/1.0\r\n\r\n",
    |o| {
        o.ok();
    }
);
req!(
    empty_request_at_limit,
    config: cfg(4, 1000),
    b"\r\n\r\n",
    |o| o.err(431, "exceeds max_header of 4")
);
req!(
    limit_wins_over_invalid_line_on_the_same_byte,
    config: cfg(16, 1000),
    b"get / HTTP/1.1\r\n\r\n",
    |o| o.err(431, "exceeds max_header of 16")
);
req!(
    invalid_line_before_limit,
    config: cfg(17, 1000),
    b"get / HTTP/1.1\r\n\r\n",
    |o| o.err(400, "Malformed HTTP method \"get\"")
);
/// A chunked request whose head (53 bytes) passes a limit of 60, with a
/// trailer section of `9 + pad` bytes (`X-T: <pad>` CRLF CRLF).
fn chunked_trailer(pad: usize) -> Vec<u8> {
    let mut v = b"PUT / HTTP/1.1\r\nHost:x\r\nTransfer-Encoding:chunked\r\n\r\n".to_vec();
    assert_eq!(v.len(), 53);
    v.extend_from_slice(b"0\r\nX-T: ");
    v.extend(std::iter::repeat_n(b'p', pad));
    v.extend_from_slice(b"\r\n\r\n");
    v
}

req!(
    trailer_section_at_max_header,
    config: cfg(60, 1000),
    &chunked_trailer(51),
    |o| o.err(431, "exceeds max_header of 60")
);
req!(
    trailer_section_under_max_header,
    config: cfg(60, 1000),
    &chunked_trailer(50),
    |o| assert_eq!(o.body(), b"")
);

#[test]
fn dripping_a_large_head_is_linear() {
    // 256 KiB of header lines fed one byte at a time: quadratic work would
    // take minutes here.
    let mut v = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    while v.len() < 256 * 1024 {
        v.extend_from_slice(b"X-Long-Header-Name: some value that is long enough\r\n");
    }
    v.extend_from_slice(b"\r\n");
    let bytewise: Vec<usize> = (1..v.len()).collect();
    let o = feed(no_element_limits(cfg(1 << 20, 1000)), &v, &bytewise);
    assert_eq!(o.ok().headers.len(), 2);
    // One 256 KiB line, dripped too.
    let mut v = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
    v.extend(std::iter::repeat_n(b'v', 256 * 1024));
    v.extend_from_slice(b"\r\n\r\n");
    let bytewise: Vec<usize> = (1..v.len()).collect();
    let o = feed(no_element_limits(cfg(1 << 20, 1000)), &v, &bytewise);
    assert_eq!(o.ok().header("x").map(<[u8]>::len), Some(256 * 1024));
}

// ---------------------------------------------------------------------------
// Security advisories (waitress-3.0.2.md §4), as named regressions.

// CVE-2019-16785: a bare LF must not end a header line (the front end sees
// `Content-Length: 100`, waitress would have seen 0 and a smuggled request).
req!(
    cve_2019_16785_bare_lf_in_header_line,
    b"GET / HTTP/1.1\r\nContent-Length: 100\r\nX-Header: x\nContent-Length: 0\r\n\r\n",
    |o| {
        o.err(400, "Bare CR or LF found in header line \"X-Header: x\n\"");
        assert_eq!(o.err_version(), Version::Http11);
    }
);

// CVE-2019-16785: LF-only line ends never end a head; the first bare LF is
// answered at once (waitress waits for CRLFCRLF or the timeout).
req_err!(
    cve_2019_16785_lf_only_head_is_answered_at_the_first_lf,
    b"GET / HTTP/1.1\nHost: x\n\nGET /smuggled HTTP/1.1\n\n",
    400,
    BARE_CR_LF_START,
    consumed: 15
);

// CVE-2019-16785: chunked framing needs CRLF too.
req_err!(
    cve_2019_16785_chunked_lf_only,
    &chunked(b"5\nhello\n0\n\n"),
    400,
    "Invalid chunk size"
);

// CVE-2019-16786: a Transfer-Encoding list not ending in a lone `chunked`.
req_err!(
    cve_2019_16786_gzip_chunked,
    &chunked_te(b"gzip, chunked"),
    501,
    TE_UNSUPPORTED
);
req_err!(
    cve_2019_16786_folded_transfer_encoding,
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip,\r\n chunked\r\n\r\n0\r\n\r\n",
    400,
    "Malformed header line \" chunked\""
);
req_err!(
    cve_2019_16786_chunked_not_final,
    &chunked_te(b"chunked, gzip"),
    400,
    TE_NOT_FINAL
);

// CVE-2019-16789: only SP/HTAB are whitespace; `\x85chunked` is not
// `chunked`, and control bytes are invalid.
req_err!(
    cve_2019_16789_nel_before_chunked,
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x85chunked\r\n\r\n0\r\n\r\n",
    400,
    TE_NOT_FINAL
);
req_err!(
    cve_2019_16789_nbsp_before_chunked_with_gzip,
    &chunked_te(b"gzip, \xa0chunked, chunked"),
    501,
    TE_UNSUPPORTED
);
req_err!(
    cve_2019_16789_vertical_tab,
    &with_header(b"X-Foo: a\x0bb"),
    400,
    INVALID_HEADER
);
req!(
    cve_2019_16789_obs_text_not_stripped,
    &with_header(b"X-Foo: \x85a\xa0"),
    |o| assert_eq!(o.ok().header("x-foo"), Some(&b"\x85a\xa0"[..]))
);

// CVE-2019-16792: two Content-Length fields, or one that is not digits.
req_err!(
    cve_2019_16792_duplicate_content_length,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 10\r\n\r\n0123456789",
    400,
    "Duplicate header: Content-Length"
);
req_err!(
    cve_2019_16792_content_length_abc,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    400,
    CL_INVALID
);

// CVE-2020-5236: a long value ending in a control byte is rejected in
// linear time.
req!(
    cve_2020_5236_no_backtracking,
    &{
        let mut v = b"GET / HTTP/1.1\r\nHost: x\r\nfoo: bar\r\nfoo: ".to_vec();
        v.extend(std::iter::repeat_n(b'x', 5000));
        v.extend_from_slice(b"\x10\r\n\r\n");
        v
    },
    |o| o.err(400, INVALID_HEADER)
);

// CVE-2022-24761: signs, prefixes and whitespace in lengths; unchecked
// chunk extensions.
req_err!(
    cve_2022_24761_content_length_plus,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
    400,
    CL_INVALID
);
req_err!(
    cve_2022_24761_content_length_minus,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    400,
    CL_INVALID
);

#[test]
fn cve_2022_24761_chunk_sizes() {
    for size in [
        &b"0x04"[..],
        b"+0x04",
        b"x04",
        b"+04",
        b" 04",
        b" 0x04",
        b"-4",
        b"4_0",
    ] {
        let mut body = size.to_vec();
        body.extend_from_slice(b"\r\ntest\r\n0\r\n\r\n");
        outcome(&chunked(&body)).err(400, "Invalid chunk size");
    }
}

#[test]
fn cve_2022_24761_chunk_extensions() {
    for ext in [
        &b"\n"[..],
        b"invalid=",
        b"\r",
        b"invalid = true",
        b"a=\"b",
        b"a=b c",
    ] {
        let mut body = b"4;".to_vec();
        body.extend_from_slice(ext);
        body.extend_from_slice(b"\r\ntest\r\n0\r\n\r\n");
        outcome(&chunked(&body)).err(400, "Invalid chunk extension");
    }
}

// CVE-2024-49768 is a channel race, but its parser half is that a failed
// request stops consuming at the error: nothing behind it is taken.
req!(
    cve_2024_49768_error_consumes_nothing_after_it,
    b"GET / HTTP/1.1\r\nHost: localhost:8080\r\nContent-length: -1\r\n\r\nPOST / HTTP/1.1\r\nHost: localhost:8080\r\nContent-Length: 1\r\n\r\nx",
    |o, input| {
        o.err(400, CL_INVALID);
        let first = b"GET / HTTP/1.1\r\nHost: localhost:8080\r\nContent-length: -1\r\n";
        assert_eq!(&input[..o.consumed], first);
    }
);

// waitress main (#488, issue #466): a second Content-Type is a 400, like a
// second Host or Content-Length.
req!(
    duplicate_content_type,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\ncontent-type: application/json\r\n\r\n",
    |o| {
        o.err(400, "Duplicate header: content-type");
        assert_eq!(o.err_version(), Version::Http11);
        // Decided at the end of the second field line.
        assert_eq!(o.consumed, 84);
    }
);
req!(
    one_content_type_with_a_list_like_value_is_kept,
    &with_header(b"Content-Type: text/plain, application/json"),
    |o| assert_eq!(
        o.ok().header("content-type"),
        Some(&b"text/plain, application/json"[..])
    )
);
req!(
    content_type_with_an_underscore_is_dropped_not_a_duplicate,
    &with_header(b"Content-Type: a\r\nContent_Type: b"),
    |o| assert_eq!(o.ok().header("content-type"), Some(&b"a"[..]))
);

// waitress main (#474, #475, #484): duplicate Host, CL + TE, chunked twice.
req_err!(
    smuggling_duplicate_host,
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    400,
    "Duplicate header: Host"
);
req!(
    smuggling_cl_te_closes_instead_of_pipelining,
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /second HTTP/1.1\r\n\r\n",
    |o| o.err(400, CL_AND_TE)
);
req_err!(
    smuggling_chunked_twice,
    &chunked_te(b"chunked, chunked"),
    501,
    TE_MULTIPLE
);
req_err!(
    smuggling_http10_transfer_encoding,
    b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    400,
    TE_HTTP10
);
req_err!(
    smuggling_space_before_colon_1_4_0,
    b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    400,
    INVALID_HEADER
);

// ---------------------------------------------------------------------------
// Pipelining.

req!(
    pipelined_requests_are_left_alone,
    b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n",
    |o| {
        assert_eq!(o.ok().path, b"/one");
        assert_eq!(o.consumed, 30);
    }
);

#[test]
fn pipelined_parse_loop() {
    let data: &[u8] = b"\r\nGET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nabc\r\n\r\nPUT /3 HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n";
    let mut rest = data;
    let mut seen = Vec::new();
    while !rest.is_empty() {
        let mut p = RequestParser::new(ParserConfig::default());
        let n = p.received(rest);
        rest = &rest[n..];
        assert!(p.is_completed());
        if p.is_empty() {
            seen.push("empty".to_owned());
            continue;
        }
        match p.into_parsed() {
            Parsed::Request(h, mut b) => seen.push(format!(
                "{} {} {}",
                h.method(),
                h.uri(),
                String::from_utf8(b.to_vec().unwrap()).unwrap()
            )),
            Parsed::Error(e, _) => panic!("{e}"),
        }
    }
    assert_eq!(seen, ["GET /1 ", "POST /2 abc", "empty", "PUT /3 z"]);
}

// ---------------------------------------------------------------------------
// The API.

#[test]
fn head_api() {
    let mut p = RequestParser::new(ParserConfig::default());
    p.received(b"GET /x?y HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n");
    let Parsed::Request(mut h, body) = p.into_parsed() else {
        panic!()
    };
    assert!(body.is_empty());
    assert_eq!(h.header("a"), Some(&b"1"[..]));
    assert_eq!(h.header("missing"), None);
    h.set_header("a", b"one");
    h.set_header("C", b"3");
    assert_eq!(
        h.headers().collect::<Vec<_>>(),
        [
            ("Host", &b"h"[..]),
            ("A", &b"one"[..]),
            ("B", &b"2"[..]),
            ("C", &b"3"[..])
        ]
    );
    assert!(h.remove_header("B"));
    assert!(!h.remove_header("B"));
    assert_eq!(h.headers().count(), 3);
    assert_eq!(h.content_length(), None);
    let clone = h.clone();
    assert_eq!(clone.uri(), "/x?y");
    assert_eq!(clone.query(), "y");
    assert_eq!(clone.version().as_str(), "1.1");
    assert_eq!(Version::Http10.as_str(), "1.0");
    assert_eq!(Version::Http10.to_string(), "HTTP/1.0");
}

#[test]
fn into_parsed_too_early_or_empty() {
    let mut p = RequestParser::new(ParserConfig::default());
    p.received(b"GET / HTTP/1.1\r\n");
    assert!(p.head().is_none());
    match p.into_parsed() {
        Parsed::Error(e, v) => {
            assert_eq!(e.code(), 500);
            assert_eq!(v, Version::Http11);
        }
        Parsed::Request(..) => panic!(),
    }
    let mut p = RequestParser::new(ParserConfig::default());
    assert_eq!(p.received(b"\r\n\r\n"), 4);
    assert!(p.is_empty());
    assert!(matches!(p.into_parsed(), Parsed::Error(e, _) if e.code() == 500));
}

#[test]
fn received_empty_slice_is_a_no_op() {
    let mut p = RequestParser::new(ParserConfig::default());
    assert_eq!(p.received(b""), 0);
    assert!(!p.is_completed());
}

#[test]
fn default_config_is_waitress() {
    let c = ParserConfig::default();
    assert_eq!(
        (
            c.max_request_header_size,
            c.max_request_body_size,
            c.inbuf_overflow
        ),
        (262_144, 1_073_741_824, 524_288)
    );
    assert_eq!(
        (
            c.max_request_line_size,
            c.max_header_field_size,
            c.max_header_fields
        ),
        (8192, 8192, 100)
    );
}

// Found by fuzzing (parse_request): an error found at the end of a head
// whose repeated fields had been combined kept the combined values, past the
// head limit. Errors now free the head at once.
req!(
    fuzz_error_after_combining_frees_the_head,
    config: cfg(1000, 1000),
    &{
        let mut v = b"POST / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for _ in 0..2 {
            v.extend_from_slice(b"X: ");
            v.extend(std::iter::repeat_n(b'a', 300));
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(b"Transfer-Encoding: gzip\r\n\r\n");
        v
    },
    |o| o.err(400, TE_NOT_FINAL)
);
