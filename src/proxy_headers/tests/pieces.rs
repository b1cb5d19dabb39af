//! The pieces the middleware is built of, each alone: `undquote`, the
//! Python string helpers, the header names, rewriting `Forwarded`, client
//! addresses.

use super::*;

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
