//! The `scale` part: the real `p2pchat server` filled with a million users
//! (each logged in from its own endpoint), its memory per user, the login
//! rate, and lookup and list-page latency at that size against the same
//! load at 100 users, in the same server process.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::child::start_registry;
use crate::loadgen::{self, LoadResult};
use crate::pin;
use crate::registry::{Settings, Summary, summarise};
use crate::registry_session::{Mix, check, prepare, templates};
use crate::registry_users::login_users;
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
    let server = start_registry(p2pchat, users + 1_000)?;
    let pid = server.pid();
    let (n, k) = LOAD;
    let settings = if quick { Settings::quick(k) } else { Settings::full(k) };

    let rss_before = pin::vm_rss(pid)?;
    let small = login_users(server.addr, 0..SMALL_USERS, Instant::now() + LOGIN_DEADLINE)?;
    anyhow::ensure!(small.failed == 0, "{} of {SMALL_USERS} users failed to log in", small.failed);
    let (sockets, cookies) = prepare(n, server.addr)?;
    let at_small = measure(pid, &sockets, &cookies, SMALL_USERS, settings)?;

    eprintln!("scale: logging in {} more users", users - SMALL_USERS);
    let big = login_users(server.addr, SMALL_USERS..users, Instant::now() + LOGIN_DEADLINE)?;
    let rss_after = pin::vm_rss(pid)?;
    let online = small.logged_in + big.logged_in + n as u64;
    if big.failed > 0 {
        eprintln!("note: {} users failed to log in", big.failed);
    }
    // Cookies may have expired during the bulk login: log in again.
    let (sockets, cookies) = prepare(n, server.addr)?;
    let at_big = measure(pid, &sockets, &cookies, users, settings)?;

    let per_user = rss_after.saturating_sub(rss_before) as f64 / online.max(1) as f64;
    report.add(Record::new("scale", format!("RSS per user at {online} users"), per_user, "B/user"));
    report.add(Record::new(
        "scale",
        format!("server RSS at {online} users"),
        rss_after as f64 / f64::from(1 << 20),
        "MiB",
    ));
    report.add(Record::new(
        "scale",
        format!("login rate ({} logins, {} failed)", big.logged_in, big.failed),
        big.logged_in as f64 / big.seconds.max(1e-9),
        "logins/s",
    ));
    for (mix, big, small) in
        [(Mix::Lookup, &at_big.0, &at_small.0), (Mix::ListPage, &at_big.1, &at_small.1)]
    {
        let name = mix.name();
        let small_label = format!("at {SMALL_USERS} users");
        report.add(
            Record::new("scale", format!("{name} p50 at {users} users, {n}x{k}"), big.p50, "us")
                .vs(small_label.clone(), small.p50),
        );
        report.add(
            Record::new(
                "scale",
                format!("{name} replies/s at {users} users, {n}x{k}"),
                big.rate,
                "replies/s",
            )
            .vs(small_label, small.rate),
        );
    }
    Ok(())
}

/// Lookup and list-page load against the registry holding `listed` users
/// (plus the load sockets' own).
fn measure(
    pid: u32,
    sockets: &[std::net::UdpSocket],
    cookies: &[p2pchat_core::Cookie],
    listed: u32,
    settings: Settings,
) -> anyhow::Result<(Summary, Summary)> {
    let mut out = Vec::new();
    for mix in [Mix::Lookup, Mix::ListPage] {
        let mut reqs: Vec<_> =
            (0..sockets.len()).map(|i| templates(mix, cookies[i], i, listed)).collect();
        check(&sockets[0], mix, &reqs[0])
            .with_context(|| format!("{} at {listed} users", mix.name()))?;
        let mut runs: Vec<LoadResult> = Vec::new();
        for _ in 0..settings.rounds {
            runs.push(loadgen::run(sockets, &mut reqs, mix.expect(), settings.shape, Some(pid))?);
        }
        out.push(summarise(&format!("{} at {listed}", mix.name()), &runs));
    }
    let list = out.pop().unwrap_or_default();
    let lookup = out.pop().unwrap_or_default();
    Ok((lookup, list))
}
