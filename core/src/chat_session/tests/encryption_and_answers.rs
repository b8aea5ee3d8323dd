//! The encrypted wire (wrong keys, tampering, replays, rekeying, one frame
//! per turn) and a callee's answers (decline, abort), with the helpers of
//! the parent module.

use super::*;

/// Runs alice's call to a callee session of `callee` holding key `held`,
/// until nothing moves, and returns both.
fn call(now: Instant, callee: &str, held: u8) -> (ChatSession, ChatSession) {
    let mut a = alice(now, ChatConfig::default());
    let setup =
        ChatSetup { name: name(callee), key: key(held), role: ChatRole::Callee, seed: [3; 32] };
    let mut b = ChatSession::new(now, setup, ChatConfig::default());
    while a.wants_write() || b.wants_write() {
        let (to_b, to_a) = (a.pending_output().to_vec(), b.pending_output().to_vec());
        a.consume(to_b.len());
        b.consume(to_a.len());
        let _ = a.handle_input(now, &to_a);
        let _ = b.handle_input(now, &to_b);
    }
    (a, b)
}

#[test]
fn a_callee_with_another_key_is_refused() {
    let now = super::test_origin();
    let (mut a, _) = call(now, "bob", 9);
    let err = ChatError::Handshake(crate::noise::HandshakeError::WrongKey {
        expected: key(2).public_key(),
        got: key(9).public_key(),
    });
    assert_eq!(events(&mut a), [closed(CloseReason::Error(err))]);
}

#[test]
fn a_callee_of_another_name_drops_the_call() {
    let now = super::test_origin();
    let (mut a, mut b) = call(now, "carol", 2);
    assert_eq!(events(&mut b), [closed(CloseReason::Error(ChatError::WrongCallee))]);
    assert!(a.poll_event().is_none(), "alice hears nothing more and times out");
}

#[test]
fn preambles_of_other_versions_are_clear_errors() {
    let now = super::test_origin();
    // Version 1's Hello, as an old client sends it first.
    let mut old = Vec::new();
    crate::frame::write_frame(&mut old, &[0x00, 0x01, 0x03, b'b', b'o', b'b']);
    let mut a = alice(now, ChatConfig::default());
    let mismatch = ChatError::VersionMismatch { ours: CHAT_VERSION, theirs: 1 };
    assert_eq!(a.handle_input(now, &old), Err(mismatch.clone()));
    let mut b = bob(now);
    assert_eq!(b.handle_input(now, &old), Err(mismatch));
    let mut junk = Vec::new();
    crate::frame::write_frame(&mut junk, b"GET / HTTP/1.1");
    assert_eq!(bob(now).handle_input(now, &junk), Err(ChatError::BadPreamble));
}

#[test]
fn a_flipped_bit_in_any_frame_ends_the_session() {
    let now = super::test_origin();
    let msgs = [text(1, "one"), text(2, "two"), ChatMsg::Ping];
    let (_, mut p) = open(now);
    let lens: Vec<usize> = msgs.iter().map(|m| p.wire(std::slice::from_ref(m)).len()).collect();
    // One bit in every byte (a different bit from byte to byte): a debug
    // build's handshakes are too slow to flip all of them.
    for byte in 0..lens.iter().sum() {
        let (mut s, mut p) = open(now);
        // One sealed frame per message, as a sender that writes each at once.
        let mut bytes: Vec<u8> =
            msgs.iter().flat_map(|m| p.wire(std::slice::from_ref(m))).collect();
        bytes[byte] ^= 1 << (byte % 8);
        let starts: Vec<usize> =
            lens.iter().scan(0, |end, l| Some(std::mem::replace(end, *end + l))).collect();
        let flipped_frame = starts.iter().filter(|&&start| start <= byte).count() - 1;
        let in_prefix = byte - starts[flipped_frame] < crate::frame::FRAME_HEADER_LEN;
        let result = s.handle_input(now, &bytes);
        let ev = events(&mut s);
        let shown: Vec<u64> = ev
            .iter()
            .filter_map(|e| match e {
                ChatEvent::Received { seq, .. } => Some(seq.0),
                _ => None,
            })
            .collect();
        // Only the texts before the flipped frame arrive, once and in order.
        assert_eq!(shown, (1..=flipped_frame.min(2) as u64).collect::<Vec<_>>(), "byte {byte}");
        match result {
            // A flipped length prefix can announce more bytes than follow:
            // the session waits for them (and times out in the end).
            Ok(()) => assert!(in_prefix, "byte {byte}: a flipped frame was accepted"),
            Err(_) => assert!(
                matches!(ev.last(), Some(ChatEvent::Closed { reason: CloseReason::Error(_) })),
                "byte {byte}"
            ),
        }
    }
}

#[test]
fn replayed_frames_are_refused() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    let one = p.wire(&[text(1, "one")]);
    s.handle_input(now, &one).unwrap();
    assert_eq!(s.handle_input(now, &one), Err(ChatError::Noise(TransportError::Decrypt)));
    // A replayed handshake message, after the handshake, is no transport
    // message either.
    let (mut s, _p) = open(now);
    let mut p2 = Peer(bob_wire());
    let mut fresh_alice = alice(now, ChatConfig::default());
    p2.read(&mut fresh_alice);
    let handshake = p2.wire(&[]);
    assert!(s.handle_input(now, &handshake).is_err());
}

#[test]
fn texts_never_cross_in_clear() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    s.send_text(now, "attack at dawn").unwrap();
    let out = s.pending_output().to_vec();
    assert!(!out.windows(6).any(|w| w == b"attack"));
    assert_eq!(p.read(&mut s), vec![text(1, "attack at dawn")]);
    let input = p.wire(&[text(1, "retreat at dusk")]);
    assert!(!input.windows(7).any(|w| w == b"retreat"));
}

#[test]
fn both_sides_rekey_in_step() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    for i in 1..=(2 * crate::noise::REKEY_INTERVAL + 3) {
        let t = text(i, "x");
        let bytes = p.wire(std::slice::from_ref(&t));
        s.handle_input(now, &bytes).unwrap();
        assert_eq!(p.read(&mut s), vec![ack(i)]);
    }
    assert_eq!(events(&mut s).len() as u64, 2 * crate::noise::REKEY_INTERVAL + 3);
}

#[test]
fn a_turns_messages_are_sealed_as_one_frame() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    for t in ["one", "two", "three"] {
        s.send_text(now, t).unwrap();
    }
    let mut frames = crate::frame::FrameDecoder::new();
    frames.push(s.pending_output());
    assert!(frames.next_frame().unwrap().is_some());
    assert_eq!(frames.next_frame().unwrap(), None, "one frame for the turn");
    assert_eq!(p.read(&mut s), vec![text(1, "one"), text(2, "two"), text(3, "three")]);
    // Received together, they are taken one by one, in order.
    let bytes = p.wire(&[]);
    assert!(bytes.is_empty());
    for m in [text(1, "a"), text(2, "b")] {
        p.0.push(&m);
    }
    let both = p.wire(&[]);
    s.handle_input(now, &both).unwrap();
    let received: Vec<_> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            ChatEvent::Received { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(received, ["a", "b"]);
}

#[test]
fn an_empty_sealed_frame_is_an_error() {
    let now = super::test_origin();
    let (mut s, mut p) = open(now);
    p.0.push_payload(&[]);
    let bad = p.wire(&[]);
    assert!(matches!(s.handle_input(now, &bad), Err(ChatError::Malformed(_))));
}

#[test]
fn a_callee_that_declines_ends_the_call_at_once() {
    let now = super::test_origin();
    for reason in [DeclineReason::Declined, DeclineReason::Busy, DeclineReason::Crossed] {
        let mut a = alice(now, ChatConfig::default());
        let mut b = bob(now);
        a.send_text(now, "early").unwrap();
        carry(now, &mut a, &mut b);
        let _ = (events(&mut a), events(&mut b));
        b.decline(now, reason);
        assert!(b.wants_write(), "the Decline is written before the end");
        assert_eq!(events(&mut b), [closed(CloseReason::LocalClose)]);
        carry(now, &mut a, &mut b);
        assert_eq!(
            events(&mut a),
            [undelivered(1, "early"), closed(CloseReason::Declined(reason))]
        );
        assert!(a.is_finished() && !a.wants_write());
    }
}

#[test]
fn decline_is_only_a_callees_first_word() {
    let now = super::test_origin();
    // After its Hello, a callee cannot decline.
    let (mut s, mut p) = open(now);
    let err = s.handle_input(now, &p.wire(&[ChatMsg::Decline { reason: DeclineReason::Busy }]));
    assert_eq!(err, Err(ChatError::UnexpectedDecline));
    // A caller cannot decline: the callee refuses it.
    let mut a = alice(now, ChatConfig::default());
    let mut b = bob(now);
    carry(now, &mut a, &mut b);
    a.decline(now, DeclineReason::Busy);
    assert!(!a.is_finished(), "a caller's decline is ignored");
    let mut p = Peer(bob_wire());
    let mut a = alice(now, ChatConfig::default());
    p.read(&mut a);
    let answer = p.wire(&[]);
    a.handle_input(now, &answer).unwrap();
    p.read(&mut a);
    let declined = p.wire(&[ChatMsg::Decline { reason: DeclineReason::Declined }]);
    assert_eq!(a.handle_input(now, &declined), Ok(()), "from the callee it is an answer");
    // An accepted callee's decline does nothing.
    let mut b = bob(now);
    b.accept(now);
    b.decline(now, DeclineReason::Busy);
    assert!(!b.is_finished());
}

#[test]
fn abort_ends_at_once_and_sends_nothing() {
    let now = super::test_origin();
    let mut a = alice(now, ChatConfig::default());
    a.send_text(now, "never").unwrap();
    a.abort(now);
    assert_eq!(events(&mut a), [undelivered(1, "never"), closed(CloseReason::LocalClose)]);
    assert!(a.is_finished() && !a.wants_write());
}
