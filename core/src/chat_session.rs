//! The peer-to-peer chat session: one state machine per TCP stream.
//!
//! Layers, bottom up: [`crate::frame`] cuts the stream into length-prefixed
//! frames, [`crate::noise`] runs the preamble and the handshake and then
//! seals and opens each frame's payload, [`crate::codec`] turns a payload
//! into a [`ChatMsg`], and this module gives the messages their meaning.
//! `wire` is the only part that touches the first three.

mod config;
mod error;
mod event;
mod messages;
mod unacked;
mod wire;

use std::collections::VecDeque;
use std::time::Instant;

use crate::chat_msg::{CHAT_VERSION, ChatMsg, DeclineReason, MAX_TEXT_LEN, Seq, TextRef};
use crate::key::PublicKey;
use crate::name::UserName;

pub use config::{
    ACK_EVERY, CLOSE_LINGER, CONTROL_HEADROOM, ChatConfig, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT,
    MAX_BUFFERED_OUTPUT, MAX_UNACKED, MAX_UNACKED_BYTES, PING_INTERVAL,
};
pub use error::{ChatError, SendError};
pub use event::{ChatEvent, CloseReason};
pub use wire::{ChatRole, ChatSetup};

use unacked::Unacked;
use wire::{Inbound, Wire};

/// One side of a chat over a reliable byte stream, as a pure state machine.
///
/// It reads no socket and no clock: the driver feeds it the bytes it reads
/// ([`handle_input`](Self::handle_input), [`handle_eof`](Self::handle_eof)),
/// the user's commands ([`send_text`](Self::send_text),
/// [`close`](Self::close)) and the time (`now`, the first argument of every
/// method that needs it, and [`handle_timeout`](Self::handle_timeout)).
///
/// # Driver contract
///
/// After constructing the session and after every `handle_*` call or command:
///
/// 1. write [`pending_output`](Self::pending_output) to the stream and report
///    how much was written with [`consume`](Self::consume) (a short write
///    loses nothing: the rest stays pending; while
///    [`wants_write`](Self::wants_write) is true, wait for the stream to be
///    writable and repeat);
/// 2. drain [`poll_event`](Self::poll_event) until it returns `None`;
/// 3. re-read [`poll_timeout`](Self::poll_timeout) and call
///    [`handle_timeout`](Self::handle_timeout) when that instant comes.
///
/// Read from the stream only while [`wants_read`](Self::wants_read) is true;
/// a read of zero bytes (end of stream) is reported with
/// [`handle_eof`](Self::handle_eof). Once [`is_finished`](Self::is_finished),
/// the driver may drop the stream as soon as the pending output is written
/// (or at once if it cannot be written).
///
/// # Protocol
///
/// Each side first sends its cleartext preamble; the caller also starts a
/// Noise XX handshake with the key the registry lists for the callee
/// ([`ChatRole::Caller`]). When the handshake is done the session reports
/// [`ChatEvent::Authenticated`] with the key the peer proved; from then on
/// every frame is encrypted. A handshake not done within
/// [`ChatConfig::handshake_timeout`] ends the session
/// ([`CloseReason::HandshakeTimeout`]).
///
/// Then each side sends `Hello { version, name }` (the callee only once its
/// application calls [`accept`](Self::accept)); the first message received
/// must be the peer's `Hello`, with [`CHAT_VERSION`](crate::CHAT_VERSION)
/// and the name the handshake was bound to. Nothing but our `Hello` goes out
/// before the peer's `Hello` is accepted: texts sent earlier are accepted
/// (and numbered) but held back until then, and no `Ping` is sent until both
/// `Hello`s have been sent and received.
/// Texts carry sequence numbers 1, 2, 3, … in each direction; the receiver
/// requires them consecutive and answers with one cumulative `Ack { upto }`
/// per `handle_input` call that brought new texts (with a
/// [`ChatConfig::ack_delay`], within that delay, or with our next text,
/// whichever comes first; at once after [`ACK_EVERY`] texts). An `Ack` that
/// does not advance is ignored.
///
/// Closing: the side that calls [`close`](Self::close) sends `Goodbye` and
/// waits up to [`ChatConfig::close_linger`] for acknowledgements and the
/// peer's `Goodbye`; texts that reach it meanwhile are dropped unacknowledged
/// (nothing follows a `Goodbye`, so it could not acknowledge them). The side
/// that receives `Goodbye` acknowledges every text it received, answers
/// `Goodbye` and is done ([`CloseReason::PeerClose`]); the initiator is done
/// ([`CloseReason::LocalClose`]) when that `Goodbye` or the end of the stream
/// arrives, or the linger expires. Closing before the peer's `Hello` has
/// arrived holds the `Goodbye` back with the texts: all go out, texts first,
/// if that `Hello` arrives within the linger.
///
/// Keepalive: once both `Hello`s have crossed, after
/// [`ChatConfig::ping_interval`] without receiving a whole frame the session
/// sends `Ping` (and again every interval while the
/// silence lasts); every `Ping` is answered with a `Pong`. After
/// [`ChatConfig::idle_timeout`] without a frame the peer is
/// [`CloseReason::PeerSilent`] (before its `Hello`, this is the handshake
/// timeout).
///
/// # Guarantees
///
/// - **No text is lost silently.** Every text accepted by `send_text` gets
///   exactly one `Delivered` or one `Undelivered` event. However the session
///   ends, the `Undelivered` events name exactly the texts the peer did not
///   acknowledge, in order, followed by one [`ChatEvent::Closed`]; nothing
///   follows it.
/// - **Errors are sticky.** A malformed or oversize frame or any protocol
///   violation ends the session with [`CloseReason::Error`]; `handle_input`
///   returns that error then and on every later call.
/// - **No panics** on any input bytes, in any chunking, or any sequence of
///   calls.
/// - **Bounded memory.** The decoder keeps at most one partial frame between
///   calls; events grow only with the input and the commands given; the output
///   stays under [`MAX_BUFFERED_OUTPUT`] plus what one read can add, because
///   `send_text` refuses with [`SendError::Backpressure`] and `wants_read`
///   turns false; at most [`MAX_UNACKED`] texts are kept for reporting.
/// - After an abrupt end (end of stream without `Goodbye`, silence, error,
///   expired linger) the pending output is discarded: nothing more is sent.
#[derive(Debug)]
pub struct ChatSession {
    config: ChatConfig,
    phase: Phase,
    /// Our name, for the `Hello`.
    local: UserName,
    /// The name and key the handshake proved, once it is done.
    secured: Option<(UserName, PublicKey)>,
    /// Whether our `Hello` is queued (the callee's waits for `accept`).
    hello_sent: bool,
    /// Whether we placed the call (only a callee may decline it).
    caller: bool,
    /// The name from the peer's `Hello`, once it arrived.
    peer: Option<UserName>,
    wire: Wire,
    events: VecDeque<ChatEvent>,
    /// Texts sent and not yet acknowledged, oldest first, with consecutive
    /// sequence numbers ending at `next_send - 1`.
    unacked: Unacked,
    /// The sequence number our next text gets.
    next_send: Seq,
    /// The highest sequence number received from the peer.
    received: Seq,
    /// The highest sequence number we acknowledged.
    acked: Seq,
    /// `Ping`s received whose `Pong`s are not queued yet.
    pongs_due: usize,
    /// Encoded size of the texts in `unacked` held back until the peer's
    /// `Hello` arrives (before it, every unacked text is held).
    held_bytes: usize,
    /// When the handshake must be done by.
    handshake_at: Option<Instant>,
    /// When to send the next `Ping` (open sessions only).
    ping_at: Option<Instant>,
    /// When the peer counts as silent (open sessions only).
    idle_at: Option<Instant>,
    /// When the delayed `Ack` is due, if one waits ([`ChatConfig::ack_delay`]).
    ack_at: Option<Instant>,
    /// The fatal error, returned by every `handle_input` once set.
    error: Option<ChatError>,
}

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Exchanging texts (or waiting for the peer's `Hello`).
    Open,
    /// We sent `Goodbye` and wait for the peer's, until `linger_until`.
    Closing { linger_until: Option<Instant> },
    /// `Closed` was emitted.
    Finished,
}

/// What to do with unwritten output when the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// Keep it for the driver to write (a close handshake's last frames).
    Keep,
    /// Drop it: the session ended abruptly and says nothing more.
    Discard,
}

impl ChatSession {
    /// A session as `setup` says, with our preamble (and a caller's first
    /// handshake message) queued. A caller's `Hello` is queued too, to go
    /// out encrypted once the handshake is done; a callee's waits for
    /// [`accept`](Self::accept).
    pub fn new(now: Instant, setup: ChatSetup, config: ChatConfig) -> Self {
        let local = setup.name.clone();
        let caller = matches!(setup.role, ChatRole::Caller { .. });
        let mut session = Self {
            config,
            phase: Phase::Open,
            local,
            secured: None,
            hello_sent: false,
            caller,
            peer: None,
            wire: Wire::new(setup),
            events: VecDeque::new(),
            unacked: Unacked::default(),
            next_send: Seq(1),
            received: Seq(0),
            acked: Seq(0),
            pongs_due: 0,
            held_bytes: 0,
            handshake_at: now.checked_add(config.handshake_timeout),
            ping_at: now.checked_add(config.ping_interval),
            idle_at: now.checked_add(config.idle_timeout),
            ack_at: None,
            error: None,
        };
        if caller {
            session.send_hello();
        }
        session
    }

    /// Once the handshake is done (the peer authenticated as usual), frames
    /// go in clear, without sealing: only for the end-to-end benchmark of
    /// what encryption costs, and only in builds with the `bench-cleartext`
    /// feature. Both ends must ask for it, else the chat fails.
    #[cfg(feature = "bench-cleartext")]
    pub fn bench_cleartext_after_handshake(&mut self) {
        self.wire.clear_after_handshake();
    }

    /// Two sessions, `a` and `b`, that talk without encryption: only for
    /// the benchmark that measures what encryption costs. Each has the
    /// other's name bound as if a handshake had run.
    #[cfg(feature = "bench-cleartext")]
    pub fn cleartext_pair(
        now: Instant,
        a: UserName,
        b: UserName,
        config: ChatConfig,
    ) -> (Self, Self) {
        let zero = PublicKey([0; crate::key::KEY_LEN]);
        let one = |me: &UserName, peer: &UserName| {
            let mut s = Self::new(
                now,
                ChatSetup {
                    name: me.clone(),
                    key: crate::key::PrivateKey::from_bytes([0; crate::key::KEY_LEN]),
                    role: ChatRole::Callee,
                    seed: [0; 32],
                },
                config,
            );
            s.wire = Wire::cleartext(me.clone());
            s.secured = Some((peer.clone(), zero));
            s.handshake_at = None;
            s.send_hello();
            s
        };
        (one(&a, &b), one(&b, &a))
    }

    /// The callee's application accepts the chat (it has checked the key
    /// of [`ChatEvent::Authenticated`], and its user said yes): our `Hello`
    /// goes out, and that is what tells the caller it was accepted. Does
    /// nothing for a caller, a second time, or once closing.
    pub fn accept(&mut self, now: Instant) {
        let _ = now;
        if self.phase == Phase::Open && !self.hello_sent {
            self.send_hello();
        }
    }

    /// The callee's application does not take the call: a `Decline` goes
    /// out in place of our `Hello`, and the session ends
    /// ([`CloseReason::LocalClose`]) once it is written. Does nothing for a
    /// caller, after [`accept`](Self::accept), or once closing. Before the
    /// handshake is done nothing can be sent: the session just ends, and the
    /// caller sees the connection close.
    pub fn decline(&mut self, now: Instant, reason: DeclineReason) {
        let _ = now;
        if self.phase == Phase::Open && !self.hello_sent && !self.caller {
            self.wire.push(&ChatMsg::Decline { reason });
            self.finish(CloseReason::LocalClose, Output::Keep);
        }
    }

    /// Ends the session at once, sending nothing more: for a call given up
    /// before it started (the user cancelled it). Texts not acknowledged are
    /// `Undelivered`; the peer sees the connection close.
    pub fn abort(&mut self, now: Instant) {
        let _ = now;
        self.finish(CloseReason::LocalClose, Output::Discard);
    }

    fn send_hello(&mut self) {
        self.hello_sent = true;
        self.wire
            .push(&ChatMsg::Hello { version: CHAT_VERSION, name: self.local.as_str().to_owned() });
    }

    /// Feeds bytes read from the stream, in chunks of any size.
    ///
    /// Only complete frames are decoded; the rest waits for more bytes. Each
    /// whole frame counts as a sign of life for the keepalive. After the
    /// session has finished normally, input is ignored.
    ///
    /// # Errors
    ///
    /// A [`ChatError`] if the peer broke the protocol. The session is then
    /// over (`Undelivered` events, then `Closed { reason: Error(..) }`) and
    /// every later call returns the same error.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), ChatError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        if bytes.is_empty() || self.phase == Phase::Finished {
            return Ok(());
        }
        self.wire.push_input(bytes);
        while self.phase != Phase::Finished {
            let step = match self.wire.next() {
                Ok(Some(Inbound::Secured { name, key })) => {
                    self.heard_from_peer(now);
                    self.handshake_at = None;
                    self.secured = Some((name.clone(), key));
                    self.events.push_back(ChatEvent::Authenticated { peer: name, key });
                    Ok(())
                }
                Ok(Some(Inbound::Msg(msg))) => {
                    self.heard_from_peer(now);
                    self.handle_msg(msg)
                }
                Ok(None) => break,
                Err(error) => Err(error),
            };
            if let Err(error) = step {
                self.error = Some(error.clone());
                self.finish(CloseReason::Error(error.clone()), Output::Discard);
                return Err(error);
            }
        }
        self.queue_replies(Some(now));
        Ok(())
    }

    /// The stream ended: the peer closed its write side or the connection
    /// broke.
    ///
    /// Ends an open session with [`CloseReason::PeerVanished`] and a closing
    /// one with [`CloseReason::LocalClose`].
    pub fn handle_eof(&mut self, now: Instant) {
        let _ = now;
        match self.phase {
            Phase::Open => self.finish(CloseReason::PeerVanished, Output::Discard),
            Phase::Closing { .. } => self.finish(CloseReason::LocalClose, Output::Keep),
            Phase::Finished => {}
        }
    }

    /// Bytes to write to the stream, oldest first.
    ///
    /// Messages queued since the last call are sealed here, together, as
    /// one frame (up to [`MAX_PLAINTEXT_LEN`](crate::MAX_PLAINTEXT_LEN) of
    /// plaintext): one encryption for all the texts and acks of a turn.
    pub fn pending_output(&mut self) -> &[u8] {
        self.wire.pending()
    }

    /// The first `n` bytes of [`pending_output`](Self::pending_output) were
    /// written. A larger `n` counts as all of them.
    pub fn consume(&mut self, n: usize) {
        self.wire.consume(n);
    }

    /// Whether [`pending_output`](Self::pending_output) is non-empty.
    pub fn wants_write(&self) -> bool {
        self.wire.has_output()
    }

    /// Whether the driver should read from the stream: false once the session
    /// is finished, and while more than [`MAX_BUFFERED_OUTPUT`] bytes wait to
    /// be written (backpressure: the peer is not reading what we send).
    pub fn wants_read(&self) -> bool {
        self.phase != Phase::Finished && self.wire.len() <= MAX_BUFFERED_OUTPUT
    }

    /// Queues a text and returns its sequence number, which a later
    /// `Delivered` or `Undelivered` event will carry.
    ///
    /// Allowed before the peer's `Hello` has arrived: the text is then held
    /// back and written right after that `Hello` is accepted.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] after [`close`](Self::close) or once the session
    /// is over, [`SendError::TooLong`] for more than [`MAX_TEXT_LEN`] bytes,
    /// [`SendError::Backpressure`] when [`MAX_UNACKED`] texts are
    /// unacknowledged, when with this one more than [`MAX_UNACKED_BYTES`] of
    /// text would be, or when the output buffer has no room for it.
    pub fn send_text(&mut self, now: Instant, text: &str) -> Result<Seq, SendError> {
        let _ = now;
        match self.phase {
            Phase::Open => {}
            Phase::Closing { .. } | Phase::Finished => return Err(SendError::Closed),
        }
        if text.len() > MAX_TEXT_LEN {
            return Err(SendError::TooLong);
        }
        if self.unacked.len() >= MAX_UNACKED
            || self.unacked.text_bytes() + text.len() > MAX_UNACKED_BYTES
        {
            return Err(SendError::Backpressure);
        }
        let seq = self.next_send;
        // Encoded from the borrowed text straight into the frame: the only
        // copy the session keeps is the one for `Undelivered`.
        let msg = TextRef::Text { seq, text };
        let room = MAX_BUFFERED_OUTPUT - CONTROL_HEADROOM;
        let len = Wire::frame_len(&msg);
        if self.wire.len() + self.held_bytes + len > room {
            return Err(SendError::Backpressure);
        }
        if self.peer.is_some() {
            // A waiting `Ack` rides with the text.
            if self.received > self.acked {
                self.queue_ack();
            }
            self.wire.push(&msg);
        } else {
            self.held_bytes += len;
        }
        self.unacked.push(seq, text);
        self.next_send = next(seq);
        Ok(seq)
    }

    /// Ends the session politely (the user left the chat): queues `Goodbye`
    /// and waits up to [`ChatConfig::close_linger`] for the peer's
    /// acknowledgements and `Goodbye`. Does nothing if already closing or
    /// finished.
    ///
    /// A callee that has not [accepted](Self::accept) ends at once
    /// ([`CloseReason::LocalClose`]), sending nothing more.
    ///
    /// Before the peer's `Hello` has arrived nothing but our `Hello` may be
    /// sent: the `Goodbye` is then held back with the texts and written
    /// after them once that `Hello` arrives (within the linger).
    pub fn close(&mut self, now: Instant) {
        match self.phase {
            // A callee that never accepted has nothing to deliver and may
            // not send anything before its `Hello`: it just ends.
            Phase::Open if !self.hello_sent => {
                self.finish(CloseReason::LocalClose, Output::Discard);
            }
            Phase::Open => {
                self.queue_replies(None);
                if self.peer.is_some() {
                    self.wire.push(&ChatMsg::Goodbye);
                }
                self.phase =
                    Phase::Closing { linger_until: now.checked_add(self.config.close_linger) };
                self.ping_at = None;
                self.idle_at = None;
            }
            Phase::Closing { .. } | Phase::Finished => {}
        }
    }

    /// The next thing that happened, oldest first.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ChatEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next; `None`
    /// once finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Open => [self.handshake_at, self.ping_at, self.idle_at, self.ack_at]
                .into_iter()
                .flatten()
                .min(),
            Phase::Closing { linger_until } => linger_until,
            Phase::Finished => None,
        }
    }

    /// Fires the timers due at `now`: sends a `Ping`, declares the peer
    /// silent, or gives up lingering after [`close`](Self::close). Calling it
    /// early or late is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Open => {
                if self.ack_at.is_some_and(|t| t <= now) {
                    self.queue_ack();
                }
                if self.handshake_at.is_some_and(|t| t <= now) {
                    self.finish(CloseReason::HandshakeTimeout, Output::Discard);
                } else if self.idle_at.is_some_and(|t| t <= now) {
                    self.finish(CloseReason::PeerSilent, Output::Discard);
                } else if self.ping_at.is_some_and(|t| t <= now) {
                    if self.peer.is_some() && self.hello_sent {
                        self.wire.push(&ChatMsg::Ping);
                    }
                    self.ping_at = now.checked_add(self.config.ping_interval);
                }
            }
            Phase::Closing { linger_until } => {
                if linger_until.is_some_and(|t| t <= now) {
                    self.finish(CloseReason::LocalClose, Output::Discard);
                }
            }
            Phase::Finished => {}
        }
    }

    /// The name from the peer's `Hello`, once it has arrived.
    pub fn peer_name(&self) -> Option<&UserName> {
        self.peer.as_ref()
    }

    /// The key the peer proved in the handshake, once it is done.
    pub fn peer_key(&self) -> Option<PublicKey> {
        self.secured.as_ref().map(|(_, key)| *key)
    }

    /// Whether the session is over (the `Closed` event was emitted). The
    /// driver may drop the stream once the pending output is written, or at
    /// once if it cannot be written.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Any frame from the peer restarts the keepalive timers.
    fn heard_from_peer(&mut self, now: Instant) {
        if self.phase == Phase::Open {
            self.ping_at = now.checked_add(self.config.ping_interval);
            self.idle_at = now.checked_add(self.config.idle_timeout);
        }
    }

    /// Queues the `Pong`s owed to the peer and the coalesced `Ack`: at
    /// once, or, after an input at `now` with a [`ChatConfig::ack_delay`],
    /// when the delay runs out (unless [`ACK_EVERY`] texts wait for it, or a
    /// text of ours takes it along first).
    fn queue_replies(&mut self, now: Option<Instant>) {
        match self.phase {
            Phase::Open => {}
            Phase::Closing { .. } | Phase::Finished => return,
        }
        if self.received > self.acked {
            let waiting = self.received.0 - self.acked.0;
            let due = now
                .filter(|_| !self.config.ack_delay.is_zero() && waiting < ACK_EVERY)
                .and_then(|now| now.checked_add(self.config.ack_delay));
            match due {
                Some(due) => {
                    self.ack_at.get_or_insert(due);
                }
                None => self.queue_ack(),
            }
        }
        for _ in 0..self.pongs_due {
            self.wire.push(&ChatMsg::Pong);
        }
        self.pongs_due = 0;
    }

    /// Queues the `Ack` of every text received.
    fn queue_ack(&mut self) {
        self.wire.push(&ChatMsg::Ack { upto: self.received });
        self.acked = self.received;
        self.ack_at = None;
    }

    /// Ends the session: every unacknowledged text is `Undelivered`, then
    /// `Closed`.
    fn finish(&mut self, reason: CloseReason, output: Output) {
        if self.phase == Phase::Finished {
            return;
        }
        for (seq, text) in self.unacked.take_all() {
            self.events.push_back(ChatEvent::Undelivered { seq, text });
        }
        self.events.push_back(ChatEvent::Closed { reason });
        self.phase = Phase::Finished;
        self.ping_at = None;
        self.idle_at = None;
        self.pongs_due = 0;
        self.held_bytes = 0;
        self.handshake_at = None;
        self.wire.clear_input();
        self.wire.forget_keys();
        match output {
            Output::Keep => {}
            Output::Discard => self.wire.clear_output(),
        }
    }
}

/// The sequence number after `seq`. Counts reach `u64::MAX` only after that
/// many messages, so saturating is as good as never.
fn next(seq: Seq) -> Seq {
    Seq(seq.0.saturating_add(1))
}

#[cfg(test)]
mod tests;

/// The unit tests' time origin; every other instant is derived from it.
#[cfg(test)]
fn test_origin() -> Instant {
    Instant::now()
}
