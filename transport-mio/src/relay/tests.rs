//! The relay loop on loopback: a pair is joined and bytes flow both ways
//! through real sockets; a forged token is refused; one side's end closes
//! the other.

use super::*;
use p2pchat_core::{PublicKey, RELAY_REPLY_LEN, RelayConfig, RelayKey, RelayStatus, TokenMint};
use std::io::{Read, Write};
use std::net::TcpStream as StdStream;

const KEY: RelayKey = RelayKey([3; 32]);
const WAIT: Duration = Duration::from_secs(10);

fn start() -> (SocketAddr, TokenMint, RelayStopHandle, std::thread::JoinHandle<Vec<RelayEvent>>) {
    let origin = Instant::now();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // A rate the test does not wait for (the default would take 8 s for
    // the mebibyte below: the rate itself is the core's tests' business).
    let config = RelayConfig { pair_rate: 1 << 30, ..RelayConfig::default() };
    let relay = Relay::new(&KEY, origin, config);
    let mut lp = RelayLoop::new(listener, relay).unwrap();
    let addr = lp.local_addr().unwrap();
    let stop = lp.stop_handle();
    let thread = std::thread::spawn(move || {
        let mut seen = Vec::new();
        lp.run(|e| seen.push(e.clone())).unwrap();
        seen
    });
    (addr, TokenMint::new(&KEY, origin), stop, thread)
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
    let (addr, mint, stop, thread) = start();
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
    let events = thread.join().unwrap();
    assert!(events.iter().any(|e| matches!(e, RelayEvent::Paired { .. })));
}
