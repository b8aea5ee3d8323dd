//! A deterministic model of TCP hole punching between two [`Punch`]
//! machines, each host behind its own NAT (or both behind one), in virtual
//! time with seeded SYN loss and delay.
//!
//! What is modelled is what decides punching: a SYN leaving a NAT creates a
//! conntrack entry from its (translated) source to its destination; a SYN
//! arriving at a NAT passes only if it matches such an entry and is dropped
//! silently otherwise (RFC 5382 REQ-4); a SYN reaching a host that has a
//! pending connect to the SYN's source is a simultaneous open, otherwise the
//! listener accepts it. Connects retransmit their SYN at 1 s, 3 s and 7 s
//! as Linux does. SYN-ACKs, data and FINs are not lost (TCP retransmits
//! them within the short times here). NAT kinds: none, endpoint-independent
//! mapping with port preservation (nftables `masquerade`), a new port per
//! destination (`masquerade random`), and one that drops every inbound SYN.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use p2pchat_core::{
    Candidate, CandidateKind, PathId, PathKind, Punch, PunchAction, PunchEvent, PunchRole,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Kernel SYN retransmission times after a connect starts.
const SYN_TIMES: [Duration; 4] =
    [Duration::ZERO, Duration::from_secs(1), Duration::from_secs(3), Duration::from_secs(7)];

/// How long a run may last in virtual time.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// A NAT in front of a home network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// No NAT: the host's address is public.
    None,
    /// One mapping per internal port for every destination, the port kept.
    EndpointIndependent,
    /// A new external port for every destination.
    Symmetric,
    /// Endpoint-independent, but every inbound SYN without ACK is dropped.
    DropsInboundSyn,
}

/// The network both sides are on.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The caller's NAT.
    pub caller_nat: Nat,
    /// The callee's NAT (ignored when `same_nat`).
    pub callee_nat: Nat,
    /// Both behind the caller's NAT on one LAN (which does not hairpin).
    pub same_nat: bool,
    /// When the caller learns that the introduction went out (from the
    /// start of the run).
    pub caller_start: Duration,
    /// When the callee learns of the call (from the start of the run).
    pub callee_start: Duration,
    /// Chance that a SYN is lost.
    pub syn_loss: f64,
    /// Shortest one-way delay.
    pub min_delay: Duration,
    /// Longest one-way delay.
    pub max_delay: Duration,
}

/// One side of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum End {
    /// The caller.
    Caller,
    /// The callee.
    Callee,
}

impl End {
    fn i(self) -> usize {
        match self {
            End::Caller => 0,
            End::Callee => 1,
        }
    }
    fn other(self) -> End {
        match self {
            End::Caller => End::Callee,
            End::Callee => End::Caller,
        }
    }
}

/// What a run ended with.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Each side's event and the virtual time since the run started.
    pub events: [Option<(Duration, PunchEvent)>; 2],
    /// For each side that chose a path: the connection number it is on.
    pub chosen_conn: [Option<usize>; 2],
    /// Paths each side still has open at the end (sockets not closed).
    pub live_paths: [usize; 2],
    /// SYNs sent to a public (NAT or public host) address.
    pub public_syns: usize,
}

impl Outcome {
    /// Whether both sides ended on the same connection.
    pub fn same_connection(&self) -> bool {
        self.chosen_conn[0].is_some() && self.chosen_conn[0] == self.chosen_conn[1]
    }

    /// Whether both sides went to the relay.
    pub fn both_relay(&self) -> bool {
        self.events.iter().all(|e| matches!(e, Some((_, PunchEvent::UseRelay))))
    }

    /// How the caller's kept connection was made.
    pub fn caller_kind(&self) -> Option<PathKind> {
        match self.events[0] {
            Some((_, PunchEvent::Chosen { kind, .. })) => Some(kind),
            Some((_, PunchEvent::UseRelay)) | None => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathState {
    Connecting { to: SocketAddr },
    Open,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Start(End),
    SynSend { end: End, path: PathId, to: SocketAddr, n: usize },
    SynArrive { from: End, path: PathId, src: SocketAddr, dst: SocketAddr },
    Connected(End, PathId),
    Failed(End, PathId),
    PeerBytes(End, PathId),
}

struct Host {
    lan: SocketAddr,
    nat: Nat,
    /// The NAT's public IP (the host's own IP when there is no NAT).
    public_ip: Ipv4Addr,
    machine: Option<Punch>,
    paths: BTreeMap<PathId, PathState>,
    /// Connections taken before the machine started.
    backlog: Vec<(SocketAddr, usize)>,
    event: Option<(Duration, PunchEvent)>,
}

/// Runs one call in `scenario` with `seed`.
pub fn run(scenario: Scenario, seed: u64) -> Outcome {
    Sim::new(scenario, seed).run()
}

struct Sim {
    s: Scenario,
    rng: ChaCha8Rng,
    start: Instant,
    now: Instant,
    queue: BinaryHeap<Reverse<(Instant, u64, Ev)>>,
    order: u64,
    hosts: [Host; 2],
    /// (from, external src, dst) for SYNs that left a NAT.
    conntrack: Vec<(SocketAddr, SocketAddr, SocketAddr)>,
    /// Each connection's two ends.
    conns: Vec<[Option<PathId>; 2]>,
    public_syns: usize,
    /// The connection the caller picked.
    caller_chose: Option<usize>,
}

impl Sim {
    fn new(s: Scenario, seed: u64) -> Self {
        let start = Instant::now();
        let caller_public = Ipv4Addr::new(203, 0, 113, 1);
        let callee_public = if s.same_nat { caller_public } else { Ipv4Addr::new(203, 0, 113, 2) };
        let caller_lan = match s.caller_nat {
            Nat::None => SocketAddr::from((caller_public, 7001)),
            Nat::EndpointIndependent | Nat::Symmetric | Nat::DropsInboundSyn => {
                SocketAddr::from(([192, 0, 2, 10], 7001))
            }
        };
        let (callee_nat, callee_lan) = if s.same_nat {
            (s.caller_nat, SocketAddr::from(([192, 0, 2, 11], 7002)))
        } else {
            let lan = match s.callee_nat {
                Nat::None => SocketAddr::from((callee_public, 7002)),
                Nat::EndpointIndependent | Nat::Symmetric | Nat::DropsInboundSyn => {
                    SocketAddr::from(([198, 51, 100, 10], 7002))
                }
            };
            (s.callee_nat, lan)
        };
        let host = |lan, nat, public_ip| Host {
            lan,
            nat,
            public_ip,
            machine: None,
            paths: BTreeMap::new(),
            backlog: Vec::new(),
            event: None,
        };
        let mut sim = Self {
            s,
            rng: ChaCha8Rng::seed_from_u64(seed),
            start,
            now: start,
            queue: BinaryHeap::new(),
            order: 0,
            hosts: [
                host(caller_lan, s.caller_nat, caller_public),
                host(callee_lan, callee_nat, callee_public),
            ],
            conntrack: Vec::new(),
            conns: Vec::new(),
            public_syns: 0,
            caller_chose: None,
        };
        sim.at(s.caller_start, Ev::Start(End::Caller));
        sim.at(s.callee_start, Ev::Start(End::Callee));
        sim
    }

    /// The candidates `end` gets for its peer: the peer's local address,
    /// then its observed one (the public IP with the chat port, as the
    /// registry lists it).
    fn candidates(&self, end: End) -> Vec<Candidate> {
        let peer = &self.hosts[end.other().i()];
        let observed = SocketAddr::from((peer.public_ip, peer.lan.port()));
        vec![
            Candidate { addr: peer.lan, kind: CandidateKind::Local },
            Candidate { addr: observed, kind: CandidateKind::Observed },
        ]
    }

    fn at(&mut self, after: Duration, ev: Ev) {
        self.order += 1;
        self.queue.push(Reverse((self.now + after, self.order, ev)));
    }

    fn delay(&mut self) -> Duration {
        let span = self.s.max_delay.saturating_sub(self.s.min_delay);
        self.s.min_delay + span.mul_f64(self.rng.random::<f64>())
    }

    fn run(mut self) -> Outcome {
        let end = self.start + RUN_LIMIT;
        loop {
            let machine_due = self
                .hosts
                .iter()
                .filter_map(|h| h.machine.as_ref().and_then(|m| m.poll_timeout()))
                .min();
            let ev_due = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let Some(next) = machine_due.into_iter().chain(ev_due).min() else { break };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            if ev_due == Some(next) {
                if let Some(Reverse((_, _, ev))) = self.queue.pop() {
                    self.handle(ev);
                }
            } else {
                for e in [End::Caller, End::Callee] {
                    let now = self.now;
                    let fire = self.hosts[e.i()]
                        .machine
                        .as_mut()
                        .filter(|m| m.poll_timeout().is_some_and(|t| t <= now));
                    if let Some(m) = fire {
                        m.handle_timeout(now);
                        self.collect(e);
                    }
                }
            }
        }
        let chosen_conn = [End::Caller, End::Callee].map(|e| match self.hosts[e.i()].event {
            Some((_, PunchEvent::Chosen { path, .. })) => {
                self.conns.iter().position(|c| c[e.i()] == Some(path))
            }
            Some((_, PunchEvent::UseRelay)) | None => None,
        });
        Outcome {
            events: [self.hosts[0].event, self.hosts[1].event],
            chosen_conn,
            live_paths: [self.hosts[0].paths.len(), self.hosts[1].paths.len()],
            public_syns: self.public_syns,
        }
    }

    fn handle(&mut self, ev: Ev) {
        if std::env::var("PSIM").is_ok() {
            eprintln!("{:?} {:?}", self.now - self.start, ev);
        }
        let now = self.now;
        match ev {
            Ev::Start(e) => {
                let cands = self.candidates(e);
                let role = match e {
                    End::Caller => PunchRole::Caller,
                    End::Callee => PunchRole::Callee,
                };
                let m = Punch::new(now, role, &cands).expect("two candidates");
                self.hosts[e.i()].machine = Some(m);
                self.collect(e);
                for (src, conn) in std::mem::take(&mut self.hosts[e.i()].backlog) {
                    self.accept(e, src, conn);
                }
            }
            Ev::SynSend { end, path, to, n } => {
                if !matches!(
                    self.hosts[end.i()].paths.get(&path),
                    Some(PathState::Connecting { .. })
                ) {
                    return;
                }
                self.send_syn(end, path, to);
                if let Some(wait) = SYN_TIMES.get(n + 1) {
                    self.at(*wait - SYN_TIMES[n], Ev::SynSend { end, path, to, n: n + 1 });
                }
            }
            Ev::SynArrive { from, path, src, dst } => self.syn_arrives(from, path, src, dst),
            Ev::Connected(e, path) => {
                if let Some(state) = self.hosts[e.i()].paths.get_mut(&path) {
                    *state = PathState::Open;
                    if let Some(m) = self.hosts[e.i()].machine.as_mut() {
                        m.handle_connected(now, path);
                    }
                    self.collect(e);
                }
            }
            Ev::Failed(e, path) => {
                if self.hosts[e.i()].paths.remove(&path).is_some() {
                    if let Some(m) = self.hosts[e.i()].machine.as_mut() {
                        m.handle_failed(now, path);
                    }
                    self.collect(e);
                }
            }
            Ev::PeerBytes(e, path) => {
                // Data after the handshake: an end still waiting for its
                // SYN-ACK in this model is established by then.
                if let Some(PathState::Connecting { .. }) = self.hosts[e.i()].paths.get(&path) {
                    self.handle(Ev::Connected(e, path));
                }
                if self.hosts[e.i()].paths.contains_key(&path) {
                    if let Some(m) = self.hosts[e.i()].machine.as_mut() {
                        m.handle_peer_bytes(now, path);
                    }
                    self.collect(e);
                }
            }
        }
    }

    /// A SYN from `end`'s `path` towards `to`, through its NAT.
    fn send_syn(&mut self, end: End, path: PathId, to: SocketAddr) {
        let h = &self.hosts[end.i()];
        let same_lan = self.s.same_nat && self.hosts.iter().any(|o| o.lan == to);
        let public_dst =
            self.hosts.iter().any(|o| SocketAddr::from((o.public_ip, to.port())) == to);
        if public_dst && !same_lan {
            self.public_syns += 1;
        }
        let src = match (same_lan, h.nat) {
            (true, _) | (false, Nat::None) => h.lan,
            (false, Nat::EndpointIndependent | Nat::DropsInboundSyn) => {
                SocketAddr::from((h.public_ip, h.lan.port()))
            }
            (false, Nat::Symmetric) => {
                // A port of its own for each destination, never the
                // internal one (which is what the registry lists).
                let port = 20_000 + (to.port() ^ 0x5a5a) % 30_000;
                SocketAddr::from((h.public_ip, port))
            }
        };
        if to.ip() == std::net::IpAddr::V4(h.public_ip) && h.nat != Nat::None && !same_lan {
            return; // Our own NAT's public address: no hairpinning.
        }
        if h.nat != Nat::None && !same_lan {
            self.conntrack.push((h.lan, src, to));
        }
        // Another home network's private address is not routed between
        // networks: the SYN goes nowhere.
        let private_elsewhere =
            self.hosts.iter().any(|o| o.lan == to && o.nat != Nat::None) && !same_lan;
        if private_elsewhere {
            return;
        }
        if self.rng.random_bool(self.s.syn_loss) {
            return;
        }
        let d = self.delay();
        self.at(d, Ev::SynArrive { from: end, path, src, dst: to });
    }

    fn syn_arrives(&mut self, from: End, from_path: PathId, src: SocketAddr, dst: SocketAddr) {
        // Which host, and through which NAT rule.
        let Some(to) = [End::Caller, End::Callee].into_iter().find(|e| {
            let h = &self.hosts[e.i()];
            h.lan == dst || (SocketAddr::from((h.public_ip, dst.port())) == dst && e != &from)
        }) else {
            return;
        };
        let h = &self.hosts[to.i()];
        if h.lan != dst {
            // At the NAT's public address.
            if h.nat == Nat::DropsInboundSyn {
                return;
            }
            let known = self
                .conntrack
                .iter()
                .any(|(inner, ext, remote)| *inner == h.lan && *ext == dst && *remote == src);
            if !known {
                return; // Dropped silently.
            }
        }
        // The sender's attempt must still exist, and not be part of a
        // connection already (a crossing or repeated SYN).
        if !self.hosts[from.i()].paths.contains_key(&from_path)
            || self.conns.iter().any(|c| c[from.i()] == Some(from_path))
        {
            return;
        }
        let pending = h.paths.iter().find_map(|(p, s)| match s {
            PathState::Connecting { to: t } if *t == src => Some(*p),
            PathState::Connecting { .. } | PathState::Open => None,
        });
        let conn = self.conns.len();
        if let Some(mine) = pending {
            if self.conns.iter().any(|c| c[to.i()] == Some(mine)) {
                return;
            }
            let mut ends = [None, None];
            ends[to.i()] = Some(mine);
            ends[from.i()] = Some(from_path);
            self.conns.push(ends);
            self.at(Duration::ZERO, Ev::Connected(to, mine));
        } else if h.machine.is_none() {
            let mut ends = [None, None];
            ends[from.i()] = Some(from_path);
            self.conns.push(ends);
            self.hosts[to.i()].backlog.push((src, conn));
        } else {
            let mut ends = [None, None];
            ends[from.i()] = Some(from_path);
            self.conns.push(ends);
            self.accept(to, src, conn);
        }
        let d = self.delay();
        self.at(d, Ev::Connected(from, from_path));
    }

    fn accept(&mut self, e: End, src: SocketAddr, conn: usize) {
        let now = self.now;
        let Some(m) = self.hosts[e.i()].machine.as_mut() else { return };
        let path = m.handle_accepted(now, src);
        self.hosts[e.i()].paths.insert(path, PathState::Open);
        self.conns[conn][e.i()] = Some(path);
        if e == End::Callee && self.caller_chose == Some(conn) {
            // The caller's bytes waited in the accepted socket.
            self.at(Duration::ZERO, Ev::PeerBytes(e, path));
        }
        self.collect(e);
    }

    fn collect(&mut self, e: End) {
        let now = self.now;
        loop {
            let Some(m) = self.hosts[e.i()].machine.as_mut() else { return };
            let action = m.poll_action();
            let event = if action.is_none() { m.poll_event() } else { None };
            match (action, event) {
                (Some(PunchAction::Connect { path, addr }), _) => {
                    self.hosts[e.i()].paths.insert(path, PathState::Connecting { to: addr });
                    self.at(Duration::ZERO, Ev::SynSend { end: e, path, to: addr, n: 0 });
                }
                (Some(PunchAction::Close { path }), _) => {
                    if let Some(PathState::Open) = self.hosts[e.i()].paths.remove(&path) {
                        if let Some(peer) = self.peer_end(e, path) {
                            let d = self.delay();
                            self.at(d, Ev::Failed(e.other(), peer));
                        }
                    }
                }
                (None, Some(ev)) => {
                    assert!(self.hosts[e.i()].event.is_none(), "{e:?} reported twice");
                    self.hosts[e.i()].event = Some((now - self.start, ev));
                    if let (End::Caller, PunchEvent::Chosen { path, .. }) = (e, ev) {
                        self.caller_chose = self.conns.iter().position(|c| c[0] == Some(path));
                        if let Some(peer) = self.peer_end(e, path) {
                            let d = self.delay();
                            self.at(d, Ev::PeerBytes(End::Callee, peer));
                        }
                    }
                }
                (None, None) => return,
            }
        }
    }

    fn peer_end(&self, e: End, path: PathId) -> Option<PathId> {
        self.conns.iter().find(|c| c[e.i()] == Some(path)).and_then(|c| c[e.other().i()])
    }
}
