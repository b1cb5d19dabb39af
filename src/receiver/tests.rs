//! Receiver tests: ports of waitress's `tests/test_receiver.py`, each run
//! whole, byte by byte and at pseudo-random split points.

use super::*;
use std::io::Read;

/// xorshift64, as in the parser tests.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Everything observable about one chunked decode.
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
    if r.is_completed() {
        assert_eq!(r.received(b"0\r\n\r\n"), 0);
    }
    let completed = r.is_completed();
    let error = r.error().map(|e| (e.code(), e.detail().to_owned()));
    let wire = r.wire_len();
    let mut decoded = Vec::new();
    r.into_body().unwrap().read_to_end(&mut decoded).unwrap();
    assert_eq!(wire, consumed as u64);
    Outcome {
        consumed,
        completed,
        error,
        decoded,
        wire,
    }
}

fn decode_with(config: &ParserConfig, input: &[u8]) -> Outcome {
    let whole = feed(config, input, &[]);
    let bytewise: Vec<usize> = (1..input.len()).collect();
    assert_eq!(whole, feed(config, input, &bytewise), "byte by byte");
    let mut rng = XorShift(0xDEAD_BEEF ^ input.len() as u64);
    for _ in 0..6 {
        if input.len() < 2 {
            break;
        }
        let mut cuts: Vec<usize> = (0..(rng.next() % 6 + 1))
            .map(|_| 1 + (rng.next() as usize) % (input.len() - 1))
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        assert_eq!(whole, feed(config, input, &cuts), "split at {cuts:?}");
    }
    whole
}

fn decode(input: &[u8]) -> Outcome {
    decode_with(&ParserConfig::default(), input)
}

#[track_caller]
fn assert_error(o: &Outcome, code: u16, detail: &str) {
    assert!(o.completed);
    assert_eq!(o.error, Some((code, detail.to_owned())));
}

#[track_caller]
fn assert_done(o: &Outcome, body: &[u8]) {
    assert!(o.completed, "{o:?}");
    assert_eq!(o.error, None);
    assert_eq!(o.decoded, body);
}

// ---------------------------------------------------------------------------
// FixedReceiver (TestFixedStreamReceiver).

#[test]
fn fixed_zero_length_is_complete_at_once() {
    let mut r = FixedReceiver::new(0, 1000);
    assert!(r.is_completed());
    assert_eq!(r.received(b"a"), 0);
    assert!(r.is_empty());
}

#[test]
fn fixed_takes_only_its_length() {
    let mut r = FixedReceiver::new(1, 1000);
    assert_eq!(r.received(b"aa"), 1);
    assert!(r.is_completed());
    assert_eq!(r.len(), 1);
    assert_eq!(r.into_body().unwrap().to_vec().unwrap(), b"a");
}

#[test]
fn fixed_waits_for_more() {
    let mut r = FixedReceiver::new(10, 1000);
    assert_eq!(r.received(b"aa"), 2);
    assert!(!r.is_completed());
    assert_eq!(r.received(b"bbbbbbbbcc"), 8);
    assert!(r.is_completed());
    assert!(r.error().is_none());
    assert_eq!(r.into_body().unwrap().to_vec().unwrap(), b"aabbbbbbbb");
}

#[test]
fn fixed_spills_to_a_file() {
    let mut r = FixedReceiver::new(6, 4);
    assert_eq!(r.received(b"abc"), 3);
    assert_eq!(r.received(b"def"), 3);
    let body = r.into_body().unwrap();
    assert!(body.is_spilled());
}

// ---------------------------------------------------------------------------
// ChunkedReceiver (TestChunkedReceiver).

#[test]
fn chunked_already_completed() {
    let mut r = ChunkedReceiver::new(&ParserConfig::default());
    assert_eq!(r.received(b"0\r\n\r\n"), 5);
    assert!(r.is_completed());
    assert_eq!(r.received(b"a"), 0);
}

#[test]
fn chunked_remainder_of_a_chunk() {
    let mut r = ChunkedReceiver::new(&ParserConfig::default());
    assert_eq!(r.received(b"64\r\n"), 4);
    assert_eq!(r.received(b"a"), 1);
    assert!(!r.is_completed());
    assert_eq!(r.decoded_len(), 1);
}

#[test]
fn chunked_control_line_not_finished() {
    let o = decode(b"a");
    assert!(!o.completed);
    assert_eq!(o.consumed, 1);
}

#[test]
fn chunked_garbage_in_control_line() {
    let o = decode(b"garbage\r\n");
    assert_error(&o, 400, INVALID_CHUNK_SIZE);
    // Decided at the first byte that cannot be a size.
    assert_eq!(o.consumed, 1);
}

#[test]
fn chunked_extension_discarded() {
    let o = decode(b"a;discard\r\n");
    assert!(!o.completed);
    assert_eq!(o.consumed, 11);
    let o = decode(b"a;discard\r\n0123456789\r\n0;discard\r\n\r\n");
    assert_done(&o, b"0123456789");
}

#[test]
fn chunked_last_chunk_waits_for_trailer() {
    let o = decode(b"0;discard\r\n");
    assert!(!o.completed);
    assert_eq!(o.consumed, 11);
}

#[test]
fn chunked_trailer_starts_with_crlf() {
    let o = decode(b"0\r\n\r\nGET");
    assert_done(&o, b"");
    assert_eq!(o.consumed, 5);
}

#[test]
fn chunked_trailer_bare_lf() {
    // waitress waits here; a bare LF is an error for us (CVE-2019-16785).
    assert_error(&decode(b"0\r\n\n"), 400, BARE_CR_LF_TRAILER);
    assert_error(&decode(b"0\r\nX: y\n\r\n"), 400, BARE_CR_LF_TRAILER);
    assert_error(&decode(b"0\r\nX: y\r\r\n"), 400, BARE_CR_LF_TRAILER);
    assert_error(&decode(b"0\r\n\rX"), 400, BARE_CR_LF_TRAILER);
}

#[test]
fn chunked_trailer_not_finished() {
    let o = decode(b"0\r\na");
    assert!(!o.completed);
    assert_eq!(o.consumed, 4);
}

#[test]
fn chunked_trailer_finished() {
    let o = decode(b"0\r\nabc: d\r\nE:\r\n\r\nnext");
    assert_done(&o, b"");
    assert_eq!(o.consumed, 17);
}

#[test]
fn chunked_trailer_validated() {
    for t in [
        &b"abc\r\n\r\n"[..],
        b" X: y\r\n\r\n",
        b"X : y\r\n\r\n",
        b"X: \x01\r\n\r\n",
        b": y\r\n\r\n",
        b"X: y\r\n\tz\r\n\r\n",
    ] {
        let mut v = b"0\r\n".to_vec();
        v.extend_from_slice(t);
        assert_error(&decode(&v), 400, INVALID_TRAILER);
    }
    assert_done(&decode(b"0\r\nX-Obs: \x85\xff\t \r\n\r\n"), b"");
}

#[test]
fn chunked_chunk_properly_terminated() {
    let o = decode(b"4\r\nWiki\r\n");
    assert!(!o.completed);
    assert_eq!(o.decoded, b"Wiki");
    assert_eq!(o.consumed, 9);
}

#[test]
fn chunked_chunk_not_properly_terminated() {
    let o = decode(b"4\r\nWikibadchunk\r\n");
    assert_error(&o, 400, CHUNK_NOT_TERMINATED);
    assert_eq!(o.decoded, b"Wiki");
    assert_eq!(o.consumed, 8);
    assert_error(&decode(b"4\r\nWiki\rX"), 400, CHUNK_NOT_TERMINATED);
}

#[test]
fn chunked_multiple_chunks() {
    let data = b"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
    let o = decode(data);
    assert_done(&o, b"Wikipedia in\r\n\r\nchunks.");
    assert_eq!(o.consumed, data.len());
}

#[test]
fn chunked_multiple_chunks_split_in_crlf() {
    let mut r = ChunkedReceiver::new(&ParserConfig::default());
    assert_eq!(r.received(b"4\r\nWiki\r"), 8);
    let rest = b"\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
    assert_eq!(r.received(rest), rest.len());
    assert!(r.is_completed() && r.error().is_none());
    assert_eq!(
        r.into_body().unwrap().to_vec().unwrap(),
        b"Wikipedia in\r\n\r\nchunks."
    );
}

#[test]
fn chunked_invalid_extensions() {
    for ext in [
        &b"\n"[..],
        b"invalid=",
        b"\r",
        b"invalid = true",
        b";",
        b"a=\"\x01\"",
        b"a=\"x\"y",
    ] {
        let mut data = b"4;".to_vec();
        data.extend_from_slice(ext);
        data.extend_from_slice(b"\r\ntest\r\n");
        assert_error(&decode(&data), 400, INVALID_CHUNK_EXTENSION);
    }
}

#[test]
fn chunked_valid_extensions() {
    for ext in [
        &b"test"[..],
        b"valid=true",
        b"valid=true;other=true",
        b"q=\"\"",
        b"q=\"a\\\"b\\\\ \t\x80\"",
        b"!#$%&'*+-.^_`|~=x",
    ] {
        let mut data = b"4;".to_vec();
        data.extend_from_slice(ext);
        data.extend_from_slice(b"\r\ntest\r\n");
        let o = decode(&data);
        assert_eq!(o.error, None, "{}", String::from_utf8_lossy(ext));
        assert_eq!(o.consumed, data.len());
        assert_eq!(o.decoded, b"test");
    }
}

#[test]
fn chunked_invalid_sizes() {
    for size in [
        &b"0x04"[..],
        b"+0x04",
        b"x04",
        b"+04",
        b" 04",
        b" 0x04",
        b"4 ",
        b"4\t",
        b";a",
    ] {
        let mut data = size.to_vec();
        data.extend_from_slice(b"\r\ntest\r\n");
        assert_error(&decode(&data), 400, INVALID_CHUNK_SIZE);
    }
    assert_error(&decode(b"4\rX"), 400, INVALID_CHUNK_SIZE);
    assert_error(&decode(b"\rX"), 400, INVALID_CHUNK_SIZE);
    assert_error(&decode(b"4;a\rX"), 400, INVALID_CHUNK_EXTENSION);
}

#[test]
fn chunked_size_overflow_is_decided_at_once() {
    let o = decode(b"10000000000000000\r\n");
    assert_error(&o, 400, INVALID_CHUNK_SIZE);
    assert_eq!(o.consumed, 17);
    // Sixteen digits fit; leading zeros are fine.
    let o = decode_with(
        &ParserConfig {
            max_request_body_size: u64::MAX,
            ..ParserConfig::default()
        },
        b"00000000000000000000007fffffffffffffff\r\n",
    );
    assert!(!o.completed);
}

#[test]
fn chunked_empty_line_before_the_first_size_is_rejected() {
    // waitress skips it; chunk-size = 1*HEXDIG. Decided at the CR.
    let o = decode(b"\r\n5\r\nhello\r\n0\r\n\r\n");
    assert_error(&o, 400, INVALID_CHUNK_SIZE);
    assert_eq!(o.consumed, 1);
}

#[test]
fn chunked_empty_line_between_chunks_is_rejected() {
    let o = decode(b"1\r\na\r\n\r\n0\r\n\r\n");
    assert_error(&o, 400, INVALID_CHUNK_SIZE);
    assert_eq!(o.consumed, 7);
    assert_eq!(o.decoded, b"a");
    // Also when the CR is the last byte received: no need to see its LF.
    let o = decode(b"1\r\na\r\n\r");
    assert_error(&o, 400, INVALID_CHUNK_SIZE);
    assert_eq!(o.consumed, 7);
}

#[test]
fn chunked_bare_lf_before_a_size_is_rejected() {
    assert_error(
        &decode(b"\n5\r\nhello\r\n0\r\n\r\n"),
        400,
        INVALID_CHUNK_SIZE,
    );
}

#[test]
fn chunked_wire_limit() {
    let config = ParserConfig {
        max_request_body_size: 10,
        ..ParserConfig::default()
    };
    // 13 wire bytes, 3 decoded: the tenth byte reaches the limit.
    let o = decode_with(&config, b"3\r\nabc\r\n0\r\n\r\n");
    assert_error(&o, 413, "exceeds max_body of 10");
    assert_eq!(o.consumed, 10);
    assert_eq!(o.wire, 10);
    // The limit wins over a byte that would be an error.
    let o = decode_with(&config, b"3\r\nabc\r\nXXXXXX");
    assert_eq!(o.consumed, 9);
    assert_error(&o, 400, INVALID_CHUNK_SIZE);
    let config = ParserConfig {
        max_request_body_size: 9,
        ..ParserConfig::default()
    };
    let o = decode_with(&config, b"3\r\nabc\r\nXXXXXX");
    assert_error(&o, 413, "exceeds max_body of 9");
    assert_eq!(o.consumed, 9);
}

#[test]
fn chunked_size_alone_over_limit_is_decided_at_once() {
    let config = ParserConfig {
        max_request_body_size: 100,
        ..ParserConfig::default()
    };
    // 4 bytes of size line + 96 data bytes reach 100.
    let o = decode_with(&config, b"60\r\nabc");
    assert_error(&o, 413, "exceeds max_body of 100");
    assert_eq!(o.consumed, 4);
    let o = decode_with(&config, b"5f\r\nabc");
    assert!(!o.completed);
}

#[test]
fn chunked_trailer_limit() {
    let config = ParserConfig {
        max_request_header_size: 8,
        ..ParserConfig::default()
    };
    // Trailer section "X: 12\r\n\r\n" is 9 bytes: the 8th reaches the limit.
    let o = decode_with(&config, b"0\r\nX: 12\r\n\r\n");
    assert_error(&o, 431, "exceeds max_header of 8");
    assert_eq!(o.consumed, 3 + 8);
    let o = decode_with(&config, b"0\r\nX:1\r\n\r\n");
    assert_done(&o, b"");
}

#[test]
fn chunked_body_spills_to_a_file() {
    let config = ParserConfig {
        inbuf_overflow: 4,
        ..ParserConfig::default()
    };
    let mut r = ChunkedReceiver::new(&config);
    let data = b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
    assert_eq!(r.received(data), data.len());
    let mut body = r.into_body().unwrap();
    assert!(body.is_spilled());
    assert_eq!(body.to_vec().unwrap(), b"abcdef");
}

#[test]
fn chunked_random_bodies_round_trip() {
    let mut rng = XorShift(777);
    for _ in 0..200 {
        let mut wire = Vec::new();
        let mut plain = Vec::new();
        for _ in 0..(rng.next() % 5) {
            let len = (rng.next() % 20 + 1) as usize;
            let chunk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if rng.next() % 2 == 0 {
                wire.extend_from_slice(format!("{len:x}").as_bytes());
            } else {
                wire.extend_from_slice(format!("{len:X};e=\"v\"").as_bytes());
            }
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(&chunk);
            wire.extend_from_slice(b"\r\n");
            plain.extend_from_slice(&chunk);
        }
        wire.extend_from_slice(b"0\r\nT: v\r\n\r\n");
        let o = decode(&wire);
        assert_done(&o, &plain);
        assert_eq!(o.consumed, wire.len());
    }
}
