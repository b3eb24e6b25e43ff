//! A bounded cache of open blob files (data file + sidecar), so a warm read is one `pread`
//! instead of open + pread + close.
//!
//! Bounded because a cache may hold many thousands of blobs while the process has a limited
//! number of descriptors (the budget is a quarter of `RLIMIT_NOFILE`, at most 4096, up to three
//! per blob: data, sidecar, and the data file's `O_DIRECT` descriptor once written to). Entries
//! carry the blob's incarnation: a stale descriptor of a deleted file is never handed out for
//! its successor.
//!
//! Lock order: an index shard may be held while locking an fd shard, never the reverse. Entries
//! are removed under the index shard lock when their blob is deleted, so no descriptor of a
//! deleted file lingers (it would pin the file's disk space).

use std::fs::File;
use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use super::key::BlobKey;

const SHARDS: usize = 16;

/// The open files of one cached blob.
#[derive(Debug)]
pub(crate) struct BlobFiles {
    /// The content, read and written at natural offsets.
    pub data: File,
    /// The sidecar (records, marks, stamps).
    pub meta: File,
    /// `data` opened again for `O_DIRECT` writes, on the first write (None inside: the
    /// filesystem refuses `O_DIRECT`). See `direct.rs`.
    direct: std::sync::OnceLock<Option<File>>,
}

impl BlobFiles {
    /// Opens an existing blob's files for reading and writing.
    pub(crate) fn open(paths: &super::sidecar::BlobPaths) -> std::io::Result<BlobFiles> {
        let open = |p: &std::path::Path| std::fs::OpenOptions::new().read(true).write(true).open(p);
        Ok(BlobFiles::new(open(&paths.data)?, open(&paths.meta)?))
    }

    pub(crate) fn new(data: File, meta: File) -> BlobFiles {
        BlobFiles {
            data,
            meta,
            direct: std::sync::OnceLock::new(),
        }
    }

    /// The `O_DIRECT` descriptor of the data file, opened on first use.
    pub(crate) fn direct(&self) -> Option<&File> {
        self.direct
            .get_or_init(|| super::direct::open_for(&self.data))
            .as_ref()
    }
}

/// (incarnation, open files) per blob.
type Slot = (u64, Arc<BlobFiles>);
type FdShard = Mutex<LruCache<BlobKey, Slot>>;

pub(crate) struct FdCache {
    shards: Box<[FdShard]>,
}

impl FdCache {
    /// `budget` descriptors in all (each entry holds up to three).
    pub(crate) fn new(budget: usize) -> Self {
        let per_shard =
            NonZeroUsize::new((budget / 3 / SHARDS).max(2)).unwrap_or(NonZeroUsize::MIN);
        FdCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per_shard)))
                .collect(),
        }
    }

    fn shard(&self, key: &BlobKey) -> &FdShard {
        // Other bits than the index shard's, so one index shard spreads over all fd shards.
        &self.shards[(key.shard_bits().rotate_right(32) % SHARDS as u64) as usize]
    }

    /// The open files of this incarnation of the blob, if cached.
    pub(crate) fn get(&self, key: &BlobKey, incarnation: u64) -> Option<Arc<BlobFiles>> {
        let mut shard = self.shard(key).lock();
        match shard.get(key) {
            Some((inc, f)) if *inc == incarnation => Some(Arc::clone(f)),
            _ => None,
        }
    }

    pub(crate) fn insert(&self, key: &BlobKey, incarnation: u64, files: Arc<BlobFiles>) {
        self.shard(key).lock().put(*key, (incarnation, files));
    }

    pub(crate) fn remove(&self, key: &BlobKey) {
        self.shard(key).lock().pop(key);
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
