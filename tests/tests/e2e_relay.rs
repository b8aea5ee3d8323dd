//! The relay of the real `p2pchat server` on loopback: a forged hello and
//! garbage are refused with their status, connections past the
//! per-address limit are refused, and the server says so; a connection
//! that waits within the limits is not disturbed by them.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use common::{Proc, temp_dir};
use p2pchat_core::{
    DEFAULT_RELAY_PER_ADDRESS, RELAY_HELLO_LEN, RELAY_MAGIC, RELAY_REPLY_LEN, RELAY_VERSION,
    RelayStatus,
};

const WAIT: Duration = Duration::from_secs(10);

fn relay_server(dir: &std::path::Path) -> (Proc, SocketAddr) {
    let mut p =
        Proc::spawn("server", &["server", "--bind", "127.0.0.1:0"], Some(Stdio::null()), dir);
    p.expect_prefix("Server listening on ");
    let line = p.expect_prefix("Relaying chats on TCP ");
    let addr = line["Relaying chats on TCP ".len()..].parse().expect("relay address");
    (p, addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the relay");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s
}

/// The relay's status byte for what `s` sent.
fn status(s: &mut TcpStream) -> u8 {
    let mut r = [0; RELAY_REPLY_LEN];
    s.read_exact(&mut r).expect("the relay's answer");
    assert_eq!(r[..4], RELAY_MAGIC);
    r[4]
}

/// A well-formed hello whose tag the relay did not make.
fn forged_hello(nonce: u8) -> Vec<u8> {
    let mut h = Vec::with_capacity(RELAY_HELLO_LEN);
    h.extend_from_slice(&RELAY_MAGIC);
    h.push(RELAY_VERSION);
    h.push(0);
    h.resize(RELAY_HELLO_LEN, nonce);
    h
}

#[test]
fn forged_tokens_garbage_and_floods_are_refused() {
    let dir = temp_dir("relay-abuse");
    let (mut srv, relay) = relay_server(&dir);

    let mut forged = connect(relay);
    forged.write_all(&forged_hello(7)).expect("send");
    assert_eq!(status(&mut forged), RelayStatus::Forged.byte());
    srv.expect("relay: refused a connection (Forged)");

    let mut garbage = connect(relay);
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("send");
    assert_eq!(status(&mut garbage), RelayStatus::Malformed.byte());
    srv.expect("relay: refused a connection (Malformed)");

    // Up to the per-address limit, connections are held (each waits for
    // its hello); the next one from the address is refused.
    let held: Vec<TcpStream> = (0..DEFAULT_RELAY_PER_ADDRESS).map(|_| connect(relay)).collect();
    let mut extra = connect(relay);
    assert_eq!(status(&mut extra), RelayStatus::TooManyFromAddress.byte());
    srv.expect("relay: refused a connection (TooManyFromAddress)");
    // The held ones were not disturbed: one of them still gets its own
    // answer to a hello.
    let mut first = held.into_iter().next().expect("one held");
    first.write_all(&forged_hello(8)).expect("send");
    assert_eq!(status(&mut first), RelayStatus::Forged.byte());
}
