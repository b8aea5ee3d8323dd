//! Calls across NATs with the real binary (issue 10's acceptance): the
//! registry (and relay) on a public segment, users in homes behind
//! nftables NATs built by `p2pchat_tests::netns_nat`.
//!
//! - Behind two endpoint-independent NATs the call is punched: direct, and
//!   200 texts each way arrive exactly once, in order.
//! - Behind a symmetric NAT, or two NATs that drop inbound SYNs, it goes
//!   through the relay, and what the relay read (its recording) holds no
//!   text of the chat.
//! - Two users behind one NAT, and two on one machine, chat directly on
//!   their LAN: no TCP packet crosses the router (an nftables counter on
//!   its forward hook stays at zero).
//!
//! Needs root (network namespaces, nftables); elsewhere each test prints
//! one line saying why it skipped. Run with `-- --nocapture` to see the
//! measured connect times.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Proc, binary, history, temp_dir};
use p2pchat_core::RELAY_MAGIC;
use p2pchat_tests::netns::NetHost;
use p2pchat_tests::netns_nat::{NatKind, NatNet, NatTopology};

/// Texts each way in a chat.
const TEXTS: usize = 200;

/// The longest a call may take to start: the relay is reached after the
/// callee's 7 s of punching.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The longest one direction of a chat may take.
const CHAT_TIMEOUT: Duration = Duration::from_secs(30);

/// The registry's (and relay's) port.
const REGISTRY_PORT: u16 = 5000;

/// Starts the registry, recording what its relay reads to `relay.bin`.
fn registry(host: &NetHost, dir: &Path) -> (Proc, SocketAddr) {
    let addr = SocketAddr::from((host.addr, REGISTRY_PORT));
    let bind = addr.to_string();
    let record = dir.join("relay.bin");
    let record = record.to_str().expect("a UTF-8 temp path");
    let mut p = Proc::spawn_with(
        host.command(binary()),
        "server",
        &["server", "--bind", &bind, "--relay-record", record],
        Some(Stdio::null()),
        dir,
    );
    p.expect_prefix("Server listening on ");
    p.expect_prefix("Relaying chats on TCP ");
    (p, addr)
}

/// A client `name` in `host`'s namespace, taking chats on its address.
fn client(host: &NetHost, name: &str, server: SocketAddr, dir: &Path) -> Proc {
    let listen = SocketAddr::from((host.addr, 0)).to_string();
    let server = server.to_string();
    let history = format!("{name}.txt");
    let identity = format!("{name}.id");
    let args = [
        "client",
        "--name",
        name,
        "--server",
        &server,
        "--listen",
        &listen,
        "--history",
        &history,
        "--identity",
        &identity,
    ];
    let mut p = Proc::spawn_with(host.command(binary()), name, &args, None, dir);
    p.expect(&format!("Logged in as {name}."));
    p.expect("Enter choice:");
    p
}

/// `caller` calls `callee` (who waits); returns both "started" lines and
/// how long the call took to start.
fn call(caller: &mut Proc, callee: &mut Proc) -> (String, String, Duration) {
    callee.send("2");
    callee.expect("Waiting for a peer");
    let start = Instant::now();
    caller.send("1");
    caller.send(&callee.label.clone());
    let want = format!("Chat with {} started", callee.label);
    let line = caller.expect_with("the chat's start", START_TIMEOUT, |l| {
        l.contains(&want) || l.starts_with("error:")
    });
    let took = start.elapsed();
    assert!(line.contains(&want), "{}: {line}; output:\n{}", caller.label, caller.seen.join("\n"));
    let want = format!("Chat with {} started", caller.label);
    let other = callee.expect_with("the chat's start", START_TIMEOUT, |l| l.contains(&want));
    (line, other, took)
}

fn texts(who: &str) -> Vec<String> {
    (1..=TEXTS).map(|i| format!("{who} secret number {i} of {TEXTS}")).collect()
}

/// Both send [`TEXTS`] texts; both histories must hold them exactly once,
/// in order; then the caller leaves.
fn converse(a: &mut Proc, b: &mut Proc, dir: &Path) -> (Vec<String>, Vec<String>) {
    let from_a = texts(&a.label);
    let from_b = texts(&b.label);
    for t in &from_b {
        b.send(t);
    }
    let last = format!("] {}: {}", b.label, from_b[TEXTS - 1]);
    a.expect_with("the last text", CHAT_TIMEOUT, |l| l.ends_with(&last));
    for t in &from_a {
        a.send(t);
    }
    let last = format!("] {}: {}", a.label, from_a[TEXTS - 1]);
    b.expect_with("the last text", CHAT_TIMEOUT, |l| l.ends_with(&last));
    a.send("/back");
    a.expect_with("the end", CHAT_TIMEOUT, |l| l.contains("you left the chat"));
    b.expect_with("the end", CHAT_TIMEOUT, |l| l.contains("left the chat"));
    let of = |name: &str, kind: &str| -> Vec<String> {
        history(dir, name).into_iter().filter(|(k, _, _)| k == kind).map(|(_, _, t)| t).collect()
    };
    assert_eq!(of(&a.label, "sent"), from_a);
    assert_eq!(of(&a.label, "received"), from_b);
    assert_eq!(of(&b.label, "sent"), from_b);
    assert_eq!(of(&b.label, "received"), from_a);
    (from_a, from_b)
}

/// An nftables counter of the TCP packets `home`'s router forwards
/// (between its LAN and the public segment).
fn count_forwarded_tcp(net: &NatNet, home: &str) {
    let rules = "table ip p2pchat_count {\n  chain forwarded {\n    type filter hook forward priority filter - 10; policy accept;\n    ip protocol tcp counter\n  }\n}\n";
    let mut nft = net.router(home).command("nft");
    nft.args(["-f", "-"]).stdin(Stdio::piped());
    let mut child = nft.spawn().expect("run nft");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), rules.as_bytes())
        .expect("write the counter rule");
    assert!(child.wait().expect("nft").success(), "nft -f failed");
}

/// How many TCP packets `home`'s router forwarded since the counter was set.
fn forwarded_tcp(net: &NatNet, home: &str) -> u64 {
    let out = net
        .router(home)
        .command("nft")
        .args(["list", "table", "ip", "p2pchat_count"])
        .output()
        .expect("nft list");
    let text = String::from_utf8_lossy(&out.stdout);
    let packets =
        text.split_whitespace().skip_while(|w| *w != "packets").nth(1).and_then(|n| n.parse().ok());
    packets.unwrap_or_else(|| panic!("no counter in {text}"))
}

fn relay_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("relay.bin")).unwrap_or_default()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Alice in `home1` (behind `a`) calls Bob in `home2` (behind `b`).
fn across(test: &str, a: NatKind, b: NatKind) -> Option<(String, String, Duration, Vec<u8>)> {
    let topology = NatTopology::new()
        .public_host("registry")
        .home("home1", "192.0.2.0/25", a)
        .home("home2", "198.51.100.0/24", b)
        .host("alice", "home1")
        .host("bob", "home2");
    let net = NatNet::build_or_skip(test, &topology)?;
    let dir = temp_dir(test);
    let (mut srv, server) = registry(net.host("registry"), &dir);
    let mut bob = client(net.host("bob"), "bob", server, &dir);
    let mut alice = client(net.host("alice"), "alice", server, &dir);
    let (started, other, took) = call(&mut alice, &mut bob);
    let (from_a, from_b) = converse(&mut alice, &mut bob, &dir);
    let recorded = relay_bytes(&dir);
    for t in from_a.iter().chain(&from_b) {
        assert!(!contains(&recorded, t.as_bytes()), "the relay read a text in clear: {t}");
    }
    for name in ["alice", "bob"] {
        assert!(!contains(&recorded, b" secret number "), "{name}'s texts in clear");
    }
    let paired =
        srv.lines_for(Duration::from_millis(200)).iter().any(|l| l == "relay: a chat paired");
    println!(
        "{test}: the call started in {took:?}; {started:?} / {other:?}; the relay read {} bytes; paired: {paired}",
        recorded.len()
    );
    Some((started, other, took, recorded))
}

#[test]
fn behind_two_endpoint_independent_nats_the_chat_is_punched() {
    let test = "netns_punch_direct";
    let Some((started, other, _, recorded)) =
        across(test, NatKind::EndpointIndependent, NatKind::EndpointIndependent)
    else {
        return;
    };
    assert!(started.contains("started (direct)"), "{started}");
    assert!(other.contains("started (direct)"), "{other}");
    assert!(recorded.is_empty(), "the relay read {} bytes of a direct chat", recorded.len());
}

#[test]
fn behind_a_symmetric_nat_the_chat_is_relayed_and_the_relay_sees_no_text() {
    let test = "netns_punch_symmetric";
    let Some((started, other, _, recorded)) =
        across(test, NatKind::Symmetric, NatKind::EndpointIndependent)
    else {
        return;
    };
    assert!(started.contains("started (relayed"), "{started}");
    assert!(other.contains("started (relayed"), "{other}");
    // It carried the chat: two hellos (whose magic the recording shows,
    // so it does see what the relay reads), and far more than the texts'
    // length.
    assert!(contains(&recorded, &RELAY_MAGIC), "the recording missed the hellos");
    assert!(recorded.len() > 2 * TEXTS * 20, "the relay read only {} bytes", recorded.len());
}

#[test]
fn behind_nats_that_drop_inbound_syns_the_chat_is_relayed() {
    // Both: with one, the other side's SYN gets through and the call is
    // punched (a simultaneous open needs only one SYN to arrive).
    let test = "netns_punch_drops_syn";
    let Some((started, other, _, recorded)) =
        across(test, NatKind::DropsInboundSyn, NatKind::DropsInboundSyn)
    else {
        return;
    };
    assert!(started.contains("started (relayed"), "{started}");
    assert!(other.contains("started (relayed"), "{other}");
    assert!(!recorded.is_empty());
}

/// Two users behind one NAT (`carol` on another host of the LAN, or on
/// alice's own machine): direct, and no TCP packet through the router.
fn on_one_lan(test: &str, same_machine: bool) {
    let topology = NatTopology::new()
        .public_host("registry")
        .home("home", "192.0.2.0/25", NatKind::EndpointIndependent)
        .host("alice", "home")
        .host("carol", "home");
    let Some(net) = NatNet::build_or_skip(test, &topology) else { return };
    let dir = temp_dir(test);
    let (_srv, server) = registry(net.host("registry"), &dir);
    count_forwarded_tcp(&net, "home");
    let carol_host = if same_machine { net.host("alice") } else { net.host("carol") };
    let mut carol = client(carol_host, "carol", server, &dir);
    let mut alice = client(net.host("alice"), "alice", server, &dir);
    let (started, other, took) = call(&mut alice, &mut carol);
    assert!(started.contains("started (direct)"), "{started}");
    assert!(other.contains("started (direct)"), "{other}");
    converse(&mut alice, &mut carol, &dir);
    assert_eq!(forwarded_tcp(&net, "home"), 0, "TCP packets crossed the router");
    assert!(relay_bytes(&dir).is_empty(), "the relay read bytes of a LAN chat");
    println!("{test}: the call started in {took:?}");
}

#[test]
fn behind_one_nat_the_chat_stays_on_the_lan() {
    on_one_lan("netns_punch_same_nat", false);
}

#[test]
fn on_the_public_segment_the_chat_is_direct() {
    let test = "netns_punch_public";
    let topology =
        NatTopology::new().public_host("registry").public_host("alice").public_host("bob");
    let Some(net) = NatNet::build_or_skip(test, &topology) else { return };
    let dir = temp_dir(test);
    let (_srv, server) = registry(net.host("registry"), &dir);
    let mut bob = client(net.host("bob"), "bob", server, &dir);
    let mut alice = client(net.host("alice"), "alice", server, &dir);
    let (started, other, took) = call(&mut alice, &mut bob);
    println!("{test}: the call started in {took:?}");
    assert!(started.contains("started (direct)"), "{started}");
    assert!(other.contains("started (direct)"), "{other}");
}

#[test]
fn on_one_machine_the_chat_stays_on_it() {
    on_one_lan("netns_punch_same_machine", true);
}
