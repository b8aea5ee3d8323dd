//! End to end on a terminal: the client runs with a pseudo-terminal as its
//! standard input and output, so it edits the line itself. What the user
//! types survives lines printed meanwhile, and the terminal is set back as
//! it was however the client ends.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

use common::{LINE_TIMEOUT, logged_in_client, server, temp_dir};
use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{LocalModes, tcgetattr};

/// Erases the screen line: what the client writes before a line printed
/// over the input line.
const ERASE: &str = "\r\x1b[K";

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
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with an error once the test drops its side.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let pid = child.id();
        TtyClient { child: Some(child), pid, tty, keys, screen, seen: String::new(), matched: 0 }
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
                Err(_) => panic!("waited for {needle:?}; the screen showed:\n{:?}", self.seen),
            }
        }
    }

    fn modes(&self) -> LocalModes {
        tcgetattr(&self.tty).expect("tcgetattr").local_modes
    }

    fn assert_raw(&self) {
        let modes = self.modes();
        assert!(!modes.intersects(LocalModes::ICANON | LocalModes::ECHO), "{modes:?}");
        assert!(modes.contains(LocalModes::ISIG), "{modes:?}");
    }

    fn assert_restored(&self) {
        let modes = self.modes();
        assert!(
            modes.contains(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG),
            "{modes:?}"
        );
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
        let mut child = self.child.take().expect("waited for once");
        let (tx, exited) = channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match exited.recv_timeout(LINE_TIMEOUT) {
            Ok(status) => status.expect("wait"),
            Err(_) => {
                let _ = Command::new("kill").arg("-KILL").arg(self.pid.to_string()).status();
                panic!("did not exit; the screen showed:\n{:?}", self.seen)
            }
        }
    }
}

impl Drop for TtyClient {
    fn drop(&mut self) {
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
