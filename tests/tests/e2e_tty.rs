//! End to end on a terminal: the client runs with a pseudo-terminal as its
//! standard input and output, so it edits the line itself. What the user
//! types survives lines printed meanwhile, the terminal is set back as it
//! was however the client ends, and the loop never waits for the terminal:
//! a stopped screen, Ctrl-S or a blocked chat with pasted lines waiting do
//! not keep the client from answering its peer or from ending on a signal.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{LINE_TIMEOUT, Proc, history, logged_in_client, server, temp_dir};
use p2pchat_core::MAX_UNACKED;
use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{InputModes, LocalModes, QueueSelector, tcflush, tcgetattr};

/// Erases the screen line: what the client writes before a line printed
/// over the input line.
const ERASE: &str = "\r\x1b[K";

/// How long a client may take to exit after a signal. The goal is well
/// under a second; the bound is generous so that a loaded machine does not
/// fail the test, and the tests print the time measured.
const EXIT_DEADLINE: Duration = Duration::from_secs(5);

/// Whether the test reads what the client shows; see
/// [`TtyClient::stop_reading`].
#[derive(Default)]
struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
}

/// A client on a pseudo-terminal.
struct TtyClient {
    child: Option<Child>,
    pid: u32,
    /// The terminal side, kept to look at its settings.
    tty: OwnedFd,
    /// The keyboard and screen side.
    keys: std::fs::File,
    screen: Receiver<Vec<u8>>,
    /// Everything shown so far.
    seen: String,
    /// How much of `seen` was matched already.
    matched: usize,
    gate: Arc<Gate>,
}

impl TtyClient {
    fn spawn(name: &str, server: std::net::SocketAddr, dir: &Path) -> TtyClient {
        let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
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
            matched: 0,
            gate,
        }
    }

    /// Stops reading the screen, like a terminal that no longer draws: the
    /// client's output piles up in the terminal's buffers until they are
    /// full. (A read under way still ends with one more chunk.)
    fn stop_reading(&self) {
        *self.gate.closed.lock().expect("gate") = true;
    }

    fn resume_reading(&self) {
        *self.gate.closed.lock().expect("gate") = false;
        self.gate.opened.notify_all();
    }

    fn type_keys(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).expect("type");
    }

    /// Waits until the screen shows `needle` after what was matched before;
    /// returns what was shown up to its end.
    fn expect(&mut self, needle: &str) -> String {
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
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => {
                    panic!("waited for {needle:?}; the screen ended with:\n{:?}", self.tail())
                }
            }
        }
    }

    /// The end of what was shown, for failure messages.
    fn tail(&self) -> &str {
        let mut start = self.seen.len().saturating_sub(2000);
        while !self.seen.is_char_boundary(start) {
            start += 1;
        }
        &self.seen[start..]
    }

    fn modes(&self) -> LocalModes {
        tcgetattr(&self.tty).expect("tcgetattr").local_modes
    }

    fn input_modes(&self) -> InputModes {
        tcgetattr(&self.tty).expect("tcgetattr").input_modes
    }

    fn assert_raw(&self) {
        let modes = self.modes();
        assert!(!modes.intersects(LocalModes::ICANON | LocalModes::ECHO), "{modes:?}");
        assert!(modes.contains(LocalModes::ISIG), "{modes:?}");
        // Ctrl-S and Ctrl-Q are keys, not flow control that stops the screen.
        let input = self.input_modes();
        assert!(!input.contains(InputModes::IXON), "{input:?}");
    }

    fn assert_restored(&self) {
        let modes = self.modes();
        assert!(
            modes.contains(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG),
            "{modes:?}"
        );
        let input = self.input_modes();
        assert!(input.contains(InputModes::IXON), "{input:?}");
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the client to exit, for at most `LINE_TIMEOUT`.
    fn wait_exit(&mut self) -> ExitStatus {
        self.wait_exit_within(LINE_TIMEOUT)
    }

    /// Waits for the client to exit, for at most `timeout`.
    fn wait_exit_within(&mut self, timeout: Duration) -> ExitStatus {
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
    fn signal_and_wait(&mut self, sig: &str) -> Duration {
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

#[test]
fn ctrl_d_at_the_menu_logs_out_and_restores_the_terminal() {
    let dir = temp_dir("tty-eof");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut ann = TtyClient::spawn("Ann", addr, &dir);
    ann.expect("Enter choice: ");
    ann.assert_raw();
    // Ctrl-D on a typed line does nothing; Ctrl-U clears it, then it ends.
    ann.type_keys("3x\x04\x15\x04");
    let shown = ann.expect("Logged out.");
    assert!(shown.contains(&format!("{ERASE}Enter choice: ")), "{shown:?}");
    assert!(ann.wait_exit().success());
    ann.assert_restored();
}

#[test]
fn a_signal_exit_restores_the_terminal() {
    for sig in ["INT", "TERM", "QUIT", "HUP"] {
        let dir = temp_dir(&format!("tty-sig-{sig}"));
        let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
        let mut ann = TtyClient::spawn("Ann", addr, &dir);
        ann.expect("Enter choice: ");
        ann.type_keys("half");
        ann.expect("half");
        ann.assert_raw();
        ann.signal(sig);
        let status = ann.wait_exit();
        assert!(status.success(), "SIG{sig}: {status:?}");
        ann.assert_restored();
    }
}

#[test]
fn a_message_does_not_cut_the_line_being_typed() {
    let dir = temp_dir("tty-chat");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut ann = TtyClient::spawn("Ann", addr, &dir);
    ann.expect("Enter choice: ");
    ann.type_keys("2\r");
    ann.expect("Waiting for a peer");
    let mut bob = logged_in_client("Bob", addr, &dir);
    bob.send("1");
    bob.send("Ann");
    bob.expect("Chat with Ann started");
    ann.expect("Chat with Bob started");

    ann.type_keys("I am typing half a li");
    ann.expect("half a li");
    bob.send("interrupting you");
    let shown = ann.expect("interrupting you\r\n");
    assert!(shown.starts_with(ERASE), "{shown:?}");
    assert!(shown.contains("Bob: interrupting you"), "{shown:?}");
    ann.expect(&format!("{ERASE}I am typing half a li"));
    // Backspace (a whole character), then the end of the line.
    ann.type_keys("\u{e9}\x7fne\r");
    ann.expect("ne\r\n");
    bob.expect("Ann: I am typing half a line");

    ann.type_keys("/back\r");
    ann.expect("Enter choice: ");
    ann.type_keys("3\r");
    ann.expect("Logged out.");
    assert!(ann.wait_exit().success());
    ann.assert_restored();
}

/// Ann on a terminal and Bob on pipes, chatting.
fn chat_pair(test: &str) -> (std::path::PathBuf, Proc, std::net::SocketAddr, TtyClient, Proc) {
    let dir = temp_dir(test);
    let (srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut ann = TtyClient::spawn("Ann", addr, &dir);
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

/// The names `p2pchat list` prints.
fn listed(server: std::net::SocketAddr) -> Vec<String> {
    let out = Command::new(common::binary())
        .args(["list", "--server", &server.to_string()])
        .output()
        .expect("run p2pchat list");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    text.lines().filter_map(|l| l.split(' ').next()).map(str::to_owned).collect()
}

#[test]
fn ctrl_c_ends_a_blocked_chat_with_pasted_lines_waiting() {
    let (dir, mut srv, addr, mut ann, bob) = chat_pair("tty-blocked");
    // Bob takes nothing more: Ann's texts stay unacknowledged, and after
    // `MAX_UNACKED` of them her chat takes no more (and she no more input).
    bob.signal("STOP");
    // Each pasted line carries escape sequences that the editor swallows,
    // so that one read of the terminal holds fewer lines than the editor
    // reads ahead (16): when the chat blocks, the editor wants more input
    // while the rest of the paste waits in the terminal.
    let blocked_at = MAX_UNACKED + 1;
    let swallowed = "\x1b[A".repeat(200);
    // After the line that blocks, more than one read (8 KiB) but less than
    // a pseudo-terminal holds (12 KiB).
    let paste: String =
        (1..=blocked_at + 16).map(|i| format!("{swallowed}pasted {i:05}\r")).collect();
    let mut keys = ann.keys.try_clone().expect("clone the controller");
    // The paste is larger than the terminal's buffer: written while Ann reads.
    let typist = std::thread::spawn(move || keys.write_all(paste.as_bytes()));
    ann.expect(&format!("pasted {blocked_at:05}"));
    // The chat is blocked now. Carol's chat request is shown only after Ann's
    // loop has slept on the poll since, with the paste still waiting.
    let mut carol = logged_in_client("Carol", addr, &dir);
    carol.send("1");
    carol.send("Ann");
    ann.expect("Carol wants to chat");
    typist.join().expect("typist").expect("paste");
    // Ctrl-C: the terminal throws away its pending input, then signals. (The
    // client's terminal is not its controlling one, so the test does both.)
    tcflush(&ann.tty, QueueSelector::IFlush).expect("tcflush");
    let took = ann.signal_and_wait("INT");
    assert!(took < EXIT_DEADLINE);
    srv.expect("[Ann] logged out");
    assert!(!listed(addr).contains(&"Ann".to_owned()));
    ann.assert_restored();
    bob.signal("CONT");
}

#[test]
fn ctrl_s_and_a_stopped_screen_do_not_stop_the_client() {
    let (_dir, _srv, _addr, mut ann, mut bob) = chat_pair("tty-ctrl-s");
    ann.assert_raw();
    // Ctrl-S is a key like any other: the screen goes on, and so does the chat.
    ann.type_keys("\x13");
    bob.send("after ctrl-s");
    ann.expect("Bob: after ctrl-s");
    ann.type_keys("still here\x11\r");
    bob.expect("Ann: still here");

    // A screen stopped by other means (here the terminal's flow control,
    // as `tcflow` sets it): the client keeps chatting, and what it shows
    // meanwhile comes out when the screen goes on.
    rustix::termios::tcflow(&ann.tty, rustix::termios::Action::OOff).expect("tcflow");
    ann.type_keys("typed while stopped\r");
    bob.expect("Ann: typed while stopped");
    bob.send("while stopped");
    rustix::termios::tcflow(&ann.tty, rustix::termios::Action::OOn).expect("tcflow");
    // In the order it happened: Ann's echo, then Bob's answer.
    ann.expect("typed while stopped");
    ann.expect("Bob: while stopped");

    ann.type_keys("/back\r");
    ann.expect("Enter choice: ");
    ann.type_keys("3\r");
    ann.expect("Logged out.");
    assert!(ann.wait_exit().success());
    ann.assert_restored();
}

#[test]
fn sigterm_ends_a_client_whose_screen_is_not_read() {
    let (dir, mut srv, _addr, mut ann, mut bob) = chat_pair("tty-undrained");
    ann.stop_reading();
    // Far more than the terminal's buffers hold: Ann's screen stalls.
    let texts = 600;
    let pad = "x".repeat(2000);
    for i in 0..texts {
        bob.send(&format!("flood {i:04} {pad}"));
    }
    bob.send("/back");
    // Ann took and acknowledged every text although her screen is stalled.
    bob.expect("Chat with Ann ended");
    let undelivered = bob.seen.iter().filter(|l| l.contains("not delivered")).count();
    assert_eq!(undelivered, 0, "Bob's texts not delivered to Ann");

    let took = ann.signal_and_wait("TERM");
    assert!(took < EXIT_DEADLINE);
    srv.expect("[Ann] logged out");
    ann.assert_restored();
    // The history has every text, whatever the screen could show.
    let received = history(&dir, "Ann").iter().filter(|(d, _, _)| d == "received").count();
    assert_eq!(received, texts);
}
