//! The session's tunables and limits.

use std::time::Duration;

use crate::chat_msg::MAX_TEXT_LEN;
use crate::frame::FRAME_HEADER_LEN;
use crate::noise::TAG_LEN;

/// Default [`ChatConfig::ping_interval`]: after this long without receiving
/// anything, the session sends a `Ping`.
pub const PING_INTERVAL: Duration = Duration::from_secs(10);

/// Default [`ChatConfig::handshake_timeout`]: a connection must finish the
/// Noise handshake within this long, or it is dropped
/// ([`crate::CloseReason::HandshakeTimeout`]). Short, so that a stranger who
/// connects and says nothing holds nothing for long.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default [`ChatConfig::idle_timeout`]: after this long without receiving
/// anything, the peer is declared gone ([`crate::CloseReason::PeerSilent`]).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default [`ChatConfig::close_linger`]: how long [`crate::ChatSession::close`]
/// waits for the peer's acknowledgements and `Goodbye`.
pub const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// Texts received and not yet acknowledged past which an `Ack` goes out at
/// once even with a [`ChatConfig::ack_delay`]: the peer's window
/// ([`MAX_UNACKED`]) never waits on our delay.
pub const ACK_EVERY: u64 = 32;

/// Bytes of pending output above which the session stops asking for input
/// ([`crate::ChatSession::wants_read`] turns false) until the driver has
/// written some of it.
///
/// Our own texts may fill it only up to `MAX_BUFFERED_OUTPUT -
/// CONTROL_HEADROOM`; the rest is kept for the acks and pongs that reading
/// produces, so that two peers flooding each other keep reading (and so keep
/// draining each other) instead of deadlocking. Only a peer that sends but
/// never reads can push the output past this limit, and then we stop reading
/// it.
pub const MAX_BUFFERED_OUTPUT: usize = 256 * 1024;

/// The part of [`MAX_BUFFERED_OUTPUT`] that [`crate::ChatSession::send_text`]
/// leaves free for control messages (acks, pongs, goodbye): a text is refused
/// with [`crate::SendError::Backpressure`] if it would take the pending output
/// above `MAX_BUFFERED_OUTPUT - CONTROL_HEADROOM`.
pub const CONTROL_HEADROOM: usize = 128 * 1024;

/// Most texts sent and not yet acknowledged; [`crate::ChatSession::send_text`]
/// refuses with [`crate::SendError::Backpressure`] beyond it. With
/// [`MAX_UNACKED_BYTES`], bounds the memory kept for `Undelivered` reports.
///
/// The window a burst is sent in: large enough that a sender of short lines
/// does not stop for the receiver's acknowledgements (which come once the
/// receiver has shown what it got), so that both sides handle a burst in
/// long turns and write their history and screen in large pieces (see
/// docs/PERFORMANCE.md).
pub const MAX_UNACKED: usize = 4096;

/// Most bytes of text sent and not yet acknowledged (their UTF-8): long
/// texts fill the window by size before they fill it by count.
pub const MAX_UNACKED_BYTES: usize = 1024 * 1024;

/// Largest encoded `Ack` frame: length prefix, variant tag, a `u64` varint,
/// the Noise tag.
const MAX_ACK_FRAME_LEN: usize = FRAME_HEADER_LEN + 1 + 10 + TAG_LEN;

// A well-behaved peer has at most `MAX_UNACKED` texts in flight, each worth at
// most one ack from us, so the headroom always holds our answers to it.
const _: () = assert!(CONTROL_HEADROOM >= MAX_UNACKED * MAX_ACK_FRAME_LEN);
// A text frame always fits below the text limit of an empty buffer.
const _: () = assert!(MAX_BUFFERED_OUTPUT - CONTROL_HEADROOM > 2 * MAX_TEXT_LEN);

/// The timers of a [`crate::ChatSession`].
///
/// Durations should be non-zero and `ping_interval` shorter than
/// `idle_timeout` (else no ping goes out before the peer is declared silent).
/// Other values never panic; a zero duration makes the session ask to be
/// woken immediately after every wake-up, and a duration too large to add to
/// an `Instant` means "never".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatConfig {
    /// End the session with [`crate::CloseReason::HandshakeTimeout`] unless
    /// the handshake is done within this long of its start.
    pub handshake_timeout: Duration,
    /// Send a `Ping` after this long without receiving a byte, and again
    /// every `ping_interval` while the silence lasts.
    pub ping_interval: Duration,
    /// End the session with [`crate::CloseReason::PeerSilent`] after this long
    /// without receiving a byte.
    pub idle_timeout: Duration,
    /// After [`crate::ChatSession::close`], wait at most this long for the
    /// peer's acknowledgements and `Goodbye`.
    pub close_linger: Duration,
    /// How long an `Ack` may wait for a text of ours to ride with (as TCP's
    /// delayed acknowledgements do), so that a conversation costs one frame
    /// and one wakeup per text instead of two. Zero (the default): every
    /// input that brought texts is acknowledged at once. However long, an
    /// `Ack` goes out at once after [`ACK_EVERY`] texts, with our `Goodbye`,
    /// or with any text we send.
    pub ack_delay: Duration,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            handshake_timeout: HANDSHAKE_TIMEOUT,
            ping_interval: PING_INTERVAL,
            idle_timeout: IDLE_TIMEOUT,
            close_linger: CLOSE_LINGER,
            ack_delay: Duration::ZERO,
        }
    }
}
