//! waitress's `tests/test_functional.py`, case by case, over real loopback
//! sockets, with Rust versions of its fixture apps. Each test runs on the
//! default poller and on poll(2). Where maitred deliberately differs from
//! waitress (see DIFFERENCES.md) the test says so.

mod common;

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::*;
use maitred::{Adjustments, Body, Request, Response};

// ------------------------------------------------------------------
// Fixture apps
// ------------------------------------------------------------------

/// echo.app: the request's fields as `key=value` lines, a blank line
/// (`\r\n\r\n`), then the raw body.
fn echo(req: &mut Request) -> Response {
    let body = req.body().to_vec().unwrap();
    let mut out = String::new();
    let mut line = |k: &str, v: &str| {
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push('\n');
    };
    line("method", req.method());
    line("path_info", &req.path());
    line("script_name", req.script_name());
    line("query_string", req.query_string());
    line("content_length", &body.len().to_string());
    line("scheme", req.url_scheme());
    line("remote_addr", req.remote_addr());
    line(
        "server_port",
        &req.server_port().map(|p| p.to_string()).unwrap_or_default(),
    );
    line("server_name", req.server_name());
    line("uri", req.uri());
    line("protocol", req.protocol());
    let headers: Vec<(String, String)> = req
        .headers()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect();
    for (n, v) in headers {
        line(&format!("header.{n}"), &v);
    }
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes.extend_from_slice(&body);
    Response::new(200)
        .with_header("Content-Type", "text/plain")
        .with_body(bytes)
}

/// Parses echo's output into (fields, body).
fn parse_echo(body: &[u8]) -> (std::collections::HashMap<String, String>, Vec<u8>) {
    let split = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("echo separator");
    let head = String::from_utf8_lossy(&body[..split]).into_owned();
    let mut map = std::collections::HashMap::new();
    for l in head.lines() {
        if let Some((k, v)) = l.split_once('=') {
            map.insert(k.to_string(), v.to_string());
        }
    }
    (map, body[split + 4..].to_vec())
}

/// echo.app_body_only.
fn echo_body_only(req: &mut Request) -> Response {
    let body = req.body().to_vec().unwrap();
    Response::new(200)
        .with_header("Content-Type", "text/plain")
        .with_body(body)
}

/// badcl.app.
fn badcl(req: &mut Request) -> Response {
    let cl = match req.path().as_ref() {
        "/short_body" => "10",
        "/long_body" => "8",
        _ => "9",
    };
    Response::new(200)
        .with_header("Content-Length", cl)
        .with_header("Content-Type", "text/plain")
        .with_body("abcdefghi")
}

/// nocl.app: `/list` is a known-length body, `/list_lentwo` two chunks,
/// anything else 10-byte chunks (a generator).
fn nocl(req: &mut Request) -> Response {
    let body = req.body().to_vec().unwrap();
    let r = Response::new(200).with_header("Content-Type", "text/plain");
    match req.path().as_ref() {
        "/list" => r.with_body(body),
        "/list_lentwo" => r.with_body(Body::from_chunks(vec![
            body[..1].to_vec(),
            body[1..].to_vec(),
        ])),
        _ => r.with_body(Body::from_chunks(
            body.chunks(10).map(|c| c.to_vec()).collect::<Vec<_>>(),
        )),
    }
}

/// writecb.app: the body through the write callable.
fn writecb(req: &mut Request) -> Response {
    let path = req.path().into_owned();
    let data: &'static [u8] = match path.as_str() {
        "/long_body" => b"abcdefghij",
        "/short_body" => b"abcdefgh",
        _ => b"abcdefghi",
    };
    let mut r = Response::new(200);
    if path != "/no_content_length" {
        r.add_header("Content-Length", "9");
    }
    r.with_body(Body::from_writer(move |w| w.write_all(data)))
}

/// toolarge.app.
fn toolarge(_req: &mut Request) -> Response {
    Response::new(200)
        .with_header("Content-Type", "text/plain")
        .with_header("Content-Length", "6")
        .with_body("abcdef")
}

/// error.app (with expose_tracebacks).
fn error_app(req: &mut Request) -> Response {
    let body = req.body().to_vec().unwrap();
    let path = req.path().into_owned();
    if path == "/before_start_response" {
        panic!("wrong");
    }
    let r = Response::new(200)
        .with_header("Content-Length", body.len().to_string())
        .with_header("Content-Type", "text/plain");
    match path.as_str() {
        "/after_write_cb" => r.with_body(Body::from_writer(|w| {
            w.write_all(b"abc")?;
            panic!("wrong");
        })),
        "/in_generator" => r.with_body(Body::Chunks(Box::new(
            vec![Ok(b"abc".to_vec())]
                .into_iter()
                .chain(std::iter::once_with(|| -> std::io::Result<Vec<u8>> {
                    panic!("wrong")
                })),
        ))),
        // "after start_response": the app fails after choosing its headers.
        _ => {
            let _ = r;
            panic!("wrong");
        }
    }
}

fn jpeg_bytes() -> Vec<u8> {
    // The size of waitress's groundhog1.jpg, starting with the JPEG magic.
    let mut v = vec![0xff, 0xd8, 0xff, 0xfe];
    v.extend((0..45_444u32).map(|i| (i * 7 % 251) as u8));
    v
}

fn jpeg_file() -> std::fs::File {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&jpeg_bytes()).unwrap();
    f
}

/// filewrapper.app: file bodies (sendfile) and not-file-like readers.
fn filewrapper(req: &mut Request) -> Response {
    let path = req.path().into_owned();
    let len = jpeg_bytes().len();
    let cl = if path.ends_with("_nocl") {
        None
    } else if path.ends_with("_shortcl") {
        Some(1)
    } else if path.ends_with("_longcl") {
        Some(len + 10)
    } else {
        Some(len)
    };
    let mut r = Response::new(200).with_header("Content-Type", "image/jpeg");
    if let Some(cl) = cl {
        r.add_header("Content-Length", cl.to_string());
    }
    if path.starts_with("/filelike") {
        r.with_body(Body::from_file(jpeg_file()))
    } else {
        // Only `read`: no length known.
        r.with_body(Body::from_reader(std::io::Cursor::new(jpeg_bytes()), None))
    }
}

// ------------------------------------------------------------------
// EchoTests
// ------------------------------------------------------------------

backend_tests! {
    fn date_and_server(poll: bool) {
        let s = start(echo, adj(poll));
        let r = request(s.addr, b"GET / HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((r.version.as_str(), r.status, r.reason.as_str()), ("HTTP/1.0", 200, "OK"));
        assert_eq!(r.header("server"), Some("maitred"));
        assert!(r.header("date").is_some());
    }

    fn bad_host_header(poll: bool) {
        // A header line starting with a space (obs-fold, here with no line
        // to continue) is rejected.
        let s = start(echo, adj(poll));
        let r = request(s.addr, b"GET / HTTP/1.0\r\n Host: 0\r\n\r\n");
        assert_eq!(r.status, 400);
        assert_eq!(r.version, "HTTP/1.0");
        assert_eq!(r.header("server"), Some("maitred"));
        assert!(r.header("date").is_some());
    }

    fn send_with_body(poll: bool) {
        let s = start(echo, adj(poll));
        let r = request(s.addr, b"GET / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!((r.version.as_str(), r.status), ("HTTP/1.0", 200));
        let (f, body) = parse_echo(&r.body);
        assert_eq!(f["content_length"], "5");
        assert_eq!(body, b"hello");
    }

    fn send_empty_body(poll: bool) {
        let s = start(echo, adj(poll));
        for _ in 0..3 {
            let r = request(s.addr, b"GET / HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
            assert_eq!(r.status, 200);
            let (f, body) = parse_echo(&r.body);
            assert_eq!(f["content_length"], "0");
            assert_eq!(body, b"");
        }
    }

    fn without_crlf(poll: bool) {
        let s = start(echo, adj(poll));
        let data = b"Echo\r\nthis\r\nplease";
        let mut req = format!(
            "GET / HTTP/1.0\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            data.len()
        )
        .into_bytes();
        req.extend_from_slice(data);
        let r = request(s.addr, &req);
        assert_eq!(r.status, 200);
        let (f, body) = parse_echo(&r.body);
        assert_eq!(f["content_length"], data.len().to_string());
        assert_eq!(body, data);
    }

    fn large_body(poll: bool) {
        let s = start(echo, adj(poll));
        let data = "This string has 32 characters.\r\n".repeat(32);
        let req = format!("GET / HTTP/1.0\r\nContent-Length: {}\r\n\r\n{}", data.len(), data);
        let r = request(s.addr, req.as_bytes());
        let (f, body) = parse_echo(&r.body);
        assert_eq!(f["content_length"], "1024");
        assert_eq!(body, data.as_bytes());
    }

    fn many_clients(poll: bool) {
        let s = start(echo, adj(poll));
        let mut clients: Vec<Client> = (0..50).map(|_| Client::connect(s.addr)).collect();
        for c in &mut clients {
            c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n");
        }
        for c in &mut clients {
            assert_eq!(c.read_response().unwrap().status, 200);
        }
    }

    fn chunking_request_without_content(poll: bool) {
        let s = start(echo, adj(poll));
        let mut c = Client::connect(s.addr);
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n");
        c.send(b"0\r\n\r\n");
        let r = c.read_response().unwrap();
        assert_eq!((r.version.as_str(), r.status), ("HTTP/1.1", 200));
        let (f, body) = parse_echo(&r.body);
        assert_eq!(body, b"");
        assert_eq!(f["content_length"], "0");
        assert_eq!(f.get("header.content-length").map(String::as_str), Some("0"));
        assert!(!f.contains_key("header.transfer-encoding"));
        assert!(r.header("transfer-encoding").is_none());
    }

    fn chunking_request_with_content(poll: bool) {
        let s = start(echo, adj(poll));
        let piece = b"This string has 32 characters.\r\n";
        let mut c = Client::connect(s.addr);
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n");
        for _ in 0..12 {
            c.send(b"20\r\n");
            c.send(piece);
            c.send(b"\r\n");
        }
        c.send(b"0\r\n\r\n");
        let r = c.read_response().unwrap();
        assert_eq!(r.status, 200);
        let (f, body) = parse_echo(&r.body);
        assert_eq!(body, piece.repeat(12));
        assert_eq!(f["content_length"], "384");
        assert_eq!(f.get("header.content-length").map(String::as_str), Some("384"));
        assert!(r.header("transfer-encoding").is_none());
    }

    fn broken_chunked_encoding(poll: bool) {
        let s = start(echo, adj(poll));
        let piece = b"This string has 32 characters.\r\n";
        for (chunk, detail) in [
            (b"20\r\n".as_slice(), "Invalid chunk size", b"\r\ngarbage\r\n".as_slice()),
            (b"0x20\r\n".as_slice(), "Invalid chunk size", b"\r\n".as_slice()),
            (b"20;invalid=\r\n".as_slice(), "Invalid chunk extension", b"\r\n".as_slice()),
            (b"20\r\n".as_slice(), "Chunk not properly terminated", b"garbage".as_slice()),
        ]
        .map(|(a, d, t)| ([a, piece, t].concat(), d))
        {
            let mut c = Client::connect(s.addr);
            c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n");
            c.send(&chunk);
            let r = c.read_response().unwrap();
            assert_eq!((r.version.as_str(), r.status, r.reason.as_str()), ("HTTP/1.1", 400, "Bad Request"));
            assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
            assert_eq!(
                r.header_names(),
                vec!["connection", "content-length", "content-type", "date", "server"]
            );
            assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
            assert!(r.text().contains(detail), "{detail}: {}", r.text());
            c.assert_closed_after_send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        }
    }

    fn keepalive_http_10(poll: bool) {
        let s = start(echo, adj(poll));
        let r = request(s.addr, b"GET / HTTP/1.0\r\nContent-Length: 28\r\n\r\nDefault: Don't keep me alive");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), Some("close"));
    }

    fn keepalive_http10_explicit(poll: bool) {
        let s = start(echo, adj(poll));
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 13\r\n\r\nKeep me alive");
        assert_eq!(r.header("connection"), Some("Keep-Alive"));
        let r = c.roundtrip(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.status, 200);
    }

    fn keepalive_http_11(poll: bool) {
        let s = start(echo, adj(poll));
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 22\r\n\r\nDefault: Keep me alive");
        assert_eq!(r.status, 200);
        assert_ne!(r.header("connection"), Some("close"));
        let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
        assert_ne!(r.header("connection"), Some("close"));
        let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 19\r\n\r\nDon't keep me alive");
        assert_eq!(r.header("connection"), Some("close"));
        c.assert_closed();
    }
}

// ------------------------------------------------------------------
// PipeliningTests, ExpectContinueTests
// ------------------------------------------------------------------

backend_tests! {
    fn pipelining(poll: bool) {
        let s = start(echo_body_only, adj(poll));
        let mut all = Vec::new();
        for n in 0..25 {
            let body = format!("Response #{}\r\n", n + 1);
            let conn = if n < 24 { "keep-alive" } else { "close" };
            all.extend_from_slice(
                format!("GET / HTTP/1.0\r\nConnection: {conn}\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                    .as_bytes(),
            );
        }
        let mut c = Client::connect(s.addr);
        c.send(&all);
        for n in 0..25 {
            let r = c.read_response().unwrap();
            let body = format!("Response #{}\r\n", n + 1);
            assert_eq!(r.status, 200);
            assert_eq!(r.header("content-length"), Some(body.len().to_string().as_str()));
            assert_eq!(r.body, body.as_bytes());
            let want = if n < 24 { "Keep-Alive" } else { "close" };
            assert_eq!(r.header("connection"), Some(want));
        }
        c.assert_closed();
    }

    fn expect_continue(poll: bool) {
        let s = start(echo_body_only, adj(poll));
        let mut c = Client::connect(s.addr);
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 19\r\nExpect: 100-continue\r\n\r\nI have expectations");
        let interim = c.read_head().unwrap();
        assert_eq!((interim.version.as_str(), interim.status, interim.reason.as_str()), ("HTTP/1.1", 100, "Continue"));
        assert!(interim.headers.is_empty());
        let r = c.read_response().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some("19"));
        assert_eq!(r.body, b"I have expectations");
    }

    fn expect_continue_waits_for_the_body(poll: bool) {
        // The 100 comes after the head alone, before any body byte.
        let s = start(echo_body_only, adj(poll));
        let mut c = Client::connect(s.addr);
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-Continue\r\n\r\n");
        let interim = c.read_head().unwrap();
        assert_eq!(interim.status, 100);
        c.send(b"hello");
        let r = c.read_response().unwrap();
        assert_eq!(r.body, b"hello");
    }

    fn expect_continue_without_body_is_served(poll: bool) {
        // Difference from waitress, which never answers this request.
        let s = start(echo_body_only, adj(poll));
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!(r.status, 200);
        let r = c.roundtrip(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 200);
    }

    fn no_continue_for_a_request_over_the_body_limit(poll: bool) {
        let mut a = adj(poll);
        a.max_request_body_size = 10;
        let s = start(echo_body_only, a);
        let mut c = Client::connect(s.addr);
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n");
        let r = c.read_response().unwrap();
        assert_eq!(r.status, 413);
        c.assert_closed();
    }
}

// ------------------------------------------------------------------
// BadContentLengthTests, NoContentLengthTests, WriteCallbackTests
// ------------------------------------------------------------------

const KEEPALIVE_10: &str = "HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";

backend_tests! {
    fn badcl_short_body(poll: bool) {
        let s = start(badcl, adj(poll));
        let mut c = Client::connect(s.addr);
        c.send(format!("GET /short_body {KEEPALIVE_10}").as_bytes());
        let r = c.read_head().unwrap();
        assert_eq!((r.version.as_str(), r.status), ("HTTP/1.0", 200));
        assert_eq!(r.header("content-length"), Some("10"));
        // Nine bytes, then the server closes (too few for the length).
        assert_eq!(c.read_all(), b"abcdefghi");
    }

    fn badcl_long_body(poll: bool) {
        let s = start(badcl, adj(poll));
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(format!("GET /long_body {KEEPALIVE_10}").as_bytes());
        assert_eq!(r.header("content-length"), Some("8"));
        assert_eq!(r.body, b"abcdefgh");
        let r = c.roundtrip(format!("GET /long_body {KEEPALIVE_10}").as_bytes());
        assert_eq!(r.status, 200);
    }

    fn nocl_http10_generator(poll: bool) {
        let s = start(nocl, adj(poll));
        let mut c = Client::connect(s.addr);
        let letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let r = c.roundtrip(format!("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 52\r\n\r\n{letters}").as_bytes());
        assert_eq!((r.version.as_str(), r.status), ("HTTP/1.0", 200));
        assert!(r.header("content-length").is_none());
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.body, letters.as_bytes());
        c.assert_closed();
    }

    fn nocl_http10_list(poll: bool) {
        let s = start(nocl, adj(poll));
        let mut c = Client::connect(s.addr);
        let letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let req = format!("GET /list HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 52\r\n\r\n{letters}");
        let r = c.roundtrip(req.as_bytes());
        assert_eq!(r.header("content-length"), Some("52"));
        assert_eq!(r.header("connection"), Some("Keep-Alive"));
        assert_eq!(r.body, letters.as_bytes());
        assert_eq!(c.roundtrip(req.as_bytes()).status, 200);
    }

    fn nocl_http10_listlentwo(poll: bool) {
        let s = start(nocl, adj(poll));
        let mut c = Client::connect(s.addr);
        let letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let r = c.roundtrip(format!("GET /list_lentwo HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 52\r\n\r\n{letters}").as_bytes());
        assert!(r.header("content-length").is_none());
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.body, letters.as_bytes());
        c.assert_closed();
    }

    fn nocl_http11_generator(poll: bool) {
        let s = start(nocl, adj(poll));
        let mut c = Client::connect(s.addr);
        let letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        c.send(format!("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 52\r\n\r\n{letters}").as_bytes());
        let head = c.read_head().unwrap();
        assert_eq!((head.version.as_str(), head.status), ("HTTP/1.1", 200));
        assert_eq!(head.header("transfer-encoding"), Some("chunked"));
        // The raw chunked body, with upper-case hex sizes, as waitress sends.
        let want = b"A\r\nabcdefghij\r\nA\r\nklmnopqrst\r\nA\r\nuvwxyzABCD\r\nA\r\nEFGHIJKLMN\r\nA\r\nOPQRSTUVWX\r\n2\r\nYZ\r\n0\r\n\r\n";
        let got = c.read_exact_n(want.len()).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
        // Difference from waitress: the connection stays open after a
        // chunked response.
        assert!(head.header("connection").is_none());
        let r = c.roundtrip(b"GET /list HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz");
        assert_eq!(r.body, b"z");
    }

    fn nocl_http11_list(poll: bool) {
        let s = start(nocl, adj(poll));
        let mut c = Client::connect(s.addr);
        let req = b"GET /list HTTP/1.1\r\nHost: x\r\nContent-Length: 52\r\n\r\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let r = c.roundtrip(req);
        assert_eq!(r.header("content-length"), Some("52"));
        assert_eq!(c.roundtrip(req).status, 200);
    }

    fn nocl_http11_listlentwo(poll: bool) {
        let s = start(nocl, adj(poll));
        let mut c = Client::connect(s.addr);
        c.send(b"GET /list_lentwo HTTP/1.1\r\nHost: x\r\nContent-Length: 52\r\n\r\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
        let _ = c.read_head().unwrap();
        let want = b"1\r\na\r\n33\r\nbcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n0\r\n\r\n";
        let got = c.read_exact_n(want.len()).unwrap();
        assert_eq!(&got[..], &want[..]);
    }

    fn writecb_short_body(poll: bool) {
        let s = start(writecb, adj(poll));
        let mut c = Client::connect(s.addr);
        c.send(format!("GET /short_body {KEEPALIVE_10}").as_bytes());
        let r = c.read_head().unwrap();
        assert_eq!(r.header("content-length"), Some("9"));
        assert_eq!(c.read_all(), b"abcdefgh");
    }

    fn writecb_long_body(poll: bool) {
        let s = start(writecb, adj(poll));
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(format!("GET /long_body {KEEPALIVE_10}").as_bytes());
        assert_eq!(r.header("content-length"), Some("9"));
        assert_eq!(r.body, b"abcdefghi");
        let r = c.roundtrip(format!("GET /long_body {KEEPALIVE_10}").as_bytes());
        assert_eq!((r.version.as_str(), r.status), ("HTTP/1.0", 200));
    }

    fn writecb_equal_body(poll: bool) {
        let s = start(writecb, adj(poll));
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(format!("GET /equal_body {KEEPALIVE_10}").as_bytes());
        assert_eq!(r.header("content-length"), Some("9"));
        assert_eq!(r.body, b"abcdefghi");
        assert_eq!(c.roundtrip(format!("GET /equal_body {KEEPALIVE_10}").as_bytes()).status, 200);
    }

    fn writecb_no_content_length(poll: bool) {
        let s = start(writecb, adj(poll));
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(format!("GET /no_content_length {KEEPALIVE_10}").as_bytes());
        assert!(r.header("content-length").is_none());
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.body, b"abcdefghi");
        c.assert_closed();
    }
}

// ------------------------------------------------------------------
// TooLargeTests (max header and body 1000)
// ------------------------------------------------------------------

fn toolarge_adj(poll: bool) -> Adjustments {
    let mut a = adj(poll);
    a.max_request_header_size = 1000;
    a.max_request_body_size = 1000;
    a
}

backend_tests! {
    fn headers_too_large_http11(poll: bool) {
        let s = start(toolarge, toolarge_adj(poll));
        let mut req = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n".to_vec();
        for _ in 0..52 {
            req.extend_from_slice(b"X-Random-Header: 100\r\n");
        }
        req.extend_from_slice(b"\r\n\r\n");
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(&req);
        // Difference from waitress (HTTP/1.0 431): the request line was
        // read, so the status line carries its version.
        assert_eq!((r.version.as_str(), r.status, r.reason.as_str()), ("HTTP/1.1", 431, "Request Header Fields Too Large"));
        assert_eq!(r.header("connection"), Some("close"));
        c.assert_closed();
    }

    fn wrong_cl_http10(poll: bool) {
        let s = start(toolarge, toolarge_adj(poll));
        let mut c = Client::connect(s.addr);
        let mut req = b"GET / HTTP/1.0\r\nContent-Length: 5\r\n\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'a', 1050));
        c.send(&req);
        let r = c.read_response().unwrap();
        assert_eq!((r.version.as_str(), r.status), ("HTTP/1.0", 200));
        assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
        c.assert_closed();
    }

    fn wrong_cl_http10_keepalive(poll: bool) {
        let s = start(toolarge, toolarge_adj(poll));
        let mut c = Client::connect(s.addr);
        let mut req = b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 5\r\n\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'a', 1050));
        c.send(&req);
        let r = c.read_response().unwrap();
        assert_eq!((r.version.as_str(), r.status), ("HTTP/1.0", 200));
        // The rest is taken as the next request's head: too large.
        let r = c.read_response().unwrap();
        assert_eq!(r.status, 431);
        assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
        c.assert_closed();
    }

    fn no_cl_http10(poll: bool) {
        let s = start(toolarge, toolarge_adj(poll));
        let mut c = Client::connect(s.addr);
        let mut req = b"GET / HTTP/1.0\r\n\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'a', 1050));
        c.send(&req);
        assert_eq!(c.read_response().unwrap().status, 200);
        c.assert_closed();
    }

    fn no_cl_http10_keepalive(poll: bool) {
        let s = start(toolarge, toolarge_adj(poll));
        let mut c = Client::connect(s.addr);
        let mut req = b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'a', 1050));
        c.send(&req);
        assert_eq!(c.read_response().unwrap().status, 200);
        assert_eq!(c.read_response().unwrap().status, 431);
        c.assert_closed();
    }

    fn wrong_cl_http11(poll: bool) {
        let s = start(toolarge, toolarge_adj(poll));
        let mut c = Client::connect(s.addr);
        let mut req = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'a', 1050));
        c.send(&req);
        assert_eq!(c.read_response().unwrap().status, 200);
        assert_eq!(c.read_response().unwrap().status, 431);
        c.assert_closed();
    }

    fn wrong_cl_http11_connclose(poll: bool) {
        let s = start(toolarge, toolarge_adj(poll));
        let mut c = Client::connect(s.addr);
        let mut req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'a', 1050));
        c.send(&req);
        assert_eq!(c.read_response().unwrap().status, 200);
        c.assert_closed();
    }

    fn no_cl_http11(poll: bool) {
        let s = start(toolarge, toolarge_adj(poll));
        let mut c = Client::connect(s.addr);
        let mut req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'a', 1050));
        c.send(&req);
        assert_eq!(c.read_response().unwrap().status, 200);
        assert_eq!(c.read_response().unwrap().status, 431);
        c.assert_closed();
    }

    fn request_body_too_large_with_wrong_cl(poll: bool) {
        let s = start(toolarge, toolarge_adj(poll));
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
        assert_eq!((r.status, r.reason.as_str()), (413, "Request Entity Too Large"));
        assert!(r.text().contains("exceeds max_body of 1000"));
        c.assert_closed();
    }

    fn request_body_too_large_chunked_encoding(poll: bool) {
        let s = start(toolarge, toolarge_adj(poll));
        let mut c = Client::connect(s.addr);
        let mut req = b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..29 {
            req.extend_from_slice(b"20\r\nThis string has 32 characters.\r\n\r\n");
        }
        c.send(&req);
        let r = c.read_response().unwrap();
        assert_eq!((r.version.as_str(), r.status), ("HTTP/1.1", 413));
        assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        c.assert_closed();
    }
}

// ------------------------------------------------------------------
// InternalServerErrorTests (expose_tracebacks)
// ------------------------------------------------------------------

fn error_adj(poll: bool) -> Adjustments {
    adj(poll).expose_tracebacks(true)
}

backend_tests! {
    fn panic_before_response(poll: bool) {
        let s = start(error_app, error_adj(poll));
        for (req, version) in [
            ("GET /before_start_response HTTP/1.0\r\n\r\n", "HTTP/1.0"),
            ("GET /before_start_response HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1"),
            ("GET /before_start_response HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "HTTP/1.1"),
            ("GET /after_start_response HTTP/1.0\r\n\r\n", "HTTP/1.0"),
            ("GET /after_start_response HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1"),
        ] {
            let mut c = Client::connect(s.addr);
            let r = c.roundtrip(req.as_bytes());
            assert_eq!((r.version.as_str(), r.status), (version, 500), "{req}");
            assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
            assert!(r.text().starts_with("Internal Server Error"), "{}", r.text());
            // expose_tracebacks: the panic's message and location.
            assert!(r.text().contains("panicked at tests/functional.rs:"), "{}", r.text());
            assert!(r.text().contains("wrong"));
            assert_eq!(
                r.header_names(),
                vec!["connection", "content-length", "content-type", "date", "server"]
            );
            assert_eq!(r.header("connection"), Some("close"));
            c.assert_closed();
        }
    }

    fn panic_after_write_cb(poll: bool) {
        let s = start(error_app, error_adj(poll));
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(b"GET /after_write_cb HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((r.version.as_str(), r.status), ("HTTP/1.1", 200));
        assert_eq!(r.body, b"");
        c.assert_closed();
    }

    fn panic_in_generator(poll: bool) {
        let s = start(error_app, error_adj(poll));
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(b"GET /in_generator HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"");
        c.assert_closed();
    }

    fn panic_body_is_generic_without_expose_tracebacks(poll: bool) {
        let s = start(error_app, adj(poll));
        let r = request(s.addr, b"GET /before_start_response HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 500);
        assert_eq!(
            r.text(),
            "Internal Server Error\r\n\r\nThe server encountered an unexpected internal server error\r\n\r\n(generated by maitred)"
        );
    }
}

// ------------------------------------------------------------------
// FileWrapperTests
// ------------------------------------------------------------------

backend_tests! {
    fn filewrapper_http11_keepalive_variants(poll: bool) {
        let s = start(filewrapper, adj(poll));
        let len = jpeg_bytes().len();
        let mut c = Client::connect(s.addr);
        for (path, want_cl, want_len) in [
            ("/filelike", len, len),
            ("/filelike_nocl", len, len),
            ("/filelike_shortcl", 1, 1),
            ("/filelike_longcl", len, len),
            ("/notfilelike", len, len),
            ("/notfilelike_shortcl", 1, 1),
        ] {
            for _ in 0..2 {
                let r = c.roundtrip(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
                assert_eq!((r.version.as_str(), r.status), ("HTTP/1.1", 200), "{path}");
                assert_eq!(r.header("content-length"), Some(want_cl.to_string().as_str()), "{path}");
                assert_eq!(r.body.len(), want_len, "{path}");
                assert_eq!(r.header("content-type"), Some("image/jpeg"));
                assert_eq!(&r.body[..1], b"\xff", "{path}");
                if want_len == len {
                    assert!(r.body == jpeg_bytes(), "{path}: body differs");
                }
            }
        }
    }

    fn filewrapper_notfilelike_nocl_http11(poll: bool) {
        // No length: chunked (kept alive: a difference from waitress).
        let s = start(filewrapper, adj(poll));
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(b"GET /notfilelike_nocl HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert!(r.body == jpeg_bytes(), "body differs");
    }

    fn filewrapper_notfilelike_longcl_http11(poll: bool) {
        let s = start(filewrapper, adj(poll));
        let mut c = Client::connect(s.addr);
        c.send(b"GET /notfilelike_longcl HTTP/1.1\r\nHost: x\r\n\r\n");
        let head = c.read_head().unwrap();
        assert_eq!(head.header("content-length"), Some((jpeg_bytes().len() + 10).to_string().as_str()));
        // Too few bytes for the declared length: the connection closes.
        let body = c.read_all();
        assert!(body == jpeg_bytes(), "body of {} bytes differs", body.len());
    }

    fn filewrapper_http10(poll: bool) {
        let s = start(filewrapper, adj(poll));
        let len = jpeg_bytes().len();
        for path in ["/filelike", "/filelike_nocl", "/notfilelike"] {
            let mut c = Client::connect(s.addr);
            let r = c.roundtrip(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes());
            assert_eq!((r.version.as_str(), r.status), ("HTTP/1.0", 200));
            assert_eq!(r.header("content-length"), Some(len.to_string().as_str()));
            assert!(r.body == jpeg_bytes(), "{path}: body differs");
            c.assert_closed();
        }
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(b"GET /notfilelike_nocl HTTP/1.0\r\n\r\n");
        assert!(r.header("content-length").is_none());
        assert!(r.body == jpeg_bytes(), "body differs");
        c.assert_closed();
    }
}

// ------------------------------------------------------------------
// SleepyThreadTests: a slow request does not hold up another connection.
// ------------------------------------------------------------------

backend_tests! {
    fn sleepy_request_does_not_block_others(poll: bool) {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let g = gate.clone();
        let app = move |req: &mut Request| {
            if req.path() == "/sleepy" {
                let (m, cv) = &*g;
                let mut open = m.lock().unwrap();
                while !*open {
                    let (o, t) = cv.wait_timeout(open, Duration::from_secs(10)).unwrap();
                    open = o;
                    if t.timed_out() {
                        break;
                    }
                }
                Response::text("sleepy returned")
            } else {
                Response::text("notsleepy returned")
            }
        };
        let s = start(app, adj(poll));
        let mut slow = Client::connect(s.addr);
        slow.send(b"GET /sleepy HTTP/1.1\r\nHost: x\r\n\r\n");
        // The fast request is answered while the slow one is still running.
        let r = request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.body, b"notsleepy returned");
        {
            let (m, cv) = &*gate;
            *m.lock().unwrap() = true;
            cv.notify_all();
        }
        assert_eq!(slow.read_response().unwrap().body, b"sleepy returned");
    }
}
