//! One request on a worker thread: waitress's `WSGITask` and `ErrorTask`.
//! Runs the proxy-headers middleware and the application, and hands the
//! response to the [`ResponseWriter`]; turns a panic or a broken response
//! into a 500 while nothing was sent yet, and decides whether the
//! connection closes afterwards.
//!
//! Thread: a worker thread.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::access_log::{AccessLog, Record};
use crate::buffers::{FileBuffer, RequestBody};
use crate::channel::{Channel, ClientDisconnected};
use crate::error::HttpError;
use crate::logging::escaped;
use crate::parser::{Parsed, RequestHead, Version};
use crate::request::{DisconnectProbe, Request};
use crate::writer::{write_error, Failure, Output, ResponseWriter};

impl Output for Channel {
    fn write_soon(&self, parts: &[&[u8]]) -> Result<(), ClientDisconnected> {
        Channel::write_soon(self, parts)
    }

    fn write_file(&self, file: FileBuffer) -> Result<(), ClientDisconnected> {
        Channel::write_file(self, file)
    }

    fn is_draining(&self) -> bool {
        Channel::is_draining(self)
    }
}

/// Runs one parsed request on a worker: the application's response, or the
/// parser's error. Returns whether the connection must close afterwards.
pub(crate) fn run(chan: &Arc<Channel>, parsed: Parsed, received: Instant) -> bool {
    match parsed {
        Parsed::Error(err, version) => {
            // The method of a request that could not be parsed is not
            // known: the body goes out, and the connection closes after it.
            let bytes = error_task(chan, &err, version, false);
            if let Some(log) = &chan.server.access_log {
                log_line(
                    log,
                    &chan.origin.remote_addr,
                    None,
                    &[],
                    &[],
                    Some(err.code()),
                    bytes,
                    received,
                );
            }
            true
        }
        Parsed::Request(head, body) => app_task(chan, head, body, received),
    }
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

/// The request headers an access-log line shows.
fn logged_headers<'a>(log: &AccessLog, head: &'a RequestHead) -> Vec<Option<&'a [u8]>> {
    log.request_headers()
        .iter()
        .map(|n| head.header(n))
        .collect()
}

/// Answers a request that waited too long for a worker (`max_queue_wait`)
/// with 503, without running the application. Returns true: the
/// connection closes after it.
pub(crate) fn shed(chan: &Arc<Channel>, parsed: Parsed, received: Instant) -> bool {
    let head = match &parsed {
        Parsed::Request(head, _) => head,
        Parsed::Error(..) => return run(chan, parsed, received),
    };
    chan.server.counters.shed();
    let err = HttpError::service_unavailable(format!(
        "The request waited more than {} seconds for a worker (max_queue_wait).",
        chan.server.adj.max_queue_wait
    ));
    let bytes = error_task(chan, &err, head.version(), head.method() == "HEAD");
    if let Some(log) = &chan.server.access_log {
        log_shed(log, &chan.origin.remote_addr, head, bytes, received);
    }
    true
}

/// The access-log line of a request answered 503 to shed load (by a worker
/// for `max_queue_wait`, by the I/O thread for `max_queue_depth`).
pub(crate) fn log_shed(
    log: &AccessLog,
    client: &str,
    head: &RequestHead,
    bytes: u64,
    received: Instant,
) {
    let request = (
        head.method().as_bytes(),
        head.uri().as_bytes(),
        head.version().protocol(),
    );
    let headers = logged_headers(log, head);
    log_line(
        log,
        client,
        Some(request),
        &headers,
        &[],
        Some(503),
        bytes,
        received,
    );
}

/// Sends an error response; the connection always closes after it.
/// Returns the body bytes sent (for the access log).
fn error_task(chan: &Channel, err: &HttpError, version: Version, head_only: bool) -> u64 {
    chan.server.counters.response(err.code());
    write_error(
        chan,
        chan.server.adj.ident.as_deref(),
        err,
        version,
        head_only,
    )
}

/// The detail of a 500: the failure itself when `expose_tracebacks`, else
/// waitress's generic sentence.
fn internal_error_detail(chan: &Channel, what: &str) -> String {
    if chan.server.adj.expose_tracebacks {
        what.to_string()
    } else {
        "The server encountered an unexpected internal server error".into()
    }
}

fn app_task(chan: &Arc<Channel>, head: RequestHead, body: RequestBody, received: Instant) -> bool {
    let server = &chan.server;
    let mut w = ResponseWriter::new(&**chan, server.adj.ident.as_deref(), &head);
    let version = head.version();
    let is_head = head.method() == "HEAD";
    let probe: Arc<dyn DisconnectProbe> = chan.clone();
    let mut req = Request::new(head, body, chan.origin.clone(), Some(probe));
    let mut malformed_proxy_header = false;
    let outcome = crate::catch_panic(|| {
        // The proxy-headers middleware runs first, as waitress's wraps the
        // application; a malformed trusted header is answered without it.
        if let Some(Err(bad)) = server.proxy.as_ref().map(|p| p.apply(&mut req)) {
            malformed_proxy_header = true;
            return bad.response();
        }
        server.counters.in_app(true);
        // Counted out again even when the application panics.
        struct Leave<'a>(&'a crate::stats::Counters);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.in_app(false);
            }
        }
        let _leave = Leave(&server.counters);
        let _watched = (server.adj.slow_request_warning > 0).then(|| {
            let thread = std::thread::current();
            server.in_app.enter(format!(
                "{} {} from {} on thread {}",
                req.method(),
                req.uri(),
                req.remote_addr(),
                thread.name().unwrap_or("?")
            ))
        });
        server.app.call(&mut req)
    });
    if malformed_proxy_header {
        w.force_close();
    }
    // The request (and its body, which may be a large temporary file) is
    // kept until the response is sent, as waitress does; its path is only
    // formatted if something has to be logged.
    // What the access log shows of the response's headers, taken before
    // the response is handed over.
    let logged_response_headers: Vec<Option<Vec<u8>>> = match (&server.access_log, &outcome) {
        (Some(log), Ok(resp)) => log
            .response_headers()
            .iter()
            .map(|n| {
                resp.headers()
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .map(|(_, v)| v.as_bytes().to_vec())
            })
            .collect(),
        _ => Vec::new(),
    };
    let outcome = match outcome {
        Ok(resp) => match crate::catch_panic(|| w.send(resp)) {
            Ok(r) => r,
            Err(panic) => Err(Failure::App(panic)),
        },
        Err(panic) => Err(Failure::App(panic)),
    };
    if w.head_sent() {
        server.counters.response(w.status());
    }
    let mut logged = w.head_sent().then(|| (w.status(), w.body_bytes_sent()));
    let close = match outcome {
        Ok(()) => w.close_on_finish(),
        Err(Failure::Disconnected) => {
            crate::log_info!(
                "Client disconnected while serving {}",
                escaped(req.path_bytes())
            );
            true
        }
        Err(Failure::App(what)) => {
            crate::log_error!(
                "Exception while serving {}: {}",
                escaped(req.path_bytes()),
                escaped(&what)
            );
            if !w.head_sent() {
                let detail = internal_error_detail(chan, &what);
                let bytes = error_task(
                    chan,
                    &HttpError::internal_server_error(detail),
                    version,
                    is_head,
                );
                logged = Some((500, bytes));
            }
            true
        }
    };
    if let Some(log) = &server.access_log {
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
        let response_headers: Vec<Option<&[u8]>> = logged_response_headers
            .iter()
            .map(|v| v.as_deref())
            .collect();
        let (status, bytes) = match logged {
            Some((s, b)) => (Some(s), b),
            None => (None, 0),
        };
        log_line(
            log,
            req.remote_addr(),
            Some(request),
            &headers,
            &response_headers,
            status,
            bytes,
            received,
        );
    }
    close
}
