//! `p2pchat-bench`: the project's benchmark suite in one command.
//!
//! Every result is printed as one JSON line as soon as it is measured, and
//! all of them again as a table at the end. Each figure is measured next to
//! a reference in the same run (an echo server, raw TCP, a `cat` pipe), so
//! the ratios hold even on a busy machine where the absolute numbers do not.
//! See docs/PERFORMANCE.md for what each figure means and the targets.

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
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut report = Report::default();
    match args.part.unwrap_or(Part::All) {
        Part::All => {}
    }
    report.print_table();
    Ok(())
}
