//! A token bucket: the bandwidth cap of one relayed pair.

use std::time::{Duration, Instant};

/// Bytes a pair may send at once, refilled at a fixed rate up to a burst.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: u64,
    rate: u64,
    burst: u64,
    refilled_at: Instant,
}

const NANOS: u128 = 1_000_000_000;

impl Bucket {
    /// A full bucket of `burst` bytes refilled at `rate` bytes a second.
    pub(crate) fn new(now: Instant, rate: u64, burst: u64) -> Self {
        Self { tokens: burst, rate: rate.max(1), burst, refilled_at: now }
    }

    /// The bytes available at `now`, without changing the bucket.
    pub(crate) fn available(&self, now: Instant) -> u64 {
        self.refilled(now).0
    }

    /// Brings the bucket up to `now`.
    pub(crate) fn refill(&mut self, now: Instant) {
        (self.tokens, self.refilled_at) = self.refilled(now);
    }

    /// Takes `n` bytes (at most what is available after a refill).
    pub(crate) fn take(&mut self, now: Instant, n: u64) {
        self.refill(now);
        self.tokens = self.tokens.saturating_sub(n);
    }

    /// When the bucket will hold `want` bytes (capped at the burst), or
    /// `None` if it holds them already.
    pub(crate) fn ready_at(&self, want: u64) -> Option<Instant> {
        let want = want.min(self.burst);
        if self.tokens >= want {
            return None;
        }
        let missing = u128::from(want - self.tokens);
        let nanos = (missing * NANOS).div_ceil(u128::from(self.rate));
        let wait = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        Some(self.refilled_at.checked_add(wait).unwrap_or(self.refilled_at))
    }

    /// The tokens and refill instant at `now`: whole bytes only, the
    /// fraction left in the clock so that frequent calls lose nothing.
    fn refilled(&self, now: Instant) -> (u64, Instant) {
        if self.tokens >= self.burst {
            return (self.tokens, now);
        }
        let elapsed = now.saturating_duration_since(self.refilled_at).as_nanos();
        let added = elapsed * u128::from(self.rate) / NANOS;
        let added = u64::try_from(added).unwrap_or(u64::MAX);
        if added == 0 {
            return (self.tokens, self.refilled_at);
        }
        let tokens = self.tokens.saturating_add(added).min(self.burst);
        let used = u128::from(added) * NANOS / u128::from(self.rate);
        let used = Duration::from_nanos(u64::try_from(used).unwrap_or(u64::MAX));
        let at = if tokens >= self.burst { now } else { self.refilled_at + used };
        (tokens, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_the_rate_up_to_the_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0, 1000, 4000);
        b.take(t0, 4000);
        assert_eq!(b.available(t0), 0);
        assert_eq!(b.ready_at(1000), Some(t0 + Duration::from_secs(1)));
        assert_eq!(b.available(t0 + Duration::from_millis(500)), 500);
        // Many small refills add up to the same as one.
        for ms in 1..=1000 {
            b.refill(t0 + Duration::from_millis(ms));
        }
        assert_eq!(b.available(t0 + Duration::from_secs(1)), 1000);
        assert_eq!(b.available(t0 + Duration::from_secs(60)), 4000);
    }
}
