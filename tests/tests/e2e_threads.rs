//! End to end: `p2pchat server --threads 2`, one list on two loops. Two
//! clients log in, see each other, call (lookup and introduction, through
//! whichever loop their socket reaches) and chat; `p2pchat list`, from a
//! fresh socket each time, sees both.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;

use common::{Proc, call, logged_in_client, say_and_leave, temp_dir};

/// Runs of `p2pchat list`, each from a new socket, so that both loops
/// answer some of them (each run reaches the second loop with odds of one
/// in two).
const LISTS: usize = 6;

#[test]
fn a_server_on_two_threads_serves_one_list() {
    let dir = temp_dir("threads");
    let args = ["server", "--bind", "127.0.0.1:0", "--threads", "2"];
    let mut srv = Proc::spawn("server", &args, Some(Stdio::null()), &dir);
    let line = srv.expect_prefix("Server listening on ");
    let addr: SocketAddr = line["Server listening on ".len()..]
        .strip_suffix(" (2 threads)")
        .unwrap_or_else(|| panic!("no thread count in {line:?}"))
        .parse()
        .unwrap();
    let mut ann = logged_in_client("Ann", addr, &dir);
    srv.expect("[Ann] logged in from");
    let mut bob = logged_in_client("Bob", addr, &dir);
    srv.expect("[Bob] logged in from");
    for _ in 0..LISTS {
        assert_eq!(common::listed_names(addr), ["Ann", "Bob"]);
    }
    call(&mut ann, &mut bob);
    say_and_leave(&mut ann, &mut bob, "hello across threads");
    ann.send("3");
    srv.expect("[Ann] logged out");
    bob.send("3");
    srv.expect("[Bob] logged out");
}

#[test]
fn zero_threads_is_refused() {
    let dir = temp_dir("threads-zero");
    let out =
        common::run_as(&dir, "server", &["server", "--bind", "127.0.0.1:0", "--threads", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--threads"), "{err}");
}
