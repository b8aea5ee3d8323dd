//! The chat relay: pairs two TCP connections that present tokens for the
//! same chat, then copies bytes both ways, as a sans-IO state machine.
//!
//! The relay only ever sees what the clients send after the hello: the
//! preamble and Noise frames of a chat that is encrypted end to end. It
//! checks tokens statelessly (see [`TokenMint`]), remembers each pair it
//! made until the pair's tokens expire (so a token is used once), caps each
//! pair's bandwidth and each address's connections, and closes idle pairs
//! and connections that never pair.
//!
//! `p2pchat server` runs one beside its registry, which issues the tokens
//! in its introductions (docs/PROTOCOL.md §14).

mod bucket;
mod config;
mod event;
mod token;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bucket::Bucket;
pub use config::{
    DEFAULT_PAIR_BURST, DEFAULT_PAIR_RATE, DEFAULT_RELAY_CONNECTIONS, DEFAULT_RELAY_PER_ADDRESS,
    DRAIN_TIMEOUT, MAX_RELAY_BUFFER, MAX_REMEMBERED_PAIRS, REFUSAL_HEADROOM, RELAY_HELLO_TIMEOUT,
    RELAY_IDLE_TIMEOUT, RelayConfig, UNPAIRED_TIMEOUT,
};
pub use event::{ConnId, RelayCloseReason, RelayEvent, RelayStatus};
pub use token::{
    PairId, RELAY_HELLO_LEN, RELAY_MAGIC, RELAY_REPLY_LEN, RELAY_TAG_LEN, RELAY_VERSION,
    RelayHello, RelayHelloError, RelayKey, RelaySide, TOKEN_LIFETIME, TokenMint,
};

/// A wakeup for an empty bandwidth bucket is set for when it holds this
/// many bytes (or its burst, if smaller).
const BUCKET_WAKE: u64 = 4096;

#[derive(Debug)]
enum State {
    /// Reading the hello.
    Hello(Vec<u8>),
    /// A valid hello; waiting for the other side.
    Waiting(PairId),
    /// Joined to a partner; `PairId` keys the pair's bucket.
    Paired(ConnId, PairId),
    /// Writing what waits for it, then closed.
    Closing(RelayCloseReason),
}

#[derive(Debug)]
struct Conn {
    ip: IpAddr,
    state: State,
    out: Vec<u8>,
    /// Hello, unpaired or drain deadline (idle lives in the pair).
    deadline: Option<Instant>,
}

#[derive(Debug)]
struct Pair {
    bucket: Bucket,
    idle_at: Instant,
}

/// The relay's state machine.
///
/// Driver contract, for each connection `conn` the driver numbers:
/// - on accept, [`handle_accept`](Self::handle_accept);
/// - read at most [`read_budget`](Self::read_budget) bytes (when it is 0,
///   do not read: the relay pushes back) and hand them to
///   [`handle_input`](Self::handle_input); on end of stream call
///   [`handle_eof`](Self::handle_eof), on a socket error
///   [`handle_error`](Self::handle_error) (and drop the socket);
/// - while [`wants_write`](Self::wants_write), write
///   [`pending_output`](Self::pending_output) and report what the socket
///   took with [`consume`](Self::consume);
/// - after any call, drain [`poll_event`](Self::poll_event) (drop the
///   socket of every `Close`), retry reads whose budget may have grown (a
///   partner's `consume` or a refill makes room), then sleep until
///   [`poll_timeout`](Self::poll_timeout) and call
///   [`handle_timeout`](Self::handle_timeout).
pub struct Relay {
    mint: TokenMint,
    config: RelayConfig,
    conns: HashMap<ConnId, Conn>,
    per_ip: HashMap<IpAddr, usize>,
    waiting: HashMap<PairId, (ConnId, RelaySide)>,
    pairs: HashMap<PairId, Pair>,
    /// Pairs made, until their tokens expire.
    used: BTreeMap<PairId, Instant>,
    events: VecDeque<RelayEvent>,
}

impl Relay {
    /// A relay checking tokens with `key` (expiries count from `origin`).
    pub fn new(key: &RelayKey, origin: Instant, config: RelayConfig) -> Self {
        Self {
            mint: TokenMint::new(key, origin),
            config,
            conns: HashMap::new(),
            per_ip: HashMap::new(),
            waiting: HashMap::new(),
            pairs: HashMap::new(),
            used: BTreeMap::new(),
            events: VecDeque::new(),
        }
    }

    /// How many connections the relay holds.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// A new connection from `from`. `conn` must not be held already (an id
    /// given twice is ignored, with a warning).
    pub fn handle_accept(&mut self, now: Instant, conn: ConnId, from: SocketAddr) {
        let ip = from.ip();
        if self.conns.contains_key(&conn) {
            // A driver bug: closing either socket would be wrong, so the
            // new one is left to the driver and the relay keeps the old.
            tracing::warn!(?conn, "relay connection id given twice; ignored");
            return;
        }
        if self.conns.len() >= self.config.max_connections + REFUSAL_HEADROOM {
            let reason = RelayCloseReason::Refused(RelayStatus::Busy);
            self.events.push_back(RelayEvent::Close { conn, reason });
            return;
        }
        let from_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
        let state = State::Hello(Vec::with_capacity(RELAY_HELLO_LEN));
        let c = Conn { ip, state, out: Vec::new(), deadline: Some(now + RELAY_HELLO_TIMEOUT) };
        self.conns.insert(conn, c);
        *self.per_ip.entry(ip).or_insert(0) += 1;
        if self.conns.len() > self.config.max_connections {
            self.refuse(now, conn, RelayStatus::Busy);
        } else if from_ip >= self.config.max_per_address {
            self.refuse(now, conn, RelayStatus::TooManyFromAddress);
        }
    }

    /// How many bytes the relay takes from `conn` now (0: do not read).
    pub fn read_budget(&self, now: Instant, conn: ConnId) -> usize {
        let Some(c) = self.conns.get(&conn) else { return 0 };
        match &c.state {
            State::Hello(buf) => RELAY_HELLO_LEN - buf.len(),
            State::Waiting(..) | State::Closing(_) => 0,
            State::Paired(partner, pair) => {
                let room = self
                    .conns
                    .get(partner)
                    .map_or(0, |p| MAX_RELAY_BUFFER.saturating_sub(p.out.len()));
                let tokens = self.pairs.get(pair).map_or(0, |p| p.bucket.available(now));
                room.min(usize::try_from(tokens).unwrap_or(usize::MAX))
            }
        }
    }

    /// Bytes read from `conn`; returns how many the relay took (all of
    /// them when the driver kept to [`read_budget`](Self::read_budget)).
    pub fn handle_input(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) -> usize {
        let budget = self.read_budget(now, conn);
        let take = bytes.len().min(budget);
        let bytes = &bytes[..take];
        let Some(c) = self.conns.get_mut(&conn) else { return 0 };
        match &mut c.state {
            State::Hello(buf) => {
                buf.extend_from_slice(bytes);
                let prefix = buf.len().min(RELAY_MAGIC.len());
                let bad = buf[..prefix] != RELAY_MAGIC[..prefix];
                let hello = (!bad && buf.len() == RELAY_HELLO_LEN).then(|| RelayHello::decode(buf));
                if bad {
                    self.refuse(now, conn, RelayStatus::Malformed);
                } else if let Some(hello) = hello {
                    self.on_hello(now, conn, hello);
                }
            }
            State::Paired(partner, pair) => {
                let (partner, pair) = (*partner, *pair);
                if let Some(p) = self.pairs.get_mut(&pair) {
                    p.bucket.take(now, take as u64);
                    if take > 0 {
                        p.idle_at = now + RELAY_IDLE_TIMEOUT;
                    }
                }
                if let Some(p) = self.conns.get_mut(&partner) {
                    p.out.extend_from_slice(bytes);
                }
            }
            State::Waiting(..) | State::Closing(_) => {}
        }
        take
    }

    /// `conn` ended its stream: it and its partner close once what waits
    /// for them is written.
    pub fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        self.end(now, conn, RelayCloseReason::Ended);
    }

    /// `conn`'s socket failed and the driver dropped it: the relay forgets
    /// it, and its partner closes once what waits for it is written.
    pub fn handle_error(&mut self, now: Instant, conn: ConnId) {
        if let Some(partner) = self.unlink(conn) {
            self.close_after_drain(now, partner, RelayCloseReason::Ended);
        }
        self.forget(conn);
    }

    /// The bytes waiting to be written to `conn`.
    pub fn pending_output(&self, conn: ConnId) -> &[u8] {
        self.conns.get(&conn).map_or(&[], |c| &c.out)
    }

    /// Whether bytes wait to be written to `conn`.
    pub fn wants_write(&self, conn: ConnId) -> bool {
        !self.pending_output(conn).is_empty()
    }

    /// The socket of `conn` took the first `n` bytes of its pending output.
    pub fn consume(&mut self, conn: ConnId, n: usize) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        c.out.drain(..n.min(c.out.len()));
        if let State::Closing(reason) = c.state {
            if c.out.is_empty() {
                self.close_now(conn, reason);
            }
        }
    }

    /// The next thing to report.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.conns.values().filter_map(|c| c.deadline);
        let pairs = self
            .pairs
            .values()
            .flat_map(|p| [Some(p.idle_at), p.bucket.ready_at(BUCKET_WAKE)].into_iter().flatten());
        conns.chain(pairs).min()
    }

    /// Fires what is due at `now`: hello, pairing, drain and idle timeouts;
    /// refills the buckets.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for conn in sorted(due) {
            let Some(c) = self.conns.get(&conn) else { continue };
            match c.state {
                State::Hello(_) | State::Waiting(..) => {
                    self.refuse(now, conn, RelayStatus::Timeout)
                }
                State::Closing(_) => self.close_now(conn, RelayCloseReason::DrainTimeout),
                State::Paired(..) => {}
            }
        }
        let idle: Vec<PairId> =
            self.pairs.iter().filter(|(_, p)| p.idle_at <= now).map(|(id, _)| *id).collect();
        for pair in idle {
            let members: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| matches!(c.state, State::Paired(_, p) if p == pair))
                .map(|(id, _)| *id)
                .collect();
            for conn in sorted(members) {
                self.close_after_drain(now, conn, RelayCloseReason::Idle);
            }
            self.pairs.remove(&pair);
        }
        for p in self.pairs.values_mut() {
            p.bucket.refill(now);
        }
    }

    fn on_hello(&mut self, now: Instant, conn: ConnId, hello: Result<RelayHello, RelayHelloError>) {
        let hello = match hello {
            Ok(h) => h,
            Err(_) => return self.refuse(now, conn, RelayStatus::Malformed),
        };
        if !self.mint.is_authentic(&hello) {
            return self.refuse(now, conn, RelayStatus::Forged);
        }
        if self.mint.is_expired(now, &hello.pair) {
            return self.refuse(now, conn, RelayStatus::Expired);
        }
        if self.used.contains_key(&hello.pair) {
            return self.refuse(now, conn, RelayStatus::Reused);
        }
        match self.waiting.get(&hello.pair).copied() {
            Some((_, side)) if side == hello.side => self.refuse(now, conn, RelayStatus::Reused),
            Some((other, _)) => self.pair(now, conn, other, hello),
            None => {
                self.waiting.insert(hello.pair, (conn, hello.side));
                let expires = self.mint.expiry_instant(&hello.pair);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.state = State::Waiting(hello.pair);
                    c.deadline = Some((now + UNPAIRED_TIMEOUT).min(expires));
                }
            }
        }
    }

    fn pair(&mut self, now: Instant, conn: ConnId, other: ConnId, hello: RelayHello) {
        if self.used.len() >= MAX_REMEMBERED_PAIRS {
            self.used.retain(|_, expires| *expires > now);
        }
        if self.used.len() >= MAX_REMEMBERED_PAIRS {
            return self.refuse(now, conn, RelayStatus::Busy);
        }
        self.waiting.remove(&hello.pair);
        self.used.insert(hello.pair, self.mint.expiry_instant(&hello.pair));
        let bucket = Bucket::new(now, self.config.pair_rate, self.config.pair_burst);
        self.pairs.insert(hello.pair, Pair { bucket, idle_at: now + RELAY_IDLE_TIMEOUT });
        for (me, partner) in [(conn, other), (other, conn)] {
            if let Some(c) = self.conns.get_mut(&me) {
                c.state = State::Paired(partner, hello.pair);
                c.deadline = None;
                c.out.extend_from_slice(&RelayStatus::Paired.reply());
            }
        }
        let (caller, callee) = match hello.side {
            RelaySide::Caller => (conn, other),
            RelaySide::Callee => (other, conn),
        };
        self.events.push_back(RelayEvent::Paired { caller, callee });
    }

    /// Queues a refusal for `conn` and closes it once written.
    fn refuse(&mut self, now: Instant, conn: ConnId, status: RelayStatus) {
        if let Some(partner) = self.unlink(conn) {
            self.close_after_drain(now, partner, RelayCloseReason::Ended);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.out.clear();
            c.out.extend_from_slice(&status.reply());
        }
        self.close_after_drain(now, conn, RelayCloseReason::Refused(status));
    }

    /// Ends `conn` and its partner, each after what waits for it.
    fn end(&mut self, now: Instant, conn: ConnId, reason: RelayCloseReason) {
        if let Some(partner) = self.unlink(conn) {
            self.close_after_drain(now, partner, reason);
        }
        self.close_after_drain(now, conn, reason);
    }

    /// Takes `conn` out of the waiting table or its pair; returns its
    /// partner, if it had one.
    fn unlink(&mut self, conn: ConnId) -> Option<ConnId> {
        let c = self.conns.get_mut(&conn)?;
        match c.state {
            State::Waiting(pair) => {
                if self.waiting.get(&pair).is_some_and(|(w, _)| *w == conn) {
                    self.waiting.remove(&pair);
                }
                None
            }
            State::Paired(partner, pair) => {
                self.pairs.remove(&pair);
                Some(partner)
            }
            State::Hello(_) | State::Closing(_) => None,
        }
    }

    fn close_after_drain(&mut self, now: Instant, conn: ConnId, reason: RelayCloseReason) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if matches!(c.state, State::Closing(_)) {
            return;
        }
        c.state = State::Closing(reason);
        c.deadline = Some(now + DRAIN_TIMEOUT);
        if c.out.is_empty() {
            self.close_now(conn, reason);
        }
    }

    fn close_now(&mut self, conn: ConnId, reason: RelayCloseReason) {
        if self.conns.contains_key(&conn) {
            // The partner, if any, was unlinked when this one started closing.
            self.forget(conn);
            self.events.push_back(RelayEvent::Close { conn, reason });
        }
    }

    fn forget(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(n) = self.per_ip.get_mut(&c.ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&c.ip);
                }
            }
        }
    }
}

/// Ids in order, so that events come out the same in every run.
fn sorted(mut ids: Vec<ConnId>) -> Vec<ConnId> {
    ids.sort_unstable();
    ids
}

/// The time origin of the unit tests: the only clock read, in test code.
#[cfg(test)]
fn test_origin() -> Instant {
    Instant::now()
}

#[cfg(test)]
mod tests;
