//! The client's standard output: lines and prompts.
//!
//! When standard input is a terminal, a prompt stays on its line (`Enter
//! choice: ` and the cursor after it), and a line printed while a prompt is
//! open starts on a fresh line. When input comes from a pipe or a file,
//! prompts are printed as whole lines, so that the output of a script reads
//! (and parses) line by line. Every write is flushed at once.

use std::io::{self, Write};

/// Standard output with prompt handling.
#[derive(Debug)]
pub struct Term {
    interactive: bool,
    prompt_open: bool,
}

impl Term {
    /// `interactive`: whether the user types at a terminal.
    pub fn new(interactive: bool) -> Self {
        Self { interactive, prompt_open: false }
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

fn write_out(s: &str) {
    let mut out = io::stdout().lock();
    // Output that cannot be written (a closed pipe) is not worth dying for:
    // the chat and the history go on.
    if let Err(e) = out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        tracing::debug!(error = %e, "writing standard output failed");
    }
}
