//! The trigger: how worker threads wake the I/O thread (waitress's
//! `trigger.py`).
//!
//! Linux uses an `eventfd`; other systems a non-blocking pipe. A pull is
//! coalesced: while a wake is already pending (set, and not yet taken by the
//! loop), further pulls cost no system call at all, only an atomic swap.
//!
//! Together with the trigger, [`Notifier`] carries *what* to look at: the
//! tokens of channels whose state a worker changed. The loop takes them when
//! the trigger fires and re-evaluates only those channels, so a wake costs
//! O(woken channels), not O(all connections) as re-evaluating every
//! `readable()`/`writable()` predicate would.
//!
//! Thread: both: workers pull and notify; the I/O thread resets and takes.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::dispatcher::Token;

/// A coalescing wake-up descriptor.
#[derive(Debug)]
pub(crate) struct Trigger {
    /// The eventfd, or the read end of the pipe: what the poller watches.
    read: OwnedFd,
    /// The write end of the pipe (`None` for an eventfd).
    write: Option<OwnedFd>,
    /// A wake has been written and the loop has not taken it yet.
    pending: AtomicBool,
}

impl Trigger {
    /// A new trigger: an eventfd on Linux and Android, a pipe elsewhere.
    pub(crate) fn new() -> io::Result<Trigger> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let fd = crate::sys::syscall!(eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?;
            // SAFETY: eventfd just returned this new descriptor; we own it.
            let read = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            Ok(Trigger {
                read,
                write: None,
                pending: AtomicBool::new(false),
            })
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            Trigger::with_pipe()
        }
    }

    /// A trigger over a non-blocking pipe: the default where there is no
    /// eventfd, and constructible on Linux too so that the tests race the
    /// pipe variant there.
    #[cfg(any(test, not(any(target_os = "linux", target_os = "android"))))]
    pub(crate) fn with_pipe() -> io::Result<Trigger> {
        let mut fds = [0 as libc::c_int; 2];
        crate::sys::syscall!(pipe(fds.as_mut_ptr()))?;
        // SAFETY: pipe just returned these two new descriptors; we own
        // each exactly once.
        let (read, write) = unsafe {
            (
                <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[0]),
                <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[1]),
            )
        };
        crate::sys::set_nonblocking_cloexec(read.as_raw_fd())?;
        crate::sys::set_nonblocking_cloexec(write.as_raw_fd())?;
        Ok(Trigger {
            read,
            write: Some(write),
            pending: AtomicBool::new(false),
        })
    }

    /// The descriptor the poller watches for readability.
    pub(crate) fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// The descriptor a wake is written to (also used by the signal
    /// handler).
    pub(crate) fn wake_fd(&self) -> RawFd {
        match &self.write {
            Some(w) => w.as_raw_fd(),
            None => self.read.as_raw_fd(),
        }
    }

    /// Wakes the loop, unless a wake is already pending.
    ///
    /// `SeqCst` (not only `AcqRel`): a caller that announced its work in a
    /// `SeqCst` counter before pulling (`home.rs`'s `arriving`) relies on
    /// the loop, which reads that counter after `reset`'s `SeqCst` store,
    /// either seeing the count or this swap seeing `false` (and writing).
    pub(crate) fn pull(&self) {
        if self.pending.swap(true, Ordering::SeqCst) {
            return;
        }
        let one: u64 = 1;
        let fd = self.wake_fd();
        loop {
            // SAFETY: `one` is a live 8-byte value; `fd` is open for as long
            // as `self` lives.
            let r = unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
            if r >= 0 {
                return;
            }
            match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted => continue,
                // Full pipe or eventfd counter at its maximum: the
                // descriptor is readable already, so the loop will wake.
                _ => return,
            }
        }
    }

    /// Called by the loop when it is about to look at what the wake was
    /// for: empties the descriptor when `drain` is set (level-triggered
    /// pollers, and always for a pipe), then re-arms the coalescing flag.
    /// The caller takes the notified tokens *after* this returns.
    ///
    /// # Why no wake-up is lost
    ///
    /// The invariant: once `reset` and every `pull` in flight have
    /// returned, a set `pending` comes with a readable descriptor. A
    /// worker's `pull` (queue push, then `swap(true)`, then a write when
    /// the swap saw `false`) can land anywhere in `reset`:
    ///
    /// 1. *Before the drain.* Its swap sees `true` (the wake being handled)
    ///    and writes nothing, or it writes and the drain takes the byte.
    ///    Either way its token was pushed before the caller's `take`, which
    ///    comes after this function, so the token is taken now.
    /// 2. *Between the drain and the store.* Its swap sees `true` and
    ///    writes nothing; the token is taken now, as in 1, and the store
    ///    leaves `pending` clear with an empty descriptor: consistent.
    /// 3. *After the store.* Its swap sees `false` and it writes: `pending`
    ///    is set and the descriptor readable, so the loop wakes again (and
    ///    may find the token already taken in this round: a spare wake is
    ///    harmless).
    ///
    /// The old order (store, then drain) had a fourth case: a pull between
    /// the store and the drain set `pending` and wrote, and the drain
    /// swallowed its byte, leaving `pending` set with nothing to read, so
    /// every later pull was coalesced away and the loop never woke for a
    /// worker again (issue 13).
    ///
    /// Memory order: the store and the pull's swap are `SeqCst`;
    /// the token queue's mutex orders the push against the `take`. If the
    /// loop's `take` locked before a worker's push, then the store (before
    /// that `take`) happens-before the push and so before the worker's
    /// swap, which therefore sees `false` and writes (case 3).
    ///
    /// Without a drain (an eventfd watched edge-triggered) the descriptor
    /// is never emptied, so a set `pending` always has something to read;
    /// each write produces a new edge.
    pub(crate) fn reset(&self, drain: bool) {
        if drain || self.write.is_some() {
            let mut buf = [0u8; 256];
            loop {
                // SAFETY: `buf` is a live, exclusive buffer of 256 bytes.
                let r = unsafe {
                    libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                };
                if r <= 0 {
                    if r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    break;
                }
                if self.write.is_none() {
                    // One read empties an eventfd.
                    break;
                }
            }
        }
        self.pending.store(false, Ordering::SeqCst);
    }
}

/// The trigger plus the list of channels the workers want looked at.
#[derive(Debug)]
pub(crate) struct Notifier {
    trigger: Trigger,
    queue: Mutex<Vec<Token>>,
}

impl Notifier {
    pub(crate) fn new() -> io::Result<Notifier> {
        Ok(Notifier {
            trigger: Trigger::new()?,
            queue: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn trigger(&self) -> &Trigger {
        &self.trigger
    }

    /// Asks the loop to re-evaluate the dispatcher `token`, and wakes it.
    pub(crate) fn notify(&self, token: Token) {
        {
            let mut q = crate::lock(&self.queue);
            q.push(token);
        }
        self.trigger.pull();
    }

    /// Wakes the loop without naming a dispatcher (shutdown, settings).
    pub(crate) fn wake(&self) {
        self.trigger.pull();
    }

    /// Takes the pending tokens (after [`Trigger::reset`]).
    pub(crate) fn take(&self, into: &mut Vec<Token>) {
        let mut q = crate::lock(&self.queue);
        into.append(&mut q);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd, zero timeout.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        r == 1 && p.revents & libc::POLLIN != 0
    }

    #[test]
    fn pull_coalesces_and_reset_drains() {
        let t = Trigger::new().unwrap();
        assert!(!readable(t.fd()));
        t.pull();
        t.pull();
        t.pull();
        assert!(readable(t.fd()));
        t.reset(true);
        assert!(!readable(t.fd()));
        // After a reset, the next pull writes again.
        t.pull();
        assert!(readable(t.fd()));
        t.reset(true);
    }

    #[test]
    fn notifier_queues_tokens() {
        let n = Notifier::new().unwrap();
        n.notify(Token::new(3, 1));
        n.notify(Token::new(4, 2));
        n.trigger().reset(true);
        let mut v = Vec::new();
        n.take(&mut v);
        assert_eq!(v, vec![Token::new(3, 1), Token::new(4, 2)]);
    }

    /// Both variants: the eventfd (Linux) or the platform's default, and
    /// the pipe.
    type Make = fn() -> io::Result<Trigger>;
    fn variants() -> [(&'static str, Make); 2] {
        [("default", Trigger::new), ("pipe", Trigger::with_pipe)]
    }

    fn wait_readable(fd: RawFd, ms: i32) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        r == 1 && p.revents & libc::POLLIN != 0
    }

    /// The lost wake-up of issue 13, raced as the server runs it. A
    /// "worker" notifies `rounds` numbered tokens as fast as it can; the
    /// "loop" waits for the descriptor, resets (draining it, as the
    /// level-triggered backends and the pipe do), takes the tokens, and
    /// goes back to waiting, so that a pull lands in every part of
    /// `reset`. A pull that landed between clearing the flag and the drain
    /// used to leave the flag set with nothing to read: every later pull
    /// was coalesced away, and the loop waited forever.
    #[test]
    fn pulls_racing_resets_never_lose_a_wake_up() {
        const ROUNDS: u32 = 100_000;
        for (name, make) in variants() {
            let n = Notifier {
                trigger: make().unwrap(),
                queue: Mutex::new(Vec::new()),
            };
            // Set by the loop when it gives up, so the worker stops too.
            let stalled = AtomicBool::new(false);
            std::thread::scope(|s| {
                s.spawn(|| {
                    for i in 1..=ROUNDS {
                        if stalled.load(Ordering::Relaxed) {
                            return;
                        }
                        // Pull the moment the loop clears the flag: right
                        // inside `reset`, where the race is. (Bounded: a
                        // lost wake-up leaves the flag set for good.)
                        let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
                        let mut spins = 0u32;
                        while n.trigger().pending.load(Ordering::Relaxed)
                            && std::time::Instant::now() < until
                        {
                            spins += 1;
                            if spins % 128 == 0 {
                                std::thread::yield_now();
                            }
                            std::hint::spin_loop();
                        }
                        n.notify(Token::new(i, 0));
                    }
                });
                let mut taken = Vec::new();
                let mut last = 0;
                let mut resets = 0u64;
                while last < ROUNDS {
                    // Two seconds without a wake while tokens are still
                    // coming is a lost wake-up, not a slow machine: the
                    // worker pushes its next token in microseconds.
                    if !wait_readable(n.trigger().fd(), 2000) {
                        let pending = n.trigger().pending.load(Ordering::SeqCst);
                        stalled.store(true, Ordering::Relaxed);
                        panic!(
                            "{name}: lost wake-up after {resets} resets: token {last} of \
                             {ROUNDS} taken, pending={pending}, nothing to read"
                        );
                    }
                    n.trigger().reset(true);
                    resets += 1;
                    n.take(&mut taken);
                    for t in taken.drain(..) {
                        // Tokens come in order, each once.
                        assert_eq!(t.slot() as u32, last + 1, "{name}");
                        last += 1;
                    }
                }
                // Quiet now: a set flag must come with something to read.
                let pending = n.trigger().pending.load(Ordering::SeqCst);
                assert!(!pending || readable(n.trigger().fd()), "{name}");
            });
        }
    }
}
