//! Lines of a head, one kind at a time: the request line (waitress
//! captures and RFC 9112 §3), what may come before it, field lines, a bare
//! LF or CR (answered as soon as it is read, RFC 9112 §2.2), and `Host`
//! (RFC 9112 §3.2).

use super::*;

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
