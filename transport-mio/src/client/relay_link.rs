//! A connection to the relay until it is paired: the hello goes out, the
//! relay's 5-byte status comes back. Then the connection carries the chat
//! like any other, end to end encrypted; the relay only copies it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::{Registry, Token};
use p2pchat_core::{RELAY_HELLO_LEN, RELAY_MAGIC, RELAY_REPLY_LEN, RelayStatus};

use crate::stream::{StreamConn, StreamCore, StreamState};

/// How long the relay may take to pair us: the relay's own wait for the
/// other side ([`UNPAIRED_TIMEOUT`](p2pchat_core::UNPAIRED_TIMEOUT)) and
/// then some.
pub const RELAY_PAIR_TIMEOUT: Duration = Duration::from_secs(25);

/// The hello and the relay's answer, as a byte-stream machine.
struct Greeting {
    hello: Vec<u8>,
    reply: Vec<u8>,
    /// Bytes that came after the reply: the peer's first, once paired.
    early: Vec<u8>,
    eof: bool,
}

impl StreamCore for Greeting {
    fn handle_input(&mut self, _now: Instant, bytes: &[u8]) {
        let take = (RELAY_REPLY_LEN - self.reply.len()).min(bytes.len());
        self.reply.extend_from_slice(&bytes[..take]);
        self.early.extend_from_slice(&bytes[take..]);
    }
    fn handle_eof(&mut self, _now: Instant) {
        self.eof = true;
    }
    fn pending_output(&mut self) -> &[u8] {
        &self.hello
    }
    fn consume(&mut self, n: usize) {
        self.hello.drain(..n.min(self.hello.len()));
    }
    fn wants_read(&self) -> bool {
        self.reply.len() < RELAY_REPLY_LEN && !self.eof
    }
    fn is_finished(&self) -> bool {
        false
    }
}

/// Where a relay link stands.
#[derive(Debug)]
pub(super) enum LinkState {
    /// Still waiting.
    Waiting,
    /// Paired: the connection is the chat's, and `early` the peer's first
    /// bytes, read with the relay's answer.
    Paired(Vec<u8>),
    /// Refused, closed or timed out (the socket is closed).
    Failed(String),
}

/// A connection to the relay on its way to being paired.
pub(super) struct RelayLink {
    conn: Option<StreamConn>,
    greeting: Greeting,
    deadline: Instant,
}

impl RelayLink {
    /// Connects to the relay at `addr` to present `hello`.
    pub(super) fn open(
        now: Instant,
        addr: SocketAddr,
        hello: &[u8],
        registry: &Registry,
        token: Token,
    ) -> Result<Self, String> {
        if hello.len() != RELAY_HELLO_LEN {
            return Err(format!("the registry's relay hello is {} bytes", hello.len()));
        }
        let conn = StreamConn::connect(addr, registry, token).map_err(|e| e.to_string())?;
        Ok(Self {
            conn: Some(conn),
            greeting: Greeting {
                hello: hello.to_vec(),
                reply: Vec::new(),
                early: Vec::new(),
                eof: false,
            },
            deadline: now + RELAY_PAIR_TIMEOUT,
        })
    }

    pub(super) fn token(&self) -> Option<Token> {
        self.conn.as_ref().map(StreamConn::token)
    }

    pub(super) fn on_event(&mut self, event: &mio::event::Event) {
        if let Some(conn) = self.conn.as_mut().filter(|c| c.token() == event.token()) {
            conn.on_event(event);
        }
    }

    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the hello and the answer; says where the link stands. Once
    /// `Paired`, [`take`](Self::take) the connection.
    pub(super) fn pump(&mut self, now: Instant, registry: &Registry) -> LinkState {
        let Some(conn) = self.conn.as_mut() else {
            return LinkState::Failed("closed".to_owned());
        };
        let state = conn.pump(&mut self.greeting, now);
        let failed = |why: String, link: &mut Self| {
            if let Some(conn) = link.conn.take() {
                conn.close(registry);
            }
            LinkState::Failed(why)
        };
        match state {
            Err(e) => return failed(format!("cannot reach the relay: {e}"), self),
            Ok(StreamState::Connecting | StreamState::Open | StreamState::Done) => {}
        }
        let reply = &self.greeting.reply;
        if reply.len() == RELAY_REPLY_LEN {
            if reply[..4] != RELAY_MAGIC {
                return failed("the relay answered garbage".to_owned(), self);
            }
            if reply[4] == RelayStatus::Paired.byte() {
                return LinkState::Paired(std::mem::take(&mut self.greeting.early));
            }
            return failed(format!("the relay refused the chat (status {})", reply[4]), self);
        }
        if self.greeting.eof {
            return failed("the relay closed the connection".to_owned(), self);
        }
        if now >= self.deadline {
            return failed("the peer did not come to the relay in time".to_owned(), self);
        }
        LinkState::Waiting
    }

    /// The paired connection.
    pub(super) fn take(&mut self) -> Option<StreamConn> {
        self.conn.take()
    }

    /// Gives up: closes the connection.
    pub(super) fn close(&mut self, registry: &Registry) {
        if let Some(conn) = self.conn.take() {
            conn.close(registry);
        }
    }
}
