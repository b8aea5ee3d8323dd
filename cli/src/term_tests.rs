use super::*;

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
