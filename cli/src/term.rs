//! The client's terminal: the lines and prompts it prints, and the user's
//! input cut into lines. Every write is flushed at once.
//!
//! Three ways to run:
//!
//! - **Line editor**, when standard input and standard output are both
//!   terminals: the terminal is put in non-canonical, no-echo mode
//!   ([`RawMode`]) and a [`LineEditor`] takes the keys. The last screen line
//!   is the *input line*: the open prompt, if any, and what the user has
//!   typed so far. A line printed at any time (a received message, a
//!   notice) erases the input line, is printed, and the input line is drawn
//!   again below it, so what the user types is never cut. On Enter the
//!   finished line stays on screen as typed and the prompt is closed. Keys
//!   are read and echoed while the application is busy (typed ahead): a
//!   prompt shown after a line was typed ahead goes when the line is taken.
//!   On exit the input line is erased and the terminal settings are
//!   restored.
//! - **Canonical terminal**, when standard input is a terminal but output is
//!   not (or the terminal cannot be set): the terminal echoes; a prompt
//!   stays on its line (`Enter choice: ` and the cursor after it), and a
//!   line printed while a prompt is open starts on a fresh line.
//! - **Script**, when input comes from a pipe or a file: prompts are printed
//!   as whole lines, so that the output of a script reads (and parses) line
//!   by line.

use std::io::{self, IsTerminal, Write};

use p2pchat_transport_mio::{InputDecoder, InputItem, LineSplitter};

use crate::line_editor::{Echo, LineEditor};
use crate::raw_mode::RawMode;

/// Erases the screen line the cursor is on and goes to its start.
const ERASE_LINE: &str = "\r\x1b[K";

/// Standard output with prompt handling, and the decoder of standard input.
#[derive(Debug)]
pub struct Term {
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    /// The OS cuts the lines (and a terminal echoes them).
    Lines { interactive: bool, prompt_open: bool, lines: LineSplitter },
    /// Our line editor on a raw terminal; `raw` restores the terminal when
    /// dropped (after `Term`'s own `drop`).
    Editor { screen: Screen, raw: RawMode },
}

impl Term {
    /// Lines cut by the OS; `interactive`: whether the user types at a
    /// (canonical) terminal.
    pub fn new(interactive: bool) -> Self {
        Self { mode: Mode::Lines { interactive, prompt_open: false, lines: LineSplitter::new() } }
    }

    /// The terminal for standard input and output; `interactive`: whether
    /// standard input is a terminal. With the line editor if standard output
    /// is one too, else as [`Term::new`].
    pub fn stdio(interactive: bool) -> Self {
        if !Self::wants_editor(interactive) {
            return Self::new(interactive);
        }
        match RawMode::stdin() {
            Ok(raw) => Self { mode: Mode::Editor { screen: Screen::default(), raw } },
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
        match &mut self.mode {
            Mode::Lines { prompt_open, .. } => {
                let mut out = String::with_capacity(text.len() + 2);
                if *prompt_open {
                    out.push('\n');
                    *prompt_open = false;
                }
                out.push_str(text);
                out.push('\n');
                write_out(&out);
            }
            Mode::Editor { screen, .. } => write_out(&screen.line(text)),
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
                write_out(&out);
                *prompt_open = true;
            }
            Mode::Lines { interactive: false, .. } => self.line(prompt),
            Mode::Editor { screen, .. } => write_out(&screen.prompt(prompt)),
        }
    }

    /// The application took a line the user finished: the cursor is on a
    /// new line (the terminal's echo or our own moved it there on Enter).
    pub fn input_taken(&mut self) {
        match &mut self.mode {
            Mode::Lines { prompt_open, .. } => *prompt_open = false,
            Mode::Editor { screen, .. } => write_out(&screen.taken()),
        }
    }
}

impl Term {
    /// The process is about to stop (Ctrl-Z): the input line is erased and
    /// the terminal set back as it was, for the shell.
    pub fn suspend(&mut self) {
        if let Mode::Editor { screen, raw } = &mut self.mode {
            if screen.input_shown() {
                write_out(ERASE_LINE);
            }
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
            let mut out = String::new();
            if screen.input_shown() {
                screen.draw_input(&mut out, screen.keys.line());
            }
            write_out(&out);
        }
    }
}

impl Drop for Term {
    /// Leaves the screen clean for what runs next: an unfinished input line
    /// (a prompt, unsent text) is erased. The terminal settings are restored
    /// right after, when the `RawMode` drops.
    fn drop(&mut self) {
        if let Mode::Editor { screen, .. } = &mut self.mode {
            write_out(&screen.clear());
        }
    }
}

/// Standard input's bytes are decoded here: by the OS's line discipline and
/// a [`LineSplitter`], or by the [`LineEditor`], which also echoes them.
impl InputDecoder for Term {
    fn push(&mut self, bytes: &[u8]) {
        match &mut self.mode {
            Mode::Lines { lines, .. } => lines.push(bytes),
            Mode::Editor { screen, .. } => write_out(&screen.keys(bytes)),
        }
    }

    fn push_eof(&mut self) {
        match &mut self.mode {
            Mode::Lines { lines, .. } => lines.push_eof(),
            Mode::Editor { screen, .. } => write_out(&screen.keys_ended()),
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

/// The bottom of a raw terminal: lines printed above the *input line*, which
/// is the open prompt and what is typed. Pure: each method returns the bytes
/// to write.
#[derive(Debug, Default)]
struct Screen {
    keys: LineEditor,
    /// The open prompt, with its trailing space.
    prompt: Option<String>,
}

impl Screen {
    /// Prints `text` above the input line.
    fn line(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 16);
        out.push_str(ERASE_LINE);
        out.push_str(text);
        out.push('\n');
        if self.input_shown() {
            self.draw_input(&mut out, self.keys.line());
        }
        out
    }

    /// Opens `prompt` on the input line.
    fn prompt(&mut self, prompt: &str) -> String {
        let prompt = format!("{prompt} ");
        let mut out = String::new();
        // Already shown as asked: nothing to draw.
        if self.prompt.as_ref() != Some(&prompt) {
            self.prompt = Some(prompt);
            self.draw_input(&mut out, self.keys.line());
        }
        out
    }

    /// Feeds keys to the editor; returns their echo.
    fn keys(&mut self, bytes: &[u8]) -> String {
        self.keys.push(bytes);
        self.echo()
    }

    /// The keyboard is gone.
    fn keys_ended(&mut self) -> String {
        self.keys.push_eof();
        self.echo()
    }

    /// The application took a finished line. Enter closed the prompt it
    /// was typed at; a prompt open now came after the line was typed ahead,
    /// and asked for the line just taken: it goes.
    fn taken(&mut self) -> String {
        let mut out = String::new();
        if self.prompt.take().is_some() {
            self.draw_input(&mut out, self.keys.line());
        }
        out
    }

    /// Erases the input line, if anything is on it.
    fn clear(&mut self) -> String {
        let shown = self.input_shown();
        self.prompt = None;
        if shown { ERASE_LINE.to_owned() } else { String::new() }
    }

    fn input_shown(&self) -> bool {
        self.prompt.is_some() || !self.keys.line().is_empty()
    }

    fn draw_input(&self, out: &mut String, typed: &str) {
        out.push_str(ERASE_LINE);
        out.push_str(self.prompt.as_deref().unwrap_or(""));
        out.push_str(typed);
    }

    fn echo(&mut self) -> String {
        let mut out = String::new();
        while let Some(echo) = self.keys.poll_echo() {
            match echo {
                Echo::Insert(s) => out.push_str(&s),
                Echo::Redraw(typed) => self.draw_input(&mut out, &typed),
                Echo::Commit => {
                    out.push('\n');
                    self.prompt = None;
                }
                Echo::End => {
                    if self.prompt.take().is_some() {
                        out.push('\n');
                    }
                }
                Echo::Bell => out.push('\x07'),
            }
        }
        out
    }
}

fn write_out(s: &str) {
    if s.is_empty() {
        return;
    }
    let mut out = io::stdout().lock();
    // Output that cannot be written (a closed pipe) is not worth dying for:
    // the chat and the history go on.
    if let Err(e) = out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        tracing::debug!(error = %e, "writing standard output failed");
    }
}

#[cfg(test)]
#[path = "term_tests.rs"]
mod tests;
