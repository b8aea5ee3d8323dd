//! The node's chats: at most one *active* chat (the one the user types into),
//! the incoming connections still proving who they are
//! ([`Admission`](super::incoming::Admission)), and at most one *held*
//! incoming chat (its caller authenticated and confirmed by the registry,
//! waiting for the user to accept it; our own `Hello` is held back until
//! then, so the caller knows it has not been accepted). A caller confirmed
//! while another is held is closed at once, which its side reports as the
//! peer being busy. Events of the held chat are kept (at most
//! [`MAX_HELD_EVENTS`]) and reported on accepting, even if the peer has left
//! meanwhile; a held chat that goes away without a text is reported as
//! withdrawn.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Registry, Token};
use p2pchat_core::{
    ChatConfig, ChatEvent, ChatRole, ChatSession, ChatSetup, CloseReason, Entry, PrivateKey,
    PublicKey, SendError, Seq, UserName,
};

mod calls;

use super::NodeEvent;
use super::incoming::{Admission, Verdict};
use crate::stream::{StreamConn, StreamCore, StreamState};

/// How long a TCP connect to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most events of a held (not yet accepted) chat kept for when the user
/// accepts it; past that the held stream is not read, so a peer that types
/// ahead is slowed down by TCP, not buffered here.
pub const MAX_HELD_EVENTS: usize = 256;

/// How long the acknowledgement of a text waits for a text of ours to ride
/// with ([`ChatConfig::ack_delay`]): in a conversation the answer usually
/// comes sooner, and then one frame and one wakeup of the peer do for both.
/// A burst of texts is acknowledged at once
/// ([`ACK_EVERY`](p2pchat_core::ACK_EVERY) at a time).
pub const ACK_DELAY: Duration = Duration::from_millis(5);

/// Chat streams get tokens from here on, one new token per stream.
const FIRST_STREAM: usize = 16;

/// After [`Chats::finish`], how long the active chat may go without any
/// acknowledgement advancing before it is closed anyway (and its
/// unacknowledged texts reported). Longer than a TCP retransmission stall
/// under heavy loss (retransmissions back off 0.2, 0.4, 0.8, … s), and
/// twice the session's idle timeout, so that while the peer is alive
/// (the session's keepalive ends a silent chat after 30 s) and acks keep
/// coming, the wait goes on.
pub const FINISH_STALL_LIMIT: Duration = Duration::from_secs(60);

/// Where a call goes: a TCP connect to an address, or a connection made
/// already (punched, or through the relay).
pub(super) enum Dial {
    /// Connect to this address.
    Addr(SocketAddr),
    /// Use this connection, whose peer already sent these bytes (read with
    /// the relay's answer; empty for a direct connection).
    Conn(StreamConn, Vec<u8>),
    /// No connection could be made, for this reason.
    Failed(String),
}

/// A chat stream and its session.
pub(super) struct Chat {
    conn: Option<StreamConn>,
    pub(super) session: ChatSession,
    /// Texts refused with `Backpressure` (and those given after them), sent
    /// in order as soon as there is room; no more input is read meanwhile,
    /// so this holds at most what one input line made (the app splits a
    /// line of at most the editor's limit into messages).
    blocked: VecDeque<String>,
    /// How many texts at the front of `blocked` were reported `Sent`
    /// already, by the call they were typed into (a crossed call's).
    moved: usize,
    /// Until when the connect may take.
    connect_deadline: Option<Instant>,
    /// Whom we called, and the key we checked for them before calling
    /// (`None` for a chat we accepted).
    callee: Option<(UserName, PublicKey)>,
    /// The highest sequence number `send_text` returned.
    sent: u64,
    /// The highest sequence number the peer acknowledged.
    acked: u64,
    /// Set by [`Chats::finish`]: close once every text is acknowledged, or
    /// at this instant (moved on by every acknowledgement).
    finish_by: Option<Instant>,
}

impl Chat {
    fn new(
        conn: Option<StreamConn>,
        session: ChatSession,
        connect_deadline: Option<Instant>,
    ) -> Self {
        Chat {
            conn,
            session,
            blocked: VecDeque::new(),
            moved: 0,
            connect_deadline,
            callee: None,
            sent: 0,
            acked: 0,
            finish_by: None,
        }
    }

    /// Hands the session the texts waiting for room, in order, until it
    /// pushes back.
    fn send_blocked(&mut self, now: Instant, out: &mut VecDeque<NodeEvent>) {
        while let Some(text) = self.blocked.pop_front() {
            let moved = self.moved > 0;
            match self.session.send_text(now, &text) {
                Ok(seq) => {
                    self.sent(seq);
                    self.moved = self.moved.saturating_sub(1);
                    if !moved {
                        out.push_back(NodeEvent::Sent { text });
                    }
                }
                Err(SendError::Backpressure) => {
                    self.blocked.push_front(text);
                    return;
                }
                Err(reason) => {
                    self.moved = self.moved.saturating_sub(1);
                    out.push_back(NodeEvent::SendFailed { text, reason });
                }
            }
        }
    }

    /// Notes a text the session took.
    fn sent(&mut self, seq: Seq) {
        self.sent = self.sent.max(seq.0);
    }

    /// Notes what the session reported; while finishing, an
    /// acknowledgement is progress.
    fn saw(&mut self, event: &ChatEvent, now: Instant) {
        if let ChatEvent::Delivered { seq } = event {
            self.acked = self.acked.max(seq.0);
            if self.finish_by.is_some() {
                self.finish_by = Some(now.checked_add(FINISH_STALL_LIMIT).unwrap_or(now));
            }
        }
    }

    /// While finishing: closes the session once nothing is left to
    /// acknowledge (and no text waits for room), or when the wait stalled.
    fn finish_if_done(&mut self, now: Instant) {
        let Some(by) = self.finish_by else { return };
        let done = self.blocked.is_empty() && self.acked >= self.sent;
        if done || by <= now || self.session.is_finished() {
            self.finish_by = None;
            self.session.close(now);
        }
    }

    /// Closes the stream, if it is still open.
    pub(super) fn close_conn(&mut self, registry: &Registry) {
        if let Some(conn) = self.conn.take() {
            conn.close(registry);
        }
    }
}

/// An incoming chat waiting for the user.
struct Held {
    chat: Chat,
    peer: UserName,
    /// The key the caller proved (and the registry lists).
    key: PublicKey,
    events: VecDeque<(ChatEvent, SystemTime)>,
}

/// A session that is read only while its holder has room for its events.
/// (The session itself holds our `Hello` until the user accepts, and that is
/// the acceptance: until then the caller's session is not `Connected`, so it
/// sends no texts and tells its user it is waiting.)
struct Gated<'a> {
    session: &'a mut ChatSession,
    open: bool,
    /// Whether any bytes arrived.
    heard: bool,
}

impl StreamCore for Gated<'_> {
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.heard |= !bytes.is_empty();
        StreamCore::handle_input(self.session, now, bytes);
    }
    fn handle_eof(&mut self, now: Instant) {
        self.session.handle_eof(now);
    }
    fn pending_output(&mut self) -> &[u8] {
        self.session.pending_output()
    }
    fn consume(&mut self, n: usize) {
        self.session.consume(n);
    }
    fn wants_read(&self) -> bool {
        self.open && self.session.wants_read()
    }
    fn is_finished(&self) -> bool {
        self.session.is_finished()
    }
}

/// Moves bytes on a chat that is not the active one; a stream that ended or
/// failed is closed and its session told. Returns whether any bytes arrived.
pub(super) fn pump_gated(chat: &mut Chat, open: bool, now: Instant, registry: &Registry) -> bool {
    let Some(conn) = chat.conn.as_mut() else { return false };
    let mut gated = Gated { session: &mut chat.session, open, heard: false };
    let state = conn.pump(&mut gated, now);
    let heard = gated.heard;
    match state {
        Ok(StreamState::Connecting | StreamState::Open) => {}
        Ok(StreamState::Done) | Err(_) => {
            chat.close_conn(registry);
            chat.session.handle_eof(now);
        }
    }
    heard
}

/// When [`Chats::pump`] writes the active chat's answers (acknowledgements,
/// pongs) to what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// In the same pump.
    Now,
    /// In the next pump: the texts read are shown first.
    Later,
}

/// The active chat, the incoming ones, the held one, and the next stream
/// token.
pub(super) struct Chats {
    active: Option<Chat>,
    incoming: Admission,
    held: Option<Held>,
    /// Chats that are over but for a last word to write (a `Decline`).
    closing: Vec<Chat>,
    /// Our call, declined as crossed, waiting for the other's.
    crossed: Option<calls::Crossed>,
    next_token: usize,
    /// Our long-term key, for every handshake.
    identity: PrivateKey,
    /// The active chat's events of one [`Chats::collect`], empty between
    /// calls (kept for its capacity).
    events: Vec<ChatEvent>,
    /// Chats go in clear after the handshake (benchmark builds only).
    #[cfg(feature = "bench-cleartext")]
    pub(super) cleartext: bool,
}

impl Chats {
    pub(super) fn new(identity: PrivateKey) -> Self {
        Self {
            active: None,
            incoming: Admission::default(),
            held: None,
            closing: Vec::new(),
            crossed: None,
            next_token: FIRST_STREAM,
            identity,
            events: Vec::new(),
            #[cfg(feature = "bench-cleartext")]
            cleartext: false,
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Chat> {
        self.active
            .iter()
            .chain(self.held.iter().map(|h| &h.chat))
            .chain(self.incoming.chats())
            .chain(&self.closing)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Chat> {
        self.active
            .iter_mut()
            .chain(self.held.iter_mut().map(|h| &mut h.chat))
            .chain(self.incoming.chats_mut())
            .chain(&mut self.closing)
    }

    /// Names whose registry entry must be fetched to admit a caller.
    pub(super) fn take_lookups(&mut self) -> Vec<UserName> {
        self.incoming.take_lookups()
    }

    /// The registry's answer for `name`: admits (or drops) the callers that
    /// waited for it. Returns whether any did (the answer was ours, not the
    /// user's).
    pub(super) fn verify(
        &mut self,
        now: Instant,
        name: &UserName,
        entry: Option<&Entry>,
        registry: &Registry,
        out: &mut VecDeque<NodeEvent>,
    ) -> bool {
        let (waited, verdicts) = self.incoming.verify(name, entry, registry);
        for Verdict::Verified { incoming, peer, key } in verdicts {
            self.admit_verified(now, *incoming, peer, key, out);
        }
        waited
    }

    /// Records a readiness event for whichever stream it is for.
    pub(super) fn on_event(&mut self, event: &Event) {
        let token = event.token();
        for chat in self.iter_mut() {
            if let Some(conn) = chat.conn.as_mut().filter(|c| c.token() == token) {
                conn.on_event(event);
            }
        }
    }

    /// The earliest deadline of the sessions and of the active connect.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.iter()
            .flat_map(|c| [c.session.poll_timeout(), c.connect_deadline, c.finish_by])
            .chain([self.incoming.deadline(), self.crossed.as_ref().map(|c| c.deadline())])
            .flatten()
            .min()
    }

    /// Whether every chat stream was read until it was empty (what arrives
    /// next raises a readiness event of its own).
    pub(super) fn drained(&self) -> bool {
        self.iter().all(|c| !c.conn.as_ref().is_some_and(StreamConn::may_have_input))
    }

    /// Whether a text of the active chat waits for room: no user input is
    /// taken meanwhile.
    pub(super) fn blocked(&self) -> bool {
        self.active.as_ref().is_some_and(|c| !c.blocked.is_empty())
    }

    /// Fires the sessions' due timers and the active chat's connect timeout.
    pub(super) fn fire_timers(
        &mut self,
        now: Instant,
        registry: &Registry,
        out: &mut VecDeque<NodeEvent>,
    ) {
        for chat in self.iter_mut() {
            if chat.session.poll_timeout().is_some_and(|t| t <= now) {
                chat.session.handle_timeout(now);
            }
            chat.finish_if_done(now);
        }
        self.expire_crossed(now, out);
        let connect_expired =
            |c: &Chat| c.conn.is_some() && c.connect_deadline.is_some_and(|t| t <= now);
        if self.active.as_ref().is_some_and(connect_expired) {
            out.push_back(NodeEvent::ConnectFailed { reason: "timed out".to_owned() });
            if let Some(chat) = self.active.as_mut() {
                drop_conn(registry, chat, now);
            }
        }
    }

    /// Moves bytes on both streams, and retries a blocked text.
    pub(super) fn pump(
        &mut self,
        now: Instant,
        registry: &Registry,
        out: &mut VecDeque<NodeEvent>,
        answer: Answer,
    ) {
        if let Some(chat) = self.active.as_mut() {
            if let Some(conn) = chat.conn.as_mut() {
                let state = match answer {
                    Answer::Now => conn.pump(&mut chat.session, now),
                    Answer::Later => conn.pump_answer_later(&mut chat.session, now),
                };
                match state {
                    Ok(StreamState::Connecting) => {}
                    Ok(StreamState::Open) => chat.connect_deadline = None,
                    Ok(StreamState::Done) => {
                        if let Some(conn) = chat.conn.take() {
                            conn.close(registry);
                        }
                    }
                    Err(e) => {
                        out.push_back(NodeEvent::ConnectFailed { reason: e.to_string() });
                        drop_conn(registry, chat, now);
                    }
                }
            }
            chat.send_blocked(now, out);
        }
        if let Some(held) = self.held.as_mut() {
            let open = held.events.len() < MAX_HELD_EVENTS;
            let _ = pump_gated(&mut held.chat, open, now, registry);
        }
        self.incoming.pump(now, registry);
        self.pump_closing(now, registry);
    }

    /// Takes the sessions' events: the active chat's are reported, the held
    /// chat's kept for its acceptance (its `Connected` is reported as a chat
    /// request). `at` is the wall-clock time they are stamped with. Drops
    /// the chats that are over.
    pub(super) fn collect(
        &mut self,
        now: Instant,
        at: SystemTime,
        registry: &Registry,
        out: &mut VecDeque<NodeEvent>,
    ) {
        self.incoming.collect(now, at, registry);
        // The active chat's events go through a buffer kept between calls
        // (a burst is hundreds of them), unless a crossed call takes them.
        let mut events = std::mem::take(&mut self.events);
        if let Some(chat) = self.active.as_mut() {
            while let Some(event) = chat.session.poll_event() {
                chat.saw(&event, now);
                push_coalesced(&mut events, event);
            }
        }
        if !events.is_empty() {
            if let Some(mut events) = self.crossed_decline(now, events, out) {
                out.extend(events.drain(..).map(|event| NodeEvent::Chat { event, at }));
                self.events = events;
            }
        } else {
            self.events = events;
        }
        if let Some(chat) = self.active.as_mut() {
            chat.finish_if_done(now);
            if chat.session.is_finished() && chat.conn.is_none() {
                self.active = None;
            } else if chat.session.is_finished() && chat.session.pending_output().is_empty() {
                if let Some(conn) = chat.conn.take() {
                    conn.close(registry);
                }
                self.active = None;
            }
        }
        let mut gone = false;
        if let Some(held) = self.held.as_mut() {
            while held.events.len() < MAX_HELD_EVENTS {
                let Some(event) = held.chat.session.poll_event() else {
                    break;
                };
                match event {
                    // Reported as the request itself.
                    ChatEvent::Connected { .. } => {}
                    ChatEvent::Closed { reason } => {
                        tracing::debug!(?reason, "held chat ended before it was accepted");
                        let texts = held
                            .events
                            .iter()
                            .any(|(e, _)| matches!(e, ChatEvent::Received { .. }));
                        if texts {
                            // The peer said something and left: keep it all
                            // for the user to see on accepting, so that no
                            // received text goes unshown.
                            held.events.push_back((ChatEvent::Closed { reason }, at));
                        } else {
                            out.push_back(NodeEvent::ChatRequestGone { peer: held.peer.clone() });
                            gone = true;
                        }
                        break;
                    }
                    other => held.events.push_back((other, at)),
                }
            }
        }
        if gone {
            if let Some(mut held) = self.held.take() {
                if let Some(conn) = held.chat.conn.take() {
                    conn.close(registry);
                }
            }
        }
    }

    /// Starts a chat as `me` with `peer`, whose chat address is `addr` (or
    /// on a connection made already) and whose key the registry lists as
    /// `peer_key`; it replaces the active chat.
    #[allow(clippy::too_many_arguments)] // The node's parts, passed down.
    pub(super) fn connect(
        &mut self,
        now: Instant,
        me: UserName,
        peer: UserName,
        peer_key: PublicKey,
        dial: Dial,
        registry: &Registry,
        out: &mut VecDeque<NodeEvent>,
    ) {
        if self.take_held_from(now, &peer, &peer_key, out) {
            return;
        }
        let role = ChatRole::Caller { callee: peer.clone(), callee_key: peer_key };
        let mut session = match self.session(now, me, role) {
            Ok(session) => session,
            Err(e) => {
                // The call ends before it starts: the user hears of it as of
                // any failed connect.
                out.push_back(NodeEvent::ConnectFailed { reason: e.to_string() });
                let reason = CloseReason::PeerVanished;
                out.push_back(NodeEvent::Chat {
                    event: ChatEvent::Closed { reason },
                    at: SystemTime::now(),
                });
                return;
            }
        };
        let token = self.token();
        let connected = match dial {
            Dial::Addr(addr) => StreamConn::connect(addr, registry, token),
            Dial::Conn(conn, early) => {
                if !early.is_empty() {
                    StreamCore::handle_input(&mut session, now, &early);
                }
                Ok(conn)
            }
            Dial::Failed(why) => Err(io::Error::other(why)),
        };
        let conn = match connected {
            Ok(conn) => Some(conn),
            Err(e) => {
                out.push_back(NodeEvent::ConnectFailed { reason: e.to_string() });
                session.handle_eof(now);
                None
            }
        };
        if let Some(old) = self.active.take() {
            if let Some(conn) = old.conn {
                conn.close(registry);
            }
        }
        let connect_deadline = conn.as_ref().and_then(|_| now.checked_add(CONNECT_TIMEOUT));
        let mut chat = Chat::new(conn, session, connect_deadline);
        chat.callee = Some((peer, peer_key));
        self.active = Some(chat);
    }

    /// A session of ours, with fresh randomness for its handshake.
    /// `Err` when the OS gives no randomness: without it the ephemeral key
    /// would be predictable, and no chat is better than a weak one.
    fn session(&self, now: Instant, me: UserName, role: ChatRole) -> io::Result<ChatSession> {
        let mut seed = [0; 32];
        getrandom::fill(&mut seed).map_err(|e| {
            tracing::error!(error = %e, "no randomness for a chat handshake");
            io::Error::other(format!("no randomness for the handshake: {e}"))
        })?;
        let setup = ChatSetup { name: me, key: self.identity.clone(), role, seed };
        let config = ChatConfig { ack_delay: ACK_DELAY, ..ChatConfig::default() };
        #[allow(unused_mut)]
        let mut session = ChatSession::new(now, setup, config);
        #[cfg(feature = "bench-cleartext")]
        if self.cleartext {
            session.bench_cleartext_after_handshake();
        }
        Ok(session)
    }

    /// Closes the held chat request without a word (its caller hears that
    /// it was not taken).
    pub(super) fn reject_held(&mut self, registry: &Registry) {
        if let Some(mut held) = self.held.take() {
            held.chat.close_conn(registry);
        }
    }

    /// Makes the held chat the active one: its `Hello` goes out, and the
    /// events kept meanwhile are reported.
    pub(super) fn accept_held(&mut self, now: Instant, out: &mut VecDeque<NodeEvent>) {
        let Some(held) = self.held.take() else {
            // Withdrawn just now: the user hears the chat is over.
            out.push_back(NodeEvent::Chat {
                event: ChatEvent::Closed { reason: CloseReason::PeerVanished },
                at: SystemTime::now(),
            });
            return;
        };
        for (event, at) in held.events {
            out.push_back(NodeEvent::Chat { event, at });
        }
        let mut chat = held.chat;
        chat.session.accept(now);
        self.active = Some(chat);
    }

    /// Admits a connection our listener accepted, to prove who it is (only
    /// once we are logged in, `me`: before that it is closed).
    pub(super) fn take_incoming(
        &mut self,
        now: Instant,
        stream: TcpStream,
        from: SocketAddr,
        me: Option<&UserName>,
        registry: &Registry,
    ) {
        let Some(me) = me.cloned() else {
            // Not logged in yet: close at once; the other side reports
            // that we did not take it.
            tracing::debug!(%from, "refused a chat connection before login");
            return;
        };
        let token = self.token();
        match StreamConn::accepted(stream, registry, token) {
            Ok(conn) => {
                tracing::debug!(%from, "admitting an incoming connection");
                self.admit(now, conn, me, &[], registry);
            }
            Err(e) => tracing::debug!(error = %e, "registering a chat connection failed"),
        }
    }

    /// Admits a connection on which we are the callee (accepted, punched
    /// or relayed), after feeding its session `early` bytes read already.
    pub(super) fn admit(
        &mut self,
        now: Instant,
        conn: StreamConn,
        me: UserName,
        early: &[u8],
        registry: &Registry,
    ) {
        let Ok(mut session) = self.session(now, me, ChatRole::Callee) else {
            conn.close(registry);
            return;
        };
        let heard = !early.is_empty();
        if heard {
            StreamCore::handle_input(&mut session, now, early);
        }
        let mut chat = Chat::new(Some(conn), session, None);
        // Read what has arrived before admitting: a stranger's reset is
        // seen here and costs no place, and a caller who has spoken is not
        // the first to be evicted.
        let heard = pump_gated(&mut chat, true, now, registry) || heard;
        if chat.conn.is_none() {
            tracing::debug!("an incoming connection ended before admission");
            return;
        }
        if let Some(mut dropped) = self.incoming.admit(chat, heard) {
            dropped.close_conn(registry);
        }
    }

    /// Queues a text in the active chat; a text refused for backpressure
    /// waits there and is retried on every pump.
    pub(super) fn send_text(&mut self, now: Instant, text: String, out: &mut VecDeque<NodeEvent>) {
        match self.active.as_mut() {
            Some(chat) => {
                chat.blocked.push_back(text);
                chat.send_blocked(now, out);
            }
            None => out.push_back(NodeEvent::SendFailed { text, reason: SendError::Closed }),
        }
    }

    /// Ends the active chat once the peer has acknowledged every text we
    /// sent (a blocked text is sent first), or once
    /// [`FINISH_STALL_LIMIT`] passes without an acknowledgement advancing;
    /// then as [`Chats::close`]. Meanwhile the chat goes on as before: the
    /// peer's texts are shown and acknowledged, and the session's
    /// keepalive ends it if the peer goes silent.
    pub(super) fn finish(&mut self, now: Instant) {
        if let Some(chat) = self.active.as_mut() {
            if chat.finish_by.is_none() {
                chat.finish_by = Some(now.checked_add(FINISH_STALL_LIMIT).unwrap_or(now));
            }
            chat.finish_if_done(now);
        }
    }

    /// Ends the active chat politely; a blocked text is not sent.
    pub(super) fn close(&mut self, now: Instant, out: &mut VecDeque<NodeEvent>) {
        if let Some(chat) = self.active.as_mut() {
            chat.moved = 0;
            for text in chat.blocked.drain(..) {
                out.push_back(NodeEvent::SendFailed { text, reason: SendError::Closed });
            }
            chat.session.close(now);
        }
    }

    fn token(&mut self) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        t
    }
}

/// Gives up on a chat's stream: the session hears of it as an end of stream.
fn drop_conn(registry: &Registry, chat: &mut Chat, now: Instant) {
    if let Some(conn) = chat.conn.take() {
        conn.close(registry);
    }
    chat.connect_deadline = None;
    chat.session.handle_eof(now);
}

/// Queues `event`, except that a run of deliveries is reported once, by its
/// last: texts are acknowledged in order, so it stands for those before it
/// (an acknowledgement of a burst is one event, not one per text).
fn push_coalesced(events: &mut Vec<ChatEvent>, event: ChatEvent) {
    if let (ChatEvent::Delivered { .. }, Some(ChatEvent::Delivered { .. })) =
        (&event, events.last())
    {
        events.pop();
    }
    events.push(event);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_deliveries_are_reported_by_their_last() {
        let delivered = |n| ChatEvent::Delivered { seq: Seq(n) };
        let received = |n| ChatEvent::Received { seq: Seq(n), text: format!("t{n}") };
        let mut events = Vec::new();
        for e in [delivered(1), delivered(2), received(1), delivered(3), delivered(4), delivered(5)]
        {
            push_coalesced(&mut events, e);
        }
        assert_eq!(events, vec![delivered(2), received(1), delivered(5)]);
    }
}
