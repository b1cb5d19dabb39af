//! The connection core: one connection's whole HTTP/1 state, without a
//! socket, a lock or a clock of its own (h11's "sans-IO" shape). The I/O
//! thread owns one [`Conn`] per connection, feeds it the bytes it reads and
//! the events it sees (a worker handed the connection back, time passed, a
//! graceful stop began), and does what it answers ([`Action`]): hand a
//! request to the pool, send `100 Continue`, answer an error. The driver
//! (`channel.rs`) does the I/O; the fuzz harness drives the same core with
//! no I/O at all.
//!
//! Everything that decides a transition is in this file (h11's "rule 1").
//!
//! # The two sides
//!
//! The *client* side says what the client is sending; the *server* side
//! says what this server owes it.
//!
//! | client | meaning | deadline |
//! |---|---|---|
//! | `Idle` | between requests (blank lines may have arrived) | none (`channel_timeout` idles it out) |
//! | `Head` | part of a head has arrived | `request_head_timeout` from its first byte |
//! | `Body` | the head is complete, the body is not | `request_body_timeout` + one second per `min_request_body_rate` bytes |
//! | `MightSwitch` | a complete request proposed to switch protocols: what follows it is held, unparsed, until its response decides (h11's `MIGHT_SWITCH_PROTOCOL`) | none |
//! | `Done` | nothing more is read or parsed: an error was found, a closing response was decided, the protocol switched, a graceful stop began | none |
//!
//! | server | meaning |
//! |---|---|
//! | `Idle` | nothing is owed: the loop holds the output |
//! | `Busy(n)` | `n` requests were handed to the pool and are not all answered (a worker holds the output) |
//! | `Closing` | the last response is decided: close once the output is flushed (`linger`: after a staged close, RFC 9112 §9.6) |
//! | `Lingering` | the write side is shut; what the client still sends is read and dropped, for a bounded time and size, then the connection closes |
//! | `Switching` | the response was `101 Switching Protocols`: once the output is flushed the socket leaves the loop, with the bytes held past the request |
//! | `Pushing` | the response's body comes from a `BodySender` (the loop holds the connection and sends it); the requests behind it wait for its end |
//!
//! # Transitions
//!
//! | event | from | to | action |
//! |---|---|---|---|
//! | head complete with `Expect: 100-continue` | server `Idle`, not draining | | `Continue` |
//! | | server `Busy` | | deferred until `released` |
//! | request complete | server `Idle`/`Busy(n)` | server `Busy(n+1)`; client `Idle`, or `MightSwitch` if it proposed an upgrade | `Dispatch` |
//! | parse error | server `Idle` | client `Done`, server `Closing(linger)` | `Answer` |
//! | | server `Busy` | client `Done` | `Answer` deferred until `released` |
//! | `released` (keep-alive) | `Busy` | server `Idle` (then a deferred answer or `100 Continue` goes out; held bytes are parsed) | |
//! | `released` (close) | `Busy` | client `Done`, server `Closing` | |
//! | `released` (switch) | `Busy` | client `Done`, server `Switching` | |
//! | `released` (push) | `Busy(n)` | server `Pushing` (`n - 1` requests wait) | |
//! | `push_ended` | `Pushing` | `Busy` with what waited (the driver hands it over), else `Idle`; `Closing` when the body ends the connection | |
//! | `tick`, a deadline passed | server `Idle`, client `Head`/`Body` | client `Done`, server `Closing(linger)` | `Answer` (408) |
//! | `begin_shutdown` | server `Idle` | client `Done`, server `Closing` | |
//! | | server `Busy` | draining: no more requests; `Closing` once released | |
//! | `flushed` | `Closing(linger)` | `Lingering` | (driver shuts the write side) |
//!
//! While the server side is `Busy`, a request's deadline does not run: it
//! starts again from the moment the responses before it are done.
//!
//! As in waitress (CVE-2024-49768), once a response that closes the
//! connection is decided, what arrives is dropped, never parsed as a new
//! request.
//!
//! Thread: the I/O thread (and the fuzz harness).

use std::time::Instant;

use crate::buffers::RequestBody;
use crate::error::HttpError;
use crate::parser::{Parsed, ParserConfig, RequestHead, Version};
use crate::proxy_protocol;

pub(crate) mod stream;

use stream::{Phase, RequestStream, StreamEvent};

#[cfg(test)]
mod tests;

/// How long, at most, a staged close reads and drops what the client still
/// sends after the server's last answer (RFC 9112 §9.6; Apache's
/// `lingering_close` waits up to 30 s, nginx's `lingering_time` 30 s).
pub(crate) const LINGER_MS: u64 = 5_000;
/// A staged close ends once nothing came for this long: what was sent
/// before the client saw the answer (or the FIN) arrives within a round
/// trip, and a client that stays quiet need not hold the connection (nor
/// a graceful stop) for the whole [`LINGER_MS`] (nginx's
/// `lingering_timeout`, 5 s there).
pub(crate) const LINGER_QUIET_MS: u64 = 500;
/// How many bytes, at most, a staged close reads and drops.
pub(crate) const LINGER_BYTES: u64 = 4 << 20;

/// The settings the core applies (the server's, shared by every
/// connection; times in milliseconds, 0 for off).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Limits {
    /// `channel_request_lookahead`: complete requests that may wait behind
    /// the one being answered before the loop stops reading.
    pub lookahead: usize,
    /// `request_head_timeout`.
    pub head_timeout_ms: u64,
    /// `request_body_timeout` (off when `min_body_rate` is 0).
    pub body_timeout_ms: u64,
    /// `min_request_body_rate`, bytes a second.
    pub min_body_rate: u64,
}

/// The time an event happened, as the driver read it once for the event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Now {
    pub at: Instant,
    /// Milliseconds since the server's epoch.
    pub ms: u64,
}

/// A complete request, for the pool.
#[derive(Debug)]
pub(crate) struct Received {
    pub head: RequestHead,
    pub body: RequestBody,
    /// When it was received in full.
    pub at: Instant,
}

/// Why the server answers by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AnswerKind {
    /// The request could not be parsed (or was over a limit).
    ParseError,
    /// The request arrived too slowly (408).
    TimedOut,
    /// Too many requests wait for a worker (503, `max_queue_depth`).
    Shed,
}

/// A response the server makes by itself; the connection closes after it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub kind: AnswerKind,
    pub error: HttpError,
    /// The version of the status line.
    pub version: Version,
    /// The request was `HEAD`: the head says the length, no body follows.
    pub head_only: bool,
    /// The head of the request answered, when it was parsed (a shed
    /// request), for the access log (boxed: rare, and it keeps [`Action`]
    /// no larger than a request).
    pub head: Option<Box<RequestHead>>,
    /// When the answered request was received (or the deadline passed).
    pub at: Instant,
}

/// What the core asks its driver to do, in order.
// A request is moved once, straight to the pool: boxing it to even out the
// variants would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Action {
    /// Hand this request to the pool: it runs after every request handed
    /// over before it, and its response follows theirs.
    Dispatch(Received),
    /// Send `100 Continue` now (nothing else is being written).
    Continue,
    /// Answer this error now (nothing else is being written); the
    /// connection closes after it.
    Answer(Answer),
    /// Close the connection now (the parser is stuck: a bug, never seen).
    Close,
    /// The PROXY protocol header the connection began with (see
    /// [`Conn::expect_proxy_header`]): the client it names, if any, is the
    /// connection's client from now on.
    Proxied(proxy_protocol::Header),
    /// The connection should have begun with a PROXY protocol header and
    /// did not: close it, without an answer (the protocol's rule).
    BadProxyHeader(proxy_protocol::ProxyError),
}

/// How a worker handed the connection back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Released {
    /// The last response ends the connection (or the client is gone).
    pub close: bool,
    /// The last response was `101 Switching Protocols`.
    pub switch: bool,
    /// The last response's body is pushed: the loop sends it, and the
    /// requests behind it wait for its end.
    pub push: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Idle,
    Head { since: u64 },
    Body { since: u64, bytes: u64 },
    MightSwitch,
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Idle,
    Busy(usize),
    Closing {
        linger: bool,
    },
    Lingering {
        until: u64,
        quiet: u64,
        left: u64,
    },
    Switching,
    /// A response's body is being pushed (the loop holds the connection);
    /// `queued` requests wait for its end.
    Pushing {
        queued: usize,
    },
}

/// An action that waits for the next call of [`Conn::next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ready {
    Nothing,
    Continue,
    /// The deferred answer.
    Answer,
}

/// `100 Continue` for the request being received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Continue {
    /// Not asked for, or refused (a graceful stop began).
    NotSent,
    /// Asked for while responses were owed: sent once they are done.
    Deferred,
    Sent,
}

/// One connection's HTTP/1 state (see the module docs).
#[derive(Debug)]
pub(crate) struct Conn {
    stream: RequestStream,
    client: Client,
    server: Server,
    cont: Continue,
    /// A graceful stop began: the request being answered is the last.
    draining: bool,
    /// A request of this connection was received in full (between
    /// requests, it is an idle keep-alive connection).
    served: bool,
    /// An action decided by an event that had none to return at once.
    ready: Ready,
    /// A parse error found while responses were owed (or ready to go).
    deferred: Option<Box<Answer>>,
    /// Bytes arrived after the last response was decided and were dropped:
    /// the close is staged, so that unread bytes do not reset the
    /// connection before the client read that response.
    dropped: bool,
    /// Bytes that arrived past a request that proposed to switch
    /// protocols: parsed once its response did not switch, handed to the
    /// new protocol if it did. Before the first request, the PROXY
    /// protocol header being received.
    held: Vec<u8>,
    /// The connection must begin with a PROXY protocol header, not yet
    /// complete.
    preface: bool,
}

impl Conn {
    /// A new connection, reading requests with `config`'s limits.
    pub(crate) fn new(config: ParserConfig) -> Conn {
        Conn {
            stream: RequestStream::new(config),
            client: Client::Idle,
            server: Server::Idle,
            cont: Continue::NotSent,
            draining: false,
            served: false,
            ready: Ready::Nothing,
            deferred: None,
            dropped: false,
            held: Vec::new(),
            preface: false,
        }
    }

    /// The connection comes from a trusted proxy that speaks the PROXY
    /// protocol (`proxy_protocol`): it must begin with a v1 or v2 header,
    /// which counts against `request_head_timeout` as a head does.
    pub(crate) fn expect_proxy_header(&mut self) {
        self.preface = true;
    }

    // ----------------------------------------------------------------
    // Events
    // ----------------------------------------------------------------

    /// Parses from the front of `input` (consuming it) and returns the next
    /// action, or `None` when `input` is used up (or dropped: nothing more
    /// is parsed). Call until `None`, with empty input too after
    /// [`released`](Self::released), which may leave actions and held
    /// bytes to parse.
    pub(crate) fn next(&mut self, input: &mut &[u8], now: Now) -> Option<Action> {
        match std::mem::replace(&mut self.ready, Ready::Nothing) {
            Ready::Nothing => {}
            Ready::Continue => return Some(Action::Continue),
            Ready::Answer => {
                if let Some(answer) = self.deferred.take() {
                    return Some(Action::Answer(*answer));
                }
            }
        }
        if self.preface {
            if let Some(action) = self.preface(input, now) {
                return Some(action);
            }
            if self.preface {
                return None;
            }
        }
        loop {
            match self.client {
                Client::Done => {
                    if !input.is_empty() {
                        self.dropped = true;
                        if let Server::Closing { linger } = &mut self.server {
                            *linger = true;
                        }
                    }
                    *input = &[];
                    return None;
                }
                Client::MightSwitch => {
                    self.held.extend_from_slice(input);
                    *input = &[];
                    return None;
                }
                Client::Idle | Client::Head { .. } | Client::Body { .. } => {}
            }
            // Bytes held past a request whose response did not switch come
            // before anything read since.
            let (event, from_held) = if self.held.is_empty() {
                let before = input.len();
                let e = self.stream.next(input);
                self.run_clock(now, (before - input.len()) as u64);
                (e, false)
            } else {
                let held = std::mem::take(&mut self.held);
                let mut rest = &held[..];
                let e = self.stream.next(&mut rest);
                self.run_clock(now, (held.len() - rest.len()) as u64);
                self.held = rest.to_vec();
                (e, true)
            };
            let Some(event) = event else {
                if from_held {
                    continue;
                }
                return None;
            };
            match event {
                StreamEvent::ExpectsContinue => {
                    if self.cont != Continue::NotSent || self.draining {
                        continue;
                    }
                    match self.server {
                        Server::Idle => {
                            self.cont = Continue::Sent;
                            return Some(Action::Continue);
                        }
                        Server::Busy(_) | Server::Pushing { .. } => self.cont = Continue::Deferred,
                        _ => {}
                    }
                }
                StreamEvent::Request(Parsed::Request(head, body)) => {
                    self.served = true;
                    self.cont = Continue::NotSent;
                    self.server = match self.server {
                        Server::Busy(n) => Server::Busy(n + 1),
                        // Not reached (nothing is parsed while a body is
                        // pushed), but counted all the same.
                        Server::Pushing { queued } => Server::Pushing { queued: queued + 1 },
                        _ => Server::Busy(1),
                    };
                    if head.upgrade_offer().is_some() {
                        // Nothing after it is HTTP until its response says.
                        self.client = Client::MightSwitch;
                        self.held.extend_from_slice(input);
                        *input = &[];
                    }
                    return Some(Action::Dispatch(Received {
                        head,
                        body,
                        at: now.at,
                    }));
                }
                StreamEvent::Request(Parsed::Error(error, version)) => {
                    self.client = Client::Done;
                    self.held = Vec::new();
                    let answer = Answer {
                        kind: AnswerKind::ParseError,
                        error,
                        version,
                        // The method of a request that could not be parsed
                        // is not known: the body goes out.
                        head_only: false,
                        head: None,
                        at: now.at,
                    };
                    match self.server {
                        Server::Idle => {
                            self.server = Server::Closing { linger: true };
                            return Some(Action::Answer(answer));
                        }
                        _ => self.deferred = Some(Box::new(answer)),
                    }
                }
                StreamEvent::Stuck => {
                    self.client = Client::Done;
                    self.server = Server::Closing { linger: false };
                    return Some(Action::Close);
                }
            }
        }
    }

    /// Takes `input` into the PROXY protocol header being received; says
    /// what it came to once it is complete or impossible (the bytes after
    /// a complete header stay held, and are parsed as HTTP next).
    fn preface(&mut self, input: &mut &[u8], now: Now) -> Option<Action> {
        if input.is_empty() {
            return None;
        }
        self.held.extend_from_slice(input);
        *input = &[];
        if self.client == Client::Idle {
            self.client = Client::Head { since: now.ms };
        }
        match proxy_protocol::parse(&self.held) {
            Ok(proxy_protocol::Parsed::Incomplete) => None,
            Ok(proxy_protocol::Parsed::Complete { header, consumed }) => {
                self.preface = false;
                self.held.drain(..consumed.min(self.held.len()));
                if self.held.is_empty() {
                    // A request has not begun: the header's clock stops.
                    self.client = Client::Idle;
                }
                Some(Action::Proxied(header))
            }
            Err(e) => {
                self.preface = false;
                self.client = Client::Done;
                self.server = Server::Closing { linger: false };
                self.held = Vec::new();
                Some(Action::BadProxyHeader(e))
            }
        }
    }

    /// The worker that answered every request handed over has given the
    /// connection back. Call [`next`](Self::next) afterwards: a deferred
    /// answer or `100 Continue`, and the requests held past a proposal to
    /// switch that did not switch, come out there.
    pub(crate) fn released(&mut self, how: Released) {
        if !matches!(self.server, Server::Busy(_)) {
            return;
        }
        if how.switch {
            self.client = Client::Done;
            self.server = Server::Switching;
            self.stream.abandon();
            return;
        }
        if how.push && !how.close {
            let queued = self.owed().saturating_sub(1);
            self.server = Server::Pushing { queued };
            return;
        }
        if how.close {
            self.close_after_flush(self.draining);
            return;
        }
        self.server = Server::Idle;
        if self.deferred.is_some() {
            self.server = Server::Closing { linger: true };
            self.ready = Ready::Answer;
            return;
        }
        if self.draining {
            // Stopping: a FIN, then what crosses it is dropped (a request
            // the client sent just now must not reset the connection: it
            // retries it elsewhere, RFC 9112 §9.3.1).
            self.close_after_flush(true);
            return;
        }
        if self.client == Client::MightSwitch {
            // An ordinary response: what followed the request is parsed.
            self.client = Client::Idle;
        }
        if self.cont == Continue::Deferred {
            self.cont = Continue::Sent;
            self.ready = Ready::Continue;
        }
    }

    /// The pushed body ended and the output is flushed (`close`: the body
    /// ends the connection). True when requests waited behind it: the
    /// driver hands the first of them over (they are owed again).
    pub(crate) fn push_ended(&mut self, close: bool) -> bool {
        let Server::Pushing { queued } = self.server else {
            return false;
        };
        if close || self.draining {
            // What waited behind it is never answered: a staged close, for
            // the client may still be sending it.
            self.close_after_flush(self.draining || queued > 0);
            return false;
        }
        if queued > 0 {
            self.server = Server::Busy(queued);
            return true;
        }
        // As after any response (see `released`).
        self.server = Server::Busy(1);
        self.released(Released::default());
        false
    }

    /// A request returned by [`next`](Self::next) as `Dispatch` could not
    /// be handed to the worker holding the connection, because it had just
    /// handed the connection back ([`released`](Self::released) has been
    /// called since). True: it is still to be dispatched, as the only one
    /// owed; false: drop it (that response closed the connection).
    pub(crate) fn redispatch(&mut self) -> bool {
        match (self.server, self.client) {
            (Server::Idle, Client::Idle | Client::Head { .. } | Client::Body { .. }) => {
                self.server = Server::Busy(1);
                true
            }
            (Server::Idle, Client::MightSwitch) => {
                self.server = Server::Busy(1);
                true
            }
            _ => false,
        }
    }

    /// The response being written ends the connection (the worker said so
    /// before releasing it): nothing more is parsed, and what was parsed
    /// and not handed over is dropped.
    pub(crate) fn stop_reading(&mut self) {
        if self.client != Client::Done {
            self.client = Client::Done;
            self.dropped = true;
            self.held = Vec::new();
            self.stream.abandon();
        }
    }

    /// Answers the request just dispatched (the only one owed) with 503
    /// instead of handing it to the pool (`max_queue_depth`); the
    /// connection closes after it.
    pub(crate) fn shed(&mut self, received: Received, error: HttpError) -> Answer {
        self.client = Client::Done;
        self.server = Server::Closing { linger: true };
        self.held = Vec::new();
        self.stream.abandon();
        let head = received.head;
        Answer {
            kind: AnswerKind::Shed,
            error,
            version: head.version(),
            head_only: head.method() == "HEAD",
            head: Some(Box::new(head)),
            at: received.at,
        }
    }

    /// Time passed: answers `408` when the request being received is out
    /// of time (only while nothing is owed, so the loop writes to empty
    /// buffers; `answering`: the loop still has output to send, which also
    /// stops the clock). Detail: which deadline.
    pub(crate) fn tick(&mut self, now: Now, limits: &Limits, answering: bool) -> Option<Action> {
        if let Server::Lingering { until, quiet, .. } = self.server {
            if now.ms >= until.min(quiet) {
                self.server = Server::Closing { linger: false };
            }
            return None;
        }
        let (since, allowed, head) = match self.client {
            Client::Head { since } if limits.head_timeout_ms > 0 => {
                (since, limits.head_timeout_ms, true)
            }
            Client::Body { since, bytes }
                if limits.body_timeout_ms > 0 && limits.min_body_rate > 0 =>
            {
                // mod_reqtimeout's rule: the grace, plus a second for every
                // `min_request_body_rate` bytes received.
                let earned = bytes.saturating_mul(1000) / limits.min_body_rate;
                (since, limits.body_timeout_ms.saturating_add(earned), false)
            }
            _ => return None,
        };
        if matches!(self.server, Server::Busy(_)) || answering {
            // Earlier requests are being answered (pipelining): the clock
            // starts again once they are.
            self.client = match self.client {
                Client::Head { .. } => Client::Head { since: now.ms },
                Client::Body { bytes, .. } => Client::Body {
                    since: now.ms,
                    bytes,
                },
                c => c,
            };
            return None;
        }
        if self.server != Server::Idle || now.ms.saturating_sub(since) <= allowed {
            return None;
        }
        let detail = if head {
            format!(
                "The request head was not complete within {} seconds (request_head_timeout).",
                limits.head_timeout_ms / 1000
            )
        } else {
            format!(
                "The request body arrived slower than {} bytes per second (request_body_timeout, min_request_body_rate).",
                limits.min_body_rate
            )
        };
        self.client = Client::Done;
        self.server = Server::Closing { linger: true };
        self.stream.abandon();
        Some(Action::Answer(Answer {
            kind: AnswerKind::TimedOut,
            error: HttpError::new(408, detail),
            version: Version::Http11,
            head_only: false,
            head: None,
            at: now.at,
        }))
    }

    /// A graceful stop began: nothing new is read; an idle connection (or
    /// one still receiving a request) closes once its output is sent, a
    /// busy one once its running response is done.
    pub(crate) fn begin_shutdown(&mut self) {
        self.draining = true;
        if self.cont == Continue::Deferred {
            // The upload it would invite could not be answered.
            self.cont = Continue::NotSent;
        }
        match self.server {
            // Idle, or mid-request: a staged close (see `released`).
            Server::Idle => self.close_after_flush(true),
            Server::Busy(_) => {
                if self.client != Client::MightSwitch {
                    self.client = Client::Done;
                }
                self.stream.abandon();
            }
            Server::Closing { .. }
            | Server::Lingering { .. }
            | Server::Switching
            | Server::Pushing { .. } => {}
        }
    }

    /// The output is flushed while the connection is closing: true when
    /// the driver is to stage the close (shut the write side and linger),
    /// false when it closes now.
    pub(crate) fn flushed(&mut self, now: Now) -> bool {
        match self.server {
            Server::Closing { linger: true } => {
                self.server = Server::Lingering {
                    until: now.ms.saturating_add(LINGER_MS),
                    quiet: now.ms.saturating_add(LINGER_QUIET_MS),
                    left: LINGER_BYTES,
                };
                true
            }
            _ => false,
        }
    }

    /// Bytes read and dropped while lingering: true while the connection
    /// may go on lingering.
    pub(crate) fn lingered(&mut self, bytes: u64, now: Now) -> bool {
        if let Server::Lingering { until, left, .. } = self.server {
            if bytes < left && now.ms < until {
                self.server = Server::Lingering {
                    until,
                    quiet: now.ms.saturating_add(LINGER_QUIET_MS),
                    left: left - bytes,
                };
                return true;
            }
        }
        false
    }

    /// The bytes that arrived past the request that switched protocols
    /// (they belong to the new protocol).
    pub(crate) fn take_held(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    fn close_after_flush(&mut self, linger: bool) {
        self.client = Client::Done;
        self.server = Server::Closing {
            linger: linger || self.dropped,
        };
        self.held = Vec::new();
        self.deferred = None;
        self.stream.abandon();
    }

    /// Starts, keeps or stops the deadline clock after `taken` bytes were
    /// parsed. Dribbling never moves a clock back; blank lines start none.
    fn run_clock(&mut self, now: Now, taken: u64) {
        self.client = match (self.stream.phase(), self.client) {
            (_, c @ (Client::MightSwitch | Client::Done)) => c,
            (Phase::Idle, _) => Client::Idle,
            (Phase::Head, Client::Head { since }) => Client::Head { since },
            (Phase::Head, _) => Client::Head { since: now.ms },
            (Phase::Body, Client::Body { since, bytes }) => Client::Body {
                since,
                bytes: bytes.saturating_add(taken),
            },
            (Phase::Body, _) => Client::Body {
                since: now.ms,
                bytes: 0,
            },
        };
    }

    // ----------------------------------------------------------------
    // What the driver asks
    // ----------------------------------------------------------------

    /// Whether the loop should read now: requests are being read, and no
    /// more than `lookahead` complete ones wait behind the one answered.
    pub(crate) fn wants_read(&self, limits: &Limits) -> bool {
        let reading = matches!(
            self.client,
            Client::Idle | Client::Head { .. } | Client::Body { .. }
        );
        match self.server {
            Server::Idle => reading,
            Server::Busy(n) => reading && n <= limits.lookahead,
            // Read and drop what a client still sends after an answer.
            Server::Lingering { .. } => true,
            Server::Closing { .. } | Server::Switching | Server::Pushing { .. } => false,
        }
    }

    /// Requests are with the pool (a worker holds the output).
    pub(crate) fn busy(&self) -> bool {
        matches!(self.server, Server::Busy(_))
    }

    /// The graceful stop was begun here ([`Conn::begin_shutdown`]).
    pub(crate) fn draining(&self) -> bool {
        self.draining
    }

    /// Something is to be done the moment the worker releases the
    /// connection (a deferred answer or `100 Continue`, bytes held behind a
    /// proposal to switch, a graceful stop): the driver asks the worker to
    /// notify it then.
    pub(crate) fn waits_for_release(&self) -> bool {
        self.busy()
            && (self.deferred.is_some()
                || self.cont == Continue::Deferred
                || self.client == Client::MightSwitch
                || self.draining)
    }

    /// How many requests were handed over and are not answered.
    pub(crate) fn owed(&self) -> usize {
        match self.server {
            Server::Busy(n) => n,
            _ => 0,
        }
    }

    /// The last response is decided: close once the output is flushed.
    pub(crate) fn closing(&self) -> bool {
        matches!(self.server, Server::Closing { .. })
    }

    /// The write side is shut and what arrives is dropped.
    pub(crate) fn lingering(&self) -> bool {
        matches!(self.server, Server::Lingering { .. })
    }

    /// A response's body is being pushed.
    pub(crate) fn pushing(&self) -> bool {
        matches!(self.server, Server::Pushing { .. })
    }

    /// The protocol switches once the output is flushed.
    pub(crate) fn switching(&self) -> bool {
        self.server == Server::Switching
    }

    /// A deadline clock is running (the loop sweeps for deadlines only
    /// while some connection has one).
    pub(crate) fn clock_running(&self) -> bool {
        matches!(self.client, Client::Head { .. } | Client::Body { .. }) || self.lingering()
    }

    /// Part of a request has arrived (`Head` or `Body`).
    pub(crate) fn receiving(&self) -> bool {
        matches!(self.client, Client::Head { .. } | Client::Body { .. })
    }

    /// How willing the connection is to be closed to make room at
    /// `connection_limit` (see `Dispatcher::eviction_rank`): only with
    /// nothing owed; `last_activity` in milliseconds since the epoch.
    pub(crate) fn eviction_rank(&self, last_activity: u64) -> Option<(u8, u64)> {
        match self.server {
            Server::Idle => {}
            Server::Lingering { .. } => return Some((0, last_activity)),
            _ => return None,
        }
        match self.client {
            // Idle between requests: oldest activity first.
            Client::Idle if self.served => Some((0, last_activity)),
            // Connected and sent nothing yet: as a head that has not begun,
            // ranked by when it connected (so the newest connection, which
            // is most likely a client about to send, goes last).
            Client::Idle => Some((1, last_activity)),
            // Still receiving a head: the longest at it first.
            Client::Head { since } => Some((1, since)),
            // A body is on its way: its request is as good as queued.
            Client::Body { .. } | Client::MightSwitch | Client::Done => None,
        }
    }

    /// Nothing is owed that a worker is producing: the `channel_timeout`
    /// sweep may close the connection once nothing moved on it for that
    /// long (idle between requests, a head or body stalled, an answer the
    /// client does not read).
    pub(crate) fn idles_out(&self) -> bool {
        !matches!(self.server, Server::Busy(_) | Server::Switching)
    }
}
