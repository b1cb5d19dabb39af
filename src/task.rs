//! The worker pool: waitress's `ThreadedTaskDispatcher`, mirrored.
//!
//! One `Mutex` guards the thread set, the task queue (a `VecDeque`),
//! `stop_count` and `active_count`; two `Condvar`s on it, `queue_cv` (work
//! arrived, or threads must stop) and `thread_exit_cv` (a thread stopped).
//! Threads are named `maitred-N` (waitress: `waitress-N`), numbered with the
//! lowest free number, and can be added or removed while the server runs
//! ([`ThreadedTaskDispatcher::set_thread_count`]).
//!
//! Two refinements over waitress, neither visible in behaviour:
//!
//! * [`add_task`](ThreadedTaskDispatcher::add_task) signals `queue_cv` only
//!   when a thread is waiting on it and no signal is already on its way
//!   (`pending_wakeups`), and a woken thread that leaves work in the queue
//!   wakes the next one. `active_count` already tracks waiting threads (a
//!   thread leaves the count while it waits); a thread that is running a
//!   task checks the queue before it waits, so no task is missed. This saves
//!   `futex` system calls whenever the workers are busy, and a burst of
//!   tasks no longer wakes every idle thread at once to fight over the
//!   queue.
//! * The "Task queue depth is N" warning is written at most once a second
//!   (with the current depth), so that a loaded server does not spend its
//!   time logging; waitress writes it for every queued task.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Work for the pool.
pub trait Task: Send + 'static {
    /// Runs the task on a worker thread.
    fn service(self);
    /// Called instead of [`service`](Task::service) for tasks still queued
    /// when the pool shuts down with `cancel_pending`.
    fn cancel(self);
}

struct State<T> {
    threads: BTreeSet<usize>,
    queue: VecDeque<T>,
    stop_count: usize,
    active_count: usize,
    /// Threads signalled on `queue_cv` that have not woken up yet.
    pending_wakeups: usize,
    last_depth_warning: Option<Instant>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    queue_cv: Condvar,
    thread_exit_cv: Condvar,
    name: String,
}

/// A fixed (but resizable) set of worker threads taking tasks from one
/// queue in order.
pub struct ThreadedTaskDispatcher<T: Task> {
    shared: Arc<Shared<T>>,
}

impl<T: Task> fmt::Debug for ThreadedTaskDispatcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("ThreadedTaskDispatcher")
            .field("threads", &st.threads.len())
            .field("queued", &st.queue.len())
            .field("stop_count", &st.stop_count)
            .field("active_count", &st.active_count)
            .finish()
    }
}

impl<T: Task> Default for ThreadedTaskDispatcher<T> {
    fn default() -> Self {
        ThreadedTaskDispatcher::new()
    }
}

impl<T: Task> ThreadedTaskDispatcher<T> {
    /// A pool with no threads yet; call
    /// [`set_thread_count`](Self::set_thread_count).
    pub fn new() -> ThreadedTaskDispatcher<T> {
        ThreadedTaskDispatcher::with_name("maitred")
    }

    /// Like [`new`](Self::new), naming threads `{name}-N`.
    pub fn with_name(name: &str) -> ThreadedTaskDispatcher<T> {
        ThreadedTaskDispatcher {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    threads: BTreeSet::new(),
                    queue: VecDeque::new(),
                    stop_count: 0,
                    active_count: 0,
                    pending_wakeups: 0,
                    last_depth_warning: None,
                }),
                queue_cv: Condvar::new(),
                thread_exit_cv: Condvar::new(),
                name: name.to_string(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        crate::lock(&self.shared.state)
    }

    /// Number of worker threads (including those asked to stop that have
    /// not stopped yet).
    pub fn thread_count(&self) -> usize {
        self.lock().threads.len()
    }

    /// Tasks waiting for a thread.
    pub fn queue_len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Grows or shrinks the pool to `count` threads. New threads start at
    /// once; surplus threads stop when they next look for work (a running
    /// task is never interrupted).
    pub fn set_thread_count(&self, count: usize) {
        let mut st = self.lock();
        let mut running = st.threads.len() - st.stop_count;
        let mut thread_no = 0;
        while running < count {
            while st.threads.contains(&thread_no) {
                thread_no += 1;
            }
            let shared = Arc::clone(&self.shared);
            let no = thread_no;
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{}", self.shared.name, no))
                .spawn(move || handler_thread(&shared, no));
            match spawned {
                Ok(_) => {
                    st.threads.insert(no);
                    st.active_count += 1;
                    running += 1;
                    thread_no += 1;
                }
                Err(e) => {
                    crate::log_error!(
                        "could not start worker thread {}-{}: {}",
                        self.shared.name,
                        no,
                        e
                    );
                    break;
                }
            }
        }
        if running > count {
            st.stop_count += running - count;
            self.shared.queue_cv.notify_all();
        }
    }

    /// Queues a task, waking an idle thread if there is one.
    pub fn add_task(&self, task: T) {
        let mut st = self.lock();
        st.queue.push_back(task);
        self.wake_locked(st);
    }

    /// Queues several tasks with one acquisition of the lock and at most
    /// one wake-up: the I/O thread hands over the requests of a whole loop
    /// round this way, so that it neither signals nor contends for the
    /// lock once per request.
    pub fn add_tasks(&self, tasks: impl IntoIterator<Item = T>) {
        let mut st = self.lock();
        let before = st.queue.len();
        st.queue.extend(tasks);
        if st.queue.len() > before {
            self.wake_locked(st);
        }
    }

    fn wake_locked(&self, mut st: MutexGuard<'_, State<T>>) {
        let idle = st
            .threads
            .len()
            .saturating_sub(st.stop_count + st.active_count);
        if idle > 0 && st.pending_wakeups == 0 {
            st.pending_wakeups += 1;
            self.shared.queue_cv.notify_one();
        }
        let depth = st.queue.len();
        if depth > idle {
            let now = Instant::now();
            let due = st
                .last_depth_warning
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
            if due {
                st.last_depth_warning = Some(now);
                drop(st);
                crate::logging::write(
                    crate::logging::Level::Warning,
                    "maitred.queue",
                    format_args!("Task queue depth is {}", depth - idle),
                );
            }
        }
    }

    /// Stops every thread, waiting up to `timeout` for running tasks to
    /// finish; with `cancel_pending`, the tasks still queued are cancelled
    /// and `true` is returned. Threads still running at the deadline are
    /// left to finish on their own (a warning says how many).
    pub fn shutdown(&self, cancel_pending: bool, timeout: Duration) -> bool {
        self.set_thread_count(0);
        let expiration = Instant::now() + timeout;
        let mut st = self.lock();
        while !st.threads.is_empty() {
            let now = Instant::now();
            if now >= expiration {
                crate::log_warning!("{} thread(s) still running", st.threads.len());
                break;
            }
            let wait = (expiration - now).min(Duration::from_millis(100));
            st = match self.shared.thread_exit_cv.wait_timeout(st, wait) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        if cancel_pending {
            let pending: Vec<T> = st.queue.drain(..).collect();
            self.shared.queue_cv.notify_all();
            drop(st);
            if !pending.is_empty() {
                crate::log_warning!("Canceling {} pending task(s)", pending.len());
            }
            // Cancelled outside the pool's lock: a task's cancel takes its
            // own locks, and nothing else may then wait on ours.
            for t in pending {
                t.cancel();
            }
            return true;
        }
        false
    }
}

fn handler_thread<T: Task>(shared: &Shared<T>, thread_no: usize) {
    loop {
        let task = {
            let mut st = crate::lock(&shared.state);
            while st.queue.is_empty() && st.stop_count == 0 {
                st.active_count -= 1;
                st = match shared.queue_cv.wait(st) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                st.active_count += 1;
                // Spurious wake-ups do not count against a pending signal
                // only while none is pending.
                st.pending_wakeups = st.pending_wakeups.saturating_sub(1);
            }
            if st.stop_count > 0 {
                st.active_count -= 1;
                st.stop_count -= 1;
                st.threads.remove(&thread_no);
                shared.thread_exit_cv.notify_one();
                return;
            }
            let Some(task) = st.queue.pop_front() else {
                continue;
            };
            // Work is left and a thread is waiting with no signal on its
            // way: wake it (one at a time, as the queue needs them).
            let idle = st
                .threads
                .len()
                .saturating_sub(st.stop_count + st.active_count);
            if !st.queue.is_empty() && idle > 0 && st.pending_wakeups == 0 {
                st.pending_wakeups += 1;
                shared.queue_cv.notify_one();
            }
            task
        };
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| task.service())) {
            crate::log_error!(
                "Exception when servicing a task: {}",
                crate::panic_message(&*panic)
            );
        }
    }
}

// ====================================================================
// Tasks: waitress's `Task`, `WSGITask` and `ErrorTask`.
// ====================================================================

use std::io::{self, Read, Write};

use crate::buffers::FileBuffer;
use crate::channel::{Channel, ClientDisconnected};
use crate::error::HttpError;
use crate::parser::{Parsed, RequestHead, Version};
use crate::request::{DisconnectProbe, Request};
use crate::response::{Body, HeaderText, Response};

/// Response headers an application may not set (RFC 9110 section 7.6.1;
/// waitress's `hop_by_hop`, with `trailer` spelled right as on its main
/// branch, and `trailers` kept).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// Why a response could not be completed.
#[derive(Debug)]
enum Failure {
    /// The client went away.
    Disconnected,
    /// The application (or its body) failed; the text says how.
    App(String),
}

impl From<ClientDisconnected> for Failure {
    fn from(_: ClientDisconnected) -> Failure {
        Failure::Disconnected
    }
}

/// The tokens of a `Connection` field, compared case-insensitively.
fn connection_has(head: &RequestHead, token: &str) -> bool {
    head.header("connection").is_some_and(|v| {
        v.split(|&b| b == b',')
            .any(|t| crate::grammar::trim_ows(t).eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Checks a header field from the application; an error says what is wrong
/// (CR/LF in a field is HTTP response splitting).
fn check_header(name: &str, value: &str) -> Result<(), String> {
    if !crate::grammar::is_token(name.as_bytes()) {
        if name.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err("carriage return/line feed character present in header name".into());
        }
        return Err(format!("header name {name:?} is not a valid token"));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err("carriage return/line feed character present in header value".into());
    }
    if !value.bytes().all(crate::grammar::is_field_value_byte) {
        return Err(format!(
            "header {name} has a control character in its value"
        ));
    }
    if HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name)) {
        return Err(format!(
            "{name} is a \"hop-by-hop\" header; it cannot be used by an application"
        ));
    }
    Ok(())
}

fn digits_only(v: &str) -> Option<u64> {
    let v = crate::grammar::trim_ows(v.as_bytes());
    if v.is_empty() || !v.iter().all(|&b| crate::grammar::is_digit(b)) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Writes one response on a channel, applying waitress's framing and
/// keep-alive rules.
struct ResponseWriter<'a> {
    chan: &'a Channel,
    version: Version,
    is_head: bool,
    /// The request said `Connection: close`.
    req_close: bool,
    /// The request said `Connection: keep-alive`.
    req_keep_alive: bool,
    status: u16,
    has_body: bool,
    content_length: Option<u64>,
    written: u64,
    chunked: bool,
    /// The head, built and not yet sent.
    head: Vec<u8>,
    wrote_header: bool,
    close_on_finish: bool,
    /// Close after this response whatever the request asked (the 400 for a
    /// malformed proxy header, which waitress always closes).
    force_close: bool,
    logged_excess: bool,
    logged_no_body: bool,
}

impl<'a> ResponseWriter<'a> {
    fn new(chan: &'a Channel, head: &RequestHead) -> ResponseWriter<'a> {
        ResponseWriter {
            chan,
            version: head.version(),
            is_head: head.method() == "HEAD",
            req_close: connection_has(head, "close"),
            req_keep_alive: connection_has(head, "keep-alive"),
            status: 200,
            has_body: true,
            content_length: None,
            written: 0,
            chunked: false,
            head: Vec::new(),
            wrote_header: false,
            close_on_finish: false,
            force_close: false,
            logged_excess: false,
            logged_no_body: false,
        }
    }

    /// Builds the status line and header block (waitress's
    /// `build_response_header`). `declared` is the application's
    /// `Content-Length`, already validated.
    fn build_head(
        &mut self,
        reason: &str,
        headers: &[(HeaderText, HeaderText)],
        skip_content_length: bool,
    ) {
        let mut h = Vec::with_capacity(160);
        h.extend_from_slice(b"HTTP/");
        h.extend_from_slice(self.version.as_str().as_bytes());
        h.push(b' ');
        let mut digits = [0u8; 20];
        h.extend_from_slice(crate::utilities::decimal(
            u64::from(self.status),
            &mut digits,
        ));
        h.push(b' ');
        h.extend_from_slice(reason.as_bytes());
        h.extend_from_slice(b"\r\n");
        let mut have_cl = false;
        let mut have_date = false;
        let mut have_server = false;
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("content-length") {
                if !self.has_body || skip_content_length {
                    continue;
                }
                have_cl = true;
            } else if name.eq_ignore_ascii_case("date") {
                have_date = true;
            } else if name.eq_ignore_ascii_case("server") {
                have_server = true;
            }
            h.extend_from_slice(name.as_bytes());
            h.extend_from_slice(b": ");
            h.extend_from_slice(value.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        if !have_cl && self.has_body {
            if let Some(cl) = self.content_length {
                h.extend_from_slice(b"Content-Length: ");
                h.extend_from_slice(crate::utilities::decimal(cl, &mut digits));
                h.extend_from_slice(b"\r\n");
                have_cl = true;
            }
        }
        let mut close = false;
        match self.version {
            Version::Http10 => {
                if self.req_keep_alive
                    && !self.req_close
                    && !self.force_close
                    && (have_cl || !self.has_body)
                {
                    h.extend_from_slice(b"Connection: Keep-Alive\r\n");
                } else {
                    close = true;
                }
            }
            Version::Http11 => {
                if self.req_close {
                    close = true;
                }
                if !have_cl && self.has_body {
                    h.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
                    self.chunked = true;
                }
                if (100..200).contains(&self.status) {
                    close = true;
                }
            }
        }
        if self.chan.is_draining() || self.force_close {
            // A graceful stop is under way, or the response must end the
            // connection: this is the last response.
            close = true;
        }
        if close {
            h.extend_from_slice(b"Connection: close\r\n");
            self.close_on_finish = true;
        }
        let adj = &self.chan.server.adj;
        if !have_server {
            if let Some(ident) = &adj.ident {
                h.extend_from_slice(b"Server: ");
                h.extend_from_slice(ident.as_bytes());
                h.extend_from_slice(b"\r\n");
            }
        } else {
            h.extend_from_slice(b"Via: ");
            h.extend_from_slice(adj.ident.as_deref().unwrap_or("waitress").as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        if !have_date {
            h.extend_from_slice(b"Date: ");
            crate::utilities::with_http_date_now(|d| h.extend_from_slice(d.as_bytes()));
            h.extend_from_slice(b"\r\n");
        }
        h.extend_from_slice(b"\r\n");
        self.head = h;
    }

    /// Sends body bytes (the head goes with the first of them).
    fn write(&mut self, data: &[u8]) -> Result<(), ClientDisconnected> {
        if !self.has_body || self.is_head {
            if !data.is_empty() && !self.is_head && !self.logged_no_body {
                self.logged_no_body = true;
                crate::log_warning!(
                    "application-written content was ignored due to HTTP response that may not contain a message-body: ({})",
                    self.status
                );
            }
            self.written += data.len() as u64;
            return self.write_head_only();
        }
        let data = match self.content_length {
            Some(cl) if !self.chunked => {
                let left = cl.saturating_sub(self.written);
                let n = (data.len() as u64).min(left) as usize;
                if n < data.len() && !self.logged_excess {
                    self.logged_excess = true;
                    crate::log_warning!(
                        "application-written content exceeded the number of bytes specified by Content-Length header ({cl})"
                    );
                }
                &data[..n]
            }
            _ => data,
        };
        self.written += data.len() as u64;
        if data.is_empty() {
            return self.write_head_only();
        }
        let head = std::mem::take(&mut self.head);
        let first = !self.wrote_header;
        self.wrote_header = true;
        let head_part: &[u8] = if first { &head } else { &[] };
        if self.chunked {
            let size = format!("{:X}\r\n", data.len());
            self.chan
                .write_soon(&[head_part, size.as_bytes(), data, b"\r\n"])
        } else {
            self.chan.write_soon(&[head_part, data])
        }
    }

    fn write_head_only(&mut self) -> Result<(), ClientDisconnected> {
        if self.wrote_header {
            return Ok(());
        }
        self.wrote_header = true;
        let head = std::mem::take(&mut self.head);
        self.chan.write_soon(&[&head])
    }

    /// Ends the response (waitress's `finish`): the head if nothing was
    /// sent yet, the last chunk, and the short-body rule.
    fn finish(&mut self) -> Result<(), ClientDisconnected> {
        let end: &[u8] = if self.chunked && !self.is_head {
            b"0\r\n\r\n"
        } else {
            b""
        };
        if !self.wrote_header {
            self.wrote_header = true;
            let head = std::mem::take(&mut self.head);
            self.chan.write_soon(&[&head, end])?;
        } else if !end.is_empty() {
            self.chan.write_soon(&[end])?;
        }
        if let Some(cl) = self.content_length {
            if self.has_body && !self.is_head && self.written < cl {
                self.close_on_finish = true;
                crate::log_warning!(
                    "application returned too few bytes ({}) for specified Content-Length ({cl})",
                    self.written
                );
            }
        }
        Ok(())
    }

    /// Sends a whole response from the application.
    fn send(&mut self, resp: Response) -> Result<(), Failure> {
        let (status, reason, headers, body) = resp.into_parts();
        if !(100..=999).contains(&status) {
            return Err(Failure::App(format!(
                "status code {status} is out of range"
            )));
        }
        let reason: HeaderText = match reason {
            Some(r) => r,
            None => crate::response::reason_phrase(status).into(),
        };
        if reason.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(Failure::App(
                "carriage return/line feed character present in status".into(),
            ));
        }
        if !reason.bytes().all(crate::grammar::is_reason_phrase_byte) {
            return Err(Failure::App("control character present in status".into()));
        }
        let mut declared: Option<u64> = None;
        for (name, value) in &headers {
            check_header(name, value).map_err(Failure::App)?;
            if name.eq_ignore_ascii_case("content-length") {
                let v = digits_only(value).ok_or_else(|| {
                    Failure::App(format!(
                        "Content-Length header value {value:?} is not a number"
                    ))
                })?;
                if declared.is_some_and(|d| d != v) {
                    return Err(Failure::App("conflicting Content-Length headers".into()));
                }
                declared = Some(v);
            }
        }
        self.status = status;
        self.has_body = !((100..200).contains(&status) || status == 204 || status == 304);

        match body {
            Body::File { file, offset, len } => {
                match file.metadata() {
                    Ok(m) if m.is_file() => {
                        let available = m.len().saturating_sub(offset);
                        let avail = len.map_or(available, |l| l.min(available));
                        // wsgi.file_wrapper: the size sent is the smaller of
                        // the file and the declared length, and the header
                        // says what is sent.
                        let size = declared.map_or(avail, |d| d.min(avail));
                        self.content_length = Some(size);
                        let replace = declared.is_some_and(|d| d != size);
                        self.build_head(&reason, &headers, replace);
                        if self.has_body && !self.is_head && size > 0 {
                            self.wrote_header = true;
                            let head = std::mem::take(&mut self.head);
                            self.chan.write_soon(&[&head])?;
                            self.chan.write_file(FileBuffer::new(file, offset, size))?;
                            self.written = size;
                        }
                        self.finish()?;
                        Ok(())
                    }
                    _ => {
                        // Not a regular file (a pipe, a device): read it.
                        let mut f = file;
                        if offset > 0 {
                            io::copy(&mut (&mut f).take(offset), &mut io::sink()).map_err(|e| {
                                Failure::App(format!("could not skip to the body's offset: {e}"))
                            })?;
                        }
                        let reader: Box<dyn Read + Send> = match len {
                            Some(l) => Box::new(f.take(l)),
                            None => Box::new(f),
                        };
                        self.content_length = declared.or(len);
                        self.build_head(&reason, &headers, false);
                        self.send_reader(reader)
                    }
                }
            }
            Body::Empty => {
                self.content_length = declared.or(Some(0));
                self.build_head(&reason, &headers, false);
                self.finish()?;
                Ok(())
            }
            Body::Bytes(b) => {
                self.content_length = declared.or(Some(b.len() as u64));
                self.build_head(&reason, &headers, false);
                self.write(&b)?;
                self.finish()?;
                Ok(())
            }
            Body::Reader(r, len) => {
                self.content_length = declared.or(len);
                self.build_head(&reason, &headers, false);
                self.send_reader(r)
            }
            Body::Chunks(iter) => {
                self.content_length = declared;
                self.build_head(&reason, &headers, false);
                if !self.is_head {
                    for chunk in iter {
                        let chunk = chunk.map_err(|e| {
                            Failure::App(format!("the response body iterator failed: {e}"))
                        })?;
                        if !chunk.is_empty() {
                            self.write(&chunk)?;
                        }
                    }
                }
                self.finish()?;
                Ok(())
            }
            Body::Writer(f) => {
                self.content_length = declared;
                self.build_head(&reason, &headers, false);
                if !self.is_head {
                    let mut w = BodyWriter {
                        inner: self,
                        disconnected: false,
                    };
                    let r = f(&mut w);
                    let disconnected = w.disconnected;
                    if let Err(e) = r {
                        if disconnected {
                            return Err(Failure::Disconnected);
                        }
                        return Err(Failure::App(format!(
                            "the response body writer failed: {e}"
                        )));
                    }
                }
                self.finish()?;
                Ok(())
            }
        }
    }

    fn send_reader(&mut self, mut r: Box<dyn Read + Send>) -> Result<(), Failure> {
        if !self.is_head {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                if self.content_length.is_some_and(|cl| self.written >= cl) && !self.chunked {
                    break;
                }
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(Failure::App(format!(
                            "reading the response body failed: {e}"
                        )))
                    }
                };
                self.write(&buf[..n])?;
            }
        }
        self.finish()?;
        Ok(())
    }
}

/// The `Write` handed to a [`Body::Writer`] callback.
struct BodyWriter<'w, 'a> {
    inner: &'w mut ResponseWriter<'a>,
    disconnected: bool,
}

impl Write for BodyWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.write(buf) {
            Ok(()) => Ok(buf.len()),
            Err(ClientDisconnected) => {
                self.disconnected = true;
                Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the client disconnected",
                ))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sends an error response and closes (waitress's `ErrorTask`). Returns
/// true: the connection always closes after it.
fn error_task(chan: &Channel, err: &HttpError, version: Version) -> bool {
    let adj = &chan.server.adj;
    let body = err.body(adj.ident.as_deref());
    let mut h = String::with_capacity(200 + body.len());
    use std::fmt::Write as _;
    let _ = write!(
        h,
        "HTTP/{} {} {}\r\nConnection: close\r\nContent-Length: {}\r\nContent-Type: text/plain; charset=utf-8\r\n",
        version.as_str(),
        err.code(),
        err.reason(),
        body.len()
    );
    crate::utilities::with_http_date_now(|d| {
        let _ = write!(h, "Date: {d}\r\n");
    });
    if let Some(ident) = &adj.ident {
        let _ = write!(h, "Server: {ident}\r\n");
    }
    h.push_str("\r\n");
    let _ = chan.write_soon(&[h.as_bytes(), body.as_bytes()]);
    true
}

/// The detail of a 500: the failure itself when `expose_tracebacks`, else
/// waitress's generic sentence.
fn internal_error_detail(chan: &Channel, what: &str) -> String {
    if chan.server.adj.expose_tracebacks {
        what.to_string()
    } else {
        "The server encountered an unexpected internal server error".into()
    }
}

/// Runs one parsed request on a worker: the application's response, or the
/// parser's error. Returns whether the connection must close afterwards.
pub(crate) fn run(chan: &Arc<Channel>, parsed: Parsed) -> bool {
    match parsed {
        Parsed::Error(err, version) => error_task(chan, &err, version),
        Parsed::Request(head, body) => app_task(chan, head, body),
    }
}

fn app_task(chan: &Arc<Channel>, head: RequestHead, body: crate::buffers::RequestBody) -> bool {
    let server = &chan.server;
    let mut w = ResponseWriter::new(chan, &head);
    let version = head.version();
    let probe: Arc<dyn DisconnectProbe> = chan.clone();
    let mut req = Request::new(head, body, chan.origin.clone(), Some(probe));
    let mut malformed_proxy_header = false;
    let outcome = crate::catch_panic(|| {
        // The proxy-headers middleware runs first, as waitress's wraps the
        // application; a malformed trusted header is answered without it.
        if let Some(Err(bad)) = server.proxy.as_ref().map(|p| p.apply(&mut req)) {
            malformed_proxy_header = true;
            return bad.response();
        }
        server.app.call(&mut req)
    });
    w.force_close = malformed_proxy_header;
    // The request (and its body, which may be a large temporary file) is
    // kept until the response is sent, as waitress does; its path is only
    // formatted if something has to be logged.
    let outcome = match outcome {
        Ok(resp) => match crate::catch_panic(|| w.send(resp)) {
            Ok(r) => r,
            Err(panic) => Err(Failure::App(panic)),
        },
        Err(panic) => Err(Failure::App(panic)),
    };
    match outcome {
        Ok(()) => w.close_on_finish,
        Err(Failure::Disconnected) => {
            crate::log_info!("Client disconnected while serving {}", req.path());
            true
        }
        Err(Failure::App(what)) => {
            crate::log_error!("Exception while serving {}: {what}", req.path());
            if !w.wrote_header {
                let detail = internal_error_detail(chan, &what);
                error_task(chan, &HttpError::internal_server_error(detail), version);
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    struct Job {
        f: Box<dyn FnOnce() + Send>,
        cancelled: Option<Arc<AtomicUsize>>,
    }

    impl Task for Job {
        fn service(self) {
            (self.f)();
        }
        fn cancel(self) {
            if let Some(c) = self.cancelled {
                c.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    fn job(f: impl FnOnce() + Send + 'static) -> Job {
        Job {
            f: Box::new(f),
            cancelled: None,
        }
    }

    fn wait_for(mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "condition not reached in 10 s");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn grows_and_shrinks() {
        let d: ThreadedTaskDispatcher<Job> = ThreadedTaskDispatcher::new();
        d.set_thread_count(3);
        assert_eq!(d.thread_count(), 3);
        d.set_thread_count(5);
        assert_eq!(d.thread_count(), 5);
        d.set_thread_count(2);
        wait_for(|| d.thread_count() == 2);
        // Whichever threads stopped, their numbers are reused (lowest
        // free first), so four threads are numbered below five.
        d.set_thread_count(4);
        assert_eq!(d.thread_count(), 4);
        let nos: Vec<usize> = d.lock().threads.iter().copied().collect();
        assert_eq!(nos.len(), 4);
        assert!(nos.iter().all(|&n| n < 5), "{nos:?}");
        assert!(d.shutdown(true, Duration::from_secs(5)));
        assert_eq!(d.thread_count(), 0);
    }

    #[test]
    fn runs_tasks_in_queue_order_on_named_threads() {
        let d: ThreadedTaskDispatcher<Job> = ThreadedTaskDispatcher::new();
        let (tx, rx) = mpsc::channel();
        // No threads yet: tasks wait in the queue.
        for i in 0..20 {
            let tx = tx.clone();
            d.add_task(job(move || {
                let name = std::thread::current().name().unwrap_or("").to_string();
                tx.send((i, name)).unwrap();
            }));
        }
        assert_eq!(d.queue_len(), 20);
        d.set_thread_count(1);
        let got: Vec<(i32, String)> = (0..20)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        assert!(got.iter().all(|g| g.1 == "maitred-0"));
        d.shutdown(true, Duration::from_secs(5));
    }

    #[test]
    fn a_panicking_task_does_not_kill_its_thread() {
        let d: ThreadedTaskDispatcher<Job> = ThreadedTaskDispatcher::new();
        d.set_thread_count(1);
        d.add_task(job(|| panic!("boom")));
        let (tx, rx) = mpsc::channel();
        d.add_task(job(move || tx.send(42).unwrap()));
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 42);
        assert_eq!(d.thread_count(), 1);
        d.shutdown(true, Duration::from_secs(5));
    }

    #[test]
    fn shutdown_cancels_pending_and_waits_for_running() {
        let d: ThreadedTaskDispatcher<Job> = ThreadedTaskDispatcher::new();
        d.set_thread_count(1);
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let finished = Arc::new(AtomicUsize::new(0));
        let f2 = finished.clone();
        d.add_task(job(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            f2.fetch_add(1, Ordering::SeqCst);
        }));
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let cancelled = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            d.add_task(Job {
                f: Box::new(|| panic!("must not run")),
                cancelled: Some(cancelled.clone()),
            });
        }
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            release_tx.send(()).unwrap();
        });
        assert!(d.shutdown(true, Duration::from_secs(10)));
        releaser.join().unwrap();
        assert_eq!(finished.load(Ordering::SeqCst), 1);
        assert_eq!(cancelled.load(Ordering::SeqCst), 3);
        assert_eq!(d.thread_count(), 0);
        assert_eq!(d.queue_len(), 0);
    }

    #[test]
    fn shutdown_times_out_and_keeps_queue_without_cancel() {
        let d: ThreadedTaskDispatcher<Job> = ThreadedTaskDispatcher::new();
        d.set_thread_count(1);
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        d.add_task(job(move || {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv();
        }));
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        d.add_task(job(|| {}));
        assert!(!d.shutdown(false, Duration::from_millis(50)));
        // The running thread has not exited and the queued task is kept.
        assert_eq!(d.thread_count(), 1);
        assert_eq!(d.queue_len(), 1);
        release_tx.send(()).unwrap();
        wait_for(|| d.thread_count() == 0);
    }

    #[test]
    fn a_batch_of_tasks_runs_after_one_wake() {
        let d: ThreadedTaskDispatcher<Job> = ThreadedTaskDispatcher::new();
        d.set_thread_count(2);
        let count = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<Job> = (0..100)
            .map(|_| {
                let c = count.clone();
                job(move || {
                    c.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        d.add_tasks(jobs);
        wait_for(|| count.load(Ordering::SeqCst) == 100);
        d.shutdown(true, Duration::from_secs(5));
    }

    #[test]
    fn busy_threads_are_not_signalled_but_still_take_work() {
        let d: ThreadedTaskDispatcher<Job> = ThreadedTaskDispatcher::new();
        d.set_thread_count(2);
        let count = Arc::new(AtomicUsize::new(0));
        for _ in 0..1000 {
            let c = count.clone();
            d.add_task(job(move || {
                c.fetch_add(1, Ordering::SeqCst);
            }));
        }
        wait_for(|| count.load(Ordering::SeqCst) == 1000);
        d.shutdown(true, Duration::from_secs(5));
    }
}
