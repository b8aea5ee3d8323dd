//! The chat session does not care how its input is cut, and no input at all
//! makes it panic, leak a text, or forget an error. The peer is a scripted
//! [`RawPeer`] that runs the real handshake and then seals whatever the
//! strategy says, so every case reaches past the encryption.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use p2pchat_core::{
    CHAT_VERSION, ChatConfig, ChatError, ChatEvent, ChatMsg, ChatRole, ChatSession, ChatSetup,
    CloseReason, DeclineReason, MAX_BUFFERED_OUTPUT, PrivateKey, Seq, UserName,
};
use p2pchat_tests::noise_peer::RawPeer;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Texts our side has sent before the peer's bytes arrive, so that the peer's
/// acks have something to acknowledge.
const OURS: u64 = 4;

fn key(n: u8) -> PrivateKey {
    PrivateKey::from_bytes([n; 32])
}

/// Alice, calling bob, with [`OURS`] texts queued. Always the same
/// ephemeral key, so that a stream recorded against one such session fits
/// every other.
fn session(now: Instant) -> ChatSession {
    let role =
        ChatRole::Caller { callee: UserName::new("bob").unwrap(), callee_key: key(2).public_key() };
    let setup =
        ChatSetup { name: UserName::new("alice").unwrap(), key: key(1), role, seed: [7; 32] };
    let mut s = ChatSession::new(now, setup, ChatConfig::default());
    for i in 1..=OURS {
        assert_eq!(s.send_text(now, &format!("ours {i}")), Ok(Seq(i)));
    }
    s
}

/// Bob, answering `s` through the handshake. Returns him and the bytes he
/// sent, which `s` has read.
fn bob_for(now: Instant, s: &mut ChatSession) -> (RawPeer, Vec<u8>) {
    let mut peer = RawPeer::callee(key(2), [8; 32]);
    let n = s.pending_output().len();
    peer.input(s.pending_output());
    s.consume(n);
    let handshake = peer.take_output();
    s.handle_input(now, &handshake).unwrap();
    let n = s.pending_output().len();
    peer.input(s.pending_output());
    s.consume(n);
    assert!(peer.is_secured());
    (peer, handshake)
}

/// One step of a peer's script.
#[derive(Debug, Clone)]
enum Step {
    Text(String),
    /// Acknowledge this many more of our texts (capped at what we sent).
    Ack(u64),
    Ping,
    Pong,
    Goodbye,
    /// Any message at all, valid or not here.
    Raw(ChatMsg),
    /// Bytes that are probably not a frame.
    Garbage(Vec<u8>),
}

fn any_msg() -> impl Strategy<Value = ChatMsg> {
    prop_oneof![
        (0..3u8, "[a-zA-Z ]{0,5}").prop_map(|(version, name)| ChatMsg::Hello { version, name }),
        (0..6u64, ".{0,6}").prop_map(|(seq, text)| ChatMsg::Text { seq: Seq(seq), text }),
        (0..7u64).prop_map(|upto| ChatMsg::Ack { upto: Seq(upto) }),
        Just(ChatMsg::Ping),
        Just(ChatMsg::Pong),
        Just(ChatMsg::Goodbye),
        prop_oneof![
            Just(DeclineReason::Declined),
            Just(DeclineReason::Busy),
            Just(DeclineReason::Crossed)
        ]
        .prop_map(|reason| ChatMsg::Decline { reason }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        16 => ".{0,40}".prop_map(Step::Text),
        6 => (0..3u64).prop_map(Step::Ack),
        2 => Just(Step::Ping),
        2 => Just(Step::Pong),
        1 => Just(Step::Goodbye),
        1 => any_msg().prop_map(Step::Raw),
        1 => prop::collection::vec(any::<u8>(), 1..12).prop_map(Step::Garbage),
    ]
}

/// The peer's byte stream: its handshake, its Hello (usually a good one),
/// then the steps, sealed.
fn script(good_hello: bool, steps: &[Step]) -> Vec<u8> {
    let now = Instant::now();
    let (mut peer, mut out) = bob_for(now, &mut session(now));
    let name = if good_hello { "bob" } else { "b o b" };
    peer.send(&ChatMsg::Hello { version: CHAT_VERSION, name: name.into() });
    let (mut seq, mut acked) = (0, 0);
    for s in steps {
        match s {
            Step::Text(text) => {
                seq += 1;
                let text = text.clone();
                peer.send(&ChatMsg::Text { seq: Seq(seq), text });
            }
            Step::Ack(n) => {
                acked = (acked + n).min(OURS);
                peer.send(&ChatMsg::Ack { upto: Seq(acked) });
            }
            Step::Ping => peer.send(&ChatMsg::Ping),
            Step::Pong => peer.send(&ChatMsg::Pong),
            Step::Goodbye => peer.send(&ChatMsg::Goodbye),
            Step::Raw(msg) => peer.send(msg),
            Step::Garbage(bytes) => {
                out.extend(peer.take_output());
                out.extend_from_slice(bytes);
            }
        }
    }
    out.extend(peer.take_output());
    out
}

/// What a run produced that must not depend on the chunking.
#[derive(Debug, PartialEq)]
struct Outcome {
    result: Result<(), ChatError>,
    events: Vec<ChatEvent>,
    finished: bool,
    peer: Option<UserName>,
    /// Output messages other than the coalesced `Ack`s.
    sent: Vec<ChatMsg>,
    /// The last `Ack` sent: how far we acknowledged.
    last_ack: Option<Seq>,
}

fn run(chunks: &[&[u8]]) -> Outcome {
    let now = Instant::now();
    let mut s = session(now);
    let mut result = Ok(());
    for c in chunks {
        result = s.handle_input(now, c);
        if result.is_err() {
            break;
        }
    }
    // Opened by the bob who wrote the script (same keys, same transcript).
    let (mut peer, _) = bob_for(now, &mut session(now));
    peer.input(s.pending_output());
    let (mut sent, mut last_ack) = (Vec::new(), None);
    for msg in peer.received.drain(..) {
        match msg {
            ChatMsg::Ack { upto } => last_ack = Some(upto),
            msg @ (ChatMsg::Hello { .. }
            | ChatMsg::Text { .. }
            | ChatMsg::Ping
            | ChatMsg::Pong
            | ChatMsg::Goodbye
            | ChatMsg::Decline { .. }) => sent.push(msg),
        }
    }
    Outcome {
        result,
        events: std::iter::from_fn(|| s.poll_event()).collect(),
        finished: s.is_finished(),
        peer: s.peer_name().cloned(),
        sent,
        last_ack,
    }
}

/// Something a driver may do to a session.
#[derive(Debug, Clone)]
enum Op {
    Input(Vec<u8>),
    /// The peer seals these.
    Msgs(Vec<ChatMsg>),
    /// The peer seals this, and a byte of the result is flipped.
    Flipped(ChatMsg, prop::sample::Index, u8),
    Send(String),
    Close,
    Wait(u16),
    Consume(usize),
    Eof,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Op::Input),
        4 => prop::collection::vec(any_msg(), 1..4).prop_map(Op::Msgs),
        2 => (any_msg(), any::<prop::sample::Index>(), any::<u8>())
            .prop_map(|(m, i, x)| Op::Flipped(m, i, x)),
        2 => ".{0,10}".prop_map(Op::Send),
        1 => Just(Op::Close),
        1 => (0..20_000u16).prop_map(Op::Wait),
        1 => (0..64usize).prop_map(Op::Consume),
        1 => Just(Op::Eof),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/chat_props.txt"))),
        ..ProptestConfig::default()
    })]

    /// A stream cut at arbitrary points gives what it gives whole.
    #[test]
    fn cutting_the_stream_changes_nothing(
        good_hello in prop::bool::weighted(0.9),
        steps in prop::collection::vec(step(), 0..30),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let bytes = script(good_hello, &steps);
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.push(0);
        at.push(bytes.len());
        at.sort_unstable();
        let chunks: Vec<&[u8]> = at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();
        let whole = run(&[&bytes]);
        let cut = run(&chunks);
        prop_assert_eq!(&cut, &whole);
        // The whole run is not vacuous: a good Hello connects.
        if good_hello {
            prop_assert_eq!(whole.peer, Some(UserName::new("bob").unwrap()));
        } else {
            prop_assert_eq!(whole.result, Err(ChatError::BadPeerName));
        }
    }

    /// Any input in any order with any commands: no panic, errors stay,
    /// every text sent is accounted for exactly once, `Closed` comes last.
    #[test]
    fn any_input_is_survived(ops in prop::collection::vec(op(), 0..40)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut s = session(now);
        // Past the handshake and the Hello, so the scripted frames reach the
        // session's logic most of the time.
        let (mut peer, _) = bob_for(now, &mut s);
        peer.send(&ChatMsg::Hello { version: CHAT_VERSION, name: "bob".into() });
        s.handle_input(now, &peer.take_output()).unwrap();
        while s.poll_event().is_some() {}
        let mut sent: Vec<Seq> = (1..=OURS).map(Seq).collect();

        let mut error: Option<ChatError> = None;
        let mut settled = BTreeSet::new();
        let mut closed: Option<CloseReason> = None;
        for op in ops {
            let op = match op {
                Op::Msgs(msgs) => {
                    msgs.iter().for_each(|m| peer.send(m));
                    Op::Input(peer.take_output())
                }
                Op::Flipped(m, i, x) => {
                    peer.send(&m);
                    let mut bytes = peer.take_output();
                    let i = i.index(bytes.len());
                    bytes[i] ^= x;
                    Op::Input(bytes)
                }
                other => other,
            };
            match op {
                Op::Msgs(_) | Op::Flipped(..) => {}
                Op::Input(bytes) => {
                    let res = s.handle_input(now, &bytes);
                    match (&error, res) {
                        (Some(e), res) => prop_assert_eq!(res, Err(e.clone()), "error not sticky"),
                        (None, Err(e)) => error = Some(e),
                        (None, Ok(())) => {}
                    }
                }
                Op::Send(text) => {
                    if let Ok(seq) = s.send_text(now, &text) {
                        prop_assert!(closed.is_none());
                        sent.push(seq);
                    }
                }
                Op::Close => s.close(now),
                Op::Wait(ms) => {
                    now += Duration::from_millis(u64::from(ms));
                    s.handle_timeout(now);
                }
                Op::Consume(n) => s.consume(n),
                Op::Eof => s.handle_eof(now),
            }
            prop_assert!(s.pending_output().len() <= MAX_BUFFERED_OUTPUT);
            while let Some(ev) = s.poll_event() {
                prop_assert!(closed.is_none(), "{:?} after Closed", ev);
                match ev {
                    ChatEvent::Delivered { seq } | ChatEvent::Undelivered { seq, .. } => {
                        prop_assert!(sent.contains(&seq), "{:?} never sent", seq);
                        prop_assert!(settled.insert(seq), "{:?} settled twice", seq);
                    }
                    ChatEvent::Closed { reason } => closed = Some(reason),
                    ChatEvent::Authenticated { .. } => prop_assert!(false, "a second handshake"),
                    ChatEvent::Connected { .. } | ChatEvent::Received { .. } => {}
                }
            }
            prop_assert_eq!(closed.is_some(), s.is_finished());
        }
        if let Some(e) = &error {
            prop_assert_eq!(closed.clone(), Some(CloseReason::Error(e.clone())));
            prop_assert_eq!(s.handle_input(now, b""), Err(e.clone()));
        }
        if closed.is_some() {
            prop_assert_eq!(settled.len(), sent.len(), "a text was neither delivered nor undelivered");
            prop_assert!(!s.wants_read());
            prop_assert_eq!(s.poll_timeout(), None);
        }
    }
}
