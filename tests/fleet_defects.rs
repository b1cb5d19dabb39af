//! Defects of issue 20 that the connection core's rewrite fixed, each shown
//! over loopback on the default poller and on poll(2): blank lines after a
//! request start no head deadline and leave the connection idle (4); the
//! server's own answers name, in the access log, the client the trusted
//! proxy rules give wherever the head was parsed (5); no deferred
//! `100 Continue` once a graceful stop began (6b); a staged close after
//! every error the server answers by itself, bounded in time and size (7).

mod common;

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use maitred::{Adjustments, Request, Response};

fn echo_len(req: &mut Request) -> Response {
    let n = req.body().to_vec().map(|b| b.len()).unwrap_or(0);
    Response::text(format!("{n}"))
}

/// A request with a one-byte body, then the CRLF some clients send after
/// a body (RFC 9112 §2.2: a server SHOULD ignore at least one empty line
/// before a request line).
const POST_THEN_CRLF: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx\r\n";

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// Reads once with `timeout`: `None` when nothing came (the read timed
/// out), else what came (empty at EOF) or the error.
fn read_within(c: &mut Client, timeout: Duration) -> Option<io::Result<Vec<u8>>> {
    c.stream.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 4096];
    let got = match c.stream.read(&mut buf) {
        Ok(n) => Some(Ok(buf[..n].to_vec())),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => Some(Err(e)),
    };
    c.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    got
}

/// True when the server closed `c` (end of stream or reset) within
/// `timeout`, with nothing more sent.
fn closed_within(c: &mut Client, timeout: Duration) -> bool {
    match read_within(c, timeout) {
        Some(Ok(b)) => b.is_empty(),
        Some(Err(e)) => e.kind() == io::ErrorKind::ConnectionReset,
        None => false,
    }
}

// ---------------------------------------------------------------------
// 4. Blank lines after a request
// ---------------------------------------------------------------------

backend_tests! {
    /// The CRLF after a body is no head begun: no 408 comes however long
    /// the kept connection stays silent, and it serves the next request.
    fn a_crlf_after_a_request_starts_no_head_deadline(poll: bool) {
        let mut a = adj(poll);
        a.request_head_timeout = 2;
        let s = start(echo_len, a);
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(POST_THEN_CRLF);
        assert_eq!((r.status, r.text()), (200, "1".to_string()));
        // Past the head deadline (2 s) with a second and a half to spare.
        match read_within(&mut c, Duration::from_millis(3500)) {
            None => {}
            Some(got) => panic!(
                "the idle kept connection got {:?} instead of staying open",
                got.map(|b| String::from_utf8_lossy(&b).into_owned())
            ),
        }
        assert_eq!(c.roundtrip(GET).status, 200);
        assert_eq!(s.handle.stats().requests_timed_out, 0);
        s.stop().unwrap();
    }

    /// At the connection limit, a connection idle after a request and its
    /// CRLF is ranked as idle, and closed to make room before connections
    /// still receiving a head, even ones that began earlier.
    fn an_idle_connection_after_a_crlf_is_evicted_before_a_slow_head(poll: bool) {
        let mut a = adj(poll);
        a.connection_limit = 3;
        let s = start(echo_len, a);
        // Two heads begun first (the longest at it go first among them).
        let mut heads: Vec<Client> = (0..2)
            .map(|_| {
                let mut c = Client::connect(s.addr);
                c.send(b"GET / HTTP/1.1\r\nHo");
                c
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        // Then one served, idle after its CRLF.
        let mut idle = Client::connect(s.addr);
        assert_eq!(idle.roundtrip(POST_THEN_CRLF).status, 200);
        std::thread::sleep(Duration::from_millis(100));

        // A fourth connection: room is made by closing the idle one.
        let mut newcomer = Client::connect(s.addr);
        if !closed_within(&mut idle, Duration::from_secs(3)) {
            let mut heads_closed = 0;
            for c in &mut heads {
                heads_closed += usize::from(closed_within(c, Duration::from_millis(200)));
            }
            panic!(
                "the connection idle after its CRLF was not evicted; slow heads evicted instead: {heads_closed} of 2"
            );
        }
        assert_eq!(newcomer.roundtrip(GET).status, 200);
        // The slow heads are still open: they finish and are served.
        for c in &mut heads {
            c.send(b"st: x\r\n\r\n");
            assert_eq!(c.read_response().expect("a slow head was closed").status, 200);
        }
        assert_eq!(s.handle.stats().connections_evicted, 1);
        s.stop().unwrap();
    }
}

// ---------------------------------------------------------------------
// 5. The client named in the server's own log lines
// ---------------------------------------------------------------------

const FORWARDED_FOR: &str = "203.0.113.9";

fn slow_app(req: &mut Request) -> Response {
    if req.path() == "/slow" {
        std::thread::sleep(Duration::from_millis(1500));
    }
    Response::text("done")
}

/// One worker, the access log as `%h %>s %r` to a file in a new temporary
/// directory (kept while the first value lives; the second is the file),
/// and the test's client (127.0.0.1) a trusted proxy that forwards for
/// `FORWARDED_FOR`.
fn behind_a_proxy(poll: bool) -> (tempfile::TempDir, PathBuf, Adjustments) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let mut a = adj(poll);
    a.threads = 1;
    a.trusted_proxy = Some("127.0.0.1".into());
    a.trusted_proxy_headers = ["x-forwarded-for".to_string()].into();
    a.access_log = log.to_str().unwrap().to_string();
    a.access_log_format = "%h %>s %r".into();
    (dir, log, a)
}

/// A connection whose forwarded `/slow` holds the only worker.
fn holding_the_worker(s: &TestServer) -> Client {
    let mut c = Client::connect(s.addr);
    c.send(&forwarded("/slow"));
    wait_until(Duration::from_secs(5), || {
        s.handle.stats().requests_in_app == 1
    });
    c
}

fn forwarded(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {FORWARDED_FOR}\r\n\r\n")
        .into_bytes()
}

/// The access log's lines, sorted (they are written by several threads).
fn sorted_lines(log: &Path) -> Vec<String> {
    let mut got: Vec<String> = std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    got.sort_unstable();
    got
}

backend_tests! {
    /// A request the I/O thread sheds (`max_queue_depth`) is logged with
    /// the client the application's lines name; a parse error and a 408,
    /// whose heads were never parsed, with the socket's peer.
    fn a_request_shed_by_queue_depth_is_logged_with_the_forwarded_client(poll: bool) {
        let (_dir, log, mut a) = behind_a_proxy(poll);
        a.max_queue_depth = 1;
        a.request_head_timeout = 1;
        let s = start(slow_app, a);
        // One runs, one waits: the queue is full.
        let mut running = holding_the_worker(&s);
        let mut waiting = Client::connect(s.addr);
        waiting.send(&forwarded("/slow"));
        wait_until(Duration::from_secs(5), || s.handle.stats().queue_depth == 1);
        let mut shed = Client::connect(s.addr);
        assert_eq!(shed.roundtrip(&forwarded("/")).status, 503);
        // A head that cannot be parsed, though it says whom it is for.
        let mut bad = Client::connect(s.addr);
        let bad_head = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {FORWARDED_FOR}\r\nBad header\r\n\r\n"
        );
        assert_eq!(bad.roundtrip(bad_head.as_bytes()).status, 400);
        // A head never finished.
        let mut slow = Client::connect(s.addr);
        slow.send(format!("GET / HTTP/1.1\r\nX-Forwarded-For: {FORWARDED_FOR}\r\n").as_bytes());
        assert_eq!(slow.read_response().unwrap().status, 408);
        assert_eq!(running.read_response().unwrap().status, 200);
        assert_eq!(waiting.read_response().unwrap().status, 200);
        s.stop().unwrap();
        assert_eq!(
            sorted_lines(&log),
            [
                "127.0.0.1 400 -",
                "127.0.0.1 408 -",
                "203.0.113.9 200 GET /slow HTTP/1.1",
                "203.0.113.9 200 GET /slow HTTP/1.1",
                "203.0.113.9 503 GET / HTTP/1.1",
            ]
        );
    }

    /// A request a worker sheds (`max_queue_wait`) is logged with the
    /// client the application's lines name.
    fn a_request_shed_by_queue_wait_is_logged_with_the_forwarded_client(poll: bool) {
        let (_dir, log, mut a) = behind_a_proxy(poll);
        a.max_queue_wait = 1;
        let s = start(slow_app, a);
        let mut first = holding_the_worker(&s);
        // Waits 1.5 s for the only worker: more than max_queue_wait.
        let mut second = Client::connect(s.addr);
        second.send(&forwarded("/"));
        assert_eq!(first.read_response().unwrap().status, 200);
        assert_eq!(second.read_response().unwrap().status, 503);
        s.stop().unwrap();
        assert_eq!(
            sorted_lines(&log),
            [
                "203.0.113.9 200 GET /slow HTTP/1.1",
                "203.0.113.9 503 GET / HTTP/1.1",
            ]
        );
    }
}

// ---------------------------------------------------------------------
// 6b. No deferred 100 Continue on a draining connection
// ---------------------------------------------------------------------

fn sleepy(req: &mut Request) -> Response {
    if req.path() == "/slow" {
        std::thread::sleep(Duration::from_millis(700));
    }
    echo_len(req)
}

/// A request that runs, and pipelined behind it the head of an upload
/// that asks for `100 Continue` (deferred until the first is answered).
const SLOW_THEN_EXPECT: &[u8] = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nPOST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n";

backend_tests! {
    /// The `100 Continue` deferred behind a running request is not sent
    /// once a graceful stop began (the upload it invites would be cut):
    /// the running response is finished, says `Connection: close`, and
    /// the connection closes.
    fn a_deferred_100_continue_is_not_sent_once_a_stop_began(poll: bool) {
        let s = start(sleepy, adj(poll));
        // Without a stop, the 100 comes after the running response: it
        // was deferred.
        let mut c = Client::connect(s.addr);
        c.send(SLOW_THEN_EXPECT);
        assert_eq!(c.read_response().unwrap().status, 200);
        assert_eq!(c.read_head().unwrap().status, 100);
        c.send(b"0123456789");
        assert_eq!(c.read_response().unwrap().text(), "10");

        let mut c = Client::connect(s.addr);
        c.send(SLOW_THEN_EXPECT);
        wait_until(Duration::from_secs(5), || s.handle.stats().requests_in_app == 1);
        std::thread::sleep(Duration::from_millis(100));
        s.handle.shutdown();
        let got = c.read_all();
        let text = String::from_utf8_lossy(&got);
        assert!(!text.contains("100 Continue"), "{text}");
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n0"), "{text}");
        s.stop().unwrap();
    }
}

// ---------------------------------------------------------------------
// 7. A staged close after the server's own errors
// ---------------------------------------------------------------------

/// How much a client that keeps sending sends after its head.
const KEEP_SENDING: usize = 1 << 20;
const PIECE: usize = 64 * 1024;

/// Sends `head`, then `KEEP_SENDING` bytes of `fill` in `PIECE` writes
/// (stopping at the first failed write: the server may have closed), and
/// only then reads. The answer must be whole, then the end of the stream:
/// a reset instead means the server closed with the client's bytes unread
/// (which can destroy the answer before the client reads it).
fn keeps_sending_then_reads(
    addr: std::net::SocketAddr,
    head: &[u8],
    fill: u8,
) -> Result<Resp, String> {
    let mut c = Client::connect(addr);
    c.stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    c.send(head);
    let piece = vec![fill; PIECE];
    let started = Instant::now();
    for _ in 0..KEEP_SENDING / PIECE {
        if c.try_send(&piece).is_err() || started.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    let r = c
        .read_response()
        .map_err(|e| format!("no whole answer: {e}"))?;
    let mut rest = [0u8; 1024];
    match c.stream.read(&mut rest) {
        Ok(0) => Ok(r),
        Ok(n) => Err(format!(
            "bytes after the answer: {:?}",
            String::from_utf8_lossy(&rest[..n])
        )),
        Err(e) => Err(format!(
            "a {} answer, then {e} instead of the end of the stream",
            r.status
        )),
    }
}

backend_tests! {
    /// 413, 431 and 400 reach a client that keeps sending before it reads.
    fn an_error_answer_survives_a_client_that_keeps_sending(poll: bool) {
        let mut a = adj(poll);
        a.max_request_body_size = 1000;
        let s = start(echo_len, a);
        let cases: [(&str, &[u8], u8, u16); 3] = [
            (
                "a body over max_request_body_size",
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
                b'b',
                413,
            ),
            (
                "a header field that never ends",
                b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ",
                b'h',
                431,
            ),
            (
                "a malformed head with garbage after it",
                b"GET / HTTP/1.1\r\nHost: x\r\nBad header\r\n\r\n",
                b'g',
                400,
            ),
        ];
        // Every case is tried, and every failure told.
        let mut failed = Vec::new();
        for (what, head, fill, status) in cases {
            match keeps_sending_then_reads(s.addr, head, fill) {
                Ok(r) => {
                    assert_eq!(r.status, status, "{what}: {}", r.text());
                    assert_eq!(r.header("connection"), Some("close"), "{what}");
                    let length: usize = r.header("content-length").unwrap().parse().unwrap();
                    assert_eq!(r.body.len(), length, "{what}");
                }
                Err(e) => failed.push(format!("{what}: {e}")),
            }
        }
        assert!(failed.is_empty(), "{failed:#?}");
        // The server is fine for the next client.
        assert_eq!(request(s.addr, GET).status, 200);
        s.stop().unwrap();
    }

    /// The staged close is bounded: a client that goes on sending, slowly
    /// past the linger time (5 s) or fast past its size (4 MiB), is closed
    /// anyway (`LINGER_MS` and `LINGER_BYTES` in src/conn/mod.rs).
    fn a_staged_close_ends_at_its_time_and_size_bounds(poll: bool) {
        let mut a = adj(poll);
        a.max_request_body_size = 1000;
        let s = start(echo_len, a);
        let over = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n";
        // Sends `piece` every `every` until a write fails (the server
        // closed), at most for 12 s; returns when that was, after the
        // answer, and how much was sent.
        let until_closed = |piece: usize, every: Duration| {
            let mut c = Client::connect(s.addr);
            c.stream
                .set_write_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            c.send(over);
            assert_eq!(c.read_response().unwrap().status, 413);
            let answered = Instant::now();
            let chunk = vec![b'z'; piece];
            let mut sent = 0usize;
            while answered.elapsed() < Duration::from_secs(12) {
                if c.try_send(&chunk).is_err() {
                    return (answered.elapsed(), sent);
                }
                sent += piece;
                std::thread::sleep(every);
            }
            panic!("still open after 12 s and {sent} bytes");
        };
        std::thread::scope(|sc| {
            // Slowly: 1 KiB every 50 ms, about 100 KiB in 5 s.
            let slow = sc.spawn(|| until_closed(1024, Duration::from_millis(50)));
            // Fast: 64 KiB writes back to back.
            let (fast_after, fast_sent) = until_closed(PIECE, Duration::ZERO);
            let (slow_after, slow_sent) = slow.join().unwrap();
            assert!(
                slow_after > Duration::from_secs(3),
                "closed after only {slow_after:?}: the close was not staged"
            );
            assert!(slow_sent < 4 << 20, "{slow_sent}");
            assert!(fast_sent >= 4 << 20, "closed after {fast_sent} bytes");
            assert!(fast_after < Duration::from_secs(4), "{fast_after:?}");
        });
        s.stop().unwrap();
    }
}
