//! The rules a head is checked against, one line at a time: the byte
//! classes, the request line (method, the request-target's forms,
//! absolute-form included, and the version), field lines, `Host`,
//! `Content-Length` and `Transfer-Encoding`, with their error details; then,
//! once the head is complete, combining repeated fields and
//! percent-decoding the path. [`HeadState`] applies them as each line's CRLF
//! arrives; the module documentation of `parser` states them.
//!
//! Thread: the I/O thread.

use std::cmp::Ordering;

use super::head::{Field, Fields, Span, Version};
use super::swar::{self, find_byte};
use crate::error::HttpError;
use crate::grammar::{self, latin1};
use crate::limits::ParserConfig;

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

pub(super) const START_LINE_INVALID: &str = "Start line is invalid";
pub(super) const BARE_CR_LF_START: &str = "Bare CR or LF found in HTTP message";
const BAD_URI: &str = "Bad URI";
pub(super) const INVALID_TARGET: &str = "Request target is invalid";
pub(super) const INVALID_HEADER: &str = "Invalid header";
pub(super) const CL_INVALID: &str = "Content-Length is invalid";
pub(super) const HOST_INVALID: &str = "Host header is invalid";
pub(super) const HOST_MISSING: &str = "Missing Host header";
pub(super) const TE_HTTP10: &str = "Transfer-Encoding is not allowed in an HTTP/1.0 request";
pub(super) const CL_AND_TE: &str = "Content-Length and Transfer-Encoding must not both be present";
pub(super) const TE_NOT_FINAL: &str =
    "Transfer-Encoding is invalid. chunked must be the final encoding.";
pub(super) const TE_UNSUPPORTED: &str = "Transfer-Encoding requested is not supported.";
pub(super) const TE_MULTIPLE: &str =
    "Transfer-Encoding is invalid. Multiple chunked encodings requested.";
pub(super) const VERSION_UNSUPPORTED: &str = "HTTP Version Not Supported";

// ---------------------------------------------------------------------------
// The head, line by line.

/// The request-target's form (RFC 9112 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Form {
    ConnEnviron,
    Absolute,
    Asterisk,
}

/// An accepted request line.
#[derive(Clone, Copy, Debug)]
pub(super) struct RequestLine {
    pub(super) method: Span,
    pub(super) uri: Span,
    pub(super) path: Span,
    pub(super) query: Span,
    pub(super) authority: Span,
    pub(super) form: Form,
    pub(super) path_has_pct: bool,
    pub(super) version: Version,
}

/// What one complete line did.
pub(super) enum LineOutcome {
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
pub(super) enum ContentLength {
    Value(u64),
    TooLarge,
}

/// The state of the head phase, apart from the bytes themselves.
#[derive(Debug, Default)]
pub(super) struct HeadState {
    /// Head bytes counted against `max_request_header_size`.
    pub(super) count: u64,
    /// Where the current line starts in the head buffer. Bytes of a line
    /// that started in an earlier call are in the buffer; bytes of the
    /// current call are copied lazily, so this is a "virtual" position
    /// (buffer length + offset in the new, not yet copied bytes).
    pub(super) line_start: usize,
    /// One blank line was seen before any request line.
    blank_before: bool,
    /// The last byte taken was a CR: the next one must be its LF.
    pub(super) cr_pending: bool,
    /// Field lines read so far (dropped ones included).
    field_lines: usize,
    pub(super) line: Option<RequestLine>,
    /// 256-bit filter of field-name hashes.
    bloom: [u64; 4],
    pub(super) maybe_duplicates: bool,
    pub(super) host: bool,
    content_type: bool,
    pub(super) content_length: Option<ContentLength>,
    pub(super) transfer_encoding: bool,
}

/// A request-line error and the version the answer should carry.
type LineError = (HttpError, Option<Version>);

impl HeadState {
    /// Handles one complete line (without its CRLF); `base` is where the
    /// line's first byte sits in the head buffer.
    pub(super) fn process_line(
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
    pub(super) fn line_limit(&self, config: &ParserConfig) -> usize {
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
    pub(super) fn line_too_long(&self, line: &[u8], config: &ParserConfig) -> LineError {
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
pub(super) fn version_named(line: &[u8]) -> Option<Version> {
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
pub(super) fn check_transfer_encoding(te: &[u8]) -> Result<(), HttpError> {
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
pub(super) fn combine_duplicates(buf: &mut Vec<u8>, list: &mut Fields) {
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
pub(super) fn percent_decode_tail(buf: &mut Vec<u8>, span: Span) -> Span {
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
