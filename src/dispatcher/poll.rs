//! The poll(2) backend: portable and level-triggered, like wasyncore's
//! `poll2`. The map hands it each dispatcher's predicates as interest after
//! every evaluation; a descriptor with no interest stays in the set with no
//! events requested (so hang-ups and errors are still reported).
//!
//! Thread: the I/O thread only.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::{Event, Interest, Poller, Token};

#[derive(Debug, Default)]
pub(crate) struct PollPoller {
    fds: Vec<libc::pollfd>,
    tokens: Vec<Token>,
    index: HashMap<RawFd, usize>,
}

impl PollPoller {
    pub(crate) fn new() -> PollPoller {
        PollPoller::default()
    }
}

fn events_for(interest: Interest) -> libc::c_short {
    let mut ev = 0;
    if interest.read {
        ev |= libc::POLLIN | libc::POLLPRI;
    }
    if interest.write {
        ev |= libc::POLLOUT;
    }
    ev
}

impl Poller for PollPoller {
    fn edge_triggered(&self) -> bool {
        false
    }

    fn register(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        if self.index.contains_key(&fd) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "descriptor already registered",
            ));
        }
        self.index.insert(fd, self.fds.len());
        self.fds.push(libc::pollfd {
            fd,
            events: events_for(interest),
            revents: 0,
        });
        self.tokens.push(token);
        Ok(())
    }

    fn reregister(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        match self.index.get(&fd) {
            Some(&i) => {
                self.fds[i].events = events_for(interest);
                self.tokens[i] = token;
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "descriptor not registered",
            )),
        }
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        let Some(i) = self.index.remove(&fd) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "descriptor not registered",
            ));
        };
        self.fds.swap_remove(i);
        self.tokens.swap_remove(i);
        if let Some(moved) = self.fds.get(i) {
            self.index.insert(moved.fd, i);
        }
        Ok(())
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        let ms = super_timeout_ms(timeout);
        // SAFETY: `fds` is a live, exclusive array of `fds.len()` pollfds.
        let n = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(());
        }
        for (p, &token) in self.fds.iter_mut().zip(&self.tokens) {
            let r = p.revents;
            if r == 0 {
                continue;
            }
            p.revents = 0;
            events.push(Event {
                token,
                readable: r & (libc::POLLIN | libc::POLLPRI) != 0,
                writable: r & libc::POLLOUT != 0,
                closed: r & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
                // Level-triggered: an unread end of stream is reported again.
                read_closed: false,
            });
        }
        Ok(())
    }
}

fn super_timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn reports_by_interest_and_survives_removal() {
        let mut p = PollPoller::new();
        let (a, mut b) = UnixStream::pair().unwrap();
        let (c, _d) = UnixStream::pair().unwrap();
        p.register(a.as_raw_fd(), Token::new(0, 0), Interest::default())
            .unwrap();
        p.register(
            c.as_raw_fd(),
            Token::new(1, 0),
            Interest {
                read: false,
                write: true,
            },
        )
        .unwrap();
        b.write_all(b"x").unwrap();
        let mut ev = Vec::new();
        p.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        // `a` has data but no read interest; `c` is writable.
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].token, Token::new(1, 0));
        p.reregister(
            a.as_raw_fd(),
            Token::new(0, 0),
            Interest {
                read: true,
                write: false,
            },
        )
        .unwrap();
        p.deregister(c.as_raw_fd()).unwrap();
        ev.clear();
        p.wait(&mut ev, Some(Duration::ZERO)).unwrap();
        assert_eq!(ev.len(), 1);
        assert!(ev[0].readable);
        assert!(p.deregister(c.as_raw_fd()).is_err());
    }
}
