//! Live statistics: counters bumped where each event happens (relaxed
//! atomics: no lock on the request path), a consistent-enough snapshot
//! ([`Stats`], from [`ServerHandle::stats`](crate::ServerHandle::stats)),
//! and its Prometheus text exposition ([`Stats::to_prometheus`]).
//!
//! Each counter only grows (the gauges aside), and each is read on its
//! own: a snapshot taken while requests run may count a response whose
//! request it does not count yet. Counters written by the I/O thread and
//! those written by workers sit on separate cache lines.
//!
//! Thread: both (the I/O thread and the workers count; any thread reads).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Keeps what it holds on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Line<T>(T);

/// Counted by the I/O thread.
#[derive(Debug, Default)]
struct IoCounts {
    accepted: AtomicU64,
    open: AtomicU64,
    refused: AtomicU64,
    evicted: AtomicU64,
    closed_idle: AtomicU64,
    timed_out: AtomicU64,
    requests: AtomicU64,
    parse_errors: AtomicU64,
    shed: AtomicU64,
    slow: AtomicU64,
    bytes_received: AtomicU64,
}

/// Counted by the workers (and, for bytes sent, the I/O thread too).
#[derive(Debug, Default)]
struct WorkCounts {
    responses: [AtomicU64; 5],
    in_app: AtomicU64,
    not_reading: AtomicU64,
    /// Connections closed for a bad or missing PROXY protocol header.
    proxy_header_errors: AtomicU64,
    /// Pushed bodies being sent now.
    streaming: AtomicU64,
    /// Body bytes pushed through `BodySender`s.
    bytes_pushed: AtomicU64,
    bytes_sent: AtomicU64,
}

/// The server's counters.
#[derive(Debug)]
pub(crate) struct Counters {
    io: Line<IoCounts>,
    work: Line<WorkCounts>,
    started: Instant,
}

/// Bumps a counter (relaxed: each counter stands alone).
fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn new() -> Counters {
        Counters {
            io: Line::default(),
            work: Line::default(),
            started: Instant::now(),
        }
    }

    /// A connection was accepted and registered.
    pub(crate) fn connection_opened(&self) {
        add(&self.io.0.accepted, 1);
        add(&self.io.0.open, 1);
    }

    /// A registered connection is gone.
    pub(crate) fn connection_closed(&self) {
        self.io.0.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A new connection got the 503 at `connection_limit`.
    pub(crate) fn refused(&self) {
        add(&self.io.0.refused, 1);
    }

    /// A connection was closed to make room at `connection_limit`.
    pub(crate) fn evicted(&self) {
        add(&self.io.0.evicted, 1);
    }

    /// A connection idle past `channel_timeout` was closed.
    pub(crate) fn closed_idle(&self) {
        add(&self.io.0.closed_idle, 1);
    }

    /// A request too slow to arrive got its 408.
    pub(crate) fn timed_out(&self) {
        add(&self.io.0.timed_out, 1);
    }

    /// A complete request was received (`error`: it could not be parsed).
    pub(crate) fn request(&self, error: bool) {
        add(&self.io.0.requests, 1);
        if error {
            add(&self.io.0.parse_errors, 1);
        }
    }

    pub(crate) fn received(&self, bytes: usize) {
        add(&self.io.0.bytes_received, bytes as u64);
    }

    pub(crate) fn sent(&self, bytes: usize) {
        add(&self.work.0.bytes_sent, bytes as u64);
    }

    /// A request was answered 503 to shed load (`max_queue_depth` on the
    /// I/O thread, `max_queue_wait` on a worker).
    pub(crate) fn shed(&self) {
        add(&self.io.0.shed, 1);
    }

    /// A request passed `slow_request_warning` in the application.
    pub(crate) fn slow(&self) {
        add(&self.io.0.slow, 1);
    }

    /// A response with this status went out (its head, at least).
    pub(crate) fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        add(&self.work.0.responses[class], 1);
    }

    /// The application began (`true`) or finished (`false`) a request.
    pub(crate) fn in_app(&self, running: bool) {
        if running {
            add(&self.work.0.in_app, 1);
        } else {
            self.work.0.in_app.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A worker gave up on a client that read nothing.
    pub(crate) fn not_reading(&self) {
        add(&self.work.0.not_reading, 1);
    }

    /// A pushed body was attached to its connection.
    pub(crate) fn push_started(&self) {
        add(&self.work.0.streaming, 1);
    }

    /// A pushed body ended (or its connection did).
    pub(crate) fn push_ended(&self) {
        self.work.0.streaming.fetch_sub(1, Ordering::Relaxed);
    }

    /// Body bytes a sender pushed.
    pub(crate) fn pushed(&self, bytes: u64) {
        add(&self.work.0.bytes_pushed, bytes);
    }

    /// A connection from a trusted proxy did not begin with a valid PROXY
    /// protocol header, and was closed.
    pub(crate) fn proxy_header_error(&self) {
        add(&self.work.0.proxy_header_errors, 1);
    }

    /// A snapshot; the pool's figures come from its own lock.
    pub(crate) fn snapshot(
        &self,
        pool: PoolFigures,
        access_log_dropped: u64,
        (upgraded_open, upgraded_total): (u64, u64),
        bytes_spilled: u64,
        loop_connections: Vec<u64>,
    ) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let io = &self.io.0;
        let work = &self.work.0;
        Stats {
            uptime: self.started.elapsed(),
            connections_open: get(&io.open),
            connections_accepted: get(&io.accepted),
            connections_refused: get(&io.refused),
            connections_evicted: get(&io.evicted),
            connections_closed_idle: get(&io.closed_idle),
            requests_timed_out: get(&io.timed_out),
            connections_not_reading: get(&work.not_reading),
            proxy_header_errors: get(&work.proxy_header_errors),
            streaming_responses: get(&work.streaming),
            bytes_pushed: get(&work.bytes_pushed),
            bytes_spilled,
            loop_connections,
            requests_received: get(&io.requests),
            parse_errors: get(&io.parse_errors),
            requests_shed: get(&io.shed),
            slow_requests: get(&io.slow),
            responses: [0, 1, 2, 3, 4].map(|i| get(&work.responses[i])),
            requests_in_app: get(&work.in_app),
            queue_depth: pool.queued,
            threads_total: pool.threads,
            threads_busy: pool.busy,
            bytes_received: get(&io.bytes_received),
            bytes_sent: get(&work.bytes_sent),
            access_log_dropped,
            upgraded_open,
            upgraded_total,
        }
    }
}

/// What the worker pool reports for a snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PoolFigures {
    pub threads: u64,
    pub busy: u64,
    pub queued: u64,
}

/// What a running server has done: a snapshot of its counters.
///
/// ```no_run
/// let server = maitred::create_server(
///     |_req: &mut maitred::Request| maitred::Response::text("hi"),
///     maitred::Adjustments::default().listen(&["127.0.0.1:8080"]),
/// )?;
/// let handle = server.handle();
/// std::thread::spawn(move || loop {
///     std::thread::sleep(std::time::Duration::from_secs(60));
///     let s = handle.stats();
///     eprintln!("{} open, {} requests, {} 5xx", s.connections_open, s.requests_received, s.responses[4]);
/// });
/// server.run()?;
/// # Ok::<(), maitred::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Time since the server was created.
    pub uptime: Duration,
    /// Client connections open now.
    pub connections_open: u64,
    /// Client connections accepted and served since the start.
    pub connections_accepted: u64,
    /// New connections answered `503` at `connection_limit` because no
    /// connection could be closed to make room.
    pub connections_refused: u64,
    /// Connections closed to make room for new ones at `connection_limit`.
    pub connections_evicted: u64,
    /// Connections closed after `channel_timeout` without activity.
    pub connections_closed_idle: u64,
    /// Requests answered `408`: their head or body came too slowly
    /// (`request_head_timeout`, `request_body_timeout`).
    pub requests_timed_out: u64,
    /// Connections closed because the client read nothing of a response
    /// for `channel_timeout` (their worker was released).
    pub connections_not_reading: u64,
    /// Connections from a trusted proxy closed because they did not begin
    /// with a valid PROXY protocol header (`proxy_protocol`).
    pub proxy_header_errors: u64,
    /// Requests received in full, parse errors included.
    pub requests_received: u64,
    /// Requests answered with a parse error (400, 413, 414, 431, 501, 505).
    pub parse_errors: u64,
    /// Requests answered `503` to shed load (`max_queue_depth`,
    /// `max_queue_wait`) without running the application.
    pub requests_shed: u64,
    /// Requests that were in the application longer than
    /// `slow_request_warning` (each warned about once).
    pub slow_requests: u64,
    /// Responses by status class: `[1xx, 2xx, 3xx, 4xx, 5xx]`, the server's
    /// own (errors, 408, 503) included.
    pub responses: [u64; 5],
    /// Requests in the application now.
    pub requests_in_app: u64,
    /// Connections with requests waiting for a worker thread now.
    pub queue_depth: u64,
    /// Worker threads.
    pub threads_total: u64,
    /// Worker threads busy now (not waiting for work).
    pub threads_busy: u64,
    /// Bytes received from clients.
    pub bytes_received: u64,
    /// Bytes sent to clients.
    pub bytes_sent: u64,
    /// Access-log lines dropped because the log's writer fell behind.
    pub access_log_dropped: u64,
    /// Connections that switched protocols (`101`) and are open now, each
    /// with its handler's thread.
    pub upgraded_open: u64,
    /// Connections that switched protocols since the start.
    pub upgraded_total: u64,
    /// Responses whose pushed body ([`Body::channel`](crate::Body::channel))
    /// is being sent now.
    pub streaming_responses: u64,
    /// Body bytes pushed through body senders since the start.
    pub bytes_pushed: u64,
    /// Response bytes buffered beyond `outbuf_high_watermark` now, all
    /// connections together (generated bodies that ran ahead of slow
    /// clients, in temporary files; bounded by `outbuf_spill_total`).
    pub bytes_spilled: u64,
    /// Client connections open in each I/O loop now (`io_threads`; one
    /// entry with the default of one loop), the accepting loop first.
    pub loop_connections: Vec<u64>,
}

impl Stats {
    /// The Prometheus text exposition format (version 0.0.4): every
    /// figure as a `maitred_`-prefixed metric with its `# HELP` and
    /// `# TYPE`, counters ending in `_total`.
    ///
    /// ```
    /// # fn stats() -> maitred::Stats { unimplemented!() }
    /// # if false {
    /// let text = stats().to_prometheus();
    /// assert!(text.contains("# TYPE maitred_requests_total counter"));
    /// # }
    /// ```
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP maitred_{name} {help}");
            let _ = writeln!(out, "# TYPE maitred_{name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "maitred_{name}{labels} {v}");
            }
        };
        metric(
            "uptime_seconds",
            "gauge",
            "Seconds since the server was created.",
            &[("", self.uptime.as_secs())],
        );
        metric(
            "connections_open",
            "gauge",
            "Client connections open now.",
            &[("", self.connections_open)],
        );
        let per_loop: Vec<(String, u64)> = self
            .loop_connections
            .iter()
            .enumerate()
            .map(|(i, &n)| (format!("{{loop=\"{i}\"}}"), n))
            .collect();
        let per_loop: Vec<(&str, u64)> = per_loop.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        metric(
            "loop_connections_open",
            "gauge",
            "Client connections open now in each I/O loop (io_threads).",
            &per_loop,
        );
        metric(
            "connections_accepted_total",
            "counter",
            "Client connections accepted.",
            &[("", self.connections_accepted)],
        );
        metric(
            "connections_refused_total",
            "counter",
            "New connections answered 503 at connection_limit.",
            &[("", self.connections_refused)],
        );
        metric(
            "connections_closed_total",
            "counter",
            "Connections the server closed, by reason.",
            &[
                ("{reason=\"evicted\"}", self.connections_evicted),
                ("{reason=\"idle\"}", self.connections_closed_idle),
                ("{reason=\"request_timeout\"}", self.requests_timed_out),
                ("{reason=\"not_reading\"}", self.connections_not_reading),
                ("{reason=\"bad_proxy_header\"}", self.proxy_header_errors),
            ],
        );
        metric(
            "requests_total",
            "counter",
            "Requests received in full, parse errors included.",
            &[("", self.requests_received)],
        );
        metric(
            "parse_errors_total",
            "counter",
            "Requests answered with a parse error.",
            &[("", self.parse_errors)],
        );
        metric(
            "requests_shed_total",
            "counter",
            "Requests answered 503 to shed load, without the application.",
            &[("", self.requests_shed)],
        );
        metric(
            "slow_requests_total",
            "counter",
            "Requests in the application longer than slow_request_warning.",
            &[("", self.slow_requests)],
        );
        metric(
            "responses_total",
            "counter",
            "Responses sent, by status class.",
            &[
                ("{class=\"1xx\"}", self.responses[0]),
                ("{class=\"2xx\"}", self.responses[1]),
                ("{class=\"3xx\"}", self.responses[2]),
                ("{class=\"4xx\"}", self.responses[3]),
                ("{class=\"5xx\"}", self.responses[4]),
            ],
        );
        metric(
            "requests_in_app",
            "gauge",
            "Requests in the application now.",
            &[("", self.requests_in_app)],
        );
        metric(
            "queue_depth",
            "gauge",
            "Connections with requests waiting for a worker thread.",
            &[("", self.queue_depth)],
        );
        metric(
            "threads",
            "gauge",
            "Worker threads.",
            &[("", self.threads_total)],
        );
        metric(
            "threads_busy",
            "gauge",
            "Worker threads busy now.",
            &[("", self.threads_busy)],
        );
        metric(
            "received_bytes_total",
            "counter",
            "Bytes received from clients.",
            &[("", self.bytes_received)],
        );
        metric(
            "sent_bytes_total",
            "counter",
            "Bytes sent to clients.",
            &[("", self.bytes_sent)],
        );
        metric(
            "streaming_responses",
            "gauge",
            "Responses whose pushed body is being sent now.",
            &[("", self.streaming_responses)],
        );
        metric(
            "pushed_bytes_total",
            "counter",
            "Body bytes pushed through body senders.",
            &[("", self.bytes_pushed)],
        );
        metric(
            "spilled_bytes",
            "gauge",
            "Response bytes buffered beyond outbuf_high_watermark, in temporary files.",
            &[("", self.bytes_spilled)],
        );
        metric(
            "upgraded_connections_open",
            "gauge",
            "Connections that switched protocols, open now.",
            &[("", self.upgraded_open)],
        );
        metric(
            "upgraded_connections_total",
            "counter",
            "Connections that switched protocols.",
            &[("", self.upgraded_total)],
        );
        metric(
            "access_log_dropped_total",
            "counter",
            "Access-log lines dropped because the writer fell behind.",
            &[("", self.access_log_dropped)],
        );
        out
    }
}

/// The requests in the application now, for `slow_request_warning`: kept
/// only while the setting is on (a lock per request then, none otherwise).
#[derive(Debug, Default)]
pub(crate) struct InApp {
    next_id: std::sync::atomic::AtomicU64,
    running: std::sync::Mutex<Vec<Running>>,
}

#[derive(Debug)]
struct Running {
    id: u64,
    what: String,
    started: Instant,
    warned: bool,
}

/// Takes a request out of [`InApp`] when dropped (also on a panic).
#[derive(Debug)]
pub(crate) struct InAppGuard<'a> {
    registry: &'a InApp,
    id: u64,
}

impl Drop for InAppGuard<'_> {
    fn drop(&mut self) {
        crate::lock(&self.registry.running).retain(|r| r.id != self.id);
    }
}

impl InApp {
    /// Notes that the request described by `what` entered the application
    /// on this thread.
    pub(crate) fn enter(&self, what: String) -> InAppGuard<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        crate::lock(&self.running).push(Running {
            id,
            what,
            started: Instant::now(),
            warned: false,
        });
        InAppGuard { registry: self, id }
    }

    /// Warns once about each request in the application longer than
    /// `limit`; returns how many were warned about now.
    pub(crate) fn warn_slow(&self, limit: Duration, setting: u64) -> u64 {
        let mut warned = 0;
        let now = Instant::now();
        let mut running = crate::lock(&self.running);
        for r in running.iter_mut().filter(|r| !r.warned) {
            let elapsed = now.duration_since(r.started);
            if elapsed > limit {
                r.warned = true;
                warned += 1;
                crate::log_warning!(
                    "Slow request: {} in the application for {:.1} s (slow_request_warning={setting}); a thread cannot be interrupted: bound the work in the application, or use max_queue_wait to stop queued requests from waiting behind it",
                    crate::logging::escaped(&r.what),
                    elapsed.as_secs_f64()
                );
            }
        }
        warned
    }
}
