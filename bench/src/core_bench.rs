//! The `core` part: the state machines' criterion benchmarks (no I/O),
//! run with `cargo bench` and read back from criterion's
//! `estimates.json` files: one record per benchmark, its median.

use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::pin;
use crate::report::{Record, Report};

/// The benchmarks run: (bench target, extra cargo arguments).
const BENCHES: [(&str, &[&str]); 2] =
    [("registry", &[]), ("chat", &["--features", "bench-cleartext"])];

/// Runs the part.
pub fn run(quick: bool, report: &mut Report) -> anyhow::Result<()> {
    // cargo and the benchmarks it runs inherit the load generator's CPU
    // and priority: one CPU of their own, ahead of other work.
    pin::pin_self(pin::LOAD_CPU);
    let started = SystemTime::now();
    let target = target_dir()?;
    for (bench, extra) in BENCHES {
        let mut cmd = Command::new(cargo());
        cmd.args(["bench", "-p", "p2pchat-core", "--bench", bench]).args(extra).arg("--");
        if quick {
            cmd.args(["--warm-up-time", "0.5", "--measurement-time", "1"]);
        }
        // criterion's own output goes to stderr, leaving stdout to records.
        let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
        let status = cmd.stdout(Stdio::from(stderr)).status().context("running cargo bench")?;
        if !status.success() {
            bail!("cargo bench --bench {bench} failed: {status}");
        }
    }
    let mut found = Vec::new();
    collect(&target.join("criterion"), started, &mut found)?;
    found.sort_by(|a, b| a.0.cmp(&b.0));
    if found.is_empty() {
        bail!("no criterion estimates under {}", target.join("criterion").display());
    }
    for (id, ns) in found {
        report.add(Record::new("core", id, ns, "ns"));
    }
    Ok(())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The workspace's target directory, from `cargo metadata`.
fn target_dir() -> anyhow::Result<PathBuf> {
    let out = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    let meta: Value = serde_json::from_slice(&out.stdout).context("cargo metadata output")?;
    meta["target_directory"].as_str().map(PathBuf::from).context("no target_directory")
}

/// Every `new/estimates.json` under `dir` written since `since`: the
/// benchmark's full id (from `benchmark.json` beside it) and its median, ns.
fn collect(dir: &Path, since: SystemTime, found: &mut Vec<(String, f64)>) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            let estimates = path.join("estimates.json");
            let fresh =
                std::fs::metadata(&estimates).and_then(|m| m.modified()).is_ok_and(|t| t >= since);
            if fresh {
                found.push(read_estimate(&path)?);
            }
        } else {
            collect(&path, since, found)?;
        }
    }
    Ok(())
}

fn read_estimate(new: &Path) -> anyhow::Result<(String, f64)> {
    let read = |f: &str| -> anyhow::Result<Value> {
        let p = new.join(f);
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    };
    let id = read("benchmark.json")?["full_id"].as_str().context("no full_id")?.to_string();
    let median = read("estimates.json")?["median"]["point_estimate"]
        .as_f64()
        .context("no median point estimate")?;
    Ok((id, median))
}
