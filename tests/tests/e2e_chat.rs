//! End to end: a registry server and two clients on loopback, through a
//! whole session: login, lists, a full-duplex chat, `/back`, logout, history.

mod common;

use std::time::Duration;

use common::{history, logged_in_client, server, temp_dir};

/// Messages each side sends in the full-duplex phase.
const N: usize = 25;

fn whole_session(test: &str, bind: &str) {
    let dir = temp_dir(test);
    let (mut srv, addr) = server(bind, 60, &dir);
    let mut bob = logged_in_client("Bob", addr, &dir);
    srv.expect("[Bob] logged in from");
    let mut ann = logged_in_client("Ann", addr, &dir);
    srv.expect("[Ann] logged in from");

    // Each sees the other in the list (4).
    let ip = addr.ip().to_string();
    for (me, other) in [(&mut ann, "Bob"), (&mut bob, "Ann")] {
        me.send("4");
        let rows = me.expect_list();
        assert!(
            rows.iter().any(|r| r.starts_with(&format!("{other} : ")) && r.contains(&ip)),
            "{} does not list {other}: {rows:?}",
            me.label
        );
        me.expect("Enter choice:");
    }
    // So does `p2pchat list`.
    assert_eq!(common::listed_names(addr), ["Ann", "Bob"]);

    // Bob waits (2), Ann connects (1).
    bob.send("2");
    bob.expect("Waiting for a peer to connect");
    ann.send("1");
    ann.expect("Peer username:");
    ann.send("Bob");
    ann.expect("Chat with Bob started");
    bob.expect("Chat with Ann started");

    // Full duplex: both type at once, neither waits for the other.
    for i in 0..N {
        ann.send(&format!("ann says {i}"));
        bob.send(&format!("bob says {i}"));
    }
    for i in 0..N {
        let line = ann.expect(": bob says");
        assert!(line.ends_with(&format!("] Bob: bob says {i}")), "out of order: {line}");
        assert!(line.starts_with('['), "{line}");
        let line = bob.expect(": ann says");
        assert!(line.ends_with(&format!("] Ann: ann says {i}")), "out of order: {line}");
    }

    // /back ends the chat for both and returns both to the menu.
    ann.send("/back");
    ann.expect("Chat with Bob ended: you left the chat.");
    ann.expect("Enter choice:");
    bob.expect("Chat with Ann ended: Ann left the chat.");
    bob.expect("Enter choice:");

    // 4 shows the list; 3 logs out; the other's refresh no longer shows it.
    ann.send("4");
    assert_eq!(ann.expect_list().len(), 2);
    ann.send("3");
    ann.expect("Logged out.");
    assert!(ann.wait_exit(Duration::from_secs(10)).success());
    srv.expect("[Ann] logged out");
    bob.send("4");
    let rows = bob.expect_list();
    assert!(rows.iter().all(|r| !r.starts_with("Ann ")), "Ann still listed: {rows:?}");
    assert!(rows.iter().any(|r| r.starts_with("Bob ")), "{rows:?}");
    bob.send("3");
    assert!(bob.wait_exit(Duration::from_secs(10)).success());
    srv.expect("[Bob] logged out");

    // Both histories hold every message, one line each.
    for (me, other, mine, theirs) in [("Ann", "Bob", "ann", "bob"), ("Bob", "Ann", "bob", "ann")] {
        let h = history(&dir, me);
        assert_eq!(h.len(), 2 * N, "{me}'s history: {h:?}");
        let sent: Vec<_> =
            h.iter().filter(|(d, _, _)| d == "sent").map(|(_, _, t)| t.clone()).collect();
        let received: Vec<_> =
            h.iter().filter(|(d, _, _)| d == "received").map(|(_, _, t)| t.clone()).collect();
        assert_eq!(sent, (0..N).map(|i| format!("{mine} says {i}")).collect::<Vec<_>>());
        assert_eq!(received, (0..N).map(|i| format!("{theirs} says {i}")).collect::<Vec<_>>());
        assert!(h.iter().all(|(_, peer, _)| peer == other));
    }
}

#[test]
fn whole_session_ipv4() {
    whole_session("v4", "127.0.0.1:0");
}

#[test]
fn whole_session_ipv6() {
    whole_session("v6", "[::1]:0");
}
