//! Shared by the fuzz targets: feeding a parser at given split points and
//! recording everything observable about the outcome.
#![allow(dead_code)]

use maitred::__private::{Parsed, ParserConfig, RequestParser, Version};

/// xorshift64: split points from a seed.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0 | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Sorted distinct cut points in `1..len`.
    pub fn cuts(&mut self, len: usize) -> Vec<usize> {
        if len < 2 {
            return Vec::new();
        }
        let n = (self.next() % 16 + 1) as usize;
        let mut v: Vec<usize> = (0..n)
            .map(|_| 1 + (self.next() as usize) % (len - 1))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// What a head looked like.
#[derive(Clone, Debug, PartialEq)]
pub struct Head {
    pub method: String,
    pub uri: String,
    pub version: Version,
    pub path: Vec<u8>,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub content_length: Option<u64>,
}

/// One request's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub consumed: usize,
    pub completed: bool,
    pub empty: bool,
    pub headers_finished: bool,
    pub expect_continue: bool,
    pub error: Option<(u16, String, Version)>,
    pub head: Option<Head>,
    pub body: Option<Vec<u8>>,
}

/// Feeds `input` to one parser, cut at `cuts` (sorted, in `1..len`),
/// checking the memory bound after every call.
pub fn feed(config: ParserConfig, input: &[u8], cuts: &[usize]) -> Outcome {
    let mut p = RequestParser::new(config);
    let mut consumed = 0;
    let mut start = 0;
    let bound = config.max_request_header_size.min(1 << 30);
    for end in cuts.iter().copied().chain(std::iter::once(input.len())) {
        let mut piece = &input[start..end];
        start = end;
        while !piece.is_empty() && !p.is_completed() {
            let n = p.received(piece);
            assert!(n > 0 && n <= piece.len(), "no progress");
            // Bounded memory: never more head bytes than the limit.
            assert!(
                (p.buffered_head_bytes() as u64) < bound.max(1),
                "holds {} head bytes",
                p.buffered_head_bytes()
            );
            consumed += n;
            piece = &piece[n..];
        }
        if p.is_completed() {
            break;
        }
    }
    let completed = p.is_completed();
    if completed {
        assert_eq!(p.received(b"x"), 0);
        assert!(p.headers_finished());
    }
    let empty = p.is_empty();
    let headers_finished = p.headers_finished();
    let expect_continue = p.expect_continue();
    let head = p.head().map(|h| Head {
        method: h.method().to_owned(),
        uri: h.uri().to_owned(),
        version: h.version(),
        path: h.path().to_vec(),
        query: h.query().to_owned(),
        headers: h
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_vec()))
            .collect(),
        content_length: h.content_length(),
    });
    if p.error().is_some() {
        assert!(head.is_none() && !expect_continue);
    }
    let (error, body) = if completed && !empty {
        match p.into_parsed() {
            Parsed::Request(_, mut b) => (None, Some(b.to_vec().expect("body"))),
            Parsed::Error(e, v) => (Some((e.code(), e.detail().to_owned(), v)), None),
        }
    } else {
        (None, None)
    };
    Outcome {
        consumed,
        completed,
        empty,
        headers_finished,
        expect_continue,
        error,
        head,
        body,
    }
}

/// Parses a whole stream the way the channel does: one parser per request
/// until the data runs out, an error, or an incomplete request.
pub fn stream(config: ParserConfig, input: &[u8], cuts: &[usize]) -> Vec<Outcome> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let rest = &input[offset..];
        let local: Vec<usize> = cuts
            .iter()
            .filter(|&&c| c > offset && c < input.len())
            .map(|&c| c - offset)
            .collect();
        let o = feed(config, rest, &local);
        offset += o.consumed;
        let go_on = o.completed && o.error.is_none() && offset < input.len();
        out.push(o);
        if !go_on || out.len() > 64 {
            return out;
        }
    }
}

/// A config chosen by the input, so that small limits get exercised too.
/// Bits 0-1: the head limit; 2-3: the body limit; 4-5: `inbuf_overflow`;
/// 6-7: the limits on a head's elements (request line, field line, number
/// of field lines), small ones included, and none at all.
pub fn config_from(selector: u8) -> ParserConfig {
    let header = [262_144, 40, 100, 1000][usize::from(selector & 3)];
    let body = [1_073_741_824, 0, 12, 300][usize::from((selector >> 2) & 3)];
    let overflow = [524_288, 524_288, 64, 16][usize::from((selector >> 4) & 3)];
    let (line, field, fields) = [
        (8192, 8192, 100),
        (24, 16, 2),
        (60, 40, 8),
        (u64::MAX, u64::MAX, usize::MAX),
    ][usize::from((selector >> 6) & 3)];
    ParserConfig {
        max_request_header_size: header,
        max_request_body_size: body,
        inbuf_overflow: overflow,
        max_request_line_size: line,
        max_header_field_size: field,
        max_header_fields: fields,
    }
}
