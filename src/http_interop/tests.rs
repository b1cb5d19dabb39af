//! Unit tests of the conversions between the server's types and the
//! `http` crate's.

use super::*;
use std::error::Error as _;
use std::io::Read;
use std::sync::Arc;

fn parts(method: &str, target: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    Request::for_test(method, target, headers, b"")
        .to_http_parts()
        .expect("convertible")
}

#[test]
fn head_parts() {
    let p = parts(
        "PURGE",
        "/a/b%20c?x=1&y",
        &[("X-Custom", "one"), ("Host", "example.com")],
    );
    assert_eq!(p.method.as_str(), "PURGE");
    assert_eq!(p.uri.path(), "/a/b%20c");
    assert_eq!(p.uri.query(), Some("x=1&y"));
    assert_eq!(p.uri.authority(), None);
    assert_eq!(p.version, http::Version::HTTP_11);
    assert_eq!(p.headers["x-custom"], "one");
    assert_eq!(p.headers[http::header::HOST], "example.com");
    let info = p.extensions.get::<ConnectionInfo>().expect("extras");
    assert_eq!(info.remote_addr, "127.0.0.1");
    assert_eq!(info.remote_port, Some(50000));
    assert_eq!(info.server_name, "waitress.invalid");
    assert_eq!(info.server_port, Some(8080));
    assert_eq!(info.url_scheme, "http");
    assert_eq!(info.script_name, "");
    assert_eq!(info.server_software, "maitred");
    assert!(!info.client_disconnected());
}

#[test]
fn target_forms() {
    let p = parts(
        "GET",
        "http://example.com:8080/p?q",
        &[("Host", "example.com:8080")],
    );
    assert_eq!(p.uri.scheme_str(), Some("http"));
    assert_eq!(p.uri.host(), Some("example.com"));
    assert_eq!(p.uri.port_u16(), Some(8080));
    assert_eq!(p.uri.path(), "/p");
    assert_eq!(p.uri.query(), Some("q"));
    assert_eq!(parts("OPTIONS", "*", &[]).uri, "*");
    // `http` keeps no fragment.
    let p = parts("GET", "/a?b#frag", &[]);
    assert_eq!(p.uri.path(), "/a");
    assert_eq!(p.uri.query(), Some("b"));
    // `"`, `{`, `}`, `|`, `\`, `^` are accepted by both.
    assert_eq!(parts("GET", "/{\"a\"}|\\^", &[]).uri.path(), "/{\"a\"}|\\^");
}

#[test]
fn repeated_fields_stay_combined_and_values_stay_bytes() {
    let p = parts(
        "GET",
        "/",
        &[
            ("Accept", "a/b"),
            ("accept", "c/d"),
            ("X-Latin", "caf\u{e9}"),
        ],
    );
    let all: Vec<_> = p.headers.get_all("accept").iter().collect();
    assert_eq!(all, ["a/b, c/d"]);
    // obs-text passes both parsers: the bytes are kept.
    assert_eq!(p.headers["x-latin"].as_bytes(), "caf\u{e9}".as_bytes());
    assert!(p.headers["x-latin"].to_str().is_err());
}

/// `raw` parsed, on a connection with other extras than
/// `Request::for_test`'s.
fn request_on_test_environ(raw: &[u8]) -> Request {
    let mut p = crate::parser::RequestParser::new(crate::parser::ParserConfig::default());
    p.received(raw);
    let crate::parser::Parsed::Request(head, body) = p.into_parsed() else {
        panic!("a valid request");
    };
    Request::detached(head, body, test_environ())
}

#[test]
fn http_10() {
    let req = request_on_test_environ(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(
        req.to_http_parts().expect("ok").version,
        http::Version::HTTP_10
    );
}

fn test_environ() -> crate::request::ConnEnviron {
    crate::request::ConnEnviron {
        script_name: Arc::from("/app"),
        remote_addr: Arc::from("::1"),
        remote_port: Some(4711),
        server_name: Arc::from("example.com"),
        server_port: None,
        url_scheme: Cow::Borrowed("https"),
        ident: Arc::from(""),
    }
}

#[test]
fn a_target_http_refuses_is_a_clear_error() {
    let mut req = Request::for_test("POST", "/a<b>", &[], b"kept");
    let e = req.take_http().expect_err("http refuses '<'");
    assert_eq!(e.part(), Part::Uri);
    assert_eq!(e.status(), 400);
    assert_eq!(
        e.to_string(),
        "the request-target \"/a<b>\" is not one http::Uri accepts (invalid uri character)"
    );
    assert!(e.source().is_some_and(|s| s.is::<http::uri::InvalidUri>()));
    // Nothing was taken.
    assert_eq!(req.body().to_vec().expect("body"), b"kept");
    assert_eq!(
        Request::for_test("GET", "/?a>b", &[], b"")
            .to_http_parts()
            .expect_err("q")
            .part(),
        Part::Uri
    );
    assert!(Request::for_test("GET", "/a`b", &[], b"")
        .into_http()
        .is_err());
}

#[test]
fn header_errors_never_panic() {
    // The parser never gives these; the conversion still refuses them
    // with an error.
    let e = header_map(1, [("x-a", &b"a\x01b"[..])].into_iter(), Side::Request)
        .expect_err("a control byte");
    assert_eq!(e.part(), Part::HeaderValue);
    assert_eq!(e.status(), 400);
    assert!(e.to_string().contains("\"a\\x01b\""), "{e}");
    let e =
        header_map(1, [("bad name", &b"v"[..])].into_iter(), Side::Request).expect_err("a space");
    assert_eq!((e.part(), e.status()), (Part::HeaderName, 400));
    let long = "n".repeat(HEADER_NAME_MAX + 1);
    let e = header_map(1, [(long.as_str(), &b"v"[..])].into_iter(), Side::Request)
        .expect_err("too long");
    assert_eq!((e.part(), e.status()), (Part::HeaderName, 431));
    assert!(e.to_string().contains("... (65536 bytes)"), "{e}");
    assert!(e.to_string().contains("over 65535 bytes"), "{e}");
    let e = header_map(40_000, std::iter::empty(), Side::Request).expect_err("too many");
    assert_eq!((e.part(), e.status()), (Part::HeaderCount, 431));
    // Appending past the map's size, with a count that did not say so.
    let names: Vec<String> = (0..40_000).map(|i| format!("h{i}")).collect();
    let e = header_map(
        1,
        names.iter().map(|n| (n.as_str(), &b"v"[..])),
        Side::Response,
    )
    .expect_err("too many");
    assert_eq!((e.part(), e.status()), (Part::HeaderCount, 500));
}

#[test]
fn body_moves() {
    let req = Request::for_test("POST", "/", &[("Content-Type", "text/plain")], b"hello");
    let r = req.into_http().expect("ok");
    assert_eq!(r.headers()["content-length"], "5");
    let mut body = r.into_body();
    let mut s = String::new();
    body.read_to_string(&mut s).expect("read");
    assert_eq!(s, "hello");
}

#[test]
fn connection_info() {
    let req = request_on_test_environ(b"GET /app/x HTTP/1.1\r\nHost: h\r\n\r\n");
    let r = req.into_http().expect("ok");
    assert_eq!(r.uri().path(), "/app/x");
    let info = r.extensions().get::<ConnectionInfo>().expect("extras");
    assert_eq!(info.script_name, "/app");
    assert_eq!(info.url_scheme, "https");
    assert_eq!(info.server_port, None);
    assert_eq!(info.server_software, "");
    assert_eq!(
        info.remote_socket_addr(),
        Some(SocketAddr::new(
            IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
            4711
        ))
    );
    let mut made = ConnectionInfo::default();
    assert!(!made.client_disconnected());
    made.remote_addr = "localhost".into();
    assert_eq!(made.remote_socket_addr(), None);
    assert!(format!("{made:?}").contains("client_disconnected: false"));
}

fn bytes(body: &Body) -> &[u8] {
    match body {
        Body::Bytes(b) => b,
        Body::Empty => b"",
        other => panic!("not bytes: {other:?}"),
    }
}

#[test]
fn http_response_to_response() {
    let mut h = http::Response::builder()
        .status(http::StatusCode::CREATED)
        .header("Content-Type", "application/json")
        .header("Set-Cookie", "a=1")
        .header("Set-Cookie", "b=2")
        .header("X-Utf8", "caf\u{e9}")
        .body(String::from("{}"))
        .expect("valid");
    h.extensions_mut().insert(ReasonPhrase("Made".into()));
    let r = Response::try_from(h).expect("ok");
    assert_eq!(r.status(), 201);
    assert_eq!(r.reason(), "Made");
    let headers: Vec<(&str, &str)> = r.headers().iter().map(|(n, v)| (&**n, &**v)).collect();
    assert_eq!(
        headers,
        [
            ("content-type", "application/json"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("x-utf8", "caf\u{e9}"),
        ]
    );
    assert_eq!(bytes(r.body()), b"{}");
    let r = Response::try_from(http::Response::new(vec![1u8, 2])).expect("ok");
    assert_eq!(
        (r.status(), r.reason(), bytes(r.body())),
        (200, "OK", &[1u8, 2][..])
    );
    let r = Response::try_from(http::Response::new("static")).expect("ok");
    assert_eq!(bytes(r.body()), b"static");
    let r = Response::try_from(http::Response::new(())).expect("ok");
    assert!(matches!(r.body(), Body::Empty));
    let r = Response::try_from(http::Response::new(Body::from_chunks(["a"]))).expect("ok");
    assert!(matches!(r.body(), Body::Chunks(_)));
}

#[test]
fn a_value_that_is_not_utf8_is_an_error() {
    let mut h = http::Response::new(());
    let v = http::HeaderValue::from_bytes(b"caf\xe9").expect("obs-text");
    h.headers_mut()
        .insert("x-ok", http::HeaderValue::from_static("fine"));
    h.headers_mut().insert("x-latin1", v);
    let e = Response::try_from(h).expect_err("not UTF-8");
    assert_eq!((e.part(), e.status()), (Part::HeaderValue, 500));
    assert_eq!(
        e.to_string(),
        "the value \"caf\\xe9\" of header \"x-latin1\" is not UTF-8, and a response's header values are text"
    );
    // Nothing appended on an error.
    let mut r = Response::new(200);
    let mut map = http::HeaderMap::new();
    map.insert("x-ok", http::HeaderValue::from_static("fine"));
    map.insert(
        "x-bad",
        http::HeaderValue::from_bytes(b"\xff").expect("obs-text"),
    );
    assert!(r.add_http_headers(&map).is_err());
    assert!(r.headers().is_empty());
}

#[test]
fn response_to_http_response() {
    let r = Response::new(404)
        .with_header("Content-Type", "text/plain")
        .with_header("X-A", "1")
        .with_header("x-a", "2")
        .with_body("gone");
    let h = http::Response::<Body>::try_from(r).expect("ok");
    assert_eq!(h.status(), http::StatusCode::NOT_FOUND);
    let xa: Vec<_> = h.headers().get_all("x-a").iter().collect();
    assert_eq!(xa, ["1", "2"]);
    assert!(h.extensions().get::<ReasonPhrase>().is_none());
    assert_eq!(bytes(h.body()), b"gone");
    let h = http::Response::<Body>::try_from(Response::new(299).with_reason("Fine")).expect("ok");
    assert_eq!(
        h.extensions().get::<ReasonPhrase>(),
        Some(&ReasonPhrase("Fine".into()))
    );
    // And back: the phrase survives.
    assert_eq!(Response::try_from(h).expect("ok").reason(), "Fine");

    let e = http::Response::<Body>::try_from(Response::new(1000)).expect_err("status");
    assert_eq!(e.part(), Part::Status);
    assert!(e.source().is_some());
    let e = http::Response::<Body>::try_from(Response::new(200).with_header("a b", "v"))
        .expect_err("name");
    assert_eq!((e.part(), e.status()), (Part::HeaderName, 500));
    let e = http::Response::<Body>::try_from(Response::new(200).with_header("a", "x\r\ny"))
        .expect_err("value");
    assert_eq!(e.part(), Part::HeaderValue);
}

#[test]
fn a_switch_goes_both_ways_and_only_once() {
    // Response::upgrade -> http::Response: the Switch extension.
    let h = http::Response::<Body>::try_from(
        Response::upgrade("echo/1", |_| {}).with_header("x-a", "b"),
    )
    .expect("an upgrade converts");
    assert_eq!(h.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(h.headers()["x-a"], "b");
    let switch = h.extensions().get::<Switch>().expect("a Switch").clone();
    assert_eq!(switch.protocol(), "echo/1");
    // And back: the upgrade, with its headers.
    let r = Response::try_from(h).expect("back");
    assert_eq!((r.status(), r.upgrade_protocol()), (101, Some("echo/1")));
    assert_eq!(r.header("x-a"), Some("b"));
    // The clone kept in hand shares the handler, which is taken now.
    let e = Response::try_from(switch.into_response()).expect_err("used");
    assert_eq!((e.part(), e.status()), (Part::Upgrade, 500));
    assert_eq!(
        e.to_string(),
        "the Switch to \"echo/1\" was used already (a clone of it took the handler)"
    );
    // A Switch in a response that is not a 101.
    let mut h = Switch::new("echo", |_| {}).into_response();
    *h.status_mut() = http::StatusCode::OK;
    let e = Response::try_from(h).expect_err("not a 101");
    assert_eq!(e.part(), Part::Upgrade);
    assert_eq!(
        e.to_string(),
        "a Switch to \"echo\" in a response with status 200: a switch is a 101"
    );
    assert!(format!("{:?}", Switch::new("x", |_| {})).contains("used: false"));
}

#[test]
fn status_and_version() {
    let r = Response::from(http::StatusCode::IM_A_TEAPOT);
    assert_eq!(r.status(), 418);
    assert!(r.headers().is_empty() && r.body().is_empty());
    assert_eq!(r.http_status().expect("ok"), http::StatusCode::IM_A_TEAPOT);
    assert_eq!(http::Version::from(Version::Http10), http::Version::HTTP_10);
    assert_eq!(http::Version::from(Version::Http11), http::Version::HTTP_11);
    assert_eq!(
        Version::try_from(http::Version::HTTP_11).expect("ok"),
        Version::Http11
    );
    assert_eq!(
        Version::try_from(http::Version::HTTP_10).expect("ok"),
        Version::Http10
    );
    let e = Version::try_from(http::Version::HTTP_2).expect_err("h2");
    assert_eq!(e.part(), Part::Version);
}

#[test]
fn quoting() {
    assert_eq!(quoted(b"a\"\n"), "\"a\"\\x0a\"");
    let long = [b'x'; 100];
    assert_eq!(
        quoted(&long),
        format!("\"{}\"... (100 bytes)", "x".repeat(64))
    );
}

#[test]
fn app_answers_what_cannot_be_converted() {
    let app = HttpApp::new(|_req: http::Request<RequestBody>| -> http::Response<()> {
        panic!("not called for a request http refuses")
    });
    let mut req = Request::for_test("GET", "/<x>", &[], b"");
    let r = app.call(&mut req);
    assert_eq!(r.status(), 400);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let body = String::from_utf8(bytes(r.body()).to_vec()).expect("text");
    assert!(
        body.starts_with("Bad Request\r\n\r\nthe request-target \"/<x>\""),
        "{body}"
    );
    assert!(body.ends_with("(generated by maitred)"), "{body}");

    let app = HttpApp::new(|_req: http::Request<RequestBody>| {
        let mut r = http::Response::new("x");
        r.headers_mut().insert(
            "x-bad",
            http::HeaderValue::from_bytes(b"\xff").expect("obs-text"),
        );
        r
    });
    let r = app.call(&mut Request::for_test("GET", "/", &[], b""));
    assert_eq!(r.status(), 500);
    let body = String::from_utf8(bytes(r.body()).to_vec()).expect("text");
    assert!(body.contains("unexpected internal server error"), "{body}");
    assert!(!body.contains("x-bad"), "details stay in the log: {body}");
}
