//! One connection's requests on a worker thread: waitress's `WSGITask` and
//! `ErrorTask`. A worker that pops a [`Job`] holds the connection (see
//! `link.rs`): it runs the proxy-headers middleware and the application,
//! hands the response to the [`ResponseWriter`], which writes it straight
//! to the socket; turns a panic or a broken response into a 500 while
//! nothing was sent yet; answers the requests pipelined behind it in the
//! same run (up to [`BATCH_REQUESTS`], their responses sent together), and
//! releases the connection to the I/O thread.
//!
//! Thread: a worker thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::answer::{answer, as_seen, log_request, About, Why};
use crate::conn::Received;
use crate::error::HttpError;
use crate::link::{Job, Link, Next};
use crate::logging::escaped;
use crate::output::{Wire, WorkerOut};
use crate::push::{Attach, PushTarget};
use crate::request::{Connection, Request};
use crate::writer::{Failure, ResponseWriter};

/// Pipelined requests answered in one run of a worker before the
/// connection goes back to the end of the pool's queue (waitress's
/// fairness).
const BATCH_REQUESTS: usize = 16;

impl crate::pool::Task for Job {
    fn service(self, queued_at: Instant) -> Option<Job> {
        serve(self, queued_at)
    }

    fn cancel(self) {
        self.link.cancel();
    }
}

/// How a response left the connection.
#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    close: bool,
    switch: bool,
    /// Its body is pushed: the loop sends it.
    push: bool,
}

thread_local! {
    /// The pipelined requests a worker took from a connection (kept per
    /// thread so that its capacity serves every run: no allocation per
    /// batch). Empty between runs.
    static TAKEN: RefCell<VecDeque<Received>> = const { RefCell::new(VecDeque::new()) };
}

/// Runs a job's request and those pipelined behind it; returns a job to
/// queue again (at the back) when the run answered its share.
fn serve(job: Job, queued_at: Instant) -> Option<Job> {
    TAKEN.with(|taken| match taken.try_borrow_mut() {
        Ok(mut taken) => serve_with(job, queued_at, &mut taken),
        // Not reachable (a run never starts another on its thread); a
        // fresh queue is as good.
        Err(_) => serve_with(job, queued_at, &mut VecDeque::new()),
    })
}

fn serve_with(job: Job, queued_at: Instant, taken: &mut VecDeque<Received>) -> Option<Job> {
    let Job { link, req } = job;
    let server = &link.server;
    // The first request of a run waited in the pool's queue; one that
    // waited past `max_queue_wait` is answered 503 instead of running the
    // application for a client that has likely given up.
    let max_wait = server.adj.max_queue_wait;
    let waited_too_long = max_wait > 0 && queued_at.elapsed().as_secs() >= max_wait;
    let mut req = req;
    let mut served = 0;
    loop {
        served += 1;
        // More requests are queued behind this one: responses are
        // buffered and sent together at the end of the run.
        let batching = (!taken.is_empty() || link.queued()) && served < BATCH_REQUESTS;
        let out = WorkerOut {
            link: &*link,
            batching,
        };
        let outcome = if link.gone() {
            Outcome {
                close: true,
                ..Outcome::default()
            }
        } else if served == 1 && waited_too_long {
            shed(&out, &link, req)
        } else {
            run(&out, &link, req)
        };
        let close = outcome.close || server.is_draining() || link.gone();
        let ends = close || outcome.switch || outcome.push;
        if ends && !outcome.push {
            // Nothing after a response that ends the connection is run.
            taken.clear();
        } else if outcome.push {
            // The requests behind a pushed body wait for its end, in the
            // pipeline, in order.
            link.put_back(taken);
        }
        if ends || !batching {
            out.flush();
        }
        if !ends {
            // The loop's round time: a connection's idleness is counted in
            // seconds, and this spares a clock read per request.
            link.touch(server.coarse_now_ms().max(link.last_activity()));
        }
        // The next request this run holds, else the pipeline's, else the
        // connection goes back to the loop.
        let next = loop {
            if let Some(next) = taken.pop_front() {
                break next;
            }
            let push = outcome.push && !close;
            if link.next_or_release(close && !outcome.switch, outcome.switch, push, taken)
                == Next::Released
            {
                return None;
            }
        };
        if served >= BATCH_REQUESTS {
            // Its share is done: the rest waits behind the other
            // connections (it still holds this one).
            out.flush();
            link.put_back(taken);
            return Some(Job {
                link: Arc::clone(&link),
                req: next,
            });
        }
        req = next;
    }
}

/// Answers a request that waited too long for a worker (`max_queue_wait`)
/// with 503, without running the application.
fn shed(out: &WorkerOut<'_, Link>, link: &Arc<Link>, req: Received) -> Outcome {
    let server = &link.server;
    let err = HttpError::service_unavailable(format!(
        "The request waited more than {} seconds for a worker (max_queue_wait).",
        server.adj.max_queue_wait
    ));
    let version = req.head.version();
    let head_only = req.head.method() == "HEAD";
    let seen = as_seen(server, link, req.head);
    answer(
        out,
        server.answering(),
        Why::Shed,
        &err,
        version,
        head_only,
        About::Request(&seen),
        req.at,
    );
    Outcome {
        close: true,
        ..Outcome::default()
    }
}

/// The detail of a 500: the failure itself when `expose_tracebacks`, else
/// waitress's generic sentence.
fn internal_error_detail(link: &Link, what: &str) -> String {
    if link.server.adj.expose_tracebacks {
        what.to_string()
    } else {
        "The server encountered an unexpected internal server error".into()
    }
}

/// Runs the middleware and the application for one request and writes the
/// response.
fn run(out: &WorkerOut<'_, Link>, link: &Arc<Link>, received: Received) -> Outcome {
    let server = &link.server;
    let Received { head, body, at } = received;
    let mut w = ResponseWriter::new(out, server.adj.ident.as_deref(), &head);
    let version = head.version();
    let is_head = head.method() == "HEAD";
    let conn: Arc<dyn Connection> = link.clone();
    let mut req = Request::new(head, body, conn);
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
    let sent = match outcome {
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
    let mut result = Outcome::default();
    // What the server answers instead, while nothing was sent.
    let mut instead = None;
    if let (Ok(()), Some((pushed, framing))) = (&sent, w.take_pushed()) {
        // The body comes later, from the senders: the worker attaches it to
        // the connection and goes. Its access-log line is written when it
        // ends, with its length.
        let status = w.status();
        let log = server.access_log.as_ref().map(|_| {
            let server = Arc::clone(server);
            let headers = logged_response_headers.clone();
            Box::new(move |bytes: u64| {
                if let Some(log) = &server.access_log {
                    let headers: Vec<Option<&[u8]>> =
                        headers.iter().map(|v| v.as_deref()).collect();
                    log_request(log, &req, &headers, Some(status), bytes, at);
                }
            }) as Box<dyn FnOnce(u64) + Send>
        });
        let target: Arc<dyn PushTarget> = link.clone();
        let push = pushed.attach(Attach {
            target,
            framing,
            log,
        });
        link.put_push(push, w.close_on_finish());
        return Outcome {
            push: true,
            ..Outcome::default()
        };
    }
    match sent {
        Ok(()) if w.switched() => result.switch = true,
        Ok(()) => result.close = w.close_on_finish(),
        Err(Failure::Disconnected) => {
            crate::log_info!(
                "Client disconnected while serving {}",
                escaped(req.path_bytes())
            );
            result.close = true;
        }
        Err(Failure::Refused(err)) => {
            crate::log_warning!(
                "Refused to switch protocols for {}: {err}",
                escaped(req.path_bytes())
            );
            instead = Some((Why::Shed, err));
            result.close = true;
        }
        Err(Failure::App(what)) => {
            crate::log_error!(
                "Exception while serving {}: {}",
                escaped(req.path_bytes()),
                escaped(&what)
            );
            if !w.head_sent() {
                let detail = internal_error_detail(link, &what);
                instead = Some((Why::AppFailed, HttpError::internal_server_error(detail)));
            }
            result.close = true;
        }
    }
    if let Some((why, error)) = instead {
        let about = About::Request(&req);
        answer(
            out,
            server.answering(),
            why,
            &error,
            version,
            is_head,
            about,
            at,
        );
        logged = None;
    }
    if let (Some(log), Some((status, bytes))) = (&server.access_log, logged) {
        let response_headers: Vec<Option<&[u8]>> = logged_response_headers
            .iter()
            .map(|v| v.as_deref())
            .collect();
        log_request(log, &req, &response_headers, Some(status), bytes, at);
    }
    result
}
