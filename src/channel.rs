//! One client connection: waitress's `HTTPChannel`.
//!
//! A channel is shared by the I/O thread and (while a request of it runs)
//! one worker thread:
//!
//! * the I/O thread reads (`recv_bytes` at a time), feeds the bytes to the
//!   request parser, queues complete requests and hands the channel to the
//!   worker pool when the first one is queued; it flushes output the worker
//!   could not send, sends `100 Continue`, and is the only thread that ever
//!   closes the socket (CVE-2022-31015);
//! * the worker runs the application for the request at the head of the
//!   queue and writes the response itself (waitress's `write_soon`: the
//!   bytes are sent at once when the socket takes them, with the head and
//!   the first body bytes in one `writev`; what does not fit is queued in
//!   the output buffers for the I/O thread), waiting when more than
//!   `outbuf_high_watermark` bytes are queued (back-pressure on the worker,
//!   never on the I/O thread).
//!
//! Two locks, always taken in this order: `reqs` (waitress's
//! `requests_lock`: the queue of parsed requests, the read side and the
//! `100 Continue` state) and `out` (waitress's `outbuf_lock`: the output
//! buffers and whether the socket may be written; its condition variable
//! is the back-pressure wait). The `out` lock is held across non-blocking
//! sends, so that the bytes of one response are never interleaved with
//! another and the socket is never used after the I/O thread closed it (it
//! marks the sink closed under the same lock before closing).
//!
//! # States
//!
//! A connection's life is one value that only moves forward ([`Life`]; a
//! `fetch_max`, so a worker and the loop racing to decide cannot undo
//! each other):
//!
//! ```text
//!   Open ──begin_shutdown──▶ Draining
//!    │                          │
//!    │ last response decided    │ idle, or its last response finished
//!    │ (Connection: close,      │
//!    │  error, 1.0, draining)   │
//!    ▼                          ▼
//!   CloseWhenFlushed ◀──────────┘     (under `reqs`: nothing more is parsed)
//!    │ output sent (by either thread)
//!    ▼
//!   Closing ◀── idle past channel_timeout, a failed send, a cancelled task
//!    │ the loop's next look
//!    ▼
//!   Closed                            (under `out`: nothing more is sent)
//! ```
//!
//! Beside it, under `reqs`, the read side ([`ReadSide`]: `Reading`,
//! `Blocked` while the loop declines to read and waits to be woken, `Done`
//! after an error response is queued) and the `100 Continue` of the request
//! being received ([`Continue`]: `NotSent`, `Deferred` behind pending
//! responses, `Sent`); under `out`, the [`Sink`] (`Open`, `Broken` after a
//! failed send, `Closed`). The loop's predicates are matches over these:
//! `closing()` is `Closing`/`Closed`, or `CloseWhenFlushed` with nothing
//! left to send; `writable()` is output pending that the loop may send
//! (not fewer than `send_bytes` bytes while a request runs, unless a worker
//! waits on the watermark) or `CloseWhenFlushed` and beyond; `readable()`
//! is `Open`, `Reading`/`Blocked`, and not busy.
//!
//! # Hand-offs between a worker and the loop
//!
//! Each is a place where one thread must wake the other; each is raced by
//! `tests/wakeups.rs` on both backends.
//!
//! * *Requests to the pool.* The loop queues a parsed request under `reqs`
//!   and stages the channel only when the queue goes from empty to one; the
//!   worker pops under `reqs` and re-queues the channel itself while
//!   requests remain. Both sides decide under the same lock, so a channel is
//!   in the pool at most once and never left with a request and no task.
//! * *Output to the loop.* A worker that leaves bytes the socket did not
//!   take notifies the loop (the notifier's token queue, then the trigger:
//!   see `trigger.rs` for why no pull is lost). `out_pending` mirrors
//!   `out.total`, stored under `out`.
//! * *Reading again ([`ReadSide::Blocked`]).* The loop declines to read
//!   while requests are queued or output is pending, and marks that under
//!   `reqs`; the worker that leaves the channel idle checks the mark under
//!   `reqs` *after* its last flush and wakes the loop. See
//!   [`Channel::service`].
//! * *Back-pressure.* A worker above the high watermark waits on `out_cv`
//!   after notifying the loop; the loop flushes whenever a worker waits,
//!   and signals under `out`, which the waiter holds until `wait` releases
//!   it, so the signal cannot fall between its check and its wait.
//! * *Closing.* The worker advances [`Life`] to `CloseWhenFlushed` (under
//!   `reqs`) before it notifies the loop; the loop moves the sink to
//!   `Closed` and the life to `Closed` under `out` before the socket is
//!   closed, and every send checks the sink under `out`.
//! * *`batching`* is written and read only by the worker running the
//!   channel (the pool's lock orders successive runs on other workers).
//!
//! As in waitress (CVE-2024-49768), once a response that closes the
//! connection has been decided, data that arrives is dropped, never parsed
//! as a new request; and a reset or half-open connection is closed by the
//! I/O thread as soon as it is noticed (CVE-2024-49769), never left
//! spinning.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::buffers::{FileBuffer, Front, OutBuffer, OverflowableBuffer};
use crate::dispatcher::Token;
use crate::parser::Parsed;
use crate::request::{ConnEnviron, DisconnectProbe};
use crate::server::ServerShared;
use crate::sys;

mod reading;
pub(crate) mod stream;
pub(crate) use reading::ChannelDispatcher;

/// The socket went away (or the channel is closing): the response cannot be
/// delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientDisconnected;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Pipelined requests answered in one run of a worker before the channel
/// goes back to the end of the pool's queue (waitress's fairness), and the
/// response bytes buffered before they are sent anyway.
const BATCH_REQUESTS: usize = 16;
const BATCH_BYTES: u64 = 64 * 1024;

/// A drained memory buffer larger than this is freed rather than kept for
/// the connection's next response (an idle keep-alive connection then holds
/// no output memory).
const KEEP_OUTBUF_CAPACITY: usize = 16 * 1024;

/// Where a connection is in its life. It only ever moves forward
/// ([`LifeCell::advance`] is a `fetch_max`), so threads that race to change
/// it cannot undo each other's decision.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Life {
    /// Reading, parsing and answering requests.
    Open = 0,
    /// A graceful stop began: what was received is answered (and those
    /// responses say `Connection: close`); nothing new is read.
    Draining = 1,
    /// The last response is decided (waitress's `close_when_flushed`):
    /// nothing more is read or parsed, and the connection closes once its
    /// output is sent. Entered only under `reqs` ([`Channel::close_after_output`]).
    CloseWhenFlushed = 2,
    /// Close at the loop's next look (waitress's `will_close`): idle too
    /// long, a send failed, the output of a closing response is sent, or
    /// the pool cancelled the request.
    Closing = 3,
    /// The loop closed the socket. Entered only under `out`, in
    /// `handle_close`; no thread uses the socket after it.
    Closed = 4,
}

/// A [`Life`] shared by the I/O thread and a worker.
#[derive(Debug)]
struct LifeCell(AtomicU8);

impl LifeCell {
    fn get(&self) -> Life {
        match self.0.load(Ordering::Acquire) {
            0 => Life::Open,
            1 => Life::Draining,
            2 => Life::CloseWhenFlushed,
            3 => Life::Closing,
            _ => Life::Closed,
        }
    }

    /// Moves to `to` unless the connection is already further along.
    fn advance(&self, to: Life) {
        self.0.fetch_max(to as u8, Ordering::AcqRel);
    }
}

/// The read side, decided under `reqs`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ReadSide {
    /// The loop reads whenever the socket has data and the channel is not
    /// busy.
    #[default]
    Reading,
    /// The loop declined to read while the channel was busy (requests
    /// queued, output pending, draining): whoever makes it readable again
    /// must wake the loop.
    Blocked,
    /// An error response is queued: nothing more is read or parsed, ever.
    Done,
}

/// `100 Continue` for the request being received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Continue {
    /// Not asked for, or not yet sent.
    #[default]
    NotSent,
    /// Asked for while earlier responses were pending: the worker sends it
    /// when it finishes the last of them.
    Deferred,
    /// Sent.
    Sent,
}

/// The state behind `requests_lock`.
#[derive(Debug, Default)]
struct ReqState {
    /// Complete requests, oldest first. The front one is `None` while a
    /// worker runs it.
    /// With the moment each was received in full.
    requests: VecDeque<Option<(Parsed, Instant)>>,
    read: ReadSide,
    cont: Continue,
    /// When the channel last entered the pool's queue (milliseconds since
    /// the server's epoch), for `max_queue_wait`.
    queued_ms: u64,
}

/// Whether the socket may still be written, decided under `out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sink {
    Open,
    /// A send failed: the connection is unusable (the loop closes it).
    Broken,
    /// The loop closed the socket.
    Closed,
}

/// The state behind `outbuf_lock`.
#[derive(Debug)]
struct OutState {
    bufs: VecDeque<OutBuffer>,
    /// Bytes queued in `bufs`.
    total: u64,
    /// Bytes appended to the last buffer since it was started; past
    /// `outbuf_high_watermark` a new buffer is started (waitress's outbuf
    /// rotation, which lets a drained buffer's memory go).
    current_outbuf_count: u64,
    sink: Sink,
    /// Read buffer for `sendfile` fallbacks.
    scratch: Vec<u8>,
    /// Workers waiting on `out_cv` for the output to drain.
    waiters: usize,
    /// When a send last made progress (milliseconds since the server's
    /// epoch): a worker held at the high watermark gives up once the
    /// client has taken nothing for `channel_timeout`.
    last_sent_ms: u64,
}

/// A connection, shared by the I/O thread and the worker running its
/// request.
#[derive(Debug)]
pub(crate) struct Channel {
    fd: RawFd,
    token: AtomicU64,
    pub(crate) server: Arc<ServerShared>,
    pub(crate) origin: ConnEnviron,
    reqs: Mutex<ReqState>,
    out: Mutex<OutState>,
    out_cv: Condvar,
    /// Mirror of `out.total`, for the I/O thread's predicates.
    out_pending: AtomicU64,
    life: LifeCell,
    /// The worker is answering pipelined requests in a row: responses are
    /// buffered and sent together when the run ends (written only by the
    /// worker that runs the channel).
    batching: AtomicBool,
    /// Milliseconds since the server's epoch.
    last_activity: AtomicU64,
}

impl DisconnectProbe for Channel {
    fn disconnected(&self) -> bool {
        !self.is_connected()
    }
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNRESET)
            | Some(libc::ENOTCONN)
            | Some(libc::ESHUTDOWN)
            | Some(libc::ECONNABORTED)
            | Some(libc::EPIPE)
            | Some(libc::EBADF)
    )
}

impl Channel {
    pub(crate) fn new(fd: RawFd, server: Arc<ServerShared>, origin: ConnEnviron) -> Channel {
        let now = server.now_ms();
        Channel {
            fd,
            token: AtomicU64::new(u64::MAX),
            server,
            origin,
            reqs: Mutex::new(ReqState::default()),
            out: Mutex::new(OutState {
                bufs: VecDeque::new(),
                total: 0,
                current_outbuf_count: 0,
                sink: Sink::Open,
                scratch: Vec::new(),
                waiters: 0,
                last_sent_ms: now,
            }),
            out_cv: Condvar::new(),
            out_pending: AtomicU64::new(0),
            life: LifeCell(AtomicU8::new(Life::Open as u8)),
            batching: AtomicBool::new(false),
            last_activity: AtomicU64::new(now),
        }
    }

    fn reqs(&self) -> MutexGuard<'_, ReqState> {
        crate::lock(&self.reqs)
    }

    fn out(&self) -> MutexGuard<'_, OutState> {
        crate::lock(&self.out)
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.life.get() >= Life::Draining
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.life.get() != Life::Closed
    }

    /// Decides that the connection closes once its output is sent. Takes
    /// the `reqs` guard: the loop checks this state under the same lock
    /// before it parses, so no request received after the decision is
    /// parsed or queued (CVE-2024-49768).
    fn close_after_output(&self, _reqs: &mut ReqState) {
        self.life.advance(Life::CloseWhenFlushed);
    }

    /// Marks the output unusable after a failed send or buffer (under
    /// `out`); the loop closes the connection on its next look.
    fn mark_broken(&self, out: &mut OutState) {
        out.sink = Sink::Broken;
        self.life.advance(Life::Closing);
    }

    fn touch(&self) {
        self.last_activity
            .store(self.server.now_ms(), Ordering::Relaxed);
    }

    fn token(&self) -> Token {
        Token::from_u64(self.token.load(Ordering::Relaxed))
    }

    /// Asks the I/O thread to look at this channel again.
    fn notify_loop(&self) {
        self.server.notifier.notify(self.token());
    }

    // ----------------------------------------------------------------
    // Output (both threads)
    // ----------------------------------------------------------------

    /// Sends what it can of the queued output. Returns whether the socket
    /// refused more (`WouldBlock`).
    fn flush_some(&self, out: &mut OutState) -> io::Result<bool> {
        let OutState {
            bufs,
            total,
            scratch,
            last_sent_ms,
            ..
        } = out;
        let mut sent_any = false;
        let mut blocked = false;
        loop {
            while bufs.len() > 1 && bufs.front().is_some_and(OutBuffer::is_empty) {
                bufs.pop_front();
            }
            let Some(front) = bufs.front_mut() else { break };
            if front.is_empty() {
                break;
            }
            let r = match front.front() {
                Front::Mem(s) => sys::send(self.fd, s),
                Front::File { file, offset, len } => {
                    match sys::sendfile(self.fd, file.as_raw_fd(), offset, len, scratch) {
                        Ok(0) => Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file body ended before its announced length",
                        )),
                        other => other,
                    }
                }
            };
            match r {
                Ok(0) => {
                    blocked = true;
                    break;
                }
                Ok(n) => {
                    front.skip(n as u64);
                    *total -= n as u64;
                    sent_any = true;
                    self.server.counters.sent(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                Err(e) => {
                    self.out_pending.store(*total, Ordering::Release);
                    return Err(e);
                }
            }
        }
        // A drained spill file or rotated buffer is dropped here, which
        // closes its file; so is a large drained memory buffer, so that an
        // idle connection keeps no output memory.
        while bufs.len() > 1 && bufs.front().is_some_and(OutBuffer::is_empty) {
            bufs.pop_front();
        }
        if bufs.len() == 1
            && bufs
                .front()
                .is_some_and(|b| b.is_empty() && !b.is_small(KEEP_OUTBUF_CAPACITY))
        {
            bufs.clear();
        }
        self.out_pending.store(*total, Ordering::Release);
        if sent_any {
            self.touch();
            *last_sent_ms = self.server.now_ms();
        }
        Ok(blocked)
    }

    /// A send failed: the connection is unusable.
    fn socket_error(&self, out: &mut OutState, e: &io::Error) {
        if !is_disconnect(e) && self.server.adj.log_socket_errors {
            crate::log_warning!("Socket error: {e}");
        }
        self.mark_broken(out);
    }

    /// Appends bytes to the output buffers (waitress's `write_soon` body).
    fn append(&self, out: &mut OutState, data: &[u8]) -> io::Result<()> {
        let adj = &self.server.adj;
        if out.bufs.is_empty() || out.current_outbuf_count >= adj.outbuf_high_watermark {
            out.bufs.push_back(OutBuffer::Bytes(OverflowableBuffer::new(
                adj.outbuf_overflow,
            )));
            out.current_outbuf_count = 0;
        }
        let appended = match out.bufs.back_mut() {
            Some(OutBuffer::Bytes(b)) => b.append(data),
            _ => {
                let mut b = OverflowableBuffer::new(adj.outbuf_overflow);
                let r = b.append(data);
                out.bufs.push_back(OutBuffer::Bytes(b));
                out.current_outbuf_count = 0;
                r
            }
        };
        appended?;
        out.current_outbuf_count += data.len() as u64;
        out.total += data.len() as u64;
        self.out_pending.store(out.total, Ordering::Release);
        Ok(())
    }

    /// Waits while more than `outbuf_high_watermark` bytes are queued
    /// (waitress's `_flush_outbufs_below_high_watermark`).
    fn wait_below_high_watermark<'a>(
        &'a self,
        mut out: MutexGuard<'a, OutState>,
    ) -> Result<MutexGuard<'a, OutState>, ClientDisconnected> {
        let hw = self.server.adj.outbuf_high_watermark;
        if out.total <= hw {
            return Ok(out);
        }
        if let Err(e) = self.flush_some(&mut out) {
            self.socket_error(&mut out, &e);
            drop(out);
            self.notify_loop();
            return Err(ClientDisconnected);
        }
        // A client that reads nothing must not hold a worker for ever: once
        // nothing has been sent for `channel_timeout` (counted from the
        // later of the last progress and the start of this wait), the
        // connection is given up and the application's body sees the
        // client gone.
        let limit_ms = self.server.adj.channel_timeout.saturating_mul(1000);
        let began_ms = self.server.now_ms();
        while out.sink == Sink::Open && out.total > hw {
            let since = out.last_sent_ms.max(began_ms);
            let stalled_ms = self.server.now_ms().saturating_sub(since);
            if limit_ms > 0 && stalled_ms >= limit_ms {
                crate::log_warning!(
                    "Client read nothing for {} seconds with {} bytes waiting; closing the connection and releasing the worker (channel_timeout)",
                    stalled_ms / 1000,
                    out.total
                );
                self.mark_broken(&mut out);
                self.server.counters.not_reading();
                drop(out);
                self.notify_loop();
                return Err(ClientDisconnected);
            }
            // The I/O thread flushes on the socket's next writability and
            // signals the condition variable once below the watermark (or
            // when it closes the channel). It cannot take the lock before
            // `wait` releases it, so the signal cannot be missed; the
            // timeout only bounds the wait for a client that never reads.
            self.notify_loop();
            out.waiters += 1;
            out = if limit_ms > 0 {
                let left = Duration::from_millis(limit_ms - stalled_ms);
                match self.out_cv.wait_timeout(out, left) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                }
            } else {
                match self.out_cv.wait(out) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                }
            };
            out.waiters -= 1;
        }
        if out.sink != Sink::Open {
            return Err(ClientDisconnected);
        }
        Ok(out)
    }

    /// Queues `parts` (in order) for the client and sends what the socket
    /// takes now: waitress's `write_soon`, from a worker thread.
    pub(crate) fn write_soon(&self, parts: &[&[u8]]) -> Result<(), ClientDisconnected> {
        if !self.is_connected() {
            return Err(ClientDisconnected);
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len == 0 {
            return Ok(());
        }
        let out = self.out();
        let mut out = self.wait_below_high_watermark(out)?;
        if out.sink != Sink::Open {
            return Err(ClientDisconnected);
        }
        let send_bytes = self.server.adj.send_bytes as u64;
        // While pipelined requests are answered in a row, responses are only
        // buffered (up to BATCH_BYTES) and go out together at the end.
        let batching = self.batching.load(Ordering::Relaxed);
        let flush_at = if batching {
            send_bytes.max(BATCH_BYTES)
        } else {
            send_bytes
        };
        let mut sent = 0usize;
        let mut failed = false;
        if out.total == 0 && len as u64 >= flush_at {
            // Nothing queued before us: send straight from the caller's
            // buffers, head and body in one system call.
            match sys::send_vectored(self.fd, parts) {
                Ok(n) => {
                    sent = n;
                    if n > 0 {
                        self.touch();
                        out.last_sent_ms = self.server.now_ms();
                        self.server.counters.sent(n);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.socket_error(&mut out, &e);
                    failed = true;
                }
            }
        }
        let mut need_loop = failed;
        if !failed && sent < len {
            let mut skip = sent;
            for p in parts {
                if skip >= p.len() {
                    skip -= p.len();
                    continue;
                }
                if let Err(e) = self.append(&mut out, &p[skip..]) {
                    crate::log_error!("could not buffer response output: {e}");
                    self.socket_error(&mut out, &e);
                    failed = true;
                    break;
                }
                skip = 0;
            }
            if !failed && out.total >= flush_at {
                match self.flush_some(&mut out) {
                    Ok(_) => {}
                    Err(e) => {
                        self.socket_error(&mut out, &e);
                        failed = true;
                    }
                }
            }
            need_loop = failed || out.total >= flush_at;
        }
        self.end_write(out, need_loop, failed)
    }

    /// Releases the output lock, then wakes the loop if it has to send or
    /// close (after the release, so that it does not wake only to wait
    /// for the lock).
    fn end_write(
        &self,
        out: MutexGuard<'_, OutState>,
        need_loop: bool,
        failed: bool,
    ) -> Result<(), ClientDisconnected> {
        drop(out);
        if need_loop {
            self.notify_loop();
        }
        if failed {
            Err(ClientDisconnected)
        } else {
            Ok(())
        }
    }

    /// Queues a file body (waitress's `ReadOnlyFileBasedBuffer`), sending
    /// what the socket takes now with `sendfile`; the I/O thread sends the
    /// rest. The worker does not wait for it.
    pub(crate) fn write_file(&self, file: FileBuffer) -> Result<(), ClientDisconnected> {
        if !self.is_connected() {
            return Err(ClientDisconnected);
        }
        if file.is_empty() {
            return Ok(());
        }
        let out = self.out();
        let mut out = self.wait_below_high_watermark(out)?;
        if out.sink != Sink::Open {
            return Err(ClientDisconnected);
        }
        out.total += file.len();
        out.bufs.push_back(OutBuffer::File(file));
        out.current_outbuf_count = 0;
        let mut failed = false;
        if let Err(e) = self.flush_some(&mut out) {
            self.socket_error(&mut out, &e);
            failed = true;
        }
        let need_loop = failed || out.total > 0;
        self.end_write(out, need_loop, failed)
    }

    // ----------------------------------------------------------------
    // Worker side
    // ----------------------------------------------------------------

    /// Runs the request at the head of the queue (waitress's
    /// `HTTPChannel.service`), on a worker thread.
    ///
    /// When more complete requests are queued behind it (pipelining), up to
    /// [`BATCH_REQUESTS`] are answered in a row and their responses sent
    /// together (as hyper's `pipeline_flush`); then the channel goes back to
    /// the end of the pool's queue, as in waitress.
    fn service(self: &Arc<Self>) {
        let mut served = 0;
        let mut notify = false;
        // The run ended with no request left for this channel.
        let mut left_idle = false;
        loop {
            let (parsed, more, queued_ms) = {
                let mut rs = self.reqs();
                let more = rs.requests.len() > 1;
                (
                    rs.requests.front_mut().and_then(Option::take),
                    more,
                    rs.queued_ms,
                )
            };
            let Some((parsed, received)) = parsed else {
                break;
            };
            // The first request of a run waited in the pool's queue; one
            // that waited past `max_queue_wait` is answered 503 instead of
            // running the application for a client that has likely given up.
            let max_wait_ms = self.server.adj.max_queue_wait.saturating_mul(1000);
            let waited_too_long = served == 0
                && max_wait_ms > 0
                && self.server.now_ms().saturating_sub(queued_ms) > max_wait_ms;
            served += 1;
            let batch = more && served < BATCH_REQUESTS;
            self.batching.store(batch, Ordering::Relaxed);
            let close_on_finish = if !self.is_connected() {
                true
            } else if waited_too_long {
                crate::task::shed(self, parsed, received)
            } else {
                crate::task::run(self, parsed, received)
            };
            let close = close_on_finish || self.is_draining();
            if close {
                let mut rs = self.reqs();
                self.close_after_output(&mut rs);
                rs.requests.clear();
                if rs.cont == Continue::Deferred {
                    rs.cont = Continue::NotSent;
                }
                notify = true;
                break;
            }
            let mut rs = self.reqs();
            rs.requests.pop_front();
            if self.is_connected() && !rs.requests.is_empty() {
                if batch {
                    continue;
                }
                rs.queued_ms = self.server.now_ms();
                drop(rs);
                self.batching.store(false, Ordering::Relaxed);
                self.flush_batch();
                self.server.pool.add_task(Arc::clone(self));
                break;
            }
            if self.is_connected() && rs.cont == Continue::Deferred {
                self.send_continue(&mut rs);
            }
            left_idle = true;
            break;
        }
        self.batching.store(false, Ordering::Relaxed);
        self.flush_batch();
        if left_idle {
            // The loop may have declined to read (`read_blocked`) because
            // requests were queued or output was pending; then it waits for
            // us to wake it. This check comes after the flush: the loop
            // reads `out_pending` under `reqs`, so either it declined
            // before we lock `reqs` here (we see `read_blocked` and wake
            // it), or it looks after, and then sees the queue empty and
            // `out_pending` as our flush left it (stored before this
            // lock). Checked before the flush, a decline made in between,
            // on account of the output the flush then sent, was never
            // answered: the channel stayed unread with a request waiting
            // in the socket.
            let mut rs = self.reqs();
            if rs.read == ReadSide::Blocked {
                rs.read = ReadSide::Reading;
                notify = true;
            }
        }
        // Output the socket did not take is the loop's to send.
        if self.out_pending.load(Ordering::Acquire) > 0 {
            notify = true;
        }
        self.touch();
        if notify && self.is_connected() {
            self.notify_loop();
        }
    }

    /// Sends what a run of pipelined responses buffered.
    fn flush_batch(&self) {
        if self.out_pending.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut out = self.out();
        if out.sink != Sink::Open {
            return;
        }
        if let Err(e) = self.flush_some(&mut out) {
            self.socket_error(&mut out, &e);
        }
    }

    /// Queues and sends `100 Continue` (under `reqs`).
    fn send_continue(&self, rs: &mut ReqState) {
        rs.cont = Continue::Sent;
        // A client that is gone needs no 100; the loop closes it.
        let _ = self.write_now(&[CONTINUE]);
    }

    /// Queues `parts` and sends what the socket takes now, never waiting
    /// for the client to read: for the few bytes written outside a
    /// response's flow (a `100 Continue`, and the I/O thread's own 408 and
    /// shed 503, which must not block the loop).
    fn write_now(&self, parts: &[&[u8]]) -> Result<(), ClientDisconnected> {
        let mut out = self.out();
        if out.sink != Sink::Open {
            return Err(ClientDisconnected);
        }
        for p in parts {
            if self.append(&mut out, p).is_err() {
                self.mark_broken(&mut out);
                return Err(ClientDisconnected);
            }
        }
        if let Err(e) = self.flush_some(&mut out) {
            self.socket_error(&mut out, &e);
            return Err(ClientDisconnected);
        }
        Ok(())
    }

    /// Called for a channel still queued when the pool shuts down.
    fn cancel(&self) {
        {
            let mut rs = self.reqs();
            rs.requests.clear();
        }
        self.life.advance(Life::Closing);
        self.touch();
        self.notify_loop();
    }
}

/// The channel as an [`Output`](crate::writer::Output) for the I/O
/// thread's own answers: writes never wait (see `Channel::write_now`).
pub(crate) struct Immediate<'a>(pub(crate) &'a Channel);

impl crate::writer::Output for Immediate<'_> {
    fn write_soon(&self, parts: &[&[u8]]) -> Result<(), ClientDisconnected> {
        self.0.write_now(parts)
    }

    fn write_file(&self, _file: FileBuffer) -> Result<(), ClientDisconnected> {
        Err(ClientDisconnected)
    }

    fn is_draining(&self) -> bool {
        self.0.is_draining()
    }
}

impl crate::pool::Task for Arc<Channel> {
    fn service(self) {
        Channel::service(&self);
    }
    fn cancel(self) {
        Channel::cancel(&self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loop and a worker may decide at the same moment (a drain, the
    /// last response, an idle timeout): whatever the order, the furthest
    /// state wins and none is undone.
    #[test]
    fn life_only_moves_forward_when_raced() {
        let steps = [
            Life::Draining,
            Life::CloseWhenFlushed,
            Life::Closing,
            Life::Closed,
        ];
        for round in 0..500usize {
            let cell = LifeCell(AtomicU8::new(Life::Open as u8));
            // A different subset of decisions each round.
            let chosen: Vec<Life> = steps
                .iter()
                .enumerate()
                .filter(|(i, _)| (round >> i) & 1 == 1 || *i == round % 4)
                .map(|(_, l)| *l)
                .collect();
            std::thread::scope(|s| {
                for &to in &chosen {
                    let cell = &cell;
                    s.spawn(move || {
                        cell.advance(to);
                        // Seen from the thread that decided: never behind.
                        assert!(cell.get() >= to);
                    });
                }
            });
            assert_eq!(
                Some(cell.get()),
                chosen.iter().copied().max(),
                "round {round}"
            );
        }
    }
}
