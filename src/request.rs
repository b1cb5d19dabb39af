//! What an application receives: [`Request`], the Rust counterpart of the
//! WSGI `environ`.
//!
//! The whole request, body included, has been received before the
//! application runs (as in waitress), so reading the body never waits on
//! the network.
//!
//! # WSGI environ keys and their accessors
//!
//! | WSGI key (waitress) | `Request` accessor |
//! |---|---|
//! | `REQUEST_METHOD` | [`method`](Request::method) |
//! | `SCRIPT_NAME` | [`script_name`](Request::script_name) (the `url_prefix` setting) |
//! | `PATH_INFO` | [`path_bytes`](Request::path_bytes) (percent-decoded bytes; WSGI gives them as latin-1 text), [`path`](Request::path) (the same as UTF-8, lossily) |
//! | `QUERY_STRING` | [`query_string`](Request::query_string) (raw, not decoded) |
//! | `REQUEST_URI` | [`uri`](Request::uri) (the request-target as sent) |
//! | `SERVER_PROTOCOL` | [`protocol`](Request::protocol) (`"HTTP/1.1"`), [`version`](Request::version) |
//! | `CONTENT_TYPE` | [`content_type`](Request::content_type) |
//! | `CONTENT_LENGTH` | [`content_length`](Request::content_length) (for a chunked request, the decoded length) |
//! | `HTTP_*` | [`headers`](Request::headers) (arrival order, names as sent), [`header`](Request::header) / [`header_str`](Request::header_str) (case-insensitive) |
//! | `REMOTE_ADDR`, `REMOTE_HOST` | [`remote_addr`](Request::remote_addr) |
//! | `REMOTE_PORT` | [`remote_port`](Request::remote_port) |
//! | `SERVER_NAME` | [`server_name`](Request::server_name) (the `server_name` setting, or what a trusted proxy says) |
//! | `SERVER_PORT` | [`server_port`](Request::server_port) |
//! | `SERVER_SOFTWARE` | [`server_software`](Request::server_software) (the `ident` setting) |
//! | `wsgi.url_scheme` | [`url_scheme`](Request::url_scheme) |
//! | `wsgi.input` | [`body`](Request::body) / [`take_body`](Request::take_body) ([`RequestBody`]: `Read + BufRead + Seek`) |
//! | `wsgi.input_terminated` | always true: the body ends where the request's body ends |
//! | `wsgi.file_wrapper` | [`Body::File`](crate::Body::File) in the response |
//! | `waitress.client_disconnected` | [`client_disconnected`](Request::client_disconnected) |
//! | `wsgi.errors` | the server's log (see [`logging`](crate::logging)) |
//! | `wsgi.multithread` / `multiprocess` / `run_once` | true / false / false, by construction |
//!
//! For a client on a unix socket, [`remote_addr`](Request::remote_addr) is
//! `"localhost"` and [`remote_port`](Request::remote_port) is `None` (as
//! waitress), and [`server_port`](Request::server_port) is `None` (waitress
//! puts the socket's path in `SERVER_PORT`).
//!
//! Thread: a worker thread (built from what the I/O thread parsed).

use std::borrow::Cow;
use std::sync::Arc;

use crate::buffers::RequestBody;
use crate::parser::{RequestHead, Version};

/// The connection a request came on, as the request sees it: its environ
/// and whether the client is gone.
pub(crate) trait Connection: Send + Sync {
    /// The per-connection part of the environ.
    fn environ(&self) -> &ConnEnviron;
    /// The client went away.
    fn disconnected(&self) -> bool;
    /// A connection with a socket behind it (everything but [`Detached`]).
    #[cfg(feature = "http")]
    fn is_live(&self) -> bool {
        true
    }
}

/// A connection that is only an environ (a request made for a test, or an
/// answer the I/O thread makes): never disconnected.
struct Detached(ConnEnviron);

impl Connection for Detached {
    fn environ(&self) -> &ConnEnviron {
        &self.0
    }
    fn disconnected(&self) -> bool {
        false
    }
    #[cfg(feature = "http")]
    fn is_live(&self) -> bool {
        false
    }
}

/// What a trusted proxy said, over the connection's environ (set by the
/// proxy-headers middleware only).
#[derive(Debug, Default)]
struct Proxied {
    remote_addr: Option<Arc<str>>,
    remote_port: Option<Option<u16>>,
    server_name: Option<Arc<str>>,
    server_port: Option<Option<u16>>,
    url_scheme: Option<Cow<'static, str>>,
}

/// One HTTP request, with its body fully received.
pub struct Request {
    head: RequestHead,
    body: RequestBody,
    /// Where PATH_INFO starts in the decoded path.
    path_start: usize,
    /// The connection (one reference count per request, on the
    /// connection's own line, rather than one per environ string, some of
    /// them shared by every connection).
    conn: Arc<dyn Connection>,
    proxied: Proxied,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("uri", &self.uri())
            .field("version", &self.version())
            .field("remote_addr", &self.remote_addr())
            .field("content_length", &self.content_length())
            .finish_non_exhaustive()
    }
}

/// The per-connection part of a request's environ (waitress builds it
/// afresh per request): where the connection came in and the pieces of a
/// request that do not come from its bytes. Made once per connection and
/// shared by its requests.
#[derive(Clone, Debug)]
pub(crate) struct ConnEnviron {
    pub script_name: Arc<str>,
    pub remote_addr: Arc<str>,
    pub remote_port: Option<u16>,
    pub server_name: Arc<str>,
    pub server_port: Option<u16>,
    pub url_scheme: Cow<'static, str>,
    pub ident: Arc<str>,
}

/// PATH_INFO's start in `path`: a leading run of slashes counts as one,
/// and `url_prefix` is taken off when the path is it or starts with it
/// followed by a slash (waitress's rules, including SCRIPT_NAME staying the
/// prefix when the path does not match it).
fn path_info_start(path: &[u8], url_prefix: &str) -> usize {
    let mut start = 0;
    if path.first() == Some(&b'/') {
        while path.get(start + 1) == Some(&b'/') {
            start += 1;
        }
    }
    let p = &path[start..];
    let prefix = url_prefix.as_bytes();
    if !prefix.is_empty() {
        if p == prefix {
            return path.len();
        }
        if p.len() > prefix.len() && p.starts_with(prefix) && p[prefix.len()] == b'/' {
            return start + prefix.len();
        }
    }
    start
}

impl Request {
    pub(crate) fn new(head: RequestHead, body: RequestBody, conn: Arc<dyn Connection>) -> Request {
        let path_start = path_info_start(head.path(), &conn.environ().script_name);
        Request {
            head,
            body,
            path_start,
            conn,
            proxied: Proxied::default(),
        }
    }

    /// A request on no live connection (its environ only).
    pub(crate) fn detached(head: RequestHead, body: RequestBody, environ: ConnEnviron) -> Request {
        Request::new(head, body, Arc::new(Detached(environ)))
    }

    /// A request built by hand, for testing applications without a server.
    ///
    /// ```
    /// let mut req = maitred::Request::for_test("GET", "/hello?x=1", &[("Host", "example.com")], b"");
    /// assert_eq!(req.path(), "/hello");
    /// assert_eq!(req.query_string(), "x=1");
    /// assert_eq!(req.header_str("host"), Some("example.com"));
    /// ```
    ///
    /// # Panics
    ///
    /// When the method, target or headers do not form a valid HTTP/1.1
    /// request head.
    pub fn for_test(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        use std::fmt::Write;
        let mut raw = String::new();
        let _ = write!(raw, "{method} {target} HTTP/1.1\r\n");
        let mut has_host = false;
        for (n, v) in headers {
            has_host |= n.eq_ignore_ascii_case("host");
            let _ = write!(raw, "{n}: {v}\r\n");
        }
        if !has_host {
            raw.push_str("Host: localhost\r\n");
        }
        if !body.is_empty() {
            let _ = write!(raw, "Content-Length: {}\r\n", body.len());
        }
        raw.push_str("\r\n");
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(body);
        let mut p = crate::parser::RequestParser::new(crate::parser::ParserConfig::default());
        p.received(&bytes);
        match p.into_parsed() {
            crate::parser::Parsed::Request(head, body) => Request::detached(
                head,
                body,
                ConnEnviron {
                    script_name: Arc::from(""),
                    remote_addr: Arc::from("127.0.0.1"),
                    remote_port: Some(50000),
                    server_name: Arc::from("waitress.invalid"),
                    server_port: Some(8080),
                    url_scheme: Cow::Borrowed("http"),
                    ident: Arc::from("maitred"),
                },
            ),
            crate::parser::Parsed::Error(e, _) => panic!("invalid test request: {e}"),
        }
    }

    /// True when the request proposes to switch to `protocol` (RFC 9110
    /// §7.8): it is HTTP/1.1, its `Connection` holds `upgrade`, and its
    /// `Upgrade` list names `protocol` (`websocket`, or `name/version`;
    /// case-insensitive). Answer it with
    /// [`Response::upgrade`](crate::Response::upgrade) to switch, or with
    /// anything else to serve it as HTTP. `Upgrade` in an HTTP/1.0 request
    /// is ignored.
    pub fn upgrade_requested(&self, protocol: &str) -> bool {
        self.head
            .upgrade_offer()
            .is_some_and(|offer| crate::grammar::upgrade_list_has(offer, protocol))
    }

    /// The method (`GET`, `POST`, ...).
    pub fn method(&self) -> &str {
        self.head.method()
    }

    /// The request-target exactly as the client sent it, query and
    /// fragment included (`REQUEST_URI`).
    pub fn uri(&self) -> &str {
        self.head.uri()
    }

    /// The path below [`script_name`](Self::script_name), percent-decoded
    /// (`PATH_INFO`), as bytes. A leading run of slashes is reduced to one.
    pub fn path_bytes(&self) -> &[u8] {
        self.head.path().get(self.path_start..).unwrap_or(b"")
    }

    /// [`path_bytes`](Self::path_bytes) as text; bytes that are not UTF-8
    /// become U+FFFD.
    pub fn path(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.path_bytes())
    }

    /// The mount point (`SCRIPT_NAME`, the `url_prefix` setting).
    pub fn script_name(&self) -> &str {
        &self.conn.environ().script_name
    }

    /// The query string, without `?`, not decoded (`QUERY_STRING`).
    pub fn query_string(&self) -> &str {
        self.head.query()
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.head.version()
    }

    /// `"HTTP/1.0"` or `"HTTP/1.1"` (`SERVER_PROTOCOL`).
    pub fn protocol(&self) -> &'static str {
        self.head.version().protocol()
    }

    /// The headers in arrival order, names as sent; repeated fields were
    /// combined with `", "`.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.head.headers()
    }

    /// The value of header `name` (ASCII case-insensitive), as bytes.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.header(name)
    }

    /// The value of header `name` as text, if it is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.head
            .header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// `Content-Type` (`CONTENT_TYPE`).
    pub fn content_type(&self) -> Option<&str> {
        self.header_str("content-type")
    }

    /// The body's length (`CONTENT_LENGTH`): the `Content-Length` field, or
    /// for a chunked request the decoded length.
    pub fn content_length(&self) -> Option<u64> {
        self.head.content_length()
    }

    /// The client's address (`REMOTE_ADDR`; `"localhost"` on a unix
    /// socket), or what a trusted proxy said it is.
    pub fn remote_addr(&self) -> &str {
        match &self.proxied.remote_addr {
            Some(a) => a,
            None => &self.conn.environ().remote_addr,
        }
    }

    /// The client's port (`REMOTE_PORT`; `None` on a unix socket).
    pub fn remote_port(&self) -> Option<u16> {
        self.proxied
            .remote_port
            .unwrap_or(self.conn.environ().remote_port)
    }

    /// `SERVER_NAME`: the `server_name` setting (waitress never derives it
    /// from `Host`), or the host a trusted proxy forwarded.
    pub fn server_name(&self) -> &str {
        match &self.proxied.server_name {
            Some(n) => n,
            None => &self.conn.environ().server_name,
        }
    }

    /// `SERVER_PORT`: the port the connection came in on (`None` on a unix
    /// socket), or the port a trusted proxy forwarded.
    pub fn server_port(&self) -> Option<u16> {
        self.proxied
            .server_port
            .unwrap_or(self.conn.environ().server_port)
    }

    /// `wsgi.url_scheme`: `http`, `https` from the `url_scheme` setting or a
    /// trusted proxy.
    pub fn url_scheme(&self) -> &str {
        match &self.proxied.url_scheme {
            Some(s) => s,
            None => &self.conn.environ().url_scheme,
        }
    }

    /// `SERVER_SOFTWARE` (the `ident` setting).
    pub fn server_software(&self) -> &str {
        &self.conn.environ().ident
    }

    /// The body, to read (`wsgi.input`).
    pub fn body(&mut self) -> &mut RequestBody {
        &mut self.body
    }

    /// Takes the body, leaving an empty one.
    pub fn take_body(&mut self) -> RequestBody {
        std::mem::take(&mut self.body)
    }

    /// True once the client has gone away (`waitress.client_disconnected`).
    ///
    /// As in waitress, the server only notices a disconnection while a
    /// request runs when it is allowed to read ahead
    /// (`channel_request_lookahead` > 0); otherwise the socket is not read
    /// until the response is sent.
    pub fn client_disconnected(&self) -> bool {
        self.conn.disconnected()
    }

    /// The connection, for an `http` request's
    /// [`ConnectionInfo`](crate::http_interop::ConnectionInfo), which
    /// answers [`client_disconnected`](Self::client_disconnected) after the
    /// request was converted; `None` for a request on no connection (never
    /// disconnected). Weak: the socket closes with the last strong
    /// reference, and an application may keep the extras longer than the
    /// request.
    #[cfg(feature = "http")]
    pub(crate) fn connection(&self) -> Option<std::sync::Weak<dyn Connection>> {
        self.conn.is_live().then(|| Arc::downgrade(&self.conn))
    }

    /// The parsed head.
    pub(crate) fn head(&self) -> &RequestHead {
        &self.head
    }

    // What the proxy-headers middleware changes (waitress's middleware
    // edits the environ). The path is not touched, so PATH_INFO's start
    // stays valid.

    /// The head, to add, replace or remove header fields.
    pub(crate) fn head_mut(&mut self) -> &mut RequestHead {
        &mut self.head
    }

    pub(crate) fn set_remote_addr(&mut self, addr: Arc<str>) {
        self.proxied.remote_addr = Some(addr);
    }

    pub(crate) fn set_remote_port(&mut self, port: Option<u16>) {
        self.proxied.remote_port = Some(port);
    }

    pub(crate) fn set_server_name(&mut self, name: Arc<str>) {
        self.proxied.server_name = Some(name);
    }

    pub(crate) fn set_server_port(&mut self, port: Option<u16>) {
        self.proxied.server_port = Some(port);
    }

    pub(crate) fn set_url_scheme(&mut self, scheme: Cow<'static, str>) {
        self.proxied.url_scheme = Some(scheme);
    }
}

#[cfg(test)]
mod tests {
    use super::path_info_start;

    fn pi<'a>(path: &'a [u8], prefix: &str) -> &'a [u8] {
        &path[path_info_start(path, prefix)..]
    }

    #[test]
    fn path_info_rules() {
        assert_eq!(pi(b"/a/b", ""), b"/a/b");
        assert_eq!(pi(b"//double//x", ""), b"/double//x");
        assert_eq!(pi(b"///", ""), b"/");
        assert_eq!(pi(b"", ""), b"");
        assert_eq!(pi(b"*", ""), b"*");
        assert_eq!(pi(b"/foo", "/foo"), b"");
        assert_eq!(pi(b"/foo/bar", "/foo"), b"/bar");
        assert_eq!(pi(b"/foo/", "/foo"), b"/");
        // A miss keeps the whole path (SCRIPT_NAME stays the prefix).
        assert_eq!(pi(b"/foobar", "/foo"), b"/foobar");
        assert_eq!(pi(b"//foo/x", "/foo"), b"/x");
    }
}
