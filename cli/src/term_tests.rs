use super::*;

const E: &str = ERASE_LINE;

fn screen() -> Screen {
    Screen::default()
}

#[test]
fn a_line_printed_mid_typing_keeps_the_input_below() {
    let mut s = screen();
    assert_eq!(s.keys(b"I am typing half a li"), "I am typing half a li");
    assert_eq!(
        s.line("[01:53:16] John: interrupting you"),
        format!("{E}[01:53:16] John: interrupting you\n{E}I am typing half a li")
    );
    assert_eq!(s.keys(b"ne\n"), "ne\n");
    assert_eq!(s.keys.pop(), Some(InputItem::Line("I am typing half a line".to_owned())));
    // Nothing typed, no prompt: the line only.
    assert_eq!(s.line("next"), format!("{E}next\n"));
}

#[test]
fn the_prompt_is_redrawn_with_the_input() {
    let mut s = screen();
    assert_eq!(s.prompt("Enter choice:"), format!("{E}Enter choice: "));
    assert_eq!(s.prompt("Enter choice:"), "");
    assert_eq!(s.keys(b"4"), "4");
    assert_eq!(s.line("Bob wants to chat"), format!("{E}Bob wants to chat\n{E}Enter choice: 4"));
    // The app shows its prompt again after such a line: already there.
    assert_eq!(s.prompt("Enter choice:"), "");
    assert_eq!(s.keys(b"\x7f2"), format!("{E}Enter choice: 2"));
    // Enter: the line stays as shown, the prompt is closed.
    assert_eq!(s.keys(b"\r"), "\n");
    assert_eq!(s.line("Chat started"), format!("{E}Chat started\n"));
    // Typed ahead before the next prompt: it joins the prompt.
    assert_eq!(s.keys(b"Bo"), "Bo");
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
    assert_eq!(s.line("Logged out."), format!("{E}Logged out.\n{E}Enter choice: "));
    assert_eq!(s.clear(), E);
    let mut s = screen();
    let _ = s.keys(b"unsent");
    assert_eq!(s.clear(), E);
}

#[test]
fn a_full_line_rings_the_bell() {
    let mut s = screen();
    let _ = s.keys(&vec![b'a'; p2pchat_transport_mio::MAX_LINE_LEN]);
    assert_eq!(s.keys(b"bc"), "\x07");
}

#[test]
fn a_prompt_answered_ahead_goes_when_the_answer_is_taken() {
    let mut s = screen();
    let _ = s.prompt("Enter choice:");
    // `1`, Enter, `Bob`, Enter and `hi` in one read.
    assert_eq!(s.keys(b"1\nBob\nhi"), "1\nBob\nhi");
    assert_eq!(s.keys.pop(), Some(InputItem::Line("1".to_owned())));
    assert_eq!(s.taken(), "");
    assert_eq!(s.prompt("Peer username:"), format!("{E}Peer username: hi"));
    assert_eq!(s.keys.pop(), Some(InputItem::Line("Bob".to_owned())));
    assert_eq!(s.taken(), format!("{E}hi"));
    assert_eq!(s.line("Connecting to Bob..."), format!("{E}Connecting to Bob...\n{E}hi"));
}

#[test]
fn output_left_out_is_told_once_the_screen_catches_up() {
    use std::io::Read;
    use std::time::Duration;
    let (mut screen, ours) = std::os::unix::net::UnixStream::pair().unwrap();
    let out = UserOutput::from_file(std::fs::File::from(std::os::fd::OwnedFd::from(ours)));
    let lines = LineSplitter::new();
    let mode = Mode::Lines { interactive: false, prompt_open: false, lines };
    let mut term = Term { mode, out, left_out: 0 };
    // Nobody reads the screen: the lines wait, up to the bound.
    let text = "y".repeat(1000);
    let mut queued = 0;
    while term.left_out == 0 {
        term.line(&text);
        queued += 1;
    }
    queued -= 1;
    assert!(term.output().pending() <= MAX_PENDING_OUTPUT);
    term.line(&text);
    assert_eq!(term.left_out, 2);
    // The screen catches up; the next line is preceded by the note.
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        screen.read_to_string(&mut all).unwrap();
        all
    });
    term.output().drain(Instant::now() + Duration::from_secs(10));
    assert_eq!(term.output().pending(), 0);
    term.line("after");
    assert_eq!(term.left_out, 0);
    drop(term);
    let all = reader.join().unwrap();
    let shown: Vec<&str> = all.lines().collect();
    assert_eq!(shown.len(), queued + 2);
    assert!(shown[..queued].iter().all(|l| *l == text));
    assert!(shown[queued].starts_with("[2 screen updates were not shown"), "{}", shown[queued]);
    assert_eq!(shown[queued + 1], "after");
}
