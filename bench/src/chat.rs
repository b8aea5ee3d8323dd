//! The chat part of the suite: two real `p2pchat client`s (a registry
//! server between them for the login and the lookup) driven through pipes,
//! as a script would drive them, against references measured in the same
//! run.
//!
//! - one way: [`LINE_LEN`]-byte lines written to A's standard input, as
//!   fast as A takes them, counted on B's standard output (its screen: each
//!   line is shown as `[HH:MM:SS] benchA: TEXT`), from the first written to
//!   the last shown; both history files are on. The lines are numbered, and
//!   the count checks that each is shown exactly once, in order;
//! - round trip with one line in flight: a line written to A's input, read
//!   from B's output, written to B's input, read back from A's output;
//! - both with encryption, and with a build of the client that can chat in
//!   clear (the `bench-cleartext` feature; its hidden flag is only in that
//!   build, which the suite makes in its own target directory,
//!   `target/bench-cleartext`), so the ratio is the cost of encryption end to end;
//! - references: the same driver through two `cat`s (the cost of the pipes),
//!   a raw TCP ping-pong, and a raw TCP stream of the same framing, one
//!   write per line and buffered ([`crate::chat_refs`]).
//!
//! Every round runs all of them once, in turn; the figures are the medians
//! of the rounds. `P2PCHAT_BENCH_CHAT_LINES=N` sends N lines one way instead
//! of [`LINES`], `P2PCHAT_BENCH_CHAT_TRIPS=N` measures N round trips instead
//! of [`ROUND_TRIPS`] (a longer window for a profiler).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::chat_lines::{count_numbered, numbered_input, write_lines};
use crate::chat_procs::{ChatPair, NAME_A, NAME_B, Proc, server};
use crate::chat_refs;
use crate::report::{Record, Reference, Report};

/// Bytes of text per line.
pub const LINE_LEN: usize = 100;

/// Lines sent one way per round.
const LINES: usize = 200_000;
/// Round trips measured per round (after [`RTT_WARMUP`]).
const ROUND_TRIPS: usize = 5_000;
const RTT_WARMUP: usize = 200;
/// Rounds (each runs every measure once); medians are reported.
const ROUNDS: usize = 5;

/// CPU time `pid` (a single-threaded process) has run, in ns, from
/// `/proc/PID/schedstat`: not affected by other load on the machine as
/// wall-clock rates are.
fn cpu_ns(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// What one round measured.
#[derive(Debug, Default, Clone)]
struct Round {
    /// CPU ns per line of the sender and the receiver.
    enc_cpu: (f64, f64),
    clear_cpu: Option<(f64, f64)>,
    /// CPU ns per line of the driver itself (its writer and its readers of
    /// both screens), and of the same driver through two `cat`s.
    enc_driver_cpu: f64,
    cat_driver_cpu: f64,
    /// The encrypted one way again, the clients free to run on any CPU
    /// (when the others are pinned): rate, and CPU ns per line of each.
    enc_free: Option<(f64, (f64, f64))>,
    enc_rate: f64,
    enc_rtt: (f64, f64),
    /// CPU µs per round trip of A and B.
    enc_rtt_cpu: (f64, f64),
    clear_rate: Option<f64>,
    clear_rtt: Option<(f64, f64)>,
    clear_rtt_cpu: Option<(f64, f64)>,
    cat_rate: f64,
    cat_rtt: Rtt,
    /// Two `tee -a FILE`: `cat` plus a write to a file per hop.
    tee_rtt: Rtt,
    tcp_rtt: Rtt,
    tcp_write_rate: f64,
    tcp_buffered_rate: f64,
}

/// Runs the chat part: builds the cleartext client if `p2pchat` is the
/// workspace's release binary, then [`ROUNDS`] rounds.
pub fn run(report: &mut Report, p2pchat: &Path, quick: bool, pin: bool) -> anyhow::Result<()> {
    let p2pchat = &std::fs::canonicalize(p2pchat)
        .with_context(|| format!("no client to measure at {}", p2pchat.display()))?;
    let cleartext = cleartext_binary(p2pchat)?;
    let (mut lines, mut trips, rounds) =
        if quick { (20_000, 500, 1) } else { (LINES, ROUND_TRIPS, ROUNDS) };
    // For profiling: a longer one-way run.
    if let Some(n) = std::env::var("P2PCHAT_BENCH_CHAT_LINES").ok().and_then(|v| v.parse().ok()) {
        lines = n;
    }
    if let Some(n) = std::env::var("P2PCHAT_BENCH_CHAT_TRIPS").ok().and_then(|v| v.parse().ok()) {
        trips = n;
    }
    let dir = std::env::temp_dir().join(format!("p2pchat-bench-chat-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (_server, addr) = server(p2pchat, &dir)?;
    let pins = if pin { [Some(0), Some(1)] } else { [None, None] };
    let mut done = Vec::new();
    for round in 0..rounds {
        let mut r = Round::default();
        {
            let mut pair = ChatPair::start(p2pchat, addr, &dir, &[], pins)?;
            (r.enc_rate, r.enc_cpu, r.enc_driver_cpu) = one_way(&mut pair, lines)?;
            if pin {
                // The same again unpinned, as the references run: on a
                // machine shared with other work, a pinned client waits
                // behind whatever else runs on its CPU.
                pair.a.unpin();
                pair.b.unpin();
                let (rate, cpu, _) = one_way(&mut pair, lines)?;
                r.enc_free = Some((rate, cpu));
            }
            (r.enc_rtt, r.enc_rtt_cpu) = round_trips(&mut pair, trips)?;
        }
        if let Some(clear) = &cleartext {
            let mut pair = ChatPair::start(clear, addr, &dir, &["--bench-cleartext"], pins)?;
            let (rate, cpu, _) = one_way(&mut pair, lines)?;
            r.clear_rate = Some(rate);
            r.clear_cpu = Some(cpu);
            let (rtt, cpu) = round_trips(&mut pair, trips)?;
            r.clear_rtt = Some(rtt);
            r.clear_rtt_cpu = Some(cpu);
        }
        (r.cat_rate, r.cat_driver_cpu) = cat_one_way(lines)?;
        r.cat_rtt = pipe_round_trips("cat", &[], trips)?;
        let tee_file = dir.join("tee.history");
        let tee_file = tee_file.to_str().context("temporary directory not UTF-8")?;
        // tee writes its standard output first: that goes to /dev/null,
        // and the pipe (as descriptor 3) is named after the file, so the
        // line is in the file before it goes on, as in a client.
        let script = "exec 3>&1 >/dev/null; exec tee -a \"$0\" /dev/fd/3";
        r.tee_rtt = pipe_round_trips("sh", &["-c", script, tee_file], trips)?;
        let _ = std::fs::remove_file(tee_file);
        r.tcp_rtt = chat_refs::tcp_ping_pong(trips)?;
        r.tcp_write_rate = chat_refs::tcp_one_way(lines, false)?;
        r.tcp_buffered_rate = chat_refs::tcp_one_way(lines, true)?;
        eprintln!("chat round {}: {r:?}", round + 1);
        done.push(r);
    }
    records(report, &done, lines);
    // What the pieces of a round trip cost, once per run.
    for (name, us) in crate::chat_syscalls::syscall_costs(&dir)? {
        report.add(Record {
            part: "chat",
            name: format!("system call: {name}"),
            value: us,
            unit: "us",
            reference: None,
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn records(report: &mut Report, rounds: &[Round], lines: usize) {
    let m = |f: &dyn Fn(&Round) -> Option<f64>| {
        let v: Vec<f64> = rounds.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| median(v))
    };
    let rec =
        |name: String, value: f64, unit: &'static str, reference: Option<(&str, f64)>| Record {
            part: "chat",
            name,
            value,
            unit,
            reference: reference.map(|(n, v)| Reference {
                name: n.to_owned(),
                value: v,
                ratio: value / v,
            }),
        };
    let enc = m(&|r| Some(r.enc_rate)).unwrap_or(f64::NAN);
    let clear = m(&|r| r.clear_rate);
    let tcp_buf = m(&|r| Some(r.tcp_buffered_rate)).unwrap_or(f64::NAN);
    let tcp_write = m(&|r| Some(r.tcp_write_rate)).unwrap_or(f64::NAN);
    let cat = m(&|r| Some(r.cat_rate)).unwrap_or(f64::NAN);
    let what = format!("one way, {lines} x {LINE_LEN} B");
    report.add(rec(
        format!("{what}, encrypted"),
        enc,
        "lines/s",
        Some(clear.map_or(("target 2M lines/s", 2e6), |c| ("same, cleartext", c))),
    ));
    if let Some(free) = m(&|r| r.enc_free.map(|f| f.0)) {
        report.add(rec(
            format!("{what}, encrypted, clients unpinned"),
            free,
            "lines/s",
            Some(("same, pinned", enc)),
        ));
        for (side, pick) in [("sender", 0), ("receiver", 1)] {
            let cpu = m(&|r| r.enc_free.map(|f| if pick == 0 { f.1.0 } else { f.1.1 }));
            let pinned = m(&|r| Some(if pick == 0 { r.enc_cpu.0 } else { r.enc_cpu.1 }));
            report.add(rec(
                format!("one way, {side} CPU per line, encrypted, clients unpinned"),
                cpu.unwrap_or(f64::NAN),
                "ns",
                pinned.map(|p| ("same, pinned", p)),
            ));
        }
    }
    if let Some(clear) = clear {
        report.add(rec(format!("{what}, cleartext"), clear, "lines/s", Some(("target", 2e6))));
        // The same rounds paired: each round's encrypted rate over its
        // cleartext rate, the median of those.
        if let Some(paired) = m(&|r| r.clear_rate.map(|c| r.enc_rate / c)) {
            report.add(rec(
                "one way, encrypted / cleartext, paired by round".into(),
                paired,
                "ratio",
                Some(("acceptance (issue 6)", 0.9)),
            ));
        }
        // From CPU time, which other load hardly moves: the slower side
        // sets the rate.
        let slower = |r: (f64, f64)| r.0.max(r.1);
        if let Some(by_cpu) = m(&|r| r.clear_cpu.map(|c| slower(c) / slower(r.enc_cpu))) {
            report.add(rec(
                "one way, encrypted / cleartext, from CPU per line".into(),
                by_cpu,
                "ratio",
                Some(("acceptance (issue 6)", 0.9)),
            ));
        }
    }
    let cpu = |f: &dyn Fn(&Round) -> Option<(f64, f64)>| {
        (m(&|r| f(r).map(|x| x.0)), m(&|r| f(r).map(|x| x.1)))
    };
    let (enc_a, enc_b) = cpu(&|r| Some(r.enc_cpu));
    let (clear_a, clear_b) = cpu(&|r| r.clear_cpu);
    for (side, enc, clear) in [("sender", enc_a, clear_a), ("receiver", enc_b, clear_b)] {
        let enc = enc.unwrap_or(f64::NAN);
        report.add(rec(
            format!("one way, {side} CPU per line, encrypted"),
            enc,
            "ns",
            clear.map(|c| ("same, cleartext", c)),
        ));
    }
    report.add(rec(format!("{what}, two cats"), cat, "lines/s", None));
    // The driver shares the two CPUs with the clients: what it spends per
    // line is CPU the clients cannot have.
    let driver = m(&|r| Some(r.enc_driver_cpu)).unwrap_or(f64::NAN);
    let cat_driver = m(&|r| Some(r.cat_driver_cpu)).unwrap_or(f64::NAN);
    report.add(rec(
        "one way, the driver's CPU per line (writer, both readers), encrypted".into(),
        driver,
        "ns",
        Some(("same driver, two cats (one reader)", cat_driver)),
    ));
    report.add(rec("raw TCP one write per line".into(), tcp_write, "lines/s", None));
    report.add(rec("raw TCP buffered".into(), tcp_buf, "lines/s", None));
    let p50 = |f: &dyn Fn(&Round) -> Option<(f64, f64)>| m(&|r| f(r).map(|x| x.0));
    let p99 = |f: &dyn Fn(&Round) -> Option<(f64, f64)>| m(&|r| f(r).map(|x| x.1));
    let cat50 = p50(&|r| Some(r.cat_rtt.p50_p99)).unwrap_or(f64::NAN);
    let tee50 = p50(&|r| Some(r.tee_rtt.p50_p99)).unwrap_or(f64::NAN);
    let tcp50 = p50(&|r| Some(r.tcp_rtt.p50_p99)).unwrap_or(f64::NAN);
    let floor = cat50 + tcp50;
    let history_floor = tee50 + tcp50;
    let enc50 = p50(&|r| Some(r.enc_rtt)).unwrap_or(f64::NAN);
    report.add(rec(
        "round trip p50, encrypted".into(),
        enc50,
        "us",
        Some(("two cats + TCP ping-pong", floor)),
    ));
    report.add(rec("round trip p50 over that floor, encrypted".into(), enc50 - floor, "us", None));
    // The same floor with the history rule: each hop also appends the line
    // to a file before the line goes on.
    report.add(rec(
        "round trip p50, encrypted, against two tees + TCP ping-pong".into(),
        enc50,
        "us",
        Some(("two tees (append to a file) + TCP ping-pong", history_floor)),
    ));
    let enc99 = p99(&|r| Some(r.enc_rtt)).unwrap_or(f64::NAN);
    report.add(rec("round trip p99, encrypted".into(), enc99, "us", None));
    if let (Some(c50), Some(c99)) = (p50(&|r| r.clear_rtt), p99(&|r| r.clear_rtt)) {
        report.add(rec(
            "round trip p50, cleartext".into(),
            c50,
            "us",
            Some(("same, encrypted", enc50)),
        ));
        report.add(rec("round trip p99, cleartext".into(), c99, "us", None));
    }
    let (enc_a, enc_b) = cpu(&|r| Some(r.enc_rtt_cpu));
    let (clear_a, clear_b) = cpu(&|r| r.clear_rtt_cpu);
    for (side, enc, clear) in [("A", enc_a, clear_a), ("B", enc_b, clear_b)] {
        report.add(rec(
            format!("round trip, {side}'s CPU per trip, encrypted"),
            enc.unwrap_or(f64::NAN),
            "us",
            clear.map(|c| ("same, cleartext", c)),
        ));
    }
    type Pick<'a> = &'a dyn Fn(&Round) -> Rtt;
    let refs: [(&str, Pick<'_>); 3] = [
        ("two cats", &|r| r.cat_rtt),
        ("two tees", &|r| r.tee_rtt),
        ("raw TCP ping-pong", &|r| r.tcp_rtt),
    ];
    for (name, rtt) in refs {
        report.add(rec(
            format!("round trip p50, {name}"),
            p50(&|r| Some(rtt(r).p50_p99)).unwrap_or(f64::NAN),
            "us",
            None,
        ));
        report.add(rec(
            format!("round trip p99, {name}"),
            p99(&|r| Some(rtt(r).p50_p99)).unwrap_or(f64::NAN),
            "us",
            None,
        ));
        // One wakeup, one read and one write per trip (the tee: and one
        // append): what a client's two turns per trip are made of.
        report.add(rec(
            format!("round trip, CPU per trip of one of the {name}"),
            m(&|r| Some(rtt(r).cpu)).unwrap_or(f64::NAN),
            "us",
            None,
        ));
    }
}

/// The client that can chat in clear, built into its own target directory
/// (`target/bench-cleartext`) when `p2pchat` is the workspace's release binary
/// (`target/release/p2pchat`), so the default binary is never, even for a
/// moment, one that can chat in clear; `None` (and a note) otherwise.
fn cleartext_binary(p2pchat: &Path) -> anyhow::Result<Option<PathBuf>> {
    let Some(target) = p2pchat
        .ends_with("target/release/p2pchat")
        .then(|| p2pchat.parent().and_then(Path::parent))
        .flatten()
    else {
        eprintln!(
            "{} is not the workspace's build: the cleartext figures are left out",
            p2pchat.display()
        );
        return Ok(None);
    };
    let target_dir = target.join("bench-cleartext");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--quiet", "--release", "-p", "p2pchat-cli", "--bin", "p2pchat"])
        .args(["--features", "p2pchat-cli/bench-cleartext", "--target-dir"])
        .arg(&target_dir)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --features p2pchat-cli/bench-cleartext failed: {status}");
    }
    Ok(Some(target_dir.join("release/p2pchat")))
}

/// One way from A to B: lines/s from the first written to the last shown,
/// the CPU time per line of A and of B, and the driver's own (all its
/// threads), in ns.
fn one_way(pair: &mut ChatPair, lines: usize) -> anyhow::Result<(f64, (f64, f64), f64)> {
    let input = numbered_input(lines);
    let pids = [pair.a.child.id(), pair.b.child.id()];
    let cpu_before = pids.map(cpu_ns);
    let driver_before = process_cpu_ns();
    // A shows each line it sends (`[…] you: …`): read them away meanwhile.
    let mut a_out = pair.a.stdout.take().context("A's output")?;
    let drain = std::thread::spawn(move || -> anyhow::Result<_> {
        count_numbered(&mut a_out, "you", lines)?;
        Ok(a_out)
    });
    let stdin = pair.a.stdin.take().context("A's input")?;
    let start = Instant::now();
    let writer = write_lines(stdin, input);
    let b_out = pair.b.stdout.as_mut().context("B's output")?;
    count_numbered(b_out, NAME_A, lines)?;
    let elapsed = start.elapsed();
    let cpu_after = pids.map(cpu_ns);
    let driver = (process_cpu_ns() - driver_before) / lines as f64;
    let per_line = |i: usize| match (cpu_before[i], cpu_after[i]) {
        (Some(b), Some(a)) => a.saturating_sub(b) as f64 / lines as f64,
        _ => f64::NAN,
    };
    let (stdin, input) = writer.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
    pair.a.stdin = Some(stdin);
    drop(input);
    pair.a.stdout = Some(drain.join().map_err(|_| anyhow::anyhow!("drain panicked"))??);
    // What was shown was in the history first.
    let history = pair.history_lines();
    if history.iter().any(|&n| n < lines) {
        bail!("history files hold {history:?} lines, fewer than the {lines} shown");
    }
    Ok((lines as f64 / elapsed.as_secs_f64(), (per_line(0), per_line(1)), driver))
}

/// The text of round trip `i`.
fn trip_line(i: usize) -> String {
    let mut s = format!("rt{i:08} ");
    while s.len() < LINE_LEN {
        s.push('y');
    }
    s
}

/// Reads `out` until a line ends with `marker` + `text`.
fn read_until_text(
    out: &mut BufReader<ChildStdout>,
    buf: &mut Vec<u8>,
    marker: &[u8],
) -> anyhow::Result<()> {
    loop {
        buf.clear();
        if out.read_until(b'\n', buf)? == 0 {
            bail!("output ended during the round trips");
        }
        if buf.ends_with(marker) {
            return Ok(());
        }
    }
}

/// Percentiles 50 and 99 of `v`, in microseconds.
fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |p: usize| v.get((v.len() * p / 100).min(v.len().saturating_sub(1)));
    let us = |d: Option<&Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e6);
    (us(at(50)), us(at(99)))
}

/// Round trips A → B → A with one line in flight: p50 and p99 in µs, and
/// the CPU time per round trip of A and of B, in µs.
fn round_trips(pair: &mut ChatPair, trips: usize) -> anyhow::Result<((f64, f64), (f64, f64))> {
    // Free to run on any CPU, as the references (`cat`, the TCP threads)
    // are: pinned to different CPUs, every hop between them would be a
    // wakeup across CPUs, which cost this machine twice the round trip
    // (110 µs against 52 µs, 50 µs of CPU per trip against 21 µs).
    pair.a.unpin();
    pair.b.unpin();
    let pids = [pair.a.child.id(), pair.b.child.id()];
    let mut cpu_before = pids.map(cpu_ns);
    let mut times = Vec::with_capacity(trips);
    let mut buf = Vec::with_capacity(256);
    for i in 0..trips + RTT_WARMUP {
        let text = trip_line(i);
        let to_b = format!("] {NAME_A}: {text}\n");
        let to_a = format!("] {NAME_B}: {text}\n");
        let start = Instant::now();
        pair.a.send(&text)?;
        read_until_text(pair.b.stdout.as_mut().context("B")?, &mut buf, to_b.as_bytes())?;
        pair.b.send(&text)?;
        read_until_text(pair.a.stdout.as_mut().context("A")?, &mut buf, to_a.as_bytes())?;
        if i >= RTT_WARMUP {
            times.push(start.elapsed());
        }
        if i + 1 == RTT_WARMUP {
            cpu_before = pids.map(cpu_ns);
        }
    }
    let cpu_after = pids.map(cpu_ns);
    let per_trip = |i: usize| match (cpu_before[i], cpu_after[i]) {
        (Some(b), Some(a)) => a.saturating_sub(b) as f64 / trips as f64 / 1e3,
        _ => f64::NAN,
    };
    Ok((percentiles(times), (per_trip(0), per_trip(1))))
}

/// CPU time this process (all its threads, those ended too) has used, in
/// nanoseconds; NaN if the OS does not say.
fn process_cpu_ns() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else { return f64::NAN };
    let ns = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1e9 + t.tv_usec() as f64 * 1e3;
    ns(usage.user_time()) + ns(usage.system_time())
}

/// CPU time the calling thread has used, in nanoseconds, from
/// `/proc/thread-self/schedstat`.
pub fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// The round-trip driver through two processes that each copy a line from
/// their input to their output, as `cat`; a `tee -a FILE` also appends it
/// to a file first, as a client records a line in its history before
/// showing it (its extra write to /dev/null costs about 0.2 µs).
/// Returns p50 and p99 in µs, and each process's CPU time per trip (the
/// mean of the two).
fn pipe_round_trips(program: &str, args: &[&str], trips: usize) -> anyhow::Result<Rtt> {
    let spawn = || {
        let mut cmd = Command::new(program);
        cmd.args(args);
        Proc::spawn(cmd)
    };
    let mut a = spawn()?;
    let mut b = spawn()?;
    let pids = [a.child.id(), b.child.id()];
    let mut cpu_before = pids.map(cpu_ns);
    let mut times = Vec::with_capacity(trips);
    let mut buf = Vec::with_capacity(256);
    for i in 0..trips + RTT_WARMUP {
        let text = trip_line(i);
        let line = format!("{text}\n");
        let start = Instant::now();
        a.send(&text)?;
        read_until_text(a.stdout.as_mut().context(program.to_owned())?, &mut buf, line.as_bytes())?;
        b.send(&text)?;
        read_until_text(b.stdout.as_mut().context(program.to_owned())?, &mut buf, line.as_bytes())?;
        if i >= RTT_WARMUP {
            times.push(start.elapsed());
        }
        if i + 1 == RTT_WARMUP {
            cpu_before = pids.map(cpu_ns);
        }
    }
    let cpu_after = pids.map(cpu_ns);
    let cpu: Vec<f64> =
        (0..2).filter_map(|i| Some(cpu_after[i]?.saturating_sub(cpu_before[i]?) as f64)).collect();
    let per_trip = cpu.iter().sum::<f64>() / cpu.len().max(1) as f64 / trips as f64 / 1e3;
    Ok(Rtt { p50_p99: percentiles(times), cpu: per_trip })
}

/// A round trip's p50 and p99 (µs), and the CPU time (µs) per trip of one
/// of the processes (or threads) that copy the line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rtt {
    /// p50 and p99, µs.
    pub p50_p99: (f64, f64),
    /// CPU µs per trip of one copying process.
    pub cpu: f64,
}

/// The same one-way driver through `cat | cat`: lines/s, and the driver's
/// CPU ns per line.
fn cat_one_way(lines: usize) -> anyhow::Result<(f64, f64)> {
    let mut first = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start cat")?;
    let middle = first.stdout.take().context("cat's output")?;
    let mut second = Proc::spawn_with_stdin({
        let mut c = Command::new("cat");
        c.stdin(Stdio::from(middle));
        c
    })?;
    let stdin = first.stdin.take().context("cat's input")?;
    let input = numbered_input(lines);
    let driver_before = process_cpu_ns();
    let start = Instant::now();
    let writer = write_lines(stdin, input);
    let out = second.stdout.as_mut().context("cat's output")?;
    let mut line = Vec::with_capacity(256);
    for i in 0..lines {
        line.clear();
        if out.read_until(b'\n', &mut line)? == 0
            || !line.starts_with(format!("{i:010}").as_bytes())
        {
            bail!("cat lost line {i}");
        }
    }
    let elapsed = start.elapsed();
    let driver = (process_cpu_ns() - driver_before) / lines as f64;
    drop(writer.join().map_err(|_| anyhow::anyhow!("writer panicked"))??);
    let _ = first.kill();
    let _ = first.wait();
    Ok((lines as f64 / elapsed.as_secs_f64(), driver))
}
