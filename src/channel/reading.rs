//! The I/O thread's side of a channel: reading, parsing, queueing
//! requests, flushing what the worker left, and closing. Runs on the I/O
//! thread only (the dispatcher map calls it).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::stream::{Fed, RequestStream, StreamEvent};
use super::{is_disconnect, Channel, Continue, Life, ReadSide, Sink};
use crate::dispatcher::{Cx, Dispatcher, Progress, Role, Token};
use crate::request::ConnEnviron;
use crate::server::ServerShared;
use crate::sys;

/// The I/O thread's side of a channel: the socket (closed when this is
/// dropped) and the parser of the request being received. Reads go into the
/// loop's shared buffer: everything read is parsed (and what a request keeps
/// copied) before the next channel reads.
#[derive(Debug)]
pub(crate) struct ChannelDispatcher {
    chan: Arc<Channel>,
    sock: OwnedFd,
    stream: RequestStream,
}

impl ChannelDispatcher {
    pub(crate) fn new(
        sock: OwnedFd,
        server: Arc<ServerShared>,
        origin: ConnEnviron,
    ) -> ChannelDispatcher {
        let stream = RequestStream::new(server.parser_config);
        let chan = Arc::new(Channel::new(sock.as_raw_fd(), server, origin));
        ChannelDispatcher { chan, sock, stream }
    }

    /// Feeds received bytes to the parser and queues complete requests
    /// (waitress's `received`).
    fn received(&mut self, data: &[u8], cx: &mut Cx<'_>) {
        let chan = &self.chan;
        let mut rs = chan.reqs();
        // CVE-2024-49768: once the connection is to be closed, or an error
        // response is queued, nothing more is parsed.
        if chan.life.get() >= Life::CloseWhenFlushed || rs.read == ReadSide::Done {
            return;
        }
        let fed = self.stream.feed(data, |event| match event {
            StreamEvent::ExpectsContinue => {
                if rs.cont != Continue::Sent {
                    if rs.requests.is_empty() {
                        chan.send_continue(&mut rs);
                    } else {
                        rs.cont = Continue::Deferred;
                    }
                }
            }
            StreamEvent::Request(parsed) => {
                rs.cont = Continue::NotSent;
                rs.requests.push_back(Some(parsed));
                if rs.requests.len() == 1 {
                    // Handed to the pool at the end of the loop round, with
                    // the round's other requests.
                    cx.stage(Arc::clone(chan));
                }
            }
        });
        match fed {
            Fed::More => {}
            Fed::Stop => rs.read = ReadSide::Done,
            Fed::Stuck => {
                crate::log_error!("request parser made no progress; closing the connection");
                chan.life.advance(Life::Closing);
            }
        }
    }

    /// One `recv` into `buf`, and what it means for the loop.
    fn read_into(&mut self, buf: &mut [u8], cx: &mut Cx<'_>) -> Progress {
        let recv_bytes = buf.len();
        match sys::recv(self.sock.as_raw_fd(), buf) {
            Ok(0) => Progress::Close,
            Ok(n) => {
                {
                    let mut rs = self.chan.reqs();
                    if rs.read == ReadSide::Blocked {
                        rs.read = ReadSide::Reading;
                    }
                }
                self.chan.touch();
                self.received(&buf[..n], cx);
                if self.chan.life.get() >= Life::Closing {
                    Progress::Close
                } else if n < recv_bytes {
                    // A short read: the socket is drained (a new edge comes
                    // with new data).
                    Progress::Drained
                } else {
                    Progress::More
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Progress::Drained,
            Err(e) => {
                if !is_disconnect(&e) && self.chan.server.adj.log_socket_errors {
                    crate::log_warning!("Socket error: {e}");
                }
                Progress::Close
            }
        }
    }
}

impl Dispatcher for ChannelDispatcher {
    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn role(&self) -> Role {
        Role::Channel
    }

    fn set_token(&mut self, token: Token) {
        self.chan.token.store(token.as_u64(), Ordering::Relaxed);
    }

    fn closing(&self) -> bool {
        let chan = &self.chan;
        match chan.life.get() {
            Life::Open | Life::Draining => false,
            // Flushed and due to close: no need to wait for writability
            // (the worker may have sent the last bytes itself).
            Life::CloseWhenFlushed => chan.out_pending.load(Ordering::Acquire) == 0,
            Life::Closing | Life::Closed => true,
        }
    }

    fn readable(&mut self, _cx: &mut Cx<'_>) -> bool {
        let chan = &self.chan;
        let life = chan.life.get();
        if life >= Life::Closing {
            return false;
        }
        let mut rs = chan.reqs();
        let busy = match rs.read {
            ReadSide::Done => return false,
            ReadSide::Reading | ReadSide::Blocked => {
                life != Life::Open
                    || rs.requests.len() > chan.server.adj.channel_request_lookahead
                    || chan.out_pending.load(Ordering::Acquire) > 0
            }
        };
        rs.read = if busy {
            ReadSide::Blocked
        } else {
            ReadSide::Reading
        };
        !busy
    }

    fn writable(&mut self, _cx: &mut Cx<'_>) -> bool {
        let chan = &self.chan;
        chan.out_pending.load(Ordering::Acquire) > 0 || chan.life.get() >= Life::CloseWhenFlushed
    }

    fn handle_read(&mut self, cx: &mut Cx<'_>) -> Progress {
        let recv_bytes = self.chan.server.adj.recv_bytes.max(1);
        // Borrowed out of the context for this call (no copy), so that the
        // context can take staged requests while the bytes are parsed.
        let mut read_buf = std::mem::take(cx.read_buf());
        if read_buf.len() < recv_bytes {
            read_buf.resize(recv_bytes, 0);
        }
        let progress = self.read_into(&mut read_buf[..recv_bytes], cx);
        *cx.read_buf() = read_buf;
        progress
    }

    fn handle_write(&mut self, _cx: &mut Cx<'_>) -> Progress {
        let chan = &self.chan;
        let adj = &chan.server.adj;
        let running = !chan.reqs().requests.is_empty();
        let mut blocked = false;
        {
            let mut out = chan.out();
            // While a request runs, small amounts wait for the worker's own
            // flush; but a worker waiting for the output to drain below the
            // high watermark is always served (`send_bytes` may be set
            // above the watermark).
            if out.total > 0 && (!running || out.total >= adj.send_bytes as u64 || out.waiters > 0)
            {
                match chan.flush_some(&mut out) {
                    Ok(b) => blocked = b,
                    Err(e) => {
                        chan.socket_error(&mut out, &e);
                        chan.out_cv.notify_all();
                        return Progress::Close;
                    }
                }
                if out.total <= adj.outbuf_high_watermark && out.waiters > 0 {
                    chan.out_cv.notify_all();
                }
            }
        }
        if chan.life.get() >= Life::CloseWhenFlushed
            && chan.out_pending.load(Ordering::Acquire) == 0
        {
            chan.life.advance(Life::Closing);
            return Progress::Close;
        }
        if blocked {
            Progress::Drained
        } else {
            Progress::Done
        }
    }

    fn handle_close(&mut self, _cx: &mut Cx<'_>) {
        let chan = &self.chan;
        {
            let mut out = chan.out();
            out.bufs.clear();
            out.total = 0;
            out.sink = Sink::Closed;
            chan.out_pending.store(0, Ordering::Release);
            chan.life.advance(Life::Closed);
            chan.out_cv.notify_all();
        }
        // The socket itself is closed when this dispatcher is dropped,
        // right after; no worker can use it: every send checks the sink
        // under the output lock, and it is `Closed` now.
    }

    fn maintenance(&mut self, now: Instant) -> bool {
        let chan = &self.chan;
        let timeout_ms = chan.server.adj.channel_timeout.saturating_mul(1000);
        let now_ms = chan.server.ms_at(now);
        let idle = now_ms.saturating_sub(chan.last_activity.load(Ordering::Relaxed)) > timeout_ms;
        if idle && chan.reqs().requests.is_empty() {
            chan.life.advance(Life::Closing);
            return true;
        }
        false
    }

    fn begin_shutdown(&mut self) -> bool {
        let chan = &self.chan;
        chan.life.advance(Life::Draining);
        let mut rs = chan.reqs();
        if rs.requests.is_empty() {
            // Idle (or between requests): close once what is queued is sent.
            chan.close_after_output(&mut rs);
        }
        true
    }

    fn busy(&self) -> bool {
        !self.chan.reqs().requests.is_empty() || self.chan.out_pending.load(Ordering::Acquire) > 0
    }
}
