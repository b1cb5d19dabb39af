//! Connections that switched protocols (`101 Switching Protocols`): the
//! stream the application's handler gets ([`Upgraded`]), the thread it runs
//! on, and the server's registry of them.
//!
//! How a switch goes:
//!
//! 1. The application answers a request that proposed an upgrade with
//!    [`Response::upgrade`](crate::Response::upgrade). On the worker, the
//!    response writer checks the request named that protocol, reserves a
//!    place under `upgraded_connection_limit` and starts the handler's
//!    thread ([`spawn`]), which waits for the connection; then it writes
//!    the 101. A reservation or a thread that cannot be had turns the
//!    answer into a 503 before anything is sent.
//! 2. The worker leaves the [`Handoff`] in the connection's link and
//!    releases it, with `SWITCH`: it is free at once, whatever the new
//!    protocol does.
//! 3. The I/O thread flushes what is left of the 101, takes the socket out
//!    of its poller (really: `EPOLL_CTL_DEL`, `EV_DELETE`, poll's list),
//!    and hands the handler thread a blocking descriptor of it plus the
//!    bytes that arrived past the request ([`Upgraded`] yields those
//!    first).
//!
//! The registry knows every open upgraded socket, so that a graceful stop
//! can end them. When the stop begins, the protocols that can say so are
//! told (a stream's stop hook: a WebSocket sends its close frame with 1001,
//! "going away"); the hooks run on a thread of their own, never blocking
//! (see [`Upgrades::begin_stop`]). The stop then waits up to
//! `shutdown_timeout` for the handlers to finish, and shuts every
//! remaining socket down (`shutdown(2)`, both directions): the handler's
//! reads then see the end of the stream and its writes fail. An
//! [`Upgraded`] leaves the registry before its descriptor is closed,
//! under the registry's lock, so the stop never shuts down a descriptor
//! that was closed (and perhaps reused).
//!
//! A hook set while the stop begins runs once either way: setting it and
//! collecting the hooks both happen under the registry's lock, with the
//! `stopping` flag beside them; a hook set after the flag was raised is
//! not stored but run at once by the thread that sets it.
//!
//! Thread: the worker (reserve, spawn), the I/O thread (hand over), the
//! handler's own thread (the stream), and the thread that stops the server.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The application's code for a switched connection.
pub(crate) type Handler = Box<dyn FnOnce(Upgraded) + Send>;

/// The registry and the limit, shared by the server and every upgraded
/// stream.
#[derive(Debug)]
struct Inner {
    limit: usize,
    /// Places taken: handler threads started and not yet finished.
    reserved: AtomicUsize,
    /// Connections that switched since the start.
    total: AtomicU64,
    next_id: AtomicU64,
    /// Handler threads started since the start (for their names).
    spawned: AtomicU64,
    /// The open upgraded streams, by id, and whether a stop began.
    open: Mutex<Registry>,
    /// The `websocket_max_message_size` setting, for the streams.
    websocket_max_message_size: u64,
}

/// What a stream's protocol does when the server's graceful stop begins:
/// something quick that must not block (it runs on the thread that tells
/// every stream in turn).
pub(crate) type StopHook = Arc<dyn Fn() + Send + Sync>;

/// The open upgraded streams.
#[derive(Default)]
struct Registry {
    streams: HashMap<u64, Open>,
    /// The graceful stop began: hooks set from now on run at once.
    stopping: bool,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("streams", &self.streams.len())
            .field("stopping", &self.stopping)
            .finish()
    }
}

/// One open upgraded stream.
struct Open {
    /// Its descriptor (the stream's own, closed only after it leaves).
    fd: RawFd,
    on_stop: Vec<StopHook>,
}

/// The server's upgraded connections (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Upgrades {
    inner: Arc<Inner>,
}

/// A place under `upgraded_connection_limit`, given back when dropped (the
/// handler's thread holds it for its whole life).
#[derive(Debug)]
pub(crate) struct Reservation {
    inner: Arc<Inner>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.inner.reserved.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Upgrades {
    pub(crate) fn new(limit: usize, websocket_max_message_size: u64) -> Upgrades {
        Upgrades {
            inner: Arc::new(Inner {
                limit,
                reserved: AtomicUsize::new(0),
                total: AtomicU64::new(0),
                next_id: AtomicU64::new(0),
                spawned: AtomicU64::new(0),
                open: Mutex::new(Registry::default()),
                websocket_max_message_size,
            }),
        }
    }

    /// A place for one more upgraded connection, if there is room.
    pub(crate) fn reserve(&self) -> Option<Reservation> {
        let inner = &self.inner;
        let mut n = inner.reserved.load(Ordering::Acquire);
        loop {
            if n >= inner.limit {
                return None;
            }
            match inner.reserved.compare_exchange_weak(
                n,
                n + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(Reservation {
                        inner: Arc::clone(inner),
                    })
                }
                Err(now) => n = now,
            }
        }
    }

    /// Upgraded connections open now.
    pub(crate) fn open(&self) -> u64 {
        crate::lock(&self.inner.open).streams.len() as u64
    }

    /// Handler threads alive (running a handler, or waiting for their
    /// connection): what a graceful stop waits for.
    pub(crate) fn live(&self) -> usize {
        self.inner.reserved.load(Ordering::Acquire)
    }

    /// Connections that switched protocols since the start.
    pub(crate) fn total(&self) -> u64 {
        self.inner.total.load(Ordering::Relaxed)
    }

    /// Ends every upgraded connection still open (the end of a graceful
    /// stop): both directions are shut down, the descriptors stay with
    /// their streams. Returns how many.
    pub(crate) fn shut_down_all(&self) -> usize {
        let open = crate::lock(&self.inner.open);
        for o in open.streams.values() {
            // The descriptor is open: a stream leaves the map (under this
            // lock) before it closes it.
            let _ = crate::sys::shutdown_both(o.fd);
        }
        open.streams.len()
    }

    /// The graceful stop begins: every open stream's stop hook runs (on a
    /// thread of its own, `maitred-upgraded-stop`, so that the loop that
    /// stops the server never waits for one), and hooks set from now on
    /// run when they are set. Called once, by the first loop.
    pub(crate) fn begin_stop(&self) {
        let hooks: Vec<StopHook> = {
            let mut open = crate::lock(&self.inner.open);
            open.stopping = true;
            open.streams
                .values()
                .flat_map(|o| o.on_stop.iter().cloned())
                .collect()
        };
        if hooks.is_empty() {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("maitred-upgraded-stop".into())
            .spawn(move || {
                for hook in hooks {
                    hook();
                }
            });
        if let Err(e) = spawned {
            crate::log_warning!(
                "no thread to tell upgraded connections of the stop ({e}); they end after shutdown_timeout"
            );
        }
    }
}

/// What the worker leaves in the link for the I/O thread: the way to the
/// handler's thread, which waits for its stream.
#[derive(Debug)]
pub(crate) struct Handoff {
    tx: mpsc::SyncSender<Upgraded>,
    upgrades: Upgrades,
}

impl Handoff {
    /// Hands the switched socket (a blocking descriptor of it, the poller
    /// no longer watching it) and the bytes read past the request to the
    /// handler's thread. If the thread is gone, the socket is dropped
    /// (closed).
    pub(crate) fn deliver(self, fd: OwnedFd, leftover: Vec<u8>, tcp: bool) {
        let id = self.upgrades.inner.next_id.fetch_add(1, Ordering::Relaxed);
        crate::lock(&self.upgrades.inner.open).streams.insert(
            id,
            Open {
                fd: fd.as_raw_fd(),
                on_stop: Vec::new(),
            },
        );
        self.upgrades.inner.total.fetch_add(1, Ordering::Relaxed);
        let stream = if tcp {
            Stream::Tcp(TcpStream::from(fd))
        } else {
            Stream::Unix(UnixStream::from(fd))
        };
        let up = Upgraded {
            registration: Some(Registration {
                inner: Arc::clone(&self.upgrades.inner),
                id,
            }),
            stream,
            leftover,
            pos: 0,
            websocket_max_message_size: self.upgrades.inner.websocket_max_message_size,
        };
        // A thread that is gone (it panicked before waiting) drops the
        // stream with the error: the socket closes.
        let _ = self.tx.send(up);
    }
}

/// Starts the handler's thread, waiting for its connection (named
/// `maitred-upgraded-N`). Its place under the limit is held until the
/// handler returns (or the switch never happens).
pub(crate) fn spawn(
    upgrades: &Upgrades,
    reservation: Reservation,
    handler: Handler,
) -> io::Result<Handoff> {
    let (tx, rx) = mpsc::sync_channel::<Upgraded>(1);
    let n = upgrades.inner.spawned.fetch_add(1, Ordering::Relaxed);
    std::thread::Builder::new()
        .name(format!("maitred-upgraded-{n}"))
        .spawn(move || {
            let _place = reservation;
            // No stream: the connection went away before the switch.
            let Ok(stream) = rx.recv() else { return };
            if let Err(panic) = crate::catch_panic(move || handler(stream)) {
                crate::log_error!("Exception in an upgraded connection's handler: {panic}");
            }
        })?;
    Ok(Handoff {
        tx,
        upgrades: upgrades.clone(),
    })
}

/// Takes a stream's descriptor out of the registry (before it closes).
#[derive(Debug)]
struct Registration {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        crate::lock(&self.inner.open).streams.remove(&self.id);
    }
}

#[derive(Debug)]
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A connection after `101 Switching Protocols`: a blocking byte stream
/// that belongs to the new protocol.
///
/// [`Read`] first yields the bytes the client sent in the same packets as
/// its request (they were already read from the socket), then reads the
/// socket. [`Write`] writes the socket (unbuffered).
///
/// The handler runs on a thread of its own, never on a worker: a server
/// with 4 workers can hold thousands of upgraded connections (up to
/// `upgraded_connection_limit`). When the server stops gracefully, it waits
/// up to `shutdown_timeout` for handlers to return, then shuts every
/// upgraded socket down: a read then returns 0 (end of stream) and a write
/// fails, and the handler should return.
///
/// ```no_run
/// use std::io::{BufRead, BufReader, Write};
/// use maitred::{Request, Response};
///
/// fn app(req: &mut Request) -> Response {
///     if req.upgrade_requested("echo") {
///         return Response::upgrade("echo", |stream| {
///             let mut out = match stream.try_clone() {
///                 Ok(s) => s,
///                 Err(_) => return,
///             };
///             for line in BufReader::new(stream).lines() {
///                 let Ok(line) = line else { break };
///                 if writeln!(out, "{line}").is_err() {
///                     break;
///                 }
///             }
///         });
///     }
///     Response::text("hello")
/// }
/// ```
pub struct Upgraded {
    // Dropped first (fields drop in order): the registry forgets the
    // descriptor before the stream closes it.
    registration: Option<Registration>,
    stream: Stream,
    leftover: Vec<u8>,
    pos: usize,
    /// The server's `websocket_max_message_size` (what a WebSocket over
    /// this stream takes by default).
    websocket_max_message_size: u64,
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("stream", &self.stream)
            .field("leftover", &self.leftover.len().saturating_sub(self.pos))
            .finish()
    }
}

impl Upgraded {
    /// The bytes the client sent past its request that [`read`](Read::read)
    /// has not returned yet.
    pub fn leftover(&self) -> &[u8] {
        self.leftover.get(self.pos..).unwrap_or(&[])
    }

    /// A second handle on the same connection (a duplicated descriptor), to
    /// write from one thread while another reads. It starts with no
    /// leftover bytes and is not in the server's registry: the server's
    /// stop ends the connection through the original, while that lives.
    pub fn try_clone(&self) -> io::Result<Upgraded> {
        let stream = match &self.stream {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        };
        Ok(Upgraded {
            registration: None,
            stream,
            leftover: Vec::new(),
            pos: 0,
            websocket_max_message_size: self.websocket_max_message_size,
        })
    }

    /// Sets what to do when the server's graceful stop begins: say
    /// goodbye in the protocol, or shut the socket's read side down so
    /// that a handler blocked in `read` sees the end and returns. Without
    /// one, the stop waits up to `shutdown_timeout` for the handler, then
    /// shuts the socket down.
    ///
    /// `hook` runs once, on the thread that tells every upgraded
    /// connection in turn (`maitred-upgraded-stop`): it must not block (a
    /// write to a client that does not read would hold the others back;
    /// use a non-blocking or bounded one). If the stop began already, it
    /// runs now, on this thread. Each call adds a hook (a WebSocket
    /// over the stream has set one already: its close with 1001).
    /// Only the stream the handler was given holds the registration: on a
    /// [`try_clone`](Self::try_clone) this does nothing.
    ///
    /// ```no_run
    /// use std::io::{BufRead, BufReader, Write};
    /// use std::net::Shutdown;
    /// use maitred::{Request, Response};
    ///
    /// fn app(req: &mut Request) -> Response {
    ///     Response::upgrade("echo", |stream| {
    ///         let (Ok(mut out), Ok(ctl)) = (stream.try_clone(), stream.try_clone()) else {
    ///             return;
    ///         };
    ///         // At the stop the read loop below sees the end of the stream.
    ///         stream.on_server_stop(move || {
    ///             let _ = ctl.shutdown(Shutdown::Read);
    ///         });
    ///         for line in BufReader::new(stream).lines() {
    ///             let Ok(line) = line else { break };
    ///             if writeln!(out, "{line}").is_err() {
    ///                 break;
    ///             }
    ///         }
    ///         let _ = writeln!(out, "bye");
    ///     })
    /// }
    /// ```
    pub fn on_server_stop(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.on_stop(Arc::new(hook));
    }

    /// [`on_server_stop`](Self::on_server_stop) with the hook shared.
    pub(crate) fn on_stop(&self, hook: StopHook) {
        let Some(reg) = &self.registration else {
            return;
        };
        let run_now = {
            let mut open = crate::lock(&reg.inner.open);
            if open.stopping {
                true
            } else {
                if let Some(o) = open.streams.get_mut(&reg.id) {
                    o.on_stop.push(Arc::clone(&hook));
                }
                false
            }
        };
        if run_now {
            hook();
        }
    }

    /// The server's `websocket_max_message_size` setting.
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub(crate) fn websocket_max_message_size(&self) -> u64 {
        self.websocket_max_message_size
    }

    /// Sets how long a read may wait (`None`: for ever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.stream {
            Stream::Tcp(s) => s.set_read_timeout(timeout),
            Stream::Unix(s) => s.set_read_timeout(timeout),
        }
    }

    /// Sets how long a write may wait (`None`: for ever).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.stream {
            Stream::Tcp(s) => s.set_write_timeout(timeout),
            Stream::Unix(s) => s.set_write_timeout(timeout),
        }
    }

    /// Shuts down the reading, writing or both halves of the connection
    /// (for every handle on it).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match &self.stream {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }

    /// The TCP stream, when the connection came over TCP (for its peer
    /// address, `set_nodelay`, ...).
    pub fn tcp(&self) -> Option<&TcpStream> {
        match &self.stream {
            Stream::Tcp(s) => Some(s),
            Stream::Unix(_) => None,
        }
    }
}

impl Read for Upgraded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.leftover();
        if !rest.is_empty() {
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.pos += n;
            if self.pos >= self.leftover.len() {
                self.leftover = Vec::new();
                self.pos = 0;
            }
            return Ok(n);
        }
        match &mut self.stream {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Upgraded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.stream {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Upgraded {
    fn as_raw_fd(&self) -> RawFd {
        match &self.stream {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}
