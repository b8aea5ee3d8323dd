//! What the user's input and output need to know about a descriptor so that
//! the loop never waits on it: whether it is readable or writable now, and a
//! terminal's own non-blocking handle.
//!
//! `O_NONBLOCK` belongs to the *open file description*, which standard input
//! and output share with the shell (and whatever else the terminal or pipe
//! was inherited by): setting it on them would leak to the shell and to the
//! other processes. A terminal is opened again by its name instead: the new
//! description is ours alone, and reading or writing it never blocks. Other
//! descriptors keep their blocking description and are touched only when a
//! zero-timeout `poll` says they are ready now.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::{OFlags, fcntl_getfl};

/// What a pipe the user's input or output comes through is asked to hold
/// (Linux's default is 64 KiB): with more room, a burst of lines goes
/// through it in fewer reads and writes, and the process at its other end
/// is woken less often. 1 MiB is Linux's default limit for an unprivileged
/// process (`/proc/sys/fs/pipe-max-size`). Best effort: a pipe the kernel
/// refuses to grow (a lower limit, or the user's pipes already holding
/// `pipe-user-pages-soft`) stays as it is.
pub const PIPE_SIZE: usize = 1024 * 1024;

/// How a descriptor is read or written without blocking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Ours alone and non-blocking (a terminal opened again, or a file that
    /// came non-blocking): it reports `WouldBlock`.
    NonBlocking,
    /// Shared and blocking (a pipe, a socket): touched only when a
    /// zero-timeout `poll` says it is ready.
    PollFirst,
}

/// `file`'s terminal, opened again for reading (`write: false`) or writing,
/// non-blocking; `None` if `file` is not a terminal or that fails.
pub(crate) fn reopen_terminal(file: &File, write: bool) -> Option<File> {
    if !rustix::termios::isatty(file) {
        return None;
    }
    let path = match rustix::termios::ttyname(file, Vec::new()) {
        Ok(path) => path,
        Err(e) => {
            tracing::debug!(error = %e, "the terminal has no name to open again");
            return None;
        }
    };
    let rw = if write { OFlags::WRONLY } else { OFlags::RDONLY };
    let flags = rw | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    match rustix::fs::open(path.as_c_str(), flags, rustix::fs::Mode::empty()) {
        Ok(fd) => Some(File::from(fd)),
        Err(e) => {
            tracing::debug!(error = %e, ?path, "cannot open the terminal again");
            None
        }
    }
}

/// `file`'s pipe (or FIFO), opened again through `/proc/self/fd` for
/// reading (`write: false`) or writing, non-blocking: on Linux that makes a
/// new open file description of the same pipe, ours alone, so `O_NONBLOCK`
/// leaks to nobody and a read or write never waits. That saves the `poll`
/// before every read or write, and lets a write fill the pipe's buffer
/// rather than [`PIPE_BUF`](crate::PIPE_BUF) bytes at a time. The pipe is
/// asked to hold [`PIPE_SIZE`]. `None` if `file` is not a pipe or that
/// fails (no `/proc`, or no reader yet for a FIFO's write end).
pub(crate) fn reopen_pipe(file: &File, write: bool) -> Option<File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileTypeExt;
    if !file.metadata().is_ok_and(|m| m.file_type().is_fifo()) {
        return None;
    }
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    let rw = if write { OFlags::WRONLY } else { OFlags::RDONLY };
    let flags = rw | OFlags::NONBLOCK | OFlags::CLOEXEC;
    match rustix::fs::open(path.as_str(), flags, rustix::fs::Mode::empty()) {
        Ok(fd) => {
            #[cfg(target_os = "linux")]
            if let Err(e) = rustix::pipe::fcntl_setpipe_size(&fd, PIPE_SIZE) {
                tracing::debug!(error = %e, "the pipe keeps its size");
            }
            Some(File::from(fd))
        }
        Err(e) => {
            tracing::debug!(error = %e, "cannot open the pipe again");
            None
        }
    }
}

/// How to access `file`: non-blocking if its description already is.
pub(crate) fn access_of(file: &File) -> Access {
    match fcntl_getfl(file) {
        Ok(flags) if flags.contains(OFlags::NONBLOCK) => Access::NonBlocking,
        _ => Access::PollFirst,
    }
}

/// Whether `fd` is ready for `flags` now (or in a state, hang-up or error,
/// where the read or write returns at once). `false` if `poll` fails.
pub(crate) fn ready_now(fd: impl AsFd, flags: PollFlags) -> bool {
    let mut fds = [PollFd::new(&fd, flags)];
    let zero = Timespec::default();
    match poll(&mut fds, Some(&zero)) {
        Ok(n) => n > 0 && !fds[0].revents().contains(PollFlags::NVAL),
        Err(e) => {
            tracing::debug!(error = %e, "poll failed");
            false
        }
    }
}

/// Waits until `fd` is ready for `flags` or `timeout` has passed; whether
/// it is ready.
pub(crate) fn wait_ready(fd: impl AsFd, flags: PollFlags, timeout: std::time::Duration) -> bool {
    let mut fds = [PollFd::new(&fd, flags)];
    // Too long to say: wait without a limit.
    let timeout = Timespec::try_from(timeout).ok();
    match poll(&mut fds, timeout.as_ref()) {
        Ok(n) => n > 0 && !fds[0].revents().contains(PollFlags::NVAL),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
        Err(e) => {
            tracing::debug!(error = %e, "poll failed");
            false
        }
    }
}
