//! systemd's readiness protocol (`sd_notify(3)`): when `NOTIFY_SOCKET`
//! names a unix datagram socket, the server sends `READY=1` (with
//! `MAINPID=`) to it once it runs its loop, and `STOPPING=1` when a
//! graceful stop begins. Under systemd that is `Type=notify`; a handover
//! (`handover.rs`) uses the same message to learn that the new process
//! serves.
//!
//! A process started by a handover has `NOTIFY_SOCKET` pointing at its
//! parent's readiness socket; the service manager's own socket, if the
//! parent had one, is in `MAITRED_MANAGER_NOTIFY_SOCKET` (empty for none),
//! and every later message (`STOPPING=1`, the `MAINPID=` of its own
//! handovers) goes there.
//!
//! Thread: any (the I/O thread at start and stop, a handover's thread).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::net::UnixDatagram;

/// Where a process started by a handover finds the service manager's
/// socket (empty: there is none).
pub(crate) const MANAGER_VAR: &str = "MAITRED_MANAGER_NOTIFY_SOCKET";

/// Sends one notification to the socket `addr`: a path, or on Linux
/// `@name` for an abstract socket (as systemd allows).
pub(crate) fn send(addr: &OsStr, msg: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::ffi::OsStrExt;
        if let Some(name) = addr.as_bytes().strip_prefix(b"@") {
            let a = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(msg.as_bytes(), &a)?;
            return Ok(());
        }
    }
    sock.send_to(msg.as_bytes(), std::path::Path::new(addr))?;
    Ok(())
}

/// The service manager's socket: `MAITRED_MANAGER_NOTIFY_SOCKET` in a
/// process a handover started, else `NOTIFY_SOCKET`.
pub(crate) fn manager() -> Option<OsString> {
    match std::env::var_os(MANAGER_VAR) {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(v),
        None => std::env::var_os("NOTIFY_SOCKET").filter(|v| !v.is_empty()),
    }
}

/// `READY=1` to `NOTIFY_SOCKET`, if set: the server runs its loop.
pub(crate) fn ready() {
    if let Some(addr) = std::env::var_os("NOTIFY_SOCKET").filter(|v| !v.is_empty()) {
        let msg = format!("READY=1\nMAINPID={}\n", std::process::id());
        if let Err(e) = send(&addr, &msg) {
            crate::log_warning!(
                "could not tell NOTIFY_SOCKET={addr:?} that this server is ready: {e}"
            );
        }
    }
}

/// `msg` to the service manager, if there is one (failures are logged).
pub(crate) fn to_manager(msg: &str) {
    if let Some(addr) = manager() {
        if let Err(e) = send(&addr, msg) {
            crate::log_warning!(
                "could not send {:?} to the service manager's socket {addr:?}: {e}",
                msg.trim_end()
            );
        }
    }
}

/// What one notification says that a handover cares about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Notice {
    /// `READY=1`.
    pub ready: bool,
    /// `MAINPID=`.
    pub main_pid: Option<u32>,
}

/// Reads a notification: newline-separated `KEY=VALUE` lines; unknown keys
/// and lines that are not of that form are ignored, as systemd does.
pub(crate) fn parse(msg: &[u8]) -> Notice {
    let mut n = Notice::default();
    for line in msg.split(|&b| b == b'\n') {
        match line {
            b"READY=1" => n.ready = true,
            _ => {
                if let Some(v) = line.strip_prefix(b"MAINPID=") {
                    n.main_pid = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok());
                }
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_are_read_as_systemd_reads_them() {
        assert_eq!(
            parse(b"READY=1\nMAINPID=42\n"),
            Notice {
                ready: true,
                main_pid: Some(42)
            }
        );
        assert!(!parse(b"STATUS=starting\nREADY=0").ready);
        assert_eq!(parse(b"READY=1").main_pid, None);
        assert_eq!(parse(b"MAINPID=x\nREADY=10").main_pid, None);
        assert!(!parse(b"READY=10").ready);
    }

    #[test]
    fn a_notification_arrives_on_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
        let err = send(OsStr::new("/nonexistent/notify"), "READY=1\n").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
