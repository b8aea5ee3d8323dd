//! Two client nodes and a registry on loopback, each on its own thread: a
//! chat request is held, unanswered, until accepted (a third caller meanwhile
//! is turned away; a text typed meanwhile waits), then texts go both ways
//! and the chat ends politely.
//!
//! The test types into each node's input through a socket pair and waits
//! for what the nodes report; nothing sleeps.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{TIMEOUT, chat_event, logged_in, registry, registry_event, start, wait_for};
use p2pchat_core::{CHAT_VERSION, ChatEvent, ClientEvent, CloseReason, PREAMBLE_MARKER};
use p2pchat_transport_mio::NodeEvent;

#[test]
fn two_nodes_chat_through_a_registry() {
    let (server_addr, stop_server, server_thread) = registry();
    let (bob, mut bob_keys, bob_thread) = start("Bob", None, server_addr);
    logged_in(&bob, "Bob");
    let (ann, mut ann_keys, ann_thread) = start("Ann", Some("Bob"), server_addr);
    let found = wait_for(&ann, "Ann found Bob", |e| {
        matches!(registry_event(e), Some(ClientEvent::Found { entry: Some(_), .. }))
    });
    let Some(ClientEvent::Found { entry: Some(bob_entry), .. }) = registry_event(&found) else {
        unreachable!()
    };

    // Ann's call is held: Bob hears who it is; Ann's chat does not start,
    // and what she types meanwhile waits in her session. (Bob's `Hello`, had
    // it been sent, would have reached Ann before her typing did.)
    wait_for(
        &bob,
        "Ann's chat request",
        |e| matches!(e, NodeEvent::ChatRequest { peer, .. } if peer.as_str() == "Ann"),
    );
    ann_keys.write_all(b"hello Bob\n").unwrap();
    wait_for(&ann, "Ann's text queued", |e| {
        assert!(
            !matches!(chat_event(e), Some(ChatEvent::Connected { .. })),
            "Ann's chat started before Bob accepted it: {e:?}"
        );
        matches!(e, NodeEvent::Sent { text } if text == "hello Bob")
    });

    // A stranger who connects meanwhile gets Bob's cleartext preamble (the
    // version) and nothing more until it proves who it is; Bob hears of it
    // not at all (checked by the events below).
    let mut third = TcpStream::connect(bob_entry.chat_addr()).unwrap();
    third.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 6];
    third.read_exact(&mut buf).unwrap();
    assert_eq!(buf, [0, 0, 0, 2, PREAMBLE_MARKER, CHAT_VERSION], "only the preamble");

    bob_keys.write_all(b"/accept\n").unwrap();
    wait_for(
        &ann,
        "Ann connected",
        |e| matches!(chat_event(e), Some(ChatEvent::Connected { peer }) if peer.as_str() == "Bob"),
    );
    wait_for(
        &bob,
        "Bob got Ann's text",
        |e| matches!(chat_event(e), Some(ChatEvent::Received { text, .. }) if text == "hello Bob"),
    );
    wait_for(&ann, "Ann's text delivered", |e| {
        matches!(chat_event(e), Some(ChatEvent::Delivered { .. }))
    });
    bob_keys.write_all(b"hi Ann\n").unwrap();
    wait_for(
        &ann,
        "Ann got Bob's text",
        |e| matches!(chat_event(e), Some(ChatEvent::Received { text, .. }) if text == "hi Ann"),
    );

    // Ann's input ends: she closes the chat, both log out and stop.
    drop(ann_keys);
    wait_for(&ann, "Ann's chat closed", |e| {
        matches!(chat_event(e), Some(ChatEvent::Closed { reason: CloseReason::LocalClose }))
    });
    wait_for(&bob, "Bob's chat closed", |e| {
        matches!(chat_event(e), Some(ChatEvent::Closed { reason: CloseReason::PeerClose }))
    });
    for (rx, who) in [(&ann, "Ann"), (&bob, "Bob")] {
        wait_for(rx, &format!("{who} logged out"), |e| {
            matches!(registry_event(e), Some(ClientEvent::LoggedOut))
        });
    }
    ann_thread.join().unwrap();
    bob_thread.join().unwrap();
    drop(bob_keys);
    stop_server.stop();
    server_thread.join().unwrap();
}
