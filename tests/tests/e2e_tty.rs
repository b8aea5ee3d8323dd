//! End to end on a terminal: the client runs with a pseudo-terminal as its
//! standard input and output, so it edits the line itself. What the user
//! types survives lines printed meanwhile, the terminal is set back as it
//! was however the client ends, and the loop never waits for the terminal:
//! a stopped screen, Ctrl-S or a blocked chat with pasted lines waiting do
//! not keep the client from answering its peer or from ending on a signal.

mod common;
mod tty;

use std::io::Write as _;
use std::process::Command;

use common::{history, logged_in_client, server, temp_dir};
use p2pchat_core::MAX_UNACKED;
use rustix::termios::{QueueSelector, tcflush};
use tty::{EXIT_DEADLINE, TtyClient, chat_pair};

/// Erases the screen line: what the client writes before a line printed
/// over the input line.
const ERASE: &str = "\r\x1b[J";

#[test]
fn ctrl_d_at_the_menu_logs_out_and_restores_the_terminal() {
    let dir = temp_dir("tty-eof");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut ann = TtyClient::spawn("Ann", addr, &dir);
    ann.expect("Enter choice: ");
    ann.assert_raw();
    // Ctrl-D on a typed line does nothing; Ctrl-U clears it, then it ends.
    ann.type_keys("3x\x04\x15\x04");
    let shown = ann.expect("Logged out.");
    assert!(shown.contains(&format!("{ERASE}Enter choice: ")), "{shown:?}");
    assert!(ann.wait_exit().success());
    ann.assert_restored();
}

#[test]
fn a_signal_exit_restores_the_terminal() {
    for sig in ["INT", "TERM", "QUIT", "HUP"] {
        let dir = temp_dir(&format!("tty-sig-{sig}"));
        let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
        let mut ann = TtyClient::spawn("Ann", addr, &dir);
        ann.expect("Enter choice: ");
        ann.type_keys("half");
        ann.expect("half");
        ann.assert_raw();
        ann.signal(sig);
        let status = ann.wait_exit();
        assert!(status.success(), "SIG{sig}: {status:?}");
        ann.assert_restored();
    }
}

#[test]
fn a_message_does_not_cut_the_line_being_typed() {
    let (_dir, _srv, _addr, mut ann, mut bob) = chat_pair("tty-chat");

    ann.type_keys("I am typing half a li");
    ann.expect("half a li");
    bob.send("interrupting you");
    let shown = ann.expect("interrupting you\r\n");
    assert!(shown.starts_with(ERASE), "{shown:?}");
    assert!(shown.contains("Bob: interrupting you"), "{shown:?}");
    ann.expect("I am typing half a li");
    // Backspace (a whole character), then the end of the line.
    ann.type_keys("\u{e9}\x7fne\r");
    ann.expect("ne\r\n");
    bob.expect("Ann: I am typing half a line");

    ann.type_keys("/back\r");
    ann.expect("Enter choice: ");
    ann.type_keys("3\r");
    ann.expect("Logged out.");
    assert!(ann.wait_exit().success());
    ann.assert_restored();
}

/// The names `p2pchat list` prints.
fn listed(server: std::net::SocketAddr) -> Vec<String> {
    let out = Command::new(common::binary())
        .args(["list", "--server", &server.to_string()])
        .output()
        .expect("run p2pchat list");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    text.lines().filter_map(|l| l.split(' ').next()).map(str::to_owned).collect()
}

#[test]
fn ctrl_c_ends_a_blocked_chat_with_pasted_lines_waiting() {
    let (dir, mut srv, addr, mut ann, bob) = chat_pair("tty-blocked");
    // Bob takes nothing more: Ann's texts stay unacknowledged, and after
    // `MAX_UNACKED` of them her chat takes no more (and she no more input).
    bob.signal("STOP");
    // Each pasted line carries escape sequences that the editor swallows,
    // so that one read of the terminal holds fewer lines than the editor
    // reads ahead (16): when the chat blocks, the editor wants more input
    // while the rest of the paste waits in the terminal.
    let blocked_at = MAX_UNACKED + 1;
    let swallowed = "\x1b[A".repeat(200);
    // After the line that blocks, more than one read (8 KiB) but less than
    // a pseudo-terminal holds (12 KiB).
    let paste: String =
        (1..=blocked_at + 16).map(|i| format!("{swallowed}pasted {i:05}\r")).collect();
    let mut keys = ann.keys.try_clone().expect("clone the controller");
    // The paste is larger than the terminal's buffer: written while Ann reads.
    let typist = std::thread::spawn(move || keys.write_all(paste.as_bytes()));
    ann.expect(&format!("pasted {blocked_at:05}"));
    // The chat is blocked now. Carol's chat request is shown only after Ann's
    // loop has slept on the poll since, with the paste still waiting.
    let mut carol = logged_in_client("Carol", addr, &dir);
    carol.send("1");
    carol.send("Ann");
    ann.expect("Carol wants to chat");
    typist.join().expect("typist").expect("paste");
    // Ctrl-C: the terminal throws away its pending input, then signals. (The
    // client's terminal is not its controlling one, so the test does both.)
    tcflush(&ann.tty, QueueSelector::IFlush).expect("tcflush");
    let took = ann.signal_and_wait("INT");
    assert!(took < EXIT_DEADLINE);
    srv.expect("[Ann] logged out");
    assert!(!listed(addr).contains(&"Ann".to_owned()));
    ann.assert_restored();
    bob.signal("CONT");
}

#[test]
fn ctrl_s_and_a_stopped_screen_do_not_stop_the_client() {
    let (_dir, _srv, _addr, mut ann, mut bob) = chat_pair("tty-ctrl-s");
    ann.assert_raw();
    // Ctrl-S is a key like any other: the screen goes on, and so does the chat.
    ann.type_keys("\x13");
    bob.send("after ctrl-s");
    ann.expect("Bob: after ctrl-s");
    ann.type_keys("still here\x11\r");
    bob.expect("Ann: still here");

    // A screen stopped by other means (here the terminal's flow control,
    // as `tcflow` sets it): the client keeps chatting, and what it shows
    // meanwhile comes out when the screen goes on.
    rustix::termios::tcflow(&ann.tty, rustix::termios::Action::OOff).expect("tcflow");
    ann.type_keys("typed while stopped\r");
    bob.expect("Ann: typed while stopped");
    bob.send("while stopped");
    rustix::termios::tcflow(&ann.tty, rustix::termios::Action::OOn).expect("tcflow");
    // In the order it happened: Ann's echo, then Bob's answer.
    ann.expect("typed while stopped");
    ann.expect("Bob: while stopped");

    ann.type_keys("/back\r");
    ann.expect("Enter choice: ");
    ann.type_keys("3\r");
    ann.expect("Logged out.");
    assert!(ann.wait_exit().success());
    ann.assert_restored();
}

#[test]
fn sigterm_ends_a_client_whose_screen_is_not_read() {
    let (dir, mut srv, _addr, mut ann, mut bob) = chat_pair("tty-undrained");
    ann.stop_reading();
    // Far more than the terminal's buffers hold: Ann's screen stalls.
    let texts = 600;
    let pad = "x".repeat(2000);
    for i in 0..texts {
        bob.send(&format!("flood {i:04} {pad}"));
    }
    bob.send("/back");
    // Ann took and acknowledged every text although her screen is stalled.
    bob.expect("Chat with Ann ended");
    let undelivered = bob.seen.iter().filter(|l| l.contains("not delivered")).count();
    assert_eq!(undelivered, 0, "Bob's texts not delivered to Ann");

    let took = ann.signal_and_wait("TERM");
    assert!(took < EXIT_DEADLINE);
    srv.expect("[Ann] logged out");
    ann.assert_restored();
    // The history has every text, whatever the screen could show.
    let received = history(&dir, "Ann").iter().filter(|(d, _, _)| d == "received").count();
    assert_eq!(received, texts);
}
