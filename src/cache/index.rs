//! The in-memory index of the block store: which segments exist, which blocks they hold, their
//! checksums and recency. It is rebuilt from segment headers at open and is the only thing the
//! hot read path consults before its `pread`.
//!
//! Memory is per segment, not per block: a bitmap, one crc32c per slot and a few counters (about
//! 250 bytes per 4 MiB segment, so ~6 MiB for a 100 GiB cache).
//!
//! Sharding: 64 mutex-protected shards chosen by blob key, so every blob-level invariant (present
//! block count, verified segment count) lives under one lock while unrelated blobs never contend.
//! Critical sections are a hash lookup and a few field updates; file I/O under a shard lock only
//! happens on the rare paths (creating, dropping or deleting a segment).

use std::collections::HashMap;

use parking_lot::{Mutex, MutexGuard};

use super::key::BlobKey;

const SHARDS: usize = 64;

/// One segment file as the index knows it.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Unique per created/loaded file, so a late writer or reader can tell the file it used from
    /// a newer file at the same path after an eviction.
    pub incarnation: u64,
    /// Bumped whenever a block is dropped; verification only marks segments it saw unchanged.
    pub version: u64,
    /// Bit `s` set = slot `s` holds a complete block whose crc32c is `crcs[s]`.
    pub present: u64,
    pub crcs: Box<[u32]>,
    /// Bytes accounted against the cap: header plus present block lengths.
    pub bytes: u64,
    /// LRU clock value of the last read or write.
    pub last_used: u64,
    /// Wall-clock seconds of the last time the file's mtime was moved forward (recency that
    /// survives restarts; refreshed at most every `TOUCH_INTERVAL_SECS`).
    pub touched_secs: u64,
    /// The blob's digest was verified while this segment was full (mirrors the header marker).
    pub verified: bool,
}

/// All cached segments of one blob.
#[derive(Debug)]
pub(crate) struct BlobEntry {
    pub blob_size: u64,
    pub segments: HashMap<u64, Segment>,
    /// Sum of the present bits of all segments.
    pub present_blocks: u64,
    /// Number of segments with `verified` set.
    pub verified_segments: u64,
}

impl BlobEntry {
    pub(crate) fn new(blob_size: u64) -> Self {
        BlobEntry {
            blob_size,
            segments: HashMap::new(),
            present_blocks: 0,
            verified_segments: 0,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Shard {
    pub blobs: HashMap<BlobKey, BlobEntry>,
}

impl Shard {
    /// The blob entry if it is cached with this size (another size is treated as absent).
    pub(crate) fn blob(&self, key: &BlobKey, blob_size: u64) -> Option<&BlobEntry> {
        self.blobs.get(key).filter(|b| b.blob_size == blob_size)
    }

    pub(crate) fn blob_mut(&mut self, key: &BlobKey, blob_size: u64) -> Option<&mut BlobEntry> {
        self.blobs.get_mut(key).filter(|b| b.blob_size == blob_size)
    }

    pub(crate) fn segment_mut(
        &mut self,
        key: &BlobKey,
        blob_size: u64,
        seg: u64,
    ) -> Option<(&mut Segment, &mut u64, &mut u64)> {
        let blob = self.blob_mut(key, blob_size)?;
        let s = blob.segments.get_mut(&seg)?;
        Some((s, &mut blob.present_blocks, &mut blob.verified_segments))
    }
}

pub(crate) struct Index {
    shards: Box<[Mutex<Shard>]>,
}

impl Index {
    pub(crate) fn new() -> Self {
        Index {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    pub(crate) fn lock(&self, key: &BlobKey) -> MutexGuard<'_, Shard> {
        self.shards[(key.shard_bits() % SHARDS as u64) as usize].lock()
    }

    /// Every shard in turn (never two at once, so callers cannot deadlock with readers).
    pub(crate) fn for_each_shard(&self, mut f: impl FnMut(&mut Shard)) {
        for s in self.shards.iter() {
            f(&mut s.lock());
        }
    }
}
