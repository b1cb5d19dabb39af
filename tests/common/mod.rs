//! Shared helpers for the integration tests: a server on a free loopback
//! port, and a raw-socket HTTP client that reads responses exactly as
//! waitress's functional tests do (Content-Length, chunked, or to EOF).
//!
//! Every read has a timeout, so a test that would hang fails instead.

#![allow(dead_code)]

pub mod child;
pub mod external;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use maitred::{Adjustments, App, ServerHandle};

/// How long any single read may wait.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server; stopped (gracefully) when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    thread: Option<JoinHandle<Result<(), maitred::Error>>>,
}

impl TestServer {
    /// Stops the server and waits for `run` to return.
    pub fn stop(mut self) -> Result<(), maitred::Error> {
        self.handle.shutdown();
        self.thread.take().unwrap().join().unwrap()
    }

    /// A new connection to the server.
    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.handle.shutdown();
            let _ = t.join();
        }
    }
}

thread_local! {
    /// `io_threads` for the servers [`adj`] sets up on this thread (see
    /// [`with_io_threads`]).
    static IO_THREADS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f` with [`adj`] giving servers `n` I/O threads (the
/// `two_loops` variant of [`backend_tests!`]); `MAITRED_TEST_IO_THREADS`
/// sets it for every test of a run.
pub fn with_io_threads<R>(n: usize, f: impl FnOnce() -> R) -> R {
    let before = IO_THREADS.with(|c| c.replace(n));
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            IO_THREADS.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(before);
    f()
}

/// The I/O threads tests on this thread run their servers with.
pub fn io_threads() -> usize {
    match IO_THREADS.with(|c| c.get()) {
        0 => std::env::var("MAITRED_TEST_IO_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        n => n,
    }
}

/// Settings for a test server on 127.0.0.1 with a free port, with the poll
/// backend when `poll` is true (and the I/O threads of [`io_threads`]).
pub fn adj(poll: bool) -> Adjustments {
    let mut a = Adjustments::default()
        .listen(&["127.0.0.1:0"])
        .asyncore_use_poll(poll);
    // Tests stop their servers; don't wait long for stuck workers.
    a.shutdown_timeout = 5;
    a.io_threads = io_threads();
    a
}

/// Starts `app` with `adj` on a background thread.
pub fn start<A: App>(app: A, adj: Adjustments) -> TestServer {
    start_on(std::thread::Builder::new(), app, adj)
}

/// Like [`start`], with the I/O loop (`Server::run`) on a thread named
/// `name`, which `/proc/self/task/*/comm` shows (so at most 15 bytes): for
/// tests that measure that thread (see [`thread_cpu_ticks`]).
pub fn start_named<A: App>(name: &str, app: A, adj: Adjustments) -> TestServer {
    assert!(name.len() <= 15, "a thread name the kernel keeps whole");
    start_on(std::thread::Builder::new().name(name.into()), app, adj)
}

fn start_on<A: App>(thread: std::thread::Builder, app: A, adj: Adjustments) -> TestServer {
    let server = maitred::create_server(app, adj).expect("create_server");
    let addr = server.local_addr().expect("a TCP listener");
    let handle = server.handle();
    let thread = thread
        .spawn(move || server.run())
        .expect("spawning the server's thread");
    TestServer {
        addr,
        handle,
        thread: Some(thread),
    }
}

/// A running server on a unix socket only (in a temporary directory of
/// its own); stopped when dropped.
pub struct UnixServer {
    pub path: std::path::PathBuf,
    pub handle: ServerHandle,
    thread: Option<JoinHandle<Result<(), maitred::Error>>>,
    _dir: tempfile::TempDir,
}

/// Starts `app` with `adj` listening on a unix socket only (`adj` names no
/// `listen`; the socket's path is set here).
pub fn start_unix<A: App>(app: A, adj: Adjustments) -> UnixServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("s.sock");
    let mut adj = adj.unix_socket(path.to_str().expect("a utf-8 path"));
    adj.shutdown_timeout = 5;
    let server = maitred::create_server(app, adj).expect("create_server");
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.run());
    UnixServer {
        path,
        handle,
        thread: Some(thread),
        _dir: dir,
    }
}

impl UnixServer {
    /// Stops the server and waits for `run` to return.
    pub fn stop(mut self) -> Result<(), maitred::Error> {
        self.handle.shutdown();
        self.thread.take().unwrap().join().unwrap()
    }

    /// Sends `bytes` on a new connection and returns all the server sends
    /// until it closes (so the request should say `Connection: close`).
    pub fn exchange(&self, bytes: &[u8]) -> Vec<u8> {
        let mut s = std::os::unix::net::UnixStream::connect(&self.path).expect("connect");
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        s.write_all(bytes).expect("send");
        let mut out = Vec::new();
        match s.read_to_end(&mut out) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("reading from the unix socket: {e}"),
        }
        out
    }
}

impl Drop for UnixServer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.handle.shutdown();
            let _ = t.join();
        }
    }
}

/// The CPU time (user + system, in clock ticks: `utime` and `stime`, fields
/// 14 and 15 of `/proc/self/task/TID/stat`) the thread of this process
/// named `name` has used so far; `None` when there is no such thread.
pub fn thread_cpu_ticks(name: &str) -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim_end_matches('\n') != name {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        // The name in parentheses may hold spaces: count fields after it.
        let after = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Field 3 (state) is fields[0] here, so field N is fields[N - 3].
        let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
        let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
        return Some(utime + stime);
    }
    None
}

/// Clock ticks a second (`sysconf(_SC_CLK_TCK)`), for [`thread_cpu_ticks`].
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(100)
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    s
}

/// Whether this machine lets a socket bind to `ip` (Linux routes all of
/// 127.0.0.0/8 to the loopback; other systems may have 127.0.0.1 only).
pub fn can_bind(ip: &str) -> bool {
    TcpListener::bind((ip, 0)).is_ok()
}

/// A connection to `addr` (IPv4) from `source` (port chosen by the
/// kernel), with the timeouts of [`connect`]: a client at another loopback
/// address (127.0.0.2, ...) than the 127.0.0.1 every other test connects
/// from. `std` cannot bind a socket before connecting it, so this is
/// `socket`, `bind` and `connect` from libc.
pub fn connect_from(source: Ipv4Addr, addr: SocketAddr) -> io::Result<TcpStream> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let SocketAddr::V4(to) = addr else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "IPv4 only"));
    };
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        // SAFETY: sockaddr_in is plain old data; all zeroes is valid.
        ..unsafe { std::mem::zeroed() }
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // Close-on-exec, so that a proxy another test starts meanwhile does
    // not inherit the connection (macOS has no SOCK_CLOEXEC: fcntl after).
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let kind = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let kind = libc::SOCK_STREAM;
    // SAFETY: socket has no memory-safety preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, kind, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        // SAFETY: fcntl on a descriptor we own, with an int argument.
        if unsafe { libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let (from, to) = (sockaddr(source, 0), sockaddr(*to.ip(), to.port()));
    let fail = |step: &str| {
        let e = io::Error::last_os_error();
        io::Error::new(e.kind(), format!("{step} from {source}: {e}"))
    };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: `from` is a live sockaddr_in of `len` bytes for the call;
    // `raw` is an open socket.
    if unsafe { libc::bind(raw, (&from as *const libc::sockaddr_in).cast(), len) } != 0 {
        return Err(fail("bind"));
    }
    // SAFETY: as for bind; a blocking connect on loopback.
    if unsafe { libc::connect(raw, (&to as *const libc::sockaddr_in).cast(), len) } != 0 {
        return Err(fail("connect"));
    }
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    s.set_write_timeout(Some(READ_TIMEOUT))?;
    Ok(s)
}

/// A response as read off the wire.
#[derive(Debug, Clone)]
pub struct Resp {
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// Names lower-cased, values as sent, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The raw bytes of the head.
    pub raw_head: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.headers.iter().map(|(n, _)| n.clone()).collect();
        v.sort();
        v
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads responses from one connection, keeping bytes read past the end of
/// one response for the next.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn new(stream: TcpStream) -> Client {
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn connect(addr: SocketAddr) -> Client {
        Client::new(connect(addr))
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends, tolerating a connection the server already closed.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 65536];
        let n = self.stream.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
        }
    }

    /// Exactly `n` raw bytes (buffered ones first).
    pub fn read_exact_n(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed with {} of {} body bytes",
                        self.buf.len(),
                        n
                    ),
                ));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn read_to_eof(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? > 0 {}
        Ok(std::mem::take(&mut self.buf))
    }

    /// Reads one response head (for interim responses like 100 Continue).
    pub fn read_head(&mut self) -> io::Result<Resp> {
        let status_line = self.read_line()?;
        let mut raw_head = status_line.clone();
        raw_head.extend_from_slice(b"\r\n");
        let line = String::from_utf8_lossy(&status_line).into_owned();
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        let status = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {line:?}"),
            )
        })?;
        let reason = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let l = self.read_line()?;
            raw_head.extend_from_slice(&l);
            raw_head.extend_from_slice(b"\r\n");
            if l.is_empty() {
                break;
            }
            let l = String::from_utf8_lossy(&l).into_owned();
            let (n, v) = l.split_once(": ").ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad header {l:?}"))
            })?;
            headers.push((n.to_ascii_lowercase(), v.to_string()));
        }
        Ok(Resp {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            raw_head,
        })
    }

    /// Reads one response: body by Content-Length, chunked, or to EOF (as
    /// waitress's `read_http`). `head_request` means no body follows.
    pub fn read_response_to(&mut self, head_request: bool) -> io::Result<Resp> {
        let mut r = self.read_head()?;
        let no_body =
            head_request || r.status == 204 || r.status == 304 || (100..200).contains(&r.status);
        if no_body {
            return Ok(r);
        }
        if let Some(cl) = r.header("content-length") {
            let n: usize = cl
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad CL"))?;
            r.body = self.read_exact_n(n)?;
        } else if r
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            let mut body = Vec::new();
            loop {
                let size_line = self.read_line()?;
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&size_line)
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim(),
                    16,
                )
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
                if size == 0 {
                    // Trailers, then the blank line.
                    while !self.read_line()?.is_empty() {}
                    break;
                }
                body.extend_from_slice(&self.read_exact_n(size)?);
                let crlf = self.read_exact_n(2)?;
                if crlf != b"\r\n" {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "chunk not terminated",
                    ));
                }
            }
            r.body = body;
        } else {
            r.body = self.read_to_eof()?;
        }
        Ok(r)
    }

    pub fn read_response(&mut self) -> io::Result<Resp> {
        self.read_response_to(false)
    }

    /// Sends `req` and reads the response.
    pub fn roundtrip(&mut self, req: &[u8]) -> Resp {
        self.send(req);
        self.read_response().expect("response")
    }

    /// The raw bytes the server sends until it closes.
    pub fn read_all(&mut self) -> Vec<u8> {
        while let Ok(n) = self.fill() {
            if n == 0 {
                break;
            }
        }
        std::mem::take(&mut self.buf)
    }

    /// True when the server closed the connection (EOF or reset) with no
    /// more bytes; panics if bytes arrive or nothing happens in time.
    pub fn assert_closed(&mut self) {
        if !self.buf.is_empty() {
            panic!(
                "unexpected bytes before close: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
        let mut tmp = [0u8; 1024];
        match self.stream.read(&mut tmp) {
            Ok(0) => {}
            Ok(n) => panic!(
                "expected the connection to be closed, got {:?}",
                String::from_utf8_lossy(&tmp[..n])
            ),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected the connection to be closed: {e}"),
        }
    }

    /// Like waitress's `send_check_error` + `read_http` raising
    /// ConnectionClosed: sending may fail, then reading finds the
    /// connection closed.
    pub fn assert_closed_after_send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
        self.assert_closed();
    }

    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// One request on a fresh connection; returns the response.
pub fn request(addr: SocketAddr, raw: &[u8]) -> Resp {
    let mut c = Client::connect(addr);
    c.roundtrip(raw)
}

/// A gate an application waits on until the test opens it (20 s at most).
#[derive(Clone, Default)]
pub struct Gate(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    pub fn wait(&self) {
        let (m, cv) = &*self.0;
        let mut open = m.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !*open && Instant::now() < deadline {
            open = cv.wait_timeout(open, Duration::from_millis(100)).unwrap().0;
        }
    }

    pub fn open(&self) {
        let (m, cv) = &*self.0;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
}

/// The log records of this test process, captured with a sink (installed
/// on first use; it is process-wide), as `LEVEL:target:message`.
pub fn logs() -> &'static std::sync::Mutex<Vec<String>> {
    static LOGS: std::sync::OnceLock<std::sync::Mutex<Vec<String>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        maitred::logging::set_sink(|level, target, message| {
            if let Some(l) = LOGS.get() {
                l.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("{}:{target}:{message}", level.name()));
            }
        });
        std::sync::Mutex::new(Vec::new())
    })
}

/// The captured records ([`logs`]) containing `needle`.
pub fn logged(needle: &str) -> Vec<String> {
    logs()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|l| l.contains(needle))
        .cloned()
        .collect()
}

/// Waits until `cond` holds (checking every millisecond), or panics after
/// `limit`. For conditions no event announces.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Defines each test three times: `<name>::default_backend` (epoll or
/// kqueue), `<name>::poll_backend` (poll(2)), and `<name>::two_loops`
/// (the default backend with `io_threads=2`, through [`adj`]).
#[macro_export]
macro_rules! backend_tests {
    ($( $(#[$m:meta])* fn $name:ident($poll:ident: bool) $body:block )*) => {
        $(
            mod $name {
                $(#[$m])*
                #[test]
                fn default_backend() {
                    super::$name(false)
                }
                $(#[$m])*
                #[test]
                fn poll_backend() {
                    super::$name(true)
                }
                $(#[$m])*
                #[test]
                fn two_loops() {
                    $crate::common::with_io_threads(2, || super::$name(false))
                }
            }
            fn $name($poll: bool) $body
        )*
    };
}
