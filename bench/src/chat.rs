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
//!   a raw TCP ping-pong, two minimal relays (the client's loop without the
//!   chat, [`crate::relay`]), and a raw TCP stream of the same framing, one
//!   write per line and buffered ([`crate::chat_refs`]). The round trips and
//!   their references take turns in blocks, free to run on any CPU and then
//!   all on one ([`crate::chat_trips`]).
//!
//! Every round runs all of them once, in turn; the figures are the medians
//! of the rounds. `P2PCHAT_BENCH_CHAT_LINES=N` sends N lines one way instead
//! of [`LINES`], `P2PCHAT_BENCH_CHAT_TRIPS=N` measures N round trips instead
//! of [`ROUND_TRIPS`] (a longer window for a profiler).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::chat_lines::{count_numbered, numbered_input, write_lines};
use crate::chat_procs::{ChatPair, NAME_A, Proc, server};
use crate::chat_refs;
use crate::chat_trips::{self, ChatTrips, PipeTrips, TcpTrips, Timed};
use crate::report::{Record, Reference, Report};

/// Bytes of text per line.
pub const LINE_LEN: usize = 100;

/// Lines sent one way per round.
const LINES: usize = 200_000;
/// Round trips of each kind timed per round (after
/// [`chat_trips::RTT_WARMUP`]).
const ROUND_TRIPS: usize = 5_000;
/// Rounds (each runs every measure once); medians are reported.
const ROUNDS: usize = 5;

/// CPU time `pid` (a single-threaded process) has run, in ns, from
/// `/proc/PID/schedstat`: not affected by other load on the machine as
/// wall-clock rates are.
pub fn cpu_ns(pid: u32) -> Option<u64> {
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
    /// The round trips, free to run anywhere and all on one CPU.
    trips: [TripSet; 2],
    clear_rate: Option<f64>,
    /// The cleartext clients' round trips, free and on one CPU.
    clear_rtt: Option<[Timed; 2]>,
    cat_rate: f64,
    tcp_write_rate: f64,
    tcp_buffered_rate: f64,
}

/// The round trips of one placement, each kind timed beside the others.
#[derive(Debug, Default, Clone)]
struct TripSet {
    /// The encrypted clients, with CPU µs per trip of A and B.
    chat: Timed,
    /// Two minimal relays: the client's loop without the chat.
    relay: Timed,
    cat: Timed,
    /// Two `tee -a FILE`: `cat` plus a write to a file per hop.
    tee: Timed,
    tcp: Timed,
}

/// Where each set of round trips runs: free, then on [`chat_trips::ONE_CPU`].
const PLACEMENTS: [Option<usize>; 2] = [None, Some(chat_trips::ONE_CPU)];

/// `run` for each of [`PLACEMENTS`], in order.
fn each_placement<T>(
    mut run: impl FnMut(Option<usize>) -> anyhow::Result<T>,
) -> anyhow::Result<[T; 2]> {
    let [free, one] = PLACEMENTS;
    Ok([run(free)?, run(one)?])
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
            r.trips = round_trips(&mut pair, &dir, trips)?;
        }
        if let Some(clear) = &cleartext {
            let mut pair = ChatPair::start(clear, addr, &dir, &["--bench-cleartext"], pins)?;
            let (rate, cpu, _) = one_way(&mut pair, lines)?;
            r.clear_rate = Some(rate);
            r.clear_cpu = Some(cpu);
            let mut chat = ChatTrips::new(&mut pair);
            r.clear_rtt = Some(each_placement(|cpu| {
                Ok(chat_trips::interleaved(&mut [&mut chat], trips, cpu)?.remove(0))
            })?);
        }
        (r.cat_rate, r.cat_driver_cpu) = cat_one_way(lines)?;
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
    for (i, cpu) in PLACEMENTS.iter().enumerate() {
        let on = if cpu.is_some() { ", all on one CPU" } else { "" };
        trip_records(&mut *report, rounds, on, &|r| &r.trips[i], &|r| {
            r.clear_rtt.as_ref().map(|c| &c[i])
        });
    }
}

/// The records of one placement's round trips (`on` says which).
fn trip_records(
    report: &mut Report,
    rounds: &[Round],
    on: &str,
    set: &dyn Fn(&Round) -> &TripSet,
    clear: &dyn Fn(&Round) -> Option<&Timed>,
) {
    let m = |f: &dyn Fn(&Round) -> Option<f64>| {
        let v: Vec<f64> = rounds.iter().filter_map(f).collect();
        median(v)
    };
    let mut add = |name: String, value: f64, reference: Option<(&str, f64)>| {
        report.add(Record {
            part: "chat",
            name: format!("{name}{on}"),
            value,
            unit: "us",
            reference: reference.map(|(n, v)| Reference {
                name: n.to_owned(),
                value: v,
                ratio: value / v,
            }),
        });
    };
    let p50 = |t: &dyn Fn(&TripSet) -> &Timed| m(&|r| Some(t(set(r)).p50_p99.0));
    let p99 = |t: &dyn Fn(&TripSet) -> &Timed| m(&|r| Some(t(set(r)).p50_p99.1));
    let enc = p50(&|s| &s.chat);
    let floor = p50(&|s| &s.cat) + p50(&|s| &s.tcp);
    let history_floor = p50(&|s| &s.tee) + p50(&|s| &s.tcp);
    let relay = p50(&|s| &s.relay);
    add("round trip p50, encrypted".into(), enc, Some(("two cats + TCP ping-pong", floor)));
    add("round trip p50 over that floor, encrypted".into(), enc - floor, None);
    // The same floor with the history rule: each hop also appends the line
    // to a file before the line goes on.
    add(
        "round trip p50, encrypted, against two tees + TCP ping-pong".into(),
        enc,
        Some(("two tees (append to a file) + TCP ping-pong", history_floor)),
    );
    add(
        "round trip p50, encrypted, against two minimal relays".into(),
        enc,
        Some(("relays", relay)),
    );
    add("round trip p99, encrypted".into(), p99(&|s| &s.chat), None);
    // Without the cleartext build (another binary measured), no cleartext
    // figures.
    let has_clear = rounds.iter().any(|r| clear(r).is_some());
    if has_clear {
        let clear50 = m(&|r| clear(r).map(|t| t.p50_p99.0));
        add("round trip p50, cleartext".into(), clear50, Some(("same, encrypted", enc)));
        add("round trip p99, cleartext".into(), m(&|r| clear(r).map(|t| t.p50_p99.1)), None);
    }
    for (i, side) in ["A", "B"].into_iter().enumerate() {
        let clear = m(&|r| clear(r).and_then(|t| t.cpu.get(i).copied()));
        add(
            format!("round trip, {side}'s CPU per trip, encrypted"),
            m(&|r| set(r).chat.cpu.get(i).copied()),
            has_clear.then_some(("same, cleartext", clear)),
        );
    }
    type Pick<'a> = &'a dyn Fn(&TripSet) -> &Timed;
    let refs: [(&str, Pick<'_>); 4] = [
        ("two minimal relays", &|s| &s.relay),
        ("two cats", &|s| &s.cat),
        ("two tees", &|s| &s.tee),
        ("raw TCP ping-pong", &|s| &s.tcp),
    ];
    for (name, t) in refs {
        add(format!("round trip p50, {name}"), p50(t), None);
        add(format!("round trip p99, {name}"), p99(t), None);
        // One wakeup, one read and one write per trip (the tee: and one
        // append): what a client's two turns per trip are made of.
        add(
            format!("round trip, CPU per trip of one of the {name}"),
            m(&|r| Some(t(set(r)).cpu_mean())),
            None,
        );
    }
}

/// The round trips of `pair` and of the references beside them, free and
/// on one CPU.
fn round_trips(pair: &mut ChatPair, dir: &Path, trips: usize) -> anyhow::Result<[TripSet; 2]> {
    let tee_file = dir.join("tee.history");
    let tee_path = tee_file.to_str().context("temporary directory not UTF-8")?;
    // tee writes its standard output first: that goes to /dev/null, and the
    // pipe (as descriptor 3) is named after the file, so the line is in the
    // file before it goes on, as in a client.
    let script = "exec 3>&1 >/dev/null; exec tee -a \"$0\" /dev/fd/3";
    let mut relays = chat_trips::start_relays()?;
    let mut relay = ChatTrips::relays(&mut relays);
    let mut cat = PipeTrips::start("cat", &[])?;
    let mut tee = PipeTrips::start("sh", &["-c", script, tee_path])?;
    let mut tcp = TcpTrips::start()?;
    let mut chat = ChatTrips::new(pair);
    let sets = each_placement(|cpu| {
        let kinds: &mut [&mut dyn chat_trips::Trips] =
            &mut [&mut chat, &mut relay, &mut cat, &mut tee, &mut tcp];
        let [chat, relay, cat, tee, tcp] = chat_trips::interleaved(kinds, trips, cpu)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("five kinds of trips"))?;
        Ok(TripSet { chat, relay, cat, tee, tcp })
    })?;
    drop(tee);
    let _ = std::fs::remove_file(tee_file);
    Ok(sets)
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

/// CPU time this process (all its threads, those ended too) has used, in
/// nanoseconds; NaN if the OS does not say.
fn process_cpu_ns() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else { return f64::NAN };
    let ns = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1e9 + t.tv_usec() as f64 * 1e3;
    ns(usage.user_time()) + ns(usage.system_time())
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
