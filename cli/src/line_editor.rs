//! A line editor for a terminal in non-canonical, no-echo mode, as a pure
//! state machine: keys in, finished lines and what to draw out. It does no
//! I/O; [`crate::term::Term`] feeds it what standard input reads and draws
//! its [`Echo`]es.
//!
//! Keys: printable characters (UTF-8, possibly split across reads) are added
//! at the end of the line; Enter (`\r` or `\n`, `\r\n` counting once)
//! finishes it; Backspace (`0x7f` or `0x08`) deletes the last character;
//! Ctrl-U clears the line; Ctrl-W deletes the last word; Ctrl-D on an empty
//! line ends the input (and is ignored otherwise); Ctrl-L redraws the line.
//! Escape sequences (arrow keys, function keys, Alt+key) are swallowed; other
//! control bytes and invalid UTF-8 are ignored. A line holds at most
//! [`MAX_LINE_LEN`] bytes: characters beyond are refused with a bell.
//!
//! The cursor is always at the end of the line. A line is only ever taken
//! with Enter: a half-typed line is dropped when the input ends.

use std::collections::VecDeque;

use p2pchat_transport_mio::{InputDecoder, InputItem, MAX_LINE_LEN};

/// Most finished lines kept waiting for the application. While fewer wait,
/// the editor asks for more input, so that what the user types ahead is
/// shown at once; past that the terminal's own buffer holds the rest.
pub const MAX_TYPED_AHEAD: usize = 16;

/// Longest escape sequence swallowed, in bytes after `ESC [`; a longer one
/// is dropped as garbage and what follows is read as keys again.
pub const MAX_ESCAPE_LEN: usize = 32;

const BACKSPACE: u8 = 0x08;
const CTRL_D: u8 = 0x04;
const CTRL_L: u8 = 0x0c;
const CTRL_U: u8 = 0x15;
const CTRL_W: u8 = 0x17;
const ESC: u8 = 0x1b;
const DELETE: u8 = 0x7f;

/// What to draw after keys were pushed, in order. The input line is the
/// current prompt followed by [`LineEditor::line`], with the cursor at its
/// end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Echo {
    /// Characters added at the end of the line: print them.
    Insert(String),
    /// The line is now this text: redraw the input line whole.
    Redraw(String),
    /// Enter: the finished line stays on screen as shown; move to a new line,
    /// where the next input line starts (without a prompt).
    Commit,
    /// The input ended (Ctrl-D on an empty line): the input line, empty but
    /// for its prompt, stays as shown; nothing more is typed.
    End,
    /// A key was refused (the line is full): ring the bell.
    Bell,
}

/// Where the editor is in an escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// Not in one.
    None,
    /// After `ESC`.
    Started,
    /// After `ESC [`, with this many bytes since.
    Csi(usize),
    /// After `ESC O`: one more byte.
    Ss3,
}

/// The line editor. See the module documentation.
#[derive(Debug)]
pub struct LineEditor {
    line: String,
    /// The bytes of a character not complete yet.
    utf8: Vec<u8>,
    /// How many bytes the character in `utf8` has in all.
    utf8_len: usize,
    escape: Escape,
    /// The last key was `\r`: a `\n` right after it is the same Enter.
    after_cr: bool,
    items: VecDeque<InputItem>,
    echo: VecDeque<Echo>,
    ended: bool,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    /// An empty line.
    pub fn new() -> Self {
        Self {
            line: String::new(),
            utf8: Vec::with_capacity(4),
            utf8_len: 0,
            escape: Escape::None,
            after_cr: false,
            items: VecDeque::new(),
            echo: VecDeque::new(),
            ended: false,
        }
    }

    /// What is typed so far of the current line.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The next thing to draw, in order. Drain after every push: the queue
    /// holds at most a few entries per finished line.
    #[must_use]
    pub fn poll_echo(&mut self) -> Option<Echo> {
        self.echo.pop_front()
    }

    /// Feeds keys, as read from the terminal.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.ended {
                return;
            }
            self.key_byte(b);
        }
    }

    /// The terminal is gone (end of file, read error): the input ends, and
    /// a line not finished with Enter is dropped.
    pub fn push_eof(&mut self) {
        if !self.ended {
            self.end();
        }
    }

    fn key_byte(&mut self, b: u8) {
        let after_cr = std::mem::replace(&mut self.after_cr, false);
        if self.escape != Escape::None && self.escape_byte(b) {
            return;
        }
        if self.utf8_len > 0 {
            if b & 0xc0 == 0x80 {
                self.utf8.push(b);
                if self.utf8.len() == self.utf8_len {
                    self.utf8_len = 0;
                    // Overlong forms and surrogates are refused here.
                    let c = std::str::from_utf8(&self.utf8).ok().and_then(|s| s.chars().next());
                    self.utf8.clear();
                    if let Some(c) = c {
                        self.insert(c);
                    }
                }
                return;
            }
            // Not a continuation byte: the character was cut; drop it and
            // read this byte afresh.
            self.utf8.clear();
            self.utf8_len = 0;
        }
        match b {
            b'\r' => {
                self.after_cr = true;
                self.enter();
            }
            b'\n' if after_cr => {}
            b'\n' => self.enter(),
            DELETE | BACKSPACE => {
                let kept = self.line.char_indices().next_back().map_or(0, |(i, _)| i);
                self.truncate(kept);
            }
            CTRL_U => self.truncate(0),
            CTRL_W => {
                let word = self.line.trim_end().trim_end_matches(|c: char| !c.is_whitespace());
                self.truncate(word.len());
            }
            CTRL_D if self.line.is_empty() => self.end(),
            CTRL_L => self.redraw(),
            ESC => self.escape = Escape::Started,
            0x20..=0x7e => self.insert(char::from(b)),
            0xc2..=0xdf => self.start_char(b, 2),
            0xe0..=0xef => self.start_char(b, 3),
            0xf0..=0xf4 => self.start_char(b, 4),
            // Other control bytes (Tab, Ctrl-A, ...) and bytes that cannot
            // start a UTF-8 character.
            _ => {}
        }
    }

    /// Takes `b` as part of an escape sequence if it is one; `false` if the
    /// sequence is over and `b` is a key of its own.
    fn escape_byte(&mut self, b: u8) -> bool {
        let is_control = b < 0x20 || b == DELETE;
        match self.escape {
            Escape::None => return false,
            Escape::Started if is_control && b != ESC => self.escape = Escape::None,
            Escape::Started => {
                self.escape = match b {
                    b'[' => Escape::Csi(0),
                    b'O' => Escape::Ss3,
                    ESC => Escape::Started,
                    // Alt+key: the key is swallowed with the ESC.
                    _ => Escape::None,
                };
                return true;
            }
            Escape::Csi(n) => match b {
                // Parameter and intermediate bytes; too many end it.
                0x20..=0x3f => {
                    self.escape =
                        if n < MAX_ESCAPE_LEN { Escape::Csi(n + 1) } else { Escape::None };
                    return true;
                }
                // The final byte.
                0x40..=0x7e => {
                    self.escape = Escape::None;
                    return true;
                }
                _ => self.escape = Escape::None,
            },
            Escape::Ss3 => {
                self.escape = Escape::None;
                return !is_control;
            }
        }
        false
    }

    fn start_char(&mut self, b: u8, len: usize) {
        self.utf8.push(b);
        self.utf8_len = len;
    }

    fn insert(&mut self, c: char) {
        if c.is_control() {
            return;
        }
        if self.line.len() + c.len_utf8() > MAX_LINE_LEN {
            if !self.echo.contains(&Echo::Bell) {
                self.echo.push_back(Echo::Bell);
            }
            return;
        }
        self.line.push(c);
        match self.echo.back_mut() {
            Some(Echo::Insert(s) | Echo::Redraw(s)) => s.push(c),
            _ => self.echo.push_back(Echo::Insert(c.to_string())),
        }
    }

    /// Keeps the first `len` bytes of the line (a character boundary).
    fn truncate(&mut self, len: usize) {
        if len < self.line.len() {
            self.line.truncate(len);
            self.redraw();
        }
    }

    fn redraw(&mut self) {
        // What is drawn since the last line end is replaced, so the queue
        // holds at most one copy of the line.
        while matches!(self.echo.back(), Some(Echo::Insert(_) | Echo::Redraw(_))) {
            self.echo.pop_back();
        }
        self.echo.push_back(Echo::Redraw(self.line.clone()));
    }

    fn enter(&mut self) {
        let line = std::mem::take(&mut self.line);
        self.items.push_back(InputItem::Line(line));
        self.echo.push_back(Echo::Commit);
    }

    fn end(&mut self) {
        self.line.clear();
        self.utf8.clear();
        self.utf8_len = 0;
        self.escape = Escape::None;
        self.ended = true;
        self.items.push_back(InputItem::Eof);
        self.echo.push_back(Echo::End);
    }
}

impl InputDecoder for LineEditor {
    fn push(&mut self, bytes: &[u8]) {
        LineEditor::push(self, bytes);
    }

    fn push_eof(&mut self) {
        LineEditor::push_eof(self);
    }

    fn peek(&self) -> Option<&InputItem> {
        self.items.front()
    }

    fn pop(&mut self) -> Option<InputItem> {
        self.items.pop_front()
    }

    fn ended(&self) -> bool {
        self.ended
    }

    /// Keys are read (and echoed) while the application is busy, up to
    /// [`MAX_TYPED_AHEAD`] finished lines.
    fn wants_input(&self) -> bool {
        !self.ended && self.items.len() < MAX_TYPED_AHEAD
    }
}

#[cfg(test)]
#[path = "line_editor_tests.rs"]
mod tests;
