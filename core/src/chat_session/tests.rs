//! Unit tests of the chat session; the time origin comes from
//! `super::test_origin`. The session under test is "alice", the caller; its
//! peer "bob" is the encrypted [`Wire`] of a callee driven by hand, so tests
//! can send it any message, sealed as a real peer would.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use super::wire::{Inbound, Wire};
use super::*;
use crate::frame::{FrameError, MAX_FRAME_LEN};
use crate::key::PrivateKey;
use crate::noise::TransportError;

fn name(s: &str) -> UserName {
    UserName::new(s).unwrap()
}

fn key(n: u8) -> PrivateKey {
    PrivateKey::from_bytes([n; 32])
}

fn hello(n: &str) -> ChatMsg {
    ChatMsg::Hello { version: CHAT_VERSION, name: n.to_owned() }
}

fn text(seq: u64, t: &str) -> ChatMsg {
    ChatMsg::Text { seq: Seq(seq), text: t.to_owned() }
}

fn ack(upto: u64) -> ChatMsg {
    ChatMsg::Ack { upto: Seq(upto) }
}

/// The peer's side of the stream.
struct Peer(Wire);

impl Peer {
    /// `msgs`, sealed and framed as the peer sends them.
    fn wire(&mut self, msgs: &[ChatMsg]) -> Vec<u8> {
        for m in msgs {
            self.0.push(m);
        }
        let out = self.0.pending().to_vec();
        self.0.consume(out.len());
        out
    }

    /// Takes all of the session's pending output and opens it.
    fn read(&mut self, s: &mut ChatSession) -> Vec<ChatMsg> {
        let n = s.pending_output().len();
        self.0.push_input(s.pending_output());
        s.consume(n);
        let mut out = Vec::new();
        while let Some(inbound) = self.0.next().unwrap() {
            match inbound {
                Inbound::Msg(m) => out.push(m),
                Inbound::Secured { .. } => {}
            }
        }
        out
    }
}

fn alice(now: Instant, config: ChatConfig) -> ChatSession {
    let role = ChatRole::Caller { callee: name("bob"), callee_key: key(2).public_key() };
    let setup = ChatSetup { name: name("alice"), key: key(1), role, seed: [11; 32] };
    ChatSession::new(now, setup, config)
}

fn bob_wire() -> Wire {
    Wire::new(ChatSetup { name: name("bob"), key: key(2), role: ChatRole::Callee, seed: [22; 32] })
}

/// Alice calls bob and the handshake runs to its end; bob has read alice's
/// Hello, and her `Authenticated` event is drained.
fn fresh_with(now: Instant, config: ChatConfig) -> (ChatSession, Peer) {
    let mut s = alice(now, config);
    let mut p = Peer(bob_wire());
    assert_eq!(p.read(&mut s), vec![], "nothing but the preamble and handshake");
    let reply = p.wire(&[]);
    s.handle_input(now, &reply).unwrap();
    let authenticated = ChatEvent::Authenticated { peer: name("bob"), key: key(2).public_key() };
    assert_eq!(events(&mut s), [authenticated]);
    assert_eq!(p.read(&mut s), vec![hello("alice")], "sealed once the handshake is done");
    (s, p)
}

fn fresh(now: Instant) -> (ChatSession, Peer) {
    fresh_with(now, ChatConfig::default())
}

fn events(s: &mut ChatSession) -> Vec<ChatEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn closed(reason: CloseReason) -> ChatEvent {
    ChatEvent::Closed { reason }
}

fn undelivered(seq: u64, t: &str) -> ChatEvent {
    ChatEvent::Undelivered { seq: Seq(seq), text: t.to_owned() }
}

/// "alice", connected to "bob", with her Hello and events drained.
fn open(now: Instant) -> (ChatSession, Peer) {
    let (mut s, mut p) = fresh(now);
    let bob_hello = p.wire(&[hello("bob")]);
    s.handle_input(now, &bob_hello).unwrap();
    assert_eq!(p.read(&mut s), vec![]);
    assert_eq!(events(&mut s), vec![ChatEvent::Connected { peer: name("bob") }]);
    (s, p)
}

/// Bob as a real callee session.
fn bob(now: Instant) -> ChatSession {
    let setup =
        ChatSetup { name: name("bob"), key: key(2), role: ChatRole::Callee, seed: [22; 32] };
    ChatSession::new(now, setup, ChatConfig::default())
}

/// Moves every pending byte both ways until neither side has any.
fn carry(now: Instant, a: &mut ChatSession, b: &mut ChatSession) {
    while a.wants_write() || b.wants_write() {
        let (to_b, to_a) = (a.pending_output().to_vec(), b.pending_output().to_vec());
        a.consume(to_b.len());
        b.consume(to_a.len());
        a.handle_input(now, &to_a).unwrap();
        b.handle_input(now, &to_b).unwrap();
    }
}

#[test]
fn handshake_between_two_sessions() {
    let now = super::test_origin();
    let mut a = alice(now, ChatConfig::default());
    let mut b = bob(now);
    assert!(a.wants_write() && a.wants_read());
    assert_eq!(a.peer_name(), None);
    carry(now, &mut a, &mut b);
    let authenticated =
        |n: &str, k: u8| ChatEvent::Authenticated { peer: name(n), key: key(k).public_key() };
    assert_eq!(events(&mut a), [authenticated("bob", 2)]);
    // Bob has alice's Hello but holds his own until he accepts.
    assert_eq!(
        events(&mut b),
        [authenticated("alice", 1), ChatEvent::Connected { peer: name("alice") }]
    );
    assert_eq!(b.peer_key(), Some(key(1).public_key()));
    b.handle_timeout(now + PING_INTERVAL);
    assert!(!b.wants_write(), "no Ping before our Hello");
    b.accept(now);
    carry(now, &mut a, &mut b);
    assert_eq!(events(&mut a), [ChatEvent::Connected { peer: name("bob") }]);
    assert_eq!(a.peer_name(), Some(&name("bob")));
    assert_eq!(a.peer_key(), Some(key(2).public_key()));
    assert!(!a.wants_write() && !b.wants_write());
}

#[test]
fn texts_before_peer_hello_wait_for_it() {
    let now = super::test_origin();
    let (mut s, mut p) = fresh(now);
    assert_eq!(s.send_text(now, "early"), Ok(Seq(1)));
    assert_eq!(s.send_text(now, "eager"), Ok(Seq(2)));
    // Nothing but our Hello before the peer's is accepted, not even a Ping.
    s.handle_timeout(now + PING_INTERVAL);
    assert_eq!(p.read(&mut s), vec![]);
    s.handle_input(now, &p.wire(&[hello("bob")])).unwrap();
    assert_eq!(p.read(&mut s), vec![text(1, "early"), text(2, "eager")]);
    assert_eq!(s.send_text(now, "later"), Ok(Seq(3)));
    assert_eq!(p.read(&mut s), vec![text(3, "later")]);
    s.handle_input(now, &p.wire(&[ack(3)])).unwrap();
    assert_eq!(events(&mut s).len(), 4, "Connected and three Delivered");
}

#[test]
fn held_texts_count_against_the_output_limit() {
    let now = super::test_origin();
    let (mut s, mut p) = fresh(now);
    let max = "x".repeat(MAX_TEXT_LEN);
    let mut n = 0;
    while s.send_text(now, &max).is_ok() {
        n += 1;
    }
    assert!(n < MAX_UNACKED);
    assert_eq!(p.read(&mut s), vec![]);
    s.handle_input(now, &p.wire(&[hello("bob")])).unwrap();
    let limit = MAX_BUFFERED_OUTPUT - CONTROL_HEADROOM;
    assert!(s.pending_output().len() <= limit);
    assert_eq!(p.read(&mut s).len(), n);
}

#[test]
fn close_before_peer_hello_waits_for_it() {
    let now = super::test_origin();
    let (mut s, mut p) = fresh(now);
    s.send_text(now, "early").unwrap();
    s.close(now);
    assert_eq!(s.send_text(now, "late"), Err(SendError::Closed));
    // Only our Hello goes out: the text and the Goodbye wait.
    assert_eq!(p.read(&mut s), vec![]);
    assert_eq!(s.poll_timeout(), Some(now + CLOSE_LINGER));
    // The peer's Hello (and a text it sent at once) arrive.
    s.handle_input(now, &p.wire(&[hello("bob"), text(1, "hi")])).unwrap();
    assert_eq!(p.read(&mut s), vec![text(1, "early"), ChatMsg::Goodbye]);
    assert_eq!(events(&mut s), [ChatEvent::Connected { peer: name("bob") }]);
    s.handle_input(now, &p.wire(&[ack(1), ChatMsg::Goodbye])).unwrap();
    assert_eq!(
        events(&mut s),
        [ChatEvent::Delivered { seq: Seq(1) }, closed(CloseReason::LocalClose)]
    );
    assert_eq!(p.read(&mut s), vec![]);
}

#[test]
fn close_before_a_peer_hello_that_never_comes() {
    let now = super::test_origin();
    let (mut s, _p) = fresh(now);
    s.send_text(now, "early").unwrap();
    s.close(now);
    s.handle_timeout(now + CLOSE_LINGER);
    assert_eq!(events(&mut s), [undelivered(1, "early"), closed(CloseReason::LocalClose)]);
    assert!(!s.wants_write());
}

#[test]
fn silence_after_the_handshake_is_peer_silent() {
    let now = super::test_origin();
    let (mut s, _p) = fresh(now);
    assert_eq!(s.poll_timeout(), Some(now + PING_INTERVAL));
    s.handle_timeout(now + IDLE_TIMEOUT);
    assert_eq!(events(&mut s), [closed(CloseReason::PeerSilent)]);
}

#[test]
fn an_unfinished_handshake_times_out() {
    let now = super::test_origin();
    let mut s = alice(now, ChatConfig::default());
    assert_eq!(s.poll_timeout(), Some(now + HANDSHAKE_TIMEOUT));
    // Half of the callee's answer is no sign of life.
    let mut p = Peer(bob_wire());
    p.read(&mut s);
    let reply = p.wire(&[]);
    s.handle_input(now, &reply[..reply.len() - 1]).unwrap();
    s.send_text(now, "early").unwrap();
    s.handle_timeout(now + HANDSHAKE_TIMEOUT - Duration::from_millis(1));
    assert!(!s.is_finished());
    s.handle_timeout(now + HANDSHAKE_TIMEOUT);
    assert_eq!(events(&mut s), [undelivered(1, "early"), closed(CloseReason::HandshakeTimeout)]);
    assert!(!s.wants_write());
}

#[test]
fn hello_is_checked() {
    let now = super::test_origin();
    let cases = [
        (
            vec![ChatMsg::Hello { version: CHAT_VERSION + 1, name: "bob".into() }],
            ChatError::VersionMismatch { ours: CHAT_VERSION, theirs: CHAT_VERSION + 1 },
        ),
        (vec![hello("carol")], ChatError::NameMismatch),
        (vec![hello("Bob")], ChatError::NameMismatch),
        (vec![hello("b o b")], ChatError::BadPeerName),
        (vec![hello("")], ChatError::BadPeerName),
        (vec![text(1, "hi")], ChatError::ExpectedHello),
        (vec![ChatMsg::Goodbye], ChatError::ExpectedHello),
        (vec![hello("bob"), hello("bob")], ChatError::DuplicateHello),
    ];
    for (msgs, err) in cases {
        let (mut s, mut p) = fresh(now);
        assert_eq!(s.handle_input(now, &p.wire(&msgs)), Err(err.clone()));
        let ev = events(&mut s);
        assert_eq!(ev.last(), Some(&closed(CloseReason::Error(err))));
        assert!(s.is_finished());
    }
}

#[test]
fn texts_are_received_in_order_and_acked_once_per_input() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    let input = p.wire(&[text(1, "a"), text(2, "b"), ChatMsg::Pong, text(3, "c")]);
    s.handle_input(now, &input).unwrap();
    assert_eq!(p.read(&mut s), vec![ack(3)]);
    let ev = events(&mut s);
    assert_eq!(
        ev,
        [
            ChatEvent::Received { seq: Seq(1), text: "a".into() },
            ChatEvent::Received { seq: Seq(2), text: "b".into() },
            ChatEvent::Received { seq: Seq(3), text: "c".into() },
        ]
    );
    // Nothing new, no ack.
    s.handle_input(now, &p.wire(&[ChatMsg::Pong])).unwrap();
    assert_eq!(p.read(&mut s), vec![]);
}

#[test]
fn partial_frames_wait_for_the_rest() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    let input = p.wire(&[text(1, "hello")]);
    let (head, tail) = input.split_at(input.len() - 1);
    s.handle_input(now, head).unwrap();
    assert_eq!(events(&mut s), []);
    assert!(!s.wants_write());
    s.handle_input(now, tail).unwrap();
    assert_eq!(events(&mut s).len(), 1);
    assert_eq!(p.read(&mut s), vec![ack(1)]);
}

#[test]
fn out_of_order_and_oversize_texts_are_errors() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    assert_eq!(
        s.handle_input(now, &p.wire(&[text(1, "a"), text(3, "c")])),
        Err(ChatError::OutOfOrder { expected: Seq(2), got: Seq(3) })
    );
    let (mut s, mut p) = open(now);
    let long = "x".repeat(MAX_TEXT_LEN + 1);
    assert_eq!(s.handle_input(now, &p.wire(&[text(1, &long)])), Err(ChatError::TextTooLong));
    let (mut s, mut p) = open(now);
    assert_eq!(
        s.handle_input(now, &p.wire(&[text(1, "a"), text(1, "a")])),
        Err(ChatError::OutOfOrder { expected: Seq(2), got: Seq(1) })
    );
}

#[test]
fn acks_deliver_texts() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    for t in ["one", "two", "three"] {
        s.send_text(now, t).unwrap();
    }
    p.read(&mut s);
    s.handle_input(now, &p.wire(&[ack(2)])).unwrap();
    let delivered = |n| ChatEvent::Delivered { seq: Seq(n) };
    assert_eq!(events(&mut s), [delivered(1), delivered(2)]);
    // Acks that do not advance are ignored, even going back.
    s.handle_input(now, &p.wire(&[ack(2), ack(1), ack(0), ack(3), ack(2)])).unwrap();
    assert_eq!(events(&mut s), [delivered(3)]);
    // Acks send nothing back.
    assert_eq!(p.read(&mut s), vec![]);
}

#[test]
fn acking_an_unsent_text_is_an_error() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    s.send_text(now, "one").unwrap();
    assert_eq!(s.handle_input(now, &p.wire(&[ack(2)])), Err(ChatError::BadAck { upto: Seq(2) }));
    assert_eq!(
        events(&mut s),
        [undelivered(1, "one"), closed(CloseReason::Error(ChatError::BadAck { upto: Seq(2) }))]
    );

    let (mut s, mut p) = open(now);
    s.send_text(now, "one").unwrap();
    s.handle_input(now, &p.wire(&[ack(1)])).unwrap();
    assert_eq!(s.handle_input(now, &p.wire(&[ack(2)])), Err(ChatError::BadAck { upto: Seq(2) }));
}

#[test]
fn errors_are_sticky_and_silence_the_session() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    s.send_text(now, "queued").unwrap();
    let mut bad = Vec::new();
    bad.extend_from_slice(&(MAX_FRAME_LEN as u32 + 1).to_be_bytes());
    let err = ChatError::Frame(FrameError::TooLong { len: MAX_FRAME_LEN as u32 + 1 });
    assert_eq!(s.handle_input(now, &bad), Err(err.clone()));
    assert_eq!(events(&mut s), [undelivered(1, "queued"), closed(CloseReason::Error(err.clone()))]);
    // Nothing more is written, read or reported, and the error stays.
    assert!(!s.wants_write() && !s.wants_read() && s.is_finished());
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.handle_input(now, &p.wire(&[text(1, "x")])), Err(err.clone()));
    assert_eq!(s.handle_input(now, &[]), Err(err.clone()));
    s.handle_eof(now);
    s.handle_timeout(now + IDLE_TIMEOUT);
    s.close(now);
    assert_eq!(s.send_text(now, "late"), Err(SendError::Closed));
    assert_eq!(events(&mut s), []);
    assert_eq!(s.handle_input(now, b"anything"), Err(err));
}

#[test]
fn malformed_payload_is_an_error() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    p.0.push_payload(&[0xff, 0xff]);
    let bad = p.wire(&[]);
    let res = s.handle_input(now, &bad);
    assert!(matches!(res, Err(ChatError::Malformed(_))), "{res:?}");
    assert_eq!(s.handle_input(now, &[]), res);
}

#[test]
fn ping_when_quiet_and_pong_when_asked() {
    let t0 = super::test_origin();
    let (mut s, mut p) = open(t0);
    assert_eq!(s.poll_timeout(), Some(t0 + PING_INTERVAL));
    s.handle_timeout(t0 + PING_INTERVAL - Duration::from_millis(1));
    assert_eq!(p.read(&mut s), vec![]);
    s.handle_timeout(t0 + PING_INTERVAL);
    assert_eq!(p.read(&mut s), vec![ChatMsg::Ping]);
    // Pings repeat while the silence lasts.
    assert_eq!(s.poll_timeout(), Some(t0 + 2 * PING_INTERVAL));
    s.handle_timeout(t0 + 2 * PING_INTERVAL);
    assert_eq!(p.read(&mut s), vec![ChatMsg::Ping]);
    // A Pong is life: the timers restart from it.
    let t1 = t0 + 2 * PING_INTERVAL + Duration::from_secs(1);
    s.handle_input(t1, &p.wire(&[ChatMsg::Pong])).unwrap();
    assert_eq!(s.poll_timeout(), Some(t1 + PING_INTERVAL));
    // Every Ping is answered.
    s.handle_input(t1, &p.wire(&[ChatMsg::Ping, ChatMsg::Ping])).unwrap();
    assert_eq!(p.read(&mut s), vec![ChatMsg::Pong, ChatMsg::Pong]);
    assert_eq!(events(&mut s), []);
}

#[test]
fn silence_closes_with_undelivered() {
    let t0 = super::test_origin();
    let (mut s, mut p) = open(t0);
    s.send_text(t0, "lost").unwrap();
    let mut now = t0;
    while let Some(t) = s.poll_timeout() {
        assert!(t <= t0 + IDLE_TIMEOUT);
        now = t;
        s.handle_timeout(now);
    }
    assert_eq!(now, t0 + IDLE_TIMEOUT);
    assert_eq!(events(&mut s), [undelivered(1, "lost"), closed(CloseReason::PeerSilent)]);
    assert!(s.is_finished() && !s.wants_write());
    // Finished sessions ignore input.
    assert_eq!(s.handle_input(now, &p.wire(&[ack(1)])), Ok(()));
    assert_eq!(events(&mut s), []);
}

#[test]
fn only_whole_frames_count_as_life() {
    let t0 = super::test_origin();
    let (mut s, mut p) = open(t0);
    let ping = p.wire(&[ChatMsg::Ping]);
    let t1 = t0 + Duration::from_secs(25);
    s.handle_input(t1, &ping[..2]).unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + PING_INTERVAL));
    let t2 = t0 + Duration::from_secs(29);
    s.handle_input(t2, &ping[2..]).unwrap();
    assert_eq!(s.poll_timeout(), Some(t2 + PING_INTERVAL));
    s.handle_timeout(t0 + IDLE_TIMEOUT);
    assert!(!s.is_finished());
}

#[test]
fn close_handshake_acks_in_flight_texts() {
    let now = super::test_origin();
    let mut a = alice(now, ChatConfig::default());
    let mut b = bob(now);
    carry(now, &mut a, &mut b);
    b.accept(now);
    carry(now, &mut a, &mut b);
    let _ = (events(&mut a), events(&mut b));

    a.send_text(now, "a1").unwrap();
    a.send_text(now, "a2").unwrap();
    b.send_text(now, "b1").unwrap();
    a.close(now);
    assert_eq!(a.send_text(now, "late"), Err(SendError::Closed));
    let a_out = a.pending_output().to_vec();
    a.consume(a_out.len());
    let b_out = b.pending_output().to_vec();
    b.consume(b_out.len());

    // Bob receives alice's texts and Goodbye: acks, answers Goodbye, done.
    b.handle_input(now, &a_out).unwrap();
    let b_reply = b.pending_output().to_vec();
    b.consume(b_reply.len());
    let received = |n, t: &str| ChatEvent::Received { seq: Seq(n), text: t.into() };
    assert_eq!(
        events(&mut b),
        [
            received(1, "a1"),
            received(2, "a2"),
            undelivered(1, "b1"),
            closed(CloseReason::PeerClose),
        ]
    );
    assert!(b.is_finished());

    // Alice drops bob's crossing text, gets her acks and his Goodbye.
    a.handle_input(now, &b_out).unwrap();
    assert!(!a.wants_write(), "nothing follows Goodbye");
    a.handle_input(now, &b_reply).unwrap();
    assert_eq!(
        events(&mut a),
        [
            ChatEvent::Delivered { seq: Seq(1) },
            ChatEvent::Delivered { seq: Seq(2) },
            closed(CloseReason::LocalClose),
        ]
    );
    assert!(a.is_finished() && !a.wants_read());
}

#[test]
fn close_sends_goodbye_and_lingers() {
    let t0 = super::test_origin();
    let (mut s, mut p) = open(t0);
    s.send_text(t0, "pending").unwrap();
    s.close(t0);
    s.close(t0);
    assert_eq!(p.read(&mut s), vec![text(1, "pending"), ChatMsg::Goodbye]);
    assert_eq!(s.poll_timeout(), Some(t0 + CLOSE_LINGER));
    // Pings are not answered any more, and keepalive is off.
    s.handle_input(t0, &p.wire(&[ChatMsg::Ping])).unwrap();
    assert_eq!(p.read(&mut s), vec![]);
    s.handle_timeout(t0 + CLOSE_LINGER - Duration::from_millis(1));
    assert!(!s.is_finished());
    s.handle_timeout(t0 + CLOSE_LINGER);
    assert_eq!(events(&mut s), [undelivered(1, "pending"), closed(CloseReason::LocalClose)]);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn eof_ends_the_session() {
    let now = super::test_origin();
    let (mut s, _p) = open(now);
    s.send_text(now, "x").unwrap();
    s.handle_eof(now);
    assert_eq!(events(&mut s), [undelivered(1, "x"), closed(CloseReason::PeerVanished)]);
    assert!(!s.wants_write(), "an abrupt end sends nothing more");
    s.handle_eof(now);
    assert_eq!(events(&mut s), []);

    // While closing, EOF completes the close.
    let (mut s, _p) = open(now);
    s.close(now);
    s.handle_eof(now);
    assert_eq!(events(&mut s), [closed(CloseReason::LocalClose)]);
}

#[test]
fn simultaneous_close() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    s.close(now);
    s.handle_input(now, &p.wire(&[ChatMsg::Goodbye])).unwrap();
    assert_eq!(events(&mut s), [closed(CloseReason::LocalClose)]);
}

#[test]
fn send_text_limits() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    let max = "x".repeat(MAX_TEXT_LEN);
    assert_eq!(s.send_text(now, &max), Ok(Seq(1)));
    assert_eq!(s.send_text(now, &format!("{max}x")), Err(SendError::TooLong));
    p.read(&mut s);
    // Unacked texts are capped even when the output drains.
    for i in 2..=MAX_UNACKED as u64 {
        assert_eq!(s.send_text(now, "t"), Ok(Seq(i)));
        p.read(&mut s);
    }
    assert_eq!(s.send_text(now, "t"), Err(SendError::Backpressure));
    s.handle_input(now, &p.wire(&[ack(1)])).unwrap();
    assert_eq!(s.send_text(now, "t"), Ok(Seq(MAX_UNACKED as u64 + 1)));
}

#[test]
fn unacked_bytes_are_capped_before_the_count() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    let max = "x".repeat(MAX_TEXT_LEN);
    let fit = MAX_UNACKED_BYTES / MAX_TEXT_LEN;
    assert!(fit < MAX_UNACKED);
    for i in 1..=fit as u64 {
        assert_eq!(s.send_text(now, &max), Ok(Seq(i)), "text {i}");
        p.read(&mut s);
    }
    // Full by size: a long text waits, as does one byte more...
    assert_eq!(s.send_text(now, &max), Err(SendError::Backpressure));
    assert_eq!(s.send_text(now, "t"), Err(SendError::Backpressure));
    // ...until an acknowledgement frees the room of the text it covers.
    s.handle_input(now, &p.wire(&[ack(1)])).unwrap();
    assert_eq!(s.send_text(now, &max), Ok(Seq(fit as u64 + 1)));
    assert_eq!(s.send_text(now, "t"), Err(SendError::Backpressure));
}

#[test]
fn output_backpressure() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    let max = "x".repeat(MAX_TEXT_LEN);
    let mut n = 0;
    while s.send_text(now, &max).is_ok() {
        n += 1;
    }
    assert_eq!(s.send_text(now, &max), Err(SendError::Backpressure));
    assert!(n < MAX_UNACKED, "refused for output, not for unacked");
    let limit = MAX_BUFFERED_OUTPUT - CONTROL_HEADROOM;
    assert!(s.pending_output().len() <= limit);
    assert!(s.pending_output().len() + MAX_TEXT_LEN > limit);
    // Our own texts never stop reading...
    assert!(s.wants_read());
    // ...but a peer that pings and never reads does, eventually.
    let mut reads = 0;
    while s.wants_read() {
        // Each Pong adds at least a byte (they are sealed together).
        assert!(reads < MAX_BUFFERED_OUTPUT, "reading never paused");
        s.handle_input(now, &p.wire(&[ChatMsg::Ping])).unwrap();
        reads += 1;
    }
    assert!(reads > 1000);
    assert!(s.pending_output().len() > MAX_BUFFERED_OUTPUT);
    // Writing frees room: reading resumes at the limit...
    let written = s.pending_output().len() - MAX_BUFFERED_OUTPUT;
    s.consume(written);
    assert!(s.wants_read());
    assert_eq!(s.send_text(now, &max), Err(SendError::Backpressure));
    // ...and sending below the text limit.
    let written = s.pending_output().len() - (limit - 2 * MAX_TEXT_LEN);
    s.consume(written);
    assert_eq!(s.send_text(now, &max), Ok(Seq(n as u64 + 1)));
}

#[test]
fn consume_is_forgiving_and_short_writes_lose_nothing() {
    let now = super::test_origin();
    let (mut s, _p) = open(now);
    s.send_text(now, "hi").unwrap();
    let all = s.pending_output().to_vec();
    s.consume(3);
    assert_eq!(s.pending_output(), &all[3..]);
    s.send_text(now, "again").unwrap();
    assert_eq!(&s.pending_output()[..all.len() - 3], &all[3..]);
    s.consume(usize::MAX);
    assert!(!s.wants_write());
}

#[test]
fn huge_durations_mean_never() {
    let now = super::test_origin();
    let config = ChatConfig {
        handshake_timeout: Duration::MAX,
        ping_interval: Duration::MAX,
        idle_timeout: Duration::MAX,
        close_linger: Duration::MAX,
        ack_delay: Duration::MAX,
    };
    let (mut s, mut p) = fresh_with(now, config);
    assert_eq!(s.poll_timeout(), None);
    s.handle_input(now, &p.wire(&[hello("bob")])).unwrap();
    s.handle_timeout(now);
    s.close(now);
    assert_eq!(s.poll_timeout(), None);
    assert!(!s.is_finished());
}

mod encryption_and_answers;

#[test]
fn a_delayed_ack_rides_with_a_text_or_goes_at_its_deadline() {
    let now = super::test_origin();
    let delay = Duration::from_millis(2);
    let config = ChatConfig { ack_delay: delay, ..ChatConfig::default() };
    let (mut s, mut p) = fresh_with(now, config);
    s.handle_input(now, &p.wire(&[hello("bob")])).unwrap();
    assert_eq!(p.read(&mut s), vec![]);
    // One text: its ack waits, and the session asks to be woken for it.
    s.handle_input(now, &p.wire(&[text(1, "a")])).unwrap();
    assert_eq!(p.read(&mut s), vec![]);
    assert_eq!(s.poll_timeout(), Some(now + delay));
    // A text of ours takes it along.
    s.send_text(now, "reply").unwrap();
    assert_eq!(p.read(&mut s), vec![ack(1), text(1, "reply")]);
    // Nobody answers: the deadline sends it, not earlier.
    s.handle_input(now, &p.wire(&[text(2, "b")])).unwrap();
    assert_eq!(p.read(&mut s), vec![]);
    s.handle_timeout(now + delay / 2);
    assert_eq!(p.read(&mut s), vec![]);
    s.handle_timeout(now + delay);
    assert_eq!(p.read(&mut s), vec![ack(2)]);
    // Many texts at once are acknowledged at once.
    let many: Vec<ChatMsg> = (3..3 + ACK_EVERY).map(|i| text(i, "x")).collect();
    s.handle_input(now, &p.wire(&many)).unwrap();
    assert_eq!(p.read(&mut s), vec![ack(2 + ACK_EVERY)]);
    // Closing acknowledges what waits, before its Goodbye.
    s.handle_input(now, &p.wire(&[text(3 + ACK_EVERY, "y")])).unwrap();
    s.close(now);
    assert_eq!(p.read(&mut s), vec![ack(3 + ACK_EVERY), ChatMsg::Goodbye]);
}
