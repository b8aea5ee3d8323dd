//! The user's input: standard input cut into lines, without blocking the loop.
//!
//! Standard input may be a terminal, a pipe or a regular file (`p2pchat
//! client < script.txt`). It is never read with a blocking read that could
//! wait: a readiness event the loop saw earlier is only a hint, since what
//! was readable then may be gone now (Ctrl-C and Ctrl-Z make the terminal
//! throw away its pending input).
//!
//! - A terminal is opened again by its name, non-blocking: that open file
//!   description is ours alone (setting `O_NONBLOCK` on the one shared with
//!   the shell would leak to the shell), and a read with nothing there
//!   returns `WouldBlock`. A pipe is opened again the same way, through
//!   `/proc/self/fd` (Linux).
//! - Such a description of our own stays "ready" until a read returns
//!   `WouldBlock`; the edge-triggered poll reports the next bytes after
//!   that, so it is registered once, and read in chunks of [`INPUT_CHUNK`].
//! - A pipe that cannot be opened again (no `/proc`), a socket, or a
//!   terminal that cannot be opened again keeps its blocking description
//!   and is read only right after a zero-timeout `poll` says it is readable
//!   now (nothing else reads it, so it stays readable until the read), then
//!   re-registered to re-arm the edge-triggered poll for the rest.
//! - A regular file (or `/dev/null`) cannot be registered (`EPERM`): it is
//!   always readable and a read never blocks, so it is read whenever input is
//!   wanted and the loop polls with a zero timeout meanwhile.
//!
//! [`UserInput`] only reads; what the bytes mean is up to an
//! [`InputDecoder`]: [`LineSplitter`] cuts them at line ends (a pipe, a file
//! or a terminal in canonical mode), a line editor can take a raw terminal's
//! keys. The decoder says when it wants more: [`LineSplitter`] reads nothing
//! while earlier lines are still waiting to be used. The loop takes lines
//! only when the application can act on them, so a script runs at the pace
//! of the chat, and at most one [`INPUT_CHUNK`] of input is held in memory.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use p2pchat_core::MAX_TEXT_LEN;
use rustix::event::PollFlags;

use crate::fd::{self, Access};

/// Longest input line, in bytes, not counting the line end: the longest
/// text message. A longer line is dropped whole and reported as
/// [`InputItem::TooLong`].
pub const MAX_LINE_LEN: usize = MAX_TEXT_LEN;

/// Bytes read from standard input at a time: a quarter of the pipe a script
/// comes through ([`PIPE_SIZE`](crate::PIPE_SIZE)), about 2,500 lines of
/// 100 bytes.
pub const INPUT_CHUNK: usize = 256 * 1024;

/// One unit of user input, in the order typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputItem {
    /// A line, without its line end (`\n` or `\r\n`). Invalid UTF-8 is
    /// replaced by U+FFFD.
    Line(String),
    /// A line longer than [`MAX_LINE_LEN`] bytes was dropped.
    TooLong,
    /// The input ended (Ctrl-D, end of script). Nothing follows.
    Eof,
}

/// What [`UserInput`] feeds the bytes it reads to: turns them into
/// [`InputItem`]s, in order.
pub trait InputDecoder {
    /// Adds input bytes.
    fn push(&mut self, bytes: &[u8]);
    /// Marks the end of input (end of file, or a read error).
    fn push_eof(&mut self);
    /// The next item, without taking it.
    fn peek(&self) -> Option<&InputItem>;
    /// Takes the next item.
    fn pop(&mut self) -> Option<InputItem>;
    /// Whether the input has ended (an [`InputItem::Eof`] was queued):
    /// nothing more is read.
    fn ended(&self) -> bool;
    /// Whether to read more input now. The default, for input that nobody
    /// watches being read: only when nothing is waiting, so that at most
    /// one chunk is held.
    fn wants_input(&self) -> bool {
        !self.ended() && self.peek().is_none()
    }
}

/// Cuts a byte stream into [`InputItem`]s, holding at most one partial line
/// of at most [`MAX_LINE_LEN`] + 1 bytes.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    discarding: bool,
    items: VecDeque<InputItem>,
    ended: bool,
}

impl LineSplitter {
    /// An empty splitter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds input bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.ended {
            return;
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let (part, newline) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = &rest[part.len() + usize::from(newline)..];
            if !self.discarding {
                // One byte of slack for a `\r` before the `\n`.
                if self.partial.len() + part.len() > MAX_LINE_LEN + 1 {
                    self.discarding = true;
                    self.partial.clear();
                    self.items.push_back(InputItem::TooLong);
                } else if self.partial.is_empty() && newline {
                    // A whole line in one chunk: one allocation of its size.
                    self.partial = part.to_vec();
                } else {
                    self.partial.extend_from_slice(part);
                }
            }
            if newline {
                self.end_line();
            }
        }
    }

    /// Marks the end of input: a last line without a line end still counts.
    pub fn push_eof(&mut self) {
        if self.ended {
            return;
        }
        if !self.partial.is_empty() {
            self.end_line();
        }
        self.ended = true;
        self.items.push_back(InputItem::Eof);
    }

    fn end_line(&mut self) {
        if self.discarding {
            self.discarding = false;
            return;
        }
        let mut line = std::mem::take(&mut self.partial);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > MAX_LINE_LEN {
            self.items.push_back(InputItem::TooLong);
        } else {
            // Valid UTF-8 (checked fast) is taken as it is, without a copy.
            let text = String::from_utf8(line)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            self.items.push_back(InputItem::Line(text));
        }
    }

    /// The next item, without taking it.
    pub fn peek(&self) -> Option<&InputItem> {
        self.items.front()
    }

    /// Takes the next item.
    pub fn pop(&mut self) -> Option<InputItem> {
        self.items.pop_front()
    }

    /// Whether the end of input has been pushed.
    pub fn ended(&self) -> bool {
        self.ended
    }
}

impl InputDecoder for LineSplitter {
    fn push(&mut self, bytes: &[u8]) {
        LineSplitter::push(self, bytes);
    }
    fn push_eof(&mut self) {
        LineSplitter::push_eof(self);
    }
    fn peek(&self) -> Option<&InputItem> {
        LineSplitter::peek(self)
    }
    fn pop(&mut self) -> Option<InputItem> {
        LineSplitter::pop(self)
    }
    fn ended(&self) -> bool {
        LineSplitter::ended(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Registered with the poll; `ready` is set by events, and the access
    /// says how a read is kept from blocking.
    Polled(Access),
    /// Cannot be polled; always ready.
    AlwaysReady,
}

/// Standard input (or any file), read without blocking the loop. The bytes
/// go to the [`InputDecoder`] passed to [`UserInput::peek`].
#[derive(Debug)]
pub struct UserInput {
    file: Option<File>,
    mode: Mode,
    token: Token,
    ready: bool,
    /// See [`UserInput::on_hangup`].
    hung_up: bool,
    buf: Vec<u8>,
}

impl UserInput {
    /// Standard input. A closed descriptor 0 reads as an empty input.
    pub fn stdin(registry: &Registry, token: Token) -> io::Result<Self> {
        match io::stdin().as_fd().try_clone_to_owned() {
            Ok(fd) => Self::from_file(File::from(fd), registry, token),
            Err(e) => {
                tracing::debug!(error = %e, "standard input is closed");
                // No file: the first read reports the end of input.
                Ok(Self {
                    file: None,
                    mode: Mode::AlwaysReady,
                    token,
                    ready: true,
                    hung_up: false,
                    buf: Vec::new(),
                })
            }
        }
    }

    /// Reads from `file`: a terminal (which is opened again, see the
    /// module documentation), a pipe, a socket or a regular file.
    pub fn from_file(file: File, registry: &Registry, token: Token) -> io::Result<Self> {
        let file = fd::reopen_terminal(&file, false)
            .or_else(|| fd::reopen_pipe(&file, false))
            .unwrap_or(file);
        let fd = file.as_raw_fd();
        let mode = match registry.register(&mut SourceFd(&fd), token, Interest::READABLE) {
            Ok(()) => Mode::Polled(fd::access_of(&file)),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Mode::AlwaysReady,
            Err(e) => return Err(e),
        };
        tracing::debug!(?mode, "user input");
        Ok(Self {
            file: Some(file),
            mode,
            token,
            ready: mode == Mode::AlwaysReady,
            hung_up: false,
            buf: vec![0; INPUT_CHUNK],
        })
    }

    /// The token the input is registered under (when it can be polled).
    pub fn token(&self) -> Token {
        self.token
    }

    /// Records a readiness event for the input.
    pub fn on_event(&mut self) {
        self.ready = true;
    }

    /// Records that the poll reported the input's end (a hang-up, or an
    /// error): from now on only a read that says `WouldBlock` or returns
    /// the end clears its readiness.
    pub fn on_hangup(&mut self) {
        self.ready = true;
        self.hung_up = true;
    }

    /// Whether the loop must not sleep: the input is readable now (a regular
    /// file) and `decoder` wants more.
    pub fn wants_zero_timeout(&self, decoder: &impl InputDecoder) -> bool {
        self.ready && self.mode == Mode::AlwaysReady && decoder.wants_input()
    }

    /// The next item of `decoder`, first reading one chunk into it if it
    /// wants more and the input is ready. `None` means nothing yet: wait for
    /// the next event. Take the item with [`InputDecoder::pop`].
    pub fn peek<'d, D: InputDecoder>(
        &mut self,
        registry: &Registry,
        decoder: &'d mut D,
    ) -> Option<&'d InputItem> {
        if self.ready && decoder.wants_input() {
            self.read_chunk(registry, decoder);
        }
        decoder.peek()
    }

    fn read_chunk(&mut self, registry: &Registry, decoder: &mut impl InputDecoder) {
        let Some(file) = self.file.as_mut() else {
            decoder.push_eof();
            self.ready = false;
            return;
        };
        if self.mode == Mode::Polled(Access::PollFirst) && !fd::ready_now(&*file, PollFlags::IN) {
            // The event was stale: wait for the next one.
            self.rearm(registry);
            return;
        }
        let result = loop {
            match file.read(&mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let own = self.mode == Mode::Polled(Access::NonBlocking);
        match result {
            Ok(0) => {
                decoder.push_eof();
                self.release(registry);
                return;
            }
            // Our own non-blocking description stays ready until a read
            // says it would block: the edge-triggered poll reports the next
            // bytes after that, so no re-arming is needed.
            Ok(n) if own => {
                // A short read emptied the pipe or terminal: the next bytes
                // raise a new edge. Not once the writer has gone: the end
                // of input raises no new edge, and the next read must see it.
                if n < self.buf.len() && !self.hung_up {
                    self.ready = false;
                }
                return decoder.push(&self.buf[..n]);
            }
            Ok(n) => decoder.push(&self.buf[..n]),
            Err(e) if own && e.kind() == io::ErrorKind::WouldBlock => {
                self.ready = false;
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading standard input failed; treating it as ended");
                decoder.push_eof();
                self.release(registry);
                return;
            }
        }
        self.rearm(registry);
    }

    /// After a read (or a stale event) of a polled input: waits for the next
    /// event, and re-arms the poll so that, if more is readable already, it
    /// reports it again.
    fn rearm(&mut self, registry: &Registry) {
        let Mode::Polled(_) = self.mode else { return };
        self.ready = false;
        if let Some(file) = self.file.as_ref() {
            let fd = file.as_raw_fd();
            if let Err(e) = registry.reregister(&mut SourceFd(&fd), self.token, Interest::READABLE)
            {
                tracing::warn!(error = %e, "re-arming standard input failed");
            }
        }
    }

    fn release(&mut self, registry: &Registry) {
        if let Some(file) = self.file.take() {
            if let Mode::Polled(_) = self.mode {
                let fd = file.as_raw_fd();
                let _ = registry.deregister(&mut SourceFd(&fd));
            }
        }
        self.ready = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    fn items(chunks: &[&[u8]], eof: bool) -> Vec<InputItem> {
        let mut s = LineSplitter::new();
        for c in chunks {
            s.push(c);
        }
        if eof {
            s.push_eof();
        }
        std::iter::from_fn(|| s.pop()).collect()
    }

    fn line(s: &str) -> InputItem {
        InputItem::Line(s.to_owned())
    }

    #[test]
    fn splits_lines_across_chunks() {
        assert_eq!(
            items(&[b"ab", b"c\nd", b"e\r\n\n"], false),
            vec![line("abc"), line("de"), line("")]
        );
        assert_eq!(items(&[b"x\ny"], true), vec![line("x"), line("y"), InputItem::Eof]);
        assert_eq!(items(&[b"x\n"], true), vec![line("x"), InputItem::Eof]);
        assert_eq!(items(&[b"\xff\n"], false), vec![line("\u{fffd}")]);
    }

    #[test]
    fn lines_end_at_their_first_newline_wherever_it_falls() {
        // Two line ends in one chunk: at `at` and at its last byte.
        for len in 1..50 {
            for at in 0..len {
                let mut bytes = vec![b'x'; len];
                bytes[at] = b'\n';
                bytes[len - 1] = b'\n';
                let mut want = vec![line(&"x".repeat(at))];
                if at < len - 1 {
                    want.push(line(&"x".repeat(len - at - 2)));
                }
                assert_eq!(items(&[&bytes], false), want, "{len} bytes, newline at {at}");
            }
        }
    }

    #[test]
    fn overlong_lines_are_dropped_whole() {
        let max = vec![b'a'; MAX_LINE_LEN];
        let long = vec![b'a'; MAX_LINE_LEN + 1];
        let max_line = line(&"a".repeat(MAX_LINE_LEN));
        assert_eq!(items(&[&max, b"\r\n"], false), vec![max_line.clone()]);
        assert_eq!(items(&[&long, b"\nok\n"], false), vec![InputItem::TooLong, line("ok")]);
        // Very long, in many chunks: one TooLong, memory stays bounded.
        let mut s = LineSplitter::new();
        for _ in 0..1000 {
            s.push(&[b'z'; 1000]);
            assert!(s.partial.len() <= MAX_LINE_LEN + 1);
        }
        s.push(b"\nnext\n");
        assert_eq!(
            std::iter::from_fn(|| s.pop()).collect::<Vec<_>>(),
            vec![InputItem::TooLong, line("next")]
        );
        // Over-long last line before EOF.
        assert_eq!(items(&[&long], true), vec![InputItem::TooLong, InputItem::Eof]);
    }

    fn drain(input: &mut UserInput, poll: &mut mio::Poll) -> Vec<InputItem> {
        let mut got = Vec::new();
        let mut lines = LineSplitter::new();
        let mut events = mio::Events::with_capacity(4);
        for _ in 0..1000 {
            while let Some(item) = input.peek(poll.registry(), &mut lines).cloned() {
                lines.pop();
                let end = item == InputItem::Eof;
                got.push(item);
                if end {
                    return got;
                }
            }
            let timeout = if input.wants_zero_timeout(&lines) {
                Duration::ZERO
            } else {
                Duration::from_secs(5)
            };
            poll.poll(&mut events, Some(timeout)).unwrap();
            for event in events.iter() {
                input.on_event();
                if event.is_read_closed() || event.is_error() {
                    input.on_hangup();
                }
            }
        }
        panic!("input never ended: {got:?}");
    }

    #[test]
    fn regular_file_is_always_ready() {
        let path = std::env::temp_dir().join(format!("p2pchat-input-{}.txt", std::process::id()));
        std::fs::write(&path, b"1\nBob\nhello\n").unwrap();
        let file = File::open(&path).unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let mut input = UserInput::from_file(file, poll.registry(), Token(9)).unwrap();
        assert_eq!(input.mode, Mode::AlwaysReady);
        let got = drain(&mut input, &mut poll);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(got, vec![line("1"), line("Bob"), line("hello"), InputItem::Eof]);
    }

    #[test]
    fn stream_is_polled_and_rearmed() {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let file = File::from(std::os::fd::OwnedFd::from(a));
        let mut poll = mio::Poll::new().unwrap();
        let mut input = UserInput::from_file(file, poll.registry(), Token(9)).unwrap();
        assert_eq!(input.mode, Mode::Polled(Access::PollFirst));
        // More than one chunk, so the re-arm is needed to read the rest.
        let big = "x".repeat(100);
        let mut text = String::new();
        for _ in 0..200 {
            text.push_str(&big);
            text.push('\n');
        }
        b.write_all(text.as_bytes()).unwrap();
        drop(b);
        let got = drain(&mut input, &mut poll);
        assert_eq!(got.len(), 201);
        assert!(got[..200].iter().all(|i| *i == line(&big)));
        assert_eq!(got[200], InputItem::Eof);
    }

    #[test]
    fn a_pipe_is_read_as_our_own_until_its_end() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let mut input = UserInput::from_file(File::from(r), poll.registry(), Token(9)).unwrap();
        assert_eq!(input.mode, Mode::Polled(Access::NonBlocking));
        assert_eq!(rustix::pipe::fcntl_getpipe_size(&w).unwrap(), crate::PIPE_SIZE);
        let mut w = File::from(w);
        // A short read, then the writer goes: its end is still read.
        w.write_all(b"first\n").unwrap();
        let mut lines = LineSplitter::new();
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
        input.on_event();
        assert_eq!(input.peek(poll.registry(), &mut lines), Some(&line("first")));
        lines.pop();
        assert_eq!(input.peek(poll.registry(), &mut lines), None);
        w.write_all(b"second\nthird").unwrap();
        drop(w);
        assert_eq!(
            drain(&mut input, &mut poll),
            vec![line("second"), line("third"), InputItem::Eof]
        );
    }

    #[test]
    fn a_stale_event_does_not_block() {
        // Readable once, then drained behind the input's back (as a
        // terminal drops its input on Ctrl-C): the remembered event must
        // not lead to a read that waits.
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let file = File::from(std::os::fd::OwnedFd::from(a));
        let mut thief = file.try_clone().unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let mut input = UserInput::from_file(file, poll.registry(), Token(9)).unwrap();
        b.write_all(b"gone\n").unwrap();
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
        assert!(!events.is_empty());
        input.on_event();
        let mut stolen = [0u8; 16];
        assert_eq!(thief.read(&mut stolen).unwrap(), 5);
        let mut lines = LineSplitter::new();
        assert_eq!(input.peek(poll.registry(), &mut lines), None);
        // What comes next is read as usual.
        b.write_all(b"next\n").unwrap();
        drop(b);
        assert_eq!(drain(&mut input, &mut poll), vec![line("next"), InputItem::Eof]);
    }

    #[test]
    fn a_terminal_is_read_through_its_own_non_blocking_handle() {
        use rustix::fs::{Mode as FileMode, OFlags, fcntl_getfl};
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&controller).unwrap();
        unlockpt(&controller).unwrap();
        let name = ptsname(&controller, Vec::new()).unwrap();
        let tty =
            rustix::fs::open(name.as_c_str(), OFlags::RDWR | OFlags::NOCTTY, FileMode::empty())
                .unwrap();
        let shared = tty.try_clone().unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let mut input = UserInput::from_file(File::from(tty), poll.registry(), Token(9)).unwrap();
        assert_eq!(input.mode, Mode::Polled(Access::NonBlocking));
        // The description shared with others stays blocking.
        assert!(!fcntl_getfl(&shared).unwrap().contains(OFlags::NONBLOCK));
        // An event with nothing there: the read returns at once.
        input.on_event();
        let mut lines = LineSplitter::new();
        assert_eq!(input.peek(poll.registry(), &mut lines), None);
        let mut keys = File::from(controller);
        keys.write_all(b"typed\n").unwrap();
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
        assert!(!events.is_empty());
        input.on_event();
        assert_eq!(input.peek(poll.registry(), &mut lines), Some(&line("typed")));
    }

    #[test]
    fn closed_input_reads_as_eof() {
        let poll = mio::Poll::new().unwrap();
        let mut input = UserInput {
            file: None,
            mode: Mode::AlwaysReady,
            token: Token(9),
            ready: true,
            hung_up: false,
            buf: vec![],
        };
        let mut lines = LineSplitter::new();
        assert!(input.wants_zero_timeout(&lines));
        assert_eq!(input.peek(poll.registry(), &mut lines), Some(&InputItem::Eof));
        assert!(!input.wants_zero_timeout(&lines));
    }
}
