//! One UDP socket driving one datagram state machine.
//!
//! [`UdpDriver`] reads every datagram the socket holds into the machine,
//! then sends what the machine wants sent, up to [`BATCH`] datagrams per
//! system call each way (`recvmmsg` / `sendmmsg` on Linux). Outgoing
//! datagrams wait back to back in one reused buffer; what a send that would
//! block leaves there stays queued and the poll is asked for WRITABLE; past
//! [`MAX_QUEUED_DATAGRAMS`] the newest datagrams are dropped (UDP is lossy and
//! the machines retransmit what matters).

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use p2pchat_core::{MAX_DATAGRAM_LEN, Transmit};

use crate::mmsg::{self, BATCH, Destinations, Received, Receiver};

/// Most datagrams held back because the socket's send buffer is full.
pub const MAX_QUEUED_DATAGRAMS: usize = 1024;

/// Receive buffer size: larger than [`MAX_DATAGRAM_LEN`], so an over-long
/// datagram arrives whole and the machine can reject it as such.
const RECV_BUF_LEN: usize = 2 * MAX_DATAGRAM_LEN;

/// Most consecutive receive errors (other than WouldBlock) tolerated in one
/// read pass before giving up on that pass.
const MAX_RECV_ERRORS: usize = 16;

/// A sans-IO machine that speaks datagrams: the registry server and the
/// registry client both have this face.
pub trait DatagramCore {
    /// What the machine reports to its user.
    type Event;
    /// Feeds one received datagram.
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]);
    /// Takes the next datagram to send.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// Appends the next datagram to send to `buf` and returns where it goes.
    /// The default goes through [`poll_transmit`](Self::poll_transmit); a
    /// machine that can write into `buf` directly saves an allocation.
    fn poll_transmit_into(&mut self, buf: &mut Vec<u8>) -> Option<SocketAddr> {
        let t = self.poll_transmit()?;
        buf.extend_from_slice(&t.payload);
        Some(t.dst)
    }
    /// Takes the next event.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// When the machine next wants [`DatagramCore::handle_timeout`].
    fn poll_timeout(&self) -> Option<Instant>;
    /// Wakes the machine at or after its deadline.
    fn handle_timeout(&mut self, now: Instant);
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket
/// reports for an IPv4 sender) as the plain IPv4 address it stands for, so
/// that one host has one address in the registry whatever socket it reached.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// The destination as a socket (IPv6 if `ipv6`) can reach it: an IPv6
/// socket (which may be dual-stack) reaches an IPv4 address through its
/// IPv4-mapped form; the machines only ever see the plain IPv4 address.
fn on_wire(ipv6: bool, dst: SocketAddr) -> SocketAddr {
    match (ipv6, dst) {
        (true, SocketAddr::V4(v4)) => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        (true, SocketAddr::V6(_)) | (false, _) => dst,
    }
}

/// Where one queued datagram is in the send buffer, and where it goes.
#[derive(Debug, Clone, Copy)]
struct Queued {
    dst: SocketAddr,
    start: usize,
    end: usize,
}

/// A non-blocking UDP socket with its bounded send queue.
#[derive(Debug)]
pub struct UdpDriver {
    socket: UdpSocket,
    token: Token,
    /// Datagrams to send, back to back in `out`.
    queue: VecDeque<Queued>,
    out: Vec<u8>,
    writable_registered: bool,
    dropped: u64,
    /// Datagrams read from the socket.
    received: u64,
    /// [`BATCH`] receive buffers of [`RECV_BUF_LEN`] bytes.
    bufs: Vec<u8>,
    /// What the last receive call got, and where the last send call sent:
    /// kept so that a call allocates nothing.
    got: Vec<Received>,
    dsts: Destinations,
    /// Whether the socket is IPv6 (and so possibly dual-stack).
    ipv6: bool,
}

impl UdpDriver {
    /// Takes over `socket` (made non-blocking) and registers it for
    /// READABLE under `token`.
    pub fn new(socket: std::net::UdpSocket, registry: &Registry, token: Token) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let ipv6 = socket.local_addr()?.is_ipv6();
        let mut socket = UdpSocket::from_std(socket);
        registry.register(&mut socket, token, Interest::READABLE)?;
        Ok(Self {
            socket,
            token,
            queue: VecDeque::new(),
            out: Vec::new(),
            writable_registered: false,
            dropped: 0,
            received: 0,
            bufs: vec![0; BATCH * RECV_BUF_LEN],
            got: Vec::with_capacity(BATCH),
            dsts: Destinations::default(),
            ipv6,
        })
    }

    /// The socket's bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The token the socket is registered under.
    pub fn token(&self) -> Token {
        self.token
    }

    /// Datagrams dropped so far because the queue was full or the send failed.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Datagrams read from the socket so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Datagrams waiting for the socket to become writable.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Reads every datagram the socket holds into `core`, until WouldBlock.
    pub fn read_all<C: DatagramCore>(&mut self, core: &mut C, now: Instant) {
        let mut rx = Receiver::new();
        while self.read_batch(&mut rx, core, now) == BATCH {}
    }

    /// Reads every datagram the socket holds into `core`, a batch at a time,
    /// and sends the answers to each batch (with one system call where the
    /// socket takes them all) before reading the next: the server's turn.
    pub fn read_and_flush<C: DatagramCore>(
        &mut self,
        core: &mut C,
        now: Instant,
        registry: &Registry,
    ) -> io::Result<()> {
        let mut rx = Receiver::new();
        loop {
            let n = self.read_batch(&mut rx, core, now);
            self.enqueue_from(core);
            self.send_queued();
            if n < BATCH {
                return self.want_writable(registry);
            }
        }
    }

    /// One receive call's worth of datagrams into `core`; how many came (0
    /// when the socket is drained or failing).
    fn read_batch<C: DatagramCore>(
        &mut self,
        rx: &mut Receiver,
        core: &mut C,
        now: Instant,
    ) -> usize {
        let mut errors = 0;
        loop {
            match mmsg::recv_batch(&self.socket, rx, &mut self.bufs, RECV_BUF_LEN, &mut self.got) {
                Ok(n) => {
                    self.received += n as u64;
                    for (i, &(len, from)) in self.got.iter().enumerate() {
                        let Some(from) = from else { continue };
                        let start = i * RECV_BUF_LEN;
                        let bytes = &self.bufs[start..start + len.min(RECV_BUF_LEN)];
                        core.handle_datagram(now, canonical(from), bytes);
                    }
                    return n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return 0,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // ICMP errors reported on the socket (connection refused,
                    // host unreachable) say nothing the machine's own
                    // retransmission timers will not find out.
                    tracing::debug!(error = %e, "udp receive error");
                    errors += 1;
                    if errors >= MAX_RECV_ERRORS {
                        return 0;
                    }
                }
            }
        }
    }

    /// Moves every transmit out of `core` into the queue, sends as much of
    /// the queue as the socket takes, and registers WRITABLE while some is
    /// left.
    pub fn flush<C: DatagramCore>(&mut self, core: &mut C, registry: &Registry) -> io::Result<()> {
        self.enqueue_from(core);
        self.send_queued();
        self.want_writable(registry)
    }

    fn want_writable(&mut self, registry: &Registry) -> io::Result<()> {
        let want_writable = !self.queue.is_empty();
        if want_writable != self.writable_registered {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.socket, self.token, interest)?;
            self.writable_registered = want_writable;
        }
        Ok(())
    }

    fn enqueue_from<C: DatagramCore>(&mut self, core: &mut C) {
        loop {
            let start = self.out.len();
            let Some(dst) = core.poll_transmit_into(&mut self.out) else {
                return;
            };
            if self.queue.len() >= MAX_QUEUED_DATAGRAMS {
                self.out.truncate(start);
                self.dropped += 1;
                tracing::warn!(%dst, "udp send queue full, datagram dropped");
                continue;
            }
            self.queue.push_back(Queued { dst, start, end: self.out.len() });
        }
    }

    fn send_queued(&mut self) {
        while let Some(first) = self.queue.front() {
            let first = first.dst;
            let n = self.queue.len().min(BATCH);
            let ipv6 = self.ipv6;
            let msgs = self.queue.iter().take(n).map(|q| (on_wire(ipv6, q.dst), q.start..q.end));
            match mmsg::send_batch(&self.socket, &mut self.dsts, &self.out, msgs) {
                Ok(sent) => {
                    self.queue.drain(..sent.clamp(1, n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Unreachable network, address family mismatch, …: this
                    // datagram cannot go; the next one may.
                    tracing::debug!(dst = %first, error = %e, "udp send failed, datagram dropped");
                    self.dropped += 1;
                    self.queue.pop_front();
                }
            }
        }
        match self.queue.front() {
            None => self.out.clear(),
            // Under sustained push-back, drop the bytes already sent once
            // they are most of the buffer, so it stays bounded.
            Some(first) if first.start > self.out.len() / 2 => {
                let gone = first.start;
                self.out.drain(..gone);
                for q in &mut self.queue {
                    q.start -= gone;
                    q.end -= gone;
                }
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::time::Duration;

    /// Answers every datagram with the same bytes, reversed.
    #[derive(Default)]
    struct Mirror {
        out: VecDeque<Transmit>,
        seen: Vec<Vec<u8>>,
        from: Vec<SocketAddr>,
    }

    impl DatagramCore for Mirror {
        type Event = ();
        fn handle_datagram(&mut self, _now: Instant, from: SocketAddr, bytes: &[u8]) {
            self.seen.push(bytes.to_vec());
            self.from.push(from);
            let mut payload = bytes.to_vec();
            payload.reverse();
            self.out.push_back(Transmit { dst: from, payload });
        }
        fn poll_transmit(&mut self) -> Option<Transmit> {
            self.out.pop_front()
        }
        fn poll_event(&mut self) -> Option<()> {
            None
        }
        fn poll_timeout(&self) -> Option<Instant> {
            None
        }
        fn handle_timeout(&mut self, _now: Instant) {}
    }

    #[test]
    fn a_dual_stack_socket_shows_ipv4_senders_as_ipv4() {
        let mut poll = Poll::new().unwrap();
        // An IPv6 socket, on IPv4 loopback through its mapped address: what
        // a dual-stack `[::]` socket sees of an IPv4 sender.
        let sock = std::net::UdpSocket::bind("[::ffff:127.0.0.1]:0").unwrap();
        assert!(sock.local_addr().unwrap().is_ipv6());
        let port = sock.local_addr().unwrap().port();
        let mut driver = UdpDriver::new(sock, poll.registry(), Token(0)).unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(&[7, 1, 2], ("127.0.0.1", port)).unwrap();
        let mut core = Mirror::default();
        let mut events = Events::with_capacity(8);
        while core.seen.is_empty() {
            poll.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
            assert!(!events.is_empty(), "the datagram never arrived");
            driver.read_all(&mut core, Instant::now());
        }
        assert_eq!(core.from, vec![peer.local_addr().unwrap()], "seen as plain IPv4");
        // The answer to the plain IPv4 address goes out through the mapped one.
        driver.flush(&mut core, poll.registry()).unwrap();
        let mut buf = [0; 16];
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[2, 1, 7]);
    }

    /// A driver on loopback, its address, and a peer socket that waits at
    /// most 5 s for what it must receive.
    fn driver_and_peer() -> (Poll, UdpDriver, SocketAddr, std::net::UdpSocket) {
        let poll = Poll::new().unwrap();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let drv = UdpDriver::new(sock, poll.registry(), Token(0)).unwrap();
        let addr = drv.local_addr().unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (poll, drv, addr, peer)
    }

    #[test]
    fn reads_everything_and_answers() {
        let (mut poll, mut drv, addr, peer) = driver_and_peer();
        for i in 0..10u8 {
            peer.send_to(&[i, 1, 2], addr).unwrap();
        }
        let mut core = Mirror::default();
        let mut events = Events::with_capacity(8);
        for _ in 0..100 {
            if core.seen.len() == 10 {
                break;
            }
            poll.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
            drv.read_all(&mut core, Instant::now());
            drv.flush(&mut core, poll.registry()).unwrap();
        }
        assert_eq!(core.seen.len(), 10);
        let mut buf = [0; 16];
        for i in 0..10u8 {
            let (n, _) = peer.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[2, 1, i]);
        }
        assert_eq!(drv.queued(), 0);
    }

    #[test]
    fn a_burst_is_read_and_answered_in_batches() {
        let (mut poll, mut drv, addr, peer) = driver_and_peer();
        // More than three batches, with a lone last one.
        let count = 3 * BATCH + 5;
        for i in 0..count {
            peer.send_to(&[i as u8, 1, 2], addr).unwrap();
        }
        let mut core = Mirror::default();
        let mut events = Events::with_capacity(8);
        while core.seen.len() < count {
            poll.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
            assert!(!events.is_empty(), "only {} of {count} arrived", core.seen.len());
            drv.read_and_flush(&mut core, Instant::now(), poll.registry()).unwrap();
        }
        assert_eq!(drv.queued(), 0, "every answer went out");
        let mut buf = [0; 16];
        for i in 0..count {
            let (n, from) = peer.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&[2, 1, i as u8][..], addr), "in order");
        }
    }

    #[test]
    fn queue_is_bounded() {
        let poll = Poll::new().unwrap();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut drv = UdpDriver::new(sock, poll.registry(), Token(0)).unwrap();
        let mut core = Mirror::default();
        for _ in 0..(MAX_QUEUED_DATAGRAMS + 10) {
            core.out
                .push_back(Transmit { dst: "127.0.0.1:9".parse().unwrap(), payload: vec![0; 10] });
        }
        // As if the socket had refused every send with WouldBlock.
        drv.enqueue_from(&mut core);
        assert_eq!(drv.queued(), MAX_QUEUED_DATAGRAMS);
        assert_eq!(drv.dropped(), 10);
    }

    #[test]
    fn failed_sends_are_dropped() {
        let poll = Poll::new().unwrap();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut drv = UdpDriver::new(sock, poll.registry(), Token(0)).unwrap();
        // An IPv6 destination from an IPv4 socket always fails: each
        // datagram is dropped, never retried forever.
        let mut core = Mirror::default();
        for _ in 0..(MAX_QUEUED_DATAGRAMS + 10) {
            core.out.push_back(Transmit { dst: "[::1]:9".parse().unwrap(), payload: vec![0; 10] });
        }
        drv.flush(&mut core, poll.registry()).unwrap();
        assert_eq!(drv.queued(), 0);
        assert_eq!(drv.dropped(), (MAX_QUEUED_DATAGRAMS + 10) as u64);
    }
}
