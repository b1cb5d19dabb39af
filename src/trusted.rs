//! The `trusted_proxy` setting: which peers the server believes when they
//! say who the client is ([`TrustedProxies`]).
//!
//! The setting is parsed once, when the settings are checked
//! ([`Adjustments::validate`](crate::Adjustments::validate)) and when the
//! proxy-header middleware is built (`proxy_headers`); the middleware then
//! asks it, for each request, whether the connection's peer is trusted.
//! This module knows neither of them: it takes the setting's string and
//! answers for an address.
//!
//! Thread: any (parsed at start-up, then only read).

use std::net::IpAddr;

use crate::error::Error;

/// An address range: `addr/prefix` with the host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => mask_v4(u32::from(a), self.prefix) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => mask_v6(u128::from(a), self.prefix) == u128::from(n),
            _ => false,
        }
    }
}

fn mask_v4(a: u32, prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p if p >= 32 => a,
        p => a & (u32::MAX << (32 - p)),
    }
}

fn mask_v6(a: u128, prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p if p >= 128 => a,
        p => a & (u128::MAX << (128 - p)),
    }
}

/// The parsed `trusted_proxy` setting: which peers may send proxy headers.
///
/// The setting is a comma-separated list (whitespace around elements is
/// ignored) of:
///
/// * an IP address: `192.0.2.10`, `2001:db8::10` or `[2001:db8::10]`;
/// * a CIDR range: `10.0.0.0/8`, `fd00::/8`, `[fd00::]/8` (host bits below
///   the prefix are ignored: `10.1.2.3/8` is `10.0.0.0/8`);
/// * `*`: any peer (waitress's wildcard);
/// * `localhost`: a client on the unix-domain socket (whose address is
///   `localhost`, as in waitress). It does not match TCP peers such as
///   `127.0.0.1`; list those as addresses.
///
/// An IPv4 peer seen as an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, on a
/// dual-stack socket) matches the IPv4 entries.
///
/// ```
/// use maitred::__private::TrustedProxies;
///
/// let t = TrustedProxies::parse("10.0.0.0/8, 192.0.2.10, fd00::/8").unwrap();
/// assert!(t.trusts("10.20.30.40"));
/// assert!(t.trusts("192.0.2.10"));
/// assert!(t.trusts("fd00::1"));
/// assert!(!t.trusts("192.0.2.11"));
/// assert!(!t.trusts("localhost"));
/// let e = TrustedProxies::parse("10.0.0.1, proxy.internal").unwrap_err();
/// assert!(e.to_string().contains("\"proxy.internal\""));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedProxies {
    any: bool,
    localhost: bool,
    nets: Vec<Net>,
}

impl TrustedProxies {
    /// Parses a `trusted_proxy` value. The error names the element that is
    /// not an address, a range, `*` or `localhost`.
    pub fn parse(spec: &str) -> Result<TrustedProxies, Error> {
        let mut t = TrustedProxies {
            any: false,
            localhost: false,
            nets: Vec::new(),
        };
        for raw in spec.split(',') {
            let el = raw.trim();
            let bad = |why: &str| {
                Error::config(format!(
                    "invalid trusted_proxy element {el:?} in {spec:?}: {why}"
                ))
            };
            if el.is_empty() {
                return Err(bad("empty element (expected an IP address, a CIDR range such as 10.0.0.0/8 or fd00::/8, \"*\" or \"localhost\")"));
            }
            if el == "*" {
                t.any = true;
                continue;
            }
            if el.eq_ignore_ascii_case("localhost") {
                t.localhost = true;
                continue;
            }
            let (addr, prefix) = match el.split_once('/') {
                Some((a, p)) => (a.trim(), Some(p.trim())),
                None => (el, None),
            };
            let addr = addr
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(addr);
            let ip: IpAddr = addr.parse().map_err(|_| {
                bad("not an IP address, a CIDR range (such as 10.0.0.0/8 or fd00::/8), \"*\" or \"localhost\"")
            })?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => {
                    let n = if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                        p.parse::<u8>().ok()
                    } else {
                        None
                    };
                    match n {
                        Some(n) if n <= max => n,
                        _ => {
                            return Err(bad(&format!(
                                "the prefix length must be a number from 0 to {max}"
                            )))
                        }
                    }
                }
            };
            let addr = match ip {
                IpAddr::V4(a) => IpAddr::V4(mask_v4(u32::from(a), prefix).into()),
                IpAddr::V6(a) => IpAddr::V6(mask_v6(u128::from(a), prefix).into()),
            };
            t.nets.push(Net { addr, prefix });
        }
        Ok(t)
    }

    /// Whether `*` is in the list.
    pub fn trusts_any(&self) -> bool {
        self.any
    }

    /// Whether a peer with this address (the connection's `REMOTE_ADDR`:
    /// an IP address, or `localhost` for a unix-socket client) is trusted.
    pub fn trusts(&self, remote_addr: &str) -> bool {
        if self.any {
            return true;
        }
        if remote_addr == "localhost" {
            return self.localhost;
        }
        match remote_addr.parse::<IpAddr>() {
            Ok(ip) => self.trusts_ip(ip),
            Err(_) => false,
        }
    }

    /// Whether a TCP peer with this address (the socket's peer address) is
    /// trusted: what [`trusts`](Self::trusts) answers for its `REMOTE_ADDR`,
    /// without formatting the address first. A unix-socket peer has no IP
    /// address; it is `trusts("localhost")`.
    pub fn trusts_ip(&self, ip: IpAddr) -> bool {
        if self.any {
            return true;
        }
        let canonical = ip.to_canonical();
        self.nets
            .iter()
            .any(|n| n.contains(ip) || (canonical != ip && n.contains(canonical)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adjustments::Adjustments;

    #[test]
    fn trusted_proxy_lists_and_ranges() {
        let t = TrustedProxies::parse(
            " 10.0.0.0/8 ,192.0.2.10, [2001:db8::1], fd00::/8, 172.16.5.4/12",
        )
        .unwrap();
        for yes in [
            "10.0.0.1",
            "10.255.255.255",
            "192.0.2.10",
            "2001:db8::1",
            "fd12::9",
            "172.31.0.1",
            "::ffff:10.1.2.3",
        ] {
            assert!(t.trusts(yes), "{yes}");
        }
        for no in [
            "11.0.0.1",
            "192.0.2.11",
            "2001:db8::2",
            "fe00::1",
            "172.32.0.1",
            "localhost",
            "junk",
            "",
        ] {
            assert!(!t.trusts(no), "{no}");
        }
        let any = TrustedProxies::parse("*").unwrap();
        assert!(any.trusts_any() && any.trusts("localhost") && any.trusts("203.0.113.9"));
        let l = TrustedProxies::parse("localhost, 127.0.0.1").unwrap();
        assert!(l.trusts("localhost") && l.trusts("127.0.0.1") && !l.trusts("::1"));
        let all4 = TrustedProxies::parse("0.0.0.0/0").unwrap();
        assert!(all4.trusts("1.2.3.4") && !all4.trusts("::1"));
        let all6 = TrustedProxies::parse("::/0").unwrap();
        assert!(all6.trusts("::1") && !all6.trusts("1.2.3.4"));
        let bracketed = TrustedProxies::parse("[2001:db8::]/32").unwrap();
        assert!(bracketed.trusts("2001:db8:ffff::1"));
    }

    #[test]
    fn a_socket_peer_is_trusted_as_its_remote_addr_is() {
        let peers: [IpAddr; 7] = [
            "10.1.2.3".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
            "192.0.2.11".parse().unwrap(),
            "::1".parse().unwrap(),
            "fd00::9".parse().unwrap(),
            "::ffff:10.0.0.1".parse().unwrap(),
            "::ffff:127.0.0.1".parse().unwrap(),
        ];
        for spec in [
            "10.0.0.0/8, fd00::/8",
            "localhost",
            "127.0.0.1",
            "::/0",
            "*",
        ] {
            let t = TrustedProxies::parse(spec).unwrap();
            for ip in peers {
                assert_eq!(t.trusts_ip(ip), t.trusts(&ip.to_string()), "{spec} {ip}");
            }
        }
        // `localhost` is the unix socket, never a TCP peer.
        let l = TrustedProxies::parse("localhost").unwrap();
        assert!(l.trusts("localhost") && !l.trusts_ip("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn trusted_proxy_errors_name_the_element() {
        for (spec, element, why) in [
            (
                "10.0.0.1, proxy.internal",
                "proxy.internal",
                "not an IP address",
            ),
            ("10.0.0.1,", "", "empty element"),
            ("10.0.0.0/33", "10.0.0.0/33", "from 0 to 32"),
            ("fd00::/129", "fd00::/129", "from 0 to 128"),
            ("10.0.0.0/", "10.0.0.0/", "prefix length"),
            ("10.0.0.0/+8", "10.0.0.0/+8", "prefix length"),
            ("fe80::1%eth0", "fe80::1%eth0", "not an IP address"),
            (
                "10.0.0.1 10.0.0.2",
                "10.0.0.1 10.0.0.2",
                "not an IP address",
            ),
        ] {
            let e = TrustedProxies::parse(spec).unwrap_err().to_string();
            assert!(e.contains(&format!("element {element:?}")), "{e}");
            assert!(e.contains(why), "{e}");
            assert!(e.starts_with("invalid trusted_proxy element"), "{e}");
            // Adjustments::resolve reports it.
            let adj = Adjustments::default()
                .listen(&["127.0.0.1:0"])
                .trusted_proxy(spec);
            assert_eq!(adj.resolve().unwrap_err().to_string(), e);
        }
    }
}
