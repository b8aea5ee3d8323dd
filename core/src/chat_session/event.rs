//! What a chat session reports to its driver.

use crate::chat_msg::DeclineReason;
use crate::chat_msg::Seq;
use crate::key::PublicKey;
use crate::name::UserName;

use super::error::ChatError;

/// Something that happened in a [`crate::ChatSession`], drained with
/// [`crate::ChatSession::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// The Noise handshake is done: the peer proved `key`, and calls itself
    /// `peer` (for a caller, the callee it asked for, whose listed key the
    /// handshake already checked; for a callee, the caller's claim, which
    /// the application checks against the registry before it
    /// [accepts](crate::ChatSession::accept)). Always the first event of a
    /// session that gets that far.
    Authenticated {
        /// The name bound into the handshake.
        peer: UserName,
        /// The static key the peer proved it holds.
        key: PublicKey,
    },
    /// The peer's `Hello` arrived: the session is established. (Also
    /// emitted if it arrives after [`crate::ChatSession::close`], while the
    /// close handshake waits for it.)
    Connected {
        /// The name the peer gave.
        peer: UserName,
    },
    /// The peer sent a text. Each arrives exactly once, in order.
    Received {
        /// Its sequence number in the peer's direction.
        seq: Seq,
        /// The text.
        text: String,
    },
    /// The peer acknowledged our text `seq`.
    Delivered {
        /// The sequence number [`crate::ChatSession::send_text`] returned.
        seq: Seq,
    },
    /// The session ended before the peer acknowledged our text `seq`. The
    /// peer may or may not have seen it; it was not confirmed.
    Undelivered {
        /// The sequence number [`crate::ChatSession::send_text`] returned.
        seq: Seq,
        /// The text, so that it can be shown or sent again.
        text: String,
    },
    /// The session is over. Always the last event, emitted exactly once,
    /// right after the `Undelivered` events.
    Closed {
        /// Why it ended.
        reason: CloseReason,
    },
}

/// Why a chat session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// We called [`crate::ChatSession::close`] and the close handshake ended:
    /// the peer's `Goodbye` or end of stream arrived, or the linger expired.
    LocalClose,
    /// The peer said `Goodbye` first.
    PeerClose,
    /// The stream ended without a `Goodbye`.
    PeerVanished,
    /// Nothing arrived from the peer for [`crate::ChatConfig::idle_timeout`].
    PeerSilent,
    /// The handshake was not done within
    /// [`crate::ChatConfig::handshake_timeout`].
    HandshakeTimeout,
    /// The callee did not take the call, and said why.
    Declined(DeclineReason),
    /// The peer broke the protocol.
    Error(ChatError),
}
