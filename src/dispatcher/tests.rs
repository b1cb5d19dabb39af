//! The dispatcher map over socket pairs: registration, tokens, readiness
//! and the poller backends.

use super::*;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A dispatcher over one end of a socket pair that records what it saw.
#[derive(Debug)]
struct Echo {
    sock: UnixStream,
    got: Arc<Mutex<Vec<u8>>>,
    out: Vec<u8>,
    want_read: Arc<AtomicBool>,
    closed: Arc<Mutex<bool>>,
    blocked: Arc<Mutex<u32>>,
}

impl Dispatcher<()> for Echo {
    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
    fn role(&self) -> Role {
        Role::Channel
    }
    fn readable(&mut self, _cx: &mut Cx<'_, ()>) -> bool {
        let r = self.want_read.load(Ordering::SeqCst);
        if !r {
            *self.blocked.lock().unwrap() += 1;
        }
        r
    }
    fn writable(&mut self, _cx: &mut Cx<'_, ()>) -> bool {
        !self.out.is_empty()
    }
    fn handle_read(&mut self, _cx: &mut Cx<'_, ()>) -> Progress {
        let mut buf = [0u8; 4];
        match self.sock.read(&mut buf) {
            Ok(0) => Progress::Close,
            Ok(n) => {
                self.got.lock().unwrap().extend_from_slice(&buf[..n]);
                self.out.extend_from_slice(&buf[..n]);
                if n < buf.len() {
                    Progress::Drained
                } else {
                    Progress::More
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Progress::Drained,
            Err(_) => Progress::Close,
        }
    }
    fn handle_write(&mut self, _cx: &mut Cx<'_, ()>) -> Progress {
        match self.sock.write(&self.out) {
            Ok(n) => {
                self.out.drain(..n);
                Progress::Done
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Progress::Drained,
            Err(_) => Progress::Close,
        }
    }
    fn handle_close(&mut self, _cx: &mut Cx<'_, ()>) {
        *self.closed.lock().unwrap() = true;
    }
}

fn echo(sock: UnixStream) -> Box<Echo> {
    Box::new(Echo {
        sock,
        got: Arc::default(),
        out: Vec::new(),
        want_read: Arc::new(AtomicBool::new(true)),
        closed: Arc::default(),
        blocked: Arc::default(),
    })
}

fn backends() -> Vec<Backend> {
    vec![Backend::Default, Backend::Poll]
}

#[test]
fn echoes_in_pieces_and_closes_on_eof() {
    for backend in backends() {
        let mut map = Map::new(new_poller(backend).unwrap(), ());
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(Mutex::new(false));
        let blocked = Arc::new(Mutex::new(0));
        map.add(
            Box::new(Echo {
                sock: a,
                got: got.clone(),
                out: Vec::new(),
                want_read: Arc::new(AtomicBool::new(true)),
                closed: closed.clone(),
                blocked,
            }),
            Instant::now(),
        )
        .unwrap();
        b.write_all(b"hello, world").unwrap();
        let mut echoed = Vec::new();
        b.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        for _ in 0..200 {
            map.poll(Duration::from_millis(10), Instant::now()).unwrap();
            let mut buf = [0u8; 64];
            if let Ok(n) = b.read(&mut buf) {
                echoed.extend_from_slice(&buf[..n]);
            }
            if echoed.len() == 12 {
                break;
            }
        }
        assert_eq!(echoed, b"hello, world", "{backend:?}");
        assert_eq!(&*got.lock().unwrap(), b"hello, world");
        assert_eq!(map.channels(), 1);
        drop(b);
        for _ in 0..100 {
            map.poll(Duration::from_millis(10), Instant::now()).unwrap();
            if *closed.lock().unwrap() {
                break;
            }
        }
        assert!(*closed.lock().unwrap(), "{backend:?}");
        assert_eq!(map.len(), 0);
        assert_eq!(map.channels(), 0);
    }
}

#[test]
fn not_readable_reports_read_blocked_and_wake_resumes() {
    for backend in backends() {
        let mut map = Map::new(new_poller(backend).unwrap(), ());
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let blocked = Arc::new(Mutex::new(0));
        let gate = Arc::new(AtomicBool::new(false));
        let token = map
            .add(
                Box::new(Echo {
                    sock: a,
                    got: got.clone(),
                    out: Vec::new(),
                    want_read: gate.clone(),
                    closed: Arc::default(),
                    blocked: blocked.clone(),
                }),
                Instant::now(),
            )
            .unwrap();
        b.write_all(b"abc").unwrap();
        for _ in 0..3 {
            map.poll(Duration::from_millis(10), Instant::now()).unwrap();
        }
        assert!(got.lock().unwrap().is_empty(), "{backend:?}");
        assert!(*blocked.lock().unwrap() >= 1, "{backend:?}");
        // Make it readable and wake it, as a worker would: the data that
        // arrived while it was busy is read without a new event.
        gate.store(true, Ordering::SeqCst);
        map.wake(token);
        for _ in 0..20 {
            map.poll(Duration::from_millis(10), Instant::now()).unwrap();
            if got.lock().unwrap().len() == 3 {
                break;
            }
        }
        assert_eq!(&*got.lock().unwrap(), b"abc", "{backend:?}");
    }
}

#[test]
fn stale_tokens_are_ignored() {
    let mut map = Map::new(new_poller(Backend::Poll).unwrap(), ());
    let (a, _b) = UnixStream::pair().unwrap();
    let t = map.add(echo(a), Instant::now()).unwrap();
    map.remove(t, Instant::now(), Leave::Close);
    // Same slot, new generation: the old token must not reach it.
    let (c, _d) = UnixStream::pair().unwrap();
    let t2 = map.add(echo(c), Instant::now()).unwrap();
    assert_eq!(t.slot(), t2.slot());
    assert_ne!(t.generation(), t2.generation());
    map.wake(t);
    assert!(map.pending.is_empty());
    map.wake(t2);
    assert_eq!(map.pending, vec![t2]);
}

/// A dispatcher that leaves the loop with its socket open once it has
/// read a `D`, handing the socket to `out`.
#[derive(Debug)]
struct Detacher {
    sock: Option<UnixStream>,
    leave: bool,
    out: std::sync::mpsc::Sender<UnixStream>,
}

impl Dispatcher<()> for Detacher {
    fn fd(&self) -> RawFd {
        self.sock.as_ref().map_or(-1, |s| s.as_raw_fd())
    }
    fn role(&self) -> Role {
        Role::Channel
    }
    fn readable(&mut self, _cx: &mut Cx<'_, ()>) -> bool {
        !self.leave
    }
    fn writable(&mut self, _cx: &mut Cx<'_, ()>) -> bool {
        false
    }
    fn handle_read(&mut self, _cx: &mut Cx<'_, ()>) -> Progress {
        let mut buf = [0u8; 16];
        let Some(sock) = self.sock.as_mut() else {
            return Progress::Close;
        };
        match sock.read(&mut buf) {
            Ok(0) => Progress::Close,
            Ok(n) => {
                self.leave |= buf[..n].contains(&b'D');
                Progress::Drained
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Progress::Drained,
            Err(_) => Progress::Close,
        }
    }
    fn handle_write(&mut self, _cx: &mut Cx<'_, ()>) -> Progress {
        Progress::Done
    }
    fn handle_close(&mut self, _cx: &mut Cx<'_, ()>) {}
    fn detaching(&self) -> bool {
        self.leave
    }
    fn closes_on_drop(&self) -> bool {
        true
    }
    fn handle_detach(mut self: Box<Self>, _cx: &mut Cx<'_, ()>) {
        if let Some(sock) = self.sock.take() {
            let _ = self.out.send(sock);
        }
    }
}

#[test]
fn a_detached_socket_stays_open_and_is_no_longer_watched() {
    for backend in backends() {
        let mut map = Map::new(new_poller(backend).unwrap(), ());
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        map.add(
            Box::new(Detacher {
                sock: Some(a),
                leave: false,
                out: tx,
            }),
            Instant::now(),
        )
        .unwrap();
        b.write_all(b"xD").unwrap();
        let mut detached = None;
        for _ in 0..100 {
            map.poll(Duration::from_millis(10), Instant::now()).unwrap();
            if let Ok(s) = rx.try_recv() {
                detached = Some(s);
                break;
            }
        }
        let mut a = detached.unwrap_or_else(|| panic!("{backend:?}: not detached"));
        assert_eq!(map.len(), 0, "{backend:?}");
        // Still open, both ways.
        b.write_all(b"after").unwrap();
        let mut got = [0u8; 5];
        a.set_nonblocking(false).unwrap();
        a.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"after");
        a.write_all(b"back").unwrap();
        let mut back = [0u8; 4];
        b.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"back");
        // Really deregistered: the same poller takes the descriptor again
        // (epoll answers EEXIST, poll "already registered", for one that
        // is still watched).
        a.set_nonblocking(true).unwrap();
        map.add(echo(a), Instant::now())
            .unwrap_or_else(|e| panic!("{backend:?}: still registered: {e}"));
        assert_eq!(map.len(), 1);
    }
}
