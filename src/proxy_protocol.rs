//! The PROXY protocol, versions 1 and 2: a strict, sans-IO parser of the
//! header that an L4 load balancer (HAProxy's `send-proxy` and
//! `send-proxy-v2`, AWS NLB, Envoy, ...) puts before the first byte it
//! relays, saying who the client really is.
//!
//! [`parse`] is given the bytes a connection has received so far (from its
//! first byte, however they arrived) and says: not enough yet
//! ([`Parsed::Incomplete`]); here is the header and how many bytes it took,
//! the rest being the HTTP stream ([`Parsed::Complete`]); or this is no
//! header ([`ProxyError`], with a short reason and the first byte that made
//! it impossible). It holds no state between calls: the caller calls it
//! again, from the start of its buffer, after every read, and never needs
//! to buffer more than [`MAX_HEADER_LEN`] bytes to get an answer.
//!
//! It is meant for connections from trusted proxies only, which must send
//! the header: a buffer that begins with neither `PROXY ` nor the v2
//! signature is an error at its first byte. From any other peer the server
//! does not call it, and a PROXY header is then parsed as HTTP, and fails
//! as HTTP. The spec (haproxy's `doc/proxy-protocol.txt`, section 2) is
//! firm on that:
//!
//! > The receiver MUST be configured to only receive the protocol described
//! > in this specification and MUST not try to guess whether the protocol
//! > header is present or not.
//!
//! Thread: the I/O thread, which reads a new connection's first bytes
//! (the parser is plain computation over a slice: no I/O, no allocation
//! except a v2 `AF_UNIX` header's two paths).
//!
//! What the caller does with the answer: on `Complete`, drop the
//! `consumed` bytes and parse the rest as HTTP, with [`Header::client`] as
//! the client's address when it is `Some` (else the socket's); on an
//! error, log it and close the connection without an answer ("Any sequence
//! which does not exactly match the protocol must be discarded and cause
//! the receiver to abort the connection"). [`encode_v1`] and [`encode_v2`]
//! write headers for tests; the server never sends one.
//!
//! # Version 1 (section 2.1)
//!
//! One line: `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`, the same with
//! `TCP6`, or `PROXY UNKNOWN` followed by the CRLF or by a space and
//! anything up to the CRLF. The rules held to:
//!
//! * "exactly one space" between the fields, and none before the CRLF.
//! * IPv4: "a series of exactly 4 integers in the range \[0..255\]
//!   inclusive written in decimal representation separated by exactly one
//!   dot"; "Heading zeroes are not permitted in front of numbers in order to
//!   avoid any possible confusion with octal numbers" (`0` itself is fine,
//!   `01` is not).
//! * IPv6: the text forms of RFC 4291 section 2.2 (groups of one to four
//!   hex digits in either case, one `::` standing for one or more zero
//!   groups, a dotted quad as the last 32 bits, "The total number of
//!   decoded bits must exactly be 128"), exactly what `std`'s
//!   [`Ipv6Addr`](std::net::Ipv6Addr) parser takes (the tests check that
//!   the two agree). No brackets and no zone (`%eth0`). The `::` need not
//!   stand for the longest run of zeroes (RFC 5952's canonical form):
//!   senders print with `inet_ntop`, whose choices vary between C
//!   libraries.
//! * Both addresses are of the family named: `TCP4` with an IPv6 address
//!   (or `TCP6` with a bare dotted quad) is an error.
//! * Ports: decimal `0` to `65535`, digits only (no sign, no spaces), with
//!   no leading zero, for the same "Heading zeroes are not permitted" rule
//!   (HAProxy prints ports with `%u` and never sends one; its own receiver
//!   is laxer than the spec here, this one is not).
//! * `UNKNOWN`: "the receiver must ignore anything presented before the
//!   CRLF is found", and "SHOULD accept the connection and use the real
//!   connection's parameters" ([`Header::Unknown`]). What follows the
//!   keyword is ignored, except that a CR or an LF in it ends the line
//!   (and must be a CRLF).
//! * "If the CRLF sequence is not found in the first 107 characters, the
//!   receiver should declare the line invalid" ([`V1_MAX_LEN`]), and "The
//!   receiver must not tolerate a single CR or LF character to end the line
//!   when a complete CRLF sequence is expected": a bare LF, or a CR not
//!   followed by LF, is an error.
//! * "Any sequence which does not exactly match the protocol must be
//!   discarded and cause the receiver to abort the connection. It is
//!   recommended to abort the connection as soon as possible": the error
//!   comes with the first byte that no valid line can have there, without
//!   waiting for the CRLF or for 107 bytes. That includes the length limit:
//!   a `TCP6` line whose addresses (in long forms with dotted quads) leave
//!   no room for the shortest ports and CRLF within 107 bytes fails at the
//!   byte that uses the room up.
//!
//! # Version 2 (section 2.2)
//!
//! The 12-byte signature [`V2_SIGNATURE`], then:
//!
//! * Byte 13 (index 12): "The highest four bits contains the version. As of this
//!   specification, it must always be sent as \x2 and the receiver must
//!   only accept this value." The low four bits are the command: `LOCAL`
//!   (0) or `PROXY` (1); "Receivers must drop connections presenting
//!   unexpected values here."
//! * Byte 14 (index 13), the family and transport: `AF_UNSPEC` (`0x00`), or TCP over
//!   IPv4 (`0x11`), IPv6 (`0x21`) or `AF_UNIX` stream (`0x31`). Unassigned
//!   families and transports "must be rejected as invalid by receivers", and
//!   so are pairs that are not among the spec's "protocol bytes ...
//!   expected" (`0x01`, `0x10`, ...). The datagram ones (`0x12`, `0x22`,
//!   `0x32`) are refused as well: this is an HTTP server on a stream
//!   socket, and a sender that says UDP is misconfigured.
//! * Bytes 15-16 (indices 14-15), the length of what follows ("the length of the protocol
//!   header in bytes is always exactly 16 + this value"). For `PROXY` with a
//!   family it must hold the addresses (12, 36 or 216 bytes). A `LOCAL`
//!   header "should not present any address so it sets this field to
//!   zero", and "must use the real connection endpoints and discard the
//!   protocol block including the family which is ignored": its length is
//!   0 or holds the family's addresses, which are then skipped. The total
//!   is at most [`MAX_HEADER_LEN`].
//! * `LOCAL` (a health check by the proxy itself) and `PROXY` with
//!   `AF_UNSPEC` ("The receiver should ignore address information") give
//!   [`Header::Local`]: the socket's addresses stay.
//! * What follows the addresses is TLVs ("The first byte is the Type of the
//!   vector. The second two bytes represent the length in bytes of the
//!   value"). Their structure is checked: each one's header and value fit,
//!   and they end exactly at the header's end. Their values are skipped
//!   (ALPN, authority, unique ID, SSL and its sub-TLVs, AWS's `0xEA`, GCP's
//!   `0xE0`, Azure's `0xEE`, ...), but for one: a `PP2_TYPE_CRC32C` TLV
//!   must be 4 bytes and, as the spec says a receiver that supports it
//!   "MUST", is verified ("replace the 32 bits of the checksum field in the
//!   received PROXY header with all '0's and calculate a CRC32c checksum
//!   value of the whole PROXY header"); a second one is an error.
//! * Here too the error comes with the first byte that makes it certain:
//!   a signature byte, the version, command or family byte, the length
//!   (too short for the addresses, too long, or leaving 1 or 2 bytes, too
//!   few for a TLV), a TLV's length (past the end), a second CRC TLV's type
//!   byte; only a CRC mismatch waits for the last byte.
//!
//! "The receiver may be tolerant to partial headers or may simply drop the
//! connection when receiving a partial header. Recommendation is to be
//! tolerant": a header split over any number of reads is fine; the
//! caller's read timeout bounds the wait.

#![forbid(unsafe_code)]
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The longest header [`parse`] accepts, in bytes (v1 lines are at most
/// [`V1_MAX_LEN`]): 16 fixed bytes and a length of at most 4080.
///
/// The spec only asks that a header fit in 536 bytes ("the smallest TCP
/// segment that any TCP/IP host is required to support"), but TLVs grow
/// past that: AWS NLB's VPC endpoint TLV, GCP's and Azure's connection IDs
/// are small, while HAProxy's SSL TLV can carry the client certificate
/// (commonly 1 to 2 KiB of DER) next to a unique ID (up to 128 bytes) and
/// the authority (up to 255). 4 KiB holds all of that and is still a small
/// buffer per connection. The length field is checked as soon as it
/// arrives, so a longer header is refused after 16 bytes.
pub const MAX_HEADER_LEN: usize = 4096;

/// The longest v1 line, CRLF included: the spec's worst case,
/// `PROXY UNKNOWN` with two full IPv6 addresses and ports.
pub const V1_MAX_LEN: usize = 107;

/// The 12 bytes every v2 header begins with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The v2 header's fixed part: signature, version and command, family,
/// length.
const V2_FIXED_LEN: usize = 16;

/// The length of an `AF_UNIX` address (`sun_path`) in a v2 header.
const UNIX_PATH_LEN: usize = 108;

/// What a complete PROXY header said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Header {
    /// v2 `LOCAL` (the proxy's own connection, such as a health check), or
    /// v2 `PROXY` with `AF_UNSPEC`: keep the socket's addresses.
    Local,
    /// v1 `UNKNOWN`: keep the socket's addresses.
    Unknown,
    /// TCP over IPv4 or IPv6 (v1 `TCP4`/`TCP6`, v2 `0x11`/`0x21`): the
    /// client's address (`source`) and the one it connected to
    /// (`destination`), both of the same family. An IPv4-mapped IPv6
    /// address (`::ffff:192.0.2.1`) stays IPv6, as it came.
    Inet {
        /// The client's address and port.
        source: SocketAddr,
        /// The address and port the client connected to.
        destination: SocketAddr,
    },
    /// v2 `AF_UNIX` stream (`0x31`): the two socket paths, each cut at its
    /// first NUL byte; an abstract socket's name (which begins with a NUL
    /// byte) keeps that byte and loses only its trailing NUL padding. A
    /// path is not a client address: the server keeps the socket's.
    Unix {
        /// The client socket's path.
        source: Vec<u8>,
        /// The listening socket's path.
        destination: Vec<u8>,
    },
}

impl Header {
    /// The client address the server should use in place of the socket's
    /// peer address: `Some` for [`Header::Inet`] only; `None` means keep
    /// the socket's.
    pub fn client(&self) -> Option<SocketAddr> {
        match self {
            Header::Inet { source, .. } => Some(*source),
            Header::Local | Header::Unknown | Header::Unix { .. } => None,
        }
    }
}

/// The answer of [`parse`] for a buffer that can still begin a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Every byte so far fits a header: read more and call again. Never the
    /// answer once the buffer holds [`MAX_HEADER_LEN`] bytes.
    Incomplete,
    /// The header is the buffer's first `consumed` bytes; what follows is
    /// the HTTP stream.
    Complete {
        /// What the header said.
        header: Header,
        /// Its length in bytes: at most [`MAX_HEADER_LEN`].
        consumed: usize,
    },
}

/// Why a buffer can begin no PROXY header: for a log line (its `Display`
/// says `invalid PROXY protocol header: <reason> (byte <offset>)`) and the
/// statistics. The connection is to be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyError {
    /// What was wrong, in a few words.
    reason: &'static str,
    /// The index of the first byte that no header can have there.
    offset: usize,
}

impl ProxyError {
    /// An error found at byte `offset`.
    fn at(offset: usize, reason: &'static str) -> Self {
        ProxyError { reason, offset }
    }

    /// What was wrong, in a few words (`"port above 65535"`).
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The index of the first byte that made a header impossible: every
    /// shorter prefix of the buffer was [`Parsed::Incomplete`].
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid PROXY protocol header: {} (byte {})",
            self.reason, self.offset
        )
    }
}

impl std::error::Error for ProxyError {}

/// Parses the PROXY header (v1 or v2) at the start of `buf`, the bytes a
/// trusted peer's connection has sent so far, from the first.
///
/// * `Ok(Parsed::Incomplete)`: every byte fits a header (an empty buffer
///   too); call again with more.
/// * `Ok(Parsed::Complete { header, consumed })`: `buf[..consumed]` is the
///   header. The bytes after it are never looked at.
/// * `Err(e)`: no header begins with `buf[..=e.offset()]`.
///
/// Once the answer for a buffer is not `Incomplete`, it is the same for
/// every longer buffer that begins with it, whatever the reads were. The
/// work is linear in the header's length (a v2 header's TLV values are
/// skipped, not scanned, except for a CRC check once it is whole), so
/// calling it again after each read costs little.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyError> {
    match buf.first() {
        None => Ok(Parsed::Incomplete),
        Some(b'P') => v1::parse_v1(buf),
        Some(b'\r') => v2::parse_v2(buf),
        Some(_) => Err(ProxyError::at(0, "neither a v1 nor a v2 header")),
    }
}

/// The v1 line for `header` (`PROXY TCP4 ...`, `PROXY TCP6 ...`,
/// `PROXY UNKNOWN`), or `None` when v1 cannot say it (`Local`, `Unix`,
/// addresses of two families). [`parse`] gives `header` back.
///
/// For the tests and the fuzz target (the server sends no PROXY header).
pub fn encode_v1(header: &Header) -> Option<Vec<u8>> {
    let (protocol, source, destination) = match header {
        Header::Unknown => return Some(b"PROXY UNKNOWN\r\n".to_vec()),
        Header::Inet {
            source: source @ SocketAddr::V4(_),
            destination: destination @ SocketAddr::V4(_),
        } => ("TCP4", source, destination),
        Header::Inet {
            source: source @ SocketAddr::V6(_),
            destination: destination @ SocketAddr::V6(_),
        } => ("TCP6", source, destination),
        Header::Inet { .. } | Header::Local | Header::Unix { .. } => return None,
    };
    let line = format!(
        "PROXY {protocol} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    );
    Some(line.into_bytes())
}

/// The v2 header for `header` followed by `tlvs` (type, value), or `None`
/// when v2 cannot say it (`Unknown`, addresses of two families, a path
/// over 108 bytes, a header over [`MAX_HEADER_LEN`]). [`parse`] gives
/// `header` back (given no CRC32C TLV: its value is not filled in).
///
/// For the tests and the fuzz target (the server sends no PROXY header).
pub fn encode_v2(header: &Header, tlvs: &[(u8, &[u8])]) -> Option<Vec<u8>> {
    let mut block = Vec::new();
    let (command, family) = match header {
        Header::Local => (0x20, 0x00),
        Header::Inet {
            source,
            destination,
        } => {
            let family = match (source.ip(), destination.ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    block.extend_from_slice(&[s.octets(), d.octets()].concat());
                    0x11
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    block.extend_from_slice(&[s.octets(), d.octets()].concat());
                    0x21
                }
                _ => return None,
            };
            block.extend_from_slice(&source.port().to_be_bytes());
            block.extend_from_slice(&destination.port().to_be_bytes());
            (0x21, family)
        }
        Header::Unix {
            source,
            destination,
        } => {
            for path in [source, destination] {
                let padding = UNIX_PATH_LEN.checked_sub(path.len())?;
                block.extend_from_slice(path);
                block.resize(block.len() + padding, 0);
            }
            (0x21, 0x31)
        }
        Header::Unknown => return None,
    };
    for (kind, value) in tlvs {
        block.push(*kind);
        block.extend_from_slice(&u16::try_from(value.len()).ok()?.to_be_bytes());
        block.extend_from_slice(value);
    }
    if V2_FIXED_LEN + block.len() > MAX_HEADER_LEN {
        return None;
    }
    let mut out = V2_SIGNATURE.to_vec();
    out.extend_from_slice(&[command, family]);
    out.extend_from_slice(&u16::try_from(block.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&block);
    Some(out)
}

mod v1;
mod v2;

#[cfg(test)]
mod tests;
