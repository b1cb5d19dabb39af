//! The I/O thread sleeps while it has nothing to do: a connection with a
//! request running and output it may not send yet must not make the loop
//! spin. Measured as the loop thread's CPU time (from `/proc`, in clock
//! ticks) against the wall time, with a generous margin: a spinning loop
//! uses all of it.

#![cfg(target_os = "linux")]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use maitred::{Body, Request, Response};

backend_tests! {
    fn output_held_back_by_send_bytes_does_not_spin_the_loop(poll: bool) {
        // Fewer bytes than send_bytes are buffered while the application
        // sleeps: the loop may not send them, and must not keep looking.
        let mut a = adj(poll);
        a.send_bytes = 65_536;
        // The loop reads on while a request runs, so a pipelined request
        // makes it look at the connection (on poll(2) too).
        a.channel_request_lookahead = 1;
        let name = if poll { "io-sendb-poll" } else { "io-sendb-epoll" };
        let asleep = Arc::new(AtomicBool::new(false));
        let flag = asleep.clone();
        let s = start_named(
            name,
            move |_req: &mut Request| {
                let flag = flag.clone();
                Response::new(200).with_body(Body::from_writer(move |w| {
                    w.write_all(b"a few bytes, ")?;
                    w.flush()?;
                    flag.store(true, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(1500));
                    w.write_all(b"and the rest")
                }))
            },
            a,
        );
        let mut c = Client::connect(s.addr);
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        // The application is asleep with its first bytes buffered; a
        // pipelined request then makes the loop look at the connection.
        wait_until(Duration::from_secs(10), || asleep.load(Ordering::SeqCst));
        c.send(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
        std::thread::sleep(Duration::from_millis(100));
        let before = thread_cpu_ticks(name).expect("the loop's thread");
        let began = Instant::now();
        std::thread::sleep(Duration::from_millis(1000));
        let used = thread_cpu_ticks(name).expect("the loop's thread") - before;
        let wall = began.elapsed();
        for _ in 0..2 {
            let r = c.read_response().unwrap();
            assert_eq!(r.body, b"a few bytes, and the rest");
        }
        let used = Duration::from_secs_f64(used as f64 / clock_ticks_per_second() as f64);
        assert!(
            used < wall.mul_f64(0.3),
            "the I/O thread used {used:?} of CPU in {wall:?} while waiting"
        );
        s.stop().unwrap();
    }
}
