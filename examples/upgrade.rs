//! Upgrading a connection: `GET /` says hello; a request with
//! `Connection: upgrade` and `Upgrade: echo` switches to a line protocol
//! that sends every line it receives back, until the client closes.
//!
//! ```sh
//! cargo run --release --example upgrade -- --port=8080
//! printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nhello\n' \
//!     | nc -q 1 127.0.0.1 8080
//! ```
//!
//! Every option of the `serve` example's command line works here too
//! (`--help`). The handler runs on a thread of its own, not on one of the
//! `--threads` workers: hundreds of echo connections can stay open while
//! four workers serve plain requests.

use std::io::{BufRead, BufReader, Write};

use maitred::{Request, Response, Upgraded};

/// The example's application (also served by `tests/upgrade.rs`).
pub fn app(req: &mut Request) -> Response {
    if req.upgrade_requested("echo") {
        return Response::upgrade("echo", echo_lines);
    }
    match req.path().as_ref() {
        "/" => Response::text("Hello! Send Connection: upgrade and Upgrade: echo to switch.\n"),
        _ => Response::status_page(404),
    }
}

/// The line protocol: every line back, until the client closes. It runs on
/// a thread of its own; one handle reads (through a buffer), the other
/// writes.
pub fn echo_lines(stream: Upgraded) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut lines = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if out.write_all(&line).is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let code = maitred::runner::run_cli(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        app,
    );
    std::process::exit(code);
}
