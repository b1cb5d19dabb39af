//! The connection-level fuzz harness: one connection driven without a
//! socket, through the same connection core the I/O thread drives
//! ([`Conn`]). Bytes are fed split wherever the caller says; the requests
//! the core dispatches are answered through the real response writer into
//! memory, either at once (a worker that takes no time) or lazily (all the
//! requests dispatched while a piece was fed are answered when the piece
//! ends, as by a busy worker, so that pipelined requests queue, a
//! `100 Continue` is deferred and a parse error waits behind them); the
//! server's own answers go through the one answering function. What comes
//! out is checked to be a well-formed sequence of HTTP/1.x responses, one
//! per answered request, in order, with nothing after a response that
//! closes the connection or switches protocols.
//!
//! What it leaves out, being without a socket and threads: the output
//! buffers and back-pressure, and the hand-off word; `tests/` race those
//! over real sockets.
//!
//! Compiled only with `--cfg fuzzing` (cargo-fuzz sets it) and in the
//! crate's unit tests.
//!
//! Thread: the caller's (a fuzz target, or the unit tests).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Instant;

use crate::answer::{answer, About, Answering, Why};
use crate::buffers::FileBuffer;
use crate::conn::{Action, AnswerKind, Conn, Now, Received, Released};
use crate::error::HttpError;
use crate::parser::ParserConfig;
use crate::response::{Body, Response};
use crate::stats::Counters;
use crate::upgrade::Handler;
use crate::writer::{ClientDisconnected, Failure, Output, ResponseWriter};

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What one connection did.
#[derive(Debug, Default)]
pub struct Transcript {
    /// Every byte the server wrote, in order.
    pub output: Vec<u8>,
    /// For each request answered, in order: whether it was a `HEAD` (its
    /// response has a length but no body).
    pub answered_head: Vec<bool>,
    /// The server decided to close the connection (after its last
    /// response).
    pub closed: bool,
    /// The last response switched protocols (`101`).
    pub switched: bool,
}

#[derive(Default)]
struct Memory {
    bytes: RefCell<Vec<u8>>,
}

impl Output for Memory {
    fn write_soon(&self, parts: &[&[u8]]) -> Result<(), ClientDisconnected> {
        let mut b = self.bytes.borrow_mut();
        for p in parts {
            b.extend_from_slice(p);
        }
        Ok(())
    }

    fn write_file(&self, _file: FileBuffer) -> Result<(), ClientDisconnected> {
        // The harness's application never answers with a file.
        Err(ClientDisconnected)
    }

    fn is_draining(&self) -> bool {
        false
    }

    fn switch(&self, handler: Handler) -> Result<(), HttpError> {
        // No new protocol runs here: the switch itself is what is checked.
        drop(handler);
        Ok(())
    }
}

/// The harness's application: the path picks the kind of response, so the
/// fuzzer reaches every framing.
fn respond(path: &[u8], body_len: u64) -> Response {
    let echo = format!("{body_len}\n");
    match path.get(1) {
        Some(b'c') => Response::new(200).with_body(Body::from_chunks(vec!["ab", "", "cde"])),
        Some(b'e') => Response::new(204),
        Some(b'n') => Response::new(304).with_header("Content-Length", "10"),
        Some(b'r') => Response::new(200).with_body(Body::from_reader(
            std::io::Cursor::new(echo.into_bytes()),
            None,
        )),
        Some(b's') => Response::new(200)
            .with_header("Content-Length", "100")
            .with_body(echo),
        // A switch: to a request that did not propose it, a 500.
        Some(b'u') => Response::upgrade("websocket", |_| {}),
        Some(b'x') => Response::new(200).with_header("Connection", "close"),
        _ => Response::text(echo),
    }
}

/// The harness's worker: answers one request, as `task.rs` does (a 500
/// when the application's response cannot be sent and nothing was).
fn answer_request(
    out: &Memory,
    server: Answering<'_>,
    req: Received,
    t: &mut Transcript,
) -> Released {
    let head = req.head;
    let is_head = head.method() == "HEAD";
    let mut w = ResponseWriter::new(out, Some("maitred"), &head);
    let resp = respond(head.path(), req.body.len());
    let sent = w.send(resp);
    t.answered_head.push(is_head);
    if let Err(failure) = &sent {
        if !w.head_sent() {
            let error = match failure {
                Failure::Refused(e) => e.clone(),
                _ => HttpError::internal_server_error("the application failed"),
            };
            answer(
                out,
                server,
                Why::AppFailed,
                &error,
                head.version(),
                is_head,
                About::Peer("fuzz"),
                req.at,
            );
        }
    }
    Released {
        close: sent.is_err() || w.close_on_finish(),
        switch: sent.is_ok() && w.switched(),
        push: false,
    }
}

/// Feeds `input` to one connection, cut at `cuts` (sorted offsets). With
/// `lazy`, the requests dispatched while a piece is fed are answered when
/// it ends; otherwise each is answered as it is dispatched.
pub fn drive_connection(
    config: ParserConfig,
    input: &[u8],
    cuts: &[usize],
    lazy: bool,
) -> Transcript {
    let out = Memory::default();
    let counters = Counters::new();
    let server = Answering {
        counters: &counters,
        access_log: None,
        ident: Some("maitred"),
    };
    let mut conn = Conn::new(config);
    let mut t = Transcript::default();
    let now = Now {
        at: Instant::now(),
        ms: 0,
    };
    let mut owed: VecDeque<Received> = VecDeque::new();
    let mut start = 0;
    let ends = cuts.iter().copied().chain(std::iter::once(input.len()));
    for end in ends {
        let end = end.clamp(start, input.len());
        let mut piece = &input[start..end];
        start = end;
        // Feed the piece, then (lazily) answer what it dispatched, until
        // the core has nothing more to say.
        loop {
            while let Some(action) = conn.next(&mut piece, now) {
                match action {
                    Action::Dispatch(req) if lazy => owed.push_back(req),
                    Action::Dispatch(req) => {
                        let how = answer_request(&out, server, req, &mut t);
                        conn.released(how);
                    }
                    Action::Continue => {
                        let _ = out.write_soon(&[CONTINUE]);
                    }
                    Action::Answer(a) => {
                        let why = match a.kind {
                            AnswerKind::ParseError => Why::ParseError,
                            AnswerKind::TimedOut => Why::TimedOut,
                            AnswerKind::Shed => Why::Shed,
                        };
                        answer(
                            &out,
                            server,
                            why,
                            &a.error,
                            a.version,
                            a.head_only,
                            About::Peer("fuzz"),
                            a.at,
                        );
                        t.answered_head.push(a.head_only);
                    }
                    Action::Close | Action::BadProxyHeader(_) => t.closed = true,
                    Action::Proxied(_) => {}
                }
            }
            if owed.is_empty() {
                break;
            }
            // The busy worker answers in order; a response that ends the
            // connection drops what was queued behind it (as the worker
            // empties the pipeline).
            let mut how = Released::default();
            while let Some(req) = owed.pop_front() {
                how = answer_request(&out, server, req, &mut t);
                if how.close || how.switch {
                    owed.clear();
                }
            }
            conn.released(how);
        }
    }
    t.closed |= conn.closing() || conn.lingering();
    t.switched = conn.switching();
    t.output = out.bytes.into_inner();
    t
}

/// Checks that `t.output` is a well-formed sequence of HTTP/1.x responses:
/// optional `100 Continue`s, then one final response per answered request,
/// each framed by `Content-Length`, chunked coding, or (last) the close;
/// nothing after a response that says `Connection: close` or switches
/// protocols (a `101` with `Upgrade` and `Connection: upgrade`); no bare
/// CR or LF, no field that is not `token: value`.
pub fn check_transcript(t: &Transcript) -> Result<(), String> {
    let out = &t.output[..];
    let mut at = 0;
    let mut finals = 0;
    while at < out.len() {
        let (status, version, headers, body_at) = head(out, at)?;
        at = body_at;
        if status == 100 {
            if !headers.is_empty() {
                return Err("a 100 Continue with fields".into());
            }
            continue;
        }
        let Some(&is_head) = t.answered_head.get(finals) else {
            return Err(format!("response {} answers no request", finals + 1));
        };
        finals += 1;
        let field = |name: &str| {
            headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        if status == 101 {
            if field("upgrade").is_empty() || field("connection") != ["upgrade"] {
                return Err("a 101 without Upgrade and Connection: upgrade".into());
            }
            if at != out.len() {
                return Err("bytes after a 101".into());
            }
            if !t.switched {
                return Err("a 101, and the connection did not switch".into());
            }
            continue;
        }
        let close = field("connection")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("close"))
            || (version == "HTTP/1.0"
                && !field("connection")
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case("keep-alive")));
        let lengths = field("content-length");
        let chunked = field("transfer-encoding") == ["chunked"];
        if chunked && !lengths.is_empty() {
            return Err("both Content-Length and chunked".into());
        }
        if lengths.windows(2).any(|w| w[0] != w[1]) {
            return Err(format!("conflicting Content-Length {lengths:?}"));
        }
        let status_without_body = (100..200).contains(&status) || status == 204 || status == 304;
        if status_without_body && (!lengths.is_empty() || chunked) {
            return Err(format!("a {status} with framing fields"));
        }
        let no_body = is_head || status_without_body;
        if !no_body {
            if chunked {
                at = chunks(out, at)?;
            } else if let Some(len) = lengths.first() {
                let n: usize = len.parse().map_err(|_| format!("Content-Length {len:?}"))?;
                if out.len() - at < n {
                    // An application that gave fewer bytes than it declared:
                    // the connection closes after what there was, and the
                    // client sees an incomplete message (RFC 9112 §8).
                    if !t.closed {
                        return Err(format!("body shorter than Content-Length {n}"));
                    }
                    at = out.len();
                } else {
                    at += n;
                }
            } else if close {
                at = out.len();
            } else {
                return Err("a body with no framing on a kept connection".into());
            }
        }
        if close && at != out.len() {
            return Err("bytes after a response that closes the connection".into());
        }
        if close && !t.closed {
            return Err("the response says close, the connection stays".into());
        }
    }
    if finals != t.answered_head.len() {
        return Err(format!(
            "{finals} responses for {} answered requests",
            t.answered_head.len()
        ));
    }
    if t.switched && !out.windows(13).any(|w| w == b"HTTP/1.1 101 ") {
        return Err("switched without a 101".into());
    }
    Ok(())
}

type Head = (u16, String, Vec<(String, String)>, usize);

/// One response head at `at`: status, version, fields, where the body
/// starts.
fn head(out: &[u8], mut at: usize) -> Result<Head, String> {
    let mut lines = Vec::new();
    loop {
        let rest = &out[at..];
        let Some(i) = rest.iter().position(|&b| b == b'\n') else {
            return Err("a head without its end".into());
        };
        if i == 0 || rest[i - 1] != b'\r' {
            return Err("a bare LF".into());
        }
        let line = &rest[..i - 1];
        if line.contains(&b'\r') {
            return Err("a bare CR".into());
        }
        at += i + 1;
        if line.is_empty() {
            break;
        }
        lines.push(String::from_utf8_lossy(line).into_owned());
    }
    let status_line = lines.first().ok_or("an empty head")?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_string();
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(format!("status line {status_line:?}"));
    }
    let code = parts.next().unwrap_or_default();
    let status: u16 = match code.parse() {
        Ok(s) if code.len() == 3 && (100..=999).contains(&s) => s,
        _ => return Err(format!("status line {status_line:?}")),
    };
    let mut headers = Vec::new();
    for l in &lines[1..] {
        let (n, v) = l.split_once(": ").ok_or_else(|| format!("field {l:?}"))?;
        if !crate::grammar::is_token(n.as_bytes()) {
            return Err(format!("field name {n:?}"));
        }
        headers.push((n.to_string(), v.to_string()));
    }
    Ok((status, version, headers, at))
}

/// A chunked body at `at`; returns where it ends.
fn chunks(out: &[u8], mut at: usize) -> Result<usize, String> {
    loop {
        let rest = &out[at..];
        let i = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size without its end")?;
        let size = std::str::from_utf8(&rest[..i])
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or_else(|| format!("chunk size {:?}", String::from_utf8_lossy(&rest[..i])))?;
        at += i + 2;
        if size == 0 {
            if out.get(at..at + 2) != Some(b"\r\n") {
                return Err("no CRLF after the last chunk".into());
            }
            return Ok(at + 2);
        }
        if out.len() < at + size + 2 || &out[at + size..at + size + 2] != b"\r\n" {
            return Err("a chunk without its data or CRLF".into());
        }
        at += size + 2;
    }
}

/// The output without its `100 Continue`s (which a busy worker defers, and
/// drops once the request is complete) and with every `Date:` value
/// blanked: what must not depend on how the input was split or when the
/// worker answered. (No body the harness sends, and no error detail, can
/// hold a CRLF, so every `100 Continue` found is one.)
pub fn comparable(out: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(out.len());
    let mut rest = out;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix(CONTINUE) {
            rest = r;
        } else if let Some(r) = rest.strip_prefix(b"\r\nDate: ") {
            v.extend_from_slice(b"\r\nDate: ");
            let end = r.windows(2).position(|w| w == b"\r\n").unwrap_or(r.len());
            rest = &r[end..];
        } else {
            v.push(rest[0]);
            rest = &rest[1..];
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> Transcript {
        let config = ParserConfig::default();
        let whole = drive_connection(config, input, &[], false);
        check_transcript(&whole).unwrap_or_else(|e| panic!("{e}: {whole:?}"));
        // Byte by byte: the same bytes out.
        let cuts: Vec<usize> = (1..input.len()).collect();
        let split = drive_connection(config, input, &cuts, false);
        assert_eq!(whole.output, split.output);
        // A busy worker: the same responses, 100s aside.
        for cuts in [vec![], cuts] {
            let lazy = drive_connection(config, input, &cuts, true);
            check_transcript(&lazy).unwrap_or_else(|e| panic!("{e}: {lazy:?}"));
            assert_eq!(comparable(&whole.output), comparable(&lazy.output));
            assert_eq!(whole.answered_head, lazy.answered_head);
        }
        whole
    }

    #[test]
    fn pipelined_requests_get_their_responses_in_order() {
        let t = run(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\nHEAD /s HTTP/1.1\r\nHost: x\r\n\r\nGET /e HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(t.answered_head, [false, false, true, false]);
        assert!(!t.closed);
    }

    #[test]
    fn nothing_is_answered_after_an_error() {
        let t = run(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\nBad\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(t.answered_head.len(), 2);
        assert!(t.closed);
        assert!(String::from_utf8_lossy(&t.output).contains("400 Bad Request"));
    }

    #[test]
    fn continue_comes_before_its_response_and_close_ends_it() {
        let t = run(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabcGET /x HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let text = String::from_utf8_lossy(&t.output);
        assert!(
            text.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"),
            "{text}"
        );
        assert_eq!(t.answered_head.len(), 2);
        assert!(t.closed);
    }

    #[test]
    fn a_switch_ends_http_and_an_unasked_one_is_a_500() {
        let t = run(b"GET /u HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(t.switched);
        assert_eq!(t.answered_head, [false]);
        let text = String::from_utf8_lossy(&t.output);
        assert!(
            text.starts_with(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
            ),
            "{text}"
        );
        let t = run(b"GET /u HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(!t.switched && t.closed);
        assert!(String::from_utf8_lossy(&t.output).starts_with("HTTP/1.1 500 "));
        // Proposed, and answered as HTTP: what follows is parsed as HTTP.
        let t = run(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(!t.switched && !t.closed);
        assert_eq!(t.answered_head, [false, false]);
    }

    #[test]
    fn the_checker_refuses_what_is_wrong() {
        let bad: [&[u8]; 6] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
            b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nbody",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
        ];
        for b in bad {
            let t = Transcript {
                output: b.to_vec(),
                answered_head: vec![false, false],
                closed: true,
                switched: true,
            };
            assert!(
                check_transcript(&t).is_err(),
                "{}",
                String::from_utf8_lossy(b)
            );
        }
    }
}
