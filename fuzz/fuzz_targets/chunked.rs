//! The chunked receiver fed arbitrary bytes at arbitrary split points.
//!
//! Input: byte 0 picks the limits, bytes 1-2 seed the split points, the rest
//! is the chunked body. Checks: no panic; the outcome (bytes consumed,
//! completion, error, decoded bytes, wire count) is the same fed whole, one
//! byte at a time, or cut at pseudo-random points; the wire count equals the
//! bytes consumed, stays below the body limit unless that is the error, and
//! the decoded body is never longer than the wire bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maitred::__private::ParserConfig;
use maitred::__private::ChunkedReceiver;

#[path = "common.rs"]
mod common;

use common::{config_from, XorShift};

#[derive(Debug, PartialEq)]
struct Outcome {
    consumed: usize,
    completed: bool,
    error: Option<(u16, String)>,
    decoded: Vec<u8>,
    wire: u64,
}

fn feed(config: &ParserConfig, input: &[u8], cuts: &[usize]) -> Outcome {
    let mut r = ChunkedReceiver::new(config);
    let mut consumed = 0;
    let mut start = 0;
    for end in cuts.iter().copied().chain(std::iter::once(input.len())) {
        let mut piece = &input[start..end];
        start = end;
        while !piece.is_empty() && !r.is_completed() {
            let n = r.received(piece);
            assert!(n > 0 && n <= piece.len());
            consumed += n;
            piece = &piece[n..];
        }
    }
    let completed = r.is_completed();
    if completed {
        assert_eq!(r.received(b"0\r\n\r\n"), 0);
    }
    let error = r.error().map(|e| (e.code(), e.detail().to_owned()));
    let wire = r.wire_len();
    assert_eq!(wire, consumed as u64);
    if error.as_ref().map(|e| e.0) != Some(413) {
        assert!(wire < config.max_request_body_size.max(1));
    }
    let decoded = r.into_body().expect("body").to_vec().expect("read");
    assert!(decoded.len() as u64 <= wire);
    Outcome {
        consumed,
        completed,
        error,
        decoded,
        wire,
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let config = config_from(data[0]);
    let seed = u64::from(u16::from_le_bytes([data[1], data[2]]));
    let input = &data[3..];
    let whole = feed(&config, input, &[]);
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    for _ in 0..2 {
        let cuts = rng.cuts(input.len());
        assert_eq!(whole, feed(&config, input, &cuts), "cuts {cuts:?}");
    }
    if input.len() <= 4096 {
        let bytewise: Vec<usize> = (1..input.len()).collect();
        assert_eq!(whole, feed(&config, input, &bytewise), "byte by byte");
    }
});
