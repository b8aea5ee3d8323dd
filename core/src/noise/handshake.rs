//! The Noise XX handshake as a small sans-IO machine: payloads in, payloads
//! out, the peer's proven static key at the end.
//!
//! ```text
//! caller → callee   e
//! callee → caller   e, ee, s, es
//! caller → callee   s, se
//! ```
//!
//! Every handshake payload is empty. The caller knows which key it expects
//! (the one the registry lists for the callee) and refuses any other as soon
//! as the second message proves it; the callee learns the caller's key from
//! the third message and leaves the judgement to its application.

use crate::key::{KEY_LEN, PrivateKey, PublicKey};

use super::resolver::SeededResolver;
use super::transport::Transport;
use super::{MAX_NOISE_MSG_LEN, TAG_LEN};

/// The Noise protocol name: XX, X25519, AES-256-GCM, BLAKE2s.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_AESGCM_BLAKE2s";

/// The longest handshake message: `e, ee, s, es` with its encrypted static
/// key and an empty payload's tag.
const MAX_HANDSHAKE_MSG_LEN: usize = KEY_LEN + (KEY_LEN + TAG_LEN) + TAG_LEN;

/// Why a handshake failed. Fatal and sticky.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// A handshake message did not decrypt or verify, had the wrong length,
    /// or carried a payload.
    #[error("the peer's handshake message is invalid")]
    Invalid,
    /// The peer proved a static key other than the one expected for it.
    #[error("the peer proved another key than the one the registry lists for it")]
    WrongKey {
        /// The key the registry lists.
        expected: PublicKey,
        /// The key the peer proved.
        got: PublicKey,
    },
}

/// One side of a Noise XX handshake.
#[derive(Debug)]
pub struct Handshake {
    state: Box<snow::HandshakeState>,
    /// The caller's expectation of the callee's key; `None` on the callee.
    expected: Option<PublicKey>,
}

impl Handshake {
    /// The caller's side and its first message. `seed` is fresh randomness
    /// for the ephemeral key; `expected` the key the registry lists for the
    /// callee.
    pub fn initiator(
        local: &PrivateKey,
        seed: [u8; 32],
        prologue: &[u8],
        expected: PublicKey,
    ) -> (Self, Vec<u8>) {
        let mut handshake =
            Self { state: Box::new(build(local, seed, prologue, true)), expected: Some(expected) };
        let first = handshake.write();
        (handshake, first)
    }

    /// The callee's side, once the caller's preamble (and so the prologue)
    /// is known.
    pub fn responder(local: &PrivateKey, seed: [u8; 32], prologue: &[u8]) -> Self {
        Self { state: Box::new(build(local, seed, prologue, false)), expected: None }
    }

    /// Reads the peer's next handshake message and returns ours, if one is
    /// due.
    pub fn read(&mut self, msg: &[u8]) -> Result<Option<Vec<u8>>, HandshakeError> {
        if self.state.is_handshake_finished()
            || self.state.is_my_turn()
            || msg.len() > MAX_HANDSHAKE_MSG_LEN
        {
            return Err(HandshakeError::Invalid);
        }
        let mut payload = [0; MAX_HANDSHAKE_MSG_LEN];
        match self.state.read_message(msg, &mut payload) {
            Ok(0) => {}
            Ok(_) | Err(_) => return Err(HandshakeError::Invalid),
        }
        if let (Some(expected), Some(got)) = (self.expected, self.remote_key()) {
            if expected != got {
                return Err(HandshakeError::WrongKey { expected, got });
            }
        }
        if self.state.is_my_turn() && !self.state.is_handshake_finished() {
            return Ok(Some(self.write()));
        }
        Ok(None)
    }

    /// Whether all three messages have been sent and received.
    pub fn is_finished(&self) -> bool {
        self.state.is_handshake_finished()
    }

    /// The transport keys and the peer's proven static key; `None` while the
    /// handshake is not finished.
    pub fn finish(self) -> Option<(Transport, PublicKey)> {
        let remote = self.remote_key()?;
        let state = self.state.into_transport_mode().ok()?;
        Some((Transport::new(state), remote))
    }

    /// The peer's static key, once a message has proved it.
    fn remote_key(&self) -> Option<PublicKey> {
        let bytes = self.state.get_remote_static()?;
        Some(PublicKey(bytes.try_into().ok()?))
    }

    /// Writes our next message, with an empty payload.
    #[allow(clippy::expect_used)] // See the comment inside.
    fn write(&mut self) -> Vec<u8> {
        let mut msg = vec![0; MAX_HANDSHAKE_MSG_LEN];
        // It is our turn, the payload is empty and the buffer holds the
        // longest XX message, so snow cannot refuse; the RNG never fails.
        let n = self.state.write_message(&[], &mut msg).expect("our turn, room for the message");
        msg.truncate(n);
        msg
    }
}

#[allow(clippy::expect_used)] // See the comment inside.
fn build(
    local: &PrivateKey,
    seed: [u8; 32],
    prologue: &[u8],
    initiator: bool,
) -> snow::HandshakeState {
    debug_assert!(prologue.len() <= MAX_NOISE_MSG_LEN);
    // NOISE_PARAMS parses, the resolver provides every primitive it names and
    // a 32-byte key is the right length, so building cannot fail.
    let params = NOISE_PARAMS.parse().expect("NOISE_PARAMS is a valid Noise name");
    let builder = snow::Builder::with_resolver(params, Box::new(SeededResolver::new(seed)))
        .local_private_key(local.as_bytes())
        .expect("a 32-byte X25519 key")
        .prologue(prologue)
        .expect("prologue set once");
    if initiator {
        builder.build_initiator().expect("complete handshake parameters")
    } else {
        builder.build_responder().expect("complete handshake parameters")
    }
}
