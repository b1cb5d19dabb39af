//! What an application returns: [`Response`] (status, headers, body) and
//! [`Body`].
//!
//! This is WSGI's `start_response(status, headers)` plus the returned
//! iterable, made one value. The server adds `Date`, `Server` (or `Via`
//! when the application set `Server`), `Content-Length` when it knows the
//! length, `Transfer-Encoding: chunked` for HTTP/1.1 bodies of unknown
//! length, and `Connection` as the keep-alive rules require; see
//! [`crate::App`] for the rules.
//!
//! Thread: a worker thread.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};

use crate::push::{BodySender, Pushed};
use crate::upgrade::{Handler, Upgraded};

/// The body of a [`Response`].
///
/// | variant | length known | sent as |
/// |---|---|---|
/// | [`Empty`](Body::Empty) | yes, 0 | nothing |
/// | [`Bytes`](Body::Bytes) | yes | one write together with the head |
/// | [`File`](Body::File) | yes | `sendfile(2)` from the file (`wsgi.file_wrapper`) |
/// | [`Reader`](Body::Reader) | if given | read in 64 KiB pieces as the client takes them |
/// | [`Chunks`](Body::Chunks) | no | each chunk as it is produced |
/// | [`Writer`](Body::Writer) | no | whatever the callback writes (WSGI's `write` callable) |
/// | [`Pushed`](Body::Pushed) | no | what [`BodySender`]s send, from any thread, after the worker is free ([`Body::channel`]) |
///
/// A length the server does not know is sent with chunked encoding on
/// HTTP/1.1 and by closing the connection after the body on HTTP/1.0,
/// unless the application set `Content-Length` itself.
#[derive(Default)]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// Bytes in memory.
    Bytes(Cow<'static, [u8]>),
    /// An open file (or any `File`, e.g. a temporary file): `len` bytes from
    /// `offset` (`None`: to the end of the file).
    File {
        /// The file.
        file: File,
        /// Where the body starts in the file.
        offset: u64,
        /// How many bytes; `None` for the rest of the file.
        len: Option<u64>,
    },
    /// Bytes read from a reader until it ends, with a length if known.
    Reader(Box<dyn Read + Send>, Option<u64>),
    /// Chunks produced one by one; an `Err` aborts the response.
    Chunks(Box<dyn Iterator<Item = io::Result<Vec<u8>>> + Send>),
    /// A callback that writes the body; it runs on the worker thread after
    /// the application returned, and blocks when the client is slow
    /// (back-pressure at `outbuf_high_watermark`).
    #[allow(clippy::type_complexity)]
    Writer(Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + Send>),
    /// Bytes pushed later, from any thread, through the [`BodySender`]s of
    /// [`Body::channel`]; the worker is free as soon as the head is sent.
    Pushed(Pushed),
}

impl Body {
    /// A body read from `reader`; `len` is its length if known.
    pub fn from_reader(reader: impl Read + Send + 'static, len: Option<u64>) -> Body {
        Body::Reader(Box::new(reader), len)
    }

    /// The whole of `file`, sent with `sendfile(2)`.
    pub fn from_file(file: File) -> Body {
        Body::File {
            file,
            offset: 0,
            len: None,
        }
    }

    /// A body streamed from an iterator of chunks.
    pub fn from_chunks<I, B>(chunks: I) -> Body
    where
        I: IntoIterator<Item = B>,
        I::IntoIter: Send + 'static,
        B: Into<Vec<u8>>,
    {
        Body::Chunks(Box::new(chunks.into_iter().map(|c| Ok(c.into()))))
    }

    /// A body whose bytes come later, from any thread: the application
    /// returns the response at once (the worker is then free), and sends
    /// the body through the [`BodySender`] (clone it to send from several
    /// threads); dropping the last sender ends the body. For server-sent
    /// events, long polling, and whatever is produced slowly.
    ///
    /// Each chunk goes to the socket as soon as it takes it. A send waits
    /// while the connection's buffered output is above
    /// `outbuf_high_watermark` ([`BodySender::try_send`] does not wait,
    /// [`BodySender::send_timeout`] waits at most so long), and fails at
    /// once with [`SendError::Closed`](crate::SendError::Closed) when the client is gone, the
    /// response takes no body (a `HEAD`), or the server stopped: a
    /// graceful stop waits up to `shutdown_timeout` for pushed bodies to
    /// end, then closes their connections. The next request on the
    /// connection is answered once the body ends.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use maitred::{Body, Request, Response};
    ///
    /// fn events(_req: &mut Request) -> Response {
    ///     let (body, tx) = Body::channel();
    ///     std::thread::spawn(move || {
    ///         for n in 1.. {
    ///             if tx.send(format!("id: {n}\ndata: {n}\n\n").as_bytes()).is_err() {
    ///                 return; // the client left
    ///             }
    ///             std::thread::sleep(Duration::from_millis(100));
    ///         }
    ///     });
    ///     Response::new(200)
    ///         .with_header("Content-Type", "text/event-stream")
    ///         .with_body(body)
    /// }
    /// ```
    pub fn channel() -> (Body, BodySender) {
        let (pushed, sender) = crate::push::channel();
        (Body::Pushed(pushed), sender)
    }

    /// A body written by a callback (like WSGI's `write` callable).
    pub fn from_writer(f: impl FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static) -> Body {
        Body::Writer(Box::new(f))
    }

    /// True for [`Body::Empty`] and empty bytes.
    pub fn is_empty(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Bytes(b) => b.is_empty(),
            _ => false,
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Body::File { offset, len, .. } => {
                write!(f, "Body::File {{ offset: {offset}, len: {len:?} }}")
            }
            Body::Reader(_, len) => write!(f, "Body::Reader(len: {len:?})"),
            Body::Chunks(_) => f.write_str("Body::Chunks"),
            Body::Writer(_) => f.write_str("Body::Writer"),
            Body::Pushed(_) => f.write_str("Body::Pushed"),
        }
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::Bytes(Cow::Borrowed(s.as_bytes()))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::Bytes(Cow::Owned(s.into_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(b: &'static [u8]) -> Body {
        Body::Bytes(Cow::Borrowed(b))
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Body {
        Body::Bytes(Cow::Owned(b))
    }
}

impl From<File> for Body {
    fn from(f: File) -> Body {
        Body::from_file(f)
    }
}

/// A header name or value.
pub(crate) type HeaderText = Cow<'static, str>;

/// An HTTP response: status, headers, body.
///
/// ```
/// use maitred::{Body, Response};
///
/// let r = Response::new(201)
///     .with_header("Content-Type", "application/json")
///     .with_body(r#"{"ok":true}"#);
/// assert_eq!(r.status(), 201);
/// assert_eq!(r.header("content-type"), Some("application/json"));
/// ```
pub struct Response {
    status: u16,
    reason: Option<HeaderText>,
    headers: Vec<(HeaderText, HeaderText)>,
    body: Body,
    /// The protocol and handler of a [`Response::upgrade`] (boxed: most
    /// responses have none, and a response is moved around by value).
    upgrade: Option<Box<(HeaderText, Handler)>>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("headers", &self.headers)
            .field("body", &self.body)
            .field("upgrade", &self.upgrade.as_ref().map(|u| &u.0))
            .finish()
    }
}

impl Default for Response {
    fn default() -> Self {
        Response::new(200)
    }
}

impl Response {
    /// A response with `status`, no headers and no body.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            reason: None,
            headers: Vec::new(),
            body: Body::Empty,
            upgrade: None,
        }
    }

    /// `101 Switching Protocols` to `protocol`, then `handler` gets the
    /// connection (RFC 9110 §7.8; see [`Upgraded`]).
    ///
    /// Only for a request that proposed `protocol`
    /// ([`Request::upgrade_requested`](crate::Request::upgrade_requested):
    /// an HTTP/1.1 request with `Upgrade` naming it and `Connection:
    /// upgrade`); to any other request, the server answers 500 and logs
    /// why. The server writes `Upgrade: <protocol>` and `Connection:
    /// upgrade` itself; headers added with [`with_header`](Self::with_header)
    /// go in the 101 too (`Sec-WebSocket-Accept`, say). The request's body,
    /// if it had one, was received in full before the application ran, and
    /// a `100 Continue` it asked for was sent before.
    ///
    /// The handler runs on a thread of its own (named
    /// `maitred-upgraded-N`), never on a worker: the worker is free as soon
    /// as the 101 is queued. It gets a blocking stream that first yields the
    /// bytes the client sent after its request. At most
    /// `upgraded_connection_limit` upgraded connections are open at once;
    /// past it, the request is answered `503` with `Retry-After: 1`. A
    /// graceful stop waits up to `shutdown_timeout` for handlers to return,
    /// then shuts their sockets down.
    pub fn upgrade(
        protocol: impl Into<HeaderText>,
        handler: impl FnOnce(Upgraded) + Send + 'static,
    ) -> Response {
        let mut r = Response::new(101);
        r.upgrade = Some(Box::new((protocol.into(), Box::new(handler))));
        r
    }

    /// The protocol a [`Response::upgrade`] switches to.
    pub fn upgrade_protocol(&self) -> Option<&str> {
        self.upgrade.as_ref().map(|u| &*u.0)
    }

    /// Takes the protocol and handler of a [`Response::upgrade`].
    pub(crate) fn take_upgrade(&mut self) -> Option<(HeaderText, Handler)> {
        self.upgrade.take().map(|u| *u)
    }

    /// `200 OK` with `text/plain; charset=utf-8` and `body`.
    pub fn text(body: impl Into<String>) -> Response {
        Response::new(200)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(body.into())
    }

    /// `200 OK` with `text/html; charset=utf-8` and `body`.
    pub fn html(body: impl Into<String>) -> Response {
        Response::new(200)
            .with_header("Content-Type", "text/html; charset=utf-8")
            .with_body(body.into())
    }

    /// A plain-text response with `status` and its standard reason as body
    /// (`404 Not Found`, ...).
    pub fn status_page(status: u16) -> Response {
        Response::new(status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(format!("{} {}\n", status, reason_phrase(status)))
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Body>) -> Response {
        self.body = body.into();
        self
    }

    /// Appends a header (repeated names are sent as repeated lines, in
    /// order).
    pub fn with_header(
        mut self,
        name: impl Into<HeaderText>,
        value: impl Into<HeaderText>,
    ) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the reason phrase sent after the status code (default: the
    /// standard phrase for the code).
    pub fn with_reason(mut self, reason: impl Into<HeaderText>) -> Response {
        self.reason = Some(reason.into());
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Changes the status code.
    pub fn set_status(&mut self, status: u16) {
        self.status = status;
    }

    /// The reason phrase that will be sent.
    pub fn reason(&self) -> &str {
        match &self.reason {
            Some(r) => r,
            None => reason_phrase(self.status),
        }
    }

    /// The headers set by the application, in order.
    pub fn headers(&self) -> &[(HeaderText, HeaderText)] {
        &self.headers
    }

    /// The headers, to change.
    pub fn headers_mut(&mut self) -> &mut Vec<(HeaderText, HeaderText)> {
        &mut self.headers
    }

    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    /// Appends a header.
    pub fn add_header(&mut self, name: impl Into<HeaderText>, value: impl Into<HeaderText>) {
        self.headers.push((name.into(), value.into()));
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The body, to change or take.
    pub fn body_mut(&mut self) -> &mut Body {
        &mut self.body
    }

    /// Splits the response into its parts.
    pub fn into_parts(self) -> (u16, Option<HeaderText>, Vec<(HeaderText, HeaderText)>, Body) {
        (self.status, self.reason, self.headers, self.body)
    }
}

impl From<&'static str> for Response {
    fn from(s: &'static str) -> Response {
        Response::text(s)
    }
}

impl From<String> for Response {
    fn from(s: String) -> Response {
        Response::text(s)
    }
}

/// The standard reason phrase for a status code (RFC 9110 and the IANA
/// registry); `"Unknown"` for unregistered codes.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders() {
        let r = Response::text("hi")
            .with_header("X-A", "1")
            .with_reason("Fine");
        assert_eq!(r.status(), 200);
        assert_eq!(r.reason(), "Fine");
        assert_eq!(r.header("x-a"), Some("1"));
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(matches!(r.body(), Body::Bytes(b) if &**b == b"hi"));
        assert_eq!(Response::new(404).reason(), "Not Found");
        assert_eq!(Response::new(299).reason(), "Unknown");
        let p = Response::status_page(404);
        assert!(matches!(p.body(), Body::Bytes(b) if &**b == b"404 Not Found\n"));
    }

    #[test]
    fn body_conversions() {
        assert!(Body::from("").is_empty());
        assert!(!Body::from(String::from("x")).is_empty());
        assert!(matches!(Body::from(vec![1u8, 2]), Body::Bytes(_)));
        assert!(matches!(Body::from_chunks(vec!["a", "b"]), Body::Chunks(_)));
        assert_eq!(
            format!("{:?}", Body::from_reader(std::io::empty(), Some(0))),
            "Body::Reader(len: Some(0))"
        );
    }
}
