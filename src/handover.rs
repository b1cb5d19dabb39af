//! Restarting without losing a request: handing the listening sockets over
//! to a new process (`SIGUSR2` under [`serve`](crate::serve),
//! [`ServerHandle::handover`](crate::ServerHandle::handover) for an embedding program), in the manner of
//! nginx's and gunicorn's `USR2`.
//!
//! # The protocol
//!
//! 1. The old process (this one, serving) creates a readiness socket: a
//!    unix datagram socket in a new private directory (`0700`), with
//!    `SO_PASSCRED` on Linux so that each datagram carries its sender's
//!    process id.
//! 2. It forks; the child moves duplicates of every listening socket to
//!    descriptors 3, 4, ... (clearing close-on-exec), writes its own
//!    process id into the `LISTEN_PID=` slot of an environment built
//!    before the fork, and runs `execve` on the program (by default this
//!    program, as it was started: the path in `argv[0]`, so the new file
//!    after a deploy, and the same arguments). Its environment is this
//!    one's, plus `LISTEN_FDS=<n>`, `LISTEN_PID=<its pid>` (systemd's
//!    socket-activation protocol), `NOTIFY_SOCKET=<the readiness socket>`
//!    (systemd's readiness protocol), `MAITRED_HANDOVER=<the old pid>` and
//!    `MAITRED_MANAGER_NOTIFY_SOCKET=<the old process's service manager
//!    socket, or empty>`. A failed `execve` is reported back through a
//!    close-on-exec pipe, with its `errno`.
//! 3. The new process, if it is maitred, sees `MAITRED_HANDOVER` in
//!    [`create_server`](crate::create_server) and serves the sockets
//!    `LISTEN_FDS` passes instead of binding what its settings say (which
//!    would fail: the old process holds those addresses), so the program
//!    needs no code of its own for it. Once its loop runs it sends
//!    `READY=1\nMAINPID=<pid>` to `NOTIFY_SOCKET` (`notify.rs`). Any
//!    program that takes systemd's sockets and speaks `sd_notify` can be
//!    the new process.
//! 4. The old process waits for that datagram from that process id (on
//!    Linux checked with the kernel's credentials, elsewhere with
//!    `MAINPID=`) for up to `handover_timeout` seconds. Meanwhile both
//!    processes accept from the same sockets.
//! 5. Ready: the old process tells its service manager, if it has one,
//!    `MAINPID=<new pid>`, stops accepting (its listeners leave its loop
//!    and their descriptors close: the sockets live on in the new
//!    process, so the connections waiting in their backlog are accepted
//!    there, never reset; a unix socket's file is left in place), and
//!    drains as a graceful stop does: running requests finish (their
//!    responses say `Connection: close`), idle connections are closed
//!    with a staged close (the connection core's: a FIN, then what the
//!    client still sends is read and dropped until it closes or is quiet
//!    for half a second; never a reset), then `run` returns.
//! 6. Not ready (the program could not be started, it exited first, or the
//!    time ran out), or this server began stopping meanwhile: the child,
//!    if still running, gets SIGTERM, then SIGKILL five seconds later, and
//!    is reaped; the failure is logged with the reason (the exit status,
//!    the `errno`); the old process never stopped serving.
//!
//! A second handover while one is in progress is refused (logged; an
//! error from [`ServerHandle::handover`](crate::ServerHandle::handover)).
//!
//! # Interleavings
//!
//! A handover runs on the thread that asked for it (a thread of its own
//! for SIGUSR2), beside the I/O thread. They share the duplicates of the
//! listeners, under one lock: the I/O thread takes them away (and closes
//! them) when it stops accepting, the handover forks while holding them,
//! so the child never gets a descriptor that was closed and reused. The
//! handover reads "stopping" (no duplicates left) every 50 ms while it
//! waits, and gives up then. Its success is one flag the loop reads each
//! round (the handover wakes the loop after setting it); whichever of a
//! stop and a success the loop sees first, it drains once, and the other
//! changes nothing. `busy` lets one handover run at a time (a swap).
//!
//! Thread: any; the loop's part on the I/O thread.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::adjustments::Adjustments;
use crate::error::Error;
use crate::notify;
use crate::sys::handover as os;
use crate::trigger::Notifier;

/// Names the old process in the new one's environment: the sign that
/// `LISTEN_FDS` comes from a handover.
pub(crate) const HANDOVER_VAR: &str = "MAITRED_HANDOVER";

/// How long a child that failed the handover has to stop after SIGTERM,
/// before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// How often a waiting handover looks at the child and at the server.
const TICK: Duration = Duration::from_millis(50);

/// The variables a handover sets for the new process (any value this
/// process has for them is not passed on).
const REPLACED: [&str; 6] = [
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    HANDOVER_VAR,
    notify::MANAGER_VAR,
];

/// The program a handover starts: a path, its arguments and changes to
/// the environment it inherits, as [`std::process::Command`] has them.
///
/// ```no_run
/// use maitred::Program;
///
/// // This program again, as it was started (what SIGUSR2 does):
/// let same = Program::current()?;
/// // Or another build of it:
/// let next = Program::new("/srv/app/releases/42/bin/app")
///     .args(["--listen=127.0.0.1:8080", "--threads=8"])
///     .env("RELEASE", "42");
/// # let _ = (same, next);
/// # Ok::<(), maitred::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Program {
    path: PathBuf,
    /// `argv`, its first entry the program's name.
    argv: Vec<OsString>,
    /// Set (`Some`) or removed (`None`), in order.
    env: Vec<(OsString, Option<OsString>)>,
}

impl Program {
    /// The program at `path` (a name without a `/` is looked up in
    /// `PATH`), with `path` as its `argv[0]` and no arguments.
    pub fn new(path: impl AsRef<Path>) -> Program {
        let path = path.as_ref().to_path_buf();
        Program {
            argv: vec![path.clone().into_os_string()],
            path,
            env: Vec::new(),
        }
    }

    /// This program, as it was started: the executable `argv[0]` names
    /// (looked up in `PATH` when it has no `/`, as the shell did; a
    /// relative path is taken from the current directory), so after a
    /// deploy replaced the file or moved a symlink, the new one; the same
    /// `argv[0]` and arguments. Where `argv[0]` names nothing, the
    /// executable the kernel started.
    ///
    /// Errors: neither gives a path.
    pub fn current() -> Result<Program, Error> {
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_default();
        let path = match executable(Path::new(&arg0)) {
            Some(p) => p,
            None => os::current_exe().map_err(|e| {
                Error::io(
                    format!("could not find this program's executable (argv[0] is {arg0:?})"),
                    e,
                )
            })?,
        };
        let mut argv = vec![if arg0.is_empty() {
            path.clone().into_os_string()
        } else {
            arg0
        }];
        argv.extend(args);
        Ok(Program {
            path,
            argv,
            env: Vec::new(),
        })
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Program {
        self.argv.push(arg.as_ref().to_os_string());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Program
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.argv
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets an environment variable of the new process. The variables of
    /// the handover itself (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`,
    /// `NOTIFY_SOCKET`, `MAITRED_HANDOVER`, `MAITRED_MANAGER_NOTIFY_SOCKET`)
    /// cannot be set.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Program {
        self.env.push((
            key.as_ref().to_os_string(),
            Some(value.as_ref().to_os_string()),
        ));
        self
    }

    /// Removes an environment variable from what the new process inherits.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Program {
        self.env.push((key.as_ref().to_os_string(), None));
        self
    }

    /// The path of the executable.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The arguments, `argv[0]` first.
    pub fn argv(&self) -> &[OsString] {
        &self.argv
    }

    /// The new process's environment: this one's with the program's changes
    /// and the handover's variables (but `LISTEN_FDS` and `LISTEN_PID`,
    /// which the spawn adds).
    fn environment(&self, ready: &Path) -> Vec<(OsString, OsString)> {
        let replaced = |k: &OsStr| REPLACED.iter().any(|r| OsStr::new(r) == k);
        let mut env: Vec<(OsString, OsString)> =
            std::env::vars_os().filter(|(k, _)| !replaced(k)).collect();
        for (k, v) in &self.env {
            if replaced(k) {
                continue;
            }
            env.retain(|(n, _)| n != k);
            if let Some(v) = v {
                env.push((k.clone(), v.clone()));
            }
        }
        env.push(("NOTIFY_SOCKET".into(), ready.as_os_str().to_os_string()));
        env.push((
            notify::MANAGER_VAR.into(),
            notify::manager().unwrap_or_default(),
        ));
        env.push((HANDOVER_VAR.into(), std::process::id().to_string().into()));
        env
    }
}

/// The file `name` runs: itself when it has a `/`, else the first
/// executable of that name in `PATH`.
fn executable(name: &Path) -> Option<PathBuf> {
    let bytes = name.as_os_str().as_bytes();
    if bytes.is_empty() {
        return None;
    }
    if bytes.contains(&b'/') {
        return Some(name.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A server's handover state (in the server's shared state).
#[derive(Debug)]
pub(crate) struct State {
    /// Duplicates of the listening sockets, for a new process; `None` once
    /// this server stopped accepting.
    listeners: Mutex<Option<Vec<OwnedFd>>>,
    /// A handover is in progress.
    busy: AtomicBool,
    /// The process it started (0 before it exists).
    child: AtomicU32,
    /// A new process serves the sockets: this server drains.
    handed_over: AtomicBool,
}

impl State {
    /// The state of a server with these listeners (duplicated here).
    pub(crate) fn new(listeners: impl IntoIterator<Item = RawFd>) -> Result<State, Error> {
        let mut dups = Vec::new();
        for fd in listeners {
            dups.push(os::dup_cloexec(fd).map_err(|e| {
                Error::io(
                    format!("could not duplicate listening descriptor {fd} (kept for handovers)"),
                    e,
                )
            })?);
        }
        Ok(State {
            listeners: Mutex::new(Some(dups)),
            busy: AtomicBool::new(false),
            child: AtomicU32::new(0),
            handed_over: AtomicBool::new(false),
        })
    }

    /// A new process said it serves: this server must stop accepting and
    /// drain.
    pub(crate) fn handed_over(&self) -> bool {
        self.handed_over.load(Ordering::SeqCst)
    }

    /// This server stops accepting (a graceful stop or the drain after a
    /// handover; called again, nothing happens): no handover can start
    /// from now on, and one waiting gives up; the service manager hears
    /// `STOPPING=1`, unless a new process took over. (Connections are then
    /// closed with a staged close: the connection core's drain.)
    pub(crate) fn stop_accepting(&self) {
        let had = crate::lock(&self.listeners).take();
        if had.is_some() && !self.handed_over() {
            notify::to_manager("STOPPING=1\n");
        }
    }

    fn stopping(&self) -> bool {
        crate::lock(&self.listeners).is_none()
    }

    /// The end of `Server::run`: waits for a handover that is giving up
    /// (its child being stopped), so that the process can exit.
    pub(crate) fn finish(&self) {
        let t = Instant::now();
        while self.busy.load(Ordering::SeqCst) && t.elapsed() < KILL_GRACE + Duration::from_secs(1)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// In a process a handover started (`MAITRED_HANDOVER` is set and
/// `LISTEN_PID` is this process): the listening sockets it passed, which
/// replace what the settings say to listen on. `None` otherwise; a
/// `MAITRED_HANDOVER` inherited by a process the new one started (its
/// `LISTEN_PID` is another's) is dropped.
pub(crate) fn take_inherited() -> Result<Option<Vec<RawFd>>, Error> {
    let Some(from) = std::env::var_os(HANDOVER_VAR) else {
        return Ok(None);
    };
    // Removing variables is not synchronised with other threads reading
    // the environment: see activation::take_from_env, which runs here too.
    std::env::remove_var(HANDOVER_VAR);
    let me = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok());
    if me != Some(std::process::id()) {
        return Ok(None);
    }
    let fds = crate::activation::take_from_env()?;
    crate::log_info!(
        "Handover: serving the {} listening socket(s) passed by process {}",
        fds.len(),
        from.to_string_lossy()
    );
    Ok(Some(fds))
}

/// Whether this process serves the file of the unix socket at `path` it
/// inherited (and so removes it when it stops): when its settings name
/// that path, as they did in the process that bound it.
pub(crate) fn owns_unix_path(adj: &Adjustments, path: Option<&Path>) -> Option<PathBuf> {
    match path {
        Some(p) if adj.unix_socket.as_deref() == Some(p) => Some(p.to_path_buf()),
        _ => None,
    }
}

impl State {
    /// SIGUSR2: refuses (with a log line) while a handover is in progress.
    pub(crate) fn refuse_signal_while_busy(&self) -> bool {
        if self.busy.load(Ordering::SeqCst) {
            crate::log_warning!(
                "SIGUSR2: a handover (to process {}) is already in progress; ignored",
                self.child.load(Ordering::SeqCst)
            );
            return true;
        }
        false
    }

    /// Runs one handover (see [`ServerHandle::handover`](crate::ServerHandle::handover)):
    /// waits up to `timeout` for the new process, and wakes the loop with
    /// `wake` once it serves.
    pub(crate) fn hand_over(
        &self,
        program: &Program,
        timeout: Duration,
        wake: &Notifier,
    ) -> Result<u32, Error> {
        if self.busy.swap(true, Ordering::SeqCst) {
            let msg = format!(
                "a handover (to process {}) is already in progress",
                self.child.load(Ordering::SeqCst)
            );
            crate::log_warning!("{msg}; this one is refused");
            return Err(failure(msg));
        }
        let result = attempt(self, program, timeout, wake);
        self.child.store(0, Ordering::SeqCst);
        self.busy.store(false, Ordering::SeqCst);
        result
    }
}

/// A handover's error.
fn failure(msg: String) -> Error {
    Error::io("handover failed", io::Error::other(msg))
}

/// How waiting for the new process ended, short of success.
enum NotReady {
    /// It is gone (exited and reaped): the reason.
    Gone(String),
    /// It still runs and must be stopped: the reason.
    Running(String),
}

fn attempt(
    st: &State,
    program: &Program,
    timeout: Duration,
    wake: &Notifier,
) -> Result<u32, Error> {
    let timeout = timeout.max(Duration::from_secs(1));
    let path = executable(&program.path).unwrap_or_else(|| program.path.clone());
    let stopping = || {
        crate::log_warning!("Handover refused: this server is stopping");
        failure("this server is stopping".into())
    };
    let count = match crate::lock(&st.listeners).as_ref() {
        Some(l) => l.len(),
        None => return Err(stopping()),
    };
    let ready = ReadySocket::new().map_err(|e| {
        crate::log_warning!("Handover failed: {e}; this process keeps serving");
        e
    })?;
    let env = program.environment(&ready.path);
    let mut plan = os::ExecPlan::new(&path, &program.argv, &env, count)
        .map_err(|e| Error::io(format!("could not start {}", path.display()), e))?;
    let spawned = {
        let guard = crate::lock(&st.listeners);
        let Some(socks) = guard.as_ref() else {
            return Err(stopping());
        };
        let raw: Vec<RawFd> = socks.iter().map(AsRawFd::as_raw_fd).collect();
        os::spawn(&mut plan, &raw)
    }
    .map_err(|e| {
        crate::log_warning!("Handover failed: could not fork: {e}; this process keeps serving");
        Error::io("handover failed: could not fork", e)
    })?;
    let pid = spawned.pid;
    st.child.store(pid as u32, Ordering::SeqCst);
    if let Err(e) = spawned.exec_result() {
        crate::log_warning!(
            "Handover failed: could not start {}: {e}; this process keeps serving",
            path.display()
        );
        return Err(Error::io(
            format!("handover failed: could not start {}", path.display()),
            e,
        ));
    }
    crate::log_info!(
        "Handover: started process {pid} ({}); waiting up to {} s for it to say it is serving",
        path.display(),
        timeout.as_secs()
    );
    let why = match wait_ready(st, &ready, pid, timeout) {
        Ok(()) => {
            st.handed_over.store(true, Ordering::SeqCst);
            wake.wake();
            notify::to_manager(&format!("MAINPID={pid}\n"));
            crate::log_info!(
                "Handover: process {pid} is serving; this process stops accepting and drains"
            );
            return Ok(pid as u32);
        }
        Err(NotReady::Gone(why)) => why,
        Err(NotReady::Running(why)) => format!("{why}; {}", stop_child(pid)),
    };
    if st.stopping() {
        crate::log_warning!("Handover cancelled: {why}");
    } else {
        crate::log_warning!("Handover failed: {why}; this process keeps serving");
    }
    Err(failure(why))
}

/// Waits for `READY=1` from process `pid`, for up to `timeout`.
fn wait_ready(
    st: &State,
    ready: &ReadySocket,
    pid: libc::pid_t,
    timeout: Duration,
) -> Result<(), NotReady> {
    let deadline = Instant::now() + timeout;
    loop {
        match os::try_wait(pid) {
            Ok(None) => {}
            Ok(Some(status)) => {
                return Err(NotReady::Gone(format!(
                    "process {pid} exited before it was serving ({status})"
                )))
            }
            Err(e) => {
                return Err(NotReady::Gone(format!(
                    "process {pid} could not be waited for ({e}): it is gone"
                )))
            }
        }
        if st.stopping() {
            return Err(NotReady::Running("this server began stopping".into()));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(NotReady::Running(format!(
                "process {pid} did not say it was serving (READY=1) within {} s (handover_timeout)",
                timeout.as_secs()
            )));
        }
        match ready.recv(left.min(TICK)) {
            Ok(None) => {}
            Ok(Some((notice, sender))) => {
                let from_child = match sender {
                    Some(s) => s == pid as u32,
                    None => notice.main_pid == Some(pid as u32),
                };
                if !from_child {
                    crate::log_warning!(
                        "Handover: ignored a notification from process {}, not the new process {pid}",
                        sender.or(notice.main_pid).map_or("?".to_string(), |p| p.to_string())
                    );
                } else if notice.ready {
                    return Ok(());
                }
            }
            Err(e) => {
                return Err(NotReady::Running(format!(
                    "could not read the readiness socket: {e}"
                )))
            }
        }
    }
}

/// Stops the child `pid` that failed the handover: SIGTERM, then SIGKILL
/// after [`KILL_GRACE`]; reaps it. Says what happened.
fn stop_child(pid: libc::pid_t) -> String {
    if let Err(e) = os::kill(pid, libc::SIGTERM) {
        return format!("could not stop it: {e}");
    }
    let t = Instant::now();
    while t.elapsed() < KILL_GRACE {
        match os::try_wait(pid) {
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Ok(Some(status)) => return format!("stopped it with SIGTERM ({status})"),
            Err(_) => return "stopped it with SIGTERM".into(),
        }
    }
    let _ = os::kill(pid, libc::SIGKILL);
    match os::wait_blocking(pid) {
        Ok(status) => format!(
            "killed it with SIGKILL after {} s ({status})",
            KILL_GRACE.as_secs()
        ),
        Err(_) => "killed it with SIGKILL".into(),
    }
}

/// The datagram socket a new process says `READY=1` on, in a private
/// directory removed with it.
struct ReadySocket {
    _dir: tempfile::TempDir,
    path: PathBuf,
    sock: UnixDatagram,
}

impl ReadySocket {
    fn new() -> Result<ReadySocket, Error> {
        let dir = tempfile::Builder::new()
            .prefix("maitred-handover-")
            .tempdir()
            .map_err(|e| {
                Error::io(
                    "handover failed: could not create a directory for the readiness socket",
                    e,
                )
            })?;
        let path = dir.path().join("notify");
        let bind_err = |e| {
            Error::io(
                format!(
                    "handover failed: could not create the readiness socket {}",
                    path.display()
                ),
                e,
            )
        };
        let sock = UnixDatagram::bind(&path).map_err(bind_err)?;
        os::pass_credentials(sock.as_raw_fd()).map_err(bind_err)?;
        Ok(ReadySocket {
            _dir: dir,
            path,
            sock,
        })
    }

    /// One notification, if one comes within `wait`, with the sender's
    /// process id where the kernel says it.
    fn recv(&self, wait: Duration) -> io::Result<Option<(notify::Notice, Option<u32>)>> {
        self.sock
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        let mut buf = [0u8; 4096];
        match os::recv_with_pid(self.sock.as_raw_fd(), &mut buf) {
            Ok((n, pid)) => Ok(Some((notify::parse(&buf[..n]), pid))),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_program_is_this_one_with_its_arguments() {
        let p = Program::current().unwrap();
        let args: Vec<OsString> = std::env::args_os().collect();
        assert_eq!(p.argv(), &args[..]);
        assert!(p.path().is_file(), "{}", p.path().display());
    }

    #[test]
    fn names_without_a_slash_are_looked_up_in_path() {
        let sh = executable(Path::new("sh")).unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(
            executable(Path::new("./x")),
            Some(PathBuf::from("./x")),
            "a path is taken as it is"
        );
        assert_eq!(executable(Path::new("no-such-program-here")), None);
        assert_eq!(executable(Path::new("")), None);
    }

    #[test]
    fn the_new_process_gets_the_handover_variables_and_no_stale_ones() {
        let p = Program::new("/bin/true")
            .env("MAITRED_TEST_X", "1")
            .env("NOTIFY_SOCKET", "/elsewhere")
            .env_remove("PATH");
        let env = p.environment(Path::new("/tmp/r/notify"));
        let get = |k: &str| {
            env.iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("MAITRED_TEST_X"), ["1"]);
        assert_eq!(get("NOTIFY_SOCKET"), ["/tmp/r/notify"]);
        assert_eq!(get(HANDOVER_VAR), [std::process::id().to_string()]);
        assert_eq!(get(notify::MANAGER_VAR).len(), 1);
        assert!(get("PATH").is_empty());
        assert!(get("LISTEN_PID").is_empty() && get("LISTEN_FDS").is_empty());
    }
}
