//! One TCP stream driving one byte-stream state machine (the chat session).
//!
//! The machine owns both directions' buffers: received bytes go straight
//! into it, bytes to send are read from its `pending_output` and `consume`d
//! only as far as the socket took them, so a short write loses nothing. When
//! the machine stops wanting input (its peer does not read what it sends),
//! the driver stops reading the socket, and TCP's flow control pushes back on
//! the peer: nothing is buffered without bound here.
//!
//! mio's readiness is edge-triggered, so the driver remembers "readable" and
//! "writable" until a read or write says WouldBlock (or a read returns less
//! than it asked for: the queue is empty, and what comes next raises a new
//! edge), and acts on them whenever [`StreamConn::pump`] runs.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Instant;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

/// Bytes read from the socket per read call.
pub const READ_CHUNK: usize = 64 * 1024;

/// Most read calls per [`StreamConn::pump`], so that one fast peer cannot
/// starve the rest of the loop. Readiness is remembered, so the rest is read
/// on the next pump.
const MAX_READS_PER_PUMP: usize = 16;

/// A sans-IO machine that speaks over a byte stream.
pub trait StreamCore {
    /// Feeds received bytes. An error is the machine's own (sticky) business;
    /// the driver only logs it.
    fn handle_input(&mut self, now: Instant, bytes: &[u8]);
    /// Tells the machine the peer closed its side or the stream broke.
    fn handle_eof(&mut self, now: Instant);
    /// Bytes waiting to be written.
    fn pending_output(&mut self) -> &[u8];
    /// Drops the first `n` bytes of [`StreamCore::pending_output`].
    fn consume(&mut self, n: usize);
    /// Whether the machine takes more input now.
    fn wants_read(&self) -> bool;
    /// Whether the machine is done: once its output is written the stream
    /// can be closed.
    fn is_finished(&self) -> bool;
}

/// Where a stream stands after a [`StreamConn::pump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// The connect has not completed yet.
    Connecting,
    /// Bytes can flow.
    Open,
    /// The machine is finished and its output written (or unwritable): drop
    /// the connection.
    Done,
}

/// A non-blocking TCP stream and what the driver knows of its readiness.
#[derive(Debug)]
pub struct StreamConn {
    stream: TcpStream,
    token: Token,
    connecting: bool,
    readable: bool,
    writable: bool,
    read_closed: bool,
    /// The poll reported the peer's end of stream (or an error): a short
    /// read no longer means that nothing is left to read.
    hung_up: bool,
    write_failed: bool,
    buf: Vec<u8>,
}

impl StreamConn {
    /// Starts a non-blocking connect to `addr`, registered under `token`.
    pub fn connect(addr: SocketAddr, registry: &Registry, token: Token) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        Self::register(stream, registry, token, true)
    }

    /// Wraps a stream whose non-blocking connect is under way (a punching
    /// socket), registered under `token`.
    pub fn connecting(stream: TcpStream, registry: &Registry, token: Token) -> io::Result<Self> {
        Self::register(stream, registry, token, true)
    }

    /// Wraps an accepted stream, registered under `token`.
    pub fn accepted(stream: TcpStream, registry: &Registry, token: Token) -> io::Result<Self> {
        Self::register(stream, registry, token, false)
    }

    fn register(
        mut stream: TcpStream,
        registry: &Registry,
        token: Token,
        connecting: bool,
    ) -> io::Result<Self> {
        // Chat lines are small and interactive: send them now.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        // Edge-triggered: both interests stay registered for the stream's
        // life; an edge that finds nothing to do costs one wakeup.
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Self {
            stream,
            token,
            connecting,
            readable: !connecting,
            writable: !connecting,
            read_closed: false,
            hung_up: false,
            write_failed: false,
            buf: vec![0; READ_CHUNK],
        })
    }

    /// The token the stream is registered under.
    pub fn token(&self) -> Token {
        self.token
    }

    /// The peer's address, once connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    /// Whether bytes may wait to be read: no read since the last readiness
    /// event found the socket empty, and the peer has not ended.
    pub fn may_have_input(&self) -> bool {
        self.readable && !self.read_closed
    }

    /// Records a readiness event for this stream.
    pub fn on_event(&mut self, event: &Event) {
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.readable = true;
        }
        if event.is_read_closed() || event.is_error() {
            self.hung_up = true;
        }
        if event.is_writable() || event.is_write_closed() || event.is_error() {
            self.writable = true;
        }
    }

    /// Finishes a pending connect. `Err` is the connect's failure.
    fn check_connected(&mut self) -> io::Result<bool> {
        if !self.connecting {
            return Ok(true);
        }
        if !self.writable && !self.readable {
            return Ok(false);
        }
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.connecting = false;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                // A spurious wakeup: wait for the next edge.
                self.readable = false;
                self.writable = false;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Moves bytes between the socket and `core` as far as both allow.
    ///
    /// Call it after every readiness event for this stream and after every
    /// command that may have given the machine output (sending a text,
    /// closing, a timeout). `Err` means the connect failed; the caller reports
    /// it and drops the connection.
    pub fn pump<C: StreamCore>(&mut self, core: &mut C, now: Instant) -> io::Result<StreamState> {
        if !self.check_connected()? {
            return Ok(StreamState::Connecting);
        }
        // Reading may produce output (acks, pongs), so write after reading,
        // and read again if writing freed the machine to take more.
        for _ in 0..2 {
            self.write(core, now);
            self.read(core, now);
        }
        self.write(core, now);
        Ok(self.state(core))
    }

    /// Like [`StreamConn::pump`], but what reading makes the machine answer
    /// (acknowledgements, pongs) waits for the next pump: writes what waits,
    /// then reads. For a driver that shows what it received before it
    /// acknowledges it; it must pump again before it sleeps.
    pub fn pump_answer_later<C: StreamCore>(
        &mut self,
        core: &mut C,
        now: Instant,
    ) -> io::Result<StreamState> {
        if !self.check_connected()? {
            return Ok(StreamState::Connecting);
        }
        self.write(core, now);
        self.read(core, now);
        Ok(self.state(core))
    }

    fn state<C: StreamCore>(&mut self, core: &mut C) -> StreamState {
        if core.is_finished() && (core.pending_output().is_empty() || self.write_failed) {
            let _ = self.stream.shutdown(Shutdown::Both);
            return StreamState::Done;
        }
        StreamState::Open
    }

    fn write<C: StreamCore>(&mut self, core: &mut C, now: Instant) {
        while self.writable && !self.write_failed && !core.pending_output().is_empty() {
            match self.stream.write(core.pending_output()) {
                Ok(0) => self.fail_write(core, now, io::ErrorKind::WriteZero.into()),
                Ok(n) => core.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.fail_write(core, now, e),
            }
        }
    }

    fn fail_write<C: StreamCore>(&mut self, core: &mut C, now: Instant, e: io::Error) {
        tracing::debug!(error = %e, "chat stream write failed");
        self.write_failed = true;
        if !self.read_closed {
            self.read_closed = true;
            core.handle_eof(now);
        }
    }

    fn read<C: StreamCore>(&mut self, core: &mut C, now: Instant) {
        for _ in 0..MAX_READS_PER_PUMP {
            if !self.readable || self.read_closed || !core.wants_read() {
                return;
            }
            match self.stream.read(&mut self.buf) {
                Ok(0) => {
                    self.read_closed = true;
                    core.handle_eof(now);
                }
                Ok(n) => {
                    // A short read emptied the socket's queue: bytes that
                    // come after it raise a new edge, so there is no need
                    // for a read that only says WouldBlock. Not once the
                    // peer has closed: its end of stream raises no new
                    // edge, and the next read must see it.
                    if n < self.buf.len() && !self.hung_up {
                        self.readable = false;
                    }
                    core.handle_input(now, &self.buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(error = %e, "chat stream read failed");
                    self.read_closed = true;
                    core.handle_eof(now);
                }
            }
        }
    }

    /// Deregisters the stream; dropping it closes the socket.
    pub fn close(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::time::Duration;

    /// Echoes every byte back until it sees b'.', then finishes. Holds at
    /// most `cap` bytes of output: past that it stops reading.
    struct Echo {
        out: Vec<u8>,
        cap: usize,
        eof: bool,
        done: bool,
    }

    impl StreamCore for Echo {
        fn handle_input(&mut self, _now: Instant, bytes: &[u8]) {
            for &b in bytes {
                if b == b'.' {
                    self.done = true;
                }
                self.out.push(b);
            }
        }
        fn handle_eof(&mut self, _now: Instant) {
            self.eof = true;
            self.done = true;
        }
        fn pending_output(&mut self) -> &[u8] {
            &self.out
        }
        fn consume(&mut self, n: usize) {
            self.out.drain(..n);
        }
        fn wants_read(&self) -> bool {
            self.out.len() < self.cap && !self.done
        }
        fn is_finished(&self) -> bool {
            self.done
        }
    }

    fn run(
        poll: &mut Poll,
        conn: &mut StreamConn,
        core: &mut Echo,
        until: impl Fn(&Echo, StreamState) -> bool,
    ) -> StreamState {
        let mut events = Events::with_capacity(8);
        for _ in 0..1000 {
            let st = conn.pump(core, Instant::now()).unwrap();
            if until(core, st) {
                return st;
            }
            poll.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
            for ev in events.iter() {
                conn.on_event(ev);
            }
        }
        panic!("stream never reached the expected state");
    }

    #[test]
    fn echo_then_finish() {
        let mut poll = Poll::new().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut conn = StreamConn::connect(addr, poll.registry(), Token(1)).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut core = Echo { out: Vec::new(), cap: 1 << 20, eof: false, done: false };
        peer.write_all(b"hello.").unwrap();
        let st = run(&mut poll, &mut conn, &mut core, |_, st| st == StreamState::Done);
        assert_eq!(st, StreamState::Done);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello.");
    }

    #[test]
    fn peer_that_does_not_read_is_backpressure() {
        let mut poll = Poll::new().unwrap();
        let listener = std::net::TcpListener::bind("[::1]:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut conn = StreamConn::connect(addr, poll.registry(), Token(1)).unwrap();
        let (peer, _) = listener.accept().unwrap();
        let cap = 64 * 1024;
        let mut core = Echo { out: Vec::new(), cap, eof: false, done: false };
        // The peer writes far more than it reads (it reads nothing): the
        // echo's output fills, it stops reading, and the writer blocks.
        peer.set_nonblocking(true).unwrap();
        let mut peer_w = &peer;
        let chunk = vec![b'x'; 64 * 1024];
        let mut written = 0usize;
        let mut events = Events::with_capacity(8);
        for _ in 0..10_000 {
            match peer_w.write(&chunk) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Let the driver take what it will.
                    conn.pump(&mut core, Instant::now()).unwrap();
                    poll.poll(&mut events, Some(Duration::from_millis(20))).unwrap();
                    for ev in events.iter() {
                        conn.on_event(ev);
                    }
                    conn.pump(&mut core, Instant::now()).unwrap();
                    if peer_w.write(&chunk).is_err() {
                        break;
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(written > 0);
        assert!(!core.wants_read(), "the machine must have filled up");
        assert!(core.out.len() <= cap + READ_CHUNK, "output bounded, got {}", core.out.len());
        assert_eq!(conn.token(), Token(1));
    }

    #[test]
    fn refused_connect_is_an_error() {
        let mut poll = Poll::new().unwrap();
        // Bind then drop to find a port nobody listens on.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut conn = match StreamConn::connect(addr, poll.registry(), Token(1)) {
            Ok(c) => c,
            Err(_) => return, // refused synchronously: also fine
        };
        let mut core = Echo { out: Vec::new(), cap: 10, eof: false, done: false };
        let mut events = Events::with_capacity(8);
        for _ in 0..100 {
            match conn.pump(&mut core, Instant::now()) {
                Err(_) => return,
                Ok(StreamState::Connecting) => {}
                Ok(st) => panic!("connected to nobody: {st:?}"),
            }
            poll.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
            for ev in events.iter() {
                conn.on_event(ev);
            }
        }
        panic!("connect neither failed nor succeeded");
    }
}
