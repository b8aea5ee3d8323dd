//! Admission of incoming chat connections: each must finish the Noise
//! handshake within [`HANDSHAKE_TIMEOUT`](p2pchat_core::HANDSHAKE_TIMEOUT)
//! and prove the key the registry lists for the name it claims before the
//! user hears of it. Until then it waits here, one of at most
//! [`MAX_INCOMING`]; a stranger who connects and says nothing, or proves
//! the wrong key, is dropped without a word on the user's screen, and can
//! never take the place of a real caller.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use mio::Registry;
use p2pchat_core::{ChatEvent, Entry, NameKey, PublicKey, UserName};

use super::chats::{Chat, pump_gated};

/// Most incoming connections admitted at once while they prove who they
/// are. When all are taken, a new connection evicts the oldest one that
/// has sent nothing yet, else the oldest one still in its handshake (a real
/// caller speaks at once and finishes within a round trip, so these are the
/// likeliest strangers); if every one is past its handshake, the new one is
/// refused.
pub const MAX_INCOMING: usize = 8;

/// How long the registry may take to confirm a caller's key before the
/// caller is dropped.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Most events kept per admitted connection before it is read no further.
const MAX_PENDING_EVENTS: usize = 64;

/// One incoming connection on its way in.
pub(super) struct Incoming {
    pub(super) chat: Chat,
    stage: Stage,
    /// Whether the caller has sent anything.
    heard: bool,
    /// Its events so far, for when the user accepts it.
    pub(super) events: VecDeque<(ChatEvent, SystemTime)>,
}

enum Stage {
    /// The handshake is under way.
    Handshake,
    /// The handshake is done; the registry is asked for `peer`'s key.
    Verifying { peer: UserName, key: PublicKey, deadline: Instant },
}

/// What the registry's answer meant for an admitted connection.
pub(super) enum Verdict {
    /// The caller proved the key the registry lists for its name.
    Verified { incoming: Box<Incoming>, peer: UserName, key: PublicKey },
}

/// The connections on their way in.
#[derive(Default)]
pub(super) struct Admission {
    waiting: Vec<Incoming>,
    /// Names to look up in the registry, for the node to send.
    lookups: Vec<UserName>,
    /// Answers the node still owes the admission, per name key: each
    /// lookup it sent for a caller is answered to it, even if that caller
    /// has gone meanwhile, so that no such answer reaches the user.
    owed: HashMap<NameKey, usize>,
}

impl Admission {
    /// Admits `chat` (a callee session on a fresh connection). Returns the
    /// connection it displaced or refused, for the caller to close.
    /// `heard` says whether it has sent anything yet.
    pub(super) fn admit(&mut self, chat: Chat, heard: bool) -> Option<Chat> {
        let new = Incoming { chat, stage: Stage::Handshake, heard, events: VecDeque::new() };
        if self.waiting.len() < MAX_INCOMING {
            self.waiting.push(new);
            return None;
        }
        let in_handshake = |i: &Incoming| matches!(i.stage, Stage::Handshake);
        let victim = (self.waiting.iter())
            .position(|i| in_handshake(i) && !i.heard)
            .or_else(|| self.waiting.iter().position(in_handshake));
        match victim {
            Some(oldest) => {
                let evicted = self.waiting.remove(oldest);
                tracing::debug!("evicted an incoming connection still in its handshake");
                self.waiting.push(new);
                Some(evicted.chat)
            }
            None => Some(new.chat),
        }
    }

    pub(super) fn chats(&self) -> impl Iterator<Item = &Chat> {
        self.waiting.iter().map(|i| &i.chat)
    }

    pub(super) fn chats_mut(&mut self) -> impl Iterator<Item = &mut Chat> {
        self.waiting.iter_mut().map(|i| &mut i.chat)
    }

    /// The earliest verification deadline.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.waiting
            .iter()
            .filter_map(|i| match i.stage {
                Stage::Handshake => None,
                Stage::Verifying { deadline, .. } => Some(deadline),
            })
            .min()
    }

    /// Moves bytes on every admitted connection.
    pub(super) fn pump(&mut self, now: Instant, registry: &Registry) {
        for incoming in &mut self.waiting {
            let open = incoming.events.len() < MAX_PENDING_EVENTS;
            incoming.heard |= pump_gated(&mut incoming.chat, open, now, registry);
        }
    }

    /// Takes the sessions' events; drops (closing their streams) the
    /// connections that ended or whose verification timed out.
    pub(super) fn collect(&mut self, now: Instant, at: SystemTime, registry: &Registry) {
        let lookups = &mut self.lookups;
        self.waiting.retain_mut(|incoming| {
            while incoming.events.len() < MAX_PENDING_EVENTS {
                let Some(event) = incoming.chat.session.poll_event() else { break };
                match event {
                    ChatEvent::Authenticated { peer, key } => {
                        lookups.push(peer.clone());
                        let deadline = now.checked_add(VERIFY_TIMEOUT).unwrap_or(now);
                        incoming.stage = Stage::Verifying { peer, key, deadline };
                    }
                    ChatEvent::Closed { reason } => {
                        tracing::debug!(?reason, "an incoming connection ended unverified");
                        incoming.chat.close_conn(registry);
                        return false;
                    }
                    other => incoming.events.push_back((other, at)),
                }
            }
            let expired = match &incoming.stage {
                Stage::Handshake => false,
                Stage::Verifying { deadline, .. } => *deadline <= now,
            };
            if expired {
                tracing::debug!("the registry did not confirm a caller's key in time");
                incoming.chat.close_conn(registry);
            }
            !expired
        });
    }

    /// Names whose registry entry the node should fetch.
    pub(super) fn take_lookups(&mut self) -> Vec<UserName> {
        for name in &self.lookups {
            *self.owed.entry(name.key()).or_insert(0) += 1;
        }
        std::mem::take(&mut self.lookups)
    }

    /// The registry's answer for `name`. Returns whether an admitted
    /// connection waited for it (the answer is then consumed), and the
    /// connections it verified; those it refuted are closed.
    pub(super) fn verify(
        &mut self,
        name: &UserName,
        entry: Option<&Entry>,
        registry: &Registry,
    ) -> (bool, Vec<Verdict>) {
        let mut waited = false;
        if let Some(n) = self.owed.get_mut(&name.key()) {
            *n -= 1;
            if *n == 0 {
                self.owed.remove(&name.key());
            }
            waited = true;
        }
        let mut verdicts = Vec::new();
        let mut i = 0;
        while i < self.waiting.len() {
            let Stage::Verifying { peer, key, .. } = &self.waiting[i].stage else {
                i += 1;
                continue;
            };
            if peer != name {
                i += 1;
                continue;
            }
            waited = true;
            let (peer, key) = (peer.clone(), *key);
            let mut incoming = self.waiting.remove(i);
            if entry.is_some_and(|e| e.key == key) {
                verdicts.push(Verdict::Verified { incoming: Box::new(incoming), peer, key });
            } else {
                tracing::debug!(%peer, "a caller proved a key the registry does not list for it");
                incoming.chat.close_conn(registry);
            }
        }
        (waited, verdicts)
    }
}
