//! Stateless address-validation cookies.
//!
//! A cookie is SipHash-2-4 (128-bit output) keyed with the server's secret,
//! over the client's observed address and the current time epoch. The server
//! keeps nothing per cookie: it recomputes the hash to check one. A cookie is
//! accepted during the epoch it was minted in and the next one, so it lives
//! between [`COOKIE_EPOCH`] and twice that.

use std::hash::Hasher;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use siphasher::sip128::{Hasher128, SipHasher24};

use crate::registry_msg::{COOKIE_LEN, Cookie};

/// Length of one cookie epoch.
pub const COOKIE_EPOCH: Duration = Duration::from_secs(60);

/// The server's secret for minting cookies. The caller picks it, from the
/// OS's randomness in production and from a fixed value in tests.
#[derive(Clone)]
pub struct CookieKey(pub [u8; 16]);

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey(..)")
    }
}

/// Mints and checks cookies against a key and a time origin.
#[derive(Debug, Clone)]
pub(crate) struct CookieJar {
    key: CookieKey,
    origin: Instant,
}

impl CookieJar {
    pub(crate) fn new(key: CookieKey, origin: Instant) -> Self {
        Self { key, origin }
    }

    /// A cookie for `addr`, valid now and through the next epoch.
    pub(crate) fn mint(&self, now: Instant, addr: SocketAddr) -> Cookie {
        self.hash(self.epoch(now), addr)
    }

    /// [`check_since`](Self::check_since) at `now`.
    #[cfg(test)]
    pub(crate) fn check(&self, now: Instant, addr: SocketAddr, cookie: &Cookie) -> bool {
        self.check_since(now.saturating_duration_since(self.origin), addr, cookie)
    }

    /// Whether `cookie` was minted for `addr` in this epoch or the last one,
    /// `since` the jar's origin. One hash in the common case: the previous
    /// epoch's is computed only when the current one's does not match.
    /// (Which epoch matched is no secret; each comparison takes the same
    /// time wherever it differs.)
    pub(crate) fn check_since(&self, since: Duration, addr: SocketAddr, cookie: &Cookie) -> bool {
        let epoch = since.as_secs() / COOKIE_EPOCH.as_secs();
        ct_eq(&self.hash(epoch, addr).0, &cookie.0)
            || (epoch > 0 && ct_eq(&self.hash(epoch - 1, addr).0, &cookie.0))
    }

    fn epoch(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin);
        since.as_secs() / COOKIE_EPOCH.as_secs()
    }

    /// SipHash-2-4 over the epoch (8 bytes), the family (4 or 6), the IP's
    /// octets and the port (2 bytes), integers in native byte order, as
    /// `Hasher::write_u64` and `write_u16` would feed them, in one write.
    fn hash(&self, epoch: u64, addr: SocketAddr) -> Cookie {
        let mut input = [0u8; 8 + 1 + 16 + 2];
        input[..8].copy_from_slice(&epoch.to_ne_bytes());
        let len = match addr {
            SocketAddr::V4(a) => {
                input[8] = 4;
                input[9..13].copy_from_slice(&a.ip().octets());
                13
            }
            SocketAddr::V6(a) => {
                input[8] = 6;
                input[9..25].copy_from_slice(&a.ip().octets());
                25
            }
        };
        input[len..len + 2].copy_from_slice(&addr.port().to_ne_bytes());
        let mut h = SipHasher24::new_with_key(&self.key.0);
        h.write(&input[..len + 2]);
        let mut out = [0; COOKIE_LEN];
        out.copy_from_slice(&h.finish128().as_bytes());
        Cookie(out)
    }
}

/// Compares two secrets (cookies, relay tags) in time independent of where
/// they differ.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jar() -> (CookieJar, Instant) {
        let t0 = Instant::now();
        (CookieJar::new(CookieKey([7; 16]), t0), t0)
    }

    #[test]
    fn valid_for_its_epoch_and_the_next() {
        let (jar, t0) = jar();
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let c = jar.mint(t0, a);
        assert!(jar.check(t0, a, &c));
        assert!(jar.check(t0 + COOKIE_EPOCH, a, &c));
        assert!(!jar.check(t0 + 2 * COOKIE_EPOCH, a, &c));
    }

    #[test]
    fn bound_to_address_and_key() {
        let (jar, t0) = jar();
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        let c = jar.mint(t0, a);
        assert!(!jar.check(t0, b, &c));
        let other = CookieJar::new(CookieKey([8; 16]), t0);
        assert!(!other.check(t0, a, &c));
    }

    /// The construction `docs/PROTOCOL.md` describes, spelled out byte by byte.
    #[test]
    fn hash_input_is_epoch_family_octets_port() {
        let (jar, t0) = jar();
        let expect = |epoch: u64, family: u8, octets: &[u8], port: u16| {
            let mut h = SipHasher24::new_with_key(&[7; 16]);
            let bytes = [&epoch.to_ne_bytes()[..], &[family], octets, &port.to_ne_bytes()];
            h.write(&bytes.concat());
            Cookie(h.finish128().as_bytes())
        };
        let v4: SocketAddr = "192.0.2.1:4000".parse().expect("valid address");
        assert_eq!(jar.mint(t0, v4), expect(0, 4, &[192, 0, 2, 1], 4000));
        let ip6: std::net::Ipv6Addr = "2001:db8::1".parse().expect("valid address");
        let v6 = SocketAddr::new(ip6.into(), 4001);
        let octets = ip6.octets();
        let later = t0 + 3 * COOKIE_EPOCH;
        assert_eq!(jar.mint(later, v6), expect(3, 6, &octets, 4001));
    }
}
