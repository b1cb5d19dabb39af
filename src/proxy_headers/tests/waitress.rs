//! waitress's `tests/test_proxy_headers.py`, `TestProxyHeadersMiddleware`
//! case by case (same names, with `test_` dropped).

use super::*;

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
