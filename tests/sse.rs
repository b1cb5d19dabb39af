//! The `sse` example (server-sent events from pushed bodies) over real
//! sockets, on both pollers: its pages, events in order from 1, the
//! keep-alive comment, `Last-Event-ID`, subscribers that leave, and two
//! thousand subscribers on the four default workers for ten seconds while
//! a plain client is served beside them.

mod common;

/// The `sse` example's application, served here as the example serves it.
#[path = "../examples/sse.rs"]
#[allow(dead_code)]
mod sse_example;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sse_example::Hub;

fn serve(poll: bool, interval: Duration, keepalive: Duration) -> (TestServer, Arc<Hub>) {
    let hub = Hub::start(interval, keepalive).unwrap();
    let a = adj(poll);
    (start(sse_example::app(Arc::clone(&hub)), a), hub)
}

/// Reads a subscriber's stream up to and including the event with id
/// `upto`, and returns the ids seen in order (the raw stream is chunked;
/// each event is one chunk, so its text is contiguous).
fn ids_until(c: &mut Client, upto: u64) -> Vec<u64> {
    let mut text = Vec::new();
    let mut ids = Vec::new();
    while ids.last() != Some(&upto) {
        let b = c.read_exact_n(1).expect("the stream goes on");
        text.extend_from_slice(&b);
        if text.ends_with(b"\n\n") {
            ids.extend(events(&text));
            text.clear();
        }
    }
    ids
}

/// The ids of the whole `id: n\ndata: n\n\n` events in `text` (a chunk
/// line before one is skipped); checks that each event's data is its id.
fn events(text: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(text);
    let mut ids = Vec::new();
    let mut rest = &*text;
    while let Some(at) = rest.find("id: ") {
        rest = &rest[at + 4..];
        let Some(end) = rest.find("\n\n") else { break };
        let event = &rest[..end];
        let (id, data) = event.split_once("\ndata: ").expect("data after id");
        assert_eq!(id, data, "{event:?}");
        ids.push(id.parse::<u64>().expect("a numeric id"));
        rest = &rest[end + 2..];
    }
    ids
}

fn subscribe(addr: SocketAddr, extra: &str) -> Client {
    let mut c = Client::connect(addr);
    c.send(format!("GET /events HTTP/1.1\r\nHost: x\r\n{extra}\r\n").as_bytes());
    let head = c.read_head().unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("cache-control"), Some("no-cache"));
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    c
}

fn consecutive(ids: &[u64]) -> bool {
    ids.windows(2).all(|w| w[1] == w[0] + 1)
}

backend_tests! {
    fn the_pages_and_the_events_from_one(poll: bool) {
        let (s, hub) = serve(poll, Duration::from_millis(20), Duration::from_secs(60));
        let hello = request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(hello.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(hello.text().contains("/events"));
        let page = request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n");
        assert!(page.text().contains("new EventSource(\"/events\")"));
        assert_eq!(request(s.addr, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").status, 404);
        let post = request(s.addr, b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(post.status, 405);
        assert_eq!(post.header("allow"), Some("GET, HEAD"));
        // A subscriber's events are consecutive, from the one after it
        // subscribed; a second subscriber sees the same ids.
        let mut a = subscribe(s.addr, "");
        let mut b = subscribe(s.addr, "");
        let first = hub.last_id() + 5;
        let ids_a = ids_until(&mut a, first);
        let ids_b = ids_until(&mut b, first);
        assert!(consecutive(&ids_a) && consecutive(&ids_b), "{ids_a:?} {ids_b:?}");
        assert!(ids_a[0] >= 1);
        // A HEAD subscribes nobody for long: the head, no body, and the
        // connection serves the next request.
        let mut h = Client::connect(s.addr);
        h.send(b"HEAD /events HTTP/1.1\r\nHost: x\r\n\r\n");
        let head = h.read_response_to(true).unwrap();
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
        assert_eq!(h.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
    }

    fn idle_streams_get_a_comment(poll: bool) {
        let (s, _hub) = serve(poll, Duration::from_millis(50), Duration::from_millis(200));
        let mut c = subscribe(s.addr, "");
        let mut text = Vec::new();
        while !text.windows(14).any(|w| w == b": keep-alive\n\n") {
            text.extend(c.read_exact_n(1).unwrap());
            assert!(text.len() < 1 << 16);
        }
    }

    fn a_subscriber_that_reconnects_misses_nothing(poll: bool) {
        let (s, hub) = serve(poll, Duration::from_millis(20), Duration::from_secs(60));
        let mut c = subscribe(s.addr, "");
        let seen = ids_until(&mut c, hub.last_id() + 3);
        let last = *seen.last().unwrap();
        drop(c);
        // Away for a few events, then back with the last id it saw.
        let away = hub.last_id() + 4;
        wait_until(Duration::from_secs(10), || hub.last_id() >= away);
        let mut c = subscribe(s.addr, &format!("Last-Event-ID: {last}\r\n"));
        let again = ids_until(&mut c, hub.last_id() + 2);
        assert_eq!(again[0], last + 1, "{again:?}");
        assert!(consecutive(&again), "{again:?}");
    }

    fn subscribers_that_leave_are_forgotten_at_the_next_event(poll: bool) {
        let (s, hub) = serve(poll, Duration::from_millis(50), Duration::from_secs(60));
        let mut clients: Vec<Client> = (0..20).map(|_| subscribe(s.addr, "")).collect();
        wait_until(Duration::from_secs(10), || hub.subscribers() == 20);
        for c in &mut clients {
            let next = hub.last_id() + 1;
            ids_until(c, next);
        }
        clients.truncate(10);
        // The loop notices each close at once (its stream ends); the
        // publisher forgets them at its next event.
        wait_until(Duration::from_secs(10), || s.handle.stats().streaming_responses == 10);
        let noticed = hub.last_id();
        wait_until(Duration::from_secs(10), || hub.subscribers() == 10);
        // Forgotten by the event after the one being sent when the loop
        // noticed (that one may have gone past them already).
        assert!(hub.last_forgotten() <= noticed + 1, "{} events after", hub.last_forgotten() - noticed);
        // The others go on.
        let next = hub.last_id() + 2;
        for c in &mut clients {
            assert!(consecutive(&ids_until(c, next)));
        }
    }

    fn two_thousand_subscribers_on_four_workers(poll: bool) {
        fan_out(poll, 2000, Duration::from_secs(10));
    }
}

/// One subscriber as the fan-out test reads it: without blocking, among
/// thousands, with its unparsed tail.
struct Sub {
    stream: TcpStream,
    tail: Vec<u8>,
    head_done: bool,
    ids: Vec<u64>,
}

/// `n` subscribers for `run` on the default four workers (the example's
/// 100 ms interval), read by one thread with poll(2), while a plain client
/// requests `GET /` one after the other. Every subscriber gets every event
/// from its first in order; every plain request is answered (its latency
/// and the RSS per subscriber are printed, not asserted: the machines are
/// shared); half the subscribers then leave, and are forgotten.
fn fan_out(poll: bool, n: usize, run: Duration) {
    let (s, hub) = serve(poll, sse_example::INTERVAL, sse_example::KEEPALIVE);
    let rss_before = rss_kib();
    let mut subs: Vec<Sub> = (0..n)
        .map(|_| {
            let mut stream = connect(s.addr);
            stream
                .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            stream.set_nonblocking(true).unwrap();
            Sub {
                stream,
                tail: Vec::new(),
                head_done: false,
                ids: Vec::new(),
            }
        })
        .collect();
    wait_until(Duration::from_secs(30), || hub.subscribers() == n);
    // Every subscriber is registered: each gets this event's next at the
    // latest.
    let first_after = hub.last_id();
    let rss_with = rss_kib();

    // The plain client, on a thread of its own.
    let addr = s.addr;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let plain = std::thread::spawn({
        let stop = Arc::clone(&stop);
        move || {
            let mut times = Vec::new();
            let mut c = Client::connect(addr);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let began = Instant::now();
                let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
                assert_eq!(r.status, 200);
                times.push(began.elapsed());
                std::thread::sleep(Duration::from_millis(10));
            }
            times
        }
    });

    let began = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let mut fds: Vec<libc::pollfd> = subs
        .iter()
        .map(|s| libc::pollfd {
            fd: s.stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while began.elapsed() < run {
        // SAFETY: `fds` is a live array of `fds.len()` pollfds whose
        // descriptors the `subs` keep open.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
        assert!(r >= 0, "poll: {}", std::io::Error::last_os_error());
        for (pfd, sub) in fds.iter_mut().zip(subs.iter_mut()) {
            if pfd.revents == 0 {
                continue;
            }
            pfd.revents = 0;
            read_events(sub, &mut buf);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut times = plain.join().unwrap();
    // Every event published until now reaches every subscriber: read on
    // until each has the last one (bounded).
    let last = hub.last_id();
    let lag = subs
        .iter()
        .map(|s| last - s.ids.last().copied().unwrap_or(0))
        .max()
        .unwrap_or(0);
    let draining = Instant::now();
    while subs
        .iter()
        .any(|s| s.ids.last().copied().unwrap_or(0) < last)
    {
        assert!(
            draining.elapsed() < Duration::from_secs(30),
            "event {last} never reached every subscriber"
        );
        // SAFETY: as above.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
        assert!(r >= 0, "poll: {}", std::io::Error::last_os_error());
        for (pfd, sub) in fds.iter_mut().zip(subs.iter_mut()) {
            if std::mem::take(&mut pfd.revents) != 0 {
                read_events(sub, &mut buf);
            }
        }
    }

    let mut fewest = usize::MAX;
    for (i, sub) in subs.iter().enumerate() {
        assert!(
            consecutive(&sub.ids),
            "subscriber {i}: a gap or a repeat in {:?}",
            sub.ids
        );
        // Registered before `first_after + 1` was published: it has that
        // one at the latest, and (from the drain) every one to `last`.
        assert!(
            sub.ids[0] <= first_after + 1,
            "subscriber {i} began at {}",
            sub.ids[0]
        );
        fewest = fewest.min(sub.ids.len());
    }
    let by_first: HashMap<u64, usize> = subs.iter().fold(HashMap::new(), |mut m, s| {
        *m.entry(s.ids.first().copied().unwrap_or(0)).or_default() += 1;
        m
    });
    times.sort();
    let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    assert!(!times.is_empty());
    eprintln!(
        "fan-out ({}): {n} subscribers for {run:?}, each received every event from its first to {last} \
         (fewest {fewest}, most behind at the end {lag}); first ids {by_first:?}; plain GET / answered {} times, p50 {:?}, p99 {:?}, max {:?}; \
         RSS {} KiB before, {} KiB with the subscribers ({:.1} KiB each, server and test client together)",
        if poll { "poll" } else { "default" },
        times.len(),
        p(0.5),
        p(0.99),
        times.last().unwrap(),
        rss_before,
        rss_with,
        (rss_with.saturating_sub(rss_before)) as f64 / n as f64,
    );

    // Half leave: the loop notices each close, the publisher forgets them
    // at its next event.
    subs.truncate(n / 2);
    wait_until(Duration::from_secs(20), || {
        s.handle.stats().streaming_responses == (n / 2) as u64
    });
    let noticed = hub.last_id();
    wait_until(Duration::from_secs(20), || hub.subscribers() == n / 2);
    assert!(
        hub.last_forgotten() <= noticed + 1,
        "{} events after",
        hub.last_forgotten() - noticed
    );
}

/// Reads what a subscriber's socket has, and the whole events in it.
fn read_events(sub: &mut Sub, buf: &mut [u8]) {
    loop {
        match sub.stream.read(buf) {
            Ok(0) => panic!("a subscriber's stream ended"),
            Ok(k) => sub.tail.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("a subscriber's read: {e}"),
        }
    }
    if !sub.head_done {
        let Some(end) = sub.tail.windows(4).position(|w| w == b"\r\n\r\n") else {
            return;
        };
        assert!(sub.tail.starts_with(b"HTTP/1.1 200 "));
        sub.tail.drain(..end + 4);
        sub.head_done = true;
    }
    // Whole events only; the rest waits for more bytes.
    if let Some(last) = sub.tail.windows(2).rposition(|w| w == b"\n\n") {
        sub.ids.extend(events(&sub.tail[..last + 2]));
        sub.tail.drain(..last + 2);
    }
}

/// This process's resident set, in KiB (0 where `/proc` is not there).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
