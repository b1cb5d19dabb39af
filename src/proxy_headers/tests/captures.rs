//! The wire captures of waitress 3.0.2 (`proxy_capture.txt`), as
//! middleware calls: `REMOTE_ADDR` 127.0.0.1, `SERVER_NAME`
//! `waitress.invalid`.

use super::*;

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
