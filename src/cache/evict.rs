//! Staying under the size cap: write reservations and LRU eviction by segment.
//!
//! A writer reserves the bytes it is about to add before touching the disk; a reservation is
//! only granted while accounted bytes (stored + reserved) stay within `max_bytes`, so the cap
//! holds at every instant, not just eventually. When a reservation does not fit, one writer at
//! a time runs an eviction pass: it deletes the least recently used segments until usage drops
//! to the target, leaving 1/64 of the cap free so passes (which scan the whole index) are rare.

use std::sync::atomic::{AtomicU64, Ordering};

use super::block_cache::BlockCache;
use super::key::BlobKey;
use super::stats::Counters;

/// Bytes accounted in `used` on behalf of a write in progress; released on drop unless handed
/// over to a segment with [`Reservation::commit`].
pub(super) struct Reservation<'a> {
    used: &'a AtomicU64,
    bytes: u64,
}

impl Reservation<'_> {
    /// `n` reserved bytes now belong to a segment's `bytes` (stay accounted).
    pub(super) fn commit(&mut self, n: u64) {
        self.bytes -= n;
    }

    /// `n` reserved bytes are not needed after all.
    pub(super) fn release(&mut self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
        self.bytes -= n;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.used.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

impl BlockCache {
    /// Reserves `need` bytes, evicting if necessary. None if they cannot fit: more than the cap,
    /// or everything left is reserved by writes in progress.
    pub(super) fn reserve(&self, need: u64) -> Option<Reservation<'_>> {
        if need > self.max_bytes {
            return None;
        }
        loop {
            if let Some(r) = self.try_reserve(need) {
                return Some(r);
            }
            let _pass = self.evict_lock.lock();
            if let Some(r) = self.try_reserve(need) {
                return Some(r); // another writer's pass made room
            }
            let room = self.max_bytes - need;
            let target = room - (self.max_bytes / 64).min(room);
            if self.evict_to(target) == 0 {
                return self.try_reserve(need); // nothing left to evict
            }
        }
    }

    /// Grants a reservation if it fits right now (no eviction).
    fn try_reserve(&self, need: u64) -> Option<Reservation<'_>> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                (cur + need <= self.max_bytes).then_some(cur + need)
            })
            .ok()
            .map(|_| Reservation {
                used: &self.used,
                bytes: need,
            })
    }

    /// Deletes least recently used segments until accounted bytes are at most `target`; returns
    /// the bytes freed. Caller holds `evict_lock`.
    pub(super) fn evict_to(&self, target: u64) -> u64 {
        let mut candidates: Vec<(u64, BlobKey, u64, u64)> = Vec::new();
        self.index.for_each_shard(|shard| {
            for (key, blob) in &shard.blobs {
                for (seg, s) in &blob.segments {
                    candidates.push((s.last_used, *key, *seg, s.incarnation));
                }
            }
        });
        candidates.sort_unstable_by_key(|c| c.0);
        let mut freed = 0;
        for (last_used, key, seg, incarnation) in candidates {
            if self.used.load(Ordering::Acquire) <= target {
                break;
            }
            let mut shard = self.index.lock(&key);
            // Skip segments replaced or used since the scan: they are no longer the oldest.
            let unchanged = shard
                .blobs
                .get(&key)
                .and_then(|b| b.segments.get(&seg))
                .is_some_and(|s| s.incarnation == incarnation && s.last_used == last_used);
            if unchanged {
                freed += self.remove_segment_locked(&mut shard, &key, seg).bytes;
                Counters::bump(&self.counters.evictions);
            }
        }
        freed
    }
}
