//! Live statistics over real sockets: a known sequence of requests, the
//! counters it must leave, and the Prometheus text read back with a real
//! parser (the `prometheus-parse` crate). Each test runs on the default
//! poller and on poll(2).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use maitred::{Request, Response};

fn app(req: &mut Request) -> Response {
    match req.path().as_ref() {
        "/missing" => Response::status_page(404),
        "/panic" => panic!("for the statistics"),
        _ => Response::text("ok"),
    }
}

/// The samples of the exposition, by name and labels.
fn parse(text: &str) -> HashMap<String, f64> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let mut out = HashMap::new();
    for s in scrape.samples {
        let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort();
        let key = if labels.is_empty() {
            s.metric.clone()
        } else {
            format!("{}{{{}}}", s.metric, labels.join(","))
        };
        let v = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            other => panic!("unexpected {other:?}"),
        };
        out.insert(key, v);
    }
    // Every metric has its help and type.
    for name in out.keys() {
        let family = name.split('{').next().unwrap_or_default();
        assert!(scrape.docs.contains_key(family), "no HELP for {family}");
    }
    out
}

backend_tests! {
    fn counters_follow_a_known_sequence_of_requests(poll: bool) {
        let mut a = adj(poll);
        a.threads = 2;
        a.request_head_timeout = 1;
        let s = start(app, a);
        let mut c = Client::connect(s.addr);
        for _ in 0..3 {
            assert_eq!(c.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
        }
        assert_eq!(c.roundtrip(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n").status, 404);
        assert_eq!(c.roundtrip(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n").status, 500);
        let mut bad = Client::connect(s.addr);
        assert_eq!(bad.roundtrip(b"GET / HTTP/1.1\r\nHost: x\r\nBad header\r\n\r\n").status, 400);
        let mut slow = Client::connect(s.addr);
        slow.send(b"GET / HTTP/1.1\r\n");
        assert_eq!(slow.read_response().unwrap().status, 408);
        drop((c, bad, slow));
        wait_until(Duration::from_secs(10), || s.handle.stats().connections_open == 0);

        let st = s.handle.stats();
        assert_eq!(st.connections_accepted, 3);
        assert_eq!(st.requests_received, 6, "{st:?}");
        assert_eq!(st.parse_errors, 1);
        assert_eq!(st.responses, [0, 3, 0, 3, 1], "{st:?}");
        assert_eq!(st.requests_timed_out, 1);
        assert_eq!(st.requests_in_app, 0);
        assert_eq!(st.threads_total, 2);
        assert_eq!(st.queue_depth, 0);
        assert!(st.bytes_received > 100 && st.bytes_sent > 500, "{st:?}");

        let m = parse(&st.to_prometheus());
        assert_eq!(m["maitred_requests_total"], 6.0);
        assert_eq!(m["maitred_parse_errors_total"], 1.0);
        assert_eq!(m["maitred_responses_total{class=2xx}"], 3.0);
        assert_eq!(m["maitred_responses_total{class=4xx}"], 3.0);
        assert_eq!(m["maitred_responses_total{class=5xx}"], 1.0);
        assert_eq!(m["maitred_connections_closed_total{reason=request_timeout}"], 1.0);
        assert_eq!(m["maitred_connections_open"], 0.0);
        assert_eq!(m["maitred_connections_accepted_total"], 3.0);
        assert_eq!(m["maitred_threads"], 2.0);
        assert_eq!(m["maitred_queue_depth"], 0.0);
        assert_eq!(m["maitred_sent_bytes_total"], st.bytes_sent as f64);
        s.stop().unwrap();
    }

    fn gauges_show_work_in_progress(poll: bool) {
        let gate = Gate::default();
        let g = gate.clone();
        let mut a = adj(poll);
        a.threads = 1;
        let s = start(
            move |_req: &mut Request| {
                g.wait();
                Response::text("done")
            },
            a,
        );
        let mut first = Client::connect(s.addr);
        first.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut second = Client::connect(s.addr);
        second.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        wait_until(Duration::from_secs(10), || {
            let st = s.handle.stats();
            st.requests_in_app == 1 && st.queue_depth == 1
        });
        let st = s.handle.stats();
        assert_eq!((st.connections_open, st.threads_busy), (2, 1), "{st:?}");
        gate.open();
        assert_eq!(first.read_response().unwrap().status, 200);
        assert_eq!(second.read_response().unwrap().status, 200);
        wait_until(Duration::from_secs(10), || s.handle.stats().requests_in_app == 0);
        s.stop().unwrap();
    }
}
