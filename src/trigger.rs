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
    /// A new trigger.
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
    pub(crate) fn pull(&self) {
        if self.pending.swap(true, Ordering::AcqRel) {
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
    /// for: re-arms the coalescing flag and, when `drain` is set, empties
    /// the descriptor (needed for level-triggered pollers and for pipes).
    ///
    /// The flag is cleared *before* the caller takes the notified tokens, so
    /// a pull that races with the loop is never lost: either its token is
    /// taken now, or its pull sees the flag clear and writes again.
    pub(crate) fn reset(&self, drain: bool) {
        self.pending.store(false, Ordering::SeqCst);
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
}
