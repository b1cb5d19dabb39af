//! systemd socket activation: the listening sockets a service manager
//! opened and passed to this process, as `sd_listen_fds(3)` finds them.
//!
//! The protocol: the manager starts the process with descriptors 3, 4, ...
//! open, and sets `LISTEN_FDS` (how many) and `LISTEN_PID` (the process
//! they are meant for; a child that inherited the variables must not take
//! them). `LISTEN_FDNAMES` may name them; this server does not use the
//! names. All three variables are removed once read, as
//! `sd_listen_fds(1)` does, so that programs this process starts do not
//! take the descriptors too.
//!
//! Thread: start-up, on the thread that calls `create_server`.

use std::os::fd::RawFd;

use crate::error::Error;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub(crate) const LISTEN_FDS_START: RawFd = 3;

/// The descriptors `LISTEN_PID`/`LISTEN_FDS` pass to process `my_pid`.
///
/// Errors name the variable and its value: a missing variable, a value that
/// is not a number, a `LISTEN_PID` of another process, or no descriptors.
pub(crate) fn listen_fds(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    my_pid: u32,
) -> Result<Vec<RawFd>, Error> {
    let pid = listen_pid.ok_or_else(|| {
        Error::config(
            "systemd_socket_activation is set but LISTEN_PID is not: this process was not started by socket activation",
        )
    })?;
    let pid: u32 = pid.trim().parse().map_err(|_| {
        Error::config(format!(
            "systemd_socket_activation: LISTEN_PID is not a process id: {pid:?}"
        ))
    })?;
    if pid != my_pid {
        return Err(Error::config(format!(
            "systemd_socket_activation: LISTEN_PID is {pid}, not this process ({my_pid}): the sockets are meant for another process"
        )));
    }
    let count = listen_fds
        .ok_or_else(|| Error::config("systemd_socket_activation is set but LISTEN_FDS is not"))?;
    let n: RawFd = count.trim().parse().map_err(|_| {
        Error::config(format!(
            "systemd_socket_activation: LISTEN_FDS is not a number of descriptors: {count:?}"
        ))
    })?;
    if n <= 0 {
        return Err(Error::config(format!(
            "systemd_socket_activation: LISTEN_FDS is {count:?}: no sockets were passed"
        )));
    }
    let end = LISTEN_FDS_START.checked_add(n).ok_or_else(|| {
        Error::config(format!(
            "systemd_socket_activation: LISTEN_FDS is too large: {count:?}"
        ))
    })?;
    Ok((LISTEN_FDS_START..end).collect())
}

/// Reads the variables of this process, removes them, and returns the
/// descriptors they pass.
///
/// Removing environment variables is not synchronised with other threads
/// reading the environment (see [`std::env::remove_var`]): this runs when
/// the server is created, which should happen before the program starts
/// threads that use the environment.
pub(crate) fn take_from_env() -> Result<Vec<RawFd>, Error> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    let result = listen_fds(pid.as_deref(), fds.as_deref(), std::process::id());
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_from_three_on_for_this_process() {
        assert_eq!(listen_fds(Some("42"), Some("1"), 42).unwrap(), vec![3]);
        assert_eq!(
            listen_fds(Some(" 42 "), Some("3"), 42).unwrap(),
            vec![3, 4, 5]
        );
    }

    #[test]
    fn bad_or_foreign_variables_are_clear_errors() {
        let err = |pid: Option<&str>, fds: Option<&str>| {
            listen_fds(pid, fds, 42).unwrap_err().to_string()
        };
        assert!(err(None, Some("1")).contains("LISTEN_PID is not"));
        assert!(err(Some("x"), Some("1")).contains("LISTEN_PID is not a process id: \"x\""));
        assert!(err(Some("41"), Some("1")).contains("LISTEN_PID is 41, not this process (42)"));
        assert!(err(Some("42"), None).contains("LISTEN_FDS is not"));
        assert!(err(Some("42"), Some("two")).contains("LISTEN_FDS is not a number"));
        assert!(err(Some("42"), Some("0")).contains("no sockets were passed"));
        assert!(err(Some("42"), Some("-1")).contains("no sockets were passed"));
        assert!(err(Some("42"), Some("2147483647")).contains("too large"));
    }
}
