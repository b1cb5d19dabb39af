//! One whole connection, without a socket: arbitrary bytes, split at
//! arbitrary points, go through the server's connection core (the same
//! `Conn` the I/O thread drives); each request is answered through the
//! real response writer, at once or (lazily) when its piece of input ends,
//! as by a busy worker.
//!
//! Input: byte 0 picks the limits, bytes 1-2 seed the split points, the rest
//! is what the client sends. Checks: no panic; what the server writes is a
//! well-formed sequence of HTTP/1.x responses (optional `100 Continue`s,
//! then one final response per answered request, in order, each framed by
//! `Content-Length`, chunked coding or the close), nothing after a response
//! that closes the connection or switches protocols; the bytes written do
//! not depend on how the input was split (the `Date` header aside, which
//! the harness's writer takes from the clock: compared with it blanked);
//! and a busy worker answers the same requests with the same responses
//! (the `100 Continue`s it defers aside).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

use common::{config_from, XorShift};
use maitred::__private::{check_transcript, comparable, drive_connection};

/// The output with every `Date:` value blanked.
fn without_dates(out: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(out.len());
    let mut rest = out;
    while let Some(i) = rest.windows(8).position(|w| w == b"\r\nDate: ") {
        v.extend_from_slice(&rest[..i + 8]);
        rest = &rest[i + 8..];
        let end = rest.windows(2).position(|w| w == b"\r\n").unwrap_or(rest.len());
        rest = &rest[end..];
    }
    v.extend_from_slice(rest);
    v
}

fuzz_target!(|data: &[u8]| {
    // The server's warnings (a short body, say) would only slow the run.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| maitred::logging::set_sink(|_, _, _| {}));
    if data.len() < 3 {
        return;
    }
    let config = config_from(data[0]);
    let seed = u64::from(u16::from_le_bytes([data[1], data[2]]));
    let input = &data[3..];
    let whole = drive_connection(config, input, &[], false);
    if let Err(e) = check_transcript(&whole) {
        panic!("{e}\n{:?}", String::from_utf8_lossy(&whole.output));
    }
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let cuts = rng.cuts(input.len());
    let split = drive_connection(config, input, &cuts, false);
    assert_eq!(
        without_dates(&whole.output),
        without_dates(&split.output),
        "cuts {cuts:?}"
    );
    assert_eq!(whole.answered_head, split.answered_head);
    let busy = drive_connection(config, input, &cuts, true);
    if let Err(e) = check_transcript(&busy) {
        panic!("busy worker, cuts {cuts:?}: {e}\n{:?}", String::from_utf8_lossy(&busy.output));
    }
    assert_eq!(comparable(&whole.output), comparable(&busy.output), "busy worker, cuts {cuts:?}");
    assert_eq!(whole.answered_head, busy.answered_head, "busy worker, cuts {cuts:?}");
});
