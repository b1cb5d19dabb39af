//! Listening sockets, accepting connections, and running the loop:
//! waitress's `server.py` (`create_server`, `BaseWSGIServer`,
//! `MultiSocketServer`).
//!
//! One [`Server`] serves every listener it was given (TCP addresses, a
//! unix-domain socket, or inherited descriptors) from one I/O thread: the
//! thread that calls [`Server::run`]; with `io_threads` above 1, that
//! thread's loop accepts and hands connections to the others, each on a
//! thread of its own (`loops.rs`).
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
//! * Accepting itself is `listener.rs`; the trigger's handler `waker.rs`;
//!   one connection `channel.rs` (driving the core of `conn/`).
//! * Every `cleanup_interval` seconds, connections that have had no request
//!   running and no bytes received or sent for `channel_timeout` seconds
//!   are closed.
//! * A graceful stop ([`ServerHandle::shutdown`], or SIGINT/SIGTERM under
//!   [`serve`](crate::serve)) closes the listeners (removing a unix socket's
//!   file) and idle connections (with a staged close: a FIN, and what the
//!   client still sends read and dropped for a moment, never a reset),
//!   lets running requests finish and their responses go out for up to
//!   `shutdown_timeout` seconds, then stops the workers. Connections that
//!   switched protocols get the same time for their handlers to return;
//!   then their sockets are shut down. After a handover (`handover.rs`)
//!   the same drain follows, and a unix socket's file is left to the new
//!   process.
//!
//! Thread: the I/O thread (the one that calls `Server::run`); `create_server`
//! and `ServerHandle` on any thread.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::access_log::AccessLog;
use crate::adjustments::{Adjustments, ListenSpec};
use crate::channel::LoopEnv;
use crate::dispatcher::{new_poller, Backend, Map};
use crate::error::Error;
use crate::handover::Program;
use crate::home::Home;
use crate::link::Job;
use crate::listener::{ListenAddr, Listener};
use crate::loops::{IoLoop, Others};
use crate::parser::ParserConfig;
use crate::pool::ThreadedTaskDispatcher;
use crate::proxy_headers::ProxyConfig;
use crate::request::ConnEnviron;
use crate::shared::ServerShared;
use crate::stats::Stats;
use crate::sys::{self, Addr};
use crate::trigger::Notifier;
use crate::trusted::TrustedProxies;
use crate::waker::TriggerDispatcher;
use crate::App;

/// How often what admission at `connection_limit` did is logged (at most).
const ADMISSION_REPORT: Duration = Duration::from_secs(60);

/// Stops a running [`Server`], and reads its statistics, from any thread.
#[derive(Clone, Debug)]
pub struct ServerHandle {
    stop: Arc<AtomicBool>,
    shared: Arc<ServerShared>,
    pool: ThreadedTaskDispatcher<Job>,
}

impl ServerHandle {
    /// Begins a graceful stop: [`Server::run`] stops accepting, closes idle
    /// connections, lets running requests finish (up to
    /// `shutdown_timeout`), and returns.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.shared.first_loop().notifier.wake();
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
        let upgrades = &self.shared.upgrades;
        self.shared.counters.snapshot(
            self.pool.figures(),
            dropped,
            (upgrades.open(), upgrades.total()),
            self.shared.spilled.load(Ordering::Relaxed),
            self.shared
                .loops
                .iter()
                .map(|h| h.census.open() as u64)
                .collect(),
        )
    }

    /// Hands this server's listening sockets over to a new process running
    /// `program`, and returns its process id once it serves them: then
    /// this server stops accepting and drains (its [`Server::run`]
    /// returns after the running requests, as after a graceful stop). See
    /// the README's "Restarting without downtime" and `handover.rs`.
    ///
    /// Blocks the calling thread (never the server's) until the new process
    /// says `READY=1` (sd_notify; a maitred server does once its loop
    /// runs), for up to `handover_timeout` seconds. The new process gets the
    /// sockets at descriptors 3, 4, ... with `LISTEN_FDS`/`LISTEN_PID` (the
    /// protocol of systemd's socket activation, which a maitred server
    /// follows without a setting when `MAITRED_HANDOVER` is set, as it is).
    /// [`Server::serve`] calls this on SIGUSR2 with [`Program::current`].
    ///
    /// Errors (logged too; this server then serves on as before): a
    /// handover is already in progress, the server is stopping, the
    /// program could not be started (the path and the system's error), it
    /// exited before it was ready (its exit status), or it was not ready in
    /// time (it is stopped: SIGTERM, SIGKILL five seconds later).
    pub fn handover(&self, program: &Program) -> Result<u32, Error> {
        let shared = &self.shared;
        shared.handover.hand_over(
            program,
            Duration::from_secs(shared.adj.handover_timeout),
            &shared.first_loop().notifier,
        )
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

/// SIGUSR2 under `serve`: a handover to this same program, on a thread of
/// its own (the loop serves on meanwhile).
fn on_handover_signal(handle: ServerHandle) {
    if handle.shared.handover.refuse_signal_while_busy() {
        return;
    }
    crate::log_info!("SIGUSR2: handing over to a new copy of this program");
    let spawned = std::thread::Builder::new()
        .name("maitred-handover".into())
        .spawn(move || match Program::current() {
            Ok(p) => {
                // The outcome is logged by the handover itself.
                let _ = handle.handover(&p);
            }
            Err(e) => crate::log_warning!("Handover failed: {e}; this process keeps serving"),
        });
    if let Err(e) = spawned {
        crate::log_warning!("SIGUSR2: could not start the handover's thread: {e}; ignored");
    }
}

/// A server with its listeners bound and its workers started, ready to
/// [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    /// The first loop: the listeners, on the thread that runs the server.
    first: IoLoop,
    /// The other loops (`io_threads`), until `run` starts their threads.
    others: Vec<IoLoop>,
    /// Set when the first loop stops waiting for the others to drain.
    release: Arc<AtomicBool>,
    shared: Arc<ServerShared>,
    pool: ThreadedTaskDispatcher<Job>,
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

/// Raises the soft descriptor limit to hold `limit` connections, `upgraded`
/// connections that switched protocols and the reserve (up to the hard
/// limit), and returns how many connections fit.
fn effective_connection_limit(limit: usize, upgraded: usize) -> usize {
    let want = (limit as u64)
        .saturating_add(upgraded as u64)
        .saturating_add(FD_RESERVE);
    match sys::raise_fd_limit(want) {
        Ok(soft) if soft >= want => limit,
        Ok(soft) => {
            let fit = soft
                .saturating_sub(FD_RESERVE)
                .saturating_sub(upgraded as u64)
                .max(1) as usize;
            crate::log_warning!(
                "connection_limit {limit} (and upgraded_connection_limit {upgraded}) need {want} descriptors but the process may open {soft}; holding at most {fit} connections (raise the hard limit: ulimit -Hn, or LimitNOFILE= under systemd)"
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
    let proxy_protocol = match (&adj.trusted_proxy, adj.proxy_protocol) {
        (Some(spec), true) => Some(TrustedProxies::parse(spec)?),
        _ => None,
    };
    let access_log = AccessLog::open(&adj.access_log, &adj.access_log_format)?;
    let mut listeners = Vec::new();
    for spec in &specs {
        let mut l = open_listener(spec, &adj)?;
        if inherited.is_some() {
            let unix = match &l.1 {
                ListenAddr::Unix(p) => Some(p.as_path()),
                ListenAddr::Tcp(_) => None,
            };
            l.2 = crate::handover::owns_unix_path(&adj, unix);
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
    let backend = if adj.asyncore_use_poll {
        Backend::Poll
    } else {
        Backend::Default
    };
    let io_threads = adj.io_thread_count();
    let mut homes = Vec::with_capacity(io_threads);
    let mut pollers = Vec::with_capacity(io_threads);
    for i in 0..io_threads {
        let notifier =
            Arc::new(Notifier::new().map_err(|e| Error::io("could not create the trigger", e))?);
        homes.push(Arc::new(Home::new(i, notifier)));
        pollers.push(new_poller(backend).map_err(|e| Error::io("could not create the poller", e))?);
    }
    let parser_config = ParserConfig {
        max_request_header_size: adj.max_request_header_size,
        max_request_body_size: adj.max_request_body_size,
        inbuf_overflow: adj.inbuf_overflow,
        max_request_line_size: adj.max_request_line_size,
        max_header_field_size: adj.max_header_field_size,
        max_header_fields: adj.max_header_fields,
    };
    let threads = adj.threads;
    let connection_limit =
        effective_connection_limit(adj.connection_limit, adj.upgraded_connection_limit);
    let shared = Arc::new(ServerShared::new(
        adj,
        Box::new(app),
        homes.clone(),
        connection_limit,
        access_log,
        parser_config,
        proxy,
        handover,
        proxy_protocol,
    ));
    let pool = ThreadedTaskDispatcher::new();
    let now = Instant::now();
    let mut loops = Vec::with_capacity(io_threads);
    for (home, poller) in homes.into_iter().zip(pollers) {
        let mut map = Map::new(poller, LoopEnv::new(pool.clone()));
        map.set_connection_limit(connection_limit);
        map.share(Arc::clone(&shared.channels), Arc::clone(&home.census));
        map.add(
            Box::new(TriggerDispatcher::new(Arc::clone(&home.notifier))),
            now,
        )
        .map_err(|e| Error::io("could not watch the trigger", e))?;
        loops.push(IoLoop::new(map, home, &shared));
    }
    let mut others = loops.split_off(1);
    others.shrink_to_fit();
    let Some(mut first) = loops.pop() else {
        return Err(Error::config("io_threads: no loop to run"));
    };
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
        first
            .map
            .add(
                Box::new(Listener::new(
                    sock,
                    Arc::clone(&shared),
                    addr,
                    origin,
                    unix_path,
                )),
                now,
            )
            .map_err(|e| Error::io("could not watch a listener", e))?;
    }
    pool.set_thread_count(threads);
    Ok(Server {
        first,
        others,
        release: Arc::new(AtomicBool::new(false)),
        shared,
        pool,
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
            pool: self.pool.clone(),
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
        self.shared.first_loop().notifier.trigger().wake_fd()
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

    /// Runs the I/O loop on this thread until the server is stopped (and,
    /// with `io_threads` above 1, the other loops on threads of their own,
    /// `maitred-io-1`, ...).
    pub fn run(mut self) -> Result<(), Error> {
        let mut others = match Others::start(
            std::mem::take(&mut self.others),
            &self.shared,
            &self.pool,
            &self.release,
            &self.stop,
        ) {
            Ok(o) => o,
            Err((e, back)) => {
                self.others = back;
                return Err(Error::io("could not start an I/O thread", e));
            }
        };
        // sd_notify READY=1: for systemd's Type=notify and for a handover.
        crate::notify::ready();
        let r = self.run_loop(&others);
        // The others drained (or the wait is over): they end now.
        self.release.store(true, Ordering::Release);
        self.others = others.join(&self.shared);
        self.finish();
        r
    }

    fn run_loop(&mut self, others: &Others) -> Result<(), Error> {
        let adj = &self.shared.adj;
        let loop_timeout = adj.loop_timeout();
        let shutdown_timeout = Duration::from_secs(adj.shutdown_timeout);
        let mut next_admission_report = Instant::now() + ADMISSION_REPORT;
        let mut next_slow_check = Instant::now() + Duration::from_secs(1);
        let slow_setting = adj.slow_request_warning;
        let mut stop_deadline: Option<Instant> = None;
        loop {
            let now = Instant::now();
            // Also while draining: logrotate does not know we are stopping,
            // and the requests still running log to the file it moved.
            if self.watch_signals && sys::signals::take_hangup() {
                if let Some(log) = &self.shared.access_log {
                    crate::log_info!("SIGHUP: reopening the access log");
                    log.reopen();
                }
            }
            if stop_deadline.is_none() {
                let signalled = self.watch_signals && sys::signals::take().is_some();
                if self.watch_signals && sys::signals::take_handover() {
                    on_handover_signal(self.handle());
                }
                let handed_over = self.shared.handover.handed_over();
                if signalled || self.stop.load(Ordering::SeqCst) || handed_over {
                    if handed_over {
                        crate::log_info!("Handed over: no longer accepting connections");
                    } else {
                        crate::log_info!("Shutting down: no longer accepting connections");
                    }
                    self.shared.handover.stop_accepting();
                    // Between rounds: nothing is accepted (or handed to
                    // another loop) from here on (loops.rs).
                    self.shared.begin_draining();
                    // Upgraded connections whose protocol can say so are
                    // told (a WebSocket's close with 1001).
                    self.shared.upgrades.begin_stop();
                    self.first.begin_shutdown();
                    for home in &self.shared.loops[1..] {
                        home.notifier.wake();
                    }
                    stop_deadline = Some(now + shutdown_timeout);
                }
            }
            if let Some(deadline) = stop_deadline {
                let upgraded = self.shared.upgrades.live();
                if !self.first.map.any_busy() && upgraded == 0 && others.all_ended() {
                    break;
                }
                if now >= deadline {
                    crate::log_warning!(
                        "shutdown_timeout reached with requests still running or {upgraded} upgraded connections open; closing their connections"
                    );
                    break;
                }
            }
            let timeout = if stop_deadline.is_some() {
                loop_timeout.min(Duration::from_millis(50))
            } else {
                loop_timeout
            };
            self.first
                .round(&self.shared, &self.pool, timeout)
                .map_err(|e| Error::io("the poller failed", e))?;
            let now = Instant::now();
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
        }
        Ok(())
    }

    /// One line for what admission at `connection_limit` did since the last
    /// report (in every loop), if anything.
    fn report_admissions(&mut self) {
        let mut a = self.first.map.take_admissions();
        for home in &self.shared.loops[1..] {
            let b = home.take_admissions();
            a.evicted[0] += b.evicted[0];
            a.evicted[1] += b.evicted[1];
            a.refused += b.refused;
        }
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
        self.pool.shutdown(true, Duration::from_secs(1));
        let now = Instant::now();
        self.first.map.close_all(now);
        for io in &mut self.others {
            io.map.close_all(now);
        }
        // Connections that switched protocols and are still open end now
        // (their handlers see the end of the stream).
        let upgraded = self.shared.upgrades.shut_down_all();
        if upgraded > 0 {
            crate::log_info!("Closed {upgraded} upgraded connections");
        }
        // A handover giving up (its child being stopped).
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
