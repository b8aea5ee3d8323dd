//! Long-term identity keys: X25519 key pairs and the fingerprints people
//! compare.
//!
//! A user's identity is one X25519 key pair. The public half is published by
//! the registry next to the user's name and proved in every chat's Noise
//! handshake; the private half never leaves the user's identity file. The
//! caller creates the private key from 32 random bytes: this crate asks the OS
//! for nothing.

use std::fmt;

use serde::{Deserialize, Serialize};
use snow::params::{DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};

/// Length of an X25519 public or private key, in bytes.
pub const KEY_LEN: usize = 32;

/// Number of five-digit groups in a [`Fingerprint`].
pub const FINGERPRINT_GROUPS: usize = 6;

/// Domain separation for fingerprints, hashed in front of the key.
const FINGERPRINT_DOMAIN: &[u8] = b"p2pchat fingerprint v1";

/// A user's long-term X25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; KEY_LEN]);

impl PublicKey {
    /// The digits people read to each other to compare this key.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// A user's long-term X25519 private key. Its `Debug` form hides the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; KEY_LEN]);

impl PrivateKey {
    /// Wraps 32 bytes: fresh random bytes for a new identity, or the bytes
    /// read back from an identity file. Any 32 bytes are a valid X25519
    /// private key (they are clamped when used).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes, to store in the identity file or hand to Noise.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The matching public key.
    #[allow(clippy::expect_used)] // snow's default resolver always has X25519.
    pub fn public_key(&self) -> PublicKey {
        let mut dh = DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .expect("the default resolver implements Curve25519");
        dh.set(&self.0);
        let mut out = [0; KEY_LEN];
        out.copy_from_slice(dh.pubkey());
        PublicKey(out)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

/// What two people compare to know they hold each other's real key: thirty
/// decimal digits in [`FINGERPRINT_GROUPS`] groups of five, like Signal's
/// safety numbers.
///
/// Derivation: `H = BLAKE2s-256("p2pchat fingerprint v1" || public key)`;
/// group `i` (0-based) is the big-endian integer of bytes `5i .. 5i+5` of
/// `H`, modulo 100,000, written with five digits. Thirty digits carry about
/// 99.7 bits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint([u32; FINGERPRINT_GROUPS]);

impl Fingerprint {
    #[allow(clippy::expect_used)] // snow's default resolver always has BLAKE2s.
    fn of(key: &PublicKey) -> Self {
        let mut hash = DefaultResolver
            .resolve_hash(&HashChoice::Blake2s)
            .expect("the default resolver implements BLAKE2s");
        hash.input(FINGERPRINT_DOMAIN);
        hash.input(&key.0);
        let mut digest = [0; 64];
        hash.result(&mut digest);
        let mut groups = [0; FINGERPRINT_GROUPS];
        for (group, chunk) in groups.iter_mut().zip(digest.chunks_exact(5)) {
            let n = chunk.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b));
            // Below 100,000, so it fits in a u32.
            *group = (n % 100_000) as u32;
        }
        Self(groups)
    }

    /// Reads a fingerprint as a person types it: thirty digits, with any
    /// spaces, dashes or colons between them. `None` if it is not thirty
    /// digits.
    pub fn parse(text: &str) -> Option<Self> {
        let mut digits = text.chars().filter(|c| !matches!(c, ' ' | '-' | ':' | '\t'));
        let mut groups = [0; FINGERPRINT_GROUPS];
        for group in &mut groups {
            for _ in 0..5 {
                *group = *group * 10 + digits.next()?.to_digit(10)?;
            }
        }
        digits.next().is_none().then_some(Self(groups))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, group) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{group:05}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_matches_rfc7748() {
        // RFC 7748 section 6.1, Alice's key pair.
        let private = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let public = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        assert_eq!(PrivateKey::from_bytes(private).public_key(), PublicKey(public));
    }

    #[test]
    fn fingerprint_prints_and_parses() {
        let key = PrivateKey::from_bytes([7; KEY_LEN]).public_key();
        let fp = key.fingerprint();
        let text = fp.to_string();
        assert_eq!(text.len(), 6 * 5 + 5);
        assert!(text.split(' ').all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit())));
        assert_eq!(Fingerprint::parse(&text), Some(fp));
        assert_eq!(Fingerprint::parse(&text.replace(' ', "")), Some(fp));
        assert_eq!(Fingerprint::parse(&text.replace(' ', "-")), Some(fp));
        assert_eq!(Fingerprint::parse(&text[1..]), None);
        assert_eq!(Fingerprint::parse(&format!("{text}1")), None);
        assert_eq!(Fingerprint::parse(&text.replace('0', "x")).is_some(), !text.contains('0'));
        let other = PrivateKey::from_bytes([8; KEY_LEN]).public_key();
        assert_ne!(other.fingerprint(), fp);
    }

    #[test]
    fn private_key_debug_hides_bytes() {
        assert_eq!(format!("{:?}", PrivateKey::from_bytes([0xab; KEY_LEN])), "PrivateKey(..)");
    }

    fn hex(s: &str) -> [u8; KEY_LEN] {
        let mut out = [0; KEY_LEN];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
