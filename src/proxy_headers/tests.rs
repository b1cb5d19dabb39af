//! waitress's `tests/test_proxy_headers.py`, case by case (same names, with
//! `test_` dropped), then this port's own cases: the wire captures of
//! waitress 3.0.2 (`proxy_capture.txt`), `trusted_proxy` lists and ranges,
//! and the places where this port deliberately differs.

use super::*;
use crate::response::Body;

/// waitress's `_makeOne(app, **kw)`: the middleware with its defaults
/// (no trusted proxy, count 1, no trusted headers, clearing on, no
/// logging of removed headers).
struct Mw {
    trusted_proxy: Option<&'static str>,
    count: usize,
    headers: &'static [&'static str],
    clear_untrusted: bool,
    log_untrusted: bool,
}

impl Default for Mw {
    fn default() -> Self {
        Mw {
            trusted_proxy: None,
            count: 1,
            headers: &[],
            clear_untrusted: true,
            log_untrusted: false,
        }
    }
}

impl Mw {
    fn config(&self) -> ProxyConfig {
        ProxyConfig {
            trusted: self
                .trusted_proxy
                .map(|t| TrustedProxies::parse(t).expect("trusted_proxy")),
            count: self.count,
            headers: HeaderSet::from_setting(self.headers.iter().copied()).expect("headers"),
            clear_untrusted: self.clear_untrusted,
            log_untrusted: self.log_untrusted,
        }
    }

    /// waitress's `_callFUT` with `DummyEnviron(addr=...)`: REMOTE_ADDR and
    /// REMOTE_PORT from `addr`, SERVER_PORT its port, SERVER_NAME
    /// `localhost`, scheme `http`, `Host: 192.168.1.1:80`, plus `headers`.
    fn call(&self, addr: (&str, u16), headers: &[(&str, &str)]) -> Called {
        let mut all = Vec::new();
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            all.push(("Host", "192.168.1.1:80"));
        }
        all.extend_from_slice(headers);
        let mut req = Request::for_test("GET", "/", &all, b"");
        req.set_remote_addr(Arc::from(addr.0));
        req.set_remote_port(Some(addr.1));
        req.set_server_name(Arc::from("localhost"));
        req.set_server_port(Some(addr.1));
        req.set_url_scheme(Cow::Borrowed("http"));
        let mut logged = Vec::new();
        let result = self
            .config()
            .apply_logged(&mut req, &mut |l| logged.push(l));
        let (status, body) = match result {
            Ok(()) => (200, String::from("hello")),
            Err(bad) => {
                let (status, _, headers, body) = bad.response().into_parts();
                assert!(headers
                    .iter()
                    .any(|(n, v)| n == "Content-Type" && v == "text/plain; charset=utf-8"));
                let bytes = match body {
                    Body::Chunks(chunks) => chunks
                        .map(|c| c.expect("chunk"))
                        .collect::<Vec<_>>()
                        .concat(),
                    _ => panic!("the 400 body has no length, as waitress's generator"),
                };
                (status, String::from_utf8(bytes).expect("utf-8"))
            }
        };
        Called {
            status,
            body,
            req,
            logged,
        }
    }

    fn call_default_addr(&self, headers: &[(&str, &str)]) -> Called {
        self.call(("127.0.0.1", 8080), headers)
    }
}

struct Called {
    status: u16,
    body: String,
    req: Request,
    logged: Vec<String>,
}

impl Called {
    fn header(&self, name: &str) -> Option<&str> {
        self.req.header_str(name)
    }
    fn server_port(&self) -> String {
        self.req
            .server_port()
            .map(|p| p.to_string())
            .unwrap_or_default()
    }
    fn remote_port(&self) -> String {
        self.req
            .remote_port()
            .map(|p| p.to_string())
            .unwrap_or_default()
    }
    fn assert_malformed(&self, name: &str) {
        assert_eq!(self.status, 400, "{}", self.body);
        assert!(
            self.body.contains(&format!("Header \"{name}\" malformed")),
            "{}",
            self.body
        );
    }
}

const ALL_X: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-by",
];

// ---------------------------------------------------------------------------
// TestProxyHeadersMiddleware

#[test]
fn get_environment_values_w_scheme_override_untrusted() {
    let r = Mw::default().call_default_addr(&[("X-Foo", "BAR"), ("X-Forwarded-Proto", "https")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.url_scheme(), "http");
    // Cleared, since clearing is on by default.
    assert_eq!(r.header("x-forwarded-proto"), None);
    assert_eq!(r.header("x-foo"), Some("BAR"));
}

#[test]
fn get_environment_values_w_scheme_override_trusted() {
    let mw = Mw {
        trusted_proxy: Some("192.168.1.1"),
        headers: &["x-forwarded-proto"],
        ..Mw::default()
    };
    let r = mw.call(
        ("192.168.1.1", 8080),
        &[("X-Foo", "BAR"), ("X-Forwarded-Proto", "https")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.server_port(), "443");
    assert_eq!(r.req.server_name(), "localhost");
    assert_eq!(r.req.remote_addr(), "192.168.1.1");
    assert_eq!(r.header("x-foo"), Some("BAR"));
    assert_eq!(r.req.url_scheme(), "https");
}

#[test]
fn get_environment_values_w_bogus_scheme_override() {
    let mw = Mw {
        trusted_proxy: Some("192.168.1.1"),
        headers: &["x-forwarded-proto"],
        ..Mw::default()
    };
    let r = mw.call(
        ("192.168.1.1", 80),
        &[
            ("X-Foo", "BAR"),
            ("X-Forwarded-Proto", "http://p02n3e.com?url=http"),
        ],
    );
    r.assert_malformed("X-Forwarded-Proto");
    assert_eq!(
        r.logged,
        vec![
            "Malformed proxy header \"X-Forwarded-Proto\" from \"192.168.1.1\": unsupported proto value value: http://p02n3e.com?url=http"
        ]
    );
}

#[test]
fn get_environment_warning_other_proxy_headers() {
    let mw = Mw {
        trusted_proxy: Some("192.168.1.1"),
        count: 1,
        headers: &["forwarded"],
        log_untrusted: true,
        ..Mw::default()
    };
    let r = mw.call(
        ("192.168.1.1", 80),
        &[
            ("X-Forwarded-For", "[2001:db8::1]"),
            (
                "Forwarded",
                "For=198.51.100.2;host=example.com:8080;proto=https",
            ),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.logged.len(), 1, "{:?}", r.logged);
    assert_eq!(
        r.logged[0],
        "Removed untrusted headers (X-Forwarded-For). maitred recommends these be removed upstream."
    );
    assert_eq!(r.header("x-forwarded-for"), None);
    assert_eq!(r.req.remote_addr(), "198.51.100.2");
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.header("host"), Some("example.com:8080"));
    assert_eq!(r.server_port(), "8080");
    assert_eq!(r.req.url_scheme(), "https");
}

#[test]
fn get_environment_contains_all_headers_including_untrusted() {
    let mw = Mw {
        trusted_proxy: Some("192.168.1.1"),
        count: 1,
        headers: &["x-forwarded-by"],
        clear_untrusted: false,
        ..Mw::default()
    };
    let orig = [
        ("X-Forwarded-For", "198.51.100.2"),
        ("X-Forwarded-By", "Waitress"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "example.org"),
    ];
    let r = mw.call(("192.168.1.1", 80), &orig);
    assert_eq!(r.status, 200);
    for (k, v) in orig {
        assert_eq!(r.header(k), Some(v), "{k}");
    }
}

#[test]
fn get_environment_contains_only_trusted_headers() {
    let mw = Mw {
        trusted_proxy: Some("192.168.1.1"),
        count: 1,
        headers: &["x-forwarded-by"],
        clear_untrusted: true,
        ..Mw::default()
    };
    let r = mw.call(
        ("192.168.1.1", 80),
        &[
            ("X-Forwarded-For", "198.51.100.2"),
            ("X-Forwarded-By", "Waitress"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "example.org"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-forwarded-by"), Some("Waitress"));
    assert_eq!(r.header("x-forwarded-for"), None);
    assert_eq!(r.header("x-forwarded-proto"), None);
    assert_eq!(r.header("x-forwarded-host"), None);
    // Nothing was logged: log_untrusted is off.
    assert!(r.logged.is_empty());
}

#[test]
fn get_environment_clears_headers_if_untrusted_proxy() {
    let mw = Mw {
        trusted_proxy: Some("192.168.1.1"),
        count: 1,
        headers: &["x-forwarded-by"],
        clear_untrusted: true,
        ..Mw::default()
    };
    let r = mw.call(
        ("192.168.1.255", 80),
        &[
            ("X-Forwarded-For", "198.51.100.2"),
            ("X-Forwarded-By", "Waitress"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "example.org"),
        ],
    );
    assert_eq!(r.status, 200);
    for h in [
        "x-forwarded-by",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
    ] {
        assert_eq!(r.header(h), None, "{h}");
    }
    assert_eq!(r.req.remote_addr(), "192.168.1.255");
}

#[test]
fn parse_proxy_headers_forwarded_for() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        headers: &["x-forwarded-for"],
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[("X-Forwarded-For", "192.0.2.1")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "192.0.2.1");
    // No port in the header: REMOTE_PORT stays the proxy's.
    assert_eq!(r.remote_port(), "8080");
}

#[test]
fn parse_proxy_headers_forwarded_for_v6_missing_brackets() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        headers: &["x-forwarded-for"],
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[("X-Forwarded-For", "2001:db8::0")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "2001:db8::0");
}

#[test]
fn parse_proxy_headers_forwared_for_multiple() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 2,
        headers: &["x-forwarded-for"],
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[("X-Forwarded-For", "192.0.2.1, 198.51.100.2, 203.0.113.1")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "198.51.100.2");
    assert_eq!(
        r.header("x-forwarded-for"),
        Some("198.51.100.2, 203.0.113.1")
    );
}

#[test]
fn parse_forwarded_multiple_proxies_trust_only_two() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 2,
        headers: &["forwarded"],
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[(
        "Forwarded",
        "For=192.0.2.1;host=fake.com, For=198.51.100.2;host=example.com:8080, For=203.0.113.1",
    )]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "198.51.100.2");
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.header("host"), Some("example.com:8080"));
    assert_eq!(r.server_port(), "8080");
    assert_eq!(
        r.header("forwarded"),
        Some("For=198.51.100.2;host=example.com:8080, For=203.0.113.1")
    );
}

#[test]
fn parse_forwarded_multiple_proxies() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 2,
        headers: &["forwarded"],
        ..Mw::default()
    };
    let value = r#"for="[2001:db8::1]:3821";host="example.com:8443";proto="https", for=192.0.2.1;host="example.internal:8080""#;
    let r = mw.call_default_addr(&[("Forwarded", value)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "2001:db8::1");
    assert_eq!(r.remote_port(), "3821");
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.header("host"), Some("example.com:8443"));
    assert_eq!(r.server_port(), "8443");
    assert_eq!(r.req.url_scheme(), "https");
    assert_eq!(r.header("forwarded"), Some(value));
}

#[test]
fn parse_forwarded_multiple_proxies_minimal() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 2,
        headers: &["forwarded"],
        ..Mw::default()
    };
    let value = r#"for="[2001:db8::1]";proto="https", for=192.0.2.1;host="example.org""#;
    let r = mw.call_default_addr(&[("Forwarded", value)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "2001:db8::1");
    assert_eq!(r.req.server_name(), "example.org");
    assert_eq!(r.header("host"), Some("example.org"));
    assert_eq!(r.server_port(), "443");
    assert_eq!(r.req.url_scheme(), "https");
    assert_eq!(r.header("forwarded"), Some(value));
}

const XFF_XFP_XFH: &[&str] = &["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"];
const XFF_XFP_XFH_XFPORT: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
];

#[test]
fn parse_proxy_headers_forwarded_host_with_port() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 2,
        headers: XFF_XFP_XFH,
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[
        ("X-Forwarded-For", "192.0.2.1, 198.51.100.2, 203.0.113.1"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "example.com:8080"),
    ]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "198.51.100.2");
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.header("host"), Some("example.com:8080"));
    assert_eq!(r.server_port(), "8080");
    assert_eq!(
        r.header("x-forwarded-for"),
        Some("198.51.100.2, 203.0.113.1")
    );
}

#[test]
fn parse_proxy_headers_forwarded_host_without_port() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 2,
        headers: XFF_XFP_XFH,
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[
        ("X-Forwarded-For", "192.0.2.1, 198.51.100.2, 203.0.113.1"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "example.com"),
    ]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "198.51.100.2");
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.header("host"), Some("example.com"));
    assert_eq!(r.server_port(), "80");
    assert_eq!(
        r.header("x-forwarded-for"),
        Some("198.51.100.2, 203.0.113.1")
    );
}

#[test]
fn parse_proxy_headers_forwarded_host_with_forwarded_port() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 2,
        headers: XFF_XFP_XFH_XFPORT,
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[
        ("X-Forwarded-For", "192.0.2.1, 198.51.100.2, 203.0.113.1"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "example.com"),
        ("X-Forwarded-Port", "8080"),
    ]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "198.51.100.2");
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.header("host"), Some("example.com:8080"));
    assert_eq!(r.server_port(), "8080");
    assert_eq!(
        r.header("x-forwarded-for"),
        Some("198.51.100.2, 203.0.113.1")
    );
}

#[test]
fn parse_proxy_headers_forwarded_host_multiple_with_forwarded_port() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 2,
        headers: XFF_XFP_XFH_XFPORT,
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[
        ("X-Forwarded-For", "192.0.2.1, 198.51.100.2, 203.0.113.1"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "example.com, example.org"),
        ("X-Forwarded-Port", "8080"),
    ]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "198.51.100.2");
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.header("host"), Some("example.com:8080"));
    assert_eq!(r.server_port(), "8080");
    assert_eq!(
        r.header("x-forwarded-for"),
        Some("198.51.100.2, 203.0.113.1")
    );
    assert_eq!(
        r.header("x-forwarded-host"),
        Some("example.com, example.org")
    );
}

#[test]
fn parse_proxy_headers_forwarded_host_multiple_with_forwarded_port_limit_one_trusted() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 1,
        headers: XFF_XFP_XFH_XFPORT,
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[
        ("X-Forwarded-For", "192.0.2.1, 198.51.100.2, 203.0.113.1"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "example.com, example.org"),
        ("X-Forwarded-Port", "8080"),
    ]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "203.0.113.1");
    assert_eq!(r.req.server_name(), "example.org");
    assert_eq!(r.header("host"), Some("example.org:8080"));
    assert_eq!(r.server_port(), "8080");
    assert_eq!(r.header("x-forwarded-for"), Some("203.0.113.1"));
    assert_eq!(r.header("x-forwarded-host"), Some("example.org"));
}

fn forwarded_only(count: usize) -> Mw {
    Mw {
        trusted_proxy: Some("*"),
        count,
        headers: &["forwarded"],
        ..Mw::default()
    }
}

#[test]
fn parse_forwarded() {
    let r = forwarded_only(1).call_default_addr(&[(
        "Forwarded",
        "For=198.51.100.2:5858;host=example.com:8080;proto=https",
    )]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "198.51.100.2");
    assert_eq!(r.remote_port(), "5858");
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.header("host"), Some("example.com:8080"));
    assert_eq!(r.server_port(), "8080");
    assert_eq!(r.req.url_scheme(), "https");
}

#[test]
fn parse_forwarded_empty_pair() {
    let r = forwarded_only(1)
        .call_default_addr(&[("Forwarded", "For=198.51.100.2;;proto=https;by=_unused")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "198.51.100.2");
}

#[test]
fn parse_forwarded_pair_token_whitespace() {
    let r = forwarded_only(1).call_default_addr(&[("Forwarded", "For=198.51.100.2; proto =https")]);
    r.assert_malformed("Forwarded");
    assert_eq!(
        r.logged,
        vec!["Malformed proxy header \"Forwarded\" from \"127.0.0.1\": Token may not be surrounded by whitespace value: For=198.51.100.2; proto =https"]
    );
}

#[test]
fn parse_forwarded_pair_value_whitespace() {
    let r = forwarded_only(1)
        .call_default_addr(&[("Forwarded", r#"For= "198.51.100.2"; proto =https"#)]);
    r.assert_malformed("Forwarded");
    assert!(r.logged[0].contains("Value may not be surrounded by whitespace"));
}

#[test]
fn parse_forwarded_pair_no_equals() {
    let r = forwarded_only(1).call_default_addr(&[("Forwarded", "For")]);
    r.assert_malformed("Forwarded");
    assert!(r.logged[0].contains("Invalid forwarded-pair missing \"=\""));
}

#[test]
fn parse_forwarded_warning_unknown_token() {
    let r = forwarded_only(1).call_default_addr(&[(
        "Forwarded",
        r#"For=198.51.100.2;host=example.com:8080;proto=https;unknown="yolo""#,
    )]);
    assert_eq!(r.status, 200);
    assert_eq!(r.logged.len(), 1);
    assert!(r.logged[0].contains("Unknown Forwarded token"));
    assert_eq!(r.logged[0], "Unknown Forwarded token: unknown");
    assert_eq!(r.req.remote_addr(), "198.51.100.2");
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.header("host"), Some("example.com:8080"));
    assert_eq!(r.server_port(), "8080");
    assert_eq!(r.req.url_scheme(), "https");
}

#[test]
fn parse_no_valid_proxy_headers() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 1,
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[
        ("X-Forwarded-For", "198.51.100.2"),
        (
            "Forwarded",
            "For=198.51.100.2;host=example.com:8080;proto=https",
        ),
    ]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "127.0.0.1");
    assert_eq!(r.req.server_name(), "localhost");
    assert_eq!(r.header("host"), Some("192.168.1.1:80"));
    assert_eq!(r.server_port(), "8080");
    assert_eq!(r.req.url_scheme(), "http");
    // Neither was trusted, so both are gone.
    assert_eq!(r.header("x-forwarded-for"), None);
    assert_eq!(r.header("forwarded"), None);
}

#[test]
fn parse_multiple_x_forwarded_proto() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 1,
        headers: &["x-forwarded-proto"],
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[("X-Forwarded-Proto", "http, https")]);
    r.assert_malformed("X-Forwarded-Proto");
    assert!(r.logged[0].contains("Unspecified behavior for multiple values found in header"));
}

#[test]
fn parse_multiple_x_forwarded_port() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 1,
        headers: &["x-forwarded-port"],
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[("X-Forwarded-Port", "443, 80")]);
    r.assert_malformed("X-Forwarded-Port");
}

const XFPORT_XFH_XFP: &[&str] = &["x-forwarded-port", "x-forwarded-host", "x-forwarded-proto"];

#[test]
fn parse_forwarded_port_wrong_proto_port_80() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 1,
        headers: XFPORT_XFH_XFP,
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[
        ("X-Forwarded-Port", "80"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "example.com"),
    ]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.header("host"), Some("example.com:80"));
    assert_eq!(r.server_port(), "80");
    assert_eq!(r.req.url_scheme(), "https");
}

#[test]
fn parse_forwarded_port_wrong_proto_port_443() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 1,
        headers: XFPORT_XFH_XFP,
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[
        ("X-Forwarded-Port", "443"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "example.com"),
    ]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.header("host"), Some("example.com:443"));
    assert_eq!(r.server_port(), "443");
    assert_eq!(r.req.url_scheme(), "http");
}

#[test]
fn parse_forwarded_for_bad_quote() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 1,
        headers: &["x-forwarded-for"],
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[("X-Forwarded-For", "\"foo")]);
    r.assert_malformed("X-Forwarded-For");
    assert!(r.logged[0].contains("Invalid quoting in value"));
}

#[test]
fn parse_forwarded_host_bad_quote() {
    let mw = Mw {
        trusted_proxy: Some("*"),
        count: 1,
        headers: &["x-forwarded-host"],
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[("X-Forwarded-Host", "\"foo")]);
    r.assert_malformed("X-Forwarded-Host");
}

// ---------------------------------------------------------------------------
// The wire captures of waitress 3.0.2 (proxy_capture.txt), as middleware
// calls: REMOTE_ADDR 127.0.0.1, SERVER_NAME waitress.invalid.

fn all_x(trusted_proxy: &'static str, count: usize) -> Mw {
    Mw {
        trusted_proxy: Some(trusted_proxy),
        count,
        headers: ALL_X,
        ..Mw::default()
    }
}

#[test]
fn capture_default_strips_every_proxy_header() {
    let r = Mw::default().call_default_addr(&[
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil"),
        ("X-Forwarded-Port", "1"),
        ("X-Forwarded-By", "p"),
        ("Forwarded", "for=1.2.3.4"),
        ("X-Other", "keep"),
    ]);
    assert_eq!(r.status, 200);
    let names: Vec<&str> = r.req.headers().map(|(n, _)| n).collect();
    assert_eq!(names, ["Host", "X-Other"]);
    assert_eq!(r.req.remote_addr(), "127.0.0.1");
    assert_eq!(r.req.url_scheme(), "http");
}

#[test]
fn capture_no_clearing_passes_headers_through() {
    let mw = Mw {
        clear_untrusted: false,
        ..Mw::default()
    };
    // No trusted_proxy and no clearing: waitress does not install the
    // middleware at all, and neither does this server.
    let mut adj = Adjustments::default();
    adj.clear_untrusted_proxy_headers = false;
    assert!(ProxyConfig::from_adjustments(&adj).unwrap().is_none());
    let r = mw.call_default_addr(&[("X-Forwarded-For", "1.2.3.4"), ("Forwarded", "for=1.2.3.4")]);
    assert_eq!(r.header("x-forwarded-for"), Some("1.2.3.4"));
    assert_eq!(r.header("forwarded"), Some("for=1.2.3.4"));
    assert_eq!(r.req.remote_addr(), "127.0.0.1");
}

#[test]
fn capture_untrusted_peer() {
    let r = all_x("10.0.0.1", 1).call_default_addr(&[
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Forwarded-Proto", "https"),
    ]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-forwarded-for"), None);
    assert_eq!(r.header("x-forwarded-proto"), None);
    assert_eq!(r.req.remote_addr(), "127.0.0.1");
    assert_eq!(r.req.url_scheme(), "http");
}

#[test]
fn capture_all_x_forwarded_count_1() {
    let r = all_x("127.0.0.1", 1).call_default_addr(&[
        ("Host", "internal:8080"),
        ("X-Forwarded-For", "10.0.0.9, 192.0.2.1, 198.51.100.7"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "example.com, proxy.local"),
        ("X-Forwarded-Port", "8443"),
        ("X-Forwarded-By", "p1"),
        ("Forwarded", "for=6.6.6.6"),
    ]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("host"), Some("proxy.local:8443"));
    assert_eq!(r.header("x-forwarded-by"), Some("p1"));
    assert_eq!(r.header("x-forwarded-for"), Some("198.51.100.7"));
    assert_eq!(r.header("x-forwarded-host"), Some("proxy.local"));
    assert_eq!(r.header("x-forwarded-port"), Some("8443"));
    assert_eq!(r.header("x-forwarded-proto"), Some("https"));
    assert_eq!(r.header("forwarded"), None);
    assert_eq!(r.req.remote_addr(), "198.51.100.7");
    assert_eq!(r.req.server_name(), "proxy.local");
    assert_eq!(r.server_port(), "8443");
    assert_eq!(r.req.url_scheme(), "https");
}

#[test]
fn capture_xff_forms() {
    let mw = all_x("127.0.0.1", 1);
    let r = mw.call_default_addr(&[("X-Forwarded-For", "2001:db8::1")]);
    assert_eq!(r.req.remote_addr(), "2001:db8::1");
    assert_eq!(r.header("x-forwarded-for"), Some("2001:db8::1"));
    let r = mw.call_default_addr(&[("X-Forwarded-For", "192.0.2.1:1234")]);
    assert_eq!(r.req.remote_addr(), "192.0.2.1");
    assert_eq!(r.remote_port(), "1234");
    // Empty: no change, the header is kept as it is.
    let r = mw.call_default_addr(&[("X-Forwarded-For", "")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.remote_addr(), "127.0.0.1");
    assert_eq!(r.header("x-forwarded-for"), Some(""));
}

#[test]
fn capture_proto_http_gives_port_80() {
    let r = all_x("127.0.0.1", 1).call_default_addr(&[
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "example.com"),
    ]);
    assert_eq!(r.header("host"), Some("example.com"));
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.server_port(), "80");
    assert_eq!(r.req.url_scheme(), "http");
}

#[test]
fn capture_host_port_overrides_forwarded_port() {
    let r = all_x("127.0.0.1", 1).call_default_addr(&[
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "example.com:9000"),
        ("X-Forwarded-Port", "8443"),
    ]);
    assert_eq!(r.header("host"), Some("example.com:9000"));
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.server_port(), "9000");
    assert_eq!(r.req.url_scheme(), "https");
}

#[test]
fn capture_malformed() {
    let mw = all_x("127.0.0.1", 1);
    for (h, v, name) in [
        ("X-Forwarded-Proto", "https, http", "X-Forwarded-Proto"),
        ("X-Forwarded-Proto", "ftp", "X-Forwarded-Proto"),
        ("X-Forwarded-Port", "80, 443", "X-Forwarded-Port"),
        ("X-Forwarded-For", "\"1.2.3.4", "X-Forwarded-For"),
    ] {
        let r = mw.call_default_addr(&[(h, v)]);
        r.assert_malformed(name);
        assert_eq!(
            r.body,
            format!("Bad Request\r\n\r\nHeader \"{name}\" malformed.\r\n\r\n(generated by server)")
        );
    }
    let r = forwarded_only(1).call_default_addr(&[("Forwarded", "proto=ftp")]);
    r.assert_malformed("Forwarded Proto=");
    assert_eq!(r.body.len(), 0x4C);
    assert_eq!(
        r.logged,
        vec!["Malformed proxy header \"Forwarded Proto=\" from \"127.0.0.1\": unsupported proto value value: ftp"]
    );
    for v in ["for", "for = 1.2.3.4"] {
        forwarded_only(1)
            .call_default_addr(&[("Forwarded", v)])
            .assert_malformed("Forwarded");
    }
}

#[test]
fn capture_count_2_proto_untrusted() {
    let mw = Mw {
        trusted_proxy: Some("127.0.0.1"),
        count: 2,
        headers: &["x-forwarded-host", "x-forwarded-for"],
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[
        ("X-Forwarded-For", "10.0.0.9, 192.0.2.1, 198.51.100.7"),
        ("X-Forwarded-Host", "a.example, b.example, c.example"),
        ("X-Forwarded-Proto", "https"),
    ]);
    assert_eq!(r.header("host"), Some("b.example"));
    assert_eq!(r.header("x-forwarded-for"), Some("192.0.2.1, 198.51.100.7"));
    assert_eq!(r.header("x-forwarded-host"), Some("b.example, c.example"));
    assert_eq!(r.header("x-forwarded-proto"), None);
    assert_eq!(r.req.remote_addr(), "192.0.2.1");
    assert_eq!(r.req.server_name(), "b.example");
    // No proto, no port: SERVER_PORT stays the connection's.
    assert_eq!(r.server_port(), "8080");
    assert_eq!(r.req.url_scheme(), "http");
}

#[test]
fn capture_forwarded_forms() {
    let r = forwarded_only(1).call_default_addr(&[
        (
            "Forwarded",
            "for=192.0.2.60;proto=https;host=example.com:8443;by=203.0.113.43",
        ),
        ("X-Forwarded-For", "6.6.6.6"),
    ]);
    assert_eq!(r.req.remote_addr(), "192.0.2.60");
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.server_port(), "8443");
    assert_eq!(r.req.url_scheme(), "https");
    assert_eq!(r.header("host"), Some("example.com:8443"));
    assert_eq!(r.header("x-forwarded-for"), None);

    let r = forwarded_only(1).call_default_addr(&[(
        "Forwarded",
        r#"for=192.0.2.1;host=first.example;proto=https, for="[2001:db8::1]:4711";host=second.example"#,
    )]);
    assert_eq!(
        r.header("forwarded"),
        Some(r#"for="[2001:db8::1]:4711";host=second.example"#)
    );
    assert_eq!(r.header("host"), Some("second.example"));
    assert_eq!(r.req.remote_addr(), "2001:db8::1");
    assert_eq!(r.remote_port(), "4711");
    assert_eq!(r.req.server_name(), "second.example");
    assert_eq!(r.server_port(), "8080");
    assert_eq!(r.req.url_scheme(), "http");

    // Pairs are lower-cased, values too; the header keeps its case.
    let r = forwarded_only(1)
        .call_default_addr(&[("Forwarded", "For=192.0.2.1;Host=Example.COM;Proto=HTTPS")]);
    assert_eq!(
        r.header("forwarded"),
        Some("For=192.0.2.1;Host=Example.COM;Proto=HTTPS")
    );
    assert_eq!(r.header("host"), Some("example.com"));
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.server_port(), "443");
    assert_eq!(r.req.url_scheme(), "https");
}

// ---------------------------------------------------------------------------
// More of waitress's rules.

#[test]
fn trusted_proxy_count_zero_keeps_every_hop() {
    // Python's list[-0:] is the whole list.
    let r = all_x("*", 0).call_default_addr(&[("X-Forwarded-For", "192.0.2.1, 198.51.100.2")]);
    assert_eq!(r.req.remote_addr(), "192.0.2.1");
    assert_eq!(r.header("x-forwarded-for"), Some("192.0.2.1, 198.51.100.2"));
}

#[test]
fn count_larger_than_the_list_keeps_every_hop() {
    let r = all_x("*", 5).call_default_addr(&[("X-Forwarded-For", "192.0.2.1, 198.51.100.2")]);
    assert_eq!(r.req.remote_addr(), "192.0.2.1");
}

#[test]
fn forwarded_oldest_kept_value_wins_and_gaps_fall_through() {
    let r = forwarded_only(3).call_default_addr(&[(
        "Forwarded",
        "for=192.0.2.1;host=ignored.example, for=192.0.2.2, host=b.example;proto=https, for=192.0.2.4",
    )]);
    assert_eq!(r.req.remote_addr(), "192.0.2.2");
    assert_eq!(r.req.server_name(), "b.example");
    assert_eq!(r.req.url_scheme(), "https");
    assert_eq!(
        r.header("forwarded"),
        Some("for=192.0.2.2, host=b.example;proto=https, for=192.0.2.4")
    );
}

#[test]
fn forwarded_error_in_an_untrusted_element_still_fails() {
    // Every element is parsed, as in waitress, not just the kept ones.
    forwarded_only(1)
        .call_default_addr(&[("Forwarded", "for, for=192.0.2.1")])
        .assert_malformed("Forwarded");
}

#[test]
fn forwarded_empty_is_ignored_but_x_forwarded_are_untrusted() {
    let r = forwarded_only(1).call_default_addr(&[
        ("Forwarded", ""),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-By", "p"),
    ]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("forwarded"), Some(""));
    assert_eq!(r.header("x-forwarded-proto"), None);
    assert_eq!(r.header("x-forwarded-by"), None);
    assert_eq!(r.req.url_scheme(), "http");
}

#[test]
fn quoted_values_are_unquoted() {
    let r = all_x("*", 1).call_default_addr(&[
        ("X-Forwarded-Proto", "\"HTTPS\""),
        ("X-Forwarded-Host", "\"example.com\""),
    ]);
    assert_eq!(r.req.url_scheme(), "https");
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.header("host"), Some("example.com"));
    assert_eq!(r.server_port(), "443");
}

#[test]
fn xff_hostname_without_dot_and_with_port_is_kept_whole() {
    // waitress brackets an element with ':' and no '.', so this is an
    // address whole (and the port stays the proxy's).
    let r = all_x("*", 1).call_default_addr(&[("X-Forwarded-For", "proxyhost:80")]);
    assert_eq!(r.req.remote_addr(), "proxyhost:80");
    assert_eq!(r.remote_port(), "8080");
    // With a dot it is split.
    let r = all_x("*", 1).call_default_addr(&[("X-Forwarded-For", "proxy.host:81")]);
    assert_eq!(r.req.remote_addr(), "proxy.host");
    assert_eq!(r.remote_port(), "81");
    // An empty port gives no REMOTE_PORT.
    let r = all_x("*", 1).call_default_addr(&[("X-Forwarded-For", "192.0.2.1:")]);
    assert_eq!(r.req.remote_addr(), "192.0.2.1");
    assert_eq!(r.req.remote_port(), None);
}

#[test]
fn forwarded_host_with_empty_port_leaves_server_port() {
    // waitress: the empty port replaces the scheme's default and then is
    // not applied.
    let r = all_x("*", 1).call_default_addr(&[
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "example.com:"),
    ]);
    assert_eq!(r.status, 200);
    assert_eq!(r.req.server_name(), "example.com");
    assert_eq!(r.header("host"), Some("example.com:"));
    assert_eq!(r.server_port(), "8080");
    assert_eq!(r.req.url_scheme(), "https");
}

#[test]
fn bracketed_ipv6_forwarded_host() {
    let r = all_x("*", 1).call_default_addr(&[
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "[2001:db8::1]:8443"),
    ]);
    assert_eq!(r.req.server_name(), "[2001:db8::1]");
    assert_eq!(r.server_port(), "8443");
    let r = all_x("*", 1).call_default_addr(&[
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "[2001:db8::1]"),
        ("X-Forwarded-Port", "444"),
    ]);
    assert_eq!(r.req.server_name(), "[2001:db8::1]");
    assert_eq!(r.header("host"), Some("[2001:db8::1]:444"));
    assert_eq!(r.server_port(), "444");
}

#[test]
fn trusted_x_forwarded_by_is_kept_uninterpreted() {
    let r = all_x("*", 1).call_default_addr(&[("X-Forwarded-By", "a, b")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-forwarded-by"), Some("a, b"));
}

#[test]
fn log_untrusted_lists_every_removed_header() {
    let mw = Mw {
        log_untrusted: true,
        ..Mw::default()
    };
    let r = mw.call_default_addr(&[("Forwarded", "for=1.2.3.4"), ("x-forwarded-for", "1.2.3.4")]);
    assert_eq!(
        r.logged,
        vec!["Removed untrusted headers (X-Forwarded-For, Forwarded). maitred recommends these be removed upstream."]
    );
    // Nothing removed, nothing logged.
    let r = mw.call_default_addr(&[("X-Other", "1")]);
    assert!(r.logged.is_empty());
}

#[test]
fn unix_socket_peer_is_localhost() {
    let mw = Mw {
        trusted_proxy: Some("localhost"),
        headers: &["x-forwarded-for"],
        ..Mw::default()
    };
    let r = mw.call(("localhost", 0), &[("X-Forwarded-For", "192.0.2.1")]);
    assert_eq!(r.req.remote_addr(), "192.0.2.1");
    // A TCP peer on loopback is not "localhost".
    let r = mw.call(("127.0.0.1", 1), &[("X-Forwarded-For", "192.0.2.1")]);
    assert_eq!(r.req.remote_addr(), "127.0.0.1");
    assert_eq!(r.header("x-forwarded-for"), None);
}

#[test]
fn implicit_x_forwarded_proto_when_no_header_is_named() {
    let adj = Adjustments::default().trusted_proxy("10.0.0.1");
    let c = ProxyConfig::from_adjustments(&adj).unwrap().unwrap();
    assert_eq!(c.headers, HeaderSet::of(&[ProxyHeader::XForwardedProto]));
    assert_eq!(c.count, 1);
    let adj = Adjustments::default()
        .trusted_proxy("10.0.0.1")
        .trusted_proxy_count(3)
        .trusted_proxy_headers(&["X-Forwarded-For", "x-forwarded-host"]);
    let c = ProxyConfig::from_adjustments(&adj).unwrap().unwrap();
    assert_eq!(
        c.headers,
        HeaderSet::of(&[ProxyHeader::XForwardedFor, ProxyHeader::XForwardedHost])
    );
    assert_eq!(c.count, 3);
    // The default: clearing only.
    let c = ProxyConfig::from_adjustments(&Adjustments::default())
        .unwrap()
        .unwrap();
    assert!(c.trusted.is_none() && c.clear_untrusted);
}

// ---------------------------------------------------------------------------
// Deliberate differences (DIFFERENCES.md, "Proxy headers").

#[test]
fn difference_xff_bracketed_ipv6_with_port_is_split() {
    // waitress: REMOTE_ADDR "[2001:db8::1]:4711".
    let r = all_x("*", 1).call_default_addr(&[("X-Forwarded-For", "\"[2001:db8::1]:4711\"")]);
    assert_eq!(r.req.remote_addr(), "2001:db8::1");
    assert_eq!(r.remote_port(), "4711");
    let r = all_x("*", 1).call_default_addr(&[("X-Forwarded-For", "[2001:db8::2]:80")]);
    assert_eq!(r.req.remote_addr(), "2001:db8::2");
    assert_eq!(r.remote_port(), "80");
}

#[test]
fn difference_ipv6_addresses_are_recognised_whole() {
    // waitress splits these at the last colon.
    let r = all_x("*", 1).call_default_addr(&[("X-Forwarded-For", "::ffff:192.0.2.1")]);
    assert_eq!(r.req.remote_addr(), "::ffff:192.0.2.1");
    assert_eq!(r.remote_port(), "8080");
    let r = forwarded_only(1).call_default_addr(&[("Forwarded", "for=2001:db8::1")]);
    assert_eq!(r.req.remote_addr(), "2001:db8::1");
    let r = forwarded_only(1).call_default_addr(&[("Forwarded", "for=\"[fe80::1%eth0]\"")]);
    assert_eq!(r.req.remote_addr(), "fe80::1%eth0");
}

#[test]
fn difference_ports_must_be_numbers() {
    let mw = all_x("*", 1);
    for (h, v) in [
        ("X-Forwarded-Port", "http"),
        ("X-Forwarded-Port", "65536"),
        ("X-Forwarded-Port", "+80"),
        ("X-Forwarded-Host", "example.com:abc"),
        ("X-Forwarded-For", "192.0.2.1:x"),
        ("X-Forwarded-For", "192.0.2.1:99999"),
    ] {
        mw.call_default_addr(&[(h, v)]).assert_malformed(h);
    }
    for v in ["for=\"192.0.2.1:x\"", "host=example.com:x"] {
        forwarded_only(1)
            .call_default_addr(&[("Forwarded", v)])
            .assert_malformed("Forwarded");
    }
    assert_eq!(port_number(b"0000000000443"), Some(443));
    assert_eq!(port_number(b"000"), Some(0));
    assert_eq!(port_number(b"065536"), None);
    assert_eq!(port_number(b""), None);
    // Leading zeros are digits: the Host keeps them.
    let r = mw.call_default_addr(&[
        ("X-Forwarded-Host", "example.com"),
        ("X-Forwarded-Port", "08080"),
    ]);
    assert_eq!(r.server_port(), "8080");
    assert_eq!(r.header("host"), Some("example.com:08080"));
}

#[test]
fn difference_empty_client_address_is_malformed() {
    // waitress: a 500 (IndexError) for Forwarded, an empty or odd
    // REMOTE_ADDR for X-Forwarded-For.
    forwarded_only(1)
        .call_default_addr(&[("Forwarded", "for=\":80\"")])
        .assert_malformed("Forwarded");
    all_x("*", 1)
        .call_default_addr(&[("X-Forwarded-For", "[]")])
        .assert_malformed("X-Forwarded-For");
}

// ---------------------------------------------------------------------------
// Pieces.

#[test]
fn undquote_rules() {
    let ok = |v: &[u8], want: &[u8]| assert_eq!(undquote(v).unwrap().as_ref(), want, "{v:?}");
    ok(b"", b"");
    ok(b"abc", b"abc");
    ok(b"\"\"", b"");
    ok(b"\"a b\"", b"a b");
    ok(b"\"a\\\"b\"", b"a\"b");
    ok(b"\"a\\\\b\"", b"a\\b");
    ok(b"\"\\a\"", b"a");
    ok(b"\"\xe9\"", b"\xe9");
    ok(b"a\"b", b"a\"b");
    for bad in [
        &b"\""[..],
        b"\"abc",
        b"abc\"",
        b"\"a\"b\"",
        b"\"abc\\\"",
        b"\"a\x01b\"",
        b"\"a\\\x01\"",
        b"\"\x7f\"",
    ] {
        assert_eq!(undquote(bad), Err("Invalid quoting in value"), "{bad:?}");
    }
}

#[test]
fn python_string_helpers() {
    assert_eq!(py_strip(b" \t\x85a b\xa0\x0b"), b"a b");
    assert_eq!(py_strip(b"   "), b"");
    assert_eq!(
        py_lower(b"HTTPS \xc0\xd7\xde\xdf"),
        b"https \xe0\xd7\xfe\xdf"
    );
    assert_eq!(latin1(b"a\xe9"), "a\u{e9}");
}

#[test]
fn header_names() {
    for h in ProxyHeader::ALL {
        assert_eq!(ProxyHeader::from_name(h.name()), Some(h));
        assert_eq!(
            ProxyHeader::from_name(&h.name().to_ascii_lowercase()),
            Some(h)
        );
        assert_eq!(
            ProxyHeader::from_name(&h.name().to_ascii_uppercase()),
            Some(h)
        );
    }
    for other in [
        "Host",
        "X-Forwarded",
        "X-Forwarded-Fur",
        "Forwarder",
        "",
        "X-Forwarded-Hosts",
    ] {
        assert_eq!(ProxyHeader::from_name(other), None, "{other}");
    }
    assert_eq!(HeaderSet::ALL.iter().count(), 6);
    assert!(HeaderSet::from_setting(["x-forwarded-foo"])
        .unwrap_err()
        .to_string()
        .contains("(x-forwarded-foo)"));
}

#[test]
fn forwarded_replaces_x_forwarded_values_as_waitress_does() {
    // Not reachable through the settings (Forwarded and X-Forwarded-* are
    // exclusive), but parse_proxy_headers keeps waitress's semantics: its
    // element loop reuses the X-Forwarded-* variables, so a non-empty
    // Forwarded replaces the host, proto and port they held; the client
    // address from X-Forwarded-For is kept when no element has `for`.
    let values = ProxyHeaderValues::new()
        .with(ProxyHeader::XForwardedFor, b"192.0.2.1")
        .with(ProxyHeader::XForwardedHost, b"x.example")
        .with(ProxyHeader::XForwardedPort, b"8443")
        .with(ProxyHeader::Forwarded, b"by=p");
    let out = parse_proxy_headers(&values, 1, HeaderSet::ALL, "http", &mut |_| {}).unwrap();
    assert_eq!(out.remote_addr.as_deref(), Some("192.0.2.1"));
    assert_eq!(out.server_name, None);
    assert_eq!(out.host, None);
    assert_eq!(out.server_port, None);
    assert_eq!(
        out.untrusted,
        HeaderSet::of(&[
            ProxyHeader::XForwardedFor,
            ProxyHeader::XForwardedHost,
            ProxyHeader::XForwardedProto,
            ProxyHeader::XForwardedPort,
            ProxyHeader::XForwardedBy,
        ])
    );
}

#[test]
fn client_address_forms() {
    let ok = |c: &str, xff: bool, addr: &str, port: Option<Option<u16>>| {
        let (a, p) = client_address(c.as_bytes(), xff).unwrap();
        assert_eq!((latin1(&a).as_str(), p), (addr, port), "{c}");
    };
    ok("192.0.2.1", true, "192.0.2.1", None);
    ok("192.0.2.1:80", true, "192.0.2.1", Some(Some(80)));
    ok("192.0.2.1:", false, "192.0.2.1", Some(None));
    ok("2001:db8::1", true, "2001:db8::1", None);
    ok("2001:db8::1", false, "2001:db8::1", None);
    ok("[2001:db8::1]", false, "2001:db8::1", None);
    ok("[2001:db8::1]:443", true, "2001:db8::1", Some(Some(443)));
    ok("fe80::1%eth0", false, "fe80::1%eth0", None);
    ok("unknown", false, "unknown", None);
    ok("_hidden:80", false, "_hidden", Some(Some(80)));
    // waitress's rules where the form is not an IPv6 address with a
    // numeric port: garbage after "]" keeps an X-Forwarded-For element
    // whole, and a zone that is not RFC 6874's is no zone.
    ok("[::1]:80x", true, "[::1]:80x", None);
    ok("fe80::1%eth0;x", true, "fe80::1%eth0;x", None);
    for (c, xff) in [
        (":80", false),
        ("[]", true),
        ("[::1]:80x", false),
        ("[::1]:99999", true),
    ] {
        assert!(client_address(c.as_bytes(), xff).is_err(), "{c}");
    }
}
