//! Staying under the size cap: write reservations and LRU eviction by region.
//!
//! A writer reserves the bytes it is about to add before touching the disk; a reservation is
//! only granted while accounted bytes (stored + reserved) stay within `max_bytes`, so the cap
//! holds at every instant, not just eventually. When a reservation does not fit, one writer at
//! a time runs an eviction pass: it frees the least recently used regions (~4 MiB of a data
//! file, punched out with `fallocate`) until usage drops to the target, leaving 1/64 of the cap
//! free so passes (which scan the whole index) are rare. Pinned blobs count against the cap but
//! are never evicted: while pins hold most of it, other blobs cycle through what is left, and
//! when nothing is left a block is simply not cached (the reader is served from memory).

use std::sync::atomic::{AtomicU64, Ordering};

use super::block_cache::BlockCache;
use super::key::BlobKey;
use super::stats::Counters;

/// Bytes accounted in `used` on behalf of a write in progress; released on drop unless handed
/// over to a blob region with [`Reservation::commit`].
pub(super) struct Reservation<'a> {
    used: &'a AtomicU64,
    bytes: u64,
}

impl Reservation<'_> {
    /// `n` reserved bytes now belong to a region's or sidecar's bytes (stay accounted).
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

    /// Frees least recently used regions until accounted bytes are at most `target`; returns
    /// the bytes freed. Caller holds `evict_lock`.
    ///
    /// Doomed blobs whose pins are gone go first (this store's and its peer's). Pinned blobs are never touched (the kernel
    /// reads their data files directly), nor are regions being written. A region is punched out
    /// of its data file, except in an exported blob, which is deleted whole (see
    /// `BlobEntry::exported`); a blob left without regions is deleted.
    pub(super) fn evict_to(&self, target: u64) -> u64 {
        // A peer sharing the cap (the Xet chunk store, or the block cache seen from it) offers
        // its regions too: one LRU order over both, since their clocks are one.
        let peer = self.peer.get().and_then(std::sync::Weak::upgrade);
        let mut candidates: Vec<(u64, bool, BlobKey, u64, u64)> = Vec::new();
        let mut freed = self.evict_doomed();
        self.collect_candidates(false, &mut candidates);
        if let Some(p) = &peer {
            freed += p.evict_doomed();
            p.collect_candidates(true, &mut candidates);
        }
        candidates.sort_unstable_by_key(|c| c.0);
        for (last_used, of_peer, key, region, incarnation) in candidates {
            if self.used.load(Ordering::Acquire) <= target {
                break;
            }
            let owner = match (&peer, of_peer) {
                (Some(p), true) => p.as_ref(),
                _ => self,
            };
            freed += owner.evict_region(&key, region, last_used, incarnation);
        }
        freed
    }

    /// Deletes the doomed blobs whose pins are gone; returns the bytes freed.
    fn evict_doomed(&self) -> u64 {
        let mut doomed: Vec<BlobKey> = Vec::new();
        self.index.for_each_shard(|shard| {
            for (key, blob) in &shard.blobs {
                if blob.doomed && !blob.pinned() {
                    doomed.push(*key);
                }
            }
        });
        let mut freed = 0;
        for key in doomed {
            let mut shard = self.index.lock(&key);
            if shard
                .blobs
                .get(&key)
                .is_some_and(|b| b.doomed && !b.pinned())
            {
                freed += self.delete_blob_locked(&mut shard, &key);
            }
        }
        freed
    }

    /// Adds `(last_used, of_peer, key, region, incarnation)` for every evictable region.
    fn collect_candidates(&self, of_peer: bool, out: &mut Vec<(u64, bool, BlobKey, u64, u64)>) {
        self.index.for_each_shard(|shard| {
            for (key, blob) in &shard.blobs {
                if blob.pinned() || blob.doomed {
                    continue;
                }
                for (region, r) in &blob.regions {
                    out.push((r.last_used, of_peer, *key, *region, blob.incarnation));
                }
            }
        });
    }

    /// Frees one region found by `collect_candidates`, unless it changed since; returns the
    /// bytes freed.
    fn evict_region(&self, key: &BlobKey, region: u64, last_used: u64, incarnation: u64) -> u64 {
        let mut shard = self.index.lock(key);
        let Some(blob) = shard.blobs.get(key) else {
            return 0;
        };
        // Skip what changed since the scan: replaced, pinned, written or used meanwhile.
        let unchanged = blob.incarnation == incarnation
            && !blob.pinned()
            && !blob.doomed
            && blob
                .regions
                .get(&region)
                .is_some_and(|r| r.last_used == last_used && r.writers == 0);
        if !unchanged {
            return 0;
        }
        if blob.exported && blob.regions.values().any(|r| r.writers > 0) {
            return 0;
        }
        // The blob's last region, or an exported blob: delete it rather than punch.
        let whole = blob.exported || blob.regions.len() == 1;
        let result = if whole {
            Ok(self.delete_blob_locked(&mut shard, key))
        } else {
            self.punch_region_locked(&mut shard, key, region)
        };
        let freed = match result {
            Ok(bytes) => bytes,
            Err(e) => {
                // A filesystem without hole punching (or a failing disk): give the space
                // back by deleting the blob, which always works.
                tracing::warn!(%key, region, "could not punch a cache region ({e}); deleting the blob");
                self.delete_blob_locked(&mut shard, key)
            }
        };
        Counters::bump(&self.counters.evictions);
        freed
    }
}
