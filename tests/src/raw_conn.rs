//! Drives a [`RawPeer`] over a real TCP stream, for end-to-end tests that
//! play a stranger or a man in the middle against the real binary.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::noise_peer::RawPeer;

/// How a [`drive`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `done` held.
    Done,
    /// The other side closed or reset the stream.
    Closed,
    /// The deadline passed first.
    TimedOut,
}

/// Writes what `peer` has to say and feeds it what arrives, until
/// `done(peer)` holds, the stream ends, or `deadline` passes.
pub fn drive(
    stream: &mut TcpStream,
    peer: &mut RawPeer,
    deadline: Instant,
    done: impl Fn(&RawPeer) -> bool,
) -> Outcome {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let out = peer.take_output();
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return Outcome::Closed;
        }
        if done(peer) {
            return Outcome::Done;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::TimedOut;
        }
        // A zero timeout means "block forever" to the OS: never pass one.
        let _ = stream.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match stream.read(&mut buf) {
            Ok(0) => return Outcome::Closed,
            Ok(n) => peer.input(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Outcome::Closed,
        }
    }
}
