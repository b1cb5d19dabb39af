//! The smallest server: `Hello, World!` on http://127.0.0.1:8080.
//!
//! `cargo run --example hello`, then `curl http://127.0.0.1:8080/`.

use maitred::{Adjustments, Request, Response};

fn main() -> Result<(), maitred::Error> {
    let adj = Adjustments::default().listen(&["127.0.0.1:8080"]);
    maitred::serve(|_req: &mut Request| Response::text("Hello, World!"), adj)
}
