//! Pushed bodies (`Body::channel`) over real sockets, on both pollers: each
//! chunk on the wire as soon as it is sent, the worker free meanwhile, the
//! end of the body (chunked, or the close of an HTTP/1.0 connection),
//! HEAD, pipelining behind a pushed body, a client that leaves, the
//! sender's back-pressure (`try_send`, `send_timeout`), a graceful stop,
//! the statistics and the access log.

mod common;

use std::io::Read;
use std::net::Shutdown;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use maitred::{Body, BodySender, Request, Response, SendError};

/// Where the application hands the tests its senders, in order.
type Senders = Arc<Mutex<mpsc::Sender<BodySender>>>;

/// `GET /push` answers with a pushed body whose sender goes to the test;
/// anything else is a plain response.
fn app(senders: Senders) -> impl Fn(&mut Request) -> Response + Send + Sync + 'static {
    move |req: &mut Request| match req.path().as_ref() {
        "/push" => {
            let (body, tx) = Body::channel();
            let _ = senders.lock().unwrap().send(tx);
            Response::new(200)
                .with_header("Content-Type", "text/event-stream")
                .with_body(body)
        }
        "/early" => {
            // Sent, and ended, before the response is even returned.
            let (body, tx) = Body::channel();
            tx.send(b"early ").unwrap();
            tx.send(b"bytes").unwrap();
            drop(tx);
            Response::new(200).with_body(body)
        }
        _ => Response::text("plain"),
    }
}

fn serve(
    poll: bool,
    tune: impl FnOnce(&mut maitred::Adjustments),
) -> (TestServer, mpsc::Receiver<BodySender>) {
    let (tx, rx) = mpsc::channel();
    let mut a = adj(poll);
    tune(&mut a);
    (start(app(Arc::new(Mutex::new(tx))), a), rx)
}

fn sender(rx: &mpsc::Receiver<BodySender>) -> BodySender {
    rx.recv_timeout(READ_TIMEOUT)
        .expect("the application's sender")
}

/// Reads until `want` has arrived (in the raw bytes), or fails.
fn read_until(c: &mut Client, want: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    while !got.windows(want.len()).any(|w| w == want) {
        let b = c.read_exact_n(1).unwrap_or_else(|e| {
            panic!(
                "{e} waiting for {:?}; got {:?}",
                String::from_utf8_lossy(want),
                String::from_utf8_lossy(&got)
            )
        });
        got.extend_from_slice(&b);
        assert!(got.len() < 1 << 20);
    }
    got
}

backend_tests! {
    fn each_chunk_is_on_the_wire_before_the_next_is_sent(poll: bool) {
        let (s, rx) = serve(poll, |_| {});
        let mut c = Client::connect(s.addr);
        c.send(b"GET /push HTTP/1.1\r\nHost: x\r\n\r\n");
        let tx = sender(&rx);
        let head = c.read_head().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.header("transfer-encoding"), Some("chunked"));
        for n in 1..=5 {
            let event = format!("id: {n}\ndata: {n}\n\n");
            tx.send(event.as_bytes()).unwrap();
            // The chunk arrives before the next one exists.
            let got = read_until(&mut c, event.as_bytes());
            let framed = format!("{:X}\r\n{event}", event.len());
            assert!(got.ends_with(framed.as_bytes()), "{got:?}");
        }
        drop(tx);
        assert_eq!(read_until(&mut c, b"0\r\n\r\n"), b"\r\n0\r\n\r\n");
        // Keep-alive goes on.
        let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.text(), "plain");
    }

    fn bytes_sent_before_the_response_is_returned_go_out_after_its_head(poll: bool) {
        let (s, _rx) = serve(poll, |_| {});
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(b"GET /early HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (200, "early bytes"));
        assert_eq!(c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").text(), "plain");
    }

    fn a_pushed_body_holds_no_worker(poll: bool) {
        // One worker, three open pushed bodies: plain requests are served.
        let (s, rx) = serve(poll, |a| a.threads = 1);
        let mut streams = Vec::new();
        let mut senders = Vec::new();
        for _ in 0..3 {
            let mut c = Client::connect(s.addr);
            c.send(b"GET /push HTTP/1.1\r\nHost: x\r\n\r\n");
            senders.push(sender(&rx));
            assert_eq!(c.read_head().unwrap().status, 200);
            streams.push(c);
        }
        // Counted once attached, just after the head went out.
        wait_until(Duration::from_secs(5), || s.handle.stats().streaming_responses == 3);
        for _ in 0..20 {
            assert_eq!(request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").text(), "plain");
        }
        for (tx, c) in senders.iter().zip(streams.iter_mut()) {
            tx.send(b"still here").unwrap();
            read_until(c, b"still here");
        }
        drop(senders);
        wait_until(Duration::from_secs(10), || s.handle.stats().streaming_responses == 0);
        let stats = s.handle.stats();
        assert_eq!(stats.bytes_pushed, 30);
    }

    fn http_1_0_without_a_length_ends_with_the_connection(poll: bool) {
        let (s, rx) = serve(poll, |_| {});
        let mut c = Client::connect(s.addr);
        c.send(b"GET /push HTTP/1.0\r\n\r\n");
        let tx = sender(&rx);
        let head = c.read_head().unwrap();
        assert_eq!(head.header("transfer-encoding"), None);
        tx.send(b"raw bytes").unwrap();
        read_until(&mut c, b"raw bytes");
        drop(tx);
        assert!(c.read_all().is_empty(), "closed after the body");
    }

    fn head_gets_no_body_and_the_sender_is_told_at_once(poll: bool) {
        let (s, rx) = serve(poll, |_| {});
        let mut c = Client::connect(s.addr);
        c.send(b"HEAD /push HTTP/1.1\r\nHost: x\r\n\r\n");
        let tx = sender(&rx);
        let head = c.read_response_to(true).unwrap();
        assert_eq!(head.status, 200);
        wait_until(Duration::from_secs(5), || tx.is_closed());
        assert_eq!(tx.send(b"nothing"), Err(SendError::Closed));
        drop(tx);
        // The connection goes on.
        assert_eq!(c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").text(), "plain");
    }

    fn a_request_pipelined_behind_a_pushed_body_waits_for_its_end(poll: bool) {
        let (s, rx) = serve(poll, |_| {});
        let mut c = Client::connect(s.addr);
        c.send(b"GET /push HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n");
        let tx = sender(&rx);
        assert_eq!(c.read_head().unwrap().status, 200);
        tx.send(b"first").unwrap();
        tx.send(b"second").unwrap();
        read_until(&mut c, b"second");
        // Nothing of /after yet.
        c.stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut peek = [0u8; 1];
        assert!(c.stream.read(&mut peek).is_err(), "the next response came early");
        c.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        drop(tx);
        read_until(&mut c, b"0\r\n\r\n");
        let r = c.read_response().unwrap();
        assert_eq!(r.text(), "plain");
    }

    fn a_client_that_leaves_closes_the_body_for_its_sender(poll: bool) {
        let (s, rx) = serve(poll, |_| {});
        let mut c = Client::connect(s.addr);
        c.send(b"GET /push HTTP/1.1\r\nHost: x\r\n\r\n");
        let tx = sender(&rx);
        c.read_head().unwrap();
        c.stream.shutdown(Shutdown::Both).unwrap();
        drop(c);
        // Noticed within a few sends (the first may still be taken by the
        // socket), then at once.
        let began = Instant::now();
        let mut refused = false;
        for _ in 0..200 {
            if tx.send(b"event\n").is_err() {
                refused = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(refused, "the sender never noticed the client left");
        assert!(tx.is_closed());
        assert!(began.elapsed() < Duration::from_secs(5));
        wait_until(Duration::from_secs(5), || s.handle.stats().streaming_responses == 0);
    }

    fn a_sender_waits_for_a_slow_client_and_try_send_says_full(poll: bool) {
        let (s, rx) = serve(poll, |a| a.outbuf_high_watermark = 64 * 1024);
        let mut c = Client::connect(s.addr);
        c.send(b"GET /push HTTP/1.1\r\nHost: x\r\n\r\n");
        let tx = sender(&rx);
        c.read_head().unwrap();
        // The client reads nothing: the socket's buffers fill, then the
        // output passes the watermark.
        let chunk = vec![b'x'; 64 * 1024];
        let mut full = false;
        for _ in 0..2000 {
            match tx.try_send(&chunk) {
                Ok(()) => {}
                Err(SendError::Full) => {
                    full = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(full, "try_send never said Full");
        // The kernel's buffers may still take a little: a wait times out
        // once they are full too.
        let mut timed_out = false;
        for _ in 0..50 {
            match tx.send_timeout(&chunk, Duration::from_millis(200)) {
                Ok(()) => {}
                Err(SendError::Timeout) => {
                    timed_out = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(timed_out, "send_timeout never timed out on a client that reads nothing");
        // The client reads: the sender goes on.
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut n = 0u64;
            while let Ok(k) = c.stream.read(&mut buf) {
                if k == 0 {
                    break;
                }
                n += k as u64;
            }
            n
        });
        tx.send_timeout(&chunk, Duration::from_secs(10)).unwrap();
        drop(tx);
        let _ = s;
        drop(reader);
    }

    fn a_graceful_stop_ends_a_pushed_body_after_shutdown_timeout(poll: bool) {
        let (s, rx) = serve(poll, |a| a.shutdown_timeout = 1);
        let mut c = Client::connect(s.addr);
        c.send(b"GET /push HTTP/1.1\r\nHost: x\r\n\r\n");
        let tx = sender(&rx);
        c.read_head().unwrap();
        tx.send(b"before the stop").unwrap();
        read_until(&mut c, b"before the stop");
        let began = Instant::now();
        s.stop().unwrap();
        let took = began.elapsed();
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(8), "{took:?}");
        // The sender is told; the client sees the connection end.
        assert_eq!(tx.send(b"after"), Err(SendError::Closed));
        let rest = c.read_all();
        assert!(!rest.windows(5).any(|w| w == b"after"), "{rest:?}");
    }

    fn the_access_log_line_comes_at_the_end_with_the_length(poll: bool) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let (s, rx) = serve(poll, |a| {
            a.access_log = log.to_str().unwrap().to_string();
            a.access_log_format = "%r %>s %b".into();
        });
        let mut c = Client::connect(s.addr);
        c.send(b"GET /push HTTP/1.1\r\nHost: x\r\n\r\n");
        let tx = sender(&rx);
        c.read_head().unwrap();
        tx.send(b"12345").unwrap();
        tx.send(b"678").unwrap();
        drop(tx);
        read_until(&mut c, b"0\r\n\r\n");
        drop(c);
        s.stop().unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("GET /push HTTP/1.1 200 8"), "{text}");
    }
}

#[test]
fn a_body_the_application_never_returned_closes_its_sender() {
    let (body, tx) = Body::channel();
    drop(body);
    assert!(tx.is_closed());
    assert_eq!(tx.send(b"x"), Err(SendError::Closed));
}
