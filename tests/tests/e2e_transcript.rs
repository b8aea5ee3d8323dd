//! End to end: the transcript reads like a chat's. Your own lines appear as
//! `[HH:MM:SS] you: text`, a chat's start and end are marked with the peer's
//! name, and the history file holds the same times (local, with the UTC
//! offset), the start with your own name, and the end with why.

mod common;

use std::time::Duration;

use common::{call, history_events, logged_in_client, server, temp_dir};

/// The `HH:MM:SS` of a history line's time (`2026-03-01T12:34:56.789+01:00`).
fn clock_of_line(dir: &std::path::Path, name: &str, kind: &str, text: &str) -> String {
    let raw = std::fs::read_to_string(dir.join(format!("{name}.txt"))).expect("history");
    let line = raw
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(kind) && l.ends_with(text))
        .unwrap_or_else(|| panic!("no {kind} line for {text:?} in {raw}"));
    line[11..19].to_owned()
}

#[test]
fn own_lines_banners_and_history_agree() {
    let dir = temp_dir("transcript");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut bob = logged_in_client("Bob", addr, &dir);
    let mut ann = logged_in_client("Ann", addr, &dir);
    let (_, started) = call(&mut ann, &mut bob);
    assert!(started.starts_with('[') && started[9..].starts_with("] Chat with Ann started"));

    ann.send("hello Bob");
    let own = ann.expect("] you: hello Bob");
    assert!(own.starts_with('[') && own.len() == "[12:34:56] you: hello Bob".len(), "{own}");
    let theirs = bob.expect("] Ann: hello Bob");
    ann.send("/back");
    let ended = ann.expect("Chat with Bob ended: you left the chat.");
    assert!(ended.starts_with('[') && ended[9..].starts_with("] Chat with Bob ended"), "{ended}");
    bob.expect("Chat with Ann ended: Ann left the chat.");
    // The files are read once both have exited (a line is on screen a
    // moment before it is in the file).
    for c in [&mut ann, &mut bob] {
        c.send("3");
        assert!(c.wait_exit(Duration::from_secs(10)).success());
    }

    // Screen and file agree to the second.
    assert_eq!(clock_of_line(&dir, "Ann", "sent", "hello Bob"), own[1..9]);
    assert_eq!(clock_of_line(&dir, "Bob", "received", "hello Bob"), theirs[1..9]);
    assert_eq!(clock_of_line(&dir, "Ann", "ended", "you left the chat"), ended[1..9]);
    assert_eq!(
        history_events(&dir, "Ann"),
        [
            ("started".into(), "Bob".into(), "Ann".into()),
            ("sent".into(), "Bob".into(), "hello Bob".into()),
            ("ended".into(), "Bob".into(), "you left the chat".into()),
        ]
    );
    assert_eq!(history_events(&dir, "Bob")[0], ("started".into(), "Ann".into(), "Bob".into()));
}
