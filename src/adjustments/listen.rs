//! The listening endpoints the settings name ([`ListenSpec`]): `listen`
//! entries (or `host` and `port`) resolved to socket addresses, as
//! waitress's `getaddrinfo` loop does, or the unix socket, or inherited
//! descriptors ([`Adjustments::resolve`]).
//!
//! Thread: any.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::RawFd;
use std::path::PathBuf;

use super::Adjustments;
use crate::error::Error;

/// A listening endpoint after validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenSpec {
    /// A TCP address to bind.
    Tcp(SocketAddr),
    /// A unix-domain socket path to bind.
    Unix(PathBuf),
    /// An inherited, already-bound listening socket.
    Fd(RawFd),
}

impl Adjustments {
    /// Checks the settings against each other (see
    /// [`validate`](Adjustments::validate)) and resolves the listening
    /// endpoints: `listen` entries through `getaddrinfo` (each address
    /// family of a name, unless `ipv4`/`ipv6` rule it out; a port may be a
    /// service name such as `http`), or the unix socket, or the inherited
    /// descriptors.
    ///
    /// With `systemd_socket_activation`, the descriptors must have been
    /// taken first ([`take_systemd_sockets`](Adjustments::take_systemd_sockets);
    /// [`create_server`](crate::create_server) does it).
    pub(crate) fn resolve(&self) -> Result<Vec<ListenSpec>, Error> {
        self.validate()?;
        if self.systemd_socket_activation && !self.activated {
            return Err(Error::config(
                "systemd_socket_activation is set but the sockets systemd passed were not taken yet (Adjustments::take_systemd_sockets)",
            ));
        }
        let listen = self.given("listen");
        if let Some(path) = &self.unix_socket {
            return Ok(vec![ListenSpec::Unix(path.clone())]);
        }
        if !self.sockets.is_empty() {
            return Ok(self.sockets.iter().map(|&fd| ListenSpec::Fd(fd)).collect());
        }
        let entries: Vec<String> = if listen {
            self.listen.clone()
        } else {
            let host = self.host.clone().unwrap_or_else(|| "0.0.0.0".into());
            let port = self.port.unwrap_or(8080);
            vec![format_host_port(&host, port)]
        };
        let mut out: Vec<ListenSpec> = Vec::new();
        let mut seen: Vec<(IpAddr, u16)> = Vec::new();
        for entry in &entries {
            for addr in self.resolve_entry(entry)? {
                // Same address and port once (the zone index does not
                // count); port 0 always binds anew.
                let key = (addr.ip(), addr.port());
                if addr.port() != 0 && seen.contains(&key) {
                    continue;
                }
                seen.push(key);
                out.push(ListenSpec::Tcp(addr));
            }
        }
        if out.is_empty() {
            return Err(Error::config("Invalid host/port specified."));
        }
        Ok(out)
    }

    /// Resolves one `host:port` listen entry into socket addresses.
    fn resolve_entry(&self, entry: &str) -> Result<Vec<SocketAddr>, Error> {
        let invalid = || Error::config(format!("Invalid host/port specified: {entry:?}"));
        let default_port = self.port.unwrap_or(8080);
        // waitress: rsplit(":", 1), unless the port part contains "]".
        let (host, port) = match entry.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, p),
            _ => (entry, ""),
        };
        let port: u16 = if port.is_empty() {
            if entry.contains(':') && !entry.ends_with(']') && !entry.starts_with('[') {
                return Err(invalid());
            }
            default_port
        } else if let Ok(p) = port.parse::<u16>() {
            p
        } else {
            // A service name (`127.0.0.1:http`), as getaddrinfo takes it.
            crate::sys::service_port(port)
                .ok()
                .flatten()
                .ok_or_else(invalid)?
        };
        let host = host.trim();
        let bracketed = host.starts_with('[') && host.ends_with(']');
        let host = if bracketed {
            &host[1..host.len() - 1]
        } else {
            host
        };
        let mut addrs: Vec<SocketAddr> = Vec::new();
        if host == "*" || host.is_empty() {
            if self.ipv4 {
                addrs.push(SocketAddr::from(([0, 0, 0, 0], port)));
            }
            if self.ipv6 {
                addrs.push(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)));
            }
            return Ok(addrs);
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if ip.is_ipv6() && !self.ipv6 {
                return Err(Error::config(format!(
                    "Invalid host/port specified: {entry:?} is an IPv6 address and ipv6 is disabled"
                )));
            }
            if ip.is_ipv4() && !self.ipv4 {
                return Err(Error::config(format!(
                    "Invalid host/port specified: {entry:?} is an IPv4 address and ipv4 is disabled"
                )));
            }
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        // A link-local IPv6 address with a zone ("fe80::1%eth0").
        if let Some((ip, zone)) = host.split_once('%') {
            if let Ok(std::net::IpAddr::V6(v6)) = ip.parse::<IpAddr>() {
                let scope = zone.parse::<u32>().map_err(|_| invalid())?;
                if !self.ipv6 {
                    return Err(invalid());
                }
                return Ok(vec![SocketAddr::V6(std::net::SocketAddrV6::new(
                    v6, port, 0, scope,
                ))]);
            }
        }
        let resolved = (host, port)
            .to_socket_addrs()
            .map_err(|e| Error::config(format!("Invalid host/port specified: {entry:?}: {e}")))?;
        for a in resolved {
            if (a.is_ipv4() && self.ipv4) || (a.is_ipv6() && self.ipv6) {
                addrs.push(a);
            }
        }
        if addrs.is_empty() {
            return Err(invalid());
        }
        Ok(addrs)
    }
}

fn format_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenSpec::Tcp(a) => write!(f, "{a}"),
            ListenSpec::Unix(p) => write!(f, "unix:{}", p.display()),
            ListenSpec::Fd(fd) => write!(f, "fd:{fd}"),
        }
    }
}
