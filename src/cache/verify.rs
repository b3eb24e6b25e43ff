//! End-to-end verification of a complete cached blob against its content key, remembered in
//! the segment headers so it runs once per blob.
//!
//! A blob counts as verified while every one of its segments carries the marker: the marker is
//! set only on segments that were full and unchanged during a successful check, cleared when a
//! block is dropped, and absent on a re-created (evicted and refetched) segment, so any bytes
//! that were not part of a successful check make the blob unverified again.

use std::io;

use super::block_cache::{read_checked, BlockCache};
use super::key::{BlobKey, ContentHasher};
use super::segment;

/// Identity of a segment as seen before hashing; only unchanged segments get the marker.
struct Seen {
    seg: u64,
    incarnation: u64,
    version: u64,
}

impl BlockCache {
    /// Hashes the complete blob from the cache (block by block, bounded memory) and compares the
    /// digest with the key: sha256 for LFS keys, the git blob sha1 for regular files. On
    /// mismatch all its blocks are dropped and Ok(false) is returned. A success is recorded in
    /// the segment headers (see [`BlockCache::is_verified`]); an already verified blob returns
    /// Ok(true) without hashing.
    ///
    /// An empty blob has no blocks: only the digest of empty content is compared.
    ///
    /// Errors: `NotFound` if the blob is not complete in the cache (also when a block is evicted
    /// or found corrupt during the check: fetch the missing blocks and call again).
    pub fn verify_sha256(&self, key: &BlobKey, blob_size: u64) -> io::Result<bool> {
        let nblocks = self.layout.nblocks(blob_size);
        let incomplete = || {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("blob {key} is not complete in the cache"),
            )
        };
        if nblocks == 0 {
            // Nothing is stored for an empty blob; its digest is still checkable.
            return Ok(ContentHasher::new(key, 0).matches(key));
        }
        let seen: Vec<Seen> = {
            let shard = self.index.lock(key);
            let Some(blob) = shard.blob(key, blob_size) else {
                return Err(incomplete());
            };
            if blob.present_blocks != nblocks {
                return Err(incomplete());
            }
            if blob.verified_segments == self.layout.nsegments(blob_size) {
                return Ok(true);
            }
            blob.segments
                .iter()
                .map(|(seg, s)| Seen {
                    seg: *seg,
                    incarnation: s.incarnation,
                    version: s.version,
                })
                .collect()
        };
        let mut hasher = ContentHasher::new(key, blob_size);
        for idx in 0..nblocks {
            // Not `read_block`: verification must not count as hits nor refresh recency.
            match self.read_for_verify(key, blob_size, idx)? {
                Some(bytes) => hasher.update(&bytes),
                None => return Err(incomplete()),
            }
        }
        if !hasher.matches(key) {
            tracing::warn!(%key, blob_size, "cached blob does not match its digest; dropping it");
            self.remove_blob(key)?;
            return Ok(false);
        }
        self.mark_verified(key, blob_size, &seen);
        Ok(true)
    }

    /// True while every segment of the blob carries a successful verification (persistent
    /// across restarts). False for a blob that is not cached.
    pub fn is_verified(&self, key: &BlobKey) -> bool {
        let shard = self.index.lock(key);
        shard.blobs.get(key).is_some_and(|b| {
            let nsegs = self.layout.nsegments(b.blob_size);
            nsegs > 0 && b.verified_segments == nsegs
        })
    }

    /// One block, checksum-verified, without touching hit counters or recency. A corrupt block
    /// is reported as None (the next `read_block` drops it).
    fn read_for_verify(
        &self,
        key: &BlobKey,
        blob_size: u64,
        idx: u64,
    ) -> io::Result<Option<bytes::Bytes>> {
        let (seg, slot) = self.layout.locate(idx);
        let Some(len) = self.layout.block_len(blob_size, idx) else {
            return Ok(None);
        };
        let found = {
            let shard = self.index.lock(key);
            shard
                .blob(key, blob_size)
                .and_then(|b| b.segments.get(&seg))
                .filter(|s| s.present & (1 << slot) != 0)
                .map(|s| (s.crcs[slot as usize], s.incarnation))
        };
        let Some((crc, incarnation)) = found else {
            return Ok(None);
        };
        let file = match self.fds.get(key, seg, incarnation) {
            Some(f) => f,
            None => match std::fs::File::open(self.segment_path(key, seg)) {
                Ok(f) => std::sync::Arc::new(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        read_checked(&file, self.layout.data_offset(slot), len, crc)
    }

    /// Sets the marker on the segments that are still the full, unchanged ones we hashed.
    fn mark_verified(&self, key: &BlobKey, blob_size: u64, seen: &[Seen]) {
        let mut shard = self.index.lock(key);
        for s in seen {
            let full = self.layout.full_mask(blob_size, s.seg);
            let file = self.fds.get(key, s.seg, s.incarnation);
            let Some((seg, _, verified_segments)) = shard.segment_mut(key, blob_size, s.seg) else {
                continue;
            };
            if seg.incarnation != s.incarnation
                || seg.version != s.version
                || seg.present != full
                || seg.verified
            {
                continue;
            }
            let written = match file {
                Some(f) => segment::write_verified(&f, true),
                None => std::fs::OpenOptions::new()
                    .write(true)
                    .open(self.segment_path(key, s.seg))
                    .and_then(|f| segment::write_verified(&f, true)),
            };
            match written {
                Ok(()) => {
                    seg.verified = true;
                    *verified_segments += 1;
                }
                Err(e) => tracing::warn!(%key, seg = s.seg, "could not record verification: {e}"),
            }
        }
    }
}
