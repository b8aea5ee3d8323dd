//! The client's terminal: the lines and prompts it prints, and the user's
//! input cut into lines.
//!
//! When standard input is a terminal, a prompt stays on its line (`Enter
//! choice: ` and the cursor after it), and a line printed while a prompt is
//! open starts on a fresh line. When input comes from a pipe or a file,
//! prompts are printed as whole lines, so that the output of a script reads
//! (and parses) line by line. Every write is flushed at once.

use std::io::{self, Write};

use p2pchat_transport_mio::{InputDecoder, InputItem, LineSplitter};

/// Standard output with prompt handling, and the decoder of standard input.
#[derive(Debug)]
pub struct Term {
    interactive: bool,
    prompt_open: bool,
    lines: LineSplitter,
}

impl Term {
    /// `interactive`: whether the user types at a terminal.
    pub fn new(interactive: bool) -> Self {
        Self { interactive, prompt_open: false, lines: LineSplitter::new() }
    }

    /// Prints one line.
    pub fn line(&mut self, text: &str) {
        let mut out = String::with_capacity(text.len() + 2);
        if self.prompt_open {
            out.push('\n');
            self.prompt_open = false;
        }
        out.push_str(text);
        out.push('\n');
        write_out(&out);
    }

    /// Shows a prompt such as `Enter choice:`.
    pub fn prompt(&mut self, prompt: &str) {
        if self.interactive {
            let mut out = String::new();
            if self.prompt_open {
                out.push('\n');
            }
            out.push_str(prompt);
            out.push(' ');
            write_out(&out);
            self.prompt_open = true;
        } else {
            self.line(prompt);
        }
    }

    /// The user finished a line: the terminal's echo moved the cursor to a
    /// new line.
    pub fn input_taken(&mut self) {
        self.prompt_open = false;
    }
}

/// Standard input's bytes are cut into lines here.
impl InputDecoder for Term {
    fn push(&mut self, bytes: &[u8]) {
        self.lines.push(bytes);
    }
    fn push_eof(&mut self) {
        self.lines.push_eof();
    }
    fn peek(&self) -> Option<&InputItem> {
        self.lines.peek()
    }
    fn pop(&mut self) -> Option<InputItem> {
        self.lines.pop()
    }
    fn ended(&self) -> bool {
        self.lines.ended()
    }
}

fn write_out(s: &str) {
    let mut out = io::stdout().lock();
    // Output that cannot be written (a closed pipe) is not worth dying for:
    // the chat and the history go on.
    if let Err(e) = out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        tracing::debug!(error = %e, "writing standard output failed");
    }
}
