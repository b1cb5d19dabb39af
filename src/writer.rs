//! The response writer: how an application's [`Response`] becomes bytes
//! on the wire (waitress's `Task.build_response_header`, `write` and
//! `finish`). Runs on a worker thread.
//!
//! Everything here is rules, not I/O: the writer hands bytes to an
//! [`Output`] (the channel, or a recording double in the tests), so the
//! framing and keep-alive rules are tested without sockets.
//!
//! * **Framing.** A known length (the application's `Content-Length`, or
//!   the body's own) is sent as `Content-Length`; an unknown one is sent
//!   chunked on HTTP/1.1 and ended by closing on HTTP/1.0. 1xx, 204 and
//!   304 responses carry no body and no `Content-Length`; a response to
//!   `HEAD` carries the head only. A body longer than its declared length
//!   is cut there; a shorter one closes the connection after it.
//! * **Keep-alive.** HTTP/1.1 stays open unless the request said
//!   `Connection: close`, the response is a 1xx, or the server is
//!   draining; HTTP/1.0 stays open only when the request said
//!   `Connection: keep-alive` and the length is known.
//! * **Headers.** `Date` is added unless set; `Server: <ident>` is added,
//!   or `Via: <ident>` when the application set `Server`. A status or
//!   header with CR or LF, a header name that is not a token, a control
//!   character, a hop-by-hop header or an unparsable `Content-Length` is
//!   the application's failure (a 500 when nothing was sent yet).
//!
//! Thread: a worker thread.

use std::io::{self, Read, Write};

use crate::buffers::FileBuffer;
use crate::error::HttpError;
use crate::parser::{RequestHead, Version};
use crate::push::{PushFraming, Pushed};
use crate::response::{Body, HeaderText, Response};
use crate::upgrade::Handler;

/// The socket went away (or the connection is closing): the response cannot
/// be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientDisconnected;

/// Where a response goes: the narrow view of a connection that the writer
/// needs. The channel implements it for real; the tests record.
pub(crate) trait Output {
    /// Queues `parts`, in order, and sends what the socket takes now
    /// (waitress's `write_soon`); may wait for the client to read
    /// (back-pressure). `Err` once the client is gone.
    fn write_soon(&self, parts: &[&[u8]]) -> Result<(), ClientDisconnected>;
    /// Queues a file's bytes to be sent with `sendfile`.
    fn write_file(&self, file: FileBuffer) -> Result<(), ClientDisconnected>;
    /// A graceful stop is under way: this response is the connection's last.
    fn is_draining(&self) -> bool;
    /// Prepares the switch to another protocol, before the `101` is
    /// written: `handler` will get the connection once the `101` is on the
    /// wire. `Err` is the answer to send instead (a 503 when no more
    /// upgraded connections may be open).
    fn switch(&self, handler: Handler) -> Result<(), HttpError> {
        drop(handler);
        Err(HttpError::service_unavailable(
            "This connection cannot switch protocols.",
        ))
    }
}

/// Response headers an application may not set (RFC 9110 section 7.6.1;
/// waitress's `hop_by_hop`, with `trailer` spelled right as on its main
/// branch, and `trailers` kept).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// Why a response could not be completed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The client went away.
    Disconnected,
    /// The application (or its body) failed; the text says how.
    App(String),
    /// The server declines the response (nothing was sent) and answers
    /// this instead.
    Refused(HttpError),
}

impl From<ClientDisconnected> for Failure {
    fn from(_: ClientDisconnected) -> Failure {
        Failure::Disconnected
    }
}

/// Checks a header field from the application; an error says what is wrong
/// (CR/LF in a field is HTTP response splitting). `status`: the response's.
fn check_header(name: &str, value: &str, status: u16) -> Result<(), String> {
    if !crate::grammar::is_token(name.as_bytes()) {
        if name.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err("carriage return/line feed character present in header name".into());
        }
        return Err(format!("header name {name:?} is not a valid token"));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err("carriage return/line feed character present in header value".into());
    }
    if !value.bytes().all(crate::grammar::is_field_value_byte) {
        return Err(format!(
            "header {name} has a control character in its value"
        ));
    }
    if status == 426 && name.eq_ignore_ascii_case("upgrade") {
        // RFC 9110 section 15.5.22: a 426 MUST say which protocols to
        // upgrade to (`build_head` adds the `upgrade` connection option).
        if !crate::grammar::is_upgrade_list(value.as_bytes()) {
            return Err(format!(
                "Upgrade header value {value:?} is not a list of protocols (token [\"/\" token])"
            ));
        }
        return Ok(());
    }
    if HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name)) {
        return Err(format!(
            "{name} is a \"hop-by-hop\" header; it cannot be used by an application"
        ));
    }
    Ok(())
}

fn digits_only(v: &str) -> Option<u64> {
    let v = crate::grammar::trim_ows(v.as_bytes());
    if v.is_empty() || !v.iter().all(|&b| crate::grammar::is_digit(b)) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// How a response's body is delimited on the wire (RFC 9112 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// 1xx, 204 and 304: no body and no `Content-Length`, whatever the
    /// application gives.
    NoBody,
    /// `Content-Length`: exactly this many bytes; more are cut, fewer close
    /// the connection.
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1, length unknown).
    Chunked,
    /// HTTP/1.0, length unknown: the body ends when the connection closes.
    UntilClose,
}

/// Writes one response on a channel, applying waitress's framing and
/// keep-alive rules.
///
/// A response goes through three steps: [`send`](Self::send) checks what
/// the application gave and works out the body's length when it can;
/// `build_head` decides the [`Framing`] and whether the connection stays
/// open, and writes the head; `write` and `finish` send the body as the
/// framing says.
pub(crate) struct ResponseWriter<'a, O: Output + ?Sized> {
    out: &'a O,
    /// The `Server` (or `Via`) value; `None` sends no `Server`.
    ident: Option<&'a str>,
    version: Version,
    is_head: bool,
    /// The request said `Connection: close`.
    req_close: bool,
    /// The request said `Connection: keep-alive`.
    req_keep_alive: bool,
    status: u16,
    /// How the body is delimited; decided with the head.
    framing: Framing,
    /// Body bytes the application produced (sent or not).
    written: u64,
    /// The head, built and not yet sent.
    head: Vec<u8>,
    wrote_header: bool,
    close_on_finish: bool,
    /// Close after this response whatever the request asked (the 400 for a
    /// malformed proxy header, which waitress always closes).
    force_close: bool,
    /// The protocols the request proposed to switch to (see
    /// `RequestHead::upgrade_offer`), copied only when there are some.
    offer: Option<Vec<u8>>,
    /// The response was a `101`: the connection switches protocols.
    switched: bool,
    /// The body is pushed: its head is written, and it is to be attached
    /// to the connection (how it is framed says how).
    pushed: Option<(Pushed, PushFraming)>,
    logged_excess: bool,
    logged_no_body: bool,
}

impl<'a, O: Output + ?Sized> ResponseWriter<'a, O> {
    pub(crate) fn new(out: &'a O, ident: Option<&'a str>, head: &RequestHead) -> Self {
        ResponseWriter {
            out,
            ident,
            version: head.version(),
            is_head: head.method() == "HEAD",
            req_close: head.has_token("connection", "close"),
            req_keep_alive: head.has_token("connection", "keep-alive"),
            status: 200,
            framing: Framing::UntilClose,
            written: 0,
            head: Vec::new(),
            wrote_header: false,
            close_on_finish: false,
            force_close: false,
            offer: head.upgrade_offer().map(<[u8]>::to_vec),
            switched: false,
            pushed: None,
            logged_excess: false,
            logged_no_body: false,
        }
    }

    /// Decides the framing and builds the status line and header block
    /// (waitress's `build_response_header`). `known_len` is the body's
    /// length when known (the application's validated `Content-Length`, or
    /// the body's own); with `skip_content_length` the application's
    /// `Content-Length` fields are left out (a file shorter than declared:
    /// the header says what is sent).
    fn build_head(
        &mut self,
        reason: &str,
        headers: &[(HeaderText, HeaderText)],
        known_len: Option<u64>,
        skip_content_length: bool,
    ) {
        let no_body_status =
            (100..200).contains(&self.status) || self.status == 204 || self.status == 304;
        self.framing = match (no_body_status, known_len, self.version) {
            (true, _, _) => Framing::NoBody,
            (false, Some(n), _) => Framing::Length(n),
            (false, None, Version::Http11) => Framing::Chunked,
            (false, None, Version::Http10) => Framing::UntilClose,
        };
        let mut h = Vec::with_capacity(160);
        h.extend_from_slice(b"HTTP/");
        h.extend_from_slice(self.version.as_str().as_bytes());
        h.push(b' ');
        let mut digits = [0u8; 20];
        h.extend_from_slice(crate::http_date::decimal(
            u64::from(self.status),
            &mut digits,
        ));
        h.push(b' ');
        h.extend_from_slice(reason.as_bytes());
        h.extend_from_slice(b"\r\n");
        let mut have_cl = false;
        let mut have_date = false;
        let mut have_server = false;
        // Only a 426 may carry it (`check_header`).
        let mut have_upgrade = false;
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("upgrade") {
                have_upgrade = true;
            }
            if name.eq_ignore_ascii_case("content-length") {
                if self.framing == Framing::NoBody || skip_content_length {
                    continue;
                }
                have_cl = true;
            } else if name.eq_ignore_ascii_case("date") {
                have_date = true;
            } else if name.eq_ignore_ascii_case("server") {
                have_server = true;
            }
            h.extend_from_slice(name.as_bytes());
            h.extend_from_slice(b": ");
            h.extend_from_slice(value.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        match self.framing {
            Framing::Length(n) if !have_cl => {
                h.extend_from_slice(b"Content-Length: ");
                h.extend_from_slice(crate::http_date::decimal(n, &mut digits));
                h.extend_from_slice(b"\r\n");
            }
            Framing::Chunked => h.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            _ => {}
        }
        // A graceful stop is under way, or the response must end the
        // connection: this is the last response, whatever was asked.
        let server_close = self.out.is_draining() || self.force_close;
        let mut close = server_close;
        let mut keep_alive = false;
        match self.version {
            Version::Http10 => {
                if self.req_keep_alive
                    && !self.req_close
                    && !server_close
                    && self.framing != Framing::UntilClose
                {
                    keep_alive = true;
                } else {
                    close = true;
                }
            }
            Version::Http11 => {
                if self.req_close || (100..200).contains(&self.status) {
                    close = true;
                }
            }
        }
        // RFC 9110 section 7.8: an Upgrade field goes with the `upgrade`
        // connection option.
        let options = [
            (keep_alive, "Keep-Alive"),
            (have_upgrade, "upgrade"),
            (close, "close"),
        ];
        let mut first = true;
        for (_, option) in options.iter().filter(|o| o.0) {
            h.extend_from_slice(if first { b"Connection: " } else { b", " });
            h.extend_from_slice(option.as_bytes());
            first = false;
        }
        if !first {
            h.extend_from_slice(b"\r\n");
        }
        if close {
            self.close_on_finish = true;
        }
        self.push_server_and_date(&mut h, have_server, have_date);
        h.extend_from_slice(b"\r\n");
        self.head = h;
    }

    /// Sends body bytes (the head goes with the first of them).
    fn write(&mut self, data: &[u8]) -> Result<(), ClientDisconnected> {
        if self.framing == Framing::NoBody || self.is_head {
            if !data.is_empty() && !self.is_head && !self.logged_no_body {
                self.logged_no_body = true;
                crate::log_warning!(
                    "application-written content was ignored due to HTTP response that may not contain a message-body: ({})",
                    self.status
                );
            }
            self.written += data.len() as u64;
            return self.write_head_only();
        }
        let data = match self.framing {
            Framing::Length(cl) => {
                let left = cl.saturating_sub(self.written);
                let n = (data.len() as u64).min(left) as usize;
                if n < data.len() && !self.logged_excess {
                    self.logged_excess = true;
                    crate::log_warning!(
                        "application-written content exceeded the number of bytes specified by Content-Length header ({cl})"
                    );
                }
                &data[..n]
            }
            _ => data,
        };
        self.written += data.len() as u64;
        if data.is_empty() {
            return self.write_head_only();
        }
        let head = std::mem::take(&mut self.head);
        let first = !self.wrote_header;
        self.wrote_header = true;
        let head_part: &[u8] = if first { &head } else { &[] };
        if self.framing == Framing::Chunked {
            let size = format!("{:X}\r\n", data.len());
            self.out
                .write_soon(&[head_part, size.as_bytes(), data, b"\r\n"])
        } else {
            self.out.write_soon(&[head_part, data])
        }
    }

    fn write_head_only(&mut self) -> Result<(), ClientDisconnected> {
        if self.wrote_header {
            return Ok(());
        }
        self.wrote_header = true;
        let head = std::mem::take(&mut self.head);
        self.out.write_soon(&[&head])
    }

    /// Ends the response (waitress's `finish`): the head if nothing was
    /// sent yet, the last chunk, and the short-body rule.
    fn finish(&mut self) -> Result<(), ClientDisconnected> {
        let end: &[u8] = if self.framing == Framing::Chunked && !self.is_head {
            b"0\r\n\r\n"
        } else {
            b""
        };
        if !self.wrote_header {
            self.wrote_header = true;
            let head = std::mem::take(&mut self.head);
            self.out.write_soon(&[&head, end])?;
        } else if !end.is_empty() {
            self.out.write_soon(&[end])?;
        }
        if let Framing::Length(cl) = self.framing {
            if !self.is_head && self.written < cl {
                self.close_on_finish = true;
                crate::log_warning!(
                    "application returned too few bytes ({}) for specified Content-Length ({cl})",
                    self.written
                );
            }
        }
        Ok(())
    }

    /// Ends the connection after this response whatever the request asked
    /// (the 400 for a malformed proxy header, which waitress always
    /// closes). Call before [`send`](Self::send).
    pub(crate) fn force_close(&mut self) {
        self.force_close = true;
    }

    /// The connection must close after this response.
    pub(crate) fn close_on_finish(&self) -> bool {
        self.close_on_finish
    }

    /// The response was `101 Switching Protocols`: its head is written and
    /// the connection now belongs to the handler.
    pub(crate) fn switched(&self) -> bool {
        self.switched
    }

    /// A pushed body, whose head was written: for the caller to attach to
    /// the connection.
    pub(crate) fn take_pushed(&mut self) -> Option<(Pushed, PushFraming)> {
        self.pushed.take()
    }

    /// The status of the response (200 until [`send`](Self::send) sets it).
    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    /// Body bytes handed to the output (none for HEAD or a status without
    /// a body; no more than a declared length).
    pub(crate) fn body_bytes_sent(&self) -> u64 {
        if self.is_head || self.framing == Framing::NoBody {
            0
        } else {
            self.written
        }
    }

    /// Some of the response (at least its head) was handed to the output:
    /// too late for an error response.
    pub(crate) fn head_sent(&self) -> bool {
        self.wrote_header
    }

    /// Sends a whole response from the application.
    pub(crate) fn send(&mut self, mut resp: Response) -> Result<(), Failure> {
        let upgrade = resp.take_upgrade();
        let (status, reason, headers, body) = resp.into_parts();
        if !(100..=999).contains(&status) {
            return Err(Failure::App(format!(
                "status code {status} is out of range"
            )));
        }
        let reason: HeaderText = match reason {
            Some(r) => r,
            None => crate::response::reason_phrase(status).into(),
        };
        if reason.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(Failure::App(
                "carriage return/line feed character present in status".into(),
            ));
        }
        if !reason.bytes().all(crate::grammar::is_reason_phrase_byte) {
            return Err(Failure::App("control character present in status".into()));
        }
        let mut declared: Option<u64> = None;
        for (name, value) in &headers {
            check_header(name, value, status).map_err(Failure::App)?;
            if name.eq_ignore_ascii_case("content-length") {
                let v = digits_only(value).ok_or_else(|| {
                    Failure::App(format!(
                        "Content-Length header value {value:?} is not a number"
                    ))
                })?;
                if declared.is_some_and(|d| d != v) {
                    return Err(Failure::App("conflicting Content-Length headers".into()));
                }
                declared = Some(v);
            }
        }
        match (status, upgrade) {
            (101, Some((protocol, handler))) => {
                return self.send_switch(&reason, &headers, &protocol, handler);
            }
            (101, None) => {
                return Err(Failure::App(
                    "a 101 (Switching Protocols) response must come from Response::upgrade".into(),
                ))
            }
            (_, Some(_)) => {
                return Err(Failure::App(format!(
                    "Response::upgrade's status must stay 101, not {status}"
                )))
            }
            (_, None) => {}
        }
        self.status = status;

        match body {
            Body::File { file, offset, len } => {
                match file.metadata() {
                    Ok(m) if m.is_file() => {
                        let available = m.len().saturating_sub(offset);
                        let avail = len.map_or(available, |l| l.min(available));
                        // wsgi.file_wrapper: the size sent is the smaller of
                        // the file and the declared length, and the header
                        // says what is sent.
                        let size = declared.map_or(avail, |d| d.min(avail));
                        let replace = declared.is_some_and(|d| d != size);
                        self.build_head(&reason, &headers, Some(size), replace);
                        if self.framing != Framing::NoBody && !self.is_head && size > 0 {
                            self.wrote_header = true;
                            let head = std::mem::take(&mut self.head);
                            self.out.write_soon(&[&head])?;
                            self.out.write_file(FileBuffer::new(file, offset, size))?;
                            self.written = size;
                        }
                        self.finish()?;
                        Ok(())
                    }
                    _ => {
                        // Not a regular file (a pipe, a device): read it.
                        let mut f = file;
                        if offset > 0 {
                            io::copy(&mut (&mut f).take(offset), &mut io::sink()).map_err(|e| {
                                Failure::App(format!("could not skip to the body's offset: {e}"))
                            })?;
                        }
                        let reader: Box<dyn Read + Send> = match len {
                            Some(l) => Box::new(f.take(l)),
                            None => Box::new(f),
                        };
                        self.build_head(&reason, &headers, declared.or(len), false);
                        self.send_reader(reader)
                    }
                }
            }
            Body::Empty => {
                self.build_head(&reason, &headers, declared.or(Some(0)), false);
                self.finish()?;
                Ok(())
            }
            Body::Bytes(b) => {
                self.build_head(&reason, &headers, declared.or(Some(b.len() as u64)), false);
                self.write(&b)?;
                self.finish()?;
                Ok(())
            }
            Body::Reader(r, len) => {
                self.build_head(&reason, &headers, declared.or(len), false);
                self.send_reader(r)
            }
            Body::Chunks(iter) => {
                self.build_head(&reason, &headers, declared, false);
                if !self.is_head {
                    for chunk in iter {
                        let chunk = chunk.map_err(|e| {
                            Failure::App(format!("the response body iterator failed: {e}"))
                        })?;
                        if !chunk.is_empty() {
                            self.write(&chunk)?;
                        }
                    }
                }
                self.finish()?;
                Ok(())
            }
            Body::Pushed(p) => {
                self.build_head(&reason, &headers, declared, false);
                self.write_head_only()?;
                let framing = match self.framing {
                    _ if self.is_head => PushFraming::None,
                    Framing::NoBody => PushFraming::None,
                    Framing::Length(n) => PushFraming::Length(n),
                    Framing::Chunked => PushFraming::Chunked,
                    Framing::UntilClose => PushFraming::UntilClose,
                };
                // The body comes later: what ends it (the chunked
                // terminator, a short length closing the connection) is
                // the push's.
                self.pushed = Some((p, framing));
                Ok(())
            }
            Body::Writer(f) => {
                self.build_head(&reason, &headers, declared, false);
                if !self.is_head {
                    let mut w = BodyWriter {
                        inner: self,
                        disconnected: false,
                    };
                    let r = f(&mut w);
                    let disconnected = w.disconnected;
                    if let Err(e) = r {
                        if disconnected {
                            return Err(Failure::Disconnected);
                        }
                        return Err(Failure::App(format!(
                            "the response body writer failed: {e}"
                        )));
                    }
                }
                self.finish()?;
                Ok(())
            }
        }
    }

    /// Writes a `101 Switching Protocols` (RFC 9110 §7.8): only to a
    /// protocol the request named, with `Upgrade` naming it and
    /// `Connection: upgrade`; the handler is set up before the head is
    /// written (a refusal is answered instead).
    fn send_switch(
        &mut self,
        reason: &str,
        headers: &[(HeaderText, HeaderText)],
        protocol: &str,
        handler: Handler,
    ) -> Result<(), Failure> {
        if !crate::grammar::is_protocol(protocol.as_bytes()) {
            return Err(Failure::App(format!(
                "Response::upgrade: {protocol:?} is not a protocol name (token [\"/\" token])"
            )));
        }
        match &self.offer {
            Some(offer) if crate::grammar::upgrade_list_has(offer, protocol) => {}
            Some(offer) => {
                return Err(Failure::App(format!(
                    "the request proposed to switch to {:?}, not {protocol:?}",
                    String::from_utf8_lossy(offer)
                )))
            }
            None => {
                return Err(Failure::App(
                    "a 101 (Switching Protocols) response to a request that proposed no upgrade (an HTTP/1.1 request with Upgrade and Connection: upgrade)".into(),
                ))
            }
        }
        self.status = 101;
        self.out.switch(handler).map_err(Failure::Refused)?;
        let mut h = Vec::with_capacity(200);
        h.extend_from_slice(b"HTTP/1.1 101 ");
        h.extend_from_slice(reason.as_bytes());
        h.extend_from_slice(b"\r\nUpgrade: ");
        h.extend_from_slice(protocol.as_bytes());
        h.extend_from_slice(b"\r\nConnection: upgrade\r\n");
        let mut have_date = false;
        let mut have_server = false;
        for (name, value) in headers {
            // A 101 has no body: a length or coding the application set is
            // left out.
            if name.eq_ignore_ascii_case("content-length") {
                continue;
            }
            have_date |= name.eq_ignore_ascii_case("date");
            have_server |= name.eq_ignore_ascii_case("server");
            h.extend_from_slice(name.as_bytes());
            h.extend_from_slice(b": ");
            h.extend_from_slice(value.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        self.push_server_and_date(&mut h, have_server, have_date);
        h.extend_from_slice(b"\r\n");
        self.framing = Framing::NoBody;
        self.wrote_header = true;
        self.switched = true;
        self.out.write_soon(&[&h])?;
        Ok(())
    }

    /// `Server` (or `Via`) and `Date`, as every response carries them.
    fn push_server_and_date(&self, h: &mut Vec<u8>, have_server: bool, have_date: bool) {
        if !have_server {
            if let Some(ident) = self.ident {
                h.extend_from_slice(b"Server: ");
                h.extend_from_slice(ident.as_bytes());
                h.extend_from_slice(b"\r\n");
            }
        } else {
            h.extend_from_slice(b"Via: ");
            h.extend_from_slice(self.ident.unwrap_or("maitred").as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        if !have_date {
            h.extend_from_slice(b"Date: ");
            crate::http_date::with_http_date_now(|d| h.extend_from_slice(d.as_bytes()));
            h.extend_from_slice(b"\r\n");
        }
    }

    fn send_reader(&mut self, mut r: Box<dyn Read + Send>) -> Result<(), Failure> {
        if !self.is_head {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let complete = match self.framing {
                    Framing::Length(cl) => self.written >= cl,
                    // Nothing of it is sent: read only as far as the first
                    // bytes (logged as ignored).
                    Framing::NoBody => self.written > 0,
                    Framing::Chunked | Framing::UntilClose => false,
                };
                if complete {
                    break;
                }
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(Failure::App(format!(
                            "reading the response body failed: {e}"
                        )))
                    }
                };
                self.write(&buf[..n])?;
            }
        }
        self.finish()?;
        Ok(())
    }
}

/// The `Write` handed to a [`Body::Writer`] callback.
struct BodyWriter<'w, 'a, O: Output + ?Sized> {
    inner: &'w mut ResponseWriter<'a, O>,
    disconnected: bool,
}

impl<O: Output + ?Sized> Write for BodyWriter<'_, '_, O> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.write(buf) {
            Ok(()) => Ok(buf.len()),
            Err(ClientDisconnected) => {
                self.disconnected = true;
                Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the client disconnected",
                ))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sends an error response (waitress's `ErrorTask`): always
/// `Connection: close`, the connection ends after it. With `head_only` (the
/// answer to a `HEAD`), the head says the length and no body follows
/// (RFC 9110 §9.3.2).
pub(crate) fn write_error<O: Output + ?Sized>(
    out: &O,
    ident: Option<&str>,
    err: &HttpError,
    version: Version,
    head_only: bool,
) -> u64 {
    let body = err.body(ident);
    let mut h = String::with_capacity(200 + body.len());
    use std::fmt::Write as _;
    let _ = write!(
        h,
        "HTTP/{} {} {}\r\nConnection: close\r\nContent-Length: {}\r\nContent-Type: text/plain; charset=utf-8\r\n",
        version.as_str(),
        err.code(),
        err.reason(),
        body.len()
    );
    crate::http_date::with_http_date_now(|d| {
        let _ = write!(h, "Date: {d}\r\n");
    });
    if let Some(ident) = ident {
        let _ = write!(h, "Server: {ident}\r\n");
    }
    if err.code() == 503 {
        // Load shed: the client may come back shortly.
        h.push_str("Retry-After: 1\r\n");
    }
    h.push_str("\r\n");
    let body = if head_only { "" } else { body.as_str() };
    // A client that is gone needs no answer.
    let _ = out.write_soon(&[h.as_bytes(), body.as_bytes()]);
    body.len() as u64
}

#[cfg(test)]
mod tests;
