//! What every connection of a server shares, on every thread: the
//! settings, the application, the way to wake the loop, the statistics and
//! the access log. Made once by `create_server`, then only read (its
//! counters and flags are atomics).
//!
//! Thread: any.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::access_log::AccessLog;
use crate::adjustments::Adjustments;
use crate::conn::Limits;
use crate::home::Home;
use crate::parser::ParserConfig;
use crate::proxy_headers::ProxyConfig;
use crate::stats::{Counters, InApp};
use crate::trusted::TrustedProxies;
use crate::upgrade::Upgrades;
use crate::App;

/// What every connection shares.
pub(crate) struct ServerShared {
    pub(crate) adj: Adjustments,
    pub(crate) app: Box<dyn App>,
    /// The I/O loops (`io_threads`), the first one accepting; each
    /// connection's link holds its own.
    pub(crate) loops: Vec<Arc<Home>>,
    /// Client connections in all loops together, against `connection_limit`
    /// (see `Map::share`).
    pub(crate) channels: Arc<AtomicUsize>,
    /// `connection_limit` as the descriptor limit allows it (`server.rs`).
    pub(crate) connection_limit: usize,
    /// What the server has done ([`ServerHandle::stats`](crate::ServerHandle::stats)).
    pub(crate) counters: Counters,
    /// The access log, when `access_log` is set.
    pub(crate) access_log: Option<AccessLog>,
    /// The requests in the application, while `slow_request_warning` is on.
    pub(crate) in_app: InApp,
    pub(crate) parser_config: ParserConfig,
    /// The connection core's settings.
    pub(crate) limits: Limits,
    /// The proxy-headers middleware, when a proxy setting asks for it.
    pub(crate) proxy: Option<ProxyConfig>,
    /// With `proxy_protocol`: the peers whose connections must begin with a
    /// PROXY protocol header (`trusted_proxy`).
    pub(crate) proxy_protocol: Option<TrustedProxies>,
    /// Response bytes buffered beyond `outbuf_high_watermark`, all
    /// connections together (`outbuf_spill_total`); each connection's
    /// output buffers keep their share counted (`output.rs`).
    ///
    /// Workers (writing), the I/O thread (sending) and the last holder of
    /// a connection (dropping it) add and take away concurrently: each
    /// queue only ever takes away what it added (its `spilled` share, kept
    /// under its own lock), so the sum never wraps, and a dropped queue
    /// gives back all of its share (`Link`'s `Drop`). The check against
    /// `outbuf_spill_total` and the add are not one step: writers racing
    /// past it overshoot by at most one write each, which the limit
    /// tolerates (it bounds a disk, not a buffer). Relaxed: no other
    /// memory is published through it. Raced by `tests/spill.rs`.
    pub(crate) spilled: AtomicU64,
    /// When the last warning about a bad PROXY protocol header was logged
    /// (milliseconds since the epoch, plus one; 0 for never): a
    /// misconfigured load balancer must not flood the log.
    pub(crate) last_proxy_warning: AtomicU64,
    /// The connections that switched protocols.
    pub(crate) upgrades: Upgrades,
    /// Handing the listeners over to a new process (`handover.rs`).
    pub(crate) handover: crate::handover::State,
    /// A graceful stop began: every response from now on is its
    /// connection's last (written once by the I/O thread, read by the
    /// workers as they build a head; a response whose head was built just
    /// before is still its connection's last, the loop closes after it).
    draining: AtomicBool,
    /// The I/O thread's time at its latest round (milliseconds since the
    /// epoch): a clock for what needs no precision finer than a round
    /// (a worker marking activity), read without a system call.
    coarse_ms: AtomicU64,
    epoch: Instant,
}

impl fmt::Debug for ServerShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerShared").finish_non_exhaustive()
    }
}

impl ServerShared {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        adj: Adjustments,
        app: Box<dyn App>,
        loops: Vec<Arc<Home>>,
        connection_limit: usize,
        access_log: Option<AccessLog>,
        parser_config: ParserConfig,
        proxy: Option<ProxyConfig>,
        handover: crate::handover::State,
        proxy_protocol: Option<TrustedProxies>,
    ) -> ServerShared {
        let limits = Limits {
            lookahead: adj.channel_request_lookahead,
            head_timeout_ms: adj.request_head_timeout.saturating_mul(1000),
            body_timeout_ms: adj.request_body_timeout.saturating_mul(1000),
            min_body_rate: adj.min_request_body_rate,
        };
        let upgrades = Upgrades::new(
            adj.upgraded_connection_limit,
            adj.websocket_max_message_size,
        );
        ServerShared {
            adj,
            app,
            loops,
            channels: Arc::new(AtomicUsize::new(0)),
            connection_limit,
            counters: Counters::new(),
            access_log,
            in_app: InApp::default(),
            parser_config,
            limits,
            proxy,
            proxy_protocol,
            last_proxy_warning: AtomicU64::new(0),
            spilled: AtomicU64::new(0),
            upgrades,
            handover,
            draining: AtomicBool::new(false),
            coarse_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Milliseconds since the server started (monotonic).
    pub(crate) fn now_ms(&self) -> u64 {
        self.ms_at(Instant::now())
    }

    pub(crate) fn ms_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// The I/O thread's latest round's time (see `coarse_ms`): at most one
    /// round old, which is as long as the loop waits (`asyncore_loop_timeout`).
    pub(crate) fn coarse_now_ms(&self) -> u64 {
        self.coarse_ms.load(Ordering::Relaxed)
    }

    /// An I/O thread's round began at `now`. With several loops, the
    /// latest of their times (each stores only forward, so the clock never
    /// goes back however their rounds interleave).
    pub(crate) fn set_round_time(&self, now: Instant) {
        self.coarse_ms.fetch_max(self.ms_at(now), Ordering::Relaxed);
    }

    /// The loop that accepts connections (and runs on the thread that
    /// called `run`).
    pub(crate) fn first_loop(&self) -> &Home {
        &self.loops[0]
    }

    /// A graceful stop began.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub(crate) fn begin_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }
}
