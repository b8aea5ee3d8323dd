//! End to end on a terminal: a line belongs to the state it was typed in.
//! A chat reply finished with Enter after the peer left is not a menu
//! choice (the accidental logout), and Ctrl-D while waiting for a chat
//! returns to a menu whose keyboard still works.

mod common;

mod tty;

use common::{logged_in_client, server, temp_dir};
use tty::{TtyClient, chat_pair};

#[test]
fn a_reply_finished_after_the_peer_left_does_not_log_out() {
    let (_dir, _srv, _addr, mut ann, mut bob) = chat_pair("tty-scope-reply");

    // Past the banner (its fingerprint has digits), nothing more is shown
    // until Ann types.
    ann.expect("/help lists the commands.\r\n");
    // Ann starts a reply, `3`; Bob leaves before she presses Enter.
    ann.type_keys("3");
    ann.expect("3");
    bob.send("/back");
    ann.expect("Chat with Bob ended: Bob left the chat.");
    ann.expect("Enter choice: ");
    ann.type_keys("\r");
    ann.expect("Not sent: the chat with Bob ended before you pressed Enter: 3");
    ann.expect("Enter choice: ");
    // Still logged in, and the menu takes choices typed at it.
    ann.type_keys("4\r");
    ann.expect("-----[ONLINE USERS]-----");
    ann.expect("| Bob : ");
    ann.expect("Enter choice: ");
    ann.type_keys("3\r");
    ann.expect("Logged out.");
    assert!(ann.wait_exit().success());
    bob.send("3");
}

#[test]
fn ctrl_d_while_waiting_returns_to_a_working_menu() {
    let dir = temp_dir("tty-scope-eof");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut ann = TtyClient::spawn("Ann", addr, &dir);
    ann.expect("Enter choice: ");
    ann.type_keys("2\r");
    ann.expect("Waiting for a peer");
    ann.type_keys("\x04");
    ann.expect("Stopped waiting.");
    ann.expect("Enter choice: ");
    ann.assert_raw();
    // The keyboard works: wait again, take a chat, leave it with /back.
    ann.type_keys("2\r");
    ann.expect("Waiting for a peer");
    let mut bob = logged_in_client("Bob", addr, &dir);
    bob.send("1");
    bob.send("Ann");
    bob.expect("Chat with Ann started");
    ann.expect("Chat with Bob started");
    ann.type_keys("still here\r");
    bob.expect("Ann: still here");
    ann.type_keys("/back\r");
    bob.expect("Chat with Ann ended: Ann left the chat.");
    ann.expect("Enter choice: ");
    // Ctrl-D at the menu still ends the input.
    ann.type_keys("\x04");
    ann.expect("Logged out.");
    assert!(ann.wait_exit().success());
    bob.send("3");
}
