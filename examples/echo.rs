//! Echoes the request body back, with the request's method and path in
//! headers.
//!
//! `cargo run --example echo`, then
//! `curl --data-binary @Cargo.toml http://127.0.0.1:8080/anything`.

use maitred::{Adjustments, Request, Response};

fn echo(req: &mut Request) -> Response {
    let body = match req.body().to_vec() {
        Ok(b) => b,
        Err(e) => return Response::new(500).with_body(format!("could not read the body: {e}")),
    };
    let ctype = req
        .content_type()
        .unwrap_or("application/octet-stream")
        .to_string();
    Response::new(200)
        .with_header("Content-Type", ctype)
        .with_header("X-Method", req.method().to_string())
        .with_header("X-Path", req.path().into_owned())
        .with_body(body)
}

fn main() -> Result<(), maitred::Error> {
    maitred::serve(echo, Adjustments::default().listen(&["127.0.0.1:8080"]))
}
