//! Pipelining, the parser's API (`RequestHead`, `into_parsed`, an empty
//! slice, the default config), and what fuzzing found.

use super::*;

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
