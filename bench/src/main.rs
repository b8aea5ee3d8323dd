//! `p2pchat-bench`: the project's benchmark suite in one command.
//!
//! Every result is printed as one JSON line as soon as it is measured, and
//! all of them again as a table at the end. Each figure is measured next to
//! a reference in the same run (an echo server, raw TCP, a `cat` pipe), so
//! the ratios hold even on a busy machine where the absolute numbers do not.
//! See docs/PERFORMANCE.md for what each figure means and the targets.

mod batch_io;
mod chat;
mod chat_lines;
mod chat_procs;
mod chat_refs;
mod chat_syscalls;
mod chat_trips;
mod child;
mod core_bench;
mod echo;
mod loadgen;
mod loadgen_hist;
mod pin;
mod registry;
mod registry_session;
mod registry_users;
mod relay;
mod report;
mod scale;

#[cfg(test)]
mod loadgen_tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

use echo::{EchoConfig, EchoMode};
use report::Report;

/// Where `cargo build --release` puts the binary, from the workspace root.
const DEFAULT_P2PCHAT: &str = "target/release/p2pchat";

/// The p2pchat benchmark suite.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Which part of the suite to run; all of it when omitted.
    #[command(subcommand)]
    part: Option<Part>,
    /// The `p2pchat` binary to measure. By default the suite builds it
    /// first (`cargo build --release -p p2pchat-cli`).
    #[arg(long, global = true, default_value = DEFAULT_P2PCHAT)]
    p2pchat: PathBuf,
    /// Measure the `p2pchat` binary as it is, without building it first.
    #[arg(long, global = true)]
    no_build: bool,
    /// Shorter runs, for a quick look (and for the suite's own smoke test).
    #[arg(long, global = true)]
    quick: bool,
    /// Users the `scale` part logs in (default 1,000,000; 50,000 with
    /// `--quick`).
    #[arg(long, global = true, value_name = "N")]
    users: Option<u32>,
}

#[derive(Debug, Clone, Subcommand)]
enum Part {
    /// Everything below, in this order.
    All,
    /// The registry under closed-loop load, against echo servers.
    Registry,
    /// The registry with a million users: memory, login rate, latency.
    Scale,
    /// The core's criterion benchmarks (no I/O).
    Core,
    /// The reference echo server (run by the suite as a child process).
    #[command(hide = true)]
    Echo {
        /// Plain or batched system calls.
        #[arg(long, value_enum, default_value = "plain")]
        mode: EchoMode,
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
        /// Pad each reply to this many bytes.
        #[arg(long)]
        reply_len: Option<usize>,
    },
    /// The reference relay of the chat round trips (run by the suite as a
    /// child process).
    #[command(hide = true)]
    Relay {
        /// Take one connection here (else connect to `--connect`).
        #[arg(long, conflicts_with = "connect", required_unless_present = "connect")]
        listen: Option<SocketAddr>,
        /// Connect here.
        #[arg(long)]
        connect: Option<SocketAddr>,
    },
    /// Chat: one-way lines/s and round trip between two real clients,
    /// encrypted and in clear, against pipes and raw TCP.
    Chat {
        /// Leave the two clients unpinned (default: one per CPU, 0 and 1).
        #[arg(long)]
        no_pin: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let part = args.part.clone().unwrap_or(Part::All);
    if let Part::Echo { mode, bind, reply_len } = part {
        return run_echo(EchoConfig { mode, reply_len, drop_every: None }, bind);
    }
    if let Part::Relay { listen, connect } = part {
        let addr = listen.or(connect).context("--listen or --connect")?;
        return relay::run(listen.is_some(), addr);
    }
    // A --p2pchat given on the command line is relative to where the suite
    // was started; everything else (cargo, the default binary, criterion's
    // output) to the workspace.
    let p2pchat = if args.p2pchat.as_os_str() == DEFAULT_P2PCHAT {
        args.p2pchat.clone()
    } else {
        std::path::absolute(&args.p2pchat).unwrap_or_else(|_| args.p2pchat.clone())
    };
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if workspace.join("Cargo.toml").exists() {
        std::env::set_current_dir(&workspace)
            .with_context(|| format!("cannot enter the workspace {}", workspace.display()))?;
    }
    let args = Args { p2pchat, ..args };
    let mut report = Report::default();
    let needs_server = !matches!(part, Part::Core);
    if needs_server && !args.no_build {
        build_p2pchat()?;
    }
    let users =
        args.users.unwrap_or(if args.quick { scale::QUICK_USERS } else { scale::FULL_USERS });
    let result = match part {
        Part::All => registry::run(&args.p2pchat, args.quick, &mut report)
            .and_then(|()| scale::run(&args.p2pchat, args.quick, users, &mut report))
            .and_then(|()| chat::run(&mut report, &args.p2pchat, args.quick, true))
            .and_then(|()| core_bench::run(args.quick, &mut report)),
        Part::Registry => registry::run(&args.p2pchat, args.quick, &mut report),
        Part::Scale => scale::run(&args.p2pchat, args.quick, users, &mut report),
        Part::Core => core_bench::run(args.quick, &mut report),
        Part::Chat { no_pin } => chat::run(&mut report, &args.p2pchat, args.quick, !no_pin),
        Part::Echo { .. } | Part::Relay { .. } => Ok(()),
    };
    report.print_table();
    result
}

/// Builds the `p2pchat` binary the suite measures.
fn build_p2pchat() -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "p2pchat-cli"])
        .stdout(std::process::Stdio::null())
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p p2pchat-cli failed: {status}");
    }
    Ok(())
}

/// The hidden `echo` subcommand: serves until killed.
fn run_echo(config: EchoConfig, bind: SocketAddr) -> anyhow::Result<()> {
    let socket = std::net::UdpSocket::bind(bind).with_context(|| format!("bind {bind}"))?;
    println!("Echo listening on {}", socket.local_addr()?);
    use std::io::Write as _;
    std::io::stdout().flush()?;
    echo::serve(&socket, config, &AtomicBool::new(false))?;
    Ok(())
}
