//! Issue 11 ("strictness, round two") on the wire: each rule seen from a
//! client on a loopback socket, answered with the error the parser chose
//! and a closed connection.

mod common;

use std::time::{Duration, Instant};

use common::*;
use maitred::{Request, Response};

fn hello(_req: &mut Request) -> Response {
    Response::text("Hello, World!")
}

/// Sends `raw` (and nothing else, leaving the connection open for writing),
/// reads the answer, checks it is `status` with `detail` in its body and
/// that the server then closes the connection. Returns how long the answer
/// took.
#[track_caller]
fn answered(c: &mut Client, raw: &[u8], status: u16, detail: &str) -> Duration {
    let t = Instant::now();
    c.send(raw);
    let r = c.read_response().expect("an answer");
    let took = t.elapsed();
    assert_eq!(r.status, status, "{}", r.text());
    assert!(r.text().contains(detail), "{:?} lacks {detail:?}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
    c.assert_closed();
    took
}

backend_tests! {
    fn bare_lf_is_answered_without_waiting_for_the_rest(poll: bool) {
        // Nothing after the bare LF: no CRLF, no end of head. The answer
        // must not wait for channel_timeout (set far above the read
        // timeout here).
        let s = start(hello, adj(poll).channel_timeout(3600));
        let mut c = Client::connect(s.addr);
        let took = answered(
            &mut c,
            b"GET / HTTP/1.1\r\nHost: x\r\nFoo: a\n bar",
            400,
            "Bare CR or LF found in header line \"Foo: a\n\"",
        );
        assert!(took < READ_TIMEOUT, "{took:?}");
        let mut c = Client::connect(s.addr);
        answered(&mut c, b"GET / HTTP/1.1\n", 400, "Bare CR or LF found in HTTP message");
    }

    fn bare_cr_is_answered_at_the_next_byte(poll: bool) {
        let s = start(hello, adj(poll).channel_timeout(3600));
        let mut c = Client::connect(s.addr);
        answered(
            &mut c,
            b"GET / HTTP/1.1\r\nHost: x\rX",
            400,
            "Bare CR or LF found in header line \"Host: x\r\"",
        );
    }

    fn empty_line_before_a_chunk_size_is_rejected(poll: bool) {
        let s = start(hello, adj(poll));
        let head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        // Directly after the head.
        let mut c = Client::connect(s.addr);
        let mut req = head.to_vec();
        req.extend_from_slice(b"\r\n5\r\nhello\r\n0\r\n\r\n");
        answered(&mut c, &req, 400, "Invalid chunk size");
        // Between a chunk's CRLF and the next size.
        let mut c = Client::connect(s.addr);
        let mut req = head.to_vec();
        req.extend_from_slice(b"5\r\nhello\r\n\r\n0\r\n\r\n");
        answered(&mut c, &req, 400, "Invalid chunk size");
        // Without them, the same body is fine.
        let mut c = Client::connect(s.addr);
        let mut req = head.to_vec();
        req.extend_from_slice(b"5\r\nhello\r\n0\r\n\r\n");
        assert_eq!(c.roundtrip(&req).status, 200);
    }

    fn a_100_kb_element_is_refused_once_past_its_limit(poll: bool) {
        // Only the first 9,000 bytes of each 100 KB element are sent: the
        // answer must come without the rest.
        let s = start(hello, adj(poll).channel_timeout(3600));
        let cases: [(&[u8], u8, u16, &str); 4] = [
            (b"", b'M', 400, "exceeds max_request_line_size of 8192"),
            (b"GET /", b't', 414, "exceeds max_request_line_size of 8192"),
            (b"GET / HTTP/1.1\r\nHost: x\r\n", b'n', 431, "exceeds max_header_field_size of 8192"),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX: ", b'v', 431, "exceeds max_header_field_size of 8192"),
        ];
        for (prefix, fill, status, detail) in cases {
            let mut req = prefix.to_vec();
            req.extend(std::iter::repeat_n(fill, 9000));
            let mut c = Client::connect(s.addr);
            answered(&mut c, &req, status, detail);
        }
    }

    fn ten_thousand_tiny_fields_are_refused_at_the_101st(poll: bool) {
        let s = start(hello, adj(poll).channel_timeout(3600));
        let mut req = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        // The first 110 of them; the answer must not wait for the others.
        for _ in 0..110 {
            req.extend_from_slice(b"a:\r\n");
        }
        let mut c = Client::connect(s.addr);
        answered(&mut c, &req, 431, "exceeds max_header_fields of 100");
    }

    fn empty_host_is_a_400(poll: bool) {
        let s = start(hello, adj(poll));
        for req in [
            &b"GET / HTTP/1.1\r\nHost:\r\n\r\n"[..],
            b"GET / HTTP/1.0\r\nHost: \r\n\r\n",
            b"GET http://example.com/ HTTP/1.1\r\nHost:\r\n\r\n",
        ] {
            let mut c = Client::connect(s.addr);
            answered(&mut c, req, 400, "Host header is invalid");
        }
    }

    fn a_second_content_type_is_a_400(poll: bool) {
        let s = start(hello, adj(poll));
        let mut c = Client::connect(s.addr);
        answered(
            &mut c,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n",
            400,
            "Duplicate header: Content-Type",
        );
    }

    fn content_length_too_large_to_represent_is_a_413(poll: bool) {
        let s = start(hello, adj(poll));
        let mut c = Client::connect(s.addr);
        answered(
            &mut c,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            413,
            "exceeds max_body of 1073741824",
        );
    }
}
