//! A real nginx in front of the server, configured the usual way
//! (`proxy_pass` to an upstream with `keepalive`, `proxy_http_version 1.1`,
//! `proxy_set_header Connection ""`, `X-Forwarded-For
//! $proxy_add_x_forwarded_for`, `X-Forwarded-Proto`, `X-Forwarded-Host`,
//! `Host`), over TCP and over a unix socket. It shows that:
//!
//! * the application sees the client's address, scheme and host, not
//!   nginx's;
//! * a client's own (spoofed) proxy headers are not believed, and those
//!   nginx does not overwrite are removed;
//! * chunked uploads (buffered by nginx, and streamed with
//!   `proxy_request_buffering off`) and large downloads (with and without
//!   a length) pass through intact;
//! * many requests reuse a few upstream keep-alive connections (counted on
//!   the server side: by the peer's port over TCP, by the accepted socket's
//!   inode over the unix socket).
//!
//! nginx (Debian's `nginx` package; `MAITRED_NGINX` may name another
//! binary) runs from a temporary directory with `-p <dir> -c <conf> -g
//! 'daemon off;'` on free loopback ports, in its own process group; each
//! test stops it by PID when it ends, however it ends (`common/external.rs`). Where nginx is not
//! installed or cannot run at all, each test says so on standard error and
//! passes.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::external::{self, free_port, skip, Daemon};
use common::*;
use maitred::{Adjustments, Body, Request, Response, ServerHandle};

// ---------------------------------------------------------------------------
// nginx

/// The nginx binary, if one is installed and runs.
fn nginx_binary() -> Result<PathBuf, String> {
    external::find_binary("nginx", "MAITRED_NGINX", "-v", "apt-get install nginx")
}

/// A running nginx; stopped (SIGTERM to its master, then SIGKILL to its
/// process group if it lingers) when dropped.
struct Nginx {
    daemon: Option<Daemon>,
    dir: tempfile::TempDir,
    /// The plain-HTTP listener.
    port: u16,
    /// A listener standing for a TLS-terminating one (`listen 443 ssl`):
    /// it sends `X-Forwarded-Proto: https`.
    https_port: u16,
}

/// Where nginx sends requests.
#[derive(Clone)]
enum Upstream {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// The address nginx's upstream connections come from over TCP, so that
/// the server can tell nginx (trusted) from the client (127.0.0.1).
const NGINX_SOURCE: &str = "127.0.0.3";

fn source_address_available() -> bool {
    can_bind(NGINX_SOURCE)
}

impl Nginx {
    fn config(&self, upstream: &Upstream) -> String {
        let dir = self.dir.path().display();
        let server = match upstream {
            Upstream::Tcp(a) => a.to_string(),
            Upstream::Unix(p) => format!("unix:{}", p.display()),
        };
        // As root, nginx's workers switch to `nobody` unless told otherwise.
        // SAFETY: geteuid has no preconditions and cannot fail.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root;"
        } else {
            ""
        };
        let port = self.port;
        let https_port = self.https_port;
        format!(
            r#"
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 64m;

    upstream app {{
        server {server};
        keepalive 16;
    }}

    server {{
        listen 127.0.0.1:{port};
        server_name _;
        location / {{
            include {dir}/proxy.conf;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
        location /unbuffered/ {{
            include {dir}/proxy.conf;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_request_buffering off;
        }}
    }}

    # Stands for a `listen 443 ssl;` server that terminates TLS.
    server {{
        listen 127.0.0.1:{https_port};
        server_name _;
        location / {{
            include {dir}/proxy.conf;
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}
}}
"#
        )
    }

    /// What every location does; `proxy_bind` (TCP upstreams only) makes
    /// nginx's connections come from NGINX_SOURCE.
    fn proxy_conf(upstream: &Upstream) -> String {
        let bind = match upstream {
            Upstream::Tcp(_) if source_address_available() => {
                format!("proxy_bind {NGINX_SOURCE};\n")
            }
            _ => String::new(),
        };
        format!(
            "proxy_pass http://app;\n\
             proxy_http_version 1.1;\n\
             proxy_set_header Connection \"\";\n\
             proxy_set_header Host $host;\n\
             proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
             proxy_set_header X-Forwarded-Host $http_host;\n\
             {bind}"
        )
    }

    /// Starts nginx in front of `upstream`; `Err` only when nginx is not
    /// there to run (a broken configuration fails the test).
    fn start(upstream: &Upstream) -> Result<Nginx, String> {
        let bin = nginx_binary()?;
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let mut n = Nginx {
                daemon: None,
                dir: tempfile::tempdir().expect("temp dir"),
                port: free_port(),
                https_port: free_port(),
            };
            let conf = n.dir.path().join("nginx.conf");
            std::fs::write(&conf, n.config(upstream)).expect("write nginx.conf");
            std::fs::write(n.dir.path().join("proxy.conf"), Nginx::proxy_conf(upstream))
                .expect("write proxy.conf");
            let log = n.dir.path().join("error.log");
            let mut cmd = Command::new(&bin);
            cmd.arg("-p")
                .arg(n.dir.path())
                .arg("-c")
                .arg(&conf)
                .arg("-e")
                .arg(&log)
                .arg("-g")
                .arg("daemon off;");
            let daemon = n.daemon.insert(Daemon::spawn("nginx", cmd, &log, false));
            match daemon.wait_ready(&[n.port, n.https_port]) {
                Ok(()) => return Ok(n),
                Err(log) => {
                    last_log = log;
                    if !last_log.contains("Address already in use") {
                        break;
                    }
                }
            }
        }
        panic!("nginx did not start:\n{last_log}");
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn https_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.https_port))
    }
}

// ---------------------------------------------------------------------------
// The server and its application

/// Per-connection identities seen by `/conn`: the peer's port (TCP) or the
/// accepted socket's inode (unix).
#[derive(Default)]
struct Seen {
    connections: HashSet<u64>,
    requests: usize,
}

/// The inodes of the accepted (connected) unix sockets bound to `path`,
/// from `/proc/net/unix`.
fn unix_connections(path: &Path) -> HashSet<u64> {
    let path = path.to_string_lossy();
    std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode Path
            (f.len() >= 8 && f[7] == path && f[5] == "03")
                .then(|| f[6].parse().ok())
                .flatten()
        })
        .collect()
}

/// Byte `i` of the download pattern (251 is prime, so shifted or dropped
/// blocks show).
fn pattern(i: u64) -> u8 {
    ((i * 31 + i / 65_536) % 251) as u8
}

/// The download body: `len` pattern bytes.
struct PatternReader {
    pos: u64,
    len: u64,
}

impl Read for PatternReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.len - self.pos) as usize;
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern(self.pos + k as u64);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

fn app(seen: Arc<Mutex<Seen>>, unix_path: Option<PathBuf>) -> impl maitred::App {
    move |req: &mut Request| {
        let path = req.path().into_owned();
        if path.ends_with("/upload") {
            let body = req.body().to_vec().unwrap_or_default();
            let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
            return Response::text(format!("{} {sum}", body.len()));
        }
        if let Some(n) = path.strip_prefix("/download/") {
            let (n, chunked) = match n.strip_suffix("/chunked") {
                Some(n) => (n, true),
                None => (n, false),
            };
            let len: u64 = n.parse().unwrap_or(0);
            let reader = PatternReader { pos: 0, len };
            return Response::new(200).with_body(Body::from_reader(
                reader,
                if chunked { None } else { Some(len) },
            ));
        }
        if path == "/conn" {
            let mut s = seen.lock().unwrap();
            s.requests += 1;
            match &unix_path {
                Some(p) => {
                    let now = unix_connections(p);
                    s.connections.extend(now);
                }
                None => {
                    if let Some(port) = req.remote_port() {
                        s.connections.insert(u64::from(port));
                    }
                }
            }
            return Response::text("ok");
        }
        // Anything else: what the application sees.
        let mut out = format!(
            "remote_addr={}\nscheme={}\nserver_name={}\nserver_port={}\n",
            req.remote_addr(),
            req.url_scheme(),
            req.server_name(),
            req.server_port().map(|p| p.to_string()).unwrap_or_default()
        );
        for (n, v) in req.headers() {
            out.push_str(&format!(
                "header.{}={}\n",
                n.to_ascii_lowercase(),
                String::from_utf8_lossy(v)
            ));
        }
        Response::text(out)
    }
}

/// The server, on TCP or a unix socket, stopped when dropped.
struct Backend {
    upstream: Upstream,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<Result<(), maitred::Error>>>,
    seen: Arc<Mutex<Seen>>,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    fn start(unix: bool) -> Backend {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let headers = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"];
        let (adj, dir, unix_path) = if unix {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("app.sock");
            let adj = Adjustments::default()
                .unix_socket(path.to_str().expect("utf-8 path"))
                // nginx's workers run as root here, or as this user.
                .unix_socket_perms(0o600)
                .trusted_proxy("localhost")
                .trusted_proxy_headers(&headers);
            (adj, Some(dir), Some(path))
        } else {
            let source = if source_address_available() {
                NGINX_SOURCE
            } else {
                "127.0.0.1"
            };
            let adj = adj(false)
                .trusted_proxy(source)
                .trusted_proxy_headers(&headers);
            (adj, None, None)
        };
        let server = maitred::create_server(app(Arc::clone(&seen), unix_path.clone()), adj)
            .expect("create_server");
        let upstream = match &unix_path {
            Some(p) => Upstream::Unix(p.clone()),
            None => Upstream::Tcp(server.local_addr().expect("a TCP listener")),
        };
        let handle = server.handle();
        let thread = std::thread::spawn(move || server.run());
        Backend {
            upstream,
            handle,
            thread: Some(thread),
            seen,
            _dir: dir,
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The server behind nginx, or `None` (after saying why) when nginx
/// cannot run here.
fn setup(unix: bool) -> Option<(Backend, Nginx)> {
    let backend = Backend::start(unix);
    match Nginx::start(&backend.upstream) {
        Ok(n) => Some((backend, n)),
        Err(why) => {
            skip(&why);
            None
        }
    }
}

fn fields(r: &Resp) -> std::collections::HashMap<String, String> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------
// A recording relay between nginx and the server, to see the framing nginx
// uses upstream (the application cannot: the server hands it every body
// with a Content-Length, as waitress does).

/// Copies connections from a loopback port to the server, recording what
/// nginx sends on each (a few MiB in these tests).
struct Relay {
    addr: SocketAddr,
    recorded: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A stream to the server.
enum ServerConn {
    Tcp(TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl ServerConn {
    fn connect(to: &Upstream) -> std::io::Result<ServerConn> {
        Ok(match to {
            Upstream::Tcp(a) => ServerConn::Tcp(TcpStream::connect(a)?),
            Upstream::Unix(p) => ServerConn::Unix(std::os::unix::net::UnixStream::connect(p)?),
        })
    }
    fn try_clone(&self) -> std::io::Result<ServerConn> {
        Ok(match self {
            ServerConn::Tcp(s) => ServerConn::Tcp(s.try_clone()?),
            ServerConn::Unix(s) => ServerConn::Unix(s.try_clone()?),
        })
    }
    fn shutdown_write(&self) {
        let _ = match self {
            ServerConn::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            ServerConn::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }
}

impl Read for ServerConn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ServerConn::Tcp(s) => s.read(buf),
            ServerConn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for ServerConn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            ServerConn::Tcp(s) => s.write(buf),
            ServerConn::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Relay {
    fn start(to: Upstream) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay listener");
        let addr = listener.local_addr().expect("relay address");
        let recorded: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (rec, stop2) = (Arc::clone(&recorded), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let (Ok(from_nginx), Ok(to_server)) = (conn, ServerConn::connect(&to)) else {
                    continue;
                };
                let slot = {
                    let mut r = rec.lock().unwrap();
                    r.push(Vec::new());
                    r.len() - 1
                };
                let (Ok(mut nginx_r), Ok(mut server_r)) =
                    (from_nginx.try_clone(), to_server.try_clone())
                else {
                    continue;
                };
                let (mut nginx_w, mut server_w) = (from_nginx, to_server);
                let rec = Arc::clone(&rec);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = nginx_r.read(&mut buf) {
                        if n == 0 || server_w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        rec.lock().unwrap()[slot].extend_from_slice(&buf[..n]);
                    }
                    server_w.shutdown_write();
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_r, &mut nginx_w);
                    let _ = nginx_w.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Relay {
            addr,
            recorded,
            stop,
            thread: Some(thread),
        }
    }

    /// The request heads nginx sent for `path`.
    fn heads_for(&self, path: &str) -> Vec<String> {
        let start = format!("POST {path} HTTP/1.1\r\n");
        let mut heads = Vec::new();
        for conn in self.recorded.lock().unwrap().iter() {
            let text = String::from_utf8_lossy(conn);
            for (i, _) in text.match_indices(&start) {
                let head = &text[i..];
                let end = head.find("\r\n\r\n").map_or(head.len(), |e| e + 4);
                heads.push(head[..end].to_string());
            }
        }
        heads
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------
// What is shown, over TCP and over a unix socket

fn client_address_scheme_and_host(unix: bool) {
    let Some((_backend, nginx)) = setup(unix) else {
        return;
    };
    // The client, on 127.0.0.1, asks for app.example:8443.
    let mut c = Client::connect(nginx.addr());
    let f = fields(&c.roundtrip(b"GET /whoami HTTP/1.1\r\nHost: app.example:8443\r\n\r\n"));
    assert_eq!(f["remote_addr"], "127.0.0.1");
    assert_eq!(f["scheme"], "http");
    assert_eq!(f["server_name"], "app.example");
    assert_eq!(f["server_port"], "8443");
    assert_eq!(f["header.host"], "app.example:8443");
    assert_eq!(f["header.x-forwarded-for"], "127.0.0.1");
    // No port in Host: the scheme's.
    let f = fields(&c.roundtrip(b"GET /whoami HTTP/1.1\r\nHost: app.example\r\n\r\n"));
    assert_eq!(
        (f["server_name"].as_str(), f["server_port"].as_str()),
        ("app.example", "80")
    );
    assert_eq!(f["header.host"], "app.example");
    // Through the listener that stands for TLS termination.
    let mut c = Client::connect(nginx.https_addr());
    let f = fields(&c.roundtrip(b"GET /whoami HTTP/1.1\r\nHost: secure.example\r\n\r\n"));
    assert_eq!(f["scheme"], "https");
    assert_eq!(f["server_name"], "secure.example");
    assert_eq!(f["server_port"], "443");
    assert_eq!(f["header.host"], "secure.example");
    assert_eq!(f["remote_addr"], "127.0.0.1");
}

fn spoofed_headers_are_not_trusted(unix: bool) {
    let Some((backend, nginx)) = setup(unix) else {
        return;
    };
    let mut c = Client::connect(nginx.addr());
    let f = fields(&c.roundtrip(
        b"GET /whoami HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Port: 1\r\nX-Forwarded-By: me\r\nForwarded: for=6.6.6.6;proto=https\r\n\r\n",
    ));
    // nginx appended the real client to the client's list; one hop is
    // trusted, so the client's own claim is dropped.
    assert_eq!(f["remote_addr"], "127.0.0.1");
    assert_eq!(f["header.x-forwarded-for"], "127.0.0.1");
    // nginx overwrote these...
    assert_eq!(f["scheme"], "http");
    assert_eq!(f["server_name"], "app.example");
    // ...and passed these on: the server removed them.
    for h in [
        "header.x-forwarded-port",
        "header.x-forwarded-by",
        "header.forwarded",
    ] {
        assert_eq!(f.get(h), None, "{h} reached the application");
    }
    // Straight to the server, past nginx, from an untrusted address.
    if let Upstream::Tcp(addr) = &backend.upstream {
        if source_address_available() {
            let f = fields(&request(
                *addr,
                b"GET /whoami HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n\r\n",
            ));
            assert_eq!(f["remote_addr"], "127.0.0.1");
            assert_eq!(f["scheme"], "http");
            assert_eq!(f.get("header.x-forwarded-for"), None);
        }
    }
}

fn chunked_uploads_and_large_downloads(unix: bool) {
    let backend = Backend::start(unix);
    // nginx -> relay -> server, to see what nginx sends.
    let relay = Relay::start(backend.upstream.clone());
    let nginx = match Nginx::start(&Upstream::Tcp(relay.addr)) {
        Ok(n) => n,
        Err(why) => return skip(&why),
    };
    // A 3 MiB chunked upload, odd-sized chunks.
    let data: Vec<u8> = (0..3 * 1024 * 1024u64).map(pattern).collect();
    let sum: u64 = data.iter().map(|&b| u64::from(b)).sum();
    let mut chunked = Vec::new();
    for part in data.chunks(7919) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let mut c = Client::connect(nginx.addr());
    // nginx buffers it and sends a Content-Length; with request buffering
    // off it streams it on, chunked. The body follows nginx's
    // `100 Continue`, so nginx has started the upstream request before
    // any of it arrives (otherwise it may have read it all and send a
    // length anyway).
    for (path, framing) in [
        ("/upload", "Content-Length: 3145728\r\n"),
        ("/unbuffered/upload", "Transfer-Encoding: chunked\r\n"),
    ] {
        c.send(
            format!(
                "POST {path} HTTP/1.1\r\nHost: app.example\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            .as_bytes(),
        );
        let interim = c.read_head().expect("100 Continue");
        assert_eq!(interim.status, 100);
        c.send(&chunked);
        let r = c.read_response().expect("response");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.text(), format!("{} {sum}", data.len()), "{path}");
        let heads = relay.heads_for(path);
        assert_eq!(heads.len(), 1, "{heads:?}");
        assert!(heads[0].contains(framing), "{path}: {}", heads[0]);
    }
    // 32 MiB down, with a length and chunked, on the same connection.
    const BIG: u64 = 32 * 1024 * 1024;
    for suffix in ["", "/chunked"] {
        let r = c.roundtrip(
            format!("GET /download/{BIG}{suffix} HTTP/1.1\r\nHost: app.example\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len() as u64, BIG, "{suffix}");
        let bad = r
            .body
            .iter()
            .enumerate()
            .position(|(i, &b)| b != pattern(i as u64));
        assert_eq!(bad, None, "first wrong byte of /download{suffix}");
    }
}

fn upstream_connections_are_reused(unix: bool) {
    let Some((backend, nginx)) = setup(unix) else {
        return;
    };
    if unix && !Path::new("/proc/net/unix").exists() {
        skip("counting unix-socket connections needs /proc/net/unix");
        return;
    }
    // One client after another, each on its own connection to nginx:
    // nginx keeps one upstream connection and reuses it.
    for _ in 0..50 {
        let r = request(
            nginx.addr(),
            b"GET /conn HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.text(), "ok");
    }
    {
        let s = backend.seen.lock().unwrap();
        assert_eq!(s.requests, 50);
        assert_eq!(
            s.connections.len(),
            1,
            "upstream connections for 50 sequential requests"
        );
    }
    // Eight clients at once, 25 keep-alive requests each: at most eight
    // upstream connections (the pool holds 16, so none is closed).
    let addr = nginx.addr();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for _ in 0..25 {
                    assert_eq!(
                        c.roundtrip(b"GET /conn HTTP/1.1\r\nHost: a\r\n\r\n").text(),
                        "ok"
                    );
                }
            })
        })
        .collect();
    for t in clients {
        t.join().expect("client thread");
    }
    let s = backend.seen.lock().unwrap();
    assert_eq!(s.requests, 250);
    assert!(
        (1..=8).contains(&s.connections.len()),
        "{} upstream connections for 250 requests",
        s.connections.len()
    );
    let _ = std::io::stderr().write_all(
        format!(
            "{} upstream: 250 requests over {} connection(s)\n",
            if unix { "unix" } else { "tcp" },
            s.connections.len()
        )
        .as_bytes(),
    );
}

#[test]
fn tcp_client_address_scheme_and_host() {
    client_address_scheme_and_host(false);
}

#[test]
fn tcp_spoofed_headers_are_not_trusted() {
    spoofed_headers_are_not_trusted(false);
}

#[test]
fn tcp_chunked_uploads_and_large_downloads() {
    chunked_uploads_and_large_downloads(false);
}

#[test]
fn tcp_upstream_connections_are_reused() {
    upstream_connections_are_reused(false);
}

#[test]
fn unix_client_address_scheme_and_host() {
    client_address_scheme_and_host(true);
}

#[test]
fn unix_spoofed_headers_are_not_trusted() {
    spoofed_headers_are_not_trusted(true);
}

#[test]
fn unix_chunked_uploads_and_large_downloads() {
    chunked_uploads_and_large_downloads(true);
}

#[test]
fn unix_upstream_connections_are_reused() {
    upstream_connections_are_reused(true);
}
