//! Two chat sessions over a simulated TCP connection cut at random points:
//! texts arrive in order and exactly once, every text is accounted for, and
//! silence, broken connections and closes end the session as specified.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use p2pchat_core::{
    CLOSE_LINGER, ChatConfig, ChatEvent, ChatMsg, CloseReason, IDLE_TIMEOUT, PING_INTERVAL,
    SendError, Seq,
};
use p2pchat_tests::pipe::{Pipe, PipeConfig, Side};
use rand::Rng;

const SEEDS: std::ops::Range<u64> = 0..8;

fn closed(reason: CloseReason) -> ChatEvent {
    ChatEvent::Closed { reason }
}

/// How far the acks that reached `side` go, computed from the bytes it was
/// fed rather than from what its session says.
fn acked_to(pipe: &Pipe, side: Side) -> Seq {
    pipe.end(side)
        .received_messages(side)
        .into_iter()
        .filter_map(|m| match m {
            ChatMsg::Ack { upto } => Some(upto),
            ChatMsg::Hello { .. }
            | ChatMsg::Text { .. }
            | ChatMsg::Ping
            | ChatMsg::Pong
            | ChatMsg::Goodbye
            | ChatMsg::Decline { .. } => None,
        })
        .max()
        .unwrap_or(Seq(0))
}

/// Sends `text` from `side`, letting the pipe run while it pushes back.
fn send(pipe: &mut Pipe, side: Side, text: &str) -> Seq {
    loop {
        match pipe.send(side, text) {
            Ok(seq) => return seq,
            Err(SendError::Backpressure) => assert!(pipe.step(), "stuck on backpressure"),
            Err(e) => panic!("send from {side:?} failed: {e}"),
        }
    }
}

/// Each side sends `n` texts, interleaved at random with random pipe steps,
/// so that texts and acks cross mid-frame. Returns what each side sent.
fn exchange(pipe: &mut Pipe, n: usize) -> [Vec<(Seq, String)>; 2] {
    let mut sent: [Vec<(Seq, String)>; 2] = [Vec::new(), Vec::new()];
    while sent[0].len() < n || sent[1].len() < n {
        let a_turn = pipe.rng().random_bool(0.5);
        let side = match (a_turn, sent[0].len() < n, sent[1].len() < n) {
            (true, true, _) | (false, true, false) => Side::A,
            _ => Side::B,
        };
        let i = side as usize;
        let len = pipe.rng().random_range(0..60);
        let text = format!("{side:?}{} {}", sent[i].len(), "é".repeat(len));
        let seq = send(pipe, side, &text);
        sent[i].push((seq, text));
        for _ in 0..pipe.rng().random_range(0..12) {
            pipe.step();
        }
    }
    sent
}

fn seqs(texts: &[(Seq, String)]) -> Vec<Seq> {
    texts.iter().map(|(s, _)| *s).collect()
}

/// (a) 1,000 texts each way: all arrive in order, exactly once, and every
/// one is delivered; then a clean close.
#[test]
fn thousand_texts_each_way_arrive_in_order_and_are_delivered() {
    for seed in SEEDS {
        let mut pipe = Pipe::with_seed(seed);
        let sent = exchange(&mut pipe, 1000);
        pipe.run_until_quiet();
        for side in [Side::A, Side::B] {
            let i = side as usize;
            let expected: Vec<Seq> = (1..=1000).map(Seq).collect();
            assert_eq!(seqs(&sent[i]), expected, "seed {seed}");
            let peer = pipe.end(side.peer());
            assert_eq!(peer.received_texts(), sent[i], "seed {seed}: {side:?}'s texts");
            assert_eq!(pipe.end(side).delivered(), expected, "seed {seed}");
            assert_eq!(peer.error, None);
            assert!(pipe.end(side).closed().is_none());
        }
        assert_eq!(pipe.elapsed(), Duration::ZERO, "no timer needed");

        pipe.close(Side::A);
        assert!(
            pipe.run_until(CLOSE_LINGER / 2, |p| {
                p.end(Side::A).dropped && p.end(Side::B).dropped
            })
        );
        assert_eq!(pipe.end(Side::A).closed().unwrap().1, closed(CloseReason::LocalClose));
        assert_eq!(pipe.end(Side::B).closed().unwrap().1, closed(CloseReason::PeerClose));
    }
}

/// (a) again with latency, bigger chunks and small socket buffers, so that
/// writes stall and time has to move for bytes to arrive.
#[test]
fn texts_survive_latency_and_small_buffers() {
    for seed in SEEDS {
        let config =
            PipeConfig { max_chunk: 1500, capacity: 2048, latency: Duration::from_millis(40) };
        let mut pipe = Pipe::new(seed, ChatConfig::default(), config);
        let sent = exchange(&mut pipe, 300);
        pipe.run_until_quiet();
        for side in [Side::A, Side::B] {
            let i = side as usize;
            assert_eq!(pipe.end(side.peer()).received_texts(), sent[i], "seed {seed}");
            assert_eq!(pipe.end(side).delivered(), seqs(&sent[i]), "seed {seed}");
        }
        assert!(pipe.elapsed() > Duration::ZERO);
    }
}

/// (b) A peer whose bytes stop arriving is pinged, then declared silent
/// exactly `IDLE_TIMEOUT` after the last byte; what it had not acknowledged
/// is undelivered, and it sees the connection drop.
#[test]
fn silent_peer_is_detected() {
    for seed in SEEDS {
        let mut pipe = Pipe::with_seed(seed);
        exchange(&mut pipe, 20);
        pipe.run_until_quiet();
        pipe.stall(Side::B);
        let lost = send(&mut pipe, Side::A, "into the void");
        let last = pipe.end(Side::A).last_read.unwrap();

        assert!(pipe.run_until(Duration::from_secs(600), |p| p.end(Side::A).dropped));
        let (at, event) = pipe.end(Side::A).closed().unwrap();
        assert_eq!(event, closed(CloseReason::PeerSilent), "seed {seed}");
        assert_eq!(at, last + IDLE_TIMEOUT, "seed {seed}");
        assert_eq!(pipe.end(Side::A).undelivered(), vec![(lost, "into the void".to_owned())]);
        // Alice pinged twice before giving up; bob answered, in vain.
        let pings = pipe
            .end(Side::B)
            .received_messages(Side::B)
            .into_iter()
            .filter(|m| *m == ChatMsg::Ping)
            .count();
        assert_eq!(
            pings as u32,
            IDLE_TIMEOUT.as_secs() as u32 / PING_INTERVAL.as_secs() as u32 - 1
        );
        // Bob saw the text, then the end of the stream.
        assert!(
            pipe.run_until(Duration::from_secs(600), |p| { p.end(Side::B).closed().is_some() })
        );
        assert_eq!(pipe.end(Side::B).closed().unwrap().1, closed(CloseReason::PeerVanished));
        assert_eq!(pipe.end(Side::B).received_texts().last().unwrap().1, "into the void");
    }
}

/// (c) A connection cut at a random point mid-stream: each side reports as
/// undelivered exactly its texts that no ack reaching it covered.
#[test]
fn cut_connection_reports_exactly_the_unacknowledged() {
    let (mut some_delivered, mut some_undelivered) = (0, 0);
    for seed in 0..40 {
        let mut pipe = Pipe::with_seed(seed);
        let sent = exchange(&mut pipe, 50);
        for _ in 0..pipe.rng().random_range(0..40) {
            pipe.step();
        }
        pipe.cut();
        pipe.run_until_idle();
        for side in [Side::A, Side::B] {
            let i = side as usize;
            let end = pipe.end(side);
            let acked = acked_to(&pipe, side);
            let expected: Vec<(Seq, String)> =
                sent[i].iter().filter(|(s, _)| *s > acked).cloned().collect();
            assert_eq!(end.undelivered(), expected, "seed {seed} {side:?}");
            some_delivered += usize::from(acked.0 > 0);
            some_undelivered += usize::from(!expected.is_empty());
            assert_eq!(end.delivered(), (1..=acked.0).map(Seq).collect::<Vec<_>>());
            assert_eq!(end.closed().unwrap().1, closed(CloseReason::PeerVanished));
            // The peer saw a prefix of what was sent, covering every ack.
            let got = pipe.end(side.peer()).received_texts();
            assert_eq!(got[..], sent[i][..got.len()]);
            assert!(got.len() as u64 >= acked.0);
            // The last event is Closed, right after the Undelivered ones.
            let events = end.event_list();
            let tail = &events[events.len() - expected.len() - 1..];
            assert!(matches!(tail.last(), Some(ChatEvent::Closed { .. })));
            assert!(
                tail[..expected.len()].iter().all(|e| matches!(e, ChatEvent::Undelivered { .. }))
            );
        }
    }
    // The cuts fell in many places: not all before the first ack or after
    // the last.
    assert!(some_delivered > 10 && some_undelivered > 10, "{some_delivered} {some_undelivered}");
}

/// (c) The same with a cut placed where the test knows the answer: bob got
/// every text but his acks never made it back.
#[test]
fn cut_before_acks_return_loses_exactly_the_unacked() {
    let mut pipe = Pipe::with_seed(7);
    exchange(&mut pipe, 10);
    pipe.run_until_quiet();
    pipe.stall(Side::B);
    let late: Vec<(Seq, String)> = (0..5)
        .map(|i| {
            let text = format!("late {i}");
            (send(&mut pipe, Side::A, &text), text)
        })
        .collect();
    pipe.run_until_idle();
    assert_eq!(pipe.end(Side::B).received_texts()[10..], late[..]);
    pipe.cut();
    pipe.run_until_idle();
    assert_eq!(pipe.end(Side::A).undelivered(), late);
    assert_eq!(pipe.end(Side::A).delivered().len(), 10);
    assert!(pipe.end(Side::B).undelivered().is_empty());
}

/// (d) A close with texts in flight both ways: the closer's texts are all
/// delivered; the peer's texts that crossed the Goodbye are undelivered and
/// not shown, the others delivered; nobody waits for the linger.
#[test]
fn close_handshake_delivers_in_flight_texts() {
    let (mut crossed, mut in_flight) = (0, 0);
    for seed in 0..20 {
        let mut pipe = Pipe::with_seed(seed);
        let sent = exchange(&mut pipe, 30);
        // Alice's texts not yet acknowledged when she closes.
        in_flight += 30 - pipe.end(Side::A).delivered().len();
        pipe.close(Side::A);
        assert_eq!(pipe.send(Side::A, "too late"), Err(SendError::Closed));
        assert!(
            pipe.run_until(CLOSE_LINGER / 2, |p| {
                p.end(Side::A).dropped && p.end(Side::B).dropped
            })
        );
        let (a, b) = (pipe.end(Side::A), pipe.end(Side::B));
        assert_eq!(a.closed().unwrap().1, closed(CloseReason::LocalClose), "seed {seed}");
        assert_eq!(b.closed().unwrap().1, closed(CloseReason::PeerClose), "seed {seed}");
        assert_eq!(b.received_texts(), sent[0], "seed {seed}");
        assert_eq!(a.delivered(), seqs(&sent[0]), "seed {seed}");
        assert!(a.undelivered().is_empty());
        // Bob's texts: alice showed a prefix; exactly those are delivered.
        let shown = a.received_texts();
        assert_eq!(shown[..], sent[1][..shown.len()]);
        assert_eq!(b.delivered(), seqs(&shown));
        assert_eq!(b.undelivered()[..], sent[1][shown.len()..]);
        crossed += b.undelivered().len();
    }
    assert!(in_flight > 20 && crossed > 0, "{in_flight} {crossed}");
}

/// (d) A user who types and leaves before the peer's Hello has arrived
/// (a script on stdin): the texts and the Goodbye wait for that Hello, then
/// everything is delivered and the close handshake completes.
#[test]
fn close_before_the_peer_hello_still_delivers() {
    for seed in SEEDS {
        let mut pipe = Pipe::with_seed(seed);
        let sent: Vec<(Seq, String)> = ["hello 1", "hello 2"]
            .into_iter()
            .map(|t| (send(&mut pipe, Side::A, t), t.to_owned()))
            .collect();
        pipe.close(Side::A);
        assert!(
            pipe.run_until(CLOSE_LINGER / 2, |p| {
                p.end(Side::A).dropped && p.end(Side::B).dropped
            })
        );
        let (a, b) = (pipe.end(Side::A), pipe.end(Side::B));
        assert_eq!(b.received_texts(), sent, "seed {seed}");
        assert_eq!(a.delivered(), seqs(&sent), "seed {seed}");
        assert_eq!(a.closed().unwrap().1, closed(CloseReason::LocalClose));
        assert_eq!(b.closed().unwrap().1, closed(CloseReason::PeerClose));
        // Her first frame is still her Hello.
        let msgs = b.received_messages(Side::B);
        assert!(matches!(msgs.first(), Some(ChatMsg::Hello { .. })));
    }
}

/// (d) If the peer never answers the Goodbye, the linger ends the session
/// and the unacknowledged texts are undelivered.
#[test]
fn close_gives_up_after_the_linger() {
    let mut pipe = Pipe::with_seed(3);
    exchange(&mut pipe, 5);
    pipe.run_until_quiet();
    pipe.stall(Side::B);
    let seq = send(&mut pipe, Side::A, "unanswered");
    pipe.close(Side::A);
    let t = pipe.elapsed();
    assert!(pipe.run_until(Duration::from_secs(600), |p| p.end(Side::A).dropped));
    let (at, event) = pipe.end(Side::A).closed().unwrap();
    assert_eq!((at, event), (t + CLOSE_LINGER, closed(CloseReason::LocalClose)));
    assert_eq!(pipe.end(Side::A).undelivered(), vec![(seq, "unanswered".to_owned())]);
}

/// (e) The same seed gives the same trace, to the byte and the nanosecond;
/// another seed gives another.
#[test]
fn same_seed_same_trace() {
    let run = |seed| {
        let config = PipeConfig { latency: Duration::from_millis(5), ..PipeConfig::default() };
        let mut pipe = Pipe::new(seed, ChatConfig::default(), config);
        exchange(&mut pipe, 100);
        pipe.run_until_quiet();
        pipe.stall(Side::A);
        send(&mut pipe, Side::B, "last words");
        pipe.close(Side::B);
        pipe.run_until(Duration::from_secs(60), |p| {
            p.end(Side::A).dropped && p.end(Side::B).dropped
        });
        pipe.trace().to_vec()
    };
    let first = run(42);
    assert!(first.len() > 1000);
    assert_eq!(first, run(42));
    assert_ne!(first, run(43));
}

/// The connection is lost at a random point of the handshake (or, now and
/// then, just after it): both sides end; the text queued before the
/// handshake arrives at most once and is reported delivered only if it did.
#[test]
fn a_connection_lost_mid_handshake_ends_both_sides() {
    let (mut mid_handshake, mut after) = (0, 0);
    for seed in 0..60 {
        let mut pipe = Pipe::with_seed(seed);
        let early = send(&mut pipe, Side::A, "sent before the handshake");
        // The handshake takes a few dozen steps and three trips; cut
        // somewhere in it.
        for _ in 0..pipe.rng().random_range(0..60) {
            if !pipe.step() {
                pipe.advance();
            }
        }
        pipe.cut();
        pipe.run_until_idle();
        for side in [Side::A, Side::B] {
            let end = pipe.end(side);
            let (_, last) =
                end.closed().unwrap_or_else(|| panic!("seed {seed}: {side:?} never ended"));
            assert!(
                matches!(
                    last,
                    ChatEvent::Closed {
                        reason: CloseReason::PeerVanished | CloseReason::HandshakeTimeout
                    }
                ),
                "seed {seed} {side:?}: {last:?}"
            );
        }
        let (a, b) = (pipe.end(Side::A), pipe.end(Side::B));
        let secured = |end: &p2pchat_tests::pipe::End| {
            end.events.iter().any(|(_, e)| matches!(e, ChatEvent::Authenticated { .. }))
        };
        if secured(a) && secured(b) {
            after += 1
        } else {
            mid_handshake += 1
        }
        let got = b.received_texts();
        assert!(got.len() <= 1 && got.iter().all(|(s, _)| *s == early), "seed {seed}: {got:?}");
        if a.delivered() == [early] {
            assert_eq!(got.len(), 1, "seed {seed}: delivered but never received");
        } else {
            assert_eq!(a.undelivered(), [(early, "sent before the handshake".to_owned())]);
        }
    }
    assert!(
        mid_handshake > 10,
        "only {mid_handshake} cuts fell inside the handshake ({after} after)"
    );
}

/// Handshake messages replayed by a middleman (the caller's first flight
/// sent again after the handshake) end the session: no message is taken
/// twice and the late bytes are no sealed frame.
#[test]
fn a_replayed_handshake_ends_the_session() {
    let mut pipe = Pipe::with_seed(3);
    let sent = exchange(&mut pipe, 5);
    pipe.run_until_quiet();
    let first_flight = pipe.end(Side::B).received[..100].to_vec();
    let b = &mut pipe;
    let result = b.inject(Side::B, &first_flight);
    assert!(result.is_err(), "a replayed handshake was taken: {result:?}");
    let end = pipe.end(Side::B);
    assert_eq!(end.received_texts(), sent[0], "texts arrived once, in order");
    assert!(matches!(end.closed(), Some((_, ChatEvent::Closed { reason: CloseReason::Error(_) }))));
}
