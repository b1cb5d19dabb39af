//! Serves one file with `sendfile(2)`: `cargo run --example file -- Cargo.toml`,
//! then `curl http://127.0.0.1:8080/`.

use maitred::{Adjustments, Body, Request, Response};

fn main() -> Result<(), maitred::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Cargo.toml".into());
    let app = move |_req: &mut Request| match std::fs::File::open(&path) {
        Ok(file) => Response::new(200)
            .with_header("Content-Type", "application/octet-stream")
            .with_body(Body::from_file(file)),
        Err(e) => Response::new(404).with_body(format!("{path}: {e}\n")),
    };
    maitred::serve(app, Adjustments::default().listen(&["127.0.0.1:8080"]))
}
