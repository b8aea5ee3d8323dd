//! A line editor for a terminal in non-canonical, no-echo mode, as a pure
//! state machine: keys in, finished lines and what to draw out. It does no
//! I/O; [`crate::term::Term`] feeds it what standard input reads and draws
//! the line again whenever it says so.
//!
//! The line is edited by grapheme cluster (what the user sees as one
//! character: `é` written as `e` and a combining accent, a flag, an emoji
//! with joiners such as 👩‍👩‍👧), at a cursor:
//!
//! | keys | what they do |
//! | --- | --- |
//! | printable characters | inserted at the cursor (UTF-8, possibly split across reads) |
//! | Tab | inserts [`TAB_SPACES`] spaces |
//! | Enter (`\r`, `\n`, `\r\n` once) | finishes the line, wherever the cursor is |
//! | Left, Right (Ctrl-B, Ctrl-F) | move by one grapheme cluster |
//! | Home, End (Ctrl-A, Ctrl-E) | move to the start, the end |
//! | Backspace, Delete | delete the grapheme cluster before, under the cursor |
//! | Up, Down (Ctrl-P, Ctrl-N) | recall earlier lines, the last [`MAX_HISTORY`] |
//! | Ctrl-U, Ctrl-K | delete before, after the cursor |
//! | Ctrl-W | deletes the word before the cursor |
//! | Ctrl-D | on an empty line ends the input; otherwise deletes under the cursor |
//! | Ctrl-L | draws the line again |
//!
//! Other escape sequences (function keys, Alt+key) are swallowed; other
//! control bytes and invalid UTF-8 are ignored. A line holds at most
//! [`MAX_INPUT_LEN`] bytes, far more than one chat message
//! ([`MAX_TEXT_LEN`](p2pchat_core::MAX_TEXT_LEN)): it is handed on whole,
//! for the application to send in pieces. What does not fit is refused
//! with a bell and a notice saying how much was left out: nothing is cut
//! silently.
//!
//! A line is only ever taken with Enter: a half-typed line is dropped when
//! the input ends.

use std::collections::VecDeque;

use p2pchat_transport_mio::{InputDecoder, InputItem};
use unicode_segmentation::GraphemeCursor;

#[path = "keys.rs"]
mod keys;

use keys::{Key, KeyDecoder};

/// Most finished lines kept waiting for the application. While fewer wait,
/// the editor asks for more input, so that what the user types ahead is
/// shown at once; past that the terminal's own buffer holds the rest.
pub const MAX_TYPED_AHEAD: usize = 16;

/// Longest line, in bytes (1 MiB: over 260,000 characters of any kind, a
/// million of ASCII). Far above one chat message: a long paste is handed on
/// whole. Bounds the editor's memory with [`MAX_TYPED_AHEAD`] and
/// [`MAX_HISTORY_BYTES`].
pub const MAX_INPUT_LEN: usize = 1024 * 1024;

/// Most earlier lines that Up recalls.
pub const MAX_HISTORY: usize = 100;

/// Most bytes the recalled lines hold together; the oldest go first.
pub const MAX_HISTORY_BYTES: usize = 4 * MAX_INPUT_LEN;

/// Spaces that Tab inserts.
pub const TAB_SPACES: usize = 4;

/// What to draw after keys were pushed, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Echo {
    /// The line or the cursor changed: draw the input line again (from
    /// [`LineEditor::line`] and [`LineEditor::cursor`]).
    Changed,
    /// Enter finished this line: it stays on screen as typed, with the
    /// cursor after it; the next input line starts below (without a prompt).
    Commit(String),
    /// The input ended (Ctrl-D on an empty line): the input line, empty but
    /// for its prompt, stays as shown; nothing more is typed.
    End,
    /// A key was refused (the line is full): ring the bell.
    Bell,
    /// A line to print above the input line.
    Notice(String),
}

/// The line editor. See the module documentation.
#[derive(Debug, Default)]
pub struct LineEditor {
    line: String,
    /// Where the cursor is in `line`: a byte index on a grapheme boundary.
    cursor: usize,
    keys: KeyDecoder,
    /// Characters read but not inserted yet: a paste goes in at once.
    typed: String,
    /// Bytes refused since the last push because the line was full.
    refused: usize,
    /// Lines finished with Enter, oldest first.
    history: VecDeque<String>,
    history_bytes: usize,
    /// While recalling: which line of `history` is shown, and the line that
    /// was being typed before Up.
    recall: Option<(usize, String)>,
    items: VecDeque<InputItem>,
    echo: VecDeque<Echo>,
    ended: bool,
}

impl LineEditor {
    /// An empty line.
    pub fn new() -> Self {
        Self::default()
    }

    /// What is typed so far of the current line.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The cursor: a byte index into [`LineEditor::line`].
    pub fn cursor(&self) -> usize {
        self.cursor
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
                break;
            }
            match self.keys.byte(b) {
                Some(Key::Char(c)) => self.typed.push(c),
                Some(key) => {
                    self.flush_typed();
                    self.key(key);
                }
                None => {}
            }
        }
        self.flush_typed();
        if self.refused > 0 {
            let refused = std::mem::take(&mut self.refused);
            self.echo.push_back(Echo::Notice(format!(
                "[the line is full ({MAX_INPUT_LEN} bytes at most): {refused} more bytes \
                 typed or pasted were left out]"
            )));
        }
    }

    /// The terminal is gone (end of file, read error): the input ends, and
    /// a line not finished with Enter is dropped.
    pub fn push_eof(&mut self) {
        if !self.ended {
            self.end();
        }
    }

    fn key(&mut self, key: Key) {
        match key {
            Key::Char(c) => self.typed.push(c),
            Key::Enter => self.enter(),
            Key::Tab => self.insert(&" ".repeat(TAB_SPACES)),
            Key::Backspace => self.delete(self.prev(), self.cursor),
            Key::Ctrl(b'd') if self.line.is_empty() => self.end(),
            Key::Delete | Key::Ctrl(b'd') => self.delete(self.cursor, self.next()),
            Key::Left | Key::Ctrl(b'b') => self.move_to(self.prev()),
            Key::Right | Key::Ctrl(b'f') => self.move_to(self.next()),
            Key::Home | Key::Ctrl(b'a') => self.move_to(0),
            Key::End | Key::Ctrl(b'e') => self.move_to(self.line.len()),
            Key::Up | Key::Ctrl(b'p') => self.recall_older(),
            Key::Down | Key::Ctrl(b'n') => self.recall_newer(),
            Key::Ctrl(b'u') => self.delete(0, self.cursor),
            Key::Ctrl(b'k') => self.delete(self.cursor, self.line.len()),
            Key::Ctrl(b'w') => {
                let before = &self.line[..self.cursor];
                let word = before.trim_end().trim_end_matches(|c: char| !c.is_whitespace());
                self.delete(word.len(), self.cursor);
            }
            Key::Ctrl(b'l') => self.changed(),
            // Ctrl-S, Ctrl-Q and the other control keys do nothing.
            Key::Ctrl(_) => {}
        }
    }

    /// Inserts what was typed since the last other key.
    fn flush_typed(&mut self) {
        if !self.typed.is_empty() {
            let typed = std::mem::take(&mut self.typed);
            self.insert(&typed);
        }
    }

    fn insert(&mut self, s: &str) {
        let room = MAX_INPUT_LEN - self.line.len();
        let mut fits = s.len().min(room);
        while !s.is_char_boundary(fits) {
            fits -= 1;
        }
        if fits < s.len() {
            self.refused += s.len() - fits;
            if !self.echo.contains(&Echo::Bell) {
                self.echo.push_back(Echo::Bell);
            }
        }
        if fits > 0 {
            self.line.insert_str(self.cursor, &s[..fits]);
            self.cursor += fits;
            // A combining mark may have joined the grapheme before it.
            self.cursor = self.boundary_at_or_after(self.cursor);
            self.changed();
        }
    }

    /// Deletes `from..to` (grapheme boundaries) and leaves the cursor there.
    fn delete(&mut self, from: usize, to: usize) {
        if from < to {
            self.line.replace_range(from..to, "");
            self.cursor = from;
            self.changed();
        }
    }

    fn move_to(&mut self, at: usize) {
        if at != self.cursor {
            self.cursor = at;
            self.changed();
        }
    }

    /// The grapheme boundary before the cursor (the cursor at the start).
    fn prev(&self) -> usize {
        let mut g = GraphemeCursor::new(self.cursor, self.line.len(), true);
        // Whole line as one chunk: no more context is ever asked for.
        g.prev_boundary(&self.line, 0).ok().flatten().unwrap_or(0)
    }

    /// The grapheme boundary after the cursor (the cursor at the end).
    fn next(&self) -> usize {
        let mut g = GraphemeCursor::new(self.cursor, self.line.len(), true);
        g.next_boundary(&self.line, 0).ok().flatten().unwrap_or(self.line.len())
    }

    fn boundary_at_or_after(&self, at: usize) -> usize {
        let mut g = GraphemeCursor::new(at, self.line.len(), true);
        match g.is_boundary(&self.line, 0) {
            Ok(true) => at,
            _ => g.next_boundary(&self.line, 0).ok().flatten().unwrap_or(self.line.len()),
        }
    }

    fn recall_older(&mut self) {
        let index = match &self.recall {
            Some((0, _)) => return,
            Some((i, _)) => i - 1,
            None if self.history.is_empty() => return,
            None => {
                let draft = std::mem::take(&mut self.line);
                self.recall = Some((self.history.len(), draft));
                self.history.len() - 1
            }
        };
        if let Some((i, _)) = &mut self.recall {
            *i = index;
        }
        self.line.clone_from(&self.history[index]);
        self.cursor = self.line.len();
        self.changed();
    }

    fn recall_newer(&mut self) {
        let Some((index, draft)) = self.recall.take() else { return };
        if index + 1 < self.history.len() {
            self.line.clone_from(&self.history[index + 1]);
            self.recall = Some((index + 1, draft));
        } else {
            self.line = draft;
        }
        self.cursor = self.line.len();
        self.changed();
    }

    fn remember(&mut self, line: &str) {
        if line.trim().is_empty() || self.history.back().is_some_and(|last| last == line) {
            return;
        }
        self.history.push_back(line.to_owned());
        self.history_bytes += line.len();
        while self.history.len() > MAX_HISTORY || self.history_bytes > MAX_HISTORY_BYTES {
            let Some(old) = self.history.pop_front() else { break };
            self.history_bytes -= old.len();
        }
    }

    fn changed(&mut self) {
        if self.echo.back() != Some(&Echo::Changed) {
            self.echo.push_back(Echo::Changed);
        }
    }

    fn enter(&mut self) {
        let line = std::mem::take(&mut self.line);
        self.cursor = 0;
        self.recall = None;
        self.remember(&line);
        // What was drawn of this line is replaced by the commit.
        if self.echo.back() == Some(&Echo::Changed) {
            self.echo.pop_back();
        }
        self.echo.push_back(Echo::Commit(line.clone()));
        self.items.push_back(InputItem::Line(line));
    }

    fn end(&mut self) {
        self.line.clear();
        self.cursor = 0;
        self.typed.clear();
        self.keys.reset();
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
