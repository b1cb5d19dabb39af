//! The one way the server answers by itself: every response it makes
//! without the application (400, 408, 413, 414, 431, 501, 505, the 503s of
//! `max_queue_depth`, `max_queue_wait` and `connection_limit`, the 500 of
//! a failed application) is built by the response writer
//! ([`write_error`]), counted, and access-logged here, by [`answer`]. The
//! caller's state machine has already decided that the connection closes
//! after it (every such response says `Connection: close`).
//!
//! The client named in the log line is the one the application would
//! see: when the request's head was parsed, the address after the
//! trusted-proxy rules; otherwise the socket's peer.
//!
//! Thread: the I/O thread and the workers.

use std::time::{Instant, SystemTime};

use crate::access_log::{AccessLog, Record};
use crate::buffers::RequestBody;
use crate::error::HttpError;
use crate::parser::{RequestHead, Version};
use std::sync::Arc;

use crate::link::Link;
use crate::request::{Connection, Request};
use crate::shared::ServerShared;
use crate::stats::Counters;
use crate::writer::{write_error, Output};

/// Why the server answers by itself (each has its counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// The request could not be parsed (counted with the request).
    ParseError,
    /// It arrived too slowly: 408.
    TimedOut,
    /// Shed: too many requests wait (`max_queue_depth`), or this one waited
    /// too long (`max_queue_wait`).
    Shed,
    /// No room at `connection_limit`.
    Refused,
    /// The application failed before anything was sent: 500.
    AppFailed,
}

/// What an answer needs of the server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Answering<'a> {
    pub counters: &'a Counters,
    pub access_log: Option<&'a AccessLog>,
    pub ident: Option<&'a str>,
}

impl ServerShared {
    pub(crate) fn answering(&self) -> Answering<'_> {
        Answering {
            counters: &self.counters,
            access_log: self.access_log.as_ref(),
            ident: self.adj.ident.as_deref(),
        }
    }
}

/// The request an answer is for, as the access log shows it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum About<'a> {
    /// No head was parsed: the line shows `-` for the request, and this
    /// client (the socket's peer, or the one a PROXY header named).
    Peer(&'a str),
    /// The request as the application saw it (after the proxy headers):
    /// its line, headers and client.
    Request(&'a Request),
}

/// Writes `error` to `out` (`head_only`: the answer to a `HEAD`, no body),
/// counts it and logs it; returns the body bytes handed to `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn answer<O: Output + ?Sized>(
    out: &O,
    server: Answering<'_>,
    why: Why,
    error: &HttpError,
    version: Version,
    head_only: bool,
    about: About<'_>,
    received: Instant,
) -> u64 {
    match why {
        Why::TimedOut => server.counters.timed_out(),
        Why::Shed => server.counters.shed(),
        Why::Refused => server.counters.refused(),
        Why::ParseError | Why::AppFailed => {}
    }
    server.counters.response(error.code());
    let bytes = write_error(out, server.ident, error, version, head_only);
    if let Some(log) = server.access_log {
        let status = Some(error.code());
        match about {
            About::Peer(client) => log_line(log, client, None, &[], &[], status, bytes, received),
            About::Request(req) => log_request(log, req, &[], status, bytes, received),
        }
    }
    bytes
}

/// The access-log line of a request: its line, the headers the format
/// asks for, its client as the application saw it.
pub(crate) fn log_request(
    log: &AccessLog,
    req: &Request,
    response_headers: &[Option<&[u8]>],
    status: Option<u16>,
    bytes: u64,
    received: Instant,
) {
    let request = (
        req.method().as_bytes(),
        req.uri().as_bytes(),
        req.protocol(),
    );
    let headers: Vec<Option<&[u8]>> = log
        .request_headers()
        .iter()
        .map(|n| req.header(n))
        .collect();
    log_line(
        log,
        req.remote_addr(),
        Some(request),
        &headers,
        response_headers,
        status,
        bytes,
        received,
    );
}

/// The request built from a parsed head for an answer the loop makes, with
/// the trusted-proxy rules applied, so that its log line names the client
/// the application would have seen (a malformed proxy header leaves the
/// socket's peer).
pub(crate) fn as_seen(server: &ServerShared, conn: &Arc<Link>, head: RequestHead) -> Request {
    let conn: Arc<dyn Connection> = conn.clone();
    let mut req = Request::new(head, RequestBody::empty(), conn);
    if let Some(proxy) = &server.proxy {
        let _ = proxy.apply(&mut req);
    }
    req
}

/// Formats and queues one access-log line.
#[allow(clippy::too_many_arguments)]
pub(crate) fn log_line(
    log: &AccessLog,
    client: &str,
    request: Option<(&[u8], &[u8], &str)>,
    request_headers: &[Option<&[u8]>],
    response_headers: &[Option<&[u8]>],
    status: Option<u16>,
    bytes: u64,
    received: Instant,
) {
    let duration = received.elapsed();
    log.log(&Record {
        client,
        received: SystemTime::now().checked_sub(duration),
        request,
        status,
        bytes,
        duration,
        request_headers: request_headers.to_vec(),
        response_headers: response_headers.to_vec(),
    });
}
