//! The relay in the registry's loop, on loopback, as `p2pchat server`
//! runs it: a pair is joined and bytes flow both ways through real
//! sockets; a forged token is refused; one side's end closes the other.

use super::*;
use crate::{ServerLoop, StopHandle};
use p2pchat_core::{
    CookieKey, PublicKey, RELAY_REPLY_LEN, RegistryServer, RelayConfig, RelayKey, RelayStatus,
    ServerConfig, TokenMint,
};
use std::io::{Read, Write};
use std::net::TcpStream as StdStream;
use std::sync::mpsc;
use std::time::Duration;

const KEY: RelayKey = RelayKey([3; 32]);
const WAIT: Duration = Duration::from_secs(10);

type Started =
    (SocketAddr, TokenMint, StopHandle, mpsc::Receiver<RelayEvent>, std::thread::JoinHandle<()>);

fn start() -> Started {
    let origin = Instant::now();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // A rate the test does not wait for (the default would take 8 s for
    // the mebibyte below: the rate itself is the core's tests' business).
    let config = RelayConfig { pair_rate: 1 << 30, ..RelayConfig::default() };
    let relay = Relay::new(&KEY, origin, config);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let registry = RegistryServer::new(origin, CookieKey([5; 16]), ServerConfig::default());
    let mut lp = ServerLoop::new(udp, registry).unwrap();
    let (tx, rx) = mpsc::channel();
    let on_relay = Box::new(move |e: &RelayEvent| {
        let _ = tx.send(e.clone());
    });
    let addr = lp.add_relay(listener, relay, on_relay, None).unwrap();
    let stop = lp.stop_handle();
    let thread = std::thread::spawn(move || lp.run(|_| {}).unwrap());
    (addr, TokenMint::new(&KEY, origin), stop, rx, thread)
}

fn connect(addr: SocketAddr, hello: &[u8]) -> StdStream {
    let mut s = StdStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(hello).unwrap();
    s
}

fn reply(s: &mut StdStream) -> u8 {
    let mut r = [0; RELAY_REPLY_LEN];
    s.read_exact(&mut r).unwrap();
    assert_eq!(&r[..4], b"p2pr");
    r[4]
}

#[test]
fn pairs_and_relays_over_real_sockets() {
    let (addr, mint, stop, events, thread) = start();
    let (a, b) = mint.issue(Instant::now(), PublicKey([1; 32]), PublicKey([2; 32]), 1);
    let mut caller = connect(addr, &a.encode());
    let mut callee = connect(addr, &b.encode());
    assert_eq!(reply(&mut caller), RelayStatus::Paired.byte());
    assert_eq!(reply(&mut callee), RelayStatus::Paired.byte());

    // 1 MiB one way, more than any socket buffer, with replies the other.
    let big: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let mut reader = callee.try_clone().unwrap();
    let expect = big.clone();
    let got = std::thread::spawn(move || {
        let mut got = vec![0; expect.len()];
        reader.read_exact(&mut got).unwrap();
        got == expect
    });
    caller.write_all(&big).unwrap();
    assert!(got.join().unwrap(), "the bytes arrived changed");
    callee.write_all(b"back").unwrap();
    let mut back = [0; 4];
    caller.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"back");

    // A forged token is refused and closed.
    let mut forged = a;
    forged.tag[3] ^= 0x40;
    let mut f = connect(addr, &forged.encode());
    assert_eq!(reply(&mut f), RelayStatus::Forged.byte());
    assert_eq!(f.read(&mut [0; 1]).unwrap(), 0, "closed after the refusal");

    // The caller leaves: the callee's stream ends.
    drop(caller);
    assert_eq!(callee.read(&mut [0; 1]).unwrap(), 0);

    stop.stop();
    thread.join().unwrap();
    assert!(events.try_iter().any(|e| matches!(e, RelayEvent::Paired { .. })));
}
