use super::*;

fn line(s: &str) -> InputItem {
    InputItem::Line(s.to_owned())
}

fn commit(s: &str) -> Echo {
    Echo::Commit(s.to_owned())
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

/// The line with `|` at the cursor.
fn shown(ed: &LineEditor) -> String {
    let mut s = ed.line().to_owned();
    s.insert(ed.cursor(), '|');
    s
}

fn after(keys: &[&[u8]]) -> String {
    let mut ed = LineEditor::new();
    let _ = run(&mut ed, keys);
    shown(&ed)
}

const LEFT: &[u8] = b"\x1b[D";
const RIGHT: &[u8] = b"\x1b[C";
const UP: &[u8] = b"\x1b[A";
const DOWN: &[u8] = b"\x1b[B";
const BS: &[u8] = b"\x7f";
const DEL: &[u8] = b"\x1b[3~";
const FAMILY: &str = "\u{1f469}\u{200d}\u{1f469}\u{200d}\u{1f467}";

#[test]
fn enter_finishes_a_line() {
    let (items, echo, rest) = typed(&[b"hi\n", b"yo\r", b"\n", b"a\r\nb\r\rc"]);
    assert_eq!(items, vec![line("hi"), line("yo"), line("a"), line("b"), line("")]);
    assert_eq!(
        echo,
        vec![commit("hi"), commit("yo"), commit("a"), commit("b"), commit(""), Echo::Changed,]
    );
    assert_eq!(rest, "c");
}

#[test]
fn echo_of_one_read_is_coalesced() {
    let (items, echo, rest) = typed(&[b"half a li", b"\x7f\x7fne"]);
    assert!(items.is_empty());
    assert_eq!(echo, vec![Echo::Changed, Echo::Changed]);
    assert_eq!(rest, "half a ne");
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
    let (_, _, rest) = typed(&bytes);
    assert_eq!(rest, "h\u{e9}\u{20ac}\u{1f600}!");
}

#[test]
fn invalid_utf8_and_controls_are_ignored() {
    // A lone continuation byte, a cut character, an overlong `/`, a
    // surrogate, bytes that never start a character, C0 and C1 controls.
    let (items, _, _) =
        typed(&[b"a\x80b\xe2\x82c\xc0\xafd\xed\xa0\x80e\xff\xf8f\x07\x13\x11\xc2\x85g\n"]);
    assert_eq!(items, vec![line("abcdefg")]);
}

#[test]
fn backspace_and_delete_take_a_whole_grapheme() {
    // An emoji with joiners, `e` with a combining accent, a flag.
    let line = format!("a{FAMILY}e\u{301}\u{1f1eb}\u{1f1f7}");
    let keys = line.as_bytes();
    assert_eq!(after(&[keys, BS]), format!("a{FAMILY}e\u{301}|"));
    assert_eq!(after(&[keys, BS, BS]), format!("a{FAMILY}|"));
    assert_eq!(after(&[keys, BS, BS, BS]), "a|");
    assert_eq!(after(&[keys, b"\x01", RIGHT, DEL]), format!("a|e\u{301}\u{1f1eb}\u{1f1f7}"));
    assert_eq!(after(&[keys, LEFT, LEFT, b"\x04"]), format!("a{FAMILY}|\u{1f1eb}\u{1f1f7}"));
    // Nothing to delete: nothing to draw.
    let (_, echo, _) = typed(&[BS, DEL]);
    assert!(echo.is_empty());
}

#[test]
fn the_cursor_moves_by_grapheme_and_keys_go_in_at_it() {
    let word = format!("x{FAMILY}\u{4f60}y");
    let keys = word.as_bytes();
    assert_eq!(after(&[keys, LEFT]), format!("x{FAMILY}\u{4f60}|y"));
    assert_eq!(after(&[keys, LEFT, LEFT, LEFT]), format!("x|{FAMILY}\u{4f60}y"));
    assert_eq!(after(&[keys, b"\x1b[H", RIGHT, RIGHT]), format!("x{FAMILY}|\u{4f60}y"));
    // Past either end: it stays.
    assert_eq!(after(&[keys, b"\x1bOH", LEFT]), format!("|{word}"));
    assert_eq!(after(&[keys, RIGHT]), format!("{word}|"));
    // Home and End in their other spellings, Ctrl-A, Ctrl-E, Ctrl-B, Ctrl-F.
    assert_eq!(after(&[b"abc", b"\x1b[1~", b"\x1b[F"]), "abc|");
    assert_eq!(after(&[b"abc", b"\x1b[7~"]), "|abc");
    assert_eq!(after(&[b"abc", b"\x1b[4~", b"\x01"]), "|abc");
    assert_eq!(after(&[b"abc", b"\x01\x05"]), "abc|");
    assert_eq!(after(&[b"abc", b"\x02\x02\x06"]), "ab|c");
    // Typed in the middle; Enter takes the whole line.
    let (items, _, _) = typed(&[b"helo", LEFT, b"l", b"\x01>\r"]);
    assert_eq!(items, vec![line(">hello")]);
    // A combining mark typed after a letter joins it: the cursor stays after.
    assert_eq!(after(&[b"ab", LEFT, "\u{301}".as_bytes()]), "a\u{301}|b");
    // Movement that changes nothing draws nothing.
    let (_, echo, _) = typed(&[LEFT, b"\x05"]);
    assert!(echo.is_empty());
}

#[test]
fn ctrl_u_ctrl_k_and_ctrl_w_delete_around_the_cursor() {
    assert_eq!(after(&[b"hello world", b"\x15"]), "|");
    assert_eq!(after(&[b"hello world", LEFT, LEFT, b"\x15"]), "|ld");
    assert_eq!(after(&[b"hello world", LEFT, LEFT, b"\x0b"]), "hello wor|");
    let mut ed = LineEditor::new();
    let _ = run(&mut ed, &[b"one two  three  ", b"\x17"]);
    assert_eq!(shown(&ed), "one two  |");
    let _ = run(&mut ed, &[b"\x17"]);
    assert_eq!(ed.line(), "one ");
    let _ = run(&mut ed, &[b"\x17\x17"]);
    assert_eq!(ed.line(), "");
    let (_, echo) = run(&mut ed, &[b"\x17"]);
    assert!(echo.is_empty());
    assert_eq!(after(&[b"one two", LEFT, b"\x17"]), "one |o");
}

#[test]
fn tab_inserts_spaces() {
    assert_eq!(after(&[b"a\tb"]), format!("a{}b|", " ".repeat(TAB_SPACES)));
}

#[test]
fn up_and_down_recall_earlier_lines() {
    let mut ed = LineEditor::new();
    let _ = run(&mut ed, &[b"first\r", b"second\r", b"second\r", b"   \r", b"draft"]);
    let _ = run(&mut ed, &[UP]);
    assert_eq!(shown(&ed), "second|");
    // The same line twice and a blank one are remembered once, not at all.
    let _ = run(&mut ed, &[UP]);
    assert_eq!(shown(&ed), "first|");
    let (_, echo) = run(&mut ed, &[UP]);
    assert_eq!(shown(&ed), "first|");
    assert!(echo.is_empty());
    let _ = run(&mut ed, &[DOWN]);
    assert_eq!(shown(&ed), "second|");
    // Below the newest: the line typed before.
    let _ = run(&mut ed, &[DOWN]);
    assert_eq!(shown(&ed), "draft|");
    let (_, echo) = run(&mut ed, &[DOWN]);
    assert!(echo.is_empty());
    // A recalled line is edited and sent like a typed one.
    let (items, _) = run(&mut ed, &[b"\x15", b"\x10", b"!\r"]);
    assert_eq!(items, vec![line("second!")]);
    let _ = run(&mut ed, &[UP]);
    assert_eq!(ed.line(), "second!");
    // Nothing typed yet: nothing to recall.
    let (_, echo, _) = typed(&[UP, DOWN]);
    assert!(echo.is_empty());
}

#[test]
fn the_history_is_bounded() {
    let mut ed = LineEditor::new();
    for i in 0..MAX_HISTORY + 10 {
        ed.push(format!("line {i}\r").as_bytes());
    }
    for _ in 0..MAX_HISTORY + 10 {
        ed.push(UP);
    }
    assert_eq!(ed.line(), "line 10");
    assert_eq!(ed.history.len(), MAX_HISTORY);
    // By bytes too.
    let mut ed = LineEditor::new();
    let big = "b".repeat(MAX_INPUT_LEN);
    for _ in 0..6 {
        ed.push(big.as_bytes());
        ed.push(b"x\r");
        ed.push(b"\r");
    }
    assert!(ed.history_bytes <= MAX_HISTORY_BYTES);
    assert!(ed.history.len() < 6);
}

#[test]
fn ctrl_d_ends_only_an_empty_line() {
    let mut ed = LineEditor::new();
    let (items, echo) = run(&mut ed, &[b"abc\x04"]);
    assert!(items.is_empty());
    assert_eq!(echo, vec![Echo::Changed]);
    assert!(!ed.ended() && ed.wants_input());
    let (items, echo) = run(&mut ed, &[b"\n\x04more\n"]);
    assert_eq!(items, vec![line("abc"), InputItem::Eof]);
    assert_eq!(echo, vec![commit("abc"), Echo::End]);
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
    let mut ed = LineEditor::new();
    let _ = run(&mut ed, &[b"ab"]);
    let (_, echo) = run(&mut ed, &[b"\x0c"]);
    assert_eq!(echo, vec![Echo::Changed]);
}

#[test]
fn other_escape_sequences_are_swallowed() {
    // F5, a modified arrow (taken as the arrow), Alt+x, ESC ESC [C (an
    // arrow), F1, Insert.
    let (items, _, _) =
        typed(&[b"a\x1b[15~b\x1b[1;5Dc", b"\x1bxd\x1b\x1b[Ce\x1bOP", b"\x1b", b"[", b"2", b"~f\n"]);
    assert_eq!(items, vec![line("acdbef")]);
    // ESC then Enter (or Backspace): the control key still counts.
    let (items, _, _) = typed(&[b"ab\x1b\x7f\x1b\n"]);
    assert_eq!(items, vec![line("a")]);
    // A CSI cut by a control byte: the control byte counts.
    let (items, _, _) = typed(&[b"x\x1b[12\ny\n"]);
    assert_eq!(items, vec![line("x"), line("y")]);
    // An endless sequence is dropped after keys::MAX_ESCAPE_LEN bytes.
    let mut junk = b"\x1b[".to_vec();
    junk.extend(std::iter::repeat_n(b'1', keys::MAX_ESCAPE_LEN + 1));
    junk.extend_from_slice(b"ok\n");
    let (items, _, _) = typed(&[&junk]);
    assert_eq!(items, vec![line("ok")]);
}

#[test]
fn a_long_paste_is_handed_on_whole() {
    // 70,000 characters, far over one message, in terminal-sized reads.
    let paste: String = (0..70_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let mut ed = LineEditor::new();
    let mut chunks: Vec<&[u8]> = paste.as_bytes().chunks(4096).collect();
    chunks.push(b"\r");
    let (items, echo) = run(&mut ed, &chunks);
    assert_eq!(items, vec![line(&paste)]);
    assert!(!echo.contains(&Echo::Bell));
}

#[test]
fn the_line_is_bounded_and_says_what_it_left_out() {
    let mut ed = LineEditor::new();
    let (_, echo) = run(&mut ed, &[&vec![b'a'; MAX_INPUT_LEN - 1]]);
    assert_eq!(echo, vec![Echo::Changed]);
    // A two-byte character does not fit in the last byte; a one-byte one does.
    let (_, echo) = run(&mut ed, &["\u{e9}".as_bytes()]);
    assert_eq!(echo[0], Echo::Bell);
    assert!(matches!(&echo[1], Echo::Notice(n) if n.contains(": 2 more bytes")), "{echo:?}");
    let (_, echo) = run(&mut ed, &[b"bcdefgh"]);
    assert_eq!(echo[..2], [Echo::Bell, Echo::Changed]);
    assert!(matches!(&echo[2], Echo::Notice(n) if n.contains(": 6 more bytes")), "{echo:?}");
    assert_eq!(ed.line().len(), MAX_INPUT_LEN);
    // Lots more: memory and echo stay bounded.
    for _ in 0..100 {
        let (_, echo) = run(&mut ed, &[&[b'z'; 8192]]);
        assert_eq!(echo.len(), 2);
    }
    let (items, _) = run(&mut ed, &[b"\x7fy\n"]);
    let mut want = "a".repeat(MAX_INPUT_LEN - 1);
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
