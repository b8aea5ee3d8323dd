//! Datagrams waiting to be sent, encoded back to back in one reused buffer.
//!
//! The registry server encodes each reply straight into the outbox: once
//! the buffer has grown to the size of a burst, answering a request
//! allocates nothing. The driver drains it with
//! [`Outbox::pop_into`] (copying into its own send buffer) or, where an
//! owned datagram is wanted (tests, the simulator), [`Outbox::pop`].

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::transmit::Transmit;

/// Where one queued datagram is, and where it goes.
#[derive(Debug, Clone, Copy)]
struct Queued {
    dst: SocketAddr,
    start: usize,
    end: usize,
}

/// Queued datagrams in one buffer.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    bytes: Vec<u8>,
    queue: VecDeque<Queued>,
}

impl Outbox {
    /// The buffer to append the next datagram to, and where it starts: pass
    /// that to [`commit`](Self::commit) or [`abort`](Self::abort).
    pub(crate) fn begin(&mut self) -> (&mut Vec<u8>, usize) {
        let start = self.bytes.len();
        (&mut self.bytes, start)
    }

    /// Queues what was appended since `start` as one datagram to `dst`.
    pub(crate) fn commit(&mut self, dst: SocketAddr, start: usize) {
        self.queue.push_back(Queued { dst, start, end: self.bytes.len() });
    }

    /// Queues a copy of `bytes` as one datagram to `dst`.
    pub(crate) fn push(&mut self, dst: SocketAddr, bytes: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        self.commit(dst, start);
    }

    /// Forgets what was appended since `start`.
    pub(crate) fn abort(&mut self, start: usize) {
        self.bytes.truncate(start);
    }

    /// The length of what was appended since `start`.
    pub(crate) fn len_since(&self, start: usize) -> usize {
        self.bytes.len() - start
    }

    /// Takes the next datagram as an owned [`Transmit`].
    pub(crate) fn pop(&mut self) -> Option<Transmit> {
        let q = self.queue.pop_front()?;
        let payload = self.bytes[q.start..q.end].to_vec();
        self.reset_if_empty();
        Some(Transmit { dst: q.dst, payload })
    }

    /// Appends the next datagram to `buf` and returns where it goes.
    pub(crate) fn pop_into(&mut self, buf: &mut Vec<u8>) -> Option<SocketAddr> {
        let q = self.queue.pop_front()?;
        buf.extend_from_slice(&self.bytes[q.start..q.end]);
        self.reset_if_empty();
        Some(q.dst)
    }

    fn reset_if_empty(&mut self) {
        if self.queue.is_empty() {
            self.bytes.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_come_out_whole_in_order() {
        let a: SocketAddr = "192.0.2.1:1".parse().expect("valid");
        let b: SocketAddr = "192.0.2.2:2".parse().expect("valid");
        let mut out = Outbox::default();
        let (buf, start) = out.begin();
        buf.extend_from_slice(b"one");
        out.commit(a, start);
        let (buf, start) = out.begin();
        buf.extend_from_slice(b"dropped");
        out.abort(start);
        let (buf, start) = out.begin();
        buf.extend_from_slice(b"two");
        assert_eq!(out.len_since(start), 3);
        out.commit(b, start);
        out.push(a, b"three");
        assert_eq!(out.pop(), Some(Transmit { dst: a, payload: b"one".to_vec() }));
        let mut sent = b"x".to_vec();
        assert_eq!(out.pop_into(&mut sent), Some(b));
        assert_eq!(sent, b"xtwo");
        assert_eq!(out.pop(), Some(Transmit { dst: a, payload: b"three".to_vec() }));
        assert_eq!(out.pop(), None);
        assert!(out.bytes.is_empty(), "the buffer is reused once drained");
    }
}
