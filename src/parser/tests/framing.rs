//! Framing (RFC 9112 §6): `Content-Length` and `Transfer-Encoding`, then
//! `Expect: 100-continue`, then chunked bodies through the parser (the
//! receiver has its own tests).

use super::*;

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
