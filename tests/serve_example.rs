//! The `serve` example: its command line (run for real in a child process,
//! stopped with SIGTERM) and its demo applications over loopback, above
//! all the static-file one (types, HEAD, `If-Modified-Since`, index files,
//! and every way out of the root it must refuse).

mod common;

#[path = "../examples/apps/mod.rs"]
#[allow(dead_code)]
mod apps;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use apps::static_files::StaticFiles;
use common::*;
use maitred::build_http_date;
use maitred::{App, Body, Request};

fn get(addr: SocketAddr, target: &str) -> Resp {
    request(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
}

/// A served tree:
///
/// ```text
/// root/
///   a.txt  page.html  style.css  app.js  data.json  image.png  blob.bin
///   big.bin (3 MiB)
///   sub/index.html   empty/   link-in -> a.txt   link-out -> ../secret.txt
///   escape -> ..     (a directory link out)
/// secret.txt
/// ```
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    for (name, body) in [
        ("a.txt", "text\n"),
        ("page.html", "<p>page</p>\n"),
        ("style.css", "p {}\n"),
        ("app.js", "1;\n"),
        ("data.json", "{}\n"),
        ("image.png", "\u{89}PNG"),
        ("blob.bin", "blob"),
        ("sub/index.html", "<p>index</p>\n"),
    ] {
        std::fs::write(root.join(name), body).unwrap();
    }
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(root.join("big.bin"), big).unwrap();
    std::fs::write(dir.path().join("secret.txt"), "secret\n").unwrap();
    std::os::unix::fs::symlink("a.txt", root.join("link-in")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", root.join("link-out")).unwrap();
    std::os::unix::fs::symlink("..", root.join("escape")).unwrap();
    dir
}

fn serve_tree(dir: &Path, poll: bool) -> TestServer {
    start(StaticFiles::new(dir.join("root")).unwrap(), adj(poll))
}

backend_tests! {
    fn static_files_have_their_types_lengths_and_dates(poll: bool) {
        let dir = tree();
        let s = serve_tree(dir.path(), poll);
        for (path, ctype, body) in [
            ("/a.txt", "text/plain; charset=utf-8", &b"text\n"[..]),
            ("/page.html", "text/html; charset=utf-8", b"<p>page</p>\n"),
            ("/style.css", "text/css; charset=utf-8", b"p {}\n"),
            ("/app.js", "text/javascript; charset=utf-8", b"1;\n"),
            ("/data.json", "application/json", b"{}\n"),
            ("/image.png", "image/png", "\u{89}PNG".as_bytes()),
            ("/blob.bin", "application/octet-stream", b"blob"),
            ("/a.txt?x=1", "text/plain; charset=utf-8", b"text\n"),
            ("/link-in", "application/octet-stream", b"text\n"),
        ] {
            let r = get(s.addr, path);
            assert_eq!(r.status, 200, "{path}");
            assert_eq!(r.header("content-type"), Some(ctype), "{path}");
            assert_eq!(r.header("content-length"), Some(body.len().to_string().as_str()), "{path}");
            assert_eq!(r.body, body, "{path}");
        }
        let mtime = std::fs::metadata(dir.path().join("root/a.txt"))
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let r = get(s.addr, "/a.txt");
        assert_eq!(r.header("last-modified"), Some(build_http_date(mtime).as_str()));
        // A large file arrives intact (sendfile).
        let r = get(s.addr, "/big.bin");
        assert_eq!(r.body.len(), 3 * 1024 * 1024);
        assert!(r.body.iter().enumerate().all(|(i, &b)| b == (i % 253) as u8));
        // The absolute form of the target.
        let r = get(s.addr, "http://x/a.txt");
        assert_eq!(r.body, b"text\n");
    }

    fn static_head_and_if_modified_since(poll: bool) {
        let dir = tree();
        let s = serve_tree(dir.path(), poll);
        let mut c = Client::connect(s.addr);
        c.send(b"HEAD /page.html HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.read_response_to(true).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some("12"));
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        // Nothing follows the head: the next response comes right after it.
        let r = c.roundtrip(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.body, b"text\n");
        let last_modified = r.header("last-modified").unwrap().to_string();

        let conditional = |ims: &str, extra: &str| {
            let mut c = Client::connect(s.addr);
            c.send(format!("GET /a.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: {ims}\r\n{extra}\r\n").as_bytes());
            c.read_response().unwrap()
        };
        let r = conditional(&last_modified, "");
        assert_eq!(r.status, 304);
        assert!(r.body.is_empty());
        assert_eq!(r.header("last-modified"), Some(last_modified.as_str()));
        assert!(r.header("content-length").is_none());
        // Older than the file, invalid, or with If-None-Match: the file.
        for (ims, extra) in [
            ("Sun, 06 Nov 1994 08:49:37 GMT", ""),
            ("yesterday", ""),
            (last_modified.as_str(), "If-None-Match: \"x\"\r\n"),
            ("Fri, 01 Jan 9999 00:00:00 GMT", ""),
        ] {
            let r = conditional(ims, extra);
            assert_eq!(r.status, 200, "{ims} {extra}");
            assert_eq!(r.body, b"text\n");
        }
    }

    fn static_directories_serve_their_index(poll: bool) {
        let dir = tree();
        let s = serve_tree(dir.path(), poll);
        let r = get(s.addr, "/sub/");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"<p>index</p>\n");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        let r = get(s.addr, "/sub?q=1");
        assert_eq!(r.status, 301);
        assert_eq!(r.header("location"), Some("/sub/?q=1"));
        assert_eq!(get(s.addr, "/empty/").status, 404);
        assert_eq!(get(s.addr, "/missing.txt").status, 404);
        assert_eq!(get(s.addr, "/a.txt/x").status, 404);
        let r = request(s.addr, b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }

    fn static_files_never_leave_the_root(poll: bool) {
        let dir = tree();
        let s = serve_tree(dir.path(), poll);
        for (target, status) in [
            ("/../secret.txt", 400),
            ("/sub/../../secret.txt", 400),
            ("/%2e%2e/secret.txt", 400),
            ("/sub/%2E%2E/%2e%2e/secret.txt", 400),
            ("/./a.txt", 400),
            ("/sub%2f..%2f..%2fsecret.txt", 400),
            ("/..%2Fsecret.txt", 400),
            ("/..%5csecret.txt", 400),
            ("/a.txt%00.png", 400),
            ("/link-out", 403),
            ("/escape/secret.txt", 403),
            ("/escape/root/a.txt", 200),
        ] {
            let r = get(s.addr, target);
            assert_eq!(r.status, status, "{target}: {}", r.text());
            assert!(!r.text().contains("secret\n"), "{target}");
        }
    }

    fn static_files_refuse_what_is_not_a_regular_file(poll: bool) {
        let dir = tree();
        let fifo = dir.path().join("root/fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let s = serve_tree(dir.path(), poll);
        // Refused without opening it for long (opening a FIFO would block
        // until a writer came).
        assert_eq!(get(s.addr, "/fifo").status, 403);
        // A file the server may not read.
        use std::os::unix::fs::PermissionsExt;
        let locked = dir.path().join("root/locked.txt");
        std::fs::write(&locked, "x").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::File::open(&locked).is_ok() {
            eprintln!("skipped the unreadable-file case: this user reads any file (root)");
        } else {
            assert_eq!(get(s.addr, "/locked.txt").status, 403);
        }
    }

    fn static_files_under_a_url_prefix(poll: bool) {
        let dir = tree();
        let s = start(
            StaticFiles::new(dir.path().join("root")).unwrap(),
            adj(poll).url_prefix("/static"),
        );
        assert_eq!(get(s.addr, "/static/a.txt").body, b"text\n");
        assert_eq!(get(s.addr, "/static/sub/").body, b"<p>index</p>\n");
    }

    fn hello_and_echo_apps(poll: bool) {
        let s = start(apps::hello, adj(poll));
        let r = get(s.addr, "/");
        assert_eq!(r.body, b"Hello, World!");
        assert_eq!(r.header("content-length"), Some("13"));
        let r = request(s.addr, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde");
        assert_eq!(r.body, b"abcde");
        assert_eq!(get(s.addr, "/echo").status, 405);
        assert_eq!(get(s.addr, "/nope").status, 404);
        // /upload counts a body (here chunked, spilled past 1 KiB).
        let mut a = adj(poll);
        a.inbuf_overflow = 1024;
        let s2 = start(apps::hello, a);
        let mut req = b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..10 {
            req.extend_from_slice(b"3e8\r\n");
            req.extend_from_slice(&[b'u'; 1000]);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(request(s2.addr, &req).text(), "10000");
        assert_eq!(get(s2.addr, "/upload").status, 405);
        // /bytes/N streams N bytes with their length.
        let r = get(s.addr, "/bytes/200000");
        assert_eq!(r.header("content-length"), Some("200000"));
        assert_eq!(r.body.len(), 200_000);
        assert!(r.body.iter().all(|&b| b == b'x'));
        assert_eq!(get(s.addr, "/bytes/0").body.len(), 0);
        assert_eq!(get(s.addr, "/bytes/x").status, 404);
        let s = start(apps::echo, adj(poll));
        let r = request(s.addr, b"PATCH /x/y HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 3\r\n\r\na,b");
        assert_eq!(r.body, b"a,b");
        assert_eq!(r.header("content-type"), Some("text/csv"));
        assert_eq!(r.header("x-method"), Some("PATCH"));
        assert_eq!(r.header("x-path"), Some("/x/y"));
    }
}

#[test]
fn static_files_are_sent_with_sendfile() {
    let dir = tree();
    let app = StaticFiles::new(dir.path().join("root")).unwrap();
    let mut req = Request::for_test("GET", "/big.bin", &[("Host", "x")], b"");
    let resp = app.call(&mut req);
    assert!(
        matches!(resp.body(), Body::File { offset: 0, len: Some(n), .. } if *n == 3 * 1024 * 1024),
        "{:?}",
        resp.body()
    );
    assert!(StaticFiles::new(dir.path().join("root/a.txt")).is_err());
    assert!(StaticFiles::new(dir.path().join("nowhere")).is_err());
}

// ------------------------------------------------------------------
// The command line
// ------------------------------------------------------------------

fn main_with(args: &[&str]) -> (i32, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = apps::main_with(args.iter().copied(), &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn help_lists_the_apps_and_every_setting() {
    let (code, out, err) = main_with(&["--help"]);
    assert_eq!(code, 0);
    assert!(err.is_empty());
    assert!(out.starts_with("Usage:\n\n    serve [OPTS]\n"), "{out}");
    assert!(out.contains("\n    --app=NAME\n"), "{out}");
    assert!(out.contains("\n    --root=DIR\n"), "{out}");
    for s in maitred::__private::SETTINGS {
        let dashed = s.name.replace('_', "-");
        assert!(
            out.contains(&format!("    --{dashed}="))
                || out.contains(&format!("    --[no-]{dashed}\n")),
            "{}",
            s.name
        );
    }
}

#[test]
fn bad_command_lines_exit_1_with_the_reason() {
    for (args, reason) in [
        (
            &["--bogus"][..],
            "Error: option --bogus not recognized\n\nUsage:",
        ),
        (
            &["--threads=x"][..],
            "Error: option --threads: invalid value for threads: \"x\" is not an integer\n\nUsage:",
        ),
        (
            &["--no-port"][..],
            "Error: option --no-port not recognized: --port takes a value",
        ),
        (
            &["--app=nope"][..],
            "Error: unknown application \"nope\" (--app): choose hello, echo or static\n",
        ),
        (
            &["--app=static", "--root=/nonexistent/dir"][..],
            "Error: --root=/nonexistent/dir: ",
        ),
        (&["app:main"][..], "Error: unexpected argument \"app:main\""),
    ] {
        let (code, out, err) = main_with(args);
        assert_eq!(code, 1, "{args:?}");
        assert!(out.is_empty(), "{args:?}");
        assert!(err.starts_with(reason), "{args:?}: {err}");
    }
}

/// In a child process started by [`spawn_serve`]: runs the example's
/// `main` with the arguments the parent gave and exits with its code.
/// Returns (false) only in the parent.
fn serve_if_child() -> bool {
    if child::role().as_deref() != Some("serve") {
        return false;
    }
    let args = std::env::var("MAITRED_TEST_ARGS").unwrap();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let code = apps::main_with(args.split('\n'), &mut out, &mut err);
    let _ = out.flush();
    let _ = err.flush();
    std::process::exit(code);
}

/// Runs the serve example in a child process (as test `test` of this
/// binary, which must begin with [`serve_if_child`]) with `args`, one a
/// line; returns it and its standard error's lines.
fn spawn_serve(test: &str, args: &str) -> (Child, Receiver<String>) {
    let mut cmd = child::command(test, "serve", None);
    cmd.env("MAITRED_TEST_ARGS", args);
    let mut ch = cmd.spawn().unwrap();
    let lines = child::stderr_lines(&mut ch);
    (ch, lines)
}

/// Waits for the example's `Serving on` line; returns the address.
fn serving_on(lines: &Receiver<String>) -> SocketAddr {
    address_in(&child::wait_for_line(
        lines,
        "Serving on http://127.0.0.1:",
        Duration::from_secs(30),
    ))
}

/// The address of a `Serving on http://ADDR` line.
fn address_in(line: &str) -> SocketAddr {
    line.rsplit("http://")
        .next()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

/// The example's `main`, run for real: it prints where it listens, serves,
/// and stops cleanly on SIGTERM.
#[test]
fn the_serve_example_runs_until_sigterm() {
    const NAME: &str = "the_serve_example_runs_until_sigterm";
    if serve_if_child() {
        return;
    }
    let dir = tree();
    let args = format!(
        "--app=static\n--root={}\n--listen=127.0.0.1:0\n--thr=2\n--asyncore-use-poll\n--metrics-path=/metrics\n--access-log={}",
        dir.path().join("root").display(),
        dir.path().join("access.log").display()
    );
    let (ch, lines) = spawn_serve(NAME, &args);
    let addr = serving_on(&lines);
    let r = get(addr, "/a.txt");
    assert_eq!(r.body, b"text\n");
    assert_eq!(get(addr, "/big.bin").body.len(), 3 * 1024 * 1024);
    // --metrics-path: the statistics, in Prometheus's text format.
    let m = get(addr, "/metrics");
    assert_eq!(m.status, 200);
    let text = String::from_utf8_lossy(&m.body);
    let samples = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text")
        .samples;
    let requests = samples
        .iter()
        .find(|s| s.metric == "maitred_requests_total")
        .map(|s| s.value.clone());
    assert!(
        matches!(requests, Some(prometheus_parse::Value::Counter(n)) if n >= 2.0),
        "{text}"
    );
    // SIGHUP reopens the access log (logrotate moved it) and does not stop
    // the server.
    let log = dir.path().join("access.log");
    // The three requests so far are written before the file moves.
    common::wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() == 3)
    });
    std::fs::rename(&log, dir.path().join("access.log.1")).unwrap();
    child::signal(ch.id(), libc::SIGHUP);
    child::wait_for_line(&lines, "reopening the access log", Duration::from_secs(30));
    assert_eq!(get(addr, "/a.txt").body, b"text\n");
    child::signal(ch.id(), libc::SIGTERM);
    child::wait_for_line(&lines, "Shutting down", Duration::from_secs(30));
    let out = child::wait(ch, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Lines before the SIGHUP in the moved file, the one after in the new.
    let old = std::fs::read_to_string(dir.path().join("access.log.1")).unwrap();
    assert!(old.contains("\"GET /a.txt HTTP/1.1\" 200"), "{old}");
    let new = std::fs::read_to_string(&log).unwrap();
    assert_eq!(new.lines().count(), 1, "{new}");
}

/// `--shutdown-timeout` past the largest value a setting in seconds may
/// have is refused at start, naming the setting (it was accepted, and
/// SIGTERM then panicked adding it to an `Instant`, exit 101); at that
/// largest value the example serves and stops cleanly on SIGTERM.
#[test]
fn the_serve_example_bounds_the_shutdown_timeout() {
    const NAME: &str = "the_serve_example_bounds_the_shutdown_timeout";
    if serve_if_child() {
        return;
    }
    let max = maitred::Adjustments::MAX_SECONDS;
    for (value, ok) in [(i64::MAX as u64, false), (max + 1, false), (max, true)] {
        let (ch, lines) = spawn_serve(
            NAME,
            &format!("--listen=127.0.0.1:0\n--shutdown-timeout={value}"),
        );
        // Serving or refusing: either way it must end on SIGTERM.
        let mut seen = Vec::new();
        while let Ok(line) = lines.recv_timeout(Duration::from_secs(30)) {
            if line.contains("Serving on") {
                assert_eq!(get(address_in(&line), "/").body, b"Hello, World!");
                child::signal(ch.id(), libc::SIGTERM);
                seen.push(line);
                break;
            }
            let refused = line.starts_with("Error:");
            seen.push(line);
            if refused {
                break;
            }
        }
        let out = child::wait(ch, Duration::from_secs(30));
        // The rest of its standard error, up to its end.
        while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
            seen.push(line);
        }
        let text = seen.join("\n");
        if ok {
            assert!(out.status.success(), "{value}: {}: {text}", out.status);
        } else {
            assert_eq!(out.status.code(), Some(1), "{value}: {text}");
            assert!(
                text.contains("shutdown_timeout") && text.contains(&max.to_string()),
                "{value}: {text}"
            );
        }
    }
}

/// A SIGHUP that comes while a graceful stop drains the running requests
/// still reopens the access log (logrotate does not know the server is
/// stopping): the line of the request that finishes after it goes to the
/// new file.
#[test]
fn sighup_while_draining_reopens_the_access_log() {
    const NAME: &str = "sighup_while_draining_reopens_the_access_log";
    if serve_if_child() {
        return;
    }
    // More than the high watermark and the sockets' buffers hold: the
    // response runs until the client reads, which it does only at the end.
    const LEN: usize = 64 << 20;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let (ch, lines) = spawn_serve(
        NAME,
        &format!(
            "--listen=127.0.0.1:0\n--shutdown-timeout=60\n--access-log={}",
            log.display()
        ),
    );
    let addr = serving_on(&lines);
    let mut c = Client::connect(addr);
    c.send(format!("GET /bytes/{LEN} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    assert_eq!(c.read_head().unwrap().status, 200);
    child::signal(ch.id(), libc::SIGTERM);
    child::wait_for_line(&lines, "Shutting down", Duration::from_secs(30));
    std::fs::rename(&log, dir.path().join("access.log.1")).unwrap();
    child::signal(ch.id(), libc::SIGHUP);
    // Seen or not (10 s at most), the drain is let finish before judging.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut reopened = false;
    while let Ok(line) =
        lines.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        if line.contains("reopening the access log") {
            reopened = true;
            break;
        }
    }
    assert_eq!(c.read_exact_n(LEN).unwrap().len(), LEN);
    let out = child::wait(ch, Duration::from_secs(60));
    assert!(out.status.success(), "{}", out.status);
    assert!(reopened, "no 'reopening the access log' line after SIGHUP");
    let new = std::fs::read_to_string(&log).expect("a new access log");
    assert!(
        new.contains(&format!("\"GET /bytes/{LEN} HTTP/1.1\" 200 {LEN}")),
        "{new}"
    );
}
