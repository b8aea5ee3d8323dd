//! The client's terminal: the lines and prompts it prints, and the user's
//! input cut into lines.
//!
//! What is printed goes through a [`UserOutput`]: written by the loop once
//! per turn (after the history lines it shows), as far as standard output
//! takes it, the rest later, never with a write that waits (a terminal
//! stopped or not drawing, a pipe nobody reads). At
//! most [`MAX_PENDING_OUTPUT`] bytes wait; beyond that, what is printed is
//! left out, counted, and once the screen has caught up one line says how
//! many were: the chat goes on meanwhile, and the history file still gets
//! every message. At exit the client waits at most [`EXIT_DRAIN_TIMEOUT`]
//! for the last output.
//!
//! Three ways to run:
//!
//! - **Line editor**, when standard input and standard output are both
//!   terminals: the terminal is put in non-canonical, no-echo mode
//!   ([`RawMode`]) and a [`LineEditor`](crate::line_editor::LineEditor) takes the keys. The bottom of the
//!   screen is the *input area*: the open prompt, if any, and what the user
//!   has typed so far, wrapped to the terminal's width (read at start and
//!   again on SIGWINCH, [`Term::resize`]). A line printed at any time (a
//!   received message, a notice) takes the input area's place, and the
//!   input area is drawn again below it, so what the user types is never
//!   cut and never left behind in pieces. On Enter the finished line stays
//!   on screen as typed and the prompt is closed. Keys are read and echoed
//!   while the application is busy (typed ahead): a prompt shown after a
//!   line was typed ahead goes when the line is taken. On exit the input
//!   area is erased and the terminal settings are restored.
//! - **Canonical terminal**, when standard input is a terminal but output is
//!   not (or the terminal cannot be set): the terminal echoes; a prompt
//!   stays on its line (`Enter choice: ` and the cursor after it), and a
//!   line printed while a prompt is open starts on a fresh line.
//! - **Script**, when input comes from a pipe or a file: prompts are printed
//!   as whole lines, so that the output of a script reads (and parses) line
//!   by line.

use std::io::{self, IsTerminal};
use std::time::Instant;

use p2pchat_transport_mio::{
    EXIT_DRAIN_TIMEOUT, InputDecoder, InputItem, LineSplitter, MAX_PENDING_OUTPUT, UserOutput,
};

use crate::raw_mode::RawMode;

#[path = "screen.rs"]
mod screen;

use screen::Screen;

/// Standard output with prompt handling, and the decoder of standard input.
#[derive(Debug)]
pub struct Term {
    mode: Mode,
    out: UserOutput,
    /// Writes left out because too much output waited; told once the screen
    /// has caught up.
    left_out: usize,
}

#[derive(Debug)]
enum Mode {
    /// The OS cuts the lines (and a terminal echoes them).
    Lines { interactive: bool, prompt_open: bool, lines: LineSplitter },
    /// Our line editor on a raw terminal; `raw` restores the terminal when
    /// dropped (after `Term`'s own `drop`).
    Editor { screen: Box<Screen>, raw: RawMode },
}

impl Term {
    /// Lines cut by the OS; `interactive`: whether the user types at a
    /// (canonical) terminal.
    pub fn new(interactive: bool) -> Self {
        Self::with_mode(Mode::Lines { interactive, prompt_open: false, lines: LineSplitter::new() })
    }

    fn with_mode(mode: Mode) -> Self {
        Self { mode, out: UserOutput::stdout(), left_out: 0 }
    }

    /// The terminal for standard input and output; `interactive`: whether
    /// standard input is a terminal. With the line editor if standard output
    /// is one too, else as [`Term::new`].
    pub fn stdio(interactive: bool) -> Self {
        if !Self::wants_editor(interactive) {
            return Self::new(interactive);
        }
        match RawMode::stdin() {
            Ok(raw) => {
                let (cols, rows) = size();
                Self::with_mode(Mode::Editor { screen: Box::new(Screen::new(cols, rows)), raw })
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot set up the terminal; using its line mode");
                Self::new(interactive)
            }
        }
    }

    /// Whether [`Term::stdio`] tries the line editor: standard input
    /// (`interactive`) and standard output are terminals.
    pub fn wants_editor(interactive: bool) -> bool {
        interactive && io::stdout().is_terminal()
    }

    /// Prints one line.
    pub fn line(&mut self, text: &str) {
        // The common case (a script's output, a pipe) without a copy.
        if let Mode::Lines { prompt_open: false, .. } = self.mode {
            return self.write_parts(&[text.as_bytes(), b"\n"]);
        }
        let out = self.line_bytes(text);
        self.write_out(&out);
    }

    /// Shows a chat line: `start` (`[HH:MM:SS] WHO: `, see
    /// [`chat_line_parts`](crate::app::chat_line_parts)) then `text`
    /// (already escaped), written straight into the output (a script's
    /// output, a pipe) or, with the line editor, drawn as any line.
    pub fn chat_line(&mut self, start: &str, text: &str) {
        if let Mode::Lines { prompt_open: false, .. } = self.mode {
            return self.write_parts(&[start.as_bytes(), text.as_bytes(), b"\n"]);
        }
        self.line(&[start, text].concat());
    }

    fn line_bytes(&mut self, text: &str) -> String {
        match &mut self.mode {
            Mode::Lines { prompt_open, .. } => {
                let mut out = String::with_capacity(text.len() + 2);
                if *prompt_open {
                    out.push('\n');
                    *prompt_open = false;
                }
                out.push_str(text);
                out.push('\n');
                out
            }
            Mode::Editor { screen, .. } => screen.line(text),
        }
    }

    /// Shows a prompt such as `Enter choice:`.
    pub fn prompt(&mut self, prompt: &str) {
        match &mut self.mode {
            Mode::Lines { interactive: true, prompt_open, .. } => {
                let mut out = String::new();
                if *prompt_open {
                    out.push('\n');
                }
                out.push_str(prompt);
                out.push(' ');
                *prompt_open = true;
                self.write_out(&out);
            }
            Mode::Lines { interactive: false, .. } => self.line(prompt),
            Mode::Editor { screen, .. } => {
                let out = screen.prompt(prompt);
                self.write_out(&out);
            }
        }
    }

    /// The application took a line the user finished: the cursor is on a
    /// new line (the terminal's echo or our own moved it there on Enter).
    pub fn input_taken(&mut self) {
        match &mut self.mode {
            Mode::Lines { prompt_open, .. } => *prompt_open = false,
            Mode::Editor { screen, .. } => {
                let out = screen.taken();
                self.write_out(&out);
            }
        }
    }
}

impl Term {
    /// The process is about to stop (Ctrl-Z): the input line is erased and
    /// the terminal set back as it was, for the shell. What waits to be shown
    /// is written first, waiting at most [`EXIT_DRAIN_TIMEOUT`] for it.
    pub fn suspend(&mut self) {
        if let Mode::Editor { screen, .. } = &mut self.mode {
            let out = screen.hide();
            self.write_out(&out);
        }
        self.out.drain(Instant::now() + EXIT_DRAIN_TIMEOUT);
        if let Mode::Editor { raw, .. } = &self.mode {
            if let Err(e) = raw.restore() {
                tracing::warn!(error = %e, "cannot restore the terminal settings");
            }
        }
    }

    /// The process continues (`fg`): the terminal is set raw again (the
    /// shell may have changed it) and the input line drawn again.
    pub fn resume(&mut self) {
        if let Mode::Editor { screen, raw } = &mut self.mode {
            if let Err(e) = raw.reapply() {
                tracing::warn!(error = %e, "cannot set up the terminal again");
            }
            let out = screen.redraw();
            self.write_out(&out);
        }
    }

    /// The terminal changed size (SIGWINCH): the input area is drawn again
    /// for the new width.
    pub fn resize(&mut self) {
        if let Mode::Editor { screen, .. } = &mut self.mode {
            let (cols, rows) = size();
            let out = screen.resize(cols, rows);
            self.write_out(&out);
        }
    }

    /// The output, for the loop to write what waits in it.
    pub fn output(&mut self) -> &mut UserOutput {
        &mut self.out
    }

    /// Prints `s`: queued whole, or left out whole if too much waits already.
    /// Once nothing waits any more, a line first says how much was left out.
    fn write_out(&mut self, s: &str) {
        self.write_parts(&[s.as_bytes()]);
    }

    /// [`Term::write_out`] of `parts` joined.
    fn write_parts(&mut self, parts: &[&[u8]]) {
        if parts.iter().all(|p| p.is_empty()) {
            return;
        }
        if self.left_out > 0 && self.out.pending() == 0 {
            let note = self.line_bytes(&format!(
                "[{} screen updates were not shown: the terminal took no output for a while \
                 (over {} KiB waited); the history file has every message]",
                self.left_out,
                MAX_PENDING_OUTPUT / 1024
            ));
            if self.out.write(note.as_bytes()) {
                self.left_out = 0;
            }
        }
        if !self.out.write_parts(parts) {
            self.left_out += 1;
        }
    }
}

impl Drop for Term {
    /// Leaves the screen clean for what runs next: an unfinished input line
    /// (a prompt, unsent text) is erased. The terminal settings are restored
    /// right after, when the `RawMode` drops.
    fn drop(&mut self) {
        if let Mode::Editor { screen, .. } = &mut self.mode {
            let out = screen.clear();
            self.write_out(&out);
        }
        self.out.drain(Instant::now() + EXIT_DRAIN_TIMEOUT);
    }
}

/// Standard input's bytes are decoded here: by the OS's line discipline and
/// a [`LineSplitter`], or by the [`LineEditor`], which also echoes them.
impl InputDecoder for Term {
    fn push(&mut self, bytes: &[u8]) {
        match &mut self.mode {
            Mode::Lines { lines, .. } => lines.push(bytes),
            Mode::Editor { screen, .. } => {
                let echo = screen.keys(bytes);
                self.write_out(&echo);
            }
        }
    }

    fn push_eof(&mut self) {
        match &mut self.mode {
            Mode::Lines { lines, .. } => lines.push_eof(),
            Mode::Editor { screen, .. } => {
                let echo = screen.keys_ended();
                self.write_out(&echo);
            }
        }
    }

    fn peek(&self) -> Option<&InputItem> {
        match &self.mode {
            Mode::Lines { lines, .. } => lines.peek(),
            Mode::Editor { screen, .. } => screen.keys.peek(),
        }
    }

    fn pop(&mut self) -> Option<InputItem> {
        match &mut self.mode {
            Mode::Lines { lines, .. } => lines.pop(),
            Mode::Editor { screen, .. } => screen.keys.pop(),
        }
    }

    fn ended(&self) -> bool {
        match &self.mode {
            Mode::Lines { lines, .. } => lines.ended(),
            Mode::Editor { screen, .. } => screen.keys.ended(),
        }
    }

    fn wants_input(&self) -> bool {
        match &self.mode {
            Mode::Lines { lines, .. } => lines.wants_input(),
            Mode::Editor { screen, .. } => screen.keys.wants_input(),
        }
    }
}

/// The size of the terminal on standard output, in columns and rows; 0 if
/// it does not tell.
fn size() -> (u16, u16) {
    match rustix::termios::tcgetwinsize(io::stdout()) {
        Ok(size) => (size.ws_col, size.ws_row),
        Err(_) => (0, 0),
    }
}

#[cfg(test)]
#[path = "term_tests.rs"]
mod tests;
