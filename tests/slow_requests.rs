//! `slow_request_warning`: one warning per request that stays in the
//! application longer than the setting, saying which request and which
//! thread, counted in the statistics. One test in this binary: the log
//! sink it installs is process-wide.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use maitred::{Request, Response};

#[test]
fn a_slow_request_is_reported_once() {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let l = lines.clone();
    maitred::logging::set_sink(move |_level, _target, message| {
        l.lock().unwrap().push(message.to_string());
    });
    let mut a = adj(false);
    a.slow_request_warning = 1;
    let s = start(
        |req: &mut Request| {
            if req.path() == "/slow" {
                std::thread::sleep(Duration::from_millis(3500));
            }
            Response::text("done")
        },
        a,
    );
    let mut fast = Client::connect(s.addr);
    assert_eq!(
        fast.roundtrip(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        200
    );
    let mut slow = Client::connect(s.addr);
    assert_eq!(
        slow.roundtrip(b"GET /slow?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .status,
        200
    );
    let warnings: Vec<String> = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("Slow request"))
        .cloned()
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert!(
        w.contains("GET /slow?x=1 from 127.0.0.1 on thread maitred-"),
        "{w}"
    );
    assert!(w.contains("slow_request_warning=1"), "{w}");
    let st = s.handle.stats();
    assert_eq!(st.slow_requests, 1);
    maitred::logging::clear_sink();
    s.stop().unwrap();
}
