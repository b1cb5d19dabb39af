//! The WebSocket framing of RFC 6455 §5, sans I/O: a [`Decoder`] that is
//! fed the bytes a client sent, in pieces of any size, and gives back
//! whole messages and control frames (or the close code the connection
//! must be failed with), and the encoders for what a server sends.
//!
//! The decoder checks everything a server must check of a client's
//! frames, each as soon as the byte that decides it arrives:
//!
//! | what | close code |
//! |---|---|
//! | a reserved bit set (no extension is ever negotiated) | 1002 |
//! | an opcode RFC 6455 does not define (3-7, 11-15) | 1002 |
//! | a control frame that is fragmented or longer than 125 bytes | 1002 |
//! | a continuation with no message begun, or a new message before the last one ended | 1002 |
//! | a frame that is not masked (every client frame must be) | 1002 |
//! | a 64-bit length with its top bit set | 1002 |
//! | a close frame of 1 byte, or with a code one may not send | 1002 |
//! | text that is not UTF-8, at the first byte that cannot continue it (across fragments) | 1007 |
//! | a close reason that is not UTF-8 | 1007 |
//! | a message (fragments together) longer than the limit, at the frame header that would pass it | 1009 |
//!
//! Since every decision depends only on the bytes before it, the outcome
//! (the events, then the error or the close) is the same however the
//! input is cut: the fuzz target `websocket_frames` checks it.
//!
//! Thread: any (owned by one connection's reader).

use std::fmt;

/// Continuation frame.
pub const OP_CONTINUATION: u8 = 0x0;
/// Text frame.
pub const OP_TEXT: u8 = 0x1;
/// Binary frame.
pub const OP_BINARY: u8 = 0x2;
/// Close frame.
pub const OP_CLOSE: u8 = 0x8;
/// Ping frame.
pub const OP_PING: u8 = 0x9;
/// Pong frame.
pub const OP_PONG: u8 = 0xA;

/// The longest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Close code 1001: this side is going away (the server stops).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code 1002: the peer broke the protocol.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code 1007: a text message (or close reason) that is not UTF-8.
pub const CLOSE_INVALID_DATA: u16 = 1007;
/// Close code 1009: a message larger than the limit.
pub const CLOSE_TOO_BIG: u16 = 1009;

/// True for the close codes that may be sent in a close frame (and so
/// received): 1000-1003, 1007-1014 (the IANA registry's, 1012-1014
/// included), and 3000-4999 (registered and private ones). 1004-1006 and
/// 1015 are reserved or only for reporting, and the rest is unassigned.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A close frame's status: its code and its reason (UTF-8, at most 123
/// bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code (1000 is a normal closure).
    pub code: u16,
    /// Why, as text (may be empty).
    pub reason: String,
}

/// What the decoder found: a whole data message, or a control frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A text message (its fragments joined), valid UTF-8.
    Text(String),
    /// A binary message (its fragments joined).
    Binary(Vec<u8>),
    /// A ping with its payload (at most 125 bytes): answer with a pong.
    Ping(Vec<u8>),
    /// A pong with its payload.
    Pong(Vec<u8>),
    /// A close frame, with its status if it had one. The decoder takes no
    /// more bytes after it.
    Close(Option<CloseFrame>),
}

/// Why the connection must be failed: the close code to send and a reason
/// that says what was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    /// The close code: 1002, 1007 or 1009.
    pub code: u16,
    /// What the peer did wrong (sent as the close frame's reason).
    pub reason: &'static str,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (close code {})", self.reason, self.code)
    }
}

impl std::error::Error for ProtocolError {}

const fn protocol(reason: &'static str) -> ProtocolError {
    ProtocolError {
        code: CLOSE_PROTOCOL_ERROR,
        reason,
    }
}

/// An incremental UTF-8 validator (the well-formed sequences of Unicode
/// table 3-7): it fails at the first byte that cannot be part of valid
/// UTF-8, and a sequence cut between two calls is no error until a byte
/// that cannot continue it arrives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// What the next byte must be (see `step`).
    state: u8,
}

// The validator's states: what the next byte may be.
const ACCEPT: u8 = 0;
/// One more continuation byte (80-BF).
const CONT1: u8 = 1;
/// Two more.
const CONT2: u8 = 2;
/// Three more.
const CONT3: u8 = 3;
/// After E0: A0-BF (no overlong three-byte forms).
const AFTER_E0: u8 = 4;
/// After ED: 80-9F (no surrogates).
const AFTER_ED: u8 = 5;
/// After F0: 90-BF (no overlong four-byte forms).
const AFTER_F0: u8 = 6;
/// After F4: 80-8F (nothing past U+10FFFF).
const AFTER_F4: u8 = 7;
const REJECT: u8 = 8;

#[inline]
fn step(state: u8, b: u8) -> u8 {
    match (state, b) {
        (ACCEPT, 0x00..=0x7F) => ACCEPT,
        (ACCEPT, 0xC2..=0xDF) => CONT1,
        (ACCEPT, 0xE0) => AFTER_E0,
        (ACCEPT, 0xE1..=0xEC | 0xEE..=0xEF) => CONT2,
        (ACCEPT, 0xED) => AFTER_ED,
        (ACCEPT, 0xF0) => AFTER_F0,
        (ACCEPT, 0xF1..=0xF3) => CONT3,
        (ACCEPT, 0xF4) => AFTER_F4,
        (CONT1, 0x80..=0xBF) => ACCEPT,
        (CONT2, 0x80..=0xBF) => CONT1,
        (CONT3, 0x80..=0xBF) => CONT2,
        (AFTER_E0, 0xA0..=0xBF) => CONT1,
        (AFTER_ED, 0x80..=0x9F) => CONT1,
        (AFTER_F0, 0x90..=0xBF) => CONT2,
        (AFTER_F4, 0x80..=0x8F) => CONT2,
        _ => REJECT,
    }
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub fn new() -> Utf8Validator {
        Utf8Validator { state: ACCEPT }
    }

    /// Takes the next bytes of the text; `Err(i)` when `bytes[i]` is the
    /// first byte that makes it invalid (the validator then stays failed).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), usize> {
        if self.state == REJECT {
            return Err(0);
        }
        let mut state = self.state;
        let mut i = 0;
        while i < bytes.len() {
            if state == ACCEPT {
                // Runs of ASCII, eight bytes at a time.
                while let Some(word) = bytes.get(i..i + 8) {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(word);
                    if u64::from_ne_bytes(w) & 0x8080_8080_8080_8080 != 0 {
                        break;
                    }
                    i += 8;
                }
                let Some(&b) = bytes.get(i) else { break };
                state = step(state, b);
            } else if let Some(&b) = bytes.get(i) {
                state = step(state, b);
            }
            if state == REJECT {
                self.state = REJECT;
                return Err(i);
            }
            i += 1;
        }
        self.state = state;
        Ok(())
    }

    /// True when the bytes so far end at a character boundary.
    pub fn is_complete(&self) -> bool {
        self.state == ACCEPT
    }
}

/// XORs `data` with the 4-byte `mask`, `data` starting at byte `phase` of
/// the frame's payload (RFC 6455 §5.3): eight bytes at a time.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], phase: usize) {
    let mut m = [0u8; 4];
    for (i, b) in m.iter_mut().enumerate() {
        *b = mask[(phase + i) % 4];
    }
    let m8 = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut words = data.chunks_exact_mut(8);
    for w in &mut words {
        let mut x = [0u8; 8];
        x.copy_from_slice(w);
        w.copy_from_slice(&(u64::from_ne_bytes(x) ^ m8).to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= m[i % 4];
    }
}

/// The kind of data message being received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// Where the decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading a frame header (`need` bytes of it in all, so far).
    Header,
    /// Reading a frame's payload.
    Payload,
    /// A close frame was decoded: nothing more is taken.
    Closed,
    /// The connection must be failed.
    Failed(ProtocolError),
}

/// The frame being read.
#[derive(Clone, Copy, Debug)]
struct Frame {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Payload bytes still to come.
    remaining: u64,
    /// Payload bytes already taken (for the mask's phase).
    done: usize,
}

/// The decoder of a client's frames (see the module docs).
///
/// ```
/// use maitred::__private::websocket::{encode_masked, Decoder, Event, OP_TEXT};
///
/// let bytes = encode_masked(true, OP_TEXT, [1, 2, 3, 4], b"hello");
/// let mut d = Decoder::new(1 << 20);
/// let (used, event) = d.push(&bytes).unwrap();
/// assert_eq!((used, event), (bytes.len(), Some(Event::Text("hello".into()))));
/// ```
#[derive(Debug)]
pub struct Decoder {
    max_message: u64,
    state: State,
    header: [u8; 14],
    header_len: usize,
    /// The header's length once its second byte is known (2 before).
    header_need: usize,
    frame: Frame,
    /// The data message being received, if one has begun.
    message: Option<Kind>,
    buf: Vec<u8>,
    utf8: Utf8Validator,
    control: Vec<u8>,
}

impl Decoder {
    /// A decoder for a connection whose messages may be at most
    /// `max_message_size` bytes (fragments together).
    pub fn new(max_message_size: u64) -> Decoder {
        Decoder {
            max_message: max_message_size,
            state: State::Header,
            header: [0; 14],
            header_len: 0,
            header_need: 2,
            frame: Frame {
                fin: false,
                opcode: 0,
                mask: [0; 4],
                remaining: 0,
                done: 0,
            },
            message: None,
            buf: Vec::new(),
            utf8: Utf8Validator::new(),
            control: Vec::new(),
        }
    }

    /// True while a fragmented message is being received (its first frame
    /// came, its last has not).
    pub fn in_message(&self) -> bool {
        self.message.is_some()
    }

    /// True once a close frame was decoded.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Takes bytes from `input` until an event is complete or the input
    /// runs out: how many bytes were taken, and the event if one
    /// completed (the rest of `input` is for the next call). After a
    /// close frame, takes nothing. An error is final: every later call
    /// returns it again.
    pub fn push(&mut self, input: &[u8]) -> Result<(usize, Option<Event>), ProtocolError> {
        let mut used = 0;
        match self.run(input, &mut used) {
            Ok(event) => Ok((used, event)),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// [`push`](Self::push)'s work: `used` counts the bytes taken.
    fn run(&mut self, input: &[u8], used: &mut usize) -> Result<Option<Event>, ProtocolError> {
        loop {
            match self.state {
                State::Failed(e) => return Err(e),
                State::Closed => return Ok(None),
                State::Header => {
                    while self.header_len < self.header_need {
                        let Some(&b) = input.get(*used) else {
                            return Ok(None);
                        };
                        *used += 1;
                        if let Some(slot) = self.header.get_mut(self.header_len) {
                            *slot = b;
                        }
                        self.header_len += 1;
                        match self.header_len {
                            1 => self.check_first_byte(b)?,
                            2 => self.check_second_byte(b)?,
                            _ => {}
                        }
                    }
                    self.start_payload()?;
                }
                State::Payload => {
                    let rest = input.get(*used..).unwrap_or(&[]);
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    let take = rest
                        .len()
                        .min(usize::try_from(self.frame.remaining).unwrap_or(usize::MAX));
                    let chunk = rest.get(..take).unwrap_or(rest);
                    *used += take;
                    self.frame.remaining -= take as u64;
                    self.take_payload(chunk)?;
                }
            }
            if self.state == State::Payload && self.frame.remaining == 0 {
                if let Some(event) = self.end_frame()? {
                    return Ok(Some(event));
                }
            }
        }
    }

    fn fail(&mut self, e: ProtocolError) -> ProtocolError {
        self.state = State::Failed(e);
        self.buf = Vec::new();
        self.control = Vec::new();
        e
    }

    /// FIN, RSV1-3 and the opcode.
    fn check_first_byte(&mut self, b: u8) -> Result<(), ProtocolError> {
        if b & 0x70 != 0 {
            return Err(protocol("reserved bits set with no extension negotiated"));
        }
        let fin = b & 0x80 != 0;
        let opcode = b & 0x0F;
        match opcode {
            OP_CONTINUATION if self.message.is_none() => {
                return Err(protocol("continuation frame with no message begun"))
            }
            OP_TEXT | OP_BINARY if self.message.is_some() => {
                return Err(protocol(
                    "new data frame while a fragmented message is unfinished",
                ))
            }
            OP_CONTINUATION | OP_TEXT | OP_BINARY => {}
            OP_CLOSE | OP_PING | OP_PONG if !fin => {
                return Err(protocol("fragmented control frame"))
            }
            OP_CLOSE | OP_PING | OP_PONG => {}
            _ => return Err(protocol("reserved opcode")),
        }
        self.frame.fin = fin;
        self.frame.opcode = opcode;
        Ok(())
    }

    /// MASK and the 7-bit length: how long the header is.
    fn check_second_byte(&mut self, b: u8) -> Result<(), ProtocolError> {
        if b & 0x80 == 0 {
            return Err(protocol("client frame not masked"));
        }
        let len7 = b & 0x7F;
        if self.frame.opcode & 0x8 != 0 && usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(protocol("control frame longer than 125 bytes"));
        }
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        self.header_need = 2 + ext + 4;
        Ok(())
    }

    /// The header is complete: the length, the mask, the size limit.
    fn start_payload(&mut self) -> Result<(), ProtocolError> {
        let h = &self.header;
        let len7 = h[1] & 0x7F;
        let (len, mask_at) = match len7 {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&h[2..10]);
                let len = u64::from_be_bytes(b);
                if len >> 63 != 0 {
                    return Err(protocol("frame length with its most significant bit set"));
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        self.frame.mask.copy_from_slice(&h[mask_at..mask_at + 4]);
        self.frame.remaining = len;
        self.frame.done = 0;
        self.header_len = 0;
        self.header_need = 2;
        if self.frame.opcode & 0x8 == 0 {
            let so_far = self.buf.len() as u64;
            if so_far.saturating_add(len) > self.max_message {
                return Err(ProtocolError {
                    code: CLOSE_TOO_BIG,
                    reason: "message larger than the limit",
                });
            }
            if self.message.is_none() {
                self.message = Some(if self.frame.opcode == OP_TEXT {
                    Kind::Text
                } else {
                    Kind::Binary
                });
                self.utf8 = Utf8Validator::new();
            }
        } else {
            self.control.clear();
        }
        self.state = State::Payload;
        Ok(())
    }

    /// Unmasks and keeps payload bytes (checking text as it comes).
    fn take_payload(&mut self, chunk: &[u8]) -> Result<(), ProtocolError> {
        let phase = self.frame.done;
        self.frame.done = self.frame.done.wrapping_add(chunk.len());
        let into = if self.frame.opcode & 0x8 == 0 {
            &mut self.buf
        } else {
            &mut self.control
        };
        let start = into.len();
        into.extend_from_slice(chunk);
        let new = into.get_mut(start..).unwrap_or_default();
        apply_mask(new, self.frame.mask, phase);
        let text = self.frame.opcode & 0x8 == 0 && self.message == Some(Kind::Text);
        if text && self.utf8.feed(new).is_err() {
            return Err(ProtocolError {
                code: CLOSE_INVALID_DATA,
                reason: "text message is not valid UTF-8",
            });
        }
        Ok(())
    }

    /// A frame's payload is complete: a finished message or a control
    /// frame becomes an event.
    fn end_frame(&mut self) -> Result<Option<Event>, ProtocolError> {
        self.state = State::Header;
        match self.frame.opcode {
            OP_PING => Ok(Some(Event::Ping(std::mem::take(&mut self.control)))),
            OP_PONG => Ok(Some(Event::Pong(std::mem::take(&mut self.control)))),
            OP_CLOSE => {
                let close = parse_close(&self.control)?;
                self.control = Vec::new();
                self.state = State::Closed;
                Ok(Some(Event::Close(close)))
            }
            _ if !self.frame.fin => Ok(None),
            _ => {
                let data = std::mem::take(&mut self.buf);
                match self.message.take() {
                    Some(Kind::Text) => {
                        if !self.utf8.is_complete() {
                            return Err(ProtocolError {
                                code: CLOSE_INVALID_DATA,
                                reason: "text message ends inside a UTF-8 sequence",
                            });
                        }
                        match String::from_utf8(data) {
                            Ok(s) => Ok(Some(Event::Text(s))),
                            Err(_) => Err(ProtocolError {
                                code: CLOSE_INVALID_DATA,
                                reason: "text message is not valid UTF-8",
                            }),
                        }
                    }
                    _ => Ok(Some(Event::Binary(data))),
                }
            }
        }
    }
}

/// A close frame's payload: nothing, or a valid code and a UTF-8 reason.
fn parse_close(p: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    match p {
        [] => Ok(None),
        [_] => Err(protocol("close frame of one byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(protocol("close frame with a code one may not send"));
            }
            match std::str::from_utf8(reason) {
                Ok(r) => Ok(Some(CloseFrame {
                    code,
                    reason: r.to_string(),
                })),
                Err(_) => Err(ProtocolError {
                    code: CLOSE_INVALID_DATA,
                    reason: "close reason is not valid UTF-8",
                }),
            }
        }
    }
}

/// A frame header as a server sends it (never masked): the bytes and how
/// many of them are used.
pub fn frame_header(fin: bool, opcode: u8, len: usize) -> ([u8; 10], usize) {
    let mut h = [0u8; 10];
    h[0] = if fin { 0x80 } else { 0 } | (opcode & 0x0F);
    let n = if len < 126 {
        h[1] = len as u8;
        2
    } else if let Ok(short) = u16::try_from(len) {
        h[1] = 126;
        h[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (h, n)
}

/// A whole unmasked frame (a server's).
pub fn encode_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let (h, n) = frame_header(fin, opcode, payload.len());
    let mut out = Vec::with_capacity(n + payload.len());
    out.extend_from_slice(&h[..n]);
    out.extend_from_slice(payload);
    out
}

/// A whole masked frame, as a client sends it (for tests and fuzzing).
pub fn encode_masked(fin: bool, opcode: u8, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let (h, n) = frame_header(fin, opcode, payload.len());
    let mut out = Vec::with_capacity(n + 4 + payload.len());
    out.extend_from_slice(&h[..n]);
    out[1] |= 0x80;
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask, 0);
    out
}

/// A close frame's payload: the code then the reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(2 + reason.len());
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(reason.as_bytes());
    p
}

#[cfg(test)]
mod tests;
