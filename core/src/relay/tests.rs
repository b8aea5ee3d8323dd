//! The relay's rules, one test each, and a property: whatever the other
//! connections do and however the bytes are cut, an honest pair's bytes
//! arrive exactly once and in order.

use super::*;
use crate::key::PublicKey;
use proptest::prelude::*;
use std::time::Duration;

const KEY: RelayKey = RelayKey([9; 32]);

struct H {
    relay: Relay,
    mint: TokenMint,
    t0: Instant,
    now: Instant,
    /// Every byte written to each connection, in order.
    written: HashMap<ConnId, Vec<u8>>,
    closed: HashMap<ConnId, RelayCloseReason>,
    paired: Vec<(ConnId, ConnId)>,
}

fn addr(ip: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([198, 51, 100, ip], port))
}

impl H {
    fn new(config: RelayConfig) -> Self {
        let t0 = test_origin();
        Self {
            relay: Relay::new(&KEY, t0, config),
            mint: TokenMint::new(&KEY, t0),
            t0,
            now: t0,
            written: HashMap::new(),
            closed: HashMap::new(),
            paired: Vec::new(),
        }
    }

    fn hellos(&self, nonce: u64) -> (RelayHello, RelayHello) {
        self.mint.issue(self.now, PublicKey([1; 32]), PublicKey([2; 32]), nonce)
    }

    /// Feeds `bytes` as the socket would, within the budget, then writes
    /// everything out.
    fn send(&mut self, conn: ConnId, bytes: &[u8]) -> usize {
        let mut sent = 0;
        while sent < bytes.len() {
            let budget = self.relay.read_budget(self.now, conn);
            if budget == 0 {
                break;
            }
            let end = bytes.len().min(sent + budget);
            let took = self.relay.handle_input(self.now, conn, &bytes[sent..end]);
            assert_eq!(took, end - sent, "the relay takes what its budget allows");
            sent = end;
            self.flush();
        }
        self.flush();
        sent
    }

    fn connect(&mut self, conn: u64, from: SocketAddr, hello: &RelayHello) -> ConnId {
        let conn = ConnId(conn);
        self.relay.handle_accept(self.now, conn, from);
        self.flush();
        self.send(conn, &hello.encode());
        conn
    }

    fn flush(&mut self) {
        loop {
            let ids: Vec<ConnId> =
                self.relay.conns.keys().copied().filter(|c| self.relay.wants_write(*c)).collect();
            for id in &ids {
                let bytes = self.relay.pending_output(*id).to_vec();
                self.written.entry(*id).or_default().extend_from_slice(&bytes);
                self.relay.consume(*id, bytes.len());
            }
            let mut any = false;
            while let Some(e) = self.relay.poll_event() {
                any = true;
                match e {
                    RelayEvent::Paired { caller, callee } => self.paired.push((caller, callee)),
                    RelayEvent::Close { conn, reason } => {
                        assert!(self.closed.insert(conn, reason).is_none(), "closed twice");
                    }
                }
            }
            if ids.is_empty() && !any {
                return;
            }
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.relay.handle_timeout(self.now);
        self.flush();
    }

    fn reply(&self, conn: ConnId) -> Option<u8> {
        self.written.get(&conn).and_then(|w| w.get(4).copied())
    }
}

fn paired_pair(h: &mut H) -> (ConnId, ConnId) {
    let (a, b) = h.hellos(1);
    let ca = h.connect(1, addr(10, 4000), &a);
    assert_eq!(h.reply(ca), None, "the first side waits");
    let cb = h.connect(2, addr(20, 4000), &b);
    assert_eq!(h.paired, vec![(ca, cb)]);
    assert_eq!(h.reply(ca), Some(RelayStatus::Paired.byte()));
    assert_eq!(h.reply(cb), Some(RelayStatus::Paired.byte()));
    (ca, cb)
}

#[test]
fn pairs_the_two_sides_and_copies_both_ways() {
    let mut h = H::new(RelayConfig::default());
    let (ca, cb) = paired_pair(&mut h);
    h.send(ca, b"ciphertext from the caller");
    h.send(cb, b"and from the callee");
    assert_eq!(&h.written[&cb][RELAY_REPLY_LEN..], b"ciphertext from the caller");
    assert_eq!(&h.written[&ca][RELAY_REPLY_LEN..], b"and from the callee");
    // One side's end closes both, after what waits is written.
    h.relay.handle_eof(h.now, ca);
    h.flush();
    assert_eq!(h.closed.get(&ca), Some(&RelayCloseReason::Ended));
    assert_eq!(h.closed.get(&cb), Some(&RelayCloseReason::Ended));
    assert_eq!(h.relay.connections(), 0);
    assert!(h.relay.per_ip.is_empty());
}

#[test]
fn a_forged_or_altered_token_is_refused() {
    let mut h = H::new(RelayConfig::default());
    let (a, b) = h.hellos(1);
    let mut forged = a;
    forged.tag[0] ^= 1;
    let c = h.connect(1, addr(10, 4000), &forged);
    assert_eq!(h.reply(c), Some(RelayStatus::Forged.byte()));
    assert_eq!(h.closed[&c], RelayCloseReason::Refused(RelayStatus::Forged));
    // The callee's tag does not work for the caller's side.
    let mut swapped = b;
    swapped.side = RelaySide::Caller;
    let c = h.connect(2, addr(10, 4001), &swapped);
    assert_eq!(h.reply(c), Some(RelayStatus::Forged.byte()));
    // Another relay's token.
    let other = TokenMint::new(&RelayKey([8; 32]), h.t0);
    let (a, _) = other.issue(h.now, PublicKey([1; 32]), PublicKey([2; 32]), 1);
    let c = h.connect(3, addr(10, 4002), &a);
    assert_eq!(h.reply(c), Some(RelayStatus::Forged.byte()));
}

#[test]
fn an_expired_token_is_refused() {
    let mut h = H::new(RelayConfig::default());
    let (a, _) = h.hellos(1);
    h.advance(TOKEN_LIFETIME);
    let c = h.connect(1, addr(10, 4000), &a);
    assert_eq!(h.reply(c), Some(RelayStatus::Expired.byte()));
}

#[test]
fn a_token_pairs_once() {
    let mut h = H::new(RelayConfig::default());
    let (ca, cb) = paired_pair(&mut h);
    let (a, b) = h.hellos(1);
    // A third connection for the pair, while it is paired.
    let third = h.connect(3, addr(30, 4000), &a);
    assert_eq!(h.reply(third), Some(RelayStatus::Reused.byte()));
    // A reconnect after the pair ended.
    h.relay.handle_error(h.now, ca);
    h.flush();
    assert!(h.closed.contains_key(&cb));
    let again = h.connect(4, addr(10, 4000), &b);
    assert_eq!(h.reply(again), Some(RelayStatus::Reused.byte()));
    assert_eq!(h.paired.len(), 1);
}

#[test]
fn one_side_twice_while_waiting_keeps_the_first() {
    let mut h = H::new(RelayConfig::default());
    let (a, b) = h.hellos(1);
    let first = h.connect(1, addr(10, 4000), &a);
    let second = h.connect(2, addr(66, 4000), &a);
    assert_eq!(h.reply(second), Some(RelayStatus::Reused.byte()));
    let callee = h.connect(3, addr(20, 4000), &b);
    assert_eq!(h.paired, vec![(first, callee)]);
}

#[test]
fn connections_per_address_are_capped_and_others_unaffected() {
    let config = RelayConfig { max_per_address: 3, ..RelayConfig::default() };
    let mut h = H::new(config);
    let (a, _) = h.hellos(7);
    for i in 0..3 {
        h.relay.handle_accept(h.now, ConnId(100 + i), addr(66, 5000 + i as u16));
    }
    h.flush();
    let over = h.connect(200, addr(66, 6000), &a);
    assert_eq!(h.reply(over), Some(RelayStatus::TooManyFromAddress.byte()));
    // An honest pair from other addresses pairs all the same.
    paired_pair(&mut h);
}

#[test]
fn a_full_relay_refuses_and_then_closes_without_a_reply() {
    let config = RelayConfig { max_connections: 2, ..RelayConfig::default() };
    let mut h = H::new(config);
    for i in 0..2 {
        h.relay.handle_accept(h.now, ConnId(i), addr(i as u8, 5000));
    }
    let (a, _) = h.hellos(7);
    let busy = h.connect(10, addr(50, 5000), &a);
    assert_eq!(h.reply(busy), Some(RelayStatus::Busy.byte()));
    assert!(h.relay.connections() <= 2 + REFUSAL_HEADROOM);
}

#[test]
fn silent_and_unpaired_connections_time_out() {
    let mut h = H::new(RelayConfig::default());
    let silent = ConnId(1);
    h.relay.handle_accept(h.now, silent, addr(10, 4000));
    let (a, _) = h.hellos(1);
    let waiting = h.connect(2, addr(11, 4000), &a);
    h.advance(RELAY_HELLO_TIMEOUT);
    assert_eq!(h.reply(silent), Some(RelayStatus::Timeout.byte()));
    assert!(!h.closed.contains_key(&waiting));
    h.advance(UNPAIRED_TIMEOUT - RELAY_HELLO_TIMEOUT);
    assert_eq!(h.reply(waiting), Some(RelayStatus::Timeout.byte()));
    assert_eq!(h.relay.connections(), 0);
    assert_eq!(h.relay.poll_timeout(), None);
}

#[test]
fn an_idle_pair_is_closed_a_busy_one_is_not() {
    let mut h = H::new(RelayConfig::default());
    let (ca, cb) = paired_pair(&mut h);
    h.advance(RELAY_IDLE_TIMEOUT - Duration::from_secs(1));
    h.send(ca, b"ping");
    h.advance(Duration::from_secs(2));
    assert!(h.closed.is_empty(), "traffic keeps a pair open");
    h.advance(RELAY_IDLE_TIMEOUT);
    assert_eq!(h.closed.get(&ca), Some(&RelayCloseReason::Idle));
    assert_eq!(h.closed.get(&cb), Some(&RelayCloseReason::Idle));
}

#[test]
fn a_pair_is_held_to_its_rate() {
    let config = RelayConfig { pair_rate: 1000, pair_burst: 2000, ..RelayConfig::default() };
    let mut h = H::new(config);
    let (ca, cb) = paired_pair(&mut h);
    let big = vec![7u8; 10_000];
    assert_eq!(h.send(ca, &big), 2000, "the burst, then nothing");
    assert_eq!(h.relay.read_budget(h.now, cb), 0, "the budget is the pair's, both ways");
    let wake = h.relay.poll_timeout().expect("a wakeup for the refill");
    assert!(wake <= h.now + Duration::from_secs(2));
    h.advance(Duration::from_secs(1));
    assert_eq!(h.send(ca, &big[2000..]), 1000);
    assert_eq!(h.written[&cb].len(), RELAY_REPLY_LEN + 3000);
}

#[test]
fn a_partner_that_does_not_read_stops_reading() {
    let mut h = H::new(RelayConfig::default());
    let (ca, cb) = paired_pair(&mut h);
    // Fill cb's buffer without writing it out.
    let chunk = vec![1u8; MAX_RELAY_BUFFER];
    let took = h.relay.handle_input(h.now, ca, &chunk);
    assert_eq!(took, MAX_RELAY_BUFFER);
    assert_eq!(h.relay.read_budget(h.now, ca), 0);
    assert_eq!(h.relay.handle_input(h.now, ca, b"more"), 0, "nothing beyond the budget");
    h.relay.consume(cb, 100);
    assert_eq!(h.relay.read_budget(h.now, ca), 100);
}

#[test]
fn garbage_is_refused_at_its_first_byte() {
    let mut h = H::new(RelayConfig::default());
    let c = ConnId(1);
    h.relay.handle_accept(h.now, c, addr(10, 4000));
    h.send(c, b"GET / HTTP/1.1\r\n");
    assert_eq!(h.reply(c), Some(RelayStatus::Malformed.byte()));
}

#[test]
fn hello_round_trip_and_example() {
    let mint = TokenMint::new(&KEY, test_origin());
    let (a, b) = mint.issue(test_origin(), PublicKey([1; 32]), PublicKey([2; 32]), 5);
    for h in [a, b] {
        assert_eq!(RelayHello::decode(&h.encode()), Ok(h));
        assert!(mint.is_authentic(&h));
    }
    assert_eq!(RelayHello::decode(&[0; 3]), Err(RelayHelloError::Length(3)));
}

#[derive(Debug, Clone)]
enum Op {
    /// A stranger connects and sends these bytes.
    Stranger(Vec<u8>),
    /// The honest caller sends a chunk of its stream.
    Caller(usize),
    /// The honest callee sends a chunk of its stream.
    Callee(usize),
    /// Time passes (ms).
    Wait(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..120).prop_map(Op::Stranger),
        (1usize..300).prop_map(Op::Caller),
        (1usize..300).prop_map(Op::Callee),
        (0u16..3000).prop_map(Op::Wait),
    ]
}

proptest! {
    #[test]
    fn an_honest_pair_gets_its_bytes_exactly_once_in_order(
        ops in proptest::collection::vec(op(), 0..60),
        strangers_hello in any::<bool>(),
    ) {
        let config = RelayConfig { pair_rate: 2000, pair_burst: 1000, ..RelayConfig::default() };
        let mut h = H::new(config);
        let (ca, cb) = paired_pair(&mut h);
        let streams: [Vec<u8>; 2] = [
            (0..20_000u32).map(|i| (i % 251) as u8).collect(),
            (0..20_000u32).map(|i| (i % 241) as u8).collect(),
        ];
        let mut sent = [0usize; 2];
        let mut next = 1000u64;
        for op in ops {
            match op {
                Op::Stranger(mut bytes) => {
                    if strangers_hello {
                        // A replayed hello of the honest pair, then junk.
                        let (a, _) = h.hellos(1);
                        let mut b = a.encode();
                        b.append(&mut bytes);
                        bytes = b;
                    }
                    next += 1;
                    h.relay.handle_accept(h.now, ConnId(next), addr(77, 1));
                    h.send(ConnId(next), &bytes);
                }
                Op::Caller(n) | Op::Callee(n) => {
                    let (i, c) = if matches!(op, Op::Caller(_)) { (0, ca) } else { (1, cb) };
                    let end = (sent[i] + n).min(streams[i].len());
                    sent[i] += h.send(c, &streams[i][sent[i]..end]);
                }
                Op::Wait(ms) => h.advance(Duration::from_millis(u64::from(ms))),
            }
            let total: usize = h.relay.per_ip.values().sum();
            prop_assert_eq!(total, h.relay.connections());
            for c in h.relay.conns.values() {
                prop_assert!(c.out.len() <= MAX_RELAY_BUFFER + RELAY_REPLY_LEN);
            }
        }
        prop_assert_eq!(h.paired.len(), 1, "no stranger ever pairs");
        if !h.closed.contains_key(&ca) {
            prop_assert_eq!(&h.written[&cb][RELAY_REPLY_LEN..], &streams[0][..sent[0]]);
            prop_assert_eq!(&h.written[&ca][RELAY_REPLY_LEN..], &streams[1][..sent[1]]);
        }
    }
}

/// The worked example of docs/PROTOCOL.md §14: relay key 00 01 … 1f, the
/// caller's key 01 02 … 20, the callee's 21 22 … 40, nonce 7, issued 3540 s
/// after the origin (so the expiry is 3600).
fn doc_example() -> RelayHello {
    let count = |first: u8| std::array::from_fn::<u8, 32, _>(|i| first + i as u8);
    let t0 = test_origin();
    let mint = TokenMint::new(&RelayKey(count(0)), t0);
    let now = t0 + Duration::from_secs(3540);
    mint.issue(now, PublicKey(count(1)), PublicKey(count(0x21)), 7).0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

#[test]
fn protocol_md_has_the_worked_hello() {
    let doc = include_str!("../../../docs/PROTOCOL.md");
    let hello = doc_example();
    assert_eq!(hello.pair.expiry, 3600);
    let start = doc.find("<!-- relay-hello-example -->").expect("the example's marker");
    let block = &doc[start..];
    let block = &block[block.find("```text").expect("a text block") + 7..];
    let block = &block[..block.find("```").expect("its end")];
    let shown: Vec<u8> = block
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split_whitespace())
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect();
    assert_eq!(hex(&shown), hex(&hello.encode()));
    assert_eq!(RelayHello::decode(&shown), Ok(hello));
    let reply = doc[start..].contains(&format!("`{}`", hex(&RelayStatus::Paired.reply())));
    assert!(reply, "the document shows the Paired reply");
}
