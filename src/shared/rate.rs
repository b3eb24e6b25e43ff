//! A running estimate of a source's throughput (bytes per second of one request), so the read
//! path can tell a shared tier that is slower than the Hub from one that pays off.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Weight of a new sample: a few requests move the estimate, one outlier does not.
const WEIGHT: f64 = 0.25;

/// Bytes per second, as f64 bits (0: nothing measured yet).
#[derive(Debug, Default)]
pub struct Rate(AtomicU64);

impl Rate {
    /// Adds one request that moved `bytes` in `took`. Two racing updates may lose one sample:
    /// harmless for an estimate.
    pub fn sample(&self, bytes: u64, took: Duration) {
        let secs = took.as_secs_f64().max(1e-6);
        let now = bytes as f64 / secs;
        let old = self.get();
        let new = if old == 0.0 {
            now
        } else {
            old + WEIGHT * (now - old)
        };
        self.0.store(new.to_bits(), Ordering::Relaxed);
    }

    /// The estimate in bytes per second; 0 until the first sample.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// How long `bytes` take at the estimated rate (None: nothing measured yet).
    pub fn time_for(&self, bytes: u64) -> Option<Duration> {
        let r = self.get();
        (r > 0.0).then(|| Duration::from_secs_f64(bytes as f64 / r))
    }

    /// For status: MiB/s with one decimal.
    pub fn mib_s(&self) -> f64 {
        (self.get() / (1 << 20) as f64 * 10.0).round() / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_the_first_sample_then_moves_by_a_quarter() {
        let r = Rate::default();
        assert_eq!(r.time_for(1), None);
        r.sample(100, Duration::from_secs(1));
        assert_eq!(r.get(), 100.0);
        r.sample(500, Duration::from_secs(1));
        assert_eq!(r.get(), 200.0);
        assert_eq!(r.time_for(400), Some(Duration::from_secs(2)));
    }
}
