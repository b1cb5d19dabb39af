//! Proxy headers over real loopback sockets: the `proxy_headers` case of
//! waitress's EchoTests, the malformed-header 400 exactly as waitress 3.0.2
//! puts it on the wire (HTTP/1.0 and 1.1, connection closed), clearing of
//! untrusted headers, `trusted_proxy` lists and CIDR ranges, a unix-socket
//! peer as `localhost`, and `url_scheme` / `url_prefix` with a proxy.
//! Each test runs on the default poller and on poll(2).

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use common::*;
use maitred::{Adjustments, Request, Response};

/// The request as the application sees it: `key=value` lines.
fn echo(req: &mut Request) -> Response {
    let mut out = String::new();
    let mut line = |k: &str, v: &str| {
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push('\n');
    };
    line("remote_addr", req.remote_addr());
    line(
        "remote_port",
        &req.remote_port().map(|p| p.to_string()).unwrap_or_default(),
    );
    line("server_name", req.server_name());
    line(
        "server_port",
        &req.server_port().map(|p| p.to_string()).unwrap_or_default(),
    );
    line("scheme", req.url_scheme());
    line("script_name", req.script_name());
    line("path_info", &req.path());
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
    Response::text(out)
}

fn parse(r: &Resp) -> HashMap<String, String> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The six proxy headers a client might send, and one more.
const SPOOFED: &str = "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Port: 1\r\nX-Forwarded-By: p\r\nForwarded: for=1.2.3.4\r\nX-Other: keep\r\n";

const PROXY_NAMES: [&str; 6] = [
    "header.x-forwarded-for",
    "header.x-forwarded-proto",
    "header.x-forwarded-host",
    "header.x-forwarded-port",
    "header.x-forwarded-by",
    "header.forwarded",
];

fn trusting_all_x(poll: bool, trusted_proxy: &str) -> Adjustments {
    adj(poll)
        .trusted_proxy(trusted_proxy)
        .trusted_proxy_headers(&[
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-forwarded-port",
            "x-forwarded-by",
        ])
}

backend_tests! {
    /// waitress's EchoTests.test_proxy_headers, with its settings.
    fn echo_proxy_headers(poll: bool) {
        let a = adj(poll)
            .trusted_proxy("*")
            .trusted_proxy_count(1)
            .trusted_proxy_headers(&["x-forwarded-for", "x-forwarded-proto"])
            .clear_untrusted_proxy_headers(true);
        let s = start(echo, a);
        let r = request(
            s.addr,
            b"GET / HTTP/1.0\r\nContent-Length: 0\r\nHost: www.google.com:8080\r\nX-Forwarded-For: 192.168.1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 5000\r\n\r\n",
        );
        assert_eq!((r.version.as_str(), r.status, r.reason.as_str()), ("HTTP/1.0", 200, "OK"));
        assert_eq!(r.header("server"), Some("maitred"));
        assert!(r.header("date").is_some());
        let f = parse(&r);
        assert_eq!(f.get("header.x-forwarded-port"), None);
        assert_eq!(f["header.host"], "www.google.com:8080");
        assert_eq!(f["scheme"], "https");
        assert_eq!(f["remote_addr"], "192.168.1.1");
        // No forwarded port is trusted: the scheme's default.
        assert_eq!(f["server_port"], "443");
    }

    /// The captured waitress response to a malformed trusted header on
    /// HTTP/1.1: chunked, `Connection: close`, and the connection closes
    /// (a pipelined request behind it is never answered).
    fn malformed_header_http11(poll: bool) {
        let s = start(echo, trusting_all_x(poll, "127.0.0.1"));
        let mut c = Client::connect(s.addr);
        c.send(b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https, http\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
        let raw = c.read_all();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        let mut lines: Vec<&str> = head.split("\r\n").collect();
        assert_eq!(lines.remove(0), "HTTP/1.1 400 Bad Request");
        lines.retain(|l| !l.starts_with("Date: "));
        lines.sort_unstable();
        assert_eq!(
            lines,
            [
                "Connection: close",
                "Content-Type: text/plain; charset=utf-8",
                "Server: maitred",
                "Transfer-Encoding: chunked",
            ]
        );
        assert_eq!(
            body,
            "4D\r\nBad Request\r\n\r\nHeader \"X-Forwarded-Proto\" malformed.\r\n\r\n(generated by server)\r\n0\r\n\r\n"
        );
    }

    /// The same on HTTP/1.0: no framing, the body ends at the close; a
    /// client asking for keep-alive does not get it.
    fn malformed_header_http10(poll: bool) {
        let s = start(echo, trusting_all_x(poll, "127.0.0.1"));
        for keep_alive in ["", "Connection: keep-alive\r\n"] {
            let mut c = Client::connect(s.addr);
            c.send(format!("GET / HTTP/1.0\r\n{keep_alive}X-Forwarded-Proto: ftp\r\n\r\n").as_bytes());
            let r = c.read_response().expect("response");
            assert_eq!((r.version.as_str(), r.status), ("HTTP/1.0", 400));
            assert_eq!(r.header("connection"), Some("close"));
            assert_eq!(r.header_all("connection").len(), 1);
            assert_eq!(r.header("transfer-encoding"), None);
            assert_eq!(r.header("content-length"), None);
            assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
            assert_eq!(
                r.text(),
                "Bad Request\r\n\r\nHeader \"X-Forwarded-Proto\" malformed.\r\n\r\n(generated by server)"
            );
            c.assert_closed();
        }
    }

    /// Other malformed headers name themselves; HEAD gets the head only.
    fn malformed_header_names(poll: bool) {
        let s = start(echo, trusting_all_x(poll, "127.0.0.1"));
        for (h, name) in [
            ("X-Forwarded-Port: 80, 443", "X-Forwarded-Port"),
            ("X-Forwarded-For: \"1.2.3.4", "X-Forwarded-For"),
            ("X-Forwarded-Host: \"h", "X-Forwarded-Host"),
        ] {
            let mut c = Client::connect(s.addr);
            let r = c.roundtrip(format!("GET / HTTP/1.1\r\nHost: h\r\n{h}\r\n\r\n").as_bytes());
            assert_eq!(r.status, 400);
            assert!(r.text().contains(&format!("Header \"{name}\" malformed.")), "{}", r.text());
            c.assert_closed();
        }
        let mut c = Client::connect(s.addr);
        c.send(b"HEAD / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: ftp\r\n\r\n");
        let r = c.read_response_to(true).expect("response");
        assert_eq!(r.status, 400);
        assert_eq!(r.header("connection"), Some("close"));
        c.assert_closed();

        let s = start(echo, adj(poll).trusted_proxy("*").trusted_proxy_headers(&["forwarded"]));
        for (v, name) in [("proto=ftp", "Forwarded Proto="), ("for", "Forwarded"), ("for = 1.2.3.4", "Forwarded")] {
            let mut c = Client::connect(s.addr);
            let r = c.roundtrip(format!("GET / HTTP/1.1\r\nHost: h\r\nForwarded: {v}\r\n\r\n").as_bytes());
            assert_eq!(r.status, 400);
            assert!(r.text().contains(&format!("Header \"{name}\" malformed.")), "{}", r.text());
            c.assert_closed();
        }
    }

    /// A trusted proxy's good headers keep the connection alive, request
    /// after request, each request judged on its own headers.
    fn trusted_headers_on_a_kept_alive_connection(poll: bool) {
        let s = start(echo, trusting_all_x(poll, "127.0.0.1").trusted_proxy_count(2));
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: internal:8080\r\nX-Forwarded-For: 10.0.0.9, 192.0.2.1, 198.51.100.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: a.example, b.example\r\n\r\n");
        let f = parse(&r);
        assert_eq!(f["remote_addr"], "192.0.2.1");
        assert_eq!(f["header.x-forwarded-for"], "192.0.2.1, 198.51.100.7");
        assert_eq!(f["header.x-forwarded-host"], "a.example, b.example");
        assert_eq!(f["header.host"], "a.example");
        assert_eq!(f["server_name"], "a.example");
        assert_eq!(f["server_port"], "443");
        assert_eq!(f["scheme"], "https");
        // Next request, no proxy headers: the connection's own values.
        let f = parse(&c.roundtrip(b"GET / HTTP/1.1\r\nHost: internal:8080\r\n\r\n"));
        assert_eq!(f["remote_addr"], "127.0.0.1");
        assert_eq!(f["header.host"], "internal:8080");
        assert_eq!(f["server_name"], "waitress.invalid");
        assert_eq!(f["server_port"], s.addr.port().to_string());
        assert_eq!(f["scheme"], "http");
    }

    /// By default (no trusted_proxy), every proxy header is removed.
    fn untrusted_headers_are_cleared_by_default(poll: bool) {
        let s = start(echo, adj(poll));
        let f = parse(&request(s.addr, format!("GET / HTTP/1.1\r\nHost: h\r\n{SPOOFED}\r\n").as_bytes()));
        for n in PROXY_NAMES {
            assert_eq!(f.get(n), None, "{n}");
        }
        assert_eq!(f["header.x-other"], "keep");
        assert_eq!(f["remote_addr"], "127.0.0.1");
        assert_eq!(f["scheme"], "http");
        assert_eq!(f["server_name"], "waitress.invalid");
    }

    /// A peer that is not the trusted proxy: cleared, nothing believed.
    fn untrusted_peer_is_cleared(poll: bool) {
        let s = start(echo, trusting_all_x(poll, "10.0.0.1"));
        let f = parse(&request(s.addr, format!("GET / HTTP/1.1\r\nHost: h\r\n{SPOOFED}\r\n").as_bytes()));
        for n in PROXY_NAMES {
            assert_eq!(f.get(n), None, "{n}");
        }
        assert_eq!(f["remote_addr"], "127.0.0.1");
        assert_eq!(f["header.host"], "h");
    }

    /// With clearing off and no trusted proxy, headers pass untouched.
    fn clearing_off_passes_headers(poll: bool) {
        let s = start(echo, adj(poll).clear_untrusted_proxy_headers(false));
        let f = parse(&request(s.addr, format!("GET / HTTP/1.1\r\nHost: h\r\n{SPOOFED}\r\n").as_bytes()));
        assert_eq!(f["header.x-forwarded-for"], "1.2.3.4");
        assert_eq!(f["header.forwarded"], "for=1.2.3.4");
        assert_eq!(f["remote_addr"], "127.0.0.1");
        assert_eq!(f["scheme"], "http");
    }

    /// trusted_proxy as a list of addresses and CIDR ranges.
    fn cidr_lists(poll: bool) {
        for (spec, trusted) in [
            ("10.0.0.0/8, 127.0.0.0/8", true),
            ("192.0.2.1,127.0.0.1", true),
            ("10.0.0.0/8, ::1, fd00::/8", false),
            ("127.0.0.2/32", false),
            ("0.0.0.0/0", true),
            ("localhost", false),
            ("*", true),
        ] {
            let s = start(echo, trusting_all_x(poll, spec));
            let f = parse(&request(
                s.addr,
                b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.5\r\nX-Forwarded-Proto: https\r\n\r\n",
            ));
            if trusted {
                assert_eq!(f["remote_addr"], "203.0.113.5", "{spec}");
                assert_eq!(f["scheme"], "https", "{spec}");
                assert_eq!(f["header.x-forwarded-for"], "203.0.113.5", "{spec}");
            } else {
                assert_eq!(f["remote_addr"], "127.0.0.1", "{spec}");
                assert_eq!(f["scheme"], "http", "{spec}");
                assert_eq!(f.get("header.x-forwarded-for"), None, "{spec}");
            }
        }
    }

    /// IPv6 loopback peers match IPv6 ranges (skipped where ::1 cannot be
    /// bound).
    fn ipv6_peer_in_a_range(poll: bool) {
        if std::net::TcpListener::bind("[::1]:0").is_err() {
            eprintln!("skipped: IPv6 loopback is not available here");
            return;
        }
        let mut a = trusting_all_x(poll, "10.0.0.0/8, ::/120");
        a.listen = vec!["[::1]:0".into()];
        let s = start(echo, a);
        let f = parse(&request(s.addr, b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 2001:db8::7\r\n\r\n"));
        assert_eq!(f["remote_addr"], "2001:db8::7");
    }

    /// A client on the unix socket is `localhost` (as waitress).
    fn unix_socket_peer_is_localhost(poll: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sock");
        let a = Adjustments::default()
            .unix_socket(path.to_str().unwrap())
            .asyncore_use_poll(poll)
            .trusted_proxy("localhost")
            .trusted_proxy_headers(&["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"]);
        let server = maitred::create_server(echo, a).unwrap();
        let handle = server.handle();
        let t = std::thread::spawn(move || server.run());
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: 192.0.2.44\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.org\r\n\r\n").unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\nremote_addr=192.0.2.44\n"), "{text}");
        assert!(text.contains("\nscheme=https\n"), "{text}");
        assert!(text.contains("\nserver_name=example.org\n"), "{text}");
        assert!(text.contains("\nserver_port=443\n"), "{text}");
        assert!(text.contains("\nheader.host=example.org\n"), "{text}");
        handle.shutdown();
        t.join().unwrap().unwrap();
    }

    /// `url_scheme` is the default a proxy's proto overrides; `url_prefix`
    /// is taken off PATH_INFO with waitress's edge cases.
    fn url_scheme_and_prefix(poll: bool) {
        let a = adj(poll)
            .url_scheme("https")
            .url_prefix("/foo/")
            .trusted_proxy("127.0.0.1")
            .trusted_proxy_headers(&["x-forwarded-proto"]);
        let s = start(echo, a);
        let f = parse(&request(s.addr, b"GET /foo/bar HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert_eq!(f["scheme"], "https");
        assert_eq!((f["script_name"].as_str(), f["path_info"].as_str()), ("/foo", "/bar"));
        let f = parse(&request(s.addr, b"GET /foo/bar HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: HTTP\r\n\r\n"));
        assert_eq!(f["scheme"], "http");
        assert_eq!(f["server_port"], "80");
        for (target, path_info) in [("/foo", ""), ("/foobar", "/foobar"), ("//foo/x", "/x"), ("/foo/", "/"), ("/", "/")] {
            let f = parse(&request(s.addr, format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes()));
            assert_eq!(f["script_name"], "/foo", "{target}");
            assert_eq!(f["path_info"], path_info, "{target}");
        }
    }
}

#[test]
fn bad_trusted_proxy_is_refused_at_start() {
    let e = maitred::create_server(echo, adj(false).trusted_proxy("10.0.0.0/8, proxy.example"))
        .unwrap_err();
    assert!(e.is_config());
    assert_eq!(
        e.to_string(),
        "invalid trusted_proxy element \"proxy.example\" in \"10.0.0.0/8, proxy.example\": not an IP address, a CIDR range (such as 10.0.0.0/8 or fd00::/8), \"*\" or \"localhost\""
    );
    let mut a = adj(false);
    a.set("trusted_proxy", "10.0.0.1/40").unwrap();
    let e = maitred::create_server(echo, a).unwrap_err().to_string();
    assert!(
        e.contains("\"10.0.0.1/40\"") && e.contains("from 0 to 32"),
        "{e}"
    );
}
