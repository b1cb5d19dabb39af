//! The benchmark app on hyper 1.x: tokio's multi-thread runtime (one worker
//! thread per core, tokio's default), HTTP/1 only, keep-alive on.
//!
//! `hyper_server [--pipeline-flush] ADDR [FILE]`
//!
//! Routes, the same as maitred's `serve` example plus the bench routes:
//! `GET /` → `Hello, World!`; `POST /echo` → the body back (collected, sent
//! with Content-Length); `POST /upload` → the body read and counted, the
//! count back; `GET /file` → FILE, read in 256 KiB chunks with
//! `tokio::fs::File`, sent with Content-Length; `GET /events` →
//! server-sent events, as maitred's `sse` example sends them: one publisher
//! task sends every subscriber an event every 100 ms (`id: <n>`,
//! `data: <n>`, `n` from 1) through a `tokio::sync::broadcast` channel, and
//! each subscriber's body yields them as they come (chunked). A subscriber
//! that falls [`SSE_BACKLOG`] events behind loses its connection, as the
//! `sse` example drops one that falls a high watermark behind. (The
//! example's 15 s keep-alive comment and `Last-Event-ID` replay are left
//! out: the benchmark does not use them.)
//!
//! `--pipeline-flush` sets hyper's `pipeline_flush(true)` (default off, as in
//! hyper): hyper then gathers the responses to requests that arrived
//! pipelined into one write, as its TechEmpower entry does. It is only for
//! pipelined scenarios: with it on, hyper 1.x also stops applying
//! backpressure to response bodies (`Buffered::can_buffer` is always true),
//! so a large body is read into memory as fast as it can be produced: a
//! 100 MiB file download peaked at 100-300 MiB RSS that way.
//!
//! TCP_NODELAY is set on every connection, as waitress and maitred do.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::ReusableBoxFuture;

/// Size of each read of the file route.
const CHUNK: usize = 256 * 1024;

/// How often the publisher sends an event.
const SSE_INTERVAL: Duration = Duration::from_millis(100);
/// Events the broadcast channel keeps for a subscriber that is behind.
const SSE_BACKLOG: usize = 128;

type ResBody = Either<Full<Bytes>, Either<FileBody, EventsBody>>;

/// One event's bytes on the wire.
fn frame(id: u64) -> Bytes {
    Bytes::from(format!("id: {id}\ndata: {id}\n\n"))
}

/// The publisher: an event every `SSE_INTERVAL` to every subscriber, on a
/// fixed schedule (a late tick is sent at once; the next ones stay on time).
async fn publisher(tx: broadcast::Sender<Bytes>) {
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + SSE_INTERVAL, SSE_INTERVAL);
    let mut id: u64 = 0;
    loop {
        tick.tick().await;
        id += 1;
        // An error only says that nobody subscribes now.
        let _ = tx.send(frame(id));
    }
}

type Recv = (
    Result<Bytes, broadcast::error::RecvError>,
    broadcast::Receiver<Bytes>,
);

async fn recv(mut rx: broadcast::Receiver<Bytes>) -> Recv {
    let r = rx.recv().await;
    (r, rx)
}

/// A subscriber's body: the broadcast events, one frame each. This is
/// `StreamBody::new(BroadcastStream::new(rx))` from tokio-stream, written
/// out (the same reusable boxed `recv` future) to spare a dependency.
struct EventsBody {
    next: ReusableBoxFuture<'static, Recv>,
}

impl EventsBody {
    fn new(rx: broadcast::Receiver<Bytes>) -> Self {
        EventsBody {
            next: ReusableBoxFuture::new(recv(rx)),
        }
    }
}

impl Body for EventsBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let (r, rx) = match self.next.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(v) => v,
        };
        self.next.set(recv(rx));
        match r {
            Ok(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            Err(broadcast::error::RecvError::Closed) => Poll::Ready(None),
            Err(broadcast::error::RecvError::Lagged(n)) => Poll::Ready(Some(Err(
                io::Error::other(format!("subscriber {n} events behind: dropped")),
            ))),
        }
    }
}

/// A response body that reads a file in `CHUNK`-sized pieces.
struct FileBody {
    file: tokio::fs::File,
    buf: BytesMut,
    remaining: u64,
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        // A fresh buffer once this one is (nearly) used up; the chunks
        // already handed to hyper keep theirs alive until written.
        if this.buf.capacity() < CHUNK / 4 {
            this.buf = BytesMut::with_capacity(CHUNK);
        }
        match tokio_util::io::poll_read_buf(Pin::new(&mut this.file), cx, &mut this.buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(0)) => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file is shorter than its length",
            )))),
            Poll::Ready(Ok(n)) => {
                this.remaining = this.remaining.saturating_sub(n as u64);
                Poll::Ready(Some(Ok(Frame::data(this.buf.split().freeze()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

fn full(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<ResBody> {
    let mut res = Response::new(Either::Left(Full::new(body.into())));
    *res.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        res.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    res
}

async fn app(
    req: Request<Incoming>,
    file: Arc<Option<PathBuf>>,
    events: broadcast::Sender<Bytes>,
) -> Result<Response<ResBody>, Infallible> {
    let res = match (req.method(), req.uri().path()) {
        (_, "/") => full(
            StatusCode::OK,
            "text/plain",
            Bytes::from_static(b"Hello, World!"),
        ),
        (&Method::POST, "/echo") | (&Method::PUT, "/echo") => match req.into_body().collect().await
        {
            Ok(body) => full(StatusCode::OK, "application/octet-stream", body.to_bytes()),
            Err(e) => full(
                StatusCode::BAD_REQUEST,
                "text/plain",
                format!("could not read the body: {e}\n"),
            ),
        },
        (&Method::POST, "/upload") | (&Method::PUT, "/upload") => {
            let mut body = req.into_body();
            let mut count: u64 = 0;
            loop {
                match body.frame().await {
                    None => break full(StatusCode::OK, "text/plain", count.to_string()),
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            count += data.len() as u64;
                        }
                    }
                    Some(Err(e)) => {
                        break full(
                            StatusCode::BAD_REQUEST,
                            "text/plain",
                            format!("could not read the body: {e}\n"),
                        )
                    }
                }
            }
        }
        (_, "/echo") | (_, "/upload") => full(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "405 Method Not Allowed\n",
        ),
        (_, "/file") => match file.as_ref() {
            None => full(StatusCode::NOT_FOUND, "text/plain", "no file was given\n"),
            Some(path) => match open(path).await {
                Ok((f, len)) => {
                    let mut res = Response::new(Either::Right(Either::Left(FileBody {
                        file: f,
                        buf: BytesMut::with_capacity(CHUNK),
                        remaining: len,
                    })));
                    if let Ok(v) = "application/octet-stream".parse() {
                        res.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
                    }
                    res
                }
                Err(e) => full(
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    format!("{}: {e}\n", path.display()),
                ),
            },
        },
        (&Method::GET, "/events") => {
            let mut res = Response::new(Either::Right(Either::Right(EventsBody::new(
                events.subscribe(),
            ))));
            let h = res.headers_mut();
            h.insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/event-stream"),
            );
            h.insert(
                hyper::header::CACHE_CONTROL,
                hyper::header::HeaderValue::from_static("no-cache"),
            );
            res
        }
        _ => full(StatusCode::NOT_FOUND, "text/plain", "404 Not Found\n"),
    };
    Ok(res)
}

async fn open(path: &PathBuf) -> io::Result<(tokio::fs::File, u64)> {
    let f = tokio::fs::File::open(path).await?;
    let len = f.metadata().await?.len();
    Ok((f, len))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let pipeline_flush = args.next_if(|a| a == "--pipeline-flush").is_some();
    let addr: SocketAddr = match args.next().map(|a| a.parse()) {
        Some(Ok(a)) => a,
        Some(Err(e)) => {
            eprintln!("hyper_server: bad listen address: {e} (usage: hyper_server [--pipeline-flush] ADDR [FILE])");
            std::process::exit(2);
        }
        None => {
            eprintln!("usage: hyper_server [--pipeline-flush] ADDR [FILE]");
            std::process::exit(2);
        }
    };
    let file = Arc::new(args.next().map(PathBuf::from));
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hyper_server: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let (events, _) = broadcast::channel(SSE_BACKLOG);
    tokio::spawn(publisher(events.clone()));
    eprintln!("hyper_server: serving on http://{addr} (pipeline_flush {pipeline_flush})");
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of fds or a connection reset before accept: keep serving.
                eprintln!("hyper_server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let file = file.clone();
        let events = events.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| app(req, file.clone(), events.clone()));
            // Errors here are clients going away mid-request (wrk stops
            // that way); nothing to report.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .pipeline_flush(pipeline_flush)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
