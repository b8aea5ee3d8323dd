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
    /// allocating, and without zeroing what the opening overwrites: only
    /// bytes beyond `plain`'s length so far are zeroed first). On an error
    /// `plain` is left empty.
    pub fn open_into(&mut self, sealed: &[u8], plain: &mut Vec<u8>) -> Result<(), TransportError> {
        if sealed.len() < TAG_LEN || sealed.len() > MAX_NOISE_MSG_LEN {
            plain.clear();
            return Err(TransportError::BadLength);
        }
        // Every byte up to the plaintext's length is written by the opening.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::PrivateKey;
    use crate::noise::Handshake;

    /// Both ends of a finished handshake: (caller's, callee's).
    fn pair() -> (Transport, Transport) {
        let (caller_key, callee_key) =
            (PrivateKey::from_bytes([1; 32]), PrivateKey::from_bytes([2; 32]));
        let (mut caller, first) =
            Handshake::initiator(&caller_key, [3; 32], b"test", callee_key.public_key());
        let mut callee = Handshake::responder(&callee_key, [4; 32], b"test");
        let second = callee.read(&first).unwrap().unwrap();
        let third = caller.read(&second).unwrap().unwrap();
        assert_eq!(callee.read(&third).unwrap(), None);
        (caller.finish().unwrap().0, callee.finish().unwrap().0)
    }

    #[test]
    fn a_buffer_opened_into_again_holds_only_the_new_plaintext() {
        let (mut tx, mut rx) = pair();
        let mut plain = Vec::new();
        for text in [&b"a long first plaintext"[..], b"short", b"", b"longer again, past the rest"]
        {
            let mut sealed = Vec::new();
            tx.seal(text, &mut sealed);
            rx.open_into(&sealed, &mut plain).unwrap();
            assert_eq!(plain, text);
        }
        // A frame refused leaves nothing of the last one to decode again.
        assert!(!plain.is_empty());
        assert_eq!(rx.open_into(&[0; 3], &mut plain), Err(TransportError::BadLength));
        assert!(plain.is_empty());
        let mut sealed = Vec::new();
        tx.seal(b"tampered with", &mut sealed);
        sealed[0] ^= 1;
        let mut plain = b"what the last frame held".to_vec();
        assert_eq!(rx.open_into(&sealed, &mut plain), Err(TransportError::Decrypt));
        assert!(plain.is_empty());
    }
}
