//! Relay pairing tokens and the hello that presents one.
//!
//! The registry issues, in an introduction, one token per side of a chat.
//! A token is HMAC-SHA-256, truncated to [`RELAY_TAG_LEN`] bytes, keyed with the
//! relay's secret, over the side (caller or callee), both users' public
//! keys, a nonce and an expiry. The relay keeps nothing per issued token: it
//! recomputes the MAC from the hello. Two connections pair when they present
//! the same pair (keys, nonce, expiry) from the two different sides.
//!
//! The expiry is in whole seconds since the relay's time origin, which the
//! registry shares: both run in one `p2pchat server` process.

use std::time::{Duration, Instant};

use ring::hmac;

use crate::cookie::ct_eq;
use crate::key::{KEY_LEN, PublicKey};

/// The first four bytes of a relay hello and of a relay reply: `"p2pr"`.
pub const RELAY_MAGIC: [u8; 4] = *b"p2pr";

/// The relay protocol version in every hello and reply.
pub const RELAY_VERSION: u8 = 1;

/// Bytes of a token's MAC.
pub const RELAY_TAG_LEN: usize = 16;

/// Bytes of a relay hello: magic, version, side, two keys, nonce, expiry,
/// tag.
pub const RELAY_HELLO_LEN: usize = 4 + 1 + 1 + 2 * KEY_LEN + 8 + 8 + RELAY_TAG_LEN;

/// Bytes of the relay's reply to a hello: magic and a status byte.
pub const RELAY_REPLY_LEN: usize = 5;

/// How long a token the registry issues may be presented.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// The relay's secret for tokens. The caller picks it, from the OS's
/// randomness in production and from a fixed value in tests.
#[derive(Clone)]
pub struct RelayKey(pub [u8; 32]);

impl std::fmt::Debug for RelayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelayKey(..)")
    }
}

/// Which end of the chat a relay connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RelaySide {
    /// The user who called (the Noise initiator).
    Caller,
    /// The user who was called.
    Callee,
}

impl RelaySide {
    fn byte(self) -> u8 {
        match self {
            RelaySide::Caller => 0,
            RelaySide::Callee => 1,
        }
    }

    /// The other end.
    pub fn other(self) -> RelaySide {
        match self {
            RelaySide::Caller => RelaySide::Callee,
            RelaySide::Callee => RelaySide::Caller,
        }
    }
}

/// What identifies one relayed chat: both keys, a nonce from the registry
/// and the expiry of its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PairId {
    /// The caller's public key.
    pub caller: PublicKey,
    /// The callee's public key.
    pub callee: PublicKey,
    /// Distinguishes two introductions of the same users in one second.
    pub nonce: u64,
    /// Seconds since the relay's origin after which the tokens are refused.
    pub expiry: u64,
}

/// A relay hello: the first [`RELAY_HELLO_LEN`] bytes a client sends the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayHello {
    /// The chat it wants to join.
    pub pair: PairId,
    /// The end it is.
    pub side: RelaySide,
    /// The MAC the registry issued for this side.
    pub tag: [u8; RELAY_TAG_LEN],
}

/// Why a hello is not even well-formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RelayHelloError {
    /// Not [`RELAY_MAGIC`].
    #[error("not a relay hello")]
    BadMagic,
    /// Another relay protocol version.
    #[error("relay version {0}, we speak {RELAY_VERSION}")]
    Version(u8),
    /// A side byte other than 0 or 1.
    #[error("side byte {0} is neither caller (0) nor callee (1)")]
    BadSide(u8),
    /// Not exactly [`RELAY_HELLO_LEN`] bytes.
    #[error("a hello is {RELAY_HELLO_LEN} bytes, not {0}")]
    Length(usize),
}

/// Mints and checks tokens against a key and a time origin.
#[derive(Debug, Clone)]
pub struct TokenMint {
    key: hmac::Key,
    origin: Instant,
}

impl TokenMint {
    /// A mint for `key`; expiries count whole seconds from `origin`.
    pub fn new(key: &RelayKey, origin: Instant) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, &key.0), origin }
    }

    /// The pair id for an introduction made `now`, and the hello each side
    /// must send: `(caller's, callee's)`.
    pub fn issue(
        &self,
        now: Instant,
        caller: PublicKey,
        callee: PublicKey,
        nonce: u64,
    ) -> (RelayHello, RelayHello) {
        let expiry = self.seconds(now).saturating_add(TOKEN_LIFETIME.as_secs());
        let pair = PairId { caller, callee, nonce, expiry };
        let hello = |side| RelayHello { pair, side, tag: self.tag(&pair, side) };
        (hello(RelaySide::Caller), hello(RelaySide::Callee))
    }

    /// Whether the hello's tag is the one this mint issues for its pair and
    /// side (in time independent of where it differs).
    pub fn is_authentic(&self, hello: &RelayHello) -> bool {
        let mut msg = Vec::with_capacity(RELAY_HELLO_LEN);
        signed_bytes(&hello.pair, hello.side, &mut msg);
        // `verify` compares in constant time; it takes the full-length tag,
        // so compare the truncated one ourselves in constant time.
        let full = hmac::sign(&self.key, &msg);
        ct_eq(&full.as_ref()[..RELAY_TAG_LEN], &hello.tag)
    }

    /// Whether a pair's tokens have expired at `now`.
    pub fn is_expired(&self, now: Instant, pair: &PairId) -> bool {
        self.seconds(now) >= pair.expiry
    }

    /// The instant at which a pair's tokens expire.
    pub fn expiry_instant(&self, pair: &PairId) -> Instant {
        self.origin
            .checked_add(Duration::from_secs(pair.expiry))
            .unwrap_or(self.origin + TOKEN_LIFETIME)
    }

    fn tag(&self, pair: &PairId, side: RelaySide) -> [u8; RELAY_TAG_LEN] {
        let mut msg = Vec::with_capacity(RELAY_HELLO_LEN);
        signed_bytes(pair, side, &mut msg);
        let full = hmac::sign(&self.key, &msg);
        let mut tag = [0; RELAY_TAG_LEN];
        tag.copy_from_slice(&full.as_ref()[..RELAY_TAG_LEN]);
        tag
    }

    fn seconds(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs()
    }
}

/// What the MAC covers: the hello's bytes from the magic up to the tag.
fn signed_bytes(pair: &PairId, side: RelaySide, out: &mut Vec<u8>) {
    out.extend_from_slice(&RELAY_MAGIC);
    out.push(RELAY_VERSION);
    out.push(side.byte());
    out.extend_from_slice(&pair.caller.0);
    out.extend_from_slice(&pair.callee.0);
    out.extend_from_slice(&pair.nonce.to_be_bytes());
    out.extend_from_slice(&pair.expiry.to_be_bytes());
}

impl RelayHello {
    /// The [`RELAY_HELLO_LEN`] bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RELAY_HELLO_LEN);
        signed_bytes(&self.pair, self.side, &mut out);
        out.extend_from_slice(&self.tag);
        out
    }

    /// Decodes exactly [`RELAY_HELLO_LEN`] bytes (the tag is not checked here).
    pub fn decode(bytes: &[u8]) -> Result<Self, RelayHelloError> {
        if bytes.len() != RELAY_HELLO_LEN {
            return Err(RelayHelloError::Length(bytes.len()));
        }
        let (magic, rest) = bytes.split_at(4);
        if magic != RELAY_MAGIC {
            return Err(RelayHelloError::BadMagic);
        }
        let (head, rest) = rest.split_at(2);
        if head[0] != RELAY_VERSION {
            return Err(RelayHelloError::Version(head[0]));
        }
        let side = match head[1] {
            0 => RelaySide::Caller,
            1 => RelaySide::Callee,
            other => return Err(RelayHelloError::BadSide(other)),
        };
        let (caller, rest) = rest.split_at(KEY_LEN);
        let (callee, rest) = rest.split_at(KEY_LEN);
        let (nonce, rest) = rest.split_at(8);
        let (expiry, tag) = rest.split_at(8);
        let arr32 = |s: &[u8]| {
            let mut a = [0; KEY_LEN];
            a.copy_from_slice(s);
            a
        };
        let arr8 = |s: &[u8]| {
            let mut a = [0; 8];
            a.copy_from_slice(s);
            a
        };
        let mut t = [0; RELAY_TAG_LEN];
        t.copy_from_slice(tag);
        Ok(RelayHello {
            pair: PairId {
                caller: PublicKey(arr32(caller)),
                callee: PublicKey(arr32(callee)),
                nonce: u64::from_be_bytes(arr8(nonce)),
                expiry: u64::from_be_bytes(arr8(expiry)),
            },
            side,
            tag: t,
        })
    }
}
