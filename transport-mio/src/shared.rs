//! One registry on several cores: one socket and one loop per thread, all
//! bound to the same port with `SO_REUSEPORT`, over one machine behind a
//! mutex.
//!
//! Nearly all of a registry's time per request is the kernel's (receiving
//! and sending the datagrams, about 90% on loopback); the machine's part is
//! a few hundred nanoseconds. So the loops run the kernel's part side by
//! side, each on its own socket (the kernel spreads senders over the
//! sockets by a hash of their addresses, so one sender always reaches the
//! same loop), and take turns only for the machine: [`SharedCore`] locks it
//! for each call. Every reply leaves from the same address and port
//! whichever socket sends it, so a loop may send replies to datagrams
//! another loop read.
//!
//! One loop, the leader, also keeps the machine's timers
//! ([`SharedCore::new`]); the others ([`SharedCore::follower`]) never wake
//! for them. With one thread, the server runs the machine directly, with no
//! lock at all.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};

use crate::udp::DatagramCore;

/// Most loops (threads, sockets) one server runs.
pub const MAX_SERVER_THREADS: usize = 64;

/// A machine shared by several loops; each call locks it.
#[derive(Debug)]
pub struct SharedCore<C> {
    core: Arc<Mutex<C>>,
    /// Whether this loop keeps the machine's timers.
    leader: bool,
}

impl<C> SharedCore<C> {
    /// The leader's handle: it keeps the machine's timers.
    pub fn new(core: C) -> Self {
        Self { core: Arc::new(Mutex::new(core)), leader: true }
    }

    /// Another loop's handle on the same machine, without its timers.
    pub fn follower(&self) -> Self {
        Self { core: Arc::clone(&self.core), leader: false }
    }

    /// The machine, locked (to inspect it, or to set it up).
    pub fn lock(&self) -> MutexGuard<'_, C> {
        // A loop that panicked while holding the lock left the machine as
        // it was between two calls of its own: keep serving with it.
        self.core.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<C: DatagramCore> DatagramCore for SharedCore<C> {
    type Event = C::Event;
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.lock().handle_datagram(now, from, bytes);
    }
    fn poll_transmit(&mut self) -> Option<p2pchat_core::Transmit> {
        self.lock().poll_transmit()
    }
    fn poll_transmit_into(&mut self, buf: &mut Vec<u8>) -> Option<SocketAddr> {
        self.lock().poll_transmit_into(buf)
    }
    fn poll_event(&mut self) -> Option<C::Event> {
        self.lock().poll_event()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        if self.leader { self.lock().poll_timeout() } else { None }
    }
    fn handle_timeout(&mut self, now: Instant) {
        if self.leader {
            self.lock().handle_timeout(now);
        }
    }
}

/// `count` UDP sockets bound to `addr` with `SO_REUSEPORT`, all on the
/// same port (the first one's, when `addr` asks for port 0). Blocking, as
/// `UdpSocket::bind` makes them; the loops make them non-blocking.
pub fn reuse_port_sockets(addr: SocketAddr, count: usize) -> io::Result<Vec<UdpSocket>> {
    let mut sockets: Vec<UdpSocket> = Vec::with_capacity(count);
    let mut at = addr;
    for _ in 0..count {
        let socket = Socket::new(Domain::for_address(at), Type::DGRAM, Some(Protocol::UDP))?;
        set_reuse_port(&socket)?;
        socket.bind(&at.into())?;
        let socket = UdpSocket::from(socket);
        at = socket.local_addr()?;
        sockets.push(socket);
    }
    Ok(sockets)
}

#[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
fn set_reuse_port(_socket: &Socket) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "SO_REUSEPORT is not available here"))
}
