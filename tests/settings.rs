//! Each setting's effect over real loopback sockets, the listeners (IPv6,
//! names resolved per address family, unix sockets and their permissions,
//! inherited descriptors, `SO_REUSEPORT`, systemd socket activation), and
//! the settings whose effect is only visible process-wide (failed accepts,
//! the poller, spill files), which run in a child process.
//!
//! The proxy settings (`trusted_proxy*`, `*_untrusted_proxy_headers`) are
//! tested with the proxy-header middleware.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use maitred::{Adjustments, Body, ListenAddr, Request, Response, ServerHandle};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

fn hello(_req: &mut Request) -> Response {
    Response::text("Hello, World!")
}

/// Whether this machine can listen on `::1`.
fn ipv6_available() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// Runs `server` on a thread; returns its handle and the thread.
fn run(
    server: maitred::Server,
) -> (
    ServerHandle,
    std::thread::JoinHandle<Result<(), maitred::Error>>,
) {
    let handle = server.handle();
    (handle, std::thread::spawn(move || server.run()))
}

/// Asserts that nothing arrives on `stream` for `wait`.
fn assert_silent(stream: &mut TcpStream, wait: Duration) {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    match stream.read(&mut b) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected nothing to arrive, got {other:?}"),
    }
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
}

// ------------------------------------------------------------------
// Where the server listens: host, port, listen, ipv4, ipv6
// ------------------------------------------------------------------

backend_tests! {
    fn host_and_port_replace_listen(poll: bool) {
        let a = Adjustments::from_pairs([("host", "127.0.0.1"), ("port", "0")])
            .unwrap()
            .asyncore_use_poll(poll);
        let s = start(
            |req: &mut Request| Response::text(format!("{:?}", req.server_port())),
            a,
        );
        assert_eq!(s.addr.ip(), std::net::Ipv4Addr::LOCALHOST);
        assert_ne!(s.addr.port(), 0);
        assert_eq!(request(s.addr, GET).text(), format!("Some({})", s.addr.port()));
    }
}

#[test]
fn ipv4_and_ipv6_choose_the_address_families_of_a_name() {
    let resolved: Vec<SocketAddr> = ("localhost", 0).to_socket_addrs().unwrap().collect();
    let has_v4 = resolved.iter().any(SocketAddr::is_ipv4);
    let has_v6 = resolved.iter().any(SocketAddr::is_ipv6);
    if has_v6 && !ipv6_available() {
        eprintln!("skipped: localhost resolves to an IPv6 address this machine cannot bind");
        return;
    }
    for (ipv4, ipv6) in [(true, true), (true, false), (false, true)] {
        let a = Adjustments::default()
            .listen(&["localhost:0"])
            .ipv4(ipv4)
            .ipv6(ipv6);
        let want_v4 = ipv4 && has_v4;
        let want_v6 = ipv6 && has_v6;
        if !want_v4 && !want_v6 {
            let err = maitred::create_server(hello, a).unwrap_err().to_string();
            assert!(err.starts_with("Invalid host/port specified"), "{err}");
            continue;
        }
        let server = maitred::create_server(
            |req: &mut Request| Response::text(req.remote_addr().to_string()),
            a,
        )
        .unwrap();
        let addrs: Vec<SocketAddr> = server
            .local_addrs()
            .iter()
            .filter_map(|a| a.tcp())
            .collect();
        assert_eq!(
            addrs.iter().any(SocketAddr::is_ipv4),
            want_v4,
            "{ipv4} {ipv6}: {addrs:?}"
        );
        assert_eq!(
            addrs.iter().any(SocketAddr::is_ipv6),
            want_v6,
            "{ipv4} {ipv6}: {addrs:?}"
        );
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
        let (handle, t) = run(server);
        for addr in addrs {
            assert_eq!(request(addr, GET).text(), addr.ip().to_string());
        }
        handle.shutdown();
        t.join().unwrap().unwrap();
    }
}

#[test]
fn ipv6_and_ipv4_listeners_at_once() {
    if !ipv6_available() {
        eprintln!("skipped: this machine cannot listen on ::1 (no IPv6)");
        return;
    }
    logs();
    let server = maitred::create_server(
        |req: &mut Request| {
            Response::text(format!("{}|{:?}", req.remote_addr(), req.server_port()))
        },
        Adjustments::default().listen(&["127.0.0.1:0", "[::1]:0"]),
    )
    .unwrap();
    let addrs: Vec<SocketAddr> = server
        .local_addrs()
        .iter()
        .filter_map(|a| a.tcp())
        .collect();
    assert_eq!(addrs.len(), 2);
    assert!(addrs[0].is_ipv4() && addrs[1].is_ipv6());
    server.print_listen();
    let v4 = format!(
        "INFO:maitred:Serving on http://127.0.0.1:{}",
        addrs[0].port()
    );
    let v6 = format!("INFO:maitred:Serving on http://[::1]:{}", addrs[1].port());
    assert_eq!(logged(&v4), vec![v4.clone()]);
    assert_eq!(logged(&v6), vec![v6.clone()]);
    let (handle, t) = run(server);
    assert_eq!(
        request(addrs[0], GET).text(),
        format!("127.0.0.1|Some({})", addrs[0].port())
    );
    assert_eq!(
        request(addrs[1], GET).text(),
        format!("::1|Some({})", addrs[1].port())
    );
    handle.shutdown();
    t.join().unwrap().unwrap();
}

// ------------------------------------------------------------------
// What the application sees: url_scheme, server_name, url_prefix, ident
// ------------------------------------------------------------------

backend_tests! {
    fn url_scheme_and_server_name_reach_the_application(poll: bool) {
        let mut a = adj(poll);
        a.set("url_scheme", "https").unwrap();
        a.set("server_name", "example.com").unwrap();
        let s = start(
            |req: &mut Request| Response::text(format!("{}|{}", req.url_scheme(), req.server_name())),
            a,
        );
        // Not derived from the Host header.
        let r = request(s.addr, b"GET / HTTP/1.1\r\nHost: other.example:81\r\n\r\n");
        assert_eq!(r.text(), "https|example.com");
        let s = start(
            |req: &mut Request| Response::text(format!("{}|{}", req.url_scheme(), req.server_name())),
            adj(poll),
        );
        assert_eq!(request(s.addr, GET).text(), "http|waitress.invalid");
    }

    fn url_prefix_is_taken_off_path_info(poll: bool) {
        let mut a = adj(poll);
        a.set("url_prefix", "//app/").unwrap();
        let s = start(
            |req: &mut Request| Response::text(format!("{}|{}", req.script_name(), req.path())),
            a,
        );
        let path = |p: &str| {
            request(s.addr, format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).text()
        };
        assert_eq!(path("/app/x/y"), "/app|/x/y");
        assert_eq!(path("/app"), "/app|");
        assert_eq!(path("/app/"), "/app|/");
        // Not the prefix (only a string prefix of it): PATH_INFO is untouched.
        assert_eq!(path("/application"), "/app|/application");
    }

    fn ident_names_the_server_in_headers_and_error_pages(poll: bool) {
        // The default is this server's name.
        let s = start(hello, adj(poll));
        let r = request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.header("server"), Some("maitred"));
        let r = request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n");
        assert!(r.text().ends_with("(generated by maitred)"), "{}", r.text());
        // --ident=waitress restores waitress's text.
        let mut a = adj(poll);
        a.set("ident", "waitress").unwrap();
        let s = start(hello, a);
        let r = request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n");
        assert_eq!(r.header("server"), Some("waitress"));
        assert!(r.text().ends_with("(generated by waitress)"), "{}", r.text());
        let s = start(hello, adj(poll).ident("myserver/1.0"));
        let r = request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.header("server"), Some("myserver/1.0"));
        let r = request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n");
        assert_eq!(r.status, 400);
        assert_eq!(r.header("server"), Some("myserver/1.0"));
        assert!(r.text().ends_with("(generated by myserver/1.0)"), "{}", r.text());
        let mut a = adj(poll);
        a.set("ident", "").unwrap();
        let s = start(hello, a);
        let r = request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n");
        assert!(r.header("server").is_none());
        assert!(r.text().ends_with("(generated by server)"), "{}", r.text());
    }
}

// ------------------------------------------------------------------
// Limits on a request head's elements: max_request_line_size,
// max_header_field_size, max_header_fields (not in waitress)
// ------------------------------------------------------------------

/// Sends `raw` on a new connection; returns the response after checking
/// that an error response closes the connection.
fn answer(addr: SocketAddr, raw: &[u8]) -> Resp {
    let mut c = Client::connect(addr);
    let r = c.roundtrip(raw);
    if r.status >= 400 {
        assert_eq!(r.header("connection"), Some("close"));
        c.assert_closed();
    }
    r
}

backend_tests! {
    fn max_request_line_size_bounds_the_request_line(poll: bool) {
        let mut a = adj(poll);
        a.set("max_request_line_size", "30").unwrap();
        let s = start(hello, a);
        // "GET /" + 16 + " HTTP/1.1" is 30 bytes: served.
        let target = format!("/{}", "a".repeat(16));
        let ok = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(answer(s.addr, ok.as_bytes()).status, 200);
        // One more target byte: 414.
        let long = format!("GET {target}a HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = answer(s.addr, long.as_bytes());
        assert_eq!((r.status, r.reason.as_str()), (414, "URI Too Long"));
        assert!(r.text().contains("exceeds max_request_line_size of 30"), "{}", r.text());
        // A long method instead: 400.
        let r = answer(s.addr, format!("{} / HTTP/1.1\r\n\r\n", "G".repeat(40)).as_bytes());
        assert_eq!(r.status, 400);
        assert!(r.text().contains("exceeds max_request_line_size of 30"), "{}", r.text());
    }

    fn max_header_field_size_bounds_one_field_line(poll: bool) {
        let s = start(hello, adj(poll).max_header_field_size(20));
        // "X-A: " + 15 bytes is 20: served.
        let ok = format!("GET / HTTP/1.1\r\nHost: x\r\nX-A: {}\r\n\r\n", "v".repeat(15));
        assert_eq!(answer(s.addr, ok.as_bytes()).status, 200);
        let long = format!("GET / HTTP/1.1\r\nHost: x\r\nX-A: {}\r\n\r\n", "v".repeat(16));
        let r = answer(s.addr, long.as_bytes());
        assert_eq!(r.status, 431);
        assert!(r.text().contains("exceeds max_header_field_size of 20"), "{}", r.text());
    }

    fn max_header_fields_bounds_the_number_of_field_lines(poll: bool) {
        let mut a = adj(poll);
        a.set("max_header_fields", "3").unwrap();
        let s = start(hello, a);
        let ok = b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(answer(s.addr, ok).status, 200);
        let more = b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        let r = answer(s.addr, more);
        assert_eq!(r.status, 431);
        assert!(r.text().contains("exceeds max_header_fields of 3"), "{}", r.text());
    }
}

// ------------------------------------------------------------------
// threads, send_bytes, asyncore_loop_timeout, backlog
// ------------------------------------------------------------------

backend_tests! {
    fn threads_run_that_many_requests_at_once(poll: bool) {
        let mut a = adj(poll);
        a.set("threads", "3").unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let gate = Gate::default();
        let (r, m, g) = (running.clone(), most.clone(), gate.clone());
        let s = start(
            move |_req: &mut Request| {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                g.wait();
                r.fetch_sub(1, Ordering::SeqCst);
                Response::text("done")
            },
            a,
        );
        let mut clients: Vec<Client> = (0..4).map(|_| Client::connect(s.addr)).collect();
        for c in &mut clients {
            c.send(GET);
        }
        wait_until(Duration::from_secs(10), || running.load(Ordering::SeqCst) == 3);
        // The fourth request waits for a free thread.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(running.load(Ordering::SeqCst), 3);
        gate.open();
        for c in &mut clients {
            assert_eq!(c.read_response().unwrap().text(), "done");
        }
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }

    fn send_bytes_holds_output_until_that_much_is_buffered(poll: bool) {
        for (send_bytes, arrives_at_once) in [("1", true), ("100000", false)] {
            let mut a = adj(poll);
            a.set("send_bytes", send_bytes).unwrap();
            let gate = Gate::default();
            let g = gate.clone();
            let s = start(
                move |_req: &mut Request| {
                    let g = g.clone();
                    let mut step = 0;
                    Response::new(200).with_body(Body::Chunks(Box::new(std::iter::from_fn(move || {
                        step += 1;
                        match step {
                            1 => Some(Ok(b"first".to_vec())),
                            2 => {
                                g.wait();
                                Some(Ok(b"second".to_vec()))
                            }
                            _ => None,
                        }
                    }))))
                },
                a,
            );
            let mut c = Client::connect(s.addr);
            c.send(GET);
            if arrives_at_once {
                // The head and the first chunk come while the application
                // is still producing.
                let head = c.read_head().unwrap();
                assert_eq!(head.status, 200);
                assert_eq!(c.read_exact_n(10).unwrap(), b"5\r\nfirst\r\n");
                gate.open();
                let rest = b"6\r\nsecond\r\n0\r\n\r\n";
                assert_eq!(c.read_exact_n(rest.len()).unwrap(), rest);
            } else {
                // Fewer than send_bytes bytes are buffered: nothing is sent
                // until the response ends.
                assert_silent(&mut c.stream, Duration::from_millis(500));
                gate.open();
                let r = c.read_response().unwrap();
                assert_eq!(r.body, b"firstsecond");
            }
        }
    }

    fn asyncore_loop_timeout_bounds_how_late_idle_connections_are_swept(poll: bool) {
        // With a loop that sleeps up to 60 s, the sweep for idle
        // connections (every second here) only runs when something wakes
        // the loop. (With the default of 1 s it runs on its own: see
        // tests/server.rs, idle_connections_time_out.)
        let mut a = adj(poll);
        a.set("asyncore_loop_timeout", "60").unwrap();
        a.channel_timeout = 1;
        a.cleanup_interval = 1;
        let s = start(hello, a);
        let mut idle = Client::connect(s.addr);
        std::thread::sleep(Duration::from_millis(2500));
        assert_silent(&mut idle.stream, Duration::from_millis(200));
        // Any event wakes the loop, which then sweeps.
        assert_eq!(request(s.addr, GET).status, 200);
        idle.assert_closed();
    }
}

backend_tests! {
    fn cleanup_interval_is_how_often_idle_connections_are_swept(poll: bool) {
        // The same 1 s channel_timeout: swept every second, an idle
        // connection is closed within about two; swept once a minute, it is
        // still there and usable after two and a half.
        let mut fast = adj(poll);
        fast.channel_timeout = 1;
        fast.cleanup_interval = 1;
        let mut slow = adj(poll);
        slow.channel_timeout = 1;
        slow.cleanup_interval = 60;
        let f = start(hello, fast);
        let s = start(hello, slow);
        let mut idle_fast = Client::connect(f.addr);
        let mut idle_slow = Client::connect(s.addr);
        let started = Instant::now();
        idle_fast.assert_closed();
        assert!(started.elapsed() < Duration::from_secs(5));
        let left = Duration::from_millis(2500).saturating_sub(started.elapsed());
        assert_silent(&mut idle_slow.stream, left.max(Duration::from_millis(1)));
        assert_eq!(idle_slow.roundtrip(GET).status, 200);
    }
}

/// Every setting in seconds: each is added to an `Instant` or multiplied
/// into milliseconds somewhere.
const SECONDS_SETTINGS: [&str; 9] = [
    "cleanup_interval",
    "channel_timeout",
    "slow_request_warning",
    "max_queue_wait",
    "request_head_timeout",
    "request_body_timeout",
    "asyncore_loop_timeout",
    "shutdown_timeout",
    "handover_timeout",
];

/// Sets the setting in seconds `name` to `value` through its field (`set`
/// takes what fits an `i64`).
fn set_seconds(a: &mut Adjustments, name: &str, value: u64) {
    let field = match name {
        "cleanup_interval" => &mut a.cleanup_interval,
        "channel_timeout" => &mut a.channel_timeout,
        "slow_request_warning" => &mut a.slow_request_warning,
        "max_queue_wait" => &mut a.max_queue_wait,
        "request_head_timeout" => &mut a.request_head_timeout,
        "request_body_timeout" => &mut a.request_body_timeout,
        "asyncore_loop_timeout" => &mut a.asyncore_loop_timeout,
        "shutdown_timeout" => &mut a.shutdown_timeout,
        "handover_timeout" => &mut a.handover_timeout,
        _ => panic!("not a setting in seconds: {name}"),
    };
    *field = value;
}

#[test]
fn a_duration_setting_past_its_maximum_is_refused_at_start() {
    // The list above is every setting whose help speaks of seconds, and
    // each help gives the maximum.
    for s in maitred::__private::SETTINGS {
        if s.help.to_ascii_lowercase().contains("seconds") {
            assert!(SECONDS_SETTINGS.contains(&s.name), "{}", s.name);
        }
        if SECONDS_SETTINGS.contains(&s.name) {
            let max = format!("at most {}", Adjustments::MAX_SECONDS);
            assert!(s.help.contains(&max), "{}: {}", s.name, s.help);
        }
    }
    for name in SECONDS_SETTINGS {
        for (value, by_name) in [
            (u64::MAX, false),
            (i64::MAX as u64, true),
            (Adjustments::MAX_SECONDS + 1, true),
        ] {
            let mut a = adj(false);
            if by_name {
                a.set(name, &value.to_string()).unwrap();
            } else {
                set_seconds(&mut a, name, value);
            }
            let err = match maitred::create_server(hello, a) {
                Ok(_) => panic!("{name}={value} was accepted"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(name), "{name}={value}: {err}");
            assert!(
                err.contains(&Adjustments::MAX_SECONDS.to_string()),
                "{name}={value}: {err}"
            );
        }
    }
}

backend_tests! {
    fn every_duration_setting_at_its_maximum_starts_and_stops_gracefully(poll: bool) {
        let mut a = adj(poll);
        for name in SECONDS_SETTINGS {
            set_seconds(&mut a, name, Adjustments::MAX_SECONDS);
        }
        let s = start(
            |req: &mut Request| {
                if req.path() == "/slow" {
                    std::thread::sleep(Duration::from_millis(300));
                }
                Response::text("done")
            },
            a,
        );
        assert_eq!(request(s.addr, GET).status, 200);
        // A request running when the stop begins is drained, and then the
        // loop stops (without waiting out the shutdown_timeout).
        let mut c = Client::connect(s.addr);
        c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
        wait_until(Duration::from_secs(10), || s.handle.stats().requests_in_app == 1);
        let began = Instant::now();
        s.handle.shutdown();
        assert_eq!(c.read_response().unwrap().text(), "done");
        s.stop().unwrap();
        assert!(began.elapsed() < Duration::from_secs(60));
    }
}

/// `recv_bytes` is how much the server reads at a time: while a request
/// runs (and `channel_request_lookahead` is 0) it reads no more, so what the
/// client sent beyond one read stays in the kernel's receive queue, which
/// `/proc/net/tcp` shows for the server's end of the connection.
#[cfg(target_os = "linux")]
#[test]
fn recv_bytes_is_how_much_is_read_at_a_time() {
    fn rx_queue(server_port: u16, client_port: u16) -> Option<u64> {
        let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
        for line in table.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, queues) = (f.get(1)?, f.get(2)?, f.get(4)?);
            let port = |a: &str| u16::from_str_radix(a.rsplit(':').next()?, 16).ok();
            if port(local) == Some(server_port) && port(remote) == Some(client_port) {
                return u64::from_str_radix(queues.split(':').nth(1)?, 16).ok();
            }
        }
        None
    }
    for (recv_bytes, unread) in [(100usize, 900u64), (8192, 0)] {
        let gate = Gate::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let g = gate.clone();
        let mut a = adj(false);
        a.recv_bytes = recv_bytes;
        let s = start(
            move |_r: &mut Request| {
                let _ = tx.lock().unwrap().send(());
                g.wait();
                Response::text("ok")
            },
            a,
        );
        // 1,000 bytes in one write: a 60-byte request, then 940 more.
        let first = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: 012345678901234567890123\r\n\r\n";
        assert_eq!(first.len(), 60);
        let mut second = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
        second.resize(936, b'p');
        second.extend_from_slice(b"\r\n\r\n");
        let mut c = Client::connect(s.addr);
        c.send(&[&first[..], &second[..]].concat());
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let client_port = c.stream.local_addr().unwrap().port();
        // The first request runs; the server has read one recv_bytes.
        let queued = rx_queue(s.addr.port(), client_port).expect("the connection in /proc/net/tcp");
        assert_eq!(queued, unread, "recv_bytes={recv_bytes}");
        gate.open();
        assert_eq!(c.read_response().unwrap().text(), "ok");
        assert_eq!(c.read_response().unwrap().text(), "ok");
    }
}

/// The listen queue holds `backlog` + 1 connections on Linux; past that,
/// the kernel drops the SYN and `connect` waits. (The server keeps
/// accepting at its connection limit, so the queue is seen here on a
/// server whose loop does not run yet.)
#[cfg(target_os = "linux")]
#[test]
fn backlog_bounds_the_kernels_queue_of_connections() {
    for (backlog, queued_ok) in [("1", 2), ("1024", 3)] {
        let mut a = adj(false);
        a.set("backlog", backlog).unwrap();
        let server = maitred::create_server(hello, a).unwrap();
        let addr = server.local_addr().unwrap();
        let mut queued = Vec::new();
        for _ in 0..queued_ok {
            queued.push(TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap());
        }
        if queued_ok == 2 {
            let e = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        }
        // Once the loop runs, the queued connections are served.
        let handle = server.handle();
        let t = std::thread::spawn(move || server.run());
        for q in queued {
            let mut c = Client::new(q);
            assert_eq!(c.roundtrip(GET).status, 200);
        }
        handle.shutdown();
        t.join().unwrap().unwrap();
    }
}

// ------------------------------------------------------------------
// Unix sockets and inherited descriptors
// ------------------------------------------------------------------

backend_tests! {
    fn unix_socket_perms_apply_before_clients_connect(poll: bool) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.sock");
        let mut a = Adjustments::default()
            .unix_socket(path.to_str().unwrap())
            .asyncore_use_poll(poll);
        a.set("unix_socket_perms", "0o666").unwrap();
        let server = maitred::create_server(
            |req: &mut Request| {
                Response::text(format!("{}|{:?}|{:?}", req.remote_addr(), req.remote_port(), req.server_port()))
            },
            a,
        )
        .unwrap();
        // Set by the time the server exists, before it runs.
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);
        assert_eq!(server.local_addrs(), [ListenAddr::Unix(path.clone())]);
        let (handle, t) = run(server);
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(text.ends_with("\r\n\r\nlocalhost|None|None"), "{text}");
        handle.shutdown();
        t.join().unwrap().unwrap();
        assert!(!path.exists());

        // A file that is not a socket is left alone.
        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, b"keep me").unwrap();
        let err = maitred::create_server(hello, Adjustments::default().unix_socket(file.to_str().unwrap()))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("could not listen on unix socket"), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    }

    fn an_inherited_unix_socket(poll: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inherited.sock");
        let fd = UnixListener::bind(&path).unwrap().into_raw_fd();
        let mut a = Adjustments::default().asyncore_use_poll(poll);
        a.set("sockets", &fd.to_string()).unwrap();
        let server = maitred::create_server(
            |req: &mut Request| Response::text(format!("{}|{:?}", req.remote_addr(), req.server_port())),
            a,
        )
        .unwrap();
        assert_eq!(server.local_addrs()[0].url(), format!("http://unix:{}", path.display()));
        let (handle, t) = run(server);
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert!(String::from_utf8_lossy(&out).ends_with("localhost|None"));
        handle.shutdown();
        t.join().unwrap().unwrap();
    }
}

#[test]
fn sockets_must_be_stream_sockets_of_one_kind() {
    // A datagram socket is refused (and not taken over: it stays ours).
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = maitred::create_server(hello, Adjustments::default().sockets(&[udp.as_raw_fd()]))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "Only Internet or UNIX stream sockets may be used.");
    // TCP and unix sockets together are refused.
    let dir = tempfile::tempdir().unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap().into_raw_fd();
    let unix = UnixListener::bind(dir.path().join("s.sock"))
        .unwrap()
        .into_raw_fd();
    let err = maitred::create_server(hello, Adjustments::default().sockets(&[tcp, unix]))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "Internet and UNIX sockets may not be mixed.");
    // A descriptor that is not open.
    let err = maitred::create_server(hello, Adjustments::default().sockets(&[1_000_000]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("descriptor 1000000 in sockets is not a usable socket"),
        "{err}"
    );
}

// ------------------------------------------------------------------
// reuse_port
// ------------------------------------------------------------------

#[test]
fn reuse_port_lets_two_servers_share_a_port() {
    let mut a = adj(false);
    a.set("reuse_port", "true").unwrap();
    let one = start(|_req: &mut Request| Response::text("one"), a);
    let port = one.addr.port();
    let listen = format!("127.0.0.1:{port}");
    // Without reuse_port, the port is taken.
    let err = maitred::create_server(hello, Adjustments::default().listen(&[listen.as_str()]))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("could not listen on http://{listen}")),
        "{err}"
    );
    let two = start(
        |_req: &mut Request| Response::text("two"),
        Adjustments::default()
            .listen(&[listen.as_str()])
            .reuse_port(true),
    );
    assert_eq!(two.addr, one.addr);
    // The kernel spreads new connections over both (by a hash of the
    // client's address and port: a few connections reach each).
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        seen.insert(request(one.addr, GET).text());
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen, BTreeSet::from(["one".to_string(), "two".to_string()]));
    // Either one alone serves the port.
    one.stop().unwrap();
    for _ in 0..5 {
        assert_eq!(request(two.addr, GET).text(), "two");
    }
}

// ------------------------------------------------------------------
// systemd socket activation
// ------------------------------------------------------------------

#[test]
fn systemd_socket_activation_takes_descriptor_3_in_a_child_process() {
    use std::os::unix::process::CommandExt;
    const NAME: &str = "systemd_socket_activation_takes_descriptor_3_in_a_child_process";
    if child::role().as_deref() == Some("activation") {
        return activation_child();
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = listener.as_raw_fd();
    let mut cmd = child::command(NAME, "activation", Some("LISTEN_PID=$$; export LISTEN_PID"));
    cmd.env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "web")
        .env("MAITRED_TEST_ADDR", addr.to_string());
    // SAFETY: between fork and exec the closure only calls dup2 and fcntl,
    // which are async-signal-safe, on descriptors that exist.
    unsafe {
        cmd.pre_exec(move || {
            let r = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if r == -1 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        });
    }
    let mut ch = cmd.spawn().unwrap();
    let pid = ch.id();
    // The child has its own copy now.
    drop(listener);
    let lines = child::stderr_lines(&mut ch);
    child::wait_for_line(
        &lines,
        &format!("Serving on http://{addr}"),
        Duration::from_secs(30),
    );
    assert_eq!(request(addr, GET).text(), format!("activated {pid}"));
    assert_eq!(
        request(addr, b"GET /stop HTTP/1.1\r\nHost: x\r\n\r\n").text(),
        "stopping"
    );
    let out = child::wait(ch, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "the child failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The child: takes descriptor 3 by socket activation and serves until
/// `/stop`.
fn activation_child() {
    let expected: SocketAddr = std::env::var("MAITRED_TEST_ADDR").unwrap().parse().unwrap();
    let handle: Arc<OnceLock<ServerHandle>> = Arc::new(OnceLock::new());
    let h = handle.clone();
    let mut a = Adjustments::default();
    a.set("systemd_socket_activation", "on").unwrap();
    let server = maitred::create_server(
        move |req: &mut Request| {
            if req.path() == "/stop" {
                if let Some(h) = h.get() {
                    h.shutdown();
                }
                return Response::text("stopping");
            }
            Response::text(format!("activated {}", std::process::id()))
        },
        a,
    )
    .unwrap();
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        assert!(std::env::var_os(var).is_none(), "{var} is still set");
    }
    assert_eq!(server.local_addrs(), [ListenAddr::Tcp(expected)]);
    assert_eq!(server.adjustments().sockets, vec![3]);
    server.print_listen();
    let _ = handle.set(server.handle());
    server.run().unwrap();
}

#[test]
fn systemd_socket_activation_without_the_variables_is_a_clear_error() {
    // This process was not socket-activated.
    if std::env::var_os("LISTEN_PID").is_some() {
        eprintln!("skipped: this test process has LISTEN_PID set");
        return;
    }
    let err = maitred::create_server(
        hello,
        Adjustments::default().systemd_socket_activation(true),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("LISTEN_PID is not"), "{err}");
    let err = maitred::create_server(
        hello,
        Adjustments::default()
            .systemd_socket_activation(true)
            .listen(&["127.0.0.1:0"]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("systemd_socket_activation may not be set if listen"),
        "{err}"
    );
}

// ------------------------------------------------------------------
// log_socket_errors: a failed accept (out of descriptors), in a child
// process whose descriptor limit is low
// ------------------------------------------------------------------

#[test]
fn log_socket_errors_decides_whether_failed_accepts_are_logged() {
    const NAME: &str = "log_socket_errors_decides_whether_failed_accepts_are_logged";
    match child::role().as_deref() {
        Some("emfile-on") => return emfile_child(true),
        Some("emfile-off") => return emfile_child(false),
        _ => {}
    }
    let on = child::command(NAME, "emfile-on", Some("ulimit -n 64"))
        .spawn()
        .unwrap();
    let off = child::command(NAME, "emfile-off", Some("ulimit -n 64"))
        .spawn()
        .unwrap();
    for (ch, role) in [(on, "on"), (off, "off")] {
        let out = child::wait(ch, Duration::from_secs(60));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child {role} failed:\n{text}");
        assert!(text.contains("child done"), "child {role}:\n{text}");
    }
}

fn emfile_child(log_on: bool) {
    logs();
    let mut a = adj(false);
    a.log_socket_errors = log_on;
    let s = start(hello, a);
    assert_eq!(request(s.addr, GET).status, 200);
    // Use up every descriptor but one, which the client takes.
    let mut hogs = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => hogs.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("{e}"),
        }
    }
    hogs.pop();
    let mut c = Client::connect(s.addr);
    c.send(GET);
    if log_on {
        wait_until(Duration::from_secs(10), || {
            !logged("server accept() threw an exception").is_empty()
        });
    } else {
        // No event says the accept failed when it is not logged.
        std::thread::sleep(Duration::from_millis(500));
    }
    // Descriptors are free again: the server accepts after its pause.
    drop(hogs);
    assert_eq!(c.read_response().unwrap().status, 200);
    let lines = logged("server accept() threw an exception");
    if log_on {
        assert!(
            lines[0].starts_with("WARNING:maitred:server accept() threw an exception: ")
                && lines[0].contains("Too many open files"),
            "{lines:?}"
        );
    } else {
        assert!(lines.is_empty(), "{lines:?}");
    }
    println!("child done: {} failed accepts logged", lines.len());
}

// ------------------------------------------------------------------
// asyncore_use_poll and outbuf_overflow, seen in /proc/self/fd of a child
// ------------------------------------------------------------------

/// The targets of this process's open descriptors.
#[cfg(target_os = "linux")]
fn fd_targets() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn asyncore_use_poll_replaces_epoll_with_poll() {
    const NAME: &str = "asyncore_use_poll_replaces_epoll_with_poll";
    if child::role().as_deref() == Some("poller") {
        let epolls = || {
            fd_targets()
                .iter()
                .filter(|t| t.contains("eventpoll"))
                .count()
        };
        let before = epolls();
        let default = start(hello, adj(false));
        assert_eq!(epolls(), before + 1, "the default poller is epoll");
        let mut a = Adjustments::default().listen(&["127.0.0.1:0"]);
        a.set("asyncore_use_poll", "true").unwrap();
        let polled = start(hello, a);
        assert_eq!(
            epolls(),
            before + 1,
            "asyncore_use_poll creates no epoll instance"
        );
        assert_eq!(request(default.addr, GET).text(), "Hello, World!");
        assert_eq!(request(polled.addr, GET).text(), "Hello, World!");
        println!("child done");
        return;
    }
    let out = child::run_ok(
        child::command(NAME, "poller", None),
        Duration::from_secs(60),
    );
    assert!(out.contains("child done"), "{out}");
}

#[cfg(target_os = "linux")]
#[test]
fn outbuf_overflow_moves_buffered_output_to_a_temporary_file() {
    const NAME: &str = "outbuf_overflow_moves_buffered_output_to_a_temporary_file";
    if child::role().as_deref() == Some("spill") {
        return spill_child();
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = child::command(NAME, "spill", None);
    cmd.env("TMPDIR", tmp.path());
    let out = child::run_ok(cmd, Duration::from_secs(60));
    assert!(out.contains("child done"), "{out}");
}

#[cfg(target_os = "linux")]
fn spill_child() {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 16;
    let tmp = std::fs::canonicalize(std::env::temp_dir()).unwrap();
    let tmp = tmp.to_string_lossy().into_owned();
    let spilled = || fd_targets().iter().filter(|t| t.starts_with(&tmp)).count();
    for (overflow, expect_spill) in [(64 * 1024u64, true), (1 << 30, false)] {
        let mut a = adj(false);
        a.set("outbuf_overflow", &overflow.to_string()).unwrap();
        a.outbuf_high_watermark = 256 << 20;
        let produced = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let p = produced.clone();
        let s = start(
            move |_req: &mut Request| {
                let p = p.clone();
                let mut n = 0;
                Response::new(200).with_body(Body::Chunks(Box::new(std::iter::from_fn(
                    move || {
                        n += 1;
                        if n > CHUNKS {
                            p.store(true, Ordering::SeqCst);
                            return None;
                        }
                        Some(Ok(vec![n as u8; CHUNK]))
                    },
                ))))
            },
            a,
        );
        let mut c = Client::connect(s.addr);
        c.send(GET);
        // The client reads nothing until the whole body is buffered.
        wait_until(Duration::from_secs(20), || produced.load(Ordering::SeqCst));
        assert_eq!(spilled() > 0, expect_spill, "outbuf_overflow {overflow}");
        let r = c.read_response().unwrap();
        assert_eq!(r.body.len(), CHUNK * CHUNKS);
        assert!(r
            .body
            .chunks(CHUNK)
            .enumerate()
            .all(|(i, c)| c.iter().all(|&b| b == i as u8 + 1)));
        // The connection keeps its (emptied) file for later responses; it
        // goes with the connection.
        drop(c);
        wait_until(Duration::from_secs(10), || spilled() == 0);
    }
    println!("child done");
}
