//! The writer's rules as a table, without sockets: each case is a
//! request (version, method, `Connection`), a response (status,
//! headers, body) and what must be written, byte for byte (less the
//! `Date` value), and whether the connection closes after it.

use super::*;
use crate::parser::{Parsed, ParserConfig, RequestParser};
use std::cell::{Cell, RefCell};

/// Records what the writer sends; refuses after `gone_after` writes.
#[derive(Default)]
struct Recorder {
    bytes: RefCell<Vec<u8>>,
    writes: Cell<usize>,
    gone_after: Option<usize>,
    draining: bool,
}

impl Output for Recorder {
    fn write_soon(&self, parts: &[&[u8]]) -> Result<(), ClientDisconnected> {
        if self.gone_after.is_some_and(|n| self.writes.get() >= n) {
            return Err(ClientDisconnected);
        }
        self.writes.set(self.writes.get() + 1);
        for p in parts {
            self.bytes.borrow_mut().extend_from_slice(p);
        }
        Ok(())
    }

    fn write_file(&self, _file: FileBuffer) -> Result<(), ClientDisconnected> {
        unreachable!("no case sends a file")
    }

    fn is_draining(&self) -> bool {
        self.draining
    }
}

#[derive(Clone, Copy)]
enum B {
    Empty,
    Bytes(&'static str),
    Chunks(&'static [&'static str]),
    /// A reader over the text, with the length it announces.
    Reader(&'static str, Option<u64>),
    /// A writer callback that writes each part.
    Writer(&'static [&'static str]),
    /// An iterator that yields the parts, then fails.
    FailingChunks(&'static [&'static str]),
}

/// What must happen.
enum Want {
    /// These head lines (status line first, `Date` left out: it is
    /// checked to be there unless the application set one), then this
    /// body, then keep the connection open (`false`) or close it.
    Sent(&'static [&'static str], &'static str, bool),
    /// The application's failure, with this in its text; nothing sent.
    Refused(&'static str),
    /// The application's failure after the head went out.
    FailedAfterHead(&'static str),
    /// The client went away.
    Disconnected,
}

struct Case {
    name: &'static str,
    /// `"1.0"` or `"1.1"`.
    version: &'static str,
    method: &'static str,
    connection: Option<&'static str>,
    status: u16,
    reason: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    body: B,
    draining: bool,
    force_close: bool,
    gone_after: Option<usize>,
    want: Want,
}

const fn case(name: &'static str, body: B, want: Want) -> Case {
    Case {
        name,
        version: "1.1",
        method: "GET",
        connection: None,
        status: 200,
        reason: None,
        headers: &[],
        body,
        draining: false,
        force_close: false,
        gone_after: None,
        want,
    }
}

impl Case {
    const fn v10(mut self) -> Case {
        self.version = "1.0";
        self
    }
    const fn head(mut self) -> Case {
        self.method = "HEAD";
        self
    }
    const fn conn(mut self, c: &'static str) -> Case {
        self.connection = Some(c);
        self
    }
    const fn status(mut self, s: u16) -> Case {
        self.status = s;
        self
    }
    const fn reason(mut self, r: &'static str) -> Case {
        self.reason = Some(r);
        self
    }
    const fn headers(mut self, h: &'static [(&'static str, &'static str)]) -> Case {
        self.headers = h;
        self
    }
    const fn draining(mut self) -> Case {
        self.draining = true;
        self
    }
    const fn force_close(mut self) -> Case {
        self.force_close = true;
        self
    }
    const fn gone_after(mut self, n: usize) -> Case {
        self.gone_after = Some(n);
        self
    }
}

use Want::*;
use B::*;

const HELLO_CL: &[&str] = &["HTTP/1.1 200 OK", "Content-Length: 5", "Server: ident"];
const CHUNKED: &[&str] = &[
    "HTTP/1.1 200 OK",
    "Transfer-Encoding: chunked",
    "Server: ident",
];
const AB_CDE: &[&str] = &["ab", "cde"];

fn cases() -> Vec<Case> {
    vec![
        // Length known: Content-Length; HTTP/1.1 keeps the connection.
        case("1.1 bytes", Bytes("hello"), Sent(HELLO_CL, "hello", false)),
        case(
            "1.1 keep-alive asked",
            Bytes("hello"),
            Sent(HELLO_CL, "hello", false),
        )
        .conn("keep-alive"),
        case(
            "1.1 close asked",
            Bytes("hello"),
            Sent(
                &[
                    "HTTP/1.1 200 OK",
                    "Content-Length: 5",
                    "Connection: close",
                    "Server: ident",
                ],
                "hello",
                true,
            ),
        )
        .conn("close"),
        case(
            "1.1 close asked, any case, in a list",
            Bytes("hello"),
            Sent(
                &[
                    "HTTP/1.1 200 OK",
                    "Content-Length: 5",
                    "Connection: close",
                    "Server: ident",
                ],
                "hello",
                true,
            ),
        )
        .conn("foo, CLOSE"),
        case(
            "1.0 bytes close by default",
            Bytes("hello"),
            Sent(
                &[
                    "HTTP/1.0 200 OK",
                    "Content-Length: 5",
                    "Connection: close",
                    "Server: ident",
                ],
                "hello",
                true,
            ),
        )
        .v10(),
        case(
            "1.0 keep-alive asked, length known",
            Bytes("hello"),
            Sent(
                &[
                    "HTTP/1.0 200 OK",
                    "Content-Length: 5",
                    "Connection: Keep-Alive",
                    "Server: ident",
                ],
                "hello",
                false,
            ),
        )
        .v10()
        .conn("Keep-Alive"),
        case(
            "1.0 keep-alive and close asked",
            Bytes("hello"),
            Sent(
                &[
                    "HTTP/1.0 200 OK",
                    "Content-Length: 5",
                    "Connection: close",
                    "Server: ident",
                ],
                "hello",
                true,
            ),
        )
        .v10()
        .conn("keep-alive, close"),
        case(
            "1.1 empty body",
            Empty,
            Sent(
                &["HTTP/1.1 200 OK", "Content-Length: 0", "Server: ident"],
                "",
                false,
            ),
        ),
        case(
            "1.0 empty body",
            Empty,
            Sent(
                &[
                    "HTTP/1.0 200 OK",
                    "Content-Length: 0",
                    "Connection: close",
                    "Server: ident",
                ],
                "",
                true,
            ),
        )
        .v10(),
        // Length unknown: chunked on 1.1, close-delimited on 1.0.
        case(
            "1.1 chunks",
            Chunks(AB_CDE),
            Sent(CHUNKED, "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n", false),
        ),
        case(
            "1.1 empty chunks are skipped",
            Chunks(&["", "ab", ""]),
            Sent(CHUNKED, "2\r\nab\r\n0\r\n\r\n", false),
        ),
        case(
            "1.1 no chunks at all",
            Chunks(&[]),
            Sent(CHUNKED, "0\r\n\r\n", false),
        ),
        case(
            "1.0 chunks close-delimited",
            Chunks(AB_CDE),
            Sent(
                &["HTTP/1.0 200 OK", "Connection: close", "Server: ident"],
                "abcde",
                true,
            ),
        )
        .v10(),
        case(
            "1.0 keep-alive asked, length unknown",
            Chunks(AB_CDE),
            Sent(
                &["HTTP/1.0 200 OK", "Connection: close", "Server: ident"],
                "abcde",
                true,
            ),
        )
        .v10()
        .conn("keep-alive"),
        case(
            "1.1 chunks, close asked",
            Chunks(AB_CDE),
            Sent(
                &[
                    "HTTP/1.1 200 OK",
                    "Transfer-Encoding: chunked",
                    "Connection: close",
                    "Server: ident",
                ],
                "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n",
                true,
            ),
        )
        .conn("close"),
        case(
            "1.1 reader, length known",
            Reader("hello", Some(5)),
            Sent(HELLO_CL, "hello", false),
        ),
        case(
            "1.1 reader, length unknown",
            Reader("hello", None),
            Sent(CHUNKED, "5\r\nhello\r\n0\r\n\r\n", false),
        ),
        case(
            "1.1 reader longer than it announces is cut",
            Reader("hello", Some(3)),
            Sent(
                &["HTTP/1.1 200 OK", "Content-Length: 3", "Server: ident"],
                "hel",
                false,
            ),
        ),
        case(
            "1.1 writer",
            Writer(&["ab", "cd"]),
            Sent(CHUNKED, "2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n", false),
        ),
        // The application's Content-Length.
        case(
            "declared length for chunks",
            Chunks(AB_CDE),
            Sent(
                &["HTTP/1.1 200 OK", "Content-Length: 5", "Server: ident"],
                "abcde",
                false,
            ),
        )
        .headers(&[("Content-Length", "5")]),
        case(
            "chunks longer than declared are cut",
            Chunks(AB_CDE),
            Sent(
                &["HTTP/1.1 200 OK", "Content-Length: 3", "Server: ident"],
                "abc",
                false,
            ),
        )
        .headers(&[("Content-Length", "3")]),
        case(
            "chunks shorter than declared close",
            Chunks(&["ab"]),
            Sent(
                &["HTTP/1.1 200 OK", "Content-Length: 10", "Server: ident"],
                "ab",
                true,
            ),
        )
        .headers(&[("Content-Length", "10")]),
        case(
            "bytes longer than declared are cut",
            Bytes("hello"),
            Sent(
                &["HTTP/1.1 200 OK", "content-length: 3", "Server: ident"],
                "hel",
                false,
            ),
        )
        .headers(&[("content-length", "3")]),
        case(
            "bytes shorter than declared close",
            Bytes("hi"),
            Sent(
                &["HTTP/1.1 200 OK", "Content-Length: 5", "Server: ident"],
                "hi",
                true,
            ),
        )
        .headers(&[("Content-Length", "5")]),
        case(
            "declared length with spaces around it",
            Bytes("hello"),
            Sent(
                &["HTTP/1.1 200 OK", "Content-Length:  5 ", "Server: ident"],
                "hello",
                false,
            ),
        )
        .headers(&[("Content-Length", " 5 ")]),
        case(
            "the same length declared twice",
            Bytes("hello"),
            Sent(
                &[
                    "HTTP/1.1 200 OK",
                    "Content-Length: 5",
                    "Content-Length: 5",
                    "Server: ident",
                ],
                "hello",
                false,
            ),
        )
        .headers(&[("Content-Length", "5"), ("Content-Length", "5")]),
        case(
            "two different lengths",
            Bytes("hello"),
            Refused("conflicting Content-Length"),
        )
        .headers(&[("Content-Length", "5"), ("Content-Length", "6")]),
        case(
            "a length that is not a number",
            Bytes("hello"),
            Refused("is not a number"),
        )
        .headers(&[("Content-Length", "5a")]),
        case(
            "a negative length",
            Bytes("hello"),
            Refused("is not a number"),
        )
        .headers(&[("Content-Length", "-5")]),
        // HEAD: the head as for GET, never a body.
        case("HEAD bytes", Bytes("hello"), Sent(HELLO_CL, "", false)).head(),
        case(
            "HEAD chunks: no last chunk either",
            Chunks(AB_CDE),
            Sent(CHUNKED, "", false),
        )
        .head(),
        case("HEAD writer", Writer(&["ab"]), Sent(CHUNKED, "", false)).head(),
        case(
            "HEAD on 1.0, keep-alive asked, length unknown",
            Chunks(AB_CDE),
            Sent(
                &["HTTP/1.0 200 OK", "Connection: close", "Server: ident"],
                "",
                true,
            ),
        )
        .v10()
        .head()
        .conn("keep-alive"),
        case(
            "HEAD with a declared length longer than the body",
            Bytes("hi"),
            Sent(
                &["HTTP/1.1 200 OK", "Content-Length: 5", "Server: ident"],
                "",
                false,
            ),
        )
        .head()
        .headers(&[("Content-Length", "5")]),
        // Statuses without a body.
        case(
            "204 drops the body and the length",
            Bytes("x"),
            Sent(&["HTTP/1.1 204 No Content", "Server: ident"], "", false),
        )
        .status(204),
        case(
            "304 drops the application's Content-Length",
            Empty,
            Sent(&["HTTP/1.1 304 Not Modified", "Server: ident"], "", false),
        )
        .status(304)
        .headers(&[("Content-Length", "100")]),
        case(
            "304 with chunks is not chunked",
            Chunks(AB_CDE),
            Sent(&["HTTP/1.1 304 Not Modified", "Server: ident"], "", false),
        )
        .status(304),
        case(
            "204 on 1.0 keeps the connection when asked",
            Empty,
            Sent(
                &[
                    "HTTP/1.0 204 No Content",
                    "Connection: Keep-Alive",
                    "Server: ident",
                ],
                "",
                false,
            ),
        )
        .v10()
        .conn("keep-alive")
        .status(204),
        case(
            "a final 1xx closes",
            Empty,
            Sent(
                &[
                    "HTTP/1.1 103 Early Hints",
                    "Connection: close",
                    "Server: ident",
                ],
                "",
                true,
            ),
        )
        .status(103),
        case(
            "204 with a reader sends nothing of it",
            Reader("hello", Some(5)),
            Sent(&["HTTP/1.1 204 No Content", "Server: ident"], "", false),
        )
        .status(204),
        case(
            "1.0 reader, length unknown, ends at the close",
            Reader("hello", None),
            Sent(
                &["HTTP/1.0 200 OK", "Connection: close", "Server: ident"],
                "hello",
                true,
            ),
        )
        .v10(),
        // Status line.
        case(
            "a reason of the application's",
            Bytes("hello"),
            Sent(
                &["HTTP/1.1 200 Fine", "Content-Length: 5", "Server: ident"],
                "hello",
                false,
            ),
        )
        .reason("Fine"),
        case(
            "an unknown status gets a generic reason",
            Empty,
            Sent(
                &["HTTP/1.1 599 Unknown", "Content-Length: 0", "Server: ident"],
                "",
                false,
            ),
        )
        .status(599),
        case("status out of range", Empty, Refused("out of range")).status(1000),
        case("status below 100", Empty, Refused("out of range")).status(99),
        case("CR LF in the reason", Empty, Refused("present in status")).reason("OK\r\nX: y"),
        case(
            "a control character in the reason",
            Empty,
            Refused("control character"),
        )
        .reason("O\x00K"),
        // Headers of the application's.
        case(
            "Server set: ours goes to Via",
            Bytes("hello"),
            Sent(
                &[
                    "HTTP/1.1 200 OK",
                    "Server: app/1",
                    "Content-Length: 5",
                    "Via: ident",
                ],
                "hello",
                false,
            ),
        )
        .headers(&[("Server", "app/1")]),
        case(
            "Date set: kept, not added",
            Bytes("hello"),
            Sent(
                &[
                    "HTTP/1.1 200 OK",
                    "Date: Thu, 01 Jan 1970 00:00:00 GMT",
                    "Content-Length: 5",
                    "Server: ident",
                ],
                "hello",
                false,
            ),
        )
        .headers(&[("Date", "Thu, 01 Jan 1970 00:00:00 GMT")]),
        case(
            "other headers in the application's order",
            Bytes("hello"),
            Sent(
                &[
                    "HTTP/1.1 200 OK",
                    "X-B: 2",
                    "x-a: 1",
                    "Content-Length: 5",
                    "Server: ident",
                ],
                "hello",
                false,
            ),
        )
        .headers(&[("X-B", "2"), ("x-a", "1")]),
        case("Connection is hop-by-hop", Empty, Refused("hop-by-hop"))
            .headers(&[("Connection", "close")]),
        case(
            "Transfer-Encoding is hop-by-hop",
            Empty,
            Refused("hop-by-hop"),
        )
        .headers(&[("Transfer-Encoding", "chunked")]),
        case("Keep-Alive is hop-by-hop", Empty, Refused("hop-by-hop"))
            .headers(&[("keep-alive", "timeout=5")]),
        case("Upgrade is hop-by-hop", Empty, Refused("hop-by-hop"))
            .headers(&[("Upgrade", "websocket")]),
        case("Trailer is hop-by-hop", Empty, Refused("hop-by-hop")).headers(&[("TRAILER", "x")]),
        case(
            "CR LF in a value",
            Empty,
            Refused("line feed character present in header value"),
        )
        .headers(&[("X-A", "a\r\nSet-Cookie: x")]),
        case(
            "LF in a name",
            Empty,
            Refused("line feed character present in header name"),
        )
        .headers(&[("X-A\nB", "a")]),
        case(
            "a name that is not a token",
            Empty,
            Refused("is not a valid token"),
        )
        .headers(&[("X A", "a")]),
        case("an empty name", Empty, Refused("is not a valid token")).headers(&[("", "a")]),
        case(
            "a control character in a value",
            Empty,
            Refused("control character"),
        )
        .headers(&[("X-A", "a\x01")]),
        case(
            "a tab in a value is fine",
            Empty,
            Sent(
                &[
                    "HTTP/1.1 200 OK",
                    "X-A: a\tb",
                    "Content-Length: 0",
                    "Server: ident",
                ],
                "",
                false,
            ),
        )
        .headers(&[("X-A", "a\tb")]),
        // The server's own reasons to close.
        case(
            "draining closes a 1.1 connection",
            Bytes("hello"),
            Sent(
                &[
                    "HTTP/1.1 200 OK",
                    "Content-Length: 5",
                    "Connection: close",
                    "Server: ident",
                ],
                "hello",
                true,
            ),
        )
        .draining(),
        case(
            "draining closes a 1.0 keep-alive connection, saying so once",
            Bytes("hello"),
            Sent(
                &[
                    "HTTP/1.0 200 OK",
                    "Content-Length: 5",
                    "Connection: close",
                    "Server: ident",
                ],
                "hello",
                true,
            ),
        )
        .v10()
        .conn("keep-alive")
        .draining(),
        case(
            "forced close on 1.1",
            Bytes("hello"),
            Sent(
                &[
                    "HTTP/1.1 200 OK",
                    "Content-Length: 5",
                    "Connection: close",
                    "Server: ident",
                ],
                "hello",
                true,
            ),
        )
        .force_close(),
        case(
            "forced close on 1.0 keep-alive",
            Bytes("hello"),
            Sent(
                &[
                    "HTTP/1.0 200 OK",
                    "Content-Length: 5",
                    "Connection: close",
                    "Server: ident",
                ],
                "hello",
                true,
            ),
        )
        .v10()
        .conn("keep-alive")
        .force_close(),
        // Failures while sending.
        case(
            "a body iterator that fails after the head",
            FailingChunks(&["ab"]),
            FailedAfterHead("iterator failed"),
        ),
        case(
            "a body iterator that fails at once: nothing sent yet",
            FailingChunks(&[]),
            Refused("iterator failed"),
        ),
        case(
            "the client gone before the head",
            Bytes("hello"),
            Disconnected,
        )
        .gone_after(0),
        case(
            "the client gone after the first chunk",
            Chunks(AB_CDE),
            Disconnected,
        )
        .gone_after(1),
        case(
            "the client gone under a writer body",
            Writer(&["ab", "cd"]),
            Disconnected,
        )
        .gone_after(1),
    ]
}

fn request_head(c: &Case) -> RequestHead {
    let mut raw = format!("{} / HTTP/{}\r\nHost: x\r\n", c.method, c.version);
    if let Some(v) = c.connection {
        raw.push_str(&format!("Connection: {v}\r\n"));
    }
    raw.push_str("\r\n");
    let mut p = RequestParser::new(ParserConfig::default());
    p.received(raw.as_bytes());
    match p.into_parsed() {
        Parsed::Request(head, _) => head,
        Parsed::Error(e, _) => panic!("{}: bad test request: {e}", c.name),
    }
}

fn response(c: &Case) -> Response {
    let body: Body = match c.body {
        Empty => Body::Empty,
        Bytes(s) => Body::from(s),
        Chunks(parts) => Body::from_chunks(parts.iter().copied()),
        Reader(s, len) => Body::from_reader(s.as_bytes(), len),
        Writer(parts) => Body::from_writer(move |w| {
            for p in parts {
                w.write_all(p.as_bytes())?;
            }
            Ok(())
        }),
        FailingChunks(parts) => Body::Chunks(Box::new(
            parts
                .iter()
                .map(|p| Ok(p.as_bytes().to_vec()))
                .chain(std::iter::once(Err(io::Error::other("boom")))),
        )),
    };
    let mut r = Response::new(c.status).with_body(body);
    if let Some(reason) = c.reason {
        r = r.with_reason(reason);
    }
    for (n, v) in c.headers {
        r = r.with_header(*n, *v);
    }
    r
}

/// Runs one case; an error names what differs.
fn check(c: &Case) -> Result<(), String> {
    let out = Recorder {
        gone_after: c.gone_after,
        draining: c.draining,
        ..Recorder::default()
    };
    let head = request_head(c);
    let mut w = ResponseWriter::new(&out, Some("ident"), &head);
    if c.force_close {
        w.force_close();
    }
    let result = w.send(response(c));
    let bytes = out.bytes.borrow().clone();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    match (&c.want, result) {
        (Sent(lines, body, close), Ok(())) => {
            let Some(end) = text.find("\r\n\r\n") else {
                return Err(format!("no complete head in {text:?}"));
            };
            let mut got: Vec<&str> = text[..end].split("\r\n").collect();
            let dates = got.iter().filter(|l| l.starts_with("Date: ")).count();
            let app_date = c
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("date"));
            if !app_date {
                if dates != 1 {
                    return Err(format!("{dates} Date headers in {text:?}"));
                }
                got.retain(|l| !l.starts_with("Date: "));
            }
            if got != *lines {
                return Err(format!("head {got:?}, want {lines:?}"));
            }
            if &text[end + 4..] != *body {
                return Err(format!("body {:?}, want {body:?}", &text[end + 4..]));
            }
            if w.close_on_finish() != *close {
                return Err(format!("close {}, want {close}", w.close_on_finish()));
            }
            Ok(())
        }
        (Refused(what), Err(Failure::App(msg))) => {
            if !msg.contains(what) {
                return Err(format!("failure {msg:?}, want one saying {what:?}"));
            }
            if !bytes.is_empty() || w.head_sent() {
                return Err(format!("sent {text:?} before refusing"));
            }
            Ok(())
        }
        (FailedAfterHead(what), Err(Failure::App(msg))) => {
            if !msg.contains(what) {
                return Err(format!("failure {msg:?}, want one saying {what:?}"));
            }
            if !w.head_sent() || !text.starts_with("HTTP/1.1 200 OK\r\n") {
                return Err(format!("the head was not sent: {text:?}"));
            }
            Ok(())
        }
        (Disconnected, Err(Failure::Disconnected)) => Ok(()),
        (_, Ok(())) => Err(format!("sent {text:?}, want a failure")),
        (_, Err(f)) => Err(format!("failed with {f:?}")),
    }
}

#[test]
fn the_response_rules() {
    let cases = cases();
    assert!(cases.len() >= 40);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check(c).err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn an_error_response_closes_and_names_the_server() {
    let out = Recorder::default();
    write_error(
        &out,
        Some("ident"),
        &HttpError::bad_request("bad thing"),
        Version::Http10,
        false,
    );
    let text = String::from_utf8(out.bytes.into_inner()).unwrap();
    assert!(
        text.starts_with("HTTP/1.0 400 Bad Request\r\nConnection: close\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nServer: ident\r\n"), "{text}");
    assert!(text.contains("\r\nDate: "), "{text}");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{text}"
    );
    assert!(body.contains("bad thing"), "{body}");
}

#[test]
fn an_error_response_to_head_has_its_length_and_no_body() {
    let out = Recorder::default();
    let err = HttpError::internal_server_error("boom");
    write_error(&out, Some("ident"), &err, Version::Http11, true);
    let text = String::from_utf8(out.bytes.into_inner()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{text}"
    );
    let len = err.body(Some("ident")).len();
    assert!(head.contains(&format!("Content-Length: {len}")), "{text}");
    assert_eq!(body, "");
}
