//! Load shedding over real sockets: `max_queue_depth` (the I/O thread
//! answers 503 when too many requests wait for a worker) and
//! `max_queue_wait` (a worker answers 503 instead of running the
//! application for a request that waited too long). Each test runs on the
//! default poller and on poll(2).

mod common;

use std::time::{Duration, Instant};

use common::*;
use maitred::{Request, Response};

fn slow_app(req: &mut Request) -> Response {
    if req.path() == "/slow" {
        std::thread::sleep(Duration::from_millis(1500));
    }
    Response::text("done")
}

fn assert_shed(r: &Resp) {
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("connection"), Some("close"));
}

backend_tests! {
    fn max_queue_depth_answers_503_at_once(poll: bool) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let mut a = adj(poll);
        a.threads = 1;
        a.max_queue_depth = 1;
        a.access_log = log.to_str().unwrap().to_string();
        a.access_log_format = "%>s %r".into();
        let s = start(slow_app, a);
        let get_slow = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
        // One runs, one waits: the queue is full.
        let mut running = Client::connect(s.addr);
        running.send(get_slow);
        wait_until(Duration::from_secs(5), || s.handle.stats().requests_in_app == 1);
        let mut waiting = Client::connect(s.addr);
        waiting.send(get_slow);
        wait_until(Duration::from_secs(5), || s.handle.stats().queue_depth == 1);
        // The next ones are answered at once, without the application.
        for _ in 0..2 {
            let started = Instant::now();
            let mut c = Client::connect(s.addr);
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            let r = c.read_response().unwrap();
            assert_shed(&r);
            assert!(r.text().contains("max_queue_depth"));
            assert!(started.elapsed() < Duration::from_millis(1000), "{:?}", started.elapsed());
            c.assert_closed();
        }
        assert_eq!(running.read_response().unwrap().status, 200);
        assert_eq!(waiting.read_response().unwrap().status, 200);
        let st = s.handle.stats();
        assert_eq!(st.requests_shed, 2);
        assert_eq!(st.responses[4], 2);
        s.stop().unwrap();
        // The shed requests are in the access log too.
        let lines = std::fs::read_to_string(&log).unwrap();
        let mut got: Vec<&str> = lines.lines().collect();
        got.sort_unstable();
        assert_eq!(
            got,
            [
                "200 GET /slow HTTP/1.1",
                "200 GET /slow HTTP/1.1",
                "503 GET / HTTP/1.1",
                "503 GET / HTTP/1.1"
            ]
        );
    }

    fn max_queue_wait_answers_503_instead_of_running_the_app(poll: bool) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let mut a = adj(poll);
        a.threads = 1;
        a.max_queue_wait = 1;
        a.access_log = log.to_str().unwrap().to_string();
        a.access_log_format = "%>s %r".into();
        let s = start(slow_app, a);
        let mut first = Client::connect(s.addr);
        first.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
        wait_until(Duration::from_secs(5), || s.handle.stats().requests_in_app == 1);
        // Waits 1.5 s for the only worker: more than max_queue_wait.
        let mut second = Client::connect(s.addr);
        second.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(first.read_response().unwrap().status, 200);
        let r = second.read_response().unwrap();
        assert_shed(&r);
        assert!(r.text().contains("max_queue_wait"));
        // A request that did not wait is served.
        let mut third = Client::connect(s.addr);
        assert_eq!(third.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
        assert_eq!(s.handle.stats().requests_shed, 1);
        s.stop().unwrap();
        let lines = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            lines.lines().collect::<Vec<_>>(),
            ["200 GET /slow HTTP/1.1", "503 GET / HTTP/1.1", "200 GET / HTTP/1.1"]
        );
    }

    fn shedding_is_off_by_default(poll: bool) {
        let mut a = adj(poll);
        a.threads = 1;
        let s = start(slow_app, a);
        let clients: Vec<Client> = (0..3)
            .map(|_| {
                let mut c = Client::connect(s.addr);
                c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
                c
            })
            .collect();
        for mut c in clients {
            assert_eq!(c.read_response().unwrap().status, 200);
        }
        assert_eq!(s.handle.stats().requests_shed, 0);
        s.stop().unwrap();
    }
}
