//! A bounded cache of open segment files, so a warm read is one `pread` instead of
//! open + pread + close.
//!
//! Bounded because a 100 GiB cache has ~25k segments while the process has a limited number of
//! descriptors (the budget is a quarter of `RLIMIT_NOFILE`, at most 4096). Sharded by
//! (key, segment) rather than by blob, so the segments of one huge blob spread over all shards
//! and share the whole budget. Entries carry the segment's incarnation: a stale descriptor of an
//! evicted file is never handed out for its successor.
//!
//! Lock order: an index shard may be held while locking an fd shard, never the reverse. Entries
//! are removed under the index shard lock when their segment is deleted, so no descriptor of a
//! deleted file lingers (it would pin the file's disk space).

use std::fs::File;
use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use super::key::BlobKey;

const SHARDS: usize = 16;

/// (incarnation, open file) per (key, segment).
type Slot = (u64, Arc<File>);
type FdShard = Mutex<LruCache<(BlobKey, u64), Slot>>;

pub(crate) struct FdCache {
    shards: Box<[FdShard]>,
}

impl FdCache {
    pub(crate) fn new(budget: usize) -> Self {
        let per_shard = NonZeroUsize::new((budget / SHARDS).max(4)).unwrap_or(NonZeroUsize::MIN);
        FdCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per_shard)))
                .collect(),
        }
    }

    fn shard(&self, key: &BlobKey, seg: u64) -> &FdShard {
        // Mix the segment number so consecutive segments of one blob land on different shards.
        let h = key.shard_bits() ^ seg.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        &self.shards[(h.rotate_right(32) % SHARDS as u64) as usize]
    }

    /// The open file of this incarnation of the segment, if cached.
    pub(crate) fn get(&self, key: &BlobKey, seg: u64, incarnation: u64) -> Option<Arc<File>> {
        let mut shard = self.shard(key, seg).lock();
        match shard.get(&(*key, seg)) {
            Some((inc, f)) if *inc == incarnation => Some(Arc::clone(f)),
            _ => None,
        }
    }

    pub(crate) fn insert(&self, key: &BlobKey, seg: u64, incarnation: u64, file: Arc<File>) {
        self.shard(key, seg)
            .lock()
            .put((*key, seg), (incarnation, file));
    }

    pub(crate) fn remove(&self, key: &BlobKey, seg: u64) {
        self.shard(key, seg).lock().pop(&(*key, seg));
    }
}

/// A quarter of the soft `RLIMIT_NOFILE` (the rest is for FUSE, sockets and callers), between
/// 64 and 4096. The daemon may raise its soft limit before opening the cache to get more.
pub(crate) fn default_budget() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    let soft = if ok { lim.rlim_cur } else { 1024 };
    (soft / 4).clamp(64, 4096) as usize
}
