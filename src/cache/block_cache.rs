//! [`BlockCache`]: the content-addressed, size-capped, crash-safe store of blob blocks.
//!
//! This file holds the struct, `open` and the per-block operations (the hot read path and the
//! write path); eviction, verification and the startup scan live in sibling modules.
//!
//! Concurrency model: any number of threads may call any method at once. Per-block state changes
//! under the blob's index shard lock; file data is read and written with positional I/O outside
//! that lock (different slots of one segment never overlap). A block becomes visible only after
//! its data and record are on the file, so a concurrent reader either misses it or reads it whole.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

use super::config::CacheConfig;
use super::evict::Reservation;
use super::fds::{self, FdCache};
use super::index::{BlobEntry, Index, Segment, Shard};
use super::key::BlobKey;
use super::layout::{Layout, HEADER_LEN};
use super::rebuild;
use super::segment::{self, Record};
use super::stats::{CacheStats, Counters};

/// Sub-directory of the cache root that holds the block store.
pub const BLOCKS_DIR: &str = "blocks";

/// A segment's mtime is moved forward on read at most this often: recency then survives a
/// restart to within a minute, at the cost of one extra syscall per segment per minute.
const TOUCH_INTERVAL_SECS: u64 = 60;

/// On-disk block cache shared by all reader threads (`Send + Sync`; wrap it in an `Arc`).
pub struct BlockCache {
    pub(super) root: PathBuf,
    pub(super) layout: Layout,
    pub(super) max_bytes: u64,
    pub(super) index: Index,
    pub(super) fds: FdCache,
    /// LRU clock: every read or write of a segment stamps it with the next value.
    pub(super) clock: AtomicU64,
    pub(super) incarnations: AtomicU64,
    /// Accounted bytes: segments' `bytes` plus outstanding write reservations. Never exceeds
    /// `max_bytes` (reservations are only granted below the cap).
    pub(super) used: AtomicU64,
    /// Serializes eviction passes (writers that find the cache full wait for one pass).
    pub(super) evict_lock: Mutex<()>,
    pub(super) counters: Counters,
}

/// What the read path learned under the shard lock.
struct Located {
    crc: u32,
    incarnation: u64,
    version: u64,
    file: Option<Arc<File>>,
    touch: bool,
}

impl BlockCache {
    /// Opens (creating if needed) the block store under `config.dir/blocks` and rebuilds the
    /// index from the segment headers found there. Invalid files are deleted; if the cache holds
    /// more than `max_bytes` (the cap was lowered), the least recently used segments go first.
    pub fn open(config: CacheConfig) -> io::Result<BlockCache> {
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
            clock: AtomicU64::new(1),
            incarnations: AtomicU64::new(1),
            used: AtomicU64::new(0),
            evict_lock: Mutex::new(()),
            counters: Counters::default(),
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

    /// Whether block `idx` is cached (in-memory check; the bytes are verified on read).
    pub fn contains_block(&self, key: &BlobKey, blob_size: u64, idx: u64) -> bool {
        if self.layout.block_len(blob_size, idx).is_none() {
            return false;
        }
        let (seg, slot) = self.layout.locate(idx);
        let shard = self.index.lock(key);
        shard
            .blob(key, blob_size)
            .and_then(|b| b.segments.get(&seg))
            .is_some_and(|s| s.present & (1 << slot) != 0)
    }

    /// The block's bytes, or None if absent, or if the stored bytes fail their checksum / are
    /// truncated (the entry is then dropped and counted as corrupt, so the caller refetches).
    ///
    /// Warm path: one shard lock, one fd-cache lookup, one `pread`, one crc32c.
    /// Errors: `InvalidInput` for a block index past the end of the blob; other errors are disk
    /// I/O errors other than truncation (the caller may treat them as a miss and refetch).
    pub fn read_block(&self, key: &BlobKey, blob_size: u64, idx: u64) -> io::Result<Option<Bytes>> {
        let len = self.expect_block(blob_size, idx)?;
        let (seg, slot) = self.layout.locate(idx);
        let Some(mut loc) = self.locate(key, blob_size, seg, slot) else {
            Counters::bump(&self.counters.misses);
            return Ok(None);
        };
        let file = match loc.file.take() {
            Some(f) => f,
            None => match self.open_segment(key, blob_size, seg, loc.incarnation)? {
                Some(f) => f,
                None => {
                    Counters::bump(&self.counters.misses);
                    return Ok(None);
                }
            },
        };
        match read_checked(&file, self.layout.data_offset(slot), len, loc.crc)? {
            Some(bytes) => {
                if loc.touch {
                    // Best effort: a failed touch only makes recency after a restart less exact.
                    let _ = file.set_modified(SystemTime::now());
                }
                Counters::bump(&self.counters.hits);
                Ok(Some(bytes))
            }
            None => {
                self.drop_corrupt(key, blob_size, seg, slot, &loc, &file);
                Counters::bump(&self.counters.misses);
                Ok(None)
            }
        }
    }

    /// Stores one whole block (`data.len()` = block size, or the tail length for the last
    /// block). May evict least recently used segments first. A block already present is left as
    /// is (same key, same bytes). Success does not pin the block: a later write may evict it at
    /// any time, so serve readers from the buffer just written, not by reading it back.
    /// If the block cannot fit even in an empty cache (cap smaller than one block), it is not
    /// stored and Ok is returned.
    pub fn write_block(
        &self,
        key: &BlobKey,
        blob_size: u64,
        idx: u64,
        data: &[u8],
    ) -> io::Result<()> {
        let len = self.expect_block(blob_size, idx)?;
        if data.len() as u64 != len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "block {idx} of a {blob_size}-byte blob is {len} bytes, got {}",
                    data.len()
                ),
            ));
        }
        if self.contains_block(key, blob_size, idx) {
            return Ok(());
        }
        let (seg, slot) = self.layout.locate(idx);
        // Reserve as if the segment had to be created; the header part is given back if not.
        let Some(mut reservation) = self.reserve(HEADER_LEN + len) else {
            tracing::debug!(%key, idx, "cache cap too small for one block; not cached");
            return Ok(());
        };
        let Some((incarnation, file)) =
            self.segment_for_write(key, blob_size, seg, slot, &mut reservation)?
        else {
            return Ok(()); // stored by a concurrent writer meanwhile
        };
        let crc = crc32c::crc32c(data);
        // Data first, then the record that declares it (see segment.rs on crash safety).
        file.write_all_at(data, self.layout.data_offset(slot))?;
        // `len` <= 16 MiB (the block size limit) always fits a u32.
        segment::write_record(
            &file,
            slot,
            Some(Record {
                crc,
                len: len as u32,
            }),
        )?;

        let tick = self.tick();
        let mut shard = self.index.lock(key);
        if let Some((s, present_blocks, _)) = shard.segment_mut(key, blob_size, seg) {
            if s.incarnation == incarnation && s.present & (1 << slot) == 0 {
                s.present |= 1 << slot;
                s.crcs[slot as usize] = crc;
                s.bytes += len;
                s.last_used = tick;
                s.touched_secs = now_secs();
                *present_blocks += 1;
                reservation.commit(len);
            }
        }
        Counters::bump(&self.counters.blocks_written);
        Ok(())
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

    /// Deletes every cached block of the blob.
    pub fn remove_blob(&self, key: &BlobKey) -> io::Result<()> {
        let mut shard = self.index.lock(key);
        self.remove_blob_locked(&mut shard, key);
        Ok(())
    }

    pub fn stats(&self) -> CacheStats {
        self.counters
            .snapshot(self.used.load(Ordering::Relaxed), self.max_bytes)
    }

    /// Length of block `idx`, or `InvalidInput` past the end of the blob.
    fn expect_block(&self, blob_size: u64, idx: u64) -> io::Result<u64> {
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

    pub(super) fn segment_path(&self, key: &BlobKey, seg: u64) -> PathBuf {
        self.root.join(segment::relative_path(key, seg))
    }

    /// Looks the block up under the shard lock and stamps its segment as recently used.
    fn locate(&self, key: &BlobKey, blob_size: u64, seg: u64, slot: u64) -> Option<Located> {
        let tick = self.tick();
        let now = now_secs();
        let mut shard = self.index.lock(key);
        let (s, _, _) = shard.segment_mut(key, blob_size, seg)?;
        if s.present & (1 << slot) == 0 {
            return None;
        }
        s.last_used = tick;
        let touch = now >= s.touched_secs + TOUCH_INTERVAL_SECS;
        if touch {
            s.touched_secs = now;
        }
        Some(Located {
            crc: s.crcs[slot as usize],
            incarnation: s.incarnation,
            version: s.version,
            file: self.fds.get(key, seg, s.incarnation),
            touch,
        })
    }

    /// Opens a live segment whose descriptor is not cached (outside any lock) and caches it if
    /// the segment is still the same incarnation. None if the file vanished (it is forgotten).
    fn open_segment(
        &self,
        key: &BlobKey,
        blob_size: u64,
        seg: u64,
        incarnation: u64,
    ) -> io::Result<Option<Arc<File>>> {
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.segment_path(key, seg));
        let mut shard = self.index.lock(key);
        let live = shard
            .blob(key, blob_size)
            .and_then(|b| b.segments.get(&seg))
            .is_some_and(|s| s.incarnation == incarnation);
        match opened {
            Ok(f) => {
                Counters::bump(&self.counters.segment_opens);
                let file = Arc::new(f);
                if live {
                    self.fds.insert(key, seg, incarnation, Arc::clone(&file));
                }
                Ok(Some(file))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if live {
                    tracing::warn!(%key, seg, "cache segment file disappeared; forgetting it");
                    let lost = self.remove_segment_locked(&mut shard, key, seg);
                    self.counters
                        .corrupt_dropped
                        .fetch_add(lost.blocks, Ordering::Relaxed);
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Finds or creates the segment a new block goes to and returns its incarnation and file;
    /// None if the block is already present. Settles the header part of `reservation`.
    fn segment_for_write(
        &self,
        key: &BlobKey,
        blob_size: u64,
        seg: u64,
        slot: u64,
        reservation: &mut Reservation<'_>,
    ) -> io::Result<Option<(u64, Arc<File>)>> {
        let mut shard = self.index.lock(key);
        if shard
            .blobs
            .get(key)
            .is_some_and(|b| b.blob_size != blob_size)
        {
            // One key names one content, hence one size; a different size means the cached
            // copy was stored under a wrong size, so it is replaced.
            tracing::warn!(%key, blob_size, "cached blob has another size; replacing it");
            self.remove_blob_locked(&mut shard, key);
        }
        let existing = shard
            .blob(key, blob_size)
            .and_then(|b| b.segments.get(&seg))
            .map(|s| (s.present & (1 << slot) != 0, s.incarnation));
        if let Some((present, incarnation)) = existing {
            if present {
                return Ok(None);
            }
            let cached = self.fds.get(key, seg, incarnation);
            let file = match cached {
                Some(f) => Some(f),
                None => match OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(self.segment_path(key, seg))
                {
                    Ok(f) => {
                        Counters::bump(&self.counters.segment_opens);
                        let f = Arc::new(f);
                        self.fds.insert(key, seg, incarnation, Arc::clone(&f));
                        Some(f)
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        let lost = self.remove_segment_locked(&mut shard, key, seg);
                        self.counters
                            .corrupt_dropped
                            .fetch_add(lost.blocks, Ordering::Relaxed);
                        None // recreated below
                    }
                    Err(e) => return Err(e),
                },
            };
            if let Some(file) = file {
                reservation.release(HEADER_LEN);
                return Ok(Some((incarnation, file)));
            }
        }
        let file = Arc::new(self.create_segment_file(key, blob_size, seg)?);
        let incarnation = self.incarnations.fetch_add(1, Ordering::Relaxed);
        let blob = shard
            .blobs
            .entry(*key)
            .or_insert_with(|| BlobEntry::new(blob_size));
        blob.segments.insert(
            seg,
            Segment {
                incarnation,
                version: 0,
                present: 0,
                crcs: vec![0; self.layout.blocks_per_segment() as usize].into_boxed_slice(),
                bytes: HEADER_LEN,
                last_used: self.tick(),
                touched_secs: now_secs(),
                verified: false,
            },
        );
        reservation.commit(HEADER_LEN);
        self.fds.insert(key, seg, incarnation, Arc::clone(&file));
        Ok(Some((incarnation, file)))
    }

    fn create_segment_file(&self, key: &BlobKey, blob_size: u64, seg: u64) -> io::Result<File> {
        let path = self.segment_path(key, seg);
        Counters::bump(&self.counters.segment_opens);
        match segment::create(&path, &self.layout, key, blob_size, seg) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // The fan-out directory is made lazily (or was removed behind our back).
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                segment::create(&path, &self.layout, key, blob_size, seg)
            }
            other => other,
        }
    }

    /// Drops a block whose bytes failed verification, if it is still the state the reader saw
    /// (a concurrent drop or rewrite may have replaced it). The verified marker is cleared
    /// before the record, so no crash leaves a verified segment with a missing block.
    fn drop_corrupt(
        &self,
        key: &BlobKey,
        blob_size: u64,
        seg: u64,
        slot: u64,
        seen: &Located,
        file: &File,
    ) {
        let mut shard = self.index.lock(key);
        let Some((s, present_blocks, verified_segments)) = shard.segment_mut(key, blob_size, seg)
        else {
            return;
        };
        if s.incarnation != seen.incarnation
            || s.version != seen.version
            || s.present & (1 << slot) == 0
        {
            return;
        }
        tracing::warn!(%key, seg, slot, "cached block failed its checksum; dropped for refetch");
        let cleared = (if s.verified {
            segment::write_verified(file, false)
        } else {
            Ok(())
        })
        .and_then(|()| segment::write_record(file, slot, None));
        if let Err(e) = cleared {
            tracing::warn!(%key, seg, "could not clear a corrupt block's record: {e}");
        }
        let len = self
            .layout
            .block_len(blob_size, self.layout.first_block(seg) + slot)
            .unwrap_or(0);
        s.present &= !(1 << slot);
        s.version += 1;
        s.bytes -= len;
        *present_blocks -= 1;
        if s.verified {
            s.verified = false;
            *verified_segments -= 1;
        }
        let empty = s.present == 0;
        self.used.fetch_sub(len, Ordering::AcqRel);
        Counters::bump(&self.counters.corrupt_dropped);
        if empty {
            self.remove_segment_locked(&mut shard, key, seg);
        }
    }

    pub(super) fn remove_blob_locked(&self, shard: &mut Shard, key: &BlobKey) {
        let segs: Vec<u64> = shard
            .blobs
            .get(key)
            .map(|b| b.segments.keys().copied().collect())
            .unwrap_or_default();
        for seg in segs {
            self.remove_segment_locked(shard, key, seg);
        }
    }
}

/// What deleting a segment gave back.
pub(super) struct Removed {
    pub bytes: u64,
    pub blocks: u64,
}

impl BlockCache {
    /// Deletes a segment file and its index entry (caller holds the blob's shard lock, so no
    /// one can recreate the path between the index update and the unlink).
    pub(super) fn remove_segment_locked(
        &self,
        shard: &mut Shard,
        key: &BlobKey,
        seg: u64,
    ) -> Removed {
        let none = Removed {
            bytes: 0,
            blocks: 0,
        };
        let Some(blob) = shard.blobs.get_mut(key) else {
            return none;
        };
        let Some(s) = blob.segments.remove(&seg) else {
            return none;
        };
        let blocks = u64::from(s.present.count_ones());
        blob.present_blocks -= blocks;
        if s.verified {
            blob.verified_segments -= 1;
        }
        if blob.segments.is_empty() {
            shard.blobs.remove(key);
        }
        self.fds.remove(key, seg);
        match fs::remove_file(self.segment_path(key, seg)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(%key, seg, "could not delete cache segment: {e}"),
        }
        self.used.fetch_sub(s.bytes, Ordering::AcqRel);
        Removed {
            bytes: s.bytes,
            blocks,
        }
    }
}

/// Reads `len` bytes at `offset` and checks them against `crc`; None if truncated or mismatched.
pub(super) fn read_checked(
    file: &File,
    offset: u64,
    len: u64,
    crc: u32,
) -> io::Result<Option<Bytes>> {
    let mut buf = vec![0u8; len as usize];
    match file.read_exact_at(&mut buf, offset) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    Ok((crc32c::crc32c(&buf) == crc).then(|| Bytes::from(buf)))
}

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
