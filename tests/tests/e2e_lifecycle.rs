//! End to end: how clients leave and come back. A killed client times out
//! after one lease, an interrupted one logs out at once, a restarted server
//! lists the clients again within one keepalive period, and `p2pchat list`
//! gives up on a registry that does not answer.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{LINE_TIMEOUT, binary, client, logged_in_client, server, temp_dir};

fn list_names(addr: std::net::SocketAddr) -> Vec<String> {
    let out =
        Command::new(binary()).args(["list", "--server", &addr.to_string()]).output().unwrap();
    assert!(out.status.success(), "list failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect()
}

#[test]
fn killed_client_times_out_after_one_lease() {
    let dir = temp_dir("kill");
    let lease = 2;
    let (mut srv, addr) = server("127.0.0.1:0", lease, &dir);
    let mut ann = logged_in_client("Ann", addr, &dir);
    let bob = logged_in_client("Bob", addr, &dir);
    assert_eq!(list_names(addr), ["Ann", "Bob"]);
    ann.signal("KILL");
    let killed = Instant::now();
    assert!(!ann.wait_exit(Duration::from_secs(5)).success());
    srv.expect_with("[Ann] timed out", Duration::from_secs(u64::from(lease) + 5), |l| {
        l.ends_with(" [Ann] timed out")
    });
    let waited = killed.elapsed();
    assert!(waited <= Duration::from_secs(u64::from(lease) + 2), "took {waited:?}");
    assert_eq!(list_names(addr), ["Bob"], "Bob kept alive by keepalives, Ann gone");
    drop(bob);
}

#[test]
fn interrupted_client_logs_out_at_once() {
    let dir = temp_dir("sigint");
    let (mut srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut ann = logged_in_client("Ann", addr, &dir);
    srv.expect("[Ann] logged in");
    ann.signal("INT");
    srv.expect_with("[Ann] logged out", Duration::from_secs(3), |l| {
        l.ends_with(" [Ann] logged out")
    });
    assert!(ann.wait_exit(Duration::from_secs(5)).success());
    // SIGTERM too, in the middle of a chat.
    let mut bob = logged_in_client("Bob", addr, &dir);
    let mut cid = logged_in_client("Cid", addr, &dir);
    cid.send("2");
    cid.expect("Waiting for a peer");
    bob.send("1");
    bob.send("Cid");
    bob.expect("Chat with Cid started");
    cid.expect("Chat with Bob started");
    bob.signal("TERM");
    srv.expect_with("[Bob] logged out", Duration::from_secs(3), |l| {
        l.ends_with(" [Bob] logged out")
    });
    assert!(bob.wait_exit(Duration::from_secs(5)).success());
    cid.expect("Chat with Bob ended");
    cid.expect("Enter choice:");
}

#[test]
fn restarted_server_lists_running_clients_again() {
    let dir = temp_dir("restart");
    let lease = 3;
    let (mut srv, addr) = server("127.0.0.1:0", lease, &dir);
    let _ann = logged_in_client("Ann", addr, &dir);
    let _bob = logged_in_client("Bob", addr, &dir);
    srv.expect("[Bob] logged in");
    srv.signal("KILL");
    srv.wait_exit(Duration::from_secs(5));
    let (mut srv, again) = server(&addr.to_string(), lease, &dir);
    assert_eq!(again, addr);
    let restarted = Instant::now();
    // Keepalives go out every lease/3 = 1 s; allow one period plus retries.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = srv.expect_with("a login", Duration::from_secs(u64::from(lease) + 3), |l| {
            l.contains("logged in from")
        });
        // After the log line's timestamp.
        seen.push(line.split_once(' ').map_or(line.clone(), |(_, event)| event.to_owned()));
    }
    assert!(restarted.elapsed() < Duration::from_secs(u64::from(lease) + 3));
    seen.sort();
    assert!(
        seen[0].starts_with("[Ann] logged in from") && seen[1].starts_with("[Bob] logged in from"),
        "{seen:?}"
    );
    assert_eq!(list_names(addr), ["Ann", "Bob"]);
}

#[test]
fn list_without_a_server_fails_in_bounded_time() {
    // A port nobody serves: bind, note it, release it.
    let addr = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let start = Instant::now();
    let out =
        Command::new(binary()).args(["list", "--server", &addr.to_string()]).output().unwrap();
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(1), "exit status");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            format!("Still trying to reach the registry at {addr}…"),
            format!(
                "error: the registry at {addr} did not answer: is p2pchat server running there?"
            )
        ],
        "stderr: {err:?}"
    );
    assert!(took < LINE_TIMEOUT && took >= p2pchat_core::GIVE_UP_AFTER, "took {took:?}");
}

#[test]
fn client_without_a_server_fails_in_bounded_time() {
    let dir = temp_dir("noserver");
    let addr = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut c = common::client("Ann", addr, &dir, None);
    c.expect(&format!("error: the registry at {addr} is unreachable"));
    assert_eq!(c.wait_exit(Duration::from_secs(5)).code(), Some(1));
}

/// Ctrl-C while the registry does not answer (the login still under way):
/// the client sends its logout and exits within half a second, without
/// waiting out the registry client's 30 s of retries.
#[test]
fn interrupted_client_does_not_wait_for_a_silent_registry() {
    let dir = temp_dir("sigint-silent");
    // A registry that takes datagrams and never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let mut ann = client("Ann", addr, &dir, None);
    ann.expect("Connecting to the registry at");
    let t0 = std::time::Instant::now();
    ann.signal("INT");
    assert!(ann.wait_exit(Duration::from_secs(10)).success());
    let took = t0.elapsed();
    eprintln!("Ctrl-C with a silent registry: exited after {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(ann.seen.iter().any(|l| l == "Exiting without waiting for the registry."));
}
