//! The registry server's loop: one UDP socket, one machine, one thread.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use mio::{Events, Poll, Token, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use p2pchat_core::{Relay, RelayEvent};

use crate::relay::{RelayDriver, RelayRecorder};
use crate::udp::{DatagramCore, UdpDriver};

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNALS: Token = Token(2);
/// The relay's tokens start here.
const RELAY: Token = Token(3);

/// What the loop does with each relay event.
pub type RelayEvents = Box<dyn FnMut(&RelayEvent) + Send>;

/// Readiness events taken per poll.
const EVENTS_CAPACITY: usize = 64;

/// Stops a running [`ServerLoop`] from anywhere (another thread, a test).
#[derive(Debug, Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl StopHandle {
    /// Asks the loop to return; it does so at its next wakeup, which this
    /// call causes.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            tracing::warn!(error = %e, "waking the server loop failed");
        }
    }
}

/// Drives a [`DatagramCore`] over one UDP socket: the registry server, and
/// the one-shot registry client of [`fetch_list`](crate::fetch_list).
///
/// Each turn: read every datagram until WouldBlock, a batch at a time,
/// feeding the machine and sending the answers to each batch before reading
/// the next; fire its timer if due, send its transmits (queueing what would
/// block), hand its events to the caller, move the relay's bytes (if it
/// runs one, [`add_relay`](Self::add_relay)), then sleep until a socket is
/// ready or the next deadline.
pub struct ServerLoop<C> {
    poll: Poll,
    udp: UdpDriver,
    core: C,
    stop: StopHandle,
    signals: Option<Signals>,
    relay: Option<(RelayDriver, RelayEvents)>,
}

impl<C: DatagramCore> ServerLoop<C> {
    /// Takes over a bound socket and the machine to drive.
    pub fn new(socket: std::net::UdpSocket, core: C) -> io::Result<Self> {
        let poll = Poll::new()?;
        let udp = UdpDriver::new(socket, poll.registry(), SOCKET)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = StopHandle { flag: Arc::new(AtomicBool::new(false)), waker };
        Ok(Self { poll, udp, core, stop, signals: None, relay: None })
    }

    /// Runs `relay` on `listener` in this loop, on this thread, handing
    /// its events to `on_event`; `record`, if given, gets a copy of every
    /// byte the relay reads (a test aid). Returns the listener's address.
    pub fn add_relay(
        &mut self,
        listener: std::net::TcpListener,
        relay: Relay,
        on_event: RelayEvents,
        record: Option<RelayRecorder>,
    ) -> io::Result<SocketAddr> {
        let mut driver = RelayDriver::new(listener, relay, self.poll.registry(), RELAY)?;
        if let Some(record) = record {
            driver.record(record);
        }
        let addr = driver.local_addr()?;
        self.relay = Some((driver, on_event));
        Ok(addr)
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// A handle that stops the loop.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Makes SIGINT and SIGTERM stop the loop cleanly.
    pub fn stop_on_signals(&mut self) -> io::Result<()> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        self.poll.registry().register(&mut signals, SIGNALS, mio::Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// Datagrams this loop's socket has read so far.
    pub fn received(&self) -> u64 {
        self.udp.received()
    }

    /// The machine, e.g. to inspect it after the loop returned.
    pub fn core(&self) -> &C {
        &self.core
    }

    /// Runs until stopped, handing each event to `on_event`. Returns `Err`
    /// only when polling itself fails.
    pub fn run(&mut self, on_event: impl FnMut(C::Event)) -> io::Result<()> {
        self.run_with_idle(on_event, || {})
    }

    /// Like [`run`](Self::run), and calls `on_idle` each time the loop is
    /// about to sleep, after the turn's events: where a caller that buffers
    /// what it makes of the events flushes it (one write per turn rather
    /// than one per event, and nothing left unwritten while the loop waits).
    pub fn run_with_idle(
        &mut self,
        mut on_event: impl FnMut(C::Event),
        mut on_idle: impl FnMut(),
    ) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            let now = Instant::now();
            if self.core.poll_timeout().is_some_and(|t| t <= now) {
                self.core.handle_timeout(now);
            }
            self.udp.flush(&mut self.core, self.poll.registry())?;
            while let Some(ev) = self.core.poll_event() {
                on_event(ev);
            }
            let more = match self.relay.as_mut() {
                Some((driver, on_relay)) => driver.turn(now, self.poll.registry(), on_relay),
                None => false,
            };
            on_idle();
            if self.stop.flag.load(Ordering::SeqCst) {
                return Ok(());
            }
            let relay_timeout = self.relay.as_ref().and_then(|(d, _)| d.poll_timeout());
            let deadline = [self.core.poll_timeout(), relay_timeout].into_iter().flatten().min();
            let timeout = if more {
                Some(std::time::Duration::ZERO)
            } else {
                deadline.map(|t| t.saturating_duration_since(Instant::now()))
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    SOCKET => {
                        if event.is_readable() {
                            self.udp.read_and_flush(&mut self.core, now, self.poll.registry())?;
                        }
                        // Writable: the flush at the top of the turn sends
                        // what is queued.
                    }
                    SIGNALS => {
                        if let Some(signals) = self.signals.as_mut() {
                            for sig in signals.pending() {
                                tracing::info!(signal = sig, "stopping on signal");
                                self.stop.flag.store(true, Ordering::SeqCst);
                            }
                        }
                    }
                    WAKER => {}
                    other => match self.relay.as_mut() {
                        Some((driver, _)) if driver.owns(other) => {
                            driver.on_event(now, event, self.poll.registry());
                        }
                        Some(_) | None => tracing::debug!(?other, "event for an unknown token"),
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p2pchat_core::Transmit;
    use std::collections::VecDeque;
    use std::time::Duration;

    /// Counts datagrams; answers each with its count; reports a tick event
    /// from a 10 ms timer, three times.
    struct Counter {
        n: u8,
        out: VecDeque<Transmit>,
        ev: VecDeque<&'static str>,
        timer: Option<Instant>,
        ticks: u8,
    }

    impl DatagramCore for Counter {
        type Event = &'static str;
        fn handle_datagram(&mut self, _now: Instant, from: SocketAddr, _bytes: &[u8]) {
            self.n += 1;
            self.out.push_back(Transmit { dst: from, payload: vec![self.n] });
            self.ev.push_back("datagram");
        }
        fn poll_transmit(&mut self) -> Option<Transmit> {
            self.out.pop_front()
        }
        fn poll_event(&mut self) -> Option<&'static str> {
            self.ev.pop_front()
        }
        fn poll_timeout(&self) -> Option<Instant> {
            self.timer
        }
        fn handle_timeout(&mut self, now: Instant) {
            self.ticks += 1;
            self.ev.push_back("tick");
            self.timer = (self.ticks < 3).then(|| now + Duration::from_millis(10));
        }
    }

    #[test]
    fn serves_times_out_and_stops() {
        let socket = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let core = Counter {
            n: 0,
            out: VecDeque::new(),
            ev: VecDeque::new(),
            timer: Some(Instant::now()),
            ticks: 0,
        };
        let mut server = ServerLoop::new(socket, core).unwrap();
        let addr = server.local_addr().unwrap();
        let stop = server.stop_handle();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            server.run(|ev| tx.send(ev).unwrap()).unwrap();
            server.core().ticks
        });
        let client = std::net::UdpSocket::bind("[::1]:0").unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0; 8];
        for i in 1..=3u8 {
            client.send_to(b"x", addr).unwrap();
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i]);
        }
        let mut ticks = 0;
        while ticks < 3 {
            if rx.recv_timeout(Duration::from_secs(5)).unwrap() == "tick" {
                ticks += 1;
            }
        }
        stop.stop();
        assert_eq!(thread.join().unwrap(), 3);
    }
}
