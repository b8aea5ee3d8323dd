//! What each message from the peer means: the session's rules
//! (docs/PROTOCOL.md §9.7) for `Hello`, texts, acks, keepalives, `Goodbye`
//! and `Decline`.

use crate::chat_msg::{CHAT_VERSION, ChatMsg, MAX_TEXT_LEN, Seq};
use crate::name::UserName;

use super::{ChatError, ChatEvent, ChatSession, CloseReason, Output, Phase, next};

impl ChatSession {
    pub(super) fn handle_msg(&mut self, msg: ChatMsg) -> Result<(), ChatError> {
        match (&msg, self.peer.is_none()) {
            (ChatMsg::Hello { .. }, _) => {}
            (ChatMsg::Decline { reason }, true) if self.caller => {
                // The callee answered no: nothing we queued reaches anyone.
                self.finish(CloseReason::Declined(*reason), Output::Discard);
                return Ok(());
            }
            (ChatMsg::Decline { .. }, _) => return Err(ChatError::UnexpectedDecline),
            (_, true) => return Err(ChatError::ExpectedHello),
            (_, false) => {}
        }
        match msg {
            ChatMsg::Hello { version, name } => {
                if self.peer.is_some() {
                    return Err(ChatError::DuplicateHello);
                }
                if version != CHAT_VERSION {
                    return Err(ChatError::VersionMismatch { ours: CHAT_VERSION, theirs: version });
                }
                let peer = UserName::new(&name).map_err(|_| ChatError::BadPeerName)?;
                if self.secured.as_ref().is_none_or(|(bound, _)| *bound != peer) {
                    return Err(ChatError::NameMismatch);
                }
                self.peer = Some(peer.clone());
                self.events.push_back(ChatEvent::Connected { peer });
                // No ack can come before our texts are out, so every unacked
                // text is a held one.
                for (seq, text) in self.unacked.to_vec() {
                    self.wire.push(&crate::chat_msg::TextRef::Text { seq, text: &text });
                }
                self.held_bytes = 0;
                match self.phase {
                    Phase::Open => {}
                    // close() came first and held its Goodbye.
                    Phase::Closing { .. } => self.wire.push(&ChatMsg::Goodbye),
                    Phase::Finished => {}
                }
            }
            ChatMsg::Text { seq, text } => {
                if text.len() > MAX_TEXT_LEN {
                    return Err(ChatError::TextTooLong);
                }
                let expected = next(self.received);
                if seq != expected {
                    return Err(ChatError::OutOfOrder { expected, got: seq });
                }
                self.received = seq;
                match self.phase {
                    Phase::Open => self.events.push_back(ChatEvent::Received { seq, text }),
                    // Sent before the peer saw our Goodbye; we cannot
                    // acknowledge it any more, so the peer reports it
                    // undelivered and we do not show it.
                    Phase::Closing { .. } | Phase::Finished => {}
                }
            }
            ChatMsg::Ack { upto } => {
                let sent = Seq(self.next_send.0.saturating_sub(1));
                if upto > sent {
                    return Err(ChatError::BadAck { upto });
                }
                while let Some(seq) = self.unacked.front() {
                    if seq > upto {
                        break;
                    }
                    self.unacked.pop_front();
                    self.events.push_back(ChatEvent::Delivered { seq });
                }
            }
            ChatMsg::Ping => match self.phase {
                Phase::Open => self.pongs_due += 1,
                // Nothing follows our Goodbye, not even a Pong.
                Phase::Closing { .. } | Phase::Finished => {}
            },
            ChatMsg::Pong => {}
            // Handled above: only a caller's first message can be one.
            ChatMsg::Decline { .. } => return Err(ChatError::UnexpectedDecline),
            ChatMsg::Goodbye => match self.phase {
                Phase::Open => {
                    self.queue_replies(None);
                    self.wire.push(&ChatMsg::Goodbye);
                    self.finish(CloseReason::PeerClose, Output::Keep);
                }
                Phase::Closing { .. } => self.finish(CloseReason::LocalClose, Output::Keep),
                Phase::Finished => {}
            },
        }
        Ok(())
    }
}
