//! Chat requests, the active chat's events, and how a chat ends.

use p2pchat_core::{
    ChatError, ChatEvent, CloseReason, HandshakeError, MAX_TEXT_LEN, SendError, UserName,
};

use std::time::Duration;

use super::screen::{close_reason, truncate};

/// How soon after the process is continued (after Ctrl-Z) a chat that
/// times out or breaks is blamed on the stop: its timers ran out while it
/// was stopped, and they fire, or the peer's refusal arrives, at once.
pub const RESUME_GRACE: Duration = Duration::from_secs(5);
use super::{Action, App, BACK, Check, HELP, KeyCheck, State};
use crate::history::{Direction, escape_for_display};

impl App {
    /// The answer to [`Action::CheckKey`]: the call goes ahead or the
    /// request is announced, or the warning is shown and the chat refused.
    pub fn key_checked(&mut self, check: KeyCheck) {
        match (self.checking.take(), check) {
            (Some(Check::Call(entry)), KeyCheck::Trusted(trust)) => {
                let addr = entry.chat_addr();
                let name = &entry.name;
                self.print(format!("Connecting to {name} at {addr}, {trust}"));
                self.print(format!("Waiting for {name} to accept..."));
                self.connect_error = None;
                self.peer_trust = Some(trust);
                self.state = State::Connecting { peer: entry.name.clone() };
                self.push(Action::Connect { peer: entry.name, key: entry.key, addr });
            }
            (Some(Check::Call(_)), KeyCheck::Refused(warning)) => {
                for line in warning.lines() {
                    self.print(line.to_owned());
                }
                self.menu();
            }
            (Some(Check::Request(peer)), KeyCheck::Trusted(trust)) => {
                self.chat_request(peer, trust);
            }
            (Some(Check::Request(_)), KeyCheck::Refused(warning)) => {
                self.push(Action::Reject);
                for line in warning.lines() {
                    self.print(line.to_owned());
                }
                if self.state == State::Waiting {
                    self.print(format!("Still waiting for a peer to connect ({BACK} cancels)..."));
                } else {
                    self.reprompt();
                }
            }
            (None, _) => {}
        }
    }

    /// A peer asks to chat: accepted at once if we wait for one, else held.
    fn chat_request(&mut self, peer: UserName, trust: String) {
        if self.state == State::Waiting {
            self.peer_trust = Some(trust);
            return self.accept(peer);
        }
        let line = if self.in_chat() {
            format!("{peer} wants to chat, {trust}: enter 2 (or y) at the menu to accept")
        } else {
            format!("{peer} wants to chat, {trust}: enter 2 (or y) to accept, n to decline")
        };
        self.request = Some((peer, trust));
        if self.in_chat() { self.print(line) } else { self.async_line(line) }
    }

    pub(super) fn accept(&mut self, peer: UserName) {
        self.push(Action::Accept);
        self.chat_started(peer);
    }

    fn chat_started(&mut self, peer: UserName) {
        // A request from the same user became this chat (calls that crossed).
        if self.request.as_ref().is_some_and(|(r, _)| r.key() == peer.key()) {
            self.request = None;
        }
        self.chat_connected = true;
        let clock = self.clock();
        // How the connection was made, when the node said (a call through
        // the registry's introduction).
        let route = match self.route.take() {
            Some((p, relayed)) if p.key() == peer.key() => {
                if relayed {
                    " (relayed by the server, still end-to-end encrypted)"
                } else {
                    " (direct)"
                }
            }
            Some(_) | None => "",
        };
        if let Some(trust) = self.peer_trust.take() {
            self.print(format!("[{clock}] Chat with {peer} started{route}, {trust}."));
        } else {
            self.print(format!("[{clock}] Chat with {peer} started{route}."));
        }
        self.print(format!(
            "Type a message and press Enter; {BACK} ends the chat, {HELP} lists the commands."
        ));
        let me = self.me.as_ref().map(ToString::to_string).unwrap_or_default();
        self.record(Direction::Started, peer.clone(), me);
        self.last_chat = Some((self.calls, peer.clone()));
        self.state = State::Chat { peer };
        self.send_held();
    }

    pub(super) fn end_chat(&mut self) {
        if let Some(peer) = self.chat_peer() {
            self.state = State::Closing { peer };
            self.push(Action::CloseChat);
        }
    }

    /// The input ended in a chat: it ends once the peer has acknowledged
    /// our texts (or acknowledgements stop coming); the peer's texts are
    /// still shown meanwhile.
    pub(super) fn finish_chat(&mut self) {
        if let Some(peer) = self.chat_peer() {
            self.state = State::Closing { peer };
            self.push(Action::FinishChat);
        }
    }

    /// An event of the active chat (it happened at `self.now`).
    pub(super) fn chat(&mut self, event: ChatEvent) {
        match event {
            // The key was judged before connecting; the handshake proved it.
            ChatEvent::Authenticated { .. } => {}
            // The handshake bound the name: it is the one we called.
            ChatEvent::Connected { peer } => {
                if let State::Connecting { .. } = &self.state {
                    self.chat_started(peer);
                } else {
                    self.chat_connected = true;
                }
            }
            ChatEvent::Received { text, .. } => {
                if self.chat_peer_ref().is_some() {
                    let at = self.now;
                    self.push(Action::ChatText { at, direction: Direction::Received, text });
                }
            }
            ChatEvent::Delivered { .. } => {}
            // Reported with the chat's end, whose reason tells whether the
            // peer may have seen it.
            ChatEvent::Undelivered { text, .. } => self.unconfirmed.push(text),
            ChatEvent::Closed { reason } => self.chat_closed(reason),
        }
    }

    /// Reports the texts the peer did not acknowledge: certainly not
    /// delivered if the peer said `Goodbye` first (it acknowledged all it
    /// showed) or never sent its `Hello` (nothing but ours went out); else
    /// the peer may have seen them.
    fn report_unconfirmed(&mut self, reason: &CloseReason) {
        let texts = std::mem::take(&mut self.unconfirmed);
        let connected = std::mem::replace(&mut self.chat_connected, false);
        let Some(peer) = self.chat_peer() else { return };
        let certain = !connected || *reason == CloseReason::PeerClose;
        for text in texts {
            let shown = escape_for_display(&text);
            if certain {
                self.print(format!("warning: not delivered to {peer}: {shown}"));
                self.record(Direction::Undelivered, peer.clone(), text);
            } else {
                self.print(format!(
                    "warning: not acknowledged by {peer} (it may have been seen): {shown}"
                ));
                self.record(Direction::Unacknowledged, peer.clone(), text);
            }
        }
    }

    fn chat_closed(&mut self, reason: CloseReason) {
        self.report_unconfirmed(&reason);
        let state = std::mem::replace(&mut self.state, State::Menu);
        // A call that never started is no chat that ended: a quiet prompt.
        let started = !matches!(state, State::Connecting { .. });
        let connect_error = self.connect_error.take();
        match state {
            State::Connecting { peer } => {
                let cancelled = std::mem::take(&mut self.cancelled);
                let why = match (connect_error, reason) {
                    (Some(e), _) => format!("could not connect to {peer}: {e}"),
                    (None, CloseReason::PeerVanished) => {
                        format!("{peer} did not take the chat (busy or gone)")
                    }
                    (None, CloseReason::PeerSilent) => {
                        format!("{peer} did not accept the chat in time")
                    }
                    (
                        None,
                        CloseReason::Error(ChatError::Handshake(HandshakeError::WrongKey {
                            ..
                        })),
                    ) => {
                        format!(
                            "the chat at {peer}'s address proved another key than the registry \
                             lists for {peer}: someone may be in the middle; chat refused"
                        )
                    }
                    (None, r) => {
                        format!("the chat with {peer} did not start: {}", close_reason(&r, &peer))
                    }
                };
                if cancelled {
                    self.print(format!("Call to {peer} cancelled."));
                } else {
                    self.print(format!("error: {why}"));
                }
            }
            State::Chat { peer } | State::Closing { peer } => {
                let why = match (&reason, self.stopped_for()) {
                    (CloseReason::PeerSilent | CloseReason::PeerVanished, Some(stopped)) => {
                        format!(
                            "this client was stopped (Ctrl-Z) for {} s, longer than a chat \
                             waits for an answer",
                            stopped.as_secs()
                        )
                    }
                    _ => close_reason(&reason, &peer),
                };
                self.print(format!("[{}] Chat with {peer} ended: {why}.", self.clock()));
                self.record(Direction::Ended, peer, why);
            }
            State::LoggingOut { .. } | State::Done => {
                self.state = state;
                return;
            }
            other => {
                self.state = other;
                return;
            }
        }
        if started {
            self.menu_with_commands();
        } else {
            self.menu();
        }
    }

    /// How long the process was stopped, if it was continued just now
    /// (within [`RESUME_GRACE`] of the event being handled).
    fn stopped_for(&self) -> Option<Duration> {
        let (at, stopped) = self.resumed?;
        let since = self.now.duration_since(at).unwrap_or_default();
        (since <= RESUME_GRACE).then_some(stopped)
    }

    pub(super) fn chat_peer(&self) -> Option<UserName> {
        self.chat_peer_ref().cloned()
    }

    /// The active chat's peer (connecting, open or closing), if any.
    pub fn chat_peer_ref(&self) -> Option<&UserName> {
        match &self.state {
            State::Connecting { peer } | State::Chat { peer } | State::Closing { peer } => {
                Some(peer)
            }
            _ => None,
        }
    }

    /// A text the chat did not take.
    pub(super) fn send_failed(&mut self, text: &str, reason: SendError) {
        let why = match reason {
            SendError::TooLong => format!("the message is longer than {MAX_TEXT_LEN} bytes"),
            SendError::Closed => "the chat is closed".to_owned(),
            SendError::Backpressure => "too many messages are waiting".to_owned(),
        };
        let shown = escape_for_display(text);
        self.print(format!("error: message not sent ({why}): {}", truncate(&shown, 60)));
        if let Some(peer) = self.chat_peer() {
            self.record(Direction::Failed, peer, text.to_owned());
        }
    }
}
