//! Version 2: the binary header (the rules are in the parent module's
//! docs).
//!
//! Thread: the I/O thread.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{
    Header, Parsed, ProxyError, MAX_HEADER_LEN, UNIX_PATH_LEN, V2_FIXED_LEN, V2_SIGNATURE,
};

/// The type of the TLV that carries a CRC32c of the whole header.
const TLV_CRC32C: u8 = 0x03;

/// A v2 header, checked in the order of its bytes so that the first
/// impossible one is the error.
pub(super) fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    for (i, (b, s)) in buf.iter().zip(V2_SIGNATURE.iter()).enumerate() {
        if b != s {
            return Err(ProxyError::at(i, "not the v2 signature"));
        }
    }
    let Some(&version_command) = buf.get(12) else {
        return Ok(Parsed::Incomplete);
    };
    if version_command >> 4 != 2 {
        return Err(ProxyError::at(12, "v2 version is not 2"));
    }
    let local = match version_command & 0x0f {
        0x0 => true,
        0x1 => false,
        _ => return Err(ProxyError::at(12, "v2 command is neither LOCAL nor PROXY")),
    };
    let Some(&family) = buf.get(13) else {
        return Ok(Parsed::Incomplete);
    };
    let address_len = match family {
        0x00 => 0,
        0x11 => 12,
        0x21 => 36,
        0x31 => 2 * UNIX_PATH_LEN,
        0x12 | 0x22 | 0x32 => return Err(ProxyError::at(13, "v2 datagram transport on a stream")),
        _ if family >> 4 > 3 => return Err(ProxyError::at(13, "v2 address family unknown")),
        _ if family & 0x0f > 2 => return Err(ProxyError::at(13, "v2 transport unknown")),
        _ => {
            return Err(ProxyError::at(
                13,
                "v2 address family and transport do not go together",
            ))
        }
    };
    let (Some(&high), Some(&low)) = (buf.get(14), buf.get(15)) else {
        return Ok(Parsed::Incomplete);
    };
    let len = usize::from(u16::from_be_bytes([high, low]));
    let total = V2_FIXED_LEN + len;
    if total > MAX_HEADER_LEN {
        return Err(ProxyError::at(15, "v2 header longer than 4096 bytes"));
    }
    // A LOCAL header may leave the addresses out.
    let addresses = if local && len == 0 { 0 } else { address_len };
    if len < addresses {
        return Err(ProxyError::at(15, "v2 length shorter than the addresses"));
    }
    let Tlvs::Checked { crc } = check_tlvs(buf, V2_FIXED_LEN + addresses, total)? else {
        return Ok(Parsed::Incomplete);
    };
    let Some(bytes) = buf.get(..total) else {
        return Ok(Parsed::Incomplete);
    };
    if let Some(at) = crc {
        if !crc_matches(bytes, at) {
            return Err(ProxyError::at(total - 1, "v2 CRC32C does not match"));
        }
    }
    let block = bytes.get(V2_FIXED_LEN..).unwrap_or_default();
    let header = match family {
        _ if local => Header::Local,
        0x11 => inet::<4>(block, |a| IpAddr::V4(Ipv4Addr::from(a))),
        0x21 => inet::<16>(block, |a| IpAddr::V6(Ipv6Addr::from(a))),
        0x31 => {
            let (source, destination) = block.split_at(UNIX_PATH_LEN.min(block.len()));
            Header::Unix {
                source: unix_path(source),
                destination: unix_path(destination.get(..UNIX_PATH_LEN).unwrap_or_default()),
            }
        }
        _ => Header::Local, // AF_UNSPEC
    };
    Ok(Parsed::Complete {
        header,
        consumed: total,
    })
}

/// How far the TLVs of a v2 header were checked.
#[derive(Debug)]
enum Tlvs {
    /// More bytes are needed.
    Incomplete,
    /// All of them are sound.
    Checked {
        /// Where the CRC32C TLV's value is, if there is one.
        crc: Option<usize>,
    },
}

/// Checks the structure of the TLVs in `buf[start..end]`, as far as `buf`
/// goes.
fn check_tlvs(buf: &[u8], start: usize, end: usize) -> Result<Tlvs, ProxyError> {
    let mut pos = start;
    // The byte that decided where `pos` is: the length's, then each TLV's.
    let mut decided_at = 15;
    let mut crc = None;
    loop {
        match end.saturating_sub(pos) {
            0 => return Ok(Tlvs::Checked { crc }),
            1 | 2 => {
                return Err(ProxyError::at(
                    decided_at,
                    "v2 ends with 1 or 2 bytes, too few for a TLV",
                ))
            }
            _ => {}
        }
        let Some(&kind) = buf.get(pos) else {
            return Ok(Tlvs::Incomplete);
        };
        if kind == TLV_CRC32C && crc.is_some() {
            return Err(ProxyError::at(pos, "v2 has two CRC32C TLVs"));
        }
        let (Some(&high), Some(&low)) = (buf.get(pos + 1), buf.get(pos + 2)) else {
            return Ok(Tlvs::Incomplete);
        };
        let value_len = usize::from(u16::from_be_bytes([high, low]));
        let next = pos + 3 + value_len;
        if next > end {
            return Err(ProxyError::at(pos + 2, "v2 TLV runs past the header's end"));
        }
        if kind == TLV_CRC32C {
            if value_len != 4 {
                return Err(ProxyError::at(pos + 2, "v2 CRC32C TLV is not 4 bytes"));
            }
            crc = Some(pos + 3);
        }
        decided_at = pos + 2;
        pos = next;
    }
}

/// A v2 TCP header's addresses: two addresses of `N` bytes, two ports
/// (`block` was checked to hold them).
fn inet<const N: usize>(block: &[u8], ip: impl Fn([u8; N]) -> IpAddr) -> Header {
    /// The next `M` bytes of `rest` (zeros past its end).
    fn take<const M: usize>(rest: &mut &[u8]) -> [u8; M] {
        match rest.split_first_chunk::<M>() {
            Some((a, r)) => {
                *rest = r;
                *a
            }
            None => [0; M],
        }
    }
    let mut rest = block;
    let source = ip(take::<N>(&mut rest));
    let destination = ip(take::<N>(&mut rest));
    let source_port = u16::from_be_bytes(take(&mut rest));
    let destination_port = u16::from_be_bytes(take(&mut rest));
    Header::Inet {
        source: SocketAddr::new(source, source_port),
        destination: SocketAddr::new(destination, destination_port),
    }
}

/// A `sun_path`: up to its first NUL byte, or for an abstract socket
/// (leading NUL) all of it but the trailing NUL padding; empty for an
/// unnamed socket (all NUL).
fn unix_path(path: &[u8]) -> Vec<u8> {
    let len = match path.split_first() {
        Some((0, rest)) => rest.iter().rposition(|&b| b != 0).map_or(0, |i| i + 2),
        _ => path.iter().position(|&b| b == 0).unwrap_or(path.len()),
    };
    path.get(..len).unwrap_or_default().to_vec()
}

/// Whether the CRC32C TLV whose value is at `header[at..at + 4]` holds the
/// CRC32c of the whole header computed with that value as zeros.
fn crc_matches(header: &[u8], at: usize) -> bool {
    let (before, rest) = header.split_at(at.min(header.len()));
    let Some((sent, after)) = rest.split_first_chunk::<4>() else {
        return false;
    };
    let crc = crc32c(crc32c(crc32c(!0, before), &[0; 4]), after);
    !crc == u32::from_be_bytes(*sent)
}

/// Runs the CRC32c (Castagnoli, reflected polynomial 0x82F63B78) of
/// `bytes` on from `crc` (start with `!0`, finish with `!`).
pub(super) fn crc32c(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    crc
}
