//! The kqueue backend (macOS and the BSDs).
//!
//! Every descriptor is registered once with an `EVFILT_READ` and an
//! `EVFILT_WRITE` filter, both `EV_CLEAR` (edge-triggered); the map caches
//! readiness, so no `kevent` change is made per request.
//!
//! Thread: the I/O thread only.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{Event, Interest, Poller, Token};
use crate::sys::syscall;

const MAX_EVENTS: usize = 1024;

pub(crate) struct Kqueue {
    fd: OwnedFd,
    buf: Vec<libc::kevent>,
}

impl std::fmt::Debug for Kqueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kqueue").field("fd", &self.fd).finish()
    }
}

fn kevent_for(fd: RawFd, filter: i32, flags: u32, token: Token) -> libc::kevent {
    // SAFETY: kevent is plain old data; all-zero is a valid value, and the
    // fields that matter are set below.
    let mut ev: libc::kevent = unsafe { mem::zeroed() };
    ev.ident = fd as _;
    ev.filter = filter as _;
    ev.flags = flags as _;
    ev.udata = token.as_u64() as usize as _;
    ev
}

// SAFETY: the only non-Send part of `Kqueue` is the raw `udata` pointer
// inside the `kevent` records of its event buffer. Those pointers are tokens
// (integers) stored by this module and never dereferenced, so moving the
// poller to another thread is sound.
unsafe impl Send for Kqueue {}

impl Kqueue {
    pub(crate) fn new() -> io::Result<Kqueue> {
        let fd = syscall!(kqueue())?;
        // SAFETY: kqueue just returned this new descriptor; we own it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        syscall!(fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC))?;
        Ok(Kqueue {
            fd,
            buf: Vec::with_capacity(MAX_EVENTS),
        })
    }

    /// Applies `changes`, checking each one's result (`EV_RECEIPT`).
    fn apply(&self, changes: &mut [libc::kevent], ignore_missing: bool) -> io::Result<()> {
        for c in changes.iter_mut() {
            c.flags = (c.flags as u32 | libc::EV_RECEIPT as u32) as _;
        }
        let n = changes.len() as libc::c_int;
        syscall!(kevent(
            self.fd.as_raw_fd(),
            changes.as_ptr(),
            n,
            changes.as_mut_ptr(),
            n,
            std::ptr::null()
        ))?;
        for c in changes.iter() {
            if (c.flags as u32) & (libc::EV_ERROR as u32) != 0 && c.data != 0 {
                let errno = c.data as i32;
                // EPIPE: the peer is gone already; the read filter reports
                // it. ENOENT: deleting a filter that was never added.
                if errno == libc::EPIPE || (ignore_missing && errno == libc::ENOENT) {
                    continue;
                }
                return Err(io::Error::from_raw_os_error(errno));
            }
        }
        Ok(())
    }
}

impl Poller for Kqueue {
    fn edge_triggered(&self) -> bool {
        true
    }

    fn register(&mut self, fd: RawFd, token: Token, _interest: Interest) -> io::Result<()> {
        let flags = (libc::EV_ADD | libc::EV_CLEAR) as u32;
        let mut changes = [
            kevent_for(fd, libc::EVFILT_READ as i32, flags, token),
            kevent_for(fd, libc::EVFILT_WRITE as i32, flags, token),
        ];
        self.apply(&mut changes, false)
    }

    fn reregister(&mut self, _fd: RawFd, _token: Token, _interest: Interest) -> io::Result<()> {
        // Both filters are installed at registration.
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        let flags = libc::EV_DELETE as u32;
        let mut changes = [
            kevent_for(fd, libc::EVFILT_READ as i32, flags, Token::new(0, 0)),
            kevent_for(fd, libc::EVFILT_WRITE as i32, flags, Token::new(0, 0)),
        ];
        self.apply(&mut changes, true)
    }

    fn forget(&mut self, _fd: RawFd) -> io::Result<()> {
        // Closing a descriptor removes its filters from every kqueue.
        Ok(())
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as _,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        self.buf.clear();
        let n = syscall!(kevent(
            self.fd.as_raw_fd(),
            std::ptr::null(),
            0,
            self.buf.as_mut_ptr(),
            MAX_EVENTS as libc::c_int,
            ts_ptr
        ))?;
        // SAFETY: kevent initialised the first `n` (<= MAX_EVENTS, the
        // buffer's capacity) entries.
        unsafe { self.buf.set_len(n as usize) };
        for ev in &self.buf {
            let filter = ev.filter as i32;
            let flags = ev.flags as u32;
            let error = flags & (libc::EV_ERROR as u32) != 0;
            let eof = flags & (libc::EV_EOF as u32) != 0;
            let readable = filter == libc::EVFILT_READ as i32;
            events.push(Event {
                token: Token::from_u64(ev.udata as usize as u64),
                readable,
                writable: filter == libc::EVFILT_WRITE as i32,
                closed: error,
                read_closed: readable && eof,
            });
        }
        Ok(())
    }
}
