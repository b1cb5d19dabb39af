//! A real HAProxy in front of the server as an L4 load balancer (`mode
//! tcp`), speaking the PROXY protocol to it: one frontend whose backend
//! server has `send-proxy-v2` with TLVs (a CRC32C, a unique ID, an SSL
//! one) and HTTP health checks, which HAProxy sends as v2 `LOCAL`
//! connections; one with `send-proxy` (v1) and plain TCP health checks,
//! which HAProxy sends with a v1 line of the check's own addresses. The server has `proxy_protocol` and trusts 127.0.0.1,
//! where HAProxy's connections come from. It shows that:
//!
//! * the application sees the client's address and port, not HAProxy's
//!   (the client connects from 127.0.0.2 where it can; its port, which the
//!   test knows, tells it from HAProxy's own connections in any case);
//! * keep-alive requests through HAProxy are served on the one
//!   connection, several clients at once each see their own address, and
//!   a `Connection: close` closes the client's connection;
//! * HAProxy's health checks are served (`LOCAL` keeps the socket's
//!   address: the check's `/health` requests come from 127.0.0.1) and
//!   never count as bad headers.
//!
//! HAProxy (Debian's `haproxy` package; `MAITRED_HAPROXY` may name another
//! binary) runs in the foreground (`-db`) from a temporary directory on
//! free loopback ports, in its own process group, and is stopped by PID
//! when the test ends, however it ends (`common/external.rs`). Where it is
//! not installed, each test says so on standard error and passes.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::external::{self, free_port, skip, Daemon};
use common::*;
use maitred::Response;

/// The HAProxy binary, if one is installed and runs.
fn haproxy_binary() -> Result<PathBuf, String> {
    external::find_binary(
        "haproxy",
        "MAITRED_HAPROXY",
        "-v",
        "apt-get install haproxy",
    )
}

/// A running HAProxy, stopped when dropped.
struct Haproxy {
    daemon: Option<Daemon>,
    _dir: tempfile::TempDir,
    /// The frontend whose server gets a v2 header.
    v2_port: u16,
    /// The frontend whose server gets a v1 line.
    v1_port: u16,
}

impl Haproxy {
    fn config(v2_port: u16, v1_port: u16, server: SocketAddr) -> String {
        format!(
            r#"
global
    maxconn 256
    log stderr format raw local0 notice

defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    # A check's own timeout is otherwise its interval (100 ms), which a
    # machine busy with other tests can miss three times running.
    timeout check 5s

frontend via_v2
    bind 127.0.0.1:{v2_port}
    unique-id-format %{{+X}}o%ci:%cp_%fi:%fp_%Ts_%rt
    default_backend app_v2

backend app_v2
    option httpchk
    http-check send meth GET uri /health ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    server app {server} send-proxy-v2 proxy-v2-options crc32c,unique-id,ssl check inter 100ms

frontend via_v1
    bind 127.0.0.1:{v1_port}
    default_backend app_v1

backend app_v1
    server app {server} send-proxy check inter 100ms
"#
        )
    }

    /// Starts HAProxy in front of `server`; `Err` only when HAProxy is not
    /// there to run (a broken configuration fails the test).
    fn start(server: SocketAddr) -> Result<Haproxy, String> {
        let bin = haproxy_binary()?;
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let (v2_port, v1_port) = (free_port(), free_port());
            let conf = dir.path().join("haproxy.cfg");
            std::fs::write(&conf, Haproxy::config(v2_port, v1_port, server))
                .expect("write haproxy.cfg");
            let log = dir.path().join("haproxy.log");
            let mut cmd = Command::new(&bin);
            cmd.arg("-db").arg("-f").arg(&conf);
            let mut daemon = Daemon::spawn("haproxy", cmd, &log, true);
            match daemon.wait_ready(&[v2_port, v1_port]) {
                Ok(()) => {
                    return Ok(Haproxy {
                        daemon: Some(daemon),
                        _dir: dir,
                        v2_port,
                        v1_port,
                    })
                }
                Err(log) => {
                    last_log = log;
                    if !last_log.contains("Address already in use")
                        && !last_log.contains("cannot bind socket")
                    {
                        break;
                    }
                }
            }
        }
        panic!("haproxy did not start:\n{last_log}");
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn log(&self) -> String {
        self.daemon.as_ref().map(Daemon::log).unwrap_or_default()
    }
}

/// Where the test's clients connect from: 127.0.0.2 where it can be
/// bound, so that the client's address is not HAProxy's.
fn client_ip() -> Ipv4Addr {
    if can_bind("127.0.0.2") {
        Ipv4Addr::new(127, 0, 0, 2)
    } else {
        Ipv4Addr::LOCALHOST
    }
}

/// A client of HAProxy's frontend on `port`, from [`client_ip`].
fn client(port: u16) -> Client {
    let stream: TcpStream =
        connect_from(client_ip(), Haproxy::addr(port)).expect("a connection to haproxy");
    Client::new(stream)
}

/// What the application records of HAProxy's health checks: how many, and
/// from which addresses.
#[derive(Default)]
struct Checks {
    count: AtomicU64,
    from: Mutex<Vec<String>>,
}

/// The server (`proxy_protocol`, trusting 127.0.0.1) behind HAProxy, or
/// `None` (after saying why) when HAProxy cannot run here.
fn setup() -> Option<(TestServer, Haproxy, Arc<Checks>)> {
    let checks = Arc::new(Checks::default());
    let seen = Arc::clone(&checks);
    let app = move |req: &mut maitred::Request| {
        if req.path() == "/health" {
            seen.count.fetch_add(1, Ordering::Relaxed);
            seen.from
                .lock()
                .unwrap()
                .push(req.remote_addr().to_string());
            return Response::text("ok");
        }
        let port = req.remote_port().map_or("-".to_string(), |p| p.to_string());
        Response::text(format!("{} {port}", req.remote_addr()))
    };
    let mut a = adj(false).trusted_proxy("127.0.0.1");
    a.proxy_protocol = true;
    let server = start(app, a);
    match Haproxy::start(server.addr) {
        Ok(h) => Some((server, h, checks)),
        Err(why) => {
            skip(&why);
            None
        }
    }
}

const GET: &[u8] = b"GET /whoami HTTP/1.1\r\nHost: app.example\r\n\r\n";

#[test]
fn the_application_sees_the_client_through_haproxy() {
    let Some((server, haproxy, _checks)) = setup() else {
        return;
    };
    let ip = client_ip();
    for (version, port) in [("v2", haproxy.v2_port), ("v1", haproxy.v1_port)] {
        // Keep-alive: three requests on one connection, each from the
        // client's own address and port.
        let mut c = client(port);
        let me = format!("{ip} {}", c.stream.local_addr().unwrap().port());
        for i in 0..3 {
            let r = c.roundtrip(GET);
            assert_eq!(
                (r.status, r.text()),
                (200, me.clone()),
                "{version}, request {i}"
            );
        }
        // Connection: close reaches the client as a close.
        c.send(b"GET /whoami HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n");
        let r = c.read_response().expect("the last response");
        assert_eq!(
            (r.status, r.text()),
            (200, me.clone()),
            "{version}, closing"
        );
        c.assert_closed();
        // Four clients at once, each seen as itself.
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(move || {
                    let mut c = client(port);
                    let me = format!("{ip} {}", c.stream.local_addr().unwrap().port());
                    for _ in 0..5 {
                        assert_eq!(c.roundtrip(GET).text(), me, "{version}");
                    }
                });
            }
        });
    }
    let stats = server.handle.stats();
    assert_eq!(
        (stats.proxy_header_errors, stats.parse_errors),
        (0, 0),
        "haproxy's log:\n{}",
        haproxy.log()
    );
}

#[test]
fn health_checks_are_served_and_are_not_errors() {
    logs();
    let Some((server, haproxy, checks)) = setup() else {
        return;
    };
    let accepted = server.handle.stats().connections_accepted;
    // Checks every 100 ms on each backend: wait for ten HTTP checks (v2
    // LOCAL, then GET /health) and as many connections again (the v1
    // backend's plain TCP checks), a second or two.
    wait_until(Duration::from_secs(10), || {
        checks.count.load(Ordering::Relaxed) >= 10
            && server.handle.stats().connections_accepted >= accepted + 20
    });
    let from = checks.from.lock().unwrap().clone();
    assert!(from.iter().all(|a| a == "127.0.0.1"), "{from:?}");
    let stats = server.handle.stats();
    assert_eq!(
        (
            stats.proxy_header_errors,
            stats.parse_errors,
            stats.requests_timed_out
        ),
        (0, 0, 0),
        "haproxy's log:\n{}",
        haproxy.log()
    );
    assert!(logged("PROXY").is_empty(), "{:?}", logged("PROXY"));
    // HAProxy saw both servers up all along.
    let log = haproxy.log();
    assert!(!log.contains("is DOWN"), "{log}");
}
