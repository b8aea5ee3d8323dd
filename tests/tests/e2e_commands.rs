//! End to end: the commands typed in a chat (`/help`, `/quit`, a mistyped
//! `/bakc`) never reach the peer, and `//x` arrives as `/x`. The peer's
//! history file is the proof: it holds every text that arrived.

mod common;

use std::time::Duration;

use common::{call, history, logged_in_client, server, temp_dir};

#[test]
fn chat_commands_stay_local_and_double_slash_sends_a_slash() {
    let dir = temp_dir("commands");
    let (mut srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut bob = logged_in_client("Bob", addr, &dir);
    let mut ann = logged_in_client("Ann", addr, &dir);
    call(&mut ann, &mut bob);

    ann.send("/help");
    ann.expect("/quit  ends the chat, logs out and exits");
    ann.send("/bakc");
    ann.expect("error: unknown command '/bakc' (not sent)");
    ann.send("//x");
    ann.send("plain");
    assert!(bob.expect(": /x").ends_with("] Ann: /x"));
    bob.expect("] Ann: plain");
    ann.send("/quit");
    ann.expect("Chat with Bob ended: you left the chat.");
    ann.expect("Logged out.");
    assert!(ann.wait_exit(Duration::from_secs(10)).success());
    srv.expect("[Ann] logged out");
    bob.expect("Chat with Ann ended: Ann left the chat.");

    let received: Vec<String> = history(&dir, "Bob")
        .into_iter()
        .filter(|(d, _, _)| d == "received")
        .map(|(_, _, text)| text)
        .collect();
    assert_eq!(received, ["/x", "plain"], "Bob's history");
    let sent: Vec<String> = history(&dir, "Ann")
        .into_iter()
        .filter(|(d, _, _)| d == "sent")
        .map(|(_, _, text)| text)
        .collect();
    assert_eq!(sent, ["/x", "plain"], "Ann's history");
    bob.send("3");
    assert!(bob.wait_exit(Duration::from_secs(10)).success());
}
