//! WebSocket over real sockets (the `websocket` feature): a client written
//! by others (tungstenite) for what a normal client does, and frames
//! written by hand for what only a broken or hostile client sends (each
//! protocol error and the close code it must get). The example's echo and
//! chat are served as the example serves them.
#![cfg(feature = "websocket")]

mod common;

/// The `websocket` example's application, served here as the example
/// serves it.
#[path = "../examples/websocket.rs"]
#[allow(dead_code)]
mod websocket_example;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use maitred::__private::websocket::{
    close_payload, encode_masked, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
};
use maitred::websocket::{self, Config};
use maitred::{Adjustments, Request, Response};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::Message as TMessage;

use websocket_example::Room;

const MASK: [u8; 4] = [0xa1, 0x5b, 0x07, 0xe2];

type Client = tungstenite::WebSocket<TcpStream>;

/// The example's application, and routes for what it does not do.
fn app(room: Arc<Room>) -> impl Fn(&mut Request) -> Response + Send + Sync + 'static {
    let example = websocket_example::app(room);
    move |req: &mut Request| {
        let path = req.path().into_owned();
        let hs = match (path.as_str(), websocket::is_websocket_request(req)) {
            (_, false) | ("/" | "/chat", true) => return example(req),
            (_, true) => match websocket::handshake(req) {
                Ok(hs) => hs,
                Err(r) => return r.into_response(),
            },
        };
        match path.as_str() {
            // The server pings first, then echoes.
            "/ping" => hs.accept(|ws| {
                let _ = ws.ping(b"server ping");
                websocket_example::echo(ws)
            }),
            // The server closes after the first message.
            "/close" => hs.accept(|mut ws| {
                let _ = ws.read();
                let _ = ws.close(4000, "done");
            }),
            // A sender on another thread closes; the client never answers:
            // the connection ends after the close timeout.
            "/close-from-elsewhere" => hs
                .with_config(Config::default().close_timeout(Duration::from_millis(300)))
                .accept(|ws| {
                    let (mut reader, sender) = ws.split();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(100));
                        let _ = sender.close(1001, "going away");
                    });
                    let began = Instant::now();
                    let r = reader.read();
                    assert!(matches!(r, Ok(None)), "{r:?}");
                    assert!(began.elapsed() < Duration::from_secs(3));
                }),
            // Four threads send at once: no frame may interleave another.
            "/flood" => hs.accept(|ws| {
                let threads: Vec<_> = (0..4u8)
                    .map(|t| {
                        let s = ws.sender();
                        std::thread::spawn(move || {
                            for _ in 0..50 {
                                s.send_binary(&vec![t; 20_000]).unwrap();
                            }
                        })
                    })
                    .collect();
                for t in threads {
                    t.join().unwrap();
                }
                websocket_example::echo(ws)
            }),
            // A sender thread writes numbered messages (some large) as
            // fast as the client reads, until sending fails; the handler
            // reads until the connection ends.
            "/chatter" => hs.accept(|ws| {
                let (mut reader, sender) = ws.split();
                let chatter = std::thread::spawn(move || {
                    let big = "y".repeat(100_000);
                    for n in 0u64.. {
                        let msg = if n % 8 == 7 {
                            format!("{n} {big}")
                        } else {
                            n.to_string()
                        };
                        if sender.send_text(&msg).is_err() {
                            break;
                        }
                    }
                });
                while let Ok(Some(_)) = reader.read() {}
                let _ = chatter.join();
            }),
            // The subprotocol the handshake chose, sent back as text.
            "/protocol" => hs.select_protocol(&["v2.chat", "chat"]).accept(|ws| {
                let p = ws.protocol().unwrap_or("none").to_string();
                let _ = ws.send_text(&p);
                websocket_example::echo(ws)
            }),
            _ => Response::status_page(404),
        }
    }
}

fn serve(a: Adjustments) -> (TestServer, Arc<Room>) {
    let room = Arc::new(Room::default());
    (start(app(Arc::clone(&room)), a), room)
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    s
}

/// A tungstenite client on `path`, with no limits of its own.
fn client(addr: SocketAddr, path: &str) -> Client {
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let url = format!("ws://{addr}{path}");
    let (ws, resp) = tungstenite::client::client_with_config(url.as_str(), tcp(addr), Some(config))
        .unwrap_or_else(|e| panic!("handshake on {path}: {e}"));
    assert_eq!(resp.status(), 101);
    ws
}

fn text(ws: &mut Client) -> String {
    match ws.read().unwrap() {
        TMessage::Text(t) => t.as_str().to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// A client that writes frames by hand.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

/// A handshake request for `path` with `extra` header lines.
fn handshake_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

impl Raw {
    fn connect(addr: SocketAddr, path: &str) -> Raw {
        let mut raw = Raw {
            s: tcp(addr),
            buf: Vec::new(),
        };
        raw.s
            .write_all(handshake_request(path, "").as_bytes())
            .unwrap();
        let head = raw.head();
        assert!(
            head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{head}"
        );
        assert!(
            head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{head}"
        );
        raw
    }

    fn fill(&mut self) -> usize {
        let mut b = [0u8; 65536];
        let n = self.s.read(&mut b).unwrap_or(0);
        self.buf.extend_from_slice(&b[..n]);
        n
    }

    /// The response head, up to its blank line.
    fn head(&mut self) -> String {
        for _ in 0..100 {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..i + 4).collect();
                return String::from_utf8(head).unwrap();
            }
            assert!(self.fill() > 0, "closed before the head ended");
        }
        panic!("no end of the head");
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    fn frame(&mut self, fin: bool, op: u8, payload: &[u8]) {
        self.send(&encode_masked(fin, op, MASK, payload));
    }

    fn need(&mut self, n: usize) -> bool {
        for _ in 0..100_000 {
            if self.buf.len() >= n {
                return true;
            }
            if self.fill() == 0 {
                return false;
            }
        }
        false
    }

    /// The next frame from the server (never masked), or `None` at the end
    /// of the stream.
    fn read_frame(&mut self) -> Option<(bool, u8, Vec<u8>)> {
        if !self.need(2) {
            assert!(self.buf.is_empty(), "a frame cut short: {:?}", self.buf);
            return None;
        }
        let (b0, b1) = (self.buf[0], self.buf[1]);
        assert_eq!(b1 & 0x80, 0, "a server frame is never masked");
        let (len, at) = match b1 & 0x7f {
            126 => {
                assert!(self.need(4));
                (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
            }
            127 => {
                assert!(self.need(10));
                let mut l = [0u8; 8];
                l.copy_from_slice(&self.buf[2..10]);
                (u64::from_be_bytes(l) as usize, 10)
            }
            n => (n as usize, 2),
        };
        assert!(self.need(at + len), "a frame cut short");
        let payload = self.buf[at..at + len].to_vec();
        self.buf.drain(..at + len);
        Some((b0 & 0x80 != 0, b0 & 0x0f, payload))
    }

    /// Reads to the server's close frame (pongs may come first): its code,
    /// then checks the server closes the connection.
    fn expect_close(&mut self, code: u16) -> String {
        loop {
            let (fin, op, p) = self.read_frame().expect("a close frame before the end");
            assert!(fin);
            match op {
                OP_PONG => continue,
                OP_CLOSE => {
                    assert!(p.len() >= 2, "a close frame with a code: {p:?}");
                    assert_eq!(
                        u16::from_be_bytes([p[0], p[1]]),
                        code,
                        "{:?}",
                        String::from_utf8_lossy(&p[2..])
                    );
                    let reason = String::from_utf8(p[2..].to_vec()).unwrap();
                    self.expect_end();
                    return reason;
                }
                _ => panic!("expected a close frame, got opcode {op}: {p:?}"),
            }
        }
    }

    /// The server closes the TCP connection (first: this client has not).
    fn expect_end(&mut self) {
        let began = Instant::now();
        assert!(self.read_frame().is_none(), "nothing after the close frame");
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "the server closed late"
        );
    }
}

backend_tests! {
    fn text_and_binary_messages_come_back_as_they_were_sent(poll: bool) {
        let (s, _) = serve(adj(poll));
        let mut ws = client(s.addr, "/");
        for t in ["hello", "", "κόσμε", &"x".repeat(125), &"y".repeat(126), &"z".repeat(65536)] {
            ws.send(TMessage::text(t.to_string())).unwrap();
            assert_eq!(text(&mut ws), t);
        }
        for len in [0usize, 1, 125, 126, 65535, 65536, 200_000] {
            let b: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            ws.send(TMessage::binary(b.clone())).unwrap();
            match ws.read().unwrap() {
                TMessage::Binary(got) => assert_eq!(got.as_ref(), &b[..], "binary of {len}"),
                other => panic!("expected binary, got {other:?}"),
            }
        }
        ws.close(None).unwrap();
        // The server answers the close and ends the connection.
        for _ in 0..10 {
            match ws.read() {
                Ok(TMessage::Close(_)) => continue,
                Err(tungstenite::Error::ConnectionClosed) => break,
                other => panic!("after close: {other:?}"),
            }
        }
    }

    fn the_example_serves_its_page_and_a_chat_that_reaches_everyone(poll: bool) {
        let (s, room) = serve(adj(poll));
        let r = request(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 200);
        assert!(r.text().contains("new WebSocket(scheme + location.host + \"/chat\")"));
        let r = request(s.addr, b"GET /chat HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 400);
        let mut members: Vec<Client> = (0..3).map(|_| client(s.addr, "/chat")).collect();
        wait_until(Duration::from_secs(10), || room.len() == 3);
        for (i, m) in members.iter_mut().enumerate() {
            m.send(TMessage::text(format!("hello from {i}"))).unwrap();
        }
        for m in &mut members {
            let mut got: Vec<String> = (0..3).map(|_| text(m)).collect();
            got.sort();
            assert_eq!(got, ["hello from 0", "hello from 1", "hello from 2"]);
        }
        // One leaves: the others go on.
        let mut gone = members.remove(0);
        gone.close(None).unwrap();
        let _ = gone.read();
        wait_until(Duration::from_secs(10), || room.len() == 2);
        members[0].send(TMessage::binary(vec![1, 2, 3])).unwrap();
        for m in &mut members {
            assert_eq!(m.read().unwrap(), TMessage::binary(vec![1, 2, 3]));
        }
    }
}

#[test]
fn a_16_mib_message_comes_back_whole() {
    let (s, _) = serve(adj(false));
    let mut ws = client(s.addr, "/");
    let big = "0123456789abcdef".repeat(1 << 20);
    assert_eq!(big.len(), 16 << 20);
    let began = Instant::now();
    ws.send(TMessage::text(big.clone())).unwrap();
    assert!(text(&mut ws) == big);
    let b = vec![0x5au8; 16 << 20];
    ws.send(TMessage::binary(b.clone())).unwrap();
    assert!(ws.read().unwrap().into_data().as_ref() == &b[..]);
    eprintln!("two 16 MiB messages echoed in {:?}", began.elapsed());
    // One byte more is past the default limit: 1009.
    let mut raw = Raw::connect(s.addr, "/");
    let mut h = encode_masked(true, OP_BINARY, MASK, &[]);
    h[1] = 0x80 | 127;
    h.splice(2..2, ((16u64 << 20) + 1).to_be_bytes());
    raw.send(&h);
    raw.expect_close(1009);
}

#[test]
fn fragments_are_joined_and_pings_between_them_answered() {
    let (s, _) = serve(adj(false));
    let mut raw = Raw::connect(s.addr, "/");
    raw.frame(false, OP_TEXT, "frag".as_bytes());
    raw.frame(true, OP_PING, b"between");
    raw.frame(false, OP_CONTINUATION, "men".as_bytes());
    raw.frame(true, OP_PONG, b"unasked");
    raw.frame(true, OP_CONTINUATION, "ted ✓".as_bytes());
    assert_eq!(raw.read_frame(), Some((true, OP_PONG, b"between".to_vec())));
    assert_eq!(
        raw.read_frame(),
        Some((true, OP_TEXT, "fragmented ✓".as_bytes().to_vec()))
    );
    // A multi-byte character cut between fragments; binary fragments.
    raw.frame(false, OP_TEXT, b"\xce");
    raw.frame(true, OP_CONTINUATION, b"\xba");
    assert_eq!(
        raw.read_frame(),
        Some((true, OP_TEXT, "κ".as_bytes().to_vec()))
    );
    raw.frame(false, OP_BINARY, &[1, 2]);
    raw.frame(true, OP_CONTINUATION, &[3]);
    assert_eq!(raw.read_frame(), Some((true, OP_BINARY, vec![1, 2, 3])));
    // A 64 KiB message in 1-byte-to-4 KiB fragments, written in one go.
    let msg: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let mut all = Vec::new();
    let mut at = 0;
    let mut size = 1;
    while at < msg.len() {
        let end = (at + size).min(msg.len());
        let op = if at == 0 { OP_BINARY } else { OP_CONTINUATION };
        all.extend(encode_masked(end == msg.len(), op, MASK, &msg[at..end]));
        at = end;
        size = (size * 2).min(4096);
    }
    raw.send(&all);
    assert_eq!(raw.read_frame(), Some((true, OP_BINARY, msg)));
    // A close while a message is unfinished is answered.
    raw.frame(false, OP_TEXT, b"never ");
    raw.frame(true, OP_CLOSE, &close_payload(1000, "bye"));
    raw.expect_close(1000);
}

#[test]
fn pings_are_answered_and_the_server_can_ping() {
    let (s, _) = serve(adj(false));
    let mut ws = client(s.addr, "/ping");
    match ws.read().unwrap() {
        TMessage::Ping(p) => assert_eq!(p.as_ref(), b"server ping"),
        other => panic!("expected the server's ping, got {other:?}"),
    }
    ws.send(TMessage::Ping(b"client ping".to_vec().into()))
        .unwrap();
    ws.send(TMessage::text("after")).unwrap();
    match ws.read().unwrap() {
        TMessage::Pong(p) => assert_eq!(p.as_ref(), b"client ping"),
        other => panic!("expected a pong, got {other:?}"),
    }
    assert_eq!(text(&mut ws), "after");
    // Ten pings in a row, then an empty one and one of 125 bytes.
    let mut raw = Raw::connect(s.addr, "/");
    for i in 0..10u8 {
        raw.frame(true, OP_PING, &[i]);
    }
    raw.frame(true, OP_PING, b"");
    raw.frame(true, OP_PING, &[7; 125]);
    for i in 0..10u8 {
        assert_eq!(raw.read_frame(), Some((true, OP_PONG, vec![i])));
    }
    assert_eq!(raw.read_frame(), Some((true, OP_PONG, vec![])));
    assert_eq!(raw.read_frame(), Some((true, OP_PONG, vec![7; 125])));
}

/// Every protocol error a client can make, sent by hand, with the close
/// code the server must fail the connection with.
#[test]
fn each_protocol_error_gets_its_close_code_and_the_connection_ends() {
    let mut a = adj(false);
    a.websocket_max_message_size = 1000;
    let (s, _) = serve(a);
    let m = |fin, op, p: &[u8]| encode_masked(fin, op, MASK, p);
    let with_bits = |bits: u8| {
        let mut f = m(true, OP_TEXT, b"rsv");
        f[0] |= bits;
        f
    };
    let mut unmasked = vec![0x81, 5];
    unmasked.extend_from_slice(b"hello");
    let mut msb = vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0];
    msb.extend_from_slice(&MASK);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("an unmasked frame", unmasked, 1002),
        ("RSV1 (compression not negotiated)", with_bits(0x40), 1002),
        ("RSV2", with_bits(0x20), 1002),
        ("RSV3", with_bits(0x10), 1002),
        ("opcode 3", m(true, 3, b""), 1002),
        ("opcode 7", m(true, 7, b"x"), 1002),
        ("opcode 11", m(true, 11, b""), 1002),
        ("opcode 15", m(true, 15, b"x"), 1002),
        ("a fragmented ping", m(false, OP_PING, b"p"), 1002),
        ("a fragmented close", m(false, OP_CLOSE, &[3, 232]), 1002),
        ("a ping of 126 bytes", m(true, OP_PING, &[0; 126]), 1002),
        (
            "a continuation with no message",
            m(true, OP_CONTINUATION, b"x"),
            1002,
        ),
        (
            "a new message while one is unfinished",
            [m(false, OP_TEXT, b"a"), m(true, OP_TEXT, b"b")].concat(),
            1002,
        ),
        ("a close of one byte", m(true, OP_CLOSE, &[3]), 1002),
        ("a 64-bit length with its top bit set", msb, 1002),
        (
            "text that is not UTF-8",
            m(true, OP_TEXT, b"\xce\xba\xed\xa0\x80"),
            1007,
        ),
        (
            "UTF-8 broken across fragments",
            [
                m(false, OP_TEXT, b"\xe2\x82"),
                m(true, OP_CONTINUATION, b"A"),
            ]
            .concat(),
            1007,
        ),
        (
            "a text message ending mid-character",
            m(true, OP_TEXT, b"ok \xe2\x82"),
            1007,
        ),
        (
            "a close reason that is not UTF-8",
            m(true, OP_CLOSE, b"\x03\xe8\xff"),
            1007,
        ),
        (
            "a message past websocket_max_message_size",
            m(true, OP_BINARY, &[0; 1001]),
            1009,
        ),
        (
            "fragments past websocket_max_message_size",
            [
                m(false, OP_TEXT, &[b'a'; 600]),
                m(true, OP_CONTINUATION, &[b'a'; 401]),
            ]
            .concat(),
            1009,
        ),
    ];
    let bad_codes = [999u16, 1004, 1005, 1006, 1015, 1016, 2999, 5000];
    let cases = cases
        .into_iter()
        .map(|(w, b, c)| (w.to_string(), b, c))
        .chain(bad_codes.map(|c| {
            (
                format!("close code {c}"),
                m(true, OP_CLOSE, &close_payload(c, "")),
                1002,
            )
        }));
    for (what, bytes, code) in cases {
        let mut raw = Raw::connect(s.addr, "/");
        raw.send(&bytes);
        let reason = raw.expect_close(code);
        assert!(!reason.is_empty(), "{what}: the close frame says why");
        eprintln!("{what}: {code} {reason:?}");
    }
    // A message at the limit is fine.
    let mut raw = Raw::connect(s.addr, "/");
    raw.frame(true, OP_BINARY, &[9; 1000]);
    assert_eq!(raw.read_frame(), Some((true, OP_BINARY, vec![9; 1000])));
}

#[test]
fn invalid_utf8_fails_fast_before_the_message_ends() {
    let (s, _) = serve(adj(false));
    let mut raw = Raw::connect(s.addr, "/");
    // The first fragment is valid, the second has the bad byte: the
    // server fails the connection without waiting for a third.
    raw.frame(false, OP_TEXT, "κόσμε".as_bytes());
    raw.frame(false, OP_CONTINUATION, b"\xce\xba\xf4\x90\x80\x80");
    raw.expect_close(1007);
    // Within one frame: the header promises more than has come.
    let mut raw = Raw::connect(s.addr, "/");
    let f = encode_masked(true, OP_TEXT, MASK, b"abc\xff and the rest, not yet sent");
    raw.send(&f[..2 + 4 + 4]);
    raw.expect_close(1007);
}

#[test]
fn the_close_handshake_from_either_side() {
    let (s, _) = serve(adj(false));
    // The client closes: its code comes back, then the server ends TCP.
    for code in [1000u16, 1001, 1003, 1012, 3000, 4999] {
        let mut raw = Raw::connect(s.addr, "/");
        raw.frame(true, OP_CLOSE, &close_payload(code, "client says bye"));
        raw.expect_close(code);
    }
    // A close with no code gets one with none.
    let mut raw = Raw::connect(s.addr, "/");
    raw.frame(true, OP_CLOSE, b"");
    assert_eq!(raw.read_frame(), Some((true, OP_CLOSE, vec![])));
    raw.expect_end();
    // Frames after a close are not answered.
    let mut raw = Raw::connect(s.addr, "/");
    raw.send(
        &[
            encode_masked(true, OP_CLOSE, MASK, &close_payload(1000, "")),
            encode_masked(true, OP_PING, MASK, b"late"),
            encode_masked(true, OP_TEXT, MASK, b"late"),
        ]
        .concat(),
    );
    raw.expect_close(1000);
    // The server closes: the client answers, the server ends TCP.
    let mut raw = Raw::connect(s.addr, "/close");
    raw.frame(true, OP_TEXT, b"go");
    let (fin, op, p) = raw.read_frame().unwrap();
    assert_eq!((fin, op), (true, OP_CLOSE));
    assert_eq!(p, close_payload(4000, "done"));
    raw.frame(true, OP_CLOSE, &close_payload(4000, ""));
    raw.expect_end();
    // The same with tungstenite, which checks the order itself.
    let mut ws = client(s.addr, "/close");
    ws.send(TMessage::text("go")).unwrap();
    match ws.read().unwrap() {
        TMessage::Close(Some(f)) => {
            assert_eq!((u16::from(f.code), f.reason.as_str()), (4000, "done"))
        }
        other => panic!("expected the server's close, got {other:?}"),
    }
    assert!(matches!(
        ws.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
    // A sender on another thread closes and the client never answers: the
    // reader is not left waiting past the close timeout.
    let mut raw = Raw::connect(s.addr, "/close-from-elsewhere");
    let (_, op, p) = raw.read_frame().unwrap();
    assert_eq!((op, p), (OP_CLOSE, close_payload(1001, "going away")));
    raw.expect_end();
}

#[test]
fn senders_on_four_threads_never_interleave_frames() {
    let (s, _) = serve(adj(false));
    let mut ws = client(s.addr, "/flood");
    let mut counts = [0; 4];
    for _ in 0..200 {
        let b = ws.read().unwrap().into_data();
        assert_eq!(b.len(), 20_000);
        assert!(b.iter().all(|&x| x == b[0]), "a frame mixed with another");
        counts[usize::from(b[0])] += 1;
    }
    assert_eq!(counts, [50; 4]);
    ws.send(TMessage::text("still echoing")).unwrap();
    assert_eq!(text(&mut ws), "still echoing");
}

#[test]
fn handshake_refusals_and_subprotocols_over_a_socket() {
    let (s, _) = serve(adj(false));
    let ask = |req: String| request(s.addr, req.as_bytes());
    let r =
        ask(handshake_request("/", "")
            .replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Sec-WebSocket-Key"), "{}", r.text());
    let r = ask(handshake_request("/", "").replace("Version: 13", "Version: 8"));
    assert_eq!(r.status, 426);
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    assert_eq!(r.header("upgrade"), Some("websocket"));
    assert_eq!(r.header("connection"), Some("upgrade"));
    let r = ask(handshake_request("/", "").replace("GET", "POST"));
    assert_eq!(r.status, 400);
    // permessage-deflate is declined: the 101 names no extension.
    let mut raw = Raw {
        s: tcp(s.addr),
        buf: Vec::new(),
    };
    raw.send(
        handshake_request(
            "/",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
        )
        .as_bytes(),
    );
    let head = raw.head();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "{head}"
    );
    // The server's preference among the client's offer.
    let mut req = tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/protocol", s.addr).as_str(),
    )
    .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "chat, v2.chat".parse().unwrap());
    let (mut ws, resp) = tungstenite::client::client(req, tcp(s.addr)).unwrap();
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap()),
        Some("v2.chat")
    );
    assert_eq!(text(&mut ws), "v2.chat");
}

#[test]
fn a_graceful_stop_closes_websockets_with_1001_and_ends_when_clients_answer() {
    // shutdown_timeout is long: the stop must end because the clients
    // answered the close, not because the time ran out.
    let mut a = adj(false);
    a.shutdown_timeout = 60;
    let (s, room) = serve(a);
    let mut clients = Vec::new();
    for path in ["/", "/chat", "/"] {
        let mut ws = client(s.addr, path);
        ws.send(TMessage::text("x")).unwrap();
        assert_eq!(text(&mut ws), "x");
        clients.push(ws);
    }
    // Each client reads until the server's close comes (tungstenite
    // answers it), then to the end of the connection.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            std::thread::spawn(move || {
                let close = loop {
                    match ws.read() {
                        Ok(TMessage::Close(frame)) => break frame,
                        Ok(_) => {}
                        Err(e) => panic!("no close frame: {e}"),
                    }
                };
                // Then the connection ends (the server closes first).
                while ws.read().is_ok() {}
                close.map(|f| (u16::from(f.code), f.reason.as_str().to_string()))
            })
        })
        .collect();
    let began = Instant::now();
    s.stop().unwrap();
    let took = began.elapsed();
    for r in readers {
        assert_eq!(
            r.join().unwrap(),
            Some((1001, "server shutting down".to_string()))
        );
    }
    assert!(
        took < Duration::from_secs(30),
        "the stop waited {took:?}: the close did not end the handlers"
    );
    drop(room);
}

#[test]
fn the_stop_s_close_races_a_sender_writing_all_the_time() {
    // The stop's close is written by the stop's thread or, when a sender
    // holds the lock, by that sender: either way whole, after whole
    // messages, exactly once, and nothing after it.
    for round in 0..5 {
        let mut a = adj(false);
        a.shutdown_timeout = 60;
        let (s, _) = serve(a);
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let mut ws = client(s.addr, "/chatter");
                std::thread::spawn(move || {
                    let mut next = 0u64;
                    loop {
                        match ws.read() {
                            Ok(TMessage::Text(t)) => {
                                let n: u64 = t.split(' ').next().unwrap().parse().unwrap();
                                assert_eq!(n, next, "a message lost or out of order");
                                next += 1;
                            }
                            Ok(TMessage::Close(frame)) => {
                                let f = frame.expect("a close code");
                                assert_eq!(u16::from(f.code), 1001);
                                break;
                            }
                            Ok(other) => panic!("unexpected {other:?}"),
                            Err(e) => panic!("the connection failed after {next} messages: {e}"),
                        }
                    }
                    while ws.read().is_ok() {}
                    next
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50 + 20 * round));
        let began = Instant::now();
        s.stop().unwrap();
        let took = began.elapsed();
        for c in clients {
            assert!(c.join().unwrap() > 0);
        }
        assert!(
            took < Duration::from_secs(30),
            "round {round}: the stop took {took:?}"
        );
    }
}

#[test]
fn a_graceful_stop_shuts_down_a_websocket_whose_client_does_not_answer() {
    let mut a = adj(false);
    a.shutdown_timeout = 1;
    let (s, _) = serve(a);
    let mut raw = Raw::connect(s.addr, "/");
    let began = Instant::now();
    s.stop().unwrap();
    assert!(began.elapsed() < Duration::from_secs(8));
    // The close frame came (unmasked, 1001 and the reason), then the end.
    let mut expected = vec![0x88, 22];
    expected.extend_from_slice(&close_payload(1001, "server shutting down"));
    assert!(raw.need(expected.len()), "no close frame");
    assert_eq!(raw.buf[..expected.len()], expected[..]);
    raw.buf.drain(..expected.len());
    while raw.fill() > 0 {}
    assert!(raw.buf.is_empty(), "nothing after the close: {:?}", raw.buf);
}

/// 1,000 WebSocket connections open at once, each echoing a message, while
/// two threads make plain HTTP requests: every one is answered.
#[test]
fn a_thousand_concurrent_echo_connections_while_http_is_served() {
    let mut a = adj(false);
    a.upgraded_connection_limit = 1000;
    let (s, _) = serve(a);
    let addr = s.addr;
    let began = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let http: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut c = common::Client::connect(addr);
                    let mut n = 0;
                    while !done.load(std::sync::atomic::Ordering::Relaxed) && n < 100_000 {
                        let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
                        assert_eq!(r.status, 200);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut conns: Vec<Client> = (0..1000).map(|_| client(addr, "/")).collect();
        let opened = began.elapsed();
        for (i, c) in conns.iter_mut().enumerate() {
            c.send(TMessage::text(format!("message {i}"))).unwrap();
        }
        for (i, c) in conns.iter_mut().enumerate() {
            assert_eq!(text(c), format!("message {i}"));
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let served: usize = http.into_iter().map(|t| t.join().unwrap()).sum();
        eprintln!(
            "1000 WebSocket connections opened in {opened:?}, all echoed in {:?}; {served} plain requests served meanwhile",
            began.elapsed()
        );
        assert!(served > 0);
        assert_eq!(s.handle.stats().upgraded_open, 1000);
    });
}
