//! The bottom of a raw terminal: lines printed above the *input area*, the
//! open prompt and what is typed, wrapped over as many rows as it takes.
//! Pure: each method returns the bytes to write.
//!
//! The input area is always the last thing on the screen, and the screen
//! remembers on which of its rows the terminal's cursor is. To change it,
//! the cursor goes up to its first row and everything from there down is
//! erased (`ESC [ J`); then it is drawn again. Its rows are ended with
//! explicit line ends rather than left to the terminal's own wrapping, so
//! that a terminal that widens keeps them as they are. A line printed at
//! any time goes where the input area was, and the input area is drawn
//! again below it: what the user types is never cut, and no stale row of
//! it is left behind.
//!
//! An input area taller than the screen cannot be erased whole (its top
//! has scrolled away), so it shows at most the screen's height less one row,
//! the rows around the cursor.
//!
//! A resize is the one change that cannot be undone row by row: most
//! terminals (tmux, VTE, kitty, iTerm2) rewrap what they show when they
//! narrow, others (xterm, the Linux console) cut it, and nothing tells which.
//! So after a resize the screen is repainted from what the client printed
//! last (the last [`MAX_KEPT_LINES`] lines, at most [`MAX_KEPT_BYTES`]),
//! with the input area below: the same on every terminal.

use std::collections::VecDeque;
use std::fmt::Write as _;

use crate::line_editor::{Echo, LineEditor};

#[path = "wrap.rs"]
mod wrap;

/// Goes to the start of the cursor's row and erases from there to the end
/// of the screen.
pub const ERASE: &str = "\r\x1b[J";

/// Goes to the top left corner and erases the screen.
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

/// Most lines kept to repaint the screen after a resize: a taller screen
/// is repainted from its bottom up to these.
pub const MAX_KEPT_LINES: usize = 256;

/// Most bytes the kept lines hold together; of a longer line, its end.
pub const MAX_KEPT_BYTES: usize = 256 * 1024;

/// Columns assumed when the terminal does not tell its size.
pub const DEFAULT_COLS: u16 = 80;

/// Rows assumed when the terminal does not tell its size.
pub const DEFAULT_ROWS: u16 = 24;

/// See the module documentation.
#[derive(Debug)]
pub struct Screen {
    /// The editor whose line is drawn.
    pub keys: LineEditor,
    /// The open prompt, with its trailing space.
    prompt: Option<String>,
    cols: usize,
    rows: usize,
    /// Whether the input area is on screen, and if so the row (counted
    /// from its first) the terminal's cursor is on.
    shown: Option<usize>,
    /// The first row of the input's layout that is on screen.
    top: usize,
    /// The last lines printed above the input area, oldest first.
    kept: VecDeque<String>,
    kept_bytes: usize,
}

impl Default for Screen {
    fn default() -> Self {
        Self::new(0, 0)
    }
}

impl Screen {
    /// A screen of `cols` columns and `rows` rows (0: unknown).
    pub fn new(cols: u16, rows: u16) -> Self {
        let mut s = Self {
            keys: LineEditor::new(),
            prompt: None,
            cols: 0,
            rows: 0,
            shown: None,
            top: 0,
            kept: VecDeque::new(),
            kept_bytes: 0,
        };
        s.set_size(cols, rows);
        s
    }

    fn set_size(&mut self, cols: u16, rows: u16) {
        let or = |n: u16, default: u16| usize::from(if n == 0 { default } else { n });
        self.cols = or(cols, DEFAULT_COLS);
        self.rows = or(rows, DEFAULT_ROWS);
    }

    /// Prints `text` above the input area.
    pub fn line(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 16);
        self.erase(&mut out);
        out.push_str(text);
        out.push('\n');
        self.keep(text);
        self.draw_current(&mut out);
        out
    }

    /// Remembers a line printed, to repaint the screen after a resize.
    fn keep(&mut self, text: &str) {
        for line in text.split('\n') {
            let mut from = line.len().saturating_sub(MAX_KEPT_BYTES);
            while !line.is_char_boundary(from) {
                from += 1;
            }
            self.kept.push_back(line[from..].to_owned());
            self.kept_bytes += line.len() - from;
            while self.kept.len() > MAX_KEPT_LINES || self.kept_bytes > MAX_KEPT_BYTES {
                let Some(old) = self.kept.pop_front() else { break };
                self.kept_bytes -= old.len();
            }
        }
    }

    /// Opens `prompt` on the input area.
    pub fn prompt(&mut self, prompt: &str) -> String {
        let prompt = format!("{prompt} ");
        let mut out = String::new();
        // Already shown as asked: nothing to draw.
        if self.prompt.as_ref() != Some(&prompt) {
            self.prompt = Some(prompt);
            self.redraw_into(&mut out);
        }
        out
    }

    /// Feeds keys to the editor; returns their echo.
    pub fn keys(&mut self, bytes: &[u8]) -> String {
        self.keys.push(bytes);
        self.echo()
    }

    /// The keyboard is gone.
    pub fn keys_ended(&mut self) -> String {
        self.keys.push_eof();
        self.echo()
    }

    /// The application took a finished line. Enter closed the prompt it
    /// was typed at; a prompt open now came after the line was typed ahead,
    /// and asked for the line just taken: it goes.
    pub fn taken(&mut self) -> String {
        let mut out = String::new();
        if self.prompt.take().is_some() {
            self.redraw_into(&mut out);
        }
        out
    }

    /// The terminal has a new size: if there is an input area, the screen
    /// is repainted for the new size (see the module documentation).
    pub fn resize(&mut self, cols: u16, rows: u16) -> String {
        self.set_size(cols, rows);
        let mut out = String::new();
        if !self.input_shown() {
            return out;
        }
        out.push_str(CLEAR_SCREEN);
        self.shown = None;
        // The lines that fit above the input area, newest last.
        let input_rows = {
            let mut text = self.prompt.clone().unwrap_or_default();
            let cursor = text.len() + self.keys.cursor();
            text.push_str(self.keys.line());
            wrap::layout_around(&text, self.cols, cursor).1.rows.len()
        };
        let mut room = self.rows.saturating_sub(input_rows.min(self.rows.saturating_sub(1).max(1)));
        let mut first = self.kept.len();
        for line in self.kept.iter().rev() {
            let layout = wrap::layout(line, self.cols, line.len());
            // The last row is where the next line would start.
            let rows = if layout.cursor.1 == 0 { layout.rows.len() - 1 } else { layout.rows.len() };
            let rows = rows.max(1);
            if rows > room {
                break;
            }
            room -= rows;
            first -= 1;
        }
        for line in self.kept.range(first..) {
            out.push_str(line);
            out.push('\n');
        }
        self.draw_current(&mut out);
        out
    }

    /// Draws the input area again (Ctrl-L, after a stop).
    pub fn redraw(&mut self) -> String {
        let mut out = String::new();
        if self.input_shown() {
            self.redraw_into(&mut out);
        }
        out
    }

    /// Erases the input area, if anything is on it, and closes the prompt.
    pub fn clear(&mut self) -> String {
        let out = self.hide();
        self.prompt = None;
        out
    }

    /// Erases the input area for a while (the process stops); see
    /// [`Screen::redraw`].
    pub fn hide(&mut self) -> String {
        let mut out = String::new();
        if self.shown.is_some() {
            self.erase(&mut out);
        }
        out
    }

    /// Whether there is an input area: a prompt or typed text.
    pub fn input_shown(&self) -> bool {
        self.prompt.is_some() || !self.keys.line().is_empty()
    }

    fn redraw_into(&mut self, out: &mut String) {
        self.erase(out);
        self.draw_current(out);
    }

    /// Goes to the first row of the input area and erases it and all below.
    fn erase(&mut self, out: &mut String) {
        if let Some(up @ 1..) = self.shown {
            let _ = write!(out, "\x1b[{up}A");
        }
        out.push_str(ERASE);
        self.shown = None;
    }

    /// Draws the input area, if any, where the cursor is (a fresh row).
    fn draw_current(&mut self, out: &mut String) {
        if self.input_shown() {
            let mut text = self.prompt.clone().unwrap_or_default();
            let cursor = text.len() + self.keys.cursor();
            text.push_str(self.keys.line());
            self.draw(out, &text, cursor);
        }
    }

    /// Draws `text` with the cursor before its byte `cursor`.
    fn draw(&mut self, out: &mut String, text: &str, cursor: usize) {
        let (offset, layout) = wrap::layout_around(text, self.cols, cursor);
        let (text, cursor) = (&text[offset..], cursor - offset);
        let (row, col) = layout.cursor;
        let total = layout.rows.len();
        let fit = self.rows.saturating_sub(1).max(1);
        // As many rows as fit, the cursor's among them.
        self.top = self.top.min(total.saturating_sub(fit));
        if row < self.top {
            self.top = row;
        } else if row >= self.top + fit {
            self.top = row + 1 - fit;
        }
        let shown = &layout.rows[self.top..total.min(self.top + fit)];
        for (i, r) in shown.iter().enumerate() {
            if i > 0 {
                out.push_str("\r\n");
            }
            out.push_str(&text[r.clone()]);
        }
        // From the end of the last row shown to the cursor.
        let last = shown.len() - 1;
        let row = row - self.top;
        let row_end = layout.rows[self.top + last].end;
        if row != last || row_end != cursor {
            if row < last {
                let _ = write!(out, "\x1b[{}A", last - row);
            }
            out.push('\r');
            if col > 0 {
                let _ = write!(out, "\x1b[{col}C");
            }
        }
        self.shown = Some(row);
    }

    fn echo(&mut self) -> String {
        let mut out = String::new();
        let mut changed = false;
        while let Some(echo) = self.keys.poll_echo() {
            match echo {
                Echo::Changed => changed = true,
                Echo::Commit(line) => {
                    // The finished line as typed, with the cursor after it.
                    self.erase(&mut out);
                    let mut text = self.prompt.take().unwrap_or_default();
                    text.push_str(&line);
                    self.draw(&mut out, &text, text.len());
                    out.push('\n');
                    self.keep(&text);
                    self.shown = None;
                    self.top = 0;
                    changed = false;
                }
                Echo::End => {
                    // The line as it was left (Ctrl-U before Ctrl-D).
                    if std::mem::take(&mut changed) {
                        self.redraw_into(&mut out);
                    }
                    if let Some(prompt) = self.prompt.take() {
                        out.push('\n');
                        self.keep(&prompt);
                    }
                    self.shown = None;
                }
                Echo::Bell => out.push('\x07'),
                Echo::Notice(text) => {
                    out.push_str(&self.line(&text));
                    changed = false;
                }
            }
        }
        if changed {
            self.redraw_into(&mut out);
        }
        out
    }
}

#[cfg(test)]
#[path = "screen_tests.rs"]
mod tests;
