//! The connection core's transitions, driven with bytes and events only: no
//! socket, no thread, no clock (times are given).

use super::*;

fn now(ms: u64) -> Now {
    Now {
        at: Instant::now(),
        ms,
    }
}

fn conn() -> Conn {
    Conn::new(ParserConfig::default())
}

const LIMITS: Limits = Limits {
    lookahead: 0,
    head_timeout_ms: 30_000,
    body_timeout_ms: 20_000,
    min_body_rate: 500,
};

/// What feeding `bytes` at `ms` produced, in order, as short names.
fn feed(c: &mut Conn, bytes: &[u8], ms: u64) -> Vec<String> {
    let mut input = bytes;
    let mut out = Vec::new();
    while let Some(a) = c.next(&mut input, now(ms)) {
        out.push(name(&a));
    }
    assert!(input.is_empty(), "next() leaves nothing unconsumed");
    out
}

/// The actions left after an event (with no new bytes).
fn after(c: &mut Conn, ms: u64) -> Vec<String> {
    feed(c, b"", ms)
}

fn name(a: &Action) -> String {
    match a {
        Action::Dispatch(r) => format!("dispatch {}", r.head.uri()),
        Action::Continue => "continue".into(),
        Action::Answer(a) => format!("answer {}", a.error.code()),
        Action::Close => "close".into(),
        Action::Proxied(h) => format!("proxied {:?}", h.client()),
        Action::BadProxyHeader(_) => "bad proxy header".into(),
    }
}

const KEEP: Released = Released {
    close: false,
    switch: false,
    push: false,
};
const CLOSE: Released = Released {
    close: true,
    switch: false,
    push: false,
};
const SWITCH: Released = Released {
    close: false,
    switch: true,
    push: false,
};
const PUSH: Released = Released {
    close: false,
    switch: false,
    push: true,
};

#[test]
fn a_keep_alive_request_is_dispatched_and_reading_waits_for_its_answer() {
    let mut c = conn();
    assert!(c.wants_read(&LIMITS) && c.idles_out());
    assert_eq!(
        feed(&mut c, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 1),
        ["dispatch /a"]
    );
    assert!(c.busy() && !c.wants_read(&LIMITS));
    assert_eq!(c.owed(), 1);
    // With a lookahead of one, the loop reads on while it is answered.
    let ahead = Limits {
        lookahead: 1,
        ..LIMITS
    };
    assert!(c.wants_read(&ahead));
    c.released(KEEP);
    assert!(after(&mut c, 2).is_empty());
    assert!(!c.busy() && c.wants_read(&LIMITS) && !c.closing());
    assert_eq!(
        c.eviction_rank(7),
        Some((0, 7)),
        "idle keep-alive goes first"
    );
}

#[test]
fn pipelined_requests_in_one_read_are_all_dispatched_in_order() {
    let mut c = conn();
    let got = feed(
        &mut c,
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n",
        1,
    );
    assert_eq!(got, ["dispatch /1", "dispatch /2", "dispatch /3"]);
    assert_eq!(c.owed(), 3);
    c.released(KEEP);
    assert!(!c.busy());
}

#[test]
fn continue_is_sent_at_once_when_idle_deferred_when_busy() {
    let mut c = conn();
    let head = b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(feed(&mut c, head, 1), ["continue"]);
    assert_eq!(feed(&mut c, b"abc", 2), ["dispatch /up"]);
    c.released(KEEP);
    // Behind a request being answered: deferred, then sent at the release.
    let mut c = conn();
    assert_eq!(
        feed(&mut c, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 1),
        ["dispatch /a"]
    );
    assert!(feed(&mut c, head, 2).is_empty());
    c.released(KEEP);
    assert_eq!(after(&mut c, 3), ["continue"]);
    assert_eq!(feed(&mut c, b"abc", 4), ["dispatch /up"]);
    // Deferred, and the body came anyway: no 100 after the request.
    let mut c = conn();
    assert_eq!(
        feed(&mut c, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 1),
        ["dispatch /a"]
    );
    let mut whole = head.to_vec();
    whole.extend_from_slice(b"abc");
    assert_eq!(feed(&mut c, &whole, 2), ["dispatch /up"]);
    c.released(KEEP);
    assert!(after(&mut c, 3).is_empty());
}

#[test]
fn no_continue_once_a_graceful_stop_began() {
    let head = b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    let mut c = conn();
    assert_eq!(
        feed(&mut c, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 1),
        ["dispatch /a"]
    );
    assert!(feed(&mut c, head, 2).is_empty());
    c.begin_shutdown();
    c.released(KEEP);
    assert!(
        after(&mut c, 3).is_empty(),
        "the upload it invites would be cut"
    );
    assert!(c.closing());
}

#[test]
fn a_parse_error_is_answered_and_closes_with_a_staged_close() {
    let mut c = conn();
    assert_eq!(
        feed(&mut c, b"GET / HTTP/1.1\r\nHost: x\nBad\r\n\r\n", 1),
        ["answer 400"]
    );
    assert!(c.closing() && !c.wants_read(&LIMITS));
    // Whatever follows is dropped unparsed.
    assert!(feed(&mut c, b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n", 2).is_empty());
    // Flushed: the write side is shut and the client's bytes are read and
    // dropped, for a bounded time and size.
    assert!(c.flushed(now(3)));
    assert!(c.lingering() && c.wants_read(&LIMITS) && c.clock_running());
    assert!(c.lingered(1000, now(4)));
    assert!(!c.lingered(LINGER_BYTES, now(5)), "the size bound ends it");
    let mut c = conn();
    assert_eq!(feed(&mut c, b"\n", 1), ["answer 400"]);
    assert!(c.flushed(now(3)));
    // Bytes keep it going; quiet ends it.
    for t in (100..LINGER_MS).step_by(400) {
        assert!(c.lingered(10, now(3 + t)), "{t}");
        assert!(c.tick(now(3 + t + 1), &LIMITS, false).is_none());
        assert!(c.lingering());
    }
    assert!(
        !c.lingered(10, now(3 + LINGER_MS)),
        "the time bound ends it"
    );
    let mut c = conn();
    assert_eq!(feed(&mut c, b"\n", 1), ["answer 400"]);
    assert!(c.flushed(now(3)));
    assert!(c
        .tick(now(3 + LINGER_QUIET_MS - 1), &LIMITS, false)
        .is_none());
    assert!(c.lingering());
    assert!(c.tick(now(3 + LINGER_QUIET_MS), &LIMITS, false).is_none());
    assert!(c.closing() && !c.lingering(), "quiet ends it");
    assert!(!c.flushed(now(10_000)), "closes now");
}

#[test]
fn a_parse_error_behind_a_request_waits_for_its_answer() {
    let mut c = conn();
    let got = feed(
        &mut c,
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\nBad\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n",
        1,
    );
    assert_eq!(got, ["dispatch /a"]);
    c.released(KEEP);
    assert_eq!(after(&mut c, 2), ["answer 400"]);
    assert!(c.closing());
}

#[test]
fn nothing_is_parsed_after_a_closing_response() {
    // CVE-2024-49768: after the response that closes, bytes are dropped.
    let mut c = conn();
    assert_eq!(
        feed(&mut c, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 1),
        ["dispatch /a"]
    );
    c.released(CLOSE);
    assert!(after(&mut c, 2).is_empty());
    assert!(feed(&mut c, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n", 3).is_empty());
    assert!(c.closing());
    // Bytes arrived after the decision: the close is staged.
    assert!(c.flushed(now(4)));
    // The worker said so while answering: what the loop parsed is dropped.
    let mut c = conn();
    assert_eq!(
        feed(&mut c, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 1),
        ["dispatch /a"]
    );
    c.stop_reading();
    assert!(feed(&mut c, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n", 2).is_empty());
    c.released(CLOSE);
    assert!(c.closing());
}

#[test]
fn an_upgrade_proposal_holds_what_follows_until_its_answer() {
    let offer = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let mut bytes = offer.to_vec();
    bytes.extend_from_slice(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    // Switched: the bytes after it are the new protocol's.
    let mut c = conn();
    assert_eq!(feed(&mut c, &bytes, 1), ["dispatch /ws"]);
    assert!(!c.wants_read(&Limits {
        lookahead: 5,
        ..LIMITS
    }));
    assert!(feed(&mut c, b"more", 2).is_empty());
    c.released(SWITCH);
    assert!(after(&mut c, 3).is_empty());
    assert!(c.switching() && !c.closing());
    assert_eq!(
        c.take_held(),
        b"GET /b HTTP/1.1\r\nHost: x\r\n\r\nmore".to_vec()
    );
    // Answered as HTTP: they are parsed as HTTP.
    let mut c = conn();
    assert_eq!(feed(&mut c, &bytes, 1), ["dispatch /ws"]);
    c.released(KEEP);
    assert_eq!(after(&mut c, 2), ["dispatch /b"]);
    assert!(c.busy() && !c.switching());
}

#[test]
fn upgrade_in_http_1_0_or_without_connection_upgrade_is_ignored() {
    for offer in [
        &b"GET /a HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /b HTTP/1.0\r\n\r\n"[..],
        b"GET /a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut c = conn();
        assert_eq!(feed(&mut c, offer, 1), ["dispatch /a", "dispatch /b"]);
    }
}

#[test]
fn a_slow_head_gets_408_and_the_clock_waits_while_answering() {
    let mut c = conn();
    assert!(feed(&mut c, b"GET / HTTP/1.1\r\n", 1_000).is_empty());
    assert!(c.clock_running() && c.receiving());
    assert!(c.tick(now(31_000), &LIMITS, false).is_none());
    match c.tick(now(31_001), &LIMITS, false) {
        Some(Action::Answer(a)) => {
            assert_eq!(a.error.code(), 408);
            assert_eq!(a.kind, AnswerKind::TimedOut);
        }
        other => panic!("{other:?}"),
    }
    assert!(c.closing() && !c.clock_running());
    // Dribbling does not move the clock back.
    let mut c = conn();
    feed(&mut c, b"G", 0);
    feed(&mut c, b"E", 29_000);
    assert!(c.tick(now(30_001), &LIMITS, false).is_some());
    // A head behind a request being answered: the clock restarts after it.
    let mut c = conn();
    feed(
        &mut c,
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n",
        0,
    );
    assert!(c.tick(now(40_000), &LIMITS, false).is_none());
    c.released(KEEP);
    assert!(c.tick(now(69_000), &LIMITS, false).is_none());
    assert!(c.tick(now(70_001), &LIMITS, false).is_some());
    // The loop's own output still going out stops it too.
    let mut c = conn();
    feed(&mut c, b"GET / HTTP/1.1\r\n", 0);
    assert!(c.tick(now(40_000), &LIMITS, true).is_none());
    assert!(c.tick(now(69_000), &LIMITS, false).is_none());
}

#[test]
fn a_slow_body_gets_408_by_the_rate_rule() {
    let mut c = conn();
    feed(
        &mut c,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
        0,
    );
    assert!(c.receiving());
    // 20 s of grace, plus a second per 500 bytes.
    feed(&mut c, &[b'x'; 5000], 10_000);
    assert!(c.tick(now(30_000), &LIMITS, false).is_none());
    match c.tick(now(30_001), &LIMITS, false) {
        Some(Action::Answer(a)) => assert_eq!(a.error.code(), 408),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.eviction_rank(0), None, "closing: not a candidate");
}

#[test]
fn blank_lines_start_no_deadline_and_leave_the_connection_idle() {
    // RFC 9112 §2.2: an empty line before a request line is ignored; a
    // CRLF after a request (a common client habit) starts no head clock.
    let mut c = conn();
    assert_eq!(
        feed(
            &mut c,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
            0
        ),
        ["dispatch /"]
    );
    c.released(KEEP);
    assert!(feed(&mut c, b"\r\n", 1).is_empty());
    assert!(!c.clock_running() && !c.receiving());
    assert!(c.tick(now(1_000_000), &LIMITS, false).is_none());
    assert_eq!(c.eviction_rank(5), Some((0, 5)), "ranked as idle");
    // A real request after it is served.
    assert_eq!(
        feed(&mut c, b"\r\nGET /n HTTP/1.1\r\nHost: x\r\n\r\n", 2),
        ["dispatch /n"]
    );
}

#[test]
fn a_graceful_stop_closes_idle_connections_and_busy_ones_after_their_answer() {
    let mut c = conn();
    c.begin_shutdown();
    assert!(c.closing() && !c.wants_read(&LIMITS));
    // Mid-head: dropped, closed.
    let mut c = conn();
    feed(&mut c, b"GET / HT", 0);
    c.begin_shutdown();
    assert!(c.closing());
    // Busy: closes once released, even if its response kept it alive.
    let mut c = conn();
    feed(&mut c, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    c.begin_shutdown();
    assert!(c.busy() && !c.closing());
    assert!(feed(&mut c, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n", 1).is_empty());
    c.released(KEEP);
    assert!(after(&mut c, 2).is_empty());
    assert!(c.closing());
}

#[test]
fn a_request_bounced_by_a_release_is_dispatched_again_unless_it_closed() {
    let mut c = conn();
    feed(&mut c, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    assert_eq!(
        feed(&mut c, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n", 1),
        ["dispatch /b"]
    );
    assert_eq!(c.owed(), 2);
    // The worker had released before /b reached it.
    c.released(KEEP);
    assert!(c.redispatch());
    assert_eq!(c.owed(), 1);
    c.released(KEEP);
    // It had closed: /b is dropped.
    let mut c = conn();
    feed(&mut c, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    feed(&mut c, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    c.released(CLOSE);
    assert!(!c.redispatch());
    assert!(c.closing());
}

#[test]
fn a_shed_request_is_answered_503_and_closes() {
    let mut c = conn();
    let mut input = &b"HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n"[..];
    let Some(Action::Dispatch(r)) = c.next(&mut input, now(0)) else {
        panic!("no dispatch")
    };
    let a = c.shed(r, HttpError::service_unavailable("full"));
    assert_eq!(a.kind, AnswerKind::Shed);
    assert!(a.head_only && a.head.is_some());
    assert!(c.closing() && !c.busy());
}

#[test]
fn eviction_ranks_idle_then_fresh_and_slow_heads_never_busy_or_bodies() {
    let mut c = conn();
    assert_eq!(c.eviction_rank(3), Some((1, 3)), "connected, nothing sent");
    feed(&mut c, b"GET / HTTP/1.1\r\n", 10);
    assert_eq!(c.eviction_rank(3), Some((1, 10)), "a head since 10");
    feed(&mut c, b"Host: x\r\nContent-Length: 5\r\n\r\n", 11);
    assert_eq!(c.eviction_rank(3), None, "a body is on its way");
    feed(&mut c, b"hello", 12);
    assert!(c.busy());
    assert_eq!(c.eviction_rank(3), None, "a request is being answered");
}

#[test]
fn the_idle_sweep_may_close_anything_but_what_a_worker_produces() {
    let mut c = conn();
    assert!(c.idles_out());
    feed(&mut c, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    assert!(!c.idles_out());
    c.released(SWITCH);
    assert!(!c.idles_out(), "switching");
}

#[test]
fn a_proxy_header_comes_first_then_http_however_it_is_split() {
    let bytes = b"PROXY TCP4 192.0.2.7 198.51.100.1 4711 80\r\nGET /p HTTP/1.1\r\nHost: x\r\n\r\n";
    let want = ["proxied Some(192.0.2.7:4711)", "dispatch /p"];
    let mut c = conn();
    c.expect_proxy_header();
    assert_eq!(feed(&mut c, bytes, 0), want);
    // Byte by byte: the same events.
    let mut c = conn();
    c.expect_proxy_header();
    let mut got = Vec::new();
    for b in bytes.chunks(1) {
        got.extend(feed(&mut c, b, 1));
    }
    assert_eq!(got, want);
    // v2 LOCAL (a health check): no client; the request is served.
    let mut v2 = crate::proxy_protocol::V2_SIGNATURE.to_vec();
    v2.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
    v2.extend_from_slice(b"GET /h HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut c = conn();
    c.expect_proxy_header();
    assert_eq!(feed(&mut c, &v2, 0), ["proxied None", "dispatch /h"]);
}

#[test]
fn a_connection_that_should_begin_with_a_proxy_header_and_does_not_closes() {
    let mut c = conn();
    c.expect_proxy_header();
    assert_eq!(feed(&mut c, b"GET / HTTP/1.1\r\n", 0), ["bad proxy header"]);
    assert!(c.closing() && !c.wants_read(&LIMITS));
    // Nor does what follows get parsed.
    assert!(feed(&mut c, b"Host: x\r\n\r\n", 1).is_empty());
    assert!(c.closing());
}

#[test]
fn a_proxy_header_counts_against_the_head_deadline() {
    let mut c = conn();
    c.expect_proxy_header();
    assert!(feed(&mut c, b"PROXY TCP4 192.0.2.7 ", 1_000).is_empty());
    assert!(c.receiving() && c.clock_running());
    assert_eq!(
        c.eviction_rank(0),
        Some((1, 1_000)),
        "ranked as a slow head"
    );
    assert!(c.tick(now(31_000), &LIMITS, false).is_none());
    assert!(matches!(
        c.tick(now(31_001), &LIMITS, false),
        Some(Action::Answer(a)) if a.error.code() == 408
    ));
    // The header and the head that follows share the deadline.
    let mut c = conn();
    c.expect_proxy_header();
    feed(&mut c, b"PROXY UNKNOWN\r\nGET / HT", 1_000);
    assert!(c.tick(now(31_001), &LIMITS, false).is_some());
    // A header alone, then nothing: an idle connection (no clock).
    let mut c = conn();
    c.expect_proxy_header();
    assert_eq!(feed(&mut c, b"PROXY UNKNOWN\r\n", 1_000), ["proxied None"]);
    assert!(!c.clock_running());
}

#[test]
fn a_pushed_body_holds_the_requests_behind_it_until_its_end() {
    let mut c = conn();
    let got = feed(
        &mut c,
        b"GET /events HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
        0,
    );
    assert_eq!(got, ["dispatch /events", "dispatch /next"]);
    c.released(PUSH);
    assert!(c.pushing() && !c.busy() && !c.wants_read(&LIMITS));
    assert_eq!(c.eviction_rank(0), None, "a response is being sent");
    // The body ends: /next, which waited, is owed again.
    assert!(c.push_ended(false));
    assert!(c.busy() && c.owed() == 1);
    c.released(KEEP);
    assert!(!c.busy() && c.wants_read(&LIMITS));
    // Alone: back to idle; a body that ends the connection closes it.
    let mut c = conn();
    feed(&mut c, b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    c.released(PUSH);
    assert!(!c.push_ended(false));
    assert!(!c.pushing() && c.wants_read(&LIMITS));
    let mut c = conn();
    feed(&mut c, b"GET /events HTTP/1.0\r\n\r\n", 0);
    c.released(PUSH);
    assert!(!c.push_ended(true));
    assert!(c.closing());
    // A graceful stop that began meanwhile closes it at the end.
    let mut c = conn();
    feed(&mut c, b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    c.released(PUSH);
    c.begin_shutdown();
    assert!(c.pushing());
    assert!(!c.push_ended(false));
    assert!(c.closing());
}
