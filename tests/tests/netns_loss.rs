//! The real binary on real network paths with 30% random loss of UDP and
//! TCP packets: logins, `p2pchat list` runs and a 500-message chat each way
//! all succeed, and the chat's history files hold every message exactly
//! once, in order. Needs root (network namespaces, nftables); elsewhere
//! each test prints one line saying why it skipped.
//!
//! Run with `cargo test -p p2pchat-tests --test netns_loss -- --nocapture`
//! to see the measured times.

mod common;

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Proc, binary, history, temp_dir};
use p2pchat_tests::netns::{Net, NetHost, Topology};

/// Percent of UDP and TCP packets lost on each way.
const LOSS: u8 = 30;

/// Logins, and separately `p2pchat list` runs, in the first test.
const RUNS: usize = 50;

/// How many of those run at once (each on its own host).
const PARALLEL: usize = 5;

/// Texts each way in the chat test.
const TEXTS: usize = 500;

/// How many times Alice may try to start the chat.
const CONNECT_TRIES: usize = 4;

/// Alice's last texts, typed while she is cut off.
const TAIL: usize = 20;

/// How long Alice is cut off after her input ends: longer than the close
/// linger (5 s) that used to be all she waited for acknowledgements, short
/// enough that TCP's next retransmission comes well within the peer's 30 s
/// silence limit.
const BLACKOUT: Duration = Duration::from_secs(6);

/// The longest a login or a list may take: the registry client gives up
/// after 30 s per request, and a login is a few requests.
const RUN_TIMEOUT: Duration = Duration::from_secs(150);

/// The longest one direction of the chat may take to arrive.
const CHAT_TIMEOUT: Duration = Duration::from_secs(240);

/// The registry's port in its namespace.
const REGISTRY_PORT: u16 = 5000;

/// Starts the registry server in `host`'s namespace.
fn registry(host: &NetHost, dir: &Path) -> (Proc, SocketAddr) {
    let addr = SocketAddr::from((host.addr, REGISTRY_PORT));
    let bind = addr.to_string();
    let mut p = Proc::spawn_with(
        host.command(binary()),
        "server",
        &["server", "--bind", &bind, "--lease", "60"],
        Some(Stdio::null()),
        dir,
    );
    p.expect_prefix("Server listening on ");
    (p, addr)
}

/// Starts a client `name` in `host`'s namespace, with stdin from `stdin`
/// (piped if `None`).
fn client(
    host: &NetHost,
    name: &str,
    server: SocketAddr,
    dir: &Path,
    stdin: Option<Stdio>,
) -> Proc {
    let listen = SocketAddr::from((host.addr, 0)).to_string();
    let server = server.to_string();
    let history = format!("{name}.txt");
    let args =
        ["client", "--name", name, "--server", &server, "--listen", &listen, "--history", &history];
    Proc::spawn_with(host.command(binary()), name, &args, stdin, dir)
}

/// Seconds with millisecond precision, for the report.
fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Sorted durations: min, median, max.
fn spread(mut times: Vec<Duration>) -> String {
    times.sort();
    match (times.first(), times.get(times.len() / 2), times.last()) {
        (Some(min), Some(med), Some(max)) => {
            format!("min {} median {} max {}", secs(*min), secs(*med), secs(*max))
        }
        _ => "none".to_owned(),
    }
}

/// One login (and logout) as `name`; how long it took and whether it said
/// "Still trying".
fn one_login(host: &NetHost, name: &str, server: SocketAddr, dir: &Path) -> (Duration, bool) {
    let start = Instant::now();
    let mut c = client(host, name, server, dir, Some(Stdio::null()));
    c.expect_with("login", RUN_TIMEOUT, |l| l == format!("Logged in as {name}."));
    c.expect_with("logout", RUN_TIMEOUT, |l| l == "Logged out.");
    let status = c.wait_exit(RUN_TIMEOUT);
    assert!(status.success(), "{name}: {status}; output:\n{}", c.seen.join("\n"));
    let still = c.seen.iter().any(|l| l.starts_with("Still trying"));
    (start.elapsed(), still)
}

/// One `p2pchat list`; it must list `expected` (a `name address` line).
fn one_list(host: &NetHost, server: SocketAddr, dir: &Path, expected: &str) -> Duration {
    let start = Instant::now();
    let server = server.to_string();
    let mut p = Proc::spawn_with(
        host.command(binary()),
        "list",
        &["list", "--server", &server],
        Some(Stdio::null()),
        dir,
    );
    let status = p.wait_exit(RUN_TIMEOUT);
    assert!(status.success(), "list: {status}; output:\n{}", p.seen.join("\n"));
    assert!(p.seen.iter().any(|l| l == expected), "list lacks {expected:?}: {:?}", p.seen);
    start.elapsed()
}

#[test]
fn logins_and_lists_succeed_under_loss() {
    let mut topology = Topology::new()
        .segment("wan", "198.51.100.0/24")
        .segment("lan", "192.0.2.0/24")
        .host("registry", "wan")
        .host("anchor", "lan");
    for i in 0..PARALLEL {
        topology = topology.lossy_host(&format!("c{i}"), "lan", LOSS);
    }
    let Some(net) = Net::build_or_skip("logins_and_lists_succeed_under_loss", &topology) else {
        return;
    };
    let dir = temp_dir("netns-logins");
    let (_srv, server) = registry(net.host("registry"), &dir);
    // Someone always online, so that every list has a line to check.
    let mut anchor = client(net.host("anchor"), "Anchor", server, &dir, None);
    anchor.expect("Logged in as Anchor.");
    let anchor_line = anchor.expect_prefix("| Anchor : ");
    let expected = format!("Anchor {}", &anchor_line["| Anchor : ".len()..]);

    let start = Instant::now();
    let results: Vec<_> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..PARALLEL)
            .map(|w| {
                let (host, dir, expected) = (net.host(&format!("c{w}")), &dir, &expected);
                s.spawn(move || {
                    let mut out = Vec::new();
                    for i in (w..RUNS).step_by(PARALLEL) {
                        let name = format!("User{i}");
                        let login =
                            catch_unwind(AssertUnwindSafe(|| one_login(host, &name, server, dir)));
                        let list = catch_unwind(AssertUnwindSafe(|| {
                            one_list(host, server, dir, expected)
                        }));
                        out.push((login, list));
                    }
                    out
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("worker")).collect()
    });
    let total = start.elapsed();

    let logins: Vec<_> = results.iter().filter_map(|(l, _)| l.as_ref().ok()).collect();
    let lists: Vec<_> = results.iter().filter_map(|(_, l)| l.as_ref().ok()).collect();
    let still = logins.iter().filter(|(_, still)| *still).count();
    println!(
        "netns loss {LOSS}%: {}/{RUNS} logins ({}; {still} said \"Still trying\"), \
         {}/{RUNS} lists ({}), {PARALLEL} at a time, {} in all",
        logins.len(),
        spread(logins.iter().map(|(d, _)| *d).collect()),
        lists.len(),
        spread(lists.iter().map(|d| **d).collect()),
        secs(total),
    );
    assert_eq!(logins.len(), RUNS, "some logins failed (see the panics above)");
    assert_eq!(lists.len(), RUNS, "some lists failed (see the panics above)");
}

/// Bytes of filler in each text: enough that a direction's texts take a
/// few hundred TCP segments, so that loss stalls the stream many times.
const FILLER: usize = 400;

/// `n` texts from `who`, numbered, each with [`FILLER`] bytes after the
/// number.
fn texts(who: &str, n: usize) -> Vec<String> {
    let filler: String = ('a'..='z').cycle().take(FILLER).collect();
    (1..=n).map(|i| format!("{who} says {i} of {n} {filler}")).collect()
}

/// The texts of `name`'s history with `direction`, in file order; panics on
/// a line in any other direction.
fn history_texts(dir: &Path, name: &str, direction: &str) -> Vec<String> {
    let h = history(dir, name);
    for (d, _, t) in &h {
        assert!(d == "sent" || d == "received", "{name}'s history: {d} {t}");
    }
    h.into_iter().filter(|(d, _, _)| d == direction).map(|(_, _, t)| t).collect()
}

#[test]
fn a_500_message_chat_each_way_arrives_whole_under_loss() {
    // Every host drops 30% of what it sends: 30% loss on each way of
    // every path.
    let topology = Topology::new()
        .segment("wan", "198.51.100.0/24")
        .segment("lan", "203.0.113.0/24")
        .sender_lossy_host("registry", "wan", LOSS)
        .sender_lossy_host("alice", "lan", LOSS)
        .sender_lossy_host("bob", "lan", LOSS);
    let test = "a_500_message_chat_each_way_arrives_whole_under_loss";
    let Some(net) = Net::build_or_skip(test, &topology) else { return };
    let dir = temp_dir("netns-chat");
    let (_srv, server) = registry(net.host("registry"), &dir);
    let mut bob = client(net.host("bob"), "Bob", server, &dir, None);
    bob.expect("Logged in as Bob.");
    bob.expect("Enter choice:");
    bob.send("2");
    bob.expect("Waiting for a peer");
    let mut alice = client(net.host("alice"), "Alice", server, &dir, None);
    // A connect can fail under this loss (its TCP handshake and the Noise
    // handshake must fit in 5 s): Alice tries again, as a user would, a
    // bounded number of times, and the failures are reported.
    let mut failed_connects = Vec::new();
    loop {
        alice.send("1");
        alice.send("Bob");
        let line = alice.expect_with("the chat's start", CHAT_TIMEOUT, |l| {
            l.contains("Chat with Bob started") || l.starts_with("error:")
        });
        if line.contains("Chat with Bob started") {
            break;
        }
        failed_connects.push(line);
        assert!(
            failed_connects.len() < CONNECT_TRIES,
            "Alice never connected: {failed_connects:?}"
        );
    }
    bob.expect("Chat with Alice started");

    // Bob's texts first, while Alice listens: all typed at once.
    let from_bob = texts("Bob", TEXTS);
    let start = Instant::now();
    for t in &from_bob {
        bob.send(t);
    }
    let last = format!("] Bob: {}", from_bob[TEXTS - 1]);
    alice.expect_with("Bob's last text", CHAT_TIMEOUT, |l| l.ends_with(&last));
    let bob_to_alice = start.elapsed();

    // Then Alice's, all but the last few under the same loss.
    let from_alice = texts("Alice", TEXTS);
    let (body, tail) = from_alice.split_at(TEXTS - TAIL);
    let start = Instant::now();
    for t in body {
        alice.send(t);
    }
    let last = format!("] Alice: {}", body[body.len() - 1]);
    bob.expect_with("Alice's texts", CHAT_TIMEOUT, |l| l.ends_with(&last));
    let dropped = (net.dropped("alice"), net.dropped("bob"));
    // The last few go into a stall longer than the old 5 s close linger:
    // Alice is cut off, types them, and her input ends right after. She
    // must keep waiting for their acknowledgements, not give up.
    net.set_loss("alice", 100, 100);
    for t in tail {
        alice.send(t);
    }
    alice.close_stdin();
    let meanwhile = alice.lines_for(BLACKOUT);
    let gave_up: Vec<_> = meanwhile
        .iter()
        .filter(|l| l.starts_with("warning: not") || l.contains("Chat with Bob ended"))
        .collect();
    assert!(gave_up.is_empty(), "Alice gave up during a {BLACKOUT:?} stall: {gave_up:?}");
    net.set_loss("alice", 0, 0);
    alice.expect_with("the chat's end", CHAT_TIMEOUT, |l| l.contains("Chat with Bob ended"));
    let alice_to_bob = start.elapsed();
    alice.expect_with("logout", RUN_TIMEOUT, |l| l.starts_with("Logged out"));
    let status = alice.wait_exit(RUN_TIMEOUT);
    bob.expect_with("the chat's end", CHAT_TIMEOUT, |l| l.contains("Chat with Alice ended"));
    bob.close_stdin();
    bob.expect_with("logout", RUN_TIMEOUT, |l| l.starts_with("Logged out"));
    let bob_status = bob.wait_exit(RUN_TIMEOUT);
    println!(
        "netns loss {LOSS}% each way: {TEXTS} texts Bob->Alice shown in {}, {TEXTS} texts \
         Alice->Bob (the last {TAIL} after a {BLACKOUT:?} cut) delivered and the chat closed in \
         {}; packets dropped by the loss rules: Alice {}, Bob {}; failed connects: {:?}",
        secs(bob_to_alice),
        secs(alice_to_bob),
        dropped.0,
        dropped.1,
        failed_connects,
    );

    let warned = |p: &Proc| {
        p.seen.iter().filter(|l| l.starts_with("warning: not")).cloned().collect::<Vec<_>>()
    };
    assert_eq!(warned(&alice), Vec::<String>::new(), "Alice's texts not confirmed");
    assert_eq!(warned(&bob), Vec::<String>::new(), "Bob's texts not confirmed");
    assert!(
        alice.seen.iter().any(|l| l.ends_with("] Chat with Bob ended: you left the chat.")),
        "{:?}",
        alice.seen.iter().rev().take(5).collect::<Vec<_>>()
    );
    assert!(status.success() && bob_status.success(), "{status} {bob_status}");
    assert!(history_texts(&dir, "Alice", "sent") == from_alice, "Alice's sent texts differ");
    assert!(history_texts(&dir, "Alice", "received") == from_bob, "Alice's received texts differ");
    assert!(history_texts(&dir, "Bob", "sent") == from_bob, "Bob's sent texts differ");
    assert!(history_texts(&dir, "Bob", "received") == from_alice, "Bob's received texts differ");
}
