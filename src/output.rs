//! A connection's output: the buffers (in memory, spilled to a temporary
//! file past `outbuf_overflow`, or a file sent with `sendfile`) and the
//! sends that drain them, done by whichever thread holds the connection
//! (see `link.rs`): the worker writing a response, or the I/O thread.
//!
//! * [`WorkerOut`] is the worker's [`Output`]: waitress's `write_soon`. With
//!   nothing queued, the bytes go straight from the caller's buffers in one
//!   `sendmsg` (head and first body bytes together); what the socket does
//!   not take is queued; above `outbuf_high_watermark` queued bytes the
//!   worker itself waits for the socket to drain (`poll(2)`), up to
//!   `channel_timeout` without progress (then the client is given up and
//!   the worker released).
//! * [`LoopOut`] is the I/O thread's: it queues and sends what the socket
//!   takes, never waiting (a `100 Continue`, the server's own answers); the
//!   loop flushes the rest when the socket is writable.
//!
//! Thread: whichever holds the connection.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;
use std::time::Duration;

use crate::buffers::{FileBuffer, Front, OutBuffer, OverflowableBuffer};
use crate::error::HttpError;
use crate::shared::ServerShared;
use crate::sys;
use crate::upgrade::{Handler, Handoff};
use crate::writer::{ClientDisconnected, Output};

/// What the output needs of its connection (the link, `link.rs`, is the
/// one implementation; only the thread holding the connection calls
/// these, see there).
pub(crate) trait Wire {
    /// The socket.
    fn fd(&self) -> RawFd;
    /// The server's settings, counters and clock.
    fn server(&self) -> &ServerShared;
    /// The output buffers (a lock only the holder takes).
    fn out(&self) -> MutexGuard<'_, OutQueue>;
    /// Bytes queued, as the holder last stored them.
    fn pending(&self) -> u64;
    /// Stores the bytes queued (under the output lock).
    fn set_pending(&self, bytes: u64);
    /// Something moved on the connection at `now_ms`.
    fn touch(&self, now_ms: u64);
    /// The client is gone or a send failed.
    fn gone(&self) -> bool;
    /// A send failed: the connection is unusable.
    fn mark_broken(&self);
    /// Leaves the upgrade hand-off for the loop.
    fn put_switch(&self, handoff: Handoff);
}

/// Pipelined responses answered in one run of a worker are buffered up to
/// this many bytes and sent together.
pub(crate) const BATCH_BYTES: u64 = 64 * 1024;

/// A drained memory buffer larger than this is freed rather than kept for
/// the connection's next response (an idle keep-alive connection then holds
/// no output memory).
const KEEP_OUTBUF_CAPACITY: usize = 16 * 1024;

/// The output buffers (waitress's `outbufs`).
#[derive(Debug)]
pub(crate) struct OutQueue {
    bufs: VecDeque<OutBuffer>,
    /// Bytes queued in `bufs`.
    total: u64,
    /// Bytes appended to the last buffer since it was started; past
    /// `outbuf_high_watermark` a new buffer is started (waitress's outbuf
    /// rotation, which lets a drained buffer's memory go).
    current_outbuf_count: u64,
    /// Read buffer for `sendfile` fallbacks.
    scratch: Vec<u8>,
    /// When a send last made progress (milliseconds since the server's
    /// epoch).
    last_sent_ms: u64,
    /// This connection's bytes beyond `outbuf_high_watermark` as counted in
    /// the server's `spilled` total.
    spilled: u64,
    /// Bytes of `total` that are file bodies (sent from their files with
    /// `sendfile`: never spilled).
    file_total: u64,
}

/// How often a writer held at the high watermark by `outbuf_spill_total`
/// (not by its own connection's limit) looks whether room was made.
const SPILL_RECHECK_MS: u64 = 100;

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

/// Logs a failed send or receive unless it is an ordinary disconnect (and
/// `log_socket_errors` wants it).
pub(crate) fn log_socket_error<W: Wire + ?Sized>(link: &W, e: &io::Error) {
    if !is_disconnect(e) && link.server().adj.log_socket_errors {
        crate::log_warning!("Socket error: {e}");
    }
}

impl OutQueue {
    pub(crate) fn new(now_ms: u64) -> OutQueue {
        OutQueue {
            bufs: VecDeque::new(),
            total: 0,
            current_outbuf_count: 0,
            scratch: Vec::new(),
            last_sent_ms: now_ms,
            spilled: 0,
            file_total: 0,
        }
    }

    /// Keeps the server's count of spilled bytes (beyond the high
    /// watermark) in step with this queue's size: an atomic only when the
    /// queue is, or was, beyond the watermark.
    fn recount<W: Wire + ?Sized>(&mut self, link: &W) {
        let server = link.server();
        let beyond =
            (self.total - self.file_total).saturating_sub(server.adj.outbuf_high_watermark);
        if beyond > self.spilled {
            server
                .spilled
                .fetch_add(beyond - self.spilled, Ordering::Relaxed);
        } else if beyond < self.spilled {
            server
                .spilled
                .fetch_sub(self.spilled - beyond, Ordering::Relaxed);
        }
        self.spilled = beyond;
    }

    /// This queue's share of the server's spilled bytes, no longer counted
    /// here (the caller gives it back: the queue is being dropped).
    pub(crate) fn forget_spill(&mut self) -> u64 {
        std::mem::take(&mut self.spilled)
    }

    /// Whether a writer may run ahead of the client instead of waiting at
    /// the high watermark: this connection under `outbuf_spill_limit`, the
    /// server under `outbuf_spill_total`.
    fn may_spill<W: Wire + ?Sized>(&self, link: &W) -> bool {
        let server = link.server();
        let adj = &server.adj;
        self.total - self.file_total < adj.outbuf_spill_limit
            && server.spilled.load(Ordering::Relaxed) < adj.outbuf_spill_total
    }

    /// Bytes queued.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.total
    }

    /// Appends bytes (a pushed body's sender, under this lock).
    pub(crate) fn append_bytes<W: Wire + ?Sized>(
        &mut self,
        link: &W,
        data: &[u8],
    ) -> io::Result<()> {
        self.append(link, data)
    }

    /// Sends what the socket takes now, never waiting; marks the
    /// connection broken when a send fails. True when the socket refused
    /// more.
    pub(crate) fn flush_soon<W: Wire + ?Sized>(
        &mut self,
        link: &W,
    ) -> Result<bool, ClientDisconnected> {
        self.flush_or_break(link)
    }

    /// Drops everything queued (the connection is gone).
    pub(crate) fn clear<W: Wire + ?Sized>(&mut self, link: &W) {
        self.bufs.clear();
        self.total = 0;
        self.file_total = 0;
        self.recount(link);
        link.set_pending(0);
    }

    /// Appends bytes (waitress's `write_soon` body).
    fn append<W: Wire + ?Sized>(&mut self, link: &W, data: &[u8]) -> io::Result<()> {
        let adj = &link.server().adj;
        if self.bufs.is_empty() || self.current_outbuf_count >= adj.outbuf_high_watermark {
            self.bufs
                .push_back(OutBuffer::Bytes(OverflowableBuffer::new(
                    adj.outbuf_overflow,
                )));
            self.current_outbuf_count = 0;
        }
        let appended = match self.bufs.back_mut() {
            Some(OutBuffer::Bytes(b)) => b.append(data),
            _ => {
                let mut b = OverflowableBuffer::new(adj.outbuf_overflow);
                let r = b.append(data);
                self.bufs.push_back(OutBuffer::Bytes(b));
                self.current_outbuf_count = 0;
                r
            }
        };
        appended?;
        self.current_outbuf_count += data.len() as u64;
        self.total += data.len() as u64;
        if self.total > adj.outbuf_high_watermark || self.spilled > 0 {
            self.recount(link);
        }
        link.set_pending(self.total);
        Ok(())
    }

    /// Appends `parts`, skipping their first `skip` bytes (already sent).
    fn append_parts<W: Wire + ?Sized>(
        &mut self,
        link: &W,
        parts: &[&[u8]],
        mut skip: usize,
    ) -> io::Result<()> {
        for p in parts {
            if skip >= p.len() {
                skip -= p.len();
                continue;
            }
            self.append(link, p.get(skip..).unwrap_or(&[]))?;
            skip = 0;
        }
        Ok(())
    }

    /// Queues a file body, sent with `sendfile`.
    fn push_file<W: Wire + ?Sized>(&mut self, link: &W, file: FileBuffer) {
        // A file is sent from where it is: it counts against the watermark
        // as ever, not as spilled bytes.
        self.total += file.len();
        self.file_total += file.len();
        self.bufs.push_back(OutBuffer::File(file));
        self.current_outbuf_count = 0;
        link.set_pending(self.total);
    }

    /// Sends what the socket takes of the queued output. Returns whether
    /// the socket refused more (`WouldBlock`).
    pub(crate) fn flush<W: Wire + ?Sized>(&mut self, link: &W) -> io::Result<bool> {
        let fd = link.fd();
        let mut sent_any = false;
        let mut blocked = false;
        let mut failed = None;
        loop {
            while self.bufs.len() > 1 && self.bufs.front().is_some_and(OutBuffer::is_empty) {
                self.bufs.pop_front();
            }
            let Some(front) = self.bufs.front_mut() else {
                break;
            };
            if front.is_empty() {
                break;
            }
            let from_file = matches!(front, OutBuffer::File(_));
            let r = match front.front() {
                Front::Mem(s) => sys::send(fd, s),
                Front::File { file, offset, len } => {
                    match sys::sendfile(fd, file.as_raw_fd(), offset, len, &mut self.scratch) {
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
                    self.total -= n as u64;
                    if from_file {
                        self.file_total -= n as u64;
                    }
                    sent_any = true;
                    link.server().counters.sent(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        // A drained spill file or rotated buffer is dropped here, which
        // closes its file; so is a large drained memory buffer, so that an
        // idle connection keeps no output memory.
        while self.bufs.len() > 1 && self.bufs.front().is_some_and(OutBuffer::is_empty) {
            self.bufs.pop_front();
        }
        if self.bufs.len() == 1
            && self
                .bufs
                .front()
                .is_some_and(|b| b.is_empty() && !b.is_small(KEEP_OUTBUF_CAPACITY))
        {
            self.bufs.clear();
        }
        if self.spilled > 0 {
            self.recount(link);
        }
        link.set_pending(self.total);
        if sent_any {
            let now = link.server().now_ms();
            self.last_sent_ms = now;
            link.touch(now);
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(blocked),
        }
    }

    /// Sends what it can, marking the connection broken on a failure.
    fn flush_or_break<W: Wire + ?Sized>(&mut self, link: &W) -> Result<bool, ClientDisconnected> {
        match self.flush(link) {
            Ok(blocked) => Ok(blocked),
            Err(e) => {
                log_socket_error(link, &e);
                link.mark_broken();
                Err(ClientDisconnected)
            }
        }
    }

    /// Waits while more than `outbuf_high_watermark` bytes are queued
    /// (waitress's `_flush_outbufs_below_high_watermark`), sending as the
    /// socket drains. A client that reads nothing must not hold a worker
    /// for ever: once nothing has been sent for `channel_timeout` (counted
    /// from the later of the last progress and the start of this wait),
    /// the connection is given up and the application's body sees the
    /// client gone.
    fn wait_below_high_watermark<W: Wire + ?Sized>(
        &mut self,
        link: &W,
    ) -> Result<(), ClientDisconnected> {
        let adj = &link.server().adj;
        let hw = adj.outbuf_high_watermark;
        let limit_ms = adj.channel_timeout.saturating_mul(1000);
        let began_ms = link.server().now_ms();
        while self.total > hw {
            if link.gone() {
                return Err(ClientDisconnected);
            }
            self.flush_or_break(link)?;
            if self.total <= hw || self.may_spill(link) {
                // Below the watermark, or the rest may go to the
                // connection's temporary file: the worker goes on (and is
                // soon free); the I/O thread sends what is buffered.
                break;
            }
            let since = self.last_sent_ms.max(began_ms);
            let stalled_ms = link.server().now_ms().saturating_sub(since);
            if limit_ms > 0 && stalled_ms >= limit_ms {
                crate::log_warning!(
                    "Client read nothing for {} seconds with {} bytes waiting; closing the connection and releasing the worker (channel_timeout)",
                    stalled_ms / 1000,
                    self.total
                );
                link.mark_broken();
                link.server().counters.not_reading();
                return Err(ClientDisconnected);
            }
            let mut left = (limit_ms > 0).then(|| Duration::from_millis(limit_ms - stalled_ms));
            if self.total - self.file_total < adj.outbuf_spill_limit {
                // Held back by the server-wide total only: other
                // connections draining make room without this socket
                // becoming writable, so look again now and then.
                let recheck = Duration::from_millis(SPILL_RECHECK_MS);
                left = Some(left.map_or(recheck, |l| l.min(recheck)));
            }
            // The loop shuts the socket down when it gives up on the
            // connection (graceful stop over, client gone), which ends
            // this wait at once.
            if let Err(e) = sys::wait_writable(link.fd(), left) {
                log_socket_error(link, &e);
                link.mark_broken();
                return Err(ClientDisconnected);
            }
        }
        Ok(())
    }
}

/// The worker's output while it holds the connection.
#[derive(Debug)]
pub(crate) struct WorkerOut<'a, W: Wire + ?Sized> {
    pub link: &'a W,
    /// More pipelined requests are to be answered in this run: responses
    /// are buffered (up to [`BATCH_BYTES`]) and sent together.
    pub batching: bool,
}

impl<W: Wire + ?Sized> WorkerOut<'_, W> {
    /// Sends what is queued (at the end of a response or of a batch);
    /// what the socket does not take is left for the loop.
    pub(crate) fn flush(&self) {
        if self.link.pending() == 0 || self.link.gone() {
            return;
        }
        let _ = self.link.out().flush_or_break(self.link);
    }
}

impl<W: Wire + ?Sized> Output for WorkerOut<'_, W> {
    fn write_soon(&self, parts: &[&[u8]]) -> Result<(), ClientDisconnected> {
        let link = self.link;
        if link.gone() {
            return Err(ClientDisconnected);
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len == 0 {
            return Ok(());
        }
        let send_bytes = link.server().adj.send_bytes as u64;
        let flush_at = if self.batching {
            send_bytes.max(BATCH_BYTES)
        } else {
            send_bytes
        };
        let mut sent = 0;
        if link.pending() == 0 && len as u64 >= flush_at {
            // Nothing queued before these bytes: straight from the
            // caller's buffers, head and body in one system call, without
            // the output lock.
            match sys::send_vectored(link.fd(), parts) {
                Ok(n) => {
                    link.server().counters.sent(n);
                    if n == len {
                        return Ok(());
                    }
                    sent = n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    log_socket_error(link, &e);
                    link.mark_broken();
                    return Err(ClientDisconnected);
                }
            }
        }
        let mut out = link.out();
        out.wait_below_high_watermark(link)?;
        if let Err(e) = out.append_parts(link, parts, sent) {
            crate::log_error!("could not buffer response output: {e}");
            link.mark_broken();
            return Err(ClientDisconnected);
        }
        if out.total >= flush_at {
            out.flush_or_break(link)?;
        }
        Ok(())
    }

    fn write_file(&self, file: FileBuffer) -> Result<(), ClientDisconnected> {
        let link = self.link;
        if link.gone() {
            return Err(ClientDisconnected);
        }
        if file.is_empty() {
            return Ok(());
        }
        let mut out = link.out();
        out.wait_below_high_watermark(link)?;
        out.push_file(link, file);
        // Sends what the socket takes now; the loop sends the rest (the
        // worker does not wait for a file).
        out.flush_or_break(link)?;
        Ok(())
    }

    fn is_draining(&self) -> bool {
        self.link.server().is_draining()
    }

    fn switch(&self, handler: Handler) -> Result<(), HttpError> {
        let server = self.link.server();
        let reservation = server.upgrades.reserve().ok_or_else(|| {
            HttpError::service_unavailable(format!(
                "{} upgraded connections are open (upgraded_connection_limit).",
                server.adj.upgraded_connection_limit
            ))
        })?;
        match crate::upgrade::spawn(&server.upgrades, reservation, handler) {
            Ok(handoff) => {
                self.link.put_switch(handoff);
                Ok(())
            }
            Err(e) => {
                crate::log_error!("could not start a thread for an upgraded connection: {e}");
                Err(HttpError::service_unavailable(
                    "No thread could be started for the upgraded connection.",
                ))
            }
        }
    }
}

/// The I/O thread's output while it holds the connection: writes never
/// wait.
#[derive(Debug)]
pub(crate) struct LoopOut<'a, W: Wire + ?Sized>(pub &'a W);

impl<W: Wire + ?Sized> Output for LoopOut<'_, W> {
    fn write_soon(&self, parts: &[&[u8]]) -> Result<(), ClientDisconnected> {
        let link = self.0;
        if link.gone() {
            return Err(ClientDisconnected);
        }
        let mut out = link.out();
        if let Err(e) = out.append_parts(link, parts, 0) {
            crate::log_error!("could not buffer response output: {e}");
            link.mark_broken();
            return Err(ClientDisconnected);
        }
        out.flush_or_break(link)?;
        Ok(())
    }

    fn write_file(&self, _file: FileBuffer) -> Result<(), ClientDisconnected> {
        // The I/O thread's own answers are never files.
        Err(ClientDisconnected)
    }

    fn is_draining(&self) -> bool {
        self.0.server().is_draining()
    }
}
