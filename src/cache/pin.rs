//! Handing out a complete, verified blob's data file to be read directly (by the kernel, for
//! FUSE passthrough), and the pins that keep eviction away from it meanwhile.
//!
//! While any [`CompleteBlob`] of a blob lives, eviction and removal never punch nor delete its
//! data file: a hole would read as zeros under a reader that no longer goes through the crc
//! checks. (One exception: a block that a served read finds corrupt is punched and refetched
//! into the same file; its bytes were wrong already.) Pinned bytes still count against the
//! cap, so pins can crowd other blobs out: when pinned data fills the cap, new blocks are
//! simply not cached. Once a blob was handed out it is only ever evicted whole (see
//! `BlobEntry::exported`).

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::block_cache::{now_secs, BlockCache, TOUCH_INTERVAL_SECS};
use super::index::PinCount;
use super::key::BlobKey;
use super::sidecar::{self, Ctime};

/// Totals over all pinned blobs, for [`super::CacheStats`].
#[derive(Debug, Default)]
pub(crate) struct PinnedTotals {
    pub blobs: AtomicU64,
    pub bytes: AtomicU64,
}

/// A read-only handle on the data file of a complete, verified blob: its content, exactly,
/// at natural offsets. Eviction and removal leave the file alone while this lives.
#[derive(Debug)]
pub struct CompleteBlob {
    file: File,
    _pin: BlobPin,
}

impl CompleteBlob {
    /// The data file, opened read-only.
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// One holder of a blob's pin count; the last one dropped makes the blob evictable again.
#[derive(Debug)]
struct BlobPin {
    count: Arc<PinCount>,
    bytes: u64,
    totals: Arc<PinnedTotals>,
}

impl BlobPin {
    /// Adds a holder (caller holds the blob's shard lock, so eviction sees it at once).
    fn new(count: &Arc<PinCount>, bytes: u64, totals: &Arc<PinnedTotals>) -> BlobPin {
        if count.add() {
            totals.blobs.fetch_add(1, Ordering::Relaxed);
            totals.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        BlobPin {
            count: Arc::clone(count),
            bytes,
            totals: Arc::clone(totals),
        }
    }
}

impl Drop for BlobPin {
    fn drop(&mut self) {
        if self.count.remove() {
            self.totals.blobs.fetch_sub(1, Ordering::Relaxed);
            self.totals.bytes.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

impl BlockCache {
    /// The data file of the blob if every block is cached AND the content was verified against
    /// its key (see [`BlockCache::verify_sha256`]), pinned until the returned value is dropped.
    /// None otherwise, and also when the data file was changed after its verification (its
    /// ctime moved: the mark is then cleared, so the blob must be verified again) or is not
    /// the blob's length. Empty blobs have no data file: None.
    pub fn open_complete(&self, key: &BlobKey, blob_size: u64) -> io::Result<Option<CompleteBlob>> {
        let nblocks = self.layout.nblocks(blob_size);
        if nblocks == 0 {
            return Ok(None);
        }
        let (pin, verified_ctime) = {
            let mut shard = self.index.lock(key);
            if shard
                .blobs
                .get(key)
                .is_some_and(|b| b.doomed && !b.pinned())
            {
                self.delete_blob_locked(&mut shard, key);
                return Ok(None);
            }
            let Some(blob) = shard.blob_mut(key, blob_size) else {
                return Ok(None);
            };
            let Some(ctime) = blob.verified.filter(|_| blob.present_blocks == nblocks) else {
                return Ok(None);
            };
            blob.exported = true;
            let pin = BlobPin::new(&blob.pins, blob.bytes(), &self.pinned);
            self.touch_all_locked(key, blob_size, &mut shard);
            (pin, ctime)
        };
        let file = match File::open(&self.paths(key).data) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                drop(pin);
                let mut shard = self.index.lock(key);
                tracing::warn!(%key, "cache data file disappeared; forgetting the blob");
                self.forget_lost_blob_locked(&mut shard, key);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let ctime = Ctime::of(&file)?;
        if meta.len() != blob_size || ctime != verified_ctime {
            tracing::warn!(
                %key,
                "cache data file changed after it was verified; not handing it out, verifying it again"
            );
            drop(pin);
            let mut shard = self.index.lock(key);
            if let Err(e) = self.unverify_locked(&mut shard, key) {
                tracing::warn!(%key, "could not clear a verification mark: {e}");
            }
            return Ok(None);
        }
        Ok(Some(CompleteBlob { file, _pin: pin }))
    }

    /// Marks every region of the blob as just used: reads of a handed-out file bypass
    /// `read_block`, so this is the recency they get.
    fn touch_all_locked(&self, key: &BlobKey, blob_size: u64, shard: &mut super::index::Shard) {
        let tick = self.tick();
        let now = now_secs();
        let Some(blob) = shard.blob_mut(key, blob_size) else {
            return;
        };
        let incarnation = blob.incarnation;
        let mut stale = Vec::new();
        for (region, r) in blob.regions.iter_mut() {
            r.last_used = tick;
            if now >= r.touched_secs + TOUCH_INTERVAL_SECS {
                r.touched_secs = now;
                stale.push(*region);
            }
        }
        if stale.is_empty() {
            return;
        }
        // Best effort, like the stamps of `read_block`.
        if let Ok(files) = self.files_locked(key, incarnation) {
            for region in stale {
                let _ = sidecar::write_stamp(&files.meta, region, now);
            }
        }
    }
}
