//! The processes the chat benchmark drives: a registry server and two real
//! `p2pchat client`s talking through pipes, or two `cat`s for reference.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::pin;

/// How long a setup step (a prompt, a chat start) may take before the run
/// is given up.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the clients get to exit on their own at the end of a run.
const EXIT_WAIT: Duration = Duration::from_secs(3);

/// A child process with its standard input and output as pipes; killed
/// when dropped.
pub struct Proc {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<BufReader<ChildStdout>>,
}

impl Proc {
    /// Starts `cmd` with piped standard input and output.
    pub fn spawn(mut cmd: Command) -> anyhow::Result<Self> {
        cmd.stdin(Stdio::piped());
        Self::spawn_with_stdin(cmd)
    }

    /// Starts `cmd` with piped standard output, and standard input as
    /// `cmd` has it.
    pub fn spawn_with_stdin(mut cmd: Command) -> anyhow::Result<Self> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {cmd:?}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(|o| BufReader::with_capacity(1 << 16, o));
        Ok(Self { child, stdin, stdout })
    }

    /// Pins the process to CPU `cpu` (best effort).
    pub fn pin(&self, cpu: Option<usize>) {
        if let Some(cpu) = cpu {
            pin::set_cpus(Some(self.child.id()), &pin::only(cpu));
        }
    }

    /// Lets the process run on any CPU the benchmark itself may use (undoes
    /// [`Proc::pin`]).
    pub fn unpin(&self) {
        let Ok(set) = rustix::thread::sched_getaffinity(None) else { return };
        pin::set_cpus(Some(self.child.id()), &set);
    }

    /// Writes one line to the process's standard input.
    pub fn send(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("standard input closed")?;
        stdin.write_all(format!("{line}\n").as_bytes())?;
        stdin.flush()?;
        Ok(())
    }

    /// Reads lines until one contains `needle`; returns it. Gives up after
    /// [`SETUP_TIMEOUT`] (checked between lines) or at the end of output.
    pub fn expect(&mut self, needle: &str) -> anyhow::Result<String> {
        if std::env::var_os("BENCH_TRACE").is_some() {
            eprintln!("waiting for {needle:?}");
        }
        let until = Instant::now() + SETUP_TIMEOUT;
        let out = self.stdout.as_mut().context("standard output taken")?;
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line)? == 0 {
                bail!("output ended before {needle:?}");
            }
            if line.contains(needle) {
                return Ok(line.trim_end().to_owned());
            }
            if Instant::now() > until {
                bail!("no {needle:?} within {SETUP_TIMEOUT:?}");
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A registry server on a loopback port the OS picks.
pub fn server(p2pchat: &Path, dir: &Path) -> anyhow::Result<(Proc, SocketAddr)> {
    let mut cmd = Command::new(p2pchat);
    cmd.args(["server", "--bind", "127.0.0.1:0"]).current_dir(dir).env("RUST_LOG", "warn");
    let mut p = Proc::spawn(cmd)?;
    let line = p.expect("Server listening on ")?;
    let addr = line.rsplit(' ').next().unwrap_or_default().parse().context("server address")?;
    Ok((p, addr))
}

/// Two clients of `binary` in a chat: `a` called `b`, which waited.
pub struct ChatPair {
    pub a: Proc,
    pub b: Proc,
    /// The history files, removed when the pair drops.
    histories: Vec<PathBuf>,
}

/// Names of the two clients.
pub const NAME_A: &str = "benchA";
pub const NAME_B: &str = "benchB";

impl ChatPair {
    /// Starts two clients against `server`, `b` waiting and `a` calling it,
    /// through the menu as a user would. `extra`: more client flags.
    pub fn start(
        binary: &Path,
        server: SocketAddr,
        dir: &Path,
        extra: &[&str],
        pin: [Option<usize>; 2],
    ) -> anyhow::Result<Self> {
        let client = |name: &str| -> anyhow::Result<(Proc, PathBuf)> {
            let history = dir.join(format!("{name}.history"));
            let _ = std::fs::remove_file(&history);
            let mut cmd = Command::new(binary);
            cmd.arg("client")
                .args(["--name", name, "--server", &server.to_string()])
                .args(["--listen", "127.0.0.1:0"])
                .arg("--history")
                .arg(&history)
                .args(extra)
                .current_dir(dir)
                .env("RUST_LOG", "warn")
                .env("XDG_CONFIG_HOME", dir.join(format!("config-{name}")));
            Ok((Proc::spawn(cmd)?, history))
        };
        let (mut b, hb) = client(NAME_B)?;
        let (mut a, ha) = client(NAME_A)?;
        a.pin(pin[0]);
        b.pin(pin[1]);
        for p in [&mut a, &mut b] {
            p.expect("Enter choice:")?;
        }
        b.send("2")?;
        b.expect("Waiting for a peer to connect")?;
        a.send("1")?;
        a.expect("Peer username:")?;
        a.send(NAME_B)?;
        a.expect(&format!("Chat with {NAME_B} started"))?;
        b.expect(&format!("Chat with {NAME_A} started"))?;
        Ok(Self { a, b, histories: vec![ha, hb] })
    }

    /// Lines in each history file.
    pub fn history_lines(&self) -> Vec<usize> {
        self.histories
            .iter()
            .map(|h| std::fs::read(h).map(|b| b.iter().filter(|&&c| c == b'\n').count()))
            .map(|r| r.unwrap_or(0))
            .collect()
    }
}

impl Drop for ChatPair {
    /// Closes both clients' input (they leave the chat, log out and exit),
    /// waits for them a moment, then kills what is left.
    fn drop(&mut self) {
        drop(self.a.stdin.take());
        drop(self.b.stdin.take());
        drop(self.a.stdout.take());
        drop(self.b.stdout.take());
        let until = Instant::now() + EXIT_WAIT;
        for c in [&mut self.a.child, &mut self.b.child] {
            while Instant::now() < until && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.a.child.kill();
        let _ = self.b.child.kill();
        let _ = self.a.child.wait();
        let _ = self.b.child.wait();
        for h in &self.histories {
            let _ = std::fs::remove_file(h);
        }
    }
}
