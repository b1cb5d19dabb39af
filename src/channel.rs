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
//! `requests_lock`: the queue of parsed requests and the flags that decide
//! whether the socket may be read) and `out` (waitress's `outbuf_lock`: the
//! output buffers; its condition variable is the back-pressure wait). The
//! `out` lock is held across non-blocking sends, so that the bytes of one
//! response are never interleaved with another and the socket is never used
//! after the I/O thread closed it (it marks the channel disconnected under
//! the same lock before closing).
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
//! * *Reading again (`read_blocked`).* The loop declines to read while
//!   requests are queued or output is pending, and marks that under `reqs`;
//!   the worker that leaves the channel idle checks the mark under `reqs`
//!   *after* its last flush and wakes the loop. See [`Channel::service`].
//! * *Back-pressure.* A worker above the high watermark waits on `out_cv`
//!   after notifying the loop; the loop flushes whenever a worker waits,
//!   and signals under `out`, which the waiter holds until `wait` releases
//!   it, so the signal cannot fall between its check and its wait.
//! * *Closing.* `close_when_flushed` is stored before the worker's notify;
//!   `will_close` and `connected` are stored by the loop under `out` before
//!   the socket is closed, and every send checks `connected` under `out`.
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
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::buffers::{FileBuffer, Front, OutBuffer, OverflowableBuffer};
use crate::dispatcher::{Cx, Dispatcher, Progress, Role, Token};
use crate::parser::{Parsed, RequestParser};
use crate::request::{ConnEnviron, DisconnectProbe};
use crate::server::ServerShared;
use crate::sys;

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

/// The state behind `requests_lock`.
#[derive(Debug, Default)]
struct ReqState {
    /// Complete requests, oldest first. The front one is `None` while a
    /// worker runs it.
    requests: VecDeque<Option<Parsed>>,
    /// A `100 Continue` was sent for the request being received.
    sent_continue: bool,
    /// The request being received wants a `100 Continue` that could not be
    /// sent yet because earlier responses are pending; the worker sends it
    /// when it finishes the last of them.
    continue_wanted: bool,
    /// The I/O thread declined to read while the channel was busy: whoever
    /// makes it readable again must wake the loop.
    read_blocked: bool,
    /// An error response is queued: nothing more is read or parsed.
    stop_reading: bool,
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
    /// False once the I/O thread closed the socket.
    connected: bool,
    /// A send failed: the connection is unusable (the I/O thread closes it).
    broken: bool,
    /// Read buffer for `sendfile` fallbacks.
    scratch: Vec<u8>,
    /// Workers waiting on `out_cv` for the output to drain.
    waiters: usize,
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
    /// Close now (waitress's `will_close`).
    will_close: AtomicBool,
    /// Close once the output is flushed (waitress's `close_when_flushed`);
    /// written only under `reqs`.
    close_when_flushed: AtomicBool,
    /// Mirror of `out.connected` for lock-free checks.
    connected: AtomicBool,
    /// A graceful stop began: finish what runs, read nothing new.
    draining: AtomicBool,
    /// The worker is answering pipelined requests in a row: responses are
    /// buffered and sent together when the run ends (written only by the
    /// worker that runs the channel).
    batching: AtomicBool,
    /// Milliseconds since the server's epoch.
    last_activity: AtomicU64,
}

impl DisconnectProbe for Channel {
    fn disconnected(&self) -> bool {
        !self.connected.load(Ordering::Acquire)
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
                connected: true,
                broken: false,
                scratch: Vec::new(),
                waiters: 0,
            }),
            out_cv: Condvar::new(),
            out_pending: AtomicU64::new(0),
            will_close: AtomicBool::new(false),
            close_when_flushed: AtomicBool::new(false),
            connected: AtomicBool::new(true),
            draining: AtomicBool::new(false),
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
        self.draining.load(Ordering::Acquire)
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
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
        }
        Ok(blocked)
    }

    /// A send failed: the connection is unusable.
    fn socket_error(&self, out: &mut OutState, e: &io::Error) {
        if !is_disconnect(e) && self.server.adj.log_socket_errors {
            crate::log_warning!("Socket error: {e}");
        }
        out.broken = true;
        self.will_close.store(true, Ordering::Release);
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
        while out.connected && !out.broken && out.total > hw {
            // The I/O thread flushes on the socket's next writability and
            // signals the condition variable once below the watermark (or
            // when it closes the channel). It cannot take the lock before
            // `wait` releases it, so the signal cannot be missed.
            self.notify_loop();
            out.waiters += 1;
            out = match self.out_cv.wait(out) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            out.waiters -= 1;
        }
        if !out.connected || out.broken {
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
        if !out.connected || out.broken {
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
        if !out.connected || out.broken {
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
            let (parsed, more) = {
                let mut rs = self.reqs();
                let more = rs.requests.len() > 1;
                (rs.requests.front_mut().and_then(Option::take), more)
            };
            let Some(parsed) = parsed else {
                break;
            };
            served += 1;
            let batch = more && served < BATCH_REQUESTS;
            self.batching.store(batch, Ordering::Relaxed);
            let close_on_finish = if !self.is_connected() {
                true
            } else {
                crate::task::run(self, parsed)
            };
            let close = close_on_finish || self.draining.load(Ordering::Acquire);
            if close {
                let mut rs = self.reqs();
                self.close_when_flushed.store(true, Ordering::Release);
                rs.requests.clear();
                rs.continue_wanted = false;
                notify = true;
                break;
            }
            let mut rs = self.reqs();
            rs.requests.pop_front();
            if self.is_connected() && !rs.requests.is_empty() {
                if batch {
                    continue;
                }
                drop(rs);
                self.batching.store(false, Ordering::Relaxed);
                self.flush_batch();
                self.server.pool.add_task(Arc::clone(self));
                break;
            }
            if self.is_connected() && rs.continue_wanted && !rs.sent_continue {
                rs.continue_wanted = false;
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
            if rs.read_blocked {
                rs.read_blocked = false;
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
        if !out.connected || out.broken {
            return;
        }
        if let Err(e) = self.flush_some(&mut out) {
            self.socket_error(&mut out, &e);
        }
    }

    /// Queues and sends `100 Continue` (under `reqs`).
    fn send_continue(&self, rs: &mut ReqState) {
        rs.sent_continue = true;
        let mut out = self.out();
        if !out.connected || out.broken {
            return;
        }
        if self.append(&mut out, CONTINUE).is_err() {
            out.broken = true;
            self.will_close.store(true, Ordering::Release);
            return;
        }
        if let Err(e) = self.flush_some(&mut out) {
            self.socket_error(&mut out, &e);
        }
    }

    /// Called for a channel still queued when the pool shuts down.
    fn cancel(&self) {
        {
            let mut rs = self.reqs();
            rs.requests.clear();
        }
        self.will_close.store(true, Ordering::Release);
        self.touch();
        self.notify_loop();
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

/// The I/O thread's side of a channel: the socket (closed when this is
/// dropped) and the parser of the request being received. Reads go into the
/// loop's shared buffer: everything read is parsed (and what a request keeps
/// copied) before the next channel reads.
#[derive(Debug)]
pub(crate) struct ChannelDispatcher {
    chan: Arc<Channel>,
    sock: OwnedFd,
    parser: Option<RequestParser>,
}

impl ChannelDispatcher {
    pub(crate) fn new(
        sock: OwnedFd,
        server: Arc<ServerShared>,
        origin: ConnEnviron,
    ) -> ChannelDispatcher {
        let chan = Arc::new(Channel::new(sock.as_raw_fd(), server, origin));
        ChannelDispatcher {
            chan,
            sock,
            parser: None,
        }
    }

    /// Feeds received bytes to the parser and queues complete requests
    /// (waitress's `received`).
    fn received(&mut self, data: &[u8], cx: &mut Cx<'_>) {
        let chan = &self.chan;
        let server = &chan.server;
        let mut rs = chan.reqs();
        // CVE-2024-49768: once the connection is to be closed, or an error
        // response is queued, nothing more is parsed.
        if chan.will_close.load(Ordering::Acquire)
            || chan.close_when_flushed.load(Ordering::Acquire)
            || rs.stop_reading
        {
            return;
        }
        let mut data = data;
        while !data.is_empty() {
            let parser = self
                .parser
                .get_or_insert_with(|| RequestParser::new(server.parser_config));
            let n = parser.received(data);
            if parser.expect_continue()
                && parser.headers_finished()
                && parser.error().is_none()
                && !rs.sent_continue
            {
                if rs.requests.is_empty() {
                    chan.send_continue(&mut rs);
                } else {
                    rs.continue_wanted = true;
                }
            }
            if parser.is_completed() {
                rs.sent_continue = false;
                rs.continue_wanted = false;
                let done = self.parser.take();
                if let Some(p) = done {
                    if !p.is_empty() {
                        let parsed = p.into_parsed();
                        let is_error = matches!(parsed, Parsed::Error(..));
                        rs.requests.push_back(Some(parsed));
                        if rs.requests.len() == 1 {
                            // Handed to the pool at the end of the loop
                            // round, with the round's other requests.
                            cx.stage(Arc::clone(chan));
                        }
                        if is_error {
                            // Every parse error closes the connection: what
                            // was pipelined behind it is dropped.
                            rs.stop_reading = true;
                            break;
                        }
                    }
                }
            } else if n == 0 {
                // A parser that neither consumes nor completes would loop.
                crate::log_error!("request parser made no progress; closing the connection");
                chan.will_close.store(true, Ordering::Release);
                break;
            }
            if n >= data.len() {
                break;
            }
            data = &data[n..];
        }
    }

    /// One `recv` into `buf`, and what it means for the loop.
    fn read_into(&mut self, buf: &mut [u8], cx: &mut Cx<'_>) -> Progress {
        let recv_bytes = buf.len();
        match sys::recv(self.sock.as_raw_fd(), buf) {
            Ok(0) => Progress::Close,
            Ok(n) => {
                {
                    let mut rs = self.chan.reqs();
                    rs.read_blocked = false;
                }
                self.chan.touch();
                self.received(&buf[..n], cx);
                if self.chan.will_close.load(Ordering::Acquire) {
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
        self.chan.token.store(token.as_u64(), Ordering::Relaxed);
    }

    fn closing(&self) -> bool {
        let chan = &self.chan;
        chan.will_close.load(Ordering::Acquire)
            // Flushed and due to close: no need to wait for writability
            // (the worker may have sent the last bytes itself).
            || (chan.close_when_flushed.load(Ordering::Acquire)
                && chan.out_pending.load(Ordering::Acquire) == 0)
    }

    fn readable(&mut self, _cx: &mut Cx<'_>) -> bool {
        let chan = &self.chan;
        if chan.will_close.load(Ordering::Acquire) {
            return false;
        }
        let mut rs = chan.reqs();
        let busy = chan.close_when_flushed.load(Ordering::Acquire)
            || rs.stop_reading
            || chan.draining.load(Ordering::Acquire)
            || rs.requests.len() > chan.server.adj.channel_request_lookahead
            || chan.out_pending.load(Ordering::Acquire) > 0;
        if busy {
            rs.read_blocked = true;
        }
        !busy
    }

    fn writable(&mut self, _cx: &mut Cx<'_>) -> bool {
        let chan = &self.chan;
        chan.out_pending.load(Ordering::Acquire) > 0
            || chan.will_close.load(Ordering::Acquire)
            || chan.close_when_flushed.load(Ordering::Acquire)
    }

    fn handle_read(&mut self, cx: &mut Cx<'_>) -> Progress {
        let recv_bytes = self.chan.server.adj.recv_bytes.max(1);
        // Borrowed out of the context for this call (no copy), so that the
        // context can take staged requests while the bytes are parsed.
        let mut read_buf = std::mem::take(cx.read_buf);
        if read_buf.len() < recv_bytes {
            read_buf.resize(recv_bytes, 0);
        }
        let progress = self.read_into(&mut read_buf[..recv_bytes], cx);
        *cx.read_buf = read_buf;
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
        if chan.close_when_flushed.load(Ordering::Acquire)
            && chan.out_pending.load(Ordering::Acquire) == 0
        {
            chan.will_close.store(true, Ordering::Release);
            return Progress::Close;
        }
        if blocked {
            Progress::Drained
        } else {
            Progress::Done
        }
    }

    fn handle_close(&mut self, _cx: &mut Cx<'_>) {
        let chan = &self.chan;
        {
            let mut out = chan.out();
            out.bufs.clear();
            out.total = 0;
            out.connected = false;
            chan.out_pending.store(0, Ordering::Release);
            chan.connected.store(false, Ordering::Release);
            chan.out_cv.notify_all();
        }
        chan.will_close.store(true, Ordering::Release);
        // The socket itself is closed when this dispatcher is dropped,
        // right after; no worker can use it: `connected` is false under
        // the output lock.
    }

    fn maintenance(&mut self, now: Instant) -> bool {
        let chan = &self.chan;
        let timeout_ms = chan.server.adj.channel_timeout.saturating_mul(1000);
        let now_ms = chan.server.ms_at(now);
        let idle = now_ms.saturating_sub(chan.last_activity.load(Ordering::Relaxed)) > timeout_ms;
        if idle && chan.reqs().requests.is_empty() {
            chan.will_close.store(true, Ordering::Release);
            return true;
        }
        false
    }

    fn begin_shutdown(&mut self) -> bool {
        let chan = &self.chan;
        chan.draining.store(true, Ordering::Release);
        let rs = chan.reqs();
        if rs.requests.is_empty() {
            // Idle (or between requests): close once what is queued is sent.
            chan.close_when_flushed.store(true, Ordering::Release);
        }
        true
    }

    fn busy(&self) -> bool {
        !self.chan.reqs().requests.is_empty() || self.chan.out_pending.load(Ordering::Acquire) > 0
    }
}
