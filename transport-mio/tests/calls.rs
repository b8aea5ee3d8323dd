//! What a call can come to besides a chat, between real nodes on loopback:
//! declined, busy (and missed on the callee's side), crossed (both call at
//! once: one chat), and cancelled by the caller (withdrawn on the callee's
//! side). Each answer reaches the other side as soon as the bytes cross,
//! measured against a generous deadline.

mod common;

use std::io::Write;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use common::{chat_event, logged_in, registry, start_with, wait_for};
use p2pchat_core::{ChatEvent, CloseReason, DeclineReason};
use p2pchat_transport_mio::NodeEvent;

fn closed(rx: &Receiver<NodeEvent>, who: &str) -> CloseReason {
    let event = wait_for(rx, &format!("{who}'s call to end"), |e| {
        matches!(chat_event(e), Some(ChatEvent::Closed { .. }))
    });
    match chat_event(&event) {
        Some(ChatEvent::Closed { reason }) => reason.clone(),
        _ => unreachable!(),
    }
}

fn requested(rx: &Receiver<NodeEvent>, who: &str, from: &str) {
    wait_for(
        rx,
        &format!("{who} asked by {from}"),
        |e| matches!(e, NodeEvent::ChatRequest { peer, .. } if peer.as_str() == from),
    );
}

#[test]
fn a_declined_call_is_told_at_once() {
    let (server, stop, server_thread) = registry();
    let (bob, mut bob_keys, _bob_thread) = start_with("Bob", None, true, server);
    logged_in(&bob, "Bob");
    let (ann, _ann_keys, _ann_thread) = start_with("Ann", Some("Bob"), true, server);
    requested(&bob, "Bob", "Ann");
    let t0 = Instant::now();
    bob_keys.write_all(b"/decline\n").unwrap();
    assert_eq!(closed(&ann, "Ann"), CloseReason::Declined(DeclineReason::Declined));
    eprintln!("declined: the caller knew after {:?}", t0.elapsed());
    stop.stop();
    server_thread.join().unwrap();
}

#[test]
fn a_second_caller_is_told_busy_and_the_callee_of_a_missed_call() {
    let (server, stop, server_thread) = registry();
    let (bob, _bob_keys, _bob_thread) = start_with("Bob", None, true, server);
    logged_in(&bob, "Bob");
    let (_ann, _ann_keys, _ann_thread) = start_with("Ann", Some("Bob"), true, server);
    requested(&bob, "Bob", "Ann");
    let t0 = Instant::now();
    let (cid, _cid_keys, _cid_thread) = start_with("Cid", Some("Bob"), true, server);
    assert_eq!(closed(&cid, "Cid"), CloseReason::Declined(DeclineReason::Busy));
    eprintln!("busy: the caller knew {:?} after starting", t0.elapsed());
    wait_for(
        &bob,
        "Bob told of the missed call",
        |e| matches!(e, NodeEvent::MissedCall { peer, .. } if peer.as_str() == "Cid"),
    );
    stop.stop();
    server_thread.join().unwrap();
}

#[test]
fn crossed_calls_make_one_chat() {
    let (server, stop, server_thread) = registry();
    let (ann, mut ann_keys, _ann_thread) = start_with("Ann", None, true, server);
    let (bob, mut bob_keys, _bob_thread) = start_with("Bob", None, true, server);
    logged_in(&ann, "Ann");
    logged_in(&bob, "Bob");
    // Both call before either hears of the other.
    ann_keys.write_all(b"/call Bob\n").unwrap();
    bob_keys.write_all(b"/call Ann\n").unwrap();
    // (A side whose own lookup was still under way when the other's call
    // arrived may hear of it as a request first; its call then takes it.)
    for (rx, who, peer) in [(&ann, "Ann", "Bob"), (&bob, "Bob", "Ann")] {
        wait_for(rx, &format!("{who}'s chat with {peer}"), |e| {
            assert!(
                !matches!(chat_event(e), Some(ChatEvent::Closed { .. })),
                "{who}: a call ended instead of joining: {e:?}"
            );
            matches!(chat_event(e), Some(ChatEvent::Connected { peer: p }) if p.as_str() == peer)
        });
    }
    // One chat: a text each way arrives once.
    ann_keys.write_all(b"hi Bob\n").unwrap();
    bob_keys.write_all(b"hi Ann\n").unwrap();
    for (rx, text) in [(&bob, "hi Bob"), (&ann, "hi Ann")] {
        wait_for(
            rx,
            text,
            |e| matches!(chat_event(e), Some(ChatEvent::Received { text: t, .. }) if t == text),
        );
    }
    stop.stop();
    server_thread.join().unwrap();
}

#[test]
fn a_cancelled_call_is_withdrawn() {
    let (server, stop, server_thread) = registry();
    let (bob, _bob_keys, _bob_thread) = start_with("Bob", None, true, server);
    logged_in(&bob, "Bob");
    let (ann, mut ann_keys, _ann_thread) = start_with("Ann", Some("Bob"), true, server);
    requested(&bob, "Bob", "Ann");
    let t0 = Instant::now();
    ann_keys.write_all(b"/cancel\n").unwrap();
    assert_eq!(closed(&ann, "Ann"), CloseReason::LocalClose);
    wait_for(
        &bob,
        "Ann's request withdrawn",
        |e| matches!(e, NodeEvent::ChatRequestGone { peer } if peer.as_str() == "Ann"),
    );
    eprintln!("cancelled: withdrawn on the callee's side after {:?}", t0.elapsed());
    stop.stop();
    server_thread.join().unwrap();
}

/// Many texts given at once, far more than the session's output holds (a
/// long line split into messages): every one arrives, once and in order.
#[test]
fn a_burst_beyond_the_output_limit_arrives_whole_and_in_order() {
    const N: usize = 200; // 800 KB: several times the session's output bound
    let (server, stop, server_thread) = registry();
    let (bob, mut bob_keys, _bob_thread) = start_with("Bob", None, true, server);
    logged_in(&bob, "Bob");
    let (ann, mut ann_keys, _ann_thread) = start_with("Ann", Some("Bob"), true, server);
    requested(&bob, "Bob", "Ann");
    bob_keys.write_all(b"/accept\n").unwrap();
    wait_for(&ann, "Ann's chat", |e| matches!(chat_event(e), Some(ChatEvent::Connected { .. })));
    ann_keys.write_all(format!("/burst {N}\n").as_bytes()).unwrap();
    for i in 0..N {
        let event = wait_for(&bob, &format!("text {i}"), |e| {
            matches!(chat_event(e), Some(ChatEvent::Received { .. }))
        });
        let Some(ChatEvent::Received { text, .. }) = chat_event(&event) else { unreachable!() };
        assert!(text.starts_with(&format!("{i:04} ")), "text {i} arrived as {:?}", &text[..4]);
    }
    stop.stop();
    server_thread.join().unwrap();
}
