//! Pushed bodies: a response whose body arrives from outside the worker
//! ([`Body::channel`](crate::Body::channel)), for server-sent events, long
//! polling and anything else that is produced slowly.
//!
//! The application returns the response at once; the worker writes its
//! head, attaches the body to the connection and is free. Any thread then
//! sends chunks through the [`BodySender`]: each goes straight to the
//! socket when it takes it (no `send_bytes` delay), else into the
//! connection's output buffers, which the I/O thread flushes. Dropping the
//! last sender (or [`BodySender::finish`]) ends the body: the chunked
//! terminator, or the close of an HTTP/1.0 connection without a length.
//!
//! # Who touches what
//!
//! A [`Push`] is shared by the senders, the worker that attaches it and the
//! I/O thread, under its `state` mutex. Once attached, a sender appends to
//! the connection's output buffers under their mutex (`Link::out`), which
//! the connection's holder (the worker until it releases the connection
//! with `PUSH`, then the loop) takes as well: the lock serialises a
//! sender's appends and sends with the holder's flushes, so chunks never
//! interleave and never overtake the head. Lock order: `Push::state`, then
//! the output lock.
//!
//! * *Back-pressure.* A sender waits on `ready` while the output holds more
//!   than `outbuf_high_watermark` bytes (or, before the head is out, while
//!   a MiB is kept for it). The loop signals `ready` after a flush
//!   brings the output below the watermark, *holding `state`*, so that the
//!   signal cannot fall between a sender's check (made under `state`) and
//!   its wait.
//! * *The end.* The last sender marks the push ended under `state`,
//!   appends the terminator and wakes the loop, which closes the cycle once
//!   the output is flushed (the next pipelined request runs then).
//! * *The client gone.* The loop (or a failed send) marks the push closed
//!   under `state` and wakes every sender: a send then fails at once, and
//!   [`BodySender::is_closed`] says so without sending.
//!
//! Thread: any (the senders), the worker (attach), the I/O thread.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How a pushed body is delimited on the wire (the head decided it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PushFraming {
    /// No body may be sent (a `HEAD`, a 204 or 304): senders are told at
    /// once.
    None,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// HTTP/1.0 without a length: the bytes as they are; the connection
    /// closes at the end.
    UntilClose,
    /// The application's `Content-Length`: this many bytes are still to
    /// be sent; more are cut.
    Length(u64),
}

/// Why a send failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The body will take no more: the client is gone, the server stopped,
    /// the response had no body (a `HEAD`), or it was never sent (the
    /// application returned another response).
    Closed,
    /// [`BodySender::send_timeout`]: the client did not take enough of what
    /// was queued in time.
    Timeout,
    /// [`BodySender::try_send`]: the connection's buffered output is above
    /// `outbuf_high_watermark`; try again later.
    Full,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed => {
                "the pushed body is closed (the client is gone, or the response takes no body)"
            }
            SendError::Timeout => {
                "timed out waiting for the client to take the pushed body's bytes"
            }
            SendError::Full => "the connection's output is full (outbuf_high_watermark)",
        })
    }
}

impl std::error::Error for SendError {}

/// Takes the bytes of one append, piece by piece.
pub(crate) type Sink<'a> = dyn FnMut(&[u8]) + 'a;

/// Gives an append's pieces to a [`Sink`].
pub(crate) type Fill<'a> = dyn FnMut(&mut Sink<'_>) + 'a;

/// The attached connection of a push, type-erased: what a sender needs of
/// it (the link implements it, `link.rs`; this module knows nothing of
/// the output buffers or the server).
pub(crate) trait PushTarget: Send + Sync {
    /// Appends the pieces `fill` gives, in order, to the connection's
    /// output, then sends what the socket takes now. Returns the bytes
    /// still queued, or `Err` once the connection is unusable.
    fn append_and_flush(&self, fill: &mut Fill<'_>) -> Result<u64, ()>;
    /// Bytes queued in the connection's output.
    fn queued(&self) -> u64;
    /// `outbuf_high_watermark`: past it, senders wait.
    fn high_watermark(&self) -> u64;
    /// The client is gone or a send failed.
    fn client_gone(&self) -> bool;
    /// Asks the I/O thread to look at the connection (to flush what the
    /// socket did not take, or to see the body's end).
    fn wake(&self);
    /// Counts a pushed body's start, bytes or end in the statistics.
    fn count(&self, event: PushEvent);
}

/// What a push tells the statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PushEvent {
    /// A pushed body was attached to its connection.
    Started,
    /// Body bytes were accepted.
    Bytes(u64),
    /// The body ended (or its client left).
    Ended,
}

/// What the attaching worker gives a push.
pub(crate) struct Attach {
    pub target: Arc<dyn PushTarget>,
    pub framing: PushFraming,
    /// Writes the response's access-log line with the body's length, at
    /// the end.
    pub log: Option<Box<dyn FnOnce(u64) + Send>>,
}

struct State {
    attached: Option<Attach>,
    /// What senders sent before the head was out, chunk by chunk (framed
    /// at attach, when the framing is known), and its size.
    early: Vec<Vec<u8>>,
    early_bytes: u64,
    /// Body bytes accepted (after framing cut them), for the log and the
    /// statistics.
    bytes: u64,
    senders: usize,
    /// No more bytes will come (the last sender is gone).
    ended: bool,
    /// No more bytes are taken (the client is gone, no body, not sent).
    closed: bool,
}

/// The state of one pushed body (see the module docs).
pub(crate) struct Push {
    state: Mutex<State>,
    ready: Condvar,
    /// `state.ended` or `state.closed`, for the loop's quick look.
    done: AtomicBool,
    /// A sender waits for room (the loop signals only then).
    waiting: AtomicBool,
}

impl fmt::Debug for Push {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Push")
            .field("done", &self.done.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The sending end of a pushed body ([`Body::channel`](crate::Body::channel)):
/// `Send + Sync + Clone`, so any thread may send; the body ends when the
/// last clone is dropped (or finished).
pub struct BodySender {
    push: Arc<Push>,
}

/// The receiving end, inside [`Body::Pushed`](crate::Body::Pushed): the
/// server attaches it to the connection.
pub struct Pushed {
    push: Arc<Push>,
    attached: bool,
}

impl fmt::Debug for BodySender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodySender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl fmt::Debug for Pushed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pushed")
    }
}

/// A new pushed body: its receiving end (for the response) and the first
/// sender.
pub(crate) fn channel() -> (Pushed, BodySender) {
    let push = Arc::new(Push {
        state: Mutex::new(State {
            attached: None,
            early: Vec::new(),
            early_bytes: 0,
            bytes: 0,
            senders: 1,
            ended: false,
            closed: false,
        }),
        ready: Condvar::new(),
        done: AtomicBool::new(false),
        waiting: AtomicBool::new(false),
    });
    (
        Pushed {
            push: Arc::clone(&push),
            attached: false,
        },
        BodySender { push },
    )
}

/// What `data` is on the wire under `framing` (a chunk; the bytes; or as
/// many as the length still allows), handed to `sink` piece by piece.
/// Returns the body bytes taken.
fn frame(framing: &mut PushFraming, data: &[u8], sink: &mut dyn FnMut(&[u8])) -> u64 {
    match framing {
        PushFraming::None => 0,
        PushFraming::Chunked => {
            let mut size = [0u8; 20];
            let digits = hex(data.len() as u64, &mut size);
            sink(digits);
            sink(b"\r\n");
            sink(data);
            sink(b"\r\n");
            data.len() as u64
        }
        PushFraming::UntilClose => {
            sink(data);
            data.len() as u64
        }
        PushFraming::Length(left) => {
            let n = (data.len() as u64).min(*left);
            *left -= n;
            sink(data.get(..n as usize).unwrap_or(&[]));
            n
        }
    }
}

/// `n` in upper-case hexadecimal, in `buf`.
fn hex(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789ABCDEF"[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

impl Push {
    fn lock(&self) -> MutexGuard<'_, State> {
        crate::lock(&self.state)
    }

    /// Whether the body is over (ended by its senders, or closed): the
    /// loop ends the response once the output is flushed.
    pub(crate) fn done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// The body ended short of its framing (a `Content-Length` not
    /// reached), or its framing ends only with the connection: the
    /// connection must close after it. (A client that left makes the
    /// connection unusable anyway; a body that may have none, a `HEAD`'s,
    /// ends nothing.)
    pub(crate) fn ends_connection(&self) -> bool {
        let st = self.lock();
        match st.attached.as_ref().map(|a| a.framing) {
            Some(PushFraming::Length(left)) => left > 0,
            Some(PushFraming::UntilClose) => true,
            Some(PushFraming::Chunked | PushFraming::None) | None => false,
        }
    }

    /// Marks the body closed (the client is gone, the server stops): every
    /// sender is told. Counts and logs the end, and lets go of the
    /// connection (a sender that lives on must not keep its socket open).
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        self.finish_locked(&mut st);
        st.attached = None;
        st.early = Vec::new();
        self.ready.notify_all();
    }

    /// The loop flushed the output below the high watermark: senders
    /// waiting for room may go on (signalled under `state`: see the module
    /// docs).
    pub(crate) fn room(&self) {
        if self.waiting.load(Ordering::Acquire) {
            let _st = self.lock();
            self.waiting.store(false, Ordering::Release);
            self.ready.notify_all();
        }
    }

    /// The end (ended or closed, under `state`): the statistics and the log
    /// line, once; and the loop is told.
    fn finish_locked(&self, st: &mut State) {
        if st.attached.is_none() && !st.closed {
            // Ended before the head was out: the attach finishes it (its
            // log line and statistics need the connection).
            return;
        }
        if self.done.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(att) = st.attached.as_mut() {
            att.target.count(PushEvent::Ended);
            if let Some(log) = att.log.take() {
                log(st.bytes);
            }
            att.target.wake();
        }
    }

    /// Frames `data` into the attached connection's output and sends what
    /// the socket takes now. `Err` once the connection is unusable.
    fn write_locked(&self, st: &mut State, data: &[u8]) -> Result<(), SendError> {
        let Some(att) = st.attached.as_mut() else {
            return Err(SendError::Closed);
        };
        let target = Arc::clone(&att.target);
        let framing = &mut att.framing;
        let mut taken = 0;
        let written = target.append_and_flush(&mut |sink| {
            taken = frame(framing, data, sink);
        });
        let Ok(left) = written else {
            st.closed = true;
            self.finish_locked(st);
            self.ready.notify_all();
            return Err(SendError::Closed);
        };
        st.bytes += taken;
        target.count(PushEvent::Bytes(taken));
        if left > 0 {
            // The socket did not take it all: the loop sends the rest when
            // it can.
            target.wake();
        }
        Ok(())
    }

    /// The last sender is gone (under `state`): the terminator goes out.
    fn end_locked(&self, st: &mut State) {
        let Some(att) = st.attached.as_mut() else {
            return;
        };
        if att.framing == PushFraming::Chunked {
            let _ = att.target.append_and_flush(&mut |sink| sink(b"0\r\n\r\n"));
        }
    }

    /// Sends one chunk: waits (up to `deadline`, or not at all with
    /// `block` false) while there is no room.
    fn send(&self, data: &[u8], block: bool, deadline: Option<Instant>) -> Result<(), SendError> {
        if data.is_empty() {
            // An empty chunk would end a chunked body.
            return Ok(());
        }
        let mut st = self.lock();
        loop {
            if st.closed || st.ended {
                return Err(SendError::Closed);
            }
            let room = match &st.attached {
                None => {
                    // The head is not out yet: kept, up to a watermark's
                    // worth, and framed at attach.
                    st.early_bytes < EARLY_LIMIT
                }
                Some(att) => {
                    if att.target.client_gone() {
                        st.closed = true;
                        self.finish_locked(&mut st);
                        self.ready.notify_all();
                        return Err(SendError::Closed);
                    }
                    att.target.queued() <= att.target.high_watermark()
                }
            };
            if room {
                if st.attached.is_none() {
                    st.early_bytes += data.len() as u64;
                    st.early.push(data.to_vec());
                    return Ok(());
                }
                return self.write_locked(&mut st, data);
            }
            if !block {
                return Err(SendError::Full);
            }
            self.waiting.store(true, Ordering::Release);
            st = match deadline {
                None => match self.ready.wait(st) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                },
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(SendError::Timeout);
                    }
                    match self.ready.wait_timeout(st, d - now) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    }
                }
            };
        }
    }
}

/// What senders may send before the head is out.
const EARLY_LIMIT: u64 = 1 << 20;

impl Pushed {
    /// Attaches the body to its connection, whose head was just queued:
    /// what senders sent already goes out, and from now on they write to
    /// the connection. With [`PushFraming::None`] (no body may be sent),
    /// the senders are told at once.
    pub(crate) fn attach(mut self, attach: Attach) -> Arc<Push> {
        self.attached = true;
        let push = &self.push;
        let mut st = push.lock();
        attach.target.count(PushEvent::Started);
        let no_body = attach.framing == PushFraming::None;
        st.attached = Some(attach);
        if no_body {
            st.closed = true;
        }
        let early = std::mem::take(&mut st.early);
        st.early_bytes = 0;
        for chunk in early {
            if st.closed || push.write_locked(&mut st, &chunk).is_err() {
                break;
            }
        }
        if st.ended && !st.closed {
            push.end_locked(&mut st);
        }
        if st.ended || st.closed {
            push.finish_locked(&mut st);
        }
        push.ready.notify_all();
        drop(st);
        Arc::clone(push)
    }
}

impl Drop for Pushed {
    fn drop(&mut self) {
        if !self.attached {
            // The application returned another response (or none): nobody
            // will read what is sent.
            let mut st = self.push.lock();
            st.closed = true;
            self.push.done.store(true, Ordering::Release);
            self.push.ready.notify_all();
            drop(st);
        }
    }
}

impl BodySender {
    /// Sends `data` as the body's next bytes, waiting while the
    /// connection's buffered output is above `outbuf_high_watermark` (the
    /// client reads slowly). `Err(Closed)` at once when the body will take
    /// no more (see [`SendError::Closed`]).
    pub fn send(&self, data: &[u8]) -> Result<(), SendError> {
        self.push.send(data, true, None)
    }

    /// [`send`](Self::send), waiting at most `timeout` for room.
    pub fn send_timeout(&self, data: &[u8], timeout: Duration) -> Result<(), SendError> {
        self.push.send(data, true, Some(Instant::now() + timeout))
    }

    /// [`send`](Self::send) without waiting: `Err(Full)` when there is no
    /// room now.
    pub fn try_send(&self, data: &[u8]) -> Result<(), SendError> {
        self.push.send(data, false, None)
    }

    /// Whether the body takes no more bytes (the client is gone, the server
    /// stopped, the response has no body), without sending.
    pub fn is_closed(&self) -> bool {
        let st = self.push.lock();
        st.closed || st.attached.as_ref().is_some_and(|a| a.target.client_gone())
    }

    /// Ends the body now (as dropping the last sender does, but for this
    /// sender only: other clones may still send).
    pub fn finish(self) {
        drop(self);
    }
}

impl Clone for BodySender {
    fn clone(&self) -> Self {
        self.push.lock().senders += 1;
        BodySender {
            push: Arc::clone(&self.push),
        }
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        let push = &self.push;
        let mut st = push.lock();
        st.senders = st.senders.saturating_sub(1);
        if st.senders == 0 && !st.ended {
            st.ended = true;
            if !st.closed {
                push.end_locked(&mut st);
            }
            push.finish_locked(&mut st);
            push.ready.notify_all();
        }
    }
}
