//! Running a test in a child process: for what is process-wide (the
//! environment, descriptor numbers and limits, signals, `/proc/self/fd`).
//!
//! A test that needs a child checks [`role`] first: in the child it plays
//! its part and returns; in the parent it starts the child with
//! [`command`], which re-runs this test binary with only that test.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The environment variable that tells a child its role.
pub const ROLE_VAR: &str = "MAITRED_TEST_CHILD_ROLE";

/// This process's role, when it is a child started by [`command`].
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// A command that runs test `test` (its full name) of this test binary, and
/// only it, with [`role`] returning `role`. With `shell`, the command runs
/// through `sh -c '<shell>; exec "$0" "$@"'`, so the shell can set limits or
/// variables (`$$` is the test's process id: `exec` keeps it).
pub fn command(test: &str, role: &str, shell: Option<&str>) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let args = [test, "--exact", "--nocapture", "--test-threads=1"];
    let mut cmd = match shell {
        Some(script) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("{script}; exec \"$0\" \"$@\""))
                .arg(exe)
                .args(args);
            c
        }
        None => {
            let mut c = Command::new(exe);
            c.args(args);
            c
        }
    };
    cmd.env(ROLE_VAR, role)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Waits for `child` to exit, at most `limit` (then kills it, by its id,
/// and panics). Returns its status and output.
pub fn wait(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("waiting for the child"),
        Err(_) => {
            signal(pid, libc::SIGKILL);
            panic!("the child process {pid} did not finish within {limit:?}");
        }
    }
}

/// Runs the child to its end and panics, showing its output, unless it
/// succeeded. Returns its standard output and error, together.
pub fn run_ok(mut cmd: Command, limit: Duration) -> String {
    let child = cmd.spawn().expect("spawning the child");
    let out = wait(child, limit);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the child failed ({}):\n{text}",
        out.status
    );
    text
}

/// Sends `sig` to process `pid` (a child this test started).
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions; the pid is that of a
    // child this test spawned and has not reaped yet.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Reads `child`'s standard error line by line on a thread; the lines
/// arrive on the returned channel.
pub fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("the child's stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    rx
}

/// Waits (at most `limit`) for a line containing `needle`; returns it.
pub fn wait_for_line(lines: &mpsc::Receiver<String>, needle: &str, limit: Duration) -> String {
    let deadline = std::time::Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return l,
            Ok(l) => seen.push(l),
            Err(_) => panic!(
                "no line with {needle:?} within {limit:?}; got:\n{}",
                seen.join("\n")
            ),
        }
    }
}
