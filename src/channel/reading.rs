//! The I/O thread's side of a channel: reading, parsing, queueing
//! requests, flushing what the worker left, and closing. Runs on the I/O
//! thread only (the dispatcher map calls it).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::stream::{Fed, Phase, RequestStream, StreamEvent};
use super::{is_disconnect, Channel, Continue, Immediate, Life, ReadSide, Sink};
use crate::dispatcher::{Cx, Dispatcher, Progress, Role, Token};
use crate::error::HttpError;
use crate::parser::{Parsed, Version};
use crate::request::ConnEnviron;
use crate::server::ServerShared;
use crate::sys;
use crate::writer::write_error;

/// The I/O thread's side of a channel: the socket (closed when this is
/// dropped) and the parser of the request being received. Reads go into the
/// loop's shared buffer: everything read is parsed (and what a request keeps
/// copied) before the next channel reads.
#[derive(Debug)]
pub(crate) struct ChannelDispatcher {
    chan: Arc<Channel>,
    sock: OwnedFd,
    stream: RequestStream,
    clock: Clock,
    /// A request of this connection was received in full (it is a
    /// keep-alive connection between requests when idle).
    served: bool,
    /// The map registered it (and the statistics count it open until it
    /// is dropped; a refused connection never is).
    registered: bool,
}

impl Drop for ChannelDispatcher {
    fn drop(&mut self) {
        if self.registered {
            self.chan.server.counters.connection_closed();
        }
    }
}

/// The answer to a connection for which no room could be made at
/// `connection_limit`.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 63\r\n\r\nService Unavailable\r\n\r\nThe server is at its connection limit.\r\n";

/// The length of [`REFUSED`]'s body.
const REFUSED_BODY_LEN: u64 = 63;

/// The deadline clock of the request being received (times in
/// milliseconds since the server's epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    /// Nothing of a request is being received.
    Idle,
    /// A head began arriving at `since` (`request_head_timeout`).
    Head { since: u64 },
    /// A body began at `since`; `bytes` of it have arrived
    /// (`request_body_timeout` + `min_request_body_rate`).
    Body { since: u64, bytes: u64 },
}

impl ChannelDispatcher {
    pub(crate) fn new(
        sock: OwnedFd,
        server: Arc<ServerShared>,
        origin: ConnEnviron,
    ) -> ChannelDispatcher {
        let stream = RequestStream::new(server.parser_config);
        let chan = Arc::new(Channel::new(sock.as_raw_fd(), server, origin));
        ChannelDispatcher {
            chan,
            sock,
            stream,
            clock: Clock::Idle,
            served: false,
            registered: false,
        }
    }

    /// Feeds received bytes to the parser and queues complete requests
    /// (waitress's `received`).
    fn received(&mut self, data: &[u8], cx: &mut Cx<'_>) {
        let chan = &self.chan;
        let mut rs = chan.reqs();
        // CVE-2024-49768: once the connection is to be closed, or an error
        // response is queued, nothing more is parsed.
        if chan.life.get() >= Life::CloseWhenFlushed || rs.read == ReadSide::Done {
            return;
        }
        let mut completed = false;
        let max_queue_depth = chan.server.adj.max_queue_depth;
        let fed = self.stream.feed(data, |event| match event {
            // Shed: what follows the 503 is not parsed further.
            _ if rs.read == ReadSide::Done => {}
            StreamEvent::ExpectsContinue => {
                if rs.cont != Continue::Sent {
                    if rs.requests.is_empty() {
                        chan.send_continue(&mut rs);
                    } else {
                        rs.cont = Continue::Deferred;
                    }
                }
            }
            StreamEvent::Request(parsed) => {
                completed = true;
                chan.server
                    .counters
                    .request(matches!(parsed, Parsed::Error(..)));
                rs.cont = Continue::NotSent;
                if rs.requests.is_empty()
                    && max_queue_depth > 0
                    && chan.server.pool.queued() + cx.staged_len() >= max_queue_depth
                {
                    if let Parsed::Request(head, _) = &parsed {
                        // Too many wait for a worker already: answered here,
                        // without the pool or the application.
                        rs.read = ReadSide::Done;
                        chan.close_after_output(&mut rs);
                        let counters = &chan.server.counters;
                        counters.shed();
                        counters.response(503);
                        let err = HttpError::service_unavailable(format!(
                            "{max_queue_depth} or more requests are waiting for a worker (max_queue_depth)."
                        ));
                        let bytes = write_error(
                            &Immediate(chan),
                            chan.server.adj.ident.as_deref(),
                            &err,
                            head.version(),
                            head.method() == "HEAD",
                        );
                        if let Some(log) = &chan.server.access_log {
                            let now = std::time::Instant::now();
                            crate::task::log_shed(log, &chan.origin.remote_addr, head, bytes, now);
                        }
                        return;
                    }
                }
                rs.requests.push_back(Some((parsed, Instant::now())));
                if rs.requests.len() == 1 {
                    rs.queued_ms = chan.server.now_ms();
                    // Handed to the pool at the end of the loop round, with
                    // the round's other requests.
                    cx.stage(Arc::clone(chan));
                }
            }
        });
        match fed {
            Fed::More => {}
            Fed::Stop => rs.read = ReadSide::Done,
            Fed::Stuck => {
                crate::log_error!("request parser made no progress; closing the connection");
                chan.life.advance(Life::Closing);
            }
        }
        drop(rs);
        self.served |= completed;
        self.run_clock(data.len() as u64, completed);
    }

    /// Starts, keeps or stops the deadline clock after `received` bytes
    /// were parsed (`completed`: a request ended among them, so a head now
    /// in progress is a new one). Dribbling never moves a clock back.
    fn run_clock(&mut self, received: u64, completed: bool) {
        let previous = if completed { Clock::Idle } else { self.clock };
        let now = self.chan.server.now_ms();
        let next = match (self.stream.phase(), previous) {
            (Phase::Idle, _) => Clock::Idle,
            (Phase::Head, Clock::Head { since }) => Clock::Head { since },
            (Phase::Head, _) => Clock::Head { since: now },
            (Phase::Body, Clock::Body { since, bytes }) => Clock::Body {
                since,
                bytes: bytes.saturating_add(received),
            },
            (Phase::Body, _) => Clock::Body {
                since: now,
                bytes: 0,
            },
        };
        self.set_clock(next);
    }

    /// Changes the clock, keeping the server's count of running clocks (the
    /// loop sweeps for deadlines only while there are some).
    fn set_clock(&mut self, next: Clock) {
        let running = &self.chan.server.receive_clocks;
        match (self.clock == Clock::Idle, next == Clock::Idle) {
            (true, false) => {
                running.fetch_add(1, Ordering::Relaxed);
            }
            (false, true) => {
                running.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        self.clock = next;
    }

    /// The request being received is out of time: answer `408` and close
    /// once it is sent. Only while no request of this connection is queued
    /// or running (so the I/O thread writes to empty buffers and never
    /// waits), and only once.
    fn time_out(&mut self, detail: String) -> bool {
        let chan = &self.chan;
        {
            let mut rs = chan.reqs();
            if !rs.requests.is_empty() || chan.life.get() != Life::Open {
                return false;
            }
            rs.read = ReadSide::Done;
            chan.close_after_output(&mut rs);
        }
        let err = HttpError::new(408, detail);
        chan.server.counters.timed_out();
        chan.server.counters.response(408);
        let bytes = write_error(
            &Immediate(chan),
            chan.server.adj.ident.as_deref(),
            &err,
            Version::Http11,
            false,
        );
        if let Some(log) = &chan.server.access_log {
            let now = std::time::Instant::now();
            crate::task::log_line(
                log,
                &chan.origin.remote_addr,
                None,
                &[],
                &[],
                Some(408),
                bytes,
                now,
            );
        }
        self.stream.abandon();
        self.set_clock(Clock::Idle);
        true
    }

    /// One `recv` into `buf`, and what it means for the loop.
    fn read_into(&mut self, buf: &mut [u8], cx: &mut Cx<'_>) -> Progress {
        let recv_bytes = buf.len();
        match sys::recv(self.sock.as_raw_fd(), buf) {
            Ok(0) => Progress::Close,
            Ok(n) => {
                {
                    let mut rs = self.chan.reqs();
                    if rs.read == ReadSide::Blocked {
                        rs.read = ReadSide::Reading;
                    }
                }
                self.chan.touch();
                self.chan.server.counters.received(n);
                self.received(&buf[..n], cx);
                if self.chan.life.get() >= Life::Closing {
                    Progress::Close
                } else if n < recv_bytes {
                    // A short read: the socket is drained (a new edge comes
                    // with new data).
                    Progress::Drained
                } else {
                    Progress::More
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Progress::Drained,
            Err(e) => {
                if !is_disconnect(&e) && self.chan.server.adj.log_socket_errors {
                    crate::log_warning!("Socket error: {e}");
                }
                Progress::Close
            }
        }
    }
}

impl Dispatcher for ChannelDispatcher {
    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn role(&self) -> Role {
        Role::Channel
    }

    fn set_token(&mut self, token: Token) {
        // Called once, when the map registers the connection.
        self.chan.token.store(token.as_u64(), Ordering::Relaxed);
        if !self.registered {
            self.registered = true;
            self.chan.server.counters.connection_opened();
        }
    }

    fn closing(&self) -> bool {
        let chan = &self.chan;
        match chan.life.get() {
            Life::Open | Life::Draining => false,
            // Flushed and due to close: no need to wait for writability
            // (the worker may have sent the last bytes itself).
            Life::CloseWhenFlushed => chan.out_pending.load(Ordering::Acquire) == 0,
            Life::Closing | Life::Closed => true,
        }
    }

    fn readable(&mut self, _cx: &mut Cx<'_>) -> bool {
        let chan = &self.chan;
        let life = chan.life.get();
        if life >= Life::Closing {
            return false;
        }
        let mut rs = chan.reqs();
        let busy = match rs.read {
            ReadSide::Done => return false,
            ReadSide::Reading | ReadSide::Blocked => {
                life != Life::Open
                    || rs.requests.len() > chan.server.adj.channel_request_lookahead
                    || chan.out_pending.load(Ordering::Acquire) > 0
            }
        };
        rs.read = if busy {
            ReadSide::Blocked
        } else {
            ReadSide::Reading
        };
        !busy
    }

    fn writable(&mut self, _cx: &mut Cx<'_>) -> bool {
        let chan = &self.chan;
        if chan.life.get() >= Life::CloseWhenFlushed {
            return true;
        }
        let pending = chan.out_pending.load(Ordering::Acquire);
        if pending == 0 || pending >= chan.server.adj.send_bytes as u64 {
            return pending > 0;
        }
        // Fewer than `send_bytes` while a request runs, and no worker
        // waiting on the high watermark: `handle_write` would not send
        // them, so asking for writability would only spin the loop. The
        // worker wakes the loop when that changes (it finishes, buffers
        // `send_bytes`, or waits).
        let running = !chan.reqs().requests.is_empty();
        !running || chan.out().waiters > 0
    }

    fn handle_read(&mut self, cx: &mut Cx<'_>) -> Progress {
        let recv_bytes = self.chan.server.adj.recv_bytes.max(1);
        // Borrowed out of the context for this call (no copy), so that the
        // context can take staged requests while the bytes are parsed.
        let mut read_buf = std::mem::take(cx.read_buf());
        if read_buf.len() < recv_bytes {
            read_buf.resize(recv_bytes, 0);
        }
        let progress = self.read_into(&mut read_buf[..recv_bytes], cx);
        *cx.read_buf() = read_buf;
        progress
    }

    fn handle_write(&mut self, _cx: &mut Cx<'_>) -> Progress {
        let chan = &self.chan;
        let adj = &chan.server.adj;
        let running = !chan.reqs().requests.is_empty();
        let mut blocked = false;
        {
            let mut out = chan.out();
            // While a request runs, small amounts wait for the worker's own
            // flush; but a worker waiting for the output to drain below the
            // high watermark is always served (`send_bytes` may be set
            // above the watermark).
            if out.total > 0 && (!running || out.total >= adj.send_bytes as u64 || out.waiters > 0)
            {
                match chan.flush_some(&mut out) {
                    Ok(b) => blocked = b,
                    Err(e) => {
                        chan.socket_error(&mut out, &e);
                        chan.out_cv.notify_all();
                        return Progress::Close;
                    }
                }
                if out.total <= adj.outbuf_high_watermark && out.waiters > 0 {
                    chan.out_cv.notify_all();
                }
            }
        }
        if chan.life.get() >= Life::CloseWhenFlushed
            && chan.out_pending.load(Ordering::Acquire) == 0
        {
            chan.life.advance(Life::Closing);
            return Progress::Close;
        }
        if blocked {
            Progress::Drained
        } else {
            Progress::Done
        }
    }

    fn handle_close(&mut self, _cx: &mut Cx<'_>) {
        self.set_clock(Clock::Idle);
        let chan = &self.chan;
        {
            let mut out = chan.out();
            out.bufs.clear();
            out.total = 0;
            out.sink = Sink::Closed;
            chan.out_pending.store(0, Ordering::Release);
            chan.life.advance(Life::Closed);
            chan.out_cv.notify_all();
        }
        // The socket itself is closed when this dispatcher is dropped,
        // right after; no worker can use it: every send checks the sink
        // under the output lock, and it is `Closed` now.
    }

    fn maintenance(&mut self, now: Instant) -> bool {
        let chan = &self.chan;
        let timeout_ms = chan.server.adj.channel_timeout.saturating_mul(1000);
        let now_ms = chan.server.ms_at(now);
        let idle = now_ms.saturating_sub(chan.last_activity.load(Ordering::Relaxed)) > timeout_ms;
        if idle && chan.reqs().requests.is_empty() {
            chan.life.advance(Life::Closing);
            chan.server.counters.closed_idle();
            return true;
        }
        false
    }

    fn begin_shutdown(&mut self) -> bool {
        let chan = &self.chan;
        chan.life.advance(Life::Draining);
        let mut rs = chan.reqs();
        if rs.requests.is_empty() {
            // Idle (or between requests): close once what is queued is sent.
            chan.close_after_output(&mut rs);
        }
        true
    }

    fn eviction_rank(&self) -> Option<(u8, u64)> {
        let chan = &self.chan;
        if chan.life.get() != Life::Open || chan.out_pending.load(Ordering::Acquire) > 0 {
            return None;
        }
        // `try_lock`: a worker holding the queue has work here.
        let queued = match chan.reqs.try_lock() {
            Ok(rs) => !rs.requests.is_empty(),
            Err(_) => true,
        };
        if queued {
            return None;
        }
        match self.clock {
            // Idle between requests: oldest activity first.
            Clock::Idle if self.served => Some((0, chan.last_activity.load(Ordering::Relaxed))),
            // Connected and sent nothing yet: as a head that has not begun,
            // ranked by when it connected (so the newest connection, which
            // is most likely a client about to send, goes last).
            Clock::Idle => Some((1, chan.last_activity.load(Ordering::Relaxed))),
            // Still receiving a head: the longest at it first.
            Clock::Head { since } => Some((1, since)),
            // A body is on its way: its request is as good as queued.
            Clock::Body { .. } => None,
        }
    }

    fn evicted(&mut self) {
        self.chan.server.counters.evicted();
    }

    fn refuse(&mut self) {
        // A fresh socket takes these few bytes at once (if not, the client
        // sees the close alone). Then the FIN, and what the client already
        // sent is read and dropped, so that closing does not reset the
        // connection (a reset can destroy the 503 before it is read).
        let fd = self.sock.as_raw_fd();
        let counters = &self.chan.server.counters;
        counters.refused();
        counters.response(503);
        if let Ok(n) = sys::send(fd, REFUSED) {
            counters.sent(n);
        }
        if let Some(log) = &self.chan.server.access_log {
            let now = std::time::Instant::now();
            crate::task::log_line(
                log,
                &self.chan.origin.remote_addr,
                None,
                &[],
                &[],
                Some(503),
                REFUSED_BODY_LEN,
                now,
            );
        }
        let _ = sys::shutdown_write(fd);
        let mut sink = [0u8; 1024];
        for _ in 0..16 {
            match sys::recv(fd, &mut sink) {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
    }

    fn receive_deadlines(&mut self, now: Instant) -> bool {
        let chan = &self.chan;
        let adj = &chan.server.adj;
        let (since, allowed_ms, head) = match self.clock {
            Clock::Idle => return false,
            Clock::Head { since } if adj.request_head_timeout > 0 => {
                (since, adj.request_head_timeout.saturating_mul(1000), true)
            }
            Clock::Body { since, bytes }
                if adj.request_body_timeout > 0 && adj.min_request_body_rate > 0 =>
            {
                // mod_reqtimeout's rule: the grace, plus a second for every
                // `min_request_body_rate` bytes received.
                let earned = bytes.saturating_mul(1000) / adj.min_request_body_rate;
                (
                    since,
                    adj.request_body_timeout
                        .saturating_mul(1000)
                        .saturating_add(earned),
                    false,
                )
            }
            Clock::Head { .. } | Clock::Body { .. } => return false,
        };
        let now_ms = chan.server.ms_at(now);
        // While earlier requests of this connection are being answered
        // (pipelining), the clock does not run: it starts again from the
        // moment they are done.
        let answering =
            !chan.reqs().requests.is_empty() || chan.out_pending.load(Ordering::Acquire) > 0;
        if answering {
            self.clock = match self.clock {
                Clock::Head { .. } => Clock::Head { since: now_ms },
                Clock::Body { bytes, .. } => Clock::Body {
                    since: now_ms,
                    bytes,
                },
                Clock::Idle => Clock::Idle,
            };
            return false;
        }
        if now_ms.saturating_sub(since) <= allowed_ms {
            return false;
        }
        let detail = if head {
            format!(
                "The request head was not complete within {} seconds (request_head_timeout).",
                adj.request_head_timeout
            )
        } else {
            format!(
                "The request body arrived slower than {} bytes per second (request_body_timeout, min_request_body_rate).",
                adj.min_request_body_rate
            )
        };
        self.time_out(detail)
    }

    fn busy(&self) -> bool {
        !self.chan.reqs().requests.is_empty() || self.chan.out_pending.load(Ordering::Acquire) > 0
    }
}
