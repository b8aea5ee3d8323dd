//! The relay's loop: a TCP listener, the relayed connections and one
//! [`Relay`] machine, on one thread.
//!
//! Not wired yet: `p2pchat server` does not start it (a later step runs it
//! beside the registry, sharing the token key and time origin).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use p2pchat_core::{ConnId, Relay, RelayEvent};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Connection tokens are their [`ConnId`] plus this.
const FIRST_CONN: u64 = 2;

/// Readiness events taken per poll.
const EVENTS_CAPACITY: usize = 256;

/// Bytes read per read call (less when the relay's budget is smaller).
pub const RELAY_READ_CHUNK: usize = 16 * 1024;

/// Most read calls per connection per turn, so that one fast sender cannot
/// starve the others; what is left is read in the next turn.
const MAX_READS_PER_TURN: usize = 8;

/// Stops a running [`RelayLoop`] from another thread.
#[derive(Debug, Clone)]
pub struct RelayStopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl RelayStopHandle {
    /// Asks the loop to return at its next wakeup, which this call causes.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            tracing::warn!(error = %e, "waking the relay loop failed");
        }
    }
}

struct Conn {
    stream: TcpStream,
    /// A read said WouldBlock; cleared by a readable event.
    read_blocked: bool,
    /// A write said WouldBlock; cleared by a writable event.
    write_blocked: bool,
}

/// Drives a [`Relay`] over a TCP listener and its connections.
///
/// Each turn: fire the machine's timer if due; write what waits for each
/// connection; drop the sockets the machine closes; read each connection
/// as far as its budget and readiness allow; then sleep until a socket is
/// ready or the next deadline (not at all when a connection still has
/// something it could read or write).
pub struct RelayLoop {
    poll: Poll,
    listener: TcpListener,
    relay: Relay,
    conns: HashMap<ConnId, Conn>,
    next_id: u64,
    stop: RelayStopHandle,
}

impl RelayLoop {
    /// Takes over a bound listener and the machine to drive.
    pub fn new(listener: std::net::TcpListener, relay: Relay) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = RelayStopHandle { flag: Arc::new(AtomicBool::new(false)), waker };
        Ok(Self { poll, listener, relay, conns: HashMap::new(), next_id: 0, stop })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that stops the loop.
    pub fn stop_handle(&self) -> RelayStopHandle {
        self.stop.clone()
    }

    /// The machine.
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// Runs until stopped, handing each event to `on_event`. Returns `Err`
    /// only when polling itself fails.
    pub fn run(&mut self, mut on_event: impl FnMut(&RelayEvent)) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            let now = Instant::now();
            if self.relay.poll_timeout().is_some_and(|t| t <= now) {
                self.relay.handle_timeout(now);
            }
            let more = self.turn(now, &mut on_event);
            if self.stop.flag.load(Ordering::SeqCst) {
                return Ok(());
            }
            let timeout = if more {
                Some(Duration::ZERO)
            } else {
                self.relay.poll_timeout().map(|t| t.saturating_duration_since(Instant::now()))
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(Instant::now()),
                    WAKER => {}
                    Token(t) => {
                        let id = ConnId((t as u64).wrapping_sub(FIRST_CONN));
                        if let Some(c) = self.conns.get_mut(&id) {
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                c.read_blocked = false;
                            }
                            if event.is_writable() || event.is_error() {
                                c.write_blocked = false;
                            }
                        }
                    }
                }
            }
        }
    }

    fn accept_all(&mut self, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, from)) => {
                    let id = ConnId(self.next_id);
                    self.next_id += 1;
                    let token = Token((id.0 + FIRST_CONN) as usize);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if let Err(e) = self.poll.registry().register(&mut stream, token, interest) {
                        tracing::warn!(error = %e, "registering a relay connection failed");
                        continue;
                    }
                    let conn = Conn { stream, read_blocked: false, write_blocked: false };
                    self.conns.insert(id, conn);
                    self.relay.handle_accept(now, id, from);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was
                    // taken: log it and wait for the next readiness.
                    tracing::warn!(error = %e, "accepting a relay connection failed");
                    return;
                }
            }
        }
    }

    /// One pass over every connection; returns whether one may have more
    /// to do right away.
    fn turn(&mut self, now: Instant, on_event: &mut impl FnMut(&RelayEvent)) -> bool {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        let mut buf = vec![0u8; RELAY_READ_CHUNK];
        for &id in &ids {
            self.write(now, id);
            self.read(now, id, &mut buf);
        }
        // Reads queued bytes for partners: write them now.
        for &id in &ids {
            self.write(now, id);
        }
        while let Some(ev) = self.relay.poll_event() {
            if let RelayEvent::Close { conn, .. } = &ev {
                if let Some(mut c) = self.conns.remove(conn) {
                    let _ = self.poll.registry().deregister(&mut c.stream);
                }
            }
            on_event(&ev);
        }
        self.conns.iter().any(|(id, c)| {
            (!c.read_blocked && self.relay.read_budget(now, *id) > 0)
                || (!c.write_blocked && self.relay.wants_write(*id))
        })
    }

    fn write(&mut self, now: Instant, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        while !c.write_blocked && self.relay.wants_write(id) {
            match c.stream.write(self.relay.pending_output(id)) {
                Ok(0) => {
                    self.fail(now, id);
                    return;
                }
                Ok(n) => self.relay.consume(id, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.write_blocked = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.fail(now, id);
                    return;
                }
            }
        }
    }

    fn read(&mut self, now: Instant, id: ConnId, buf: &mut [u8]) {
        for _ in 0..MAX_READS_PER_TURN {
            let budget = self.relay.read_budget(now, id).min(buf.len());
            let Some(c) = self.conns.get_mut(&id) else { return };
            if c.read_blocked || budget == 0 {
                return;
            }
            match c.stream.read(&mut buf[..budget]) {
                Ok(0) => {
                    c.read_blocked = true;
                    self.relay.handle_eof(now, id);
                    return;
                }
                Ok(n) => {
                    self.relay.handle_input(now, id, &buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.read_blocked = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.fail(now, id);
                    return;
                }
            }
        }
    }

    fn fail(&mut self, now: Instant, id: ConnId) {
        if let Some(mut c) = self.conns.remove(&id) {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
        self.relay.handle_error(now, id);
    }
}

#[cfg(test)]
mod tests;
