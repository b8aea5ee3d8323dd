//! Sealing and opening transport messages once the handshake is done.

use super::{MAX_NOISE_MSG_LEN, MAX_PLAINTEXT_LEN, TAG_LEN};

/// Messages sealed (or opened) under one key before both sides replace it,
/// in each direction independently, by the Noise `REKEY` function. Both sides
/// count messages, so no signal crosses the wire (as in BOLT 8, which rekeys
/// every 1,000 messages).
pub const REKEY_INTERVAL: u64 = 10_000;

/// Why a transport message was refused. Fatal and sticky.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The message did not authenticate: altered, replayed, reordered or
    /// not ours.
    #[error("an encrypted frame failed authentication")]
    Decrypt,
    /// Longer than a Noise message may be, or shorter than its tag.
    #[error("an encrypted frame has an impossible length")]
    BadLength,
}

/// Both directions' cipher states after the handshake.
#[derive(Debug)]
pub struct Transport {
    state: Box<snow::TransportState>,
    sealed: u64,
    opened: u64,
}

impl Transport {
    pub(super) fn new(state: snow::TransportState) -> Self {
        Self { state: Box::new(state), sealed: 0, opened: 0 }
    }

    /// Appends `plaintext`, sealed, to `out`. The caller keeps plaintexts
    /// within [`MAX_PLAINTEXT_LEN`].
    #[allow(clippy::expect_used)] // See the comment inside.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) {
        debug_assert!(plaintext.len() <= MAX_PLAINTEXT_LEN);
        let start = out.len();
        out.resize(start + plaintext.len() + TAG_LEN, 0);
        // The output has room for the tag, the plaintext fits a Noise message
        // and the nonce cannot reach 2^64 - 1 in any real chat.
        let n = self.state.write_message(plaintext, &mut out[start..]).expect("room and nonce");
        out.truncate(start + n);
        self.sealed += 1;
        if self.sealed % REKEY_INTERVAL == 0 {
            self.state.rekey_outgoing();
        }
    }

    /// Opens one sealed message.
    pub fn open(&mut self, sealed: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut plain = Vec::new();
        self.open_into(sealed, &mut plain)?;
        Ok(plain)
    }

    /// Opens one sealed message into `plain` (replacing what it held; its
    /// memory is reused, so a session opens frame after frame without
    /// allocating).
    pub fn open_into(&mut self, sealed: &[u8], plain: &mut Vec<u8>) -> Result<(), TransportError> {
        plain.clear();
        if sealed.len() < TAG_LEN || sealed.len() > MAX_NOISE_MSG_LEN {
            return Err(TransportError::BadLength);
        }
        plain.resize(sealed.len() - TAG_LEN, 0);
        let opened = self.state.read_message(sealed, plain);
        let Ok(n) = opened else {
            plain.clear();
            return Err(TransportError::Decrypt);
        };
        plain.truncate(n);
        self.opened += 1;
        if self.opened % REKEY_INTERVAL == 0 {
            self.state.rekey_incoming();
        }
        Ok(())
    }
}
