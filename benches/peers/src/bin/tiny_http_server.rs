//! The benchmark app on tiny_http 0.12: a pool of 4 threads looping on
//! `Server::recv` (tiny_http itself runs one more thread per connection).
//!
//! `tiny_http_server ADDR [FILE]`
//!
//! Routes, the same as maitred's `serve` example plus the bench routes:
//! `GET /` → `Hello, World!`; `POST /echo` → the body back; `POST /upload`
//! → the body read and counted, the count back; `GET /file` → FILE with
//! `Response::from_file`. The chunked threshold is raised so that the file
//! goes out with Content-Length, as it does from the other servers
//! (tiny_http would otherwise send any body of 32 KiB or more chunked).
//!
//! The listening socket has TCP_NODELAY set, which Linux passes on to every
//! accepted connection, as waitress, maitred and the hyper peer have it:
//! without it, tiny_http's response head and body go out as two writes and
//! Nagle's algorithm holds the second until the client's delayed ACK, 40 ms
//! per request for the 1 KiB echo.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tiny_http::{Header, Method, Request, Response, Server};

/// Worker threads calling `recv`, as many as maitred's and waitress's
/// default `threads`.
const THREADS: usize = 4;

/// `resp` with a `Content-Type` header.
fn typed<R: Read>(resp: Response<R>, content_type: &str) -> Response<R> {
    match Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
        Ok(h) => resp.with_header(h),
        Err(()) => resp,
    }
}

fn handle(mut rq: Request, file: &Option<PathBuf>) {
    let path = rq.url().split('?').next().unwrap_or("").to_owned();
    let method = rq.method().clone();
    let text = |status: u16, body: String| {
        typed(
            Response::from_data(body.into_bytes()).with_status_code(status),
            "text/plain",
        )
    };
    let result = match (&method, path.as_str()) {
        (_, "/") => rq.respond(typed(
            Response::from_data(&b"Hello, World!"[..]),
            "text/plain",
        )),
        (Method::Post, "/echo") | (Method::Put, "/echo") => {
            let mut body = Vec::with_capacity(rq.body_length().unwrap_or(0));
            match rq.as_reader().read_to_end(&mut body) {
                Ok(_) => rq.respond(typed(Response::from_data(body), "application/octet-stream")),
                Err(e) => rq.respond(text(400, format!("could not read the body: {e}\n"))),
            }
        }
        (Method::Post, "/upload") | (Method::Put, "/upload") => {
            match io::copy(rq.as_reader(), &mut io::sink()) {
                Ok(n) => rq.respond(text(200, n.to_string())),
                Err(e) => rq.respond(text(400, format!("could not read the body: {e}\n"))),
            }
        }
        (_, "/echo") | (_, "/upload") => rq.respond(text(405, "405 Method Not Allowed\n".into())),
        (_, "/file") => match file.as_ref().map(std::fs::File::open) {
            Some(Ok(f)) => rq.respond(
                typed(Response::from_file(f), "application/octet-stream")
                    .with_chunked_threshold(usize::MAX),
            ),
            Some(Err(e)) => rq.respond(text(404, format!("{e}\n"))),
            None => rq.respond(text(404, "no file was given\n".into())),
        },
        _ => rq.respond(text(404, "404 Not Found\n".into())),
    };
    // An error here is the client going away; nothing to report.
    let _ = result;
}

/// A listener like `std::net::TcpListener::bind`'s (SO_REUSEADDR, backlog
/// 128), with TCP_NODELAY.
fn listen(addr: &str) -> Result<std::net::TcpListener, Box<dyn std::error::Error + Send + Sync>> {
    let addr: std::net::SocketAddr = addr.parse()?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(addr) = args.next() else {
        eprintln!("usage: tiny_http_server ADDR [FILE]");
        std::process::exit(2);
    };
    let file = Arc::new(args.next().map(PathBuf::from));
    let server = match listen(&addr).and_then(|l| Server::from_listener(l, None)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("tiny_http_server: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("tiny_http_server: serving on http://{addr}");
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let server = server.clone();
            let file = file.clone();
            std::thread::spawn(move || loop {
                match server.recv() {
                    Ok(rq) => handle(rq, &file),
                    Err(e) => {
                        eprintln!("tiny_http_server: recv: {e}");
                        return;
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    std::process::exit(1);
}
