//! waitress's `tests/test_proxy_headers.py`, case by case (same names, with
//! `test_` dropped), then this port's own cases: the wire captures of
//! waitress 3.0.2 (`proxy_capture.txt`) and the places where this port
//! deliberately differs. (`trusted_proxy` lists and ranges are tested in
//! `trusted`.)
//!
//! This file is the harness (`Mw`, waitress's `_makeOne`, and what a call
//! gives back); the cases are in `tests/`: `waitress` (the port of
//! `TestProxyHeadersMiddleware`), `captures`, `rules` (more of waitress's
//! rules, and the differences) and `pieces` (the parts alone).

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

/// A trusted proxy (any peer) whose `Forwarded` alone is trusted.
fn forwarded_only(count: usize) -> Mw {
    Mw {
        trusted_proxy: Some("*"),
        count,
        headers: &["forwarded"],
        ..Mw::default()
    }
}

/// This trusted proxy, with every `X-Forwarded-*` header trusted.
fn all_x(trusted_proxy: &'static str, count: usize) -> Mw {
    Mw {
        trusted_proxy: Some(trusted_proxy),
        count,
        headers: ALL_X,
        ..Mw::default()
    }
}

mod captures;
mod pieces;
mod rules;
mod waitress;
