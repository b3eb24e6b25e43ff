//! Counters of the block cache, kept in atomics so the hot path never locks to count.

use std::sync::atomic::{AtomicU64, Ordering};

use super::pin::PinnedTotals;

/// A snapshot of the cache counters (monotonic since open, except the byte gauges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Bytes on disk accounted against the cap (allocated blocks + sidecars + in-flight writes).
    pub used_bytes: u64,
    pub max_bytes: u64,
    /// Of `used_bytes`, the bytes of blobs whose data file is handed out (pinned).
    pub pinned_bytes: u64,
    /// Blobs with at least one pin.
    pub pinned_blobs: u64,
    /// `read_block` calls that returned bytes.
    pub hits: u64,
    /// `read_block` calls that returned None (absent or dropped as corrupt).
    pub misses: u64,
    /// Regions punched out or blobs deleted to stay under the cap.
    pub evictions: u64,
    /// Blocks that failed their checksum or were truncated and were dropped.
    pub corrupt_dropped: u64,
    /// Blocks stored by `write_block`.
    pub blocks_written: u64,
    /// Blob files opened (creations included); warm reads open nothing.
    pub file_opens: u64,
    /// Of `blocks_written`, blocks written with `O_DIRECT` (no page-cache copy, see direct.rs).
    pub direct_writes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
    pub corrupt_dropped: AtomicU64,
    pub blocks_written: AtomicU64,
    pub file_opens: AtomicU64,
    pub direct_writes: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(
        &self,
        used_bytes: u64,
        max_bytes: u64,
        pinned: &PinnedTotals,
    ) -> CacheStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            used_bytes,
            max_bytes,
            pinned_bytes: get(&pinned.bytes),
            pinned_blobs: get(&pinned.blobs),
            hits: get(&self.hits),
            misses: get(&self.misses),
            evictions: get(&self.evictions),
            corrupt_dropped: get(&self.corrupt_dropped),
            blocks_written: get(&self.blocks_written),
            file_opens: get(&self.file_opens),
            direct_writes: get(&self.direct_writes),
        }
    }
}
