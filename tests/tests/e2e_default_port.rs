//! End to end: `--server` without a port means port 5000 (README,
//! "Commands"), for `client` and `list`, given as an IP or as a host name.
//!
//! This needs 127.0.0.1:5000 itself, so it runs only when that port is
//! free (another registry, or another test, may hold it): otherwise it says
//! so in one line and checks nothing. Nothing but loopback is contacted.

mod common;

use std::process::{Command, Stdio};

use common::{LINE_TIMEOUT, Proc, temp_dir};

/// The names `p2pchat list --server SERVER` prints.
fn listed(server: &str) -> Vec<String> {
    let out = Command::new(common::binary())
        .args(["list", "--server", server])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run p2pchat list");
    assert!(out.status.success(), "list --server {server}: {out:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8 list");
    text.lines().filter_map(|l| l.split(' ').next()).map(str::to_owned).collect()
}

#[test]
fn a_server_without_a_port_is_port_5000() {
    if std::net::UdpSocket::bind("127.0.0.1:5000").is_err() {
        eprintln!("127.0.0.1:5000 is taken: the default port is not checked end to end");
        return;
    }
    let dir = temp_dir("default-port");
    let mut srv =
        Proc::spawn("server", &["server", "--bind", "127.0.0.1:5000"], Some(Stdio::null()), &dir);
    match srv.next_line(LINE_TIMEOUT) {
        Some(line) if line == "Server listening on 127.0.0.1:5000" => {}
        // Taken since it was found free: by someone else, not our fault.
        None => {
            eprintln!("127.0.0.1:5000 was taken meanwhile: the default port is not checked");
            return;
        }
        Some(other) => panic!("server: {other}"),
    }

    // A client given a host name and no port logs in at 127.0.0.1:5000.
    let args = [
        "client",
        "--name",
        "Ann",
        "--server",
        "localhost",
        "--listen",
        "127.0.0.1:0",
        "--history",
        "Ann.txt",
    ];
    let mut ann = Proc::spawn("Ann", &args, None, &dir);
    let connecting = ann.expect_prefix("Connecting to the registry at ");
    assert_eq!(connecting, "Connecting to the registry at 127.0.0.1:5000\u{2026}");
    ann.expect("Logged in as Ann.");
    let rows = ann.expect_list();
    assert!(rows.iter().any(|r| r.starts_with("Ann : 127.0.0.1:")), "{rows:?}");
    ann.expect("Enter choice:");
    srv.expect("[Ann] logged in from 127.0.0.1:");

    // `list` given an IP, or a host name, and no port finds it there.
    assert_eq!(listed("127.0.0.1"), ["Ann"]);
    assert_eq!(listed("localhost"), ["Ann"]);

    ann.send("3");
    ann.expect("Logged out.");
    assert!(ann.wait_exit(LINE_TIMEOUT).success());
    srv.expect("[Ann] logged out");
}
