//! The user's output: standard output written without blocking the loop.
//!
//! A terminal that does not take output (stopped with Ctrl-S or `tcflow`,
//! a slow remote link, a terminal window that stopped drawing) or a pipe
//! whose reader is slow must not stop the client: while it waits, the chat
//! still has keepalives and acks to answer and the registry its keepalives.
//! So what is printed goes into a bounded buffer ([`UserOutput`]), written
//! by [`UserOutput::flush`] as far as the descriptor takes it without
//! waiting: the loop flushes once per turn, before it sleeps, so a burst of
//! lines costs one write; it writes the rest when the poll says the
//! descriptor is writable again.
//!
//! How each kind of descriptor is written without waiting:
//!
//! - a terminal is opened again by its name, and a pipe through
//!   `/proc/self/fd` (Linux), non-blocking (that open file description is
//!   ours alone, so nothing leaks to the shell) and written until it
//!   reports `WouldBlock`;
//! - a socket (or a terminal or pipe that cannot be opened again) is
//!   written only right after a zero-timeout `poll` says it is writable, at
//!   most [`PIPE_BUF`] bytes at a time (what a writable pipe always takes
//!   whole);
//! - anything else (a regular file, `/dev/null`) is written at once: it does
//!   not wait for anyone.
//!
//! # The bound
//!
//! At most [`MAX_PENDING_OUTPUT`] bytes wait. A write that does not fit is
//! refused whole ([`UserOutput::write`] returns `false`), so the screen never
//! gets half an escape sequence; the caller says what was left out when the
//! screen has caught up. Nothing that matters is lost that way: every
//! message also goes to the history file, which is a regular file.
//!
//! At exit, [`UserOutput::drain`] waits for the descriptor for a bounded
//! time ([`EXIT_DRAIN_TIMEOUT`] is the caller's usual choice), then what is
//! still waiting is dropped: the client ends on time even when nobody reads
//! its output.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use rustix::event::PollFlags;

use crate::fd::{self, Access};

/// Most bytes of output waiting for the descriptor; a write beyond it is
/// refused whole. Thousands of screen lines: far more than a terminal shows,
/// so it is only reached when nobody reads the output for a long time.
pub const MAX_PENDING_OUTPUT: usize = 1024 * 1024;

/// The usual limit for [`UserOutput::drain`] at exit: how long the client
/// waits for a terminal or pipe that does not take its last output.
pub const EXIT_DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// Bytes a pipe takes whole once `poll` says it is writable (Linux's
/// `PIPE_BUF`, a page).
pub const PIPE_BUF: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Written without waiting as the access says; registered with the loop's
    /// poll while output waits.
    Polled(Access),
    /// Written at once (a regular file, a device that never waits).
    Direct,
    /// Gone (closed, or a write failed): output is dropped.
    Closed,
}

/// Standard output (or any file), written without blocking the loop. See
/// the module documentation.
#[derive(Debug)]
pub struct UserOutput {
    file: Option<File>,
    mode: Mode,
    pending: Pending,
    /// Registered with the loop's poll for writability.
    registered: bool,
}

impl UserOutput {
    /// Standard output. A closed descriptor 1 takes everything and shows
    /// nothing.
    pub fn stdout() -> Self {
        match io::stdout().as_fd().try_clone_to_owned() {
            Ok(fd) => Self::from_file(File::from(fd)),
            Err(e) => {
                tracing::debug!(error = %e, "standard output is closed");
                Self {
                    file: None,
                    mode: Mode::Closed,
                    pending: Pending::default(),
                    registered: false,
                }
            }
        }
    }

    /// Writes to `file`: a terminal (which is opened again, see the module
    /// documentation), a pipe, a socket or a regular file.
    pub fn from_file(file: File) -> Self {
        let file = fd::reopen_terminal(&file, true)
            .or_else(|| fd::reopen_pipe(&file, true))
            .unwrap_or(file);
        let mode = match file.metadata() {
            Ok(m) if m.is_file() => Mode::Direct,
            _ => Mode::Polled(fd::access_of(&file)),
        };
        tracing::debug!(?mode, "user output");
        Self { file: Some(file), mode, pending: Pending::default(), registered: false }
    }

    /// Queues `bytes`; they are written by the next [`UserOutput::flush`],
    /// never before (the loop flushes before it sleeps, so that a burst of
    /// lines costs one write, not one each; and the caller can write what
    /// must come first, such as a history file, before it flushes). If they
    /// do not fit under [`MAX_PENDING_OUTPUT`], nothing is queued and the
    /// answer is `false`.
    #[must_use]
    pub fn write(&mut self, bytes: &[u8]) -> bool {
        if self.mode == Mode::Closed {
            return true;
        }
        if self.pending.len() + bytes.len() > MAX_PENDING_OUTPUT {
            return false;
        }
        self.pending.extend(bytes);
        true
    }

    /// [`UserOutput::write`] of `parts` joined, without joining them first:
    /// all queued, or none.
    #[must_use]
    pub fn write_parts(&mut self, parts: &[&[u8]]) -> bool {
        if self.mode == Mode::Closed {
            return true;
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if self.pending.len() + len > MAX_PENDING_OUTPUT {
            return false;
        }
        for part in parts {
            self.pending.extend(part);
        }
        true
    }

    /// Bytes waiting for the descriptor.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Writes what the descriptor takes now, without waiting.
    pub fn flush(&mut self) {
        while !self.pending.is_empty() {
            let Some(file) = self.file.as_mut() else { return };
            let front = self.pending.front();
            let result = match self.mode {
                Mode::Closed => return,
                Mode::Direct => file.write(front),
                Mode::Polled(Access::NonBlocking) => file.write(front),
                Mode::Polled(Access::PollFirst) => {
                    if !fd::ready_now(&*file, PollFlags::OUT) {
                        return;
                    }
                    file.write(&front[..front.len().min(PIPE_BUF)])
                }
            };
            match result {
                Ok(0) => return self.fail(&io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => self.pending.advance(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return self.fail(&e),
            }
        }
    }

    /// Registers the descriptor with the loop's poll under `token` for
    /// writability while output waits (re-arming it), and deregisters it
    /// when nothing does. Call it before the loop sleeps.
    pub fn update_interest(&mut self, registry: &Registry, token: Token) {
        let Some(file) = self.file.as_ref() else { return };
        let fd = file.as_raw_fd();
        let want = matches!(self.mode, Mode::Polled(_)) && !self.pending.is_empty();
        let result = match (want, self.registered) {
            (true, false) => registry.register(&mut SourceFd(&fd), token, Interest::WRITABLE),
            (true, true) => registry.reregister(&mut SourceFd(&fd), token, Interest::WRITABLE),
            (false, true) => registry.deregister(&mut SourceFd(&fd)),
            (false, false) => return,
        };
        match result {
            Ok(()) => self.registered = want,
            Err(e) => {
                // Cannot be polled after all: write it as it comes.
                tracing::debug!(error = %e, "standard output cannot be polled");
                self.registered = false;
                self.mode = Mode::Direct;
            }
        }
    }

    /// Writes what waits, waiting for the descriptor until `deadline` at the
    /// latest; what is left then stays queued. For the end of the program
    /// (and before it stops on Ctrl-Z), when the loop no longer runs.
    pub fn drain(&mut self, deadline: Instant) {
        loop {
            self.flush();
            let Some(file) = self.file.as_ref().filter(|_| !self.pending.is_empty()) else {
                return;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::debug!(left = self.pending.len(), "output not taken in time");
                return;
            }
            fd::wait_ready(file, PollFlags::OUT, left);
        }
    }

    fn fail(&mut self, e: &io::Error) {
        // Output that cannot be written (a closed pipe) is not worth dying
        // for: the chat and the history go on.
        tracing::debug!(error = %e, "writing standard output failed; dropping output");
        self.mode = Mode::Closed;
        self.pending.clear();
    }
}

/// Bytes waiting to be written: appended at the back, written from the
/// front. One contiguous buffer, so a line is appended with one copy and
/// written with one call.
#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    /// Bytes at the front already written.
    start: usize,
}

impl Pending {
    fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn extend(&mut self, bytes: &[u8]) {
        // Reclaims the written front once it outweighs the rest, so the
        // copy is paid for by the writes that made it.
        if self.start > 0 && self.start >= self.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn front(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The first `n` bytes were written.
    fn advance(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A pipe: (read end, output on the write end).
    fn pipe() -> (File, UserOutput) {
        let (r, w) = rustix::pipe::pipe().unwrap();
        (File::from(r), UserOutput::from_file(File::from(w)))
    }

    #[test]
    fn a_pipe_nobody_reads_never_blocks_and_the_bound_holds() {
        let (mut reader, mut out) = pipe();
        // A pipe is opened again, non-blocking, as our own, and grown.
        assert_eq!(out.mode, Mode::Polled(Access::NonBlocking));
        assert_eq!(rustix::pipe::fcntl_getpipe_size(&reader).unwrap(), crate::PIPE_SIZE);
        let line = [b'x'; 1000];
        let mut queued = 0;
        // Fills the pipe, then the buffer up to its bound; no write waits.
        while out.write(&line) {
            queued += line.len();
            assert!(out.pending() <= MAX_PENDING_OUTPUT);
            out.flush();
        }
        assert!(out.pending() + line.len() > MAX_PENDING_OUTPUT);
        // A write that does not fit is refused whole; a smaller one fits.
        let before = out.pending();
        assert!(!out.write(&line));
        assert_eq!(out.pending(), before);
        // At exit, the drain gives up at its deadline.
        out.drain(Instant::now() + Duration::from_millis(20));
        assert_eq!(out.pending(), before);
        // Once read, everything comes out, in order, nothing twice.
        let collect = std::thread::spawn(move || {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            all
        });
        out.drain(Instant::now() + Duration::from_secs(10));
        assert_eq!(out.pending(), 0);
        drop(out);
        let all = collect.join().unwrap();
        assert_eq!(all.len(), queued);
        assert!(all.iter().all(|&b| b == b'x'));
    }

    #[test]
    fn a_closed_pipe_drops_output() {
        let (reader, mut out) = pipe();
        drop(reader);
        assert!(out.write(b"nobody reads this\n"));
        out.flush();
        assert_eq!(out.pending(), 0);
        assert!(out.write(b"nor this\n"));
        assert_eq!(out.mode, Mode::Closed);
    }

    #[test]
    fn a_regular_file_is_written_at_once() {
        let path = std::env::temp_dir().join(format!("p2pchat-output-{}.txt", std::process::id()));
        let file = File::create(&path).unwrap();
        let mut out = UserOutput::from_file(file);
        assert_eq!(out.mode, Mode::Direct);
        assert!(out.write(b"one\n"));
        assert!(out.write(b"two\n"));
        // Queued until flushed, then written at once.
        assert_eq!(out.pending(), 8);
        out.flush();
        assert_eq!(out.pending(), 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        std::fs::remove_file(&path).unwrap();
    }
}
