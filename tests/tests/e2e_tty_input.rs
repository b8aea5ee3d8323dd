//! End to end on a terminal: a line belongs to the state it was typed in.
//! A chat reply finished with Enter after the peer left is not a menu
//! choice (the accidental logout), and Ctrl-D while waiting for a chat
//! returns to a menu whose keyboard still works.

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

/// A client on a pseudo-terminal.
struct TtyClient {
    child: Option<Child>,
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
        TtyClient { child: Some(child), tty, keys, screen, seen: String::new(), matched: 0 }
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

    /// Waits for the client to exit, for at most `LINE_TIMEOUT`.
    fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("waited for once");
        let (tx, exited) = channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match exited.recv_timeout(LINE_TIMEOUT) {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!("did not exit; the screen ended with:\n{:?}", self.tail()),
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
fn a_reply_finished_after_the_peer_left_does_not_log_out() {
    let dir = temp_dir("tty-scope-reply");
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

    // Past the banner (its fingerprint has digits), nothing more is shown
    // until Ann types.
    ann.expect("/help lists the commands.\r\n");
    // Ann starts a reply, `3`; Bob leaves before she presses Enter.
    ann.type_keys("3");
    ann.expect("3");
    bob.send("/back");
    ann.expect("Chat with Bob ended: Bob left the chat.");
    ann.expect("Enter choice: ");
    ann.type_keys("\r");
    ann.expect("Not sent: the chat with Bob ended before you pressed Enter: 3");
    ann.expect("Enter choice: ");
    // Still logged in, and the menu takes choices typed at it.
    ann.type_keys("4\r");
    ann.expect("-----[ONLINE USERS]-----");
    ann.expect("| Bob : ");
    ann.expect("Enter choice: ");
    ann.type_keys("3\r");
    ann.expect("Logged out.");
    assert!(ann.wait_exit().success());
    bob.send("3");
}

#[test]
fn ctrl_d_while_waiting_returns_to_a_working_menu() {
    let dir = temp_dir("tty-scope-eof");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut ann = TtyClient::spawn("Ann", addr, &dir);
    ann.expect("Enter choice: ");
    ann.type_keys("2\r");
    ann.expect("Waiting for a peer");
    ann.type_keys("\x04");
    ann.expect("Stopped waiting.");
    ann.expect("Enter choice: ");
    assert!(!tcgetattr(&ann.tty).expect("tcgetattr").local_modes.contains(LocalModes::ICANON));
    // The keyboard works: wait again, take a chat, leave it with /back.
    ann.type_keys("2\r");
    ann.expect("Waiting for a peer");
    let mut bob = logged_in_client("Bob", addr, &dir);
    bob.send("1");
    bob.send("Ann");
    bob.expect("Chat with Ann started");
    ann.expect("Chat with Bob started");
    ann.type_keys("still here\r");
    bob.expect("Ann: still here");
    ann.type_keys("/back\r");
    bob.expect("Chat with Ann ended: Ann left the chat.");
    ann.expect("Enter choice: ");
    // Ctrl-D at the menu still ends the input.
    ann.type_keys("\x04");
    ann.expect("Logged out.");
    assert!(ann.wait_exit().success());
    bob.send("3");
}
