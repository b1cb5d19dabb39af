//! Unit tests of the settings: the converters, the table, `set` and the
//! validation rules (with waitress's tests/test_adjustments.py re-expressed).

use std::net::SocketAddr;

use super::*;

#[test]
fn converters() {
    for t in ["t", "true", "Y", "yes", " on ", "1", "TRUE"] {
        assert!(asbool(t), "{t}");
    }
    for f in ["f", "false", "no", "0", "", "2", "truthy"] {
        assert!(!asbool(f), "{f}");
    }
    assert_eq!(aslist("a b\nc\n\n  d"), vec!["a", "b", "c", "d"]);
    assert_eq!(asoctal("777"), Some(0o777));
    assert_eq!(asoctal("0o600"), Some(0o600));
    assert_eq!(asoctal("8"), None);
    assert_eq!(slash_fixed_str("///foo//"), "/foo");
    assert_eq!(slash_fixed_str("/"), "/");
    assert_eq!(slash_fixed_str(""), "");
    assert_eq!(slash_fixed_str(" foo/bar "), "/foo/bar");
}

#[test]
fn defaults_match_the_table() {
    // Every table default, set through `set`, gives Default's value.
    let d = Adjustments::default();
    for s in SETTINGS {
        let mut a = Adjustments::default();
        a.set(s.name, s.default).unwrap();
        assert_eq!(
            format!("{:?}", strip(&a, s.name)),
            format!("{:?}", strip(&d, s.name)),
            "{}",
            s.name
        );
    }
    fn strip(a: &Adjustments, name: &str) -> Adjustments {
        // host/port/listen/sockets/unix_socket are "not set" by default
        // but the table shows their effective default; compare the rest.
        let mut a = a.clone();
        a.explicit.clear();
        match name {
            "host" => a.host = None,
            "port" => a.port = None,
            "listen" => a.listen.clear(),
            "trusted_proxy_count" => a.trusted_proxy_count = None,
            _ => {}
        }
        a
    }
}

#[test]
fn set_errors_name_setting_and_value() {
    let mut a = Adjustments::default();
    assert_eq!(
        a.set("nope", "1").unwrap_err().to_string(),
        "Unknown adjustment 'nope'"
    );
    let e = a.set("threads", "four").unwrap_err().to_string();
    assert!(e.contains("threads") && e.contains("four"), "{e}");
    let e = a.set("port", "99999").unwrap_err().to_string();
    assert!(e.contains("port") && e.contains("99999"), "{e}");
    let e = a.set("unix_socket_perms", "9").unwrap_err().to_string();
    assert!(e.contains("unix_socket_perms"), "{e}");
}

#[test]
fn exclusion_rules() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("listen", "127.0.0.1:1"), ("host", "x")],
            "host or port may not be set if listen is set.",
        ),
        (
            &[("listen", "127.0.0.1:1"), ("sockets", "3")],
            "socket may not be set if listen is set.",
        ),
        (
            &[("sockets", "3"), ("port", "1")],
            "host or port may not be set if sockets is set.",
        ),
        (
            &[("sockets", "3"), ("unix_socket", "/tmp/x")],
            "unix_socket may not be set if sockets is set",
        ),
        (
            &[("unix_socket", "/tmp/x"), ("host", "h")],
            "unix_socket may not be set if host or port is set",
        ),
        (
            &[("unix_socket", "/tmp/x"), ("listen", "h:1")],
            "unix_socket may not be set if listen is set",
        ),
        (
            &[("trusted_proxy_count", "2")],
            "trusted_proxy_count has no meaning without setting trusted_proxy",
        ),
        (
            &[("trusted_proxy_headers", "x-forwarded-for")],
            "trusted_proxy_headers has no meaning without setting trusted_proxy",
        ),
    ];
    for (pairs, msg) in cases {
        let a = Adjustments::from_pairs(pairs.iter().copied()).unwrap();
        assert_eq!(a.resolve().unwrap_err().to_string(), *msg, "{pairs:?}");
    }
    let a = Adjustments::from_pairs([
        ("trusted_proxy", "*"),
        ("trusted_proxy_headers", "forwarded x-forwarded-for"),
    ])
    .unwrap();
    assert!(a
        .resolve()
        .unwrap_err()
        .to_string()
        .contains("mutually exclusive"));
    let a = Adjustments::from_pairs([
        ("trusted_proxy", "*"),
        ("trusted_proxy_headers", "x-forwarded-foo"),
    ])
    .unwrap();
    assert!(a
        .resolve()
        .unwrap_err()
        .to_string()
        .starts_with("Received unknown trusted_proxy_headers value (x-forwarded-foo)"));
}

#[test]
fn listen_resolution() {
    let a = Adjustments::default();
    assert_eq!(
        a.resolve().unwrap(),
        vec![ListenSpec::Tcp("0.0.0.0:8080".parse().unwrap())]
    );
    let a = Adjustments::from_pairs([("listen", "127.0.0.1:9 [::1]:10 127.0.0.1:9")]).unwrap();
    assert_eq!(
        a.resolve().unwrap(),
        vec![
            ListenSpec::Tcp("127.0.0.1:9".parse().unwrap()),
            ListenSpec::Tcp("[::1]:10".parse().unwrap())
        ]
    );
    let a = Adjustments::from_pairs([("listen", "*:7")]).unwrap();
    assert_eq!(a.resolve().unwrap().len(), 2);
    let a = Adjustments::from_pairs([("listen", "*:7"), ("ipv6", "false")]).unwrap();
    assert_eq!(
        a.resolve().unwrap(),
        vec![ListenSpec::Tcp("0.0.0.0:7".parse().unwrap())]
    );
    let a = Adjustments::from_pairs([("listen", "[::1]:7"), ("ipv6", "false")]).unwrap();
    assert!(a
        .resolve()
        .unwrap_err()
        .to_string()
        .contains("ipv6 is disabled"));
    let a = Adjustments::from_pairs([("host", "127.0.0.1"), ("port", "0")]).unwrap();
    assert_eq!(
        a.resolve().unwrap(),
        vec![ListenSpec::Tcp("127.0.0.1:0".parse().unwrap())]
    );
    let a = Adjustments::from_pairs([("listen", "127.0.0.1:notaport")]).unwrap();
    assert!(a
        .resolve()
        .unwrap_err()
        .to_string()
        .starts_with("Invalid host/port specified"));
    let a = Adjustments::from_pairs([("unix_socket", "/tmp/s.sock")]).unwrap();
    assert_eq!(
        a.resolve().unwrap(),
        vec![ListenSpec::Unix("/tmp/s.sock".into())]
    );
}

// --- waitress's tests/test_adjustments.py, re-expressed ---

fn tcp(a: &str) -> ListenSpec {
    ListenSpec::Tcp(a.parse().unwrap())
}

#[test]
fn asbool_cases() {
    assert!(asbool("True"));
    assert!(!asbool("False"));
    assert!(asbool("yes"));
    assert!(asbool("on"));
    assert!(asbool("1"));
}

#[test]
fn goodvars() {
    let a = Adjustments::from_pairs([
        ("host", "localhost"),
        ("port", "8080"),
        ("threads", "5"),
        ("trusted_proxy", "192.168.1.1"),
        ("trusted_proxy_headers", "forwarded"),
        ("trusted_proxy_count", "2"),
        ("log_untrusted_proxy_headers", "true"),
        ("url_scheme", "https"),
        ("backlog", "20"),
        ("recv_bytes", "200"),
        ("send_bytes", "300"),
        ("outbuf_overflow", "400"),
        ("inbuf_overflow", "500"),
        ("connection_limit", "1000"),
        ("cleanup_interval", "1100"),
        ("channel_timeout", "1200"),
        ("log_socket_errors", "true"),
        ("max_request_header_size", "1300"),
        ("max_request_body_size", "1400"),
        ("expose_tracebacks", "true"),
        ("ident", "abc"),
        ("asyncore_loop_timeout", "5"),
        ("asyncore_use_poll", "true"),
        ("unix_socket_perms", "777"),
        ("url_prefix", "///foo/"),
        ("ipv4", "true"),
        ("ipv6", "false"),
    ])
    .unwrap();
    assert_eq!(a.host.as_deref(), Some("localhost"));
    assert_eq!(a.port, Some(8080));
    assert_eq!(a.threads, 5);
    assert_eq!(a.trusted_proxy.as_deref(), Some("192.168.1.1"));
    assert_eq!(
        a.trusted_proxy_headers,
        BTreeSet::from(["forwarded".to_string()])
    );
    assert_eq!(a.trusted_proxy_count, Some(2));
    assert!(a.log_untrusted_proxy_headers);
    assert_eq!(a.url_scheme, "https");
    assert_eq!(a.backlog, 20);
    assert_eq!(a.recv_bytes, 200);
    assert_eq!(a.send_bytes, 300);
    assert_eq!(a.outbuf_overflow, 400);
    assert_eq!(a.inbuf_overflow, 500);
    assert_eq!(a.connection_limit, 1000);
    assert_eq!(a.cleanup_interval, 1100);
    assert_eq!(a.channel_timeout, 1200);
    assert!(a.log_socket_errors);
    assert_eq!(a.max_request_header_size, 1300);
    assert_eq!(a.max_request_body_size, 1400);
    assert!(a.expose_tracebacks);
    assert_eq!(a.asyncore_loop_timeout, 5);
    assert!(a.asyncore_use_poll);
    assert_eq!(a.ident.as_deref(), Some("abc"));
    assert_eq!(a.unix_socket_perms, 0o777);
    assert_eq!(a.url_prefix, "/foo");
    assert!(a.ipv4);
    assert!(!a.ipv6);
    let specs = a.resolve().unwrap();
    assert!(specs.contains(&tcp("127.0.0.1:8080")), "{specs:?}");
    assert!(specs
        .iter()
        .all(|s| matches!(s, ListenSpec::Tcp(SocketAddr::V4(_)))));
}

#[test]
fn goodvar_listen_without_a_port_takes_the_default_port() {
    let a = Adjustments::from_pairs([("listen", "127.0.0.1")]).unwrap();
    assert_eq!(a.resolve().unwrap(), vec![tcp("127.0.0.1:8080")]);
    let a = Adjustments::from_pairs([("listen", "[::1]")]).unwrap();
    assert_eq!(a.resolve().unwrap(), vec![tcp("[::1]:8080")]);
}

#[test]
fn multiple_listen_keeps_the_order() {
    let a = Adjustments::from_pairs([("listen", "127.0.0.1:9090 127.0.0.1:8080")]).unwrap();
    assert_eq!(
        a.resolve().unwrap(),
        vec![tcp("127.0.0.1:9090"), tcp("127.0.0.1:8080")]
    );
}

#[test]
fn bad_port() {
    let a = Adjustments::from_pairs([("listen", "127.0.0.1:test")]).unwrap();
    assert_eq!(
        a.resolve().unwrap_err().to_string(),
        "Invalid host/port specified: \"127.0.0.1:test\""
    );
}

#[test]
fn service_port() {
    if !std::path::Path::new("/etc/services").exists() {
        eprintln!("skipped: no /etc/services on this machine");
        return;
    }
    let a = Adjustments::from_pairs([("listen", "127.0.0.1:http 0.0.0.0:https")]).unwrap();
    assert_eq!(
        a.resolve().unwrap(),
        vec![tcp("127.0.0.1:80"), tcp("0.0.0.0:443")]
    );
}

#[test]
fn good_sockets() {
    let a = Adjustments::from_pairs([("sockets", "3 4\n5")]).unwrap();
    assert_eq!(a.sockets, vec![3, 4, 5]);
    assert_eq!(
        a.resolve().unwrap(),
        vec![ListenSpec::Fd(3), ListenSpec::Fd(4), ListenSpec::Fd(5)]
    );
    let e = Adjustments::default()
        .set("sockets", "3 x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("sockets") && e.contains("\"x\""), "{e}");
}

#[test]
fn dont_mix_host_port_listen() {
    let a = Adjustments::from_pairs([
        ("host", "localhost"),
        ("port", "8080"),
        ("listen", "127.0.0.1:8080"),
    ])
    .unwrap();
    assert_eq!(
        a.resolve().unwrap_err().to_string(),
        "host or port may not be set if listen is set."
    );
}

#[test]
fn trusted_proxy_headers_string_lists() {
    let a = Adjustments::from_pairs([
        ("trusted_proxy", "localhost"),
        ("trusted_proxy_headers", "x-forwarded-for x-forwarded-by"),
    ])
    .unwrap();
    assert_eq!(
        a.trusted_proxy_headers,
        BTreeSet::from(["x-forwarded-for".to_string(), "x-forwarded-by".to_string()])
    );
    let a = Adjustments::from_pairs([
        ("trusted_proxy", "localhost"),
        (
            "trusted_proxy_headers",
            "x-forwarded-for\nx-forwarded-by\nX-Forwarded-Host",
        ),
    ])
    .unwrap();
    assert_eq!(a.trusted_proxy_headers.len(), 3);
    assert!(a.trusted_proxy_headers.contains("x-forwarded-host"));
    a.validate().unwrap();
}

#[test]
fn deprecated_send_bytes_warns() {
    use std::sync::{Arc, Mutex};
    let _serial = crate::logging::SINK_TEST_LOCK
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = Arc::clone(&lines);
    crate::logging::set_sink(move |_level, _target, message: &str| {
        l.lock().unwrap().push(message.to_string());
    });
    let r = Adjustments::default().set("send_bytes", "1");
    crate::logging::clear_sink();
    r.unwrap();
    assert!(lines
        .lock()
        .unwrap()
        .iter()
        .any(|m| m == "send_bytes will be removed in a future release"));
}

#[test]
fn ipv4_disabled() {
    let a = Adjustments::from_pairs([("ipv4", "false"), ("listen", "127.0.0.1:8080")]).unwrap();
    assert!(a
        .resolve()
        .unwrap_err()
        .to_string()
        .contains("ipv4 is disabled"));
    let a = Adjustments::from_pairs([("ipv4", "false"), ("ipv6", "false")]).unwrap();
    assert!(a
        .resolve()
        .unwrap_err()
        .to_string()
        .contains("both disabled"));
}

#[test]
fn server_header_removable() {
    let mut a = Adjustments::default();
    a.set("ident", "").unwrap();
    assert_eq!(a.ident, None);
    a.set("ident", "specific_header").unwrap();
    assert_eq!(a.ident.as_deref(), Some("specific_header"));
    assert_eq!(Adjustments::default().ident("").ident, None);
}

// --- this server's additions ---

#[test]
fn head_element_limits() {
    let a = Adjustments::from_pairs([
        ("max_request_line_size", "100"),
        ("max_header_field_size", "200"),
        ("max_header_fields", "3"),
    ])
    .unwrap();
    assert_eq!(
        (
            a.max_request_line_size,
            a.max_header_field_size,
            a.max_header_fields
        ),
        (100, 200, 3)
    );
    a.validate().unwrap();
    let d = Adjustments::default();
    assert_eq!(
        (
            d.max_request_line_size,
            d.max_header_field_size,
            d.max_header_fields
        ),
        (8192, 8192, 100)
    );
    let b = Adjustments::default()
        .max_request_line_size(1)
        .max_header_field_size(2)
        .max_header_fields(3);
    assert_eq!(
        (
            b.max_request_line_size,
            b.max_header_field_size,
            b.max_header_fields
        ),
        (1, 2, 3)
    );
    for name in [
        "max_request_line_size",
        "max_header_field_size",
        "max_header_fields",
    ] {
        let a = Adjustments::from_pairs([(name, "0")]).unwrap();
        assert_eq!(
            a.validate().unwrap_err().to_string(),
            format!("invalid value for {name}: 0 (it must be at least 1)")
        );
        assert!(Adjustments::default().set(name, "-1").is_err());
    }
}

#[test]
fn systemd_socket_activation_excludes_other_listeners() {
    for other in [
        ("listen", "127.0.0.1:1"),
        ("host", "h"),
        ("port", "1"),
        ("unix_socket", "/tmp/x"),
        ("sockets", "3"),
    ] {
        let a = Adjustments::from_pairs([("systemd_socket_activation", "yes"), other]).unwrap();
        assert_eq!(
            a.validate().unwrap_err().to_string(),
            "systemd_socket_activation may not be set if listen, host, port, unix_socket or sockets is set.",
            "{other:?}"
        );
    }
    // Not taken yet: resolve says so instead of binding the default.
    let a = Adjustments::default().systemd_socket_activation(true);
    a.validate().unwrap();
    assert!(a
        .resolve()
        .unwrap_err()
        .to_string()
        .contains("take_systemd_sockets"));
}
