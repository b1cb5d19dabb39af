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
//! Thread: the I/O thread (parsing); the parsed head is then read on a
//! worker.

use std::cmp::Ordering;
use std::fmt;

use crate::buffers::RequestBody;
use crate::error::HttpError;
use crate::grammar::{self, latin1, LF};
use crate::http_date::decimal;
use crate::receiver::{body_too_large, head_too_large, ChunkedReceiver, FixedReceiver};

mod swar;
use swar::{find_byte, find_cr_or_lf};

// ---------------------------------------------------------------------------
// Byte classes: the grammar's (crate::grammar), combined into small class
// tables so that one branch-free pass over a name or target answers several
// questions at once.

/// ORs a class table over `bytes`, branch-free (the loop has no early
/// exit, so it runs at the speed of the loads).
#[inline]
fn classes(bytes: &[u8], table: &[u8; 256]) -> u8 {
    bytes.iter().fold(0, |acc, &b| acc | table[usize::from(b)])
}

/// Field-name (and method) classes: bit 0 = not a `tchar`, bit 1 = `_`.
const NAME_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if !grammar::TCHAR[i] {
            1
        } else if i == b'_' as usize {
            2
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Request-target classes: bit 0 = not allowed at all (not `VCHAR` nor
/// `obs-text`: control bytes, space, DEL), bit 1 = `obs-text` (non-ASCII,
/// which waitress answers with `Bad URI`).
const TARGET_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if grammar::is_obs_text(i as u8) {
            2
        } else if !grammar::is_vchar(i as u8) {
            1
        } else {
            0
        };
        i += 1;
    }
    t
};

/// reg-name classes: bit 0 = not allowed, bit 1 = `%` (checked apart).
const REG_NAME_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i == b'%' as usize {
            2
        } else if grammar::REG_NAME[i] {
            0
        } else {
            1
        };
        i += 1;
    }
    t
};

/// A cheap filter for duplicate names: length, first and last byte, ASCII
/// lower-cased. Equal names have equal keys; names are compared in full
/// only when keys match.
#[inline]
fn name_key(name: &[u8]) -> u32 {
    match (name.first(), name.last()) {
        (Some(&f), Some(&l)) => {
            (name.len() as u32 & 0xFFFF)
                | (u32::from(f.to_ascii_lowercase()) << 16)
                | (u32::from(l.to_ascii_lowercase()) << 24)
        }
        _ => 0,
    }
}

/// Case-insensitive (ASCII) ordering of two names.
fn cmp_ignore_case(a: &[u8], b: &[u8]) -> Ordering {
    a.iter()
        .map(u8::to_ascii_lowercase)
        .cmp(b.iter().map(u8::to_ascii_lowercase))
}

// ---------------------------------------------------------------------------
// Error details.

const START_LINE_INVALID: &str = "Start line is invalid";
const BARE_CR_LF_START: &str = "Bare CR or LF found in HTTP message";
const BAD_URI: &str = "Bad URI";
const INVALID_TARGET: &str = "Request target is invalid";
const INVALID_HEADER: &str = "Invalid header";
const CL_INVALID: &str = "Content-Length is invalid";
const HOST_INVALID: &str = "Host header is invalid";
const HOST_MISSING: &str = "Missing Host header";
const TE_HTTP10: &str = "Transfer-Encoding is not allowed in an HTTP/1.0 request";
const CL_AND_TE: &str = "Content-Length and Transfer-Encoding must not both be present";
const TE_NOT_FINAL: &str = "Transfer-Encoding is invalid. chunked must be the final encoding.";
const TE_UNSUPPORTED: &str = "Transfer-Encoding requested is not supported.";
const TE_MULTIPLE: &str = "Transfer-Encoding is invalid. Multiple chunked encodings requested.";
const VERSION_UNSUPPORTED: &str = "HTTP Version Not Supported";

// ---------------------------------------------------------------------------
// Public types.

/// The limits the parser enforces, from the server's settings.
///
/// The defaults are waitress's, plus the limits on a head's elements that
/// waitress does not have (`max_request_line_size`, `max_header_field_size`,
/// `max_header_fields`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParserConfig {
    /// `max_request_header_size`: the most bytes a head (and a chunked
    /// body's trailer section) may have, counted as described in the
    /// module documentation of `parser`; reaching it is 431. Default 262144
    /// (256 KiB). Values above `HEAD_LIMIT_CAP` (1 GiB) act as that cap.
    pub max_request_header_size: u64,
    /// `max_request_body_size`: a `Content-Length` at or over it is 413, and
    /// so is a chunked body whose wire bytes reach it. Default 1073741824
    /// (1 GiB).
    pub max_request_body_size: u64,
    /// `inbuf_overflow`: a body is kept in memory until it would reach this
    /// many bytes, then in a temporary file. Default 524288 (512 KiB).
    pub inbuf_overflow: u64,
    /// `max_request_line_size`: the most bytes a request line may have,
    /// CRLF not counted. The byte past it is answered with 414 when the
    /// request-target is what is long, else 400. Default 8192.
    pub max_request_line_size: u64,
    /// `max_header_field_size`: the most bytes one field line may have
    /// (name, colon and value, CRLF not counted); the byte past it is
    /// answered with 431. Default 8192.
    pub max_header_field_size: u64,
    /// `max_header_fields`: the most field lines a head may have; the first
    /// byte of one more is answered with 431. Default 100.
    pub max_header_fields: usize,
}

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig {
            max_request_header_size: 262_144,
            max_request_body_size: 1_073_741_824,
            inbuf_overflow: 524_288,
            max_request_line_size: 8192,
            max_header_field_size: 8192,
            max_header_fields: 100,
        }
    }
}

/// The HTTP version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

impl Version {
    /// `"1.0"` or `"1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "1.0",
            Version::Http11 => "1.1",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP/{}", self.as_str())
    }
}

/// A range of bytes in a head's buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// Positions fit in a `u32`: the head limit is capped at
    /// [`HEAD_LIMIT_CAP`].
    fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    fn start(self) -> usize {
        self.start as usize
    }

    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    fn of(self, buf: &[u8]) -> &[u8] {
        buf.get(self.range()).unwrap_or(&[])
    }
}

/// The largest head the parser holds, whatever `max_request_header_size`
/// says (1 GiB), so that positions in a head fit in 32 bits.
pub const HEAD_LIMIT_CAP: u64 = 1 << 30;

/// One header field: ranges of its name and (stripped) value.
#[derive(Clone, Copy, Debug, Default)]
struct Field {
    name: Span,
    value: Span,
    hash: u32,
}

/// How many fields are kept inline before moving to the heap.
const INLINE_FIELDS: usize = 4;

/// The field list: inline while small (most requests carry few fields, and
/// this saves an allocation), then a vector.
#[derive(Clone, Debug, Default)]
struct Fields {
    inline: [Field; INLINE_FIELDS],
    /// Fields used in `inline` (while not spilled).
    len: usize,
    spilled: bool,
    heap: Vec<Field>,
}

impl Fields {
    fn as_slice(&self) -> &[Field] {
        if self.spilled {
            &self.heap
        } else {
            self.inline.get(..self.len).unwrap_or(&[])
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Field] {
        if self.spilled {
            &mut self.heap
        } else {
            self.inline.get_mut(..self.len).unwrap_or(&mut [])
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn push(&mut self, f: Field) {
        if !self.spilled {
            if let Some(slot) = self.inline.get_mut(self.len) {
                *slot = f;
                self.len += 1;
                return;
            }
            self.heap.reserve(16);
            self.heap.extend_from_slice(&self.inline);
            self.spilled = true;
        }
        self.heap.push(f);
    }

    /// Keeps the fields for which `keep(index, field)` is true.
    fn retain(&mut self, mut keep: impl FnMut(usize, &Field) -> bool) {
        let mut i = 0;
        if self.spilled {
            self.heap.retain(|f| {
                let k = keep(i, f);
                i += 1;
                k
            });
        } else {
            let mut w = 0;
            for r in 0..self.len {
                let f = self.inline[r];
                if keep(r, &f) {
                    self.inline[w] = f;
                    w += 1;
                }
            }
            self.len = w;
        }
    }
}

/// The parsed head of a request: request line and header fields.
///
/// It owns its bytes (one buffer plus ranges into it), so it can travel to a
/// worker thread.
#[derive(Clone, Debug)]
pub struct RequestHead {
    buf: Vec<u8>,
    method: Span,
    uri: Span,
    path: Span,
    query: Span,
    version: Version,
    fields: Fields,
    content_length: Option<u64>,
}

fn ascii_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("")
}

impl RequestHead {
    /// The method, e.g. `"GET"`.
    pub fn method(&self) -> &str {
        ascii_str(self.method.of(&self.buf))
    }

    /// The request-target exactly as sent, query and fragment included
    /// (WSGI's `REQUEST_URI`).
    pub fn uri(&self) -> &str {
        ascii_str(self.uri.of(&self.buf))
    }

    /// The request's HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The path, percent-decoded to bytes (`%XX` with two hex digits becomes
    /// that byte; anything else is left as is).
    ///
    /// From an origin-form target it is everything before `?` or `#`; from an
    /// absolute-form target the same, once `scheme://authority` is taken out
    /// (so it may be empty); for `OPTIONS *` it is `*`.
    pub fn path(&self) -> &[u8] {
        self.path.of(&self.buf)
    }

    /// The query string as sent, without the `?` and without any fragment.
    pub fn query(&self) -> &str {
        ascii_str(self.query.of(&self.buf))
    }

    /// The header fields: names as sent, values with SP/HTAB stripped,
    /// repeated fields combined with `", "` in arrival order, in the arrival
    /// order of their first occurrence.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.fields
            .as_slice()
            .iter()
            .map(move |f| (ascii_str(f.name.of(&self.buf)), f.value.of(&self.buf)))
    }

    /// [`headers`](Self::headers) with the names as bytes (no UTF-8
    /// check: a cheap scan for callers that look for a few names).
    pub(crate) fn raw_headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields
            .as_slice()
            .iter()
            .map(move |f| (f.name.of(&self.buf), f.value.of(&self.buf)))
    }

    /// The value of the field `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.find(name)
            .and_then(|i| self.fields.as_slice().get(i))
            .map(|f| f.value.of(&self.buf))
    }

    fn find(&self, name: &str) -> Option<usize> {
        let name = name.as_bytes();
        self.fields
            .as_slice()
            .iter()
            .position(|f| f.name.of(&self.buf).eq_ignore_ascii_case(name))
    }

    /// The body length the application sees: the `Content-Length` of a
    /// fixed-length body, the decoded length of a chunked body (once it is
    /// complete), `None` when there is neither.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Replaces the value of the field `name` (ASCII case-insensitive) in
    /// place, or appends the field if it is absent.
    pub fn set_header(&mut self, name: &str, value: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(value);
        let value = Span::new(start, self.buf.len());
        match self.find(name) {
            Some(i) => {
                if let Some(f) = self.fields.as_mut_slice().get_mut(i) {
                    f.value = value;
                }
            }
            None => {
                let start = self.buf.len();
                self.buf.extend_from_slice(name.as_bytes());
                self.fields.push(Field {
                    name: Span::new(start, self.buf.len()),
                    value,
                    hash: 0,
                });
            }
        }
    }

    /// Removes the field `name` (ASCII case-insensitive); true if it was
    /// there.
    pub fn remove_header(&mut self, name: &str) -> bool {
        let before = self.fields.len();
        let buf = &self.buf;
        self.fields
            .retain(|_, f| !f.name.of(buf).eq_ignore_ascii_case(name.as_bytes()));
        self.fields.len() != before
    }
}

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

/// The request-target's form (RFC 9112 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    ConnEnviron,
    Absolute,
    Asterisk,
}

/// An accepted request line.
#[derive(Clone, Copy, Debug)]
struct RequestLine {
    method: Span,
    uri: Span,
    path: Span,
    query: Span,
    authority: Span,
    form: Form,
    path_has_pct: bool,
    version: Version,
}

/// What one complete line did.
enum LineOutcome {
    /// A request line or field line was taken.
    Taken,
    /// A blank line before the request line: skipped.
    SkipBlank,
    /// A second blank line before any request line: an empty request.
    Empty,
    /// The blank line ending the head.
    EndOfHead,
}

/// How a `Content-Length` value read.
#[derive(Clone, Copy, Debug)]
enum ContentLength {
    Value(u64),
    TooLarge,
}

/// The state of the head phase, apart from the bytes themselves.
#[derive(Debug, Default)]
struct HeadState {
    /// Head bytes counted against `max_request_header_size`.
    count: u64,
    /// Where the current line starts in the head buffer. Bytes of a line
    /// that started in an earlier call are in the buffer; bytes of the
    /// current call are copied lazily, so this is a "virtual" position
    /// (buffer length + offset in the new, not yet copied bytes).
    line_start: usize,
    /// One blank line was seen before any request line.
    blank_before: bool,
    /// The last byte taken was a CR: the next one must be its LF.
    cr_pending: bool,
    /// Field lines read so far (dropped ones included).
    field_lines: usize,
    line: Option<RequestLine>,
    /// 256-bit filter of field-name hashes.
    bloom: [u64; 4],
    maybe_duplicates: bool,
    host: bool,
    content_type: bool,
    content_length: Option<ContentLength>,
    transfer_encoding: bool,
}

/// A request-line error and the version the answer should carry.
type LineError = (HttpError, Option<Version>);

impl HeadState {
    /// Handles one complete line (without its CRLF); `base` is where the
    /// line's first byte sits in the head buffer.
    fn process_line(
        &mut self,
        line: &[u8],
        base: usize,
        fields: &mut Fields,
    ) -> Result<LineOutcome, LineError> {
        if line.is_empty() {
            return Ok(match self.line {
                Some(_) => LineOutcome::EndOfHead,
                None if self.blank_before => LineOutcome::Empty,
                None => {
                    self.blank_before = true;
                    LineOutcome::SkipBlank
                }
            });
        }
        match self.line {
            None => {
                self.line = Some(parse_request_line(line, base)?);
                Ok(LineOutcome::Taken)
            }
            Some(rl) => {
                self.field_lines += 1;
                self.field_line(line, base, rl.version, fields)
                    .map_err(|e| (e, Some(rl.version)))?;
                Ok(LineOutcome::Taken)
            }
        }
    }

    /// The most bytes the current line may have (CRLF not counted): the
    /// request line's limit, a field line's, or none at all once the head
    /// has as many field lines as it may (then any byte but the CR of the
    /// final blank line is one field line too many).
    fn line_limit(&self, config: &ParserConfig) -> usize {
        let limit = match self.line {
            None => config.max_request_line_size,
            Some(_) if self.field_lines >= config.max_header_fields => 0,
            Some(_) => config.max_header_field_size,
        };
        usize::try_from(limit).unwrap_or(usize::MAX)
    }

    /// The error for a line that went past [`line_limit`](Self::line_limit);
    /// `line` is the line so far, the byte past the limit included.
    #[cold]
    fn line_too_long(&self, line: &[u8], config: &ParserConfig) -> LineError {
        match self.line {
            None => {
                let max = config.max_request_line_size;
                let detail = format!("exceeds max_request_line_size of {max}");
                let e = if target_is_what_is_long(line) {
                    HttpError::uri_too_long(detail)
                } else {
                    HttpError::bad_request(detail)
                };
                (e, None)
            }
            Some(rl) => {
                let detail = if self.field_lines >= config.max_header_fields {
                    format!("exceeds max_header_fields of {}", config.max_header_fields)
                } else {
                    format!(
                        "exceeds max_header_field_size of {}",
                        config.max_header_field_size
                    )
                };
                (
                    HttpError::request_header_fields_too_large(detail),
                    Some(rl.version),
                )
            }
        }
    }

    fn field_line(
        &mut self,
        line: &[u8],
        base: usize,
        version: Version,
        fields: &mut Fields,
    ) -> Result<(), HttpError> {
        let Some((name_end, v_start, v_end, underscore)) = split_field_line(line) else {
            return Err(field_line_error(line));
        };
        if underscore {
            // Validated, then dropped (waitress; see the module docs).
            return Ok(());
        }
        let name = line.get(..name_end).unwrap_or(&[]);
        let value = line.get(v_start..v_end).unwrap_or(&[]);
        let hash = name_key(name);
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                if self.host {
                    return Err(duplicate(name));
                }
                if !valid_host(value) {
                    return Err(HttpError::bad_request(HOST_INVALID));
                }
                self.host = true;
            }
            12 if name.eq_ignore_ascii_case(b"content-type") => {
                // A singleton field (RFC 9110 §8.3): two values combined
                // would read as a list that recipients resolve differently.
                if self.content_type {
                    return Err(duplicate(name));
                }
                self.content_type = true;
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                if self.content_length.is_some() {
                    return Err(duplicate(name));
                }
                if self.transfer_encoding {
                    return Err(HttpError::bad_request(CL_AND_TE));
                }
                self.content_length = Some(parse_content_length(value)?);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                if version == Version::Http10 {
                    return Err(HttpError::bad_request(TE_HTTP10));
                }
                if self.content_length.is_some() {
                    return Err(HttpError::bad_request(CL_AND_TE));
                }
                self.transfer_encoding = true;
            }
            _ => {}
        }
        let bit = (hash ^ (hash >> 13) ^ (hash >> 24)) as usize & 255;
        let (slot, mask) = (bit >> 6, 1u64 << (bit & 63));
        if let Some(w) = self.bloom.get_mut(slot) {
            if *w & mask != 0 {
                self.maybe_duplicates = true;
            }
            *w |= mask;
        }
        fields.push(Field {
            name: Span::new(base, base + name_end),
            value: Span::new(base + v_start, base + v_end),
            hash,
        });
        Ok(())
    }
}

fn duplicate(name: &[u8]) -> HttpError {
    HttpError::bad_request(format!("Duplicate header: {}", latin1(name)))
}

/// Splits a field line into name end, value start and value end (SP/HTAB
/// stripped), and whether the name has an `_`; `None` if the line breaks
/// the grammar.
#[inline]
fn split_field_line(line: &[u8]) -> Option<(usize, usize, usize, bool)> {
    let name_end = find_byte(line, b':')?;
    let class = classes(line.get(..name_end)?, &NAME_CLASS);
    if name_end == 0 || class & 1 != 0 {
        return None;
    }
    let underscore = class & 2 != 0;
    // field-line = field-name ":" OWS field-value OWS
    let mut i = name_end + 1;
    while line.get(i).is_some_and(|&b| grammar::is_ows(b)) {
        i += 1;
    }
    let rest = line.get(i..).unwrap_or(&[]);
    if !swar::all_field_value(rest) {
        return None;
    }
    let mut end = line.len();
    while end > i && line.get(end - 1).is_some_and(|&b| grammar::is_ows(b)) {
        end -= 1;
    }
    Some((name_end, i, end, underscore))
}

/// The error for a field line that breaks the grammar, most specific first
/// (as waitress: obs-fold, then the rest). A line never holds a CR or LF
/// here: a bare one fails as soon as it is read.
#[cold]
fn field_line_error(line: &[u8]) -> HttpError {
    if line.first().is_some_and(|&b| grammar::is_ows(b)) {
        HttpError::bad_request(format!("Malformed header line \"{}\"", latin1(line)))
    } else {
        HttpError::bad_request(INVALID_HEADER)
    }
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6); too large for a `u64` is
/// [`ContentLength::TooLarge`].
fn parse_content_length(v: &[u8]) -> Result<ContentLength, HttpError> {
    if v.is_empty() || !v.iter().all(|&b| grammar::is_digit(b)) {
        return Err(HttpError::bad_request(CL_INVALID));
    }
    let mut n: u64 = 0;
    for &d in v {
        match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
        {
            Some(m) => n = m,
            None => return Ok(ContentLength::TooLarge),
        }
    }
    Ok(ContentLength::Value(n))
}

/// Validates `uri-host [ ":" port ]` (RFC 3986 §3.2.2-3.2.3) with a host
/// that is not empty: an `http` or `https` URI with an empty host is
/// invalid (RFC 9110 §4.2.1, §4.2.2), whether it comes from the target's
/// authority or from `Host`. Userinfo is refused (RFC 9110 §4.2.4: there
/// is no `@` in the reg-name character set anyway).
fn valid_host(v: &[u8]) -> bool {
    let (host, port) = if v.first() == Some(&b'[') {
        let Some(close) = v.iter().position(|&b| b == b']') else {
            return false;
        };
        let inner = v.get(1..close).unwrap_or(&[]);
        if !valid_ip_literal(inner) {
            return false;
        }
        match v.get(close + 1..) {
            None | Some([]) => (v, None),
            Some([b':', port @ ..]) => (v.get(..=close).unwrap_or(&[]), Some(port)),
            Some(_) => return false,
        }
    } else {
        match v.iter().position(|&b| b == b':') {
            Some(c) => (v.get(..c).unwrap_or(&[]), v.get(c + 1..)),
            None => (v, None),
        }
    };
    if let Some(port) = port {
        if !grammar::is_port(port) {
            return false;
        }
    }
    if host.is_empty() {
        return false;
    }
    host.first() == Some(&b'[') || valid_reg_name(host)
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`.
fn valid_reg_name(h: &[u8]) -> bool {
    match classes(h, &REG_NAME_CLASS) {
        0 => return true,
        2 => {}
        _ => return false,
    }
    let mut i = 0;
    while let Some(&b) = h.get(i) {
        if !grammar::is_reg_name_byte(b) {
            return false;
        }
        if b == b'%' {
            let two = (h.get(i + 1).copied(), h.get(i + 2).copied());
            match two {
                (Some(x), Some(y))
                    if grammar::hex_value(x).is_some() && grammar::hex_value(y).is_some() =>
                {
                    i += 3
                }
                _ => return false,
            }
        } else {
            i += 1;
        }
    }
    true
}

/// `IP-literal` without its brackets: `IPv6address / IPvFuture`.
fn valid_ip_literal(inner: &[u8]) -> bool {
    match inner.first() {
        Some(b'v' | b'V') => {
            // IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
            let rest = inner.get(1..).unwrap_or(&[]);
            let digits = rest
                .iter()
                .take_while(|&&b| grammar::hex_value(b).is_some())
                .count();
            match rest.get(digits..) {
                Some([b'.', tail @ ..]) if digits > 0 && !tail.is_empty() => tail
                    .iter()
                    .all(|&b| b == b':' || (b != b'%' && grammar::is_reg_name_byte(b))),
                _ => false,
            }
        }
        _ => std::str::from_utf8(inner)
            .ok()
            .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
            .is_some(),
    }
}

/// Parses and validates the request line (without CRLF); `base` is where
/// it sits in the head buffer.
fn parse_request_line(line: &[u8], base: usize) -> Result<RequestLine, LineError> {
    match request_line(line, base) {
        Ok(rl) => Ok(rl),
        Err(e) => Err((e, version_named(line))),
    }
}

/// Whether a request line that went past `max_request_line_size` did so
/// because of its request-target (414) rather than its method or what
/// follows the target (400). `line` is the line up to the byte past the
/// limit. The target is what is long when it is longer than the method and
/// nothing after it is longer than an `HTTP/d.d` version.
fn target_is_what_is_long(line: &[u8]) -> bool {
    let Some(m_end) = find_byte(line, grammar::SP) else {
        // Still in the method.
        return false;
    };
    let rest = line.get(m_end + 1..).unwrap_or(&[]);
    let (target, after) = match find_byte(rest, grammar::SP) {
        Some(t) => (rest.get(..t).unwrap_or(&[]), rest.get(t + 1..)),
        None => (rest, None),
    };
    target.len() > m_end && after.is_none_or(|v| v.len() <= b"HTTP/1.1".len())
}

/// The version an error on the request line is answered with: the one the
/// line (so far) names, if it names 1.0 or 1.1.
fn version_named(line: &[u8]) -> Option<Version> {
    if line.ends_with(b" HTTP/1.1") {
        Some(Version::Http11)
    } else if line.ends_with(b" HTTP/1.0") {
        Some(Version::Http10)
    } else {
        None
    }
}

fn request_line(line: &[u8], base: usize) -> Result<RequestLine, HttpError> {
    let invalid = || HttpError::bad_request(START_LINE_INVALID);
    // method SP
    let m_end = find_byte(line, b' ').ok_or_else(invalid)?;
    let method = line.get(..m_end).unwrap_or(&[]);
    if method.is_empty() || classes(method, &NAME_CLASS) & 1 != 0 {
        return Err(invalid());
    }
    // request-target SP
    let t_start = m_end + 1;
    let t_end = t_start
        + line
            .get(t_start..)
            .and_then(|rest| find_byte(rest, b' '))
            .ok_or_else(invalid)?;
    let target = line.get(t_start..t_end).unwrap_or(&[]);
    let class = classes(target, &TARGET_CLASS);
    if target.is_empty() || class & 1 != 0 {
        return Err(invalid());
    }
    let non_ascii = class & 2 != 0;
    // Where the query and the fragment start (a `?` after `#` is not one).
    let hash = find_byte(target, b'#').map(|p| t_start + p);
    let question = find_byte(
        target
            .get(..hash.map_or(target.len(), |h| h - t_start))
            .unwrap_or(&[]),
        b'?',
    )
    .map(|p| t_start + p);
    // SP HTTP-version, and nothing after it.
    let version = match line.get(t_end + 1..) {
        Some([b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
            if grammar::is_digit(*major) && grammar::is_digit(*minor) =>
        {
            (*major, *minor)
        }
        _ => return Err(invalid()),
    };
    if method.iter().any(u8::is_ascii_lowercase) {
        return Err(HttpError::bad_request(format!(
            "Malformed HTTP method \"{}\"",
            latin1(method)
        )));
    }
    if non_ascii {
        return Err(HttpError::bad_request(BAD_URI));
    }
    let bad_target = || HttpError::bad_request(INVALID_TARGET);
    let (form, authority, p_start) = match target.first() {
        Some(b'/') => (Form::ConnEnviron, Span::default(), t_start),
        Some(b'*') if target.len() == 1 => {
            if method != b"OPTIONS" {
                return Err(bad_target());
            }
            (Form::Asterisk, Span::default(), t_start)
        }
        _ => {
            let (a_start, a_end) = split_absolute(target).ok_or_else(bad_target)?;
            if !valid_host(target.get(a_start..a_end).unwrap_or(&[])) {
                return Err(bad_target());
            }
            let authority = Span::new(base + t_start + a_start, base + t_start + a_end);
            (Form::Absolute, authority, t_start + a_end)
        }
    };
    let version = match version {
        (b'1', b'1') => Version::Http11,
        (b'1', b'0') => Version::Http10,
        _ => return Err(HttpError::version_not_supported(VERSION_UNSUPPORTED)),
    };
    let (path, query) = if form == Form::Asterisk {
        (Span::new(base + t_start, base + t_end), Span::default())
    } else {
        let path_end = question.unwrap_or(t_end).min(hash.unwrap_or(t_end));
        let query = match question {
            Some(q) => Span::new(base + q + 1, base + hash.unwrap_or(t_end)),
            None => Span::default(),
        };
        (
            Span::new(base + p_start.min(path_end), base + path_end),
            query,
        )
    };
    let path_has_pct = line
        .get(path.start() - base..path.range().end - base)
        .is_some_and(|p| find_byte(p, b'%').is_some());
    Ok(RequestLine {
        method: Span::new(base, base + m_end),
        uri: Span::new(base + t_start, base + t_end),
        path,
        query,
        authority,
        form,
        path_has_pct,
        version,
    })
}

/// Splits an absolute-form target `scheme "://" authority rest` and returns
/// the authority's range (RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT /
/// "+" / "-" / "." )).
fn split_absolute(t: &[u8]) -> Option<(usize, usize)> {
    if !grammar::is_alpha(*t.first()?) {
        return None;
    }
    let scheme_len = t
        .iter()
        .take_while(|&&b| grammar::is_scheme_byte(b))
        .count();
    if t.get(scheme_len..scheme_len + 3)? != b"://" {
        return None;
    }
    let a_start = scheme_len + 3;
    let a_end = t
        .get(a_start..)?
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .map_or(t.len(), |p| a_start + p);
    Some((a_start, a_end))
}

/// What the `Transfer-Encoding` list asks for: `Ok` for a lone final
/// `chunked`, else the error to answer with.
fn check_transfer_encoding(te: &[u8]) -> Result<(), HttpError> {
    let mut last: Option<&[u8]> = None;
    let mut chunked = 0usize;
    let mut other = false;
    for element in te.split(|&b| b == b',') {
        let e = grammar::trim_ows(element);
        if e.is_empty() {
            continue;
        }
        if e.eq_ignore_ascii_case(b"chunked") {
            chunked += 1;
        } else {
            other = true;
        }
        last = Some(e);
    }
    match last {
        Some(e) if e.eq_ignore_ascii_case(b"chunked") => {}
        _ => return Err(HttpError::bad_request(TE_NOT_FINAL)),
    }
    if other {
        return Err(HttpError::not_implemented(TE_UNSUPPORTED));
    }
    if chunked > 1 {
        return Err(HttpError::not_implemented(TE_MULTIPLE));
    }
    Ok(())
}

/// Combines repeated fields into the first occurrence, values joined with
/// `", "` in arrival order (the joined values are appended to `buf`).
fn combine_duplicates(buf: &mut Vec<u8>, list: &mut Fields) {
    let fields = list.as_mut_slice();
    let n = fields.len();
    let same = |a: &Field, b: &Field, buf: &[u8]| {
        a.hash == b.hash && a.name.of(buf).eq_ignore_ascii_case(b.name.of(buf))
    };
    if n <= 16 {
        // The filter often fires for nothing: check before allocating.
        let any = (1..n).any(|i| (0..i).any(|j| same(&fields[j], &fields[i], buf)));
        if !any {
            return;
        }
    }
    // rep[i]: index of the first field with the same name.
    let mut rep: Vec<usize> = (0..n).collect();
    if n <= 16 {
        for i in 1..n {
            for j in 0..i {
                if rep[j] == j && same(&fields[j], &fields[i], buf) {
                    rep[i] = j;
                    break;
                }
            }
        }
    } else {
        // O(n log n): sort by name, then by arrival.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_unstable_by(|&a, &b| {
            cmp_ignore_case(fields[a].name.of(buf), fields[b].name.of(buf)).then(a.cmp(&b))
        });
        let mut first = None;
        for &i in &order {
            match first {
                Some(f) if same(&fields[f], &fields[i], buf) => rep[i] = f,
                _ => first = Some(i),
            }
        }
    }
    if rep.iter().enumerate().all(|(i, &r)| r == i) {
        return;
    }
    // next[i]: the following field of i's group; built in one pass.
    let mut next = vec![usize::MAX; n];
    let mut last: Vec<usize> = (0..n).collect();
    for (i, &r) in rep.iter().enumerate() {
        if r != i {
            next[last[r]] = i;
            last[r] = i;
        }
    }
    for r in 0..n {
        if rep[r] != r || next[r] == usize::MAX {
            continue;
        }
        let start = buf.len();
        let v = fields[r].value;
        buf.extend_from_within(v.range());
        let mut k = next[r];
        while k != usize::MAX {
            buf.extend_from_slice(b", ");
            let v = fields[k].value;
            buf.extend_from_within(v.range());
            k = next[k];
        }
        fields[r].value = Span::new(start, buf.len());
    }
    list.retain(|i, _| rep.get(i) == Some(&i));
}

/// Decodes `%XX` (two hex digits) in `buf[span]` into a copy at the end of
/// `buf`, and returns the copy's range.
fn percent_decode_tail(buf: &mut Vec<u8>, span: Span) -> Span {
    let start = buf.len();
    buf.extend_from_within(span.range());
    let mut r = start;
    let mut w = start;
    let end = buf.len();
    while r < end {
        let b = buf[r];
        let decoded = if b == b'%' {
            match (
                buf.get(r + 1).copied().and_then(grammar::hex_value),
                buf.get(r + 2).copied().and_then(grammar::hex_value),
            ) {
                (Some(h), Some(l)) if r + 2 < end => Some((h << 4) | l),
                _ => None,
            }
        } else {
            None
        };
        match decoded {
            Some(d) => {
                buf[w] = d;
                r += 3;
            }
            None => {
                buf[w] = b;
                r += 1;
            }
        }
        w += 1;
    }
    buf.truncate(w);
    Span::new(start, w)
}

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
