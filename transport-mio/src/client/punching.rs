//! Calls across NATs: the registry's introduction, hole punching from the
//! chat port, and the relay when punching fails (docs/PROTOCOL.md §14).
//!
//! A call ([`ClientNode::connect`](super::ClientNode::connect)) first asks
//! the registry for an introduction, then runs a [`Punch`] as the caller:
//! the callee's local addresses at once, its observed address a moment
//! later, from sockets bound with `SO_REUSEADDR` and `SO_REUSEPORT` to the
//! chat listener's port (so that an endpoint-independent NAT uses the
//! mapping it has, and both SYNs meet: TCP simultaneous open). The first
//! connection established is the chat's, with us as the Noise initiator;
//! every other is closed. With none after
//! [`PUNCH_TIMEOUT`](p2pchat_core::PUNCH_TIMEOUT), the call goes through
//! the relay. Without an introduction (a registry that does not know the
//! message, or none in time) the call connects to the listed address, as
//! before introductions existed.
//!
//! The callee, on the registry's unprompted introduction, punches towards
//! the caller's observed address (a LAN connection is the caller's to
//! make); each connection its own attempts make is admitted like one its
//! listener accepts (the caller speaks first on the one it kept, and proves
//! its key there). When no caller has proved itself on a direct
//! connection by the end of its punching, the callee goes to the relay
//! too.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use mio::{Registry, Token};
use p2pchat_core::{
    CALLEE_GRACE, Candidate, CandidateKind, Introduction, MAX_CANDIDATES, PUNCH_TIMEOUT, PathId,
    PublicKey, Punch, PunchAction, PunchEvent, PunchRole, UserName,
};

use super::NodeEvent;
use super::chats::Dial;
use super::punch_node::punch_socket;
use super::relay_link::{LinkState, RelayLink};
use crate::stream::{StreamConn, StreamCore, StreamState};

/// Most introductions answered (punched for) at once; an older one is
/// dropped for a new one.
pub const MAX_ANSWERED: usize = 4;

/// Punching and relay sockets get tokens from here on (the chats' come
/// from far below).
const FIRST_TOKEN: usize = 1 << 30;

/// A socket core that only waits for the connect.
struct Probe;

impl StreamCore for Probe {
    fn handle_input(&mut self, _now: Instant, _bytes: &[u8]) {}
    fn handle_eof(&mut self, _now: Instant) {}
    fn pending_output(&mut self) -> &[u8] {
        &[]
    }
    fn consume(&mut self, _n: usize) {}
    fn wants_read(&self) -> bool {
        false
    }
    fn is_finished(&self) -> bool {
        false
    }
}

/// One side's punching towards one peer, and its relay fallback.
struct Attempt {
    peer: UserName,
    key: PublicKey,
    punch: Option<Punch>,
    paths: BTreeMap<PathId, StreamConn>,
    /// The relay's address and our hello, if the registry relays.
    ticket: Option<(SocketAddr, Vec<u8>)>,
    relay: Option<RelayLink>,
}

/// Our call while it has no connection yet.
struct CallOut {
    attempt: Attempt,
    /// The listed chat address, for a call without an introduction.
    listed: SocketAddr,
    introduced: bool,
    /// The callee's candidates: a connection from one of them (its chat
    /// port, as a port-preserving NAT keeps it) while punching is the
    /// callee's.
    candidates: Vec<SocketAddr>,
}

/// An introduction we answer as the callee.
struct CallIn {
    attempt: Attempt,
    /// The caller proved itself on a direct connection: no relay, and no
    /// more punching (the caller keeps exactly one connection, the one it
    /// proved itself on).
    heard: bool,
    /// When its punching would end at the latest (`PUNCH_TIMEOUT` and
    /// `CALLEE_GRACE` after the introduction): a call heard sooner still
    /// counts as the peer calling us (for calls that cross) until then.
    until: Instant,
}

impl CallIn {
    /// Whether it still counts as the peer calling us: heard, and not past
    /// `until`.
    fn counts(&self, now: Instant) -> bool {
        self.heard && now < self.until
    }

    /// Whether there is nothing to drive while it counts: no punching, no
    /// connects, no relay.
    fn settled(&self, now: Instant) -> bool {
        self.counts(now) && self.attempt.idle() && self.attempt.relay.is_none()
    }
}

/// What the node must do with the chats.
pub(super) enum Outcome {
    /// Start our call on this dial; `relayed` says how it was made
    /// (`None`: not through an introduction).
    Call { peer: UserName, key: PublicKey, dial: Dial, relayed: Option<bool> },
    /// Admit a connection on which we are the callee.
    Admit { conn: StreamConn, early: Vec<u8>, relayed: Option<(UserName, bool)> },
}

/// The calls under way, and the introductions being answered.
pub(super) struct Punching {
    out: Option<CallOut>,
    answering: VecDeque<CallIn>,
    /// Where punching sockets bind: the listener's address.
    chat_addr: SocketAddr,
    registry_ip: IpAddr,
    /// Our public key: in calls that cross, the smaller key's goes on.
    me: PublicKey,
    next_token: usize,
    pub(super) outcomes: Vec<Outcome>,
    /// What the user did while our call had no connection yet, for its
    /// chat once it has one.
    pub(super) held: Vec<Deferred>,
}

/// A command on our call's chat, held while the call has no connection.
pub(super) enum Deferred {
    /// [`ClientNode::send_text`](super::ClientNode::send_text).
    Text(String),
    /// [`ClientNode::finish_chat`](super::ClientNode::finish_chat).
    Finish,
    /// [`ClientNode::close_chat`](super::ClientNode::close_chat).
    Close,
}

impl Punching {
    pub(super) fn new(chat_addr: SocketAddr, registry: SocketAddr, me: PublicKey) -> Self {
        Self {
            out: None,
            answering: VecDeque::new(),
            chat_addr,
            registry_ip: registry.ip(),
            me,
            next_token: FIRST_TOKEN,
            outcomes: Vec::new(),
            held: Vec::new(),
        }
    }

    pub(super) fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    fn attempts_mut(&mut self) -> impl Iterator<Item = &mut Attempt> {
        self.out
            .iter_mut()
            .map(|c| &mut c.attempt)
            .chain(self.answering.iter_mut().map(|c| &mut c.attempt))
    }

    fn attempts(&self) -> impl Iterator<Item = &Attempt> {
        self.out.iter().map(|c| &c.attempt).chain(self.answering.iter().map(|c| &c.attempt))
    }

    /// Records a readiness event for a punching or relay socket.
    pub(super) fn on_event(&mut self, event: &mio::event::Event) {
        for a in self.attempts_mut() {
            for conn in a.paths.values_mut().filter(|c| c.token() == event.token()) {
                conn.on_event(event);
            }
            if let Some(link) = a.relay.as_mut().filter(|l| l.token() == Some(event.token())) {
                link.on_event(event);
            }
        }
    }

    /// The earliest deadline of the punches and relay links.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.attempts()
            .flat_map(|a| {
                [
                    a.punch.as_ref().and_then(Punch::poll_timeout),
                    a.relay.as_ref().map(RelayLink::deadline),
                ]
            })
            .flatten()
            .min()
    }

    /// Starts our call to `peer`: the introduction is asked for by the node.
    pub(super) fn call(
        &mut self,
        peer: UserName,
        key: PublicKey,
        listed: SocketAddr,
        registry: &Registry,
    ) {
        if let Some(mut old) = self.out.take() {
            old.attempt.close(registry);
        }
        let attempt =
            Attempt { peer, key, punch: None, paths: BTreeMap::new(), ticket: None, relay: None };
        self.out = Some(CallOut { attempt, listed, introduced: false, candidates: Vec::new() });
    }

    /// Candidates of the family we bind, local ones first, as the peer
    /// listed them.
    fn candidates(&self, intro: &Introduction) -> Vec<Candidate> {
        let observed = intro.peer.chat_addr();
        intro
            .candidates
            .iter()
            .filter(|a| a.is_ipv4() == self.chat_addr.is_ipv4())
            .map(|&addr| Candidate {
                addr,
                kind: if addr == observed { CandidateKind::Observed } else { CandidateKind::Local },
            })
            .take(MAX_CANDIDATES)
            .collect()
    }

    fn ticket(&self, intro: &Introduction) -> Option<(SocketAddr, Vec<u8>)> {
        intro.relay.as_ref().map(|t| (SocketAddr::new(self.registry_ip, t.port), t.hello.clone()))
    }

    /// The registry's answer to our introduction.
    pub(super) fn introduced(
        &mut self,
        now: Instant,
        name: &UserName,
        intro: Option<Introduction>,
        registry: &Registry,
    ) {
        let Some(call) =
            self.out.as_mut().filter(|c| !c.introduced && c.attempt.peer.key() == name.key())
        else {
            return;
        };
        call.introduced = true;
        let Some(intro) = intro.filter(|i| i.peer.key == call.attempt.key) else {
            // Gone meanwhile, or listed under another key now: the direct
            // connect says so the way it always did.
            return self.without_introduction();
        };
        if self.crossed() {
            return self.without_introduction();
        }
        let candidates = self.candidates(&intro);
        let ticket = self.ticket(&intro);
        let Some(call) = self.out.as_mut() else { return };
        call.attempt.ticket = ticket;
        call.candidates = candidates.iter().map(|c| c.addr).collect();
        match Punch::new(now, PunchRole::Caller, &candidates) {
            Ok(punch) => call.attempt.punch = Some(punch),
            Err(e) => {
                tracing::debug!(error = %e, "no candidate to punch; trying the relay");
                self.use_relay(now, registry);
            }
        }
    }

    /// Our call goes to the listed address, as without introductions.
    pub(super) fn without_introduction(&mut self) {
        if let Some(listed) = self.out.as_ref().map(|c| c.listed) {
            self.end_call(Dial::Addr(listed), None);
        }
    }

    /// Someone calls us. We try only the caller's observed address: a
    /// connection on a LAN (or one machine) is the caller's to make, to
    /// our listener, and our connects there would only collide with its.
    ///
    /// When it crosses our own call to the same user and our key is the
    /// larger (our call is the one that ends, docs/PROTOCOL.md §9.7), our
    /// call stops punching and connects to the listed address, as calls
    /// did before introductions: the two calls then meet as they always
    /// did, on two connections, and the chats' rule for crossed calls
    /// keeps one.
    pub(super) fn called(&mut self, now: Instant, intro: Introduction, registry: &Registry) {
        let mut candidates = self.candidates(&intro);
        candidates.retain(|c| c.kind == CandidateKind::Observed);
        let ticket = self.ticket(&intro);
        let punch = match Punch::new(now, PunchRole::Callee, &candidates) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::debug!(error = %e, "no candidate to punch towards a caller");
                None
            }
        };
        if self.answering.len() >= MAX_ANSWERED {
            if let Some(mut old) = self.answering.pop_front() {
                old.attempt.close(registry);
            }
        }
        let attempt = Attempt {
            peer: intro.peer.name,
            key: intro.peer.key,
            punch,
            paths: BTreeMap::new(),
            ticket,
            relay: None,
        };
        let until = now.checked_add(PUNCH_TIMEOUT + CALLEE_GRACE).unwrap_or(now);
        self.answering.push_back(CallIn { attempt, heard: false, until });
        if self.crossed() && self.out.as_ref().is_some_and(|c| c.introduced) {
            if let Some(call) = self.out.as_mut() {
                call.attempt.close(registry);
            }
            self.without_introduction();
        }
        if self.answering.back().is_some_and(|c| c.attempt.punch.is_none()) {
            self.callee_relay(now, self.answering.len() - 1, registry);
        }
    }

    /// A caller proved its key on a connection we admitted: the chat is
    /// direct, unless it came through the relay.
    pub(super) fn authenticated(
        &mut self,
        name: &UserName,
        events: &mut VecDeque<NodeEvent>,
        registry: &Registry,
    ) {
        for c in &mut self.answering {
            if c.attempt.peer.key() == name.key() && !c.heard && c.attempt.relay.is_none() {
                c.heard = true;
                events.push_back(NodeEvent::Route { peer: name.clone(), relayed: false });
                // The caller kept the connection it proved itself on: our
                // attempts towards it are of no more use (it would close
                // any of them), and driving them cost every turn of the
                // chat's first seconds.
                c.attempt.close(registry);
                c.attempt.punch = None;
            }
        }
    }

    /// Moves every socket and timer along; collects outcomes.
    pub(super) fn drive(&mut self, now: Instant, registry: &Registry) {
        // The usual case, every round of every turn: no call under way, or
        // only answered ones, each done and waiting out its time as a call
        // to us (the first seconds of a chat).
        if self.out.is_none() && self.answering.iter().all(|c| c.settled(now)) {
            return;
        }
        for i in 0..=self.answering.len() {
            let (role, attempt) = match i {
                0 => match self.out.as_mut().filter(|c| c.introduced) {
                    Some(c) => (PunchRole::Caller, &mut c.attempt),
                    None => continue,
                },
                i => match self.answering.get_mut(i - 1) {
                    Some(c) => (PunchRole::Callee, &mut c.attempt),
                    None => continue,
                },
            };
            let from = self.chat_addr;
            let mut relay_now = false;
            let mut chosen = None;
            if let Some(punch) = attempt.punch.as_mut() {
                if punch.poll_timeout().is_some_and(|t| t <= now) {
                    punch.handle_timeout(now);
                }
                // Connects that completed or failed.
                let ids: Vec<PathId> = attempt.paths.keys().copied().collect();
                for id in ids {
                    let Some(conn) = attempt.paths.get_mut(&id) else { continue };
                    match conn.pump(&mut Probe, now) {
                        Ok(StreamState::Connecting) => {}
                        Ok(StreamState::Open | StreamState::Done) => match role {
                            PunchRole::Caller => punch.handle_connected(now, id),
                            PunchRole::Callee => {
                                // Ours no longer: the admission's, to hear
                                // the caller on it.
                                punch.handle_connected(now, id);
                                if let Some(conn) = attempt.paths.remove(&id) {
                                    self.outcomes.push(Outcome::Admit {
                                        conn,
                                        early: Vec::new(),
                                        relayed: None,
                                    });
                                }
                            }
                        },
                        Err(e) => {
                            tracing::trace!(error = %e, "a punching attempt failed");
                            if let Some(conn) = attempt.paths.remove(&id) {
                                conn.close(registry);
                            }
                            punch.handle_failed(now, id);
                        }
                    }
                }
                while let Some(action) = punch.poll_action() {
                    match action {
                        PunchAction::Connect { path, addr } => {
                            self.next_token += 1;
                            let token = Token(self.next_token);
                            match punch_socket(from, addr)
                                .and_then(|s| StreamConn::connecting(s, registry, token))
                            {
                                Ok(conn) => {
                                    attempt.paths.insert(path, conn);
                                }
                                Err(e) => {
                                    tracing::debug!(%addr, error = %e, "cannot open a punching socket");
                                    punch.handle_failed(now, path);
                                }
                            }
                        }
                        PunchAction::Close { path } => {
                            if let Some(conn) = attempt.paths.remove(&path) {
                                conn.close(registry);
                            }
                        }
                    }
                }
                match punch.poll_event() {
                    Some(PunchEvent::Chosen { path, addr, .. }) => {
                        tracing::debug!(%addr, "punched a direct connection");
                        chosen = attempt.paths.remove(&path);
                    }
                    Some(PunchEvent::UseRelay) => relay_now = true,
                    None => {}
                }
            }
            if let Some(conn) = chosen {
                self.end_call(Dial::Conn(conn, Vec::new()), Some(false));
                continue;
            }
            if relay_now {
                match i {
                    0 => self.use_relay(now, registry),
                    i => self.callee_relay(now, i - 1, registry),
                }
            }
        }
        self.drive_relays(now, registry);
    }

    /// Our call is done here: the node connects it as `dial` says.
    fn end_call(&mut self, dial: Dial, relayed: Option<bool>) {
        if let Some(call) = self.out.take() {
            let a = call.attempt;
            self.outcomes.push(Outcome::Call { peer: a.peer, key: a.key, dial, relayed });
        }
    }

    /// Our call goes to the relay.
    fn use_relay(&mut self, now: Instant, registry: &Registry) {
        let token = self.token();
        let Some(call) = self.out.as_mut() else { return };
        call.attempt.punch = None;
        let opened = match &call.attempt.ticket {
            Some((addr, hello)) => RelayLink::open(now, *addr, hello, registry, token),
            None => Err("no direct connection, and the registry does not relay".to_owned()),
        };
        match opened {
            Ok(link) => call.attempt.relay = Some(link),
            Err(why) => self.end_call(Dial::Failed(why), None),
        }
    }

    /// The callee of introduction `i` goes to the relay, unless the caller
    /// came directly.
    fn callee_relay(&mut self, now: Instant, i: usize, registry: &Registry) {
        let token = self.token();
        let Some(c) = self.answering.get_mut(i) else { return };
        c.attempt.punch = None;
        if c.heard {
            return;
        }
        if let Some((addr, hello)) = &c.attempt.ticket {
            match RelayLink::open(now, *addr, hello, registry, token) {
                Ok(link) => c.attempt.relay = Some(link),
                Err(why) => tracing::debug!(%why, "cannot reach the relay"),
            }
        }
    }

    fn drive_relays(&mut self, now: Instant, registry: &Registry) {
        if let Some(call) = self.out.as_mut() {
            if let Some(link) = call.attempt.relay.as_mut() {
                match link.pump(now, registry) {
                    LinkState::Waiting => {}
                    LinkState::Paired(early) => {
                        if let Some(conn) = link.take() {
                            self.end_call(Dial::Conn(conn, early), Some(true));
                        }
                    }
                    LinkState::Failed(why) => self.end_call(Dial::Failed(why), None),
                }
            }
        }
        let mut i = 0;
        while i < self.answering.len() {
            let c = &mut self.answering[i];
            let state = c.attempt.relay.as_mut().map(|l| l.pump(now, registry));
            match state {
                Some(LinkState::Paired(early)) => {
                    if let Some(conn) = c.attempt.relay.as_mut().and_then(RelayLink::take) {
                        let peer = c.attempt.peer.clone();
                        self.outcomes.push(Outcome::Admit {
                            conn,
                            early,
                            relayed: Some((peer, true)),
                        });
                    }
                    c.attempt.relay = None;
                    self.answering.remove(i);
                    continue;
                }
                Some(LinkState::Failed(why)) => {
                    tracing::debug!(%why, "the relay did not pair us with a caller");
                    self.answering.remove(i);
                    continue;
                }
                Some(LinkState::Waiting) => {}
                None => {
                    // Done punching and not relaying: forget it (once it no
                    // longer counts as a call to us, if it was heard).
                    if c.attempt.idle() && !c.counts(now) {
                        self.answering.remove(i);
                        continue;
                    }
                }
            }
            i += 1;
        }
    }

    /// Whether our call has no connection yet (introduction, punching or
    /// relay under way).
    pub(super) fn calling(&self) -> bool {
        self.out.is_some()
    }

    /// Whether a connection our listener takes from `from` is our call's:
    /// our call is punching and `from` is one of the callee's candidate
    /// addresses (in crossed calls each call keeps its own connection).
    pub(super) fn claims(&self, from: SocketAddr) -> bool {
        let Some(call) = self.out.as_ref() else { return false };
        !self.crossing()
            && call.candidates.contains(&from)
            && call.attempt.punch.as_ref().is_some_and(|p| !p.is_done())
    }

    /// Takes a connection [`claims`](Self::claims) said is our call's,
    /// registered under [`token`](Self::token).
    pub(super) fn take_accepted(&mut self, now: Instant, from: SocketAddr, conn: StreamConn) {
        let Some(call) = self.out.as_mut() else { return };
        let Some(punch) = call.attempt.punch.as_mut() else { return };
        let path = punch.handle_accepted(now, from);
        call.attempt.paths.insert(path, conn);
    }

    /// Whether the user we call is calling us too.
    fn crossing(&self) -> bool {
        let Some(call) = self.out.as_ref() else { return false };
        self.answering.iter().any(|c| c.attempt.key == call.attempt.key)
    }

    /// Whether calls cross and ours is the one to end (the larger key).
    fn crossed(&self) -> bool {
        self.crossing() && self.out.as_ref().is_some_and(|c| self.me.0 > c.attempt.key.0)
    }

    /// Gives up our call under way; returns whom it was for.
    pub(super) fn cancel(&mut self, registry: &Registry) -> Option<(UserName, PublicKey)> {
        let mut call = self.out.take()?;
        call.attempt.close(registry);
        Some((call.attempt.peer, call.attempt.key))
    }
}

impl Attempt {
    /// Whether it has no punching and no connects left.
    fn idle(&self) -> bool {
        self.punch.is_none() && self.paths.is_empty()
    }

    fn close(&mut self, registry: &Registry) {
        for (_, conn) in std::mem::take(&mut self.paths) {
            conn.close(registry);
        }
        if let Some(link) = self.relay.as_mut() {
            link.close(registry);
        }
    }
}

#[cfg(test)]
#[path = "punching_tests.rs"]
mod tests;
