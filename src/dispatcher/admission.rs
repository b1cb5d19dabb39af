//! Admission under `connection_limit`: taking a place in the server-wide
//! count of channels, making room by closing the channel most willing to
//! go (waitress's `maintenance` closes idle channels on a timer; here a
//! newcomer at the limit closes one at once), refusing when none may be
//! closed, and what a map tells the other loops for the acceptor's choice
//! ([`Census`]).
//!
//! The order of candidates: idle between requests first, then connected
//! and silent or still sending a head, oldest first in each class
//! ([`Dispatcher::eviction_rank`]); never one with a request in the
//! application or a body on its way. A round looks for candidates at most
//! once (a burst of newcomers costs one scan of the map), keeping the best
//! few hundred, each re-checked when its turn comes.
//!
//! Thread: the I/O thread that owns the map (the census is read by the
//! accepting loop).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::{Dispatcher, Leave, Map, Role, Token};

/// What one map tells the other loops' threads of its channels (with
/// several I/O threads): how many it holds, and how willing the most
/// willing of them is to be closed for room under `connection_limit`.
///
/// Written by the map's own thread, read by the loop that accepts (to
/// choose where a new connection goes). Relaxed: each figure is a hint
/// for a choice that is made again for every connection, published
/// through nothing else; a stale one costs a less even spread, or a new
/// connection sent to a loop that then finds no room and refuses it.
#[derive(Debug)]
pub(crate) struct Census {
    /// Channels in the map.
    pub(super) open: AtomicUsize,
    /// The best candidate to close (see [`Census::rank`]) as of the last
    /// scan, or `u64::MAX` for none.
    best_victim: AtomicU64,
}

impl Default for Census {
    fn default() -> Self {
        Census {
            open: AtomicUsize::new(0),
            best_victim: AtomicU64::new(u64::MAX),
        }
    }
}

impl Census {
    /// Channels in the map.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The map's best candidate to close for room, lower is better
    /// (`u64::MAX`: none as of its last look).
    pub(crate) fn best_victim(&self) -> u64 {
        self.best_victim.load(Ordering::Relaxed)
    }

    /// An eviction rank as one number that orders as the pair does: the
    /// class in the top byte, the time (milliseconds) below it.
    fn rank((class, at): (u8, u64)) -> u64 {
        (u64::from(class) << 56) | at.min((1 << 56) - 1)
    }
}

/// What admission at `connection_limit` did, for the operator.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admissions {
    /// Connections closed to make room, by eviction class (0: idle between
    /// requests, 1: still receiving a head).
    pub evicted: [u64; 2],
    /// New connections refused with a 503: nothing could be closed.
    pub refused: u64,
}

impl<E> Map<E> {
    /// Adds a newcomer under `connection_limit`: takes a place in the
    /// server-wide count, making room when there is none; refuses it
    /// when no room can be made.
    pub(super) fn admit_counted(
        &mut self,
        mut d: Box<dyn Dispatcher<E>>,
        now: Instant,
    ) -> Option<Token> {
        let fd = d.fd();
        if d.role() != Role::Channel {
            // Not counted against the limit.
            return self
                .add(d, now)
                .map_err(|e| {
                    crate::log_warning!("could not watch descriptor {fd}: {e}; closing it")
                })
                .ok();
        }
        if !self.reserve_place(now) {
            d.refuse();
            self.admissions.refused += 1;
            return None;
        }
        match self.add_counted(d, now) {
            Ok(token) => Some(token),
            Err(e) => {
                self.total.fetch_sub(1, Ordering::Relaxed);
                crate::log_warning!("could not watch descriptor {fd}: {e}; closing it");
                None
            }
        }
    }

    /// Takes one place in the server-wide count of channels if it is
    /// below `connection_limit`, else closes the most willing channel of
    /// this map and tries again; false when none may be closed.
    ///
    /// With several loops, each admits its own newcomers at once: a check
    /// of the count followed by an increment would let two loops both
    /// take the last place. The compare-and-swap makes taking a place one
    /// step, so the count never passes the limit; a place freed here by
    /// an eviction may be taken by another loop first, and then this one
    /// makes room again (or refuses). Relaxed: the count is the only
    /// thing these operations publish, and read-modify-writes of one
    /// atomic see every earlier one.
    fn reserve_place(&mut self, now: Instant) -> bool {
        let limit = self.connection_limit;
        loop {
            let taken = self
                .total
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < limit).then_some(n + 1)
                })
                .is_ok();
            if taken {
                return true;
            }
            if !self.make_room(now) {
                return false;
            }
        }
    }

    /// Closes the dispatcher most willing to go, for a new connection.
    /// Returns false when none may be closed.
    fn make_room(&mut self, now: Instant) -> bool {
        loop {
            if self.victims.is_empty() {
                if self.scanned {
                    return false;
                }
                self.scan_victims();
            }
            let Some((_, token)) = self.victims.pop() else {
                return false;
            };
            // The next best is what the other loops are told now (the
            // one taken is about to go, or no longer willing).
            let next = self.victims.last().map_or(u64::MAX, |v| v.0);
            self.census.best_victim.store(next, Ordering::Relaxed);
            // Still there and still willing (it may have received a
            // request since the scan)?
            let entry = self
                .slots
                .get_mut(token.slot())
                .filter(|s| s.generation == token.generation())
                .and_then(|s| s.entry.as_mut());
            let Some(e) = entry else { continue };
            if let Some((class, _)) = e.d.eviction_rank() {
                e.d.evicted();
                if let Some(n) = self.admissions.evicted.get_mut(usize::from(class.min(1))) {
                    *n += 1;
                }
                self.remove(token, now, Leave::Close);
                return true;
            }
        }
    }

    /// Finds the best candidates to close: one pass over the map, keeping
    /// the `VICTIMS_PER_SCAN` lowest ranks (so a burst of new connections
    /// costs one scan, not one per connection).
    fn scan_victims(&mut self) {
        const VICTIMS_PER_SCAN: usize = 256;
        self.scanned = true;
        let mut ranked: Vec<((u8, u64), Token)> = self
            .slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| {
                let e = s.entry.as_mut()?;
                let rank = e.d.eviction_rank()?;
                Some((rank, Token::new(i as u32, s.generation)))
            })
            .collect();
        if ranked.len() > VICTIMS_PER_SCAN {
            ranked.select_nth_unstable_by_key(VICTIMS_PER_SCAN - 1, |r| r.0);
            ranked.truncate(VICTIMS_PER_SCAN);
        }
        // Best (lowest rank) last, for `pop`.
        ranked.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
        let best = ranked.last().map_or(u64::MAX, |r| Census::rank(r.0));
        self.census.best_victim.store(best, Ordering::Relaxed);
        self.victims.clear();
        self.victims
            .extend(ranked.into_iter().map(|(r, t)| (Census::rank(r), t)));
    }

    /// Sets `connection_limit`.
    pub(crate) fn set_connection_limit(&mut self, limit: usize) {
        self.connection_limit = limit;
    }

    /// Joins this (still empty) map to others: `total` counts the channels
    /// of all of them for `connection_limit`, and `census` is what this one
    /// tells the others.
    pub(crate) fn share(&mut self, total: Arc<AtomicUsize>, census: Arc<Census>) {
        debug_assert_eq!(self.channels, 0);
        self.total = total;
        self.census = census;
    }

    /// Whether the server is at `connection_limit` (all maps together).
    pub(crate) fn at_limit(&self) -> bool {
        self.total.load(Ordering::Relaxed) >= self.connection_limit
    }

    /// Looks for the best candidates to close again and tells the other
    /// loops (its [`Census`]): for a loop that accepts nothing itself, at
    /// the limit, so that the loop that accepts can send a new connection
    /// where room can be made.
    pub(crate) fn publish_victims(&mut self) {
        self.scan_victims();
    }

    /// Registers dispatchers that came from another thread (connections
    /// another loop accepted), as [`Cx::admit`] does for a handler's:
    /// under `connection_limit`, by making room, or refused. `stopping`: a
    /// graceful stop began here already ([`Map::begin_shutdown`]), so the
    /// newcomer is told too.
    ///
    /// A batch of them looks for candidates to close at most once more
    /// (as a round does).
    pub(crate) fn admit_all(
        &mut self,
        batch: impl IntoIterator<Item = Box<dyn Dispatcher<E>>>,
        now: Instant,
        stopping: bool,
    ) {
        self.scanned = false;
        for d in batch {
            self.admit_one(d, now, stopping);
        }
        // What registering them lent (wake-ups) is taken as after a
        // handler.
        self.absorb(now);
    }

    fn admit_one(&mut self, d: Box<dyn Dispatcher<E>>, now: Instant, stopping: bool) {
        let Some(token) = self.admit_counted(d, now) else {
            return;
        };
        if stopping {
            let entry = self
                .slots
                .get_mut(token.slot())
                .and_then(|s| s.entry.as_mut());
            if entry.is_some_and(|e| e.d.begin_shutdown()) {
                self.enqueue(token);
            }
        }
    }

    /// What admission did since the last call.
    pub(crate) fn take_admissions(&mut self) -> Admissions {
        std::mem::take(&mut self.admissions)
    }
}
