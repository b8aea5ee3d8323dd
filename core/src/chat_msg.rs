//! The chat session's messages: the payloads of chat frames.
//!
//! [`crate::codec`] turns them into bytes and [`crate::frame`] puts the
//! length prefix in front. `docs/PROTOCOL.md` gives the byte layout of each.

use serde::{Deserialize, Serialize};

/// The chat protocol version this crate speaks, in the preamble and the
/// `Hello`. Version 2 encrypted every chat with Noise and
/// ChaCha20-Poly1305; version 3 with AES-256-GCM.
pub const CHAT_VERSION: u8 = 3;

/// Longest text message, in bytes of UTF-8.
pub const MAX_TEXT_LEN: usize = 4096;

/// Numbers a text message within one session, from 1 on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Seq(pub u64);

/// One message of the chat protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatMsg {
    /// The first message each side sends. Its layout never changes, so that
    /// any two versions can tell each other apart.
    Hello {
        /// The sender's protocol version.
        version: u8,
        /// The sender's user name (checked by the receiver).
        name: String,
    },
    /// A text message.
    Text {
        /// One more than the sequence number of the sender's previous text.
        seq: Seq,
        /// At most [`MAX_TEXT_LEN`] bytes of UTF-8.
        text: String,
    },
    /// Acknowledges every text up to and including `upto`.
    Ack {
        /// The highest sequence number received.
        upto: Seq,
    },
    /// Asks for a `Pong`: proof that the peer is still there.
    Ping,
    /// The answer to `Ping`.
    Pong,
    /// The sender ends the session; nothing follows it.
    Goodbye,
    /// The callee's answer instead of its `Hello`: the call is not taken,
    /// and nothing follows.
    Decline {
        /// Why.
        reason: DeclineReason,
    },
}

/// [`ChatMsg::Text`] by reference, for encoding: the same bytes as the
/// owned message (the variants before `Text` are in the same order, so the
/// variant index is the same), without a copy of the text.
#[derive(Debug, Serialize)]
pub(crate) enum TextRef<'a> {
    /// Never built: holds `Hello`'s place so that `Text` gets its index.
    #[allow(dead_code)]
    Hello,
    /// [`ChatMsg::Text`].
    Text {
        /// Its sequence number.
        seq: Seq,
        /// Its text.
        text: &'a str,
    },
}

/// Why a callee did not take a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeclineReason {
    /// The user said no.
    Declined,
    /// The user already has a call waiting for an answer.
    Busy,
    /// Both users called each other at once; the other call is the one
    /// that goes on (see docs/PROTOCOL.md §9.7).
    Crossed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_text_encodes_as_the_owned_one() {
        for (seq, text) in [(1, ""), (300, "hello"), (u64::MAX, "ünï ✓ 🎉")] {
            let owned =
                crate::codec::encode_chat(&ChatMsg::Text { seq: Seq(seq), text: text.into() });
            let borrowed = postcard::to_allocvec(&TextRef::Text { seq: Seq(seq), text }).unwrap();
            assert_eq!(borrowed, owned, "{seq} {text:?}");
        }
    }
}
