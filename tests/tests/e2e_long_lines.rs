//! End to end on a terminal: a line far longer than one chat message
//! (README: "A line may be far longer than one message") is pasted in a
//! chat, goes as several messages, each at most `MAX_TEXT_LEN` bytes and
//! cut between characters the user sees, and arrives whole: the peer's
//! received texts, joined, are the line. The sender's screen says it was
//! sent as several messages.

mod common;
mod tty;

use std::io::Write as _;

use common::history;
use p2pchat_core::MAX_TEXT_LEN;
use tty::chat_pair;

/// The pasted line's length in characters.
const CHARS: usize = 70_000;

/// A line of `CHARS` characters of 1 to 3 bytes in UTF-8, in an irregular
/// pattern so that the cuts fall at every kind of place, with decomposed
/// accented letters (`e` and a combining acute accent: one character the
/// user sees, two code points) that a cut must not tear. The first one
/// straddles the end of a full first message: a cut between characters
/// rather than between what the user sees would fall inside it.
fn long_line() -> String {
    let parts = ["a", "b", "\u{e9}", "\u{540d}", "e\u{301}", "ab", "\u{540d}\u{540d}"];
    let mut line = "ab".repeat(MAX_TEXT_LEN / 2);
    line.insert_str(MAX_TEXT_LEN - 1, "e\u{301}");
    let mut i = 0usize;
    while line.chars().count() < CHARS {
        line.push_str(parts[(i * i + i / 3) % parts.len()]);
        i += 1;
    }
    let cut = line.char_indices().nth(CHARS).map_or(line.len(), |(at, _)| at);
    line.truncate(cut);
    line
}

#[test]
fn a_pasted_line_longer_than_a_message_arrives_whole_in_several() {
    let (dir, _srv, _addr, mut ann, mut bob) = chat_pair("long-line");
    let line = long_line();
    assert_eq!(line.chars().count(), CHARS);
    assert!(line.len() > 2 * MAX_TEXT_LEN, "{} bytes", line.len());

    // Pasted: far more than the terminal's buffer holds, written while Ann
    // reads it.
    let mut keys = ann.keys.try_clone().expect("clone the controller");
    let paste = format!("{line}\r");
    let typist = std::thread::spawn(move || keys.write_all(paste.as_bytes()));
    let shown = ann.expect(&format!(" messages of at most {MAX_TEXT_LEN} bytes)"));
    typist.join().expect("typist").expect("paste");
    let said = &shown[shown.rfind("(a long line: sent as ").expect("the long line's note")..];
    let count: usize = said["(a long line: sent as ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {said:?}"));
    assert!(count >= line.len().div_ceil(MAX_TEXT_LEN), "{said}");
    eprintln!("a line of {CHARS} characters, {} bytes: {said}", line.len());

    // Bob shows each message as it arrives; then a short line after them.
    for _ in 0..count {
        bob.expect("] Ann: ");
    }
    ann.type_keys("after the long one\r");
    bob.expect("] Ann: after the long one");
    // Once the chat's end is shown, every text before it is in the history
    // (each is recorded right after it is shown).
    bob.send("/back");
    bob.expect("Chat with Ann ended: you left the chat.");

    let received: Vec<String> = history(&dir, "Bob")
        .into_iter()
        .filter(|(kind, peer, _)| kind == "received" && peer == "Ann")
        .map(|(_, _, text)| text)
        .collect();
    let (last, pieces) = received.split_last().expect("Bob received texts");
    assert_eq!(last, "after the long one");
    assert_eq!(pieces.len(), count, "Ann said {said:?}");
    for piece in pieces {
        assert!(piece.len() <= MAX_TEXT_LEN, "a message of {} bytes", piece.len());
        // No accent torn from its letter.
        assert!(!piece.starts_with('\u{301}'), "a piece starts with a lone accent");
    }
    let joined = pieces.concat();
    assert!(joined == line, "the pieces joined ({} bytes) are not the line sent", joined.len());
    // Ann's own history has the same pieces sent.
    let sent: Vec<String> = history(&dir, "Ann")
        .into_iter()
        .filter(|(kind, _, _)| kind == "sent")
        .map(|(_, _, text)| text)
        .collect();
    assert_eq!(sent.len(), count + 1);
    assert!(sent[..count].concat() == line, "Ann's history differs from the line");
}
