//! The access log: one line for every response the server sends, the
//! server's own error responses and cut-short responses included.
//!
//! Lines are formatted on the thread that finished the response and handed
//! to a bounded in-memory queue; one writer thread of the log's own takes
//! them in batches and writes them (a file opened for appending, created
//! `0640`, or standard error). Nothing waits for the disk: when the queue
//! is full, the line is dropped and counted (`Stats::access_log_dropped`,
//! and a warning a minute at most).
//!
//! Every byte that comes from the request (the request line, header values)
//! is escaped: `"`, `\`, and anything outside printable ASCII become `\xNN`
//! in the text formats, and JSON escapes (`\u00NN`, reading the bytes as
//! Latin-1) in `json`, so a client cannot forge a line and every `json`
//! line is valid JSON.
//!
//! Thread: both (workers and the I/O thread log; the writer thread writes).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::Error;

/// Bytes of lines held for the writer thread at most; past it, lines are
/// dropped (and counted).
const QUEUE_BYTES: usize = 16 << 20;
/// The writer is woken early once this much waits; otherwise it wakes on
/// its own every `WRITE_EVERY`, so that a busy server does not pay a
/// wake-up per line.
const WAKE_BYTES: usize = 256 << 10;
const WRITE_EVERY: Duration = Duration::from_millis(50);

/// One piece of a line format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    /// `%h`: the client's address (after trusted-proxy processing).
    Client,
    /// `%l`, `%u`: not known, always `-`.
    Dash,
    /// `%t`: when the request was received, `[10/Oct/2000:13:55:36 +0000]`.
    Time,
    /// `%r`: the request line.
    RequestLine,
    /// `%>s` / `%s`: the status sent, or `-`.
    Status,
    /// `%b`: body bytes sent, `-` for none.
    Bytes,
    /// `%D`: microseconds from the request received to the response's end.
    Micros,
    /// `%T`: the same in whole seconds.
    Seconds,
    /// `%{NAME}i`: a request header.
    RequestHeader(String),
    /// `%{NAME}o`: a response header.
    ResponseHeader(String),
}

/// How lines look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Format {
    /// One JSON object a line.
    Json,
    /// Apache-style directives (`common` and `combined` are two of them).
    Template(Vec<Piece>),
}

const COMMON: &str = "%h %l %u %t \"%r\" %>s %b";
const COMBINED: &str = "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"";

impl Format {
    /// `common`, `combined`, `json`, or a template of the directives listed
    /// in [`Piece`] (and `%%` for a percent sign).
    pub(crate) fn parse(spec: &str) -> Result<Format, Error> {
        let template = match spec {
            "json" => return Ok(Format::Json),
            "common" => COMMON,
            "combined" | "" => COMBINED,
            other => other,
        };
        let bad = |what: String| {
            Error::config(format!(
                "access_log_format {spec:?}: {what} (known: %h %l %u %t %r %>s %s %b %D %T %{{NAME}}i %{{NAME}}o %%, or common, combined, json)"
            ))
        };
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                text.push(c);
                continue;
            }
            let piece = match chars.next() {
                Some('%') => {
                    text.push('%');
                    continue;
                }
                Some('h') => Piece::Client,
                Some('l') | Some('u') => Piece::Dash,
                Some('t') => Piece::Time,
                Some('r') => Piece::RequestLine,
                Some('s') => Piece::Status,
                Some('>') if chars.next() == Some('s') => Piece::Status,
                Some('b') => Piece::Bytes,
                Some('D') => Piece::Micros,
                Some('T') => Piece::Seconds,
                Some('{') => {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    if name.is_empty() || !crate::grammar::is_token(name.as_bytes()) {
                        return Err(bad(format!("{{{name}}} is not a header name")));
                    }
                    match chars.next() {
                        Some('i') => Piece::RequestHeader(name.to_ascii_lowercase()),
                        Some('o') => Piece::ResponseHeader(name),
                        _ => return Err(bad(format!("%{{{name}}} must be followed by i or o"))),
                    }
                }
                Some(other) => return Err(bad(format!("%{other} is not a directive"))),
                None => return Err(bad("a lone % at the end".into())),
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(piece);
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Format::Template(pieces))
    }

    /// The request headers the format shows (lower case).
    pub(crate) fn request_headers(&self) -> Vec<String> {
        match self {
            Format::Json => vec!["referer".into(), "user-agent".into()],
            Format::Template(p) => p
                .iter()
                .filter_map(|p| match p {
                    Piece::RequestHeader(n) => Some(n.clone()),
                    _ => None,
                })
                .collect(),
        }
    }

    /// The response headers the format shows.
    pub(crate) fn response_headers(&self) -> Vec<String> {
        match self {
            Format::Json => Vec::new(),
            Format::Template(p) => p
                .iter()
                .filter_map(|p| match p {
                    Piece::ResponseHeader(n) => Some(n.clone()),
                    _ => None,
                })
                .collect(),
        }
    }
}

/// What one line says.
#[derive(Debug, Default)]
pub(crate) struct Record<'a> {
    pub client: &'a str,
    /// When the request was received.
    pub received: Option<SystemTime>,
    /// The request line's three parts, as received (`None`: it could not be
    /// read).
    pub request: Option<(&'a [u8], &'a [u8], &'a str)>,
    /// The status sent; `None` when nothing was.
    pub status: Option<u16>,
    /// Body bytes sent.
    pub bytes: u64,
    pub duration: Duration,
    /// Request headers the format asked for, in `request_headers` order.
    pub request_headers: Vec<Option<&'a [u8]>>,
    /// Response headers the format asked for, in `response_headers` order.
    pub response_headers: Vec<Option<&'a [u8]>>,
}

/// Appends `bytes` with `"`, `\` and every byte outside printable ASCII as
/// `\xNN` (the server log's escaping, plus `"`).
fn escape_text(out: &mut String, bytes: &[u8]) {
    let _ = crate::logging::escape_into(out, bytes, b"\"");
}

/// Appends `bytes` as the inside of a JSON string (bytes as Latin-1).
fn escape_json(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
    }
}

/// `10/Oct/2000:13:55:36 +0000`.
fn clf_time(out: &mut String, t: SystemTime) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (y, m, d) = crate::http_date::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let month = MONTHS
        .get((m as usize).saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    let _ = write!(
        out,
        "{d:02}/{month}/{y}:{:02}:{:02}:{:02} +0000",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
}

impl Format {
    /// The line for `r`, without its newline.
    #[cfg(test)]
    pub(crate) fn render(&self, r: &Record<'_>) -> String {
        let mut out = String::new();
        self.render_into(&mut out, r);
        out
    }

    /// Appends the line for `r` to `out`, without its newline.
    pub(crate) fn render_into(&self, out: &mut String, r: &Record<'_>) {
        match self {
            Format::Json => {
                out.push_str("{\"client\":\"");
                escape_json(out, r.client.as_bytes());
                out.push_str("\",\"time\":\"");
                if let Some(t) = r.received {
                    clf_time(out, t);
                }
                out.push_str("\",\"method\":");
                match r.request {
                    Some((method, target, version)) => {
                        out.push('"');
                        escape_json(out, method);
                        out.push_str("\",\"target\":\"");
                        escape_json(out, target);
                        out.push_str("\",\"version\":\"");
                        escape_json(out, version.as_bytes());
                        out.push('"');
                    }
                    None => out.push_str("null,\"target\":null,\"version\":null"),
                }
                out.push_str(",\"status\":");
                match r.status {
                    Some(s) => {
                        let _ = write!(out, "{s}");
                    }
                    None => out.push_str("null"),
                }
                let _ = write!(
                    out,
                    ",\"bytes\":{},\"duration_us\":{}",
                    r.bytes,
                    r.duration.as_micros()
                );
                for (name, value) in ["referer", "user_agent"].iter().zip(&r.request_headers) {
                    let _ = write!(out, ",\"{name}\":");
                    match value {
                        Some(v) => {
                            out.push('"');
                            escape_json(out, v);
                            out.push('"');
                        }
                        None => out.push_str("null"),
                    }
                }
                out.push('}');
            }
            Format::Template(pieces) => {
                let (mut req_i, mut resp_i) = (0, 0);
                for p in pieces {
                    match p {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Client => escape_text(out, r.client.as_bytes()),
                        Piece::Dash => out.push('-'),
                        Piece::Time => {
                            out.push('[');
                            match r.received {
                                Some(t) => clf_time(out, t),
                                None => out.push('-'),
                            }
                            out.push(']');
                        }
                        Piece::RequestLine => match r.request {
                            Some((method, target, version)) => {
                                escape_text(out, method);
                                out.push(' ');
                                escape_text(out, target);
                                out.push(' ');
                                escape_text(out, version.as_bytes());
                            }
                            None => out.push('-'),
                        },
                        Piece::Status => match r.status {
                            Some(s) => {
                                let _ = write!(out, "{s}");
                            }
                            None => out.push('-'),
                        },
                        Piece::Bytes => {
                            if r.bytes == 0 {
                                out.push('-');
                            } else {
                                let _ = write!(out, "{}", r.bytes);
                            }
                        }
                        Piece::Micros => {
                            let _ = write!(out, "{}", r.duration.as_micros());
                        }
                        Piece::Seconds => {
                            let _ = write!(out, "{}", r.duration.as_secs());
                        }
                        Piece::RequestHeader(_) => {
                            match r.request_headers.get(req_i).copied().flatten() {
                                Some(v) => escape_text(out, v),
                                None => out.push('-'),
                            }
                            req_i += 1;
                        }
                        Piece::ResponseHeader(_) => {
                            match r.response_headers.get(resp_i).copied().flatten() {
                                Some(v) => escape_text(out, v),
                                None => out.push('-'),
                            }
                            resp_i += 1;
                        }
                    }
                }
            }
        }
    }
}

/// Where lines go.
#[derive(Debug)]
enum Sink {
    Stderr,
    File(std::path::PathBuf),
    #[cfg(feature = "log")]
    Log,
}

/// Lines waiting for the writer, each ending in a newline.
#[derive(Debug, Default)]
struct Queue {
    text: String,
    /// The writer was woken for the text there is (not again until it
    /// takes it).
    woken: bool,
    stop: bool,
}

thread_local! {
    /// Where a line is formatted before it is queued (reused).
    static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The log: its format, its queue and its writer thread.
#[derive(Debug)]
pub(crate) struct AccessLog {
    pub(crate) format: Format,
    request_headers: Vec<String>,
    response_headers: Vec<String>,
    queue: Arc<(Mutex<Queue>, Condvar)>,
    reopen: Arc<AtomicBool>,
    dropped: AtomicU64,
    /// Drops already warned about, and when.
    warned: Mutex<(u64, Option<Instant>)>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn open_append(path: &std::path::Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

impl AccessLog {
    /// Opens the log named by `access_log` (`-` for standard error, `log`
    /// for the `log` facade with that feature, else a file path) and
    /// starts its writer thread. `None` when `access_log` is empty.
    pub(crate) fn open(target: &str, format: &str) -> Result<Option<AccessLog>, Error> {
        if target.is_empty() {
            return Ok(None);
        }
        let format = Format::parse(format)?;
        let sink = match target {
            "-" => Sink::Stderr,
            #[cfg(feature = "log")]
            "log" => Sink::Log,
            #[cfg(not(feature = "log"))]
            "log" => {
                return Err(Error::config(
                    "access_log=log sends lines to the `log` facade, which needs maitred's `log` feature; give a file path (./log for a file named log) or -",
                ))
            }
            path => {
                let p = std::path::PathBuf::from(path);
                open_append(&p)
                    .map_err(|e| Error::io(format!("could not open the access log {path}"), e))?;
                Sink::File(p)
            }
        };
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let reopen = Arc::new(AtomicBool::new(false));
        let (q, r) = (Arc::clone(&queue), Arc::clone(&reopen));
        let writer = std::thread::Builder::new()
            .name("maitred-access-log".into())
            .spawn(move || write_lines(&q, &r, sink))
            .map_err(|e| Error::io("could not start the access log's thread", e))?;
        Ok(Some(AccessLog {
            request_headers: format.request_headers(),
            response_headers: format.response_headers(),
            format,
            queue,
            reopen,
            dropped: AtomicU64::new(0),
            warned: Mutex::new((0, None)),
            writer: Mutex::new(Some(writer)),
        }))
    }

    /// The request headers a line needs (lower case).
    pub(crate) fn request_headers(&self) -> &[String] {
        &self.request_headers
    }

    /// The response headers a line needs.
    pub(crate) fn response_headers(&self) -> &[String] {
        &self.response_headers
    }

    /// Formats and queues the line for `r`; never waits for the disk.
    pub(crate) fn log(&self, r: &Record<'_>) {
        let queued = LINE.with(|line| {
            let mut line = line.borrow_mut();
            line.clear();
            self.format.render_into(&mut line, r);
            line.push('\n');
            let (lock, cv) = &*self.queue;
            let mut q = crate::lock(lock);
            if q.text.len() + line.len() > QUEUE_BYTES {
                return false;
            }
            q.text.push_str(&line);
            if q.text.len() >= WAKE_BYTES && !q.woken {
                q.woken = true;
                cv.notify_one();
            }
            true
        });
        if !queued {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            self.warn_dropped(dropped);
        }
    }

    fn warn_dropped(&self, dropped: u64) {
        let mut w = crate::lock(&self.warned);
        let now = Instant::now();
        if w.1
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
        {
            crate::log_warning!(
                "access log: {} lines dropped (the writer falls behind the server)",
                dropped - w.0
            );
            *w = (dropped, Some(now));
        }
    }

    /// Lines dropped because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Asks the writer to reopen the file (after logrotate moved it).
    pub(crate) fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
        self.queue.1.notify_one();
    }

    /// Writes what is queued and stops the writer thread.
    pub(crate) fn close(&self) {
        {
            let mut q = crate::lock(&self.queue.0);
            q.stop = true;
        }
        self.queue.1.notify_one();
        if let Some(t) = crate::lock(&self.writer).take() {
            let _ = t.join();
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer thread: every `WRITE_EVERY` (or sooner when much waits, or
/// to reopen or stop) it takes all the queued text at once and writes it.
fn write_lines(queue: &(Mutex<Queue>, Condvar), reopen: &AtomicBool, sink: Sink) {
    let mut file = match &sink {
        Sink::File(p) => open_append(p).ok(),
        _ => None,
    };
    let mut batch = String::new();
    loop {
        let stop = {
            let (lock, cv) = queue;
            let mut q = crate::lock(lock);
            if !q.stop && !reopen.load(Ordering::Acquire) && q.text.len() < WAKE_BYTES {
                q = match cv.wait_timeout(q, WRITE_EVERY) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
            // Swap buffers: both keep their capacity.
            std::mem::swap(&mut batch, &mut q.text);
            q.woken = false;
            q.stop
        };
        if reopen.swap(false, Ordering::AcqRel) {
            if let Sink::File(p) = &sink {
                match open_append(p) {
                    Ok(f) => file = Some(f),
                    Err(e) => {
                        crate::log_error!("access log: could not reopen {}: {e}", p.display())
                    }
                }
            }
        }
        if !batch.is_empty() {
            let written = match (&sink, file.as_mut()) {
                (Sink::Stderr, _) => io::stderr().lock().write_all(batch.as_bytes()),
                (Sink::File(_), Some(f)) => f.write_all(batch.as_bytes()),
                #[cfg(feature = "log")]
                (Sink::Log, _) => {
                    for l in batch.lines() {
                        log::info!(target: "maitred::access", "{l}");
                    }
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Err(e) = written {
                crate::log_error!("access log: could not write: {e}");
            }
            batch.clear();
        }
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_refuse_what_they_do_not_know() {
        assert_eq!(Format::parse("json").unwrap(), Format::Json);
        assert!(matches!(
            Format::parse("combined").unwrap(),
            Format::Template(_)
        ));
        let f = Format::parse("%h %{X-Id}i %{Content-Type}o %D %%").unwrap();
        assert_eq!(f.request_headers(), ["x-id"]);
        assert_eq!(f.response_headers(), ["Content-Type"]);
        for bad in ["%q", "%{}i", "%{a b}i", "%{X}z", "100%"] {
            let e = Format::parse(bad).unwrap_err().to_string();
            assert!(e.contains("access_log_format"), "{bad}: {e}");
        }
    }

    #[test]
    fn hostile_bytes_are_escaped() {
        let method: &[u8] = b"GET";
        let target: &[u8] = b"/a\"b\\c\r\n\x00\x80\xff";
        let agent: &[u8] = b"x\" injected \"y\n";
        let r = Record {
            client: "1.2.3.4",
            received: Some(UNIX_EPOCH + Duration::from_secs(971_186_136)),
            request: Some((method, target, "HTTP/1.1")),
            status: Some(200),
            bytes: 5,
            duration: Duration::from_micros(1234),
            request_headers: vec![None, Some(agent)],
            response_headers: vec![],
        };
        let line = Format::parse("combined").unwrap().render(&r);
        assert_eq!(
            line,
            "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET /a\\x22b\\x5cc\\x0d\\x0a\\x00\\x80\\xff HTTP/1.1\" 200 5 \"-\" \"x\\x22 injected \\x22y\\x0a\""
        );
        let json = Format::Json.render(&r);
        assert!(!json.contains('\n'));
        assert!(
            json.contains("\"target\":\"/a\\\"b\\\\c\\u000d\\u000a\\u0000\\u0080\\u00ff\""),
            "{json}"
        );
        assert!(json.contains("\"duration_us\":1234"), "{json}");
    }
}
