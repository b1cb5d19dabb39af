//! A listening socket in the dispatcher map: accepts connections (up to
//! [`ACCEPT_BATCH`] a round) and hands each to the map as a channel; backs
//! off for a while when `accept` runs out of descriptors or memory.
//!
//! * At `connection_limit` accepting goes on: the map makes room or
//!   answers 503 (see `server.rs`).
//! * `EMFILE`, `ENFILE` and the like on `accept` are logged and followed by
//!   a 100 ms pause of that listener; `ECONNABORTED` is ignored. None of
//!   them stops the server.
//! * With several I/O threads (`io_threads`), the listeners are in the
//!   first loop, which accepts every connection and hands each to the loop
//!   holding the fewest (itself included), or, at `connection_limit`, to
//!   the loop whose best candidate to close for room is the best of all
//!   (`home.rs`). One acceptor for every kind of listener (TCP, unix,
//!   inherited, socket-activated: a descriptor cannot be split into one
//!   `SO_REUSEPORT` socket per loop), and a spread that follows the loops'
//!   load rather than a hash of the client's address.
//!
//! Thread: the I/O thread.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel::{ChannelDispatcher, LoopEnv};
use crate::dispatcher::{Cx, Dispatcher, Progress, Role};
use crate::home::Accepted;
use crate::request::ConnEnviron;
use crate::shared::ServerShared;
use crate::sys::{self, Addr};

/// An address the server listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address (with the port the kernel chose when 0 was asked for).
    Tcp(SocketAddr),
    /// A unix-domain socket.
    Unix(PathBuf),
}

impl ListenAddr {
    /// The URL waitress prints for it: `http://127.0.0.1:8080`,
    /// `http://[::1]:8080`, `http://unix:/run/app.sock`.
    pub fn url(&self) -> String {
        match self {
            ListenAddr::Tcp(SocketAddr::V4(a)) => format!("http://{}:{}", a.ip(), a.port()),
            ListenAddr::Tcp(SocketAddr::V6(a)) => format!("http://[{}]:{}", a.ip(), a.port()),
            ListenAddr::Unix(p) => format!("http://unix:{}", p.display()),
        }
    }

    /// The TCP address, if it is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Tcp(a) => Some(*a),
            ListenAddr::Unix(_) => None,
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

/// How long a listener pauses after `accept` ran out of descriptors or
/// memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Connections accepted per listener per loop round, so that accepting does
/// not starve the connections already open.
const ACCEPT_BATCH: usize = 64;

/// A listening socket in the map.
#[derive(Debug)]
pub(crate) struct Listener {
    sock: OwnedFd,
    shared: Arc<ServerShared>,
    addr: ListenAddr,
    /// What every connection from this listener starts from.
    origin: ConnEnviron,
    /// The file to remove when the server stops.
    unix_path: Option<PathBuf>,
    backoff_until: Option<Instant>,
    stopping: bool,
    /// Where the search for the least loaded loop starts (the loop after
    /// the last one chosen), so that ties go round.
    next_loop: usize,
}

impl Listener {
    pub(crate) fn new(
        sock: OwnedFd,
        shared: Arc<ServerShared>,
        addr: ListenAddr,
        origin: ConnEnviron,
        unix_path: Option<PathBuf>,
    ) -> Listener {
        Listener {
            sock,
            shared,
            addr,
            origin,
            unix_path,
            backoff_until: None,
            stopping: false,
            next_loop: 0,
        }
    }

    /// The origin of a connection from `peer`: the listener's template
    /// (shared strings, no allocation) with the peer's address.
    fn origin_for(&self, peer: &Addr) -> ConnEnviron {
        let mut origin = self.origin.clone();
        if let (ListenAddr::Tcp(_), Addr::Inet(a)) = (&self.addr, peer) {
            use std::io::Write;
            let mut buf = [0u8; 64];
            let mut cur = std::io::Cursor::new(&mut buf[..]);
            let text = match write!(cur, "{}", a.ip()) {
                Ok(()) => {
                    let n = cur.position() as usize;
                    std::str::from_utf8(&buf[..n]).map(Arc::from).ok()
                }
                Err(_) => None,
            };
            origin.remote_addr = text.unwrap_or_else(|| Arc::from(a.ip().to_string()));
            origin.remote_port = Some(a.port());
        }
        // Otherwise a unix-socket peer: "localhost" with no port, as in
        // waitress (the template's values).
        origin
    }
}

/// The loop a new connection goes to: below `connection_limit`, the one
/// holding the fewest connections (counting those on their way), the
/// first such after the last chosen; at the limit, the one whose best
/// candidate to close is the best of all (it makes room, or refuses),
/// or the least loaded when no loop has one. `admitted`: connections this
/// round gave the first loop that it has not registered yet.
fn choose_loop(shared: &ServerShared, next_loop: &mut usize, admitted: usize) -> usize {
    let loops = &shared.loops;
    let n = loops.len();
    if n == 1 {
        return 0;
    }
    if shared.channels.load(std::sync::atomic::Ordering::Relaxed) >= shared.connection_limit {
        let best = (0..n)
            .map(|i| (loops[i].census.best_victim(), i))
            .min()
            .filter(|&(rank, _)| rank != u64::MAX);
        if let Some((_, i)) = best {
            return i;
        }
    }
    let mut choice = *next_loop % n;
    let mut fewest = usize::MAX;
    for k in 0..n {
        let i = (*next_loop + k) % n;
        let load = loops[i].load() + if i == 0 { admitted } else { 0 };
        if load < fewest {
            fewest = load;
            choice = i;
        }
    }
    *next_loop = choice + 1;
    choice
}

impl Dispatcher<LoopEnv> for Listener {
    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn role(&self) -> Role {
        Role::Listener
    }

    fn closing(&self) -> bool {
        self.stopping
    }

    fn readable(&mut self, cx: &mut Cx<'_, LoopEnv>) -> bool {
        if self.stopping {
            return false;
        }
        if let Some(t) = self.backoff_until {
            if cx.now < t {
                return false;
            }
            self.backoff_until = None;
        }
        // Always accepting, at the connection limit too: the map makes
        // room or answers 503 (a connection left in the kernel's backlog
        // would wait there for as long as the slowest client likes).
        true
    }

    fn writable(&mut self, _cx: &mut Cx<'_, LoopEnv>) -> bool {
        false
    }

    fn handle_read(&mut self, cx: &mut Cx<'_, LoopEnv>) -> Progress {
        let adj = &self.shared.adj;
        // Admitted to this loop in this batch: registered after it.
        let mut admitted = 0;
        for _ in 0..ACCEPT_BATCH {
            match sys::accept(self.sock.as_raw_fd()) {
                Ok((conn, peer)) => {
                    if let ListenAddr::Tcp(_) = self.addr {
                        if let Err(e) = sys::set_nodelay(conn.as_raw_fd()) {
                            // The peer may already be gone (macOS reports it
                            // here); drop the connection, as waitress does.
                            if adj.log_socket_errors {
                                crate::log_warning!("server accept() threw an exception: {e}");
                            }
                            continue;
                        }
                    }
                    let origin = self.origin_for(&peer);
                    // A trusted proxy's connections begin with a PROXY
                    // protocol header (`proxy_protocol`).
                    let proxied =
                        self.shared
                            .proxy_protocol
                            .as_ref()
                            .is_some_and(|t| match &peer {
                                Addr::Inet(a) => t.trusts_ip(a.ip()),
                                Addr::Unix(_) => t.trusts("localhost"),
                            });
                    let home = choose_loop(&self.shared, &mut self.next_loop, admitted);
                    if home == 0 {
                        admitted += 1;
                        cx.admit(Box::new(ChannelDispatcher::new(
                            conn,
                            Arc::clone(&self.shared),
                            Arc::clone(&self.shared.loops[0]),
                            origin,
                            proxied,
                        )));
                    } else {
                        self.shared.loops[home].hand(Accepted {
                            sock: conn,
                            origin,
                            proxied,
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Drained,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ECONNABORTED) | Some(libc::EPROTO) | Some(libc::EINTR)
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    if adj.log_socket_errors {
                        crate::log_warning!("server accept() threw an exception: {e}");
                    }
                    // Out of descriptors or memory (or anything else): pause
                    // this listener and try again later.
                    self.backoff_until = Some(cx.now + ACCEPT_BACKOFF);
                    return Progress::Done;
                }
            }
        }
        Progress::More
    }

    fn handle_write(&mut self, _cx: &mut Cx<'_, LoopEnv>) -> Progress {
        Progress::Done
    }

    fn handle_close(&mut self, _cx: &mut Cx<'_, LoopEnv>) {
        if let Some(p) = self.unix_path.take() {
            // After a handover the file is the new process's.
            if !self.shared.handover.handed_over() {
                let _ = std::fs::remove_file(&p);
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.backoff_until
    }

    fn begin_shutdown(&mut self) -> bool {
        self.stopping = true;
        true
    }
}
