//! Taking data out of [`BlockCache`] other than by eviction policy: dropping a block that failed
//! its checksum, removing a blob, and the segment deletion that eviction also uses.
//!
//! All of these run under the blob's shard lock, which is what makes deleting a file safe: no
//! one can recreate the same path between the index update and the unlink.

use std::fs::{self, File};
use std::io;
use std::sync::atomic::Ordering;

use super::block_cache::BlockCache;
use super::index::Shard;
use super::key::BlobKey;
use super::segment;
use super::stats::Counters;

impl BlockCache {
    /// Deletes every cached block of the blob.
    pub fn remove_blob(&self, key: &BlobKey) -> io::Result<()> {
        let mut shard = self.index.lock(key);
        self.remove_blob_locked(&mut shard, key);
        Ok(())
    }

    /// Drops a block whose bytes failed verification, if its segment is still in the state the
    /// reader saw (`seen` = incarnation, version; a concurrent drop or eviction may have changed
    /// it). The verified marker is cleared before the record, so no crash leaves a verified
    /// segment with a missing block. A segment left empty is deleted.
    pub(super) fn drop_corrupt(
        &self,
        key: &BlobKey,
        blob_size: u64,
        seg: u64,
        slot: u64,
        seen: (u64, u64),
        file: &File,
    ) {
        let mut shard = self.index.lock(key);
        let Some((s, present_blocks, verified_segments)) = shard.segment_mut(key, blob_size, seg)
        else {
            return;
        };
        if (s.incarnation, s.version) != seen || s.present & (1 << slot) == 0 {
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
