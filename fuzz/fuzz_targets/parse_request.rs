//! The request parser fed arbitrary bytes at arbitrary split points.
//!
//! Input: byte 0 picks the limits, bytes 1-2 seed the split points, the rest
//! is the stream. Checks: no panic; the parser never holds more head bytes
//! than `max_request_header_size`; and the outcome of every request in the
//! stream (error code, detail and version, head, body, bytes consumed) is
//! the same whether the stream is fed whole, one byte at a time, or cut at
//! pseudo-random points.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

use common::{config_from, stream, XorShift};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let config = config_from(data[0]);
    let seed = u64::from(u16::from_le_bytes([data[1], data[2]]));
    let input = &data[3..];
    let whole = stream(config, input, &[]);
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    for _ in 0..2 {
        let cuts = rng.cuts(input.len());
        assert_eq!(whole, stream(config, input, &cuts), "cuts {cuts:?}");
    }
    if input.len() <= 2048 {
        let bytewise: Vec<usize> = (1..input.len()).collect();
        assert_eq!(whole, stream(config, input, &bytewise), "byte by byte");
    }
});
