//! Network shaping: a fixed delay before each response and a per-connection bandwidth cap on
//! response bodies (a virtual-clock token bucket with 5 ms granularity, so the rate is smooth
//! rather than bursty). Both can be changed at run time.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Largest piece of body sent at once while shaping at `rate` bytes/s, also the burst
/// allowance: 5 ms worth of the rate (250 KB at 50 MB/s), between 16 and 256 KiB. Smooth at the
/// scale of a round trip, and at high rates 4x fewer timer wake-ups than fixed 64 KiB pieces
/// (the emulator shares the CPU with the client being measured).
pub fn shaping_piece(rate: u64) -> usize {
    usize::try_from(rate / 200)
        .unwrap_or(usize::MAX)
        .clamp(16 * 1024, 256 * 1024)
}

/// Current shaping settings, shared by all connections.
pub struct Shaping {
    latency_ms: AtomicU64,
    /// Bytes per second; 0 = unlimited.
    bandwidth: AtomicU64,
}

impl Shaping {
    pub fn new(latency_ms: u64, bandwidth: Option<u64>) -> Shaping {
        Shaping {
            latency_ms: AtomicU64::new(latency_ms),
            bandwidth: AtomicU64::new(bandwidth.unwrap_or(0)),
        }
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Relaxed))
    }

    pub fn bandwidth(&self) -> Option<u64> {
        Some(self.bandwidth.load(Relaxed)).filter(|&b| b > 0)
    }

    pub fn set(&self, latency_ms: u64, bandwidth: Option<u64>) {
        self.latency_ms.store(latency_ms, Relaxed);
        self.bandwidth.store(bandwidth.unwrap_or(0), Relaxed);
    }
}

/// One connection's bucket: the time at which everything sent so far "has left" at the rate.
pub struct Bucket {
    clock: Mutex<Instant>,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            clock: Mutex::new(Instant::now()),
        }
    }
}

impl Bucket {
    /// Accounts `n` bytes at `rate` bytes/s; returns when they may be sent, if not now. Idle
    /// time earns at most one piece of credit, so a pause never allows a long burst.
    pub fn reserve(&self, n: usize, rate: u64) -> Option<Instant> {
        let now = Instant::now();
        let burst = Duration::from_secs_f64(shaping_piece(rate) as f64 / rate as f64);
        let mut clock = self.clock.lock();
        let start = (*clock).max(now.checked_sub(burst).unwrap_or(now));
        *clock = start + Duration::from_secs_f64(n as f64 / rate as f64);
        let ready = clock.checked_sub(burst).unwrap_or(*clock);
        (ready > now).then_some(ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_paces_at_the_rate() {
        let b = Bucket::default();
        // 1 MiB/s; the first piece goes out at once (burst allowance).
        let rate = 1 << 20;
        let piece = shaping_piece(rate);
        assert!(b.reserve(piece, rate).is_none());
        // 1 MiB more must be scheduled about one second out.
        let mut last = None;
        for _ in 0..(1 << 20) / piece {
            last = b.reserve(piece, rate);
        }
        let wait = last.expect("must wait").duration_since(Instant::now());
        assert!(
            wait > Duration::from_millis(850) && wait < Duration::from_millis(1050),
            "{wait:?}"
        );
    }
}
