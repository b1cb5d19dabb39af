//! The WebSocket frame decoder (`websocket` feature) fed arbitrary bytes
//! at arbitrary split points, as a client's side of an upgraded
//! connection.
//!
//! Input: byte 0 picks the message size limit, bytes 1-2 seed the split
//! points, the rest is the stream. Checks: no panic; the outcome (every
//! event, then the error or the close, and the bytes taken) is the same
//! fed whole, one byte at a time (inputs up to 4 KiB) and cut at
//! pseudo-random points; no message is longer than the limit, no control
//! payload longer than 125 bytes, every close code one that may be sent;
//! nothing is taken after a close and an error stays; the UTF-8 validator
//! fed the stream in the same pieces agrees with `std::str::from_utf8`
//! (where it fails, and whether the text ends complete).
#![no_main]

use libfuzzer_sys::fuzz_target;
use maitred::__private::websocket::{
    is_valid_close_code, Decoder, Event, ProtocolError, Utf8Validator, MAX_CONTROL_PAYLOAD,
};

#[path = "common.rs"]
mod common;

use common::XorShift;

const LIMITS: [u64; 6] = [0, 1, 125, 1000, 65536, 16 << 20];

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    end: End,
    /// Bytes taken (not counted for an error, which ends the input
    /// wherever the piece that held it began).
    consumed: usize,
}

#[derive(Debug, PartialEq)]
enum End {
    /// The input ran out.
    More,
    Closed,
    Failed(ProtocolError),
}

fn feed(limit: u64, input: &[u8], cuts: &[usize]) -> Outcome {
    let mut d = Decoder::new(limit);
    let mut events = Vec::new();
    let mut consumed = 0;
    let mut start = 0;
    for end in cuts.iter().copied().chain(std::iter::once(input.len())) {
        let mut piece = &input[start..end];
        start = end;
        while !piece.is_empty() {
            match d.push(piece) {
                Ok((used, event)) => {
                    assert!(used <= piece.len());
                    consumed += used;
                    piece = &piece[used..];
                    if let Some(e) = event {
                        events.push(e);
                    }
                    if d.is_closed() {
                        assert_eq!(d.push(piece), Ok((0, None)), "nothing after a close");
                        return Outcome {
                            events,
                            end: End::Closed,
                            consumed,
                        };
                    }
                    assert!(used > 0, "no progress on {} bytes", piece.len());
                }
                Err(e) => {
                    assert_eq!(d.push(b"\x81\x80\0\0\0\0"), Err(e), "an error stays");
                    return Outcome {
                        events,
                        end: End::Failed(e),
                        consumed: 0,
                    };
                }
            }
        }
    }
    Outcome {
        events,
        end: End::More,
        consumed,
    }
}

fn check(limit: u64, o: &Outcome) {
    for e in &o.events {
        match e {
            Event::Text(t) => assert!(t.len() as u64 <= limit),
            Event::Binary(b) => assert!(b.len() as u64 <= limit),
            Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= MAX_CONTROL_PAYLOAD),
            Event::Close(Some(c)) => {
                assert!(is_valid_close_code(c.code), "{}", c.code);
                assert!(c.reason.len() <= MAX_CONTROL_PAYLOAD - 2);
            }
            Event::Close(None) => {}
        }
    }
    if let End::Failed(e) = o.end {
        assert!(matches!(e.code, 1002 | 1007 | 1009), "{e:?}");
    }
}

/// The validator fed in pieces: where it fails, or whether it ends
/// complete.
fn validate(input: &[u8], cuts: &[usize]) -> Result<bool, usize> {
    let mut v = Utf8Validator::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain(std::iter::once(input.len())) {
        v.feed(&input[start..end]).map_err(|i| i + start)?;
        start = end;
    }
    Ok(v.is_complete())
}

/// The same by `std`: the first byte that no valid text can have there.
fn std_validate(input: &[u8]) -> Result<bool, usize> {
    match std::str::from_utf8(input) {
        Ok(_) => Ok(true),
        Err(e) => match e.error_len() {
            None => Ok(false),
            Some(n) => {
                let at = e.valid_up_to();
                if matches!(input[at], 0xC2..=0xF4) {
                    Err(at + n)
                } else {
                    Err(at)
                }
            }
        },
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let limit = LIMITS[usize::from(data[0]) % LIMITS.len()];
    let mut rng = XorShift(u64::from(u16::from_le_bytes([data[1], data[2]])));
    let input = &data[3..];

    let whole = feed(limit, input, &[]);
    check(limit, &whole);
    assert!(whole.consumed <= input.len());
    if input.len() <= 4096 {
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(feed(limit, input, &every), whole, "fed a byte at a time");
    }
    let cuts = rng.cuts(input.len());
    assert_eq!(feed(limit, input, &cuts), whole, "cut at {cuts:?}");

    assert_eq!(
        validate(input, &cuts),
        std_validate(input),
        "UTF-8, cut at {cuts:?}"
    );
});
