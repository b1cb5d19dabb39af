//! The decoder against the cases of the Autobahn|Testsuite (1 framing, 2
//! pings, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close,
//! 9 limits), each input fed whole, a byte at a time and in pieces of
//! three: the outcome must not change.

use super::*;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const LIMIT: u64 = 1 << 20;

/// Everything decoded from `input`, and the error if it ended with one.
type Outcome = (Vec<Event>, Option<ProtocolError>);

fn feed(input: &[u8], limit: u64, piece: usize) -> Outcome {
    let mut d = Decoder::new(limit);
    let mut events = Vec::new();
    for mut chunk in input.chunks(piece.max(1)) {
        while !chunk.is_empty() {
            match d.push(chunk) {
                Ok((used, ev)) => {
                    chunk = &chunk[used..];
                    if let Some(ev) = ev {
                        events.push(ev);
                    }
                    if used == 0 {
                        // Closed: the rest is not taken.
                        assert!(d.is_closed());
                        return (events, None);
                    }
                }
                Err(e) => return (events, Some(e)),
            }
        }
    }
    (events, None)
}

/// Decodes `input` whole, byte by byte and in threes: the same outcome.
fn decode(input: &[u8], limit: u64) -> Outcome {
    let whole = feed(input, limit, input.len());
    assert_eq!(feed(input, limit, 1), whole, "fed a byte at a time");
    assert_eq!(feed(input, limit, 3), whole, "fed in threes");
    whole
}

fn frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    encode_masked(fin, op, MASK, payload)
}

fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

fn code(o: &Outcome) -> Option<u16> {
    o.1.map(|e| e.code)
}

fn text(s: &str) -> Event {
    Event::Text(s.to_string())
}

#[test]
fn case_1_text_and_binary_of_every_length_class() {
    for len in [0usize, 1, 125, 126, 127, 128, 65535, 65536, 65537] {
        let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let s = String::from_utf8(payload.clone()).unwrap();
        let (ev, err) = decode(&frame(true, OP_TEXT, &payload), LIMIT);
        assert_eq!((ev, err), (vec![Event::Text(s)], None), "text of {len}");
        let bin: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
        let (ev, err) = decode(&frame(true, OP_BINARY, &bin), LIMIT);
        assert_eq!(
            (ev, err),
            (vec![Event::Binary(bin)], None),
            "binary of {len}"
        );
    }
}

#[test]
fn header_lengths_are_read_in_each_encoding() {
    // A 16-bit length for a short payload is not minimal but is accepted;
    // a 64-bit one with its top bit set is not.
    let mut f = vec![0x82, 0xFE, 0, 3];
    f.extend_from_slice(&MASK);
    let mut p = vec![1, 2, 3];
    apply_mask(&mut p, MASK, 0);
    f.extend_from_slice(&p);
    assert_eq!(
        decode(&f, LIMIT),
        (vec![Event::Binary(vec![1, 2, 3])], None)
    );
    let mut f = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1];
    f.extend_from_slice(&MASK);
    assert_eq!(code(&decode(&f, u64::MAX)), Some(1002));
}

#[test]
fn case_2_pings_and_pongs() {
    for len in [0, 1, 125] {
        let p = vec![0xfe; len];
        assert_eq!(
            decode(&frame(true, OP_PING, &p), LIMIT),
            (vec![Event::Ping(p.clone())], None)
        );
        assert_eq!(
            decode(&frame(true, OP_PONG, &p), LIMIT),
            (vec![Event::Pong(p)], None)
        );
    }
    // 2.5: a ping of 126 bytes.
    let o = decode(&frame(true, OP_PING, &[0; 126]), LIMIT);
    assert_eq!((o.0.len(), code(&o)), (0, Some(1002)));
    // 2.10: ten pings in a row.
    let many: Vec<Vec<u8>> = (0..10).map(|i| frame(true, OP_PING, &[i])).collect();
    let (ev, err) = decode(&concat(&many), LIMIT);
    assert_eq!(err, None);
    assert_eq!(
        ev,
        (0..10).map(|i| Event::Ping(vec![i])).collect::<Vec<_>>()
    );
}

#[test]
fn case_3_reserved_bits() {
    for rsv in 1..8u8 {
        for op in [OP_TEXT, OP_BINARY, OP_PING, OP_CLOSE] {
            let mut f = frame(true, op, b"x");
            f[0] |= rsv << 4;
            // A good frame before it is still delivered.
            let mut input = frame(true, OP_TEXT, b"before");
            input.extend_from_slice(&f);
            let o = decode(&input, LIMIT);
            assert_eq!(o.0, vec![text("before")], "rsv {rsv} op {op}");
            assert_eq!(code(&o), Some(1002), "rsv {rsv} op {op}");
        }
    }
}

#[test]
fn case_4_reserved_opcodes() {
    for op in (3..8).chain(11..16) {
        for payload in [&b""[..], b"reserved"] {
            let o = decode(&frame(true, op, payload), LIMIT);
            assert_eq!(
                o,
                (vec![], Some(protocol("reserved opcode"))),
                "opcode {op}"
            );
        }
    }
}

#[test]
fn case_5_fragmentation() {
    let t = |fin, op, p: &str| frame(fin, op, p.as_bytes());
    // 5.1/5.2: fragmented pings and pongs.
    assert_eq!(code(&decode(&t(false, OP_PING, "a"), LIMIT)), Some(1002));
    assert_eq!(code(&decode(&t(false, OP_PONG, "a"), LIMIT)), Some(1002));
    // 5.3-5.5: a text message in two fragments, or one byte each.
    let o = decode(
        &concat(&[t(false, OP_TEXT, "frag"), t(true, 0, "ment")]),
        LIMIT,
    );
    assert_eq!(o, (vec![text("fragment")], None));
    let parts: Vec<Vec<u8>> = "fragmented"
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let op = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
            t(i == 9, op, &c.to_string())
        })
        .collect();
    assert_eq!(
        decode(&concat(&parts), LIMIT),
        (vec![text("fragmented")], None)
    );
    // 5.6-5.8: control frames between the fragments.
    let o = decode(
        &concat(&[
            t(false, OP_TEXT, "frag"),
            t(true, OP_PING, "p"),
            t(true, OP_PONG, "q"),
            t(true, 0, "ment"),
        ]),
        LIMIT,
    );
    assert_eq!(
        o,
        (
            vec![
                Event::Ping(b"p".to_vec()),
                Event::Pong(b"q".to_vec()),
                text("fragment")
            ],
            None
        )
    );
    // 5.9-5.14: continuations with nothing to continue.
    for fin in [true, false] {
        let o = decode(&concat(&[t(fin, 0, "x"), t(true, OP_TEXT, "y")]), LIMIT);
        assert_eq!(
            o,
            (
                vec![],
                Some(protocol("continuation frame with no message begun"))
            )
        );
    }
    // After a finished message, a continuation is an error too.
    let o = decode(&concat(&[t(true, OP_TEXT, "a"), t(true, 0, "b")]), LIMIT);
    assert_eq!((o.0.clone(), code(&o)), (vec![text("a")], Some(1002)));
    // 5.18: a new text message while one is unfinished.
    let o = decode(
        &concat(&[t(false, OP_TEXT, "a"), t(true, OP_TEXT, "b")]),
        LIMIT,
    );
    assert_eq!(code(&o), Some(1002));
    let o = decode(
        &concat(&[t(false, OP_BINARY, "a"), t(true, OP_TEXT, "b")]),
        LIMIT,
    );
    assert_eq!(code(&o), Some(1002));
    // 5.19/5.20: fragments with pings between, the message whole at the end.
    let mut v = vec![t(false, OP_TEXT, "f1")];
    for i in 2..6 {
        v.push(t(true, OP_PING, &format!("ping {i}")));
        v.push(t(i == 5, 0, &format!("f{i}")));
    }
    let (ev, err) = decode(&concat(&v), LIMIT);
    assert_eq!(err, None);
    assert_eq!(ev.last(), Some(&text("f1f2f3f4f5")));
    assert_eq!(ev.len(), 5);
    // A close between fragments is a close.
    let o = decode(
        &concat(&[t(false, OP_TEXT, "a"), frame(true, OP_CLOSE, &[3, 232])]),
        LIMIT,
    );
    assert_eq!(
        o.0,
        vec![Event::Close(Some(CloseFrame {
            code: 1000,
            reason: String::new()
        }))]
    );
    // Empty fragments.
    let o = decode(
        &concat(&[t(false, OP_TEXT, ""), t(false, 0, ""), t(true, 0, "")]),
        LIMIT,
    );
    assert_eq!(o, (vec![text("")], None));
}

/// The first byte the validator rejects, by `std::str::from_utf8`.
fn std_reject(bytes: &[u8]) -> Result<bool, usize> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(true),
        Err(e) => match e.error_len() {
            None => Ok(false),
            Some(n) => {
                let at = e.valid_up_to();
                // A lead byte that started a sequence: the byte after its
                // valid part is the one that failed it.
                if matches!(bytes[at], 0xC2..=0xF4) {
                    Err(at + n)
                } else {
                    Err(at)
                }
            }
        },
    }
}

fn ours(bytes: &[u8]) -> Result<bool, usize> {
    let mut v = Utf8Validator::new();
    v.feed(bytes)?;
    Ok(v.is_complete())
}

#[test]
fn the_validator_agrees_with_std_on_every_short_sequence() {
    for a in 0..=255u8 {
        assert_eq!(ours(&[a]), std_reject(&[a]), "{a:02x}");
        for b in 0..=255u8 {
            assert_eq!(ours(&[a, b]), std_reject(&[a, b]), "{a:02x} {b:02x}");
        }
    }
    // Three bytes after every lead byte of a longer sequence, and a sample
    // of four.
    for a in 0xE0..=0xF4u8 {
        for b in 0x70..=0xC0u8 {
            for c in 0x70..=0xC0u8 {
                let s = [a, b, c];
                assert_eq!(ours(&s), std_reject(&s), "{s:02x?}");
                for d in [0x41, 0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0] {
                    let s = [a, b, c, d];
                    assert_eq!(ours(&s), std_reject(&s), "{s:02x?}");
                }
            }
        }
    }
}

#[test]
fn the_validator_gives_the_same_answer_however_the_text_is_cut() {
    let samples: [&[u8]; 5] = [
        "κόσμε-ascii-and-more-ascii-text \u{10FFFF}".as_bytes(),
        b"abcdefgh\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
        b"\xf4\x90\x80\x80",
        b"0123456789abcdef\xc0\xafzzz",
        b"ascii ascii ascii ascii\xe2\x82",
    ];
    for s in samples {
        let whole = ours(s);
        for cut in 0..=s.len() {
            let mut v = Utf8Validator::new();
            let r = v
                .feed(&s[..cut])
                .and_then(|()| v.feed(&s[cut..]).map_err(|i| i + cut));
            let got = r.map(|()| v.is_complete());
            assert_eq!(got, whole, "{s:02x?} cut at {cut}");
        }
        assert_eq!(whole, std_reject(s));
    }
}

#[test]
fn case_6_utf8_in_text_messages() {
    // 6.2: valid text cut in every place, across fragments.
    let hello = "Hello-µ@ßöäüàá-UTF-8!!".as_bytes();
    for cut in 0..=hello.len() {
        let o = decode(
            &concat(&[
                frame(false, OP_TEXT, &hello[..cut]),
                frame(true, 0, &hello[cut..]),
            ]),
            LIMIT,
        );
        assert_eq!(
            o,
            (vec![text("Hello-µ@ßöäüàá-UTF-8!!")], None),
            "cut at {cut}"
        );
    }
    // 6.3 ff: invalid text, whole, fragmented, or the invalid byte in the
    // second of three fragments: the error comes at the second fragment
    // (fail fast), before the third arrives.
    let bad: [&[u8]; 8] = [
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
        b"\xc0\xaf",
        b"\xed\xbf\xbf",
        b"\xf4\x90\x80\x80",
        b"\xf8\x88\x80\x80\x80",
        b"\xfe",
        b"\x80",
        b"\xe0\x80\xaf",
    ];
    for b in bad {
        let o = decode(&frame(true, OP_TEXT, b), LIMIT);
        assert_eq!(code(&o), Some(1007), "{b:02x?}");
        let mid = b.len() / 2;
        let o = decode(
            &concat(&[frame(false, OP_TEXT, &b[..mid]), frame(true, 0, &b[mid..])]),
            LIMIT,
        );
        assert_eq!(code(&o), Some(1007), "{b:02x?} in two");
    }
    // Fail fast: the first two fragments alone already fail.
    let first = frame(false, OP_TEXT, "κόσμε".as_bytes());
    let second = frame(
        false,
        0,
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",
    );
    assert_eq!(
        code(&decode(&concat(&[first.clone(), second]), LIMIT)),
        Some(1007)
    );
    // ... and within one frame, before its payload is complete.
    let f = frame(
        true,
        OP_TEXT,
        b"abc\xff and a long rest that has not arrived yet",
    );
    let head_and_bad = &f[..2 + 4 + 4];
    assert_eq!(code(&decode(head_and_bad, LIMIT)), Some(1007));
    // A sequence cut at the end of the last fragment.
    let o = decode(&concat(&[first, frame(true, 0, b"\xe2\x82")]), LIMIT);
    assert_eq!(
        o.1,
        Some(ProtocolError {
            code: 1007,
            reason: "text message ends inside a UTF-8 sequence"
        })
    );
    // Binary messages are not checked.
    let o = decode(&frame(true, OP_BINARY, b"\xff\xfe"), LIMIT);
    assert_eq!(o, (vec![Event::Binary(vec![0xff, 0xfe])], None));
}

#[test]
fn case_7_close_frames() {
    let close = |p: &[u8]| decode(&frame(true, OP_CLOSE, p), LIMIT);
    assert_eq!(close(b""), (vec![Event::Close(None)], None));
    // 7.3.2: one byte.
    assert_eq!(code(&close(b"\x03")), Some(1002));
    // 7.3.4/7.3.5: a reason, up to 123 bytes.
    let mut p = close_payload(1000, &"*".repeat(123));
    assert_eq!(p.len(), 125);
    assert_eq!(
        close(&p).0,
        vec![Event::Close(Some(CloseFrame {
            code: 1000,
            reason: "*".repeat(123)
        }))]
    );
    // 7.3.6: 124 bytes of reason make a control frame too long.
    p.push(b'*');
    assert_eq!(code(&close(&p)), Some(1002));
    // 7.5.1: a reason that is not UTF-8.
    assert_eq!(
        code(&close(
            b"\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
        )),
        Some(1007)
    );
    // 7.7: valid codes; 7.9: invalid ones.
    for c in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000,
        4999,
    ] {
        assert!(is_valid_close_code(c), "{c}");
        let o = close(&close_payload(c, "bye"));
        assert_eq!(
            o.0,
            vec![Event::Close(Some(CloseFrame {
                code: c,
                reason: "bye".into()
            }))]
        );
    }
    for c in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        assert!(!is_valid_close_code(c), "{c}");
        assert_eq!(code(&close(&close_payload(c, ""))), Some(1002), "{c}");
    }
    // 7.1: nothing after a close is taken.
    let input = concat(&[
        frame(true, OP_CLOSE, &close_payload(1000, "")),
        frame(true, OP_TEXT, b"after"),
        vec![0xff, 0xff],
    ]);
    let mut d = Decoder::new(LIMIT);
    let (used, ev) = d.push(&input).unwrap();
    assert!(matches!(ev, Some(Event::Close(_))));
    assert_eq!(used, 2 + 4 + 2);
    assert_eq!(d.push(&input[used..]), Ok((0, None)));
    assert!(d.is_closed());
}

#[test]
fn case_9_the_message_limit() {
    let limit = 1000;
    let ok = vec![b'x'; 1000];
    assert_eq!(decode(&frame(true, OP_BINARY, &ok), limit).1, None);
    // One byte over, whole: refused at the header, before the payload.
    let f = frame(true, OP_BINARY, &vec![0; 1001]);
    let o = decode(&f[..8], limit);
    assert_eq!(
        o.1,
        Some(ProtocolError {
            code: 1009,
            reason: "message larger than the limit"
        })
    );
    // Over in fragments: at the header of the fragment that passes it.
    let a = frame(false, OP_TEXT, &ok[..600]);
    let b = frame(true, 0, &ok[..401]);
    let mut input = a.clone();
    input.extend_from_slice(&b[..8]);
    assert_eq!(code(&decode(&input, limit)), Some(1009));
    // Control frames do not count.
    let mut input = a;
    input.extend(frame(true, OP_PING, &[0; 125]));
    input.extend(frame(true, 0, &ok[..400]));
    let (ev, err) = decode(&input, limit);
    assert_eq!((ev.len(), err), (2, None));
    // A 16 MiB text message in 64 KiB fragments, under the default limit.
    let big = "0123456789abcdef".repeat(1 << 20);
    let frames: Vec<Vec<u8>> = big
        .as_bytes()
        .chunks(65536)
        .enumerate()
        .map(|(i, c)| frame(i == 255, if i == 0 { OP_TEXT } else { 0 }, c))
        .collect();
    let input = concat(&frames);
    let (ev, err) = feed(&input, 16 << 20, 1 << 16);
    assert_eq!(err, None);
    assert_eq!(ev, vec![Event::Text(big)]);
}

#[test]
fn unmasked_frames_are_refused() {
    let f = encode_frame(true, OP_TEXT, b"hello");
    assert_eq!(
        decode(&f, LIMIT),
        (vec![], Some(protocol("client frame not masked")))
    );
}

#[test]
fn masking_is_the_same_at_every_phase_and_length() {
    let data: Vec<u8> = (0..50).collect();
    for phase in 0..8 {
        for len in 0..data.len() {
            let mut fast = data[..len].to_vec();
            apply_mask(&mut fast, MASK, phase);
            let slow: Vec<u8> = data[..len]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ MASK[(phase + i) % 4])
                .collect();
            assert_eq!(fast, slow, "phase {phase} len {len}");
        }
    }
}

#[test]
fn server_frames_have_the_shortest_header() {
    assert_eq!(frame_header(true, OP_TEXT, 0).1, 2);
    assert_eq!(frame_header(true, OP_TEXT, 125).1, 2);
    assert_eq!(
        &frame_header(true, OP_TEXT, 126).0[..4],
        &[0x81, 126, 0, 126]
    );
    assert_eq!(
        &frame_header(false, OP_BINARY, 65535).0[..4],
        &[0x02, 126, 255, 255]
    );
    let (h, n) = frame_header(true, OP_BINARY, 65536);
    assert_eq!(&h[..n], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(
        encode_frame(true, OP_PONG, b"ab"),
        vec![0x8A, 2, b'a', b'b']
    );
}
