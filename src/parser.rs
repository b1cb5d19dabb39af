//! The incremental HTTP/1.x request parser: waitress's `HTTPRequestParser`,
//! stricter and linear-time.
//!
//! [`RequestParser::received`] is fed whatever the socket produced, from one
//! byte to many requests at once. It says how many bytes it consumed (the
//! rest belongs to the next, pipelined request) and, once
//! [`is_completed`](RequestParser::is_completed), hands over either a request
//! (head and body) or the error to answer with ([`RequestParser::into_parsed`]).
//!
//! # How it reads
//!
//! * **Line by line, in byte order, linear time.** Line ends are looked for
//!   only in newly arrived bytes, and each line of the head is validated
//!   once, when its CRLF arrives. A 256 KiB head dripped one byte at a time
//!   costs O(n) (waitress re-scans the whole head on every read). Since every
//!   rule is applied at a definite byte, the outcome (request, error and its
//!   detail, bytes consumed) is a pure function of the bytes received, never
//!   of how they were split.
//! * **Storage.** The head is copied once into one `Vec<u8>`; the request
//!   line parts and header fields are index ranges into it, so a
//!   [`RequestHead`] owns one buffer and one small vector of ranges. Lookups
//!   are ASCII case-insensitive and do not allocate.
//!
//! # The rules
//!
//! Limits (waitress's `>=` semantics):
//! * `max_request_header_size` counts every byte of the head: leading blank
//!   lines, the request line, the field lines and the final blank line. The
//!   byte that brings the count to the limit is answered with 431
//!   `exceeds max_header of N`, whatever that byte is (so a complete head of
//!   N-1 bytes passes and one of N bytes does not). The parser never holds
//!   N raw head bytes or more; an accepted head adds the derived values
//!   (combined repeated fields, the decoded path) after them, at most about
//!   as much again.
//! * Each element of the head is bounded too, and refused at the first byte
//!   past its limit (nothing after it is read or held): a request line
//!   (CRLF not counted) over `max_request_line_size` is 414
//!   `exceeds max_request_line_size of N` when the request-target is what
//!   is long (it is longer than the method, and what follows it is no
//!   longer than `HTTP/d.d`), else 400 with the same detail; a field line
//!   over `max_header_field_size` is 431 `exceeds max_header_field_size of
//!   N`; the first byte of a field line beyond `max_header_fields` is 431
//!   `exceeds max_header_fields of N`. When the head limit is reached on
//!   the same byte, it wins.
//! * A `Content-Length` of `max_request_body_size` or more is answered with
//!   413 `exceeds max_body of N`; chunked bodies count wire bytes (see
//!   [`crate::receiver`]).
//!
//! Before the request line (RFC 9112 §2.2): blank lines (CRLF) are skipped,
//! and two of them in a row with nothing else make an *empty* request
//! ([`RequestParser::is_empty`]), which is how waitress absorbs the extra CRLF
//! some clients send between pipelined requests. Anything else there (a
//! space, a bare LF) makes the request line invalid.
//!
//! Request line (RFC 9112 §3): `method SP request-target SP HTTP-version
//! CRLF`, exactly one space each.
//! * method = `1*tchar` with no lower-case letter (waitress's rule:
//!   `Malformed HTTP method "get"`).
//! * request-target: bytes 0x21-0x7E only (a raw non-ASCII byte is
//!   `Bad URI`, as in waitress), in origin-form (`/path?query`),
//!   absolute-form (`scheme://authority[/path][?query]`, RFC 9112 §3.2.2;
//!   the authority must be a valid non-empty `host[:port]` without userinfo,
//!   RFC 9110 §4.2.1 and §4.2.4) or asterisk-form (`*`, with `OPTIONS`
//!   only, RFC 9112 §3.2.4). Authority-form (CONNECT) and relative targets
//!   are rejected. A target starting with `//` is a path, as in waitress.
//! * version = `HTTP/` DIGIT `.` DIGIT. 1.0 and 1.1 are served; any other
//!   is 505 (RFC 9110 §15.6.6). No version (HTTP/0.9), lower-case `http/`,
//!   two-digit parts and trailing whitespace are 400
//!   `Start line is invalid`.
//!
//! Field lines (RFC 9112 §5, RFC 9110 §5.5): `field-name ":" OWS
//! field-value OWS`.
//! * field-name = `1*tchar`; no whitespace before the colon.
//! * field-value bytes: VCHAR, obs-text (0x80-0xFF, passed through as
//!   bytes), SP and HTAB inside; any other control byte (NUL, DEL, VT, FF...)
//!   is 400 `Invalid header`. Only SP and HTAB are stripped around the value
//!   (never other "whitespace": CVE-2019-16789).
//! * Every line of the head ends in CRLF. A bare LF, or a CR followed by
//!   anything but LF, is 400 as soon as it is read (RFC 9112 §2.2,
//!   CVE-2019-16785): at the LF itself, or at the byte after the CR. Nothing
//!   that follows is waited for (no end of line, no end of head, no
//!   timeout). The detail is `Bare CR or LF found in HTTP message` on (or
//!   before) the request line, `Bare CR or LF found in header line "<line>"`
//!   on a field line, quoting the line up to and including the bare CR or
//!   LF.
//! * A line starting with SP or HTAB (obs-fold) is 400
//!   `Malformed header line "<line>"`: RFC 9112 §5.2 lets a server reject
//!   it, and joining folds (as waitress does) is a smuggling surface.
//! * Field names containing `_` are validated, then dropped (waitress, so
//!   that `X_Auth` cannot pose as `X-Auth` once names become CGI variables).
//! * Repeated fields are combined with `", "` in arrival order (RFC 9110
//!   §5.3), at the position of the first, except that a second `Host`,
//!   `Content-Length` or `Content-Type` is 400
//!   `Duplicate header: <name as sent>` (the singleton fields waitress's
//!   main branch rejects: #484, #488).
//!
//! Host (RFC 9112 §3.2): an HTTP/1.1 request without `Host` is 400; a `Host`
//! value must be `uri-host [ ":" port ]` (RFC 3986 §3.2.2: an IP-literal in
//! brackets, an IPv4 address or a reg-name of unreserved, pct-encoded and
//! sub-delims bytes; port = `*DIGIT`) with a host that is not empty (RFC
//! 9110 §4.2.1: an `http` URI with an empty host is invalid), else 400
//! `Host header is invalid`, in HTTP/1.0 too. For an absolute-form target
//! the application sees the target's authority as `Host` (RFC 9112 §3.2.2:
//! the server MUST ignore the received `Host`), but a received `Host` is
//! still checked: an invalid one (empty included) is 400 whatever the
//! target (RFC 9112 §3.2 makes no exception).
//!
//! Framing (RFC 9112 §6):
//! * `Content-Length` must be `1*DIGIT` (`+5`, `-1`, `0x5`, `5, 5` and empty
//!   are 400 `Content-Length is invalid`: CVE-2019-16792, CVE-2022-24761); a
//!   value that does not fit a `u64` (leading zeros do not count) is 413,
//!   as any length at or over `max_request_body_size` is: RFC 9110 §8.6
//!   calls every non-negative length valid and asks recipients to guard
//!   against overflow, so the request is too large, not malformed.
//! * `Transfer-Encoding` in an HTTP/1.0 request is 400 (RFC 9112 §6.1).
//! * `Content-Length` and `Transfer-Encoding` together are 400 (RFC 9112
//!   §6.1 lets a server reject them; accepting them is the classic smuggling
//!   vector).
//! * `Transfer-Encoding` is a list (RFC 9110 §5.6.1): elements are split on
//!   `,`, trimmed of SP/HTAB, compared case-insensitively, and empty ones are
//!   ignored. If the final coding is not `chunked` (or there is none) the
//!   request is 400 (RFC 9112 §6.3: the length cannot be determined); else
//!   any other coding is 501 `Transfer-Encoding requested is not supported.`
//!   (RFC 9112 §6.1, CVE-2019-16786), and `chunked` twice is 501
//!   `Transfer-Encoding is invalid. Multiple chunked encodings requested.`
//! * A chunked body is decoded by [`ChunkedReceiver`]; the application then
//!   sees no `Transfer-Encoding` and a `Content-Length` equal to the decoded
//!   length, as in waitress.
//!
//! Every error completes the request: the connection is answered and closed,
//! and whatever was pipelined behind it is dropped.
//!
//! This file holds the state machine ([`RequestParser`]); the head's
//! storage ([`RequestHead`], [`Version`]) is in `head`, the rules each line
//! is checked against in `rules`, and the word-at-a-time scanners in
//! `swar`. The limits it enforces ([`ParserConfig`], shared with the body
//! receivers) are in `limits`, and re-exported here.
//!
//! Thread: the I/O thread (parsing); the parsed head is then read on a
//! worker.

use crate::buffers::RequestBody;
use crate::error::HttpError;
use crate::grammar::{latin1, LF};
use crate::http_date::decimal;
pub use crate::limits::ParserConfig;
use crate::receiver::{body_too_large, head_too_large, ChunkedReceiver, FixedReceiver};

mod head;
mod rules;
mod swar;

use head::{Field, Fields, Span, HEAD_LIMIT_CAP};
pub use head::{RequestHead, Version};
use rules::{
    check_transfer_encoding, combine_duplicates, percent_decode_tail, version_named, ContentLength,
    Form, HeadState, LineOutcome, BARE_CR_LF_START, HOST_MISSING,
};
#[cfg(test)]
use rules::{
    CL_AND_TE, CL_INVALID, HOST_INVALID, INVALID_HEADER, INVALID_TARGET, START_LINE_INVALID,
    TE_HTTP10, TE_MULTIPLE, TE_NOT_FINAL, TE_UNSUPPORTED, VERSION_UNSUPPORTED,
};
use swar::find_cr_or_lf;

/// What a completed parser produced.
// The shape is the channel's contract; a `Parsed` is made once per request
// and moved straight on, so the size difference costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed {
    /// A valid request: its head and its complete body.
    Request(RequestHead, RequestBody),
    /// A request to answer with this error, on a status line of this
    /// version; the connection is then closed.
    Error(HttpError, Version),
}

// ---------------------------------------------------------------------------
// The parser.

/// The body being received.
#[derive(Debug)]
enum Body {
    Fixed(FixedReceiver),
    Chunked(ChunkedReceiver),
}

/// The incremental request parser: one per request (waitress's
/// `HTTPRequestParser`).
///
/// Feed it with [`received`](Self::received) until
/// [`is_completed`](Self::is_completed), then take the outcome with
/// [`into_parsed`](Self::into_parsed). See the module documentation
/// for the rules it enforces.
///
/// ```
/// use maitred::__private::{Parsed, ParserConfig, RequestParser};
///
/// let mut p = RequestParser::new(ParserConfig::default());
/// let data = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\n";
/// let n = p.received(data);
/// assert!(p.is_completed());
/// assert_eq!(&data[n..], b"GET /next HTTP/1.1\r\n"); // left for the next request
/// match p.into_parsed() {
///     Parsed::Request(head, _body) => {
///         assert_eq!(head.method(), "GET");
///         assert_eq!(head.path(), b"/a");
///         assert_eq!(head.query(), "b=1");
///         assert_eq!(head.header("host"), Some(&b"x"[..]));
///     }
///     Parsed::Error(e, _) => panic!("{e}"),
/// }
/// ```
#[derive(Debug)]
pub struct RequestParser {
    config: ParserConfig,
    st: HeadState,
    /// The head, built in place: its buffer receives the head's bytes
    /// (request line and field lines with their CRLFs; leading blank lines
    /// are not kept) and its field list the fields as they are read.
    head: RequestHead,
    /// The head was accepted.
    head_ready: bool,
    body: Option<Box<Body>>,
    error: Option<HttpError>,
    error_version: Version,
    completed: bool,
    empty: bool,
    headers_finished: bool,
    expect_continue: bool,
}

impl RequestParser {
    /// A parser for one request, enforcing `config`'s limits.
    pub fn new(config: ParserConfig) -> RequestParser {
        RequestParser {
            config,
            st: HeadState::default(),
            head: RequestHead {
                buf: Vec::new(),
                method: Span::default(),
                uri: Span::default(),
                path: Span::default(),
                query: Span::default(),
                version: Version::Http11,
                fields: Fields::default(),
                content_length: None,
            },
            head_ready: false,
            body: None,
            error: None,
            error_version: Version::Http11,
            completed: false,
            empty: false,
            headers_finished: false,
            expect_continue: false,
        }
    }

    /// Feeds bytes; returns how many were consumed (0 once completed).
    ///
    /// Bytes after the end of the request are not consumed: they belong to
    /// the next request. When a byte is found to be an error, it is counted
    /// as consumed and the parser completes with that error.
    pub fn received(&mut self, data: &[u8]) -> usize {
        if self.completed || data.is_empty() {
            return 0;
        }
        let mut used = 0;
        if self.body.is_none() {
            used = self.received_head(data);
        }
        if !self.completed && self.body.is_some() && used < data.len() {
            used += self.received_body(data.get(used..).unwrap_or(&[]));
        }
        used
    }

    /// True once the request is complete: a request with its whole body, an
    /// error to answer, or an empty request.
    pub fn is_completed(&self) -> bool {
        self.completed
    }

    /// True when the parser completed with nothing but a blank line pair
    /// (CRLF CRLF) before any request line: there is no request to answer.
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// True while nothing but blank lines (CRLFs, the last perhaps without
    /// its LF yet) has arrived: no request has begun (RFC 9112 §2.2 lets a
    /// client send an empty line before a request line, and such a line
    /// starts no deadline).
    pub fn is_blank(&self) -> bool {
        !self.head_ready
            && !self.completed
            && self.error.is_none()
            && (self.head.buf.is_empty() || self.head.buf == b"\r")
    }

    /// True once the head phase is over: the head ended (with or without an
    /// error), the request was empty, or an error ended it early. Always
    /// true once [`is_completed`](Self::is_completed).
    pub fn headers_finished(&self) -> bool {
        self.headers_finished
    }

    /// True when the client waits for `100 Continue` before sending the
    /// body: an HTTP/1.1 request whose `Expect` is `100-continue` (ASCII
    /// case-insensitive), whose head was accepted, and that has a body
    /// (`Content-Length` > 0 or chunked). It stays true after completion
    /// (the channel decides whether to send the 100) and is false once an
    /// error is set.
    pub fn expect_continue(&self) -> bool {
        self.expect_continue && self.error.is_none()
    }

    /// The error the request must be answered with, if any.
    pub fn error(&self) -> Option<&HttpError> {
        self.error.as_ref()
    }

    /// The head, once it was accepted (and as long as no error is set).
    ///
    /// For a chunked request, `Transfer-Encoding` is already removed; the
    /// decoded `Content-Length` is set once the body is complete.
    pub fn head(&self) -> Option<&RequestHead> {
        match self.error {
            None if self.head_ready => Some(&self.head),
            _ => None,
        }
    }

    /// How many raw head bytes the parser holds while it reads a head:
    /// always less than `max_request_header_size` (0 once the head was
    /// accepted or an error was set); for tests and fuzzing.
    ///
    /// An accepted head also stores derived values after the raw bytes
    /// (combined repeated fields, the decoded path), so it holds at most
    /// about twice the limit.
    pub fn buffered_head_bytes(&self) -> usize {
        if self.head_ready {
            0
        } else {
            self.head.buf.len()
        }
    }

    /// The outcome, once [`is_completed`](Self::is_completed) (and not
    /// [`is_empty`](Self::is_empty)).
    ///
    /// An error carries the version of the request line if it was read and
    /// named HTTP/1.0 or HTTP/1.1, else HTTP/1.1. Called too early, or on an
    /// empty request, it returns a 500 error.
    pub fn into_parsed(self) -> Parsed {
        if !self.completed {
            return Parsed::Error(
                HttpError::internal_server_error("The request is not complete"),
                Version::Http11,
            );
        }
        if let Some(e) = self.error {
            return Parsed::Error(e, self.error_version);
        }
        if !self.head_ready {
            return Parsed::Error(
                HttpError::internal_server_error("There is no request (empty)"),
                Version::Http11,
            );
        }
        let head = self.head;
        let body = match self.body.map(|b| *b) {
            None => Ok(RequestBody::empty()),
            Some(Body::Fixed(r)) => r.into_body(),
            Some(Body::Chunked(r)) => r.into_body(),
        };
        match body {
            Ok(body) => Parsed::Request(head, body),
            Err(e) => Parsed::Error(
                HttpError::internal_server_error(format!(
                    "The request body could not be read back: {e}"
                )),
                head.version,
            ),
        }
    }

    fn fail(&mut self, e: HttpError, version: Option<Version>) {
        // Nothing of the request is needed any more: free it now.
        self.head.buf = Vec::new();
        self.head.fields = Fields::default();
        self.body = None;
        self.error = Some(e);
        self.error_version = version.unwrap_or(Version::Http11);
        self.completed = true;
        self.headers_finished = true;
    }

    /// Appends head bytes, growing the buffer no further than the limit.
    fn push_head(&mut self, bytes: &[u8]) {
        let buf = &mut self.head.buf;
        let need = buf.len() + bytes.len();
        if need > buf.capacity() {
            let limit = usize::try_from(self.config.max_request_header_size.min(HEAD_LIMIT_CAP))
                .unwrap_or(usize::MAX);
            let want = need
                .max(buf.capacity().saturating_mul(2))
                .max(512)
                .min(limit.max(need));
            buf.reserve_exact(want - buf.len());
        }
        buf.extend_from_slice(bytes);
    }

    /// The head phase: takes lines until the head ends, an error, or the
    /// data runs out.
    fn received_head(&mut self, data: &[u8]) -> usize {
        let max = self.config.max_request_header_size;
        // Bytes that keep the head count below the limit.
        let room = max
            .min(HEAD_LIMIT_CAP)
            .saturating_sub(self.st.count.saturating_add(1));
        let avail = usize::try_from(room).map_or(data.len(), |r| r.min(data.len()));
        let window = data.get(..avail).unwrap_or(data);
        // window[copy_from..] is not yet in the head buffer; a byte at
        // window index k sits at buffer position len + k - copy_from.
        let mut copy_from = 0;
        let mut pos = 0;
        loop {
            // Find where the current line ends: the LF of its CRLF. A bare LF,
            // or a CR followed by anything but LF, is an error as soon as it
            // is seen (RFC 9112 §2.2), whatever follows.
            let lf = if self.st.cr_pending {
                // The last call ended with a CR: this byte decides.
                let Some(&b) = window.get(pos) else { break };
                self.st.cr_pending = false;
                if b != LF {
                    return self.fail_in_line(window, copy_from, pos, pos + 1);
                }
                pos
            } else {
                // The line may take `line_room` more bytes; the one after
                // them (unless it is a CR or LF) is past its limit.
                let v_pos = self.head.buf.len() + (pos - copy_from);
                let line_room = self
                    .st
                    .line_limit(&self.config)
                    .saturating_sub(v_pos - self.st.line_start);
                let rest = window.get(pos..).unwrap_or(&[]);
                let scan = rest.get(..line_room.saturating_add(1)).unwrap_or(rest);
                let Some(k) = find_cr_or_lf(scan) else {
                    if scan.len() > line_room {
                        return self.fail_too_long(window, copy_from, pos + line_room + 1);
                    }
                    break;
                };
                let at = pos + k;
                if window.get(at) == Some(&LF) {
                    return self.fail_in_line(window, copy_from, at + 1, at + 1);
                }
                match window.get(at + 1) {
                    None => {
                        // Decided by the next byte, in the next call.
                        self.st.cr_pending = true;
                        break;
                    }
                    Some(&LF) => at + 1,
                    Some(_) => return self.fail_in_line(window, copy_from, at + 1, at + 2),
                }
            };
            pos = lf + 1;
            let held = self.head.buf.len();
            let v_lf = held + (lf - copy_from);
            let line_start = self.st.line_start;
            let outcome = if line_start >= held {
                // The whole line is in the new bytes: read it there.
                let from = copy_from + (line_start - held);
                let line = window.get(from..lf - 1).unwrap_or(&[]);
                self.st
                    .process_line(line, line_start, &mut self.head.fields)
            } else {
                self.push_head(window.get(copy_from..=lf).unwrap_or(&[]));
                copy_from = lf + 1;
                let RequestHead { buf, fields, .. } = &mut self.head;
                let line = buf.get(line_start..buf.len() - 2).unwrap_or(&[]);
                self.st.process_line(line, line_start, fields)
            };
            match outcome {
                Ok(LineOutcome::Taken) => self.st.line_start = v_lf + 1,
                Ok(LineOutcome::SkipBlank) => {
                    // Not kept: nothing else is held before the request line.
                    self.head.buf.clear();
                    copy_from = lf + 1;
                    self.st.line_start = 0;
                }
                Ok(LineOutcome::Empty) => {
                    self.head.buf.clear();
                    self.st.count += (lf + 1) as u64;
                    self.empty = true;
                    self.completed = true;
                    self.headers_finished = true;
                    return lf + 1;
                }
                Ok(LineOutcome::EndOfHead) => {
                    self.push_head(window.get(copy_from..=lf).unwrap_or(&[]));
                    self.st.count += (lf + 1) as u64;
                    self.finish_head();
                    return lf + 1;
                }
                Err((e, v)) => {
                    self.st.count += (lf + 1) as u64;
                    self.fail(e, v);
                    return lf + 1;
                }
            }
        }
        self.push_head(window.get(copy_from..).unwrap_or(&[]));
        self.st.count += window.len() as u64;
        if window.len() == data.len() {
            return window.len();
        }
        // The next byte brings the head to the limit.
        self.st.count += 1;
        let version = self.st.line.map(|l| l.version);
        self.fail(head_too_large(max), version);
        window.len() + 1
    }

    /// Fails with a bare CR or LF in the line being read. The line so far
    /// runs up to window index `quote_end` (exclusive; the offending CR or
    /// LF is its last byte) and the bytes consumed up to `consumed`.
    #[cold]
    fn fail_in_line(
        &mut self,
        window: &[u8],
        copy_from: usize,
        quote_end: usize,
        consumed: usize,
    ) -> usize {
        self.push_head(window.get(copy_from..quote_end).unwrap_or(&[]));
        let line = self.head.buf.get(self.st.line_start..).unwrap_or(&[]);
        let (e, v) = match self.st.line {
            None => {
                // On (or before) the request line.
                let named = line.get(..line.len().saturating_sub(1)).unwrap_or(&[]);
                (
                    HttpError::bad_request(BARE_CR_LF_START),
                    version_named(named),
                )
            }
            Some(rl) => (
                HttpError::bad_request(format!(
                    "Bare CR or LF found in header line \"{}\"",
                    latin1(line)
                )),
                Some(rl.version),
            ),
        };
        self.st.count += consumed as u64;
        self.fail(e, v);
        consumed
    }

    /// Fails with a line that went past its limit; window index `end - 1`
    /// is the first byte past it (the last one consumed).
    #[cold]
    fn fail_too_long(&mut self, window: &[u8], copy_from: usize, end: usize) -> usize {
        self.push_head(window.get(copy_from..end).unwrap_or(&[]));
        let line = self.head.buf.get(self.st.line_start..).unwrap_or(&[]);
        let (e, v) = self.st.line_too_long(line, &self.config);
        self.st.count += end as u64;
        self.fail(e, v);
        end
    }

    /// The head ended: checks what needs the whole head, completes the
    /// [`RequestHead`] and sets up the body.
    fn finish_head(&mut self) {
        self.headers_finished = true;
        let Some(rl) = self.st.line else {
            self.fail(
                HttpError::internal_server_error("The head ended without a request line"),
                None,
            );
            return;
        };
        let version = Some(rl.version);
        let head = &mut self.head;
        head.method = rl.method;
        head.uri = rl.uri;
        head.path = rl.path;
        head.query = rl.query;
        head.version = rl.version;
        if self.st.maybe_duplicates {
            combine_duplicates(&mut head.buf, &mut head.fields);
        }
        if rl.version == Version::Http11 && !self.st.host {
            self.fail(HttpError::bad_request(HOST_MISSING), version);
            return;
        }
        let mut chunked = false;
        if self.st.transfer_encoding {
            let te = head.header("transfer-encoding").unwrap_or(&[]);
            if let Err(e) = check_transfer_encoding(te) {
                self.fail(e, version);
                return;
            }
            head.remove_header("transfer-encoding");
            chunked = true;
        }
        let max_body = self.config.max_request_body_size;
        match self.st.content_length {
            Some(ContentLength::TooLarge) => {
                self.fail(body_too_large(max_body), version);
                return;
            }
            Some(ContentLength::Value(n)) => {
                if n > 0 && n >= max_body {
                    self.fail(body_too_large(max_body), version);
                    return;
                }
                head.content_length = Some(n);
                if n > 0 {
                    self.body = Some(Box::new(Body::Fixed(FixedReceiver::new(
                        n,
                        self.config.inbuf_overflow,
                    ))));
                }
            }
            None => {}
        }
        if chunked {
            self.body = Some(Box::new(Body::Chunked(ChunkedReceiver::new(&self.config))));
        }
        if rl.form == Form::Absolute {
            // RFC 9112 §3.2.2: the target's authority replaces Host.
            match head.find("host") {
                Some(i) => {
                    if let Some(f) = head.fields.as_mut_slice().get_mut(i) {
                        f.value = rl.authority;
                    }
                }
                None => {
                    let start = head.buf.len();
                    head.buf.extend_from_slice(b"Host");
                    head.fields.push(Field {
                        name: Span::new(start, start + 4),
                        value: rl.authority,
                        hash: 0,
                    });
                }
            }
        }
        if rl.path_has_pct {
            head.path = percent_decode_tail(&mut head.buf, rl.path);
        }
        self.expect_continue = rl.version == Version::Http11
            && self.body.is_some()
            && head
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        self.error_version = rl.version;
        self.head_ready = true;
        if self.body.is_none() {
            self.completed = true;
        }
    }

    /// The body phase.
    fn received_body(&mut self, data: &[u8]) -> usize {
        let (used, error, done, decoded) = match self.body.as_deref_mut() {
            Some(Body::Fixed(r)) => {
                let n = r.received(data);
                (n, r.error().cloned(), r.is_completed(), None)
            }
            Some(Body::Chunked(r)) => {
                let n = r.received(data);
                let done = r.is_completed();
                (n, r.take_error(), done, Some(r.decoded_len()))
            }
            None => return 0,
        };
        if let Some(e) = error {
            self.fail(e, Some(self.head.version));
        } else if done {
            self.completed = true;
            if let Some(len) = decoded {
                // The app sees a plain Content-Length request.
                let mut digits = [0u8; 20];
                self.head
                    .set_header("Content-Length", decimal(len, &mut digits));
                self.head.content_length = Some(len);
            }
        }
        used
    }
}

#[cfg(test)]
mod tests;
