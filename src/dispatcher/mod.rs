//! The dispatcher map and its loop: the analogue of waitress's `wasyncore`.
//!
//! A [`Map`] holds every descriptor the I/O thread watches (listeners, the
//! trigger, client channels), each with a [`Dispatcher`]: the object that
//! says whether it is `readable()` / `writable()` right now and handles the
//! read, write and close events, exactly as an asyncore `dispatcher` does.
//! [`Map::poll`] is asyncore's `poll_fun`: one wait on the poller, then the
//! handlers of the ready dispatchers.
//!
//! # Pollers
//!
//! Three backends implement the small [`Poller`] trait, one per file:
//! `epoll` (Linux default), `kqueue` (macOS and the BSDs) and `poll`
//! (portable; chosen with the `asyncore_use_poll` setting, and the way to
//! run the whole test suite over a second backend on Linux).
//!
//! # Predicates without rescanning
//!
//! wasyncore rebuilds the interest set from every dispatcher's predicates on
//! each iteration, which costs O(connections) per wake-up. Here the
//! edge-triggered backends register each descriptor once for both
//! directions and the map caches readiness per dispatcher
//! (`read_ready`/`write_ready`, cleared when a handler reports the socket
//! drained). A dispatcher's predicates are evaluated when something happened
//! to it: an event from the poller, a notification from a worker (through
//! the trigger), its maintenance, or its deadline. The level-triggered
//! `poll` backend instead gets the predicates as its interest after every
//! evaluation, as wasyncore's `poll2` does.
//!
//! A dispatcher that says it is not `readable()` while its socket may have
//! data (a channel busy with a request) must itself arrange for the loop to
//! be told when that changes (a channel asks the worker that holds it to
//! notify the loop through the trigger when it hands the connection back).
//!
//! # What the reactor knows
//!
//! Descriptors, readiness and tokens: nothing of HTTP or of the server
//! (as mio's `Poll`). Whatever the handlers share (the server's staging of
//! requests for the pool, its read buffer) is the loop owner's `E`, lent
//! to each handler as [`Cx::env`]. Closing and detaching are the handler's
//! decisions: the map deregisters for real (`EPOLL_CTL_DEL`, kqueue
//! `EV_DELETE`, poll's list) when a handler leaves with its socket open
//! ([`Dispatcher::detaching`]), and only forgets a descriptor that is
//! closed right after.
//!
//! Thread: the I/O thread only.

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// Which poller a system gets, each list written once (as mio keeps its
// `cfg` lists behind macros).
macro_rules! cfg_epoll {
    ($($item:item)*) => { $( #[cfg(any(target_os = "linux", target_os = "android"))] $item )* };
}
macro_rules! cfg_kqueue {
    ($($item:item)*) => { $(
        #[cfg(any(
            target_os = "macos",
            target_os = "ios",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "openbsd",
            target_os = "dragonfly"
        ))]
        $item
    )* };
}
macro_rules! cfg_poll_only {
    ($($item:item)*) => { $(
        #[cfg(not(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "openbsd",
            target_os = "dragonfly"
        )))]
        $item
    )* };
}

cfg_epoll! {
    mod epoll;
}
cfg_kqueue! {
    mod kqueue;
}
mod poll;

mod admission;
pub(crate) use admission::{Admissions, Census};

/// Identifies a registered descriptor: its slot in the map and the slot's
/// generation, so that a stale token (a closed channel whose slot was
/// reused) is recognised and ignored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Token(u64);

impl Token {
    pub(crate) fn new(slot: u32, generation: u32) -> Token {
        Token((u64::from(generation) << 32) | u64::from(slot))
    }
    pub(crate) fn slot(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }
    pub(crate) fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub(crate) fn as_u64(self) -> u64 {
        self.0
    }
    pub(crate) fn from_u64(v: u64) -> Token {
        Token(v)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}#{})", self.slot(), self.generation())
    }
}

/// What a dispatcher wants the poller to watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Interest {
    pub read: bool,
    pub write: bool,
}

/// One readiness report from a poller.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    pub token: Token,
    pub readable: bool,
    pub writable: bool,
    /// Hang-up or error: the connection is gone (asyncore closes at once).
    pub closed: bool,
    /// The peer closed its sending side: the end of the stream can be
    /// read, even when a short read makes the socket look drained.
    pub read_closed: bool,
}

/// The operations every backend provides.
pub(crate) trait Poller: fmt::Debug + Send {
    /// True when readiness is reported once per change (epoll `EPOLLET`,
    /// kqueue `EV_CLEAR`); false when it is reported as long as it lasts.
    fn edge_triggered(&self) -> bool;
    /// Starts watching `fd`.
    fn register(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()>;
    /// Changes what is watched (level-triggered backends; edge-triggered
    /// ones watch both directions from registration and may ignore this).
    fn reregister(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()>;
    /// Stops watching `fd`, which stays open (a detached handler's socket
    /// goes on elsewhere): the registration is really removed.
    fn deregister(&mut self, fd: RawFd) -> io::Result<()>;
    /// Forgets `fd`, which is about to be closed. Closing the last
    /// descriptor of a socket removes it from an epoll or kqueue set by
    /// itself, so those backends make no system call here; poll drops it
    /// from its list.
    fn forget(&mut self, fd: RawFd) -> io::Result<()> {
        self.deregister(fd)
    }
    /// Waits up to `timeout` (`None`: forever) and appends ready events.
    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()>;
}

/// Which backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// epoll on Linux, kqueue on macOS and the BSDs, poll elsewhere.
    Default,
    /// poll(2) everywhere (waitress's `asyncore_use_poll`).
    Poll,
}

/// Creates the poller for `backend`.
pub(crate) fn new_poller(backend: Backend) -> io::Result<Box<dyn Poller>> {
    match backend {
        Backend::Poll => Ok(Box::new(poll::PollPoller::new())),
        Backend::Default => default_poller(),
    }
}

cfg_epoll! {
    fn default_poller() -> io::Result<Box<dyn Poller>> {
        Ok(Box::new(epoll::Epoll::new()?))
    }
}
cfg_kqueue! {
    fn default_poller() -> io::Result<Box<dyn Poller>> {
        Ok(Box::new(kqueue::Kqueue::new()?))
    }
}
cfg_poll_only! {
    fn default_poller() -> io::Result<Box<dyn Poller>> {
        Ok(Box::new(poll::PollPoller::new()))
    }
}

/// What a handler reports about the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// The socket is drained in that direction (`WouldBlock`, or a short
    /// read): wait for the next readiness report.
    Drained,
    /// Nothing more to do for now; the socket's readiness is unchanged
    /// (e.g. everything was written and the socket can take more).
    Done,
    /// There may be more to do: call again on the next round.
    More,
    /// The dispatcher must be closed now.
    Close,
}

/// What a dispatcher is to the map (it counts channels for the
/// connection limit and pauses listeners).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Listener,
    Trigger,
    Channel,
}

/// A descriptor's handlers: wasyncore's `dispatcher` interface. `E` is
/// whatever the loop's owner lends every handler (see [`Cx::env`]); the
/// map never looks inside it.
pub(crate) trait Dispatcher<E>: fmt::Debug + Send {
    /// The descriptor.
    fn fd(&self) -> RawFd;
    /// What it is (the map counts channels for the connection limit).
    fn role(&self) -> Role;
    /// Told once, right after registration.
    fn set_token(&mut self, _token: Token) {}
    /// Called first whenever the map evaluates the dispatcher, before
    /// [`closing`](Self::closing) and the predicates: a handler whose
    /// state another thread changes catches up with it here.
    fn prepare(&mut self, _cx: &mut Cx<'_, E>) {}
    /// Whether it wants to read now.
    fn readable(&mut self, cx: &mut Cx<'_, E>) -> bool;
    /// Whether it wants to write now.
    fn writable(&mut self, cx: &mut Cx<'_, E>) -> bool;
    /// Reads (or accepts).
    fn handle_read(&mut self, cx: &mut Cx<'_, E>) -> Progress;
    /// Writes.
    fn handle_write(&mut self, cx: &mut Cx<'_, E>) -> Progress;
    /// Releases everything; the map has stopped watching the descriptor
    /// and drops the dispatcher right after (which closes it).
    fn handle_close(&mut self, cx: &mut Cx<'_, E>);
    /// The dispatcher left the loop ([`detaching`](Self::detaching) said
    /// so): the poller no longer watches its
    /// descriptor (the registration is really removed), and the handler
    /// hands its socket to whatever takes it on.
    fn handle_detach(self: Box<Self>, _cx: &mut Cx<'_, E>) {}
    /// True when the dispatcher must be closed now, whatever the socket's
    /// readiness (a timed-out or failed channel). A dispatcher that wants to
    /// flush first says so through `writable()` instead.
    fn closing(&self) -> bool {
        false
    }
    /// True when the dispatcher must leave the loop now with its socket
    /// open ([`handle_detach`](Self::handle_detach)).
    fn detaching(&self) -> bool {
        false
    }
    /// Whether dropping the dispatcher closes its descriptor (then the map
    /// tells the poller to forget it rather than to deregister it, which
    /// saves epoll a system call per connection).
    fn closes_on_drop(&self) -> bool {
        true
    }
    /// Periodic sweep (waitress's `maintenance`): true asks the map to
    /// evaluate this dispatcher now (e.g. it decided to close).
    fn maintenance(&mut self, _now: Instant) -> bool {
        false
    }
    /// How willing this dispatcher is to be closed to make room for a new
    /// connection at `connection_limit`: `None` never (a request queued,
    /// running or being answered, a body being received); otherwise a
    /// class (lower goes first) and, within it, a time (older goes first).
    fn eviction_rank(&mut self) -> Option<(u8, u64)> {
        None
    }
    /// About to be closed to make room for a new connection (for the
    /// statistics).
    fn evicted(&mut self) {}
    /// Called instead of registering a new connection for which no room
    /// could be made: answer it (a 503) before it is dropped and closed.
    fn refuse(&mut self) {}
    /// Frequent sweep (about once a second) for the deadlines of requests
    /// being received: true asks the map to evaluate this dispatcher now.
    fn receive_deadlines(&mut self, _now: Instant) -> bool {
        false
    }
    /// A time at which the map must evaluate this dispatcher even without
    /// an event (e.g. the end of an accept back-off).
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// Graceful stop began: true asks the map to evaluate it now.
    fn begin_shutdown(&mut self) -> bool {
        false
    }
    /// Anything still in progress that a graceful stop should wait for.
    fn busy(&self) -> bool {
        false
    }
}

/// What handlers can ask of the map while it runs them.
pub(crate) struct Cx<'a, E> {
    /// The time of this round.
    pub now: Instant,
    /// Whether the poller is edge-triggered.
    pub edge_triggered: bool,
    /// The poller said the dispatcher being run is readable, and it has not
    /// read to the end since (always false outside its evaluation).
    pub read_ready: bool,
    /// What the loop's owner lends every handler.
    pub env: &'a mut E,
    lent: &'a mut Lent<E>,
}

/// What the map lends each handler through its [`Cx`].
struct Lent<E> {
    /// Tokens handlers asked to be evaluated.
    woken: Vec<Token>,
    /// New connections waiting for a place under `connection_limit` (see
    /// [`Cx::admit`]).
    admitting: Vec<Box<dyn Dispatcher<E>>>,
}

impl<E> Default for Lent<E> {
    fn default() -> Self {
        Lent {
            woken: Vec::new(),
            admitting: Vec::new(),
        }
    }
}

impl<E> fmt::Debug for Lent<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lent")
            .field("woken", &self.woken.len())
            .field("admitting", &self.admitting.len())
            .finish()
    }
}

impl<E> Cx<'_, E> {
    /// Hands a new connection to the map, which registers it if there is
    /// room under `connection_limit`, makes room by closing the connection
    /// most willing to go ([`Dispatcher::eviction_rank`]), or refuses it
    /// ([`Dispatcher::refuse`]).
    pub(crate) fn admit(&mut self, d: Box<dyn Dispatcher<E>>) {
        self.lent.admitting.push(d);
    }

    /// Asks the map to evaluate `token` in this round or the next.
    pub(crate) fn wake(&mut self, token: Token) {
        self.lent.woken.push(token);
    }
}

impl<E> fmt::Debug for Cx<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cx")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Slot<E> {
    generation: u32,
    entry: Option<Entry<E>>,
}

#[derive(Debug)]
struct Entry<E> {
    d: Box<dyn Dispatcher<E>>,
    fd: RawFd,
    read_ready: bool,
    write_ready: bool,
    /// The peer's end of stream is waiting to be read: reads are never
    /// "drained" until it has been (an edge-triggered poller reports it
    /// once, possibly together with the last data).
    read_closed: bool,
    closed: bool,
    queued: bool,
    interest: Interest,
}

/// How a dispatcher leaves the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leave {
    Close,
    Detach,
}

/// Applies a handler's report to the entry's cached readiness; says
/// whether the dispatcher leaves the map.
fn progress(p: Progress, ready: &mut bool, again: &mut bool) -> Option<Leave> {
    match p {
        Progress::Drained => {
            *ready = false;
            None
        }
        Progress::Done => None,
        Progress::More => {
            *again = true;
            None
        }
        Progress::Close => Some(Leave::Close),
    }
}

/// The map of dispatchers and the poller that watches them.
#[derive(Debug)]
pub(crate) struct Map<E> {
    poller: Box<dyn Poller>,
    edge: bool,
    slots: Vec<Slot<E>>,
    free: Vec<u32>,
    len: usize,
    channels: usize,
    /// Slots of dispatchers with deadlines (listeners).
    timed: Vec<Token>,
    /// Slots of listeners, re-evaluated when a channel closes.
    listeners: Vec<Token>,
    pending: Vec<Token>,
    batch: Vec<Token>,
    events: Vec<Event>,
    lent: Lent<E>,
    env: E,
    /// `connection_limit`: channels beyond it are admitted only by making
    /// room.
    connection_limit: usize,
    /// Channels in every map of the server (this one's alone unless
    /// [`Map::share`] joined it to others): what `connection_limit` is
    /// compared with, a place taken in one step (`admission.rs`).
    total: Arc<AtomicUsize>,
    /// What this map tells the others.
    census: Arc<Census>,
    /// The best candidates to close for room, best last, from one scan
    /// (re-checked when used; rescanned at most once a round).
    victims: Vec<(u64, Token)>,
    /// A scan for victims was made this round.
    scanned: bool,
    /// What admission did since the last [`Map::take_admissions`].
    admissions: Admissions,
}

impl<E> Map<E> {
    /// An empty map over a poller, lending `env` to every handler.
    pub(crate) fn new(poller: Box<dyn Poller>, env: E) -> Map<E> {
        let edge = poller.edge_triggered();
        Map {
            poller,
            edge,
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            channels: 0,
            timed: Vec::new(),
            listeners: Vec::new(),
            pending: Vec::new(),
            batch: Vec::new(),
            events: Vec::with_capacity(256),
            lent: Lent::default(),
            env,
            connection_limit: usize::MAX,
            total: Arc::new(AtomicUsize::new(0)),
            census: Arc::new(Census::default()),
            victims: Vec::new(),
            scanned: false,
            admissions: Admissions::default(),
        }
    }

    /// What the handlers are lent, for the loop's owner between rounds.
    pub(crate) fn env_mut(&mut self) -> &mut E {
        &mut self.env
    }

    /// How many dispatchers are in the map.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// How many client channels are in the map.
    #[cfg(test)]
    pub(crate) fn channels(&self) -> usize {
        self.channels
    }

    /// Adds a dispatcher and starts watching its descriptor.
    pub(crate) fn add(&mut self, d: Box<dyn Dispatcher<E>>, now: Instant) -> io::Result<Token> {
        let channel = d.role() == Role::Channel;
        if channel {
            self.total.fetch_add(1, Ordering::Relaxed);
        }
        let added = self.add_counted(d, now);
        if added.is_err() && channel {
            self.total.fetch_sub(1, Ordering::Relaxed);
        }
        added
    }

    /// [`Map::add`] for a dispatcher whose place in `total` is taken.
    fn add_counted(&mut self, mut d: Box<dyn Dispatcher<E>>, now: Instant) -> io::Result<Token> {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let s = u32::try_from(self.slots.len())
                    .map_err(|_| io::Error::other("dispatcher map is full"))?;
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                s
            }
        };
        let generation = self.slots[slot as usize].generation;
        let token = Token::new(slot, generation);
        let fd = d.fd();
        let role = d.role();
        d.set_token(token);
        let interest = {
            let mut cx = Cx {
                now,
                edge_triggered: self.edge,
                read_ready: false,
                env: &mut self.env,
                lent: &mut self.lent,
            };
            Interest {
                read: d.readable(&mut cx),
                write: d.writable(&mut cx),
            }
        };
        if let Err(e) = self.poller.register(fd, token, interest) {
            self.free.push(slot);
            return Err(e);
        }
        self.slots[slot as usize].entry = Some(Entry {
            d,
            fd,
            read_ready: false,
            // A new socket can be written to; the first edge may never come.
            write_ready: true,
            read_closed: false,
            closed: false,
            queued: false,
            interest,
        });
        self.len += 1;
        match role {
            Role::Channel => {
                self.channels += 1;
                self.census.open.fetch_add(1, Ordering::Relaxed);
            }
            Role::Listener => {
                self.listeners.push(token);
                self.timed.push(token);
            }
            Role::Trigger => {}
        }
        Ok(token)
    }

    /// Asks for `token` to be evaluated on the next round.
    #[cfg(test)]
    pub(crate) fn wake(&mut self, token: Token) {
        self.enqueue(token);
    }

    fn enqueue(&mut self, token: Token) {
        if let Some(Slot {
            generation,
            entry: Some(e),
        }) = self.slots.get_mut(token.slot())
        {
            if *generation == token.generation() && !e.queued {
                e.queued = true;
                self.pending.push(token);
            }
        }
    }

    /// Runs `maintenance(now)` on every dispatcher (waitress's sweep over
    /// its active channels) and queues those that ask for it.
    pub(crate) fn maintenance(&mut self, now: Instant) {
        self.sweep(|d| d.maintenance(now));
    }

    /// Runs `receive_deadlines(now)` on every dispatcher and queues those
    /// that ask for it.
    pub(crate) fn receive_deadlines(&mut self, now: Instant) {
        self.sweep(|d| d.receive_deadlines(now));
    }

    /// Begins a graceful stop: every dispatcher is told, and those that ask
    /// are evaluated on the next round.
    pub(crate) fn begin_shutdown(&mut self) {
        self.sweep(|d| d.begin_shutdown());
    }

    /// Calls `f` on every dispatcher; queues those for which it is true.
    fn sweep(&mut self, mut f: impl FnMut(&mut dyn Dispatcher<E>) -> bool) {
        let mut want = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(e) = &mut slot.entry {
                if f(&mut *e.d) {
                    want.push(Token::new(i as u32, slot.generation));
                }
            }
        }
        for t in want {
            self.enqueue(t);
        }
    }

    /// True while some dispatcher still has work a graceful stop waits for.
    pub(crate) fn any_busy(&self) -> bool {
        self.slots
            .iter()
            .filter_map(|s| s.entry.as_ref())
            .any(|e| e.d.busy())
    }

    /// Closes and removes every dispatcher (the end of `run`).
    pub(crate) fn close_all(&mut self, now: Instant) {
        for i in 0..self.slots.len() {
            if self.slots[i].entry.is_some() {
                let token = Token::new(i as u32, self.slots[i].generation);
                self.remove(token, now, Leave::Close);
            }
        }
    }

    /// One round (asyncore's `poll_fun`): wait up to `timeout` for events,
    /// then run the handlers of every dispatcher that needs it.
    pub(crate) fn poll(&mut self, timeout: Duration, now: Instant) -> io::Result<()> {
        // Deadlines shorten the wait, and due ones are evaluated.
        let mut timeout = if self.pending.is_empty() {
            timeout
        } else {
            Duration::ZERO
        };
        let mut due = Vec::new();
        for &t in &self.timed {
            if let Some(Some(e)) = self.slots.get(t.slot()).map(|s| s.entry.as_ref()) {
                if let Some(d) = e.d.deadline() {
                    if d <= now {
                        due.push(t);
                    } else {
                        timeout = timeout.min(d - now);
                    }
                }
            }
        }
        for t in due {
            self.enqueue(t);
        }
        if !self.pending.is_empty() {
            timeout = Duration::ZERO;
        }

        self.events.clear();
        match self.poller.wait(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        let mut events = std::mem::take(&mut self.events);
        for ev in events.drain(..) {
            let Some(slot) = self.slots.get_mut(ev.token.slot()) else {
                continue;
            };
            if slot.generation != ev.token.generation() {
                continue;
            }
            let Some(e) = &mut slot.entry else { continue };
            e.read_ready |= ev.readable;
            e.write_ready |= ev.writable;
            e.read_closed |= ev.read_closed;
            e.closed |= ev.closed;
            if !e.queued {
                e.queued = true;
                self.pending.push(ev.token);
            }
        }
        self.events = events;
        self.run_pending(now);
        Ok(())
    }

    /// Runs the handlers of the queued dispatchers, once each.
    fn run_pending(&mut self, now: Instant) {
        // Candidates for eviction are found afresh each round.
        self.scanned = false;
        self.victims.clear();
        std::mem::swap(&mut self.batch, &mut self.pending);
        let mut batch = std::mem::take(&mut self.batch);
        let mut closed_any = false;
        for token in batch.drain(..) {
            if self.run_one(token, now) {
                closed_any = true;
            }
            self.absorb(now);
        }
        self.batch = batch;
        if closed_any {
            // A listener stopped by the connection limit may listen again.
            for t in self.listeners.clone() {
                self.enqueue(t);
            }
        }
    }

    /// Registers dispatchers added by handlers and queues woken tokens.
    fn absorb(&mut self, now: Instant) {
        while let Some(d) = self.lent.admitting.pop() {
            self.admit_counted(d, now);
        }
        let mut woken = std::mem::take(&mut self.lent.woken);
        for t in woken.drain(..) {
            self.enqueue(t);
        }
        // Keep the vector's capacity for the next handler.
        self.lent.woken = woken;
    }

    /// Evaluates one dispatcher. Returns true when it left the map.
    fn run_one(&mut self, token: Token, now: Instant) -> bool {
        let edge = self.edge;
        let slot_idx = token.slot();
        let Some(slot) = self.slots.get_mut(slot_idx) else {
            return false;
        };
        if slot.generation != token.generation() {
            return false;
        }
        let Some(e) = slot.entry.as_mut() else {
            return false;
        };
        e.queued = false;
        let mut cx = Cx {
            now,
            edge_triggered: edge,
            read_ready: e.read_ready,
            env: &mut self.env,
            lent: &mut self.lent,
        };
        e.d.prepare(&mut cx);
        let mut leave = if e.closed || e.d.closing() {
            Some(Leave::Close)
        } else if e.d.detaching() {
            Some(Leave::Detach)
        } else {
            None
        };
        let mut again = false;
        if leave.is_none() {
            // Write first: flushing may make the channel readable again.
            if e.write_ready && e.d.writable(&mut cx) {
                let p = e.d.handle_write(&mut cx);
                leave = progress(p, &mut e.write_ready, &mut again);
            } else if !edge {
                e.write_ready = false;
            }
        }
        if leave.is_none() {
            let readable = e.d.readable(&mut cx);
            if readable && e.read_ready {
                let p = e.d.handle_read(&mut cx);
                if p == Progress::Drained && e.read_closed {
                    // The end of stream is still to be read.
                    again = true;
                } else {
                    leave = progress(p, &mut e.read_ready, &mut again);
                }
                cx.read_ready = e.read_ready;
            }
        }
        if leave.is_none() {
            if e.d.closing() {
                leave = Some(Leave::Close);
            } else if e.d.detaching() {
                leave = Some(Leave::Detach);
            }
        }
        if leave.is_none() && e.d.writable(&mut cx) && e.write_ready && !again {
            // A read may have produced output (a 100 Continue, an error
            // response) or a decision to close: look again next round.
            again = true;
        }
        if let Some(how) = leave {
            self.remove(token, now, how);
            return true;
        }
        let slot = &mut self.slots[slot_idx];
        let Some(e) = slot.entry.as_mut() else {
            return false;
        };
        if !edge {
            // Level-triggered: the poller reports again while it lasts, so
            // forget this round's readiness and hand it the predicates.
            e.read_ready = false;
            e.write_ready = false;
            let mut cx = Cx {
                now,
                edge_triggered: edge,
                read_ready: false,
                env: &mut self.env,
                lent: &mut self.lent,
            };
            let interest = Interest {
                read: e.d.readable(&mut cx),
                write: e.d.writable(&mut cx),
            };
            if interest != e.interest {
                e.interest = interest;
                if let Err(err) = self.poller.reregister(e.fd, token, interest) {
                    crate::log_warning!("poller reregister failed: {err}");
                }
            }
            again = false;
        }
        if again && !e.queued {
            e.queued = true;
            self.pending.push(token);
        }
        false
    }

    /// Takes one dispatcher out of the map and frees its slot: closed (its
    /// `handle_close`, then dropped) or detached (its registration really
    /// removed, then its `handle_detach`).
    fn remove(&mut self, token: Token, now: Instant, how: Leave) {
        let Some(slot) = self.slots.get_mut(token.slot()) else {
            return;
        };
        if slot.generation != token.generation() {
            return;
        }
        let Some(mut e) = slot.entry.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(token.slot() as u32);
        self.len -= 1;
        if e.d.role() == Role::Channel {
            self.channels = self.channels.saturating_sub(1);
            self.census.open.fetch_sub(1, Ordering::Relaxed);
            self.total.fetch_sub(1, Ordering::Relaxed);
        }
        self.listeners.retain(|t| *t != token);
        self.timed.retain(|t| *t != token);
        let unwatched = if how == Leave::Close && e.d.closes_on_drop() {
            self.poller.forget(e.fd)
        } else {
            self.poller.deregister(e.fd)
        };
        if let Err(err) = unwatched {
            crate::log_warning!("could not stop watching descriptor {}: {err}", e.fd);
        }
        let mut cx = Cx {
            now,
            edge_triggered: self.edge,
            read_ready: false,
            env: &mut self.env,
            lent: &mut self.lent,
        };
        match how {
            Leave::Close => {
                e.d.handle_close(&mut cx);
                drop(e);
            }
            Leave::Detach => e.d.handle_detach(&mut cx),
        }
    }
}

#[cfg(test)]
mod tests;
