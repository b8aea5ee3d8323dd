//! What can go wrong in a chat session.

use crate::chat_msg::{MAX_TEXT_LEN, Seq};
use crate::codec::DecodeError;
use crate::frame::FrameError;
use crate::noise::{HandshakeError, PreambleError, TransportError};

/// A fatal error in the peer's byte stream: the session is over.
///
/// Once [`crate::ChatSession::handle_input`] has returned one, it returns the
/// same error on every later call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// The stream is not a valid sequence of frames (an oversize frame).
    #[error("bad framing: {0}")]
    Frame(#[from] FrameError),
    /// A frame's payload is not a valid chat message.
    #[error("malformed chat message: {0}")]
    Malformed(#[from] DecodeError),
    /// The peer speaks another protocol version.
    #[error("protocol version mismatch: we speak {ours}, the peer speaks {theirs}")]
    VersionMismatch {
        /// Our [`crate::CHAT_VERSION`].
        ours: u8,
        /// The version in the peer's preamble or `Hello`.
        theirs: u8,
    },
    /// The peer's first frame is not a preamble of the expected shape.
    #[error("the peer's first frame is not a p2pchat preamble")]
    BadPreamble,
    /// The caller asked for another user than us.
    #[error("the caller asked for another user")]
    WrongCallee,
    /// The Noise handshake failed, or proved the wrong key.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// An encrypted frame failed to open.
    #[error("{0}")]
    Noise(#[from] TransportError),
    /// The peer's `Hello` names someone else than the handshake was bound to.
    #[error("the peer's Hello names another user than its handshake")]
    NameMismatch,
    /// The name in the peer's `Hello` is not a valid [`crate::UserName`].
    #[error("the peer's Hello carries an invalid user name")]
    BadPeerName,
    /// The peer's first message is not `Hello`.
    #[error("the peer's first message is not Hello")]
    ExpectedHello,
    /// The peer sent a second `Hello`.
    #[error("the peer sent Hello twice")]
    DuplicateHello,
    /// A `Decline` from a caller, or after the callee's `Hello`.
    #[error("the peer sent Decline where it may not")]
    UnexpectedDecline,
    /// The peer sent a text longer than [`MAX_TEXT_LEN`] bytes.
    #[error("the peer sent a text longer than {MAX_TEXT_LEN} bytes")]
    TextTooLong,
    /// The peer's text does not carry the next sequence number.
    #[error("text out of order: expected seq {}, got {}", .expected.0, .got.0)]
    OutOfOrder {
        /// One more than the last sequence number received.
        expected: Seq,
        /// What the text carried.
        got: Seq,
    },
    /// The peer acknowledged a text we never sent.
    #[error("bad acknowledgement up to seq {}", .upto.0)]
    BadAck {
        /// What the `Ack` carried.
        upto: Seq,
    },
}

impl From<PreambleError> for ChatError {
    fn from(e: PreambleError) -> Self {
        match e {
            PreambleError::Malformed => ChatError::BadPreamble,
            PreambleError::VersionMismatch { ours, theirs } => {
                ChatError::VersionMismatch { ours, theirs }
            }
        }
    }
}

/// Why [`crate::ChatSession::send_text`] refused a text. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The text is longer than [`MAX_TEXT_LEN`] bytes.
    #[error("text longer than {MAX_TEXT_LEN} bytes")]
    TooLong,
    /// The session is closing or over; no more texts can be sent.
    #[error("the chat session is closed")]
    Closed,
    /// Too much is already waiting: [`crate::MAX_UNACKED`] texts or
    /// [`crate::MAX_UNACKED_BYTES`] of text are unacknowledged, or the
    /// output buffer is full. Try again once the peer
    /// has caught up (after a `Delivered` event or a write).
    #[error("too many messages waiting; try again later")]
    Backpressure,
}
