//! WebSocket (RFC 6455) over an upgraded connection: the opening
//! handshake ([`handshake`]), then a blocking [`WebSocket`] that reads
//! whole messages and sends them, from one thread or, split into a
//! [`Reader`] and a cloneable [`Sender`], from several. With the
//! `websocket` feature (off by default); no dependency beyond the crate's
//! own (SHA-1 and base64 are written here).
//!
//! ```no_run
//! use maitred::{websocket, Request, Response};
//!
//! fn app(req: &mut Request) -> Response {
//!     if !websocket::is_websocket_request(req) {
//!         return Response::text("Hello!");
//!     }
//!     match websocket::handshake(req) {
//!         // An echo: every message back as it came.
//!         Ok(hs) => hs.accept(|mut ws| {
//!             while let Ok(Some(msg)) = ws.read() {
//!                 if ws.send(&msg).is_err() {
//!                     break;
//!                 }
//!             }
//!         }),
//!         Err(refusal) => refusal.into_response(),
//!     }
//! }
//! ```
//!
//! What it does for the application:
//!
//! * **Messages**: [`read`](WebSocket::read) gives the next text or binary
//!   message, its fragments joined; text is checked to be UTF-8 as it
//!   arrives, across fragments, and fails at the first invalid byte. A
//!   message longer than `websocket_max_message_size` (the setting, 16 MiB
//!   by default; or [`Config::max_message_size`]) fails the connection
//!   with 1009 as soon as a frame header announces it.
//! * **Control frames**: pings are answered with pongs (also between the
//!   fragments of a message); pongs are taken and dropped.
//! * **Errors**: a frame a client may not send (unmasked, a reserved bit
//!   or opcode, a fragmented or too long control frame, a continuation
//!   out of place, a bad close code) fails the connection with 1002, text
//!   that is not UTF-8 with 1007: the close frame with that code goes out,
//!   then the connection is closed, and `read` returns
//!   [`Error::Protocol`].
//! * **Closing**: a client's close is answered with its code, then the
//!   server closes the TCP connection first (RFC 6455 §7.1.1) and `read`
//!   returns `Ok(None)`; [`close`](WebSocket::close) starts the handshake
//!   from this side. Waiting for the other side is bounded by
//!   [`Config::close_timeout`]. Nothing is sent after a close.
//! * **Threads**: [`split`](WebSocket::split) gives a [`Reader`] and a
//!   [`Sender`]; clones of the sender can send from any thread while the
//!   reader reads (each frame is written whole under a lock, so messages
//!   from several threads never interleave, and the reader's pongs and
//!   close replies take the same lock).
//!
//! Not supported: extensions. `permessage-deflate` (RFC 7692) is declined
//! in the handshake (the 101 names no extension), since deflate would need
//! a dependency; clients then send uncompressed frames. Messages are sent
//! whole, as one frame each.
//!
//! A graceful stop of the server begins the closing handshake of every
//! open WebSocket with 1001 ("going away", reason `server shutting
//! down`): nothing more can be sent, and `read` returns `Ok(None)` once
//! the client answered and the connection is closed, so handlers return
//! and the stop ends without waiting. (The close frame is sent only if the
//! socket takes it at once; a connection whose client does not answer, or
//! does not read, is shut down after `shutdown_timeout`, and `read`
//! returns `Ok(None)` or [`Error::ConnectionLost`].)
//!
//! Thread: the connection's handler thread (the reader), and any thread
//! holding a [`Sender`].

mod base64;
mod frame;
mod handshake;
mod sha1;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use crate::upgrade::Upgraded;

pub use frame::CloseFrame;
pub use handshake::{accept_key, handshake, is_websocket_request, Handshake, Refusal};
#[cfg(feature = "http")]
pub use handshake::{handshake_http, is_websocket_request_http};

use frame::{
    Decoder, Event, ProtocolError, CLOSE_GOING_AWAY, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT,
};

/// The decoder and encoders, for the fuzz target and tests
/// (`maitred::__private::websocket`).
pub(crate) mod sans_io {
    pub use super::frame::{
        apply_mask, close_payload, encode_frame, encode_masked, frame_header, is_valid_close_code,
        CloseFrame, Decoder, Event, ProtocolError, Utf8Validator, MAX_CONTROL_PAYLOAD, OP_BINARY,
        OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
    };
}

/// The default of [`Config::max_message_size`] (and of the
/// `websocket_max_message_size` setting): 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 16 << 20;

/// Bytes read from the socket at a time.
const READ_BUFFER: usize = 16 << 10;

/// A payload up to this long is sent in one write with its header; a
/// longer one as the header, then the payload (no copy).
const COPY_LIMIT: usize = 16 << 10;
/// The reason sent with 1001 when the server stops.
const GOING_AWAY_REASON: &str = "server shutting down";

/// A message: text (UTF-8) or binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Message {
    /// The payload's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// True for a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }

    /// The payload, as bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Message::Text(t) => t.into_bytes(),
            Message::Binary(b) => b,
        }
    }
}

impl From<String> for Message {
    fn from(s: String) -> Message {
        Message::Text(s)
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Message {
        Message::Text(s.to_string())
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Message {
        Message::Binary(b)
    }
}

/// A WebSocket connection's limits and timeouts.
///
/// [`Handshake::accept`] and [`WebSocket::new`] take
/// [`max_message_size`](Config::max_message_size) from the server's
/// `websocket_max_message_size` setting; [`Config::default`] (for
/// [`Handshake::with_config`]) has the setting's default.
///
/// ```
/// use std::time::Duration;
/// let c = maitred::websocket::Config::default()
///     .max_message_size(1 << 20)
///     .close_timeout(Duration::from_secs(2));
/// assert_eq!(c.max_message_size, 1 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The longest message (its fragments together) in bytes; a longer one
    /// fails the connection with close code 1009. Default: 16 MiB.
    pub max_message_size: u64,
    /// How long the closing handshake waits for the other side: for the
    /// answer to a close this side sent, then for the client to close its
    /// end of the connection. Default: 5 s.
    pub close_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            close_timeout: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// The defaults, with `max_message_size` from the
    /// `websocket_max_message_size` setting of `adj`.
    pub fn from_adjustments(adj: &crate::Adjustments) -> Config {
        Config::default().max_message_size(adj.websocket_max_message_size)
    }

    /// The defaults, with `max_message_size` from the setting of the
    /// server the stream came from.
    pub(crate) fn for_stream(stream: &Upgraded) -> Config {
        Config::default().max_message_size(stream.websocket_max_message_size())
    }

    /// Sets [`max_message_size`](Config::max_message_size).
    pub fn max_message_size(mut self, bytes: u64) -> Config {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`close_timeout`](Config::close_timeout).
    pub fn close_timeout(mut self, timeout: Duration) -> Config {
        self.close_timeout = timeout;
        self
    }
}

/// What went wrong on a WebSocket.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol, so the connection was failed: a close
    /// frame with `code` (1002 protocol error, 1007 invalid UTF-8, 1009
    /// message too big) and `reason` was sent, and the connection closed.
    Protocol {
        /// The close code sent.
        code: u16,
        /// What the peer did wrong (also the close frame's reason).
        reason: &'static str,
    },
    /// The connection ended without a close frame from the peer (what RFC
    /// 6455 reports as 1006), or a graceful stop of the server ended it.
    ConnectionLost,
    /// A close frame was sent already (by this side, as a reply, or when
    /// the connection failed): nothing more can be sent.
    Closed,
    /// What the application asked to send is not allowed: the message
    /// says what (a close code one may not send, a close reason over 123
    /// bytes, a ping payload over 125 bytes).
    Invalid(&'static str),
    /// Reading or writing the connection failed. A read that timed out
    /// (see [`WebSocket::set_read_timeout`]) can be tried again.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol { code, reason } => {
                write!(f, "WebSocket failed with close code {code}: {reason}")
            }
            Error::ConnectionLost => {
                f.write_str("WebSocket connection ended without a close frame")
            }
            Error::Closed => f.write_str("WebSocket is closed: nothing more can be sent"),
            Error::Invalid(what) => write!(f, "WebSocket cannot send that: {what}"),
            Error::Io(e) => write!(f, "WebSocket I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Error {
        Error::Protocol {
            code: e.code,
            reason: e.reason,
        }
    }
}

/// The write half, under the lock every frame is written with.
#[derive(Debug)]
struct Out {
    stream: Upgraded,
    /// A close frame was sent, or a write failed: no more frames.
    closed: bool,
    /// When the close frame was sent (for the close timeout).
    closed_at: Option<Instant>,
}

/// What the reader and every sender share.
#[derive(Debug)]
struct Shared {
    out: Mutex<Out>,
    /// The server's graceful stop began: the next frame written is the
    /// close with 1001 (see [`Sender::going_away`]).
    going_away: AtomicBool,
    /// The reader has ended the connection (the close timer's signal).
    finished: Mutex<bool>,
    finished_cv: Condvar,
    close_timeout: Duration,
}

impl Shared {
    fn finish(&self) {
        *crate::lock(&self.finished) = true;
        self.finished_cv.notify_all();
    }
}

/// The sending side of a WebSocket: cheap to clone, and usable from any
/// thread while a [`Reader`] reads (frames are written whole, one at a
/// time). See [`WebSocket::split`].
#[derive(Clone, Debug)]
pub struct Sender {
    shared: Arc<Shared>,
}

impl Sender {
    /// Writes one frame; `close` marks the end of sending. Once the
    /// server's stop began, the close with 1001 goes out first (or right
    /// after the frame being written), and nothing more.
    fn write_frame(&self, opcode: u8, payload: &[u8]) -> Result<(), Error> {
        let mut out = crate::lock(&self.shared.out);
        if out.closed {
            return Err(Error::Closed);
        }
        if opcode != OP_CLOSE && self.shared.going_away.load(Ordering::SeqCst) {
            Sender::write_going_away(&mut out);
            return Err(Error::Closed);
        }
        let written = Sender::write_locked(&mut out, opcode, payload);
        if written.is_ok() && self.shared.going_away.load(Ordering::SeqCst) {
            Sender::write_going_away(&mut out);
        }
        written
    }

    /// The close with 1001, on a stream still open for writing.
    fn write_going_away(out: &mut MutexGuard<'_, Out>) {
        if !out.closed {
            let payload = frame::close_payload(CLOSE_GOING_AWAY, GOING_AWAY_REASON);
            let _ = Sender::write_locked(out, OP_CLOSE, &payload);
        }
    }

    /// Writes one frame under the lock.
    fn write_locked(
        out: &mut MutexGuard<'_, Out>,
        opcode: u8,
        payload: &[u8],
    ) -> Result<(), Error> {
        if opcode == OP_CLOSE {
            out.closed = true;
            out.closed_at = Some(Instant::now());
        }
        let (h, n) = frame::frame_header(true, opcode, payload.len());
        let header = h.get(..n).unwrap_or(&[]);
        let written = if payload.len() <= COPY_LIMIT {
            let mut one = Vec::with_capacity(n + payload.len());
            one.extend_from_slice(header);
            one.extend_from_slice(payload);
            out.stream.write_all(&one)
        } else {
            out.stream
                .write_all(header)
                .and_then(|()| out.stream.write_all(payload))
        };
        if let Err(e) = written {
            // A frame cut short: nothing after it would make sense.
            out.closed = true;
            out.closed_at.get_or_insert_with(Instant::now);
            return Err(Error::Io(e));
        }
        Ok(())
    }

    /// Sends a message as one frame.
    pub fn send(&self, msg: &Message) -> Result<(), Error> {
        match msg {
            Message::Text(t) => self.send_text(t),
            Message::Binary(b) => self.send_binary(b),
        }
    }

    /// Sends a text message.
    pub fn send_text(&self, text: &str) -> Result<(), Error> {
        self.write_frame(OP_TEXT, text.as_bytes())
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<(), Error> {
        self.write_frame(OP_BINARY, data)
    }

    /// Sends a ping (at most 125 bytes of payload); the client answers
    /// with a pong, which the reader takes and drops.
    pub fn ping(&self, payload: &[u8]) -> Result<(), Error> {
        if payload.len() > frame::MAX_CONTROL_PAYLOAD {
            return Err(Error::Invalid("a ping's payload is at most 125 bytes"));
        }
        self.write_frame(OP_PING, payload)
    }

    fn pong(&self, payload: &[u8]) -> Result<(), Error> {
        self.write_frame(OP_PONG, payload)
    }

    /// Checks a close code and reason the application wants to send.
    fn close_frame(code: u16, reason: &str) -> Result<Vec<u8>, Error> {
        if !frame::is_valid_close_code(code) {
            return Err(Error::Invalid(
                "a close code must be 1000-1003, 1007-1014 or 3000-4999",
            ));
        }
        if reason.len() > frame::MAX_CONTROL_PAYLOAD - 2 {
            return Err(Error::Invalid("a close reason is at most 123 bytes"));
        }
        Ok(frame::close_payload(code, reason))
    }

    /// Starts the closing handshake: sends a close frame with `code`
    /// (1000 is a normal closure) and `reason` (at most 123 bytes). Nothing
    /// more can be sent; the [`Reader`] drops the messages still coming
    /// and returns `Ok(None)` once the client answers and the connection
    /// is closed, or after [`Config::close_timeout`], when the connection
    /// is shut down.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        let payload = Sender::close_frame(code, reason)?;
        self.write_frame(OP_CLOSE, &payload)?;
        self.arm_close_timer();
        Ok(())
    }

    /// After this side's close: shuts the connection down if the reader
    /// has not ended it within the close timeout (it may be blocked in a
    /// read that started before the close, with no timeout).
    fn arm_close_timer(&self) {
        if *crate::lock(&self.shared.finished) {
            return;
        }
        let Ok(ctl) = crate::lock(&self.shared.out).stream.try_clone() else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("maitred-ws-close".into())
            .spawn(move || {
                let finished = crate::lock(&shared.finished);
                let (finished, _) = shared
                    .finished_cv
                    .wait_timeout_while(finished, shared.close_timeout, |done| !*done)
                    .unwrap_or_else(|p| p.into_inner());
                if !*finished {
                    let _ = ctl.shutdown(Shutdown::Both);
                }
            });
        if let Err(e) = spawned {
            crate::log_warning!("WebSocket: no thread for the close timeout: {e}");
        }
    }

    /// The server's graceful stop began: the close frame with 1001
    /// ("going away") goes out, so that the client answers and the reader
    /// ends the connection well before `shutdown_timeout`. This runs on
    /// the stop's `maitred-upgraded-stop` thread, which tells every
    /// connection in turn, so it never waits for the socket, and for the
    /// lock at most 10 ms (a thousand busy connections are told within
    /// 10 s); whoever writes next sends the close instead.
    ///
    /// The interleavings with a sender (each frame is written whole under
    /// the lock; `going_away` is `SeqCst`, stored before the first try):
    ///
    /// * The lock is free at one of the tries: the close is written here
    ///   if the socket takes some of it at once (the rest of a frame cut
    ///   short is waited for, a second at most); if it takes nothing, the
    ///   next sender to write sends it, or the stop's shutdown of the
    ///   socket ends the connection.
    /// * It is held at every try (frames are being written for 10 ms, or
    ///   one large frame to a slow reader): the holder checks the flag
    ///   after its frame, and every frame that begins later checks it
    ///   before; whichever sees it first writes the close (blocking, as
    ///   that sender writes everything), and later ones get
    ///   [`Error::Closed`]. A holder past its check when the flag was set
    ///   releases the lock soon after, and a later try takes it.
    /// * The close was written already (the client's, the application's,
    ///   a failure): nothing more is sent.
    fn going_away(&self) {
        const TRIES: u32 = 10;
        const PAUSE: Duration = Duration::from_millis(1);
        self.shared.going_away.store(true, Ordering::SeqCst);
        for _ in 0..TRIES {
            let mut out = match self.shared.out.try_lock() {
                Ok(out) => out,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    std::thread::sleep(PAUSE);
                    continue;
                }
            };
            if out.closed {
                return;
            }
            let payload = frame::close_payload(CLOSE_GOING_AWAY, GOING_AWAY_REASON);
            let (h, n) = frame::frame_header(true, OP_CLOSE, payload.len());
            let mut one = Vec::with_capacity(n + payload.len());
            one.extend_from_slice(h.get(..n).unwrap_or(&[]));
            one.extend_from_slice(&payload);
            let fd = out.stream.as_raw_fd();
            match crate::sys::send_now(fd, &one) {
                // The client reads nothing (its window is full): no close
                // frame from here; the next sender writes it, or the
                // stop's shutdown of the socket ends the connection.
                Ok(0) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Ok(k) => {
                    // Begun: nothing else may be written now. A frame cut
                    // short (a window with a few bytes left) is finished,
                    // waiting a little for room, else the stream can carry
                    // nothing more.
                    out.closed = true;
                    out.closed_at = Some(Instant::now());
                    if !Sender::finish_now(fd, one.get(k..).unwrap_or(&[])) {
                        let _ = out.stream.shutdown(Shutdown::Both);
                    }
                }
                Err(_) => {
                    out.closed = true;
                    out.closed_at = Some(Instant::now());
                    let _ = out.stream.shutdown(Shutdown::Both);
                }
            }
            return;
        }
    }

    /// Writes the rest of a small frame on the stop's thread, waiting at
    /// most a second for the client to make room; false if it did not.
    fn finish_now(fd: std::os::fd::RawFd, mut rest: &[u8]) -> bool {
        let deadline = Instant::now() + Duration::from_secs(1);
        while !rest.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !matches!(crate::sys::wait_writable(fd, Some(left)), Ok(true)) {
                return false;
            }
            match crate::sys::send_now(fd, rest) {
                Ok(n) => rest = rest.get(n..).unwrap_or(&[]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// True once nothing more can be sent (a close frame went out, or a
    /// write failed).
    pub fn is_closed(&self) -> bool {
        crate::lock(&self.shared.out).closed
    }
}

/// The reading side of a WebSocket (see [`WebSocket::split`]): it also
/// answers pings and the client's close, through the [`Sender`]'s lock.
#[derive(Debug)]
pub struct Reader {
    stream: Upgraded,
    decoder: Decoder,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    sender: Sender,
    /// The connection was ended (closed, failed or lost).
    done: bool,
    peer_close: Option<CloseFrame>,
    protocol: Option<String>,
}

impl Reader {
    /// The next message: `Ok(Some(message))`, or `Ok(None)` once the
    /// connection is closed (the closing handshake is done, whichever side
    /// began it; then always `Ok(None)`).
    ///
    /// Pings are answered on the way. When the client breaks the protocol,
    /// the connection is failed and this returns [`Error::Protocol`] (then
    /// `Ok(None)`); when it goes away without a close frame,
    /// [`Error::ConnectionLost`]. With a read timeout set, a read that
    /// times out is [`Error::Io`] and can be tried again.
    pub fn read(&mut self) -> Result<Option<Message>, Error> {
        loop {
            if self.done {
                return Ok(None);
            }
            while self.start < self.end {
                let input = self.buf.get(self.start..self.end).unwrap_or(&[]);
                match self.decoder.push(input) {
                    Err(e) => return Err(self.fail(e)),
                    Ok((used, event)) => {
                        self.start += used;
                        if let Some(event) = event {
                            if let Some(msg) = self.handle(event)? {
                                return Ok(Some(msg));
                            }
                            if self.done {
                                return Ok(None);
                            }
                        }
                    }
                }
            }
            self.start = 0;
            self.end = 0;
            if let Some(at) = self.close_sent_at() {
                // This side closed: wait for the answer until the timeout.
                let left = self
                    .sender
                    .shared
                    .close_timeout
                    .saturating_sub(at.elapsed());
                if left.is_zero() {
                    self.end_connection();
                    return Ok(None);
                }
                let _ = self.stream.set_read_timeout(Some(left));
            }
            match self.stream.read(&mut self.buf) {
                Ok(0) => {
                    let closing = self.close_sent_at().is_some();
                    self.end_connection();
                    return if closing {
                        Ok(None)
                    } else {
                        Err(Error::ConnectionLost)
                    };
                }
                Ok(n) => self.end = n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if self.close_sent_at().is_some() => {
                    self.end_connection();
                    return Ok(None);
                }
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    fn close_sent_at(&self) -> Option<Instant> {
        let out = crate::lock(&self.sender.shared.out);
        if out.closed {
            Some(out.closed_at.unwrap_or_else(Instant::now))
        } else {
            None
        }
    }

    /// What an event means for the application: a message to return,
    /// or nothing (a control frame was handled).
    fn handle(&mut self, event: Event) -> Result<Option<Message>, Error> {
        let closing = self.close_sent_at().is_some();
        match event {
            // After this side's close, the rest is dropped.
            Event::Text(_) | Event::Binary(_) | Event::Ping(_) if closing => Ok(None),
            Event::Text(t) => Ok(Some(Message::Text(t))),
            Event::Binary(b) => Ok(Some(Message::Binary(b))),
            Event::Ping(p) => match self.sender.pong(&p) {
                Ok(()) | Err(Error::Closed) => Ok(None),
                Err(e) => {
                    self.end_connection();
                    Err(e)
                }
            },
            Event::Pong(_) => Ok(None),
            Event::Close(frame) => {
                if !closing {
                    // Echo the code (none for a close without one).
                    let reply = match &frame {
                        Some(f) => f.code.to_be_bytes().to_vec(),
                        None => Vec::new(),
                    };
                    let _ = self.sender.write_frame(OP_CLOSE, &reply);
                }
                self.peer_close = frame;
                self.end_connection();
                Ok(None)
            }
        }
    }

    /// Fails the connection: the close frame with the error's code, then
    /// the end of the connection.
    fn fail(&mut self, e: ProtocolError) -> Error {
        let _ = self
            .sender
            .write_frame(OP_CLOSE, &frame::close_payload(e.code, e.reason));
        self.end_connection();
        Error::from(e)
    }

    /// Closes the TCP connection, this side first (RFC 6455 §7.1.1): the
    /// end of the stream goes after the close frame, then what the client
    /// still sends is read and dropped until it closes its end (so that
    /// the close frame is not lost to a reset), for at most the close
    /// timeout.
    fn end_connection(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        {
            let mut out = crate::lock(&self.sender.shared.out);
            out.closed = true;
        }
        let _ = self.stream.shutdown(Shutdown::Write);
        let deadline = Instant::now() + self.sender.shared.close_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match self.stream.read(&mut self.buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
        self.start = 0;
        self.end = 0;
        self.sender.shared.finish();
    }

    /// The close frame the client sent, once it did (`None` for a close
    /// without a status, or before).
    pub fn close_frame(&self) -> Option<&CloseFrame> {
        self.peer_close.as_ref()
    }

    /// The subprotocol chosen in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Sets how long a read may wait for the client (`None`: for ever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// The upgraded stream under the WebSocket (for its peer address, with
    /// [`Upgraded::tcp`]). Reading or writing it directly breaks the
    /// framing.
    pub fn stream(&self) -> &Upgraded {
        &self.stream
    }
}

/// A WebSocket connection, server side: read messages, send them, close.
/// See the [module docs](self) for what it checks and does on its own.
///
/// It reads and writes from the thread that owns it; for sending from
/// other threads, take a [`Sender`] with [`sender`](WebSocket::sender) (or
/// [`split`](WebSocket::split) it).
#[derive(Debug)]
pub struct WebSocket {
    reader: Reader,
}

impl WebSocket {
    /// A WebSocket over a stream that switched to it (after a 101 with
    /// `Sec-WebSocket-Accept`; [`Handshake::accept`] does both), with the
    /// server's `websocket_max_message_size` and the default
    /// [`Config`].
    ///
    /// Errors: the second handle on the connection (for sending) could not
    /// be had (the process is out of descriptors).
    pub fn new(stream: Upgraded) -> io::Result<WebSocket> {
        let config = Config::for_stream(&stream);
        WebSocket::open(stream, config, None)
    }

    /// [`new`](WebSocket::new) with `config` instead of the server's
    /// setting and the defaults.
    pub fn with_config(stream: Upgraded, config: Config) -> io::Result<WebSocket> {
        WebSocket::open(stream, config, None)
    }

    /// A WebSocket with `config`, the subprotocol the handshake chose.
    pub(crate) fn open(
        stream: Upgraded,
        config: Config,
        protocol: Option<String>,
    ) -> io::Result<WebSocket> {
        let writer = stream.try_clone()?;
        if let Some(tcp) = stream.tcp() {
            // Frames are written whole: no reason to hold one back.
            let _ = tcp.set_nodelay(true);
        }
        let shared = Arc::new(Shared {
            out: Mutex::new(Out {
                stream: writer,
                closed: false,
                closed_at: None,
            }),
            going_away: AtomicBool::new(false),
            finished: Mutex::new(false),
            finished_cv: Condvar::new(),
            close_timeout: config.close_timeout,
        });
        // The server's graceful stop closes with 1001. Weak: the registry
        // keeps the hook while the stream is open, and must not keep the
        // connection's state alive beyond it.
        let weak = Arc::downgrade(&shared);
        stream.on_stop(Arc::new(move || {
            if let Some(shared) = weak.upgrade() {
                Sender { shared }.going_away();
            }
        }));
        Ok(WebSocket {
            reader: Reader {
                stream,
                decoder: Decoder::new(config.max_message_size),
                buf: vec![0; READ_BUFFER].into_boxed_slice(),
                start: 0,
                end: 0,
                sender: Sender { shared },
                done: false,
                peer_close: None,
                protocol,
            },
        })
    }

    /// The next message, or `Ok(None)` once the connection is closed: see
    /// [`Reader::read`].
    pub fn read(&mut self) -> Result<Option<Message>, Error> {
        self.reader.read()
    }

    /// Sends a message (as one frame).
    pub fn send(&self, msg: &Message) -> Result<(), Error> {
        self.reader.sender.send(msg)
    }

    /// Sends a text message.
    pub fn send_text(&self, text: &str) -> Result<(), Error> {
        self.reader.sender.send_text(text)
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<(), Error> {
        self.reader.sender.send_binary(data)
    }

    /// Sends a ping (at most 125 bytes of payload).
    pub fn ping(&self, payload: &[u8]) -> Result<(), Error> {
        self.reader.sender.ping(payload)
    }

    /// Closes the connection: sends a close frame with `code` (1000 is a
    /// normal closure) and `reason` (at most 123 bytes), drops what the
    /// client still sends until its close arrives (at most
    /// [`Config::close_timeout`]), then closes the TCP connection.
    ///
    /// Closing a connection that is closed already does nothing. Errors: a
    /// code or reason one may not send ([`Error::Invalid`]), or the write
    /// failing.
    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        let payload = Sender::close_frame(code, reason)?;
        if self.reader.done {
            return Ok(());
        }
        match self.reader.sender.write_frame(OP_CLOSE, &payload) {
            // Closed: a sender closed it already; wait for the answer.
            Ok(()) | Err(Error::Closed) => {}
            Err(e) => {
                self.reader.end_connection();
                return Err(e);
            }
        }
        // The reader's own reads wait at most the close timeout: no timer.
        loop {
            match self.reader.read() {
                Ok(None) => return Ok(()),
                Ok(Some(_)) => {}
                Err(Error::Protocol { .. }) => return Ok(()),
                Err(e) => {
                    self.reader.end_connection();
                    return Err(e);
                }
            }
        }
    }

    /// A [`Sender`] for this connection, to send from another thread.
    pub fn sender(&self) -> Sender {
        self.reader.sender.clone()
    }

    /// Splits the WebSocket into its reader and a sender.
    pub fn split(self) -> (Reader, Sender) {
        let sender = self.reader.sender.clone();
        (self.reader, sender)
    }

    /// The close frame the client sent, once it did.
    pub fn close_frame(&self) -> Option<&CloseFrame> {
        self.reader.close_frame()
    }

    /// The subprotocol chosen in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.reader.protocol()
    }

    /// Sets how long a read may wait for the client (`None`: for ever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.reader.set_read_timeout(timeout)
    }

    /// Sets how long a write may wait for the client to take bytes
    /// (`None`: for ever), for every sender of this connection.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.reader.stream.set_write_timeout(timeout)
    }

    /// The upgraded stream under the WebSocket (for its peer address, with
    /// [`Upgraded::tcp`]).
    pub fn stream(&self) -> &Upgraded {
        self.reader.stream()
    }
}
