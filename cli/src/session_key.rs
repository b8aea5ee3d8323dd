//! The key this client logs in to the registry with.
//!
//! STOPGAP, to be replaced by the identity file: until it lands, every run
//! makes a fresh key pair that lives as long as the process. Only
//! [`ephemeral_identity`] is called from outside, so replacing it with
//! "load or create the identity file" changes nothing else.

use anyhow::anyhow;
use p2pchat_core::{KEY_LEN, PrivateKey};

/// A new private key from the OS's randomness, for this run only.
pub fn ephemeral_identity() -> anyhow::Result<PrivateKey> {
    let mut bytes = [0u8; KEY_LEN];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no OS randomness for a key: {e}"))?;
    Ok(PrivateKey::from_bytes(bytes))
}
