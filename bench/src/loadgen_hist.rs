//! A latency histogram of fixed size: log-linear buckets (64 per power of
//! two, so about 1.6% relative precision) from 1 ns to about 68 s.

/// Sub-buckets per power of two.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Powers of two covered above the linear range (2^36 ns ≈ 68 s).
const POWERS: usize = 36;
/// Every latency at or above the top bucket falls into it.
const BUCKETS: usize = SUB as usize * (POWERS + 1);

/// Latencies in nanoseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: vec![0; BUCKETS], total: 0 }
    }
}

impl Histogram {
    /// Records one latency.
    pub fn record(&mut self, ns: u64) {
        let i = bucket(ns).min(BUCKETS - 1);
        self.counts[i] += 1;
        self.total += 1;
    }

    /// The latency at quantile `q` (0.0 to 1.0), in nanoseconds: the
    /// lower edge of its bucket. `None` when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(lower_edge(i));
            }
        }
        Some(lower_edge(BUCKETS - 1))
    }
}

fn bucket(ns: u64) -> usize {
    if ns < SUB {
        return ns as usize;
    }
    let power = 63 - ns.leading_zeros(); // >= SUB_BITS
    let shift = power - SUB_BITS;
    let mantissa = (ns >> shift) - SUB; // 0..SUB
    ((shift as u64 + 1) * SUB + mantissa) as usize
}

fn lower_edge(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    (SUB + i % SUB) << shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_values_within_their_precision() {
        for ns in [0, 1, 63, 64, 65, 127, 128, 1000, 12_345, 987_654_321] {
            let edge = lower_edge(bucket(ns));
            assert!(edge <= ns, "{ns}: edge {edge}");
            assert!(ns - edge <= ns / 64, "{ns}: edge {edge}");
        }
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let mut h = Histogram::default();
        for ns in 1..=1000 {
            h.record(ns * 1000);
        }
        let p50 = h.quantile(0.5).expect("recorded");
        let p99 = h.quantile(0.99).expect("recorded");
        assert!((492_000..=500_000).contains(&p50), "p50 {p50}");
        assert!((975_000..=990_000).contains(&p99), "p99 {p99}");
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
