//! The PROXY protocol parser, socket-free: every v1 and v2 form, every
//! malformation named in the module docs (each one fed whole and as every
//! prefix: a valid header is `Incomplete` at every proper prefix, an
//! invalid one is `Incomplete` up to the first impossible byte and the
//! same error from there on), the bytes a real HAProxy sent, the address
//! automata against `std`'s parsers (exhaustively over small alphabets,
//! with the shortest completion checked exactly), and the encoders.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::v1::{Ip4Text, Ip6Text};
use super::v2::crc32c;
use super::*;

/// HTTP bytes that follow a header on the wire.
const HTTP: &[u8] = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n";

/// `Header::Inet` from two `ip:port` strings (`[v6]:port` for IPv6).
fn inet(source: &str, destination: &str) -> Header {
    Header::Inet {
        source: source.parse().unwrap(),
        destination: destination.parse().unwrap(),
    }
}

/// `input` is a whole header saying `expected`: every proper prefix is
/// `Incomplete`, and bytes after it change nothing.
fn good(input: &[u8], expected: &Header) {
    let complete = Ok(Parsed::Complete {
        header: expected.clone(),
        consumed: input.len(),
    });
    assert_eq!(
        parse(input),
        complete,
        "{:?}",
        String::from_utf8_lossy(input)
    );
    for n in 0..input.len() {
        assert_eq!(
            parse(&input[..n]),
            Ok(Parsed::Incomplete),
            "prefix {n} of {:?}",
            String::from_utf8_lossy(input)
        );
    }
    for tail in [HTTP, b"\r\n", b"\0", b"PROXY UNKNOWN\r\n"] {
        let mut with_tail = input.to_vec();
        with_tail.extend_from_slice(tail);
        assert_eq!(parse(&with_tail), complete);
    }
}

/// `head` can begin a header and `head` + `rest[0]` cannot: every prefix
/// up to `head` is `Incomplete`, every longer one (and the input followed
/// by HTTP bytes) the error `reason` at `head.len()`.
fn bad(head: &[u8], rest: &[u8], reason: &str) {
    let input = [head, rest, HTTP].concat();
    let offset = head.len();
    for n in 0..=input.len() {
        let got = parse(&input[..n]);
        if n <= offset {
            assert_eq!(
                got,
                Ok(Parsed::Incomplete),
                "prefix {n} of {:?}",
                String::from_utf8_lossy(&input)
            );
        } else {
            let e = got.expect_err(&format!("{:?}", String::from_utf8_lossy(&input[..n])));
            assert_eq!(
                (e.offset(), e.reason()),
                (offset, reason),
                "{:?}",
                String::from_utf8_lossy(&input[..n])
            );
        }
    }
}

/// A v2 header: the signature, the version/command and family bytes, the
/// length of `body`, and `body`.
fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len()).unwrap();
    v2_len(command, family, len, body)
}

/// A v2 header whose length field says `len` whatever `body` is.
fn v2_len(command: u8, family: u8, len: u16, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.extend_from_slice(&[command, family]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// One TLV.
fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// The v2 address block of TCP over IPv4 192.0.2.1:56324 -> 198.51.100.7:443.
const INET4: [u8; 12] = [192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x01, 0xbb];

/// What `INET4` says.
fn inet4() -> Header {
    inet("192.0.2.1:56324", "198.51.100.7:443")
}

/// Decodes hex.
fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Fills in the CRC32C TLV whose value is at `at` (4 zero bytes).
fn with_crc(mut header: Vec<u8>, at: usize) -> Vec<u8> {
    let crc = !crc32c(!0, &header);
    header[at..at + 4].copy_from_slice(&crc.to_be_bytes());
    header
}

#[test]
fn empty_buffer_is_incomplete() {
    assert_eq!(parse(b""), Ok(Parsed::Incomplete));
}

#[test]
fn v1_tcp4_and_tcp6() {
    // The spec's example, the longest and the shortest lines, and more.
    let v4 = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_eq!(v4.len(), 56);
    let f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let v6 = format!("PROXY TCP6 {f} {f} 65535 65535\r\n");
    assert_eq!(v6.len(), 104);
    let full = format!("[{f}]:65535");
    let cases: [(&[u8], &str, &str); 10] = [
        (
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
            "192.168.0.1:56324",
            "192.168.0.11:443",
        ),
        (v4, "255.255.255.255:65535", "255.255.255.255:65535"),
        (
            b"PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n",
            "0.0.0.0:0",
            "0.0.0.0:0",
        ),
        (
            b"PROXY TCP4 10.0.100.200 172.16.9.99 1 10\r\n",
            "10.0.100.200:1",
            "172.16.9.99:10",
        ),
        (v6.as_bytes(), &full, &full),
        (
            b"PROXY TCP6 ::1 ::1 37304 18002\r\n",
            "[::1]:37304",
            "[::1]:18002",
        ),
        (b"PROXY TCP6 :: :: 0 0\r\n", "[::]:0", "[::]:0"),
        // Either case, groups of one to four digits, "::" for one group.
        (
            b"PROXY TCP6 2001:DB8::A 2001:0db8:0:0:1:0:0:1 80 8080\r\n",
            "[2001:db8::a]:80",
            "[2001:db8::1:0:0:1]:8080",
        ),
        (
            b"PROXY TCP6 1:2:3:4:5:6:7:: ::2:3:4:5:6:7:8 1 2\r\n",
            "[1:2:3:4:5:6:7:0]:1",
            "[0:2:3:4:5:6:7:8]:2",
        ),
        // A dotted quad as the last 32 bits (what inet_ntop prints for an
        // IPv4-mapped address); it stays IPv6.
        (
            b"PROXY TCP6 ::ffff:192.0.2.1 1:2:3:4:5:6:7.8.9.10 443 80\r\n",
            "[::ffff:192.0.2.1]:443",
            "[1:2:3:4:5:6:708:90a]:80",
        ),
    ];
    for (line, source, destination) in cases {
        good(line, &inet(source, destination));
    }
}

#[test]
fn v1_unknown() {
    good(b"PROXY UNKNOWN\r\n", &Header::Unknown);
    good(b"PROXY UNKNOWN \r\n", &Header::Unknown);
    good(
        b"PROXY UNKNOWN TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        &Header::Unknown,
    );
    // Anything but CR and LF is ignored.
    good(b"PROXY UNKNOWN \0\xff\t  x\x7f\r\n", &Header::Unknown);
    // The spec's worst case: exactly 107 bytes.
    let f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let worst = format!("PROXY UNKNOWN {f} {f} 65535 65535\r\n");
    assert_eq!(worst.len(), V1_MAX_LEN);
    good(worst.as_bytes(), &Header::Unknown);
}

/// Every malformed v1 line: where it fails, and why.
#[test]
fn v1_errors() {
    const ONE_SPACE: &str = "v1 fields are separated by exactly one space";
    const PROTOCOL: &str = "v1 protocol is not TCP4, TCP6 or UNKNOWN";
    const EARLY: &str = "v1 line ends early";
    const LF: &str = "v1 LF without CR";
    const ZERO4: &str = "leading zero in an IPv4 address";
    const BIG4: &str = "IPv4 address octet above 255";
    const EMPTY4: &str = "empty octet in an IPv4 address";
    const MORE4: &str = "IPv4 address of more than four octets";
    const FEW4: &str = "IPv4 address of fewer than four octets";
    const COLONS3: &str = "IPv6 address with \":::\"";
    const GAPS2: &str = "IPv6 address with two \"::\"";
    const LEAD6: &str = "IPv6 address begins with a single ':'";
    const DIGITS6: &str = "IPv6 group of more than four hex digits";
    const MORE6: &str = "IPv6 address of more than eight groups";
    const FEW6: &str = "IPv6 address of fewer than eight groups";
    const END6: &str = "IPv6 address ends with a single ':'";
    const BIG_PORT: &str = "port above 65535";
    const ZERO_PORT: &str = "leading zero in a port";
    const CHAR_PORT: &str = "bad character in a port";
    const CR: &str = "v1 CR not followed by LF";
    const MAGIC: &str = "v1 header does not begin with \"PROXY \"";
    const NEITHER: &str = "neither a v1 nor a v2 header";
    const TRAILING: &str = "v1 line has a space before its CRLF";
    const V4: &str = "bad character in an IPv4 address";
    const V6: &str = "bad character in an IPv6 address";
    const WHERE: &str = "IPv4 part of an IPv6 address in the wrong place";
    let a: &[u8] = b"PROXY TCP4 1.2.3.4 5.6.7.8 ";
    let cases: &[(&[u8], &[u8], &str)] = &[
        (b"", b"GET / HTTP/1.1\r\n", NEITHER),
        (b"", b"proxy TCP4", NEITHER),
        (b"P", b"OST / HTTP/1.1\r\n", MAGIC),
        (b"PROXY", b"\tTCP4", MAGIC),
        (b"PROXY", b"\r\n", EARLY),
        (b"PROXY ", b" TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ONE_SPACE),
        (b"PROXY ", b"tcp4 1.2.3.4 5.6.7.8 1 2\r\n", PROTOCOL),
        (b"PROXY TCP", b"5 1.2.3.4 5.6.7.8 1 2\r\n", PROTOCOL),
        (b"PROXY TC", b"p4", PROTOCOL),
        (b"PROXY TCP4", b"\r\n", EARLY),
        (b"PROXY TCP4", b"1.2.3.4", PROTOCOL),
        (b"PROXY TCP4 ", b" 1.2.3.4 5.6.7.8 1 2\r\n", ONE_SPACE),
        (b"PROXY TCP4 1.2.3.4 ", b" 5.6.7.8 1 2\r\n", ONE_SPACE),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 ", b" 1 2\r\n", ONE_SPACE),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 ", b" 2\r\n", ONE_SPACE),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2", b" \r\n", TRAILING),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8",
            b"\t1 2\r\n",
            "bad character in an IPv4 address",
        ),
        // Line ends: CRLF only, and only after the destination port.
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2", b"\n", LF),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", b"\r\n", CR),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", b"G", CR),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1", b"\r\n", EARLY),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 ", b"\r\n", EARLY),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8", b"\r\n", EARLY),
        (b"PROXY TCP4 1.2.3.4", b"\r\n", EARLY),
        (b"PROXY TCP4 ", b"\r\n", EARLY),
        (b"PROXY TCP4 1.2", b"\n", LF),
        (b"PROXY", b"\n", LF),
        (b"PROXY UNKNOWN", b"\n", LF),
        (b"PROXY UNKNOWN whatever", b"\nx\r\n", LF),
        (b"PROXY UNKNOWN\r", b"x\n", CR),
        (b"PROXY UNKNOWN", b"X\r\n", PROTOCOL),
        (b"PROXY UNKNOW", b"\r\n", EARLY),
        (b"PROXY UNK", b"OWN\r\n", PROTOCOL),
        // Addresses.
        // TCP4 with IPv6 addresses.
        (b"PROXY TCP4 ", b"::1 ::1 1 2\r\n", V4),
        (b"PROXY TCP4 1.2.3.4 ", b"::1 1 2\r\n", V4),
        (b"PROXY TCP4 0", b"1.2.3.4 5.6.7.8 1 2\r\n", ZERO4),
        (b"PROXY TCP4 1.2.3.0", b"0 5.6.7.8 1 2\r\n", ZERO4),
        (b"PROXY TCP4 1.2.3.25", b"6 5.6.7.8 1 2\r\n", BIG4),
        (b"PROXY TCP4 1.2.3.100", b"0 5.6.7.8 1 2\r\n", BIG4),
        (b"PROXY TCP4 1.", b".2.3.4 5.6.7.8 1 2\r\n", EMPTY4),
        (b"PROXY TCP4 ", b".1.2.3.4 5.6.7.8 1 2\r\n", EMPTY4),
        (b"PROXY TCP4 1.2.3.4", b".5 5.6.7.8 1 2\r\n", MORE4),
        (b"PROXY TCP4 1.2.3", b" 5.6.7.8 1 2\r\n", FEW4),
        (b"PROXY TCP4 1.2.3.", b" 5.6.7.8 1 2\r\n", FEW4),
        (b"PROXY TCP4 1.2.3.4", b"a 5.6.7.8 1 2\r\n", V4),
        (b"PROXY TCP4 1.2.3.", b"-4 5.6.7.8 1 2\r\n", V4),
        (b"PROXY TCP4 1.2.3.", b"+4 5.6.7.8 1 2\r\n", V4),
        (b"PROXY TCP4 0", b"x1.2.3.4 5.6.7.8 1 2\r\n", V4),
        // TCP6 with a bare dotted quad: the dot is where it fails.
        (b"PROXY TCP6 1", b".2.3.4 ::1 1 2\r\n", WHERE),
        (b"PROXY TCP6 ::1 1", b".2.3.4 1 2\r\n", WHERE),
        (b"PROXY TCP6 ", b"[::1] ::1 1 2\r\n", V6),
        (b"PROXY TCP6 ::1", b"%eth0 ::1 1 2\r\n", V6),
        (b"PROXY TCP6 ::", b"g ::1 1 2\r\n", V6),
        (b"PROXY TCP6 ::", b": ::1 1 2\r\n", COLONS3),
        (b"PROXY TCP6 1::2:", b":3 ::1 1 2\r\n", GAPS2),
        (b"PROXY TCP6 :", b"1 ::1 1 2\r\n", LEAD6),
        (b"PROXY TCP6 1234", b"5:: ::1 1 2\r\n", DIGITS6),
        (b"PROXY TCP6 1:2:3:4:5:6:7:8", b":9 ::1 1 2\r\n", MORE6),
        (b"PROXY TCP6 1:2:3:4:5:6:7:8", b":: ::1 1 2\r\n", MORE6),
        (b"PROXY TCP6 1::3:4:5:6:7:8", b":9 ::1 1 2\r\n", MORE6),
        (b"PROXY TCP6 ::2:3:4:5:6:7:8", b": ::1 1 2\r\n", MORE6),
        (b"PROXY TCP6 1:2:3:4:5:6:7", b" ::1 1 2\r\n", FEW6),
        (b"PROXY TCP6 1:", b" ::1 1 2\r\n", END6),
        (b"PROXY TCP6 :", b" ::1 1 2\r\n", END6),
        // The dotted quad keeps IPv4's rules, and comes last.
        (b"PROXY TCP6 ::ffff:01", b".2.3.4 ::1 1 2\r\n", ZERO4),
        (b"PROXY TCP6 ::ffff:1.2.3.4", b".5 ::1 1 2\r\n", MORE4),
        (b"PROXY TCP6 ::ffff:1.2.3.4", b":5 ::1 1 2\r\n", V4),
        (b"PROXY TCP6 ::ffff:1.2.3", b" ::1 1 2\r\n", FEW4),
        (b"PROXY TCP6 ::ffff:1.2.3.25", b"6 ::1 1 2\r\n", BIG4),
        (b"PROXY TCP6 ::ffff:a", b".2.3.4 ::1 1 2\r\n", V4),
        (b"PROXY TCP6 1:2:3:4:5:6:7:1", b".2.3.4 ::1 1 2\r\n", WHERE),
        (b"PROXY TCP6 1:2:3:4:5::6:1", b".2.3.4 ::1 1 2\r\n", WHERE),
        // Ports.
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 6553", b"6 2\r\n", BIG_PORT),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 6553", b"6\r\n", BIG_PORT),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65535", b"0\r\n", BIG_PORT),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 9999", b"9\r\n", BIG_PORT),
        (a, b"+1 2\r\n", CHAR_PORT),
        (a, b"-1 2\r\n", CHAR_PORT),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 0", b"x50\r\n", CHAR_PORT),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 0", b"1 2\r\n", ZERO_PORT),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 0", b"0 2\r\n", ZERO_PORT),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 0", b"80\r\n", ZERO_PORT),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2", b"a\r\n", CHAR_PORT),
    ];
    for &(head, rest, reason) in cases {
        bad(head, rest, reason);
    }
}

#[test]
fn v1_length_limit() {
    const LONG: &str = "v1 line longer than 107 bytes";
    // UNKNOWN with 91 bytes after its space is 107 bytes long; one more
    // fails at the byte that leaves no room for the CRLF.
    let head = [&b"PROXY UNKNOWN "[..], &[b'x'; 91]].concat();
    good(&[&head[..], b"\r\n"].concat(), &Header::Unknown);
    bad(&head, b"x\r\n", LONG);
    bad(&head, b" 65535\r\n", LONG);

    // TCP6 addresses in long forms (six groups of four digits and a
    // dotted quad: 45 characters) can use the room up: the error comes at
    // the first byte that leaves too little for " 0 0\r\n".
    let long = "0000:0000:0000:0000:0000:ffff:255.255.255.255";
    assert_eq!(long.len(), 45);
    let short = &long[..44]; // ...255.25
    let head = format!("PROXY TCP6 {long} {short}");
    let exact = format!("{head} 0 9\r\n");
    assert_eq!(exact.len(), V1_MAX_LEN);
    let mapped = "[::ffff:255.255.255.255]:0";
    good(exact.as_bytes(), &inet(mapped, "[::ffff:255.255.255.25]:9"));
    let cases = [
        (head.clone(), &b"5 0 0\r\n"[..], LONG),
        (format!("{head} 0"), b"0 0\r\n", "leading zero in a port"),
        (format!("{head} 0 1"), b"0\r\n", LONG),
        (format!("{head} 1"), b"0 0\r\n", LONG),
    ];
    for (head, rest, reason) in cases {
        bad(head.as_bytes(), rest, reason);
    }
    // A source of 45 characters and a destination that has room.
    let fits = format!("PROXY TCP6 {long} ::1 65535 65535\r\n");
    let source = "[::ffff:255.255.255.255]:65535";
    good(fits.as_bytes(), &inet(source, "[::1]:65535"));
}

#[test]
fn v2_local() {
    // What HAProxy sends for a health check: LOCAL, AF_UNSPEC, no body.
    good(&v2(0x20, 0x00, &[]), &Header::Local);
    // TLVs after it (LOCAL's address block is empty for AF_UNSPEC).
    let tlvs = [tlv(0x04, b""), tlv(0x01, b"h2")].concat();
    good(&v2(0x20, 0x00, &tlvs), &Header::Local);
    // A family with no addresses, or with addresses that are ignored.
    good(&v2(0x20, 0x11, &[]), &Header::Local);
    good(&v2(0x20, 0x11, &INET4), &Header::Local);
    good(
        &v2(0x20, 0x21, &[[0; 36].as_slice(), &tlvs].concat()),
        &Header::Local,
    );
    good(&v2(0x20, 0x31, &[0; 216]), &Header::Local);
}

#[test]
fn v2_proxy_inet() {
    good(&v2(0x21, 0x11, &INET4), &inet4());
    let mut block = Vec::new();
    block.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    block.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
    block.extend_from_slice(&[0, 0, 0xff, 0xff]);
    good(
        &v2(0x21, 0x21, &block),
        &inet("[2001:db8::1]:0", "[2001:db8::2]:65535"),
    );
}

#[test]
fn v2_proxy_unix() {
    let mut block = vec![0; 216];
    block[..16].copy_from_slice(b"/tmp/client.sock");
    block[108..121].copy_from_slice(b"/run/app.sock");
    // Bytes after a path's NUL are not part of it.
    block[20] = b'x';
    let header = Header::Unix {
        source: b"/tmp/client.sock".to_vec(),
        destination: b"/run/app.sock".to_vec(),
    };
    good(&v2(0x21, 0x31, &block), &header);
    assert_eq!(header.client(), None);
    // Abstract sockets keep their leading NUL; unnamed ones are empty.
    let mut block = vec![0; 216];
    block[1..5].copy_from_slice(b"a\0bc");
    good(
        &v2(0x21, 0x31, &block),
        &Header::Unix {
            source: b"\0a\0bc".to_vec(),
            destination: Vec::new(),
        },
    );
    // A full 108-byte path has no NUL at all.
    let block = [[b'p'; 108], [b'q'; 108]].concat();
    good(
        &v2(0x21, 0x31, &block),
        &Header::Unix {
            source: vec![b'p'; 108],
            destination: vec![b'q'; 108],
        },
    );
}

#[test]
fn v2_proxy_unspec() {
    // "The receiver should ignore address information": as LOCAL.
    good(&v2(0x21, 0x00, &[]), &Header::Local);
    good(&v2(0x21, 0x00, &tlv(0xe0, b"id")), &Header::Local);
}

#[test]
fn v2_tlvs() {
    // ALPN, authority, an empty NOOP, unique ID, an SSL TLV with a
    // sub-TLV, AWS's VPC endpoint ID, GCP's and Azure's connection IDs.
    let mut ssl = vec![0x01, 0, 0, 0, 0];
    ssl.extend_from_slice(&tlv(0x21, b"TLSv1.3"));
    let tlvs = [
        tlv(0x01, b"h2"),
        tlv(0x02, b"example.com"),
        tlv(0x04, b""),
        tlv(0x05, &[7; 128]),
        tlv(0x20, &ssl),
        tlv(0xea, b"\x01vpce-08d2bf15fac5001c9"),
        tlv(0xe0, &[1, 2, 3, 4, 5, 6, 7, 8]),
        tlv(0xee, b"\x01\x00\x00\x00\x2a"),
    ]
    .concat();
    good(&v2(0x21, 0x11, &[&INET4[..], &tlvs].concat()), &inet4());
    // A CRC32C TLV, anywhere among them, is verified.
    let body = [&INET4[..], &tlv(0x01, b"h2"), &tlv(0x03, &[0; 4]), &tlvs].concat();
    let header = with_crc(v2(0x21, 0x11, &body), 16 + 12 + 5 + 3);
    good(&header, &inet4());
    let local = with_crc(v2(0x20, 0x00, &tlv(0x03, &[0; 4])), 19);
    good(&local, &Header::Local);
}

#[test]
fn v2_longest() {
    // 16 + 12 + 3 + 4065 = 4096 bytes: the longest accepted.
    let body = [&INET4[..], &tlv(0x04, &[0; 4065])].concat();
    let header = v2(0x21, 0x11, &body);
    assert_eq!(header.len(), MAX_HEADER_LEN);
    assert_eq!(
        parse(&header),
        Ok(Parsed::Complete {
            header: inet4(),
            consumed: MAX_HEADER_LEN
        })
    );
    assert_eq!(parse(&header[..4095]), Ok(Parsed::Incomplete));
    let too_long = v2(0x21, 0x11, &[&INET4[..], &tlv(0x04, &[0; 4066])].concat());
    bad(
        &too_long[..15],
        &too_long[15..],
        "v2 header longer than 4096 bytes",
    );
}

#[test]
fn v2_signature_errors() {
    let header = v2(0x21, 0x11, &INET4);
    for i in 0..12 {
        let mut wrong = header.clone();
        wrong[i] ^= 0x40;
        let reason = if i == 0 {
            "neither a v1 nor a v2 header"
        } else {
            "not the v2 signature"
        };
        bad(&wrong[..i], &wrong[i..], reason);
    }
    // HTTP/2's preface and TLS's ClientHello are neither.
    bad(
        b"PR",
        b"I * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "v1 header does not begin with \"PROXY \"",
    );
    bad(
        b"",
        b"\x16\x03\x01\x02\x00\x01",
        "neither a v1 nor a v2 header",
    );
    // The v1 detection does not take the v2 signature's "\r\n".
    bad(b"\r\n\r\n\0\r\n", b"\r\n", "not the v2 signature");
}

#[test]
fn v2_version_and_command_errors() {
    for byte in [0x01, 0x11, 0x31, 0xf1, 0x00, 0x10] {
        let header = v2(byte, 0x11, &INET4);
        bad(&header[..12], &header[12..], "v2 version is not 2");
    }
    for byte in [0x22, 0x23, 0x2f] {
        let header = v2(byte, 0x11, &INET4);
        bad(
            &header[..12],
            &header[12..],
            "v2 command is neither LOCAL nor PROXY",
        );
    }
}

#[test]
fn v2_family_errors() {
    let cases: [(u8, &str); 12] = [
        (0x12, "v2 datagram transport on a stream"),
        (0x22, "v2 datagram transport on a stream"),
        (0x32, "v2 datagram transport on a stream"),
        (0x41, "v2 address family unknown"),
        (0xf1, "v2 address family unknown"),
        (0x13, "v2 transport unknown"),
        (0x0f, "v2 transport unknown"),
        (0x01, "v2 address family and transport do not go together"),
        (0x02, "v2 address family and transport do not go together"),
        (0x10, "v2 address family and transport do not go together"),
        (0x20, "v2 address family and transport do not go together"),
        (0x30, "v2 address family and transport do not go together"),
    ];
    for (family, reason) in cases {
        for command in [0x20, 0x21] {
            let header = v2(command, family, &INET4);
            bad(&header[..13], &header[13..], reason);
        }
    }
}

#[test]
fn v2_length_errors() {
    const SHORT: &str = "v2 length shorter than the addresses";
    for (family, len) in [(0x11, 12), (0x21, 36), (0x31, 216)] {
        let header = v2_len(0x21, family, len - 1, &[0; 300]);
        bad(&header[..15], &header[15..], SHORT);
        let header = v2_len(0x21, family, 0, &[0; 300]);
        bad(&header[..15], &header[15..], SHORT);
        // LOCAL: no addresses, or all of them.
        let header = v2_len(0x20, family, 5, &[0; 300]);
        bad(&header[..15], &header[15..], SHORT);
    }
    for len in [4081, 0xffff] {
        let header = v2_len(0x21, 0x11, len, &[0; 300]);
        bad(
            &header[..15],
            &header[15..],
            "v2 header longer than 4096 bytes",
        );
    }
}

#[test]
fn v2_tlv_errors() {
    const FEW: &str = "v2 ends with 1 or 2 bytes, too few for a TLV";
    const PAST: &str = "v2 TLV runs past the header's end";
    // 1 or 2 bytes after the addresses: known from the length.
    for extra in [1, 2] {
        let header = v2_len(0x21, 0x11, 12 + extra, &[&INET4[..], &[0; 2]].concat());
        bad(&header[..15], &header[15..], FEW);
        let header = v2_len(0x20, 0x00, extra, &[0; 2]);
        bad(&header[..15], &header[15..], FEW);
    }
    // A TLV past the end: known from its length.
    let header = v2_len(
        0x21,
        0x11,
        12 + 4,
        &[&INET4[..], &tlv(0x01, b"h2")].concat(),
    );
    bad(&header[..30], &header[30..], PAST);
    let header = v2_len(
        0x21,
        0x11,
        12 + 3,
        &[&INET4[..], &tlv(0x01, &[0; 300])].concat(),
    );
    bad(&header[..30], &header[30..], PAST);
    // A TLV that leaves 1 or 2 bytes: known from its length too.
    let header = v2_len(
        0x21,
        0x11,
        12 + 5,
        &[&INET4[..], &tlv(0x04, b""), &[9; 9]].concat(),
    );
    bad(&header[..30], &header[30..], FEW);
    let body = [&INET4[..], &tlv(0x04, b"abc"), &tlv(0x04, b""), &[9; 9]].concat();
    let header = v2_len(0x21, 0x11, 12 + 6 + 3 + 2, &body);
    bad(&header[..36], &header[36..], FEW);
    // CRC32C: 4 bytes, one TLV, the right value.
    for value in [&[0u8; 3][..], &[0; 5], &[]] {
        let header = v2(0x21, 0x11, &[&INET4[..], &tlv(0x03, value)].concat());
        bad(&header[..30], &header[30..], "v2 CRC32C TLV is not 4 bytes");
    }
    let body = [&INET4[..], &tlv(0x03, &[0; 4]), &tlv(0x03, &[0; 4])].concat();
    let header = with_crc(v2(0x21, 0x11, &body), 31);
    bad(&header[..35], &header[35..], "v2 has two CRC32C TLVs");
    let body = [&INET4[..], &tlv(0x03, &[0; 4]), &tlv(0x01, b"h2")].concat();
    let mut header = with_crc(v2(0x21, 0x11, &body), 31);
    for i in [0, 16, 31, header.len() - 1] {
        header[i] ^= 1;
        if i > 0 {
            let last = header.len() - 1;
            bad(&header[..last], &header[last..], "v2 CRC32C does not match");
        }
        header[i] ^= 1;
    }
    assert_eq!(parse(&header).map(|_| ()), Ok(()));
}

/// What HAProxy 2.6.12 (Debian 12) sent to a listener on 127.0.0.1, with a
/// client's `GET` after the header (`mode tcp`): `server s
/// 127.0.0.1:PORT send-proxy` for clients on 127.0.0.1 and on ::1, the same
/// with `send-proxy-v2`, `send-proxy-v2 proxy-v2-options
/// crc32c,unique-id,ssl` (with a `unique-id-format`), and the health
/// checks of `check check-send-proxy` with each.
#[test]
fn haproxy_captures() {
    let get = "474554202f20485454502f312e310d0a486f73743a206578616d706c650d0a0d0a";
    let cases: [(&str, Header); 7] = [
        (
            "50524f58592054435034203132372e302e302e31203132372e302e302e3120\
             33333737362031383030310d0a",
            inet("127.0.0.1:33776", "127.0.0.1:18001"),
        ),
        (
            "50524f58592054435036203a3a31203a3a312035313730322031383030320d0a",
            inet("[::1]:51702", "[::1]:18002"),
        ),
        (
            "0d0a0d0a000d0a515549540a2111000c7f0000017f000001df2c4653",
            inet("127.0.0.1:57132", "127.0.0.1:18003"),
        ),
        (
            "0d0a0d0a000d0a515549540a21210024000000000000000000000000000000010000\
             0000000000000000000000000001e7e04654",
            inet("[::1]:59360", "[::1]:18004"),
        ),
        (
            // CRC32C, unique ID (46 bytes) and SSL (not over TLS) TLVs.
            "0d0a0d0a000d0a515549540a2111004c7f0000017f000001dc984655030004af01\
             bfc905002e37463030303030313a444339385f37463030303030313a343635355f\
             36423046334234425f303030343a354341372000050000000000",
            inet("127.0.0.1:56472", "127.0.0.1:18005"),
        ),
        // The health checks: v2 LOCAL, and v1 with the check's addresses.
        ("0d0a0d0a000d0a515549540a20000000", Header::Local),
        (
            "50524f58592054435034203132372e302e302e31203132372e302e302e3120\
             34363031382031383130340d0a",
            inet("127.0.0.1:46018", "127.0.0.1:18104"),
        ),
    ];
    for (i, (wire, expected)) in cases.iter().enumerate() {
        let header = hex(&wire.replace(' ', ""));
        good(&header, expected);
        let mut stream = header.clone();
        stream.extend_from_slice(&hex(get));
        assert_eq!(
            parse(&stream),
            Ok(Parsed::Complete {
                header: expected.clone(),
                consumed: header.len()
            }),
            "capture {i}"
        );
    }
    // The CRC32C is verified: change a byte of the unique ID and it fails
    // at the header's last byte.
    let mut crc = hex(cases[4].0);
    crc[40] ^= 0x20;
    bad(&crc[..91], &crc[91..], "v2 CRC32C does not match");
}

#[test]
fn crc32c_check_value() {
    // RFC 3720's CRC32c check value.
    assert_eq!(!crc32c(!0, b"123456789"), 0xe306_9283);
    assert_eq!(!crc32c(!0, &[0; 32]), 0x8a91_36aa);
}

#[test]
fn never_incomplete_at_the_limit() {
    // Whatever a trusted peer sends, MAX_HEADER_LEN bytes decide it.
    let f = [b'f'; MAX_HEADER_LEN];
    let mut inputs = vec![
        v2_len(0x21, 0x11, 4080, &[0; 4080]),
        [&b"PROXY UNKNOWN "[..], &f].concat(),
        [&b"PROXY TCP6 "[..], &f].concat(),
    ];
    inputs.push(v2(
        0x21,
        0x11,
        &[&INET4[..], &tlv(0x04, &[0; 4065])].concat(),
    ));
    for input in inputs {
        assert_ne!(parse(&input[..MAX_HEADER_LEN]), Ok(Parsed::Incomplete));
    }
}

#[test]
fn client_address() {
    assert_eq!(
        inet4().client(),
        Some("192.0.2.1:56324".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(Header::Local.client(), None);
    assert_eq!(Header::Unknown.client(), None);
}

#[test]
fn error_display() {
    let e = parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 65536").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid PROXY protocol header: port above 65535 (byte 31)"
    );
}

#[test]
fn encoders_round_trip() {
    let headers = [
        Header::Local,
        Header::Unknown,
        inet4(),
        inet("[2001:db8::1]:1", "[::ffff:192.0.2.1]:65535"),
        inet("[::]:0", "[1:2:3:4:5:6:7:8]:80"),
        Header::Unix {
            source: b"/a".to_vec(),
            destination: b"\0abstract".to_vec(),
        },
        Header::Unix {
            source: Vec::new(),
            destination: vec![b'x'; 108],
        },
    ];
    for h in &headers {
        let v1 = encode_v1(h);
        let v2 = encode_v2(h, &[(0x01, b"h2"), (0x04, b"")]);
        assert!(v1.is_some() || v2.is_some(), "{h:?}");
        for encoded in v1.into_iter().chain(v2) {
            good(&encoded, h);
        }
    }
    // What neither can say.
    let mixed = inet("192.0.2.1:1", "[::1]:2");
    assert_eq!(encode_v1(&mixed), None);
    assert_eq!(encode_v2(&mixed, &[]), None);
    assert_eq!(encode_v1(&Header::Local), None);
    assert_eq!(encode_v2(&Header::Unknown, &[]), None);
    let long = Header::Unix {
        source: vec![b'x'; 109],
        destination: Vec::new(),
    };
    assert_eq!(encode_v2(&long, &[]), None);
    assert_eq!(encode_v2(&Header::Local, &[(4, &[0; 4078])]), None);
    assert!(encode_v2(&Header::Local, &[(4, &[0; 4077])]).is_some());
    assert_eq!(
        encode_v1(&inet4()).unwrap(),
        b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n"
    );
}

/// Calls `f` with every string over `alphabet` of at most `max` bytes.
fn each_string(alphabet: &[u8], max: usize, f: &mut impl FnMut(&[u8])) {
    fn go(alphabet: &[u8], max: usize, s: &mut Vec<u8>, f: &mut impl FnMut(&[u8])) {
        f(s);
        if s.len() < max {
            for &c in alphabet {
                s.push(c);
                go(alphabet, max, s, f);
                s.pop();
            }
        }
    }
    go(alphabet, max, &mut Vec::new(), f);
}

/// What an address automaton says of a string: the error's index, or how
/// many more characters it needs at the least and what it is as it stands.
type Verdict<A> = Result<(usize, Option<A>), usize>;

/// Checks an address automaton against `std`'s parser on every string over
/// `alphabet` of at most `max` bytes: it takes a whole string exactly when
/// `std` does, with the same value; it refuses a string exactly when no
/// valid address begins with it; and what it says a prefix needs at the
/// least is the shortest completion (where that fits in `max`).
fn exhaustive<A: PartialEq + std::fmt::Debug + std::str::FromStr>(
    alphabet: &[u8],
    max: usize,
    run: impl Fn(&[u8]) -> Verdict<A>,
) {
    let valid = |s: &[u8]| std::str::from_utf8(s).unwrap().parse::<A>().ok();
    // The shortest completion of every prefix of a valid string.
    let mut shortest: HashMap<Vec<u8>, usize> = HashMap::new();
    each_string(alphabet, max, &mut |w| {
        if valid(w).is_some() {
            for k in 0..=w.len() {
                let e = shortest.entry(w[..k].to_vec()).or_insert(usize::MAX);
                *e = (*e).min(w.len() - k);
            }
        }
    });
    let mut checked = 0;
    each_string(alphabet, max, &mut |s| {
        let text = String::from_utf8_lossy(s);
        match run(s) {
            Ok((more, value)) => {
                assert_eq!(value, valid(s), "{text}");
                assert_eq!(more == 0, value.is_some(), "{text}");
                if s.len() + more <= max {
                    assert_eq!(shortest.get(s), Some(&more), "{text}");
                    checked += 1;
                }
            }
            Err(at) => {
                assert!(at < s.len(), "{text}");
                assert_eq!(shortest.get(s), None, "{text} refused, yet completes");
            }
        }
    });
    assert!(checked > 100, "{checked}");
}

/// Runs the IPv6 automaton.
fn run6(s: &[u8]) -> Verdict<Ipv6Addr> {
    let mut t = Ip6Text::default();
    for (i, &b) in s.iter().enumerate() {
        t.push(b).map_err(|_| i)?;
    }
    Ok((t.min_more(), t.finish().ok()))
}

/// Runs the IPv4 automaton.
fn run4(s: &[u8]) -> Verdict<Ipv4Addr> {
    let mut t = Ip4Text::default();
    for (i, &b) in s.iter().enumerate() {
        t.push(b).map_err(|_| i)?;
    }
    Ok((t.min_more(), t.finish().ok()))
}

#[test]
fn ipv6_text_against_std() {
    exhaustive(b"01f:.", 7, run6);
    exhaustive(b"01:.", 9, run6);
    exhaustive(b"0a:.9", 6, run6);
}

#[test]
fn ipv4_text_against_std() {
    exhaustive(b"0259.", 8, run4);
    exhaustive(b"01.", 11, run4);
}

/// xorshift64, for the random cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn ipv6_text_against_std_long_forms() {
    // Addresses with runs of zero groups, printed by std (compressed, with
    // a dotted quad for the mapped ones), in full with leading zeros, and
    // with a dotted quad; then mutated one character at a time. The line
    // parser must agree with std on every one.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alphabet = b"0123456789abcdefABCDEF:.:.: %[]g";
    let mut agreed = 0;
    for _ in 0..20_000 {
        let mut groups = [0u16; 8];
        for g in &mut groups {
            *g = match rng.below(4) {
                0 => 0,
                1 => rng.next() as u16 & 0xf,
                _ => rng.next() as u16,
            };
        }
        if rng.below(4) == 0 {
            groups[..5].fill(0);
            groups[5] = 0xffff;
        }
        let ip = Ipv6Addr::from(groups);
        let [.., a, b, c, d] = ip.octets();
        let mut text = match rng.below(3) {
            0 => ip.to_string(),
            1 => groups.map(|g| format!("{g:04x}")).join(":"),
            _ => format!(
                "{}:{a}.{b}.{c}.{d}",
                groups[..6]
                    .iter()
                    .map(|g| format!("{g:x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            ),
        }
        .into_bytes();
        for _ in 0..rng.below(3) {
            let at = rng.below(text.len() + 1);
            let c = alphabet[rng.below(alphabet.len())];
            match rng.below(3) {
                0 if at < text.len() => text[at] = c,
                1 if at < text.len() => {
                    text.remove(at);
                }
                _ => text.insert(at, c),
            }
        }
        let Ok(s) = std::str::from_utf8(&text) else {
            continue;
        };
        if s.contains([' ', '\r', '\n']) || s.is_empty() {
            continue;
        }
        let line = format!("PROXY TCP6 {s} ::1 1 2\r\n");
        let got = match parse(line.as_bytes()) {
            Ok(Parsed::Complete { header, .. }) => header.client().map(|a| a.ip()),
            Ok(Parsed::Incomplete) => panic!("{line:?} incomplete"),
            Err(_) => None,
        };
        let expected = s.parse::<Ipv6Addr>().ok().map(std::net::IpAddr::V6);
        assert_eq!(got, expected, "{s}");
        agreed += usize::from(expected.is_some());
    }
    assert!(agreed > 5_000, "{agreed}");
}
