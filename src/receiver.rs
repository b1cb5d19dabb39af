//! Request body receivers: a fixed-length body (`Content-Length`) and a
//! chunked body (`Transfer-Encoding: chunked`).
//!
//! These are waitress's `FixedStreamReceiver` and `ChunkedReceiver`, rebuilt
//! as push state machines that never buffer a control line: every byte of
//! chunk framing is looked at exactly once, so feeding a body in one slice or
//! one byte at a time gives the same outcome, at the same byte.
//!
//! # Chunked grammar (RFC 9112 §7.1)
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! chunk-ext-val  = token / quoted-string
//! trailer-section = *( field-line CRLF )
//! ```
//!
//! As in waitress, the bad whitespace (`BWS`) the RFC tolerates around `;`
//! and `=` is rejected, and so is everything that is not in the grammar:
//!
//! * `chunk-size` is hex digits only: no sign, no `0x`, no whitespace
//!   (CVE-2022-24761), else `Invalid chunk size`. A size that does not fit
//!   in a `u64` is `Invalid chunk size` at the digit that overflows.
//! * A chunk extension that does not match the grammar is
//!   `Invalid chunk extension`. Extensions are checked byte by byte and
//!   discarded.
//! * Chunk data must be followed by exactly CRLF, else
//!   `Chunk not properly terminated`.
//! * An empty line where a chunk-size line is expected (right after the
//!   head, or after a chunk's data CRLF) is `Invalid chunk size` at its CR:
//!   `chunk-size` is `1*HEXDIG`. waitress skips such lines, but a front end
//!   that reads one as a zero-size last chunk would see the body end where
//!   this server does not.
//! * Trailer field lines are checked against the field-line grammar (RFC 9112
//!   §5: `token ":" OWS value OWS`, no obs-fold, no bare CR or LF) and
//!   discarded. The trailer section counts against `max_request_header_size`
//!   and is answered with 431 once it reaches it.
//!
//! # Limits and the order in which they apply
//!
//! `max_request_body_size` counts the *wire* bytes of a chunked body, framing
//! included (as waitress does): the byte that brings the count to the limit
//! is answered with 413, whatever that byte is. A chunk whose announced size
//! would by itself take the count to the limit is answered with 413 as soon
//! as its size line ends. When one byte would both reach a limit and complete
//! (or break) a construct, the limit wins: the body limit is checked first,
//! then the trailer limit, then the grammar. Each rule is applied at one
//! byte position, so the outcome is a pure function of the bytes received,
//! never of how they were split.
//!
//! Thread: the I/O thread.

use crate::buffers::{OverflowableBuffer, RequestBody};
use crate::error::HttpError;
use crate::limits::ParserConfig;

use crate::grammar::{hex_value, is_field_value_byte, is_qdtext, is_quoted_pair_byte, is_tchar};

/// Detail of the error for a chunk-size line that is not `1*HEXDIG`.
pub const INVALID_CHUNK_SIZE: &str = "Invalid chunk size";
/// Detail of the error for a chunk extension outside the grammar.
pub const INVALID_CHUNK_EXTENSION: &str = "Invalid chunk extension";
/// Detail of the error for chunk data not followed by exactly CRLF.
pub const CHUNK_NOT_TERMINATED: &str = "Chunk not properly terminated";
/// Detail of the error for a trailer line outside the field-line grammar.
pub const INVALID_TRAILER: &str = "Invalid trailer";
/// Detail of the error for a bare CR or LF inside the trailer section.
pub const BARE_CR_LF_TRAILER: &str = "Bare CR or LF found in trailer";

/// The error for a body that could not be stored (the temporary file could
/// not be created or written).
fn store_error(e: &std::io::Error) -> HttpError {
    HttpError::internal_server_error(format!(
        "The request body could not be stored in a temporary file: {e}"
    ))
}

/// The 413 answer for `max_request_body_size`.
pub(crate) fn body_too_large(max: u64) -> HttpError {
    HttpError::request_entity_too_large(format!("exceeds max_body of {max}"))
}

/// The 431 answer for `max_request_header_size`.
pub(crate) fn head_too_large(max: u64) -> HttpError {
    HttpError::request_header_fields_too_large(format!("exceeds max_header of {max}"))
}

/// Receives a body of a known length (`Content-Length`): waitress's
/// `FixedStreamReceiver`.
///
/// It takes exactly the announced number of bytes; what follows belongs to
/// the next request. The length was checked against `max_request_body_size`
/// when the head was parsed, so no limit applies here.
#[derive(Debug)]
pub struct FixedReceiver {
    remaining: u64,
    buf: OverflowableBuffer,
    error: Option<HttpError>,
}

impl FixedReceiver {
    /// A receiver for `length` bytes, kept in memory until they reach
    /// `inbuf_overflow` bytes, then in a temporary file.
    pub fn new(length: u64, inbuf_overflow: u64) -> FixedReceiver {
        // Room for the whole body when it stays in memory, up to 64 KiB on
        // the client's word alone.
        let hint = length.min(inbuf_overflow.saturating_sub(1)).min(64 * 1024);
        FixedReceiver {
            remaining: length,
            buf: OverflowableBuffer::with_capacity(inbuf_overflow, hint as usize),
            error: None,
        }
    }

    /// Takes bytes of the body; returns how many were taken (never more than
    /// are still missing; 0 once complete or failed).
    pub fn received(&mut self, data: &[u8]) -> usize {
        if self.is_completed() {
            return 0;
        }
        let take = usize::try_from(self.remaining).map_or(data.len(), |r| r.min(data.len()));
        let chunk = data.get(..take).unwrap_or(data);
        if let Err(e) = self.buf.append(chunk) {
            self.error = Some(store_error(&e));
        }
        self.remaining -= chunk.len() as u64;
        chunk.len()
    }

    /// True once every byte arrived, or an error was set.
    pub fn is_completed(&self) -> bool {
        self.remaining == 0 || self.error.is_some()
    }

    /// The error, if the body could not be stored.
    pub fn error(&self) -> Option<&HttpError> {
        self.error.as_ref()
    }

    /// How many bytes were received.
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.buf.len()
    }

    /// True when no byte was received yet.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The body, ready to be read by the application.
    pub fn into_body(self) -> std::io::Result<RequestBody> {
        self.buf.into_body()
    }
}

/// Where the chunked decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Start of a chunk-size line: a hex digit.
    SizeStart,
    /// After at least one hex digit: more digits, `;` or CR.
    Size,
    /// After `;`: the first byte of an extension name.
    ExtNameStart,
    /// In an extension name: tchar, `=`, `;` or CR.
    ExtName,
    /// After `=`: a token or a quoted-string.
    ExtValStart,
    /// In a token value: tchar, `;` or CR.
    ExtValToken,
    /// In a quoted-string value.
    ExtQuoted,
    /// After a backslash in a quoted-string.
    ExtQuotedPair,
    /// After the closing quote: `;` or CR.
    ExtAfterQuoted,
    /// After the CR ending a chunk-size line with no extension: LF.
    SizeLf,
    /// After the CR ending a chunk-size line with an extension: LF.
    ExtLf,
    /// Chunk data; `remaining` bytes are missing.
    Data,
    /// After chunk data: CR.
    DataCr,
    /// After chunk data and CR: LF.
    DataLf,
    /// Start of a trailer line, or the CR of the final blank line.
    TrailerStart,
    /// In a trailer field name.
    TrailerName,
    /// In a trailer field value.
    TrailerValue,
    /// After the CR ending a trailer line: LF.
    TrailerLf,
    /// After the CR of the final blank line: LF.
    EndLf,
    /// Done: the body is complete.
    Done,
    /// Failed: `error` says why.
    Failed,
}

/// Receives a chunked body (`Transfer-Encoding: chunked`) and decodes it:
/// waitress's `ChunkedReceiver`, as a byte-at-a-time state machine.
///
/// See the module documentation for the grammar, the limits and
/// their order.
#[derive(Debug)]
pub struct ChunkedReceiver {
    state: State,
    /// The chunk size being read, then the data bytes still missing.
    size: u64,
    /// Wire bytes consumed so far (framing included).
    wire: u64,
    /// Bytes of the trailer section consumed so far.
    trailer: u64,
    max_body: u64,
    max_trailer: u64,
    overflow: u64,
    buf: OverflowableBuffer,
    error: Option<HttpError>,
}

impl ChunkedReceiver {
    /// A receiver enforcing `config`'s `max_request_body_size` (on wire
    /// bytes) and `max_request_header_size` (on the trailer section), storing
    /// the decoded body in memory until `inbuf_overflow`, then in a temporary
    /// file.
    pub fn new(config: &ParserConfig) -> ChunkedReceiver {
        ChunkedReceiver {
            state: State::SizeStart,
            size: 0,
            wire: 0,
            trailer: 0,
            max_body: config.max_request_body_size,
            max_trailer: config.max_request_header_size,
            overflow: config.inbuf_overflow,
            buf: OverflowableBuffer::new(config.inbuf_overflow),
            error: None,
        }
    }

    /// Takes wire bytes of the chunked body; returns how many were consumed.
    ///
    /// Stops right after the byte that completes the body (what follows
    /// belongs to the next request) or that is found to be an error (that
    /// byte is counted as consumed). Returns 0 once complete or failed.
    pub fn received(&mut self, data: &[u8]) -> usize {
        if self.is_completed() {
            return 0;
        }
        // Bytes that can be taken while the wire count stays below the limit.
        let room = self.max_body.saturating_sub(self.wire.saturating_add(1));
        let avail = usize::try_from(room).map_or(data.len(), |r| r.min(data.len()));
        let window = data.get(..avail).unwrap_or(data);
        let used = self.step(window);
        self.wire += used as u64;
        if self.is_completed() || used < window.len() || data.len() == window.len() {
            return used;
        }
        // The next byte brings the wire count to the limit.
        self.wire += 1;
        self.fail(body_too_large(self.max_body));
        used + 1
    }

    /// True once the body is complete or an error was set.
    pub fn is_completed(&self) -> bool {
        matches!(self.state, State::Done | State::Failed)
    }

    /// The error, if the body was malformed or too large.
    pub fn error(&self) -> Option<&HttpError> {
        self.error.as_ref()
    }

    /// Takes the error out, if any.
    pub fn take_error(&mut self) -> Option<HttpError> {
        self.error.take()
    }

    /// The decoded length so far (the whole body's once complete).
    pub fn decoded_len(&self) -> u64 {
        self.buf.len()
    }

    /// Wire bytes consumed so far.
    pub fn wire_len(&self) -> u64 {
        self.wire
    }

    /// The decoded body, ready to be read by the application.
    pub fn into_body(self) -> std::io::Result<RequestBody> {
        self.buf.into_body()
    }

    fn fail(&mut self, e: HttpError) {
        self.state = State::Failed;
        self.error = Some(e);
    }

    /// Runs the state machine over `data` (which keeps the wire count below
    /// the body limit); returns the bytes consumed.
    fn step(&mut self, data: &[u8]) -> usize {
        let mut i = 0;
        while i < data.len() {
            if self.state == State::Data {
                let rest = data.get(i..).unwrap_or(&[]);
                let take = usize::try_from(self.size).map_or(rest.len(), |s| s.min(rest.len()));
                let chunk = rest.get(..take).unwrap_or(rest);
                if let Err(e) = self.buf.append(chunk) {
                    // The bytes are consumed; the body cannot be kept.
                    self.fail(store_error(&e));
                    return i + chunk.len();
                }
                self.size -= chunk.len() as u64;
                i += chunk.len();
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let Some(&b) = data.get(i) else { break };
            i += 1;
            if let Err(e) = self.byte(b, self.wire + i as u64) {
                self.fail(e);
                return i;
            }
            if self.state == State::Done {
                return i;
            }
        }
        i
    }

    /// Handles one framing byte; `wire` is the wire count including it.
    fn byte(&mut self, b: u8, wire: u64) -> Result<(), HttpError> {
        use State::*;
        let size_err = || HttpError::bad_request(INVALID_CHUNK_SIZE);
        let ext_err = || HttpError::bad_request(INVALID_CHUNK_EXTENSION);
        if matches!(
            self.state,
            TrailerStart | TrailerName | TrailerValue | TrailerLf | EndLf
        ) {
            self.trailer += 1;
            if self.trailer >= self.max_trailer {
                return Err(head_too_large(self.max_trailer));
            }
        }
        self.state = match self.state {
            SizeStart => {
                // chunk-size = 1*HEXDIG: no empty line, no space, no sign.
                let v = hex_value(b).ok_or_else(size_err)?;
                self.size = u64::from(v);
                Size
            }
            Size => match b {
                b'\r' => SizeLf,
                b';' => ExtNameStart,
                _ => {
                    let v = hex_value(b).ok_or_else(size_err)?;
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(u64::from(v)))
                        .ok_or_else(size_err)?;
                    Size
                }
            },
            ExtNameStart => match b {
                _ if is_tchar(b) => ExtName,
                _ => return Err(ext_err()),
            },
            ExtName => match b {
                b'=' => ExtValStart,
                b';' => ExtNameStart,
                b'\r' => ExtLf,
                _ if is_tchar(b) => ExtName,
                _ => return Err(ext_err()),
            },
            ExtValStart => match b {
                b'"' => ExtQuoted,
                _ if is_tchar(b) => ExtValToken,
                _ => return Err(ext_err()),
            },
            ExtValToken => match b {
                b';' => ExtNameStart,
                b'\r' => ExtLf,
                _ if is_tchar(b) => ExtValToken,
                _ => return Err(ext_err()),
            },
            ExtQuoted => match b {
                b'"' => ExtAfterQuoted,
                b'\\' => ExtQuotedPair,
                _ if is_qdtext(b) => ExtQuoted,
                _ => return Err(ext_err()),
            },
            ExtQuotedPair => match b {
                _ if is_quoted_pair_byte(b) => ExtQuoted,
                _ => return Err(ext_err()),
            },
            ExtAfterQuoted => match b {
                b';' => ExtNameStart,
                b'\r' => ExtLf,
                _ => return Err(ext_err()),
            },
            SizeLf | ExtLf => {
                if b != b'\n' {
                    return Err(if self.state == SizeLf {
                        size_err()
                    } else {
                        ext_err()
                    });
                }
                if self.size == 0 {
                    TrailerStart
                } else if wire.saturating_add(self.size) >= self.max_body {
                    // The data alone would reach the limit: decide now.
                    return Err(body_too_large(self.max_body));
                } else {
                    if self.buf.is_empty() && !self.buf.is_spilled() {
                        // First data: size the memory stage once.
                        let hint = self.size.clamp(4096, 64 * 1024);
                        let hint = hint.min(self.overflow.saturating_sub(1));
                        self.buf = OverflowableBuffer::with_capacity(self.overflow, hint as usize);
                    }
                    Data
                }
            }
            DataCr => match b {
                b'\r' => DataLf,
                _ => return Err(HttpError::bad_request(CHUNK_NOT_TERMINATED)),
            },
            DataLf => match b {
                b'\n' => SizeStart,
                _ => return Err(HttpError::bad_request(CHUNK_NOT_TERMINATED)),
            },
            TrailerStart => match b {
                b'\r' => EndLf,
                b'\n' => return Err(HttpError::bad_request(BARE_CR_LF_TRAILER)),
                _ if is_tchar(b) => TrailerName,
                _ => return Err(HttpError::bad_request(INVALID_TRAILER)),
            },
            TrailerName => match b {
                b':' => TrailerValue,
                b'\n' => return Err(HttpError::bad_request(BARE_CR_LF_TRAILER)),
                _ if is_tchar(b) => TrailerName,
                _ => return Err(HttpError::bad_request(INVALID_TRAILER)),
            },
            TrailerValue => match b {
                b'\r' => TrailerLf,
                b'\n' => return Err(HttpError::bad_request(BARE_CR_LF_TRAILER)),
                _ if is_field_value_byte(b) => TrailerValue,
                _ => return Err(HttpError::bad_request(INVALID_TRAILER)),
            },
            TrailerLf | EndLf => {
                if b != b'\n' {
                    return Err(HttpError::bad_request(BARE_CR_LF_TRAILER));
                }
                if self.state == EndLf {
                    Done
                } else {
                    TrailerStart
                }
            }
            // `step` never calls `byte` in these states.
            Data | Done | Failed => self.state,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests;
