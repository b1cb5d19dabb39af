//! Heap allocations per keep-alive request on the loop + worker path,
//! counted by a counting global allocator: the connection core adds none
//! per request (its buffers are kept per connection), so what is counted
//! is the application's own response and the two buffers the server makes
//! per request (see the test). Alone in its binary: the allocator counts the
//! whole process, and the client here allocates nothing per request (a
//! fixed request, read into a stack buffer).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use maitred::{Request, Response};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; the
// counter is an atomic, touched without allocating.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as the caller promised for `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as the caller promised for `ptr`, `layout`, `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
const BODY: &str = "Hello, World!";

/// Sends one request and reads its whole response, allocating nothing.
fn roundtrip(c: &mut TcpStream, buf: &mut [u8; 512]) {
    c.write_all(REQUEST).unwrap();
    let mut got = 0;
    loop {
        let n = c.read(&mut buf[got..]).unwrap();
        assert!(n > 0, "closed");
        got += n;
        if buf[..got].ends_with(BODY.as_bytes()) {
            return;
        }
        assert!(got < buf.len(), "a response longer than expected");
    }
}

/// Allocations per request over `n` keep-alive requests, after a warm-up
/// that lets every buffer and the pool's threads settle.
fn per_request(poll: bool, io_threads: usize, n: u64) -> f64 {
    let mut a = adj(poll);
    a.io_threads = io_threads;
    let s = start(|_req: &mut Request| Response::text(BODY), a);
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    c.set_nodelay(true).unwrap();
    let mut buf = [0u8; 512];
    for _ in 0..200 {
        roundtrip(&mut c, &mut buf);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..n {
        roundtrip(&mut c, &mut buf);
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    drop(c);
    drop(s);
    (after - before) as f64 / n as f64
}

/// What one request costs, on both pollers and with two loops: 4.00 (4.01
/// with poll) when this was written. Two are the application's
/// (`Response::text`: the body's `String` and the header list); two are
/// the server's: the parsed head's buffer, which travels to the worker
/// with the request, and the response head the writer builds (with an
/// application that allocates nothing, `Response::new(200).with_body`
/// of a `&'static str`, the count is 2.00). The bound is half an
/// allocation above, so that one more per request on the hot path fails
/// here.
#[test]
fn a_keep_alive_request_costs_four_allocations_two_of_them_the_applications() {
    const MAX: f64 = 4.5;
    for (poll, loops) in [(false, 1), (true, 1), (false, 2)] {
        let got = per_request(poll, loops, 2000);
        println!(
            "allocations per keep-alive request (poll: {poll}, io_threads: {loops}): {got:.2}"
        );
        assert!(
            got <= MAX,
            "{got:.2} allocations per request (poll: {poll}, io_threads: {loops}); at most {MAX}"
        );
    }
}
