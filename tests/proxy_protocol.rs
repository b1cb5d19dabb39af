//! The PROXY protocol (`proxy_protocol`) over real loopback sockets, on
//! both pollers:
//!
//! * every v1 form (`TCP4`, `TCP6`, `UNKNOWN`) and v2 form (`PROXY` over
//!   `AF_INET`, `AF_INET6`, `AF_UNIX`, `AF_UNSPEC`; `LOCAL`; TLVs, a
//!   CRC32C, a header of the largest size taken) from a trusted peer names
//!   the client the application sees, for every request on the connection;
//! * however the header and the first request are split into writes (a
//!   byte a write, random splits, all in one write), the same;
//! * each class of malformed header (and plain HTTP with no header) closes
//!   the connection without a byte of answer, counted in
//!   `Stats::proxy_header_errors`, and the server goes on serving;
//! * an untrusted peer's PROXY header is a malformed request (400), and
//!   its plain requests are served as ever;
//! * the header counts against `request_head_timeout` (408), and the
//!   clock stops once it is complete;
//! * the access log's `%h` is the PROXY client;
//! * the proxy headers start from the PROXY client: its `X-Forwarded-For`
//!   is believed only when `trusted_proxy` matches it;
//! * a unix-socket peer is `localhost` for `trusted_proxy`;
//! * `proxy_protocol` without `trusted_proxy` is refused at start.
//!
//! The server trusts 127.0.0.1, where the test's clients are; an untrusted
//! client connects from 127.0.0.3 where the machine allows (else the server
//! trusts 127.0.0.2 instead, and 127.0.0.1 is the untrusted one).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use maitred::__private::proxy_protocol::{encode_v1, encode_v2, parse, Header, V2_SIGNATURE};
use maitred::{Adjustments, Request, Response};

/// `<remote_addr> <remote_port>` as the application sees them (`-` for no
/// port), then the `X-Forwarded-For` it was left, if any.
fn echo(req: &mut Request) -> Response {
    let port = req.remote_port().map_or("-".to_string(), |p| p.to_string());
    let mut out = format!("{} {port}", req.remote_addr());
    if let Some(v) = req.header_str("x-forwarded-for") {
        out.push_str(&format!(" xff={v}"));
    }
    Response::text(out)
}

/// `proxy_protocol` on, `trusted_proxy` set to `trusted`.
fn settings(poll: bool, trusted: &str) -> Adjustments {
    let mut a = adj(poll).trusted_proxy(trusted);
    a.proxy_protocol = true;
    a
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// The client the application saw for one request on `c`.
fn client_seen(c: &mut Client) -> String {
    let r = c.roundtrip(GET);
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

fn inet(source: &str, destination: &str) -> Header {
    Header::Inet {
        source: source.parse().unwrap(),
        destination: destination.parse().unwrap(),
    }
}

/// A v2 header as HAProxy 2.6 sends it (`send-proxy-v2 proxy-v2-options
/// crc32c,unique-id,ssl`, from a client at 127.0.0.2:46659 to a frontend
/// at 127.0.0.1:18422), captured off the wire: a CRC32C TLV (computed by
/// another implementation than the server's), a unique ID and an SSL TLV.
const HAPROXY_V2: &str = "0d0a0d0a000d0a515549540a211100477f0000027f000001b64347f6\
                          030004447d9bad\
                          05002937463030303030323a423634335f37463030303030313a\
                          343746365f36423046353742455f30303030\
                          2000050000000000";

/// Where the CRC32C value is in [`HAPROXY_V2`].
const HAPROXY_V2_CRC_AT: usize = 16 + 12 + 3;

fn haproxy_v2() -> Vec<u8> {
    HAPROXY_V2
        .as_bytes()
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// Who the application must see after a header.
#[derive(Clone, Copy, Debug)]
enum Seen {
    /// This address and port.
    Client(&'static str),
    /// The socket's own peer: 127.0.0.1 and the client's port.
    Socket,
}

/// Every form a trusted peer may send, with what it must come to.
fn forms() -> Vec<(&'static str, Vec<u8>, Seen)> {
    let v4 = inet("192.0.2.7:4711", "198.51.100.1:80");
    let v6 = inet("[2001:db8::7]:4712", "[2001:db8::1]:443");
    let unix = Header::Unix {
        source: b"/run/client.sock".to_vec(),
        destination: b"/run/lb.sock".to_vec(),
    };
    let mut unspec = V2_SIGNATURE.to_vec();
    unspec.extend_from_slice(&[0x21, 0x00, 0x00, 0x00]);
    // LOCAL with a family and addresses: they are skipped.
    let mut local_with_addresses = encode_v2(&v4, &[]).unwrap();
    local_with_addresses[12] = 0x20;
    // HAProxy's and the clouds' TLVs: ALPN, authority, unique ID, NOOP,
    // SSL with sub-TLVs, AWS's VPC endpoint.
    let ssl: &[u8] = b"\x07\x00\x00\x00\x00\x21\x00\x07TLSv1.3";
    let tlvs: &[(u8, &[u8])] = &[
        (0x01, b"http/1.1"),
        (0x02, b"app.example"),
        (0x05, b"4f3c2a1b"),
        (0x04, b""),
        (0x20, ssl),
        (0xEA, b"\x01vpce-0123456789abcdef"),
    ];
    // The largest header taken: 4096 bytes.
    let big = vec![b'z'; 4096 - 16 - 12 - 3];
    vec![
        ("v1 TCP4", encode_v1(&v4).unwrap(), Seen::Client("192.0.2.7 4711")),
        ("v1 TCP6", encode_v1(&v6).unwrap(), Seen::Client("2001:db8::7 4712")),
        ("v1 UNKNOWN", b"PROXY UNKNOWN\r\n".to_vec(), Seen::Socket),
        (
            "v1 UNKNOWN, 107 bytes",
            b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n".to_vec(),
            Seen::Socket,
        ),
        (
            "v1 TCP6, IPv4-mapped",
            b"PROXY TCP6 ::ffff:192.0.2.5 ::1 1 65535\r\n".to_vec(),
            Seen::Client("::ffff:192.0.2.5 1"),
        ),
        (
            "v2 INET",
            encode_v2(&inet("192.0.2.9:5000", "198.51.100.1:80"), &[]).unwrap(),
            Seen::Client("192.0.2.9 5000"),
        ),
        (
            "v2 INET6",
            encode_v2(&inet("[2001:db8::9]:5001", "[2001:db8::1]:443"), &[]).unwrap(),
            Seen::Client("2001:db8::9 5001"),
        ),
        ("v2 UNIX", encode_v2(&unix, &[]).unwrap(), Seen::Socket),
        ("v2 UNSPEC", unspec, Seen::Socket),
        ("v2 LOCAL", encode_v2(&Header::Local, &[]).unwrap(), Seen::Socket),
        ("v2 LOCAL with addresses", local_with_addresses, Seen::Socket),
        (
            "v2 INET with TLVs",
            encode_v2(&inet("192.0.2.11:5002", "198.51.100.1:80"), tlvs).unwrap(),
            Seen::Client("192.0.2.11 5002"),
        ),
        ("v2 from HAProxy, with a CRC32C", haproxy_v2(), Seen::Client("127.0.0.2 46659")),
        (
            "v2 INET, 4096 bytes",
            encode_v2(&inet("192.0.2.13:5004", "198.51.100.1:80"), &[(0xE0, &big)]).unwrap(),
            Seen::Client("192.0.2.13 5004"),
        ),
    ]
}

/// What `seen` means on connection `c`.
fn expected(seen: Seen, c: &Client) -> String {
    match seen {
        Seen::Client(s) => s.to_string(),
        Seen::Socket => format!("127.0.0.1 {}", c.stream.local_addr().unwrap().port()),
    }
}

/// Sends `parts` one write each (with TCP_NODELAY, and a pause between so
/// that the server reads them apart), then checks the client of the
/// request they end with and of two more on the same connection.
fn check_split(addr: SocketAddr, name: &str, parts: &[&[u8]], seen: Seen) {
    let mut c = Client::connect(addr);
    c.stream.set_nodelay(true).unwrap();
    let want = expected(seen, &c);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        c.send(part);
    }
    let r = c.read_response().expect(name);
    assert_eq!((r.status, r.text()), (200, want.clone()), "{name}");
    for _ in 0..2 {
        assert_eq!(client_seen(&mut c), want, "{name}, a later request");
    }
}

/// A small deterministic generator (xorshift64*) for the random splits.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// Malformed headers, one of each class of error the parser finds, with
/// the reason it gives (checked first, so that each case is the class it
/// says).
fn malformed() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let v4 = encode_v2(&inet("192.0.2.9:5000", "198.51.100.1:80"), &[]).unwrap();
    let with = |at: usize, byte: u8| {
        let mut h = v4.clone();
        h[at] = byte;
        h
    };
    let length = |n: u16| {
        let mut h = v4.clone();
        h[14..16].copy_from_slice(&n.to_be_bytes());
        h
    };
    let mut bad_crc = haproxy_v2();
    bad_crc[HAPROXY_V2_CRC_AT] ^= 1;
    let mut tlv_past_end =
        encode_v2(&inet("192.0.2.9:5000", "198.51.100.1:80"), &[(0x01, b"h2")]).unwrap();
    let n = tlv_past_end.len();
    tlv_past_end[n - 4..n - 2].copy_from_slice(&9u16.to_be_bytes());
    let mut too_long = b"PROXY UNKNOWN ".to_vec();
    too_long.resize(120, b'x');
    too_long.extend_from_slice(b"\r\n");
    let request = |bytes: &[u8]| {
        let mut b = bytes.to_vec();
        b.extend_from_slice(GET);
        b
    };
    vec![
        (
            "plain HTTP, no header",
            GET.to_vec(),
            "neither a v1 nor a v2 header",
        ),
        (
            "v1 signature",
            request(b"PROXX TCP4 192.0.2.7 198.51.100.1 1 80\r\n"),
            "v1 header does not begin with \"PROXY \"",
        ),
        (
            "v1 lower case",
            request(b"proxy TCP4 192.0.2.7 198.51.100.1 1 80\r\n"),
            "neither a v1 nor a v2 header",
        ),
        (
            "v1 protocol",
            request(b"PROXY TCP5 192.0.2.7 198.51.100.1 1 80\r\n"),
            "v1 protocol is not TCP4, TCP6 or UNKNOWN",
        ),
        (
            "v1 two spaces",
            request(b"PROXY TCP4  192.0.2.7 198.51.100.1 1 80\r\n"),
            "v1 fields are separated by exactly one space",
        ),
        (
            "v1 octet above 255",
            request(b"PROXY TCP4 192.0.2.256 198.51.100.1 1 80\r\n"),
            "IPv4 address octet above 255",
        ),
        (
            "v1 leading zero",
            request(b"PROXY TCP4 192.0.2.07 198.51.100.1 1 80\r\n"),
            "leading zero in an IPv4 address",
        ),
        (
            "v1 TCP6 with an IPv4 address",
            request(b"PROXY TCP6 192.0.2.7 2001:db8::1 1 80\r\n"),
            "IPv4 part of an IPv6 address in the wrong place",
        ),
        (
            "v1 IPv6",
            request(b"PROXY TCP6 2001:db8:::1 2001:db8::2 1 80\r\n"),
            "IPv6 address with \":::\"",
        ),
        (
            "v1 port above 65535",
            request(b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 80\r\n"),
            "port above 65535",
        ),
        (
            "v1 port sign",
            request(b"PROXY TCP4 192.0.2.7 198.51.100.1 +1 80\r\n"),
            "bad character in a port",
        ),
        (
            "v1 bare LF",
            request(b"PROXY UNKNOWN\n"),
            "v1 LF without CR",
        ),
        (
            "v1 longer than 107 bytes",
            too_long,
            "v1 line longer than 107 bytes",
        ),
        (
            "v2 signature",
            request(&with(11, b'X')),
            "not the v2 signature",
        ),
        (
            "v2 version 1",
            request(&with(12, 0x11)),
            "v2 version is not 2",
        ),
        (
            "v2 command 2",
            request(&with(12, 0x22)),
            "v2 command is neither LOCAL nor PROXY",
        ),
        (
            "v2 family 4",
            request(&with(13, 0x41)),
            "v2 address family unknown",
        ),
        (
            "v2 UDP",
            request(&with(13, 0x12)),
            "v2 datagram transport on a stream",
        ),
        (
            "v2 length short of the addresses",
            request(&length(11)),
            "v2 length shorter than the addresses",
        ),
        (
            "v2 length over 4080",
            length(4081)[..16].to_vec(),
            "v2 header longer than 4096 bytes",
        ),
        (
            "v2 TLV past the end",
            request(&tlv_past_end),
            "v2 TLV runs past the header's end",
        ),
        (
            "v2 CRC32C mismatch",
            request(&bad_crc),
            "v2 CRC32C does not match",
        ),
    ]
}

backend_tests! {
    fn every_form_names_the_client_for_the_whole_connection(poll: bool) {
        let s = start(echo, settings(poll, "127.0.0.1"));
        for (name, header, seen) in forms() {
            // The header and the first request in one write.
            let mut first = header.clone();
            first.extend_from_slice(GET);
            check_split(s.addr, name, &[&first], seen);
        }
        // The header and two pipelined requests in one write.
        let mut c = Client::connect(s.addr);
        let mut bytes = haproxy_v2();
        bytes.extend_from_slice(GET);
        bytes.extend_from_slice(GET);
        c.send(&bytes);
        for _ in 0..2 {
            assert_eq!(c.read_response().unwrap().text(), "127.0.0.2 46659");
        }
        assert_eq!(s.handle.stats().proxy_header_errors, 0);
    }

    fn however_the_header_is_split(poll: bool) {
        let s = start(echo, settings(poll, "127.0.0.1"));
        let forms = forms();
        // A byte a write, through the header and the request behind it:
        // one v1 and one v2 header (with TLVs).
        for wanted in ["v1 TCP6", "v2 INET with TLVs"] {
            let (name, header, seen) = forms.iter().find(|f| f.0 == wanted).unwrap();
            let mut all = header.clone();
            all.extend_from_slice(GET);
            let parts: Vec<&[u8]> = all.chunks(1).collect();
            check_split(s.addr, name, &parts, *seen);
        }
        // Every form, cut at three random places of header and request
        // (the 4096-byte one too: reads may end anywhere in it).
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for (name, header, seen) in &forms {
            let mut all = header.clone();
            all.extend_from_slice(GET);
            for _ in 0..3 {
                let mut cuts: Vec<usize> = (0..3).map(|_| 1 + rng.below(all.len() - 1)).collect();
                cuts.sort_unstable();
                cuts.dedup();
                let mut parts = Vec::new();
                let mut from = 0;
                for &cut in cuts.iter().chain([all.len()].iter()) {
                    parts.push(&all[from..cut]);
                    from = cut;
                }
                check_split(s.addr, &format!("{name} cut at {cuts:?}"), &parts, *seen);
            }
        }
        assert_eq!(s.handle.stats().proxy_header_errors, 0);
    }

    fn a_bad_header_closes_without_an_answer_and_is_counted(poll: bool) {
        logs();
        let s = start(echo, settings(poll, "127.0.0.1"));
        let cases = malformed();
        for (name, bytes, reason) in &cases {
            let e = parse(bytes).expect_err(name);
            assert_eq!(e.reason(), *reason, "{name}");
            let mut c = Client::connect(s.addr);
            let _ = c.try_send(bytes);
            let got = c.read_all();
            assert!(got.is_empty(), "{name}: {:?}", String::from_utf8_lossy(&got));
        }
        let n = cases.len() as u64;
        wait_until(Duration::from_secs(5), || s.handle.stats().proxy_header_errors == n);
        let stats = s.handle.stats();
        assert_eq!((stats.parse_errors, stats.requests_received), (0, 0));
        // The server serves on.
        let mut c = Client::connect(s.addr);
        c.send(b"PROXY TCP4 192.0.2.7 198.51.100.1 4711 80\r\n");
        assert_eq!(client_seen(&mut c), "192.0.2.7 4711");
        assert_eq!(s.handle.stats().proxy_header_errors, n);
        // One warning at least (at most one a second), with the reason.
        assert!(
            !logged("invalid PROXY protocol header").is_empty(),
            "{:?}",
            logs().lock().unwrap()
        );
    }

    fn an_untrusted_peer_is_served_plain_http(poll: bool) {
        // From 127.0.0.3 where it can be bound, with 127.0.0.1 trusted;
        // else from 127.0.0.1 with only 127.0.0.2 trusted.
        let bound = can_bind("127.0.0.3");
        let s = start(echo, settings(poll, if bound { "127.0.0.1" } else { "127.0.0.2" }));
        let untrusted = || {
            let stream = if bound {
                connect_from(Ipv4Addr::new(127, 0, 0, 3), s.addr).expect("a client at 127.0.0.3")
            } else {
                connect(s.addr)
            };
            Client::new(stream)
        };
        let me = if bound { "127.0.0.3" } else { "127.0.0.1" };
        // A PROXY header is a malformed request: 400, closed.
        let v2 = encode_v2(&inet("192.0.2.9:5000", "198.51.100.1:80"), &[]).unwrap();
        for header in [b"PROXY TCP4 192.0.2.7 198.51.100.1 4711 80\r\n".to_vec(), v2] {
            let mut c = untrusted();
            let mut bytes = header;
            bytes.extend_from_slice(GET);
            let _ = c.try_send(&bytes);
            let r = c.read_response().expect("an answer");
            assert_eq!(r.status, 400, "{}", r.text());
            assert_eq!(r.header("connection"), Some("close"));
            c.assert_closed();
        }
        // Plain HTTP is served, keep-alive and all, from the socket's peer.
        let mut c = untrusted();
        let port = c.stream.local_addr().unwrap().port();
        for _ in 0..2 {
            assert_eq!(client_seen(&mut c), format!("{me} {port}"));
        }
        let stats = s.handle.stats();
        assert_eq!((stats.proxy_header_errors, stats.parse_errors), (0, 2));
        if bound {
            // And the trusted peer, on the same server, must send one.
            let mut c = Client::connect(s.addr);
            c.send(b"PROXY TCP4 192.0.2.7 198.51.100.1 4711 80\r\n");
            assert_eq!(client_seen(&mut c), "192.0.2.7 4711");
        } else {
            common::external::skip("127.0.0.3 cannot be bound here: the untrusted client is 127.0.0.1");
        }
    }

    fn the_header_counts_against_request_head_timeout(poll: bool) {
        let mut a = settings(poll, "127.0.0.1");
        a.request_head_timeout = 2;
        let s = start(echo, a);
        let addr = s.addr;
        let v2 = encode_v2(&inet("192.0.2.9:5000", "198.51.100.1:80"), &[]).unwrap();
        std::thread::scope(|sc| {
            // Half a header, then silence: 408, as a slow head gets.
            for half in [b"PROXY TCP4 192.0.2.7 ".to_vec(), v2[..20].to_vec()] {
                sc.spawn(move || {
                    let mut c = Client::connect(addr);
                    let t = Instant::now();
                    c.send(&half);
                    let r = c.read_response().expect("a 408");
                    let took = t.elapsed();
                    assert_eq!(r.status, 408);
                    assert_eq!(r.header("connection"), Some("close"));
                    assert!(
                        took >= Duration::from_millis(1900) && took < Duration::from_secs(8),
                        "{took:?}"
                    );
                    c.assert_closed();
                });
            }
            // A whole header, then silence past the deadline: an idle
            // connection, whose request is served when it comes.
            sc.spawn(move || {
                let mut c = Client::connect(addr);
                c.send(b"PROXY TCP4 192.0.2.7 198.51.100.1 4711 80\r\n");
                std::thread::sleep(Duration::from_millis(3000));
                assert_eq!(client_seen(&mut c), "192.0.2.7 4711");
            });
        });
        let stats = s.handle.stats();
        assert_eq!((stats.requests_timed_out, stats.proxy_header_errors), (2, 0));
    }

    fn the_access_log_names_the_proxy_client(poll: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let mut a = settings(poll, "127.0.0.1");
        a.access_log = path.to_str().unwrap().to_string();
        a.access_log_format = "%h \"%r\" %>s".into();
        let s = start(echo, a);
        let send = |header: &[u8], request: &[u8]| {
            let mut c = Client::connect(s.addr);
            let mut bytes = header.to_vec();
            bytes.extend_from_slice(request);
            c.roundtrip(&bytes)
        };
        let v6 = encode_v2(&inet("[2001:db8::7]:4712", "[2001:db8::1]:443"), &[]).unwrap();
        let local = encode_v2(&Header::Local, &[]).unwrap();
        assert_eq!(send(b"PROXY TCP4 192.0.2.7 198.51.100.1 4711 80\r\n", b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
        assert_eq!(send(&v6, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
        assert_eq!(send(&local, b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
        // The server's own answer after a good header: the client too.
        assert_eq!(send(b"PROXY TCP4 192.0.2.8 198.51.100.1 4711 80\r\n", b"GET /d HTTP/1.1\r\nBad header\r\n\r\n").status, 400);
        s.stop().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        assert_eq!(
            lines,
            [
                "127.0.0.1 \"GET /c HTTP/1.1\" 200",
                "192.0.2.7 \"GET /a HTTP/1.1\" 200",
                "192.0.2.8 \"-\" 400",
                "2001:db8::7 \"GET /b HTTP/1.1\" 200",
            ]
        );
    }

    fn the_proxy_headers_start_from_the_proxy_client(poll: bool) {
        let header = b"PROXY TCP4 192.0.2.7 198.51.100.1 4711 80\r\n";
        let request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n";
        let seen = |trusted: &str| {
            let s = start(
                echo,
                settings(poll, trusted).trusted_proxy_headers(&["x-forwarded-for"]),
            );
            let mut c = Client::connect(s.addr);
            c.send(header);
            c.roundtrip(request).text()
        };
        // 192.0.2.7 is not trusted: its header is not believed (and is
        // removed, clear_untrusted_proxy_headers).
        assert_eq!(seen("127.0.0.1"), "192.0.2.7 4711");
        // It is: the client is the one it names (the port stays the
        // PROXY client's: X-Forwarded-For gave none, as in waitress).
        assert_eq!(seen("127.0.0.1, 192.0.2.7"), "203.0.113.9 4711 xff=203.0.113.9");
    }

    fn a_unix_socket_peer_is_localhost(poll: bool) {
        let mut a = Adjustments::default().asyncore_use_poll(poll).trusted_proxy("localhost");
        a.proxy_protocol = true;
        let s = start_unix(echo, a);
        let close = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let mut bytes = b"PROXY TCP4 192.0.2.7 198.51.100.1 4711 80\r\n".to_vec();
        bytes.extend_from_slice(close);
        let out = String::from_utf8_lossy(&s.exchange(&bytes)).into_owned();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\n192.0.2.7 4711"), "{out}");
        // LOCAL: the socket's peer, `localhost` with no port.
        let mut bytes = encode_v2(&Header::Local, &[]).unwrap();
        bytes.extend_from_slice(close);
        let out = String::from_utf8_lossy(&s.exchange(&bytes)).into_owned();
        assert!(out.ends_with("\r\n\r\nlocalhost -"), "{out}");
        // No header: closed, counted.
        assert!(s.exchange(close).is_empty());
        wait_until(Duration::from_secs(5), || s.handle.stats().proxy_header_errors == 1);
        s.stop().unwrap();
    }
}

#[test]
fn proxy_protocol_needs_trusted_proxy() {
    let mut a = adj(false);
    a.proxy_protocol = true;
    let e = maitred::create_server(echo, a).unwrap_err();
    assert!(e.is_config());
    let text = e.to_string();
    assert!(
        text.contains("proxy_protocol") && text.contains("trusted_proxy"),
        "{text}"
    );
    // As a setting by name too (a config file, the command line).
    let mut a = adj(false);
    a.set("proxy_protocol", "true").unwrap();
    assert!(maitred::create_server(echo, a).is_err());
}
