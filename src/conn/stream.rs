//! A connection's incoming bytes as a stream of requests: the parser of the
//! request being received, fed whatever the socket gave, however it was
//! split, and asked for one event at a time (pull style, as h11's
//! `next_event`), so that its caller can stop between two requests (a
//! request that proposes to switch protocols: what follows it is not HTTP).
//! No socket and no locks here.
//!
//! Thread: the I/O thread (and the fuzz harness).

use crate::parser::{Parsed, ParserConfig, RequestParser};

/// What the bytes fed so far produced.
// A request is moved once, straight to its consumer: boxing it to even out
// the variants would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum StreamEvent {
    /// The head of the request being received is complete, valid, and asks
    /// for `100 Continue` (reported once per request).
    ExpectsContinue,
    /// A complete request, or the error response for a request that could
    /// not be parsed. After an error nothing more is parsed: every later
    /// call returns `None` without consuming a byte.
    Request(Parsed),
    /// The parser neither took bytes nor completed a request (a bug, never
    /// seen): the caller closes the connection rather than loop.
    Stuck,
}

/// Where the request being received is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Between requests: nothing of the next one has arrived but, perhaps,
    /// blank lines.
    Idle,
    /// Some of a head has arrived, not all of it.
    Head,
    /// The head is complete, the body is not.
    Body,
}

/// The parser of the request being received, made when its first byte
/// arrives (an idle keep-alive connection holds none).
#[derive(Debug)]
pub(crate) struct RequestStream {
    config: ParserConfig,
    parser: Option<RequestParser>,
    /// `ExpectsContinue` was reported for the request being received.
    continue_reported: bool,
    /// A parse error was reported: nothing more is parsed.
    failed: bool,
}

impl RequestStream {
    pub(crate) fn new(config: ParserConfig) -> RequestStream {
        RequestStream {
            config,
            parser: None,
            continue_reported: false,
            failed: false,
        }
    }

    /// Where the request being received is.
    pub(crate) fn phase(&self) -> Phase {
        match &self.parser {
            None => Phase::Idle,
            Some(p) if p.headers_finished() => Phase::Body,
            Some(p) if p.is_blank() => Phase::Idle,
            Some(_) => Phase::Head,
        }
    }

    /// Forgets the request being received (its deadline passed, or the
    /// connection is closing).
    pub(crate) fn abandon(&mut self) {
        self.parser = None;
        self.continue_reported = false;
    }

    /// Parses from the front of `data`, consuming what it parsed, until an
    /// event is found (returned) or `data` is used up (`None`). As in
    /// waitress, `100 Continue` is reported as soon as the head is complete,
    /// even when the body came with it.
    pub(crate) fn next(&mut self, data: &mut &[u8]) -> Option<StreamEvent> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(p) = &self.parser {
                if !self.continue_reported
                    && p.expect_continue()
                    && p.headers_finished()
                    && p.error().is_none()
                {
                    self.continue_reported = true;
                    return Some(StreamEvent::ExpectsContinue);
                }
                if p.is_completed() {
                    let p = self.parser.take()?;
                    self.continue_reported = false;
                    // A parser that completed on blank lines alone (the
                    // CRLFs a client may send between requests) is no
                    // request.
                    if p.is_empty() {
                        continue;
                    }
                    let parsed = p.into_parsed();
                    // Every parse error closes the connection: what was
                    // pipelined behind it is never parsed.
                    self.failed = matches!(parsed, Parsed::Error(..));
                    return Some(StreamEvent::Request(parsed));
                }
            }
            if data.is_empty() {
                return None;
            }
            let config = self.config;
            let parser = self
                .parser
                .get_or_insert_with(|| RequestParser::new(config));
            let n = parser.received(data);
            *data = data.get(n..).unwrap_or(&[]);
            if n == 0 && !parser.is_completed() {
                self.failed = true;
                return Some(StreamEvent::Stuck);
            }
        }
    }
}
