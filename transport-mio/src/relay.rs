//! The relay's loop: a TCP listener, the relayed connections and one
//! [`Relay`] machine, on one thread.
//!
//! [`RelayDriver`] is the part that any `mio::Poll` can carry: `p2pchat
//! server --relay` runs it in the registry's own loop
//! ([`ServerLoop::add_relay`](crate::ServerLoop::add_relay)), so that one
//! thread serves both and they share the token key and the time origin.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use p2pchat_core::{ConnId, Relay, RelayEvent};

/// Bytes read per read call (less when the relay's budget is smaller).
pub const RELAY_READ_CHUNK: usize = 16 * 1024;

/// Most read calls per connection per turn, so that one fast sender cannot
/// starve the others; what is left is read in the next turn.
const MAX_READS_PER_TURN: usize = 8;

struct Conn {
    stream: TcpStream,
    /// A read said WouldBlock; cleared by a readable event.
    read_blocked: bool,
    /// A write said WouldBlock; cleared by a writable event.
    write_blocked: bool,
}

/// Where every byte the relay reads is copied (hellos and what it
/// forwards), for tests that check the
/// relay sees no cleartext.
pub type RelayRecorder = Box<dyn FnMut(&[u8]) + Send>;

/// A [`Relay`] over a TCP listener and its connections, registered on a
/// poll it does not own, under tokens from `base` up (the listener is
/// `base`, connection `n` is `base + 1 + n`).
///
/// Driver contract, for the loop that owns the poll: hand it every event
/// whose token it [`owns`](Self::owns) ([`on_event`](Self::on_event)); each
/// turn call [`turn`](Self::turn) (it fires due timers, writes, reads and
/// drops closed sockets), and sleep no longer than
/// [`poll_timeout`](Self::poll_timeout), or not at all when `turn` said
/// more is to do.
pub struct RelayDriver {
    listener: TcpListener,
    relay: Relay,
    conns: HashMap<ConnId, Conn>,
    next_id: u64,
    base: usize,
    recorder: Option<RelayRecorder>,
    /// The read buffer and the list of connections a turn walks, kept
    /// between turns so that a turn allocates nothing.
    buf: Vec<u8>,
    ids: Vec<ConnId>,
}

impl RelayDriver {
    /// Takes over a bound listener and the machine, registering the
    /// listener on `registry` under `base`.
    pub fn new(
        listener: std::net::TcpListener,
        relay: Relay,
        registry: &Registry,
        base: Token,
    ) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        registry.register(&mut listener, base, Interest::READABLE)?;
        Ok(Self {
            listener,
            relay,
            conns: HashMap::new(),
            next_id: 0,
            base: base.0,
            recorder: None,
            buf: vec![0; RELAY_READ_CHUNK],
            ids: Vec::new(),
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The machine.
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// Copies every byte forwarded from then on to `recorder`.
    pub fn record(&mut self, recorder: RelayRecorder) {
        self.recorder = Some(recorder);
    }

    /// Whether `token` is the listener's or a connection's.
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.base
    }

    /// When the machine next needs [`turn`](Self::turn).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.relay.poll_timeout()
    }

    /// A readiness event for one of its tokens.
    pub fn on_event(&mut self, now: Instant, event: &Event, registry: &Registry) {
        let token = event.token();
        if token.0 == self.base {
            self.accept_all(now, registry);
            return;
        }
        let id = ConnId((token.0 - self.base - 1) as u64);
        if let Some(c) = self.conns.get_mut(&id) {
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                c.read_blocked = false;
            }
            if event.is_writable() || event.is_error() {
                c.write_blocked = false;
            }
        }
    }

    fn accept_all(&mut self, now: Instant, registry: &Registry) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, from)) => {
                    let id = ConnId(self.next_id);
                    self.next_id += 1;
                    let token = Token(self.base + 1 + id.0 as usize);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if let Err(e) = registry.register(&mut stream, token, interest) {
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

    /// Fires due timers, then one pass over every connection; returns
    /// whether one may have more to do right away.
    pub fn turn(
        &mut self,
        now: Instant,
        registry: &Registry,
        on_event: &mut impl FnMut(&RelayEvent),
    ) -> bool {
        if self.relay.poll_timeout().is_some_and(|t| t <= now) {
            self.relay.handle_timeout(now);
        }
        // The registry's loop calls this every turn: with nothing relayed
        // it allocates nothing and walks nothing.
        if !self.conns.is_empty() {
            let mut ids = std::mem::take(&mut self.ids);
            let mut buf = std::mem::take(&mut self.buf);
            ids.clear();
            ids.extend(self.conns.keys().copied());
            for &id in &ids {
                self.write(now, id, registry);
                self.read(now, id, &mut buf, registry);
            }
            // Reads queued bytes for partners: write them now.
            for &id in &ids {
                self.write(now, id, registry);
            }
            self.ids = ids;
            self.buf = buf;
        }
        while let Some(ev) = self.relay.poll_event() {
            if let RelayEvent::Close { conn, .. } = &ev {
                if let Some(mut c) = self.conns.remove(conn) {
                    let _ = registry.deregister(&mut c.stream);
                }
            }
            on_event(&ev);
        }
        self.conns.iter().any(|(id, c)| {
            (!c.read_blocked && self.relay.read_budget(now, *id) > 0)
                || (!c.write_blocked && self.relay.wants_write(*id))
        })
    }

    fn write(&mut self, now: Instant, id: ConnId, registry: &Registry) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        while !c.write_blocked && self.relay.wants_write(id) {
            match c.stream.write(self.relay.pending_output(id)) {
                Ok(0) => {
                    self.fail(now, id, registry);
                    return;
                }
                Ok(n) => self.relay.consume(id, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.write_blocked = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.fail(now, id, registry);
                    return;
                }
            }
        }
    }

    fn read(&mut self, now: Instant, id: ConnId, buf: &mut [u8], registry: &Registry) {
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
                    if let Some(record) = self.recorder.as_mut() {
                        record(&buf[..n]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.read_blocked = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.fail(now, id, registry);
                    return;
                }
            }
        }
    }

    fn fail(&mut self, now: Instant, id: ConnId, registry: &Registry) {
        if let Some(mut c) = self.conns.remove(&id) {
            let _ = registry.deregister(&mut c.stream);
        }
        self.relay.handle_error(now, id);
    }
}

#[cfg(test)]
mod tests;
