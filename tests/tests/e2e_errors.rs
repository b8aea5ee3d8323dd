//! End to end: each user error is one clear line, never a crash.

mod common;

use std::time::Duration;

use common::{client, logged_in_client, server, temp_dir};

#[test]
fn name_taken_with_flag_exits_1() {
    let dir = temp_dir("taken");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let _ann = logged_in_client("Ann", addr, &dir);
    let mut again = client("ann", addr, &dir, None);
    again.expect("error: cannot log in as 'ann': the name is taken");
    assert_eq!(again.wait_exit(Duration::from_secs(5)).code(), Some(1));
}

#[test]
fn name_prompt_asks_again() {
    let dir = temp_dir("prompt");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let _ann = logged_in_client("Ann", addr, &dir);
    let server = addr.to_string();
    let args = ["client", "--server", &server, "--listen", "127.0.0.1:0", "--history", "h.txt"];
    let mut c = common::Proc::spawn("prompted", &args, None, &dir);
    c.expect("Enter your username:");
    c.send("two words");
    c.expect("error: invalid name: the name holds a control character or white space");
    c.expect("Enter your username:");
    c.send("ANN");
    c.expect("error: cannot log in as 'ANN': the name is taken");
    c.expect("Enter your username:");
    c.send("Cid");
    c.expect("Logged in as Cid.");
    c.expect("Enter choice:");
    c.send("3");
    assert!(c.wait_exit(Duration::from_secs(5)).success());
}

#[test]
fn unknown_unreachable_and_oversize() {
    let dir = temp_dir("errors");
    let (mut srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut ann = logged_in_client("Ann", addr, &dir);
    // Unknown peer.
    ann.send("1");
    ann.send("Nobody");
    ann.expect("error: no user named 'Nobody' is online");
    ann.expect("Enter choice:");
    // A bad menu choice.
    ann.send("7");
    ann.expect("error: unknown choice '7': enter 1, 2, 3 or 4");
    // A listed peer that does not take chats: killed, still listed.
    let mut bob = logged_in_client("Bob", addr, &dir);
    bob.signal("KILL");
    bob.wait_exit(Duration::from_secs(5));
    ann.send("1");
    ann.send("Bob");
    let line = ann.expect("error: could not connect to Bob");
    assert!(line.to_lowercase().contains("refused"), "{line}");
    ann.expect("Enter choice:");
    // A message over the size limit, in a chat.
    let mut cid = logged_in_client("Cid", addr, &dir);
    cid.send("2");
    cid.expect("Waiting for a peer");
    ann.send("1");
    ann.send("Cid");
    ann.expect("Chat with Cid started");
    cid.expect("Chat with Ann started");
    ann.send(&"x".repeat(5000));
    ann.expect("error: line longer than 4096 bytes ignored");
    ann.send("still here");
    assert!(cid.expect(": still here").ends_with("] Ann: still here"));
    // The peer leaving abruptly is one line too.
    cid.signal("KILL");
    cid.wait_exit(Duration::from_secs(5));
    ann.expect("Chat with Cid ended: the connection to Cid was lost.");
    ann.expect("Enter choice:");
    ann.send("3");
    assert!(ann.wait_exit(Duration::from_secs(5)).success());
    srv.expect("[Ann] logged out");
}
