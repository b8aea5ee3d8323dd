//! Introductions between a registry and its clients, datagrams passed by
//! hand: what each side learns, the callee's copy retried until
//! acknowledged and reported once, the relay tokens pairing at a relay,
//! and the limits.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use p2pchat_core::{
    ClientEvent, ClientMsg, ConnId, CookieKey, INTRO_HOLD, INTRO_MEMORY, INTRO_RETRY, INTRO_SENDS,
    Introduction, MAX_INTROS_PER_CALLEE, Operation, PublicKey, RELAY_MAGIC, RefuseReason,
    RegistryClient, RegistryServer, Relay, RelayConfig, RelayEvent, RelayKey, RequestId,
    ServerConfig, ServerMsg, UserName, decode_reply, decode_request, encode_request,
};

const SERVER: &str = "203.0.113.1:5000";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("valid address")
}

struct World {
    now: Instant,
    server: RegistryServer,
    clients: Vec<(SocketAddr, RegistryClient)>,
    /// Datagrams the server sent, per destination, since the last look.
    to: Vec<(SocketAddr, Vec<u8>)>,
    /// Drop the next datagram from client `i` (a lost acknowledgement).
    drop_from: Option<usize>,
    /// Seeded loss: each datagram, either way, is lost with this
    /// probability in percent (xorshift state, percent).
    loss: Option<(u64, u64)>,
}

impl World {
    fn new() -> Self {
        let now = Instant::now();
        let mut server = RegistryServer::new(now, CookieKey([7; 16]), ServerConfig::default());
        server.offer_relay(5000, &RelayKey([9; 32]));
        Self { now, server, clients: Vec::new(), to: Vec::new(), drop_from: None, loss: None }
    }

    /// A world with ann (198.51.100.7:40000, key 1) and bob
    /// (198.51.100.8:40001, key 2) logged in, announcing these local
    /// addresses: (the world, ann's index, bob's).
    fn ann_and_bob(ann_locals: &[Ipv4Addr], bob_locals: &[Ipv4Addr]) -> (Self, usize, usize) {
        let mut w = Self::new();
        let ann = w.client("198.51.100.7:40000", "ann", 1, ann_locals);
        let bob = w.client("198.51.100.8:40001", "bob", 2, bob_locals);
        (w, ann, bob)
    }

    fn client(&mut self, at: &str, name: &str, key: u8, locals: &[Ipv4Addr]) -> usize {
        let mut c = RegistryClient::new(addr(SERVER), u64::from(key), PublicKey([key; 32]));
        c.set_locals(locals);
        c.login(self.now, UserName::new(name).expect("valid"), 6000 + u16::from(key));
        self.clients.push((addr(at), c));
        self.settle();
        self.clients.len() - 1
    }

    /// Whether the loss drops the next datagram.
    fn lost(&mut self) -> bool {
        let Some((x, percent)) = self.loss.as_mut() else { return false };
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x % 100 < *percent
    }

    /// Passes datagrams both ways until none is left.
    fn settle(&mut self) {
        loop {
            let mut moved = false;
            let mut sent = Vec::new();
            for (i, (from, c)) in self.clients.iter_mut().enumerate() {
                while let Some(t) = c.poll_transmit() {
                    sent.push((i, *from, t.payload));
                }
            }
            for (i, from, payload) in sent {
                moved = true;
                if self.drop_from.take_if(|d| *d == i).is_some() || self.lost() {
                    continue;
                }
                self.server.handle_datagram(self.now, from, &payload);
            }
            while let Some(t) = self.server.poll_transmit() {
                moved = true;
                self.to.push((t.dst, t.payload.clone()));
                if self.lost() {
                    continue;
                }
                if let Some((_, c)) = self.clients.iter_mut().find(|(a, _)| *a == t.dst) {
                    c.handle_datagram(self.now, addr(SERVER), &t.payload);
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.server.handle_timeout(self.now);
        for (_, c) in &mut self.clients {
            if c.poll_timeout().is_some_and(|t| t <= self.now) {
                c.handle_timeout(self.now);
            }
        }
        self.settle();
    }

    fn events(&mut self, i: usize) -> Vec<ClientEvent> {
        std::iter::from_fn(|| self.clients[i].1.poll_event()).collect()
    }
}

fn introduced(events: &[ClientEvent]) -> Vec<Option<Introduction>> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Introduced { intro, .. } => Some(intro.clone()),
            _ => None,
        })
        .collect()
}

fn called(events: &[ClientEvent]) -> Vec<Introduction> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Called { intro } => Some(intro.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn both_sides_learn_each_others_candidates_and_tokens_that_pair() {
    let mut w = World::new();
    let ann = w.client("198.51.100.7:40000", "ann", 1, &[Ipv4Addr::new(192, 0, 2, 10)]);
    let bob = w.client(
        "198.51.100.8:40001",
        "bob",
        2,
        &[Ipv4Addr::new(192, 0, 2, 20), Ipv4Addr::new(198, 51, 100, 8)],
    );
    w.events(ann);
    w.events(bob);
    // Bob's first acknowledgement is lost: the registry sends again, and
    // bob hears of the call once. Ann's answer waits for bob's
    // acknowledgement, which brings his local addresses.
    w.drop_from = Some(bob);
    w.clients[ann].1.introduce(w.now, UserName::new("BOB").expect("valid"));
    w.settle();
    assert!(introduced(&w.events(ann)).is_empty(), "held until bob acknowledges");
    let bob_saw = called(&w.events(bob));
    assert_eq!(bob_saw.len(), 1);
    // Ann's local address (from her `Introduce`), then her observed IP,
    // each with her chat port.
    assert_eq!(bob_saw[0].candidates, [addr("192.0.2.10:6001"), addr("198.51.100.7:6001")]);
    let sent_to_bob =
        |w: &World| w.to.iter().filter(|(d, _)| *d == addr("198.51.100.8:40001")).count();
    let before = sent_to_bob(&w);
    w.advance(INTRO_RETRY);
    assert_eq!(sent_to_bob(&w), before + 1, "sent again: the first acknowledgement was lost");
    assert!(called(&w.events(bob)).is_empty(), "reported once");
    let got = introduced(&w.events(ann));
    assert_eq!(got.len(), 1, "answered at bob's acknowledgement, before INTRO_HOLD");
    let intro = got[0].clone().expect("bob is online");
    assert_eq!(intro.peer.name.as_str(), "bob");
    assert_eq!(bob_saw[0].nonce, intro.nonce);
    // Bob's local address (from his `IntroAck`), then his observed IP (the
    // local one equal to it left out), each with his chat port.
    assert_eq!(intro.candidates, [addr("192.0.2.20:6002"), addr("198.51.100.8:6002")]);
    w.advance(INTRO_RETRY * 4);
    assert_eq!(sent_to_bob(&w), before + 1, "acknowledged now: not sent again");
    assert!(introduced(&w.events(ann)).is_empty(), "answered once");

    // The two hellos pair at a relay with the same key and origin.
    let mut relay = Relay::new(&RelayKey([9; 32]), w.server.origin(), RelayConfig::default());
    let hellos = [&intro, &bob_saw[0]].map(|i| i.relay.clone().expect("relayed").hello);
    for (n, hello) in hellos.iter().enumerate() {
        let conn = ConnId(n as u64);
        relay.handle_accept(w.now, conn, addr("198.51.100.9:1"));
        assert_eq!(relay.handle_input(w.now, conn, hello), hello.len());
    }
    let events: Vec<_> = std::iter::from_fn(|| relay.poll_event()).collect();
    assert!(
        matches!(events[..], [RelayEvent::Paired { caller: ConnId(0), callee: ConnId(1) }]),
        "{events:?}"
    );
    assert_eq!(relay.pending_output(ConnId(0))[..4], RELAY_MAGIC);
}

#[test]
fn unacknowledged_introductions_stop_after_their_sends() {
    let (mut w, ann, bob) = World::ann_and_bob(&[], &[]);
    // Bob goes away without logging out: nothing acknowledges.
    let (bob_addr, _) = w.clients.remove(bob);
    w.clients[ann].1.introduce(w.now, UserName::new("bob").expect("valid"));
    w.settle();
    for _ in 0..3 * INTRO_SENDS {
        w.advance(INTRO_RETRY);
    }
    let sent = w.to.iter().filter(|(d, _)| *d == bob_addr).count();
    // Two datagrams of the login, then the introduction's sends.
    assert_eq!(sent, 2 + INTRO_SENDS as usize);
    w.advance(INTRO_MEMORY);
    assert_eq!(w.to.iter().filter(|(d, _)| *d == bob_addr).count(), sent, "no more sends");
}

#[test]
fn only_listed_callers_are_introduced_to_listed_others_within_limits() {
    let (mut w, ann, _bob) = World::ann_and_bob(&[], &[]);
    // To oneself, and to nobody: None.
    for name in ["ann", "carl"] {
        w.clients[ann].1.introduce(w.now, UserName::new(name).expect("valid"));
        w.settle();
        assert_eq!(introduced(&w.events(ann)), [None], "{name}");
    }
    // A sender that is not listed: None, and nothing goes to bob.
    let mut eve = RegistryClient::new(addr(SERVER), 3, PublicKey([3; 32]));
    eve.introduce(w.now, UserName::new("bob").expect("valid"));
    w.clients.push((addr("198.51.100.66:1"), eve));
    let before = w.to.len();
    w.settle();
    assert_eq!(introduced(&w.events(2)), [None]);
    assert!(w.to[before..].iter().all(|(d, _)| *d == addr("198.51.100.66:1")));
    // Bob is gone from the exchange: introductions to him pile up to the
    // limit, then are refused.
    w.clients.remove(1);
    for _ in 0..MAX_INTROS_PER_CALLEE + 1 {
        w.clients[ann].1.introduce(w.now, UserName::new("bob").expect("valid"));
        w.settle();
    }
    // Their answers come after INTRO_HOLD, without bob's acknowledgement.
    w.advance(INTRO_HOLD);
    let events = w.events(ann);
    assert_eq!(introduced(&events).len(), MAX_INTROS_PER_CALLEE);
    assert!(events.contains(&ClientEvent::Refused {
        op: Operation::Introduce,
        reason: RefuseReason::TooManyIntroductions
    }));
}

/// Under 20% loss each way, in virtual time: the caller gets one answer,
/// the callee hears of the call at most once (and almost always), and the
/// registry forgets every introduction in the end.
#[test]
fn introductions_survive_loss_and_are_reported_once() {
    let seeds = 300u64;
    let mut heard = 0;
    for seed in 1..=seeds {
        let (mut w, ann, bob) = World::ann_and_bob(&[Ipv4Addr::new(192, 0, 2, 10)], &[]);
        w.events(ann);
        w.events(bob);
        w.loss = Some((seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, 20));
        w.clients[ann].1.introduce(w.now, UserName::new("bob").expect("valid"));
        w.settle();
        let (mut answers, mut calls) = (Vec::new(), Vec::new());
        for _ in 0..400 {
            w.advance(Duration::from_millis(100));
            answers.extend(introduced(&w.events(ann)));
            calls.extend(called(&w.events(bob)));
        }
        assert_eq!(answers.len(), 1, "seed {seed}: the caller's answers {answers:?}");
        let answer = answers[0].clone().expect("bob is online");
        assert!(calls.len() <= 1, "seed {seed}: bob heard of the call {} times", calls.len());
        if let Some(call) = calls.first() {
            assert_eq!(call.nonce, answer.nonce, "seed {seed}");
            heard += 1;
        }
        // Only keepalives and lease ends are left to wake the registry.
        let next = w.server.poll_timeout().expect("leases");
        assert!(next > w.now + INTRO_RETRY, "seed {seed}: an introduction is still pending");
    }
    // A callee misses the call only when all 5 sends, or its answer's
    // sends, are lost: far below 2% at 20% loss.
    assert!(heard * 100 >= seeds * 98, "bob heard {heard} of {seeds} calls");
}

/// The datagrams the server queued, by destination.
fn drain(server: &mut RegistryServer) -> Vec<(SocketAddr, Vec<u8>)> {
    std::iter::from_fn(|| server.poll_transmit()).map(|t| (t.dst, t.payload)).collect()
}

/// The introduction in a datagram from the server.
fn intro_in(payload: &[u8]) -> Introduction {
    match decode_reply(payload) {
        Ok((_, ServerMsg::Introduced { intro: Some(intro) })) => intro,
        other => panic!("not an introduction: {other:?}"),
    }
}

/// A callee that never acknowledges (gone without logging out): its
/// caller is answered at INTRO_HOLD, not before, with the callee's
/// observed address as its only candidate.
#[test]
fn without_an_acknowledgement_the_answer_comes_at_intro_hold_without_locals() {
    let (mut w, ann, bob) =
        World::ann_and_bob(&[Ipv4Addr::new(192, 0, 2, 10)], &[Ipv4Addr::new(192, 0, 2, 20)]);
    w.events(ann);
    w.clients.remove(bob);
    w.clients[ann].1.introduce(w.now, UserName::new("bob").expect("valid"));
    w.settle();
    w.advance(INTRO_RETRY);
    w.advance(INTRO_HOLD - INTRO_RETRY - Duration::from_millis(1));
    assert!(introduced(&w.events(ann)).is_empty(), "held until INTRO_HOLD");
    w.advance(Duration::from_millis(1));
    let got = introduced(&w.events(ann));
    assert_eq!(got.len(), 1, "answered at INTRO_HOLD");
    let intro = got[0].clone().expect("bob is listed");
    assert_eq!(intro.candidates, [addr("198.51.100.8:6002")], "no local address without the ack");
    assert!(intro.relay.is_some(), "the relay ticket all the same");
}

/// A retransmitted `Introduce` while the answer is held is dropped: no
/// second introduction for the callee, no answer; once answered, it gets
/// the same answer again.
#[test]
fn a_retransmitted_introduce_makes_no_second_introduction() {
    let (mut w, ann, bob) = World::ann_and_bob(&[], &[]);
    let (ann_at, bob_at) = (w.clients[ann].0, w.clients[bob].0);
    // The caller's datagram, passed by hand from here on.
    w.clients[ann].1.introduce(w.now, UserName::new("bob").expect("valid"));
    let request = w.clients[ann].1.poll_transmit().expect("the Introduce").payload;
    w.server.handle_datagram(w.now, ann_at, &request);
    let first = drain(&mut w.server);
    assert_eq!(first.len(), 1, "only bob's copy: the answer is held");
    assert_eq!(first[0].0, bob_at);
    let nonce = intro_in(&first[0].1).nonce;
    w.server.handle_datagram(w.now, ann_at, &request);
    assert_eq!(drain(&mut w.server), [], "held: dropped, and no second introduction");
    // No acknowledgement: the answer goes at INTRO_HOLD.
    w.now += INTRO_HOLD;
    w.server.handle_timeout(w.now);
    let sent = drain(&mut w.server);
    let answers: Vec<_> = sent.iter().filter(|(d, _)| *d == ann_at).collect();
    assert_eq!(answers.len(), 1);
    assert_eq!(intro_in(&answers[0].1).nonce, nonce);
    for (to, payload) in sent.iter().filter(|(d, _)| *d == bob_at) {
        assert_eq!(intro_in(payload).nonce, nonce, "a copy of the one introduction to {to}");
    }
    w.server.handle_datagram(w.now, ann_at, &request);
    assert_eq!(drain(&mut w.server), [(ann_at, answers[0].1.clone())], "the same answer again");
}

/// Each side's local addresses, as it sent them, reach the other side:
/// the first MAX_LOCAL_ADDRS of them, less the one equal to its observed
/// address.
#[test]
fn the_first_local_addresses_of_each_side_reach_the_other() {
    let (mut w, ann, bob) = World::ann_and_bob(&[], &[]);
    let (ann_at, bob_at) = (w.clients[ann].0, w.clients[bob].0);
    let ips = |last: u8| -> Vec<Ipv4Addr> {
        [[192, 0, 2, 1], [198, 51, 100, last], [192, 0, 2, 3], [192, 0, 2, 4], [192, 0, 2, 5]]
            .map(Ipv4Addr::from)
            .to_vec()
    };
    w.clients[ann].1.introduce(w.now, UserName::new("bob").expect("valid"));
    let request = w.clients[ann].1.poll_transmit().expect("the Introduce").payload;
    let Ok((id, ClientMsg::Introduce { cookie, name, .. })) = decode_request(&request) else {
        panic!("not an Introduce");
    };
    let request = encode_request(id, &ClientMsg::Introduce { cookie, name, locals: ips(7) });
    w.server.handle_datagram(w.now, ann_at, &request);
    let copy = drain(&mut w.server);
    let to_bob = intro_in(&copy[0].1);
    let ann_chat = |ip: &str| addr(&format!("{ip}:6001"));
    assert_eq!(
        to_bob.candidates,
        ["192.0.2.1", "192.0.2.3", "192.0.2.4", "198.51.100.7"].map(ann_chat),
        "the first 4, less ann's observed IP, then it"
    );
    // Bob's client acknowledges with its (empty) locals: replaced by hand.
    w.clients[bob].1.handle_datagram(w.now, addr(SERVER), &copy[0].1);
    let ack = w.clients[bob].1.poll_transmit().expect("the IntroAck").payload;
    let Ok((id, ClientMsg::IntroAck { cookie, nonce, locals })) = decode_request(&ack) else {
        panic!("not an IntroAck");
    };
    assert_eq!((nonce, locals), (to_bob.nonce, Vec::new()));
    let ack = encode_request(id, &ClientMsg::IntroAck { cookie, nonce, locals: ips(8) });
    w.server.handle_datagram(w.now, bob_at, &ack);
    let answer = drain(&mut w.server);
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].0, ann_at);
    let bob_chat = |ip: &str| addr(&format!("{ip}:6002"));
    assert_eq!(
        intro_in(&answer[0].1).candidates,
        ["192.0.2.1", "192.0.2.3", "192.0.2.4", "198.51.100.8"].map(bob_chat)
    );
    // A second acknowledgement changes nothing.
    let ack2 = encode_request(
        RequestId(id.0 + 1),
        &ClientMsg::IntroAck { cookie, nonce, locals: Vec::new() },
    );
    w.server.handle_datagram(w.now, bob_at, &ack2);
    assert_eq!(drain(&mut w.server), []);
}
