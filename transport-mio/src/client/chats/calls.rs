//! What happens to a call besides being held and accepted: declined by the
//! user, declined for them (busy, or crossed with their own call to the
//! same person), or given up by the caller; and the chats that only have a
//! last word to write before they close.
//!
//! **Crossed calls.** When two users call each other, each side sees its
//! own call and the other's. Exactly one goes on: the call of the user
//! whose public key sorts first. The other side declines the losing call
//! (`Crossed`) and takes the winning one as if its user had accepted it;
//! texts typed into the losing call go into the winning one. Each side
//! reaches the same answer whatever arrives first: a call declined as
//! crossed waits (up to [`VERIFY_TIMEOUT`]) for the other's call to be
//! proved, and calling someone whose request is held takes that request.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use mio::Registry;
use p2pchat_core::{ChatEvent, CloseReason, DeclineReason, PublicKey, SendError, Seq, UserName};

use super::super::NodeEvent;
use super::super::incoming::{Incoming, VERIFY_TIMEOUT};
use super::{Chat, Chats, Held, pump_gated};

/// Our call, declined as crossed, waiting for the other's call to arrive.
pub(in crate::client) struct Crossed {
    peer: UserName,
    /// The key we checked for `peer` before calling: only a call proving
    /// it is taken in our call's place.
    key: PublicKey,
    /// When to give up waiting and report the call declined.
    until: Instant,
    /// Texts typed into our call, for the other one.
    moved: Moved,
}

impl Crossed {
    pub(in crate::client) fn deadline(&self) -> Instant {
        self.until
    }
}

/// Texts typed into a call that was dropped for a crossed one: those it
/// had taken (and reported `Sent`), then those waiting for room.
#[derive(Default)]
pub(in crate::client) struct Moved {
    sent: Vec<(Seq, String)>,
    blocked: VecDeque<String>,
}

impl Chats {
    /// A caller proved its key: hold it for the user, or answer for them.
    pub(in crate::client) fn admit_verified(
        &mut self,
        now: Instant,
        mut incoming: Incoming,
        peer: UserName,
        key: PublicKey,
        out: &mut VecDeque<NodeEvent>,
    ) {
        // A crossed call stands for ours only with the key ours was checked
        // against; any other goes through the user's own key check.
        if self.crossed.as_ref().is_some_and(|c| c.peer.key() == peer.key() && c.key == key) {
            let texts = self.crossed.take().map(|c| c.moved).unwrap_or_default();
            tracing::debug!(%peer, "crossed calls: theirs arrived, and goes on");
            self.take_call(now, incoming.chat, incoming.events, texts, out);
            return;
        }
        if self.calling(&peer, &key) {
            // Both called each other. Keep exactly one chat: the call of the
            // user whose key sorts first. Both sides decide the same.
            if self.identity.public_key() < key {
                tracing::debug!(%peer, "crossed calls: ours goes on");
                self.decline(now, incoming.chat, DeclineReason::Crossed);
            } else {
                tracing::debug!(%peer, "crossed calls: theirs goes on");
                self.take_crossed(now, incoming, out);
            }
            return;
        }
        if self.held.is_some() {
            // One request already waits for the user: this one is told the
            // user is busy, and the user hears of it.
            tracing::info!(%peer, "a second caller while one waits: busy");
            self.decline(now, incoming.chat, DeclineReason::Busy);
            out.push_back(NodeEvent::MissedCall { peer, key });
            return;
        }
        // The caller's Hello (Connected) is the request itself.
        incoming.events.retain(|(e, _)| !matches!(e, ChatEvent::Connected { .. }));
        out.push_back(NodeEvent::ChatRequest { peer: peer.clone(), key });
        self.held = Some(Held { chat: incoming.chat, peer, key, events: incoming.events });
    }

    /// Whether our active chat is a call to `peer`, checked against `key`,
    /// that has not started (it may have just ended, declined as crossed,
    /// with its events not yet collected).
    fn calling(&self, peer: &UserName, key: &PublicKey) -> bool {
        self.active.as_ref().is_some_and(|chat| {
            chat.callee.as_ref().is_some_and(|(callee, k)| callee.key() == peer.key() && k == key)
                && chat.session.peer_name().is_none()
        })
    }

    /// Their call goes on instead of ours: ours is dropped without a word
    /// to the user (its events are not reported), theirs accepted at once
    /// and made the active chat, which the user sees start.
    fn take_crossed(&mut self, now: Instant, incoming: Incoming, out: &mut VecDeque<NodeEvent>) {
        let mut moved = Moved::default();
        if let Some(mut ours) = self.active.take() {
            ours.session.abort(now);
            moved.sent = undelivered(&mut ours);
            moved.blocked = std::mem::take(&mut ours.blocked);
            self.closing.push(ours);
        }
        self.take_call(now, incoming.chat, incoming.events, moved, out);
    }

    /// Makes `chat`, a call to us, the active chat, accepted: its events so
    /// far are reported, and `texts` sent in it.
    fn take_call(
        &mut self,
        now: Instant,
        mut chat: Chat,
        events: VecDeque<(ChatEvent, SystemTime)>,
        texts: Moved,
        out: &mut VecDeque<NodeEvent>,
    ) {
        chat.session.accept(now);
        for (event, at) in events {
            out.push_back(NodeEvent::Chat { event, at });
        }
        chat.moved = texts.sent.len();
        chat.blocked = texts.sent.into_iter().map(|(_, t)| t).chain(texts.blocked).collect();
        chat.send_blocked(now, out);
        self.active = Some(chat);
    }

    /// Calling `peer` (checked against `key`), whose own call is held with
    /// that key: that call is taken instead, and the user sees the chat
    /// start. Returns whether it was.
    pub(in crate::client) fn take_held_from(
        &mut self,
        now: Instant,
        peer: &UserName,
        key: &PublicKey,
        out: &mut VecDeque<NodeEvent>,
    ) -> bool {
        self.take_held_with(now, peer, key, Moved::default(), out).is_ok()
    }

    /// Takes the held request as the active chat if it is `peer`'s, with
    /// `key`, sending `texts` in it; else gives `texts` back.
    fn take_held_with(
        &mut self,
        now: Instant,
        peer: &UserName,
        key: &PublicKey,
        texts: Moved,
        out: &mut VecDeque<NodeEvent>,
    ) -> Result<(), Moved> {
        let ours = |h: &Held| h.peer.key() == peer.key() && h.key == *key;
        let Some(held) = self.held.take_if(|h| ours(h)) else { return Err(texts) };
        let mut events = held.events;
        // The caller's Hello was taken as the request; it starts the chat.
        events.push_front((ChatEvent::Connected { peer: held.peer }, SystemTime::now()));
        self.take_call(now, held.chat, events, texts, out);
        Ok(())
    }

    /// The active call's events, unless it was declined as crossed: then
    /// nothing is reported yet, and the other call is awaited (or taken, if
    /// it is held already).
    pub(in crate::client) fn crossed_decline(
        &mut self,
        now: Instant,
        events: Vec<ChatEvent>,
        out: &mut VecDeque<NodeEvent>,
    ) -> Option<Vec<ChatEvent>> {
        let crossed = events.iter().any(|e| {
            matches!(e, ChatEvent::Closed { reason: CloseReason::Declined(DeclineReason::Crossed) })
        });
        if !crossed {
            return Some(events);
        }
        let callee = self.active.as_ref().and_then(|c| c.callee.clone());
        let Some((peer, key)) = callee else { return Some(events) };
        let mut moved = Moved { sent: undelivered_of(events), blocked: VecDeque::new() };
        if let Some(mut ours) = self.active.take() {
            moved.blocked = std::mem::take(&mut ours.blocked);
            self.closing.push(ours);
        }
        if let Err(moved) = self.take_held_with(now, &peer, &key, moved, out) {
            let until = now.checked_add(VERIFY_TIMEOUT).unwrap_or(now);
            self.crossed = Some(Crossed { peer, key, until, moved });
        }
        None
    }

    /// The other side of a crossed call never came: the user hears that its
    /// call was declined, with its texts undelivered.
    pub(in crate::client) fn expire_crossed(
        &mut self,
        now: Instant,
        out: &mut VecDeque<NodeEvent>,
    ) {
        if self.crossed.as_ref().is_none_or(|c| c.until > now) {
            return;
        }
        self.end_crossed(CloseReason::Declined(DeclineReason::Crossed), out);
    }

    /// Ends the wait for a crossed call: the user hears its call ended for
    /// `reason`, with its texts undelivered.
    fn end_crossed(&mut self, reason: CloseReason, out: &mut VecDeque<NodeEvent>) {
        let Some(crossed) = self.crossed.take() else { return };
        let at = SystemTime::now();
        for (seq, text) in crossed.moved.sent {
            out.push_back(NodeEvent::Chat { event: ChatEvent::Undelivered { seq, text }, at });
        }
        for text in crossed.moved.blocked {
            out.push_back(NodeEvent::SendFailed { text, reason: SendError::Closed });
        }
        out.push_back(NodeEvent::Chat { event: ChatEvent::Closed { reason }, at });
    }

    /// Declines `chat`'s call; it closes once the `Decline` is written.
    fn decline(&mut self, now: Instant, mut chat: Chat, reason: DeclineReason) {
        chat.session.decline(now, reason);
        while chat.session.poll_event().is_some() {}
        self.closing.push(chat);
    }

    /// The user does not take the held request: its caller is told.
    pub(in crate::client) fn decline_held(&mut self, now: Instant) {
        if let Some(held) = self.held.take() {
            self.decline(now, held.chat, DeclineReason::Declined);
        }
    }

    /// The user gives up the call under way (not yet started): it ends at
    /// once, and the callee sees the connection close. Its events
    /// (`Undelivered`, `Closed`) are reported as usual.
    pub(in crate::client) fn cancel_call(
        &mut self,
        now: Instant,
        registry: &Registry,
        out: &mut VecDeque<NodeEvent>,
    ) {
        // Waiting for the other side of a crossed call is part of calling.
        self.end_crossed(CloseReason::LocalClose, out);
        if let Some(chat) = self.active.as_mut() {
            if chat.session.peer_name().is_none() {
                chat.session.abort(now);
                chat.close_conn(registry);
                chat.connect_deadline = None;
            }
        }
    }

    /// Writes the last words of the chats that are closing, and closes
    /// those done.
    pub(in crate::client) fn pump_closing(&mut self, now: Instant, registry: &Registry) {
        for chat in &mut self.closing {
            let _ = pump_gated(chat, false, now, registry);
        }
        self.closing.retain_mut(|chat| {
            let done = chat.conn.is_none() || chat.session.pending_output().is_empty();
            if done {
                chat.close_conn(registry);
            }
            !done
        });
    }
}

/// The texts `chat`'s session reports undelivered; its other events are
/// dropped.
fn undelivered(chat: &mut Chat) -> Vec<(Seq, String)> {
    undelivered_of(std::iter::from_fn(|| chat.session.poll_event()))
}

/// The texts among `events` reported undelivered, with their numbers.
fn undelivered_of(events: impl IntoIterator<Item = ChatEvent>) -> Vec<(Seq, String)> {
    events
        .into_iter()
        .filter_map(|e| match e {
            ChatEvent::Undelivered { seq, text } => Some((seq, text)),
            _ => None,
        })
        .collect()
}
