//! The server's own log lines (not the access log) with request-derived
//! text in them: a percent-decoded path may hold CR, LF and ESC
//! (`%0d%0a`, `%1b`), and each must come out escaped (`\x0d`), so that a
//! client cannot write lines of its own into the server's log or send
//! escape sequences to the terminal that shows it.
//!
//! The log sink is process-wide: every test of this binary shares one, and
//! finds its own records by a marker in its request's path.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;
use maitred::{Body, Request, Response};

/// The records containing `needle`, once at least one does (10 s at most).
fn records_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    wait_until(Duration::from_secs(10), || {
        found = logged(needle);
        !found.is_empty()
    });
    found
}

/// Each record is one line of printable ASCII: no CR, LF or ESC.
fn assert_one_line(records: &[String]) {
    for r in records {
        assert!(
            !r.contains(['\r', '\n', '\x1b']),
            "a record with CR, LF or ESC: {r:?}"
        );
        assert!(
            r.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "a record with bytes outside printable ASCII: {r:?}"
        );
    }
}

/// The path part every test sends after its marker: a forged line and an
/// escape sequence that clears the screen.
const HOSTILE: &str = "%0d%0aERROR:maitred:forged%1b[2J";
/// How it must appear in the log.
const ESCAPED: &str = "\\x0d\\x0aERROR:maitred:forged\\x1b[2J";

backend_tests! {
    fn an_application_panic_logs_the_path_escaped(poll: bool) {
        logs();
        let marker = format!("panic-{poll}");
        let s = start(
            // The panic message holds the path too, as an application's
            // often does.
            |req: &mut Request| -> Response { panic!("cannot serve {}", req.path()) },
            adj(poll),
        );
        let r = request(
            s.addr,
            format!("GET /{marker}{HOSTILE} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 500);
        let records = records_with(&marker);
        assert_one_line(&records);
        let exception = records
            .iter()
            .find(|r| r.contains("Exception while serving"))
            .unwrap_or_else(|| panic!("no exception record: {records:?}"));
        assert!(
            exception.starts_with(&format!(
                "ERROR:maitred:Exception while serving /{marker}{ESCAPED}: "
            )),
            "{exception}"
        );
        assert!(
            exception.contains(&format!("cannot serve /{marker}{ESCAPED}")),
            "{exception}"
        );
        s.stop().unwrap();
    }

    fn a_client_gone_mid_response_logs_the_path_escaped(poll: bool) {
        logs();
        let marker = format!("gone-{poll}");
        // Streams until the client is gone (1 GiB or 20 s at most).
        let s = start(
            |_req: &mut Request| -> Response {
                let began = Instant::now();
                let chunks = (0..16_384)
                    .take_while(move |_| began.elapsed() < Duration::from_secs(20))
                    .map(|_| vec![b'x'; 65_536]);
                Response::new(200).with_body(Body::from_chunks(chunks))
            },
            adj(poll),
        );
        let mut c = Client::connect(s.addr);
        c.send(format!("GET /{marker}{HOSTILE} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let head = c.read_head().unwrap();
        assert_eq!(head.status, 200);
        let mut some = [0u8; 4096];
        let _ = c.stream.read(&mut some);
        // Closed with unread bytes: the server's next send fails.
        drop(c);
        let records = records_with(&marker);
        assert_one_line(&records);
        assert!(
            records.contains(&format!(
                "INFO:maitred:Client disconnected while serving /{marker}{ESCAPED}"
            )),
            "{records:?}"
        );
        s.stop().unwrap();
    }

    fn a_malformed_proxy_header_is_logged_escaped(poll: bool) {
        logs();
        let marker = format!("proxy-{poll}");
        let mut a = adj(poll);
        a.trusted_proxy = Some("127.0.0.1".into());
        a.trusted_proxy_headers = ["x-forwarded-port".to_string()].into();
        let s = start(|_req: &mut Request| Response::text("unreachable"), a);
        // obs-text a field value may carry: 0x9b is the C1 control CSI.
        let mut raw = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Port: {marker}").into_bytes();
        raw.extend_from_slice(b"\x9b2J\xff\r\n\r\n");
        assert_eq!(request(s.addr, &raw).status, 400);
        let records = records_with(&marker);
        assert_one_line(&records);
        assert!(
            records.iter().any(|r| r.starts_with("WARNING:maitred:Malformed proxy header")
                && r.contains(&format!("value: {marker}\\x"))),
            "{records:?}"
        );
        s.stop().unwrap();
    }
}
