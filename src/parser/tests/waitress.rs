//! Ports of waitress's `tests/test_parser.py` (`TestHTTPRequestParser`
//! and friends), case by case.

use super::*;

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
