//! Server-sent events from a synchronous application: one publisher thread
//! sends every subscriber of `GET /events` an event every 100 ms
//! (`id: <n>`, `data: <n>`, `n` increasing from 1), and a comment every
//! 15 s so that idle proxies keep the stream open. `GET /` is a page that
//! subscribes (for a browser) or a plain hello (for `curl`).
//!
//! ```sh
//! cargo run --release --example sse -- --port=8080 --threads=4
//! curl -N http://127.0.0.1:8080/events
//! ```
//!
//! Every option of the `serve` example's command line works here too
//! (`--help`). A subscriber holds no worker: the application returns its
//! response at once with a pushed body (`Body::channel`), and the I/O
//! thread writes what the publisher sends, so four workers serve thousands
//! of subscribers and plain requests beside them.
//!
//! A subscriber that reconnects with `Last-Event-ID` (browsers do) first
//! gets the events it missed, from the last [`RECENT`] kept. One that
//! falls more than `outbuf_high_watermark` bytes behind (it reads nothing)
//! is dropped rather than waited for, so that it cannot slow the others;
//! one that leaves is forgotten at the next event.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use maitred::{Body, BodySender, Request, Response, SendError};

/// How often the publisher sends an event.
pub const INTERVAL: Duration = Duration::from_millis(100);
/// How often an idle stream gets a comment line.
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// Events kept for subscribers that reconnect with `Last-Event-ID`.
pub const RECENT: usize = 100;

/// The subscribers and the last events, shared by the application (which
/// subscribes) and the publisher thread.
#[derive(Debug, Default)]
pub struct Hub {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Who gets the next event (while an event is being sent, only those
    /// that subscribed since; see [`Hub::publish`]).
    subscribers: Vec<BodySender>,
    /// The last event's id (0 before the first).
    last_id: u64,
    /// The last [`RECENT`] events, oldest first.
    recent: VecDeque<(u64, Arc<[u8]>)>,
    /// Subscribers taken out of `subscribers` by the event being sent.
    sending: usize,
    /// The id of the last event whose sending forgot a subscriber.
    last_forgotten: u64,
}

/// One event's bytes on the wire.
fn frame(id: u64) -> Vec<u8> {
    format!("id: {id}\ndata: {id}\n\n").into_bytes()
}

impl Hub {
    /// A hub whose publisher thread sends an event every `interval` and a
    /// comment every `keepalive`, until the hub is dropped.
    pub fn start(interval: Duration, keepalive: Duration) -> std::io::Result<Arc<Hub>> {
        let hub = Arc::new(Hub::default());
        let weak = Arc::downgrade(&hub);
        std::thread::Builder::new()
            .name("sse-publisher".into())
            .spawn(move || publisher(weak, interval, keepalive))?;
        Ok(hub)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent (every
        // step is a push or a pop): go on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new subscriber's response: a pushed body that gets every event
    /// after the last one it saw (`last_seen`, from `Last-Event-ID`), or
    /// every event from the next one.
    pub fn subscribe(&self, last_seen: Option<u64>) -> Response {
        let (body, tx) = Body::channel();
        let mut st = self.lock();
        if let Some(seen) = last_seen {
            // What it missed, still under the lock: the next event cannot
            // come in between (nor twice). The body is not attached yet,
            // so this is buffered (up to a MiB) and goes out after the head.
            for (_, bytes) in st.recent.iter().filter(|(id, _)| *id > seen) {
                if tx.try_send(bytes).is_err() {
                    break;
                }
            }
        }
        st.subscribers.push(tx);
        drop(st);
        Response::new(200)
            .with_header("Content-Type", "text/event-stream")
            .with_header("Cache-Control", "no-cache")
            // nginx would otherwise buffer the stream.
            .with_header("X-Accel-Buffering", "no")
            .with_body(body)
    }

    /// Subscribers now (those that left count until the next event).
    pub fn subscribers(&self) -> usize {
        let st = self.lock();
        st.subscribers.len() + st.sending
    }

    /// The id of the last event whose sending forgot a subscriber that
    /// had left (0 for none yet).
    pub fn last_forgotten(&self) -> u64 {
        self.lock().last_forgotten
    }

    /// The last event's id (0 before the first).
    pub fn last_id(&self) -> u64 {
        self.lock().last_id
    }

    /// Sends the next event (or `bytes`, a comment, when given) to every
    /// subscriber, and forgets those that left or fell too far behind.
    ///
    /// The list is taken out of the lock for the sends (a few thousand
    /// system calls must not keep a subscriber waiting): one that
    /// subscribes meanwhile lands in the emptied list, after this event
    /// was counted, so it gets the next one first; no event is missed or
    /// sent twice.
    fn publish(&self, comment: Option<&[u8]>) {
        let (id, bytes, mut sending) = {
            let mut st = self.lock();
            let bytes: Arc<[u8]> = match comment {
                Some(c) => c.into(),
                None => {
                    st.last_id += 1;
                    let id = st.last_id;
                    let bytes: Arc<[u8]> = frame(id).into();
                    if st.recent.len() == RECENT {
                        st.recent.pop_front();
                    }
                    st.recent.push_back((id, Arc::clone(&bytes)));
                    bytes
                }
            };
            let sending = std::mem::take(&mut st.subscribers);
            st.sending = sending.len();
            (st.last_id, bytes, sending)
        };
        let before = sending.len();
        sending.retain(|tx| match tx.try_send(&bytes) {
            Ok(()) => true,
            // Gone, or a whole high watermark behind: let it reconnect.
            Err(SendError::Closed | SendError::Full | SendError::Timeout) => false,
        });
        let mut st = self.lock();
        if sending.len() < before {
            st.last_forgotten = id;
        }
        st.sending = 0;
        // Those that subscribed meanwhile go after the older ones.
        sending.append(&mut st.subscribers);
        st.subscribers = sending;
    }
}

/// The publisher thread: an event every `interval` (on a fixed schedule,
/// so that a slow round does not shift the next ones), a comment when
/// `keepalive` passed since the last one, until the hub is gone.
fn publisher(hub: Weak<Hub>, interval: Duration, keepalive: Duration) {
    let mut next = Instant::now() + interval;
    let mut last_comment = Instant::now();
    loop {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += interval;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        if last_comment.elapsed() >= keepalive {
            hub.publish(Some(b": keep-alive\n\n"));
            last_comment = Instant::now();
        }
        hub.publish(None);
    }
}

/// The page `GET /` serves a browser.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>maitred server-sent events</title>
<p>Events from <code>/events</code>: <span id="n">none yet</span></p>
<script>
  const n = document.getElementById("n");
  new EventSource("/events").onmessage = (e) => { n.textContent = e.data; };
</script>
"#;

/// The example's application (also served by `tests/sse.rs`).
pub fn app(hub: Arc<Hub>) -> impl Fn(&mut Request) -> Response + Send + Sync + 'static {
    move |req: &mut Request| {
        if req.method() != "GET" && req.method() != "HEAD" {
            return Response::status_page(405).with_header("Allow", "GET, HEAD");
        }
        match req.path().as_ref() {
            "/" => {
                let html = req
                    .header_str("Accept")
                    .is_some_and(|a| a.contains("text/html"));
                if html {
                    Response::html(PAGE)
                } else {
                    Response::text("Hello! GET /events for server-sent events.\n")
                }
            }
            "/events" => {
                let last = req
                    .header_str("Last-Event-ID")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                hub.subscribe(last)
            }
            _ => Response::status_page(404),
        }
    }
}

fn main() {
    let hub = match Hub::start(INTERVAL, KEEPALIVE) {
        Ok(hub) => hub,
        Err(e) => {
            eprintln!("sse: cannot start the publisher thread: {e}");
            std::process::exit(1);
        }
    };
    let code = maitred::runner::run_cli(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        app(hub),
    );
    std::process::exit(code);
}
