//! The cleartext preamble: the first frame each side sends.
//!
//! ```text
//! caller: 0x00 | version | postcard(caller name, callee name)
//! callee: 0x00 | version
//! ```
//!
//! Its first two bytes keep their meaning in every version (version 1's
//! `Hello` began the same way), so two versions can always tell each other
//! apart with a clear error. The caller's preamble is also the Noise
//! prologue (behind [`PROLOGUE_LABEL`]): the version and both names are bound
//! into the handshake, so a man in the middle cannot change them unseen.

use serde::{Deserialize, Serialize};

use crate::name::UserName;

/// The first byte of every preamble, in every version.
pub const PREAMBLE_MARKER: u8 = 0x00;

/// Hashed in front of the caller's preamble to form the Noise prologue.
const PROLOGUE_LABEL: &[u8] = b"p2pchat chat prologue\n";

/// Who calls whom, as the caller's preamble states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The caller's user name; the caller proves the key the registry lists
    /// for it.
    pub caller: UserName,
    /// The user the caller wants to reach; a callee of another name drops
    /// the connection.
    pub callee: UserName,
}

/// One side's preamble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preamble {
    /// The sender's chat protocol version.
    pub version: u8,
    /// The caller's names; `None` in the callee's preamble.
    pub call: Option<Call>,
}

/// Why a preamble was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreambleError {
    /// Not a preamble at all, or not of the shape this side expects.
    #[error("the peer's first frame is not a p2pchat preamble")]
    Malformed,
    /// A preamble of another version.
    #[error("protocol version mismatch: we speak {ours}, the peer speaks {theirs}")]
    VersionMismatch {
        /// Our version.
        ours: u8,
        /// The peer's.
        theirs: u8,
    },
}

impl Preamble {
    /// The frame payload.
    #[allow(clippy::expect_used)] // Names and byte vectors always serialize.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PREAMBLE_MARKER, self.version];
        if let Some(call) = &self.call {
            out.extend(postcard::to_allocvec(call).expect("names always serialize"));
        }
        out
    }

    /// Reads the peer's preamble; `ours` is our version, and `expect_call`
    /// whether the peer is the caller. The version is checked before
    /// anything else.
    pub fn decode(bytes: &[u8], ours: u8, expect_call: bool) -> Result<Self, PreambleError> {
        let [PREAMBLE_MARKER, version, rest @ ..] = bytes else {
            return Err(PreambleError::Malformed);
        };
        if *version != ours {
            return Err(PreambleError::VersionMismatch { ours, theirs: *version });
        }
        let call = match (expect_call, rest) {
            (false, []) => None,
            (false, _) => return Err(PreambleError::Malformed),
            (true, rest) => match postcard::take_from_bytes::<Call>(rest) {
                Ok((call, [])) => Some(call),
                Ok(_) | Err(_) => return Err(PreambleError::Malformed),
            },
        };
        Ok(Self { version: *version, call })
    }
}

/// The Noise prologue both sides use: a label, then the caller's preamble
/// exactly as it crossed the wire.
pub fn prologue(caller_preamble: &[u8]) -> Vec<u8> {
    [PROLOGUE_LABEL, caller_preamble].concat()
}
