//! Proxy headers over real loopback sockets: the `proxy_headers` case of
//! waitress's EchoTests, the malformed-header 400 exactly as waitress 3.0.2
//! puts it on the wire (HTTP/1.0 and 1.1, connection closed), clearing of
//! untrusted headers, `trusted_proxy` lists and CIDR ranges, a unix-socket
//! peer as `localhost`, and `url_scheme` / `url_prefix` with a proxy.
//!
//! The cases are tables of [`Case`]s, one request each, checked by [`run`];
//! cases with the same [`Settings`] share a server. Each table runs on the
//! default poller and on poll(2).

mod common;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

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

// ---------------------------------------------------------------------------
// Harness.

/// A server's proxy settings; `None` leaves a setting at its default (and
/// not explicitly set). Cases with equal settings share a server.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Settings {
    trusted_proxy: Option<&'static str>,
    trusted_proxy_headers: Option<&'static [&'static str]>,
    trusted_proxy_count: Option<usize>,
    clear_untrusted_proxy_headers: Option<bool>,
    url_scheme: Option<&'static str>,
    url_prefix: Option<&'static str>,
    /// Listen on `[::1]` instead of 127.0.0.1 (cases skipped where it
    /// cannot be bound).
    ipv6: bool,
}

const DEFAULTS: Settings = Settings {
    trusted_proxy: None,
    trusted_proxy_headers: None,
    trusted_proxy_count: None,
    clear_untrusted_proxy_headers: None,
    url_scheme: None,
    url_prefix: None,
    ipv6: false,
};

/// `trusted_proxy` trusted for every `X-Forwarded-*` header.
const fn trusting_all_x(trusted_proxy: &'static str) -> Settings {
    Settings {
        trusted_proxy: Some(trusted_proxy),
        trusted_proxy_headers: Some(&[
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-forwarded-port",
            "x-forwarded-by",
        ]),
        ..DEFAULTS
    }
}

impl Settings {
    /// `a` with these settings applied, by name as in a config file.
    fn apply(self, mut a: Adjustments) -> Adjustments {
        let named = [
            ("trusted_proxy", self.trusted_proxy.map(String::from)),
            (
                "trusted_proxy_headers",
                self.trusted_proxy_headers.map(|h| h.join(" ")),
            ),
            (
                "trusted_proxy_count",
                self.trusted_proxy_count.map(|n| n.to_string()),
            ),
            (
                "clear_untrusted_proxy_headers",
                self.clear_untrusted_proxy_headers.map(|b| b.to_string()),
            ),
            ("url_scheme", self.url_scheme.map(String::from)),
            ("url_prefix", self.url_prefix.map(String::from)),
            ("listen", self.ipv6.then(|| "[::1]:0".to_string())),
        ];
        for (name, value) in named {
            if let Some(v) = value {
                a.set(name, &v).unwrap();
            }
        }
        a
    }
}

/// What the response body must be.
#[derive(Clone, Copy, Debug)]
enum Body {
    /// The echo app's output; [`Case::environ`] and [`Case::absent`] are
    /// checked against it.
    Environ,
    /// Exactly this text.
    Is(&'static str),
    /// Text containing this.
    Contains(&'static str),
    /// Exactly these raw bytes, read to the close (framing included).
    Wire(&'static str),
    /// No body is read (a response to HEAD).
    Nothing,
}

/// Stands for the server's own listening port in [`Case::environ`].
const OWN_PORT: &str = "<the server's port>";

/// One request and everything expected of its response. Every response is
/// also checked for the request's HTTP version, the status's reason, one
/// `Server: maitred` and a `Date`.
#[derive(Clone, Copy, Debug)]
struct Case {
    name: &'static str,
    server: Settings,
    /// The request line; a `HEAD` response is read without a body.
    line: &'static str,
    /// The request's header lines.
    headers: &'static [&'static str],
    /// Raw bytes sent right behind the request (a pipelined request).
    pipelined: &'static str,
    /// Sent on the previous case's connection instead of a new one.
    same_connection: bool,
    status: u16,
    /// Response headers: `Some(v)` sent exactly once with value `v`, `None`
    /// not sent.
    response_headers: &'static [(&'static str, Option<&'static str>)],
    /// The whole response head: the status line, then the header lines
    /// sorted, `Date` left out.
    wire_head: Option<&'static [&'static str]>,
    body: Body,
    /// Environ values the app saw (with [`Body::Environ`]).
    environ: &'static [(&'static str, &'static str)],
    /// Environ keys the app must not have seen.
    absent: &'static [&'static str],
    /// The server closes the connection after the response.
    closes: bool,
}

/// A plain `GET /` answered with the environ.
const GET: Case = Case {
    name: "",
    server: DEFAULTS,
    line: "GET / HTTP/1.1",
    headers: &["Host: h"],
    pipelined: "",
    same_connection: false,
    status: 200,
    response_headers: &[],
    wire_head: None,
    body: Body::Environ,
    environ: &[],
    absent: &[],
    closes: false,
};

/// A request refused with 400, the connection closed.
const BAD: Case = Case {
    server: trusting_all_x("127.0.0.1"),
    status: 400,
    body: Body::Nothing,
    closes: true,
    ..GET
};

/// The environ lines of an echo response.
fn environ(body: &str) -> HashMap<&str, &str> {
    body.lines().filter_map(|l| l.split_once('=')).collect()
}

/// Checks the echo app's output against `want` (with [`OWN_PORT`] standing
/// for `own_port`) and `absent`.
fn check_environ(body: &str, want: &[(&str, &str)], absent: &[&str], own_port: u16) {
    let f = environ(body);
    for &(k, v) in want {
        let v = if v == OWN_PORT {
            own_port.to_string()
        } else {
            v.to_string()
        };
        assert_eq!(f.get(k).copied(), Some(v.as_str()), "environ {k}; {body}");
    }
    for k in absent {
        assert_eq!(f.get(k), None, "environ {k} should be absent; {body}");
    }
}

/// The bytes `case` sends.
fn request_bytes(case: &Case) -> Vec<u8> {
    let mut req = format!("{}\r\n", case.line);
    for h in case.headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.push_str(case.pipelined);
    req.into_bytes()
}

/// Sends `case`'s request on `conn` (or a new connection to `s`) and checks
/// the response; returns the connection.
fn exchange(case: &Case, s: &TestServer, conn: Option<Client>) -> Client {
    let mut c = match (case.same_connection, conn) {
        (false, _) => Client::connect(s.addr),
        (true, Some(c)) => c,
        (true, None) => panic!("the previous case left no open connection"),
    };
    c.send(&request_bytes(case));
    let r = match case.body {
        Body::Wire(_) => {
            let mut r = c.read_head().expect("a response head");
            r.body = c.read_all();
            r
        }
        _ => c
            .read_response_to(case.line.starts_with("HEAD "))
            .expect("a response"),
    };

    let version = case.line.rsplit(' ').next().unwrap();
    let reason = match case.status {
        200 => "OK",
        400 => "Bad Request",
        other => panic!("no reason phrase known for {other}"),
    };
    assert_eq!(
        (r.version.as_str(), r.status, r.reason.as_str()),
        (version, case.status, reason),
        "{}",
        r.text()
    );
    assert_eq!(r.header_all("server"), ["maitred"]);
    assert!(r.header("date").is_some(), "no Date");
    for &(name, want) in case.response_headers {
        let got = r.header_all(name);
        assert_eq!(got, Vec::from_iter(want), "response header {name}");
    }
    if let Some(want) = case.wire_head {
        let head = String::from_utf8_lossy(&r.raw_head).into_owned();
        let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
        let mut got = vec![lines.next().unwrap_or("")];
        let mut rest: Vec<&str> = lines.filter(|l| !l.starts_with("Date: ")).collect();
        rest.sort_unstable();
        got.extend(rest);
        assert_eq!(got, want);
    }
    if !matches!(case.body, Body::Environ) {
        assert!(
            case.environ.is_empty() && case.absent.is_empty(),
            "environ checks need Body::Environ"
        );
    }
    match case.body {
        Body::Environ => check_environ(&r.text(), case.environ, case.absent, s.addr.port()),
        Body::Is(want) | Body::Wire(want) => assert_eq!(r.text(), want),
        Body::Contains(want) => assert!(r.text().contains(want), "{}", r.text()),
        Body::Nothing => {}
    }
    if case.closes {
        c.assert_closed();
    }
    c
}

/// Runs every case on the `poll` backend or the default one, reusing one
/// server per distinct [`Settings`], and fails naming every failed case.
fn run(poll: bool, cases: &[Case]) {
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let mut servers: Vec<(Settings, TestServer)> = Vec::new();
    let mut conn = None;
    let mut failed = Vec::new();
    for case in cases {
        if case.server.ipv6 && !ipv6 {
            eprintln!(
                "{}: skipped: IPv6 loopback is not available here",
                case.name
            );
            continue;
        }
        let i = match servers.iter().position(|(k, _)| *k == case.server) {
            Some(i) => i,
            None => {
                servers.push((case.server, start(echo, case.server.apply(adj(poll)))));
                servers.len() - 1
            }
        };
        let previous = conn.take();
        match catch_unwind(AssertUnwindSafe(|| exchange(case, &servers[i].1, previous))) {
            Ok(c) => conn = (!case.closes).then_some(c),
            Err(e) => {
                let why = e
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| e.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                failed.push(format!("{}: {why}", case.name));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed (poll: {poll}):\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Tables.

/// waitress's EchoTests settings.
const ECHO_SETTINGS: Settings = Settings {
    trusted_proxy: Some("*"),
    trusted_proxy_count: Some(1),
    trusted_proxy_headers: Some(&["x-forwarded-for", "x-forwarded-proto"]),
    clear_untrusted_proxy_headers: Some(true),
    ..DEFAULTS
};

/// Trusting two hops of the loopback proxy.
const COUNTING_TWO: Settings = Settings {
    trusted_proxy_count: Some(2),
    ..trusting_all_x("127.0.0.1")
};

/// Trusted proxies: the values a proxy sends are believed.
const TRUSTED: &[Case] = &[
    Case {
        name: "waitress EchoTests.test_proxy_headers",
        server: ECHO_SETTINGS,
        line: "GET / HTTP/1.0",
        headers: &[
            "Content-Length: 0",
            "Host: www.google.com:8080",
            "X-Forwarded-For: 192.168.1.1",
            "X-Forwarded-Proto: https",
            "X-Forwarded-Port: 5000",
        ],
        environ: &[
            ("header.host", "www.google.com:8080"),
            ("scheme", "https"),
            ("remote_addr", "192.168.1.1"),
            // No forwarded port is trusted: the scheme's default.
            ("server_port", "443"),
        ],
        absent: &["header.x-forwarded-port"],
        ..GET
    },
    // A trusted proxy's good headers keep the connection alive, request
    // after request, each request judged on its own headers.
    Case {
        name: "kept alive: trusted_proxy_count 2 takes the second hop",
        server: COUNTING_TWO,
        headers: &[
            "Host: internal:8080",
            "X-Forwarded-For: 10.0.0.9, 192.0.2.1, 198.51.100.7",
            "X-Forwarded-Proto: https",
            "X-Forwarded-Host: a.example, b.example",
        ],
        environ: &[
            ("remote_addr", "192.0.2.1"),
            ("header.x-forwarded-for", "192.0.2.1, 198.51.100.7"),
            ("header.x-forwarded-host", "a.example, b.example"),
            ("header.host", "a.example"),
            ("server_name", "a.example"),
            ("server_port", "443"),
            ("scheme", "https"),
        ],
        ..GET
    },
    Case {
        name: "kept alive: the next request, no proxy headers, gets the connection's own values",
        server: COUNTING_TWO,
        headers: &["Host: internal:8080"],
        same_connection: true,
        environ: &[
            ("remote_addr", "127.0.0.1"),
            ("header.host", "internal:8080"),
            ("server_name", "waitress.invalid"),
            ("server_port", OWN_PORT),
            ("scheme", "http"),
        ],
        ..GET
    },
];

/// The 400 for a malformed trusted header, naming the header; the
/// connection is closed.
const MALFORMED: &[Case] = &[
    // The captured waitress response on HTTP/1.1: chunked, `Connection:
    // close`, and a pipelined request behind it is never answered.
    Case {
        name: "HTTP/1.1 on the wire",
        headers: &["Host: h", "X-Forwarded-Proto: https, http"],
        pipelined: "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        wire_head: Some(&[
            "HTTP/1.1 400 Bad Request",
            "Connection: close",
            "Content-Type: text/plain; charset=utf-8",
            "Server: maitred",
            "Transfer-Encoding: chunked",
        ]),
        body: Body::Wire(
            "4D\r\nBad Request\r\n\r\nHeader \"X-Forwarded-Proto\" malformed.\r\n\r\n(generated by server)\r\n0\r\n\r\n",
        ),
        ..BAD
    },
    // On HTTP/1.0: no framing, the body ends at the close; a client asking
    // for keep-alive does not get it.
    Case {
        name: "HTTP/1.0",
        line: "GET / HTTP/1.0",
        headers: &["X-Forwarded-Proto: ftp"],
        response_headers: HTTP10_400_HEADERS,
        body: HTTP10_400_BODY,
        ..BAD
    },
    Case {
        name: "HTTP/1.0 asking for keep-alive",
        line: "GET / HTTP/1.0",
        headers: &["Connection: keep-alive", "X-Forwarded-Proto: ftp"],
        response_headers: HTTP10_400_HEADERS,
        body: HTTP10_400_BODY,
        ..BAD
    },
    Case {
        name: "X-Forwarded-Port with two values",
        headers: &["Host: h", "X-Forwarded-Port: 80, 443"],
        body: Body::Contains("Header \"X-Forwarded-Port\" malformed."),
        ..BAD
    },
    Case {
        name: "X-Forwarded-For with an open quote",
        headers: &["Host: h", "X-Forwarded-For: \"1.2.3.4"],
        body: Body::Contains("Header \"X-Forwarded-For\" malformed."),
        ..BAD
    },
    Case {
        name: "X-Forwarded-Host with an open quote",
        headers: &["Host: h", "X-Forwarded-Host: \"h"],
        body: Body::Contains("Header \"X-Forwarded-Host\" malformed."),
        ..BAD
    },
    Case {
        name: "HEAD gets the head only",
        line: "HEAD / HTTP/1.1",
        headers: &["Host: h", "X-Forwarded-Proto: ftp"],
        response_headers: &[("connection", Some("close"))],
        ..BAD
    },
    Case {
        name: "Forwarded proto=ftp",
        server: TRUSTING_FORWARDED,
        headers: &["Host: h", "Forwarded: proto=ftp"],
        body: Body::Contains("Header \"Forwarded Proto=\" malformed."),
        ..BAD
    },
    Case {
        name: "Forwarded pair without '='",
        server: TRUSTING_FORWARDED,
        headers: &["Host: h", "Forwarded: for"],
        body: Body::Contains("Header \"Forwarded\" malformed."),
        ..BAD
    },
    Case {
        name: "Forwarded pair with spaces around '='",
        server: TRUSTING_FORWARDED,
        headers: &["Host: h", "Forwarded: for = 1.2.3.4"],
        body: Body::Contains("Header \"Forwarded\" malformed."),
        ..BAD
    },
];

const HTTP10_400_HEADERS: &[(&str, Option<&str>)] = &[
    ("connection", Some("close")),
    ("transfer-encoding", None),
    ("content-length", None),
    ("content-type", Some("text/plain; charset=utf-8")),
];

const HTTP10_400_BODY: Body = Body::Is(
    "Bad Request\r\n\r\nHeader \"X-Forwarded-Proto\" malformed.\r\n\r\n(generated by server)",
);

const TRUSTING_FORWARDED: Settings = Settings {
    trusted_proxy: Some("*"),
    trusted_proxy_headers: Some(&["forwarded"]),
    ..DEFAULTS
};

/// The six proxy headers a client might send, and one more.
const SPOOFED: &[&str] = &[
    "Host: h",
    "X-Forwarded-For: 1.2.3.4",
    "X-Forwarded-Proto: https",
    "X-Forwarded-Host: evil",
    "X-Forwarded-Port: 1",
    "X-Forwarded-By: p",
    "Forwarded: for=1.2.3.4",
    "X-Other: keep",
];

const PROXY_NAMES: &[&str] = &[
    "header.x-forwarded-for",
    "header.x-forwarded-proto",
    "header.x-forwarded-host",
    "header.x-forwarded-port",
    "header.x-forwarded-by",
    "header.forwarded",
];

/// Proxy headers from a peer that is not trusted.
const UNTRUSTED: &[Case] = &[
    Case {
        name: "no trusted_proxy: every proxy header is cleared by default",
        headers: SPOOFED,
        environ: &[
            ("header.x-other", "keep"),
            ("remote_addr", "127.0.0.1"),
            ("scheme", "http"),
            ("server_name", "waitress.invalid"),
        ],
        absent: PROXY_NAMES,
        ..GET
    },
    Case {
        name: "a peer that is not the trusted proxy: cleared, nothing believed",
        server: trusting_all_x("10.0.0.1"),
        headers: SPOOFED,
        environ: &[("remote_addr", "127.0.0.1"), ("header.host", "h")],
        absent: PROXY_NAMES,
        ..GET
    },
    Case {
        name: "clearing off, no trusted_proxy: headers pass untouched",
        server: Settings {
            clear_untrusted_proxy_headers: Some(false),
            ..DEFAULTS
        },
        headers: SPOOFED,
        environ: &[
            ("header.x-forwarded-for", "1.2.3.4"),
            ("header.forwarded", "for=1.2.3.4"),
            ("remote_addr", "127.0.0.1"),
            ("scheme", "http"),
        ],
        ..GET
    },
];

/// A forwarded client from a peer that `trusted_proxy` does or does not
/// name.
const FORWARDED_CLIENT: &[&str] = &[
    "Host: h",
    "X-Forwarded-For: 203.0.113.5",
    "X-Forwarded-Proto: https",
];

const BELIEVED: Case = Case {
    headers: FORWARDED_CLIENT,
    environ: &[
        ("remote_addr", "203.0.113.5"),
        ("scheme", "https"),
        ("header.x-forwarded-for", "203.0.113.5"),
    ],
    ..GET
};

const NOT_BELIEVED: Case = Case {
    headers: FORWARDED_CLIENT,
    environ: &[("remote_addr", "127.0.0.1"), ("scheme", "http")],
    absent: &["header.x-forwarded-for"],
    ..GET
};

/// `outcome` for a loopback peer when `trusted_proxy` is `spec`.
const fn cidr(spec: &'static str, outcome: Case) -> Case {
    Case {
        name: spec,
        server: trusting_all_x(spec),
        ..outcome
    }
}

/// `trusted_proxy` as a list of addresses and CIDR ranges.
const CIDR_LISTS: &[Case] = &[
    cidr("10.0.0.0/8, 127.0.0.0/8", BELIEVED),
    cidr("192.0.2.1,127.0.0.1", BELIEVED),
    cidr("10.0.0.0/8, ::1, fd00::/8", NOT_BELIEVED),
    cidr("127.0.0.2/32", NOT_BELIEVED),
    cidr("0.0.0.0/0", BELIEVED),
    // Only a unix-socket peer is `localhost`.
    cidr("localhost", NOT_BELIEVED),
    cidr("*", BELIEVED),
    Case {
        name: "an IPv6 loopback peer in an IPv6 range",
        server: Settings {
            ipv6: true,
            ..trusting_all_x("10.0.0.0/8, ::/120")
        },
        headers: &["Host: h", "X-Forwarded-For: 2001:db8::7"],
        environ: &[("remote_addr", "2001:db8::7")],
        ..GET
    },
];

/// `url_scheme` is the default a proxy's proto overrides; `url_prefix` is
/// taken off PATH_INFO with waitress's edge cases.
const URL_SCHEME_AND_PREFIX: &[Case] = &[
    url(
        "GET /foo/bar HTTP/1.1",
        &[("scheme", "https"), FOO, ("path_info", "/bar")],
    ),
    Case {
        name: "X-Forwarded-Proto: HTTP overrides url_scheme",
        headers: &["Host: h", "X-Forwarded-Proto: HTTP"],
        ..url(
            "GET /foo/bar HTTP/1.1",
            &[("scheme", "http"), ("server_port", "80")],
        )
    },
    url("GET /foo HTTP/1.1", &[FOO, ("path_info", "")]),
    url("GET /foobar HTTP/1.1", &[FOO, ("path_info", "/foobar")]),
    url("GET //foo/x HTTP/1.1", &[FOO, ("path_info", "/x")]),
    url("GET /foo/ HTTP/1.1", &[FOO, ("path_info", "/")]),
    url("GET / HTTP/1.1", &[FOO, ("path_info", "/")]),
];

/// The `url_prefix` of [`url`]'s server, as SCRIPT_NAME.
const FOO: (&str, &str) = ("script_name", "/foo");

/// `line` to a server with `url_scheme` https and `url_prefix` /foo,
/// trusting the loopback peer's `X-Forwarded-Proto`.
const fn url(line: &'static str, environ: &'static [(&'static str, &'static str)]) -> Case {
    Case {
        name: line,
        server: Settings {
            url_scheme: Some("https"),
            url_prefix: Some("/foo/"),
            trusted_proxy: Some("127.0.0.1"),
            trusted_proxy_headers: Some(&["x-forwarded-proto"]),
            ..DEFAULTS
        },
        line,
        environ,
        ..GET
    }
}

backend_tests! {
    fn trusted_proxy(poll: bool) {
        run(poll, TRUSTED)
    }

    fn malformed_header(poll: bool) {
        run(poll, MALFORMED)
    }

    fn untrusted_headers(poll: bool) {
        run(poll, UNTRUSTED)
    }

    fn cidr_lists(poll: bool) {
        run(poll, CIDR_LISTS)
    }

    fn url_scheme_and_prefix(poll: bool) {
        run(poll, URL_SCHEME_AND_PREFIX)
    }

    /// A client on the unix socket is `localhost` (as waitress). The
    /// response is read to the close, so only [`UNIX_PEER`]'s status and
    /// environ are checked.
    fn unix_socket_peer_is_localhost(poll: bool) {
        let a = Adjustments::default().asyncore_use_poll(poll);
        let server = start_unix(echo, UNIX_PEER.server.apply(a));
        let out = server.exchange(&request_bytes(&UNIX_PEER));
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        let (_, body) = text.split_once("\r\n\r\n").expect("a head");
        check_environ(body, UNIX_PEER.environ, UNIX_PEER.absent, 0);
        server.stop().unwrap();
    }
}

const UNIX_PEER: Case = Case {
    name: "a unix-socket peer trusted as localhost",
    server: Settings {
        trusted_proxy: Some("localhost"),
        trusted_proxy_headers: Some(&["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"]),
        ..DEFAULTS
    },
    headers: &[
        "Host: x",
        "Connection: close",
        "X-Forwarded-For: 192.0.2.44",
        "X-Forwarded-Proto: https",
        "X-Forwarded-Host: example.org",
    ],
    environ: &[
        ("remote_addr", "192.0.2.44"),
        ("scheme", "https"),
        ("server_name", "example.org"),
        ("server_port", "443"),
        ("header.host", "example.org"),
    ],
    ..GET
};

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
