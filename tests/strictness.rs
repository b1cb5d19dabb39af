//! Issue 11 ("strictness, round two") on the wire: each rule seen from a
//! client on a loopback socket, answered with the error the parser chose
//! and a closed connection.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use maitred::{Request, Response};

fn hello(_req: &mut Request) -> Response {
    Response::text("Hello, World!")
}

/// Sends `raw` on a new connection (and nothing else, leaving it open for
/// writing), reads the answer, checks it is `status` with `detail` in its
/// body and that the server then closes the connection. Returns how long
/// the answer took.
#[track_caller]
fn answered(addr: SocketAddr, raw: &[u8], status: u16, detail: &str) -> Duration {
    let mut c = Client::connect(addr);
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

/// `prefix` followed by `n` bytes of `fill`.
fn padded(prefix: &[u8], fill: u8, n: usize) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend(std::iter::repeat_n(fill, n));
    v
}

const CHUNKED: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

/// Each rule: what it is, the bytes sent (never more than the server needs
/// to decide: nothing after a bare LF, only the first 9,000 bytes of a
/// 100 KB element, only the first 110 of 10,000 field lines), the status
/// and a piece of the detail.
fn cases() -> Vec<(&'static str, Vec<u8>, u16, &'static str)> {
    vec![
        (
            "bare CR, decided at the next byte",
            b"GET / HTTP/1.1\r\nHost: x\rX".to_vec(),
            400,
            "Bare CR or LF found in header line \"Host: x\r\"",
        ),
        (
            "bare LF on the request line",
            b"GET / HTTP/1.1\n".to_vec(),
            400,
            "Bare CR or LF found in HTTP message",
        ),
        (
            "empty line right after a chunked head",
            [CHUNKED, b"\r\n5\r\nhello\r\n0\r\n\r\n"].concat(),
            400,
            "Invalid chunk size",
        ),
        (
            "empty line between a chunk and the next size",
            [CHUNKED, b"5\r\nhello\r\n\r\n0\r\n\r\n"].concat(),
            400,
            "Invalid chunk size",
        ),
        (
            "100 KB method",
            padded(b"", b'M', 9000),
            400,
            "exceeds max_request_line_size of 8192",
        ),
        (
            "100 KB target",
            padded(b"GET /", b't', 9000),
            414,
            "exceeds max_request_line_size of 8192",
        ),
        (
            "100 KB field name",
            padded(b"GET / HTTP/1.1\r\nHost: x\r\n", b'n', 9000),
            431,
            "exceeds max_header_field_size of 8192",
        ),
        (
            "100 KB field value",
            padded(b"GET / HTTP/1.1\r\nHost: x\r\nX: ", b'v', 9000),
            431,
            "exceeds max_header_field_size of 8192",
        ),
        (
            "10,000 tiny field lines",
            [
                &b"GET / HTTP/1.1\r\nHost: x\r\n"[..],
                &b"a:\r\n".repeat(110),
            ]
            .concat(),
            431,
            "exceeds max_header_fields of 100",
        ),
        (
            "empty Host",
            b"GET / HTTP/1.1\r\nHost:\r\n\r\n".to_vec(),
            400,
            "Host header is invalid",
        ),
        (
            "empty Host in HTTP/1.0",
            b"GET / HTTP/1.0\r\nHost: \r\n\r\n".to_vec(),
            400,
            "Host header is invalid",
        ),
        (
            "empty Host with an absolute-form target",
            b"GET http://example.com/ HTTP/1.1\r\nHost:\r\n\r\n".to_vec(),
            400,
            "Host header is invalid",
        ),
        (
            "a second Content-Type",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n".to_vec(),
            400,
            "Duplicate header: Content-Type",
        ),
        (
            "Content-Length too large to represent",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"
                .to_vec(),
            413,
            "exceeds max_body of 1073741824",
        ),
    ]
}

backend_tests! {
    fn bare_lf_is_answered_without_waiting_for_the_rest(poll: bool) {
        // Nothing after the bare LF: no CRLF, no end of head. The answer
        // must not wait for channel_timeout (set far above the read
        // timeout here).
        let s = start(hello, adj(poll).channel_timeout(3600));
        let took = answered(
            s.addr,
            b"GET / HTTP/1.1\r\nHost: x\r\nFoo: a\n bar",
            400,
            "Bare CR or LF found in header line \"Foo: a\n\"",
        );
        assert!(took < READ_TIMEOUT, "{took:?}");
    }

    fn each_rule_is_answered_with_its_error_and_a_close(poll: bool) {
        let s = start(hello, adj(poll).channel_timeout(3600));
        for (what, raw, status, detail) in cases() {
            eprintln!("case: {what}");
            answered(s.addr, &raw, status, detail);
        }
        // The chunked body without the empty lines is fine.
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(&[CHUNKED, b"5\r\nhello\r\n0\r\n\r\n"].concat());
        assert_eq!(r.status, 200);
    }
}
