//! Clients that would hold a connection without ever finishing a request:
//! the head deadline (`request_head_timeout`) and the body rate
//! (`request_body_timeout` + `min_request_body_rate`) answer them `408` and
//! close. Each test runs on the default poller and on poll(2), over
//! loopback, bounded in time.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use maitred::{Adjustments, Request, Response};

fn echo_len(req: &mut Request) -> Response {
    let n = req.body().to_vec().map(|b| b.len()).unwrap_or(0);
    Response::text(format!("{n}"))
}

fn with_deadlines(poll: bool, head: u64, body: u64, rate: u64) -> Adjustments {
    let mut a = adj(poll);
    a.request_head_timeout = head;
    a.request_body_timeout = body;
    a.min_request_body_rate = rate;
    a
}

/// Sends `first`, then one byte of `rest` every `every` (stopping at the
/// first failed write: the server may close), until the server answers or
/// `limit` passes. Returns what the server sent and when its first byte
/// came, counted from the first send.
fn dribble(
    c: &mut Client,
    first: &[u8],
    rest: &[u8],
    every: Duration,
    limit: Duration,
) -> (Vec<u8>, Option<Duration>) {
    let start = Instant::now();
    c.send(first);
    c.stream.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut first_byte_at = None;
    let mut next = start + every;
    let mut i = 0;
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match c.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                first_byte_at.get_or_insert(start.elapsed());
                got.extend_from_slice(&buf[..n]);
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        if Instant::now() >= next && i < rest.len() && first_byte_at.is_none() {
            if c.stream.write_all(&rest[i..i + 1]).is_err() {
                break;
            }
            i += 1;
            next += every;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    c.stream.set_nonblocking(false).unwrap();
    (got, first_byte_at)
}

fn assert_408(got: &[u8], at: Option<Duration>, window: (u64, u64), says: &str) {
    let text = String::from_utf8_lossy(got);
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    assert!(text.contains(says), "{text}");
    let at = at.expect("an answer");
    assert!(
        at >= Duration::from_millis(window.0) && at <= Duration::from_millis(window.1),
        "the 408 came after {at:?}, not within {window:?} ms"
    );
}

backend_tests! {
    fn a_dribbled_head_gets_408_at_its_deadline(poll: bool) {
        let s = start(echo_len, with_deadlines(poll, 1, 0, 0));
        let mut c = Client::connect(s.addr);
        // A byte every 150 ms would keep any idle timer alive for ever.
        let (got, at) = dribble(
            &mut c,
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            Duration::from_millis(150),
            Duration::from_secs(5),
        );
        assert_408(&got, at, (900, 2500), "request_head_timeout");
        assert_eq!(s.handle.stats().requests_timed_out, 1);
        // And the connection is closed after it.
        c.assert_closed();
        // Other clients are served meanwhile and after.
        assert_eq!(request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
        s.stop().unwrap();
    }

    fn on_a_kept_connection_the_clock_starts_with_the_next_head(poll: bool) {
        let s = start(echo_len, with_deadlines(poll, 1, 0, 0));
        let mut c = Client::connect(s.addr);
        // Idle for longer than the head deadline between requests: no head
        // has begun, so no 408 (idle connections are channel_timeout's).
        assert_eq!(c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
        // A head begun and never finished is.
        let (got, at) = dribble(
            &mut c,
            b"GET / HTTP/1.1\r\n",
            b"",
            Duration::from_millis(100),
            Duration::from_secs(5),
        );
        assert_408(&got, at, (900, 2500), "request_head_timeout");
        s.stop().unwrap();
    }

    fn a_head_finished_in_time_is_served(poll: bool) {
        let s = start(echo_len, with_deadlines(poll, 2, 0, 0));
        let mut c = Client::connect(s.addr);
        let (got, _) = dribble(
            &mut c,
            b"GET / HTTP/1.1\r\n",
            b"Host: x\r\n\r\n",
            Duration::from_millis(50),
            Duration::from_secs(3),
        );
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        s.stop().unwrap();
    }

    fn a_zero_head_timeout_is_off(poll: bool) {
        let s = start(echo_len, with_deadlines(poll, 0, 0, 0));
        let mut c = Client::connect(s.addr);
        let (got, _) = dribble(
            &mut c,
            b"GET / HTTP/1.1\r\n",
            b"",
            Duration::from_millis(100),
            Duration::from_millis(1800),
        );
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
        // Still open: the request can be finished.
        c.send(b"Host: x\r\n\r\n");
        assert_eq!(c.read_response().unwrap().status, 200);
        s.stop().unwrap();
    }

    fn a_body_slower_than_the_rate_gets_408(poll: bool) {
        // A second of grace, plus a second per 100 bytes: at 40 bytes a
        // second the deadline passes at about 1.7 s.
        let s = start(echo_len, with_deadlines(poll, 0, 1, 100));
        let mut c = Client::connect(s.addr);
        let body = [b'a'; 1000];
        let (got, at) = dribble(
            &mut c,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
            &body,
            Duration::from_millis(25),
            Duration::from_secs(6),
        );
        assert_408(&got, at, (1300, 3500), "min_request_body_rate");
        s.stop().unwrap();
    }

    fn a_body_at_the_rate_is_served(poll: bool) {
        // 200 bytes a second against a rate of 100: always ahead.
        let s = start(echo_len, with_deadlines(poll, 0, 1, 100));
        let mut c = Client::connect(s.addr);
        let body = [b'a'; 300];
        let (got, _) = dribble(
            &mut c,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n\r\n",
            &body,
            Duration::from_millis(5),
            Duration::from_secs(6),
        );
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("300"), "{text}");
        s.stop().unwrap();
    }

    fn an_expect_continue_holder_gets_408_after_the_grace(poll: bool) {
        let s = start(echo_len, with_deadlines(poll, 30, 1, 500));
        let mut c = Client::connect(s.addr);
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n");
        let interim = c.read_head().unwrap();
        assert_eq!(interim.status, 100);
        let started = Instant::now();
        c.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let r = c.read_response().unwrap();
        assert_eq!(r.status, 408);
        let after = started.elapsed();
        assert!(after >= Duration::from_millis(800) && after <= Duration::from_millis(2500), "{after:?}");
        s.stop().unwrap();
    }
}

#[test]
fn the_defaults_bound_head_and_body() {
    let a = Adjustments::default();
    assert_eq!(a.request_head_timeout, 30);
    assert_eq!(a.request_body_timeout, 20);
    assert_eq!(a.min_request_body_rate, 500);
}

/// An endless-ish generated body of each kind, 200 MiB, made as it is sent.
fn big_bodies(req: &mut Request) -> Response {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 3200;
    let body = match req.path().as_ref() {
        "/chunks" => maitred::Body::Chunks(Box::new((0..CHUNKS).map(|_| Ok(vec![b'c'; CHUNK])))),
        "/writer" => maitred::Body::from_writer(|w| {
            let block = vec![b'w'; CHUNK];
            for _ in 0..CHUNKS {
                w.write_all(&block)?;
            }
            Ok(())
        }),
        "/reader" => maitred::Body::from_reader(
            std::io::repeat(b'r').take((CHUNK * CHUNKS) as u64),
            Some((CHUNK * CHUNKS) as u64),
        ),
        "/bytes" => maitred::Body::from(vec![b'b'; 16 * 1024 * 1024]),
        _ => return Response::text("hello"),
    };
    Response::new(200).with_body(body)
}

backend_tests! {
    fn clients_that_never_read_release_their_workers(poll: bool) {
        let mut a = adj(poll);
        a.threads = 3;
        a.channel_timeout = 2;
        a.cleanup_interval = 1;
        a.outbuf_high_watermark = 256 * 1024;
        // Writers wait at the watermark (waitress's way): what is shown is
        // that channel_timeout frees them. With spilling (the default) they
        // would not wait at all (tests/spill.rs).
        a.outbuf_spill_limit = 0;
        let s = start(big_bodies, a);
        // One client per streamed body kind takes a worker and reads
        // nothing; a bytes body is buffered whole (spilled to a file), so
        // it holds no worker, only its connection.
        let hog = |path: &str| {
            let mut c = Client::connect(s.addr);
            c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
            c
        };
        let hogs: Vec<Client> = ["/chunks", "/writer", "/reader", "/bytes"]
            .iter()
            .map(|p| hog(p))
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        // Every worker is held now; within about channel_timeout they are
        // released and a normal client is served.
        let started = Instant::now();
        let mut c = Client::connect(s.addr);
        c.stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 200);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1000) && waited < Duration::from_secs(10),
            "served after {waited:?}"
        );
        // Every hog's connection is closed: after what the socket buffers
        // hold, the end of the stream.
        std::thread::sleep(Duration::from_millis(2500));
        for mut h in hogs {
            h.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0usize;
            loop {
                match h.stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
                assert!(total < 64 * 1024 * 1024, "a hog is still being fed");
            }
        }
        // The three streamed bodies' workers were released and counted.
        assert_eq!(s.handle.stats().connections_not_reading, 3);
        s.stop().unwrap();
    }
}

backend_tests! {
    /// At the limit, room is made by closing idle connections first, then
    /// connections still receiving a head; a connection whose request runs
    /// or whose body is arriving is never closed; with nothing to close, a
    /// new connection gets 503 with Retry-After.
    fn at_the_connection_limit_room_is_made_in_order(poll: bool) {
        let gate = Gate::default();
        let g = gate.clone();
        let mut a = adj(poll);
        a.connection_limit = 4;
        a.threads = 4;
        let s = start(
            move |req: &mut Request| {
                if req.path() == "/block" {
                    g.wait();
                }
                echo_len(req)
            },
            a,
        );
        let get_block = b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n";
        // A: a request running.
        let mut running = Client::connect(s.addr);
        running.send(get_block);
        // B: idle after a request.
        let mut idle = Client::connect(s.addr);
        assert_eq!(idle.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
        // C: half a head.
        let mut slow_head = Client::connect(s.addr);
        slow_head.send(b"GET / HTTP/1.1\r\nHo");
        // D: a body on its way.
        let mut body = Client::connect(s.addr);
        body.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
        std::thread::sleep(Duration::from_millis(200));

        // E takes the idle one's place.
        let mut e = Client::connect(s.addr);
        e.send(get_block);
        idle.assert_closed();
        // F takes the slow head's place.
        std::thread::sleep(Duration::from_millis(100));
        let mut f = Client::connect(s.addr);
        f.send(get_block);
        slow_head.assert_closed();
        std::thread::sleep(Duration::from_millis(100));
        // G finds nothing to close: 503, at once.
        let mut g = Client::connect(s.addr);
        let r = g.read_response().unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.header("retry-after"), Some("1"));
        assert_eq!(r.header("connection"), Some("close"));

        // Nobody with work in progress was closed.
        gate.open();
        for c in [&mut running, &mut e, &mut f] {
            let r = c.read_response().unwrap();
            assert_eq!(r.status, 200);
        }
        body.send(b"defghij");
        let r = body.read_response().unwrap();
        assert_eq!((r.status, r.text()), (200, "10".to_string()));
        // The statistics count both evictions and the refusal.
        let st = s.handle.stats();
        assert_eq!((st.connections_evicted, st.connections_refused), (2, 1), "{st:?}");
        s.stop().unwrap();
    }
}
