//! End-to-end verification of a complete cached blob against its content key, remembered in
//! its sidecar so it runs once per blob.
//!
//! A blob is verified while the mark in its sidecar is set. The mark is only set when the
//! blocks in the cache are, block for block, the ones that were hashed (their crc32c sequence
//! matches what the hasher saw: see [`BlockFingerprint`]), and it is cleared before any block
//! is taken out, so bytes that were not part of a successful check make the blob unverified
//! again. The mark also records the data file's ctime: a data file written to afterwards (by
//! anything: hubfs never writes a complete blob) is not trusted by [`BlockCache::open_complete`].

use std::io;

use sha2::Digest;

use super::block_cache::{read_checked, BlockCache};
use super::key::{BlobKey, ContentHasher};
use super::sidecar::{self, Ctime};

/// The identity of a blob's blocks as a hasher saw them: the crc32c of every block, in order,
/// folded into a sha256. Two fingerprints are equal only if every block has the same crc32c,
/// so marking a blob verified with the fingerprint of the bytes that were hashed proves that
/// the cached blocks are those bytes (up to a crc32c collision of a block that changed, which
/// accidental damage does not produce).
#[derive(Clone, Default)]
pub struct BlockFingerprint {
    crcs: sha2::Sha256,
    blocks: u64,
}

impl BlockFingerprint {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next block of the blob.
    pub fn push(&mut self, block: &[u8]) {
        self.push_crc(crc32c::crc32c(block));
    }

    /// Adds the next block of the blob by its crc32c (the one its cache record holds).
    pub fn push_crc(&mut self, crc: u32) {
        self.crcs.update(crc.to_le_bytes());
        self.blocks += 1;
    }

    fn finish(self) -> (u64, [u8; 32]) {
        (self.blocks, self.crcs.finalize().into())
    }
}

impl BlockCache {
    /// Hashes the complete blob from the cache (block by block, bounded memory) and compares the
    /// digest with the key: sha256 for LFS keys, the git blob sha1 for regular files. On
    /// mismatch all its blocks are dropped and Ok(false) is returned. A success is recorded in
    /// the sidecar (see [`BlockCache::is_verified`]); an already verified blob returns Ok(true)
    /// without hashing.
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
        {
            let shard = self.index.lock(key);
            let Some(blob) = shard.blob(key, blob_size) else {
                return Err(incomplete());
            };
            if blob.present_blocks != nblocks {
                return Err(incomplete());
            }
            if blob.verified.is_some() {
                return Ok(true);
            }
        }
        let mut hasher = ContentHasher::new(key, blob_size);
        let mut fingerprint = BlockFingerprint::new();
        for idx in 0..nblocks {
            // Not `read_block`: verification must not count as hits nor refresh recency.
            match self.read_for_verify(key, blob_size, idx)? {
                Some(bytes) => {
                    hasher.update(&bytes);
                    fingerprint.push(&bytes);
                }
                None => return Err(incomplete()),
            }
        }
        if !hasher.matches(key) {
            tracing::warn!(%key, blob_size, "cached blob does not match its digest; dropping it");
            self.remove_blob(key)?;
            return Ok(false);
        }
        self.mark_verified(key, blob_size, fingerprint);
        Ok(true)
    }

    /// Records that the blob's content matches its key, for a caller that hashed it (the read
    /// path hashes files in order as they stream in). `fingerprint` must have seen exactly the
    /// bytes that were hashed, block by block: the mark is set only if the blob is complete
    /// and its cached blocks are those (else nothing is recorded and false is returned; a
    /// later [`BlockCache::verify_sha256`] can still verify it). True if the blob is verified.
    pub fn mark_verified(
        &self,
        key: &BlobKey,
        blob_size: u64,
        fingerprint: BlockFingerprint,
    ) -> bool {
        let nblocks = self.layout.nblocks(blob_size);
        let (seen_blocks, seen) = fingerprint.finish();
        let mut shard = self.index.lock(key);
        let Some(blob) = shard.blob_mut(key, blob_size) else {
            return false;
        };
        if blob.verified.is_some() {
            return true;
        }
        if seen_blocks != nblocks || blob.present_blocks != nblocks {
            return false;
        }
        let mut stored = BlockFingerprint::new();
        for idx in 0..nblocks {
            let (region, slot) = self.layout.locate(idx);
            match blob.regions.get(&region) {
                Some(r) => stored.push_crc(r.crcs[slot as usize]),
                None => return false,
            }
        }
        if stored.finish().1 != seen {
            tracing::debug!(%key, "cached blocks changed since they were hashed; not marked verified");
            return false;
        }
        let incarnation = blob.incarnation;
        let marked = self.files_locked(key, incarnation).and_then(|files| {
            let ctime = Ctime::of(&files.data)?;
            sidecar::write_verified(&files.meta, Some(ctime))?;
            Ok(ctime)
        });
        match marked {
            Ok(ctime) => {
                if let Some(blob) = shard.blob_mut(key, blob_size) {
                    blob.verified = Some(ctime);
                }
                true
            }
            Err(e) => {
                tracing::warn!(%key, "could not record verification: {e}");
                false
            }
        }
    }

    /// True while the blob carries a successful verification (persistent across restarts).
    /// False for a blob that is not cached.
    pub fn is_verified(&self, key: &BlobKey) -> bool {
        let shard = self.index.lock(key);
        shard
            .blobs
            .get(key)
            .is_some_and(|b| !b.doomed && b.verified.is_some())
    }

    /// One block, checksum-verified, without touching hit counters or recency. A corrupt block
    /// is reported as None (the next `read_block` drops it).
    fn read_for_verify(
        &self,
        key: &BlobKey,
        blob_size: u64,
        idx: u64,
    ) -> io::Result<Option<bytes::Bytes>> {
        let (region, slot) = self.layout.locate(idx);
        let Some(len) = self.layout.block_len(blob_size, idx) else {
            return Ok(None);
        };
        let found = {
            let shard = self.index.lock(key);
            shard.blob(key, blob_size).and_then(|b| {
                b.regions
                    .get(&region)
                    .filter(|r| r.present & (1 << slot) != 0)
                    .map(|r| (r.crcs[slot as usize], b.incarnation))
            })
        };
        let Some((crc, incarnation)) = found else {
            return Ok(None);
        };
        let files = match self.fds.get(key, incarnation) {
            Some(f) => f,
            None => match self.open_files(key, blob_size, incarnation)? {
                Some(f) => f,
                None => return Ok(None),
            },
        };
        read_checked(
            &files.data,
            self.layout.block_offset(idx),
            len,
            self.checksums.then_some(crc),
        )
    }
}
