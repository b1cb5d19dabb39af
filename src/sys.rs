//! Thin, safe wrappers over the libc calls the server makes on sockets,
//! files and signals. Together with the pollers in `dispatcher/` and the
//! trigger, this is the only place with `unsafe` code.
//!
//! Conventions: every descriptor is created close-on-exec (and non-blocking
//! where it is a socket); `EINTR` is retried; errors are `io::Error`s from
//! `errno`.
//!
//! Thread: any: sockets and signals on the I/O thread, sends on workers.

use std::ffi::CString;
use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(crate) mod handover;

/// Calls a libc function that returns -1 and sets `errno` on failure.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        #[allow(unused_unsafe)]
        // SAFETY: the caller of the macro guarantees the arguments satisfy
        // the libc function's contract (valid pointers and lengths).
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// `send` flags: never raise SIGPIPE where the platform lets us say so.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const SEND_FLAGS: libc::c_int = 0;

/// A peer or local address of a stream socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// IPv4 or IPv6.
    Inet(SocketAddr),
    /// A unix-domain socket (the path, when it has one).
    Unix(Option<std::path::PathBuf>),
}

fn cvt_retry<F: FnMut() -> io::Result<T>, T>(mut f: F) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Sets `O_NONBLOCK` and `FD_CLOEXEC` on a descriptor.
pub(crate) fn set_nonblocking_cloexec(fd: RawFd) -> io::Result<()> {
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    if flags & libc::O_NONBLOCK == 0 {
        syscall!(fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
    }
    let fdflags = syscall!(fcntl(fd, libc::F_GETFD))?;
    if fdflags & libc::FD_CLOEXEC == 0 {
        syscall!(fcntl(fd, libc::F_SETFD, fdflags | libc::FD_CLOEXEC))?;
    }
    Ok(())
}

fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful libc call that creates
    // a descriptor, so it is open and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A new non-blocking, close-on-exec stream socket.
pub(crate) fn stream_socket(family: libc::c_int) -> io::Result<OwnedFd> {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        let fd = syscall!(socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0
        ))?;
        Ok(owned(fd))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        let fd = owned(syscall!(socket(family, libc::SOCK_STREAM, 0))?);
        set_nonblocking_cloexec(fd.as_raw_fd())?;
        #[cfg(any(target_os = "macos", target_os = "ios"))]
        setsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1)?;
        Ok(fd)
    }
}

/// `setsockopt` with an `int` value.
pub(crate) fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    syscall!(setsockopt(
        fd,
        level,
        name,
        (&value as *const libc::c_int).cast(),
        mem::size_of::<libc::c_int>() as libc::socklen_t
    ))?;
    Ok(())
}

/// `getsockopt` with an `int` value.
pub(crate) fn getsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    syscall!(getsockopt(
        fd,
        level,
        name,
        (&mut value as *mut libc::c_int).cast(),
        &mut len
    ))?;
    Ok(value)
}

/// Converts an address to a `sockaddr_storage` and its length.
fn sockaddr_from(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data for which all-zero bytes are
    // a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and suitably aligned
            // for sockaddr_in (that is its purpose), and we write through a
            // pointer derived from a live, exclusive reference.
            let sin = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
            {
                sin.sin_len = mem::size_of::<libc::sockaddr_in>() as u8;
            }
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
            {
                sin6.sin6_len = mem::size_of::<libc::sockaddr_in6>() as u8;
            }
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Converts a `sockaddr_storage` filled in by the kernel to an [`Addr`].
fn addr_from(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> io::Result<Addr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len as usize >= mem::size_of::<libc::sockaddr_in>() => {
            let ptr = (storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
            // SAFETY: the family says it holds a sockaddr_in, the kernel wrote
            // that many bytes, and sockaddr_storage is aligned for any sockaddr.
            let sin = unsafe { &*ptr };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(Addr::Inet(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            ))))
        }
        libc::AF_INET6 if len as usize >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok(Addr::Inet(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            ))))
        }
        libc::AF_UNIX => {
            // SAFETY: the family says the storage holds a sockaddr_un, which
            // fits in sockaddr_storage; we only read `len` bytes of it.
            let sun =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_un>() };
            let base = mem::size_of::<libc::sockaddr_un>() - sun.sun_path.len();
            let path_len = (len as usize).saturating_sub(base).min(sun.sun_path.len());
            let bytes: Vec<u8> = sun.sun_path[..path_len]
                .iter()
                .map(|&c| c as u8)
                .take_while(|&b| b != 0)
                .collect();
            if bytes.is_empty() {
                Ok(Addr::Unix(None))
            } else {
                Ok(Addr::Unix(Some(std::path::PathBuf::from(
                    std::ffi::OsStr::from_bytes(&bytes),
                ))))
            }
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unsupported socket address family",
        )),
    }
}

/// Builds a `sockaddr_un` for `path`.
fn sockaddr_un(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let mut sun: libc::sockaddr_un = unsafe { mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "unix socket path contains a NUL byte",
        ));
    }
    if bytes.len() >= sun.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "unix socket path is {} bytes long; the limit is {}",
                bytes.len(),
                sun.sun_path.len() - 1
            ),
        ));
    }
    for (dst, &src) in sun.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    let base = mem::size_of::<libc::sockaddr_un>() - sun.sun_path.len();
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    {
        sun.sun_len = (base + bytes.len() + 1) as u8;
    }
    Ok((sun, (base + bytes.len() + 1) as libc::socklen_t))
}

/// Options for a TCP listener.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListenOptions {
    pub backlog: i32,
    pub reuse_port: bool,
}

/// Creates, binds and listens on a TCP socket. IPv6 sockets get
/// `IPV6_V6ONLY` (as waitress does), every socket `SO_REUSEADDR`.
pub(crate) fn tcp_listener(addr: &SocketAddr, opts: ListenOptions) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let fd = stream_socket(family)?;
    let raw = fd.as_raw_fd();
    setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if opts.reuse_port {
        setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    }
    if family == libc::AF_INET6 {
        setsockopt_int(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    let (storage, len) = sockaddr_from(addr);
    syscall!(bind(
        raw,
        (&storage as *const libc::sockaddr_storage).cast(),
        len
    ))?;
    syscall!(listen(raw, opts.backlog))?;
    Ok(fd)
}

/// Creates, binds and listens on a unix-domain socket at `path`, then sets
/// the file's permissions to `perms` before returning (so that no client
/// can connect before they apply: the socket is not accepted from until the
/// server runs).
pub(crate) fn unix_listener(path: &Path, backlog: i32, perms: u32) -> io::Result<OwnedFd> {
    let fd = stream_socket(libc::AF_UNIX)?;
    let raw = fd.as_raw_fd();
    let (sun, len) = sockaddr_un(path)?;
    syscall!(bind(raw, (&sun as *const libc::sockaddr_un).cast(), len))?;
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    syscall!(chmod(cpath.as_ptr(), perms as libc::mode_t))?;
    syscall!(listen(raw, backlog))?;
    Ok(fd)
}

/// Takes ownership of a descriptor the embedding program handed to the
/// server through the `sockets` setting (or systemd through
/// `LISTEN_FDS`): the server closes it when it stops, as the setting's
/// documentation says. The caller has checked that it is an open,
/// listening stream socket.
pub(crate) fn adopt_inherited(fd: RawFd) -> OwnedFd {
    // SAFETY: the `sockets` setting (and socket activation) hand the
    // descriptor over to the server, which is its only owner from here on;
    // `open_listener` has just queried it, so it is open.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Calls `listen` on an already-bound socket (an inherited one).
pub(crate) fn listen(fd: RawFd, backlog: i32) -> io::Result<()> {
    syscall!(listen(fd, backlog))?;
    Ok(())
}

/// The socket's own address.
pub(crate) fn local_addr(fd: RawFd) -> io::Result<Addr> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    syscall!(getsockname(
        fd,
        (&mut storage as *mut libc::sockaddr_storage).cast(),
        &mut len
    ))?;
    addr_from(&storage, len)
}

/// The socket's type (`SOCK_STREAM`, ...) and family (`AF_INET`, ...).
pub(crate) fn socket_type_and_family(fd: RawFd) -> io::Result<(i32, i32)> {
    let ty = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE)?;
    let family = match local_addr(fd) {
        Ok(Addr::Inet(SocketAddr::V4(_))) => libc::AF_INET,
        Ok(Addr::Inet(SocketAddr::V6(_))) => libc::AF_INET6,
        Ok(Addr::Unix(_)) => libc::AF_UNIX,
        Err(e) => return Err(e),
    };
    Ok((ty, family))
}

/// Accepts one connection: a non-blocking, close-on-exec socket and the
/// peer's address. `WouldBlock` when none is waiting.
pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, Addr)> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let conn = cvt_retry(|| {
        syscall!(accept4(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC
        ))
    })
    .map(owned)?;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let conn = {
        let c = cvt_retry(|| {
            syscall!(accept(
                fd,
                (&mut storage as *mut libc::sockaddr_storage).cast(),
                &mut len
            ))
        })
        .map(owned)?;
        set_nonblocking_cloexec(c.as_raw_fd())?;
        #[cfg(any(target_os = "macos", target_os = "ios"))]
        setsockopt_int(c.as_raw_fd(), libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1)?;
        c
    };
    // A peer that is already gone may leave the address empty; an unnamed
    // unix peer has family AF_UNIX and no path.
    let addr = addr_from(&storage, len).unwrap_or(Addr::Unix(None));
    Ok((conn, addr))
}

/// `recv` into `buf`. `Ok(0)` is end of stream.
pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    cvt_retry(|| {
        // SAFETY: `buf` is a live, exclusive buffer of `buf.len()` bytes.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    })
}

/// Writes the buffers in order with one `sendmsg` (a `writev` that does not
/// raise SIGPIPE). Returns how many bytes were written.
pub(crate) fn send_vectored(fd: RawFd, bufs: &[&[u8]]) -> io::Result<usize> {
    let mut iov: [libc::iovec; 8] = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; 8];
    let mut n = 0;
    for b in bufs.iter().filter(|b| !b.is_empty()).take(iov.len()) {
        iov[n] = libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        };
        n += 1;
    }
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: all-zero is a valid msghdr (null name, no control data).
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = n as _;
    cvt_retry(|| {
        // SAFETY: `msg` points at `n` iovecs that each describe a live
        // buffer borrowed for the duration of the call; the kernel only
        // reads them.
        let r = unsafe { libc::sendmsg(fd, &msg, SEND_FLAGS) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as usize)
        }
    })
}

/// `send` of one buffer.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    send_with(fd, buf, SEND_FLAGS)
}

/// `send` of one buffer that never waits, on a socket that may be in
/// blocking mode (`MSG_DONTWAIT`): what the socket takes now, or
/// `WouldBlock`.
#[cfg_attr(not(feature = "websocket"), allow(dead_code))]
pub(crate) fn send_now(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    send_with(fd, buf, SEND_FLAGS | libc::MSG_DONTWAIT)
}

fn send_with(fd: RawFd, buf: &[u8], flags: libc::c_int) -> io::Result<usize> {
    cvt_retry(|| {
        // SAFETY: `buf` is a live buffer of `buf.len()` bytes, only read.
        let r = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as usize)
        }
    })
}

/// `shutdown(fd, SHUT_WR)`: sends the FIN after what is queued.
pub(crate) fn shutdown_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: shutdown has no memory-safety preconditions; `fd` is a socket
    // the caller owns.
    let r = unsafe { libc::shutdown(fd, libc::SHUT_WR) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `shutdown(fd, SHUT_RDWR)`: ends both directions of the socket (for
/// every descriptor of it), which wakes a thread blocked on it; the
/// descriptor stays open.
pub(crate) fn shutdown_both(fd: RawFd) -> io::Result<()> {
    // SAFETY: shutdown has no memory-safety preconditions; `fd` is a socket
    // the caller keeps open for the call.
    let r = unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Waits until `fd` can be written (or reports a hang-up or an error, which
/// the next send then says), for at most `timeout` (`None`: no limit).
/// Returns false when the time ran out.
pub(crate) fn wait_writable(fd: RawFd, timeout: Option<std::time::Duration>) -> io::Result<bool> {
    let ms = match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    };
    poll_one(fd, libc::POLLOUT, ms)
}

/// Waits until `fd` is readable, at most `timeout`; whether it is (for the
/// tests that race the trigger).
#[cfg(test)]
pub(crate) fn wait_readable(fd: RawFd, timeout: std::time::Duration) -> io::Result<bool> {
    let ms = timeout.as_millis().min(libc::c_int::MAX as u128) as libc::c_int;
    poll_one(fd, libc::POLLIN, ms)
}

/// `poll(2)` on one descriptor for `events`, at most `ms` milliseconds
/// (-1: no limit); whether it became ready (or reported an error).
fn poll_one(fd: RawFd, events: libc::c_short, ms: libc::c_int) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    cvt_retry(|| {
        // SAFETY: one live, exclusive pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r > 0)
        }
    })
}

/// A second descriptor for the same socket (close-on-exec), in blocking
/// mode: for a connection that leaves the loop and is read and written by
/// a thread of its own.
pub(crate) fn dup_blocking(fd: RawFd) -> io::Result<OwnedFd> {
    let new = syscall!(fcntl(fd, libc::F_DUPFD_CLOEXEC, 0))?;
    // SAFETY: fcntl just returned this new descriptor; we own it.
    let owned = unsafe { OwnedFd::from_raw_fd(new) };
    // O_NONBLOCK belongs to the open file, shared with `fd`: the loop no
    // longer uses it (the caller deregistered it), so it is cleared for
    // both.
    let flags = syscall!(fcntl(new, libc::F_GETFL))?;
    if flags & libc::O_NONBLOCK != 0 {
        syscall!(fcntl(new, libc::F_SETFL, flags & !libc::O_NONBLOCK))?;
    }
    Ok(owned)
}

/// Sends up to `len` bytes of `file` from `offset` to the socket, without
/// copying them through user space where the platform has `sendfile(2)`.
/// Returns how many bytes were sent (`WouldBlock` when none could be).
pub(crate) fn sendfile(
    sock: RawFd,
    file: RawFd,
    offset: u64,
    len: u64,
    scratch: &mut Vec<u8>,
) -> io::Result<usize> {
    let len = len.min(1 << 30) as usize;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = scratch;
        let mut off = offset as libc::off_t;
        cvt_retry(|| {
            // SAFETY: `off` is a live, exclusive off_t; both descriptors are
            // open for the duration of the call.
            let r = unsafe { libc::sendfile(sock, file, &mut off, len) };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r as usize)
            }
        })
    }
    #[cfg(target_os = "freebsd")]
    {
        let _ = scratch;
        let mut sent: libc::off_t = 0;
        // SAFETY: null header/trailer vector is allowed; `sent` is a live,
        // exclusive off_t the kernel writes the count into.
        let r = unsafe {
            libc::sendfile(
                file,
                sock,
                offset as libc::off_t,
                len,
                std::ptr::null_mut(),
                &mut sent,
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            // EAGAIN/EINTR with a partial count: report the progress.
            if sent > 0 {
                return Ok(sent as usize);
            }
            return Err(e);
        }
        Ok(sent as usize)
    }
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    {
        let _ = scratch;
        let mut sent: libc::off_t = len as libc::off_t;
        // SAFETY: null header/trailer vector is allowed; `sent` is a live,
        // exclusive off_t: in, the count to send; out, the count sent.
        let r = unsafe {
            libc::sendfile(
                file,
                sock,
                offset as libc::off_t,
                &mut sent,
                std::ptr::null_mut(),
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if sent > 0 {
                return Ok(sent as usize);
            }
            return Err(e);
        }
        Ok(sent as usize)
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "macos",
        target_os = "ios"
    )))]
    {
        let want = len.min(64 * 1024);
        scratch.resize(want, 0);
        let n = cvt_retry(|| {
            // SAFETY: `scratch` has `want` initialised bytes we may overwrite.
            let r = unsafe {
                libc::pread(
                    file,
                    scratch.as_mut_ptr().cast(),
                    want,
                    offset as libc::off_t,
                )
            };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r as usize)
            }
        })?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than expected",
            ));
        }
        send(sock, &scratch[..n])
    }
}

/// Sets `TCP_NODELAY` (errors are reported, not fatal).
pub(crate) fn set_nodelay(fd: RawFd) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
}

/// The TCP port of a service name (`http` → 80), as `getaddrinfo` looks it
/// up (`/etc/services` and the like): what waitress does with a listen entry
/// such as `127.0.0.1:http`. `Ok(None)` when the name is unknown.
pub(crate) fn service_port(name: &str) -> io::Result<Option<u16>> {
    let service = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a service name"))?;
    // SAFETY: all-zero is a valid addrinfo (null pointers, no flags).
    let mut hints: libc::addrinfo = unsafe { mem::zeroed() };
    hints.ai_family = libc::AF_INET;
    hints.ai_socktype = libc::SOCK_STREAM;
    hints.ai_protocol = libc::IPPROTO_TCP;
    hints.ai_flags = libc::AI_PASSIVE;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: `service` is a NUL-terminated string that outlives the call,
    // a null node is allowed with AI_PASSIVE, `hints` is initialised and
    // `res` is a valid out-pointer.
    let rc = unsafe { libc::getaddrinfo(std::ptr::null(), service.as_ptr(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return Ok(None);
    }
    let mut port = None;
    {
        // SAFETY: getaddrinfo succeeded, so `res` points at a valid list
        // whose first entry has an `ai_addr` of `ai_addrlen` bytes; it stays
        // valid until freeaddrinfo below.
        let (addr, len) = unsafe { ((*res).ai_addr, (*res).ai_addrlen) };
        if !addr.is_null() && len as usize >= mem::size_of::<libc::sockaddr_in>() {
            // SAFETY: an AF_INET result's address is a sockaddr_in of at
            // least the size just checked; read_unaligned copies it out.
            let sin = unsafe { std::ptr::read_unaligned(addr.cast::<libc::sockaddr_in>()) };
            port = Some(u16::from_be(sin.sin_port));
        }
    }
    // SAFETY: `res` came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    Ok(port)
}

/// Raises the soft `RLIMIT_NOFILE` to at least `want` (up to the hard
/// limit). Returns the new soft limit.
pub(crate) fn raise_fd_limit(want: u64) -> io::Result<u64> {
    // SAFETY: all-zero is a valid rlimit.
    let mut rl: libc::rlimit = unsafe { mem::zeroed() };
    syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut rl))?;
    let target = (want as libc::rlim_t).min(rl.rlim_max);
    if rl.rlim_cur < target {
        rl.rlim_cur = target;
        syscall!(setrlimit(libc::RLIMIT_NOFILE, &rl))?;
    }
    Ok(rl.rlim_cur as u64)
}

pub(crate) mod signals {
    //! SIGINT/SIGTERM → graceful stop, SIGHUP → reopen the logs, SIGUSR2
    //! → hand over to a new process (`handover.rs`), for [`crate::serve`].
    //!
    //! The handler is async-signal-safe: it stores the signal number in an
    //! atomic and writes to the trigger's descriptor with `write(2)`, which
    //! POSIX lists as async-signal-safe; the loop then sees the flag.

    use std::io;
    use std::os::fd::RawFd;
    use std::sync::atomic::{AtomicI32, Ordering};

    static SIGNALLED: AtomicI32 = AtomicI32::new(0);
    /// SIGHUP arrived: reopen the logs (not a stop).
    static HANGUP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    /// SIGUSR2 arrived: start a handover (not a stop).
    static HANDOVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    /// Every signal `install` handles.
    const HANDLED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR2];
    static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

    extern "C" fn on_signal(sig: libc::c_int) {
        if sig == libc::SIGHUP {
            HANGUP.store(true, Ordering::SeqCst);
        } else if sig == libc::SIGUSR2 {
            HANDOVER.store(true, Ordering::SeqCst);
        } else {
            SIGNALLED.store(sig, Ordering::SeqCst);
        }
        let fd = WAKE_FD.load(Ordering::SeqCst);
        if fd >= 0 {
            let one: u64 = 1;
            // A failed write is harmless: the loop reads the flag on its next
            // timeout anyway.
            // SAFETY: write(2) is async-signal-safe and `one` is 8 live bytes.
            unsafe {
                libc::write(fd, (&one as *const u64).cast(), 8);
            }
        }
    }

    /// Installs the handler for SIGINT, SIGTERM, SIGHUP and SIGUSR2;
    /// `wake_fd` is written to when a signal arrives.
    pub(crate) fn install(wake_fd: RawFd) -> io::Result<()> {
        WAKE_FD.store(wake_fd, Ordering::SeqCst);
        SIGNALLED.store(0, Ordering::SeqCst);
        HANGUP.store(false, Ordering::SeqCst);
        HANDOVER.store(false, Ordering::SeqCst);
        for sig in HANDLED {
            // SAFETY: all-zero is a valid sigaction; we then set a handler
            // with the right C signature and an empty mask.
            let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            // SAFETY: `sa.sa_mask` is a live sigset_t.
            unsafe {
                libc::sigemptyset(&mut sa.sa_mask);
            }
            super::syscall!(sigaction(sig, &sa, std::ptr::null_mut()))?;
        }
        Ok(())
    }

    /// Restores the default disposition and forgets the descriptor.
    pub(crate) fn uninstall() {
        WAKE_FD.store(-1, Ordering::SeqCst);
        for sig in HANDLED {
            // SAFETY: all-zero is a valid sigaction; SIG_DFL restores the
            // default disposition.
            let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
            sa.sa_sigaction = libc::SIG_DFL;
            // SAFETY: valid signal number and a live sigaction.
            unsafe {
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    }

    /// Whether SIGHUP arrived since the last call.
    pub(crate) fn take_hangup() -> bool {
        HANGUP.swap(false, Ordering::SeqCst)
    }

    /// Whether SIGUSR2 arrived since the last call.
    pub(crate) fn take_handover() -> bool {
        HANDOVER.swap(false, Ordering::SeqCst)
    }

    /// The stopping signal received since `install`, if any (and clears
    /// it).
    pub(crate) fn take() -> Option<i32> {
        match SIGNALLED.swap(0, Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for a in ["127.0.0.1:8080", "[::1]:443", "[fe80::1%3]:1"] {
            let addr: SocketAddr = a.parse().unwrap();
            let (st, len) = sockaddr_from(&addr);
            assert_eq!(addr_from(&st, len).unwrap(), Addr::Inet(addr));
        }
    }

    #[test]
    fn service_names_resolve_to_ports() {
        if !Path::new("/etc/services").exists() {
            eprintln!("skipped: no /etc/services on this machine");
            return;
        }
        assert_eq!(service_port("http").unwrap(), Some(80));
        assert_eq!(service_port("https").unwrap(), Some(443));
        assert_eq!(service_port("no-such-service-name").unwrap(), None);
        assert!(service_port("a\0b").is_err());
    }

    #[test]
    fn unix_path_too_long_is_an_error() {
        let long = "x".repeat(300);
        let err = sockaddr_un(Path::new(&long)).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
    }
}
