//! Security advisories (waitress-3.0.2.md §4), as named regressions
//! (`cve_*`), and the fixes on waitress's main branch since 3.0.2.

use super::*;

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
