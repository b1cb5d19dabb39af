//! Restarting without losing a request (issue 20): the handover on SIGUSR2
//! and through `ServerHandle::handover`, a failed one, its timeout, a unix
//! socket, the systemd way (a held socket and a restart), and the
//! `reuse_port` behaviour that makes the handover necessary.
//!
//! The servers are this test binary run again as the `serve` example
//! (role `serve`: `apps::main_with` with the arguments in
//! `MAITRED_TEST_ARGS`), so that a handover re-runs "the same executable
//! and arguments". The load is bounded: each client stops after
//! `LOAD_TIME` or `MAX_PER_CLIENT` requests. Every process a test starts,
//! directly or through a handover, is killed by pid when the test ends,
//! passed or not ([`Procs`]).
//!
//! The clients behave as a real HTTP/1.1 client should (RFC 9112 §9.3.1):
//! a request on a kept connection that the server closed before any byte
//! of the response came is retried once, on a new connection, and counted
//! as `retried`; a reset, a partial response, a timeout or a second close
//! is a failure.

mod common;

#[path = "../examples/apps/mod.rs"]
#[allow(dead_code)]
mod apps;

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::child;

/// How long the load runs.
const LOAD_TIME: Duration = Duration::from_secs(10);
/// Requests one client sends at most.
const MAX_PER_CLIENT: u64 = 20_000;
/// How long any wait for a process or a log line may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// The tests that start servers run one at a time (two shared cores).
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// The start of every test that starts servers: in a child started as
/// role `serve`, runs the `serve` example with the newline-separated
/// arguments of `MAITRED_TEST_ARGS` and exits with its code; in the test
/// itself, takes the lock of the heavy tests and a guard for the
/// processes the test will start.
fn begin(test: &str) -> (MutexGuard<'static, ()>, Procs) {
    if child::role().as_deref() == Some("serve") {
        serve_role();
    }
    (heavy(), Procs::new(test))
}

fn serve_role() -> ! {
    let args = std::env::var("MAITRED_TEST_ARGS").unwrap();
    let code = apps::main_with(args.split('\n'), &mut io::stdout(), &mut io::stderr());
    std::process::exit(code);
}

// ------------------------------------------------------------------
// Processes
// ------------------------------------------------------------------

/// Every process a test started; those still running when it is dropped
/// (the test passed or panicked) get SIGKILL, by pid, after a check (on
/// Linux) that the pid still runs this test (it was not reused).
struct Procs {
    test: String,
    /// Each pid, and an argument its command line has.
    pids: Vec<(u32, String)>,
}

impl Procs {
    fn new(test: &str) -> Procs {
        Procs {
            test: test.to_string(),
            pids: Vec::new(),
        }
    }

    /// A process that runs this test.
    fn add(&mut self, pid: u32) {
        let test = self.test.clone();
        self.add_running(pid, &test);
    }

    /// A process whose command line has the argument `arg`.
    fn add_running(&mut self, pid: u32, arg: &str) {
        if !self.pids.iter().any(|(p, _)| *p == pid) {
            self.pids.push((pid, arg.to_string()));
        }
    }
}

/// Whether `pid` runs (and, on Linux, has `test` among its arguments:
/// a process that runs that test of this binary).
fn runs_test(pid: u32, test: &str) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            // A zombie has an empty command line: nothing to kill.
            cmdline.split(|&b| b == 0).any(|a| a == test.as_bytes())
        }
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (pid, arg) in &self.pids {
            let pid = *pid;
            if runs_test(pid, arg) {
                child::signal(pid, libc::SIGKILL);
            }
        }
    }
}

/// Waits until process `pid` (not a child of this one) is gone.
fn wait_gone(pid: u32, test: &str, limit: Duration) {
    let t = Instant::now();
    while runs_test(pid, test) {
        assert!(
            t.elapsed() < limit,
            "process {pid} still runs after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (polling) for `child` to exit, at most `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            t.elapsed() < limit,
            "process {} did not exit within {limit:?}",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every line a server (and the processes it started, which share its
/// standard error) logged, collected by a thread.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn follow(child: &mut Child) -> Log {
        let log = Log::default();
        let lines = Arc::clone(&log.0);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                match line {
                    Ok(l) => lines.lock().unwrap().push(l),
                    Err(_) => break,
                }
            }
        });
        log
    }

    /// The first line with `needle` (after the `skip` first such lines),
    /// waiting for it up to `limit`.
    fn wait_for_nth(&self, needle: &str, skip: usize, limit: Duration) -> String {
        let t = Instant::now();
        loop {
            if let Some(l) = self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(needle))
                .nth(skip)
            {
                return l.clone();
            }
            assert!(
                t.elapsed() < limit,
                "no line with {needle:?} within {limit:?}; the log:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_for(&self, needle: &str, limit: Duration) -> String {
        self.wait_for_nth(needle, 0, limit)
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// A datagram socket at `path` (a stand-in for systemd's `NOTIFY_SOCKET`),
/// its reads waiting 100 ms at most.
fn datagram_socket(path: &Path) -> UnixDatagram {
    let sock = UnixDatagram::bind(path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    sock
}

/// Reads datagrams from `sock` (its read timeout set short) until one
/// satisfies `want`, for up to [`PATIENCE`]; returns it.
fn wait_datagram(sock: &UnixDatagram, what: &str, want: impl Fn(&str) -> bool) -> String {
    let t = Instant::now();
    let mut got = Vec::new();
    while t.elapsed() < PATIENCE {
        let mut buf = [0u8; 512];
        if let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            if want(&m) {
                return m;
            }
            got.push(m);
        }
    }
    panic!("no datagram with {what} within {PATIENCE:?}; got {got:?}");
}

/// No failed request and no reset, or the tally in the message.
fn assert_clean(t: &Tally, what: &str) {
    eprintln!("{}", t.report(what));
    assert_eq!(t.failed, 0, "{}", t.report(what));
    assert_eq!(t.resets, 0, "{}", t.report(what));
    assert_eq!(t.answered, t.requests, "{}", t.report(what));
}

/// A `serve` example started by the test.
struct Serve {
    child: Child,
    log: Log,
}

impl Serve {
    /// Starts this test binary (or `exe`) as role `serve` with `args`.
    fn start(test: &str, exe: Option<&Path>, args: &[&str], procs: &mut Procs) -> Serve {
        Serve::start_with(test, exe, args, procs, |_| {})
    }

    fn start_with(
        test: &str,
        exe: Option<&Path>,
        args: &[&str],
        procs: &mut Procs,
        more: impl FnOnce(&mut Command),
    ) -> Serve {
        let mut cmd = match exe {
            Some(exe) => {
                let mut c = Command::new(exe);
                c.args([test, "--exact", "--nocapture", "--test-threads=1"])
                    .env(child::ROLE_VAR, "serve");
                c
            }
            None => child::command(test, "serve", None),
        };
        cmd.env("MAITRED_TEST_ARGS", args.join("\n"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        more(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        procs.add(child.id());
        let log = Log::follow(&mut child);
        Serve { child, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, and a clean exit within [`PATIENCE`].
    fn stop(&mut self) {
        child::signal(self.pid(), libc::SIGTERM);
        let status = wait_exit(&mut self.child, PATIENCE);
        assert!(status.success(), "{status}\n{}", self.log.text());
    }

    /// The TCP address of its first `Serving on` line.
    fn tcp_addr(&self) -> SocketAddr {
        let line = self.log.wait_for("Serving on http://", PATIENCE);
        line.rsplit("http://")
            .next()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// The process the first handover started, from its log line.
    fn successor(&self) -> u32 {
        let line = self.log.wait_for("Handover: started process ", PATIENCE);
        line.split("started process ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {line:?}"))
    }
}

/// This test binary, hard-linked (or copied) into a directory of its own,
/// to be replaced as a deploy replaces a program.
fn own_copy_of_this_binary() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let exe = std::env::current_exe().unwrap();
    let copy = dir.path().join("app");
    if std::fs::hard_link(&exe, &copy).is_err() {
        std::fs::copy(&exe, &copy).unwrap();
    }
    (dir, copy)
}

/// Replaces `path` with a shell script (a new file renamed over it, as a
/// deploy does: the running program keeps its own file).
fn deploy_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

// ------------------------------------------------------------------
// The clients
// ------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

fn connect(target: &Target) -> io::Result<Box<dyn Stream>> {
    let limit = Some(Duration::from_secs(15));
    Ok(match target {
        Target::Tcp(a) => {
            let s = TcpStream::connect(a)?;
            s.set_read_timeout(limit)?;
            s.set_write_timeout(limit)?;
            s.set_nodelay(true)?;
            Box::new(s)
        }
        Target::Unix(p) => {
            let s = UnixStream::connect(p)?;
            s.set_read_timeout(limit)?;
            s.set_write_timeout(limit)?;
            Box::new(s)
        }
    })
}

/// What a client counted.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    answered: u64,
    /// Closed before any byte of the response: sent again on a new
    /// connection.
    retried: u64,
    failed: u64,
    resets: u64,
    by_pid: BTreeMap<u32, u64>,
    errors: Vec<String>,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.requests += o.requests;
        self.answered += o.answered;
        self.retried += o.retried;
        self.failed += o.failed;
        self.resets += o.resets;
        for (p, n) in o.by_pid {
            *self.by_pid.entry(p).or_default() += n;
        }
        self.errors.extend(o.errors.into_iter().take(5));
    }

    fn report(&self, what: &str) -> String {
        format!(
            "{what}: {} requests, {} answered, {} retried (closed before any response byte), {} failed, {} resets; answered by pid: {:?}; first errors: {:?}",
            self.requests, self.answered, self.retried, self.failed, self.resets, self.by_pid, self.errors
        )
    }
}

enum Failure {
    /// End of file before any byte of the response.
    ClosedEarly,
    Reset(String),
    Other(String),
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// One `GET /` on `conn`: the `X-Pid` of the response, and whether the
/// server closes the connection after it.
fn exchange(conn: &mut dyn Stream, buf: &mut Vec<u8>) -> Result<(u32, bool), Failure> {
    let fail = |e: io::Error, what: &str| {
        if is_reset(&e) {
            Failure::Reset(format!("{what}: {e}"))
        } else {
            Failure::Other(format!("{what}: {e}"))
        }
    };
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .map_err(|e| fail(e, "send"))?;
    buf.clear();
    let mut tmp = [0u8; 4096];
    let mut need: Option<usize> = None;
    loop {
        if need.is_none() {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or_else(|| Failure::Other(format!("no Content-Length in {head:?}")))?;
                if !head.starts_with("http/1.1 200 ") {
                    return Err(Failure::Other(format!("not a 200: {head:?}")));
                }
                need = Some(end + 4 + len);
            }
        }
        if let Some(n) = need {
            if buf.len() >= n {
                let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                let pid = head
                    .lines()
                    .find_map(|l| l.strip_prefix("x-pid: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let close = head.contains("\r\nconnection: close\r\n");
                return Ok((pid, close));
            }
        }
        match conn.read(&mut tmp) {
            Ok(0) if buf.is_empty() => return Err(Failure::ClosedEarly),
            Ok(0) => {
                return Err(Failure::Other(format!(
                    "closed after {} bytes of the response",
                    buf.len()
                )))
            }
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) => return Err(fail(e, "receive")),
        }
    }
}

/// One keep-alive client: requests back to back until `until` (or
/// `MAX_PER_CLIENT`).
fn client(target: Target, until: Instant) -> Tally {
    let mut t = Tally::default();
    let mut conn: Option<Box<dyn Stream>> = None;
    let mut buf = Vec::new();
    while Instant::now() < until && t.requests < MAX_PER_CLIENT {
        t.requests += 1;
        let mut retried = false;
        loop {
            let c = match &mut conn {
                Some(c) => c,
                None => match connect(&target) {
                    Ok(c) => conn.insert(c),
                    Err(e) => {
                        t.failed += 1;
                        t.resets += u64::from(is_reset(&e));
                        t.errors.push(format!("connect: {e}"));
                        break;
                    }
                },
            };
            match exchange(&mut **c, &mut buf) {
                Ok((pid, close)) => {
                    t.answered += 1;
                    *t.by_pid.entry(pid).or_default() += 1;
                    if close {
                        conn = None;
                    }
                    break;
                }
                Err(Failure::ClosedEarly) if !retried => {
                    // RFC 9112 §9.3.1: an idempotent request whose
                    // connection closed before any response may be sent
                    // again, once.
                    retried = true;
                    t.retried += 1;
                    conn = None;
                }
                Err(f) => {
                    t.failed += 1;
                    let msg = match f {
                        Failure::ClosedEarly => "closed early twice".to_string(),
                        Failure::Reset(m) => {
                            t.resets += 1;
                            m
                        }
                        Failure::Other(m) => m,
                    };
                    if t.errors.len() < 5 {
                        t.errors.push(msg);
                    }
                    conn = None;
                    break;
                }
            }
        }
    }
    t
}

/// `n` clients until `until`, on threads; join with [`Load::finish`].
struct Load(Vec<std::thread::JoinHandle<Tally>>);

impl Load {
    fn start(target: &Target, n: usize, until: Instant) -> Load {
        Load(
            (0..n)
                .map(|_| {
                    let t = target.clone();
                    std::thread::spawn(move || client(t, until))
                })
                .collect(),
        )
    }

    fn finish(self) -> Tally {
        let mut all = Tally::default();
        for h in self.0 {
            all.add(h.join().unwrap());
        }
        all
    }
}

/// One request on a new connection: the pid that answered.
fn pid_of_one(target: &Target) -> u32 {
    let mut c = connect(target).unwrap();
    match exchange(&mut *c, &mut Vec::new()) {
        Ok((pid, _)) => pid,
        Err(_) => panic!("a single request to {target:?} failed"),
    }
}

// ------------------------------------------------------------------
// SIGUSR2
// ------------------------------------------------------------------

/// 50 keep-alive clients for 10 s, SIGUSR2 in the middle: every request
/// answered, none reset, by the old process and then the new one; the old
/// one exits by itself after its drain.
#[test]
fn a_handover_under_load_loses_no_request() {
    handover_under_load(
        "a_handover_under_load_loses_no_request",
        &["--listen=127.0.0.1:0", "--pid-header", "--threads=4"],
    );
}

/// The same with two I/O threads in both processes: the old one's loops
/// drain their connections and the new one's serve.
#[test]
fn a_handover_under_load_with_two_io_threads_loses_no_request() {
    handover_under_load(
        "a_handover_under_load_with_two_io_threads_loses_no_request",
        &[
            "--listen=127.0.0.1:0",
            "--pid-header",
            "--threads=4",
            "--io-threads=2",
        ],
    );
}

fn handover_under_load(name: &'static str, args: &[&str]) {
    let (_g, mut procs) = begin(name);
    let mut old = Serve::start(name, None, args, &mut procs);
    let target = Target::Tcp(old.tcp_addr());
    let until = Instant::now() + LOAD_TIME;
    let load = Load::start(&target, 50, until);
    std::thread::sleep(LOAD_TIME / 2);
    let signalled = Instant::now();
    child::signal(old.pid(), libc::SIGUSR2);
    let new = old.successor();
    procs.add(new);
    let line = old.log.wait_for("Handover: process", PATIENCE);
    assert!(
        line.contains(&format!("process {new} is serving")),
        "{line}"
    );
    let handed = signalled.elapsed();
    let status = wait_exit(&mut old.child, PATIENCE);
    let t = load.finish();
    assert_clean(&t, "handover under load");
    eprintln!("the handover took {handed:?} from SIGUSR2 to READY=1");
    assert!(
        status.success(),
        "the old process: {status}\n{}",
        old.log.text()
    );
    let by_old = t.by_pid.get(&old.pid()).copied().unwrap_or(0);
    let by_new = t.by_pid.get(&new).copied().unwrap_or(0);
    assert!(by_old > 0 && by_new > 0, "{}", t.report("pids"));
    assert_eq!(by_old + by_new, t.answered, "{}", t.report("pids"));
    assert_eq!(pid_of_one(&target), new);
    assert!(old.log.text().contains("Handed over: no longer accepting"));
    child::signal(new, libc::SIGTERM);
    wait_gone(new, name, PATIENCE);
}

/// A deploy that left a broken program: the new process exits at once,
/// then cannot even be started; the old one serves every request.
#[test]
fn a_failed_handover_leaves_the_old_process_serving() {
    const NAME: &str = "a_failed_handover_leaves_the_old_process_serving";
    let (_g, mut procs) = begin(NAME);
    let (_dir, exe) = own_copy_of_this_binary();
    let mut old = Serve::start(
        NAME,
        Some(&exe),
        &["--listen=127.0.0.1:0", "--pid-header", "--threads=4"],
        &mut procs,
    );
    let target = Target::Tcp(old.tcp_addr());
    let until = Instant::now() + LOAD_TIME;
    let load = Load::start(&target, 50, until);
    std::thread::sleep(LOAD_TIME / 4);
    // A new program that fails as it starts.
    deploy_script(&exe, "echo 'broken build' >&2\nexit 3");
    child::signal(old.pid(), libc::SIGUSR2);
    let line = old.log.wait_for("Handover failed", PATIENCE);
    assert!(
        line.contains("exited before it was serving (exit status: 3)")
            && line.contains("this process keeps serving"),
        "{line}"
    );
    std::thread::sleep(LOAD_TIME / 4);
    // No program at all.
    std::fs::remove_file(&exe).unwrap();
    child::signal(old.pid(), libc::SIGUSR2);
    let line = old.log.wait_for_nth("Handover failed", 1, PATIENCE);
    assert!(
        line.contains("could not start") && line.contains("No such file or directory"),
        "{line}"
    );
    let t = load.finish();
    assert_clean(&t, "failed handovers under load");
    assert_eq!(t.retried, 0, "nothing was closed: {}", t.report("retried"));
    assert_eq!(t.by_pid.keys().copied().collect::<Vec<_>>(), [old.pid()]);
    assert!(old.log.text().contains("broken build"));
    assert_eq!(pid_of_one(&target), old.pid());
    old.stop();
}

/// `handover_timeout`: a new program that never says it is ready is
/// stopped when the time is up (SIGTERM), a second SIGUSR2 meanwhile is
/// ignored, and the old process answers throughout.
#[test]
fn handover_timeout_stops_a_new_process_that_never_gets_ready() {
    const NAME: &str = "handover_timeout_stops_a_new_process_that_never_gets_ready";
    let (_g, mut procs) = begin(NAME);
    let (_dir, exe) = own_copy_of_this_binary();
    let mut old = Serve::start(
        NAME,
        Some(&exe),
        &[
            "--listen=127.0.0.1:0",
            "--pid-header",
            "--handover-timeout=2",
        ],
        &mut procs,
    );
    let target = Target::Tcp(old.tcp_addr());
    // Starts, takes the sockets, and never says READY=1.
    deploy_script(&exe, "exec sleep 30");
    let signalled = Instant::now();
    child::signal(old.pid(), libc::SIGUSR2);
    let sleeper = old.successor();
    procs.add_running(sleeper, "sleep");
    child::signal(old.pid(), libc::SIGUSR2);
    let line = old.log.wait_for("a handover (to process", PATIENCE);
    assert!(line.contains("already in progress; ignored"), "{line}");
    assert_eq!(pid_of_one(&target), old.pid(), "served while waiting");
    let line = old.log.wait_for("Handover failed", PATIENCE);
    let waited = signalled.elapsed();
    assert!(
        line.contains(&format!(
            "process {sleeper} did not say it was serving (READY=1) within 2 s (handover_timeout); stopped it with SIGTERM"
        )),
        "{line}"
    );
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    assert!(!runs_test(sleeper, "sleep"), "it was stopped");
    for _ in 0..5 {
        assert_eq!(pid_of_one(&target), old.pid());
    }
    old.stop();
}

/// A unix socket is handed over too (its file stays, and the new process
/// removes it when it stops); a service manager's `NOTIFY_SOCKET` hears
/// `READY=1` from the old process, `MAINPID=` of the new one, and
/// `STOPPING=1` from the new one at its stop.
#[test]
fn a_unix_socket_and_the_service_manager_follow_the_handover() {
    const NAME: &str = "a_unix_socket_and_the_service_manager_follow_the_handover";
    let (_g, mut procs) = begin(NAME);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("app.sock");
    let manager_path = dir.path().join("manager");
    let manager = datagram_socket(&manager_path);
    let unix_arg = format!("--unix-socket={}", sock.display());
    let mut old = Serve::start_with(NAME, None, &[&unix_arg, "--pid-header"], &mut procs, |c| {
        c.env("NOTIFY_SOCKET", &manager_path);
    });
    let heard = |want: &str| wait_datagram(&manager, want, |m| m.contains(want));
    let m = heard("READY=1");
    assert!(m.contains(&format!("MAINPID={}", old.pid())), "{m}");
    let target = Target::Unix(sock.clone());
    assert_eq!(pid_of_one(&target), old.pid());
    let until = Instant::now() + Duration::from_secs(4);
    let load = Load::start(&target, 8, until);
    std::thread::sleep(Duration::from_secs(1));
    child::signal(old.pid(), libc::SIGUSR2);
    let new = old.successor();
    procs.add(new);
    let m = heard("MAINPID=");
    assert_eq!(m.trim(), format!("MAINPID={new}"));
    assert!(wait_exit(&mut old.child, PATIENCE).success());
    let t = load.finish();
    assert_clean(&t, "unix socket handover");
    assert!(
        sock.exists(),
        "the old process left the file to the new one"
    );
    assert_eq!(pid_of_one(&target), new);
    child::signal(new, libc::SIGTERM);
    heard("STOPPING=1");
    wait_gone(new, NAME, PATIENCE);
    assert!(!sock.exists(), "the new process removed its socket's file");
}

// ------------------------------------------------------------------
// ServerHandle::handover
// ------------------------------------------------------------------

/// An embedding program hands over with `ServerHandle::handover`, naming
/// the program: here this test binary as the `serve` example, with a
/// `--listen` it could not bind (the old server holds another port): it
/// serves the socket it inherits.
#[test]
fn an_embedder_hands_over_with_its_server_handle() {
    const NAME: &str = "an_embedder_hands_over_with_its_server_handle";
    let (_g, mut procs) = begin(NAME);
    let me = std::process::id().to_string();
    let server = maitred::create_server(
        move |_req: &mut maitred::Request| {
            maitred::Response::text("embedded").with_header("X-Pid", me.clone())
        },
        common::adj(false),
    )
    .unwrap();
    let target = Target::Tcp(server.local_addr().unwrap());
    let handle = server.handle();
    let running = std::thread::spawn(move || server.run());
    assert_eq!(pid_of_one(&target), std::process::id());
    let program = maitred::Program::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(child::ROLE_VAR, "serve")
        .env("MAITRED_TEST_ARGS", "--listen=127.0.0.1:1\n--pid-header");
    let until = Instant::now() + Duration::from_secs(3);
    let load = Load::start(&target, 8, until);
    std::thread::sleep(Duration::from_millis(500));
    let new = handle.handover(&program).unwrap();
    procs.add(new);
    // The old server drains and `run` returns.
    running.join().unwrap().unwrap();
    let t = load.finish();
    assert_clean(&t, "embedded handover");
    assert!(t.by_pid.contains_key(&new), "{}", t.report("embedded"));
    assert_eq!(pid_of_one(&target), new);
    let err = handle.handover(&program).unwrap_err();
    assert!(err.to_string().contains("this server is stopping"), "{err}");
    child::signal(new, libc::SIGTERM);
    wait_gone(new, NAME, PATIENCE);
}

// ------------------------------------------------------------------
// Why a handover: reuse_port and a closed listener
// ------------------------------------------------------------------

/// A listening TCP socket with `SO_REUSEPORT` on 127.0.0.1:`port`.
#[cfg(target_os = "linux")]
fn reuse_port_listener(port: u16) -> TcpListener {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns, with
    // a live, correctly sized sockaddr_in; it is wrapped in a TcpListener
    // (its only owner) at the end.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let one: libc::c_int = 1;
        let r = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(r, 0);
        let mut sin: libc::sockaddr_in = std::mem::zeroed();
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_port = port.to_be();
        sin.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let r = libc::bind(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "{}", io::Error::last_os_error());
        assert_eq!(libc::listen(fd, 128), 0);
        TcpListener::from_raw_fd(fd)
    }
}

/// Connects `n` clients (the kernel completes each handshake and queues
/// the connection on a listener), each sending a request; then closes
/// `doomed` without accepting from it and answers whatever `survivor`
/// holds. Returns (answered, reset).
#[cfg(target_os = "linux")]
fn queue_then_close(
    addr: SocketAddr,
    n: usize,
    doomed: TcpListener,
    survivor: TcpListener,
) -> (usize, usize) {
    let clients: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    drop(doomed);
    survivor.set_nonblocking(true).unwrap();
    let server = std::thread::spawn(move || {
        let t = Instant::now();
        let mut quiet = Instant::now();
        while quiet.elapsed() < Duration::from_millis(500) && t.elapsed() < Duration::from_secs(10)
        {
            match survivor.accept() {
                Ok((mut s, _)) => {
                    quiet = Instant::now();
                    s.set_nonblocking(false).unwrap();
                    let mut buf = [0u8; 256];
                    let _ = s.read(&mut buf);
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                    let _ = s.shutdown(std::net::Shutdown::Write);
                    let _ = s.read(&mut buf);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    let (mut answered, mut reset) = (0, 0);
    for mut c in clients {
        let mut got = Vec::new();
        match c.read_to_end(&mut got) {
            Ok(_) if got.ends_with(b"ok") => answered += 1,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => reset += 1,
            other => panic!("neither answered nor reset: {other:?} {got:?}"),
        }
    }
    server.join().unwrap();
    (answered, reset)
}

/// The "known Linux behaviour": two processes on one port with
/// `reuse_port` each have a socket and an accept queue of their own, and
/// when one closes its socket, the connections waiting in its queue are
/// reset (unless `net.ipv4.tcp_migrate_req` is 1, Linux 5.14 and later,
/// which moves them to the other socket). A handover passes the *same*
/// socket instead (a duplicate descriptor): closing the old process's
/// descriptor leaves the queue to the new one, and nothing is reset.
#[cfg(target_os = "linux")]
#[test]
fn closing_a_reuse_port_listener_resets_its_queue_but_a_shared_socket_does_not() {
    let _g = heavy();
    const N: usize = 64;
    let a = reuse_port_listener(0);
    let addr = a.local_addr().unwrap();
    let b = reuse_port_listener(addr.port());
    let (answered, reset) = queue_then_close(addr, N, a, b);
    let migrate = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req")
        .is_ok_and(|v| v.trim() == "1");
    eprintln!(
        "reuse_port, one of two listeners closed: {answered} of {N} answered, {reset} reset (tcp_migrate_req {})",
        if migrate { "on" } else { "off" }
    );
    assert_eq!(answered + reset, N);
    if migrate {
        assert_eq!(reset, 0);
    } else {
        assert!(
            reset > 0 && answered > 0,
            "{answered} answered, {reset} reset"
        );
    }
    // The handover's way: one socket, two descriptors.
    let shared = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = shared.local_addr().unwrap();
    let other = shared.try_clone().unwrap();
    let (answered, reset) = queue_then_close(addr, N, shared, other);
    eprintln!(
        "one socket, one of two descriptors closed: {answered} of {N} answered, {reset} reset"
    );
    assert_eq!((answered, reset), (N, 0));
}

// ------------------------------------------------------------------
// The systemd way
// ------------------------------------------------------------------

/// Plays systemd with a socket unit: this test holds the listening socket
/// and starts the `serve` example on it (`LISTEN_FDS=1`, `LISTEN_PID` set
/// by a shell that then `exec`s the server, descriptor 3), with
/// `NOTIFY_SOCKET` as `Type=notify`; under load it stops the server
/// (SIGTERM, `systemctl restart`'s first half), waits until it exited,
/// and starts a new one on the same socket. The connections made in
/// between wait in the socket's backlog: no request fails.
#[test]
fn a_restart_on_a_held_socket_loses_no_request() {
    const NAME: &str = "a_restart_on_a_held_socket_loses_no_request";
    let (_g, mut procs) = begin(NAME);
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify");
    let notify = datagram_socket(&notify_path);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = Target::Tcp(listener.local_addr().unwrap());
    let fd = listener.as_raw_fd();
    let start = |procs: &mut Procs| -> Serve {
        let mut cmd = child::command(NAME, "serve", Some("export LISTEN_PID=$$ LISTEN_FDS=1"));
        cmd.env(
            "MAITRED_TEST_ARGS",
            "--systemd-socket-activation\n--pid-header\n--threads=4",
        )
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(Stdio::null());
        // SAFETY: between fork and exec only dup2 and fcntl, which are
        // async-signal-safe, on the listener this test holds open.
        unsafe {
            cmd.pre_exec(move || {
                if fd == 3 {
                    let flags = libc::fcntl(3, libc::F_GETFD);
                    libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                } else if libc::dup2(fd, 3) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        procs.add(child.id());
        let log = Log::follow(&mut child);
        Serve { child, log }
    };
    let ready = |pid: u32| {
        let main = format!("MAINPID={pid}");
        wait_datagram(&notify, "READY=1", |m| {
            m.contains("READY=1") && m.contains(&main)
        });
    };
    let mut first = start(&mut procs);
    ready(first.pid());
    let until = Instant::now() + Duration::from_secs(8);
    let load = Load::start(&target, 20, until);
    std::thread::sleep(Duration::from_secs(2));
    child::signal(first.pid(), libc::SIGTERM);
    assert!(
        wait_exit(&mut first.child, PATIENCE).success(),
        "{}",
        first.log.text()
    );
    let stopped = Instant::now();
    // Nobody serves now: the clients' connections wait in the backlog.
    std::thread::sleep(Duration::from_millis(500));
    let mut second = start(&mut procs);
    ready(second.pid());
    let gap = stopped.elapsed();
    let t = load.finish();
    assert_clean(&t, "systemd-style restart");
    eprintln!("no process served for {gap:?}");
    assert!(t.by_pid.contains_key(&first.pid()) && t.by_pid.contains_key(&second.pid()));
    assert!(first.log.text().contains("Shutting down"));
    second.stop();
}
