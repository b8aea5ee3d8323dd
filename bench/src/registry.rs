//! The `registry` part: the real `p2pchat server` under closed-loop load
//! (keepalive, lookup, list page), next to the suite's echo servers (plain,
//! batched, and both with replies of a list page's size) in the same run,
//! in interleaved rounds; medians of the rounds are reported, each with its
//! ratio to the echo.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use crate::child::{Server, start_echo, start_registry};
use crate::echo::EchoMode;
use crate::loadgen::{self, Expect, LoadResult, LoadShape, Requests};
use crate::pin;
use crate::registry_session::{Mix, bind_load_sockets, check, prepare, templates};
use crate::registry_users::login_all;
use crate::report::{Record, Report};

/// Users listed while the registry is loaded, so a list page is full.
pub const LISTED_USERS: u32 = 1_000;

/// (sockets, requests in flight per socket), as in issue 9.
pub const CONFIGS: [(usize, usize); 2] = [(4, 8), (16, 32)];

/// Longest a bulk login of the listed users may take.
const LOGIN_DEADLINE: Duration = Duration::from_secs(60);

/// How long and how often to measure.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Interleaved rounds; each figure is the median over them.
    pub rounds: usize,
    /// The load of one measurement.
    pub shape: LoadShape,
}

impl Settings {
    /// The full suite: 3 rounds of 2 s windows.
    pub fn full(in_flight: usize) -> Self {
        Self {
            rounds: 3,
            shape: LoadShape {
                in_flight,
                warmup: Duration::from_millis(300),
                duration: Duration::from_secs(2),
                timeout: Duration::from_millis(100),
            },
        }
    }

    /// `--quick`: one round of 0.3 s windows.
    pub fn quick(in_flight: usize) -> Self {
        Self {
            rounds: 1,
            shape: LoadShape {
                in_flight,
                warmup: Duration::from_millis(100),
                duration: Duration::from_millis(300),
                timeout: Duration::from_millis(100),
            },
        }
    }
}

/// The median of `xs` (0 when empty).
pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The medians of several runs of one target.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Replies per second.
    pub rate: f64,
    /// Latency p50, µs.
    pub p50: f64,
    /// Latency p99, µs.
    pub p99: f64,
    /// Requests lost, summed over the runs.
    pub lost: u64,
    /// Requests sent, summed over the runs.
    pub sent: u64,
    /// Replies that came after their request's time-out (counted lost),
    /// summed over the runs.
    pub late: u64,
    /// Share of the window the load generator was on its CPU, in %.
    pub load_busy: f64,
    /// Share of the window the target was on its CPU, in %.
    pub target_busy: f64,
    /// CPU the rest of the machine used in the window, in % of one CPU.
    pub others_busy: f64,
}

/// Summarises runs of one target, noting anomalies on stderr.
pub fn summarise(label: &str, runs: &[LoadResult]) -> Summary {
    for r in runs {
        if r.bad + r.challenged > 0 {
            eprintln!("note: {label}: {} bad, {} challenged replies", r.bad, r.challenged);
        }
    }
    Summary {
        rate: median(runs.iter().map(LoadResult::rate).collect()),
        p50: median(runs.iter().map(|r| r.latency_us(0.5)).collect()),
        p99: median(runs.iter().map(|r| r.latency_us(0.99)).collect()),
        lost: runs.iter().map(|r| r.lost).sum(),
        sent: runs.iter().map(|r| r.sent).sum(),
        late: runs.iter().map(|r| r.late).sum(),
        load_busy: 100.0 * median(runs.iter().filter_map(|r| r.load_busy).collect()),
        target_busy: 100.0 * median(runs.iter().filter_map(|r| r.target_busy).collect()),
        others_busy: 100.0 * median(runs.iter().filter_map(|r| r.others_busy).collect()),
    }
}

/// Runs the part.
pub fn run(p2pchat: &Path, quick: bool, report: &mut Report) -> anyhow::Result<()> {
    pin::pin_self(pin::LOAD_CPU);
    let server = start_registry(p2pchat, LISTED_USERS + 1_000)?;
    login_all(server.addr, 0..LISTED_USERS, LOGIN_DEADLINE)?;

    // One list page, decoded in full, gives the size of the big echoes.
    let (probe, cookies) = prepare(1, server.addr)?;
    let list = templates(Mix::ListPage, cookies[0], 0, LISTED_USERS);
    let (page_len, entries) = check(&probe[0], Mix::ListPage, &list)?;
    drop(probe);
    report.add(Record::new(
        "registry",
        format!("list page ({entries} entries)"),
        page_len as f64,
        "B",
    ));

    let echoes = [
        start_echo(EchoMode::Plain, None)?,
        start_echo(EchoMode::Batched, None)?,
        start_echo(EchoMode::Plain, Some(page_len))?,
        start_echo(EchoMode::Batched, Some(page_len))?,
    ];
    for (n, k) in CONFIGS {
        let settings = if quick { Settings::quick(k) } else { Settings::full(k) };
        measure_config(&server, &echoes, n, settings, report)
            .with_context(|| format!("{n} sockets x {k} in flight"))?;
    }
    Ok(())
}

fn measure_config(
    server: &Server,
    echoes: &[Server; 4],
    n: usize,
    settings: Settings,
    report: &mut Report,
) -> anyhow::Result<()> {
    let k = settings.shape.in_flight;
    let (sockets, cookies) = prepare(n, server.addr)?;
    let mixes = [Mix::Keepalive, Mix::Lookup, Mix::ListPage];
    let mut requests: BTreeMap<&str, Vec<Requests>> = BTreeMap::new();
    for mix in mixes {
        let r: Vec<Requests> =
            (0..n).map(|i| templates(mix, cookies[i], i, LISTED_USERS)).collect();
        check(&sockets[0], mix, &r[0])?;
        requests.insert(mix.name(), r);
    }
    let mut runs: BTreeMap<String, Vec<LoadResult>> = BTreeMap::new();
    for round in 0..settings.rounds {
        eprintln!("registry {n}x{k}: round {} of {}", round + 1, settings.rounds);
        for mix in mixes {
            let reqs = requests.get_mut(mix.name()).context("templates")?;
            let r = loadgen::run(&sockets, reqs, mix.expect(), settings.shape, Some(server.pid()))?;
            runs.entry(mix.name().to_string()).or_default().push(r);
        }
        for (e, echo) in echoes.iter().enumerate() {
            let echo_sockets = bind_load_sockets(n, echo.addr)?;
            // Small echoes answer keepalive-shaped requests, big ones
            // list-shaped ones.
            let shape_of = if e < 2 { Mix::Keepalive } else { Mix::ListPage };
            let mut reqs = requests.get(shape_of.name()).context("templates")?.clone();
            let r = loadgen::run(
                &echo_sockets,
                &mut reqs,
                Expect::Echo,
                settings.shape,
                Some(echo.pid()),
            )?;
            runs.entry(echo.label.clone()).or_default().push(r);
        }
    }
    let s = |label: &str| summarise(label, runs.get(label).map_or(&[][..], Vec::as_slice));
    let config = format!("{n}x{k}");
    for mix in mixes {
        let got = s(mix.name());
        let refs: [&Server; 2] = match mix {
            Mix::Keepalive | Mix::Lookup => [&echoes[0], &echoes[1]],
            Mix::ListPage => [&echoes[2], &echoes[3]],
        };
        let [plain, batched] = refs.map(|e| (e.label.as_str(), s(&e.label)));
        let name = mix.name();
        report.add(
            Record::new("registry", format!("{name} replies/s, {config}"), got.rate, "replies/s")
                .vs(plain.0, plain.1.rate),
        );
        report.add(
            Record::new("registry", format!("{name} replies/s, {config}"), got.rate, "replies/s")
                .vs(batched.0, batched.1.rate),
        );
        report.add(
            Record::new("registry", format!("{name} p50, {config}"), got.p50, "us")
                .vs(plain.0, plain.1.p50),
        );
        // Both echoes: the plain one answers each request as it comes, the
        // batched one (like the registry) a batch at a time.
        for (label, echo) in [&plain, &batched] {
            report.add(
                Record::new("registry", format!("{name} p99, {config}"), got.p99, "us")
                    .vs(*label, echo.p99),
            );
        }
        let lost_pct =
            |x: &Summary| if x.sent > 0 { 100.0 * x.lost as f64 / x.sent as f64 } else { 0.0 };
        report.add(
            Record::new(
                "registry",
                format!(
                    "{name} lost ({} of {} sent, {} answered after {} ms), {config}",
                    got.lost,
                    got.sent,
                    got.late,
                    settings.shape.timeout.as_millis()
                ),
                lost_pct(&got),
                "%",
            )
            .vs(plain.0, lost_pct(&plain.1)),
        );
    }
    for label in mixes.iter().map(|m| m.name()).chain(echoes.iter().map(|e| e.label.as_str())) {
        let x = s(label);
        report.add(Record::new(
            "registry",
            format!("{label}: target CPU busy, {config}"),
            x.target_busy,
            "%",
        ));
        report.add(Record::new(
            "registry",
            format!("{label}: load generator CPU busy, {config}"),
            x.load_busy,
            "%",
        ));
        report.add(Record::new(
            "registry",
            format!("{label}: other processes' CPU, {config}"),
            x.others_busy,
            "% of 1 CPU",
        ));
    }
    Ok(())
}
