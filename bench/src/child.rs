//! The measured servers run as child processes pinned to their own CPU:
//! the real `p2pchat server`, and the suite's own echo servers (this very
//! binary, `p2pchat-bench echo`). Each prints `… listening on ADDR` first;
//! the rest of its output is read and discarded by a thread, so a server
//! that logs every login never blocks on a full pipe.

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};

use crate::echo::EchoMode;
use crate::pin;

/// A running server; killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it is, for records.
    pub label: String,
}

impl Server {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `p2pchat server` on 127.0.0.1 (a port the OS picks) for up to
/// `max_users`, every user from loopback allowed, entries kept an hour.
pub fn start_registry(p2pchat: &Path, max_users: u32) -> anyhow::Result<Server> {
    let mut cmd = Command::new(p2pchat);
    cmd.args(["server", "--bind", "127.0.0.1:0", "--lease", "3600"])
        .args(["--max-users", &max_users.to_string()])
        .args(["--max-per-address", &max_users.to_string()]);
    start(cmd, "p2pchat server".into()).with_context(|| {
        format!("starting {} (build it: cargo build --release -p p2pchat-cli)", p2pchat.display())
    })
}

/// Starts this binary's echo server on 127.0.0.1.
pub fn start_echo(mode: EchoMode, reply_len: Option<usize>) -> anyhow::Result<Server> {
    let mut cmd = own_command()?;
    let mode_arg = match mode {
        EchoMode::Plain => "plain",
        EchoMode::Batched => "batched",
    };
    cmd.args(["echo", "--mode", mode_arg, "--bind", "127.0.0.1:0"]);
    let mut label = format!("{mode_arg} echo");
    if let Some(n) = reply_len {
        cmd.args(["--reply-len", &n.to_string()]);
        label = format!("{mode_arg} echo, {n} B replies");
    }
    start(cmd, label)
}

/// A command running this very binary (the suite's own references).
pub fn own_command() -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("locating p2pchat-bench itself")?;
    Ok(Command::new(exe))
}

fn start(mut cmd: Command, label: String) -> anyhow::Result<Server> {
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?;
    pin::pin_pid(child.id(), pin::SERVER_CPU);
    let stdout = child.stdout.take().context("child stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let Some(addr) = line.trim().rsplit(' ').next().and_then(|a| a.parse().ok()) else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("{label} did not say where it listens (first line: {line:?})");
    };
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while reader.read(&mut buf).is_ok_and(|n| n > 0) {}
    });
    Ok(Server { child, addr, label })
}
