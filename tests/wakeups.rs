//! The hand-offs between the worker threads and the I/O thread, raced over
//! real sockets: every response a worker writes must reach its client,
//! however the workers' wake-ups interleave with the loop's. Each test runs
//! on the default poller and on poll(2) (where the trigger is drained, the
//! case of issue 13).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use maitred::{Request, Response};

/// Keep-alive clients that each send two pipelined requests in one write
/// and read both answers, `rounds` times, all at once. A lost wake-up
/// leaves a response in its channel's buffer with the loop asleep: the
/// client's read then times out.
fn pipelined_keep_alive_load(addr: SocketAddr, clients: usize, rounds: usize) {
    pipelined_load(addr, clients, rounds, false)
}

/// As [`pipelined_keep_alive_load`], but with the second request of each
/// pair sent a few microseconds after the first (a different delay each
/// round), so that it lands at every point of the worker's run of the
/// first: while its response is computed, buffered, flushed.
fn pipelined_load(addr: SocketAddr, clients: usize, rounds: usize, staggered: bool) {
    const ONE: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const PAIR: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const BODY: &str = "Hello, World!";
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|id| {
                s.spawn(move || -> Result<(), String> {
                    let mut c = TcpStream::connect(addr).map_err(|e| e.to_string())?;
                    c.set_read_timeout(Some(Duration::from_secs(3)))
                        .map_err(|e| e.to_string())?;
                    c.set_nodelay(true).map_err(|e| e.to_string())?;
                    let mut buf = Vec::with_capacity(1024);
                    let mut tmp = [0u8; 4096];
                    for round in 0..rounds {
                        if Instant::now() > deadline {
                            return Err(format!("client {id}: out of time at round {round}"));
                        }
                        if staggered {
                            c.write_all(ONE).map_err(|e| e.to_string())?;
                            let until = Instant::now()
                                + Duration::from_micros(((round * 7 + id * 13) % 97) as u64);
                            while Instant::now() < until {
                                std::hint::spin_loop();
                            }
                            c.write_all(ONE).map_err(|e| e.to_string())?;
                        } else {
                            c.write_all(PAIR).map_err(|e| e.to_string())?;
                        }
                        buf.clear();
                        // Both responses: two bodies, each at the end of a
                        // complete response.
                        while buf.windows(BODY.len()).filter(|w| *w == BODY.as_bytes()).count() < 2
                        {
                            let n = c.read(&mut tmp).map_err(|e| {
                                format!(
                                    "client {id}, round {round}: {e} with {} bytes of the two responses",
                                    buf.len()
                                )
                            })?;
                            if n == 0 {
                                return Err(format!("client {id}, round {round}: closed"));
                            }
                            buf.extend_from_slice(&tmp[..n]);
                        }
                        let text = String::from_utf8_lossy(&buf);
                        if text.matches("HTTP/1.1 200 OK\r\n").count() != 2 || !text.ends_with(BODY) {
                            return Err(format!("client {id}, round {round}: {text:?}"));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        let errors: Vec<String> = workers
            .into_iter()
            .filter_map(|w| match w.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some("a client thread panicked".into()),
            })
            .collect();
        assert!(
            errors.is_empty(),
            "{} clients failed: {errors:#?}",
            errors.len()
        );
    });
}

backend_tests! {
    fn every_pipelined_response_arrives_under_load(poll: bool) {
        let s = start(|_req: &mut Request| Response::text("Hello, World!"), adj(poll));
        pipelined_keep_alive_load(s.addr, 32, 1500);
        // The loop is still awake for a new connection's two requests.
        pipelined_keep_alive_load(s.addr, 1, 2);
        s.stop().unwrap();
    }
}

backend_tests! {
    /// A worker that finishes a channel's last request checks whether the
    /// loop declined to read meanwhile (`read_blocked`) and, if so, wakes
    /// it. With responses buffered until the run ends (`send_bytes` above
    /// their size), the loop can decline because output is still pending
    /// after that check: the check must come after the flush.
    fn a_request_arriving_while_output_is_flushed_is_read(poll: bool) {
        let mut a = adj(poll);
        a.send_bytes = 64 * 1024;
        let s = start(|_req: &mut Request| Response::text("Hello, World!"), a);
        pipelined_load(s.addr, 16, 800, true);
        s.stop().unwrap();
    }
}

backend_tests! {
    /// A worker held at the output high watermark waits for the loop to
    /// drain the buffers. The loop used to flush a running request's output
    /// only from `send_bytes` up, so with `send_bytes` above the watermark
    /// the worker waited for a flush that never came.
    fn a_worker_at_the_high_watermark_is_drained_whatever_send_bytes(poll: bool) {
        const CHUNK: usize = 64 * 1024;
        const CHUNKS: usize = 64; // 4 MiB
        let mut a = adj(poll);
        a.outbuf_high_watermark = 256 * 1024;
        a.send_bytes = 1024 * 1024;
        let s = start(
            |_req: &mut Request| {
                Response::new(200).with_body(maitred::Body::Chunks(Box::new(
                    (0..CHUNKS).map(|i| Ok(vec![(i % 251) as u8; CHUNK])),
                )))
            },
            a,
        );
        let mut c = Client::connect(s.addr);
        c.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.body.len(), CHUNK * CHUNKS);
        s.stop().unwrap();
    }
}
