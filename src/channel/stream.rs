//! A connection's incoming bytes as a stream of requests: the parser of the
//! request being received, fed whatever the socket gave, however it was
//! split. No socket and no locks here, so the same code serves the channel
//! and the connection-level fuzz harness.
//!
//! Thread: the I/O thread (and the fuzz harness).

use crate::parser::{Parsed, ParserConfig, RequestParser};

/// What feeding bytes found, in order.
// A request is moved once, straight into the channel's queue: boxing it to
// even out the variants would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum StreamEvent {
    /// The head of the request being received is complete, valid, and asks
    /// for `100 Continue`. Reported again with every later feed until the
    /// request completes; the caller keeps track of having answered it.
    ExpectsContinue,
    /// A complete request, or the error response for a request that could
    /// not be parsed. After an error nothing more is parsed: [`feed`]
    /// returns [`Fed::Stop`] and the caller drops what follows.
    ///
    /// [`feed`]: RequestStream::feed
    Request(Parsed),
}

/// How a feed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fed {
    /// Every byte was taken; more may come.
    More,
    /// A parse error was reported: read and parse nothing more.
    Stop,
    /// The parser neither took bytes nor completed a request (a bug, never
    /// seen): close the connection rather than loop.
    Stuck,
}

/// Where the request being received is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Between requests: nothing of the next one has arrived.
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
}

impl RequestStream {
    pub(crate) fn new(config: ParserConfig) -> RequestStream {
        RequestStream {
            config,
            parser: None,
        }
    }

    /// Where the request being received is.
    pub(crate) fn phase(&self) -> Phase {
        match &self.parser {
            None => Phase::Idle,
            Some(p) if p.headers_finished() => Phase::Body,
            Some(_) => Phase::Head,
        }
    }

    /// Forgets the request being received (its deadline passed).
    pub(crate) fn abandon(&mut self) {
        self.parser = None;
    }

    /// Parses `data`, reporting each event to `on` as it is found.
    pub(crate) fn feed(&mut self, mut data: &[u8], mut on: impl FnMut(StreamEvent)) -> Fed {
        while !data.is_empty() {
            let config = self.config;
            let parser = self
                .parser
                .get_or_insert_with(|| RequestParser::new(config));
            let n = parser.received(data);
            if parser.expect_continue() && parser.headers_finished() && parser.error().is_none() {
                on(StreamEvent::ExpectsContinue);
            }
            if parser.is_completed() {
                if let Some(p) = self.parser.take() {
                    // A parser that completed on blank lines alone (the
                    // CRLFs a client may send between requests) is no
                    // request.
                    if !p.is_empty() {
                        let parsed = p.into_parsed();
                        let is_error = matches!(parsed, Parsed::Error(..));
                        on(StreamEvent::Request(parsed));
                        if is_error {
                            // Every parse error closes the connection: what
                            // was pipelined behind it is dropped.
                            return Fed::Stop;
                        }
                    }
                }
            } else if n == 0 {
                return Fed::Stuck;
            }
            if n >= data.len() {
                break;
            }
            data = &data[n..];
        }
        Fed::More
    }
}
