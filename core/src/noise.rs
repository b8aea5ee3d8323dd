//! The Noise layer of a chat stream: between the framing below and the chat
//! session above.
//!
//! A chat stream carries, in each direction, one cleartext [`preamble`]
//! frame (the protocol version, and for the caller the two names), then the
//! three messages of a `Noise_XX_25519_AESGCM_BLAKE2s` handshake, then
//! only transport messages: each frame's payload is one chat message sealed
//! with AES-256-GCM. This layer sees frame payloads, never frames or
//! chat messages; keys and randomness come from the caller.
//!
//! - [`Handshake`] runs the three handshake messages: payloads in, payloads
//!   out, the peer's proven static key when it is done, errors sticky.
//! - [`Transport`] seals and opens the payloads that follow, rekeying every
//!   [`REKEY_INTERVAL`] messages in each direction, as BOLT 8 does.

mod handshake;
mod preamble;
mod resolver;
mod transport;

pub use handshake::{Handshake, HandshakeError, NOISE_PARAMS};
pub use preamble::{Call, PREAMBLE_MARKER, Preamble, PreambleError, prologue};
pub use transport::{REKEY_INTERVAL, Transport, TransportError};

/// Bytes a sealed payload carries beyond its plaintext: the Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// Largest Noise message, in bytes (the Noise specification's limit).
pub const MAX_NOISE_MSG_LEN: usize = 65_535;

/// Largest plaintext that fits one Noise transport message.
pub const MAX_PLAINTEXT_LEN: usize = MAX_NOISE_MSG_LEN - TAG_LEN;
