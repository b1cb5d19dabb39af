//! How many mutex acquisitions a request costs on the loop + worker path,
//! counted by the debug build's counter (`crate::lock` takes every mutex of
//! the server): at most 3 per keep-alive request (the pool's lock when the
//! loop hands the round's requests over, and when a worker pops one; the
//! response is written and the connection released without a lock), as
//! `link.rs` documents. Alone in its binary: other tests' servers would
//! count too.

mod common;

use std::time::Duration;

use common::*;
use maitred::__private::lock_acquisitions;
use maitred::{Request, Response};

fn hello(_req: &mut Request) -> Response {
    Response::text("Hello, World!")
}

/// The tests of this file take turns: the counter is the process's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Locks taken per request while `f` sends `requests` requests.
fn locks_per_request(requests: u64, f: impl FnOnce()) -> Option<f64> {
    let before = lock_acquisitions()?;
    f();
    let after = lock_acquisitions()?;
    Some((after - before) as f64 / requests as f64)
}

backend_tests! {
    fn a_keep_alive_request_takes_at_most_three_locks(poll: bool) {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let s = start(hello, adj(poll));
        let mut c = Client::connect(s.addr);
        // Warm up: the connection, the pool's threads, the read buffer.
        for _ in 0..20 {
            assert_eq!(c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
        }
        const N: u64 = 500;
        let Some(per) = locks_per_request(N, || {
            for _ in 0..N {
                assert_eq!(c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
            }
        }) else {
            eprintln!("release build: no lock counter; skipped");
            return;
        };
        eprintln!("{} backend: {per:.2} lock acquisitions per keep-alive request", if poll { "poll" } else { "default" });
        assert!(per <= 3.0, "{per:.2} locks per keep-alive request");
        drop(c);
        wait_until(Duration::from_secs(5), || s.handle.stats().connections_open == 0);
    }

    fn a_pipelined_request_takes_at_most_three_locks(poll: bool) {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let s = start(hello, adj(poll));
        let mut c = Client::connect(s.addr);
        let batch = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(16);
        c.send(&batch);
        for _ in 0..16 {
            c.read_response().unwrap();
        }
        const ROUNDS: u64 = 50;
        let Some(per) = locks_per_request(ROUNDS * 16, || {
            for _ in 0..ROUNDS {
                c.send(&batch);
                for _ in 0..16 {
                    assert_eq!(c.read_response().unwrap().status, 200);
                }
            }
        }) else {
            return;
        };
        eprintln!("{} backend: {per:.2} lock acquisitions per pipelined request", if poll { "poll" } else { "default" });
        // The loop queues each behind the running one (the pipeline lock),
        // the worker buffers each response to send the batch together (the
        // output lock); the pool's locks and the worker's take of the
        // whole pipeline are shared by the batch.
        assert!(per <= 3.0, "{per:.2} locks per pipelined request");
    }
}
