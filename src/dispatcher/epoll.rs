//! The epoll backend (Linux).
//!
//! Every descriptor is registered once, edge-triggered, for reading,
//! writing and peer hang-up (`EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET`);
//! the map caches readiness, so no `epoll_ctl` is made per request.
//!
//! Thread: the I/O thread only.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{Event, Interest, Poller, Token};
use crate::sys::syscall;

const MAX_EVENTS: usize = 1024;

pub(crate) struct Epoll {
    fd: OwnedFd,
    buf: Vec<libc::epoll_event>,
}

impl std::fmt::Debug for Epoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoll").field("fd", &self.fd).finish()
    }
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        // SAFETY: epoll_create1 just returned this new descriptor; we own it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll {
            fd,
            buf: Vec::with_capacity(MAX_EVENTS),
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: Token) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: token.as_u64(),
        };
        syscall!(epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev))?;
        Ok(())
    }
}

/// Milliseconds for `epoll_wait`, rounded up so that a sub-millisecond
/// timeout does not become a busy poll.
pub(super) fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

impl Poller for Epoll {
    fn edge_triggered(&self) -> bool {
        true
    }

    fn register(&mut self, fd: RawFd, token: Token, _interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token)
    }

    fn reregister(&mut self, _fd: RawFd, _token: Token, _interest: Interest) -> io::Result<()> {
        // Both directions are watched from registration on.
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        // The socket stays open (it leaves the loop): without this, its
        // events would keep coming to this set.
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        syscall!(epoll_ctl(
            self.fd.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            fd,
            &mut ev
        ))?;
        Ok(())
    }

    fn forget(&mut self, _fd: RawFd) -> io::Result<()> {
        // The descriptor is closed right after this, and closing the last
        // descriptor of an open file removes it from every epoll set
        // (epoll(7)): an EPOLL_CTL_DEL would be a system call per
        // connection for nothing. (A socket whose descriptor outlives its
        // dispatcher is deregistered instead; a late event for a removed
        // dispatcher carries a stale token, which the map ignores.)
        Ok(())
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        self.buf.clear();
        let n = syscall!(epoll_wait(
            self.fd.as_raw_fd(),
            self.buf.as_mut_ptr(),
            MAX_EVENTS as libc::c_int,
            timeout_ms(timeout)
        ))?;
        // SAFETY: epoll_wait initialised the first `n` (<= MAX_EVENTS, the
        // buffer's capacity) entries.
        unsafe { self.buf.set_len(n as usize) };
        for ev in &self.buf {
            let bits = ev.events as libc::c_int;
            events.push(Event {
                token: Token::from_u64(ev.u64),
                readable: bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) != 0,
                writable: bits & libc::EPOLLOUT != 0,
                closed: bits & (libc::EPOLLHUP | libc::EPOLLERR) != 0,
                read_closed: bits & libc::EPOLLRDHUP != 0,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_rounds_up() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(10))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(1500))), 1500);
    }
}
