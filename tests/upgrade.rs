//! Upgrade (`101 Switching Protocols`) over real sockets, on both pollers:
//! the bytes that came with the request go to the new protocol, nothing
//! after the request is parsed as HTTP, the rules of RFC 9110 §7.8, the
//! handlers' threads (never a worker), the limit, the statistics, the
//! access log, and a graceful stop that ends upgraded connections.

mod common;

/// The `upgrade` example's application, served here as the example serves
/// it.
#[path = "../examples/upgrade.rs"]
#[allow(dead_code)]
mod upgrade_example;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use common::*;
use maitred::{Request, Response};

use upgrade_example::echo_lines;

fn app(req: &mut Request) -> Response {
    match req.path().as_ref() {
        "/echo" if req.upgrade_requested("echo") => {
            // The body, if any, is complete before the switch.
            let mut body = Vec::new();
            let _ = req.body().read_to_end(&mut body);
            let greeting = String::from_utf8_lossy(&body).into_owned();
            Response::upgrade("echo", move |mut s| {
                if !greeting.is_empty() {
                    let _ = writeln!(s, "body:{greeting}");
                }
                echo_lines(s)
            })
            .with_header("X-Switched", "yes")
        }
        // A handler told of the stop: its read loop ends, it says bye.
        "/polite" if req.upgrade_requested("echo") => Response::upgrade("echo", |stream| {
            let (Ok(mut out), Ok(ctl)) = (stream.try_clone(), stream.try_clone()) else {
                return;
            };
            stream.on_server_stop(move || {
                let _ = ctl.shutdown(std::net::Shutdown::Read);
            });
            let mut lines = std::io::BufReader::new(stream);
            let mut l = String::new();
            while matches!(std::io::BufRead::read_line(&mut lines, &mut l), Ok(n) if n > 0) {
                if out.write_all(l.as_bytes()).is_err() {
                    return;
                }
                l.clear();
            }
            let _ = out.write_all(b"bye\n");
        }),
        // A switch nobody asked for.
        "/force" => Response::upgrade("echo", echo_lines),
        // A 101 without the upgrade API.
        "/raw101" => Response::new(101),
        // A protocol the request did not name.
        "/other" => Response::upgrade("other", echo_lines),
        "/slow" => {
            std::thread::sleep(Duration::from_millis(200));
            Response::text("slow")
        }
        _ => Response::text("plain"),
    }
}

const UPGRADE: &[u8] =
    b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: echo\r\n\r\n";

/// Reads one line the new protocol sent (after the 101's head).
fn line(c: &mut Client) -> String {
    let mut got = Vec::new();
    while !got.ends_with(b"\n") {
        let b = c.read_exact_n(1).expect("a byte of the new protocol");
        got.extend_from_slice(&b);
        assert!(got.len() < 4096, "no end of line: {got:?}");
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Sends the upgrade request (and `extra` in the same write), reads the
/// 101 and checks it.
fn switch(c: &mut Client, extra: &[u8]) {
    let mut bytes = UPGRADE.to_vec();
    bytes.extend_from_slice(extra);
    c.send(&bytes);
    let r = c.read_head().expect("the 101");
    assert_eq!(r.status, 101, "{}", String::from_utf8_lossy(&r.raw_head));
    assert_eq!(r.header("upgrade"), Some("echo"));
    assert_eq!(r.header("connection"), Some("upgrade"));
    assert_eq!(r.header("x-switched"), Some("yes"));
    assert_eq!(r.header("content-length"), None);
    assert!(r.header("date").is_some() && r.header("server").is_some());
}

backend_tests! {
    fn the_upgrade_example_says_hello_and_echoes_lines(poll: bool) {
        let s = start(upgrade_example::app, adj(poll));
        let r = request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 200);
        assert!(r.text().starts_with("Hello!"), "{}", r.text());
        let mut c = Client::connect(s.addr);
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nfirst line\n");
        let r = c.read_head().unwrap();
        assert_eq!((r.status, r.header("upgrade")), (101, Some("echo")));
        assert_eq!(line(&mut c), "first line\n");
        for i in 0..20 {
            c.send(format!("line {i}\n").as_bytes());
            assert_eq!(line(&mut c), format!("line {i}\n"));
        }
        c.stream.shutdown(Shutdown::Write).unwrap();
        assert!(c.read_all().is_empty());
    }

    fn bytes_sent_with_the_request_come_back_through_the_new_protocol(poll: bool) {
        let s = start(app, adj(poll));
        let mut c = Client::connect(s.addr);
        switch(&mut c, b"one\ntwo\n");
        assert_eq!(line(&mut c), "one\n");
        assert_eq!(line(&mut c), "two\n");
        c.send(b"three\n");
        assert_eq!(line(&mut c), "three\n");
        // The client closes: the handler sees the end and closes too.
        c.stream.shutdown(Shutdown::Write).unwrap();
        assert!(c.read_all().is_empty());
    }

    fn a_request_pipelined_after_an_upgrade_is_not_parsed_as_http(poll: bool) {
        let s = start(app, adj(poll));
        let mut c = Client::connect(s.addr);
        switch(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        // Echoed as lines of the new protocol, not answered.
        assert_eq!(line(&mut c), "GET / HTTP/1.1\r\n");
        assert_eq!(line(&mut c), "Host: x\r\n");
        assert_eq!(line(&mut c), "\r\n");
        c.stream.shutdown(Shutdown::Write).unwrap();
        assert!(c.read_all().is_empty());
    }

    fn upgrade_in_http_1_0_is_served_as_http(poll: bool) {
        let s = start(app, adj(poll));
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(b"GET /echo HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (200, "plain"));
        // And without `Connection: upgrade`, HTTP/1.1 is served too.
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 200);
        assert_eq!(c.read_response().unwrap().text(), "plain");
    }

    fn a_101_to_a_request_that_did_not_ask_is_a_500(poll: bool) {
        let s = start(app, adj(poll));
        for req in [
            &b"GET /force HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"GET /force HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
            b"GET /raw101 HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
            b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
        ] {
            let mut c = Client::connect(s.addr);
            let r = c.roundtrip(req);
            assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(req));
            assert_eq!(r.header("connection"), Some("close"));
            c.assert_closed();
        }
        // The server goes on serving.
        assert_eq!(request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
    }

    fn continue_comes_before_the_101_and_the_body_before_the_switch(poll: bool) {
        let s = start(app, adj(poll));
        let mut c = Client::connect(s.addr);
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(c.read_head().unwrap().status, 100);
        c.send(b"helloafter\n");
        let r = c.read_head().unwrap();
        assert_eq!(r.status, 101);
        assert_eq!(line(&mut c), "body:hello\n");
        assert_eq!(line(&mut c), "after\n");
    }

    fn an_app_that_ignores_upgrade_is_served_as_today(poll: bool) {
        let s = start(app, adj(poll));
        let mut c = Client::connect(s.addr);
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.read_response().unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "plain"));
        let r = c.read_response().unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "slow"));
    }

    fn the_upgraded_connection_limit_answers_503(poll: bool) {
        let mut a = adj(poll);
        a.upgraded_connection_limit = 2;
        let s = start(app, a);
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut c = Client::connect(s.addr);
            switch(&mut c, b"");
            held.push(c);
        }
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(UPGRADE);
        assert_eq!(r.status, 503);
        assert_eq!(r.header("retry-after"), Some("1"));
        c.assert_closed();
        // One ends: there is room again.
        let mut first = held.remove(0);
        first.stream.shutdown(Shutdown::Write).unwrap();
        assert!(first.read_all().is_empty());
        wait_until(Duration::from_secs(10), || s.handle.stats().upgraded_open < 2);
        let mut c = Client::connect(s.addr);
        switch(&mut c, b"again\n");
        assert_eq!(line(&mut c), "again\n");
    }

    fn upgraded_connections_are_counted_and_logged(poll: bool) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let a = adj(poll).access_log(log.to_str().unwrap().to_string());
        let s = start(app, a);
        let mut c = Client::connect(s.addr);
        switch(&mut c, b"x\n");
        assert_eq!(line(&mut c), "x\n");
        let stats = s.handle.stats();
        assert_eq!((stats.upgraded_open, stats.upgraded_total), (1, 1));
        assert_eq!(stats.responses[0], 1, "a 1xx response");
        assert!(stats.to_prometheus().contains("maitred_upgraded_connections_open 1"));
        c.stream.shutdown(Shutdown::Write).unwrap();
        assert!(c.read_all().is_empty());
        wait_until(Duration::from_secs(10), || s.handle.stats().upgraded_open == 0);
        s.stop().unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("\"GET /echo HTTP/1.1\" 101 -"), "{text}");
    }

    fn a_graceful_stop_ends_upgraded_connections_after_shutdown_timeout(poll: bool) {
        let mut a = adj(poll);
        a.shutdown_timeout = 1;
        let s = start(app, a);
        let mut held = Vec::new();
        for i in 0..5 {
            let mut c = Client::connect(s.addr);
            switch(&mut c, format!("{i}\n").as_bytes());
            assert_eq!(line(&mut c), format!("{i}\n"));
            held.push(c);
        }
        let began = Instant::now();
        s.stop().unwrap();
        let took = began.elapsed();
        // The handlers had their second, then their sockets were shut down.
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert!(took < Duration::from_secs(8), "{took:?}");
        for mut c in held {
            assert!(c.read_all().is_empty(), "the end of the stream");
        }
    }

    fn a_handler_told_of_the_stop_ends_and_the_stop_does_not_wait(poll: bool) {
        // shutdown_timeout is long: the stop ends because the handlers
        // returned when told, not because the time ran out.
        let mut a = adj(poll);
        a.shutdown_timeout = 60;
        let s = start(app, a);
        let mut held = Vec::new();
        for i in 0..5 {
            let mut c = Client::connect(s.addr);
            c.send(
                format!(
                    "GET /polite HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n{i}\n"
                )
                .as_bytes(),
            );
            assert_eq!(c.read_head().expect("the 101").status, 101);
            assert_eq!(line(&mut c), format!("{i}\n"));
            held.push(c);
        }
        let began = Instant::now();
        s.stop().unwrap();
        let took = began.elapsed();
        for mut c in held {
            assert_eq!(line(&mut c), "bye\n");
            assert!(c.read_all().is_empty(), "the end of the stream");
        }
        assert!(took < Duration::from_secs(30), "the stop took {took:?}");
    }

    fn upgraded_connections_hold_no_worker(poll: bool) {
        // 200 upgraded connections stay open while 4 workers serve plain
        // requests: every one answered.
        let mut a = adj(poll);
        a.threads = 4;
        let s = start(app, a);
        let mut held = Vec::new();
        for i in 0..200 {
            let mut c = Client::connect(s.addr);
            switch(&mut c, format!("{i}\n").as_bytes());
            assert_eq!(line(&mut c), format!("{i}\n"));
            held.push(c);
        }
        assert_eq!(s.handle.stats().upgraded_open, 200);
        let mut took = Vec::new();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let mut c = Client::connect(s.addr);
                        let mut times = Vec::new();
                        for _ in 0..50 {
                            let t = Instant::now();
                            let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
                            assert_eq!(r.status, 200);
                            times.push(t.elapsed());
                        }
                        times
                    })
                })
                .collect();
            for w in workers {
                took.extend(w.join().unwrap());
            }
        });
        took.sort();
        let p = |q: f64| took[((took.len() - 1) as f64 * q) as usize];
        eprintln!(
            "200 upgraded connections held: 200 plain requests, p50 {:?}, p99 {:?}, max {:?}",
            p(0.5),
            p(0.99),
            took[took.len() - 1]
        );
        // The upgraded ones still work.
        for (i, c) in held.iter_mut().enumerate().step_by(37) {
            c.send(format!("again {i}\n").as_bytes());
            assert_eq!(line(c), format!("again {i}\n"));
        }
    }
}

#[test]
fn an_upgrade_over_a_unix_socket() {
    use std::os::unix::net::UnixStream;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let a = maitred::Adjustments::default().unix_socket(path.to_str().unwrap());
    let server = maitred::create_server(app, a).unwrap();
    let handle = server.handle();
    let t = std::thread::spawn(move || server.run());
    let mut u = UnixStream::connect(&path).unwrap();
    u.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut bytes = UPGRADE.to_vec();
    bytes.extend_from_slice(b"over unix\n");
    u.write_all(&bytes).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.ends_with(b"over unix\n") {
        let n = u.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    drop(u);
    handle.shutdown();
    t.join().unwrap().unwrap();
}
