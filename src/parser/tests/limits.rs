//! Limits on the elements of a head (issue 11): `max_request_line_size`,
//! `max_header_field_size`, `max_header_fields`, each decided at the first
//! byte past it, without reading (or holding) the rest; then the limit on
//! a whole head (`max_request_header_size`, waitress's `>=`).

use super::*;

/// Element limits: request line, one field line, number of field lines.
fn limits(line: u64, field: u64, fields: usize) -> ParserConfig {
    ParserConfig {
        max_request_line_size: line,
        max_header_field_size: field,
        max_header_fields: fields,
        ..ParserConfig::default()
    }
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
