//! End to end on a terminal, read as a person sees it: the client's output
//! goes through a terminal emulator (`vt100`), and the test looks at the
//! screen it renders, not at the bytes. A line typed over several rows
//! stays whole and shown once while messages arrive and the terminal is
//! resized; each message is shown once, on its own rows.

mod common;
mod tty;

use tty::{TtyClient, chat_pair_sized};

const ROWS: u16 = 16;
const COLS: u16 = 40;
/// The width after the resize.
const NARROW: u16 = 30;

/// An emoji with joiners: one character on screen, five code points.
const FAMILY: &str = "\u{1f469}\u{200d}\u{1f469}\u{200d}\u{1f467}";

/// Feeds the emulator what the client showed since the last call.
fn render(term: &mut vt100::Parser, ann: &TtyClient, fed: &mut usize) {
    term.process(&ann.raw[*fed..]);
    *fed = ann.raw.len();
}

fn rows(term: &vt100::Parser) -> Vec<String> {
    let (_, cols) = term.screen().size();
    term.screen().rows(0, cols).collect()
}

/// Checks the screen: the three messages, once each, on the rows right
/// above the input, which is `typed` once, on the last rows, nowhere else.
fn check_screen(term: &vt100::Parser, typed: &str, messages: &[&str]) {
    let rows = rows(term);
    let dump = rows.join("\n");
    let (_, cols) = term.screen().size();
    // The input's rows: those with a piece of the typed line.
    let typed_piece = |r: &String| ["w0", "w1", "w2", "TAIL"].iter().any(|p| r.contains(p));
    let input: Vec<usize> = (0..rows.len()).filter(|&i| typed_piece(&rows[i])).collect();
    assert!(!input.is_empty(), "no input on the screen:\n{dump}");
    let first = input[0];
    let last = *input.last().expect("not empty");
    assert_eq!(input, (first..=last).collect::<Vec<_>>(), "input rows apart:\n{dump}");
    assert!(rows[last + 1..].iter().all(|r| r.trim().is_empty()), "rows below:\n{dump}");
    let shown: String = rows[first..=last].concat();
    let strip = |s: &str| s.replace(' ', "");
    assert_eq!(strip(&shown), strip(typed), "the typed line:\n{dump}");
    assert!(rows[first..=last].iter().all(|r| r.chars().count() <= usize::from(cols)));
    // The cursor after the typed line.
    let (row, col) = term.screen().cursor_position();
    assert_eq!(usize::from(row), last, "cursor row:\n{dump}");
    assert_eq!(usize::from(col), rows[last].trim_end().chars().count(), "cursor:\n{dump}");
    // Each message once, in order, on its own row right above the input.
    for (i, m) in messages.iter().enumerate() {
        let at: Vec<usize> = (0..rows.len()).filter(|&r| rows[r].contains(m)).collect();
        assert_eq!(at.len(), 1, "{m:?} shown {} times:\n{dump}", at.len());
        assert_eq!(at[0] + messages.len() - i, first, "{m:?} not above the input:\n{dump}");
        assert!(rows[at[0]].starts_with('[') && rows[at[0]].ends_with(m), "{dump}");
    }
}

#[test]
fn a_long_typed_line_survives_messages_and_a_resize() {
    let (_dir, _srv, _addr, mut ann, mut bob) = chat_pair_sized("screen-wrap", COLS, ROWS);
    let mut term = vt100::Parser::new(ROWS, COLS, 0);
    let mut fed = 0;
    ann.expect("/back ends the chat");

    // Two and a half times the width, ending in a word found once.
    let words: String = (0..24).map(|i| format!("w{i:02} ")).collect();
    let typed = format!("{words}TAIL");
    assert_eq!(typed.len(), usize::from(COLS) * 5 / 2);
    ann.type_keys(&typed);
    ann.expect("TAIL");
    let messages = ["Bob: message one", "Bob: message two", "Bob: message three"];
    for m in messages {
        bob.send(m.trim_start_matches("Bob: "));
        ann.expect(m);
        // The input is drawn again below it.
        ann.expect("TAIL");
    }
    render(&mut term, &ann, &mut fed);
    check_screen(&term, &typed, &messages);

    // Narrower: four rows of input.
    term.screen_mut().set_size(ROWS, NARROW);
    ann.resize(NARROW, ROWS);
    ann.expect("TAIL");
    render(&mut term, &ann, &mut fed);
    check_screen(&term, &typed, &messages);

    // An emoji with joiners goes whole with one Backspace; the line is sent.
    ann.type_keys(FAMILY);
    ann.expect(FAMILY);
    ann.type_keys("\x7f");
    ann.expect("TAIL");
    render(&mut term, &ann, &mut fed);
    check_screen(&term, &typed, &messages);
    ann.type_keys("\r");
    let got = bob.expect("Ann: w00");
    assert!(got.ends_with(&format!("Ann: {typed}")), "{got:?}");

    ann.type_keys("/back\r");
    ann.expect("Enter choice: ");
    ann.type_keys("3\r");
    ann.expect("Logged out.");
    assert!(ann.wait_exit().success());
}
