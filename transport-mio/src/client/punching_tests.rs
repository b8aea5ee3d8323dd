//! The callee's side of an introduction: its punching stops once the
//! caller has proved itself on a direct connection.

use std::time::Instant;

use p2pchat_core::{CALLEE_GRACE, Entry, Introduction, PUNCH_TIMEOUT, PrivateKey, UserName};

use super::Punching;

#[test]
fn a_callers_proof_on_a_direct_connection_ends_the_callees_punching() {
    let poll = mio::Poll::new().unwrap();
    let registry = poll.registry();
    // The caller's listener, which the callee's attempts go to.
    let caller_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let caller_addr = caller_listener.local_addr().unwrap();
    let caller = UserName::new("Ann").unwrap();
    let caller_key = PrivateKey::from_bytes([1; 32]).public_key();
    let me = PrivateKey::from_bytes([2; 32]).public_key();
    let mut punching =
        Punching::new("127.0.0.1:0".parse().unwrap(), "127.0.0.1:9".parse().unwrap(), me);
    let now = Instant::now();
    let intro = Introduction {
        nonce: 1,
        peer: Entry {
            name: caller.clone(),
            addr: caller_addr,
            chat_port: caller_addr.port(),
            key: caller_key,
        },
        candidates: vec![caller_addr],
        relay: None,
    };
    punching.called(now, intro, registry);
    punching.drive(now, registry);
    assert_eq!(punching.answering.len(), 1);
    assert!(punching.answering[0].attempt.punch.is_some(), "the callee punches");
    assert!(punching.deadline().is_some());

    let mut events = std::collections::VecDeque::new();
    punching.authenticated(&caller, &mut events, registry);
    assert_eq!(events.len(), 1, "the route is reported: {}", events.len());
    let answer = &punching.answering[0];
    assert!(answer.heard);
    assert!(answer.attempt.punch.is_none(), "punching goes on after the caller proved itself");
    assert!(answer.attempt.paths.is_empty(), "attempts left open");
    assert_eq!(punching.deadline(), None, "nothing left to wake for");

    // It still counts as the caller calling us until its punching would
    // have ended, then it is forgotten.
    punching.drive(now, registry);
    assert_eq!(punching.answering.len(), 1);
    punching.drive(now + PUNCH_TIMEOUT + CALLEE_GRACE, registry);
    assert!(punching.answering.is_empty());
}
