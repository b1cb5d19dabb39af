//! WebSocket: an echo on `/` (every message sent back as it came, text as
//! text, binary as binary) and a chat on `/chat` (every message sent to
//! every open `/chat` connection), with a page at `/` that uses the chat
//! from a browser.
//!
//! ```sh
//! cargo run --release --features websocket --example websocket -- --port=8080
//! # then open http://127.0.0.1:8080/ in two browser windows, or:
//! python3 -m websockets ws://127.0.0.1:8080/      # an echo
//! python3 -m websockets ws://127.0.0.1:8080/chat  # the chat
//! ```
//!
//! Every option of the `serve` example's command line works here too
//! (`--help`; `--websocket-max-message-size=BYTES` bounds messages). Each
//! WebSocket runs on a thread of its own, not on one of the `--threads`
//! workers, up to `--upgraded-connection-limit` of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maitred::websocket::{self, Sender, WebSocket};
use maitred::{Request, Response};

/// The page at `/`: a chat client in a few lines of JavaScript.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>maitred chat</title>
<style>
body { font-family: sans-serif; max-width: 40em; margin: 2em auto; }
#log { border: 1px solid #ccc; height: 20em; overflow-y: auto; padding: .5em; }
#log p { margin: .2em 0; }
form { display: flex; gap: .5em; margin-top: .5em; }
#text { flex: 1; }
</style>
</head>
<body>
<h1>maitred chat</h1>
<p id="status">connecting…</p>
<div id="log"></div>
<form id="form"><input id="text" autocomplete="off" placeholder="Say something" autofocus><button>Send</button></form>
<script>
const log = document.getElementById("log");
const status = document.getElementById("status");
const text = document.getElementById("text");
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const ws = new WebSocket(scheme + location.host + "/chat");
function show(line) {
  const p = document.createElement("p");
  p.textContent = line;
  log.appendChild(p);
  log.scrollTop = log.scrollHeight;
}
ws.onopen = () => { status.textContent = "connected"; };
ws.onmessage = (e) => show(e.data);
ws.onclose = (e) => { status.textContent = "closed (" + e.code + ")"; };
document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  if (text.value && ws.readyState === WebSocket.OPEN) {
    ws.send(text.value);
    text.value = "";
  }
};
</script>
</body>
</html>
"#;

/// The open `/chat` connections, by number.
#[derive(Debug, Default)]
pub struct Room {
    next: AtomicU64,
    members: Mutex<HashMap<u64, Sender>>,
}

impl Room {
    fn join(&self, sender: Sender) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.members).insert(id, sender);
        id
    }

    fn leave(&self, id: u64) {
        lock(&self.members).remove(&id);
    }

    /// Sends `msg` to every member; one whose connection fails leaves.
    fn broadcast(&self, msg: &websocket::Message) {
        // Sent outside the room's lock: a slow member delays this sender
        // only (up to its write timeout), not the room.
        let members: Vec<(u64, Sender)> = lock(&self.members)
            .iter()
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        for (id, member) in members {
            if member.send(msg).is_err() {
                self.leave(id);
            }
        }
    }

    /// How many connections are in the room.
    pub fn len(&self) -> usize {
        lock(&self.members).len()
    }

    /// True when nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The echo: every message back as it came, until the client closes.
pub fn echo(mut ws: WebSocket) {
    while let Ok(Some(msg)) = ws.read() {
        if ws.send(&msg).is_err() {
            break;
        }
    }
}

/// A chat member: what it says goes to everyone in the room.
pub fn chat(ws: WebSocket, room: Arc<Room>) {
    // A member that does not take what is sent to it for 10 s is dropped.
    let _ = ws.set_write_timeout(Some(Duration::from_secs(10)));
    let (mut reader, sender) = ws.split();
    let id = room.join(sender);
    while let Ok(Some(msg)) = reader.read() {
        room.broadcast(&msg);
    }
    room.leave(id);
}

/// The example's application, with its chat room (also served by
/// `tests/websocket.rs`).
pub fn app(room: Arc<Room>) -> impl Fn(&mut Request) -> Response + Send + Sync + 'static {
    move |req: &mut Request| {
        let path = req.path();
        let is_ws = websocket::is_websocket_request(req);
        match (path.as_ref(), is_ws) {
            ("/", false) => Response::html(PAGE),
            ("/", true) => match websocket::handshake(req) {
                Ok(hs) => hs.accept(echo),
                Err(refusal) => refusal.into_response(),
            },
            ("/chat", true) => match websocket::handshake(req) {
                Ok(hs) => {
                    let room = Arc::clone(&room);
                    hs.accept(move |ws| chat(ws, room))
                }
                Err(refusal) => refusal.into_response(),
            },
            ("/chat", false) => Response::new(400)
                .with_header("Content-Type", "text/plain; charset=utf-8")
                .with_body("/chat is a WebSocket: connect to ws://HOST/chat\n"),
            _ => Response::status_page(404),
        }
    }
}

fn main() {
    let code = maitred::runner::run_cli(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        app(Arc::new(Room::default())),
    );
    std::process::exit(code);
}
