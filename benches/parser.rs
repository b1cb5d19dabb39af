//! Parser throughput against httparse on the same inputs, and the 1-byte
//! drip case showing linear growth.
//!
//! Run with `cargo bench --bench parser`. Std only: `Instant` and
//! `black_box`, median of several runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use maitred::__private::{Parsed, ParserConfig, RequestParser};

const SMALL_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";

const BROWSER_GET: &[u8] = b"GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n\
Host: www.kittyhell.com\r\n\
User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10.6; ja-JP-mac; rv:1.9.2.3) Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n\
Accept-Encoding: gzip,deflate\r\n\
Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n\
Keep-Alive: 115\r\n\
Connection: keep-alive\r\n\
Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; __utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; __utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com|utmcct=/reader/|utmcmd=referral\r\n\
Referer: https://www.kittyhell.com/2010/03/\r\n\
Cache-Control: max-age=0\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: image\r\n\
Sec-Fetch-Mode: no-cors\r\n\
DNT: 1\r\n\r\n";

/// A POST with four 256-byte chunks, an extension and an empty trailer.
fn chunked_post() -> Vec<u8> {
    let mut v = b"POST /upload HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1.0\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for i in 0..4u8 {
        v.extend_from_slice(if i == 1 { b"100;x=y\r\n" } else { b"100\r\n" });
        v.extend(std::iter::repeat_n(b'a' + i, 256));
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b"0\r\n\r\n");
    v
}

/// Median ns per call of `f`, over `runs` batches of `iters` calls.
fn median_ns(runs: usize, iters: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters {
        f();
    }
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Parsing proper: a new parser fed the input, the head available.
fn ours(input: &[u8]) -> usize {
    let mut p = RequestParser::new(ParserConfig::default());
    let n = p.received(black_box(input));
    assert!(p.is_completed());
    black_box(p.head());
    n
}

/// Parsing, then handing head and body over ([`RequestParser::into_parsed`]).
fn ours_handed_over(input: &[u8]) -> usize {
    let mut p = RequestParser::new(ParserConfig::default());
    let n = p.received(black_box(input));
    assert!(p.is_completed());
    match p.into_parsed() {
        Parsed::Request(head, body) => {
            black_box(&head);
            black_box(&body);
        }
        Parsed::Error(e, _) => panic!("{e}"),
    }
    n
}

fn httparse_head(input: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(black_box(input)) {
        Ok(httparse::Status::Complete(n)) => {
            black_box(&req);
            n
        }
        other => panic!("{other:?}"),
    }
}

fn httparse_chunked(input: &[u8]) -> usize {
    let mut pos = httparse_head(input);
    loop {
        match httparse::parse_chunk_size(black_box(&input[pos..])) {
            Ok(httparse::Status::Complete((idx, size))) => {
                pos += idx;
                if size == 0 {
                    // The empty trailer section.
                    assert_eq!(&input[pos..pos + 2], b"\r\n");
                    return pos + 2;
                }
                black_box(&input[pos..pos + size as usize]);
                pos += size as usize + 2;
            }
            other => panic!("{other:?}"),
        }
    }
}

/// The time to parse `head` fed one byte at a time.
fn drip(head: &[u8]) -> Duration {
    // Thousands of field lines: only the head limit applies here.
    let config = ParserConfig {
        max_request_header_size: 1 << 20,
        max_header_fields: usize::MAX,
        ..ParserConfig::default()
    };
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let mut p = RequestParser::new(config);
        for b in head.chunks(1) {
            p.received(black_box(b));
        }
        assert!(p.is_completed() && p.error().is_none());
        black_box(p.into_parsed());
        best = best.min(t.elapsed());
    }
    best
}

fn big_head(size: usize) -> Vec<u8> {
    let mut v = b"GET / HTTP/1.1\r\nHost: example.com\r\n".to_vec();
    let mut i = 0;
    while v.len() < size - 64 {
        v.extend_from_slice(format!("X-Header-{i}: some value that is long enough\r\n").as_bytes());
        i += 1;
    }
    v.extend_from_slice(b"\r\n");
    v
}

/// A case: name, input, and the httparse function to compare with.
type Case<'a> = (&'static str, &'a [u8], fn(&[u8]) -> usize);

fn main() {
    let post = chunked_post();
    assert_eq!(ours(&post), post.len());
    assert_eq!(httparse_chunked(&post), post.len());
    println!(
        "{:<26} {:>6} {:>11} {:>13} {:>12} {:>6}",
        "case", "bytes", "maitred ns", "+into_parsed", "httparse ns", "ratio"
    );
    let cases: [Case; 3] = [
        ("small GET", SMALL_GET, httparse_head),
        ("browser GET, 15 fields", BROWSER_GET, httparse_head),
        ("POST chunked 4 x 256 B", &post, httparse_chunked),
    ];
    // `PARSER_BENCH_ONLY=<part of a case name>` runs that case alone (for
    // profiling).
    let only = std::env::var("PARSER_BENCH_ONLY").ok();
    for (name, input, theirs) in cases {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let iters = 20_000;
        let a = median_ns(15, iters, || {
            black_box(ours(input));
        });
        let handed = median_ns(15, iters, || {
            black_box(ours_handed_over(input));
        });
        let b = median_ns(15, iters, || {
            black_box(theirs(input));
        });
        println!(
            "{:<26} {:>6} {:>11.1} {:>13.1} {:>12.1} {:>6.2}",
            name,
            input.len(),
            a,
            handed,
            b,
            a / b
        );
    }
    if only.is_some() {
        return;
    }
    println!();
    let small = big_head(64 * 1024);
    let large = big_head(256 * 1024);
    let t_small = drip(&small);
    let t_large = drip(&large);
    println!(
        "1-byte drip: 64 KiB head {:.2} ms, 256 KiB head {:.2} ms, ratio {:.2} (linear = 4, quadratic = 16)",
        t_small.as_secs_f64() * 1e3,
        t_large.as_secs_f64() * 1e3,
        t_large.as_secs_f64() / t_small.as_secs_f64()
    );
}
