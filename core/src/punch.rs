//! Hole punching: which connections to try towards a peer, when, and which
//! one to keep, as a sans-IO state machine.
//!
//! After an introduction both users know each other's candidates: the
//! peer's local addresses (what it would be reached at on a shared LAN),
//! then the public address the registry observed. Each side runs one
//! [`Punch`]; the driver opens the sockets (bound with address and port
//! reuse to the chat port, so that the NAT keeps the mapping the registry
//! saw) and reports what happens to them.
//!
//! # Rules
//!
//! - **Schedule.** One attempt per candidate at a time. Local candidates are
//!   tried at once; observed (public) ones [`LOCAL_HEAD_START`] later, and
//!   only while no connection is open, so on a LAN the direct path wins
//!   without a packet leaving it. An attempt still unanswered after
//!   [`ATTEMPT_RESTART`] is closed and started again at once (a fresh
//!   SYN from the same port: the NAT mapping stays, and a peer that started
//!   late is met within half a second rather than at the kernel's 3 s
//!   retransmission); an attempt that fails (refused, unreachable) is
//!   started again after [`RETRY_DELAY`], at most [`MAX_TRIES`] times per
//!   candidate.
//! - **Noise roles do not depend on TCP.** The caller is the Noise
//!   initiator on whichever connection is kept, whether its `connect`, the
//!   peer's `connect` or a simultaneous open made it.
//! - **Exactly one connection is kept, and the caller picks it.** The
//!   caller keeps the first connection that is established (an accepted one
//!   counts) and closes every other. The callee keeps every established
//!   connection open until the caller's first bytes arrive on one of them:
//!   that one is kept and the others are closed. Both ends of one TCP
//!   connection are one connection, so both sides keep the same one.
//! - **Relay.** A caller with no connection after [`PUNCH_TIMEOUT`] gives up
//!   ([`PunchEvent::UseRelay`]); the callee gives up [`CALLEE_GRACE`] later,
//!   so that a connection the caller picked just before its timeout still
//!   reaches the callee. Once chosen, a direct connection is never replaced
//!   by the relay.
//!
//! The client runs one per call and per introduction it answers
//! (`transport-mio/src/client/punching.rs`); the callee gives it only the
//! caller's observed address (docs/PROTOCOL.md §14.1).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Most candidate addresses taken from a peer.
pub const MAX_CANDIDATES: usize = 8;

/// How much earlier local candidates are tried than the observed one.
pub const LOCAL_HEAD_START: Duration = Duration::from_millis(100);

/// How long after a failed attempt the candidate is tried again.
pub const RETRY_DELAY: Duration = Duration::from_millis(250);

/// Most attempts on one candidate that fail (refused, unreachable).
pub const MAX_TRIES: u32 = 4;

/// How long an attempt may wait unanswered before it is closed and
/// started again, which sends a fresh SYN (the kernel's own retransmissions
/// come only after 1 s and 3 s).
pub const ATTEMPT_RESTART: Duration = Duration::from_millis(500);

/// How long the caller tries before it uses the relay.
pub const PUNCH_TIMEOUT: Duration = Duration::from_secs(5);

/// How much longer than the caller the callee waits.
pub const CALLEE_GRACE: Duration = Duration::from_secs(2);

/// One of the paths (connections or attempts) of a [`Punch`], numbered by
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathId(pub u32);

/// Which side of the call this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PunchRole {
    /// It called: it picks the connection and is the Noise initiator.
    Caller,
    /// It was called.
    Callee,
}

/// Where a candidate address comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateKind {
    /// One of the peer's own interface addresses.
    Local,
    /// The address the registry saw the peer's datagrams come from.
    Observed,
}

/// An address to try the peer at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The address (IP and chat port).
    pub addr: SocketAddr,
    /// Where it comes from.
    pub kind: CandidateKind,
}

/// How a kept connection was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// Our attempt to one of the peer's candidates.
    Attempt(CandidateKind),
    /// The peer's attempt, taken by our listener.
    Accepted,
}

/// What the driver must do with sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PunchAction {
    /// Open a socket bound (with reuse) to our chat port and connect it to
    /// `addr`; report with `handle_connected` or `handle_failed`.
    Connect {
        /// The path this attempt is.
        path: PathId,
        /// Where to connect.
        addr: SocketAddr,
    },
    /// Drop the socket of `path`.
    Close {
        /// The path.
        path: PathId,
    },
}

/// How the punching ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PunchEvent {
    /// Run the chat on `path`. The caller starts the handshake now; the
    /// callee has the caller's first bytes on it.
    Chosen {
        /// The kept path.
        path: PathId,
        /// The peer's address on it.
        addr: SocketAddr,
        /// How it was made.
        kind: PathKind,
    },
    /// No connection in time: use the relay.
    UseRelay,
}

/// Why a [`Punch`] cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PunchError {
    /// No candidates at all.
    #[error("the peer has no candidate address")]
    NoCandidates,
    /// More than [`MAX_CANDIDATES`].
    #[error("the peer has {0} candidate addresses, at most {MAX_CANDIDATES} are taken")]
    TooManyCandidates(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathState {
    Connecting,
    Open,
}

#[derive(Debug)]
struct Path {
    addr: SocketAddr,
    kind: PathKind,
    state: PathState,
    /// The candidate it tries, for an attempt.
    target: Option<usize>,
    /// When an unanswered attempt is restarted.
    restart_at: Option<Instant>,
}

#[derive(Debug)]
struct Target {
    candidate: Candidate,
    next_try: Option<Instant>,
    tries: u32,
}

/// One side's hole punching towards one peer.
///
/// Driver contract: after [`new`](Self::new) and after every `handle_*`
/// call, carry out every [`poll_action`](Self::poll_action), then read
/// [`poll_event`](Self::poll_event), then sleep until
/// [`poll_timeout`](Self::poll_timeout) and call
/// [`handle_timeout`](Self::handle_timeout). After the event, the machine
/// only closes: any path reported later is closed at once.
pub struct Punch {
    role: PunchRole,
    deadline: Instant,
    targets: Vec<Target>,
    paths: BTreeMap<PathId, Path>,
    next_id: u32,
    done: bool,
    actions: VecDeque<PunchAction>,
    events: VecDeque<PunchEvent>,
}

impl Punch {
    /// Starts punching at `now` towards a peer with `candidates` (local
    /// ones first, as the peer listed them).
    pub fn new(
        now: Instant,
        role: PunchRole,
        candidates: &[Candidate],
    ) -> Result<Self, PunchError> {
        if candidates.is_empty() {
            return Err(PunchError::NoCandidates);
        }
        if candidates.len() > MAX_CANDIDATES {
            return Err(PunchError::TooManyCandidates(candidates.len()));
        }
        let any_local = candidates.iter().any(|c| c.kind == CandidateKind::Local);
        // One socket per address: a second connect from our port to the
        // same address would be refused. The first listing wins.
        let mut unique: Vec<Candidate> = Vec::with_capacity(candidates.len());
        for c in candidates {
            if unique.iter().all(|u| u.addr != c.addr) {
                unique.push(*c);
            }
        }
        let targets = unique
            .iter()
            .map(|&candidate| {
                let delay = match candidate.kind {
                    CandidateKind::Local => Duration::ZERO,
                    CandidateKind::Observed if any_local => LOCAL_HEAD_START,
                    CandidateKind::Observed => Duration::ZERO,
                };
                Target { candidate, next_try: Some(now + delay), tries: 0 }
            })
            .collect();
        let grace = match role {
            PunchRole::Caller => Duration::ZERO,
            PunchRole::Callee => CALLEE_GRACE,
        };
        let mut punch = Self {
            role,
            deadline: now + PUNCH_TIMEOUT + grace,
            targets,
            paths: BTreeMap::new(),
            next_id: 0,
            done: false,
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        punch.handle_timeout(now);
        Ok(punch)
    }

    /// Whether the punching has ended (chosen or relay).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The attempt `path` is established.
    pub fn handle_connected(&mut self, now: Instant, path: PathId) {
        let _ = now;
        let Some(p) = self.paths.get_mut(&path) else { return };
        if p.state == PathState::Connecting {
            p.state = PathState::Open;
            p.restart_at = None;
            self.on_open(path);
        }
    }

    /// The attempt or connection `path` failed or was closed by the peer;
    /// the driver has dropped its socket.
    pub fn handle_failed(&mut self, now: Instant, path: PathId) {
        let Some(p) = self.paths.remove(&path) else { return };
        if self.done {
            return;
        }
        if let Some(t) = p.target.and_then(|i| self.targets.get_mut(i)) {
            if t.tries < MAX_TRIES {
                t.next_try = Some(now + RETRY_DELAY);
            }
        }
    }

    /// Our listener took a connection from `from` during the punching (the
    /// driver tells which ones belong to this peer); returns its path.
    pub fn handle_accepted(&mut self, now: Instant, from: SocketAddr) -> PathId {
        let _ = now;
        let path = self.new_path(from, PathKind::Accepted, None, PathState::Open);
        self.on_open(path);
        path
    }

    /// The peer's first bytes arrived on `path` (the callee's signal that
    /// the caller picked it; ignored on the caller's side).
    pub fn handle_peer_bytes(&mut self, now: Instant, path: PathId) {
        let _ = now;
        match self.role {
            PunchRole::Caller => {}
            PunchRole::Callee => {
                if !self.done && self.paths.get(&path).is_some_and(|p| p.state == PathState::Open) {
                    self.choose(path);
                }
            }
        }
    }

    /// The next socket action.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<PunchAction> {
        self.actions.pop_front()
    }

    /// How it ended, once.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PunchEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.done {
            return None;
        }
        let starts = self.targets.iter().filter_map(|t| t.next_try);
        let restarts = self.paths.values().filter_map(|p| p.restart_at);
        let starts = starts.chain(restarts).filter(|_| !self.any_open());
        starts.chain([self.deadline]).min()
    }

    /// Starts the attempts that are due; gives up at the deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.done {
            return;
        }
        if now >= self.deadline {
            self.done = true;
            let all: Vec<PathId> = self.paths.keys().copied().collect();
            for path in all {
                self.close(path);
            }
            self.events.push_back(PunchEvent::UseRelay);
            return;
        }
        if self.any_open() {
            return;
        }
        let stale: Vec<PathId> = self
            .paths
            .iter()
            .filter(|(_, p)| p.restart_at.is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for path in stale {
            if let Some(t) = self.paths.get(&path).and_then(|p| p.target) {
                self.close(path);
                if let Some(t) = self.targets.get_mut(t) {
                    t.next_try = Some(now);
                    t.tries = t.tries.saturating_sub(1);
                }
            }
        }
        for i in 0..self.targets.len() {
            let t = &mut self.targets[i];
            if t.next_try.is_some_and(|at| at <= now) {
                t.next_try = None;
                t.tries += 1;
                let addr = t.candidate.addr;
                let kind = PathKind::Attempt(t.candidate.kind);
                let path = self.new_path(addr, kind, Some(i), PathState::Connecting);
                if let Some(p) = self.paths.get_mut(&path) {
                    p.restart_at = Some(now + ATTEMPT_RESTART);
                }
                self.actions.push_back(PunchAction::Connect { path, addr });
            }
        }
    }

    fn any_open(&self) -> bool {
        self.paths.values().any(|p| p.state == PathState::Open)
    }

    fn on_open(&mut self, path: PathId) {
        if self.done {
            self.close(path);
            return;
        }
        match self.role {
            PunchRole::Caller => self.choose(path),
            PunchRole::Callee => {}
        }
    }

    fn choose(&mut self, path: PathId) {
        let Some(p) = self.paths.get(&path) else { return };
        self.done = true;
        self.events.push_back(PunchEvent::Chosen { path, addr: p.addr, kind: p.kind });
        let others: Vec<PathId> = self.paths.keys().copied().filter(|&o| o != path).collect();
        for other in others {
            self.close(other);
        }
    }

    fn close(&mut self, path: PathId) {
        if self.paths.remove(&path).is_some() {
            self.actions.push_back(PunchAction::Close { path });
        }
    }

    fn new_path(
        &mut self,
        addr: SocketAddr,
        kind: PathKind,
        target: Option<usize>,
        state: PathState,
    ) -> PathId {
        let path = PathId(self.next_id);
        self.next_id += 1;
        self.paths.insert(path, Path { addr, kind, state, target, restart_at: None });
        path
    }
}

/// The time origin of the unit tests: the only clock read, in test code.
#[cfg(test)]
fn test_origin() -> Instant {
    Instant::now()
}

#[cfg(test)]
mod tests;
