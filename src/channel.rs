//! One client connection in the loop: waitress's `HTTPChannel`, as the
//! driver of the connection core. [`ChannelDispatcher`] owns the
//! connection's [`Conn`] (its whole HTTP/1 state) and its [`Link`] (what a
//! worker shares with the loop), reads the socket, feeds the core and does
//! what it answers: hands requests to the pool, sends `100 Continue`,
//! answers errors, flushes what a worker left, closes (a staged close after
//! an error answer), and takes the socket out of the loop when the protocol
//! switches.
//!
//! It is the only code that closes a connection's socket, and only through
//! the [`Link`], whose descriptor lives as long as anyone holds it: a
//! worker still holding the connection keeps it open (CVE-2022-31015).
//! Before every decision it catches up with the worker's release
//! ([`Link::take_release`]); see `link.rs` for the hand-off.
//!
//! A reset or half-open connection is closed by the I/O thread as soon as
//! it is noticed (CVE-2024-49769), never left spinning.
//!
//! Thread: the I/O thread (the dispatcher map calls it).

use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::answer::{answer, as_seen, About, Why};
use crate::conn::{Action, Answer, AnswerKind, Conn, Now, Received};
use crate::dispatcher::{Cx, Dispatcher, Progress, Role, Token};
use crate::error::HttpError;
use crate::home::Home;
use crate::link::{HandOver, Job, Link};
use crate::output::{log_socket_error, LoopOut, Wire};
use crate::pool::ThreadedTaskDispatcher;
use crate::request::ConnEnviron;
use crate::shared::ServerShared;
use crate::sys;
use crate::writer::Output;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// True, at most once a second, when a rate-limited line may be logged.
fn log_now(last: &AtomicU64, now_ms: u64) -> bool {
    let stamp = now_ms.saturating_add(1);
    let prev = last.load(Ordering::Relaxed);
    (prev == 0 || stamp.saturating_sub(prev) >= 1000)
        && last
            .compare_exchange(prev, stamp, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// What the loop lends every handler (the map's `E`).
#[derive(Debug)]
pub(crate) struct LoopEnv {
    /// Jobs whose connections the loop handed over this round: the loop
    /// gives them to the pool together after the round, with one lock of
    /// the pool's queue and at most one wake-up.
    pub staged: Vec<Job>,
    /// The loop's one read buffer, lent to whichever channel reads (so
    /// that an idle connection holds none). Everything read is parsed (and
    /// what a request keeps copied) before the next channel reads.
    pub read_buf: Vec<u8>,
    /// The pool, for `max_queue_depth`.
    pub pool: ThreadedTaskDispatcher<Job>,
}

impl LoopEnv {
    pub(crate) fn new(pool: ThreadedTaskDispatcher<Job>) -> LoopEnv {
        LoopEnv {
            staged: Vec::new(),
            read_buf: Vec::new(),
            pool,
        }
    }
}

/// The loop's side of one connection.
#[derive(Debug)]
pub(crate) struct ChannelDispatcher {
    link: Arc<Link>,
    conn: Conn,
    /// Counted in its loop's `receive_clocks`.
    clocked: bool,
    /// The map registered it (and the statistics count it open until it
    /// is dropped; a refused connection never is).
    registered: bool,
    /// Close at the next look (end of stream, a failed read, idle too
    /// long, a stuck parser).
    fatal: bool,
}

impl Drop for ChannelDispatcher {
    fn drop(&mut self) {
        if self.registered {
            self.link.server.counters.connection_closed();
        }
        if self.clocked {
            self.link
                .home
                .receive_clocks
                .fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl ChannelDispatcher {
    /// `proxied`: the peer is a trusted proxy that begins the connection
    /// with a PROXY protocol header.
    pub(crate) fn new(
        sock: OwnedFd,
        server: Arc<ServerShared>,
        home: Arc<Home>,
        origin: ConnEnviron,
        proxied: bool,
    ) -> ChannelDispatcher {
        let mut conn = Conn::new(server.parser_config);
        if proxied {
            conn.expect_proxy_header();
        }
        ChannelDispatcher {
            link: Arc::new(Link::new(sock, server, home, origin)),
            conn,
            clocked: false,
            registered: false,
            fatal: false,
        }
    }

    fn now(&self, cx: &Cx<'_, LoopEnv>) -> Now {
        Now {
            at: cx.now,
            ms: self.link.server.ms_at(cx.now),
        }
    }

    /// Catches up with a worker's release, without doing what it leads to
    /// (the next evaluation does: [`Self::catch_up`]).
    fn take_release(&mut self) {
        if self.conn.busy() {
            if let Some(how) = self.link.take_release() {
                // A worker that saw the server's stop closes the
                // connection; with several loops this one may not have
                // begun its own stop yet (each begins at its next round).
                // The core learns of it first, so that the close is staged
                // (a FIN, then what the client sends meanwhile is read and
                // dropped) and not a reset of the request the client sent
                // after a keep-alive response.
                if !self.conn.draining() && self.link.server.is_draining() {
                    self.conn.begin_shutdown();
                }
                self.conn.released(how);
            }
        }
    }

    /// Catches up with a worker's release and does what it leads to (a
    /// deferred answer or `100 Continue`, the requests held behind a
    /// proposal to switch that did not).
    fn catch_up(&mut self, cx: &mut Cx<'_, LoopEnv>) {
        self.take_release();
        self.end_push(cx);
        let now = self.now(cx);
        let mut nothing: &[u8] = &[];
        while let Some(action) = self.conn.next(&mut nothing, now) {
            self.perform(action, cx);
        }
        self.settle(now);
    }

    /// A pushed body whose senders are done and whose bytes are all sent
    /// ends its response: the requests that waited behind it go to the
    /// pool, or the connection closes.
    fn end_push(&mut self, cx: &mut Cx<'_, LoopEnv>) {
        if !self.conn.pushing() || self.link.pending() > 0 {
            return;
        }
        let Some((push, close_after)) = self.link.push() else {
            // Not reached: a release with PUSH leaves its body first.
            self.fatal = true;
            return;
        };
        if !push.done() {
            return;
        }
        drop(self.link.take_push());
        let close = close_after || push.ends_connection() || self.link.gone();
        if self.conn.push_ended(close) {
            match self.link.resume() {
                Some(job) => cx.env.staged.push(job),
                // Not reached: the core counted requests the pipeline holds.
                None => self.fatal = true,
            }
        }
    }

    /// Keeps the server's count of running deadline clocks (the loop sweeps
    /// for deadlines only while there are some).
    fn count_clock(&mut self) {
        let running = self.conn.clock_running();
        if running != self.clocked {
            self.clocked = running;
            let clocks = &self.link.home.receive_clocks;
            if running {
                clocks.fetch_add(1, Ordering::Relaxed);
            } else {
                clocks.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// With the output flushed, a closing connection stages its close: the
    /// write side is shut and what the client still sends is read and
    /// dropped for a while (RFC 9112 §9.6), so that a reset does not
    /// destroy the answer on the client's side.
    fn settle(&mut self, now: Now) {
        if self.conn.busy() || self.link.pending() > 0 || !self.conn.closing() {
            return;
        }
        if self.conn.flushed(now) {
            if let Err(e) = sys::shutdown_write(self.link.fd()) {
                log_socket_error(&*self.link, &e);
                self.fatal = true;
            }
        }
        self.count_clock();
    }

    fn perform(&mut self, action: Action, cx: &mut Cx<'_, LoopEnv>) {
        match action {
            Action::Dispatch(req) => self.dispatch(req, cx),
            Action::Continue => {
                // A client that is gone needs no 100; the loop closes it.
                let _ = LoopOut(&*self.link).write_soon(&[CONTINUE]);
            }
            Action::Answer(a) => self.send_answer(a),
            Action::Close => {
                crate::log_error!("request parser made no progress; closing the connection");
                self.fatal = true;
            }
            Action::Proxied(header) => {
                if let Some(client) = header.client() {
                    self.set_client(client);
                }
            }
            Action::BadProxyHeader(e) => {
                self.link.server.counters.proxy_header_error();
                let server = &self.link.server;
                if log_now(&server.last_proxy_warning, server.ms_at(cx.now)) {
                    crate::log_warning!(
                        "Closing a connection from {}: {e} (proxy_protocol; at most one such line a second)",
                        self.link.origin.remote_addr
                    );
                }
                self.fatal = true;
            }
        }
    }

    /// The client a PROXY protocol header named is the connection's client
    /// (its environ is still the loop's alone: no request was handed over).
    fn set_client(&mut self, client: std::net::SocketAddr) {
        match Arc::get_mut(&mut self.link) {
            Some(link) => {
                link.origin.remote_addr = Arc::from(client.ip().to_string());
                link.origin.remote_port = Some(client.port());
            }
            None => {
                crate::log_error!(
                    "a PROXY protocol header after the connection was shared; closing it"
                );
                self.fatal = true;
            }
        }
    }

    /// Hands a complete request to the pool: to a new job when the loop
    /// holds the connection, else behind the request the worker runs.
    fn dispatch(&mut self, req: Received, cx: &mut Cx<'_, LoopEnv>) {
        let server = &self.link.server;
        server.counters.request(false);
        if self.link.gone() && !self.link.running() {
            // A send of the loop's failed while the request was parsed: it
            // cannot be answered.
            self.conn.released(crate::conn::Released {
                close: true,
                ..Default::default()
            });
            return;
        }
        let first = self.conn.owed() == 1;
        let depth = server.adj.max_queue_depth;
        if first && depth > 0 && cx.env.pool.queued() + cx.env.staged.len() >= depth {
            // Too many wait for a worker already: answered here, without
            // the pool or the application.
            let err = HttpError::service_unavailable(format!(
                "{depth} or more requests are waiting for a worker (max_queue_depth)."
            ));
            let answer = self.conn.shed(req, err);
            self.send_answer(answer);
            return;
        }
        match self.link.hand_over(req, first) {
            HandOver::Stage(job) => cx.env.staged.push(job),
            HandOver::Queued => {}
            HandOver::Bounced(req, how) => {
                // The worker released the connection just before: the loop
                // holds it again.
                self.conn.released(how);
                if self.conn.redispatch() {
                    match self.link.hand_over(req, true) {
                        HandOver::Stage(job) => cx.env.staged.push(job),
                        _ => self.fatal = true,
                    }
                }
            }
            HandOver::Dropped => self.conn.stop_reading(),
        }
    }

    /// The server's own answer, written by the loop (which holds the
    /// output: the core answers only when nothing is owed).
    fn send_answer(&mut self, a: Answer) {
        let link = &self.link;
        let server = &link.server;
        let why = match a.kind {
            AnswerKind::ParseError => {
                server.counters.request(true);
                Why::ParseError
            }
            AnswerKind::TimedOut => Why::TimedOut,
            AnswerKind::Shed => Why::Shed,
        };
        // The client the application would have seen, when the head was
        // parsed (a shed request); else the socket's peer.
        let seen = a.head.map(|head| as_seen(server, link, *head));
        let about = match &seen {
            Some(req) => About::Request(req),
            None => About::Peer(&link.origin.remote_addr),
        };
        let out = LoopOut(&**link);
        answer(
            &out,
            server.answering(),
            why,
            &a.error,
            a.version,
            a.head_only,
            about,
            a.at,
        );
    }

    /// One `recv` into `buf`, and what it means for the loop.
    fn read_into(&mut self, buf: &mut [u8], cx: &mut Cx<'_, LoopEnv>) -> Progress {
        let full = buf.len();
        let n = match sys::recv(self.link.fd(), buf) {
            Ok(0) => return Progress::Close,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Drained,
            Err(e) => {
                log_socket_error(&*self.link, &e);
                return Progress::Close;
            }
        };
        let now = self.now(cx);
        self.link.server.counters.received(n);
        if self.conn.lingering() {
            // A staged close: what the client still sends is dropped.
            if !self.conn.lingered(n as u64, now) {
                return Progress::Close;
            }
        } else {
            let mut input = buf.get(..n).unwrap_or(&[]);
            let mut active = false;
            loop {
                self.take_release();
                let Some(action) = self.conn.next(&mut input, now) else {
                    break;
                };
                active |= matches!(action, Action::Dispatch(_));
                self.perform(action, cx);
            }
            if self.conn.waits_for_release() && !self.link.ask_wake() {
                // Released meanwhile: do it now.
                self.catch_up(cx);
            }
            // Blank lines alone do not count as activity: a client that
            // only sends CRLFs idles out (RFC 9112 §2.2 asks that at least
            // one be ignored, not that they keep a connection open).
            if active || self.conn.receiving() {
                self.link.touch(now.ms);
            }
            self.settle(now);
        }
        self.count_clock();
        if self.fatal {
            Progress::Close
        } else if n < full {
            // A short read: the socket is drained (a new edge comes with
            // new data).
            Progress::Drained
        } else {
            Progress::More
        }
    }
}

impl Dispatcher<LoopEnv> for ChannelDispatcher {
    fn fd(&self) -> RawFd {
        self.link.fd()
    }

    fn role(&self) -> Role {
        Role::Channel
    }

    fn set_token(&mut self, token: Token) {
        // Called once, when the map registers the connection.
        self.link.set_token(token);
        if !self.registered {
            self.registered = true;
            self.link.server.counters.connection_opened();
        }
    }

    fn prepare(&mut self, cx: &mut Cx<'_, LoopEnv>) {
        self.catch_up(cx);
    }

    fn closing(&self) -> bool {
        if self.fatal {
            return true;
        }
        if self.conn.busy() {
            return false;
        }
        // A failed send, or the last response sent (the worker may have
        // sent its last bytes itself).
        self.link.gone() || (self.conn.closing() && self.link.pending() == 0)
    }

    fn closes_on_drop(&self) -> bool {
        // Only this dispatcher holds the link: dropping it closes the
        // descriptor. (Workers get a link only from the loop, so the count
        // cannot grow meanwhile; if it falls, the poller is told for
        // nothing.)
        Arc::strong_count(&self.link) == 1
    }

    fn detaching(&self) -> bool {
        self.conn.switching() && self.link.pending() == 0 && !self.link.gone()
    }

    fn readable(&mut self, cx: &mut Cx<'_, LoopEnv>) -> bool {
        let server = Arc::clone(&self.link.server);
        let limits = &server.limits;
        if self.link.gone() {
            return false;
        }
        if self.conn.busy() && !self.conn.wants_read(limits) {
            // A worker holds the connection. With data waiting, the loop
            // asks the worker to tell it when it releases the connection,
            // and stops watching for data. Without (level-triggered
            // pollers, which report data only while it is watched for),
            // it watches: a sequential client's next request usually comes
            // after the release, and then costs no notification.
            if self.link.wake_asked() {
                return false;
            }
            if cx.read_ready {
                if !self.link.ask_wake() {
                    // Released meanwhile: the loop holds it; look again.
                    self.catch_up(cx);
                    return self.conn.wants_read(limits) && self.link.pending() == 0;
                }
                return false;
            }
            return !cx.edge_triggered;
        }
        if !self.conn.wants_read(limits) {
            return false;
        }
        // While the loop still has output to send, it reads no more
        // requests (back-pressure on a pipelining client); a lingering
        // connection reads (and drops) whatever comes.
        self.conn.busy() || self.conn.lingering() || self.link.pending() == 0
    }

    fn writable(&mut self, _cx: &mut Cx<'_, LoopEnv>) -> bool {
        // While a worker holds the connection, it sends.
        !self.conn.busy() && self.link.pending() > 0
    }

    fn handle_read(&mut self, cx: &mut Cx<'_, LoopEnv>) -> Progress {
        let recv_bytes = self.link.server.adj.recv_bytes.max(1);
        // Borrowed out of the environment for this call (no copy), so that
        // the environment can take staged requests while the bytes are
        // parsed.
        let mut read_buf = std::mem::take(&mut cx.env.read_buf);
        if read_buf.len() < recv_bytes {
            read_buf.resize(recv_bytes, 0);
        }
        let progress = match read_buf.get_mut(..recv_bytes) {
            Some(buf) => self.read_into(buf, cx),
            None => Progress::Close,
        };
        cx.env.read_buf = read_buf;
        progress
    }

    fn handle_write(&mut self, cx: &mut Cx<'_, LoopEnv>) -> Progress {
        if self.conn.busy() {
            return Progress::Done;
        }
        let flushed = self.link.out().flush(&*self.link);
        match flushed {
            Ok(blocked) => {
                if self.conn.pushing() {
                    // Room for the senders, or the end of the body.
                    if self.link.pending() <= self.link.server.adj.outbuf_high_watermark {
                        if let Some((push, _)) = self.link.push() {
                            push.room();
                        }
                    }
                    self.end_push(cx);
                }
                self.settle(self.now(cx));
                if blocked {
                    Progress::Drained
                } else {
                    Progress::Done
                }
            }
            Err(e) => {
                log_socket_error(&*self.link, &e);
                self.link.mark_broken();
                Progress::Close
            }
        }
    }

    fn handle_close(&mut self, _cx: &mut Cx<'_, LoopEnv>) {
        // A worker that holds the connection is told (and woken, if it waits
        // for the socket); the descriptor closes when it lets go. Otherwise
        // the loop holds the output and frees it now (a spilled file too).
        if self.link.running() {
            self.link.abort();
        } else {
            self.link.out().clear(&*self.link);
        }
        // A switch that did not happen: the handler's thread sees its
        // hand-off dropped and ends.
        drop(self.link.take_switch());
        // A pushed body's senders are told the client is gone.
        if let Some(push) = self.link.take_push() {
            push.close();
        }
    }

    fn handle_detach(self: Box<Self>, _cx: &mut Cx<'_, LoopEnv>) {
        let mut this = self;
        let Some(handoff) = this.link.take_switch() else {
            return;
        };
        let leftover = this.conn.take_held();
        // A TCP listener gives its connections a server port; a unix one
        // does not.
        let tcp = this.link.origin.server_port.is_some();
        match sys::dup_blocking(this.link.fd()) {
            Ok(fd) => handoff.deliver(fd, leftover, tcp),
            Err(e) => {
                crate::log_error!("could not hand an upgraded connection over: {e}");
            }
        }
    }

    fn maintenance(&mut self, now: std::time::Instant) -> bool {
        self.take_release();
        let server = &self.link.server;
        let timeout_ms = server.adj.channel_timeout.saturating_mul(1000);
        let idle_ms = server.ms_at(now).saturating_sub(self.link.last_activity());
        if self.conn.idles_out() && idle_ms > timeout_ms {
            self.fatal = true;
            server.counters.closed_idle();
        }
        // Evaluated now: to close, or to do what a release left to do.
        true
    }

    fn eviction_rank(&mut self) -> Option<(u8, u64)> {
        self.take_release();
        if self.link.pending() > 0 || self.link.gone() || self.fatal {
            return None;
        }
        self.conn.eviction_rank(self.link.last_activity())
    }

    fn evicted(&mut self) {
        self.link.server.counters.evicted();
    }

    fn refuse(&mut self) {
        // A fresh socket takes these few bytes at once (if not, the client
        // sees the close alone). Then the FIN, and what the client already
        // sent is read and dropped, so that closing does not reset the
        // connection (a reset can destroy the 503 before it is read).
        let link = &self.link;
        let server = &link.server;
        let err = HttpError::service_unavailable("The server is at its connection limit.");
        answer(
            &LoopOut(&**link),
            server.answering(),
            Why::Refused,
            &err,
            crate::parser::Version::Http11,
            false,
            About::Peer(&link.origin.remote_addr),
            std::time::Instant::now(),
        );
        let fd = link.fd();
        let _ = sys::shutdown_write(fd);
        let mut sink = [0u8; 1024];
        for _ in 0..16 {
            match sys::recv(fd, &mut sink) {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
    }

    fn receive_deadlines(&mut self, now: std::time::Instant) -> bool {
        self.take_release();
        let server = &self.link.server;
        let now = Now {
            at: now,
            ms: server.ms_at(now),
        };
        // The loop's own output still going out stops the clock too.
        let answering = !self.conn.busy() && self.link.pending() > 0;
        let lingering = self.conn.lingering();
        let fired = match self.conn.tick(now, &server.limits, answering) {
            Some(Action::Answer(a)) => {
                self.send_answer(a);
                true
            }
            Some(other) => {
                // `tick` answers nothing else; handled all the same.
                drop(other);
                true
            }
            None => lingering && !self.conn.lingering(),
        };
        self.count_clock();
        fired
    }

    fn begin_shutdown(&mut self) -> bool {
        self.take_release();
        self.conn.begin_shutdown();
        // Told when the running response is done, to close at once; a
        // worker that released the connection since the look above is
        // caught up with now (no notification would come for it).
        if self.conn.busy() && !self.link.ask_wake() {
            self.take_release();
        }
        true
    }

    fn busy(&self) -> bool {
        // A staged close is waited for too (bounded: LINGER_QUIET_MS of
        // quiet, LINGER_MS at most), so that a stop resets no connection;
        // so is a close not yet begun: begin_shutdown leaves idle
        // connections closing, and until the map evaluates them they have
        // not shut their write side (closed now, they would be reset).
        // And a release the loop has not caught up with: the worker let go
        // after begin_shutdown asked it to say so, and its notification
        // is on its way.
        self.link.running()
            || self.conn.busy()
            || (self.link.pending() > 0 && !self.link.gone())
            || self.conn.switching()
            || self.conn.pushing()
            || self.conn.lingering()
            || (self.conn.closing() && !self.fatal && !self.link.gone())
    }
}
