//! A connection's home: the I/O loop it lives in, and what that loop
//! shares with the other threads (`io_threads`).
//!
//! Each loop has its own dispatcher map, poller and trigger; everything in
//! [`Home`] is what other threads need of it:
//!
//! * its [`Notifier`], through which a worker wakes the loop that owns the
//!   connection it served (a [`Link`](crate::link::Link) holds its home);
//! * its inbox of connections the accepting loop handed it ([`Home::hand`]);
//! * its [`Census`] (how many connections it holds, how willing the most
//!   willing of them is to be closed for room), which the accepting loop
//!   reads to choose where a new connection goes;
//! * its count of connections under a receive deadline (only it touches
//!   that one; it is here because its connections' channels count
//!   themselves in and out).
//!
//! # The hand-off of an accepted connection
//!
//! The accepting loop pushes the connection into the inbox under its
//! mutex, counts it in `arriving` (`SeqCst`), then wakes the home loop's
//! trigger (a `SeqCst` swap). The home loop, after resetting its trigger
//! in a round (a `SeqCst` store), reads `arriving` (`SeqCst`) and only
//! when it is not zero takes the inbox under the mutex (so a round costs
//! no lock when nothing was handed); it registers what it took, and only
//! then subtracts it from `arriving` (so that the accepting loop never
//! sees a connection in neither count). The interleavings:
//!
//! * The wake comes before the home loop's reset: the reset consumes it,
//!   but the count and the push came before the wake, so the read after
//!   the reset sees the count and the take sees the connection.
//! * The wake comes after the reset: it finds the trigger re-armed and
//!   writes, so the loop runs another round and takes it then.
//! * The two overlap: the loop's store-then-read and the acceptor's
//!   count-then-swap are the two halves of Dekker's pattern, all four
//!   `SeqCst`, so at least one side sees the other: the loop reads the
//!   count (and takes the connection now), or the swap reads the cleared
//!   flag and writes (and the loop takes it next round).
//! * A wake coalesced with an earlier one still pending (no write): that
//!   pending wake's reset has not happened yet, so the read after it sees
//!   the count.
//!
//! A count read as non-zero whose connection another round took already
//! only costs a lock of an empty inbox.
//!
//! No connection waits in an inbox for longer than a round of its loop,
//! and none is lost when the server stops: the accepting loop stops
//! accepting before it tells the others to drain (in its own order, between
//! its rounds), and a loop drains its inbox after it saw the drain begin
//! (the mutex orders both), so nothing is pushed after its last take.
//!
//! Thread: any (the accepting loop hands, workers notify); the home loop
//! takes.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::dispatcher::{Admissions, Census};
use crate::request::ConnEnviron;
use crate::trigger::Notifier;

/// A connection the accepting loop took from a listener, for its home loop
/// to register.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) sock: OwnedFd,
    pub(crate) origin: ConnEnviron,
    /// The peer is a trusted proxy that begins with a PROXY protocol header.
    pub(crate) proxied: bool,
}

/// One I/O loop, as the other threads see it.
#[derive(Debug)]
pub(crate) struct Home {
    /// Which loop (0 accepts; its thread is the one that runs the server).
    pub(crate) index: usize,
    /// How workers (and the accepting loop) wake this loop.
    pub(crate) notifier: Arc<Notifier>,
    /// Connections receiving a request under a deadline
    /// (`request_head_timeout`, `request_body_timeout`) or lingering after
    /// an answer: the loop sweeps for deadlines only while there are some.
    /// Only this loop's thread touches it.
    pub(crate) receive_clocks: AtomicUsize,
    /// What this loop's map tells the accepting loop.
    pub(crate) census: Arc<Census>,
    /// Connections handed to this loop and not registered yet.
    inbox: Mutex<Vec<Accepted>>,
    /// How many connections are in the inbox or being registered (see the
    /// module docs).
    arriving: AtomicUsize,
    /// What admission at `connection_limit` did in this loop, added up by
    /// the loop between rounds and reported by the first (evicted idle,
    /// evicted slow head, refused).
    admissions: [AtomicU64; 3],
}

impl Home {
    pub(crate) fn new(index: usize, notifier: Arc<Notifier>) -> Home {
        Home {
            index,
            notifier,
            receive_clocks: AtomicUsize::new(0),
            census: Arc::new(Census::default()),
            inbox: Mutex::new(Vec::new()),
            arriving: AtomicUsize::new(0),
            admissions: Default::default(),
        }
    }

    /// Hands this loop a connection to register, and wakes it.
    pub(crate) fn hand(&self, a: Accepted) {
        crate::lock(&self.inbox).push(a);
        self.arriving.fetch_add(1, Ordering::SeqCst);
        self.notifier.wake();
    }

    /// Takes what was handed (after the trigger's reset in this round), if
    /// anything was; the caller registers it, then calls
    /// [`Home::arrived`] with the count.
    pub(crate) fn take_inbox(&self, into: &mut Vec<Accepted>) {
        if self.arriving.load(Ordering::SeqCst) > 0 {
            into.append(&mut crate::lock(&self.inbox));
        }
    }

    /// `n` connections from the inbox are registered (or refused).
    pub(crate) fn arrived(&self, n: usize) {
        self.arriving.fetch_sub(n, Ordering::SeqCst);
    }

    /// Connections this loop holds or is about to: what the accepting loop
    /// balances.
    pub(crate) fn load(&self) -> usize {
        self.census.open() + self.arriving.load(Ordering::Relaxed)
    }

    /// Adds what this loop's admission did.
    pub(crate) fn add_admissions(&self, a: Admissions) {
        let [idle, head, refused] = &self.admissions;
        idle.fetch_add(a.evicted[0], Ordering::Relaxed);
        head.fetch_add(a.evicted[1], Ordering::Relaxed);
        refused.fetch_add(a.refused, Ordering::Relaxed);
    }

    /// Takes what this loop's admission did since the last call.
    pub(crate) fn take_admissions(&self) -> Admissions {
        let [idle, head, refused] = &self.admissions;
        Admissions {
            evicted: [
                idle.swap(0, Ordering::Relaxed),
                head.swap(0, Ordering::Relaxed),
            ],
            refused: refused.swap(0, Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn accepted() -> Accepted {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
        Accepted {
            sock: OwnedFd::from(a),
            origin: ConnEnviron {
                script_name: Arc::from(""),
                remote_addr: Arc::from("localhost"),
                remote_port: None,
                server_name: Arc::from("localhost"),
                server_port: None,
                url_scheme: "http".into(),
                ident: Arc::from(""),
            },
            proxied: false,
        }
    }

    /// The hand-off raced: a thread hands connections one at a time,
    /// each only once the previous one was taken (so each has one wake-up
    /// of its own, which nothing later would make up for), while this one
    /// plays the home loop as fast as it can (look at the trigger without
    /// waiting, reset it, take the inbox), so that its resets land
    /// anywhere in a hand-off. A lost wake-up shows as a connection left in
    /// the inbox with the trigger quiet.
    #[test]
    fn no_handed_connection_waits_for_a_wake_that_never_comes() {
        use std::sync::atomic::AtomicBool;
        const N: usize = 20_000;
        let home = Arc::new(Home::new(1, Arc::new(Notifier::new().expect("a trigger"))));
        let taken = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (h, t, d) = (Arc::clone(&home), Arc::clone(&taken), Arc::clone(&done));
        let producer = std::thread::spawn(move || {
            let mut a = Some(accepted());
            for i in 0..N {
                h.hand(a.take().unwrap_or_else(accepted));
                // The next one only once this one was taken.
                let began = Instant::now();
                while t.load(Ordering::SeqCst) <= i {
                    if d.load(Ordering::SeqCst) || began.elapsed() > Duration::from_secs(10) {
                        return;
                    }
                    std::hint::spin_loop();
                }
            }
        });
        let fd = home.notifier.trigger().fd();
        let mut got = Vec::new();
        let mut quiet_since = Instant::now();
        while taken.load(Ordering::SeqCst) < N {
            if crate::sys::wait_readable(fd, Duration::ZERO).unwrap_or(false) {
                home.notifier.trigger().reset(true);
                home.take_inbox(&mut got);
                if !got.is_empty() {
                    home.arrived(got.len());
                    taken.fetch_add(got.len(), Ordering::SeqCst);
                    got.clear();
                }
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() > Duration::from_secs(2) {
                done.store(true, Ordering::SeqCst);
                panic!(
                    "a wake-up was lost: {} of {N} taken, {} arriving, the trigger quiet for 2 s",
                    taken.load(Ordering::SeqCst),
                    home.arriving.load(Ordering::SeqCst)
                );
            }
        }
        producer.join().expect("the producer");
        assert_eq!(home.load(), 0);
    }
}
