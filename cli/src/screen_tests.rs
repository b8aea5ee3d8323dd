use p2pchat_transport_mio::{InputDecoder as _, InputItem};

use super::*;

const E: &str = ERASE;

fn screen() -> Screen {
    Screen::default()
}

#[test]
fn a_line_printed_mid_typing_keeps_the_input_below() {
    let mut s = screen();
    assert_eq!(s.keys(b"I am typing half a li"), format!("{E}I am typing half a li"));
    assert_eq!(
        s.line("[01:53:16] John: interrupting you"),
        format!("{E}[01:53:16] John: interrupting you\nI am typing half a li")
    );
    assert_eq!(s.keys(b"ne\n"), format!("{E}I am typing half a line\n"));
    assert_eq!(s.keys.pop(), Some(InputItem::Line("I am typing half a line".to_owned())));
    // Nothing typed, no prompt: the line only.
    assert_eq!(s.line("next"), format!("{E}next\n"));
}

#[test]
fn the_prompt_is_redrawn_with_the_input() {
    let mut s = screen();
    assert_eq!(s.prompt("Enter choice:"), format!("{E}Enter choice: "));
    assert_eq!(s.prompt("Enter choice:"), "");
    assert_eq!(s.keys(b"4"), format!("{E}Enter choice: 4"));
    assert_eq!(s.line("Bob wants to chat"), format!("{E}Bob wants to chat\nEnter choice: 4"));
    // The app shows its prompt again after such a line: already there.
    assert_eq!(s.prompt("Enter choice:"), "");
    assert_eq!(s.keys(b"\x7f2"), format!("{E}Enter choice: 2"));
    // Enter: the line stays as shown, the prompt is closed.
    assert_eq!(s.keys(b"\r"), format!("{E}Enter choice: 2\n"));
    assert_eq!(s.line("Chat started"), format!("{E}Chat started\n"));
    // Typed ahead before the next prompt: it joins the prompt.
    let _ = s.keys(b"Bo");
    assert_eq!(s.prompt("Peer username:"), format!("{E}Peer username: Bo"));
    assert_eq!(s.keys(b"\x15"), format!("{E}Peer username: "));
}

#[test]
fn end_of_input_keeps_the_prompt_line() {
    let mut s = screen();
    let _ = s.prompt("Enter choice:");
    assert_eq!(s.keys(b"\x04"), "\n");
    assert_eq!(s.keys.pop(), Some(InputItem::Eof));
    assert_eq!(s.line("Logged out."), format!("{E}Logged out.\n"));
    assert_eq!(s.clear(), "");
    // In a chat (no prompt), nothing to keep.
    let mut s = screen();
    assert_eq!(s.keys(b"\x04"), "");
}

#[test]
fn exit_erases_the_input_line() {
    let mut s = screen();
    let _ = s.prompt("Enter choice:");
    assert_eq!(s.line("Logged out."), format!("{E}Logged out.\nEnter choice: "));
    assert_eq!(s.clear(), E);
    let mut s = screen();
    let _ = s.keys(b"unsent");
    assert_eq!(s.clear(), E);
}

#[test]
fn a_prompt_answered_ahead_goes_when_the_answer_is_taken() {
    let mut s = screen();
    let _ = s.prompt("Enter choice:");
    // `1`, Enter, `Bob`, Enter and `hi` in one read.
    assert_eq!(s.keys(b"1\nBob\nhi"), format!("{E}Enter choice: 1\n{E}Bob\n{E}hi"));
    assert_eq!(s.keys.pop(), Some(InputItem::Line("1".to_owned())));
    assert_eq!(s.taken(), "");
    assert_eq!(s.prompt("Peer username:"), format!("{E}Peer username: hi"));
    assert_eq!(s.keys.pop(), Some(InputItem::Line("Bob".to_owned())));
    assert_eq!(s.taken(), format!("{E}hi"));
    assert_eq!(s.line("Connecting to Bob..."), format!("{E}Connecting to Bob...\nhi"));
}

#[test]
fn a_wrapped_input_is_erased_from_its_first_row() {
    let mut s = Screen::new(10, 24);
    let _ = s.prompt(">");
    // `> ` and 25 letters: rows of 10, 10 and 7, the cursor on the third.
    let typed = "abcdefghijklmnopqrstuvwxy";
    assert_eq!(s.keys(typed.as_bytes()), format!("{E}> abcdefgh\r\nijklmnopqr\r\nstuvwxy"));
    assert_eq!(s.line("msg"), format!("\x1b[2A{E}msg\n> abcdefgh\r\nijklmnopqr\r\nstuvwxy"));
    // Home: the cursor goes up to the first row, after the prompt.
    let home = s.keys(b"\x01");
    assert!(home.ends_with("stuvwxy\x1b[2A\r\x1b[2C"), "{home:?}");
    // From the first row, nothing to go up.
    assert!(s.line("msg").starts_with(&format!("{E}msg\n")));
    // Ctrl-K clears it all: one row left, erased from the top.
    let _ = s.keys(b"\x05");
    assert_eq!(s.keys(b"\x01\x0b"), format!("\x1b[2A{E}> "));
    assert_eq!(s.clear(), E);
}

#[test]
fn a_resize_repaints_the_screen_for_the_new_width() {
    const CLS: &str = "\x1b[H\x1b[2J";
    let mut s = Screen::new(10, 24);
    let _ = s.keys(b"abcdefghijklmnopqrstuvwxy");
    assert_eq!(s.resize(20, 24), format!("{CLS}abcdefghijklmnopqrst\r\nuvwxy"));
    // Lines printed meanwhile are repainted above it, as many as fit.
    let _ = s.line("one");
    let _ = s.line("a line of twenty-five chars");
    let _ = s.keys(b"\r");
    let _ = s.keys(b"typed");
    // 4 rows: the input's, the committed line's two, and one left for the
    // line of 27 (two rows wide): it is left out, and so is `one` before it.
    assert_eq!(s.resize(20, 4), format!("{CLS}abcdefghijklmnopqrstuvwxy\ntyped"));
    assert_eq!(
        s.resize(20, 5),
        format!("{CLS}a line of twenty-five chars\nabcdefghijklmnopqrstuvwxy\ntyped")
    );
    // Nothing typed, no prompt: nothing to draw.
    let mut s = Screen::new(10, 24);
    let _ = s.line("one");
    assert_eq!(s.resize(20, 24), "");
}

#[test]
fn an_input_taller_than_the_screen_shows_the_rows_around_the_cursor() {
    // Four rows: three for the input.
    let mut s = Screen::new(4, 4);
    let echo = s.keys(b"aaaabbbbccccddddee");
    assert_eq!(echo, format!("{E}cccc\r\ndddd\r\nee"));
    let home = s.keys(b"\x01");
    assert_eq!(home, format!("\x1b[2A{E}aaaa\r\nbbbb\r\ncccc\x1b[2A\r"));
    // Enter: the line as it stands, from the rows around its end.
    let commit = s.keys(b"\r");
    assert_eq!(commit, format!("{E}cccc\r\ndddd\r\nee\n"));
}

#[test]
fn a_full_line_rings_the_bell_and_says_so() {
    let mut s = screen();
    // A line of 1 MiB draws what the screen shows of it, no more.
    let echo = s.keys(&vec![b'a'; crate::line_editor::MAX_INPUT_LEN]);
    assert!(echo.len() < usize::from(DEFAULT_COLS * DEFAULT_ROWS) + 100, "{}", echo.len());
    let out = s.keys(b"bc");
    assert!(out.starts_with('\x07'), "{out:?}");
    assert!(out.contains("2 more bytes typed or pasted were left out]\n"), "{out:?}");
}
