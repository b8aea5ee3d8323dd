//! The terminal in non-canonical, no-echo mode while the client runs, and
//! back as it was after.
//!
//! `ICANON` and `ECHO` are cleared, and `IXON`: Ctrl-S and Ctrl-Q reach the
//! line editor (which ignores them) instead of stopping and restarting the
//! terminal's output, which would leave the client unable to print and its
//! chat waiting. `ISIG` stays, so Ctrl-C still raises `SIGINT` (which the
//! loop handles), and the output still turns `\n` into `\r\n`. Reads return
//! as soon as one byte is there (`VMIN` 1, `VTIME` 0).
//!
//! [`RawMode`] restores the saved settings when dropped: on a normal return,
//! on an error return and while a panic unwinds. Nothing can restore them
//! after `SIGKILL`; `stty sane` does. While the process is stopped (Ctrl-Z)
//! the caller restores them and reapplies raw mode when it continues.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::termios::{
    InputModes, LocalModes, OptionalActions, SpecialCodeIndex, Termios, tcgetattr, tcsetattr,
};

/// A terminal in non-canonical, no-echo mode without output flow control
/// until this is dropped.
#[derive(Debug)]
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
    raw: Termios,
}

impl RawMode {
    /// Puts the terminal `fd` refers to in non-canonical, no-echo mode
    /// without output flow control; fails (changing nothing) if it is not a
    /// terminal.
    pub fn enable(fd: OwnedFd) -> io::Result<Self> {
        let saved = tcgetattr(&fd)?;
        let mut raw = saved.clone();
        raw.local_modes.remove(LocalModes::ICANON | LocalModes::ECHO);
        raw.input_modes.remove(InputModes::IXON);
        raw.special_codes[SpecialCodeIndex::VMIN] = 1;
        raw.special_codes[SpecialCodeIndex::VTIME] = 0;
        tcsetattr(&fd, OptionalActions::Now, &raw)?;
        Ok(Self { fd, saved, raw })
    }

    /// Standard input's terminal.
    pub fn stdin() -> io::Result<Self> {
        Self::enable(io::stdin().as_fd().try_clone_to_owned()?)
    }

    /// Puts the saved settings back (as when dropped).
    pub fn restore(&self) -> io::Result<()> {
        Ok(tcsetattr(&self.fd, OptionalActions::Now, &self.saved)?)
    }

    /// Sets the terminal raw again, after [`RawMode::restore`] or after
    /// something else (a shell, when the process was stopped) changed it.
    pub fn reapply(&self) -> io::Result<()> {
        Ok(tcsetattr(&self.fd, OptionalActions::Now, &self.raw)?)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            tracing::warn!(error = %e, "cannot restore the terminal settings (try `stty sane`)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

    /// A new pseudo-terminal; returns (controller, terminal).
    fn pty() -> (OwnedFd, OwnedFd) {
        let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&controller).unwrap();
        unlockpt(&controller).unwrap();
        let name = ptsname(&controller, Vec::new()).unwrap();
        let tty = rustix::fs::open(name.as_c_str(), OFlags::RDWR | OFlags::NOCTTY, Mode::empty())
            .unwrap();
        (controller, tty)
    }

    fn modes(fd: &OwnedFd) -> LocalModes {
        tcgetattr(fd).unwrap().local_modes
    }

    #[test]
    fn raw_while_held_restored_on_drop() {
        let (_controller, tty) = pty();
        let before = tcgetattr(&tty).unwrap();
        assert!(before.local_modes.contains(LocalModes::ICANON | LocalModes::ECHO));
        let raw = RawMode::enable(tty.try_clone().unwrap()).unwrap();
        let during = tcgetattr(&tty).unwrap();
        assert!(!during.local_modes.intersects(LocalModes::ICANON | LocalModes::ECHO));
        assert!(during.local_modes.contains(LocalModes::ISIG));
        assert_eq!(during.output_modes, before.output_modes);
        assert!(before.input_modes.contains(InputModes::IXON));
        assert_eq!(during.input_modes, before.input_modes - InputModes::IXON);
        drop(raw);
        let after = tcgetattr(&tty).unwrap();
        assert_eq!(after.local_modes, before.local_modes);
        assert_eq!(after.input_modes, before.input_modes);
        assert_eq!(
            after.special_codes[SpecialCodeIndex::VMIN],
            before.special_codes[SpecialCodeIndex::VMIN]
        );
    }

    #[test]
    fn restore_and_reapply() {
        let (_controller, tty) = pty();
        let raw = RawMode::enable(tty.try_clone().unwrap()).unwrap();
        raw.restore().unwrap();
        assert!(modes(&tty).contains(LocalModes::ICANON | LocalModes::ECHO));
        raw.reapply().unwrap();
        assert!(!modes(&tty).intersects(LocalModes::ICANON | LocalModes::ECHO));
        drop(raw);
        assert!(modes(&tty).contains(LocalModes::ICANON | LocalModes::ECHO));
    }

    #[test]
    fn restored_when_a_panic_unwinds() {
        let (_controller, tty) = pty();
        let fd = tty.try_clone().unwrap();
        let result = std::panic::catch_unwind(move || {
            let _raw = RawMode::enable(fd).unwrap();
            panic!("a bug");
        });
        assert!(result.is_err());
        assert!(modes(&tty).contains(LocalModes::ICANON | LocalModes::ECHO));
    }

    #[test]
    fn not_a_terminal_is_an_error() {
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(RawMode::enable(OwnedFd::from(file)).is_err());
    }
}
