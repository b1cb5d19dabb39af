//! The [`http`] crate's types, for applications and libraries written
//! against them (feature `http`, off by default).
//!
//! * A request's head as [`http::request::Parts`]
//!   ([`Request::to_http_parts`]), or the whole request as
//!   [`http::Request<RequestBody>`] ([`Request::into_http`],
//!   [`Request::take_http`]), with the server's extras in its extensions
//!   ([`ConnectionInfo`]).
//! * [`http::Response<B>`] (any `B: Into<Body>`) as a [`Response`]
//!   (`Response::try_from`), and back (`http::Response::<Body>::try_from`).
//! * [`HttpApp`] and [`serve_http`]: serving an
//!   application written as `Fn(http::Request<RequestBody>) ->
//!   http::Response<B>`.
//! * [`http::StatusCode`] → [`Response`], [`Version`] ↔ [`http::Version`],
//!   [`http::HeaderMap`] into and out of a response
//!   ([`Response::add_http_headers`], [`Response::http_headers`]) and out of
//!   a request ([`Request::http_headers`]).
//!
//! ```
//! use maitred::http_interop::ConnectionInfo;
//! use maitred::{Request, RequestBody};
//!
//! fn hello(req: http::Request<RequestBody>) -> http::Response<String> {
//!     let who = req
//!         .extensions()
//!         .get::<ConnectionInfo>()
//!         .map_or("?", |c| c.remote_addr.as_str());
//!     http::Response::builder()
//!         .header(http::header::CONTENT_TYPE, "text/plain")
//!         .body(format!("{} {} from {who}\n", req.method(), req.uri()))
//!         .unwrap_or_default()
//! }
//!
//! // Served with `maitred::serve_http(hello, adj)`; tried here by hand:
//! let req = Request::for_test("GET", "/hi?x=1", &[], b"").into_http()?;
//! let resp = maitred::Response::try_from(hello(req))?;
//! assert_eq!(resp.header("content-type"), Some("text/plain"));
//! # Ok::<(), maitred::http_interop::ConversionError>(())
//! ```
//!
//! # What each conversion does
//!
//! | from | to | how | can fail when |
//! |---|---|---|---|
//! | method | [`http::Method`] | as sent | never for what the parser accepts (a token) |
//! | request-target | [`http::Uri`] | as sent ([`Request::uri`]): origin-form (path and query; a fragment is dropped by `http`), absolute-form (scheme, authority, path), `*` | `http` refuses a character the parser lets through (`<`, `>`, `` ` `` in the path, `<`, `>` in the query) or a target over 65,534 bytes (possible only with a raised `max_request_line_size`) |
//! | version | [`http::Version`] | `HTTP_10`, `HTTP_11` | never |
//! | header fields | [`http::HeaderMap`] | names lower-cased (as `http` keeps them), values as bytes; one value per field name, **repeated fields stay combined** with `", "` as the server delivers them (see below) | a name over 65,535 bytes, more fields than a `HeaderMap` holds (about 24,000; both possible only with raised limits); never for a value: every byte the parser accepts in a value (HTAB, SP, visible ASCII, obs-text 0x80–0xFF) is one [`http::HeaderValue::from_bytes`] accepts |
//! | the server's extras | [`ConnectionInfo`] in the extensions | remote address and port, server name and port, URL scheme, `script_name`, `server_software`, whether the client is gone | never |
//! | body | [`RequestBody`] | moved | never |
//! | [`http::StatusCode`] | status | its number | never (both take 100–999) |
//! | [`http::HeaderMap`] | response headers | in the map's order (every value of a name together, in the order appended), names lower-case | a value that is not UTF-8 (`http` holds bytes, a [`Response`] text): an error, never a lossy rewrite |
//! | response extensions | reason phrase, switch | a [`ReasonPhrase`] there is sent as the reason; a [`Switch`] in a 101 makes it a [`Response::upgrade`]; other extensions are dropped | a [`Switch`] in a response that is not a 101, or one already used |
//! | `B: Into<Body>` | [`Body`] | `Into` (`String`, `Vec<u8>`, `&'static str`, `&'static [u8]`, `File`, `Body`, and `()` for no body) | never |
//!
//! The other way, a [`Response`] → [`http::Response<Body>`] fails for a
//! header name or value `http` refuses (the response writer would refuse
//! them too).
//!
//! Switching protocols: `http` has no place for the handler of a
//! [`Response::upgrade`], so it travels as a [`Switch`] in the response's
//! extensions, both ways (with the `websocket` feature too,
//! `websocket::handshake_http` and `Handshake::accept_http` do the
//! WebSocket handshake on `http` types).
//!
//! What the server checks in every response is still checked after a
//! conversion: a hop-by-hop header (`Connection`, `Transfer-Encoding`, ...)
//! from an `http` application makes the response a 500, as from any
//! application (see [`App`]).
//!
//! ## Repeated request fields
//!
//! The parser combines repeated fields into one value joined with `", "`
//! (RFC 9110 §5.3; waitress does the same for the WSGI environ), so
//! `HeaderMap::get_all` yields that one combined value. They are not split
//! back: where the original lines ended is no longer known, and a comma
//! may be part of a value (a quoted string, a date), so a split could make
//! fields the client never sent. A list-valued field is read by splitting
//! the value on commas, as for a client that sent one line.
//!
//! Thread: a worker thread (the conversions run where the application
//! does).

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};

use crate::logging::escaped;
use crate::request::Connection;
use crate::upgrade::Handler;
use crate::{
    Adjustments, App, Body, Error, HttpError, Request, RequestBody, Response, Upgraded, Version,
};

/// Which part of a request or response could not be converted
/// ([`ConversionError::part`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Part {
    /// The request method.
    Method,
    /// The request-target.
    Uri,
    /// The HTTP version (only HTTP/1.0 and HTTP/1.1 are a [`Version`]).
    Version,
    /// A header field's name.
    HeaderName,
    /// A header field's value.
    HeaderValue,
    /// The number of header fields (more than a [`http::HeaderMap`] holds).
    HeaderCount,
    /// The status code (`http` takes 100 to 999).
    Status,
    /// A switch of protocols: a [`Switch`] in a response whose status is
    /// not 101, or whose handler was taken already.
    Upgrade,
}

/// Why a value could not be converted between maitred's types and the
/// `http` crate's. Never a panic: every fallible `http` constructor is
/// called through its `Result`.
///
/// Its [`Display`](fmt::Display) names the part and quotes the offending
/// text (escaped as in the server's log, at most 64 bytes of it);
/// [`source`](std::error::Error::source) is `http`'s own error where there
/// is one.
#[derive(Debug)]
pub struct ConversionError {
    part: Part,
    status: u16,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ConversionError {
    fn new(
        part: Part,
        status: u16,
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> ConversionError {
        ConversionError {
            part,
            status,
            message,
            source,
        }
    }

    /// What could not be converted.
    pub fn part(&self) -> Part {
        self.part
    }

    /// The status a server answers when a request could not be converted:
    /// 400, or 414 for a request-target too long for `http`, or 431 for a
    /// header name too long or too many fields; 500 for a response (the
    /// application's fault).
    pub fn status(&self) -> u16 {
        self.status
    }
}

impl fmt::Display for ConversionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConversionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// How much of an offending text an error message quotes.
const QUOTED_MAX: usize = 64;

/// `text` for an error message: escaped as in the log, cut at
/// [`QUOTED_MAX`] bytes (with how long it really is).
fn quoted(text: &[u8]) -> String {
    match text.get(..QUOTED_MAX) {
        Some(head) if text.len() > QUOTED_MAX => {
            format!("\"{}\"... ({} bytes)", escaped(head), text.len())
        }
        _ => format!("\"{}\"", escaped(text)),
    }
}

/// The longest request-target `http::Uri` holds (its `MAX_LEN`).
const URI_MAX: usize = u16::MAX as usize - 1;
/// The longest header name `http::HeaderName` holds.
const HEADER_NAME_MAX: usize = u16::MAX as usize;

fn method_error(method: &str, e: http::method::InvalidMethod) -> ConversionError {
    ConversionError::new(
        Part::Method,
        400,
        format!(
            "the method {} is not one http::Method accepts",
            quoted(method.as_bytes())
        ),
        Some(Box::new(e)),
    )
}

fn uri_error(target: &str, e: http::uri::InvalidUri) -> ConversionError {
    let status = if target.len() > URI_MAX { 414 } else { 400 };
    ConversionError::new(
        Part::Uri,
        status,
        format!(
            "the request-target {} is not one http::Uri accepts ({e})",
            quoted(target.as_bytes())
        ),
        Some(Box::new(e)),
    )
}

/// Whose fields are converted: what a failure answers differs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The client's: 400, or 431 for what is too large.
    Request,
    /// The application's: 500.
    Response,
}

impl Side {
    fn status(self, too_large: bool) -> u16 {
        match (self, too_large) {
            (Side::Response, _) => 500,
            (Side::Request, true) => 431,
            (Side::Request, false) => 400,
        }
    }
}

fn name_error(name: &[u8], e: http::header::InvalidHeaderName, side: Side) -> ConversionError {
    let too_long = name.len() > HEADER_NAME_MAX;
    let why = if too_long {
        format!("it is over {HEADER_NAME_MAX} bytes")
    } else {
        e.to_string()
    };
    ConversionError::new(
        Part::HeaderName,
        side.status(too_long),
        format!(
            "the header name {} is not one http::HeaderName accepts ({why})",
            quoted(name)
        ),
        Some(Box::new(e)),
    )
}

fn value_error(name: &[u8], value: &[u8], why: &str, side: Side) -> ConversionError {
    ConversionError::new(
        Part::HeaderValue,
        side.status(false),
        format!(
            "the value {} of header {} {why}",
            quoted(value),
            quoted(name)
        ),
        None,
    )
}

fn count_error(n: usize, e: http::header::MaxSizeReached, side: Side) -> ConversionError {
    let whose = match side {
        Side::Request => "request",
        Side::Response => "response",
    };
    ConversionError::new(
        Part::HeaderCount,
        side.status(true),
        format!("the {whose} has {n} header fields, more than an http::HeaderMap holds"),
        Some(Box::new(e)),
    )
}

/// `n` header fields (name, value as bytes) as a [`http::HeaderMap`].
fn header_map<'a>(
    n: usize,
    fields: impl Iterator<Item = (&'a str, &'a [u8])>,
    side: Side,
) -> Result<http::HeaderMap, ConversionError> {
    let mut map = http::HeaderMap::try_with_capacity(n).map_err(|e| count_error(n, e, side))?;
    for (name, value) in fields {
        let name = name.as_bytes();
        let hname = http::HeaderName::from_bytes(name).map_err(|e| name_error(name, e, side))?;
        let hvalue = http::HeaderValue::from_bytes(value).map_err(|e| {
            let why = format!("is not one http::HeaderValue accepts ({e})");
            value_error(name, value, &why, side)
        })?;
        map.try_append(hname, hvalue)
            .map_err(|e| count_error(n, e, side))?;
    }
    Ok(map)
}

impl From<Version> for http::Version {
    fn from(v: Version) -> http::Version {
        match v {
            Version::Http10 => http::Version::HTTP_10,
            Version::Http11 => http::Version::HTTP_11,
        }
    }
}

impl TryFrom<http::Version> for Version {
    type Error = ConversionError;

    /// HTTP/1.0 and HTTP/1.1; any other version (0.9, 2, 3) is an error.
    fn try_from(v: http::Version) -> Result<Version, ConversionError> {
        if v == http::Version::HTTP_10 {
            Ok(Version::Http10)
        } else if v == http::Version::HTTP_11 {
            Ok(Version::Http11)
        } else {
            Err(ConversionError::new(
                Part::Version,
                500,
                format!("{v:?} is not a version this server speaks (HTTP/1.0, HTTP/1.1)"),
                None,
            ))
        }
    }
}

/// The server's extras for a request converted to `http` types, in its
/// [`extensions`](http::Request::extensions): what the WSGI environ has
/// beyond the method, target, version and headers.
///
/// ```
/// use maitred::http_interop::ConnectionInfo;
///
/// let req = maitred::Request::for_test("GET", "/", &[], b"").into_http()?;
/// let info = req.extensions().get::<ConnectionInfo>().expect("always there");
/// assert_eq!(info.remote_addr, "127.0.0.1");
/// assert_eq!(info.remote_socket_addr(), Some(([127, 0, 0, 1], 50000).into()));
/// assert_eq!(info.url_scheme, "http");
/// assert!(!info.client_disconnected());
/// # Ok::<(), maitred::http_interop::ConversionError>(())
/// ```
///
/// The fields are public to read and to set (for a test of an `http`
/// application: start from [`ConnectionInfo::default`]); more may come,
/// so it cannot be written as a literal.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// [`Request::remote_addr`]: the client's address (`"localhost"` on a
    /// unix socket), or what a trusted proxy said it is.
    pub remote_addr: String,
    /// [`Request::remote_port`] (`None` on a unix socket).
    pub remote_port: Option<u16>,
    /// [`Request::server_name`] (the `server_name` setting, or the host a
    /// trusted proxy forwarded).
    pub server_name: String,
    /// [`Request::server_port`] (`None` on a unix socket).
    pub server_port: Option<u16>,
    /// [`Request::url_scheme`]: `http`, or `https` from the `url_scheme`
    /// setting or a trusted proxy.
    pub url_scheme: String,
    /// [`Request::script_name`]: the `url_prefix` setting. The URI's path
    /// still starts with it (it is the target as sent).
    pub script_name: String,
    /// [`Request::server_software`] (the `ident` setting).
    pub server_software: String,
    /// The connection, for [`client_disconnected`](Self::client_disconnected):
    /// weak, so that extras an application keeps never hold a socket open.
    conn: Option<Weak<dyn Connection>>,
}

impl ConnectionInfo {
    /// The extras of `req`.
    pub fn of(req: &Request) -> ConnectionInfo {
        ConnectionInfo {
            remote_addr: req.remote_addr().to_string(),
            remote_port: req.remote_port(),
            server_name: req.server_name().to_string(),
            server_port: req.server_port(),
            url_scheme: req.url_scheme().to_string(),
            script_name: req.script_name().to_string(),
            server_software: req.server_software().to_string(),
            conn: req.connection(),
        }
    }

    /// True once the client has gone away
    /// ([`Request::client_disconnected`]; the same caveat: the server only
    /// notices while a request runs when `channel_request_lookahead` > 0).
    /// True too once the server let go of the connection (it was closed):
    /// a `ConnectionInfo` kept after its request does not keep the
    /// connection open. Always false for a `ConnectionInfo` made by hand
    /// or from a [`Request::for_test`].
    pub fn client_disconnected(&self) -> bool {
        match &self.conn {
            Some(weak) => weak.upgrade().is_none_or(|c| c.disconnected()),
            None => false,
        }
    }

    /// The client's address and port as a [`SocketAddr`], when the address
    /// is an IP address and there is a port (`None` on a unix socket, or
    /// for a proxy's obfuscated identifier such as `_hidden`).
    pub fn remote_socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.remote_addr.parse().ok()?;
        Some(SocketAddr::new(ip, self.remote_port?))
    }
}

impl fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionInfo")
            .field("remote_addr", &self.remote_addr)
            .field("remote_port", &self.remote_port)
            .field("server_name", &self.server_name)
            .field("server_port", &self.server_port)
            .field("url_scheme", &self.url_scheme)
            .field("script_name", &self.script_name)
            .field("server_software", &self.server_software)
            .field("client_disconnected", &self.client_disconnected())
            .finish()
    }
}

/// A reason phrase for the status line, in an [`http::Response`]'s
/// extensions (the `http` crate has no field for one): converting the
/// response to a [`Response`] sends it instead of the standard phrase, and
/// a [`Response`] with its own phrase carries one when converted to
/// `http`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReasonPhrase(pub Cow<'static, str>);

impl Request {
    /// The head as [`http::request::Parts`]: method, URI (the
    /// request-target as sent), version, headers (repeated fields stay
    /// combined with `", "`) and, in the extensions, a [`ConnectionInfo`].
    /// See [the module](crate::http_interop) for each part's edge cases.
    ///
    /// Errors: a part that `http` cannot hold (a request-target with `<`,
    /// say); see [`ConversionError::part`].
    pub fn to_http_parts(&self) -> Result<http::request::Parts, ConversionError> {
        let method = http::Method::from_bytes(self.method().as_bytes())
            .map_err(|e| method_error(self.method(), e))?;
        let target = self.uri();
        let uri = http::Uri::try_from(target).map_err(|e| uri_error(target, e))?;
        let headers = self.http_headers()?;
        let mut parts = http::Request::new(()).into_parts().0;
        parts.method = method;
        parts.uri = uri;
        parts.version = self.version().into();
        parts.headers = headers;
        parts.extensions.insert(ConnectionInfo::of(self));
        Ok(parts)
    }

    /// The request's header fields as a [`http::HeaderMap`] (names
    /// lower-cased, repeated fields combined as the server delivers them).
    ///
    /// Errors: a name over 65,535 bytes, or more fields than a map holds.
    pub fn http_headers(&self) -> Result<http::HeaderMap, ConversionError> {
        header_map(self.headers().count(), self.headers(), Side::Request)
    }

    /// The whole request as an [`http::Request`], its body moved in.
    ///
    /// Errors: as [`to_http_parts`](Self::to_http_parts).
    pub fn into_http(mut self) -> Result<http::Request<RequestBody>, ConversionError> {
        self.take_http()
    }

    /// Like [`into_http`](Self::into_http) for a request the application
    /// was lent (`&mut Request`): the body is taken, leaving an empty one
    /// (as [`take_body`](Self::take_body)). On an error nothing is taken.
    pub fn take_http(&mut self) -> Result<http::Request<RequestBody>, ConversionError> {
        let parts = self.to_http_parts()?;
        Ok(http::Request::from_parts(parts, self.take_body()))
    }
}

/// For `http::Response<()>`: no body.
impl From<()> for Body {
    fn from((): ()) -> Body {
        Body::Empty
    }
}

/// A status code as a [`Response`] with no headers and no body.
impl From<http::StatusCode> for Response {
    fn from(code: http::StatusCode) -> Response {
        Response::new(code.as_u16())
    }
}

impl Response {
    /// Appends every field of `headers`, in the map's order (the values of
    /// one name together); names are `http`'s, lower-case.
    ///
    /// Errors: a value that is not UTF-8 (`http` holds obs-text bytes, a
    /// [`Response`] holds text). Then nothing is appended.
    pub fn add_http_headers(&mut self, headers: &http::HeaderMap) -> Result<(), ConversionError> {
        let mut fields = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let text = std::str::from_utf8(value.as_bytes()).map_err(|_| {
                value_error(
                    name.as_str().as_bytes(),
                    value.as_bytes(),
                    "is not UTF-8, and a response's header values are text",
                    Side::Response,
                )
            })?;
            fields.push((name.as_str().to_owned(), text.to_owned()));
        }
        self.headers_mut().extend(
            fields
                .into_iter()
                .map(|(n, v)| (Cow::Owned(n), Cow::Owned(v))),
        );
        Ok(())
    }

    /// The headers as a [`http::HeaderMap`].
    ///
    /// Errors: a name or value `http` refuses (one the response writer
    /// would refuse too: not a token, a control character).
    pub fn http_headers(&self) -> Result<http::HeaderMap, ConversionError> {
        let fields = self
            .headers()
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_bytes()));
        header_map(self.headers().len(), fields, Side::Response)
    }

    /// The status as a [`http::StatusCode`].
    ///
    /// Errors: a code outside 100 to 999 (the writer answers such a
    /// response with a 500).
    pub fn http_status(&self) -> Result<http::StatusCode, ConversionError> {
        http::StatusCode::from_u16(self.status()).map_err(|e| {
            ConversionError::new(
                Part::Status,
                500,
                format!(
                    "the status {} is not one http::StatusCode accepts",
                    self.status()
                ),
                Some(Box::new(e)),
            )
        })
    }
}

impl<B: Into<Body>> TryFrom<http::Response<B>> for Response {
    type Error = ConversionError;

    /// Status, headers ([`add_http_headers`](Response::add_http_headers)),
    /// a [`ReasonPhrase`] from the extensions, and the body through `Into`.
    /// The version is not used (the server answers in the request's). A
    /// 101 with a [`Switch`] in its extensions becomes the
    /// [`Response::upgrade`] to its protocol.
    ///
    /// Errors: a header value that is not UTF-8; a [`Switch`] in a
    /// response that is not a 101, or one whose handler a clone took.
    fn try_from(r: http::Response<B>) -> Result<Response, ConversionError> {
        let (mut parts, body) = r.into_parts();
        let status = parts.status.as_u16();
        if let Some(switch) = parts.extensions.remove::<Switch>() {
            if status != 101 {
                return Err(ConversionError::new(
                    Part::Upgrade,
                    500,
                    format!(
                        "a Switch to {} in a response with status {status}: a switch is a 101",
                        quoted(switch.protocol.as_bytes())
                    ),
                    None,
                ));
            }
            let protocol = switch.protocol.clone();
            let handler = switch.take().ok_or_else(|| {
                ConversionError::new(
                    Part::Upgrade,
                    500,
                    format!(
                        "the Switch to {} was used already (a clone of it took the handler)",
                        quoted(protocol.as_bytes())
                    ),
                    None,
                )
            })?;
            let mut resp = Response::upgrade(protocol, handler);
            resp.add_http_headers(&parts.headers)?;
            if let Some(ReasonPhrase(reason)) = parts.extensions.remove::<ReasonPhrase>() {
                resp = resp.with_reason(reason);
            }
            return Ok(resp);
        }
        let mut resp = Response::new(status);
        resp.add_http_headers(&parts.headers)?;
        if let Some(ReasonPhrase(reason)) = parts.extensions.remove::<ReasonPhrase>() {
            resp = resp.with_reason(reason);
        }
        Ok(resp.with_body(body))
    }
}

impl TryFrom<Response> for http::Response<Body> {
    type Error = ConversionError;

    /// Status, headers, body; a reason phrase of the response's own as a
    /// [`ReasonPhrase`] extension; a [`Response::upgrade`]'s protocol and
    /// handler as a [`Switch`] extension. The version is `http`'s default
    /// (HTTP/1.1).
    ///
    /// Errors: a status outside 100 to 999, a header `http` refuses.
    fn try_from(mut r: Response) -> Result<http::Response<Body>, ConversionError> {
        let switch = r
            .take_upgrade()
            .map(|(protocol, handler)| Switch::from_parts(protocol.to_string(), handler));
        let status = r.http_status()?;
        let headers = r.http_headers()?;
        let (_, reason, _, body) = r.into_parts();
        let mut out = http::Response::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        if let Some(reason) = reason {
            out.extensions_mut().insert(ReasonPhrase(reason));
        }
        if let Some(switch) = switch {
            out.extensions_mut().insert(switch);
        }
        Ok(out)
    }
}

/// A switch of protocols for an `http` application (`http` has no place
/// for one): the protocol and the handler that gets the connection after
/// the `101 Switching Protocols`, carried in the response's extensions.
/// `Response::try_from` (and so [`HttpApp`]) turns a 101 that holds one
/// into [`Response::upgrade`]; everything said there holds (the request
/// must have proposed the protocol, the handler runs on a thread of its
/// own, never on a worker).
///
/// Extensions must be `Clone`; the handler runs once, so the clones share
/// it, and the first converted takes it (converting another is then an
/// error).
///
/// ```
/// use maitred::http_interop::Switch;
/// use maitred::{Request, RequestBody};
/// use std::io::Write;
///
/// fn app(req: http::Request<RequestBody>) -> http::Response<()> {
///     let offered = req.headers().get("upgrade").is_some_and(|v| v == "hello");
///     if !offered {
///         return http::Response::new(());
///     }
///     let mut r = Switch::new("hello", |mut stream| {
///         let _ = stream.write_all(b"hello, switched\n");
///     })
///     .into_response();
///     r.headers_mut().insert("x-switched", http::HeaderValue::from_static("yes"));
///     r
/// }
///
/// let head = [("Upgrade", "hello"), ("Connection", "upgrade")];
/// let req = Request::for_test("GET", "/", &head, b"").into_http()?;
/// let resp = maitred::Response::try_from(app(req))?;
/// assert_eq!(resp.status(), 101);
/// assert_eq!(resp.upgrade_protocol(), Some("hello"));
/// # Ok::<(), maitred::http_interop::ConversionError>(())
/// ```
#[derive(Clone)]
pub struct Switch {
    protocol: String,
    handler: Arc<Mutex<Option<Handler>>>,
}

impl Switch {
    /// A switch to `protocol` (a token, with an optional `/version`),
    /// whose connection goes to `handler`.
    pub fn new(
        protocol: impl Into<String>,
        handler: impl FnOnce(Upgraded) + Send + 'static,
    ) -> Switch {
        Switch::from_parts(protocol.into(), Box::new(handler))
    }

    fn from_parts(protocol: String, handler: Handler) -> Switch {
        Switch {
            protocol,
            handler: Arc::new(Mutex::new(Some(handler))),
        }
    }

    /// The protocol switched to.
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// A `101 Switching Protocols` holding this switch (add headers to it
    /// as to any response; the server writes `Upgrade` and `Connection`).
    pub fn into_response(self) -> http::Response<()> {
        let mut r = http::Response::new(());
        *r.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
        r.extensions_mut().insert(self);
        r
    }

    /// The handler, unless a clone took it.
    fn take(&self) -> Option<Handler> {
        crate::lock(&self.handler).take()
    }
}

impl fmt::Debug for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Switch")
            .field("protocol", &self.protocol)
            .field("used", &crate::lock(&self.handler).is_none())
            .finish()
    }
}

/// An application written against the `http` crate's types, served as a
/// maitred [`App`]: `Fn(http::Request<RequestBody>) -> http::Response<B>`
/// with `B: Into<Body>` (astra's shape).
///
/// For each request it converts the request ([`Request::take_http`]),
/// calls the handler, and converts its response (`Response::try_from`):
///
/// * a request `http` cannot hold (see [the module](crate::http_interop))
///   is answered with the status of [`ConversionError::status`] (400, 414
///   or 431) and a body that says what was wrong, in the server's error
///   format; the handler is not called, and an info line is logged;
/// * a response that cannot be converted (a header value that is not
///   UTF-8) is answered 500 with the server's generic body, and the error
///   is logged as `Exception while serving <path>: ...`, as for an
///   application that panicked.
///
/// Everything else is as for any [`App`]: a panic in the handler is a 500,
/// the server's response rules apply to what it returns.
///
/// ```no_run
/// use maitred::{Adjustments, HttpApp, RequestBody};
///
/// let app = HttpApp::new(|req: http::Request<RequestBody>| {
///     http::Response::new(format!("you asked for {}\n", req.uri().path()))
/// });
/// let adj = Adjustments::default().listen(&["127.0.0.1:8080"]);
/// maitred::serve(app, adj)?; // or maitred::serve_http(handler, adj)
/// # Ok::<(), maitred::Error>(())
/// ```
pub struct HttpApp<F> {
    handler: F,
}

impl<F> HttpApp<F> {
    /// Wraps `handler`.
    pub fn new(handler: F) -> HttpApp<F> {
        HttpApp { handler }
    }
}

impl<F> fmt::Debug for HttpApp<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpApp").finish_non_exhaustive()
    }
}

impl<F, B> App for HttpApp<F>
where
    F: Fn(http::Request<RequestBody>) -> http::Response<B> + Send + Sync + 'static,
    B: Into<Body>,
{
    fn call(&self, req: &mut Request) -> Response {
        let http_req = match req.take_http() {
            Ok(r) => r,
            Err(e) => {
                crate::log_info!(
                    "Request not convertible to http types, answered {}: {} {}: {e}",
                    e.status(),
                    req.method(),
                    escaped(req.path_bytes())
                );
                return error_response(req, &HttpError::new(e.status(), e.to_string()));
            }
        };
        match Response::try_from((self.handler)(http_req)) {
            Ok(r) => r,
            Err(e) => {
                crate::log_error!(
                    "Exception while serving {}: the application's http::Response could not be converted: {e}",
                    escaped(req.path_bytes())
                );
                error_response(
                    req,
                    &HttpError::internal_server_error(
                        "The server encountered an unexpected internal server error",
                    ),
                )
            }
        }
    }
}

/// `err` as an application's response, in the server's error format.
fn error_response(req: &Request, err: &HttpError) -> Response {
    let ident = Some(req.server_software()).filter(|s| !s.is_empty());
    Response::new(err.code())
        .with_header("Content-Type", "text/plain; charset=utf-8")
        .with_body(err.body(ident))
}

/// Serves an `http`-typed application until SIGINT or SIGTERM:
/// [`serve`](crate::serve) with [`HttpApp::new(handler)`](HttpApp).
pub fn serve_http<F, B>(handler: F, adj: Adjustments) -> Result<(), Error>
where
    F: Fn(http::Request<RequestBody>) -> http::Response<B> + Send + Sync + 'static,
    B: Into<Body>,
{
    crate::serve(HttpApp::new(handler), adj)
}

#[cfg(test)]
mod tests;
