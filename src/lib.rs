//! # maitred
//!
//! A small, auditable HTTP/1.x server: a faithful Rust port of the Python
//! WSGI server [waitress](https://docs.pylonsproject.org/projects/waitress/)
//! 3.0, with a Rust application interface in place of WSGI. Its only
//! dependencies are `libc` and `tempfile`.
//!
//! The architecture is waitress's: one I/O thread runs a dispatcher map
//! over epoll (Linux), kqueue (macOS, BSD) or poll; it accepts connections,
//! reads and parses requests (request line, headers, fixed-length and
//! chunked bodies, all received in full before the application runs, large
//! bodies in a temporary file), and queues one task per complete request on
//! a fixed pool of worker threads. Workers run the application and write
//! the response; what the socket does not take at once is buffered (in a
//! temporary file past `outbuf_overflow`) and sent by the I/O thread. Slow
//! or idle clients therefore never hold a worker thread. With
//! `io_threads` above 1 (not in waitress), several such loops share the
//! connections (the first accepts and hands each to the least loaded) and
//! the one worker pool; see the README's "Several I/O threads".
//!
//! ```no_run
//! use maitred::{Adjustments, Request, Response};
//!
//! fn main() -> Result<(), maitred::Error> {
//!     let adj = Adjustments::default().listen(&["127.0.0.1:8080"]).threads(8);
//!     maitred::serve(
//!         |req: &mut Request| match req.path().as_ref() {
//!             "/" => Response::text("Hello, World!"),
//!             _ => Response::status_page(404),
//!         },
//!         adj,
//!     )
//! }
//! ```
//!
//! * Settings: [`Adjustments`] (every waitress setting, same names and
//!   defaults).
//! * The application: [`App`], [`Request`] (with a WSGI environ → Rust
//!   table), [`Response`], [`Body`].
//! * Running: [`serve`] (blocks; stops gracefully on SIGINT/SIGTERM),
//!   [`create_server`] + [`Server::run`] + [`ServerHandle::shutdown`];
//!   restarting without downtime: SIGUSR2, [`ServerHandle::handover`] with
//!   a [`Program`].
//! * Operating it: [`ServerHandle::stats`] ([`Stats`], with
//!   [`Stats::to_prometheus`]), the access log (`access_log`,
//!   [`ServerHandle::reopen_logs`]), load shedding (`max_queue_depth`,
//!   `max_queue_wait`) and slow-request warnings; deadlines and room at the
//!   connection limit for hostile clients (`request_head_timeout`,
//!   `connection_limit`).
//! * Switching protocols: [`Response::upgrade`] and [`Upgraded`] (a
//!   handler on a thread of its own, never on a worker); WebSocket with
//!   the `websocket` feature (`maitred::websocket`: the handshake and a
//!   blocking `WebSocket`).
//! * Long responses that hold no worker: pushed bodies ([`Body::channel`],
//!   server-sent events) and generated bodies that run ahead of slow
//!   clients into temporary files (`outbuf_spill_limit`).
//! * The `http` crate's types (feature `http`, off by default):
//!   `http_interop`, `HttpApp`, `serve_http`.
//! * Restarting without losing a request: SIGUSR2, [`ServerHandle::handover`],
//!   [`Program`].
//! * Where this server deliberately differs from waitress (it is stricter
//!   in parsing and keeps more connections alive): [`differences`].

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod access_log;
mod activation;
mod adjustments;
mod answer;
mod buffers;
mod channel;
mod conn;
mod dispatcher;
mod error;
#[cfg(any(test, fuzzing))]
mod fuzzing;
mod grammar;
mod handover;
mod home;
mod http_date;
#[cfg(feature = "http")]
pub mod http_interop;
mod limits;
mod link;
mod listener;
pub mod logging;
mod loops;
mod notify;
mod output;
mod parser;
mod pool;
mod proxy_headers;
mod proxy_protocol;
mod push;
mod receiver;
mod request;
mod response;
pub mod runner;
mod server;
mod shared;
mod stats;
mod sys;
mod task;
mod trigger;
mod trusted;
mod upgrade;
mod waker;
#[cfg(feature = "websocket")]
pub mod websocket;
mod writer;

#[doc = include_str!("../DIFFERENCES.md")]
pub mod differences {}

pub(crate) use logging::{log_error, log_info, log_warning};

pub use adjustments::Adjustments;
pub use buffers::RequestBody;
pub use error::{Error, HttpError};
pub use handover::Program;
pub use http_date::{build_http_date, parse_http_date};
#[cfg(feature = "http")]
pub use http_interop::{serve_http, HttpApp};
pub use listener::ListenAddr;
pub use parser::Version;
pub use push::{BodySender, Pushed, SendError};
pub use request::Request;
pub use response::{reason_phrase, Body, Response};
pub use server::{create_server, Server, ServerHandle};
pub use stats::Stats;
pub use upgrade::Upgraded;

/// Internals that the fuzz targets, benchmarks and a few tests drive
/// directly. Not part of the API: anything here may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::adjustments::{SettingInfo, SETTINGS};
    #[cfg(fuzzing)]
    pub use crate::fuzzing::{check_transcript, comparable, drive_connection, Transcript};
    pub use crate::limits::ParserConfig;
    pub use crate::parser::{Parsed, RequestHead, RequestParser, Version};
    pub use crate::proxy_headers::{
        parse_proxy_headers, undquote, HeaderSet, MalformedProxyHeader, ProxyHeader,
        ProxyHeaderValues, ProxyOutcome,
    };
    pub use crate::receiver::ChunkedReceiver;
    pub use crate::trusted::TrustedProxies;

    /// The WebSocket frame decoder and encoders (sans I/O).
    #[cfg(feature = "websocket")]
    pub mod websocket {
        pub use crate::websocket::sans_io::*;
    }

    /// The PROXY protocol v1/v2 parser (and its test encoders).
    pub mod proxy_protocol {
        pub use crate::proxy_protocol::{
            encode_v1, encode_v2, parse, Header, Parsed, ProxyError, MAX_HEADER_LEN, V1_MAX_LEN,
            V2_SIGNATURE,
        };
    }

    /// Mutex acquisitions by the whole process's servers since it started,
    /// in debug builds (`None` in release builds, which do not count).
    pub fn lock_acquisitions() -> Option<u64> {
        #[cfg(debug_assertions)]
        {
            Some(super::LOCKS.load(std::sync::atomic::Ordering::Relaxed))
        }
        #[cfg(not(debug_assertions))]
        {
            None
        }
    }
}

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard, Once};

/// An application: called on a worker thread for each request, with the
/// whole request (body included) already received.
///
/// Implemented for every `Fn(&mut Request) -> Response + Send + Sync`.
///
/// # Response rules (as waitress)
///
/// * The server adds `Date` (unless set) and `Server: <ident>` (or
///   `Via: <ident>` when the application set `Server`).
/// * `Content-Length` is added when the length is known (see [`Body`]). A
///   body longer than the declared length is cut at it; a shorter one closes
///   the connection after it.
/// * HTTP/1.1 bodies of unknown length are sent chunked; HTTP/1.0 ones are
///   ended by closing the connection.
/// * HTTP/1.0 connections are kept alive only when the client asked
///   (`Connection: keep-alive`) and the length is known; HTTP/1.1 ones unless
///   the client said `Connection: close`.
/// * 1xx, 204 and 304 responses carry no body (and no `Content-Length`); a
///   response to `HEAD` never carries a body.
/// * A status or header containing CR or LF (response splitting), a header
///   name that is not a token, and hop-by-hop headers (`Connection`,
///   `Transfer-Encoding`, ...) make the response a 500.
/// * A panic in the application (or in its body) before anything was sent
///   becomes a 500 with waitress's body (the panic message and location
///   only with `expose_tracebacks`); after the head was sent, the
///   connection is closed. The worker thread lives on either way.
pub trait App: Send + Sync + 'static {
    /// Handles one request.
    fn call(&self, req: &mut Request) -> Response;
}

impl<F> App for F
where
    F: Fn(&mut Request) -> Response + Send + Sync + 'static,
{
    fn call(&self, req: &mut Request) -> Response {
        self(req)
    }
}

/// Serves `app` with `adj` until SIGINT or SIGTERM, then stops gracefully
/// (waitress's `serve`). Logs `Serving on <url>` for every listener.
///
/// Errors: bad settings, a listener that could not be set up, or a failure
/// of the poller itself.
///
/// Like [`create_server`], it installs a panic hook that chains to the one
/// already there (see [its docs](create_server#the-panic-hook)), and for
/// the time it runs, handlers for SIGINT and SIGTERM (a graceful stop),
/// SIGHUP (reopen the access log) and SIGUSR2 (hand over to a new copy of
/// the program: [`ServerHandle::handover`]).
pub fn serve<A: App>(app: A, adj: Adjustments) -> Result<(), Error> {
    create_server(app, adj)?.serve()
}

/// Locks a mutex, going on if a thread panicked while holding it (every
/// state behind the server's locks stays consistent between statements).
///
/// Every mutex of the server is taken through here, so that debug builds
/// can count acquisitions ([`__private::lock_acquisitions`]; a condition
/// variable's wait re-takes the lock it released, which is not counted
/// again).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(debug_assertions)]
    LOCKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Mutex acquisitions through [`lock`] since the start (debug builds).
#[cfg(debug_assertions)]
static LOCKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    /// Where the last panic on this thread happened (set by the hook).
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs (once) a panic hook that records where a panic happened, so a
/// 500 can say it with `expose_tracebacks`, then runs the previous hook
/// (which prints the panic to standard error).
pub(crate) fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(loc) = info.location() {
                let s = format!("{}:{}:{}", loc.file(), loc.line(), loc.column());
                let _ = PANIC_LOCATION.try_with(|l| *l.borrow_mut() = Some(s));
            }
            previous(info);
        }));
    });
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// Runs `f`, turning a panic into a description: `panicked at <location>:
/// <message>`.
pub(crate) fn catch_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    let _ = PANIC_LOCATION.try_with(|l| l.borrow_mut().take());
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let msg = panic_message(&*payload);
        match PANIC_LOCATION
            .try_with(|l| l.borrow_mut().take())
            .ok()
            .flatten()
        {
            Some(loc) => format!("panicked at {loc}: {msg}"),
            None => format!("panicked: {msg}"),
        }
    })
}

/// The README's code examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
