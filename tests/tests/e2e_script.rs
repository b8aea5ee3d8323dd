//! End to end: a client driven by a script on stdin, from a pipe and from a
//! regular file. Lines that arrive ahead of the state they need wait for it,
//! and the end of the script finishes the chat, logs out and exits 0.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{client, history, logged_in_client, server, temp_dir};

const SCRIPT: &str = "1\nBob\nhello 1\nhello 2\n/back\n";

fn scripted_chat(
    test: &str,
    stdin: impl FnOnce(&std::path::Path) -> Option<Stdio>,
    bob_waits: bool,
) {
    let dir = temp_dir(test);
    let (mut srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut bob = logged_in_client("Bob", addr, &dir);
    if bob_waits {
        bob.send("2");
        bob.expect("Waiting for a peer");
    }
    let stdin = stdin(&dir);
    let piped = stdin.is_none();
    let mut ann = client("Ann", addr, &dir, stdin);
    if piped {
        for line in SCRIPT.lines() {
            ann.send(line);
        }
        ann.close_stdin();
    }
    if !bob_waits {
        // Bob is at the menu: the request is announced and held until 2.
        let request = bob.expect(": enter 2 (or y) to accept");
        assert!(request.starts_with("Ann wants to chat, fingerprint "), "{request}");
        assert!(request.contains("(new, now pinned)"), "{request}");
        bob.send("2");
    }
    bob.expect("Chat with Ann started");
    assert!(bob.expect(": hello 1").ends_with("] Ann: hello 1"));
    assert!(bob.expect(": hello 2").ends_with("] Ann: hello 2"));
    bob.expect("Chat with Ann ended: Ann left the chat.");
    ann.expect("Chat with Bob ended: you left the chat.");
    ann.expect("Logged out.");
    assert!(ann.wait_exit(Duration::from_secs(10)).success(), "{:?}", ann.seen);
    srv.expect("[Ann] logged out");
    let h = history(&dir, "Ann");
    let sent: Vec<_> = h.iter().map(|(d, p, t)| format!("{d} {p} {t}")).collect();
    assert_eq!(sent, ["sent Bob hello 1", "sent Bob hello 2"]);
    bob.send("3");
    assert!(bob.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn script_from_a_pipe() {
    scripted_chat("pipe", |_| None, true);
}

#[test]
fn script_from_a_regular_file() {
    scripted_chat(
        "file",
        |dir| {
            let path = dir.join("script.txt");
            std::fs::write(&path, SCRIPT).unwrap();
            Some(Stdio::from(std::fs::File::open(&path).unwrap()))
        },
        true,
    );
}

#[test]
fn script_waits_while_the_request_is_held() {
    scripted_chat("held", |_| None, false);
}

#[test]
fn empty_input_logs_in_and_out() {
    let dir = temp_dir("devnull");
    let (mut srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut ann = client("Ann", addr, &dir, Some(Stdio::null()));
    ann.expect("Logged in as Ann.");
    ann.expect("Logged out.");
    assert!(ann.wait_exit(Duration::from_secs(10)).success());
    srv.expect("[Ann] logged out");
}
