//! Closing client connections cleanly once a graceful stop or a handover's
//! drain began: a FIN, never a reset.
//!
//! A kept-alive client may send its next request at any moment. Had the
//! server just closed the socket, the kernel answers those bytes with a
//! reset (and a close with unread bytes in the socket's receive queue
//! sends one at once), and the client sees `ECONNRESET`: a failure it
//! cannot tell from a crash. So, while stopping, a connection the server
//! is done with is shut down for writing (the FIN goes after every byte
//! already sent), and what the client still sends is read and dropped
//! until it closes its side, for up to [`LINGER`] (Apache's
//! `lingering_close`), or until nothing came for [`QUIET`]: a request that
//! crossed the FIN arrives within a round trip, and a client that stays
//! idle (most do until they next use the connection) should not hold the
//! stop for the whole time. The client reads end of file with no byte of a
//! response, which RFC 9112 §9.3.1 lets it answer by retrying an
//! idempotent request on a new connection; after a handover, that
//! connection is accepted by the new process.
//!
//! [`CleanClose`] wraps each connection's dispatcher (the hook in
//! `server.rs`'s listener): when the map closes the connection while the
//! [`Lingerer`] is on, it takes a duplicate of the descriptor first, so the
//! socket outlives the dispatcher's close, and hands it to the lingerer's
//! thread.
//!
//! Thread: [`CleanClose`] on the I/O thread; the lingerer's own thread
//! reads and closes; `finish` on the thread that ends `Server::run`.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::dispatcher::{Cx, Dispatcher, Progress, Role, Token};
use crate::sys;

/// How long a cleanly closed connection is read from, at most, waiting for
/// the client to close its side.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

/// A cleanly closed connection on which nothing arrived for this long
/// (since the FIN, or since its last bytes) is closed.
pub(crate) const QUIET: Duration = Duration::from_millis(500);

/// How often the lingerer's thread looks at new connections and deadlines.
const TICK: Duration = Duration::from_millis(20);

/// The connections being closed cleanly, and the thread that does it.
#[derive(Debug, Default)]
pub(crate) struct Lingerer {
    on: AtomicBool,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    socks: Vec<Lingering>,
    thread: Option<JoinHandle<()>>,
}

/// One connection being closed cleanly.
#[derive(Debug)]
struct Lingering {
    sock: OwnedFd,
    /// Closed then at the latest ([`LINGER`] after the FIN).
    until: Instant,
    /// Closed then unless more bytes come ([`QUIET`]).
    quiet_until: Instant,
}

impl Lingerer {
    /// From now on, connections the map closes are closed cleanly.
    pub(crate) fn turn_on(&self) {
        self.on.store(true, Ordering::SeqCst);
    }

    /// Whether connections are closed cleanly.
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Takes over the socket `fd` of a connection being closed (the caller
    /// closes `fd` itself right after; a duplicate keeps the socket open):
    /// FIN now, then reads until the client closes or [`LINGER`] passes.
    pub(crate) fn adopt(&self, fd: RawFd) {
        let Ok(dup) = sys::handover::dup_cloexec(fd) else {
            // Out of descriptors: the plain close it would have had.
            return;
        };
        if sys::shutdown_write(dup.as_raw_fd()).is_err() {
            // Not connected any more (reset by the peer): nothing to wait for.
            return;
        }
        let mut inner = crate::lock(&self.inner);
        let now = Instant::now();
        inner.socks.push(Lingering {
            sock: dup,
            until: now + LINGER,
            quiet_until: now + QUIET,
        });
        if inner.thread.is_none() {
            let shared = Arc::clone(&self.inner);
            match std::thread::Builder::new()
                .name("maitred-linger".into())
                .spawn(move || run(&shared))
            {
                Ok(t) => inner.thread = Some(t),
                Err(e) => {
                    crate::log_warning!("could not start the thread that closes connections cleanly: {e}; closing them at once");
                    inner.socks.clear();
                }
            }
        }
    }

    /// Waits until every connection handed over is closed (at most
    /// [`LINGER`] after the last one came), so that none is left to the
    /// process's exit, which would reset it.
    pub(crate) fn finish(&self) {
        let thread = crate::lock(&self.inner).thread.take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// The lingerer's thread: polls its sockets, drops what they receive, and
/// closes each at end of file, on an error, after [`QUIET`] without bytes,
/// or at its deadline; ends when none is left.
///
/// Interleavings: the I/O thread only appends to `socks` (under the lock);
/// only this thread removes (and so closes) entries, so the raw
/// descriptors it polls outside the lock stay open while it does. An entry
/// appended while it polls is seen on the next round (at most [`TICK`]
/// later). It decides to end under the same lock that `adopt` checks
/// `thread` under, and `adopt` starts a new thread when it finds none, so
/// no socket is left without one; `finish` joins whichever thread is
/// current, and runs after the map closed every connection.
fn run(inner: &Mutex<Inner>) {
    let mut fds: Vec<RawFd> = Vec::new();
    let mut scratch = Vec::new();
    let mut ready = Vec::new();
    let mut done: Vec<RawFd> = Vec::new();
    let mut heard: Vec<RawFd> = Vec::new();
    let mut sink = [0u8; 4096];
    loop {
        {
            let mut g = crate::lock(inner);
            let now = Instant::now();
            for l in &mut g.socks {
                if heard.contains(&l.sock.as_raw_fd()) {
                    l.quiet_until = now + QUIET;
                }
            }
            g.socks.retain(|l| {
                !done.contains(&l.sock.as_raw_fd()) && l.until > now && l.quiet_until > now
            });
            done.clear();
            heard.clear();
            if g.socks.is_empty() {
                // Still under the lock: `adopt` will start a new thread.
                g.thread = None;
                return;
            }
            fds.clear();
            fds.extend(g.socks.iter().map(|l| l.sock.as_raw_fd()));
        }
        if sys::handover::poll_readable(&fds, TICK, &mut scratch, &mut ready).is_err() {
            std::thread::sleep(TICK);
            continue;
        }
        for (&fd, _) in fds.iter().zip(&ready).filter(|(_, r)| **r) {
            // Read what is there; end of file or an error ends the wait.
            loop {
                match sys::recv(fd, &mut sink) {
                    Ok(0) => {
                        done.push(fd);
                        break;
                    }
                    Ok(_) => {
                        if !heard.contains(&fd) {
                            heard.push(fd);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        done.push(fd);
                        break;
                    }
                }
            }
        }
    }
}

/// A connection's dispatcher whose socket is closed cleanly (see the
/// module) once the server is stopping; otherwise exactly the dispatcher
/// it wraps.
#[derive(Debug)]
pub(crate) struct CleanClose<D> {
    inner: D,
    lingerer: Arc<Lingerer>,
}

impl<D: Dispatcher> CleanClose<D> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: D, lingerer: &Arc<Lingerer>) -> CleanClose<D> {
        CleanClose {
            inner,
            lingerer: Arc::clone(lingerer),
        }
    }
}

impl<D: Dispatcher> Dispatcher for CleanClose<D> {
    fn fd(&self) -> RawFd {
        self.inner.fd()
    }
    fn role(&self) -> Role {
        self.inner.role()
    }
    fn set_token(&mut self, token: Token) {
        self.inner.set_token(token)
    }
    fn readable(&mut self, cx: &mut Cx<'_>) -> bool {
        self.inner.readable(cx)
    }
    fn writable(&mut self, cx: &mut Cx<'_>) -> bool {
        self.inner.writable(cx)
    }
    fn handle_read(&mut self, cx: &mut Cx<'_>) -> Progress {
        self.inner.handle_read(cx)
    }
    fn handle_write(&mut self, cx: &mut Cx<'_>) -> Progress {
        self.inner.handle_write(cx)
    }
    fn handle_close(&mut self, cx: &mut Cx<'_>) {
        // The channel first marks its socket closed to its worker (no send
        // follows), then the lingerer takes its duplicate; the map closes
        // the original when it drops this dispatcher, right after.
        self.inner.handle_close(cx);
        if self.lingerer.is_on() {
            self.lingerer.adopt(self.inner.fd());
        }
    }
    fn closing(&self) -> bool {
        self.inner.closing()
    }
    fn maintenance(&mut self, now: Instant) -> bool {
        self.inner.maintenance(now)
    }
    fn eviction_rank(&self) -> Option<(u8, u64)> {
        self.inner.eviction_rank()
    }
    fn evicted(&mut self) {
        self.inner.evicted()
    }
    fn refuse(&mut self) {
        self.inner.refuse()
    }
    fn receive_deadlines(&mut self, now: Instant) -> bool {
        self.inner.receive_deadlines(now)
    }
    fn deadline(&self) -> Option<Instant> {
        self.inner.deadline()
    }
    fn begin_shutdown(&mut self) -> bool {
        self.inner.begin_shutdown()
    }
    fn busy(&self) -> bool {
        self.inner.busy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::IntoRawFd;

    #[test]
    fn a_lingered_connection_ends_with_a_fin_even_with_unread_bytes() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (server, _) = l.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        // A request the server never read: closing now would reset.
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let lingerer = Lingerer::default();
        lingerer.turn_on();
        let fd = server.into_raw_fd();
        lingerer.adopt(fd);
        // SAFETY: `fd` came from into_raw_fd and is closed once, here, as
        // the map closes a channel's descriptor after handle_close.
        drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        // More bytes after the server's close: still no reset.
        let _ = client.write_all(b"GET /again HTTP/1.1\r\n\r\n");
        let mut buf = [0u8; 16];
        assert_eq!(client.read(&mut buf).unwrap(), 0, "a FIN, not a reset");
        drop(client);
        let t = Instant::now();
        lingerer.finish();
        assert!(t.elapsed() < QUIET, "the client's close ends the wait");
        assert!(crate::lock(&lingerer.inner).socks.is_empty());
    }

    #[test]
    fn a_quiet_client_holds_the_close_for_half_a_second_only() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        let lingerer = Lingerer::default();
        let t = Instant::now();
        lingerer.adopt(server.as_raw_fd());
        drop(server);
        lingerer.finish();
        let took = t.elapsed();
        assert!(took >= QUIET && took < LINGER, "{took:?}");
        drop(client);
    }
}
