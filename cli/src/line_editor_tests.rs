use super::*;

fn line(s: &str) -> InputItem {
    InputItem::Line(s.to_owned())
}

fn ins(s: &str) -> Echo {
    Echo::Insert(s.to_owned())
}

fn redraw(s: &str) -> Echo {
    Echo::Redraw(s.to_owned())
}

/// Pushes `chunks` one by one; returns the finished items and the echo.
fn run(ed: &mut LineEditor, chunks: &[&[u8]]) -> (Vec<InputItem>, Vec<Echo>) {
    let mut echo = Vec::new();
    for c in chunks {
        ed.push(c);
        echo.extend(std::iter::from_fn(|| ed.poll_echo()));
    }
    (std::iter::from_fn(|| ed.pop()).collect(), echo)
}

fn typed(chunks: &[&[u8]]) -> (Vec<InputItem>, Vec<Echo>, String) {
    let mut ed = LineEditor::new();
    let (items, echo) = run(&mut ed, chunks);
    (items, echo, ed.line().to_owned())
}

#[test]
fn enter_finishes_a_line() {
    let (items, echo, rest) = typed(&[b"hi\n", b"yo\r", b"\n", b"a\r\nb\r\rc"]);
    assert_eq!(items, vec![line("hi"), line("yo"), line("a"), line("b"), line("")]);
    assert_eq!(
        echo,
        vec![
            ins("hi"),
            Echo::Commit,
            ins("yo"),
            Echo::Commit,
            ins("a"),
            Echo::Commit,
            ins("b"),
            Echo::Commit,
            Echo::Commit,
            ins("c"),
        ]
    );
    assert_eq!(rest, "c");
}

#[test]
fn echo_of_one_read_is_coalesced() {
    let (items, echo, rest) = typed(&[b"half a li"]);
    assert!(items.is_empty());
    assert_eq!(echo, vec![ins("half a li")]);
    assert_eq!(rest, "half a li");
}

#[test]
fn utf8_split_across_reads() {
    let s = "h\u{e9}\u{20ac}\u{1f600}!".as_bytes();
    // Every way to cut it in two.
    for cut in 0..=s.len() {
        let (items, _, rest) = typed(&[&s[..cut], &s[cut..], b"\n"]);
        assert_eq!(items, vec![line("h\u{e9}\u{20ac}\u{1f600}!")], "cut at {cut}");
        assert_eq!(rest, "");
    }
    // One byte at a time.
    let bytes: Vec<&[u8]> = s.chunks(1).collect();
    let (_, echo, rest) = typed(&bytes);
    assert_eq!(rest, "h\u{e9}\u{20ac}\u{1f600}!");
    assert_eq!(echo, vec![ins("h"), ins("\u{e9}"), ins("\u{20ac}"), ins("\u{1f600}"), ins("!")]);
}

#[test]
fn invalid_utf8_and_controls_are_ignored() {
    // A lone continuation byte, a cut character, an overlong `/`, a
    // surrogate, bytes that never start a character, C0 and C1 controls.
    let (items, _, _) =
        typed(&[b"a\x80b\xe2\x82c\xc0\xafd\xed\xa0\x80e\xff\xf8f\t\x01\x07\xc2\x85g\n"]);
    assert_eq!(items, vec![line("abcdefg")]);
}

#[test]
fn backspace_deletes_one_character() {
    let (items, echo, _) = typed(&[b"ab\xe2\x82\xac", b"\x7f", b"\x08", b"\x7f\x7f\x7fz\n"]);
    assert_eq!(items, vec![line("z")]);
    assert_eq!(
        echo,
        vec![
            ins("ab\u{20ac}"),
            redraw("ab"),
            redraw("a"),
            // Three deletes (the last on an empty line) and an insert, in one
            // read: one redraw.
            redraw("z"),
            Echo::Commit,
        ]
    );
    // Nothing to delete: nothing to draw.
    let (_, echo, _) = typed(&[b"\x7f"]);
    assert!(echo.is_empty());
}

#[test]
fn ctrl_u_clears_and_ctrl_w_deletes_a_word() {
    let (items, echo, _) = typed(&[b"hello world", b"\x15", b"x\n"]);
    assert_eq!(items, vec![line("x")]);
    assert_eq!(echo, vec![ins("hello world"), redraw(""), ins("x"), Echo::Commit]);

    let mut ed = LineEditor::new();
    let (_, echo) = run(&mut ed, &[b"one two  three  ", b"\x17"]);
    assert_eq!(ed.line(), "one two  ");
    assert_eq!(echo.last(), Some(&redraw("one two  ")));
    let _ = run(&mut ed, &[b"\x17"]);
    assert_eq!(ed.line(), "one ");
    let _ = run(&mut ed, &[b"\x17\x17"]);
    assert_eq!(ed.line(), "");
    let (_, echo) = run(&mut ed, &[b"\x17"]);
    assert!(echo.is_empty());
}

#[test]
fn ctrl_d_ends_only_an_empty_line() {
    let mut ed = LineEditor::new();
    let (items, echo) = run(&mut ed, &[b"abc\x04"]);
    assert!(items.is_empty());
    assert_eq!(echo, vec![ins("abc")]);
    assert!(!ed.ended() && ed.wants_input());
    let (items, echo) = run(&mut ed, &[b"\n\x04more\n"]);
    assert_eq!(items, vec![line("abc"), InputItem::Eof]);
    assert_eq!(echo, vec![Echo::Commit, Echo::End]);
    assert!(ed.ended() && !ed.wants_input());
    // Nothing after the end.
    let (items, echo) = run(&mut ed, &[b"x\n"]);
    assert!(items.is_empty() && echo.is_empty());
    ed.push_eof();
    assert_eq!(ed.pop(), None);
}

#[test]
fn end_of_file_drops_an_unfinished_line() {
    let mut ed = LineEditor::new();
    ed.push(b"a\nhalf");
    ed.push_eof();
    assert_eq!(
        std::iter::from_fn(|| ed.pop()).collect::<Vec<_>>(),
        vec![line("a"), InputItem::Eof]
    );
    assert_eq!(ed.line(), "");
}

#[test]
fn ctrl_l_redraws() {
    let (_, echo, _) = typed(&[b"ab", b"\x0c"]);
    assert_eq!(echo, vec![ins("ab"), redraw("ab")]);
}

#[test]
fn escape_sequences_are_swallowed() {
    // Arrows (CSI and SS3), Delete, F5, a modified arrow, Alt+x, ESC ESC [A.
    let (items, echo, _) = typed(&[
        b"a\x1b[A\x1b[B\x1bOC\x1b[3~b",
        b"\x1b[15~\x1b[1;5D\x1bxc\x1b\x1b[Ad",
        b"\x1b",
        b"[",
        b"2",
        b"~e\n",
    ]);
    assert_eq!(items, vec![line("abcde")]);
    assert!(
        echo.iter().all(|e| !matches!(e, Echo::Insert(s) | Echo::Redraw(s) if s.contains('[')))
    );
    // ESC then Enter (or Backspace): the control key still counts.
    let (items, _, _) = typed(&[b"ab\x1b\x7f\x1b\n"]);
    assert_eq!(items, vec![line("a")]);
    // A CSI cut by a control byte: the control byte counts.
    let (items, _, _) = typed(&[b"x\x1b[12\ny\n"]);
    assert_eq!(items, vec![line("x"), line("y")]);
    // An endless sequence is dropped after MAX_ESCAPE_LEN bytes.
    let mut junk = b"\x1b[".to_vec();
    junk.extend(std::iter::repeat_n(b'1', MAX_ESCAPE_LEN + 1));
    junk.extend_from_slice(b"ok\n");
    let (items, _, _) = typed(&[&junk]);
    assert_eq!(items, vec![line("ok")]);
}

#[test]
fn the_line_is_bounded() {
    let mut ed = LineEditor::new();
    let (_, echo) = run(&mut ed, &[&[b'a'; MAX_LINE_LEN - 1]]);
    assert_eq!(echo.len(), 1);
    // A two-byte character does not fit in the last byte; a one-byte one does.
    let (_, echo) = run(&mut ed, &["\u{e9}".as_bytes()]);
    assert_eq!(echo, vec![Echo::Bell]);
    let (_, echo) = run(&mut ed, &[b"bcdefgh"]);
    assert_eq!(echo, vec![ins("b"), Echo::Bell]);
    assert_eq!(ed.line().len(), MAX_LINE_LEN);
    // Lots more: memory and echo stay bounded.
    for _ in 0..100 {
        let (_, echo) = run(&mut ed, &[&[b'z'; 8192]]);
        assert_eq!(echo, vec![Echo::Bell]);
    }
    let (items, _) = run(&mut ed, &[b"\x7fy\n"]);
    let mut want = "a".repeat(MAX_LINE_LEN - 1);
    want.push('y');
    assert_eq!(items, vec![line(&want)]);
}

#[test]
fn typed_ahead_lines_are_bounded() {
    let mut ed = LineEditor::new();
    for i in 0..MAX_TYPED_AHEAD {
        assert!(ed.wants_input(), "{i} lines waiting");
        ed.push(b"x\n");
    }
    assert!(!ed.wants_input());
    assert_eq!(ed.pop(), Some(line("x")));
    assert!(ed.wants_input());
}

#[test]
fn backspaces_in_one_read_keep_one_copy_of_the_line() {
    let mut ed = LineEditor::new();
    ed.push(&[b'q'; MAX_LINE_LEN]);
    ed.push(&[DELETE; 4000]);
    let echo: Vec<Echo> = std::iter::from_fn(|| ed.poll_echo()).collect();
    assert_eq!(echo, vec![Echo::Redraw("q".repeat(MAX_LINE_LEN - 4000))]);
}
