//! The connection-level fuzz harness: one connection driven without a
//! socket. Bytes go through the channel's own request stream
//! ([`RequestStream`]) split wherever the caller says; every request is
//! answered at once (as by a worker that takes no time) through the real
//! response writer into memory; what comes out is checked to be a
//! well-formed sequence of HTTP/1.x responses, one per answered request, in
//! order, with nothing after a response that closes the connection.
//!
//! What it leaves out, being without a socket and threads: the output
//! buffers and back-pressure, and the interleavings of a slow worker (a
//! `100 Continue` deferred behind pending responses); `tests/` cover those
//! over real sockets.
//!
//! Thread: the caller's (a fuzz target, or the unit tests).

use std::cell::{Cell, RefCell};

use crate::buffers::FileBuffer;
use crate::channel::stream::{Fed, RequestStream, StreamEvent};
use crate::channel::ClientDisconnected;
use crate::error::HttpError;
use crate::parser::{Parsed, ParserConfig};
use crate::response::{Body, Response};
use crate::writer::{write_error, Output, ResponseWriter};

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
}

#[derive(Default)]
struct Memory {
    bytes: RefCell<Vec<u8>>,
    draining: Cell<bool>,
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
        self.draining.get()
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
        Some(b'x') => Response::new(200).with_header("Connection", "close"),
        _ => Response::text(echo),
    }
}

/// Feeds `input` to one connection, cut at `cuts` (sorted offsets), and
/// answers every request as it completes.
pub fn drive_connection(config: ParserConfig, input: &[u8], cuts: &[usize]) -> Transcript {
    let out = Memory::default();
    let mut stream = RequestStream::new(config);
    let mut t = Transcript::default();
    let mut continue_sent = false;
    let mut start = 0;
    let ends = cuts.iter().copied().chain(std::iter::once(input.len()));
    for end in ends {
        let end = end.clamp(start, input.len());
        let piece = &input[start..end];
        start = end;
        if t.closed || piece.is_empty() {
            continue;
        }
        let fed = stream.feed(piece, |event| {
            if t.closed {
                // Decided to close: what follows is never answered
                // (CVE-2024-49768); the channel clears its queue.
                return;
            }
            match event {
                StreamEvent::ExpectsContinue => {
                    if !continue_sent {
                        continue_sent = true;
                        let _ = out.write_soon(&[CONTINUE]);
                    }
                }
                StreamEvent::Request(Parsed::Error(err, version)) => {
                    continue_sent = false;
                    write_error(&out, Some("maitred"), &err, version, false);
                    t.answered_head.push(false);
                    t.closed = true;
                }
                StreamEvent::Request(Parsed::Request(head, body)) => {
                    continue_sent = false;
                    let mut w = ResponseWriter::new(&out, Some("maitred"), &head);
                    let resp = respond(head.path(), body.len());
                    let sent = w.send(resp);
                    t.answered_head.push(head.method() == "HEAD");
                    if sent.is_err() && !w.head_sent() {
                        // As the task does: a 500 while nothing was sent.
                        let err = HttpError::internal_server_error("the application failed");
                        let is_head = head.method() == "HEAD";
                        write_error(&out, Some("maitred"), &err, head.version(), is_head);
                    }
                    if sent.is_err() || w.close_on_finish() {
                        t.closed = true;
                    }
                }
            }
        });
        if fed != Fed::More {
            t.closed = true;
        }
    }
    t.output = out.bytes.into_inner();
    t
}

/// Checks that `t.output` is a well-formed sequence of HTTP/1.x responses:
/// optional `100 Continue`s, then one final response per answered request,
/// each framed by `Content-Length`, chunked coding, or (last) the close;
/// nothing after a response that says `Connection: close`; no bare CR or
/// LF, no field that is not `token: value`.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> Transcript {
        let config = ParserConfig::default();
        let whole = drive_connection(config, input, &[]);
        check_transcript(&whole).unwrap_or_else(|e| panic!("{e}: {whole:?}"));
        // Byte by byte: the same bytes out.
        let cuts: Vec<usize> = (1..input.len()).collect();
        let split = drive_connection(config, input, &cuts);
        assert_eq!(whole.output, split.output);
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
    fn the_checker_refuses_what_is_wrong() {
        let bad: [&[u8]; 5] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
            b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nbody",
        ];
        for b in bad {
            let t = Transcript {
                output: b.to_vec(),
                answered_head: vec![false, false],
                closed: true,
            };
            assert!(
                check_transcript(&t).is_err(),
                "{}",
                String::from_utf8_lossy(b)
            );
        }
    }
}
