//! The opening handshake (RFC 6455 §4.2): checking a client's request,
//! choosing a subprotocol, and the `101 Switching Protocols` with
//! `Sec-WebSocket-Accept`, or the refusal.
//!
//! No extension is ever accepted: a client's `Sec-WebSocket-Extensions`
//! (`permessage-deflate`, RFC 7692) gets no answer, which declines it, so
//! the client sends no compressed frames (RSV1 stays clear).
//!
//! Thread: a worker (the application answering the request).

use std::borrow::Cow;
use std::fmt;

use crate::grammar::{trim_ows, upgrade_list_has};
use crate::{Request, Response, Version};

use super::{base64, sha1, Config, WebSocket};

/// The GUID RFC 6455 §1.3 appends to the key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only version of the protocol (RFC 6455 §4.1).
pub const VERSION: &str = "13";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64 of the SHA-1
/// of the key followed by RFC 6455's GUID.
///
/// ```
/// assert_eq!(
///     maitred::websocket::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &str) -> String {
    let mut input = Vec::with_capacity(key.len() + GUID.len());
    input.extend_from_slice(key.as_bytes());
    input.extend_from_slice(GUID.as_bytes());
    base64::encode(&sha1::sha1(&input))
}

/// True when `req` asks for a WebSocket: its `Upgrade` header names
/// `websocket` (whatever else is right or wrong with it; [`handshake`]
/// checks the rest). Use it to route a path that serves both a page and a
/// WebSocket.
pub fn is_websocket_request(req: &Request) -> bool {
    asks_for_websocket(req)
}

/// [`is_websocket_request`] for an `http` application's request (feature
/// `http`).
#[cfg(feature = "http")]
pub fn is_websocket_request_http<B>(req: &http::Request<B>) -> bool {
    asks_for_websocket(req)
}

/// What the handshake reads of a request, from the server's [`Request`]
/// or an `http::Request`.
trait Head {
    fn method_is(&self, method: &str) -> bool;
    fn is_http11(&self) -> bool;
    /// A field's value; repeated fields combined with `", "`, as the
    /// server's parser delivers them.
    fn field(&self, name: &str) -> Option<Cow<'_, [u8]>>;
}

impl Head for Request {
    fn method_is(&self, method: &str) -> bool {
        self.method() == method
    }

    fn is_http11(&self) -> bool {
        self.version() == Version::Http11
    }

    fn field(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        self.header(name).map(Cow::Borrowed)
    }
}

#[cfg(feature = "http")]
impl<B> Head for http::Request<B> {
    fn method_is(&self, method: &str) -> bool {
        self.method().as_str() == method
    }

    fn is_http11(&self) -> bool {
        self.version() == http::Version::HTTP_11
    }

    fn field(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        let mut values = self.headers().get_all(name).iter();
        let first = values.next()?;
        let rest: Vec<_> = values.collect();
        if rest.is_empty() {
            return Some(Cow::Borrowed(first.as_bytes()));
        }
        let mut all = first.as_bytes().to_vec();
        for v in rest {
            all.extend_from_slice(b", ");
            all.extend_from_slice(v.as_bytes());
        }
        Some(Cow::Owned(all))
    }
}

fn asks_for_websocket(req: &impl Head) -> bool {
    req.field("upgrade")
        .is_some_and(|v| upgrade_list_has(&v, "websocket"))
}

/// Whether a comma-separated field value holds `token` (case-insensitive).
fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| trim_ows(t).eq_ignore_ascii_case(token.as_bytes()))
}

/// Why a request was not a valid WebSocket handshake: the status to
/// answer (400, or 426 for another version of the protocol) and what was
/// wrong. [`into_response`](Refusal::into_response) makes the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    status: u16,
    reason: &'static str,
}

impl Refusal {
    /// 400 or 426.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// What was wrong with the request.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The answer: the status, `Sec-WebSocket-Version: 13` (the version
    /// this server speaks) when the request's version was missing or
    /// another, `Upgrade: websocket` on a 426 (RFC 9110 section 15.5.22;
    /// the server adds `Connection: upgrade`), and the reason as a
    /// plain-text body.
    pub fn into_response(self) -> Response {
        let mut r = Response::new(self.status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(format!("{}\n", self.reason));
        if self.status == 426 {
            r.add_header("Upgrade", "websocket");
        }
        if self.status == 426 || self.reason == MISSING_VERSION {
            r.add_header("Sec-WebSocket-Version", VERSION);
        }
        r
    }
}

impl Refusal {
    /// [`into_response`](Refusal::into_response) for an `http` application
    /// (feature `http`).
    #[cfg(feature = "http")]
    pub fn into_http_response(self) -> http::Response<crate::Body> {
        to_http(self.into_response())
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (answered {})", self.reason, self.status)
    }
}

impl std::error::Error for Refusal {}

impl From<Refusal> for Response {
    fn from(r: Refusal) -> Response {
        r.into_response()
    }
}

const MISSING_VERSION: &str = "A WebSocket handshake needs Sec-WebSocket-Version: 13";

fn bad(reason: &'static str) -> Refusal {
    Refusal {
        status: 400,
        reason,
    }
}

/// A valid WebSocket handshake, to accept: choose a subprotocol if the
/// client offered some, then [`accept`](Handshake::accept).
#[derive(Debug)]
pub struct Handshake {
    accept: String,
    offered: Vec<String>,
    protocol: Option<String>,
    config: Option<Config>,
}

/// Checks that `req` is a WebSocket opening handshake (RFC 6455 §4.2.1):
/// a `GET` in HTTP/1.1 with `Upgrade: websocket`, `Connection: upgrade`,
/// `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key` that is the
/// base64 of 16 bytes.
///
/// The refusal is a 400 that says what is wrong, or a 426 with
/// `Sec-WebSocket-Version: 13` for a client that speaks another version.
///
/// ```
/// use maitred::{websocket, Request, Response};
///
/// fn app(req: &mut Request) -> Response {
///     if !websocket::is_websocket_request(req) {
///         return Response::text("a page");
///     }
///     match websocket::handshake(req) {
///         Ok(hs) => hs.accept(|mut ws| {
///             while let Ok(Some(msg)) = ws.read() {
///                 if ws.send(&msg).is_err() {
///                     break;
///                 }
///             }
///         }),
///         Err(refusal) => refusal.into_response(),
///     }
/// }
///
/// let mut req = Request::for_test("GET", "/", &[
///     ("Upgrade", "websocket"),
///     ("Connection", "Upgrade"),
///     ("Sec-WebSocket-Version", "13"),
///     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
/// ], b"");
/// let r = app(&mut req);
/// assert_eq!(r.status(), 101);
/// assert_eq!(r.header("sec-websocket-accept"), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
/// ```
pub fn handshake(req: &Request) -> Result<Handshake, Refusal> {
    check(req)
}

/// [`handshake`] for an `http` application's request (feature `http`);
/// answer with [`Handshake::accept_http`] or [`Refusal::into_http_response`].
///
/// ```
/// use maitred::{websocket, Body, RequestBody};
///
/// fn app(req: http::Request<RequestBody>) -> http::Response<Body> {
///     match websocket::handshake_http(&req) {
///         Ok(hs) => hs.accept_http(|mut ws| {
///             while let Ok(Some(msg)) = ws.read() {
///                 if ws.send(&msg).is_err() {
///                     break;
///                 }
///             }
///         }),
///         Err(refusal) => refusal.into_http_response(),
///     }
/// }
///
/// let head = [
///     ("Upgrade", "websocket"),
///     ("Connection", "Upgrade"),
///     ("Sec-WebSocket-Version", "13"),
///     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
/// ];
/// let req = maitred::Request::for_test("GET", "/", &head, b"").into_http()?;
/// let r = app(req);
/// assert_eq!(r.status(), 101);
/// assert_eq!(r.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// # Ok::<(), maitred::http_interop::ConversionError>(())
/// ```
#[cfg(feature = "http")]
pub fn handshake_http<B>(req: &http::Request<B>) -> Result<Handshake, Refusal> {
    check(req)
}

fn check(req: &impl Head) -> Result<Handshake, Refusal> {
    if !req.method_is("GET") {
        return Err(bad("A WebSocket handshake must be a GET request"));
    }
    if !req.is_http11() {
        return Err(bad("A WebSocket handshake must be HTTP/1.1"));
    }
    if !asks_for_websocket(req) {
        return Err(bad("A WebSocket handshake needs Upgrade: websocket"));
    }
    if !req
        .field("connection")
        .is_some_and(|v| has_token(&v, "upgrade"))
    {
        return Err(bad("A WebSocket handshake needs Connection: upgrade"));
    }
    match req.field("sec-websocket-version") {
        None => return Err(bad(MISSING_VERSION)),
        Some(v) if trim_ows(&v) == VERSION.as_bytes() => {}
        Some(_) => {
            return Err(Refusal {
                status: 426,
                reason: "This server speaks WebSocket version 13 only",
            })
        }
    }
    let key = req
        .field("sec-websocket-key")
        .ok_or(bad("A WebSocket handshake needs a Sec-WebSocket-Key"))?;
    let key = trim_ows(&key);
    if base64::decode(key).map(|k| k.len()) != Some(16) {
        return Err(bad(
            "Sec-WebSocket-Key must be 16 bytes in base64 (24 characters)",
        ));
    }
    // The key is base64, so ASCII.
    let key = String::from_utf8_lossy(key);
    let offered = req
        .field("sec-websocket-protocol")
        .map(|v| {
            v.split(|&b| b == b',')
                .map(trim_ows)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect()
        })
        .unwrap_or_default();
    Ok(Handshake {
        accept: accept_key(&key),
        offered,
        protocol: None,
        config: None,
    })
}

impl Handshake {
    /// The subprotocols the client offered (`Sec-WebSocket-Protocol`), in
    /// its order of preference.
    pub fn offered_protocols(&self) -> impl Iterator<Item = &str> + '_ {
        self.offered.iter().map(String::as_str)
    }

    /// Chooses the first of `supported` (in the server's order of
    /// preference) that the client offered (compared exactly, as RFC 6455
    /// §4.2.2 wants); none when the client offered none of them, and the
    /// 101 then names no subprotocol (the client decides whether to go on).
    pub fn select_protocol(mut self, supported: &[&str]) -> Handshake {
        self.protocol = supported
            .iter()
            .find(|s| self.offered.iter().any(|o| o == *s))
            .map(|s| s.to_string());
        self
    }

    /// The subprotocol chosen, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Uses `config` for the connection instead of the server's settings
    /// (`websocket_max_message_size`) and the defaults.
    pub fn with_config(mut self, config: Config) -> Handshake {
        self.config = Some(config);
        self
    }

    /// The value of `Sec-WebSocket-Accept` for this handshake.
    pub fn accept_value(&self) -> &str {
        &self.accept
    }

    /// The `101 Switching Protocols` ([`Response::upgrade`] to
    /// `websocket`) with `Sec-WebSocket-Accept` and the chosen
    /// subprotocol; once it is sent, `handler` gets the [`WebSocket`] on a
    /// thread of its own. Add headers with
    /// [`with_header`](Response::with_header) (not `Sec-WebSocket-Extensions`:
    /// no extension is supported).
    pub fn accept<F>(self, handler: F) -> Response
    where
        F: FnOnce(WebSocket) + Send + 'static,
    {
        let Handshake {
            accept,
            protocol,
            config,
            ..
        } = self;
        let chosen = protocol.clone();
        let mut r = Response::upgrade("websocket", move |stream| {
            let config = config.unwrap_or_else(|| Config::for_stream(&stream));
            match WebSocket::open(stream, config, chosen) {
                Ok(ws) => handler(ws),
                Err(e) => crate::log_error!("WebSocket: could not set up the connection: {e}"),
            }
        })
        .with_header("Sec-WebSocket-Accept", accept);
        if let Some(p) = protocol {
            r.add_header("Sec-WebSocket-Protocol", p);
        }
        r
    }

    /// [`accept`](Handshake::accept) for an `http` application (feature
    /// `http`): the 101 with a [`Switch`](crate::http_interop::Switch) in
    /// its extensions, which `HttpApp` turns back into the upgrade.
    #[cfg(feature = "http")]
    pub fn accept_http<F>(self, handler: F) -> http::Response<crate::Body>
    where
        F: FnOnce(WebSocket) + Send + 'static,
    {
        to_http(self.accept(handler))
    }
}

/// A response of this module as an `http` one (its headers are valid, so
/// the conversion cannot fail; if it did, a 500 says why).
#[cfg(feature = "http")]
fn to_http(r: Response) -> http::Response<crate::Body> {
    http::Response::<crate::Body>::try_from(r).unwrap_or_else(|e| {
        let mut r = http::Response::new(crate::Body::from(format!("{e}\n")));
        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn req(method: &str, headers: &[(&str, &str)]) -> Request {
        Request::for_test(method, "/chat", headers, b"")
    }

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", KEY),
        ]
    }

    fn without(name: &str) -> Vec<(&'static str, &'static str)> {
        good().into_iter().filter(|(n, _)| *n != name).collect()
    }

    fn with(name: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut h = without(name);
        h.push((name, value));
        h
    }

    #[test]
    fn rfc_6455_sample_key() {
        assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn a_valid_handshake_is_accepted_with_the_accept_key() {
        let hs = handshake(&req("GET", &good())).unwrap();
        assert_eq!(hs.accept_value(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let r = hs.accept(|_| {});
        assert_eq!(r.status(), 101);
        assert_eq!(r.upgrade_protocol(), Some("websocket"));
        assert_eq!(
            r.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(r.header("sec-websocket-protocol"), None);
        assert_eq!(r.header("sec-websocket-extensions"), None);
        // Case and spacing of the tokens do not matter.
        let h = [
            ("upgrade", "WebSocket"),
            ("connection", "UPGRADE"),
            ("sec-websocket-version", " 13 "),
            ("sec-websocket-key", KEY),
        ];
        assert!(handshake(&req("GET", &h)).is_ok());
    }

    #[test]
    fn every_missing_or_wrong_field_is_a_400_that_says_which() {
        type Headers = Vec<(&'static str, &'static str)>;
        let cases: Vec<(&str, Headers, &str)> = vec![
            ("POST", good(), "GET"),
            ("GET", without("Upgrade"), "Upgrade: websocket"),
            ("GET", with("Upgrade", "h2c"), "Upgrade: websocket"),
            ("GET", without("Connection"), "Connection: upgrade"),
            (
                "GET",
                with("Connection", "keep-alive"),
                "Connection: upgrade",
            ),
            (
                "GET",
                without("Sec-WebSocket-Version"),
                "Sec-WebSocket-Version: 13",
            ),
            ("GET", without("Sec-WebSocket-Key"), "Sec-WebSocket-Key"),
            (
                "GET",
                with("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ"),
                "16 bytes",
            ),
            (
                "GET",
                with("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZUE="),
                "16 bytes",
            ),
            (
                "GET",
                with("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25j"),
                "16 bytes",
            ),
            (
                "GET",
                with("Sec-WebSocket-Key", "!GhlIHNhbXBsZSBub25jZQ=="),
                "16 bytes",
            ),
        ];
        for (method, headers, says) in cases {
            let e = handshake(&req(method, &headers)).unwrap_err();
            assert_eq!(e.status(), 400, "{headers:?}");
            assert!(e.reason().contains(says), "{}: {headers:?}", e.reason());
            let r = e.into_response();
            assert_eq!(r.status(), 400);
            assert_eq!(r.upgrade_protocol(), None);
        }
        let r = handshake(&req("GET", &without("Sec-WebSocket-Version")))
            .unwrap_err()
            .into_response();
        assert_eq!(r.header("sec-websocket-version"), Some("13"));
        // Two keys are combined into one field value: not 16 bytes.
        let mut two = good();
        two.push(("Sec-WebSocket-Key", KEY));
        assert_eq!(handshake(&req("GET", &two)).unwrap_err().status(), 400);
    }

    #[test]
    fn http_1_0_is_refused() {
        let mut p = crate::parser::RequestParser::new(crate::parser::ParserConfig::default());
        p.received(
            b"GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        );
        let crate::parser::Parsed::Request(head, body) = p.into_parsed() else {
            panic!("a request")
        };
        let r = Request::detached(
            head,
            body,
            crate::request::ConnEnviron {
                script_name: "".into(),
                remote_addr: "127.0.0.1".into(),
                remote_port: None,
                server_name: "x".into(),
                server_port: None,
                url_scheme: "http".into(),
                ident: "maitred".into(),
            },
        );
        assert!(is_websocket_request(&r));
        let e = handshake(&r).unwrap_err();
        assert_eq!(
            (e.status(), e.reason()),
            (400, "A WebSocket handshake must be HTTP/1.1")
        );
    }

    #[test]
    fn another_version_is_a_426_naming_13() {
        for v in ["8", "7", "14", "13, 8", ""] {
            let e = handshake(&req("GET", &with("Sec-WebSocket-Version", v))).unwrap_err();
            assert_eq!(e.status(), 426, "{v:?}");
            let r = e.into_response();
            assert_eq!(r.header("sec-websocket-version"), Some("13"));
        }
    }

    #[test]
    fn subprotocols_are_chosen_in_the_servers_order() {
        let mut h = good();
        h.push(("Sec-WebSocket-Protocol", "chat, superchat ,, v2.json"));
        let hs = handshake(&req("GET", &h)).unwrap();
        assert_eq!(
            hs.offered_protocols().collect::<Vec<_>>(),
            ["chat", "superchat", "v2.json"]
        );
        let hs = hs.select_protocol(&["v2.json", "chat"]);
        assert_eq!(hs.protocol(), Some("v2.json"));
        let r = hs.accept(|_| {});
        assert_eq!(r.header("sec-websocket-protocol"), Some("v2.json"));
        // None in common: no header.
        let hs = handshake(&req("GET", &h))
            .unwrap()
            .select_protocol(&["mqtt", "CHAT"]);
        assert_eq!(hs.protocol(), None);
        assert_eq!(hs.accept(|_| {}).header("sec-websocket-protocol"), None);
    }

    #[test]
    fn permessage_deflate_is_declined() {
        let mut h = good();
        h.push((
            "Sec-WebSocket-Extensions",
            "permessage-deflate; client_max_window_bits",
        ));
        let r = handshake(&req("GET", &h)).unwrap().accept(|_| {});
        assert_eq!(r.status(), 101);
        assert_eq!(r.header("sec-websocket-extensions"), None);
    }

    #[cfg(feature = "http")]
    #[test]
    fn http_requests_are_checked_alike_repeated_fields_combined() {
        fn http_req(method: &str, headers: &[(&str, &str)]) -> http::Request<()> {
            let mut b = http::Request::builder().method(method).uri("/chat");
            for (n, v) in headers {
                b = b.header(*n, *v);
            }
            b.body(()).unwrap()
        }
        let hs = handshake_http(&http_req("GET", &good())).unwrap();
        assert_eq!(hs.accept_value(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let r = hs.accept_http(|_| {});
        assert_eq!(r.status(), 101);
        assert_eq!(
            r.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert!(r
            .extensions()
            .get::<crate::http_interop::Switch>()
            .is_some());
        // Connection's tokens in two fields count as one list.
        let mut h = without("Connection");
        h.push(("Connection", "keep-alive"));
        h.push(("Connection", "Upgrade"));
        assert!(handshake_http(&http_req("GET", &h)).is_ok());
        // Two keys are one invalid key, as the parser would combine them.
        let mut h = good();
        h.push(("Sec-WebSocket-Key", KEY));
        let e = handshake_http(&http_req("GET", &h)).unwrap_err();
        assert_eq!(e.status(), 400);
        // HTTP/1.0, POST, another version: as for the server's requests.
        let mut r10 = http_req("GET", &good());
        *r10.version_mut() = http::Version::HTTP_10;
        assert_eq!(handshake_http(&r10).unwrap_err().status(), 400);
        assert_eq!(
            handshake_http(&http_req("POST", &good()))
                .unwrap_err()
                .status(),
            400
        );
        let mut h = without("Sec-WebSocket-Version");
        h.push(("Sec-WebSocket-Version", "8"));
        let refusal = handshake_http(&http_req("GET", &h)).unwrap_err();
        let r = refusal.into_http_response();
        assert_eq!(r.status(), 426);
        assert_eq!(r.headers()["upgrade"], "websocket");
        assert_eq!(r.headers()["sec-websocket-version"], "13");
        assert!(is_websocket_request_http(&http_req("GET", &good())));
    }
}
