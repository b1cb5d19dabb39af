//! A real proxy in front of the server (nginx in `tests/nginx.rs`, HAProxy
//! in `tests/haproxy.rs`): finding its binary, a free port for it, running
//! it in a process group of its own, and stopping it by PID however the
//! test ends. Where the binary is not installed, the test says so with
//! [`skip`] and passes.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Says why a test does not run, where `cargo test` always shows it.
pub fn skip(why: &str) {
    let _ = std::io::stderr().write_all(format!("SKIPPED: {why}\n").as_bytes());
}

/// The binary `name`: `$env_var` if set, else `/usr/sbin/<name>` or the
/// first on `PATH`, if it is there and `<binary> <version_arg>` succeeds.
/// `Err` says why not (with how to install it: `install`).
pub fn find_binary(
    name: &str,
    env_var: &str,
    version_arg: &str,
    install: &str,
) -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match std::env::var_os(env_var) {
        Some(p) => vec![PathBuf::from(p)],
        None => {
            let mut v = vec![Path::new("/usr/sbin").join(name)];
            if let Some(path) = std::env::var_os("PATH") {
                v.extend(std::env::split_paths(&path).map(|d| d.join(name)));
            }
            v
        }
    };
    let bin = candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name} is not installed ({install}, or set {env_var})"))?;
    match Command::new(&bin).arg(version_arg).output() {
        Ok(o) if o.status.success() => Ok(bin),
        Ok(o) => Err(format!(
            "{} {version_arg} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{} cannot be run: {e}", bin.display())),
    }
}

/// A free port on 127.0.0.1 (the proxy binds it right after; a lost race
/// is retried by the caller).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A proxy process, the leader of a process group of its own; stopped
/// (SIGTERM to it, then SIGKILL to its group if it lingers) when dropped.
pub struct Daemon {
    child: Option<Child>,
    /// Where its error log is (read back by [`Daemon::wait_ready`]).
    log: PathBuf,
    /// What it is, for messages.
    name: String,
}

impl Daemon {
    /// Starts `cmd` (its standard streams to /dev/null but standard error,
    /// which goes to `log` unless the proxy writes `log` itself: pass
    /// `stderr_to_log`).
    pub fn spawn(name: &str, mut cmd: Command, log: &Path, stderr_to_log: bool) -> Daemon {
        use std::os::unix::process::CommandExt;
        let stderr = if stderr_to_log {
            Stdio::from(std::fs::File::create(log).expect("the proxy's log file"))
        } else {
            Stdio::null()
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} could not be started: {e}"));
        Daemon {
            child: Some(child),
            log: log.to_path_buf(),
            name: name.to_string(),
        }
    }

    /// Waits until every port in `ports` on 127.0.0.1 accepts connections;
    /// `Err(its log)` if the process exits first or takes more than 10 s.
    pub fn wait_ready(&mut self, ports: &[u16]) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut ready = vec![false; ports.len()];
        loop {
            for (i, port) in ports.iter().enumerate() {
                if !ready[i] {
                    ready[i] = TcpStream::connect(("127.0.0.1", *port)).is_ok();
                }
            }
            if ready.iter().all(|&r| r) {
                return Ok(());
            }
            let exited = match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(_))) | Some(Err(_)) | None => true,
                Some(Ok(None)) => false,
            };
            if exited || Instant::now() >= deadline {
                let log = self.log();
                return Err(if exited {
                    log
                } else {
                    format!("{} not listening after 10 s\n{log}", self.name)
                });
            }
            // The proxy announces readiness by no event: look again shortly.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the proxy logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: `pid` is our own child, not yet reaped, so the id still
        // names it; SIGTERM asks the proxy to stop now.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        if rx.recv_timeout(Duration::from_secs(10)).is_err() {
            // SAFETY: the proxy was started as the leader of its own
            // process group (id `pid`), which holds only it and its workers.
            unsafe { libc::killpg(pid, libc::SIGKILL) };
            let _ = rx.recv_timeout(Duration::from_secs(10));
        }
        let _ = waiter.join();
    }
}
