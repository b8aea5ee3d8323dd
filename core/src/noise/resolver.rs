//! What snow runs on: randomness from a seed the caller provides, and the
//! AEAD from `ring`.
//!
//! snow asks its resolver for a random source; ours is a ChaCha20 stream
//! keyed with 32 bytes from the caller (the OS in the client, a seeded RNG in
//! the simulator and fuzzers). AES-256-GCM, the per-message cost of a chat,
//! comes from `ring`, which uses the processor's AES and carry-less multiply
//! instructions (here 0.12 ns per byte sealed in bulk, a third of ring's
//! ChaCha20-Poly1305, which chat version 2 used; see docs/PERFORMANCE.md)
//! and a constant-time software fallback where they are missing. X25519 and
//! BLAKE2s, used only in the handshake, come from snow's default resolver,
//! built without its OS random source.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

use super::TAG_LEN;

/// A resolver whose only random source is the caller's seed.
pub(super) struct SeededResolver {
    seed: [u8; 32],
}

impl SeededResolver {
    pub(super) fn new(seed: [u8; 32]) -> Self {
        Self { seed }
    }
}

struct SeededRng(ChaCha20Rng);

impl Random for SeededRng {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRng(ChaCha20Rng::from_seed(self.seed))))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        match choice {
            CipherChoice::AESGCM => Some(Box::new(RingAesGcm::default())),
            _ => DefaultResolver.resolve_cipher(choice),
        }
    }
}

/// Noise's `AESGCM` cipher functions over `ring`'s AES-256-GCM.
#[derive(Default)]
struct RingAesGcm {
    /// `None` until snow sets a key (it always does before using it).
    key: Option<LessSafeKey>,
}

/// The Noise nonce for AESGCM: 32 bits of zeros, then the counter,
/// big-endian.
fn nonce(n: u64) -> Nonce {
    let mut bytes = [0; 12];
    bytes[4..].copy_from_slice(&n.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

impl Cipher for RingAesGcm {
    fn name(&self) -> &'static str {
        "AESGCM"
    }

    #[allow(clippy::expect_used)] // A 32-byte key is what the algorithm takes.
    fn set(&mut self, key: &[u8; 32]) {
        let key = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key");
        self.key = Some(LessSafeKey::new(key));
    }

    #[allow(clippy::expect_used)] // See the comment inside.
    fn encrypt(&self, nonce_n: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        // snow sets the key before any encryption and sizes `out` for the
        // plaintext and its tag; ring seals any length snow can send.
        let key = self.key.as_ref().expect("snow sets the key first");
        let (body, rest) = out.split_at_mut(plaintext.len());
        body.copy_from_slice(plaintext);
        let tag = key
            .seal_in_place_separate_tag(nonce(nonce_n), Aad::from(authtext), body)
            .expect("a Noise message is far below ring's limit");
        rest[..TAG_LEN].copy_from_slice(tag.as_ref());
        plaintext.len() + TAG_LEN
    }

    fn decrypt(
        &self,
        nonce_n: u64,
        authtext: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, snow::Error> {
        let Some(key) = self.key.as_ref() else { return Err(snow::Error::Decrypt) };
        let Some((body, tag)) = ciphertext.split_last_chunk::<TAG_LEN>() else {
            return Err(snow::Error::Decrypt);
        };
        let out = out.get_mut(..body.len()).ok_or(snow::Error::Decrypt)?;
        out.copy_from_slice(body);
        key.open_in_place_separate_tag(
            nonce(nonce_n),
            Aad::from(authtext),
            Tag::from(*tag),
            out,
            0..,
        )
        .map_err(|_| snow::Error::Decrypt)?;
        Ok(body.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ring and snow's own AESGCM (RustCrypto's, built for the tests only)
    /// agree byte for byte, rekey included: the nonce's byte order, the
    /// tag and the associated data are Noise's.
    #[test]
    fn ring_matches_the_default_cipher() {
        let mut ours = RingAesGcm::default();
        let mut theirs = DefaultResolver.resolve_cipher(&CipherChoice::AESGCM).expect("AESGCM");
        let key = [9; 32];
        ours.set(&key);
        theirs.set(&key);
        for round in 0..3 {
            for len in [0, 1, 63, 64, 100, 1000] {
                let plain: Vec<u8> = (0..len).map(|i| (i * 7 + round) as u8).collect();
                let (mut a, mut b) = (vec![0; len + TAG_LEN], vec![0; len + TAG_LEN]);
                let n = u64::from(round as u8) * 1000 + len as u64;
                assert_eq!(ours.encrypt(n, b"ad", &plain, &mut a), len + TAG_LEN);
                theirs.encrypt(n, b"ad", &plain, &mut b);
                assert_eq!(a, b, "len {len}");
                let mut opened = vec![0; len];
                assert_eq!(ours.decrypt(n, b"ad", &a, &mut opened), Ok(len));
                assert_eq!(opened, plain);
                a[len / 2] ^= 1;
                assert_eq!(ours.decrypt(n, b"ad", &a, &mut opened), Err(snow::Error::Decrypt));
                assert_eq!(ours.decrypt(n + 1, b"ad", &b, &mut opened), Err(snow::Error::Decrypt));
            }
            ours.rekey();
            theirs.rekey();
        }
    }
}
