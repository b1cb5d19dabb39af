//! The access log over real sockets: one line for every response (the
//! server's own errors and cut-short responses included), each format
//! written and read back, hostile bytes escaped, every line of a
//! concurrent run present, and the file reopened after logrotate moved it.

mod common;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use common::*;
use maitred::{Body, Request, Response};

fn app(req: &mut Request) -> Response {
    match req.path().as_ref() {
        "/missing" => Response::status_page(404),
        "/panic" => panic!("for the access log"),
        "/big" => Response::new(200).with_body(Body::Chunks(Box::new(
            (0..256).map(|_| Ok(vec![b'x'; 64 * 1024])),
        ))),
        _ => Response::text("hello").with_header("X-Id", "abc"),
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `client - - [time] "request" status bytes "referer" "agent"`, split.
fn combined(line: &str) -> (String, String, String, String, String, String) {
    let (client, rest) = line.split_once(" - - [").expect(line);
    let (_time, rest) = rest.split_once("] \"").expect(line);
    let (request, rest) = rest.split_once("\" ").expect(line);
    let mut it = rest.splitn(3, ' ');
    let status = it.next().unwrap().to_string();
    let bytes = it.next().unwrap().to_string();
    let quoted = it.next().unwrap();
    let (referer, agent) = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .and_then(|q| q.split_once("\" \""))
        .expect(line);
    (
        client.into(),
        request.into(),
        status,
        bytes,
        referer.into(),
        agent.into(),
    )
}

backend_tests! {
    fn every_response_gets_a_combined_line(poll: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let mut a = adj(poll);
        a.access_log = path.to_str().unwrap().to_string();
        a.request_head_timeout = 1;
        let s = start(app, a);
        let mut c = Client::connect(s.addr);
        assert_eq!(c.roundtrip(b"GET /?q=1 HTTP/1.1\r\nHost: x\r\nReferer: http://r/\r\nUser-Agent: t/1\r\n\r\n").status, 200);
        c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(c.read_response_to(true).unwrap().status, 200);
        assert_eq!(c.roundtrip(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n").status, 404);
        assert_eq!(c.roundtrip(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n").status, 500);
        // The worker logs the 500 after sending it: wait for its line, so
        // that the 400 the loop answers next cannot be logged before it.
        wait_until(Duration::from_secs(5), || lines(&path).len() == 4);
        let mut bad = Client::connect(s.addr);
        assert_eq!(bad.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\nBad header\r\n\r\n").status, 400);
        let mut slow = Client::connect(s.addr);
        slow.send(b"GET / HTTP/1.1\r\n");
        assert_eq!(slow.read_response().unwrap().status, 408);
        // A client that leaves in the middle of a 16 MiB response.
        let mut gone = Client::connect(s.addr);
        gone.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut first = [0u8; 1024];
        let _ = gone.stream.read(&mut first);
        drop(gone);
        std::thread::sleep(Duration::from_millis(300));
        s.stop().unwrap();

        let got = lines(&path);
        assert_eq!(got.len(), 7, "{got:#?}");
        let parsed: Vec<_> = got.iter().map(|l| combined(l)).collect();
        assert_eq!(parsed[0], ("127.0.0.1".into(), "GET /?q=1 HTTP/1.1".into(), "200".into(), "5".into(), "http://r/".into(), "t/1".into()));
        assert_eq!((parsed[1].1.as_str(), parsed[1].2.as_str(), parsed[1].3.as_str()), ("HEAD / HTTP/1.1", "200", "-"));
        assert_eq!((parsed[2].2.as_str(), parsed[3].2.as_str()), ("404", "500"));
        let rest: Vec<(&str, &str)> = parsed[4..].iter().map(|p| (p.1.as_str(), p.2.as_str())).collect();
        assert!(rest.contains(&("-", "400")), "{rest:?}");
        assert!(rest.contains(&("-", "408")), "{rest:?}");
        let cut = parsed.iter().find(|p| p.1 == "GET /big HTTP/1.1").expect("the cut-short response");
        assert_eq!(cut.2, "200");
        let sent: u64 = cut.3.parse().unwrap();
        assert!(sent < 16 * 1024 * 1024, "{sent}");
    }

    fn json_lines_are_valid_json_whatever_the_client_sends(poll: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.json");
        let mut a = adj(poll);
        a.access_log = path.to_str().unwrap().to_string();
        a.access_log_format = "json".into();
        let s = start(app, a);
        let mut c = Client::connect(s.addr);
        let mut req = b"GET /x%22y HTTP/1.1\r\nHost: x\r\nUser-Agent: a\"b\\c \x80\xff\t}\r\n\r\n".to_vec();
        req.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
        c.send(&req);
        assert_eq!(c.read_response().unwrap().status, 200);
        assert_eq!(c.read_response().unwrap().status, 200);
        s.stop().unwrap();
        let got = lines(&path);
        assert_eq!(got.len(), 2, "{got:#?}");
        let v: serde_json::Value = serde_json::from_str(&got[0]).expect(&got[0]);
        assert_eq!(v["method"], "GET");
        assert_eq!(v["target"], "/x%22y");
        assert_eq!(v["status"], 200);
        assert_eq!(v["bytes"], 5);
        assert_eq!(v["user_agent"], "a\"b\\c \u{80}\u{ff}\u{9}}");
        assert!(v["duration_us"].as_u64().is_some());
        let v: serde_json::Value = serde_json::from_str(&got[1]).expect(&got[1]);
        assert_eq!(v["version"], "HTTP/1.0");
        assert_eq!(v["referer"], serde_json::Value::Null);
    }

    fn a_template_and_hostile_bytes_in_text(poll: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let mut a = adj(poll);
        a.access_log = path.to_str().unwrap().to_string();
        a.access_log_format = "%h \"%r\" %>s %b %{X-Trace}i %{X-Id}o %{Content-Type}o %D %T %%".into();
        let s = start(app, a);
        let mut c = Client::connect(s.addr);
        let r = c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\nX-Trace: \"forged\" 200 \\ \x80\xff\r\n\r\n");
        assert_eq!(r.status, 200);
        s.stop().unwrap();
        let got = lines(&path);
        assert_eq!(got.len(), 1, "{got:#?}");
        let fields: Vec<&str> = got[0].split(' ').collect();
        assert_eq!(&fields[..5], ["127.0.0.1", "\"GET", "/", "HTTP/1.1\"", "200"]);
        assert_eq!(fields[5], "5");
        assert_eq!(
            &fields[6..10],
            ["\\x22forged\\x22", "200", "\\x5c", "\\x80\\xff"]
        );
        assert_eq!(fields[10], "abc");
        assert_eq!(fields[11], "text/plain;");
        assert!(fields[13].parse::<u64>().is_ok() && fields[14] == "0", "{got:?}");
        assert_eq!(fields[15], "%");
    }

    fn every_line_of_a_concurrent_run_is_there(poll: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let mut a = adj(poll);
        a.access_log = path.to_str().unwrap().to_string();
        a.access_log_format = "common".into();
        let s = start(app, a);
        let addr = s.addr;
        std::thread::scope(|sc| {
            for _ in 0..8 {
                sc.spawn(move || {
                    let mut c = Client::connect(addr);
                    for _ in 0..1250 {
                        assert_eq!(c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
                    }
                });
            }
        });
        assert_eq!(s.handle.stats().access_log_dropped, 0);
        s.stop().unwrap();
        let got = lines(&path);
        assert_eq!(got.len(), 10_000);
        assert!(got.iter().all(|l| l.starts_with("127.0.0.1 - - [") && l.ends_with("\"GET / HTTP/1.1\" 200 5")));
    }

    fn reopen_after_the_file_was_moved(poll: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let moved = dir.path().join("access.log.1");
        let mut a = adj(poll);
        a.access_log = path.to_str().unwrap().to_string();
        let s = start(app, a);
        let mut c = Client::connect(s.addr);
        for _ in 0..3 {
            assert_eq!(c.roundtrip(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
        }
        wait_until(Duration::from_secs(5), || lines(&path).len() == 3);
        std::fs::rename(&path, &moved).unwrap();
        s.handle.reopen_logs();
        wait_until(Duration::from_secs(5), || path.exists());
        for _ in 0..2 {
            assert_eq!(c.roundtrip(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
        }
        s.stop().unwrap();
        assert_eq!(lines(&moved).len(), 3);
        let new = lines(&path);
        assert_eq!(new.len(), 2);
        assert!(new.iter().all(|l| l.contains("GET /b")));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o007, 0, "{mode:o}");
    }
}

#[test]
fn a_bad_format_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = adj(false);
    a.access_log = dir.path().join("a.log").to_str().unwrap().to_string();
    a.access_log_format = "%h %q".into();
    let e = maitred::create_server(app, a).unwrap_err().to_string();
    assert!(e.contains("access_log_format") && e.contains("%q"), "{e}");
}
