//! End to end: each user error is one clear line, never a crash.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use common::{Proc, binary, client, logged_in_client, server, temp_dir};

/// How long a command may take to give its one line and exit. Far below the
/// registry client's patience (30 s), so a command that only gave up after
/// it would fail here.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// Runs `p2pchat ARGS` to its end and returns its output; panics (after
/// killing it) when it has not exited within [`EXIT_WITHIN`].
fn run_to_end(args: &[&str]) -> Output {
    let child = Command::new(binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "off")
        .spawn()
        .expect("spawn p2pchat");
    let pid = child.id();
    let (tx, rx) = channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(EXIT_WITHIN) {
        Ok(output) => output.expect("wait for p2pchat"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("p2pchat {args:?} did not exit within {EXIT_WITHIN:?}");
        }
    }
}

/// A fake registry on loopback that answers the first datagram it gets with
/// `version_byte` in the header, the request's id, and `Refused {
/// UnsupportedVersion }`: what a registry of another version sends.
fn foreign_registry(version_byte: u8) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0; 2048];
        let (n, from) = socket.recv_from(&mut buf).unwrap();
        assert!(n >= 9 && &buf[..4] == b"p2pc", "not a registry request");
        let reply = [&b"p2pc"[..], &[version_byte], &buf[5..9], &[0x02, 0x03]].concat();
        socket.send_to(&reply, from).unwrap();
    });
    addr
}

#[test]
fn list_against_a_registry_of_another_version_says_so_and_exits_1() {
    // A later registry (version 3, reply bit set) and a version-1 one.
    for version_byte in [0x83, 0x01] {
        let addr = foreign_registry(version_byte);
        let out = run_to_end(&["list", "--server", &addr.to_string()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
        assert!(out.stdout.is_empty());
        assert_eq!(
            stderr.lines().collect::<Vec<_>>(),
            vec![format!(
                "error: the registry at {addr} speaks another protocol version \
                 (this client speaks registry protocol 2)"
            )]
        );
    }
}

#[test]
fn one_address_cannot_fill_the_registry() {
    let dir = temp_dir("per-address");
    let mut srv = Proc::spawn(
        "server",
        &["server", "--bind", "127.0.0.1:0", "--max-per-address", "1"],
        Some(Stdio::null()),
        &dir,
    );
    let line = srv.expect_prefix("Server listening on ");
    let addr: SocketAddr = line["Server listening on ".len()..].parse().unwrap();
    let _ann = logged_in_client("Ann", addr, &dir);
    let mut bob = client("Bob", addr, &dir, None);
    bob.expect(
        "error: cannot log in as 'Bob': too many users are already logged in from this address",
    );
    assert_eq!(bob.wait_exit(Duration::from_secs(5)).code(), Some(1));
}

#[test]
fn name_taken_with_flag_exits_1() {
    let dir = temp_dir("taken");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let _ann = logged_in_client("Ann", addr, &dir);
    let mut again = client("ann", addr, &dir, None);
    again.expect("error: cannot log in as 'ann': the name is taken");
    assert_eq!(again.wait_exit(Duration::from_secs(5)).code(), Some(1));
}

#[test]
fn name_prompt_asks_again() {
    let dir = temp_dir("prompt");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let _ann = logged_in_client("Ann", addr, &dir);
    let server = addr.to_string();
    let args = ["client", "--server", &server, "--listen", "127.0.0.1:0", "--history", "h.txt"];
    let mut c = common::Proc::spawn("prompted", &args, None, &dir);
    c.expect("Enter your username:");
    c.send("two words");
    c.expect("error: invalid name: the name holds a control character or white space");
    c.expect("Enter your username:");
    c.send("ANN");
    c.expect("error: cannot log in as 'ANN': the name is taken");
    c.expect("Enter your username:");
    c.send("Cid");
    c.expect("Logged in as Cid.");
    c.expect("Enter choice:");
    c.send("3");
    assert!(c.wait_exit(Duration::from_secs(5)).success());
}

#[test]
fn unknown_unreachable_and_oversize() {
    let dir = temp_dir("errors");
    let (mut srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut ann = logged_in_client("Ann", addr, &dir);
    // Unknown peer.
    ann.send("1");
    ann.send("Nobody");
    ann.expect("error: no user named 'Nobody' is online");
    ann.expect("Enter choice:");
    // A bad menu choice.
    ann.send("7");
    ann.expect("error: unknown choice '7': enter 1, 2, 3 or 4");
    // A listed peer that does not take chats: killed, still listed.
    let mut bob = logged_in_client("Bob", addr, &dir);
    bob.signal("KILL");
    bob.wait_exit(Duration::from_secs(5));
    ann.send("1");
    ann.send("Bob");
    let line = ann.expect("error: could not connect to Bob");
    assert!(line.to_lowercase().contains("refused"), "{line}");
    ann.expect("Enter choice:");
    // A message over the size limit, in a chat.
    let mut cid = logged_in_client("Cid", addr, &dir);
    cid.send("2");
    cid.expect("Waiting for a peer");
    ann.send("1");
    ann.send("Cid");
    ann.expect("Chat with Cid started");
    cid.expect("Chat with Ann started");
    ann.send(&"x".repeat(5000));
    ann.expect("error: line longer than 4096 bytes ignored");
    ann.send("still here");
    assert!(cid.expect(": still here").ends_with("] Ann: still here"));
    // The peer leaving abruptly is one line too.
    cid.signal("KILL");
    cid.wait_exit(Duration::from_secs(5));
    ann.expect("Chat with Cid ended: the connection to Cid was lost.");
    ann.expect("Enter choice:");
    ann.send("3");
    assert!(ann.wait_exit(Duration::from_secs(5)).success());
    srv.expect("[Ann] logged out");
}
