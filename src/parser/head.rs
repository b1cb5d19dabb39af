//! The parsed head and its storage: the request's [`Version`], and the
//! [`RequestHead`] the parser builds in place: one buffer holding the head's bytes, with
//! [`Span`]s into it for the request line's parts and a field list kept
//! inline while small. Lookups are ASCII case-insensitive and do not
//! allocate.
//!
//! Thread: the I/O thread builds a head; a worker then reads it (and the
//! proxy middleware edits its fields).

use std::fmt;

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

    /// `HTTP/1.0` or `HTTP/1.1`, as on a request line.
    pub(crate) fn protocol(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
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
pub(super) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// Positions fit in a `u32`: the head limit is capped at
    /// [`HEAD_LIMIT_CAP`].
    pub(super) fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub(super) fn start(self) -> usize {
        self.start as usize
    }

    pub(super) fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    pub(super) fn of(self, buf: &[u8]) -> &[u8] {
        buf.get(self.range()).unwrap_or(&[])
    }
}

/// The largest head the parser holds, whatever `max_request_header_size`
/// says (1 GiB), so that positions in a head fit in 32 bits.
pub(super) const HEAD_LIMIT_CAP: u64 = 1 << 30;

/// One header field: ranges of its name and (stripped) value.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Field {
    pub(super) name: Span,
    pub(super) value: Span,
    pub(super) hash: u32,
}

/// How many fields are kept inline before moving to the heap.
const INLINE_FIELDS: usize = 4;

/// The field list: inline while small (most requests carry few fields, and
/// this saves an allocation), then a vector.
#[derive(Clone, Debug, Default)]
pub(super) struct Fields {
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

    pub(super) fn as_mut_slice(&mut self) -> &mut [Field] {
        if self.spilled {
            &mut self.heap
        } else {
            self.inline.get_mut(..self.len).unwrap_or(&mut [])
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub(super) fn push(&mut self, f: Field) {
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
    pub(super) fn retain(&mut self, mut keep: impl FnMut(usize, &Field) -> bool) {
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
    pub(super) buf: Vec<u8>,
    pub(super) method: Span,
    pub(super) uri: Span,
    pub(super) path: Span,
    pub(super) query: Span,
    pub(super) version: Version,
    pub(super) fields: Fields,
    pub(super) content_length: Option<u64>,
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

    /// True when the field `name` is a comma-separated list holding
    /// `token` (both ASCII case-insensitive; elements trimmed of SP/HTAB),
    /// as `Connection: keep-alive, Upgrade` holds `upgrade`.
    pub(crate) fn has_token(&self, name: &str, token: &str) -> bool {
        self.header(name).is_some_and(|v| {
            v.split(|&b| b == b',')
                .any(|t| crate::grammar::trim_ows(t).eq_ignore_ascii_case(token.as_bytes()))
        })
    }

    /// The protocols a request proposes to switch to (RFC 9110 §7.8):
    /// its `Upgrade` list when it is HTTP/1.1 and its `Connection` holds
    /// `upgrade` (a sender of `Upgrade` must say so, so that an
    /// intermediary that does not know the protocol drops it); `None`
    /// otherwise (an HTTP/1.0 request's `Upgrade` is ignored).
    pub(crate) fn upgrade_offer(&self) -> Option<&[u8]> {
        if self.version != Version::Http11 || !self.has_token("connection", "upgrade") {
            return None;
        }
        self.header("upgrade")
            .filter(|v| !crate::grammar::trim_ows(v).is_empty())
    }

    pub(super) fn find(&self, name: &str) -> Option<usize> {
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
