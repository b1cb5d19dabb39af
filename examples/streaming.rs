//! Streams a response as it is produced: ten lines, one every 200 ms, sent
//! chunked. `cargo run --example streaming`, then
//! `curl -N http://127.0.0.1:8080/`.

use std::time::Duration;

use maitred::{Adjustments, Body, Request, Response};

fn main() -> Result<(), maitred::Error> {
    let app = |_req: &mut Request| {
        Response::new(200)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(Body::from_writer(|out| {
                for i in 1..=10 {
                    writeln!(out, "line {i}")?;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Ok(())
            }))
    };
    maitred::serve(app, Adjustments::default().listen(&["127.0.0.1:8080"]))
}
