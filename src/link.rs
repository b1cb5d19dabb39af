//! What the I/O thread and a worker share for one connection, and the one
//! place that says how: the [`Link`].
//!
//! The I/O thread owns the connection's HTTP/1 state (the [`Conn`] core,
//! loop-only, no lock); a worker runs requests and writes their responses
//! straight to the socket. Between them there is exactly this:
//!
//! | what | who writes it | rule |
//! |---|---|---|
//! | `state` (the hand-off word) | both | below |
//! | `out` (output buffers) and `pending` (their size) | the *holder* | a `Mutex` that only the holder takes, so never contended |
//! | the socket's send side | the holder | |
//! | `pipeline` (requests for the holding worker) | the loop pushes, the worker pops | under its `Mutex`, with the `QUEUED` bit |
//! | `switch` (the upgrade hand-off) | the worker puts, the loop takes | under its `Mutex`, announced by `SWITCH` |
//! | `last_activity` | both | relaxed stores of "now" (either is right) |
//! | the descriptor | nobody | owned here: closed when the last `Arc<Link>` goes, so no thread ever sends on a closed or reused descriptor (CVE-2022-31015) |
//!
//! # The hand-off word
//!
//! `RUNNING` says who *holds* the connection. Clear: the loop holds it.
//! Set: the worker that was handed a [`Job`] holds it. Only the holder
//! touches the output buffers and sends; ownership moves at exactly two
//! points:
//!
//! * *Loop → worker.* The loop stores `RUNNING` and stages the job; the
//!   job crosses the pool's mutex, so the worker's pop happens after
//!   everything the loop wrote (output buffers included).
//! * *Worker → loop.* The worker's release is a compare-and-swap that
//!   clears `RUNNING` (AcqRel); the loop's Acquire load that sees it clear
//!   sees everything the worker wrote before it.
//!
//! While a worker holds the connection, the loop changes the word only by
//! compare-and-swap on a value with `RUNNING` set, so that nothing it sets
//! lands on a connection already released:
//!
//! * `QUEUED`: the pipeline holds requests for the worker. Set under the
//!   pipeline lock after a push; cleared by the worker under the same lock
//!   when it takes the last one. At every unlock, `QUEUED` ⇔ the pipeline
//!   is not empty. The worker's release requires `QUEUED` clear, so a
//!   request pushed is either taken by the worker or (its CAS having seen
//!   the release) popped back by the loop and handed over anew.
//! * `WAKE`: the loop declined to read (data is waiting, or a graceful stop
//!   began) and wants to be notified at the release.
//! * `ABORT`: the client went away and the loop dropped its side; the
//!   worker's sends fail and its request's probe says disconnected.
//!
//! The worker sets `CLOSE` (its response ends the connection: *before* it
//! empties the pipeline, so a push after that sees `CLOSE` and is popped
//! back, never run: CVE-2024-49768), `BROKEN` (a send failed) and, in the
//! release itself, `SWITCH` (it answered `101`).
//!
//! The release notifies the loop (notifier queue + trigger) only when the
//! loop has something to do: `WAKE` was set, output is left to send, or the
//! connection closes or switches. A keep-alive response that was sent
//! whole costs no wake-up: the loop learns of the release the next time it
//! looks at the connection ([`Link::take_release`], called before every
//! decision).
//!
//! # Locks per keep-alive request
//!
//! One request, answered whole by one worker, the next request arriving
//! after the response: the loop stages the job (no lock; the round's jobs
//! go to the pool with one lock, shared by every request of the round),
//! the worker pops it (the pool's lock, once), writes the response with
//! one `sendmsg` (no lock) and releases (no lock): 2 acquisitions. When the
//! client's next request races the release (it comes while the worker is
//! still finishing), the worker's notification adds the notifier's lock on
//! both sides: 2.0-2.3 on average, counted by `tests/locks.rs`. A
//! pipelined request costs the pipeline lock as the loop queues it (the
//! worker takes them all with one) and the output lock as its response is
//! buffered to go out with the batch's: 2.1 on average, the pool's locks
//! being shared by the batch. A response the socket does not take whole
//! adds the output lock.
//!
//! Thread: both.
//!
//! [`Conn`]: crate::conn::Conn

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::conn::{Received, Released};
use crate::dispatcher::Token;
use crate::home::Home;
use crate::output::{OutQueue, Wire};
use crate::push::{Fill, Push, PushEvent, PushTarget};
use crate::request::{ConnEnviron, Connection};
use crate::shared::ServerShared;
use crate::upgrade::Handoff;

/// A worker holds the connection.
const RUNNING: u32 = 1 << 0;
/// The pipeline holds requests for the worker.
const QUEUED: u32 = 1 << 1;
/// The loop wants to be notified at the release.
const WAKE: u32 = 1 << 2;
/// The client is gone; the loop dropped its side.
const ABORT: u32 = 1 << 3;
/// The last response ends the connection.
const CLOSE: u32 = 1 << 4;
/// The last response was `101 Switching Protocols`.
const SWITCH: u32 = 1 << 5;
/// A send failed: the connection is unusable.
const BROKEN: u32 = 1 << 6;
/// The last response's body is pushed ([`Push`]): the loop holds the
/// connection and sends it; pipelined requests wait in the pipeline
/// (`QUEUED` stays) until it ends.
const PUSH: u32 = 1 << 7;

/// A request for the pool, with the connection it came on. Whoever holds a
/// job holds the connection (`RUNNING`).
#[derive(Debug)]
pub(crate) struct Job {
    pub link: Arc<Link>,
    pub req: Received,
}

/// What became of a request the loop handed over.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum HandOver {
    /// The loop held the connection: stage this job for the pool.
    Stage(Job),
    /// Queued behind the request the worker is running.
    Queued,
    /// The worker released the connection just before: the loop holds it
    /// again, and the request comes back with how it was released.
    Bounced(Received, Released),
    /// The running response closes the connection: the request is dropped.
    Dropped,
}

/// What the worker does after a response.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// It took the pipelined requests (it still holds the connection).
    Took,
    /// It released the connection.
    Released,
}

/// One connection's shared part (see the module docs).
#[derive(Debug)]
pub(crate) struct Link {
    sock: OwnedFd,
    token: AtomicU64,
    state: AtomicU32,
    /// The output buffers: only the holder locks them.
    out: Mutex<OutQueue>,
    /// Bytes in `out` (stored by the holder under `out`, so the holder
    /// reads it without the lock).
    pending: AtomicU64,
    pipeline: Mutex<VecDeque<Received>>,
    switch: Mutex<Option<Handoff>>,
    /// The pushed body being sent (`PUSH`), and whether the connection
    /// closes after it.
    push: Mutex<Option<(Arc<Push>, bool)>>,
    /// Milliseconds since the server's epoch.
    last_activity: AtomicU64,
    pub(crate) server: Arc<ServerShared>,
    /// The loop the connection lives in: the one a worker wakes.
    pub(crate) home: Arc<Home>,
    pub(crate) origin: ConnEnviron,
}

impl Drop for Link {
    /// The last holder is gone: whatever output is left (a connection that
    /// closed with a spilled download unsent) gives its share of the
    /// server's spilled bytes back, so that `outbuf_spill_total` counts
    /// only connections that exist.
    fn drop(&mut self) {
        let q = self.out.get_mut().unwrap_or_else(|p| p.into_inner());
        let share = q.forget_spill();
        if share > 0 {
            self.server.spilled.fetch_sub(share, Ordering::Relaxed);
        }
    }
}

impl Wire for Link {
    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn server(&self) -> &ServerShared {
        &self.server
    }

    fn out(&self) -> MutexGuard<'_, OutQueue> {
        crate::lock(&self.out)
    }

    fn pending(&self) -> u64 {
        self.pending.load(Ordering::Acquire)
    }

    fn set_pending(&self, bytes: u64) {
        self.pending.store(bytes, Ordering::Release);
    }

    fn touch(&self, now_ms: u64) {
        self.last_activity.store(now_ms, Ordering::Relaxed);
    }

    fn gone(&self) -> bool {
        self.disconnected()
    }

    fn mark_broken(&self) {
        self.state.fetch_or(BROKEN, Ordering::AcqRel);
    }

    /// Before the release that announces it with `SWITCH`.
    fn put_switch(&self, handoff: Handoff) {
        *crate::lock(&self.switch) = Some(handoff);
    }
}

impl PushTarget for Link {
    fn append_and_flush(&self, fill: &mut Fill<'_>) -> Result<u64, ()> {
        let mut out = self.out();
        let mut failed = false;
        fill(&mut |piece| failed |= out.append_bytes(self, piece).is_err());
        if failed || out.flush_soon(self).is_err() {
            return Err(());
        }
        Ok(out.total_bytes())
    }

    fn queued(&self) -> u64 {
        self.out().total_bytes()
    }

    fn high_watermark(&self) -> u64 {
        self.server.adj.outbuf_high_watermark
    }

    fn client_gone(&self) -> bool {
        Wire::gone(self)
    }

    fn wake(&self) {
        self.notify_loop();
    }

    fn count(&self, event: PushEvent) {
        let c = &self.server.counters;
        match event {
            PushEvent::Started => c.push_started(),
            PushEvent::Bytes(n) => c.pushed(n),
            PushEvent::Ended => c.push_ended(),
        }
    }
}

impl Connection for Link {
    fn environ(&self) -> &ConnEnviron {
        &self.origin
    }

    fn disconnected(&self) -> bool {
        self.state.load(Ordering::Acquire) & (ABORT | BROKEN) != 0
    }
}

/// The decoded outcome of a release.
fn released(s: u32) -> Released {
    Released {
        close: s & (CLOSE | BROKEN | ABORT) != 0,
        switch: s & SWITCH != 0,
        push: s & PUSH != 0,
    }
}

/// What the loop keeps of the word once it holds the connection: a broken
/// or abandoned connection stays so; behind a pushed body, pipelined
/// requests stay queued.
fn kept(s: u32) -> u32 {
    let mut keep = s & (BROKEN | ABORT);
    if s & PUSH != 0 {
        keep |= s & QUEUED;
    }
    keep
}

impl Link {
    pub(crate) fn new(
        sock: OwnedFd,
        server: Arc<ServerShared>,
        home: Arc<Home>,
        origin: ConnEnviron,
    ) -> Link {
        let now = server.now_ms();
        Link {
            sock,
            token: AtomicU64::new(u64::MAX),
            state: AtomicU32::new(0),
            out: Mutex::new(OutQueue::new(now)),
            pending: AtomicU64::new(0),
            pipeline: Mutex::new(VecDeque::new()),
            switch: Mutex::new(None),
            push: Mutex::new(None),
            last_activity: AtomicU64::new(now),
            server,
            home,
            origin,
        }
    }

    /// Set once, at registration, before any job exists (the job crossing
    /// the pool's mutex publishes it to the worker).
    pub(crate) fn set_token(&self, token: Token) {
        self.token.store(token.as_u64(), Ordering::Relaxed);
    }

    /// Asks the I/O thread to look at this connection again.
    pub(crate) fn notify_loop(&self) {
        let token = Token::from_u64(self.token.load(Ordering::Relaxed));
        self.home.notifier.notify(token);
    }

    pub(crate) fn last_activity(&self) -> u64 {
        self.last_activity.load(Ordering::Relaxed)
    }

    /// A worker holds the connection.
    pub(crate) fn running(&self) -> bool {
        self.state.load(Ordering::Acquire) & RUNNING != 0
    }

    /// Requests wait in the pipeline for the worker that holds the
    /// connection.
    pub(crate) fn queued(&self) -> bool {
        self.state.load(Ordering::Acquire) & QUEUED != 0
    }

    // ----------------------------------------------------------------
    // The loop's side
    // ----------------------------------------------------------------

    /// Called by the loop before each decision while its core thinks a
    /// worker holds the connection: `Some` once the worker released it
    /// (the loop holds it again, and the outcome bits are consumed).
    pub(crate) fn take_release(&self) -> Option<Released> {
        let s = self.state.load(Ordering::Acquire);
        if s & RUNNING != 0 {
            return None;
        }
        // The loop holds the connection: no other thread writes the word
        // until the loop hands it over again.
        self.state.store(kept(s), Ordering::Relaxed);
        Some(released(s))
    }

    /// Hands a complete request over (see [`HandOver`]). `first`: the core
    /// owed nothing before it, so the loop holds the connection.
    pub(crate) fn hand_over(self: &Arc<Self>, req: Received, first: bool) -> HandOver {
        if first {
            // The loop holds the connection: nobody else writes the word
            // (and the caller does not hand over a broken connection).
            self.state.store(RUNNING, Ordering::Release);
            return HandOver::Stage(Job {
                link: Arc::clone(self),
                req,
            });
        }
        let mut q = crate::lock(&self.pipeline);
        q.push_back(req);
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & RUNNING == 0 || s & (CLOSE | ABORT | BROKEN) != 0 {
                // Released meanwhile, or about to close: the worker cannot
                // have taken the request (it takes only under this lock),
                // so it is still at the back.
                let Some(req) = q.pop_back() else {
                    return HandOver::Dropped;
                };
                drop(q);
                if s & RUNNING != 0 {
                    return HandOver::Dropped;
                }
                self.state.store(kept(s), Ordering::Relaxed);
                return HandOver::Bounced(req, released(s));
            }
            match self.state.compare_exchange_weak(
                s,
                s | QUEUED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return HandOver::Queued,
                Err(now) => s = now,
            }
        }
    }

    /// The loop already asked to be notified at the release.
    pub(crate) fn wake_asked(&self) -> bool {
        self.state.load(Ordering::Acquire) & (RUNNING | WAKE) == RUNNING | WAKE
    }

    /// The loop declines to read while a worker holds the connection: asks
    /// to be notified at the release. False when the worker released it
    /// meanwhile (the loop holds it: look again now).
    pub(crate) fn ask_wake(&self) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & RUNNING == 0 {
                return false;
            }
            if s & WAKE != 0 {
                return true;
            }
            match self
                .state
                .compare_exchange_weak(s, s | WAKE, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// The loop drops its side of a connection whose client is gone (or at
    /// the end of the server's run). A worker that holds it sees `ABORT`,
    /// and the socket is shut down so that a worker waiting for it to
    /// drain wakes at once; the descriptor itself closes with the last
    /// `Arc<Link>`.
    pub(crate) fn abort(&self) {
        let s = self.state.fetch_or(ABORT, Ordering::AcqRel);
        if s & RUNNING != 0 {
            let _ = crate::sys::shutdown_both(self.fd());
        }
    }

    /// The pushed body being sent, if any, and whether the connection
    /// closes after it.
    pub(crate) fn push(&self) -> Option<(Arc<Push>, bool)> {
        crate::lock(&self.push).clone()
    }

    /// Takes the pushed body (its end, or the connection's).
    pub(crate) fn take_push(&self) -> Option<Arc<Push>> {
        crate::lock(&self.push).take().map(|(p, _)| p)
    }

    /// Behind a pushed body that ended, the first pipelined request, as a
    /// job for the pool (the loop holds the connection, and hands it over
    /// again: `RUNNING`, with `QUEUED` as what is left says).
    pub(crate) fn resume(self: &Arc<Self>) -> Option<Job> {
        let mut q = crate::lock(&self.pipeline);
        let req = q.pop_front()?;
        let mut s = RUNNING | (self.state.load(Ordering::Acquire) & (BROKEN | ABORT));
        if !q.is_empty() {
            s |= QUEUED;
        }
        self.state.store(s, Ordering::Release);
        drop(q);
        Some(Job {
            link: Arc::clone(self),
            req,
        })
    }

    /// Takes what the worker left for the switch of protocols.
    pub(crate) fn take_switch(&self) -> Option<Handoff> {
        crate::lock(&self.switch).take()
    }

    // ----------------------------------------------------------------
    // The worker's side
    // ----------------------------------------------------------------

    /// Leaves the pushed body for the loop (before the release that
    /// announces it with `PUSH`).
    pub(crate) fn put_push(&self, push: Arc<Push>, close_after: bool) {
        *crate::lock(&self.push) = Some((push, close_after));
    }

    /// The response the worker is writing ends the connection: from now on
    /// the loop drops what it would queue.
    pub(crate) fn closing(&self) {
        self.state.fetch_or(CLOSE, Ordering::AcqRel);
    }

    /// After the responses to what it holds: takes every pipelined
    /// request into `into` (one lock for them all) when there are some and
    /// the connection goes on; otherwise releases the connection to the
    /// loop, notifying it when it has something to do. `close`: the last
    /// response ended the connection; `switch`: it was a `101`.
    pub(crate) fn next_or_release(
        &self,
        close: bool,
        switch: bool,
        push: bool,
        into: &mut VecDeque<Received>,
    ) -> Next {
        if close || switch {
            // CLOSE first, then empty the pipeline: a push after this sees
            // CLOSE and pops its request back.
            if close {
                self.closing();
            }
            let mut q = crate::lock(&self.pipeline);
            q.clear();
            self.state.fetch_and(!QUEUED, Ordering::AcqRel);
        }
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & QUEUED != 0 && !push {
                let mut q = crate::lock(&self.pipeline);
                if s & (ABORT | BROKEN | CLOSE) == 0 {
                    into.append(&mut q);
                } else {
                    // Going away with requests queued: they are never run.
                    q.clear();
                }
                self.state.fetch_and(!QUEUED, Ordering::AcqRel);
                drop(q);
                if !into.is_empty() {
                    return Next::Took;
                }
                s = self.state.load(Ordering::Acquire);
                continue;
            }
            let mut new = s & !(RUNNING | WAKE);
            if switch {
                new |= SWITCH;
            }
            if push {
                // The loop sends the body; what is queued waits for its
                // end (QUEUED stays, and a push of the loop's after this
                // release sees RUNNING clear and bounces).
                new |= PUSH;
            }
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let wanted = s & (WAKE | CLOSE | BROKEN | ABORT) != 0
                        || switch
                        || push
                        || self.pending.load(Ordering::Acquire) > 0;
                    // After the release the loop may already be looking,
                    // and a notification for a token it is done with is
                    // ignored: both orders are fine.
                    if wanted && s & ABORT == 0 {
                        self.notify_loop();
                    }
                    return Next::Released;
                }
                Err(now) => s = now,
            }
        }
    }

    /// Gives requests back to the front of the pipeline (a worker that
    /// answered its share of a run; it still holds the connection).
    pub(crate) fn put_back(&self, reqs: &mut VecDeque<Received>) {
        if reqs.is_empty() {
            return;
        }
        let mut q = crate::lock(&self.pipeline);
        while let Some(r) = reqs.pop_back() {
            q.push_front(r);
        }
        self.state.fetch_or(QUEUED, Ordering::AcqRel);
    }

    /// A job still queued when the pool shut down: released as closing.
    pub(crate) fn cancel(&self) {
        self.mark_broken();
        let _ = self.next_or_release(true, false, false, &mut VecDeque::new());
    }
}
