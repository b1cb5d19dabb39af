//! Running the I/O loops (`io_threads`): the round every loop makes, and
//! the loops beyond the first, each on a thread of its own
//! (`maitred-io-1`, ...).
//!
//! # What is per loop, and what is shared
//!
//! Per loop: its dispatcher map (and so its connections, their `Conn`
//! cores and channels), its poller, its trigger and the tokens workers
//! notify it of, its read buffer and its staging of requests, its timers
//! (the idle sweep every `cleanup_interval`, the receive deadlines), and
//! its part of admission at `connection_limit` (it closes only its own
//! connections). Shared: the settings, the application, the worker pool
//! (one queue for every loop's requests), the statistics, the access log,
//! the upgraded connections, the count of connections against
//! `connection_limit`, and the clock workers read.
//!
//! The first loop runs on the thread that calls `Server::run` and does
//! what happens once for the server: it holds the listeners and accepts
//! every connection (handing each to a loop, `home.rs`), takes the
//! signals, starts a graceful stop and waits for the others to drain,
//! reports slow requests and admissions, and closes what is left.
//!
//! # Stopping
//!
//! The first loop stops accepting, marks the server draining
//! (`ServerShared::begin_draining`, a release store), and wakes every
//! other loop. A loop that sees it draining (an acquire load) begins its
//! graceful stop: its connections are told (idle ones close, running ones
//! finish); connections taken from its inbox afterwards are told as they
//! are registered. It then runs rounds until nothing in it is busy, or
//! `shutdown_timeout` passed, and ends, giving its map back to the first
//! loop's thread, which closes what is left once the workers stopped. A
//! loop never ends before a round since it saw the drain, and the inbox is
//! taken in every round after the flag is read: what was handed before the
//! drain began is registered (and then drained), and nothing is handed
//! after (see `home.rs`). The first loop sets `release` (and wakes them)
//! when it stops waiting, so that no loop outlives the server.
//!
//! Thread: the I/O threads.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::channel::{ChannelDispatcher, LoopEnv};
use crate::dispatcher::{Dispatcher, Map};
use crate::home::{Accepted, Home};
use crate::link::Job;
use crate::pool::ThreadedTaskDispatcher;
use crate::shared::ServerShared;

/// How often the deadlines of requests being received are checked
/// (`request_head_timeout`, `request_body_timeout`): a 408 comes at most
/// this late.
pub(crate) const DEADLINE_SWEEP: Duration = Duration::from_millis(250);
/// How often each loop looks again for its best candidate to close and
/// tells the accepting loop (its `Census`), while the server is at
/// `connection_limit`: the accepting loop compares candidates at most this
/// old (an O(connections) scan, so not every round under a flood).
const VICTIM_REFRESH: Duration = Duration::from_millis(10);

/// One loop: its map, its home, and its timers.
#[derive(Debug)]
pub(crate) struct IoLoop {
    pub(crate) map: Map<LoopEnv>,
    pub(crate) home: Arc<Home>,
    next_cleanup: Instant,
    next_deadline_sweep: Instant,
    next_victim_refresh: Instant,
    /// A graceful stop began in this loop (its map was told).
    pub(crate) stopping: bool,
    /// The server was at `connection_limit` at the end of the last round.
    was_at_limit: bool,
    /// What the inbox held, reused round after round.
    inbox: Vec<Accepted>,
}

impl IoLoop {
    pub(crate) fn new(map: Map<LoopEnv>, home: Arc<Home>, shared: &ServerShared) -> IoLoop {
        let now = Instant::now();
        IoLoop {
            map,
            home,
            next_cleanup: now + Duration::from_secs(shared.adj.cleanup_interval),
            next_deadline_sweep: now + DEADLINE_SWEEP,
            next_victim_refresh: now,
            stopping: false,
            was_at_limit: false,
            inbox: Vec::new(),
        }
    }

    /// Begins this loop's graceful stop.
    pub(crate) fn begin_shutdown(&mut self) {
        self.stopping = true;
        self.map.begin_shutdown();
    }

    /// One round: wait up to `timeout` for events (less when deadlines are
    /// due), run the handlers, register what the accepting loop handed
    /// over, give this round's requests to the pool, and run the timers.
    pub(crate) fn round(
        &mut self,
        shared: &Arc<ServerShared>,
        pool: &ThreadedTaskDispatcher<Job>,
        mut timeout: Duration,
    ) -> io::Result<()> {
        let now = Instant::now();
        let sweep = self.home.receive_clocks.load(Ordering::Relaxed) > 0;
        if sweep {
            timeout = timeout.min(self.next_deadline_sweep.saturating_duration_since(now));
        }
        self.map.poll(timeout, now)?;
        // After the trigger's reset in this round (home.rs).
        if shared.loops.len() > 1 {
            self.home.take_inbox(&mut self.inbox);
            if !self.inbox.is_empty() {
                let n = self.inbox.len();
                let batch = self.inbox.drain(..).map(|a| {
                    Box::new(ChannelDispatcher::new(
                        a.sock,
                        Arc::clone(shared),
                        Arc::clone(&self.home),
                        a.origin,
                        a.proxied,
                    )) as Box<dyn Dispatcher<LoopEnv>>
                });
                self.map.admit_all(batch, Instant::now(), self.stopping);
                self.home.arrived(n);
            }
        }
        // The requests completed this round: one hand-over (one lock, at
        // most one wake-up) for all of them.
        {
            let staged = &mut self.map.env_mut().staged;
            if !staged.is_empty() {
                pool.add_tasks(staged.drain(..));
            }
        }
        let now = Instant::now();
        shared.set_round_time(now);
        if now >= self.next_cleanup {
            self.next_cleanup = now + Duration::from_secs(shared.adj.cleanup_interval);
            self.map.maintenance(now);
        }
        if sweep && now >= self.next_deadline_sweep {
            self.next_deadline_sweep = now + DEADLINE_SWEEP;
            self.map.receive_deadlines(now);
        }
        if shared.loops.len() > 1 {
            // At the limit every loop tells the accepting one its best
            // candidate to close: at once when the limit is reached (the
            // loop that reached it wakes the others, which may have had
            // nothing to do), then every VICTIM_REFRESH.
            let at_limit = self.map.at_limit();
            if at_limit && !self.was_at_limit {
                for home in &shared.loops {
                    if home.index != self.home.index {
                        home.notifier.wake();
                    }
                }
            }
            if at_limit && (!self.was_at_limit || now >= self.next_victim_refresh) {
                self.next_victim_refresh = now + VICTIM_REFRESH;
                self.map.publish_victims();
            }
            self.was_at_limit = at_limit;
            if self.home.index > 0 {
                let a = self.map.take_admissions();
                if a != Default::default() {
                    self.home.add_admissions(a);
                }
            }
        }
        Ok(())
    }
}

/// How a loop beyond the first ended.
pub(crate) struct Ended {
    pub(crate) io: IoLoop,
    /// Its poller failed (the server was asked to stop).
    pub(crate) error: Option<io::Error>,
}

/// A loop beyond the first, on its thread: rounds until the server drained
/// (see the module docs) or `release` is set.
fn run_other(
    mut io: IoLoop,
    shared: Arc<ServerShared>,
    pool: ThreadedTaskDispatcher<Job>,
    release: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Ended {
    let adj = &shared.adj;
    let loop_timeout = adj.loop_timeout();
    let shutdown_timeout = Duration::from_secs(adj.shutdown_timeout);
    let mut deadline: Option<Instant> = None;
    let index = io.home.index;
    let _guard = StopOnPanic {
        stop: &stop,
        wake: || shared.first_loop().notifier.wake(),
        what: index,
    };
    loop {
        if release.load(Ordering::Acquire) {
            return Ended { io, error: None };
        }
        if !io.stopping && shared.is_draining() {
            io.begin_shutdown();
            deadline = Some(Instant::now() + shutdown_timeout);
        }
        let timeout = if io.stopping {
            loop_timeout.min(Duration::from_millis(50))
        } else {
            loop_timeout
        };
        if let Err(e) = io.round(&shared, &pool, timeout) {
            // As a failing first loop ends `run`: the server stops.
            crate::log_error!(
                "the poller of I/O thread {} failed: {e}; stopping the server",
                io.home.index
            );
            stop.store(true, Ordering::SeqCst);
            shared.first_loop().notifier.wake();
            return Ended { io, error: Some(e) };
        }
        if let Some(d) = deadline {
            if !io.map.any_busy() || Instant::now() >= d {
                return Ended { io, error: None };
            }
        }
    }
}

/// Stops the server when a loop's thread unwinds (a bug: no input should
/// make one panic), as a failing poller does: the accepting loop would
/// otherwise go on handing connections to a loop that is gone, and they
/// would never be served. Its own connections close as its map drops.
struct StopOnPanic<'a, W: Fn()> {
    stop: &'a AtomicBool,
    /// Wakes the first loop, which then stops the server.
    wake: W,
    /// The loop's index, for the log.
    what: usize,
}

impl<W: Fn()> Drop for StopOnPanic<'_, W> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            crate::log_error!(
                "I/O thread {} panicked; its connections were closed; stopping the server",
                self.what
            );
            self.stop.store(true, Ordering::SeqCst);
            (self.wake)();
        }
    }
}

/// The loops beyond the first, running.
#[derive(Debug, Default)]
pub(crate) struct Others {
    threads: Vec<JoinHandle<Ended>>,
}

impl Others {
    /// Starts a thread for each loop. On failure, the loops already
    /// started are released and joined, and every loop is given back.
    pub(crate) fn start(
        loops: Vec<IoLoop>,
        shared: &Arc<ServerShared>,
        pool: &ThreadedTaskDispatcher<Job>,
        release: &Arc<AtomicBool>,
        stop: &Arc<AtomicBool>,
    ) -> Result<Others, (io::Error, Vec<IoLoop>)> {
        let mut others = Others::default();
        for io in loops {
            let name = format!("maitred-io-{}", io.home.index);
            let (s, p, r, st) = (
                Arc::clone(shared),
                pool.clone(),
                Arc::clone(release),
                Arc::clone(stop),
            );
            match std::thread::Builder::new()
                .name(name)
                .spawn(move || run_other(io, s, p, r, st))
            {
                Ok(t) => others.threads.push(t),
                Err(e) => {
                    // The closure (and its loop, holding no connection yet)
                    // is dropped with the error.
                    release.store(true, Ordering::Release);
                    let back = others.join(shared);
                    return Err((e, back));
                }
            }
        }
        Ok(others)
    }

    /// Whether every loop ended (drained, or gave up at its deadline).
    pub(crate) fn all_ended(&self) -> bool {
        self.threads.iter().all(JoinHandle::is_finished)
    }

    /// Tells the loops to end (after `release` is set) and waits for them:
    /// their maps come back, for the first loop's thread to close.
    pub(crate) fn join(&mut self, shared: &ServerShared) -> Vec<IoLoop> {
        for home in &shared.loops[1..] {
            home.notifier.wake();
        }
        let mut back = Vec::new();
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(ended) => {
                    if let Some(e) = ended.error {
                        crate::log_warning!("I/O thread {} ended with: {e}", ended.io.home.index);
                    }
                    back.push(ended.io);
                }
                // Its connections were dropped with its map as it unwound.
                Err(_) => crate::log_error!("an I/O thread panicked; its connections were closed"),
            }
        }
        back
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_loop_that_panics_stops_the_server_and_one_that_returns_does_not() {
        let stop = Arc::new(AtomicBool::new(false));
        let woken = Arc::new(AtomicUsize::new(0));
        let (s, w) = (Arc::clone(&stop), Arc::clone(&woken));
        let r = std::thread::spawn(move || {
            let _guard = StopOnPanic {
                stop: &s,
                wake: || {
                    w.fetch_add(1, Ordering::SeqCst);
                },
                what: 1,
            };
            panic!("a bug in a loop");
        })
        .join();
        assert!(r.is_err());
        assert!(stop.load(Ordering::SeqCst));
        assert_eq!(woken.load(Ordering::SeqCst), 1);

        let stop = AtomicBool::new(false);
        {
            let _guard = StopOnPanic {
                stop: &stop,
                wake: || panic!("no wake when the loop just returns"),
                what: 2,
            };
        }
        assert!(!stop.load(Ordering::SeqCst));
    }
}
