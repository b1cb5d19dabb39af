//! The `http` feature over real sockets: an application written as
//! `Fn(http::Request<RequestBody>) -> http::Response<B>` served by
//! `HttpApp` (the `http_app` example's, and handlers made here), the parts
//! of a request as `http` sees them (method, URI, version, headers, body,
//! the server's extras), responses of every body type, status codes and
//! headers, and what happens to a request or a response that `http`
//! cannot hold (an answer and a log line, never a panic).

#![cfg(feature = "http")]

mod common;

/// The `http_app` example's application, served here as the example serves
/// it.
#[path = "../examples/http_app.rs"]
#[allow(dead_code)]
mod http_app_example;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use http::{header, HeaderValue, StatusCode};
use maitred::http_interop::{ConnectionInfo, ReasonPhrase};
use maitred::{Adjustments, Body, HttpApp, RequestBody};

type HttpRequest = http::Request<RequestBody>;

/// Serves `handler` with `adj`.
fn serve<F, B>(handler: F, adj: Adjustments) -> TestServer
where
    F: Fn(HttpRequest) -> http::Response<B> + Send + Sync + 'static,
    B: Into<Body>,
{
    start(HttpApp::new(handler), adj)
}

/// A handler that describes what it received, one `key: value` line each
/// (header values as hex, so any byte shows).
fn describe(req: HttpRequest) -> http::Response<String> {
    let (parts, mut body) = req.into_parts();
    let mut out = format!(
        "method: {}\nuri: {}\npath: {}\nquery: {}\nscheme: {}\nauthority: {}\nversion: {:?}\n",
        parts.method,
        parts.uri,
        parts.uri.path(),
        parts.uri.query().unwrap_or("-"),
        parts.uri.scheme_str().unwrap_or("-"),
        parts.uri.authority().map_or("-", |a| a.as_str()),
        parts.version,
    );
    for (name, value) in &parts.headers {
        let hex: String = value
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        out.push_str(&format!("h {name}: {hex}\n"));
    }
    if let Some(c) = parts.extensions.get::<ConnectionInfo>() {
        out.push_str(&format!(
            "remote: {} {:?}\nserver: {} {:?}\nurl_scheme: {}\nscript_name: {}\nsoftware: {}\n",
            c.remote_addr,
            c.remote_port,
            c.server_name,
            c.server_port,
            c.url_scheme,
            c.script_name,
            c.server_software
        ));
    }
    let mut b = String::new();
    body.read_to_string(&mut b).expect("a UTF-8 body");
    out.push_str(&format!("body: {b}\n"));
    http::Response::new(out)
}

/// The value of `key: ` in a [`describe`] answer.
fn line<'a>(text: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}: ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {key:?} in {text}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

backend_tests! {
    fn the_example_serves_hello_echo_info_and_404(poll: bool) {
        let s = start(HttpApp::new(http_app_example::handler), adj(poll));
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "Hello from an http::Request handler!\n");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.header("server"), Some("maitred"));

        let r = c.roundtrip(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-thing\r\nContent-Length: 11\r\n\r\nhello world",
        );
        assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
        assert_eq!(r.header("content-type"), Some("application/x-thing"));
        assert_eq!(r.header("content-length"), Some("11"));

        let r = c.roundtrip(b"GET /info?a=1 HTTP/1.1\r\nHost: x\r\nX-Thing: yes\r\n\r\n");
        let text = r.text();
        assert!(text.starts_with("GET /info?a=1 HTTP/1.1\n"), "{text}");
        assert!(text.contains("host: x\n") && text.contains("x-thing: yes\n"), "{text}");
        assert!(text.contains("client 127.0.0.1 port Some("), "{text}");
        assert!(text.contains(&format!("port Some({}), scheme http", s.addr.port())), "{text}");

        let r = c.roundtrip(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (404, "not found\n"));

        // HEAD: the same head, no body.
        c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.read_response_to(true).expect("a response");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some("37"));
        let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200);
        c.assert_closed();
    }

    fn method_uri_version_headers_and_body_arrive_as_sent(poll: bool) {
        let s = serve(describe, adj(poll));
        let r = request(
            s.addr,
            b"PURGE /a/b%20c?x=1&y HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 4\r\n\r\nbody",
        );
        let t = r.text();
        assert_eq!(r.status, 200);
        assert_eq!(line(&t, "method"), "PURGE");
        assert_eq!(line(&t, "uri"), "/a/b%20c?x=1&y");
        assert_eq!(line(&t, "path"), "/a/b%20c");
        assert_eq!(line(&t, "query"), "x=1&y");
        assert_eq!(line(&t, "authority"), "-");
        assert_eq!(line(&t, "version"), "HTTP/1.1");
        // Names lower-cased; a repeated field stays combined, as the server
        // delivers it.
        assert_eq!(line(&t, "h host"), hex(b"example.com"));
        assert_eq!(line(&t, "h x-a"), hex(b"1, 2"));
        assert_eq!(t.matches("h x-a:").count(), 1, "{t}");
        assert_eq!(line(&t, "h content-length"), hex(b"4"));
        assert_eq!(line(&t, "body"), "body");
        assert!(line(&t, "remote").starts_with("127.0.0.1 Some("), "{t}");
        assert_eq!(line(&t, "server"), format!("waitress.invalid Some({})", s.addr.port()));
        assert_eq!(line(&t, "url_scheme"), "http");
        assert_eq!(line(&t, "script_name"), "");
        assert_eq!(line(&t, "software"), "maitred");

        // HTTP/1.0, absolute-form.
        let r = request(
            s.addr,
            b"GET http://example.com:8080/p?q=1#frag HTTP/1.0\r\nHost: example.com:8080\r\n\r\n",
        );
        let t = r.text();
        assert_eq!(line(&t, "version"), "HTTP/1.0");
        assert_eq!(line(&t, "scheme"), "http");
        assert_eq!(line(&t, "authority"), "example.com:8080");
        assert_eq!(line(&t, "path"), "/p");
        assert_eq!(line(&t, "query"), "q=1");

        // The asterisk form.
        let r = request(s.addr, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(line(&r.text(), "uri"), "*");
    }
}

/// Every byte the parser accepts in a field value (HTAB, SP, visible
/// ASCII, obs-text) is one `http::HeaderValue` holds: they arrive as sent.
/// The bytes `http` refuses (other controls, DEL) never get that far: the
/// parser answers 400 first. So no header value can fail the conversion
/// over the wire; the unit tests drive that error path directly.
#[test]
fn every_value_byte_the_parser_accepts_arrives_and_the_others_are_refused_first() {
    let calls = Arc::new(AtomicUsize::new(0));
    let k = calls.clone();
    let s = serve(
        move |req| {
            k.fetch_add(1, Ordering::SeqCst);
            describe(req)
        },
        adj(false),
    );
    let mut value: Vec<u8> = vec![b'v', b'\t', b' '];
    value.extend(0x21..=0x7e);
    value.extend(0x80..=0xff);
    value.push(b'v');
    let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-All: ".to_vec();
    raw.extend_from_slice(&value);
    raw.extend_from_slice(b"\r\n\r\n");
    let r = request(s.addr, &raw);
    assert_eq!(r.status, 200);
    assert_eq!(line(&r.text(), "h x-all"), hex(&value));
    for bad in [0x00u8, 0x01, 0x0b, 0x1f, 0x7f] {
        let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a".to_vec();
        raw.push(bad);
        raw.extend_from_slice(b"b\r\n\r\n");
        let r = request(s.addr, &raw);
        assert_eq!(r.status, 400, "byte {bad:#04x}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn response_bodies_of_every_type() {
    fn get<F, B>(handler: F) -> Resp
    where
        F: Fn(HttpRequest) -> http::Response<B> + Send + Sync + 'static,
        B: Into<Body>,
    {
        let s = serve(handler, adj(false));
        request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    }
    let r = get(|_| http::Response::new(String::from("a String")));
    assert_eq!(
        (r.text().as_str(), r.header("content-length")),
        ("a String", Some("8"))
    );
    let r = get(|_| http::Response::new(vec![0u8, 1, 2]));
    assert_eq!(
        (r.body.as_slice(), r.header("content-length")),
        (&[0u8, 1, 2][..], Some("3"))
    );
    let r = get(|_| http::Response::new("a &'static str"));
    assert_eq!(r.text(), "a &'static str");
    let r = get(|_| http::Response::new(&b"static bytes"[..]));
    assert_eq!(r.text(), "static bytes");
    let r = get(|_| http::Response::new(()));
    assert_eq!((r.status, r.header("content-length")), (200, Some("0")));
    assert!(r.body.is_empty());
    let r = get(|_| http::Response::new(Body::from_chunks(["one ", "two"])));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.text(), "one two");
    // A request body handed straight back, read as the client takes it.
    let s = serve(
        |req: HttpRequest| {
            let len = req.body().len();
            http::Response::new(Body::from_reader(req.into_body(), Some(len)))
        },
        adj(false),
    );
    let r = request(
        s.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    );
    assert_eq!(
        (r.text().as_str(), r.header("content-length")),
        ("abcde", Some("5"))
    );
}

#[test]
fn status_codes_reasons_and_headers() {
    let s = serve(
        |req: HttpRequest| {
            let mut b = http::Response::builder();
            match req.uri().path() {
                "/teapot" => {
                    b = b
                        .status(StatusCode::IM_A_TEAPOT)
                        .extension(ReasonPhrase("Short And Stout".into()));
                }
                "/created" => {
                    b = b
                        .status(StatusCode::CREATED)
                        .header(header::LOCATION, "/things/1")
                        .header(header::SET_COOKIE, "a=1")
                        .header(header::SET_COOKIE, "b=2")
                        .header("X-Late", "z");
                }
                "/no-content" => b = b.status(StatusCode::NO_CONTENT),
                "/server" => b = b.header(header::SERVER, "mine"),
                "/hop" => b = b.header(header::CONNECTION, "close"),
                _ => b = b.status(StatusCode::from_u16(599).expect("a valid code")),
            }
            b.body("x").unwrap_or_default()
        },
        adj(false),
    );
    let mut c = Client::connect(s.addr);
    let r = c.roundtrip(b"GET /teapot HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r.status, r.reason.as_str()), (418, "Short And Stout"));
    let r = c.roundtrip(b"GET /created HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r.status, r.reason.as_str()), (201, "Created"));
    assert_eq!(r.header("location"), Some("/things/1"));
    assert_eq!(r.header_all("set-cookie"), ["a=1", "b=2"]);
    let head = String::from_utf8_lossy(&r.raw_head).into_owned();
    // `http`'s names are lower-case; its map keeps a name's values together.
    assert!(
        head.contains("\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n"),
        "{head}"
    );
    assert!(head.find("location:") < head.find("x-late:"), "{head}");
    let r = c.roundtrip(b"GET /no-content HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("content-length"), None);
    let r = c.roundtrip(b"GET /server HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.header("server"), Some("mine"));
    assert_eq!(r.header("via"), Some("maitred"));
    let r = c.roundtrip(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r.status, r.reason.as_str()), (599, "Unknown"));
    // The server's response rules hold for an http application too: a
    // hop-by-hop header is the writer's 500.
    let r = c.roundtrip(b"GET /hop HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 500);
}

/// A handler that must not run, and how often it did.
fn uncalled() -> (
    impl Fn(HttpRequest) -> http::Response<&'static str> + Send + Sync,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let k = calls.clone();
    (
        move |_req: HttpRequest| {
            k.fetch_add(1, Ordering::SeqCst);
            http::Response::new("called")
        },
        calls,
    )
}

#[test]
fn a_target_http_refuses_is_a_400_that_says_why_and_the_connection_lives_on() {
    let _ = logs();
    let (handler, calls) = uncalled();
    let s = serve(handler, adj(false));
    let mut c = Client::connect(s.addr);
    let r = c.roundtrip(b"GET /marker-lt/a<b> HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(
        r.text(),
        "Bad Request\r\n\r\nthe request-target \"/marker-lt/a<b>\" is not one http::Uri accepts (invalid uri character)\r\n\r\n(generated by maitred)"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let r = c.roundtrip(b"GET /fine HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r.status, r.text().as_str()), (200, "called"));
    wait_until(Duration::from_secs(10), || {
        !logged("/marker-lt/a<b>").is_empty()
    });
    let lines = logged("/marker-lt/a<b>");
    assert!(
        lines[0].starts_with(
            "INFO:maitred:Request not convertible to http types, answered 400: GET /marker-lt/a<b>"
        ),
        "{lines:?}"
    );
}

#[test]
fn what_is_too_large_for_http_gets_414_or_431() {
    let (handler, calls) = uncalled();
    let mut a = adj(false);
    a.max_request_line_size = 200_000;
    a.max_header_field_size = 200_000;
    a.max_header_fields = 40_000;
    a.max_request_header_size = 2_000_000;
    let s = serve(handler, a);

    let mut raw = b"GET /".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 70_000));
    raw.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = request(s.addr, &raw);
    assert_eq!((r.status, r.reason.as_str()), (414, "URI Too Long"));
    assert!(
        r.text()
            .contains("... (70001 bytes) is not one http::Uri accepts (uri too long)"),
        "{}",
        r.text()
    );

    let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'n', 70_000));
    raw.extend_from_slice(b": v\r\n\r\n");
    let r = request(s.addr, &raw);
    assert_eq!(r.status, 431);
    assert!(
        r.text().contains("(it is over 65535 bytes)"),
        "{}",
        r.text()
    );

    let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..30_000 {
        raw.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    let r = request(s.addr, &raw);
    assert_eq!(r.status, 431);
    assert!(
        r.text()
            .contains("the request has 30001 header fields, more than an http::HeaderMap holds"),
        "{}",
        r.text()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // Within http's limits, the same server calls the handler.
    assert_eq!(
        request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status,
        200
    );
}

#[test]
fn a_response_that_cannot_be_converted_is_a_500_and_a_log_line() {
    let _ = logs();
    let s = serve(
        |_req: HttpRequest| {
            let mut r = http::Response::new("never sent");
            r.headers_mut().insert(
                "x-latin1",
                HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a valid HeaderValue"),
            );
            r
        },
        adj(false),
    );
    let r = request(s.addr, b"GET /marker-bad-value HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 500);
    assert_eq!(
        r.text(),
        "Internal Server Error\r\n\r\nThe server encountered an unexpected internal server error\r\n\r\n(generated by maitred)"
    );
    wait_until(Duration::from_secs(10), || {
        !logged("/marker-bad-value").is_empty()
    });
    let lines = logged("/marker-bad-value");
    assert_eq!(
        lines[0],
        "ERROR:maitred:Exception while serving /marker-bad-value: the application's http::Response could not be converted: the value \"caf\\xe9\" of header \"x-latin1\" is not UTF-8, and a response's header values are text"
    );
}

#[test]
fn the_extras_follow_url_prefix_and_trusted_proxies() {
    let mut a = adj(false);
    a.set("url_prefix", "/app").expect("a prefix");
    a.set("trusted_proxy", "127.0.0.1").expect("a proxy");
    a.set("trusted_proxy_headers", "x-forwarded-for x-forwarded-proto")
        .expect("headers");
    let s = serve(describe, a);
    let r = request(
        s.addr,
        b"GET /app/x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\n\r\n",
    );
    let t = r.text();
    assert_eq!(r.status, 200, "{t}");
    // The URI is the target as sent; script_name says where the app is
    // mounted.
    assert_eq!(line(&t, "path"), "/app/x");
    assert_eq!(line(&t, "script_name"), "/app");
    assert_eq!(line(&t, "url_scheme"), "https");
    assert!(line(&t, "remote").starts_with("192.0.2.7 "), "{t}");
}

#[test]
fn connection_info_sees_the_client_go() {
    let mut a = adj(false);
    a.channel_request_lookahead = 1;
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let (started_tx, started_rx) = mpsc::channel();
    let started_tx = Mutex::new(started_tx);
    let s = serve(
        move |req: HttpRequest| {
            let info = req
                .extensions()
                .get::<ConnectionInfo>()
                .cloned()
                .unwrap_or_default();
            let _ = started_tx.lock().map(|t| t.send(()));
            let start = Instant::now();
            while !info.client_disconnected() && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = tx.lock().map(|t| t.send(info.client_disconnected()));
            http::Response::new("late")
        },
        a,
    );
    let mut stream = connect(s.addr);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    started_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the handler started");
    stream.shutdown(Shutdown::Both).expect("shutdown");
    drop(stream);
    assert!(rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the handler's verdict"));
}

#[test]
fn extras_kept_after_the_request_do_not_hold_the_connection_open() {
    let kept: Arc<Mutex<Vec<ConnectionInfo>>> = Arc::default();
    let k = kept.clone();
    let s = serve(
        move |req: HttpRequest| {
            if let (Some(info), Ok(mut k)) = (req.extensions().get::<ConnectionInfo>(), k.lock()) {
                k.push(info.clone());
            }
            http::Response::new("kept")
        },
        adj(false),
    );
    let mut c = Client::connect(s.addr);
    let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.text(), "kept");
    c.assert_closed();
    // The server let go of the connection: the kept extras say so.
    wait_until(Duration::from_secs(10), || {
        kept.lock()
            .map(|k| k.first().is_some_and(|i| i.client_disconnected()))
            .unwrap_or(false)
    });
}

/// An `http` application switches protocols with a `Switch` (any
/// protocol) and does the WebSocket handshake on `http` types (with the
/// `websocket` feature too), over real sockets.
#[cfg(feature = "websocket")]
#[test]
fn an_http_application_switches_protocols_and_speaks_websocket() {
    use maitred::http_interop::Switch;
    use maitred::websocket;

    let s = serve(
        |req: HttpRequest| -> http::Response<Body> {
            match req.uri().path() {
                "/ws" => match websocket::handshake_http(&req) {
                    Ok(hs) => hs.accept_http(|mut ws| {
                        while let Ok(Some(msg)) = ws.read() {
                            if ws.send(&msg).is_err() {
                                break;
                            }
                        }
                    }),
                    Err(refusal) => refusal.into_http_response(),
                },
                "/raw" => {
                    let mut r = Switch::new("hello", |mut stream| {
                        let _ = stream.write_all(b"hello, switched\n");
                    })
                    .into_response()
                    .map(|()| Body::Empty);
                    r.headers_mut()
                        .insert("x-switched", HeaderValue::from_static("yes"));
                    r
                }
                _ => http::Response::new(Body::from("plain")),
            }
        },
        adj(false),
    );
    assert!(!websocket::is_websocket_request_http(&http::Request::new(
        ()
    )));

    // WebSocket: the handshake, then an echo.
    let url = format!("ws://{}/ws", s.addr);
    let (mut ws, resp) = tungstenite::client::client(url.as_str(), connect(s.addr))
        .unwrap_or_else(|e| panic!("handshake: {e}"));
    assert_eq!(resp.status(), 101);
    ws.send(tungstenite::Message::text("over http types"))
        .unwrap();
    match ws.read().unwrap() {
        tungstenite::Message::Text(t) => assert_eq!(t.as_str(), "over http types"),
        other => panic!("expected text, got {other:?}"),
    }
    ws.close(None).unwrap();

    // Another version: the 426 names what to upgrade to.
    let r = request(
        s.addr,
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    );
    assert_eq!(r.status, 426);
    assert_eq!(r.header("upgrade"), Some("websocket"));
    assert_eq!(r.header("sec-websocket-version"), Some("13"));

    // Any protocol, with the application's own headers on the 101.
    let mut c = connect(s.addr);
    c.write_all(b"GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: hello\r\nConnection: upgrade\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nx-switched: yes\r\n"), "{text}");
    assert!(text.contains("\r\nUpgrade: hello\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nhello, switched\n"), "{text}");

    // A request that proposed no switch gets the 500 of a 101 it did not
    // ask for, as from any application.
    let r = request(s.addr, b"GET /raw HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 500);
}
