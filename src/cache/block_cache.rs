//! [`BlockCache`]: the content-addressed, size-capped, crash-safe store of blob blocks.
//!
//! This file holds the struct, `open` and the hot read path; the write path (`write.rs`),
//! removal (`remove.rs`), eviction (`evict.rs`), verification (`verify.rs`), pinning
//! (`pin.rs`) and the startup scan (`rebuild.rs`) are further `impl BlockCache` blocks in
//! sibling modules.
//!
//! Concurrency model: any number of threads may call any method at once. Per-block state changes
//! under the blob's index shard lock; file data is read and written with positional I/O outside
//! that lock (different blocks of one file never overlap). A block becomes visible only after
//! its data and record are on disk, so a concurrent reader either misses it or reads it whole.

use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

use super::config::CacheConfig;
use super::fds::{self, BlobFiles, FdCache};
use super::index::Index;
use super::key::BlobKey;
use super::layout::Layout;
use super::rebuild;
use super::sidecar::{self, BlobPaths};
use super::stats::{CacheStats, Counters};

/// Sub-directory of the cache root that holds the block store.
pub const BLOCKS_DIR: &str = "blocks";

/// A region's last-use stamp in the sidecar is moved forward on read at most this often:
/// recency then survives a restart to within a minute, at the cost of one small write per
/// region per minute.
pub(super) const TOUCH_INTERVAL_SECS: u64 = 60;

/// On-disk block cache shared by all reader threads (`Send + Sync`; wrap it in an `Arc`).
pub struct BlockCache {
    pub(super) root: PathBuf,
    pub(super) layout: Layout,
    pub(super) max_bytes: u64,
    pub(super) index: Index,
    pub(super) fds: FdCache,
    /// LRU clock: every read or write of a region stamps it with the next value (shared with
    /// a peer store opened by [`BlockCache::open_sharing`], so their stamps compare).
    pub(super) clock: Arc<AtomicU64>,
    pub(super) incarnations: AtomicU64,
    /// Accounted bytes: blobs' allocated bytes plus outstanding write reservations. Never
    /// exceeds `max_bytes` (reservations are only granted below the cap). Shared with a peer
    /// store opened by [`BlockCache::open_sharing`]: one cap for both.
    pub(super) used: Arc<AtomicU64>,
    /// The store sharing `used` and `clock` with this one, if any: eviction picks the least
    /// recently used regions of both (see `evict.rs`).
    pub(super) peer: std::sync::OnceLock<std::sync::Weak<BlockCache>>,
    /// Serializes eviction passes (writers that find the cache full wait for one pass).
    pub(super) evict_lock: Mutex<()>,
    pub(super) counters: Counters,
    /// Accounted bytes of the blobs that have at least one pin (shared with the pins).
    pub(super) pinned: Arc<super::pin::PinnedTotals>,
    /// Drops data-file pages the kernel already holds as the mounted file's (see `pages.rs`).
    pub(super) pages: super::pages::PageDropper,
    /// Blocks carry a crc32c, checked on every read. False for a store whose caller checks
    /// every byte it reads by other means (the Xet chunk store: chunk hashes, see
    /// [`BlockCache::open_sharing`]): its records hold 0 and reads skip the pass.
    pub(super) checksums: bool,
}

// Shared by reader threads through an Arc: keep it so.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<BlockCache>();
};

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("root", &self.root)
            .field("block_size", &self.layout.block_size())
            .field("max_bytes", &self.max_bytes)
            .field("used_bytes", &self.used.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What the read path learned under the shard lock.
struct Located {
    crc: u32,
    incarnation: u64,
    files: Option<Arc<BlobFiles>>,
    /// Some(secs) when the region's stamp in the sidecar is due for a refresh.
    touch: Option<u64>,
}

impl BlockCache {
    /// Opens (creating if needed) the block store under `config.dir/blocks` and rebuilds the
    /// index from the sidecars found there. Invalid files are deleted; if the cache holds more
    /// than `max_bytes` (the cap was lowered), the least recently used regions go first.
    ///
    /// One `BlockCache` per directory at a time: the index lives in memory, so two instances
    /// (in one process or two) on one directory would corrupt each other's accounting. Daemons
    /// get exclusive directories from [`super::lock_cache_dir`].
    pub fn open(config: CacheConfig) -> io::Result<BlockCache> {
        Self::open_with(config, Arc::default(), Arc::new(AtomicU64::new(1)), true)
    }

    /// Opens a second store under `config.dir` (its own block size, files and index) that
    /// shares `main`'s size cap, accounting and LRU clock: the two together stay under
    /// `main`'s `max_bytes` (`config.max_bytes` is ignored), and when either needs room the
    /// least recently used regions of both are evicted first. Used for the Xet chunk store
    /// (`chunks.rs`). `checksums: false`: the caller checks every byte it reads by other means,
    /// so blocks get no crc32c (see [`BlockCache::crc_of`]).
    pub fn open_sharing(
        config: CacheConfig,
        main: &Arc<BlockCache>,
        checksums: bool,
    ) -> io::Result<Arc<BlockCache>> {
        let config = CacheConfig {
            max_bytes: main.max_bytes,
            ..config
        };
        let store = Arc::new(Self::open_with(
            config,
            Arc::clone(&main.used),
            Arc::clone(&main.clock),
            checksums,
        )?);
        if store.peer.set(Arc::downgrade(main)).is_err()
            || main.peer.set(Arc::downgrade(&store)).is_err()
        {
            return Err(io::Error::other(
                "the cache already shares its cap with another store",
            ));
        }
        Ok(store)
    }

    fn open_with(
        config: CacheConfig,
        used: Arc<AtomicU64>,
        clock: Arc<AtomicU64>,
        checksums: bool,
    ) -> io::Result<BlockCache> {
        let layout = config.layout()?;
        let root = config.dir.join(BLOCKS_DIR);
        rebuild::prepare_root(&root, &layout)?;
        let found = rebuild::scan(&root, &layout)?;
        let cache = BlockCache {
            root,
            layout,
            max_bytes: config.max_bytes,
            index: Index::new(),
            fds: FdCache::new(fds::default_budget()),
            clock,
            incarnations: AtomicU64::new(1),
            used,
            peer: std::sync::OnceLock::new(),
            evict_lock: Mutex::new(()),
            counters: Counters::default(),
            pinned: Arc::default(),
            pages: super::pages::PageDropper::start()?,
            checksums,
        };
        cache.load(found);
        if cache.used.load(Ordering::Acquire) > cache.max_bytes {
            let _pass = cache.evict_lock.lock();
            cache.evict_to(cache.max_bytes - cache.max_bytes / 64);
        }
        Ok(cache)
    }

    pub fn block_size(&self) -> u64 {
        self.layout.block_size()
    }

    /// The crc32c record of a block's bytes: 0 in a store without checksums.
    pub fn crc_of(&self, data: &[u8]) -> u32 {
        if self.checksums {
            crc32c::crc32c(data)
        } else {
            0
        }
    }

    /// Whether block `idx` is cached (in-memory check; the bytes are verified on read).
    pub fn contains_block(&self, key: &BlobKey, blob_size: u64, idx: u64) -> bool {
        if self.layout.block_len(blob_size, idx).is_none() {
            return false;
        }
        let (region, slot) = self.layout.locate(idx);
        self.index
            .lock(key)
            .blob(key, blob_size)
            .is_some_and(|b| b.has(region, slot))
    }

    /// The blocks of `blocks` (clamped to the blob) that are not cached, in order, under one
    /// lock: for planning a fetch or a read-ahead window without a lookup per block.
    pub fn missing_blocks(&self, key: &BlobKey, blob_size: u64, blocks: Range<u64>) -> Vec<u64> {
        let end = blocks.end.min(self.layout.nblocks(blob_size));
        let shard = self.index.lock(key);
        let blob = shard.blob(key, blob_size);
        (blocks.start..end)
            .filter(|&idx| {
                let (region, slot) = self.layout.locate(idx);
                !blob.is_some_and(|b| b.has(region, slot))
            })
            .collect()
    }

    /// The block's bytes, or None if absent, or if the stored bytes fail their checksum / are
    /// truncated (the entry is then dropped and counted as corrupt, so the caller refetches).
    ///
    /// Warm path: one shard lock, one fd-cache lookup, one `pread`, one crc32c.
    /// Errors: `InvalidInput` for a block index past the end of the blob; other errors are disk
    /// I/O errors other than truncation (the caller may treat them as a miss and refetch).
    pub fn read_block(&self, key: &BlobKey, blob_size: u64, idx: u64) -> io::Result<Option<Bytes>> {
        let len = self.expect_block(blob_size, idx)?;
        let Some(mut loc) = self.locate(key, blob_size, idx) else {
            Counters::bump(&self.counters.misses);
            return Ok(None);
        };
        let files = match loc.files.take() {
            Some(f) => f,
            None => match self.open_files(key, blob_size, loc.incarnation)? {
                Some(f) => f,
                None => {
                    Counters::bump(&self.counters.misses);
                    return Ok(None);
                }
            },
        };
        let crc = self.checksums.then_some(loc.crc);
        match read_checked(&files.data, self.layout.block_offset(idx), len, crc)? {
            Some(bytes) => {
                if let Some(secs) = loc.touch {
                    // Best effort: a failed stamp only makes recency after a restart less exact.
                    let _ = sidecar::write_stamp(&files.meta, self.layout.locate(idx).0, secs);
                }
                Counters::bump(&self.counters.hits);
                Ok(Some(bytes))
            }
            None => {
                self.drop_corrupt(key, blob_size, idx, (loc.incarnation, loc.crc));
                Counters::bump(&self.counters.misses);
                Ok(None)
            }
        }
    }

    /// The read path served `range` of the blob to the kernel, which caches those pages as the
    /// mounted file's: the data file's own pages of the range may leave the page cache (after
    /// they are written back). Best effort, in the background; never fails a read.
    pub fn release_pages(&self, key: &BlobKey, blob_size: u64, range: Range<u64>) {
        if range.is_empty() {
            return;
        }
        let Some(incarnation) = self
            .index
            .lock(key)
            .blob(key, blob_size)
            .map(|b| b.incarnation)
        else {
            return;
        };
        if let Some(files) = self.fds.get(key, incarnation) {
            self.pages
                .request(files, range.start, range.end - range.start);
        }
    }

    /// Whether every block of the blob is cached (true for an empty blob).
    pub fn is_complete(&self, key: &BlobKey, blob_size: u64) -> bool {
        let nblocks = self.layout.nblocks(blob_size);
        nblocks == 0
            || self
                .index
                .lock(key)
                .blob(key, blob_size)
                .is_some_and(|b| b.present_blocks == nblocks)
    }

    pub fn stats(&self) -> CacheStats {
        self.counters.snapshot(
            self.used.load(Ordering::Relaxed),
            self.max_bytes,
            &self.pinned,
        )
    }

    /// Length of block `idx`, or `InvalidInput` past the end of the blob.
    pub(super) fn expect_block(&self, blob_size: u64, idx: u64) -> io::Result<u64> {
        self.layout.block_len(blob_size, idx).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("block {idx} is past the end of a {blob_size}-byte blob"),
            )
        })
    }

    pub(super) fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn paths(&self, key: &BlobKey) -> BlobPaths {
        BlobPaths::new(&self.root, key)
    }

    /// Looks the block up under the shard lock and stamps its region as recently used.
    fn locate(&self, key: &BlobKey, blob_size: u64, idx: u64) -> Option<Located> {
        let (region, slot) = self.layout.locate(idx);
        let tick = self.tick();
        let now = now_secs();
        let mut shard = self.index.lock(key);
        let blob = shard.blob_mut(key, blob_size)?;
        let incarnation = blob.incarnation;
        let r = blob.regions.get_mut(&region)?;
        if r.present & (1 << slot) == 0 {
            return None;
        }
        r.last_used = tick;
        let touch = (now >= r.touched_secs + TOUCH_INTERVAL_SECS).then(|| {
            r.touched_secs = now;
            now
        });
        Some(Located {
            crc: r.crcs[slot as usize],
            incarnation,
            files: self.fds.get(key, incarnation),
            touch,
        })
    }

    /// Opens the files of a live blob whose descriptors are not cached (outside any lock) and
    /// caches them if the blob is still the same incarnation. None if a file vanished (the
    /// blob is then forgotten).
    pub(super) fn open_files(
        &self,
        key: &BlobKey,
        blob_size: u64,
        incarnation: u64,
    ) -> io::Result<Option<Arc<BlobFiles>>> {
        let opened = BlobFiles::open(&self.paths(key));
        let mut shard = self.index.lock(key);
        let live = shard
            .blob(key, blob_size)
            .is_some_and(|b| b.incarnation == incarnation);
        match opened {
            Ok(files) => {
                Counters::bump(&self.counters.file_opens);
                let files = Arc::new(files);
                if live {
                    self.fds.insert(key, incarnation, Arc::clone(&files));
                }
                Ok(Some(files))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if live {
                    tracing::warn!(%key, "cache file disappeared; forgetting the blob");
                    let lost = self.forget_lost_blob_locked(&mut shard, key);
                    self.counters
                        .corrupt_dropped
                        .fetch_add(lost, Ordering::Relaxed);
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

impl BlockCache {
    /// The open files of a blob whose shard lock the caller holds: cached, or opened now (for
    /// the rare paths only: removal, verification, pinning).
    pub(super) fn files_locked(
        &self,
        key: &BlobKey,
        incarnation: u64,
    ) -> io::Result<Arc<BlobFiles>> {
        if let Some(files) = self.fds.get(key, incarnation) {
            return Ok(files);
        }
        let files = Arc::new(BlobFiles::open(&self.paths(key))?);
        Counters::bump(&self.counters.file_opens);
        self.fds.insert(key, incarnation, Arc::clone(&files));
        Ok(files)
    }
}

/// Reads `len` bytes at `offset` and checks them against `crc` (None: a store without
/// checksums); None if truncated or mismatched.
pub(super) fn read_checked(
    file: &std::fs::File,
    offset: u64,
    len: u64,
    crc: Option<u32>,
) -> io::Result<Option<Bytes>> {
    let Some(buf) = read_exact_fresh(file, offset, len as usize)? else {
        return Ok(None);
    };
    Ok(crc
        .is_none_or(|crc| crc32c::crc32c(&buf) == crc)
        .then(|| Bytes::from(buf)))
}

/// `read_exact_at` into a new buffer that is not zero-filled first (the read overwrites it;
/// zeroing was 3% of the daemon's time on cold reads). None if the file ends before `len`.
fn read_exact_fresh(file: &std::fs::File, offset: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
    use std::os::fd::AsRawFd;
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    let mut filled = 0usize;
    while filled < len {
        let at = libc::off_t::try_from(offset + filled as u64).map_err(io::Error::other)?;
        // SAFETY: pread writes at most `len - filled` bytes into the buffer's spare capacity,
        // which holds `len` bytes.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf.as_mut_ptr().add(filled).cast(),
                len - filled,
                at,
            )
        };
        match n {
            0 => return Ok(None),
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            n => filled += n as usize,
        }
    }
    // SAFETY: the loop above initialized all `len` bytes.
    unsafe { buf.set_len(len) };
    Ok(Some(buf))
}

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
