//! A deterministic datagram network: one virtual clock, a registry server and
//! many registry clients, with seeded loss, duplication, delay and reordering.
//!
//! Nothing sleeps: [`Net::step`] jumps the clock to the next datagram arrival
//! or the next deadline of any node, whichever is first. The same seed gives
//! the same run, datagram for datagram. An address may be made a UDP echo
//! service ([`Net::echo`]), and any datagram, forged source included, may be
//! put on the wire ([`Net::inject`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use p2pchat_core::{
    ClientEvent, CookieKey, GIVE_UP_AFTER, PublicKey, RegistryClient, RegistryServer, ServerConfig,
    ServerEvent, Transmit, UserName,
};

/// Most rounds of retries [`Net::until_all`] gives an operation.
pub const MAX_ROUNDS: usize = 20;

/// The registry's address in every simulated network.
pub const SERVER_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5000));
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How the network mistreats datagrams.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Chance that a datagram is lost.
    pub loss: f64,
    /// Chance that a datagram is delivered twice.
    pub duplicate: f64,
    /// Shortest one-way delay.
    pub min_delay: Duration,
    /// Longest one-way delay; datagrams with different delays overtake each
    /// other, which is how the network reorders.
    pub max_delay: Duration,
}

impl Faults {
    /// The simulation tests' rough network: 20% loss, 5% duplication, and
    /// delays from 5 to 80 ms, so datagrams overtake each other.
    pub fn lossy() -> Self {
        Self {
            loss: 0.20,
            duplicate: 0.05,
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(80),
        }
    }

    /// A perfect network with a fixed 10 ms delay.
    pub fn none() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
        }
    }
}

/// One simulated client: its state machine, its address and what it reported.
pub struct SimClient {
    /// The client state machine.
    pub machine: RegistryClient,
    /// Its address, as the server sees it.
    pub addr: SocketAddr,
    /// The name it logs in with.
    pub name: UserName,
    /// The public key it logs in with.
    pub key: PublicKey,
    /// Every event it reported, in order, with the virtual time.
    pub events: Vec<(Duration, ClientEvent)>,
    /// A crashed client is no longer driven: it neither sends nor receives.
    pub crashed: bool,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    order: u64,
    src: SocketAddr,
    dst: SocketAddr,
    payload: Vec<u8>,
}

/// The simulated network with one registry and its clients.
pub struct Net {
    /// The registry.
    pub server: RegistryServer,
    /// The registry's address.
    pub server_addr: SocketAddr,
    /// Every event the registry reported, with the virtual time.
    pub server_events: Vec<(Duration, ServerEvent)>,
    /// The clients, indexed as created.
    pub clients: Vec<SimClient>,
    /// How the network behaves from now on.
    pub faults: Faults,
    config: ServerConfig,
    rng: ChaCha8Rng,
    start: Instant,
    now: Instant,
    queue: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    /// Datagrams handed to the network so far.
    pub sent: u64,
    /// Datagrams the registry handed to the network so far.
    pub server_sent: u64,
    /// An address at which a UDP echo service sends every datagram back to
    /// its source, unchanged.
    pub echo: Option<SocketAddr>,
}

impl Net {
    /// A network with a registry and `clients` clients named `user0`,
    /// `user1`, … , none logged in yet.
    pub fn new(seed: u64, faults: Faults, config: ServerConfig, clients: usize) -> Self {
        let start = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let server_addr = SERVER_ADDR;
        let server = RegistryServer::new(start, CookieKey(rng.random()), config);
        let clients = (0..clients)
            .map(|i| {
                let ip = Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250) as u8 + 1);
                let addr = SocketAddr::new(IpAddr::V4(ip), 40_000 + (i % 1000) as u16);
                let name = UserName::new(&format!("user{i}")).expect("a valid name");
                let key = PublicKey(rng.random());
                SimClient {
                    machine: RegistryClient::new(server_addr, rng.random(), key),
                    addr,
                    name,
                    key,
                    events: Vec::new(),
                    crashed: false,
                }
            })
            .collect();
        Self {
            server,
            server_addr,
            server_events: Vec::new(),
            clients,
            faults,
            config,
            rng,
            start,
            now: start,
            queue: BinaryHeap::new(),
            order: 0,
            sent: 0,
            server_sent: 0,
            echo: None,
        }
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Runs `command` on client `i` at the current virtual time, then
    /// collects what it wants sent.
    pub fn command(&mut self, i: usize, command: impl FnOnce(&mut RegistryClient, Instant)) {
        let now = self.now;
        command(&mut self.clients[i].machine, now);
        self.collect_client(i);
    }

    /// Puts a datagram on the wire now, from any source (a forged one
    /// included), subject to the faults.
    pub fn inject(&mut self, src: SocketAddr, dst: SocketAddr, payload: Vec<u8>) {
        self.send(src, Transmit { dst, payload });
    }

    /// Replaces the registry with a fresh one that knows nobody and has a new
    /// cookie key, as after a crash and restart.
    pub fn restart_server(&mut self) {
        self.server = RegistryServer::new(self.now, CookieKey(self.rng.random()), self.config);
    }

    /// Advances to the next thing that happens and handles everything due
    /// then. Returns `false` when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        let Some(next) = self.next_deadline() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        while self.queue.peek().is_some_and(|Reverse(d)| d.at <= now) {
            let Some(Reverse(d)) = self.queue.pop() else {
                break;
            };
            self.deliver(d);
        }
        if self.server.poll_timeout().is_some_and(|t| t <= now) {
            self.server.handle_timeout(now);
            self.collect_server();
        }
        for i in 0..self.clients.len() {
            let c = &mut self.clients[i];
            if !c.crashed && c.machine.poll_timeout().is_some_and(|t| t <= now) {
                c.machine.handle_timeout(now);
                self.collect_client(i);
            }
        }
        true
    }

    /// Runs until `done` holds, or until `limit` of virtual time has passed.
    /// Returns whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) -> bool {
        let end = self.now + limit;
        while !done(self) {
            if self.next_deadline().is_none_or(|t| t > end) {
                self.now = end;
                return done(self);
            }
            self.step();
        }
        true
    }

    /// Runs `command` on each client in `who` (all at once) until each
    /// reports an event that `done` accepts, giving a client the command
    /// again after it reports `Unreachable`, for at most [`MAX_ROUNDS`]
    /// rounds. Returns each client's accepted event, in `who`'s order.
    pub fn until_all(
        &mut self,
        who: &[usize],
        command: impl Fn(&mut Net, usize),
        done: impl Fn(&ClientEvent) -> bool,
    ) -> Vec<ClientEvent> {
        let mut marks: Vec<usize> = who.iter().map(|&i| self.clients[i].events.len()).collect();
        for &i in who {
            command(self, i);
        }
        let unreachable = |e: &ClientEvent| matches!(e, ClientEvent::Unreachable { .. });
        for _round in 0..MAX_ROUNDS {
            let finished = self.run_until(GIVE_UP_AFTER + Duration::from_secs(1), |net| {
                who.iter().zip(&marks).all(|(&i, &m)| {
                    net.clients[i].events[m..].iter().any(|(_, e)| done(e) || unreachable(e))
                })
            });
            assert!(finished, "some client got no answer at all while trying");
            let answer = |net: &Net, k: usize| {
                let events = &net.clients[who[k]].events[marks[k]..];
                events.iter().find(|(_, e)| done(e)).map(|(_, e)| e.clone())
            };
            let retry: Vec<usize> = (0..who.len()).filter(|&k| answer(self, k).is_none()).collect();
            if retry.is_empty() {
                return (0..who.len()).filter_map(|k| answer(self, k)).collect();
            }
            for k in retry {
                marks[k] = self.clients[who[k]].events.len();
                command(self, who[k]);
            }
        }
        panic!("some clients never succeeded after {MAX_ROUNDS} rounds of retries");
    }

    /// Runs for `span` of virtual time.
    pub fn run_for(&mut self, span: Duration) {
        self.run_until(span, |_| false);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let datagram = self.queue.peek().map(|Reverse(d)| d.at);
        let server = self.server.poll_timeout();
        let clients =
            self.clients.iter().filter(|c| !c.crashed).filter_map(|c| c.machine.poll_timeout());
        datagram.into_iter().chain(server).chain(clients).min()
    }

    fn deliver(&mut self, d: InFlight) {
        let now = self.now;
        if Some(d.dst) == self.echo {
            self.send(d.dst, Transmit { dst: d.src, payload: d.payload });
        } else if d.dst == self.server_addr {
            self.server.handle_datagram(now, d.src, &d.payload);
            self.collect_server();
        } else if let Some(i) = self.clients.iter().position(|c| c.addr == d.dst) {
            if self.clients[i].crashed {
                return;
            }
            self.clients[i].machine.handle_datagram(now, d.src, &d.payload);
            self.collect_client(i);
        }
    }

    fn collect_server(&mut self) {
        while let Some(t) = self.server.poll_transmit() {
            self.server_sent += 1;
            self.send(self.server_addr, t);
        }
        let at = self.elapsed();
        while let Some(e) = self.server.poll_event() {
            self.server_events.push((at, e));
        }
    }

    fn collect_client(&mut self, i: usize) {
        let at = self.elapsed();
        let src = self.clients[i].addr;
        while let Some(t) = self.clients[i].machine.poll_transmit() {
            self.send(src, t);
        }
        while let Some(e) = self.clients[i].machine.poll_event() {
            self.clients[i].events.push((at, e));
        }
    }

    /// Puts a datagram on the wire, subject to the faults.
    fn send(&mut self, src: SocketAddr, t: Transmit) {
        self.sent += 1;
        if self.rng.random_bool(self.faults.loss) {
            return;
        }
        let copies = if self.rng.random_bool(self.faults.duplicate) { 2 } else { 1 };
        for _ in 0..copies {
            let span = self.faults.max_delay.saturating_sub(self.faults.min_delay);
            let delay = self.faults.min_delay + span.mul_f64(self.rng.random::<f64>());
            self.order += 1;
            self.queue.push(Reverse(InFlight {
                at: self.now + delay,
                order: self.order,
                src,
                dst: t.dst,
                payload: t.payload.clone(),
            }));
        }
    }
}
