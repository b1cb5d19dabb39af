//! Version 1: the text line, read byte by byte (the rules are in the
//! parent module's docs).
//!
//! Thread: the I/O thread.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Header, Parsed, ProxyError, V1_MAX_LEN};

/// A v1 line, byte by byte: the first byte that no line can have there is
/// the error, the LF of the CRLF the end.
pub(super) fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let mut line = V1Line::new();
    for (i, &b) in buf.iter().enumerate().take(V1_MAX_LEN) {
        if let Some(header) = line.push(b).map_err(|reason| ProxyError::at(i, reason))? {
            return Ok(Parsed::Complete {
                header,
                consumed: i + 1,
            });
        }
        // The shortest way to finish the line must fit; `min_more` is at
        // least 1 until the line is complete, so this also ends the loop
        // before `V1_MAX_LEN` bytes.
        if i + 1 + line.min_more() > V1_MAX_LEN {
            return Err(ProxyError::at(i, "v1 line longer than 107 bytes"));
        }
    }
    Ok(Parsed::Incomplete)
}

/// What comes after a literal piece of a v1 line.
#[derive(Clone, Copy, Debug)]
enum Then {
    /// After `PROXY `: the protocol.
    Protocol,
    /// After `TCP`: `4` or `6`.
    TcpFamily,
    /// After `UNKNOWN`: a space or the CR.
    UnknownEnd,
    /// After `TCP4 ` or `TCP6 `: the source address.
    Source,
}

/// Where a v1 line is.
#[derive(Clone, Copy, Debug)]
enum V1State {
    /// Inside a literal: `text[at]` is the byte expected next.
    Literal {
        /// The literal.
        text: &'static [u8],
        /// How much of it was matched.
        at: usize,
        /// What follows it.
        then: Then,
    },
    /// The protocol's first byte (`T` or `U`).
    Protocol,
    /// The `4` or `6` of `TCP4`/`TCP6`.
    TcpFamily,
    /// After `UNKNOWN`.
    UnknownEnd,
    /// After `UNKNOWN `: ignoring bytes up to the CR.
    UnknownRest,
    /// The source (0) or destination (1) address.
    Address {
        /// 0 for the source, 1 for the destination.
        index: usize,
        /// The text read so far.
        text: AddrText,
    },
    /// The source (0) or destination (1) port.
    Port {
        /// 0 for the source, 1 for the destination.
        index: usize,
        /// The digits read so far.
        text: PortText,
    },
    /// After the CR: the LF ends the line.
    Lf,
}

/// A v1 line being read.
#[derive(Debug)]
struct V1Line {
    /// Where it is.
    state: V1State,
    /// `UNKNOWN` was read.
    unknown: bool,
    /// `TCP6` (rather than `TCP4`) was read.
    inet6: bool,
    /// The source and destination addresses, once read.
    addresses: [IpAddr; 2],
    /// The source and destination ports, once read.
    ports: [u16; 2],
}

impl V1Line {
    /// Before the first byte.
    fn new() -> Self {
        V1Line {
            state: V1State::Literal {
                text: b"PROXY ",
                at: 0,
                then: Then::Protocol,
            },
            unknown: false,
            inet6: false,
            addresses: [IpAddr::V4(Ipv4Addr::UNSPECIFIED); 2],
            ports: [0; 2],
        }
    }

    /// Takes the next byte: the header when it was the LF that ends the
    /// line, an error when no line can have it here.
    fn push(&mut self, b: u8) -> Result<Option<Header>, &'static str> {
        if b == b'\n' && !matches!(self.state, V1State::Lf) {
            return Err("v1 LF without CR");
        }
        self.state = match self.state {
            V1State::Literal { text, at, then } => {
                if text.get(at) != Some(&b) {
                    return Err(match then {
                        _ if b == b'\r' => "v1 line ends early",
                        Then::Protocol => "v1 header does not begin with \"PROXY \"",
                        Then::TcpFamily | Then::UnknownEnd | Then::Source => {
                            "v1 protocol is not TCP4, TCP6 or UNKNOWN"
                        }
                    });
                }
                if at + 1 < text.len() {
                    V1State::Literal {
                        text,
                        at: at + 1,
                        then,
                    }
                } else {
                    match then {
                        Then::Protocol => V1State::Protocol,
                        Then::TcpFamily => V1State::TcpFamily,
                        Then::UnknownEnd => V1State::UnknownEnd,
                        Then::Source => V1State::Address {
                            index: 0,
                            text: AddrText::new(self.inet6),
                        },
                    }
                }
            }
            V1State::Protocol => match b {
                b'T' => V1State::Literal {
                    text: b"CP",
                    at: 0,
                    then: Then::TcpFamily,
                },
                b'U' => {
                    self.unknown = true;
                    V1State::Literal {
                        text: b"NKNOWN",
                        at: 0,
                        then: Then::UnknownEnd,
                    }
                }
                b' ' => return Err("v1 fields are separated by exactly one space"),
                _ => return Err("v1 protocol is not TCP4, TCP6 or UNKNOWN"),
            },
            V1State::TcpFamily => {
                match b {
                    b'4' => self.inet6 = false,
                    b'6' => self.inet6 = true,
                    _ => return Err("v1 protocol is not TCP4, TCP6 or UNKNOWN"),
                }
                V1State::Literal {
                    text: b" ",
                    at: 0,
                    then: Then::Source,
                }
            }
            V1State::UnknownEnd => match b {
                b' ' => V1State::UnknownRest,
                b'\r' => V1State::Lf,
                _ => return Err("v1 protocol is not TCP4, TCP6 or UNKNOWN"),
            },
            V1State::UnknownRest => match b {
                b'\r' => V1State::Lf,
                _ => V1State::UnknownRest,
            },
            V1State::Address { index, mut text } => match b {
                b' ' if text.is_empty() => {
                    return Err("v1 fields are separated by exactly one space")
                }
                b' ' => {
                    if let Some(slot) = self.addresses.get_mut(index) {
                        *slot = text.finish()?;
                    }
                    if index == 0 {
                        V1State::Address {
                            index: 1,
                            text: AddrText::new(self.inet6),
                        }
                    } else {
                        V1State::Port {
                            index: 0,
                            text: PortText::default(),
                        }
                    }
                }
                b'\r' => return Err("v1 line ends early"),
                _ => {
                    text.push(b)?;
                    V1State::Address { index, text }
                }
            },
            V1State::Port { index, mut text } => match b {
                b' ' if text.digits == 0 => {
                    return Err("v1 fields are separated by exactly one space")
                }
                b' ' if index == 0 => {
                    self.ports[0] = text.value;
                    V1State::Port {
                        index: 1,
                        text: PortText::default(),
                    }
                }
                b' ' => return Err("v1 line has a space before its CRLF"),
                b'\r' if index == 0 || text.digits == 0 => return Err("v1 line ends early"),
                b'\r' => {
                    self.ports[1] = text.value;
                    V1State::Lf
                }
                _ => {
                    text.push(b)?;
                    V1State::Port { index, text }
                }
            },
            V1State::Lf => {
                if b != b'\n' {
                    return Err("v1 CR not followed by LF");
                }
                return Ok(Some(self.header()));
            }
        };
        Ok(None)
    }

    /// The header of a complete line.
    fn header(&self) -> Header {
        if self.unknown {
            return Header::Unknown;
        }
        let [source, destination] = self.addresses;
        let [source_port, destination_port] = self.ports;
        Header::Inet {
            source: SocketAddr::new(source, source_port),
            destination: SocketAddr::new(destination, destination_port),
        }
    }

    /// How many more bytes the line needs at the least. Exact wherever
    /// the 107-byte limit can bite: from the addresses on (a `TCP6` line
    /// with two long addresses) and after `UNKNOWN`. Before the addresses
    /// it is a lower bound (the CRLF), and no line is near the limit yet.
    fn min_more(&self) -> usize {
        // " 0 0\r\n": the shortest ports and CRLF after the destination.
        const PORTS: usize = 6;
        match self.state {
            V1State::Address { index: 0, text } => text.min_more() + 1 + text.shortest() + PORTS,
            V1State::Address { text, .. } => text.min_more() + PORTS,
            V1State::Port { index: 0, text } => text.min_more() + 4,
            V1State::Port { text, .. } => text.min_more() + 2,
            V1State::Lf => 1,
            V1State::Literal { .. }
            | V1State::Protocol
            | V1State::TcpFamily
            | V1State::UnknownEnd
            | V1State::UnknownRest => 2,
        }
    }
}

/// A v1 address being read, of the family the protocol named.
#[derive(Clone, Copy, Debug)]
enum AddrText {
    /// `TCP4`: a dotted quad.
    V4(Ip4Text),
    /// `TCP6`: an IPv6 address in text.
    V6(Ip6Text),
}

impl AddrText {
    /// An empty address of the family.
    fn new(inet6: bool) -> Self {
        if inet6 {
            AddrText::V6(Ip6Text::default())
        } else {
            AddrText::V4(Ip4Text::default())
        }
    }

    /// Nothing read yet.
    fn is_empty(&self) -> bool {
        match self {
            AddrText::V4(t) => t.done == 0 && t.digits == 0,
            AddrText::V6(t) => t.chars == 0,
        }
    }

    /// Takes the next character.
    fn push(&mut self, b: u8) -> Result<(), &'static str> {
        match self {
            AddrText::V4(t) => t.push(b),
            AddrText::V6(t) => t.push(b),
        }
    }

    /// The address, when what was read is a whole one.
    fn finish(&self) -> Result<IpAddr, &'static str> {
        match self {
            AddrText::V4(t) => t.finish().map(IpAddr::V4),
            AddrText::V6(t) => t.finish().map(IpAddr::V6),
        }
    }

    /// How many more characters make it a whole address, at the least.
    fn min_more(&self) -> usize {
        match self {
            AddrText::V4(t) => t.min_more(),
            AddrText::V6(t) => t.min_more(),
        }
    }

    /// The length of the shortest address of the family (`0.0.0.0`, `::`).
    fn shortest(&self) -> usize {
        match self {
            AddrText::V4(_) => 7,
            AddrText::V6(_) => 2,
        }
    }
}

/// A dotted quad being read: four decimal octets, no leading zeros.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Ip4Text {
    /// The octets read.
    octets: [u8; 4],
    /// How many octets were read (each ended by a dot).
    done: usize,
    /// The digits of the current octet.
    digits: u8,
    /// Its value.
    value: u8,
}

impl Ip4Text {
    /// Takes the next character.
    pub(super) fn push(&mut self, b: u8) -> Result<(), &'static str> {
        match b {
            b'0'..=b'9' => {
                if self.digits > 0 && self.value == 0 {
                    return Err("leading zero in an IPv4 address");
                }
                self.value = u8::try_from(u16::from(self.value) * 10 + u16::from(b - b'0'))
                    .map_err(|_| "IPv4 address octet above 255")?;
                self.digits += 1;
            }
            b'.' => {
                if self.digits == 0 {
                    return Err("empty octet in an IPv4 address");
                }
                // The fourth octet ends the address; it is kept in `value`.
                let Some(slot) = self.octets.get_mut(self.done).filter(|_| self.done < 3) else {
                    return Err("IPv4 address of more than four octets");
                };
                *slot = self.value;
                self.done += 1;
                self.digits = 0;
                self.value = 0;
            }
            _ => return Err("bad character in an IPv4 address"),
        }
        Ok(())
    }

    /// The address, when four octets were read.
    pub(super) fn finish(&self) -> Result<Ipv4Addr, &'static str> {
        match self.octets {
            [a, b, c, _] if self.done == 3 && self.digits > 0 => {
                Ok(Ipv4Addr::new(a, b, c, self.value))
            }
            _ => Err("IPv4 address of fewer than four octets"),
        }
    }

    /// How many more characters complete it, at the least (`0`, `.0`).
    pub(super) fn min_more(&self) -> usize {
        usize::from(self.digits == 0) + 2 * 3usize.saturating_sub(self.done)
    }
}

/// What the last characters of an IPv6 address being read were.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Colons {
    /// Nothing yet, or a hex digit.
    #[default]
    None,
    /// A single `:` at the very start (a `:` must follow).
    Leading,
    /// A single `:` after a group.
    One,
    /// `::`.
    Two,
}

/// An IPv6 address being read (RFC 4291 section 2.2's text forms).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Ip6Text {
    /// The groups read, in order; the embedded dotted quad counts as two.
    groups: [u16; 8],
    /// How many.
    count: usize,
    /// Where `::` stands: how many groups came before it.
    gap: Option<usize>,
    /// The hex digits of the group being read.
    digits: usize,
    /// Its value.
    value: u16,
    /// Its characters, in case a dot makes it an IPv4 octet.
    raw: [u8; 4],
    /// The colons just read.
    colons: Colons,
    /// The embedded dotted quad, once a dot was read.
    v4: Option<Ip4Text>,
    /// How many characters were read.
    chars: usize,
}

impl Ip6Text {
    /// At most how many groups may be written: 8, or 7 with a `::` (which
    /// stands for one or more).
    fn limit(&self) -> usize {
        if self.gap.is_some() {
            7
        } else {
            8
        }
    }

    /// Takes the next character.
    pub(super) fn push(&mut self, b: u8) -> Result<(), &'static str> {
        self.chars += 1;
        if let Some(v4) = &mut self.v4 {
            return v4.push(b);
        }
        match b {
            b':' if self.digits > 0 => {
                self.end_group();
                if self.count >= self.limit() {
                    return Err("IPv6 address of more than eight groups");
                }
                self.colons = Colons::One;
            }
            b':' => match self.colons {
                Colons::None => self.colons = Colons::Leading,
                Colons::Leading | Colons::One if self.gap.is_none() => {
                    self.gap = Some(self.count);
                    self.colons = Colons::Two;
                }
                Colons::Leading | Colons::One => return Err("IPv6 address with two \"::\""),
                Colons::Two => return Err("IPv6 address with \":::\""),
            },
            b'.' if self.digits > 0 => {
                // A dotted quad: the last 32 bits, after six groups or
                // after a `::` with room for two more.
                let room = match self.gap {
                    Some(_) => self.count + 2 <= 7,
                    None => self.count == 6,
                };
                if !room {
                    return Err("IPv4 part of an IPv6 address in the wrong place");
                }
                let mut v4 = Ip4Text::default();
                for &c in self.raw.iter().take(self.digits) {
                    v4.push(c)?;
                }
                v4.push(b)?;
                self.v4 = Some(v4);
            }
            _ => {
                let Some(digit) = char::from(b).to_digit(16) else {
                    return Err("bad character in an IPv6 address");
                };
                if self.digits == 0 {
                    if self.colons == Colons::Leading {
                        return Err("IPv6 address begins with a single ':'");
                    }
                    if self.count >= self.limit() {
                        return Err("IPv6 address of more than eight groups");
                    }
                }
                let Some(slot) = self.raw.get_mut(self.digits) else {
                    return Err("IPv6 group of more than four hex digits");
                };
                *slot = b;
                self.digits += 1;
                // Four digits at most: the value stays within 16 bits.
                self.value = (self.value << 4) | u16::try_from(digit).unwrap_or(0);
                self.colons = Colons::None;
            }
        }
        Ok(())
    }

    /// Stores a group.
    fn store(&mut self, group: u16) {
        if let Some(slot) = self.groups.get_mut(self.count) {
            *slot = group;
        }
        self.count += 1;
    }

    /// Stores the group being read.
    fn end_group(&mut self) {
        self.store(self.value);
        self.digits = 0;
        self.value = 0;
    }

    /// The address, when what was read is a whole one.
    pub(super) fn finish(&self) -> Result<Ipv6Addr, &'static str> {
        let mut t = *self;
        if let Some(v4) = t.v4 {
            let [a, b, c, d] = v4.finish()?.octets();
            t.store(u16::from_be_bytes([a, b]));
            t.store(u16::from_be_bytes([c, d]));
        } else if t.digits > 0 {
            t.end_group();
        } else if t.colons != Colons::Two {
            return Err("IPv6 address ends with a single ':'");
        }
        let written = t.groups.get(..t.count).unwrap_or(&[]);
        let mut out = [0u16; 8];
        match t.gap {
            None if t.count != 8 => return Err("IPv6 address of fewer than eight groups"),
            None => out.copy_from_slice(&t.groups),
            Some(gap) => {
                let (head, tail) = written.split_at(gap.min(written.len()));
                for (o, g) in out.iter_mut().zip(head) {
                    *o = *g;
                }
                for (o, g) in out.iter_mut().rev().zip(tail.iter().rev()) {
                    *o = *g;
                }
            }
        }
        Ok(Ipv6Addr::from(out))
    }

    /// How many more characters make it a whole address, at the least.
    pub(super) fn min_more(&self) -> usize {
        if let Some(v4) = &self.v4 {
            return v4.min_more();
        }
        match self.colons {
            _ if self.digits > 0 => {
                if self.gap.is_some() || self.count + 1 == 8 {
                    0
                } else {
                    2 // "::"
                }
            }
            Colons::Two => 0,
            Colons::One | Colons::Leading => 1,
            Colons::None => 2, // "::"
        }
    }
}

/// A v1 port being read: decimal, no leading zero, at most 65535.
#[derive(Clone, Copy, Debug, Default)]
struct PortText {
    /// How many digits were read.
    digits: u8,
    /// Their value.
    value: u16,
}

impl PortText {
    /// Takes the next character.
    fn push(&mut self, b: u8) -> Result<(), &'static str> {
        if !b.is_ascii_digit() {
            return Err("bad character in a port");
        }
        if self.digits > 0 && self.value == 0 {
            return Err("leading zero in a port");
        }
        self.value = u16::try_from(u32::from(self.value) * 10 + u32::from(b - b'0'))
            .map_err(|_| "port above 65535")?;
        self.digits += 1;
        Ok(())
    }

    /// How many more characters complete it, at the least.
    fn min_more(&self) -> usize {
        usize::from(self.digits == 0)
    }
}
