//! A deterministic byte pipe between two [`ChatSession`]s: a TCP connection
//! as two one-way links that carry bytes in random-sized chunks, one virtual
//! clock, and a seeded RNG that decides every chunk size and the order in
//! which the two drivers act.
//!
//! Each side is driven the way a real driver must drive a session (see
//! [`ChatSession`]'s contract): it writes while `wants_write`, reads only while
//! `wants_read`, reports end of stream with `handle_eof`, drains events after
//! every call, and drops its "socket" once the session is finished and its
//! output written. Nothing sleeps: when no side can act, the clock jumps to
//! the next deadline (a session timer or a chunk's arrival).
//!
//! The same seed and the same calls give the same [`Pipe::trace`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::noise_peer::RawPeer;
use p2pchat_core::{
    ChatConfig, ChatError, ChatEvent, ChatMsg, ChatRole, ChatSession, ChatSetup, PrivateKey,
    SendError, Seq, UserName,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One of the two ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// "alice".
    A,
    /// "bob".
    B,
}

impl Side {
    /// The other end.
    pub fn peer(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Side::A => "alice",
            Side::B => "bob",
        }
    }
}

/// How the links behave.
#[derive(Debug, Clone, Copy)]
pub struct PipeConfig {
    /// Largest chunk one write or one read moves.
    pub max_chunk: usize,
    /// Bytes a link holds before writes to it stall (the socket buffers).
    pub capacity: usize,
    /// How long a written chunk takes to become readable.
    pub latency: Duration,
}

impl Default for PipeConfig {
    fn default() -> Self {
        Self { max_chunk: 200, capacity: 64 * 1024, latency: Duration::ZERO }
    }
}

/// Something that happened in the pipe, for [`Pipe::trace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `side` wrote `n` bytes into its outgoing link.
    Write {
        /// The writer.
        side: Side,
        /// Bytes written.
        n: usize,
    },
    /// `side` read `n` bytes from its incoming link.
    Read {
        /// The reader.
        side: Side,
        /// Bytes read.
        n: usize,
    },
    /// `side` saw the end of its incoming stream.
    Eof {
        /// The reader.
        side: Side,
    },
    /// `side`'s timer fired.
    Timeout {
        /// Whose timer.
        side: Side,
    },
    /// `side`'s session reported an event.
    Event {
        /// Whose session.
        side: Side,
        /// What it reported.
        event: ChatEvent,
    },
    /// `side`'s driver dropped its socket.
    Dropped {
        /// Whose socket.
        side: Side,
    },
}

/// One direction of the connection.
#[derive(Debug, Default)]
struct Link {
    /// Chunks written and not yet read, with when each becomes readable.
    in_flight: VecDeque<(Instant, Vec<u8>)>,
    /// Bytes in `in_flight`.
    len: usize,
    /// The writer dropped its socket: end of stream after `in_flight`.
    shut: bool,
    /// Bytes are accepted but never delivered (a peer gone silent).
    stalled: bool,
    /// The connection is broken: writes vanish, the reader sees the end.
    broken: bool,
}

/// One end: a session and what its driver has seen.
#[derive(Debug)]
pub struct End {
    /// The session under test.
    pub session: ChatSession,
    /// Every event it reported, with the virtual time since the start.
    pub events: Vec<(Duration, ChatEvent)>,
    /// Every byte fed to `handle_input`, in order.
    pub received: Vec<u8>,
    /// When `handle_input` last got bytes.
    pub last_read: Option<Duration>,
    /// The error `handle_input` returned, if any.
    pub error: Option<ChatError>,
    /// The driver has dropped its socket.
    pub dropped: bool,
    /// The randomness its handshake was given.
    pub seed: [u8; 32],
    eof_seen: bool,
}

impl End {
    /// The messages in the bytes this end was fed, opened by a scripted
    /// peer with this end's keys and randomness: what the session read,
    /// seen from outside it (a partial last frame is left out).
    pub fn received_messages(&self, side: Side) -> Vec<ChatMsg> {
        let name = |s: Side| UserName::new(s.name()).expect("valid");
        let mut observer = match side {
            Side::A => RawPeer::caller(
                identity(Side::A),
                self.seed,
                &name(Side::A),
                &name(Side::B),
                identity(Side::B).public_key(),
            ),
            Side::B => RawPeer::callee(identity(Side::B), self.seed),
        };
        observer.input(&self.received);
        observer.received
    }

    /// The events without their times.
    pub fn event_list(&self) -> Vec<ChatEvent> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }

    /// The texts received, in order.
    pub fn received_texts(&self) -> Vec<(Seq, String)> {
        self.events
            .iter()
            .filter_map(|(_, e)| {
                if let ChatEvent::Received { seq, text } = e {
                    Some((*seq, text.clone()))
                } else {
                    None
                }
            })
            .collect()
    }

    /// The sequence numbers reported `Delivered`, in order.
    pub fn delivered(&self) -> Vec<Seq> {
        self.events
            .iter()
            .filter_map(
                |(_, e)| {
                    if let ChatEvent::Delivered { seq } = e { Some(*seq) } else { None }
                },
            )
            .collect()
    }

    /// The texts reported `Undelivered`, in order.
    pub fn undelivered(&self) -> Vec<(Seq, String)> {
        self.events
            .iter()
            .filter_map(|(_, e)| {
                if let ChatEvent::Undelivered { seq, text } = e {
                    Some((*seq, text.clone()))
                } else {
                    None
                }
            })
            .collect()
    }

    /// The `Closed` event and when it came, if it came.
    pub fn closed(&self) -> Option<(Duration, ChatEvent)> {
        self.events.iter().find(|(_, e)| matches!(e, ChatEvent::Closed { .. })).cloned()
    }
}

/// Two chat sessions joined by a simulated TCP connection.
#[derive(Debug)]
pub struct Pipe {
    ends: [End; 2],
    /// `links[i]` carries what `ends[i]` writes.
    links: [Link; 2],
    config: PipeConfig,
    rng: ChaCha8Rng,
    start: Instant,
    now: Instant,
    trace: Vec<(Duration, Action)>,
}

/// The long-term key of `side` in every pipe.
pub fn identity(side: Side) -> PrivateKey {
    PrivateKey::from_bytes([side.index() as u8 + 1; 32])
}

/// A calls B: A's session is the caller, B's the callee, which accepts
/// at once (its `Hello` goes out when the handshake is done).
fn session(now: Instant, side: Side, chat: ChatConfig, seed: [u8; 32]) -> ChatSession {
    let name = |s: Side| UserName::new(s.name()).expect("valid");
    let role = match side {
        Side::A => {
            ChatRole::Caller { callee: name(Side::B), callee_key: identity(Side::B).public_key() }
        }
        Side::B => ChatRole::Callee,
    };
    let mut session = ChatSession::new(
        now,
        ChatSetup { name: name(side), key: identity(side), role, seed },
        chat,
    );
    session.accept(now);
    session
}

/// Steps after which [`Pipe::run_until_idle`] gives up: the sessions are
/// feeding each other forever, which is a bug.
const MAX_STEPS: usize = 10_000_000;

impl Pipe {
    /// "alice" (A) and "bob" (B) with `chat` timers, connected by links that
    /// behave as `config` says, every choice drawn from `seed`.
    pub fn new(seed: u64, chat: ChatConfig, config: PipeConfig) -> Self {
        let start = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut end = |side: Side| {
            let seed = rng.random();
            End {
                session: session(start, side, chat, seed),
                seed,
                events: Vec::new(),
                received: Vec::new(),
                last_read: None,
                error: None,
                dropped: false,
                eof_seen: false,
            }
        };
        Self {
            ends: [end(Side::A), end(Side::B)],
            links: [Link::default(), Link::default()],
            config,
            rng,
            start,
            now: start,
            trace: Vec::new(),
        }
    }

    /// A pipe with default timers and links.
    pub fn with_seed(seed: u64) -> Self {
        Self::new(seed, ChatConfig::default(), PipeConfig::default())
    }

    /// One end.
    pub fn end(&self, side: Side) -> &End {
        &self.ends[side.index()]
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Everything that happened, in order, with its virtual time.
    pub fn trace(&self) -> &[(Duration, Action)] {
        &self.trace
    }

    /// The seeded RNG, for tests that want more choices from the same seed.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// `side`'s user sends `text`.
    pub fn send(&mut self, side: Side, text: &str) -> Result<Seq, SendError> {
        let now = self.now;
        let res = self.ends[side.index()].session.send_text(now, text);
        self.drain_events(side);
        res
    }

    /// `side`'s user leaves the chat.
    pub fn close(&mut self, side: Side) {
        let now = self.now;
        self.ends[side.index()].session.close(now);
        self.drain_events(side);
    }

    /// From now on, what `side` writes is never delivered: to its peer it
    /// has gone silent.
    pub fn stall(&mut self, side: Side) {
        self.links[side.index()].stalled = true;
    }

    /// Breaks the connection: bytes in flight are lost and both ends see the
    /// end of the stream.
    pub fn cut(&mut self) {
        for link in &mut self.links {
            link.in_flight.clear();
            link.len = 0;
            link.shut = true;
            link.stalled = false;
            link.broken = true;
        }
    }

    /// A middleman slips `bytes` into the stream `side` reads, ahead of
    /// anything still in flight: they are fed to its session at once.
    /// Returns what `handle_input` said.
    pub fn inject(&mut self, side: Side, bytes: &[u8]) -> Result<(), ChatError> {
        let now = self.now;
        let end = &mut self.ends[side.index()];
        end.received.extend_from_slice(bytes);
        let result = end.session.handle_input(now, bytes);
        if let Err(e) = &result {
            end.error.get_or_insert(e.clone());
        }
        self.drain_events(side);
        result
    }

    /// Does one thing, chosen by the RNG among what can be done now: a write,
    /// a read, an end of stream or dropping a finished socket. False if
    /// nothing can be done without the clock moving.
    pub fn step(&mut self) -> bool {
        let mut choices: Vec<(Side, Move)> = Vec::new();
        for side in [Side::A, Side::B] {
            for m in [Move::Write, Move::Read, Move::Eof, Move::Drop] {
                if self.can(side, m) {
                    choices.push((side, m));
                }
            }
        }
        if choices.is_empty() {
            return false;
        }
        let (side, m) = choices[self.rng.random_range(0..choices.len())];
        match m {
            Move::Write => self.write(side),
            Move::Read => self.read(side),
            Move::Eof => self.eof(side),
            Move::Drop => self.drop_socket(side),
        }
        true
    }

    /// Steps until nothing can be done without the clock moving.
    pub fn run_until_idle(&mut self) {
        for _ in 0..MAX_STEPS {
            if !self.step() {
                return;
            }
        }
        panic!("the pipe did not go idle in {MAX_STEPS} steps");
    }

    /// Moves the clock to the next deadline (a session timer or a chunk's
    /// arrival) and fires the timers due. False if there is none.
    pub fn advance(&mut self) -> bool {
        let Some(next) = self.next_deadline() else {
            return false;
        };
        self.now = self.now.max(next);
        self.fire_timers();
        true
    }

    /// Runs, jumping the clock from deadline to deadline, until `done` holds
    /// or `limit` of virtual time has passed since the start. Returns whether
    /// `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Pipe) -> bool) -> bool {
        let limit = self.start + limit;
        loop {
            self.run_until_idle();
            if done(self) {
                return true;
            }
            match self.next_deadline() {
                Some(next) if next <= limit => {
                    self.now = self.now.max(next);
                    self.fire_timers();
                }
                Some(_) | None => return false,
            }
        }
    }

    /// Runs until no bytes are waiting to be written or in flight on a link
    /// that delivers them, letting the clock move only for chunks to arrive
    /// (and timers that fall due meanwhile).
    pub fn run_until_quiet(&mut self) {
        loop {
            self.run_until_idle();
            let busy = [Side::A, Side::B].into_iter().any(|side| {
                let link = &self.links[side.index()];
                let end = self.end(side);
                let peer = self.end(side.peer());
                (end.session.wants_write() && !end.dropped)
                    || (!link.in_flight.is_empty() && !link.stalled && !peer.dropped)
            });
            if !busy || !self.advance() {
                return;
            }
        }
    }

    fn can(&self, side: Side, m: Move) -> bool {
        let end = self.end(side);
        if end.dropped {
            return false;
        }
        let out = &self.links[side.index()];
        let inc = &self.links[side.peer().index()];
        match m {
            Move::Write => {
                end.session.wants_write() && (self.swallows(side) || out.len < self.config.capacity)
            }
            Move::Read => {
                end.session.wants_read()
                    && !inc.stalled
                    && inc.in_flight.front().is_some_and(|(t, _)| *t <= self.now)
            }
            Move::Eof => {
                inc.shut && inc.in_flight.is_empty() && !end.eof_seen && end.session.wants_read()
            }
            // Once finished, the driver drops the socket when the output is
            // written, or at once if it cannot be.
            Move::Drop => end.session.is_finished() && !self.can(side, Move::Write),
        }
    }

    fn write(&mut self, side: Side) {
        let pending = self.ends[side.index()].session.pending_output().len();
        let room = if self.swallows(side) {
            pending
        } else {
            self.config.capacity - self.links[side.index()].len
        };
        let n = self.chunk(pending.min(room));
        let bytes = self.ends[side.index()].session.pending_output()[..n].to_vec();
        self.ends[side.index()].session.consume(n);
        self.record(Action::Write { side, n });
        if !self.swallows(side) {
            let link = &mut self.links[side.index()];
            link.len += n;
            link.in_flight.push_back((self.now + self.config.latency, bytes));
        }
        self.drain_events(side);
    }

    fn read(&mut self, side: Side) {
        let mut want = self.chunk(self.config.max_chunk);
        let mut got = Vec::new();
        let link = &mut self.links[side.peer().index()];
        while want > 0 {
            let Some((t, chunk)) = link.in_flight.front_mut() else {
                break;
            };
            if *t > self.now {
                break;
            }
            let n = want.min(chunk.len());
            got.extend(chunk.drain(..n));
            want -= n;
            if chunk.is_empty() {
                link.in_flight.pop_front();
            }
        }
        link.len -= got.len();
        let now = self.now;
        let elapsed = self.elapsed();
        let end = &mut self.ends[side.index()];
        end.received.extend_from_slice(&got);
        end.last_read = Some(elapsed);
        if let Err(e) = end.session.handle_input(now, &got) {
            end.error = Some(e);
        }
        self.record(Action::Read { side, n: got.len() });
        self.drain_events(side);
    }

    fn eof(&mut self, side: Side) {
        let now = self.now;
        let end = &mut self.ends[side.index()];
        end.eof_seen = true;
        end.session.handle_eof(now);
        self.record(Action::Eof { side });
        self.drain_events(side);
    }

    fn drop_socket(&mut self, side: Side) {
        self.ends[side.index()].dropped = true;
        self.links[side.index()].shut = true;
        // Nobody reads what the peer sends any more.
        let inc = &mut self.links[side.peer().index()];
        inc.in_flight.clear();
        inc.len = 0;
        self.record(Action::Dropped { side });
    }

    /// Whether what `side` writes vanishes: nobody will ever read it.
    fn swallows(&self, side: Side) -> bool {
        self.end(side.peer()).dropped || self.links[side.index()].broken
    }

    /// A random chunk size in `1..=max`, small ones favoured so frames get
    /// split often.
    fn chunk(&mut self, max: usize) -> usize {
        let cap = max.min(self.config.max_chunk).max(1);
        if self.rng.random_bool(0.5) {
            self.rng.random_range(1..=cap.min(8))
        } else {
            self.rng.random_range(1..=cap)
        }
        .min(max.max(1))
    }

    fn next_deadline(&self) -> Option<Instant> {
        let timers = [Side::A, Side::B]
            .into_iter()
            .filter(|s| !self.end(*s).dropped)
            .filter_map(|s| self.end(s).session.poll_timeout());
        let arrivals = [Side::A, Side::B].into_iter().filter_map(|s| {
            let link = &self.links[s.index()];
            let reader = self.end(s.peer());
            if link.stalled || reader.dropped {
                return None;
            }
            link.in_flight.front().map(|(t, _)| *t).filter(|t| *t > self.now)
        });
        timers.chain(arrivals).min()
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        for side in [Side::A, Side::B] {
            let end = &mut self.ends[side.index()];
            if !end.dropped && end.session.poll_timeout().is_some_and(|t| t <= now) {
                end.session.handle_timeout(now);
                // A timer that fires and stays due would stop the clock.
                assert!(
                    end.session.poll_timeout().is_none_or(|t| t > now),
                    "{side:?}: the deadline did not move past {now:?} after handle_timeout",
                );
                self.record(Action::Timeout { side });
                self.drain_events(side);
            }
        }
    }

    fn drain_events(&mut self, side: Side) {
        let elapsed = self.elapsed();
        while let Some(event) = self.ends[side.index()].session.poll_event() {
            self.ends[side.index()].events.push((elapsed, event.clone()));
            self.trace.push((elapsed, Action::Event { side, event }));
        }
    }

    fn record(&mut self, action: Action) {
        self.trace.push((self.elapsed(), action));
    }
}

/// What a driver can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    Write,
    Read,
    Eof,
    Drop,
}
