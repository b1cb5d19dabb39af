//! A static-file application: the files under one directory, sent with
//! `sendfile(2)` ([`Body::File`]).
//!
//! * `GET` and `HEAD` only (others: 405 with `Allow: GET, HEAD`).
//! * `Content-Type` from the file's extension (common web types; others are
//!   `application/octet-stream`), `Content-Length`, `Last-Modified`, and
//!   `304 Not Modified` for an `If-Modified-Since` at or after the file's
//!   modification time (ignored when the request has `If-None-Match`, as
//!   RFC 9110 section 13.1.3 asks, or when the date is invalid or in the
//!   future).
//! * A directory is served as its `index.html`; a directory asked for
//!   without its trailing slash is redirected (301) to it, so that relative
//!   links work. There are no directory listings.
//!
//! What it refuses:
//!
//! * 400: a path with a dot segment (`.` or `..`, raw or percent-encoded),
//!   an encoded slash or backslash (`%2F`, `%5C`), a backslash, or a NUL.
//!   Clients remove dot segments before sending (RFC 3986 section 5.2.4), so
//!   such a request is broken or an attack either way.
//! * 403: a path that leads out of the root through a symbolic link, a file
//!   the server may not read, or something that is not a regular file (a
//!   FIFO, a device).
//! * 404: nothing there, or a directory without `index.html`.
//!
//! Paths are resolved with `canonicalize` and checked to be under the
//! (canonical) root; the file is then opened with `O_NOFOLLOW` and
//! `O_NONBLOCK` (so that a FIFO swapped in cannot block a worker) and
//! checked again through its descriptor. A symbolic link swapped into a
//! parent directory between the check and the open is the remaining race:
//! serve trees that untrusted users cannot write to.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use maitred::{build_http_date, parse_http_date};
use maitred::{App, Body, Request, Response};

/// Serves the files under a directory.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    root: PathBuf,
}

impl StaticFiles {
    /// Serves `root`, which must be a directory.
    pub fn new(root: impl AsRef<Path>) -> io::Result<StaticFiles> {
        let root = std::fs::canonicalize(root.as_ref())?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(StaticFiles { root })
    }

    fn respond(&self, req: &Request) -> Response {
        let method = req.method();
        if method != "GET" && method != "HEAD" {
            return Response::status_page(405).with_header("Allow", "GET, HEAD");
        }
        let raw = raw_path(req.uri());
        if has_encoded_separator(raw) {
            return refuse(400, "encoded slashes, backslashes and NULs are not allowed");
        }
        // PATH_INFO, percent-decoded by the server.
        let path = req.path_bytes();
        if path.contains(&0) || path.contains(&b'\\') {
            return refuse(400, "backslashes and NULs are not allowed");
        }
        let mut target = self.root.clone();
        for segment in path.split(|&b| b == b'/') {
            match segment {
                b"" => continue,
                b"." | b".." => return refuse(400, "dot segments are not allowed"),
                s => target.push(std::ffi::OsStr::from_bytes(s)),
            }
        }
        // The media type comes from the name asked for (a symbolic link's
        // own name, not its target's), or `index.html`.
        let mut named = target.clone();
        let mut file = match self.resolve(&target) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let meta = match std::fs::metadata(&file) {
            Ok(m) => m,
            Err(e) => return io_refusal(&e),
        };
        if meta.is_dir() {
            if !path.ends_with(b"/") {
                // `/dir` → `/dir/`, keeping the query.
                let (p, q) = match req.uri().split_once('?') {
                    Some((p, q)) => (p, Some(q)),
                    None => (req.uri(), None),
                };
                let location = match q {
                    Some(q) => format!("{p}/?{q}"),
                    None => format!("{p}/"),
                };
                return Response::status_page(301).with_header("Location", location);
            }
            named = file.join("index.html");
            file = match self.resolve(&named) {
                Ok(p) => p,
                Err(r) => return r,
            };
        }
        self.send(req, &file, &named)
    }

    /// The canonical form of `path`, if it is under the root.
    fn resolve(&self, path: &Path) -> Result<PathBuf, Response> {
        let canonical = std::fs::canonicalize(path).map_err(|e| io_refusal(&e))?;
        if !canonical.starts_with(&self.root) {
            return Err(refuse(403, "the path leads out of the served directory"));
        }
        Ok(canonical)
    }

    /// Sends the file at `path` (canonical, under the root), typed by the
    /// extension of `named`.
    fn send(&self, req: &Request, path: &Path, named: &Path) -> Response {
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return refuse(403, "the path leads out of the served directory")
            }
            Err(e) => return io_refusal(&e),
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => return io_refusal(&e),
        };
        if !meta.is_file() {
            return refuse(403, "not a regular file");
        }
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        let mut resp = match mtime {
            Some(m) if not_modified(req, m) => Response::new(304),
            _ => Response::new(200)
                .with_header("Content-Type", content_type(named))
                // O_NONBLOCK has no effect on a regular file's reads.
                .with_body(Body::File {
                    file,
                    offset: 0,
                    len: Some(meta.len()),
                }),
        };
        if let Some(m) = mtime {
            resp.add_header("Last-Modified", build_http_date(m));
        }
        resp.add_header("X-Content-Type-Options", "nosniff");
        resp
    }
}

impl App for StaticFiles {
    fn call(&self, req: &mut Request) -> Response {
        self.respond(req)
    }
}

/// Whether the request's `If-Modified-Since` says the client's copy (of a
/// file last modified at `mtime`) is current.
fn not_modified(req: &Request, mtime: u64) -> bool {
    if req.header("if-none-match").is_some() {
        return false;
    }
    let Some(since) = req
        .header_str("if-modified-since")
        .and_then(parse_http_date)
    else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    since <= now && mtime <= since
}

/// The request-target's path, raw: without the query, and without the
/// scheme and authority of an absolute-form target.
fn raw_path(uri: &str) -> &str {
    let uri = uri.split(['?', '#']).next().unwrap_or("");
    match uri.find("://") {
        Some(i) if !uri.starts_with('/') => {
            let rest = &uri[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        _ => uri,
    }
}

/// `%2F`, `%5C` or `%00` (any case) in the raw path.
fn has_encoded_separator(raw: &str) -> bool {
    raw.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1].to_ascii_uppercase(), w[2].to_ascii_uppercase()),
                (b'2', b'F') | (b'5', b'C') | (b'0', b'0')
            )
    })
}

/// A refusal with a short explanation.
fn refuse(status: u16, why: &str) -> Response {
    Response::new(status)
        .with_header("Content-Type", "text/plain; charset=utf-8")
        .with_body(format!(
            "{} {}: {why}\n",
            status,
            maitred::reason_phrase(status)
        ))
}

/// The response for a failed lookup: 403 when permission was denied, 404
/// otherwise (missing, not a directory, name too long, ...).
fn io_refusal(e: &io::Error) -> Response {
    if e.kind() == io::ErrorKind::PermissionDenied {
        refuse(403, "permission denied")
    } else {
        refuse(404, "no such file")
    }
}

/// The media type for a file name's extension.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" | "text" | "log" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/vnd.microsoft.icon",
        "bmp" => "image/bmp",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        _ => "application/octet-stream",
    }
}
