//! An application written against the `http` crate's types, served by
//! maitred (feature `http`):
//!
//! ```sh
//! cargo run --release --example http_app --features http -- --port=8080
//! curl http://127.0.0.1:8080/                              # hello
//! curl --data-binary @Cargo.toml http://127.0.0.1:8080/echo  # the body back
//! curl -i http://127.0.0.1:8080/info                       # the request as http sees it
//! ```
//!
//! Every option of the `serve` example's command line works here too
//! (`--help`).

use std::io::Read;

use http::{header, Method, Request, Response, StatusCode};
use maitred::http_interop::ConnectionInfo;
use maitred::{Body, HttpApp, RequestBody};

/// The example's application (also served by `tests/http_interop.rs`).
pub fn handler(req: Request<RequestBody>) -> Response<Body> {
    // HEAD is answered as GET: the server sends the head only.
    let method = if req.method() == Method::HEAD {
        &Method::GET
    } else {
        req.method()
    };
    match (method, req.uri().path()) {
        (&Method::GET, "/") => text(StatusCode::OK, "Hello from an http::Request handler!\n"),
        (&Method::POST, "/echo") => echo(req),
        (&Method::GET, "/info") => info(&req),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: impl Into<Body>) -> Response<Body> {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The body back, with the request's content type.
fn echo(req: Request<RequestBody>) -> Response<Body> {
    let (parts, mut body) = req.into_parts();
    let mut bytes = Vec::new();
    if let Err(e) = body.read_to_end(&mut bytes) {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not read the body: {e}\n"),
        );
    }
    let mut resp = Response::new(Body::from(bytes));
    if let Some(ctype) = parts.headers.get(header::CONTENT_TYPE) {
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, ctype.clone());
    }
    resp
}

/// What the handler received: method, URI, version, headers and the
/// server's extras.
fn info(req: &Request<RequestBody>) -> Response<Body> {
    let mut out = format!("{} {} {:?}\n", req.method(), req.uri(), req.version());
    for (name, value) in req.headers() {
        out.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    if let Some(c) = req.extensions().get::<ConnectionInfo>() {
        out.push_str(&format!(
            "client {} port {:?}, server {} port {:?}, scheme {}\n",
            c.remote_addr, c.remote_port, c.server_name, c.server_port, c.url_scheme
        ));
    }
    text(StatusCode::OK, out)
}

fn main() {
    let code = maitred::runner::run_cli(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        HttpApp::new(handler),
    );
    std::process::exit(code);
}
