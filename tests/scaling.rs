//! Scaling out on one machine: several servers (processes, in the README;
//! here servers in one process, which the kernel treats alike) listening on
//! the same port with `reuse_port`, the kernel spreading connections across
//! them.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;

use common::*;
use maitred::{Request, Response};

/// A server that answers every request with its `id`; stopped when
/// dropped.
struct Running {
    addr: SocketAddr,
    handle: maitred::ServerHandle,
    thread: Option<std::thread::JoinHandle<Result<(), maitred::Error>>>,
}

impl Running {
    fn stop(mut self) -> Result<(), maitred::Error> {
        self.handle.shutdown();
        match self.thread.take() {
            Some(t) => t.join().expect("server thread"),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.handle.shutdown();
            let _ = t.join();
        }
    }
}

fn server(id: &'static str, listen: &str, reuse_port: bool) -> Result<Running, maitred::Error> {
    let a = adj(false).listen(&[listen]).reuse_port(reuse_port);
    let server = maitred::create_server(move |_: &mut Request| Response::text(id), a)?;
    let addr = server.local_addr().expect("a TCP listener");
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.run());
    Ok(Running {
        addr,
        handle,
        thread: Some(thread),
    })
}

#[test]
fn servers_share_a_port_with_reuse_port() {
    let first = server("one", "127.0.0.1:0", true).expect("first server");
    let shared = first.addr.to_string();
    let second = server("two", &shared, true).expect("a second server on the same port");
    assert_eq!(first.addr, second.addr);
    // Without reuse_port the port is taken.
    let e = server("three", &shared, false)
        .err()
        .expect("the port is in use");
    assert!(e.to_string().contains(&shared), "{e}");

    // Each new connection goes to one of them; Linux spreads them by a
    // hash of the addresses and ports, so 64 connections reach both (all
    // on one would have probability 2^-63). Other systems may not balance.
    let mut seen = HashSet::new();
    for _ in 0..64 {
        let r = request(
            first.addr,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.status, 200);
        seen.insert(r.text());
    }
    if cfg!(target_os = "linux") {
        assert_eq!(seen.len(), 2, "{seen:?}");
    } else {
        assert!(!seen.is_empty());
    }

    // One stops (a rolling restart): the other keeps serving the port.
    first.stop().expect("first stops cleanly");
    for _ in 0..8 {
        let r = request(
            second.addr,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.text(), "two");
    }
}
