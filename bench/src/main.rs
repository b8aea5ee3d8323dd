//! `p2pchat-bench`: the project's benchmark suite in one command.
//!
//! Every result is printed as one JSON line as soon as it is measured, and
//! all of them again as a table at the end. Each figure is measured next to
//! a reference in the same run (an echo server, raw TCP, a `cat` pipe), so
//! the ratios hold even on a busy machine where the absolute numbers do not.
//! See docs/PERFORMANCE.md for what each figure means and the targets.

mod chat;
mod chat_procs;
mod chat_refs;
mod report;

use clap::{Parser, Subcommand};

use report::Report;

/// The p2pchat benchmark suite.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Which part of the suite to run; all of it when omitted.
    #[command(subcommand)]
    part: Option<Part>,
    /// The `p2pchat` binary to measure (built with `cargo build --release`).
    #[arg(long, global = true, default_value = "target/release/p2pchat")]
    p2pchat: std::path::PathBuf,
    /// Shorter runs, for a quick look (and for the suite's own smoke test).
    #[arg(long, global = true)]
    quick: bool,
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum Part {
    /// Everything below, in this order.
    All,
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
    let mut report = Report::default();
    match args.part.unwrap_or(Part::All) {
        Part::All => {}
        Part::Chat { no_pin } => chat::run(&mut report, &args.p2pchat, args.quick, !no_pin)?,
    }
    report.print_table();
    Ok(())
}
