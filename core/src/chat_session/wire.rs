//! The session's view of the byte stream: whole messages in, whole messages
//! out.
//!
//! Inbound, bytes go through [`FrameDecoder`] and then [`decode_chat`];
//! outbound, [`encode_chat`] and then [`write_frame`]. The payload between the
//! two steps is where an encryption layer (Noise transport messages) will sit,
//! so the session logic above never sees frames or ciphertext.

use crate::chat_msg::ChatMsg;
use crate::codec::{body_len, decode_chat, encode_chat};
use crate::frame::{FRAME_HEADER_LEN, FrameDecoder, write_frame};

use super::error::ChatError;

/// Turns received bytes into messages; holds at most one partial frame
/// between calls once every whole one has been taken out.
#[derive(Debug, Default)]
pub(super) struct Inbound {
    frames: FrameDecoder,
}

impl Inbound {
    /// Buffers bytes received from the stream.
    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.frames.push(bytes);
    }

    /// The next whole message, `Ok(None)` if only part of one is buffered.
    pub(super) fn next_msg(&mut self) -> Result<Option<ChatMsg>, ChatError> {
        match self.frames.next_frame()? {
            Some(payload) => Ok(Some(decode_chat(&payload)?)),
            None => Ok(None),
        }
    }

    /// Drops everything buffered and its memory.
    pub(super) fn clear(&mut self) {
        self.frames = FrameDecoder::new();
    }
}

/// Encoded messages waiting to be written, read through [`Outbound::pending`]
/// and released with [`Outbound::consume`] so that a short write loses
/// nothing.
#[derive(Debug, Default)]
pub(super) struct Outbound {
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    start: usize,
}

impl Outbound {
    /// The number of bytes `msg` takes on the wire.
    pub(super) fn frame_len(msg: &ChatMsg) -> usize {
        FRAME_HEADER_LEN + body_len(msg)
    }

    /// Queues `msg` behind everything already queued.
    pub(super) fn push(&mut self, msg: &ChatMsg) {
        // Reclaim the written prefix once it outweighs what is left, so the
        // copy is paid for by the writes that made it.
        if self.start > 0 && self.start >= self.buf.len() - self.start {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        write_frame(&mut self.buf, &encode_chat(msg));
    }

    /// Bytes waiting to be written.
    pub(super) fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Number of bytes waiting to be written.
    pub(super) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Marks the first `n` pending bytes as written; more than
    /// [`Outbound::len`] counts as all of them.
    pub(super) fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Drops everything not yet written, and its memory.
    pub(super) fn clear(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
    }
}
