//! A client on a pseudo-terminal, for the end-to-end tests of the line
//! editor and the screen: keys in, what it shows out, synchronised on what
//! it shows with deadlines.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::common::{self, LINE_TIMEOUT, Proc, logged_in_client, server, temp_dir};
use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{InputModes, LocalModes, Winsize, tcgetattr, tcsetwinsize};

/// How long a client may take to exit after a signal. The goal is well
/// under a second; the bound is generous so that a loaded machine does not
/// fail the test, and the tests print the time measured.
pub const EXIT_DEADLINE: Duration = Duration::from_secs(5);

fn set_size(terminal: impl AsFd, cols: u16, rows: u16) {
    let size = Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    tcsetwinsize(terminal, size).expect("set the terminal size");
}

/// Whether the test reads what the client shows; see
/// [`TtyClient::stop_reading`].
#[derive(Default)]
struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
}

/// A client on a pseudo-terminal.
pub struct TtyClient {
    child: Option<Child>,
    /// The client's process id.
    pub pid: u32,
    /// The terminal side, kept to look at its settings.
    pub tty: OwnedFd,
    /// The keyboard and screen side.
    pub keys: std::fs::File,
    screen: Receiver<Vec<u8>>,
    /// Everything shown so far, as text.
    seen: String,
    /// Everything shown so far, as bytes, for a terminal emulator.
    pub raw: Vec<u8>,
    /// How much of `raw` is in `seen`.
    decoded: usize,
    /// How much of `seen` was matched already.
    matched: usize,
    gate: Arc<Gate>,
}

impl TtyClient {
    pub fn spawn(name: &str, server: std::net::SocketAddr, dir: &Path) -> TtyClient {
        Self::spawn_sized(name, server, dir, 0, 0)
    }

    /// A client on a terminal of `cols` columns and `rows` rows (0: a
    /// terminal that does not tell its size).
    pub fn spawn_sized(
        name: &str,
        server: std::net::SocketAddr,
        dir: &Path,
        cols: u16,
        rows: u16,
    ) -> TtyClient {
        let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        set_size(&controller, cols, rows);
        grantpt(&controller).expect("grantpt");
        unlockpt(&controller).expect("unlockpt");
        let path = ptsname(&controller, Vec::new()).expect("ptsname");
        let open_tty = || {
            rustix::fs::open(path.as_c_str(), OFlags::RDWR | OFlags::NOCTTY, Mode::empty())
                .expect("open the terminal")
        };
        let tty = open_tty();
        let fresh = tcgetattr(&tty).expect("tcgetattr").local_modes;
        assert!(fresh.contains(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG));
        let listen = std::net::SocketAddr::new(server.ip(), 0).to_string();
        let history = format!("{name}.txt");
        let child = Command::new(common::binary())
            .args(["client", "--name", name, "--server", &server.to_string()])
            .args(["--listen", &listen, "--history", &history])
            .current_dir(dir)
            .stdin(Stdio::from(open_tty()))
            .stdout(Stdio::from(open_tty()))
            .stderr(Stdio::from(open_tty()))
            .env("RUST_LOG", "warn")
            .env("XDG_CONFIG_HOME", dir.join(format!("config-{name}")))
            .spawn()
            .expect("spawn p2pchat");
        let keys = std::fs::File::from(controller);
        let mut reader = keys.try_clone().expect("clone the controller");
        let (tx, screen) = channel();
        let gate = Arc::new(Gate::default());
        let reader_gate = Arc::clone(&gate);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                {
                    let mut closed = reader_gate.closed.lock().expect("gate");
                    while *closed {
                        closed = reader_gate.opened.wait(closed).expect("gate");
                    }
                }
                // Ends with an error once the test drops its side.
                let Ok(n @ 1..) = reader.read(&mut buf) else { break };
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let pid = child.id();
        TtyClient {
            child: Some(child),
            pid,
            tty,
            keys,
            screen,
            seen: String::new(),
            raw: Vec::new(),
            decoded: 0,
            matched: 0,
            gate,
        }
    }

    /// Stops reading the screen, like a terminal that no longer draws: the
    /// client's output piles up in the terminal's buffers until they are
    /// full. (A read under way still ends with one more chunk.)
    pub fn stop_reading(&self) {
        *self.gate.closed.lock().expect("gate") = true;
    }

    pub fn resume_reading(&self) {
        *self.gate.closed.lock().expect("gate") = false;
        self.gate.opened.notify_all();
    }

    pub fn type_keys(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).expect("type");
    }

    /// Waits until the screen shows `needle` after what was matched before;
    /// returns what was shown up to its end.
    pub fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            if let Some(i) = self.seen[self.matched..].find(needle) {
                let end = self.matched + i + needle.len();
                let shown = self.seen[self.matched..end].to_owned();
                self.matched = end;
                return shown;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.screen.recv_timeout(left) {
                Ok(bytes) => self.shown(&bytes),
                Err(_) => {
                    panic!("waited for {needle:?}; the screen ended with:\n{:?}", self.tail())
                }
            }
        }
    }

    /// Adds `bytes` to what was shown; a character cut between two reads
    /// goes into `seen` whole, once its end is there.
    fn shown(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
        let rest = &self.raw[self.decoded..];
        let upto = match std::str::from_utf8(rest) {
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            _ => rest.len(),
        };
        self.seen.push_str(&String::from_utf8_lossy(&rest[..upto]));
        self.decoded += upto;
    }

    /// The end of what was shown, for failure messages.
    pub fn tail(&self) -> &str {
        let mut start = self.seen.len().saturating_sub(2000);
        while !self.seen.is_char_boundary(start) {
            start += 1;
        }
        &self.seen[start..]
    }

    pub fn modes(&self) -> LocalModes {
        tcgetattr(&self.tty).expect("tcgetattr").local_modes
    }

    pub fn input_modes(&self) -> InputModes {
        tcgetattr(&self.tty).expect("tcgetattr").input_modes
    }

    pub fn assert_raw(&self) {
        let modes = self.modes();
        assert!(!modes.intersects(LocalModes::ICANON | LocalModes::ECHO), "{modes:?}");
        assert!(modes.contains(LocalModes::ISIG), "{modes:?}");
        // Ctrl-S and Ctrl-Q are keys, not flow control that stops the screen.
        let input = self.input_modes();
        assert!(!input.contains(InputModes::IXON), "{input:?}");
    }

    pub fn assert_restored(&self) {
        let modes = self.modes();
        assert!(
            modes.contains(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG),
            "{modes:?}"
        );
        let input = self.input_modes();
        assert!(input.contains(InputModes::IXON), "{input:?}");
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// The terminal gets a new size, and the client SIGWINCH. (The client's
    /// terminal is not its controlling one, so the test sends the signal.)
    pub fn resize(&self, cols: u16, rows: u16) {
        set_size(&self.keys, cols, rows);
        self.signal("WINCH");
    }

    /// Waits for the client to exit, for at most `LINE_TIMEOUT`.
    pub fn wait_exit(&mut self) -> ExitStatus {
        self.wait_exit_within(LINE_TIMEOUT)
    }

    /// Waits for the client to exit, for at most `timeout`.
    pub fn wait_exit_within(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("waited for once");
        let (tx, exited) = channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match exited.recv_timeout(timeout) {
            Ok(status) => status.expect("wait"),
            Err(_) => {
                let _ = Command::new("kill").arg("-KILL").arg(self.pid.to_string()).status();
                panic!("did not exit within {timeout:?}; the screen ended with:\n{:?}", self.tail())
            }
        }
    }

    /// Sends `sig` and waits for the client to exit successfully within
    /// [`EXIT_DEADLINE`]; returns how long it took.
    pub fn signal_and_wait(&mut self, sig: &str) -> Duration {
        let start = Instant::now();
        self.signal(sig);
        let status = self.wait_exit_within(EXIT_DEADLINE);
        let took = start.elapsed();
        eprintln!("exited {took:?} after SIG{sig}");
        assert!(status.success(), "SIG{sig}: {status:?}");
        took
    }
}

impl Drop for TtyClient {
    fn drop(&mut self) {
        self.resume_reading();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Ann on a terminal and Bob on pipes, chatting.
pub fn chat_pair(test: &str) -> (common::TempDir, Proc, std::net::SocketAddr, TtyClient, Proc) {
    chat_pair_sized(test, 0, 0)
}

/// [`chat_pair`] with Ann's terminal `cols` × `rows` (0: it does not tell).
pub fn chat_pair_sized(
    test: &str,
    cols: u16,
    rows: u16,
) -> (common::TempDir, Proc, std::net::SocketAddr, TtyClient, Proc) {
    let dir = temp_dir(test);
    let (srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut ann = TtyClient::spawn_sized("Ann", addr, &dir, cols, rows);
    ann.expect("Enter choice: ");
    ann.type_keys("2\r");
    ann.expect("Waiting for a peer");
    let mut bob = logged_in_client("Bob", addr, &dir);
    bob.send("1");
    bob.send("Ann");
    bob.expect("Chat with Ann started");
    ann.expect("Chat with Bob started");
    (dir, srv, addr, ann, bob)
}
