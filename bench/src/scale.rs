//! The `scale` part: the real `p2pchat server` filled with a million users
//! (each logged in from its own endpoint), its memory per user, the login
//! rate, and lookup and list-page latency at that size against the same
//! load at 100 users, in the same server process.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::child::start_registry;
use crate::loadgen;
use crate::pin;
use crate::registry::{Settings, summarise};
use crate::registry_session::{Mix, check, prepare, templates};
use crate::registry_users::{login_all, login_users};
use crate::report::{Record, Report};

/// Users of the full run.
pub const FULL_USERS: u32 = 1_000_000;

/// Users of `--quick`.
pub const QUICK_USERS: u32 = 50_000;

/// Users of the small registry the big one is compared with.
pub const SMALL_USERS: u32 = 100;

/// Load sockets and requests in flight while measuring latency (4 x 8, as
/// in issue 9).
const LOAD: (usize, usize) = (4, 8);

/// Longest the bulk login may take (the full run needs well under it).
const LOGIN_DEADLINE: Duration = Duration::from_secs(900);

/// Runs the part with `users` users.
pub fn run(p2pchat: &Path, quick: bool, users: u32, report: &mut Report) -> anyhow::Result<()> {
    pin::pin_self(pin::LOAD_CPU);
    let users = users.max(SMALL_USERS + 1);
    let (n, k) = LOAD;
    let settings = if quick { Settings::quick(k) } else { Settings::full(k) };

    // Two servers, measured in interleaved rounds: one with 100 users, one
    // with `users`.
    let small = start_registry(p2pchat, SMALL_USERS + 1_000)?;
    login_all(small.addr, 0..SMALL_USERS, LOGIN_DEADLINE)?;

    let big = start_registry(p2pchat, users + 1_000)?;
    let rss_before = pin::vm_rss(big.pid())?;
    eprintln!("scale: logging in {users} users");
    let logins = login_users(big.addr, 0..users, Instant::now() + LOGIN_DEADLINE)?;
    let rss_after = pin::vm_rss(big.pid())?;
    if logins.failed > 0 {
        eprintln!("note: {} users failed to log in", logins.failed);
    }
    let online = logins.logged_in + n as u64;

    let (small_sockets, small_cookies) = prepare(n, small.addr)?;
    let (big_sockets, big_cookies) = prepare(n, big.addr)?;
    let rss_loaded = pin::vm_rss(big.pid())?;

    let per_user = rss_loaded.saturating_sub(rss_before) as f64 / online.max(1) as f64;
    report.add(Record::new("scale", format!("RSS per user at {online} users"), per_user, "B/user"));
    report.add(Record::new(
        "scale",
        format!("server RSS at {online} users (before logins {:.1} MiB)", mib(rss_before)),
        mib(rss_after.max(rss_loaded)),
        "MiB",
    ));
    report.add(Record::new(
        "scale",
        format!("login rate ({} logins, {} failed)", logins.logged_in, logins.failed),
        logins.logged_in as f64 / logins.seconds.max(1e-9),
        "logins/s",
    ));

    for mix in [Mix::Lookup, Mix::ListPage] {
        let mut small_reqs: Vec<_> =
            (0..n).map(|i| templates(mix, small_cookies[i], i, SMALL_USERS)).collect();
        let mut big_reqs: Vec<_> =
            (0..n).map(|i| templates(mix, big_cookies[i], i, users)).collect();
        check(&small_sockets[0], mix, &small_reqs[0])
            .with_context(|| format!("{} at {SMALL_USERS} users", mix.name()))?;
        check(&big_sockets[0], mix, &big_reqs[0])
            .with_context(|| format!("{} at {users} users", mix.name()))?;
        let (mut at_small, mut at_big) = (Vec::new(), Vec::new());
        for round in 0..settings.rounds {
            eprintln!("scale {}: round {} of {}", mix.name(), round + 1, settings.rounds);
            let (e, s) = (mix.expect(), settings.shape);
            at_small.push(loadgen::run(&small_sockets, &mut small_reqs, e, s, Some(small.pid()))?);
            at_big.push(loadgen::run(&big_sockets, &mut big_reqs, e, s, Some(big.pid()))?);
        }
        let name = mix.name();
        let small_s = summarise(&format!("{name} at {SMALL_USERS} users"), &at_small);
        let big_s = summarise(&format!("{name} at {users} users"), &at_big);
        let vs = format!("at {SMALL_USERS} users");
        report.add(
            Record::new("scale", format!("{name} p50 at {users} users, {n}x{k}"), big_s.p50, "us")
                .vs(vs.clone(), small_s.p50),
        );
        report.add(
            Record::new(
                "scale",
                format!("{name} replies/s at {users} users, {n}x{k}"),
                big_s.rate,
                "replies/s",
            )
            .vs(vs.clone(), small_s.rate),
        );
        report.add(
            Record::new(
                "scale",
                format!("{name}: server CPU busy at {users} users"),
                big_s.target_busy,
                "%",
            )
            .vs(vs.clone(), small_s.target_busy),
        );
        report.add(
            Record::new(
                "scale",
                format!("{name}: load generator CPU busy at {users} users"),
                big_s.load_busy,
                "%",
            )
            .vs(vs.clone(), small_s.load_busy),
        );
        report.add(
            Record::new(
                "scale",
                format!("{name}: other processes' CPU at {users} users"),
                big_s.others_busy,
                "% of 1 CPU",
            )
            .vs(vs, small_s.others_busy),
        );
    }
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}
