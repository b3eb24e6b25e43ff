//! Counters of the block cache, kept in atomics so the hot path never locks to count.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the cache counters (monotonic since open, except the byte gauges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Bytes on disk accounted against the cap (segment headers + blocks + in-flight writes).
    pub used_bytes: u64,
    pub max_bytes: u64,
    /// `read_block` calls that returned bytes.
    pub hits: u64,
    /// `read_block` calls that returned None (absent or dropped as corrupt).
    pub misses: u64,
    /// Segments deleted to stay under the cap.
    pub evictions: u64,
    /// Blocks that failed their checksum or were truncated and were dropped.
    pub corrupt_dropped: u64,
    /// Blocks stored by `write_block`.
    pub blocks_written: u64,
    /// Segment files opened (creations included); warm reads open nothing.
    pub segment_opens: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
    pub corrupt_dropped: AtomicU64,
    pub blocks_written: AtomicU64,
    pub segment_opens: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, used_bytes: u64, max_bytes: u64) -> CacheStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            used_bytes,
            max_bytes,
            hits: get(&self.hits),
            misses: get(&self.misses),
            evictions: get(&self.evictions),
            corrupt_dropped: get(&self.corrupt_dropped),
            blocks_written: get(&self.blocks_written),
            segment_opens: get(&self.segment_opens),
        }
    }
}
