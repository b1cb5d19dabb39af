//! Listening sockets, accepting connections, and running the loop:
//! waitress's `server.py` (`create_server`, `BaseWSGIServer`,
//! `MultiSocketServer`).
//!
//! One [`Server`] serves every listener it was given (TCP addresses, a
//! unix-domain socket, or inherited descriptors) from one I/O thread: the
//! thread that calls [`Server::run`].
//!
//! * At `connection_limit` open client connections, accepting goes on:
//!   each new connection is admitted by closing the connection most
//!   willing to go (idle between requests, oldest first; then still
//!   receiving a head or not yet sending one, the longest at it first;
//!   never one whose request is
//!   queued, running or being answered, nor one receiving a body), or, when
//!   there is none, answered `503` with `Retry-After: 1` and closed. One
//!   warning a minute says how many were closed and refused. waitress (and
//!   nginx) stop accepting instead, which lets a hundred slow clients lock
//!   everyone else out: the new connections wait in the kernel's backlog
//!   until they time out. This server counts client connections only.
//! * `EMFILE`, `ENFILE` and the like on `accept` are logged and followed by
//!   a 100 ms pause of that listener; `ECONNABORTED` is ignored. None of
//!   them stops the server.
//! * Every `cleanup_interval` seconds, connections that have had no request
//!   running and no bytes received or sent for `channel_timeout` seconds
//!   are closed.
//! * A graceful stop ([`ServerHandle::shutdown`], or SIGINT/SIGTERM under
//!   [`serve`](crate::serve)) closes the listeners (removing a unix socket's
//!   file) and idle connections (cleanly: `handover/linger.rs`), lets
//!   running requests finish and their responses go out for up to
//!   `shutdown_timeout` seconds, then stops the workers. After a handover
//!   (`handover.rs`) the same drain follows, and the file is left to the
//!   new process.
//!
//! Thread: the I/O thread (the one that calls `Server::run`); `create_server`
//! and `ServerHandle` on any thread.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::access_log::AccessLog;
use crate::adjustments::{Adjustments, ListenSpec};
use crate::channel::{Channel, ChannelDispatcher};
use crate::dispatcher::{new_poller, Backend, Cx, Dispatcher, Map, Progress, Role, Token};
use crate::error::Error;
use crate::parser::ParserConfig;
use crate::pool::ThreadedTaskDispatcher;
use crate::proxy_headers::ProxyConfig;
use crate::request::ConnEnviron;
use crate::stats::{Counters, InApp, Stats};
use crate::sys::{self, Addr};
use crate::trigger::Notifier;
use crate::App;

/// How long a listener pauses after `accept` ran out of descriptors or
/// memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often what admission at `connection_limit` did is logged (at most).
const ADMISSION_REPORT: Duration = Duration::from_secs(60);
/// How often the deadlines of requests being received are checked
/// (`request_head_timeout`, `request_body_timeout`): a 408 comes at most
/// this late.
const DEADLINE_SWEEP: Duration = Duration::from_millis(250);
/// Connections accepted per listener per loop round, so that accepting does
/// not starve the connections already open.
const ACCEPT_BATCH: usize = 64;

/// What every channel shares: settings, the application, the worker pool,
/// the way to wake the loop.
pub(crate) struct ServerShared {
    pub(crate) adj: Adjustments,
    pub(crate) app: Box<dyn App>,
    pub(crate) pool: ThreadedTaskDispatcher<Arc<Channel>>,
    pub(crate) notifier: Arc<Notifier>,
    /// What the server has done ([`ServerHandle::stats`]).
    pub(crate) counters: Counters,
    /// The access log, when `access_log` is set.
    pub(crate) access_log: Option<AccessLog>,
    /// The requests in the application, while `slow_request_warning` is on.
    pub(crate) in_app: InApp,
    /// Channels receiving a request under a deadline
    /// (`request_head_timeout`, `request_body_timeout`): the loop sweeps
    /// for deadlines only while there are some. Only the I/O thread
    /// touches it.
    pub(crate) receive_clocks: AtomicUsize,
    pub(crate) parser_config: ParserConfig,
    /// The proxy-headers middleware, when a proxy setting asks for it.
    pub(crate) proxy: Option<ProxyConfig>,
    /// Handing the listeners over to a new process (handover.rs).
    pub(crate) handover: crate::handover::State,
    epoch: Instant,
}

impl fmt::Debug for ServerShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerShared")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl ServerShared {
    /// Milliseconds since the server started (monotonic).
    pub(crate) fn now_ms(&self) -> u64 {
        self.ms_at(Instant::now())
    }

    pub(crate) fn ms_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64
    }
}

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

/// A listening socket in the map.
#[derive(Debug)]
struct Listener {
    sock: OwnedFd,
    shared: Arc<ServerShared>,
    addr: ListenAddr,
    /// What every connection from this listener starts from.
    origin: ConnEnviron,
    /// The file to remove when the server stops.
    unix_path: Option<PathBuf>,
    backoff_until: Option<Instant>,
    stopping: bool,
}

impl Listener {
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

impl Dispatcher for Listener {
    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn role(&self) -> Role {
        Role::Listener
    }

    fn closing(&self) -> bool {
        self.stopping
    }

    fn readable(&mut self, cx: &mut Cx<'_>) -> bool {
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

    fn writable(&mut self, _cx: &mut Cx<'_>) -> bool {
        false
    }

    fn handle_read(&mut self, cx: &mut Cx<'_>) -> Progress {
        let adj = &self.shared.adj;
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
                    let chan = ChannelDispatcher::new(conn, Arc::clone(&self.shared), origin);
                    // Closed cleanly once the server stops (handover/linger.rs).
                    let lingerer = &self.shared.handover.lingerer;
                    cx.admit(Box::new(crate::handover::CleanClose::new(chan, lingerer)));
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

    fn handle_write(&mut self, _cx: &mut Cx<'_>) -> Progress {
        Progress::Done
    }

    fn handle_close(&mut self, _cx: &mut Cx<'_>) {
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

/// The trigger's read side in the map: takes the workers' notifications.
#[derive(Debug)]
struct TriggerDispatcher {
    notifier: Arc<Notifier>,
    taken: Vec<Token>,
}

impl Dispatcher for TriggerDispatcher {
    fn fd(&self) -> RawFd {
        self.notifier.trigger().fd()
    }

    fn role(&self) -> Role {
        Role::Trigger
    }

    fn readable(&mut self, _cx: &mut Cx<'_>) -> bool {
        true
    }

    fn writable(&mut self, _cx: &mut Cx<'_>) -> bool {
        false
    }

    fn handle_read(&mut self, cx: &mut Cx<'_>) -> Progress {
        // An eventfd watched edge-triggered signals each write anew, so it
        // need not be read; a pipe, or any level-triggered poller, must be
        // drained.
        self.notifier.trigger().reset(!cx.edge_triggered);
        self.notifier.take(&mut self.taken);
        for t in self.taken.drain(..) {
            cx.wake(t);
        }
        Progress::Drained
    }

    fn handle_write(&mut self, _cx: &mut Cx<'_>) -> Progress {
        Progress::Done
    }

    fn handle_close(&mut self, _cx: &mut Cx<'_>) {}
}

/// Stops a running [`Server`], and reads its statistics, from any thread.
#[derive(Clone, Debug)]
pub struct ServerHandle {
    stop: Arc<AtomicBool>,
    /// (`handover.rs` adds `ServerHandle::handover`.)
    pub(crate) shared: Arc<ServerShared>,
}

impl ServerHandle {
    /// Begins a graceful stop: [`Server::run`] stops accepting, closes idle
    /// connections, lets running requests finish (up to
    /// `shutdown_timeout`), and returns.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.shared.notifier.wake();
    }

    /// What the server has done so far: connections, requests, responses
    /// by class, bytes, the worker pool (see [`Stats`]). Cheap (a few
    /// atomic loads and one lock of the pool's queue), so it can be served
    /// on every scrape.
    pub fn stats(&self) -> Stats {
        let dropped = self
            .shared
            .access_log
            .as_ref()
            .map_or(0, AccessLog::dropped);
        self.shared
            .counters
            .snapshot(self.shared.pool.figures(), dropped)
    }

    /// Reopens the access log's file (for logrotate: after the file was
    /// moved, new lines go to a new file of the same name).
    /// [`Server::serve`] calls it on SIGHUP.
    pub fn reopen_logs(&self) {
        if let Some(log) = &self.shared.access_log {
            log.reopen();
        }
    }
}

/// A server with its listeners bound and its workers started, ready to
/// [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    map: Map,
    shared: Arc<ServerShared>,
    addrs: Vec<ListenAddr>,
    stop: Arc<AtomicBool>,
    watch_signals: bool,
    finished: bool,
}

fn is_socket_file(p: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

/// Opens the listening socket for one endpoint.
fn open_listener(
    spec: &ListenSpec,
    adj: &Adjustments,
) -> Result<(OwnedFd, ListenAddr, Option<PathBuf>), Error> {
    match spec {
        ListenSpec::Tcp(addr) => {
            let fd = sys::tcp_listener(
                addr,
                sys::ListenOptions {
                    backlog: adj.backlog,
                    reuse_port: adj.reuse_port,
                },
            )
            .map_err(|e| Error::io(format!("could not listen on {}", ListenAddr::Tcp(*addr)), e))?;
            let bound = match sys::local_addr(fd.as_raw_fd()) {
                Ok(Addr::Inet(a)) => a,
                _ => *addr,
            };
            Ok((fd, ListenAddr::Tcp(bound), None))
        }
        ListenSpec::Unix(path) => {
            // A stale socket file from an earlier run is removed; any other
            // file is left alone (and bind reports it).
            if is_socket_file(path) {
                let _ = std::fs::remove_file(path);
            }
            let fd = sys::unix_listener(path, adj.backlog, adj.unix_socket_perms).map_err(|e| {
                Error::io(
                    format!("could not listen on unix socket {}", path.display()),
                    e,
                )
            })?;
            Ok((fd, ListenAddr::Unix(path.clone()), Some(path.clone())))
        }
        ListenSpec::Fd(raw) => {
            let (ty, family) = sys::socket_type_and_family(*raw).map_err(|e| {
                Error::io(
                    format!("descriptor {raw} in sockets is not a usable socket"),
                    e,
                )
            })?;
            if ty != libc::SOCK_STREAM
                || !matches!(family, libc::AF_INET | libc::AF_INET6 | libc::AF_UNIX)
            {
                return Err(Error::config(
                    "Only Internet or UNIX stream sockets may be used.",
                ));
            }
            sys::set_nonblocking_cloexec(*raw)
                .map_err(|e| Error::io(format!("could not configure descriptor {raw}"), e))?;
            sys::listen(*raw, adj.backlog)
                .map_err(|e| Error::io(format!("could not listen on descriptor {raw}"), e))?;
            let addr = match sys::local_addr(*raw) {
                Ok(Addr::Inet(a)) => ListenAddr::Tcp(a),
                Ok(Addr::Unix(p)) => ListenAddr::Unix(p.unwrap_or_default()),
                Err(e) => return Err(Error::io(format!("descriptor {raw}"), e)),
            };
            Ok((sys::adopt_inherited(*raw), addr, None))
        }
    }
}

/// Descriptors kept back from `connection_limit` for everything else a
/// server opens: listeners, the poller, the trigger, temporary files of
/// large bodies, log files.
const FD_RESERVE: u64 = 256;

/// Raises the soft descriptor limit to hold `limit` connections and the
/// reserve (up to the hard limit), and returns how many connections fit.
fn effective_connection_limit(limit: usize) -> usize {
    let want = (limit as u64).saturating_add(FD_RESERVE);
    match sys::raise_fd_limit(want) {
        Ok(soft) if soft >= want => limit,
        Ok(soft) => {
            let fit = soft.saturating_sub(FD_RESERVE).max(1) as usize;
            crate::log_warning!(
                "connection_limit {limit} needs {want} descriptors but the process may open {soft}; holding at most {fit} connections (raise the hard limit: ulimit -Hn, or LimitNOFILE= under systemd)"
            );
            fit
        }
        Err(e) => {
            crate::log_warning!("could not read or raise the descriptor limit: {e}");
            limit
        }
    }
}

/// Binds the listeners, starts the workers, and returns the server without
/// running it (waitress's `create_server`). With
/// `systemd_socket_activation`, the listeners are the sockets systemd
/// passed (see [`Adjustments::take_systemd_sockets`]).
///
/// Errors: settings that contradict each other or do not parse, or a
/// listener that could not be set up (the message names the address).
///
/// # Process state
///
/// The soft limit on open descriptors (`RLIMIT_NOFILE`) is raised, up to
/// the hard limit, to hold `connection_limit` connections; where the hard
/// limit is lower, fewer connections are held and a warning says so.
///
/// # The panic hook
///
/// To say *where* an application panicked (in the error log, and in the
/// 500 with `expose_tracebacks`), the first call installs a process-wide
/// panic hook that records the location on the panicking thread and then
/// calls the hook that was installed before it, so an application's own
/// hook (or the default one, which prints the panic) still runs for every
/// panic. Nothing is restored afterwards. A hook installed later replaces
/// it; the server then logs panics without their location and works as
/// before.
pub fn create_server<A: App>(app: A, mut adj: Adjustments) -> Result<Server, Error> {
    // Started by a handover: serve the sockets it passed (handover.rs).
    let inherited = crate::handover::take_inherited()?;
    if adj.systemd_socket_activation && inherited.is_none() {
        adj.take_systemd_sockets()?;
    }
    let specs = match &inherited {
        Some(fds) => adj
            .validate()
            .map(|()| fds.iter().map(|&fd| ListenSpec::Fd(fd)).collect())?,
        None => adj.resolve()?,
    };
    let proxy = ProxyConfig::from_adjustments(&adj)?;
    let access_log = AccessLog::open(&adj.access_log, &adj.access_log_format)?;
    let mut listeners = Vec::new();
    for spec in &specs {
        let mut l = open_listener(spec, &adj)?;
        if inherited.is_some() {
            l.2 = crate::handover::owns_unix_path(&adj, &l.1);
        }
        listeners.push(l);
    }
    let handover = crate::handover::State::new(listeners.iter().map(|l| l.0.as_raw_fd()))?;
    if !adj.sockets.is_empty() {
        let unix = listeners.iter().any(|l| matches!(l.1, ListenAddr::Unix(_)));
        let tcp = listeners.iter().any(|l| matches!(l.1, ListenAddr::Tcp(_)));
        if unix && tcp {
            return Err(Error::config("Internet and UNIX sockets may not be mixed."));
        }
    }
    crate::install_panic_hook();
    let notifier =
        Arc::new(Notifier::new().map_err(|e| Error::io("could not create the trigger", e))?);
    let backend = if adj.asyncore_use_poll {
        Backend::Poll
    } else {
        Backend::Default
    };
    let poller = new_poller(backend).map_err(|e| Error::io("could not create the poller", e))?;
    let parser_config = ParserConfig {
        max_request_header_size: adj.max_request_header_size,
        max_request_body_size: adj.max_request_body_size,
        inbuf_overflow: adj.inbuf_overflow,
        max_request_line_size: adj.max_request_line_size,
        max_header_field_size: adj.max_header_field_size,
        max_header_fields: adj.max_header_fields,
    };
    let threads = adj.threads;
    let shared = Arc::new(ServerShared {
        adj,
        app: Box::new(app),
        pool: ThreadedTaskDispatcher::new(),
        notifier: Arc::clone(&notifier),
        receive_clocks: AtomicUsize::new(0),
        counters: Counters::new(),
        in_app: InApp::default(),
        access_log,
        parser_config,
        proxy,
        handover,
        epoch: Instant::now(),
    });
    let mut map = Map::new(poller);
    map.set_connection_limit(effective_connection_limit(shared.adj.connection_limit));
    let now = Instant::now();
    map.add(
        Box::new(TriggerDispatcher {
            notifier: Arc::clone(&notifier),
            taken: Vec::new(),
        }),
        now,
    )
    .map_err(|e| Error::io("could not watch the trigger", e))?;
    let mut addrs = Vec::new();
    let adj = &shared.adj;
    let script_name: Arc<str> = Arc::from(adj.url_prefix.as_str());
    let server_name: Arc<str> = Arc::from(adj.server_name.as_str());
    let ident: Arc<str> = Arc::from(adj.ident.as_deref().unwrap_or(""));
    let localhost: Arc<str> = Arc::from("localhost");
    let url_scheme: std::borrow::Cow<'static, str> = match adj.url_scheme.as_str() {
        "http" => "http".into(),
        "https" => "https".into(),
        other => other.to_string().into(),
    };
    for (sock, addr, unix_path) in listeners {
        addrs.push(addr.clone());
        let origin = ConnEnviron {
            script_name: Arc::clone(&script_name),
            remote_addr: Arc::clone(&localhost),
            remote_port: None,
            server_name: Arc::clone(&server_name),
            server_port: addr.tcp().map(|a| a.port()),
            url_scheme: url_scheme.clone(),
            ident: Arc::clone(&ident),
        };
        map.add(
            Box::new(Listener {
                sock,
                shared: Arc::clone(&shared),
                addr,
                origin,
                unix_path,
                backoff_until: None,
                stopping: false,
            }),
            now,
        )
        .map_err(|e| Error::io("could not watch a listener", e))?;
    }
    shared.pool.set_thread_count(threads);
    Ok(Server {
        map,
        shared,
        addrs,
        stop: Arc::new(AtomicBool::new(false)),
        watch_signals: false,
        finished: false,
    })
}

impl Server {
    /// The addresses the server listens on (with the ports the kernel chose
    /// for port 0).
    pub fn local_addrs(&self) -> &[ListenAddr] {
        &self.addrs
    }

    /// The first TCP address, for tests and examples that bind one.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addrs.iter().find_map(ListenAddr::tcp)
    }

    /// A handle that stops the server from any thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            stop: Arc::clone(&self.stop),
            shared: Arc::clone(&self.shared),
        }
    }

    /// The settings the server runs with.
    pub fn adjustments(&self) -> &Adjustments {
        &self.shared.adj
    }

    /// Logs `Serving on <url>` for each listener, as waitress does.
    pub fn print_listen(&self) {
        for a in &self.addrs {
            crate::log_info!("Serving on {}", a.url());
        }
    }

    pub(crate) fn watch_signals(&mut self, on: bool) {
        self.watch_signals = on;
    }

    pub(crate) fn wake_fd(&self) -> RawFd {
        self.shared.notifier.trigger().wake_fd()
    }

    /// Runs the server as [`serve`](crate::serve) does: logs `Serving on
    /// <url>` for every listener and runs until SIGINT or SIGTERM (or
    /// [`ServerHandle::shutdown`]), then stops gracefully; SIGHUP reopens
    /// the access log; SIGUSR2 hands over to a new copy of the program
    /// ([`ServerHandle::handover`]) and then stops. The signal handlers are installed for the time it
    /// runs. Use it instead of
    /// `serve` to keep a [`ServerHandle`] first (for its statistics, say).
    ///
    /// ```no_run
    /// let server = maitred::create_server(
    ///     |_req: &mut maitred::Request| maitred::Response::text("hi"),
    ///     maitred::Adjustments::default(),
    /// )?;
    /// let handle = server.handle();
    /// std::thread::spawn(move || {
    ///     std::thread::sleep(std::time::Duration::from_secs(5));
    ///     eprintln!("{:?}", handle.stats());
    /// });
    /// server.serve()
    /// # ;Ok::<(), maitred::Error>(())
    /// ```
    pub fn serve(mut self) -> Result<(), Error> {
        // The handlers come first, so that a supervisor that signals as
        // soon as it reads "Serving on" gets a graceful stop.
        sys::signals::install(self.wake_fd()).map_err(|e| {
            Error::io(
                "could not install the SIGINT/SIGTERM/SIGHUP/SIGUSR2 handlers",
                e,
            )
        })?;
        self.watch_signals(true);
        self.print_listen();
        let r = self.run();
        sys::signals::uninstall();
        r
    }

    /// Runs the I/O loop on this thread until the server is stopped.
    pub fn run(mut self) -> Result<(), Error> {
        // sd_notify READY=1: for systemd's Type=notify and for a handover.
        crate::notify::ready();
        let r = self.run_loop();
        self.finish();
        r
    }

    fn run_loop(&mut self) -> Result<(), Error> {
        let adj = &self.shared.adj;
        let loop_timeout = adj.loop_timeout();
        let cleanup = Duration::from_secs(adj.cleanup_interval);
        let shutdown_timeout = Duration::from_secs(adj.shutdown_timeout);
        let mut next_cleanup = Instant::now() + cleanup;
        let receive_deadlines = adj.request_head_timeout > 0
            || (adj.request_body_timeout > 0 && adj.min_request_body_rate > 0);
        let mut next_deadline_sweep = Instant::now() + DEADLINE_SWEEP;
        let mut next_admission_report = Instant::now() + ADMISSION_REPORT;
        let mut next_slow_check = Instant::now() + Duration::from_secs(1);
        let slow_setting = adj.slow_request_warning;
        let mut stop_deadline: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if stop_deadline.is_none() {
                if self.watch_signals && sys::signals::take_hangup() {
                    if let Some(log) = &self.shared.access_log {
                        crate::log_info!("SIGHUP: reopening the access log");
                        log.reopen();
                    }
                }
                let signalled = self.watch_signals && sys::signals::take().is_some();
                if self.watch_signals && sys::signals::take_handover() {
                    crate::handover::on_signal(self.handle());
                }
                let handed_over = self.shared.handover.handed_over();
                if signalled || self.stop.load(Ordering::SeqCst) || handed_over {
                    if handed_over {
                        crate::log_info!("Handed over: no longer accepting connections");
                    } else {
                        crate::log_info!("Shutting down: no longer accepting connections");
                    }
                    self.shared.handover.stop_accepting();
                    self.map.begin_shutdown();
                    stop_deadline = Some(now + shutdown_timeout);
                }
            }
            if let Some(deadline) = stop_deadline {
                if !self.map.any_busy() {
                    break;
                }
                if now >= deadline {
                    crate::log_warning!(
                        "shutdown_timeout reached with requests still running; closing their connections"
                    );
                    break;
                }
            }
            let mut timeout = if stop_deadline.is_some() {
                loop_timeout.min(Duration::from_millis(50))
            } else {
                loop_timeout
            };
            let sweep = receive_deadlines && self.shared.receive_clocks.load(Ordering::Relaxed) > 0;
            if sweep {
                timeout = timeout.min(next_deadline_sweep.saturating_duration_since(now));
            }
            self.map
                .poll(timeout, now)
                .map_err(|e| Error::io("the poller failed", e))?;
            // The requests completed this round: one hand-over (one lock,
            // at most one wake-up) for all of them.
            {
                let staged = self.map.take_staged();
                if staged.len() > 0 {
                    self.shared.pool.add_tasks(staged);
                }
            }
            let now = Instant::now();
            if now >= next_cleanup {
                next_cleanup = now + cleanup;
                self.map.maintenance(now);
            }
            if slow_setting > 0 && now >= next_slow_check {
                next_slow_check = now + Duration::from_secs(1);
                let limit = Duration::from_secs(slow_setting);
                let n = self.shared.in_app.warn_slow(limit, slow_setting);
                for _ in 0..n {
                    self.shared.counters.slow();
                }
            }
            if now >= next_admission_report {
                next_admission_report = now + ADMISSION_REPORT;
                self.report_admissions();
            }
            if sweep && now >= next_deadline_sweep {
                next_deadline_sweep = now + DEADLINE_SWEEP;
                self.map.receive_deadlines(now);
            }
        }
        Ok(())
    }

    /// One line for what admission at `connection_limit` did since the last
    /// report, if anything.
    fn report_admissions(&mut self) {
        let a = self.map.take_admissions();
        if a == Default::default() {
            return;
        }
        crate::log_warning!(
            "At the connection limit ({}): closed {} idle and {} slow-head connections to make room, refused {} new ones with 503",
            self.shared.adj.connection_limit,
            a.evicted[0],
            a.evicted[1],
            a.refused
        );
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.shared.handover.stop_accepting();
        self.shared.pool.shutdown(true, Duration::from_secs(1));
        self.map.close_all(Instant::now());
        // A handover giving up, and the connections closing cleanly.
        self.shared.handover.finish();
        // What the access log still holds is written before `run` returns.
        if let Some(log) = &self.shared.access_log {
            log.close();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.finish();
    }
}
