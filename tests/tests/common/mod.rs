//! Runs the real `p2pchat` binary for end-to-end tests and synchronises on
//! what it prints: every wait is bounded by a timeout on the next line, never
//! a sleep.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// The longest wait for one expected line. Registry requests are retried for
/// 30 s (`GIVE_UP_AFTER`) before they fail, so this is well above that.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(40);

/// The `p2pchat` binary, built once per test process.
///
/// Binaries of other packages are not built for this package's tests, so
/// this runs `cargo build -p p2pchat-cli` (a no-op when it is fresh) with the
/// cargo that runs the tests, into the same target directory.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/e2e_x-hash -> target/<profile>
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let target_dir = profile_dir.parent().expect("target dir");
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "p2pchat-cli", "--bin", "p2pchat", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target_dir)
            .status()
            .expect("running cargo build");
        assert!(status.success(), "cargo build -p p2pchat-cli failed");
        let bin = profile_dir.join("p2pchat");
        assert!(bin.exists(), "{} not built", bin.display());
        bin
    })
}

/// A fresh, empty directory for one test's files.
pub fn temp_dir(test: &str) -> TempDir {
    let dir = tempfile::Builder::new().prefix(&format!("p2pchat-e2e-{test}-")).tempdir();
    TempDir(dir.expect("create temp dir"))
}

/// A test's directory, removed when the test passes; a failing test keeps
/// it (and says where) so its histories and configs can be read.
pub struct TempDir(tempfile::TempDir);

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.disable_cleanup(true);
            eprintln!("kept {} for the failing test", self.0.path().display());
        }
    }
}

/// A running `p2pchat` process whose stdout is read line by line.
pub struct Proc {
    pub label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Everything printed so far, for failure messages.
    pub seen: Vec<String>,
    eof: bool,
}

impl Proc {
    /// Starts `p2pchat args…` with `stdin` (piped if `None`).
    pub fn spawn(label: &str, args: &[&str], stdin: Option<Stdio>, cwd: &Path) -> Proc {
        Self::spawn_with(Command::new(binary()), label, args, stdin, cwd)
    }

    /// Like [`Proc::spawn`], with `cmd` standing for the binary (for
    /// instance `ip netns exec NS <binary>`).
    pub fn spawn_with(
        mut cmd: Command,
        label: &str,
        args: &[&str],
        stdin: Option<Stdio>,
        cwd: &Path,
    ) -> Proc {
        let piped = stdin.is_none();
        let mut child = cmd
            .args(args)
            .current_dir(cwd)
            .stdin(stdin.unwrap_or_else(Stdio::piped))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "warn")
            // Each process its own identity file, never the real home's.
            .env("XDG_CONFIG_HOME", cwd.join(format!("config-{label}")))
            .spawn()
            .expect("spawn p2pchat");
        // Its diagnostics go to the test's own output, which the harness
        // shows only when the test fails.
        let stderr = child.stderr.take().expect("piped stderr");
        let who = label.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[{who} stderr] {line}");
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = if piped { child.stdin.take() } else { None };
        Proc { label: label.to_owned(), child, stdin, lines: rx, seen: Vec::new(), eof: false }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line, or `None` at end of output; panics after
    /// [`LINE_TIMEOUT`].
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        if self.eof {
            return None;
        }
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.eof = true;
                None
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "{}: no output for {timeout:?}; output so far:\n{}",
                    self.label,
                    self.seen.join("\n")
                )
            }
        }
    }

    /// The lines printed within `window` from now (fewer if the output
    /// ends): for checking that something is *not* printed meanwhile.
    pub fn lines_for(&mut self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut lines = Vec::new();
        while !self.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    lines.push(line);
                }
                Err(RecvTimeoutError::Disconnected) => self.eof = true,
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        lines
    }

    /// Reads lines until one satisfies `pred`; returns it.
    pub fn expect_with(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "{}: waited {timeout:?} for {what:?}; output:\n{}",
                    self.label,
                    self.seen.join("\n")
                );
            }
            match self.next_line(left) {
                Some(line) if pred(&line) => return line,
                Some(_) => {}
                None => panic!(
                    "{}: output ended before {what:?}; output:\n{}",
                    self.label,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Reads lines until one contains `needle`; returns it.
    pub fn expect(&mut self, needle: &str) -> String {
        self.expect_with(needle, LINE_TIMEOUT, |l| l.contains(needle))
    }

    /// Reads lines until one starts with `prefix`; returns it.
    pub fn expect_prefix(&mut self, prefix: &str) -> String {
        self.expect_with(prefix, LINE_TIMEOUT, |l| l.starts_with(prefix))
    }

    /// Reads the next online list (after `-----[ONLINE USERS]-----`):
    /// the `name : address` rows.
    pub fn expect_list(&mut self) -> Vec<String> {
        self.expect("-----[ONLINE USERS]-----");
        let mut rows = Vec::new();
        loop {
            let line = self.expect_with("list row", LINE_TIMEOUT, |_| true);
            match line.strip_prefix("| ") {
                Some(row) => rows.push(row.to_owned()),
                None => {
                    assert_eq!(line, "-----", "{}: unexpected line in the list", self.label);
                    return rows;
                }
            }
        }
    }

    /// Types one line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is piped");
        writeln!(stdin, "{line}").expect("write to p2pchat's stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Closes stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Sends a signal by name (`INT`, `TERM`, `KILL`).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits for the output to end (the process exited), then for its
    /// status; panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        while !self.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{}: did not exit within {timeout:?}; output:\n{}",
                self.label,
                self.seen.join("\n")
            );
            self.next_line(left);
        }
        self.child.wait().expect("wait for p2pchat")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a registry server on `bind` and returns it with its address.
pub fn server(bind: &str, lease_secs: u32, cwd: &Path) -> (Proc, SocketAddr) {
    let lease = lease_secs.to_string();
    let mut p = Proc::spawn(
        "server",
        &["server", "--bind", bind, "--lease", &lease],
        Some(Stdio::null()),
        cwd,
    );
    let line = p.expect_prefix("Server listening on ");
    let addr = line["Server listening on ".len()..].parse().expect("server address");
    (p, addr)
}

/// Starts a client named `name` against `server`, listening on loopback of
/// the server's family, with stdin from `stdin` (piped if `None`).
pub fn client(name: &str, server: SocketAddr, cwd: &Path, stdin: Option<Stdio>) -> Proc {
    let listen = SocketAddr::new(server.ip(), 0).to_string();
    let server = server.to_string();
    let history = format!("{name}.txt");
    let args =
        ["client", "--name", name, "--server", &server, "--listen", &listen, "--history", &history];
    Proc::spawn(name, &args, stdin, cwd)
}

/// Starts a client and waits for its first menu.
pub fn logged_in_client(name: &str, server: SocketAddr, cwd: &Path) -> Proc {
    let mut c = client(name, server, cwd, None);
    c.expect(&format!("Logged in as {name}."));
    c.expect_list();
    c.expect("Enter choice:");
    c
}

/// The messages in the history file of client `name` in `dir`, one entry
/// per line: every line is checked against the documented format
/// (`TIME KIND PEER TEXT`, docs/HISTORY.md), and the chat's `started` and
/// `ended` lines are left out (see [`history_events`]).
pub fn history(dir: &Path, name: &str) -> Vec<(String, String, String)> {
    history_events(dir, name)
        .into_iter()
        .filter(|(kind, _, _)| !["started", "ended"].contains(&kind.as_str()))
        .collect()
}

/// Every line of the history file of client `name` in `dir`, checked
/// against the documented format: `(KIND, PEER, TEXT)`.
pub fn history_events(dir: &Path, name: &str) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.txt"))).expect("history file");
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let (Some(time), Some(dir), Some(peer), Some(msg)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                panic!("malformed history line {line:?}");
            };
            // RFC 3339 with milliseconds and an offset: `…T12:34:56.789+01:00`.
            let offset = &time[time.len().saturating_sub(6)..];
            assert!(
                time.len() == 29
                    && time.as_bytes()[10] == b'T'
                    && time.as_bytes()[19] == b'.'
                    && (offset.starts_with('+') || offset.starts_with('-'))
                    && offset.as_bytes()[3] == b':',
                "bad time in {line:?}"
            );
            assert!(
                ["sent", "received", "undelivered", "unacknowledged", "failed", "started", "ended"]
                    .contains(&dir),
                "bad kind in {line:?}"
            );
            (dir.to_owned(), peer.to_owned(), msg.to_owned())
        })
        .collect()
}

/// The configuration directory [`Proc::spawn`] gives the process labelled
/// `label` (its `XDG_CONFIG_HOME`).
pub fn config_dir(cwd: &Path, label: &str) -> PathBuf {
    cwd.join(format!("config-{label}"))
}

/// The identity file of the client labelled `label`.
pub fn identity_file(cwd: &Path, label: &str) -> PathBuf {
    config_dir(cwd, label).join("p2pchat/identity")
}

/// The public key in the identity file of the client labelled `label`
/// (docs/IDENTITY.md: the `public` line, 64 hex digits).
pub fn public_key(cwd: &Path, label: &str) -> p2pchat_core::PublicKey {
    let path = identity_file(cwd, label);
    let text = std::fs::read_to_string(&path).expect("identity file");
    let hex = text
        .lines()
        .find_map(|l| l.strip_prefix("public "))
        .unwrap_or_else(|| panic!("no public line in {}", path.display()));
    assert_eq!(hex.len(), 64, "{hex:?}");
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex digit");
    }
    p2pchat_core::PublicKey(key)
}

/// Runs `p2pchat args…` to completion as the user labelled `label` (with its
/// configuration directory), for `whoami`, `trust` and `forget`.
pub fn run_as(cwd: &Path, label: &str, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .env("XDG_CONFIG_HOME", config_dir(cwd, label))
        .stdin(Stdio::null())
        .output()
        .expect("run p2pchat")
}

/// What `p2pchat list` prints, checked to have succeeded.
pub fn list_output(server: SocketAddr) -> String {
    let out = Command::new(binary())
        .args(["list", "--server", &server.to_string()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run p2pchat list");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 list")
}

/// The names `p2pchat list` prints, in its order.
pub fn listed_names(server: SocketAddr) -> Vec<String> {
    let text = list_output(server);
    text.lines().map(|l| l.split(' ').next().unwrap_or_default().to_owned()).collect()
}

/// The chat address `p2pchat list` prints for `name`.
pub fn listed_chat_addr(server: SocketAddr, name: &str) -> SocketAddr {
    let text = list_output(server);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not in `p2pchat list`: {text:?}"))
        .parse()
        .expect("chat address")
}

impl Proc {
    /// How many lines were read so far: a mark for [`Proc::lines_since`].
    pub fn mark(&self) -> usize {
        self.seen.len()
    }

    /// The lines read since `mark`.
    pub fn lines_since(&self, mark: usize) -> &[String] {
        &self.seen[mark..]
    }
}

/// `callee` waits (2) and `caller` calls it (1, then the name); returns the
/// caller's `Connecting to …` line and the callee's `Chat with … started`
/// line once both see the chat start. The callee's only line between its
/// waiting and the chat is checked to be that start: nothing else (no
/// stranger, no request) reached its screen.
pub fn call(caller: &mut Proc, callee: &mut Proc) -> (String, String) {
    callee.send("2");
    callee.expect("Waiting for a peer to connect");
    call_waiting(caller, callee)
}

/// [`call`] when `callee` already waits.
pub fn call_waiting(caller: &mut Proc, callee: &mut Proc) -> (String, String) {
    let mark = callee.mark();
    caller.send("1");
    caller.expect("Peer username:");
    caller.send(&callee.label.clone());
    let connecting = caller.expect(&format!("Connecting to {}", callee.label));
    caller.expect(&format!("Chat with {} started", callee.label));
    let started = callee.expect(&format!("Chat with {} started", caller.label));
    assert_eq!(
        callee.lines_since(mark),
        std::slice::from_ref(&started),
        "{}: lines before the chat started",
        callee.label
    );
    (connecting, started)
}

/// In a chat between `a` and `b`: `a` sends `text`, `b` sees it, and `a`
/// ends the chat; both are back at the menu.
pub fn say_and_leave(a: &mut Proc, b: &mut Proc, text: &str) {
    a.send(text);
    b.expect(&format!("] {}: {text}", a.label));
    a.send("/back");
    a.expect(&format!("Chat with {} ended: you left the chat.", b.label));
    a.expect("Enter choice:");
    b.expect(&format!("Chat with {} ended: {} left the chat.", a.label, a.label));
    b.expect("Enter choice:");
}
