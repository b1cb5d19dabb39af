//! The libc calls of a handover (see `handover.rs`): starting the new
//! process with the listening sockets at descriptors 3, 4, ... and
//! `LISTEN_PID` set to its own process id; waiting for it and stopping it;
//! the readiness socket (`sd_notify`'s datagrams, with the sender's
//! credentials where the platform gives them); and `poll(2)` for the
//! connections closed cleanly during a drain.
//!
//! Thread: any (a handover runs on the thread that asked for it, the
//! lingering close on a thread of its own).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use super::syscall;

/// Room for the digits of any process id in `LISTEN_PID=`.
const PID_DIGITS: usize = 20;

/// A duplicate of `fd` (close-on-exec, numbered 3 or above), owned by the
/// caller.
pub(crate) fn dup_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
    let new = syscall!(fcntl(fd, libc::F_DUPFD_CLOEXEC, 3))?;
    // SAFETY: `new` was just returned by a successful fcntl(F_DUPFD_CLOEXEC),
    // so it is an open descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Everything `execve` needs, built before `fork` (the child may not
/// allocate): the path, `argv` and `envp` as NUL-terminated strings with
/// their pointer arrays, and the place in `envp` where the child writes
/// its own process id (`LISTEN_PID=`).
#[derive(Debug)]
pub(crate) struct ExecPlan {
    path: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _env: Vec<Vec<u8>>,
    env_ptrs: Vec<*const libc::c_char>,
    /// Into `env`: the bytes after `LISTEN_PID=` (`PID_DIGITS` of them,
    /// then a NUL).
    pid_slot: *mut u8,
    /// Where the child puts its copies of the listeners while it moves
    /// them to 3, 4, ... (one per listener).
    scratch: Vec<libc::c_int>,
}

fn cstring(what: &str, s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the {what} {s:?} contains a NUL byte"),
        )
    })
}

impl ExecPlan {
    /// A plan to run `path` with `argv` (its first entry is the program's
    /// name) and the environment `env` plus `LISTEN_FDS=<listeners>` and
    /// `LISTEN_PID=<the child's pid>`. `env` must not hold those two.
    pub(crate) fn new(
        path: &Path,
        argv: &[OsString],
        env: &[(OsString, OsString)],
        listeners: usize,
    ) -> io::Result<ExecPlan> {
        let path = cstring("program path", path.as_os_str())?;
        let argv: Vec<CString> = argv
            .iter()
            .map(|a| cstring("argument", a))
            .collect::<io::Result<_>>()?;
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut bufs: Vec<Vec<u8>> = Vec::with_capacity(env.len() + 2);
        for (k, v) in env {
            let mut e = Vec::with_capacity(k.len() + v.len() + 2);
            e.extend_from_slice(k.as_bytes());
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            if e.contains(&0) || k.as_bytes().contains(&b'=') || k.is_empty() {
                // Not representable in an environment: left out.
                continue;
            }
            e.push(0);
            bufs.push(e);
        }
        bufs.push(format!("LISTEN_FDS={listeners}\0").into_bytes());
        let mut pid = b"LISTEN_PID=".to_vec();
        let at = pid.len();
        pid.resize(at + PID_DIGITS + 1, 0);
        bufs.push(pid);
        let last = bufs.len() - 1;
        // The slot's address is taken once and stays valid: `bufs` and the
        // vectors in it are not changed again (only read through the
        // pointers, and written through this one in the child).
        let pid_slot = bufs[last][at..].as_mut_ptr();
        let mut env_ptrs: Vec<*const libc::c_char> =
            bufs.iter().map(|e| e.as_ptr().cast()).collect();
        env_ptrs.push(std::ptr::null());
        Ok(ExecPlan {
            path,
            _argv: argv,
            argv_ptrs,
            _env: bufs,
            env_ptrs,
            pid_slot,
            scratch: vec![-1; listeners],
        })
    }

    /// The environment entries, for tests.
    #[cfg(test)]
    pub(crate) fn env_entries(&self) -> Vec<String> {
        self._env
            .iter()
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect()
    }

    /// Writes `pid` into `LISTEN_PID=`, as the child does. Async-signal-safe:
    /// no allocation, no panic (only the slot's own bytes are touched).
    fn write_pid(&mut self, pid: libc::pid_t) {
        let mut digits = [0u8; PID_DIGITS];
        let mut n = 0usize;
        let mut v = pid.unsigned_abs() as u64;
        loop {
            if let Some(d) = digits.get_mut(n) {
                *d = b'0' + (v % 10) as u8;
            }
            n += 1;
            v /= 10;
            if v == 0 || n >= PID_DIGITS {
                break;
            }
        }
        for i in 0..n {
            // SAFETY: `pid_slot` points at PID_DIGITS + 1 bytes inside a
            // buffer of `self._env` that lives as long as `self`; i < n <=
            // PID_DIGITS. The digits come out in reverse.
            unsafe { *self.pid_slot.add(i) = digits[(n - 1 - i) % PID_DIGITS] };
        }
        // SAFETY: n <= PID_DIGITS, so the NUL goes at most at the slot's
        // last byte.
        unsafe { *self.pid_slot.add(n) = 0 };
    }
}

/// A child started by [`spawn`] that has not yet been seen to `execve`.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// Its process id.
    pub pid: libc::pid_t,
    /// Close-on-exec in the child: end of file once it ran `execve`, or
    /// the `errno` of a failed one.
    exec_report: OwnedFd,
}

/// Forks and, in the child, puts `listeners` at descriptors 3, 4, ...
/// (without close-on-exec), writes its process id into `LISTEN_PID`, and
/// runs `plan`. Returns once the child exists; [`Spawned::exec_result`]
/// then says whether `execve` worked.
///
/// Only async-signal-safe calls happen in the child (the parent may have
/// other threads, whose locks a forked child must not touch): `sigprocmask`,
/// `sigaction`, `fcntl`, `dup2`, `getpid`, `execve`, `write` and `_exit`,
/// on memory allocated before the fork.
pub(crate) fn spawn(plan: &mut ExecPlan, listeners: &[RawFd]) -> io::Result<Spawned> {
    if listeners.len() != plan.scratch.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the plan was made for another number of listeners",
        ));
    }
    let first_free = 3 + listeners.len() as libc::c_int;
    // The report pipe's write end is moved above the descriptors the child
    // fills, so that moving the listeners cannot close it.
    let (rd, wr0) = pipe_cloexec()?;
    super::set_nonblocking_cloexec(rd.as_raw_fd())?;
    let wr = syscall!(fcntl(wr0.as_raw_fd(), libc::F_DUPFD_CLOEXEC, first_free))?;
    drop(wr0);
    // SAFETY: `wr` was just returned by fcntl(F_DUPFD_CLOEXEC): open, ours.
    let wr = unsafe { OwnedFd::from_raw_fd(wr) };
    // SAFETY: all-zero is a valid sigset_t and sigaction; sigemptyset
    // initialises the set; SIG_DFL is a valid disposition.
    let (empty, dfl) = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut sa.sa_mask);
        (set, sa)
    };
    // SAFETY: fork has no memory-safety preconditions. What the child does
    // is below: async-signal-safe calls only, on memory that exists.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: we are the child of a fork; `child` keeps to
        // async-signal-safe calls and never returns.
        unsafe { child(plan, listeners, first_free, wr.as_raw_fd(), &empty, &dfl) }
    }
    drop(wr);
    Ok(Spawned {
        pid,
        exec_report: rd,
    })
}

/// A pipe, both ends close-on-exec (atomically where the platform can, so
/// that a program another thread starts meanwhile does not inherit it and
/// hold the read end's end of file back).
fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    syscall!(pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC))?;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    syscall!(pipe(fds.as_mut_ptr()))?;
    // SAFETY: the pipe call succeeded: both descriptors are open and ours.
    let ends = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    super::set_nonblocking_cloexec(ends.1.as_raw_fd())?;
    Ok(ends)
}

/// Writes the `errno` of the call that just failed to `report` and exits
/// with status 127. Async-signal-safe.
///
/// # Safety
///
/// Only in the child right after `fork`.
unsafe fn child_fail(report: RawFd) -> ! {
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let bytes = errno.to_ne_bytes();
    // SAFETY: write and _exit are async-signal-safe; `bytes` is live.
    unsafe {
        libc::write(report, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}

/// The child's side of [`spawn`]. Never returns: `execve`, or `_exit(127)`
/// after writing the failed call's `errno` to `report`.
///
/// # Safety
///
/// Only in the child right after `fork`.
unsafe fn child(
    plan: &mut ExecPlan,
    listeners: &[RawFd],
    first_free: libc::c_int,
    report: RawFd,
    empty: &libc::sigset_t,
    dfl: &libc::sigaction,
) -> ! {
    // SAFETY: every call below is an async-signal-safe function, on
    // pointers to live memory allocated before the fork.
    unsafe {
        // The thread that forked may block signals; the new program starts
        // with none blocked, and with SIGPIPE at its default (the Rust
        // runtime ignores it, and an ignored signal stays ignored across
        // execve), as std's Command does.
        libc::sigprocmask(libc::SIG_SETMASK, empty, std::ptr::null_mut());
        libc::sigaction(libc::SIGPIPE, dfl, std::ptr::null_mut());
        // First every listener above the target range (a listener may
        // itself be numbered 3, 4, ...), then each down to its place; dup2
        // leaves the new descriptor without close-on-exec.
        for (src, tmp) in listeners.iter().zip(plan.scratch.iter_mut()) {
            *tmp = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, first_free);
            if *tmp < 0 {
                child_fail(report);
            }
        }
        for (target, tmp) in (3..).zip(plan.scratch.iter()) {
            if libc::dup2(*tmp, target) < 0 {
                child_fail(report);
            }
        }
        plan.write_pid(libc::getpid());
        libc::execve(
            plan.path.as_ptr(),
            plan.argv_ptrs.as_ptr(),
            plan.env_ptrs.as_ptr(),
        );
        child_fail(report)
    }
}

impl Spawned {
    /// Waits until the child ran `execve`: `Ok` when it did, the error of
    /// the failed call otherwise (the child has then exited, and is
    /// reaped).
    pub(crate) fn exec_result(&self) -> io::Result<()> {
        let mut buf = [0u8; 4];
        let mut got = 0;
        let fd = self.exec_report.as_raw_fd();
        while got < buf.len() {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one live pollfd.
            unsafe { libc::poll(&mut p, 1, 1000) };
            // SAFETY: the buffer's remaining bytes are live and ours.
            let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
            match n {
                0 => break,
                n if n > 0 => got += n as usize,
                _ => {
                    let e = io::Error::last_os_error();
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                    ) {
                        continue;
                    }
                    // The pipe says nothing more: the child is taken as
                    // started (waiting for it then tells how it fares),
                    // never left running behind an error.
                    break;
                }
            }
        }
        if got == 0 {
            return Ok(());
        }
        let _ = wait_blocking(self.pid);
        Err(io::Error::from_raw_os_error(i32::from_ne_bytes(buf)))
    }
}

/// The status of child `pid` if it has exited (and reaps it); `None` while
/// it runs. An error such as `ECHILD` (someone else reaped it, or SIGCHLD
/// is ignored) means it is gone.
pub(crate) fn try_wait(pid: libc::pid_t) -> io::Result<Option<std::process::ExitStatus>> {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    // SAFETY: `status` is a live int.
    let r = super::cvt_retry(|| syscall!(waitpid(pid, &mut status, libc::WNOHANG)))?;
    if r == 0 {
        Ok(None)
    } else {
        Ok(Some(std::process::ExitStatus::from_raw(status)))
    }
}

/// Waits for child `pid` to exit, and reaps it.
pub(crate) fn wait_blocking(pid: libc::pid_t) -> io::Result<std::process::ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    super::cvt_retry(|| syscall!(waitpid(pid, &mut status, 0)))?;
    Ok(std::process::ExitStatus::from_raw(status))
}

/// Sends `sig` to process `pid` (a child this process started).
pub(crate) fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    syscall!(kill(pid, sig))?;
    Ok(())
}

/// Asks the kernel to attach the sender's credentials to every datagram
/// `fd` receives (Linux's `SO_PASSCRED`); elsewhere does nothing and
/// returns false.
pub(crate) fn pass_credentials(fd: RawFd) -> io::Result<bool> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        super::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PASSCRED, 1)?;
        Ok(true)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        Ok(false)
    }
}

/// Receives one datagram into `buf`: its length and, where
/// [`pass_credentials`] is on, the sender's process id. `WouldBlock` (or
/// `TimedOut`) when none came within the socket's receive timeout.
pub(crate) fn recv_with_pid(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<u32>)> {
    // Room for one SCM_CREDENTIALS message (a ucred is 12 bytes), aligned
    // for cmsghdr.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid msghdr (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let n = super::cvt_retry(|| {
        // SAFETY: `msg` points at one iovec over `buf` and at `control`,
        // both live and exclusively ours for the call.
        let r = unsafe { libc::recvmsg(fd, &mut msg, 0) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as usize)
        }
    })?;
    Ok((n, sender_pid(&msg)))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn sender_pid(msg: &libc::msghdr) -> Option<u32> {
    // SAFETY: recvmsg filled `msg`: `msg_controllen` bytes of well-formed
    // cmsghdrs, which the CMSG macros walk without leaving; an
    // SCM_CREDENTIALS payload is a ucred, read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                let cred: libc::ucred = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                return u32::try_from(cred.pid).ok();
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn sender_pid(_msg: &libc::msghdr) -> Option<u32> {
    None
}

/// The process's own executable, as the kernel knows it; on Linux, a file
/// replaced since the start shows as `path (deleted)`, which is the path
/// a new copy is at.
pub(crate) fn current_exe() -> io::Result<std::path::PathBuf> {
    let p = std::env::current_exe()?;
    let bytes = p.as_os_str().as_bytes();
    let suffix = b" (deleted)";
    if cfg!(any(target_os = "linux", target_os = "android")) && bytes.ends_with(suffix) {
        let cut = bytes[..bytes.len() - suffix.len()].to_vec();
        return Ok(std::path::PathBuf::from(OsString::from_vec(cut)));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_slot_takes_any_pid() {
        let mut plan = ExecPlan::new(
            Path::new("/bin/true"),
            &["true".into()],
            &[("A".into(), "1".into()), ("B=".into(), "x".into())],
            2,
        )
        .unwrap();
        for (pid, text) in [
            (1, "1"),
            (42, "42"),
            (4194304, "4194304"),
            (i32::MAX, "2147483647"),
        ] {
            plan.write_pid(pid);
            let env = plan.env_entries();
            let last = env.last().unwrap();
            let shown = last.trim_end_matches('\0');
            assert_eq!(
                shown.split('\0').next().unwrap(),
                format!("LISTEN_PID={text}")
            );
        }
        let env = plan.env_entries();
        assert_eq!(env[0], "A=1\0");
        // A name with '=' cannot be passed: left out.
        assert_eq!(env[1], "LISTEN_FDS=2\0");
    }

    #[test]
    fn a_program_that_cannot_run_is_an_error_and_is_reaped() {
        let mut plan = ExecPlan::new(
            Path::new("/nonexistent/program"),
            &["program".into()],
            &[],
            0,
        )
        .unwrap();
        let child = spawn(&mut plan, &[]).unwrap();
        let err = child.exec_result().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
        // Reaped already.
        assert!(try_wait(child.pid).is_err());
    }

    #[test]
    fn a_started_program_gets_the_listeners_and_its_own_pid() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "echo \"$LISTEN_PID $$ $LISTEN_FDS\" > {0}; [ -e /proc/self/fd/3 ] && echo fd3 >> {0}; exit 7",
            out.display()
        );
        let mut plan = ExecPlan::new(
            Path::new("/bin/sh"),
            &["sh".into(), "-c".into(), script.into()],
            &[],
            1,
        )
        .unwrap();
        let child = spawn(&mut plan, &[l.as_raw_fd()]).unwrap();
        child.exec_result().unwrap();
        let status = wait_blocking(child.pid).unwrap();
        assert_eq!(status.code(), Some(7));
        let text = std::fs::read_to_string(&out).unwrap();
        let first: Vec<&str> = text.lines().next().unwrap().split(' ').collect();
        assert_eq!(first[0], child.pid.to_string());
        assert_eq!(first[1], child.pid.to_string());
        assert_eq!(first[2], "1");
        if Path::new("/proc/self/fd").exists() {
            assert!(text.contains("fd3"), "{text}");
        }
    }
}
