//! More of waitress's rules (hop counts, `Forwarded` elements, quoting,
//! ports, logging removed headers, the unix socket's `localhost`, the
//! implicit `X-Forwarded-Proto`), then the places where this port
//! deliberately differs (DIFFERENCES.md, "Proxy headers").

use super::*;

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
