//! Serves one file with `sendfile(2)` at every path:
//! `cargo run --example file -- Cargo.toml 127.0.0.1:8080`, then
//! `curl http://127.0.0.1:8080/`.
//!
//! Arguments: the file (default `Cargo.toml`) and the address to listen on
//! (default `127.0.0.1:8080`).

use maitred::{Adjustments, Body, Request, Response};

fn main() -> Result<(), maitred::Error> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "Cargo.toml".into());
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let app = move |_req: &mut Request| match std::fs::File::open(&path) {
        Ok(file) => Response::new(200)
            .with_header("Content-Type", "application/octet-stream")
            .with_body(Body::from_file(file)),
        Err(e) => Response::new(404).with_body(format!("{path}: {e}\n")),
    };
    maitred::serve(app, Adjustments::default().listen(&[listen.as_str()]))
}
