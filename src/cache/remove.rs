//! Taking data out of [`BlockCache`]: dropping a block that failed its checksum, removing a
//! blob, and the region punching and blob deletion that eviction also uses.
//!
//! All of these run under the blob's shard lock, which is what makes them safe: no one can
//! publish a block, pin the blob or recreate its files between the index update and the disk
//! change. A pinned blob is never punched nor deleted (the kernel may be reading its data
//! file): removing it only marks it doomed, and its files go once the last pin is dropped.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use super::block_cache::BlockCache;
use super::index::Shard;
use super::key::BlobKey;
use super::layout::alloc;
use super::sidecar;
use super::stats::Counters;

impl BlockCache {
    /// Deletes every cached block of the blob. A pinned blob disappears for every reader and
    /// writer at once, but its files stay until its last pin is dropped.
    pub fn remove_blob(&self, key: &BlobKey) -> io::Result<()> {
        let mut shard = self.index.lock(key);
        let Some(blob) = shard.blobs.get_mut(key) else {
            return Ok(());
        };
        if blob.pinned() {
            if !blob.doomed {
                tracing::info!(%key, "cached blob removed while pinned; its files go with the last pin");
                blob.doomed = true;
            }
            return Ok(());
        }
        self.delete_blob_locked(&mut shard, key);
        Ok(())
    }

    /// Drops block `idx` whose bytes passed their crc32c but failed a stronger check of the
    /// caller (the Xet chunk store's chunk hashes), so it is fetched again.
    pub fn forget_block(&self, key: &BlobKey, blob_size: u64, idx: u64) {
        let (region, slot) = self.layout.locate(idx);
        let seen = {
            let shard = self.index.lock(key);
            shard.blob(key, blob_size).and_then(|b| {
                b.regions
                    .get(&region)
                    .filter(|r| r.present & (1 << slot) != 0)
                    .map(|r| (b.incarnation, r.crcs[slot as usize]))
            })
        };
        if let Some(seen) = seen {
            self.drop_corrupt(key, blob_size, idx, seen);
        }
    }

    /// Drops block `idx` whose bytes failed their checksum (in place, so the rest of the blob
    /// stays cached), if it is still the block the reader saw (`seen` = blob incarnation, block crc; a concurrent drop or rewrite may have changed
    /// it). The verified mark is cleared before the record and the record before the data is
    /// punched out, so no crash leaves a record or a verified mark without its bytes.
    pub(super) fn drop_corrupt(&self, key: &BlobKey, blob_size: u64, idx: u64, seen: (u64, u32)) {
        let (region, slot) = self.layout.locate(idx);
        let mut shard = self.index.lock(key);
        let Some(blob) = shard.blob_mut(key, blob_size) else {
            return;
        };
        let still = blob.incarnation == seen.0
            && blob
                .regions
                .get(&region)
                .is_some_and(|r| r.present & (1 << slot) != 0 && r.crcs[slot as usize] == seen.1);
        if !still {
            return;
        }
        tracing::warn!(%key, idx, "cached block failed its checksum; dropped for refetch");
        Counters::bump(&self.counters.corrupt_dropped);
        // Punched even if the file is handed out (pinned or exported): unlike eviction, this
        // takes away bytes that are already wrong, and the refetch writes the right ones back
        // into the same file, which is what a reader of that file then sees.
        let cleared = self
            .files_locked(key, seen.0)
            .and_then(|files| self.unverify_locked(&mut shard, key).map(|()| files))
            .and_then(|files| {
                sidecar::write_record(&files.meta, &self.layout, blob_size, idx, None)?;
                Ok(files)
            })
            .and_then(|files| {
                let at = self.layout.block_offset(idx);
                let len = self.layout.block_len(blob_size, idx).unwrap_or(0);
                restore_length(&files.data, blob_size)?;
                punch_hole(&files.data, at, len)
            });
        if let Err(e) = cleared {
            tracing::warn!(%key, idx, "could not drop a corrupt block in place ({e}); dropping the blob");
            self.remove_blob_locked(&mut shard, key);
            return;
        }
        let Some(blob) = shard.blobs.get_mut(key) else {
            return;
        };
        let len = self.layout.block_len(blob_size, idx).unwrap_or(0);
        if let Some(r) = blob.regions.get_mut(&region) {
            r.present &= !(1 << slot);
            r.bytes -= alloc(len);
            blob.present_blocks -= 1;
            self.used.fetch_sub(alloc(len), Ordering::AcqRel);
            if r.present == 0 && r.writers == 0 {
                blob.regions.remove(&region);
            }
        }
        // A pinned blob keeps its (now empty) files: the refetch writes into them.
        if blob.regions.is_empty() && !blob.pinned() {
            self.delete_blob_locked(&mut shard, key);
        }
    }

    /// `remove_blob` with the shard lock held.
    pub(super) fn remove_blob_locked(&self, shard: &mut Shard, key: &BlobKey) {
        match shard.blobs.get_mut(key) {
            Some(b) if b.pinned() => b.doomed = true,
            Some(_) => {
                self.delete_blob_locked(shard, key);
            }
            None => {}
        }
    }

    /// Clears the blob's verified mark (on disk first). Called before anything is taken out.
    pub(super) fn unverify_locked(&self, shard: &mut Shard, key: &BlobKey) -> io::Result<()> {
        let Some(blob) = shard.blobs.get_mut(key) else {
            return Ok(());
        };
        if blob.verified.is_none() {
            return Ok(());
        }
        let files = self.files_locked(key, blob.incarnation)?;
        sidecar::write_verified(&files.meta, None)?;
        blob.verified = None;
        Ok(())
    }

    /// Deletes a blob's files and its index entry; returns the bytes freed. The caller holds
    /// the shard lock and has checked that the blob is not pinned.
    pub(super) fn delete_blob_locked(&self, shard: &mut Shard, key: &BlobKey) -> u64 {
        let Some(blob) = shard.blobs.remove(key) else {
            return 0;
        };
        self.fds.remove(key);
        let paths = self.paths(key);
        // The data file first: a sidecar without data is discarded at the next open.
        for path in [&paths.data, &paths.meta] {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(%key, "could not delete {}: {e}", path.display()),
            }
        }
        let bytes = blob.bytes();
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        bytes
    }

    /// Forgets a blob whose files disappeared behind our back; returns the blocks lost.
    pub(super) fn forget_lost_blob_locked(&self, shard: &mut Shard, key: &BlobKey) -> u64 {
        let blocks = shard.blobs.get(key).map_or(0, |b| b.present_blocks);
        match shard.blobs.get_mut(key) {
            // Pinned: the pin's own descriptor still reads the (unlinked) content.
            Some(b) if b.pinned() => b.doomed = true,
            Some(_) => {
                self.delete_blob_locked(shard, key);
            }
            None => {}
        }
        blocks
    }

    /// Punches `region` out of a blob's data file (records cleared first); returns the bytes
    /// freed. The caller holds the shard lock and has checked that the blob is neither pinned
    /// nor exported and that no write is under way in the region.
    pub(super) fn punch_region_locked(
        &self,
        shard: &mut Shard,
        key: &BlobKey,
        region: u64,
    ) -> io::Result<u64> {
        let Some(blob) = shard.blobs.get(key) else {
            return Ok(0);
        };
        let blob_size = blob.blob_size;
        let files = self.files_locked(key, blob.incarnation)?;
        self.unverify_locked(shard, key)?;
        let blocks = self.layout.region_blocks(blob_size, region);
        sidecar::clear_records(&files.meta, &self.layout, blob_size, blocks)?;
        let bytes = self.layout.region_bytes(blob_size, region);
        punch_hole(&files.data, bytes.start, bytes.end - bytes.start)?;
        let Some(blob) = shard.blobs.get_mut(key) else {
            return Ok(0);
        };
        let Some(r) = blob.regions.remove(&region) else {
            return Ok(0);
        };
        blob.present_blocks -= u64::from(r.present.count_ones());
        self.used.fetch_sub(r.bytes, Ordering::AcqRel);
        let mut freed = r.bytes;
        if blob.regions.is_empty() {
            freed += self.delete_blob_locked(shard, key);
        }
        Ok(freed)
    }
}

/// Frees the disk blocks of `[offset, offset+len)` of `file` without changing its length; the
/// range then reads as zeros (and fails any crc it had).
pub(super) fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: fallocate on a descriptor we own; no memory is passed.
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            off,
            n,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A data file cut short behind our back gets its length back (the cut part reads as zeros,
/// which fails the crc of any record still claiming it), so it stays a valid backing file.
fn restore_length(file: &File, blob_size: u64) -> io::Result<()> {
    if file.metadata()?.len() < blob_size {
        file.set_len(blob_size)?;
    }
    Ok(())
}
