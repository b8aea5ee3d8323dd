//! End to end: the friendly edges. The client says whom it contacts at
//! once; `--server` takes a host name and no port; `p2pchat list` says when
//! nobody is online without a word on stdout; the server's log lines carry
//! a timestamp; completions and a man page for packagers; the settings file
//! sets the server and the name, and a bad one is one line naming the line.

mod common;

use std::net::UdpSocket;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Proc, client, config_dir, run_as, server, temp_dir};

#[test]
fn an_unreachable_registry_is_named_at_once() {
    let dir = temp_dir("edges-unreachable");
    // A socket that reads nothing and answers nothing.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    common::binary();
    let start = Instant::now();
    let mut ann = client("Ann", addr, &dir, Some(Stdio::null()));
    let first = ann.next_line(Duration::from_secs(10)).expect("a first line");
    assert_eq!(first, format!("Connecting to the registry at {addr}…"));
    // Before the client's first retry's warning (4 s): at once.
    assert!(start.elapsed() < Duration::from_secs(4), "{:?}", start.elapsed());
    // Dropping `ann` kills it: its logout would wait for the registry.
}

#[test]
fn list_says_nobody_on_stderr_and_nothing_on_stdout() {
    let dir = temp_dir("edges-empty");
    let (_srv, addr) = server("127.0.0.1:0", 60, &dir);
    let out = run_as(&dir, "list", &["list", "--server", &addr.to_string()]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "(nobody is online)\n");
}

#[test]
fn server_log_lines_carry_a_timestamp() {
    let dir = temp_dir("edges-log");
    let (mut srv, addr) = server("127.0.0.1:0", 60, &dir);
    let mut ann = client("Ann", addr, &dir, None);
    ann.expect("Enter choice:");
    let line = srv.expect("[Ann] logged in from");
    // `2026-03-01T13:34:56+01:00 [Ann] logged in from …`
    let (at, rest) = line.split_once(' ').unwrap();
    assert!(rest.starts_with("[Ann] logged in from 127.0.0.1:"), "{line}");
    assert!(rest.contains(", takes chats at 127.0.0.1:"), "{line}");
    let b = at.as_bytes();
    assert!(at.len() == 25 && b[10] == b'T' && b[19] == b'+' || b[19] == b'-', "{line}");
    ann.send("3");
    assert!(ann.wait_exit(Duration::from_secs(10)).success());
}

/// `--server` with a host name, or an IP without the port: the default
/// port is 5000, which this test can use only if nothing else holds it.
#[test]
fn server_by_host_name_and_without_port() {
    let dir = temp_dir("edges-5000");
    if UdpSocket::bind("127.0.0.1:5000").is_err() {
        eprintln!(
            "127.0.0.1:5000 is in use: --server without a port is checked by the unit tests of \
             cli/src/config.rs (parse_server) only"
        );
        return;
    }
    let mut srv =
        Proc::spawn("server", &["server", "--bind", "127.0.0.1:5000"], Some(Stdio::null()), &dir);
    let Some(first) = srv.next_line(Duration::from_secs(10)) else {
        eprintln!("127.0.0.1:5000 was taken before the server could bind it; not checked");
        return;
    };
    assert_eq!(first, "Server listening on 127.0.0.1:5000");
    let mut ann = Proc::spawn(
        "Ann",
        &["client", "--name", "Ann", "--server", "localhost", "--history", "Ann.txt"],
        None,
        &dir,
    );
    ann.expect("Connecting to the registry at 127.0.0.1:5000…");
    ann.expect("Enter choice:");
    for server in ["localhost", "127.0.0.1"] {
        let out = run_as(&dir, "list", &["list", "--server", server]);
        assert!(out.status.success(), "{server}: {out:?}");
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(listed.starts_with("Ann 127.0.0.1:"), "{server}: {listed:?}");
    }
    ann.send("3");
    assert!(ann.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn completions_and_man_page() {
    let dir = temp_dir("edges-pkg");
    for shell in ["bash", "zsh", "fish"] {
        let out = run_as(&dir, "pkg", &["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("p2pchat") && text.contains("server"), "{shell}: {text}");
    }
    let out = run_as(&dir, "pkg", &["man"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with(".ie") || text.contains(".TH p2pchat"), "{text}");
    let out = run_as(&dir, "pkg", &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn the_settings_file_sets_server_and_name_and_flags_win() {
    let dir = temp_dir("edges-config");
    let (mut srv, addr) = server("127.0.0.1:0", 60, &dir);
    let write = |label: &str, text: &str| {
        let conf = config_dir(&dir, label).join("p2pchat");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(conf.join("config.toml"), text).unwrap();
    };
    write("Ann", &format!("server = \"{addr}\"\nname = \"Ann\"\nhistory = \"ann-history.txt\"\n"));
    let mut ann = Proc::spawn("Ann", &["client"], None, &dir);
    ann.expect(&format!("Connecting to the registry at {addr}…"));
    ann.expect("Logged in as Ann.");
    ann.expect("Enter choice:");
    srv.expect("[Ann] logged in");
    // `list` reads it too; a flag wins over it.
    write("list", &format!("server = \"{addr}\"\n"));
    let out = run_as(&dir, "list", &["list"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Ann "), "{out:?}");
    let mut bob = Proc::spawn(
        "Ann",
        &["client", "--name", "Bob", "--server", &addr.to_string(), "--history", "b.txt"],
        None,
        &dir,
    );
    bob.expect("Logged in as Bob.");
    bob.send("3");
    assert!(bob.wait_exit(Duration::from_secs(10)).success());
    ann.send("3");
    assert!(ann.wait_exit(Duration::from_secs(10)).success());
    assert!(dir.join("ann-history.txt").exists(), "the history path from the file");

    // A bad file: one line naming the file and the line, exit 1.
    write("bad", "name = \"Cem\"\n\nservr = \"x\"\n");
    let out = run_as(&dir, "bad", &["list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("config.toml: line 3: unknown field `servr`"), "{err}");
}
