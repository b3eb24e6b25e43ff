//! The in-memory index of the block store: which blobs are cached, which blocks of each are
//! valid with their checksums, region recency, verification and pins. It is rebuilt from the
//! sidecars at open and is the only thing the hot read path consults before its `pread`.
//!
//! Memory is per region, not per block: a bitmap, one crc32c per block and a few counters
//! (about 200 bytes per 4 MiB region, so ~5 MiB for a 100 GiB cache).
//!
//! Sharding: 64 mutex-protected shards chosen by blob key, so every blob-level invariant
//! (present block count, verification, pins) lives under one lock while unrelated blobs never
//! contend. Critical sections are a hash lookup and a few field updates; file I/O under a shard
//! lock only happens on the rare paths (creating, punching or deleting, marking verified).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::key::BlobKey;
use super::sidecar::Ctime;

const SHARDS: usize = 64;

/// One region (~4 MiB) of a blob's data file as the index knows it.
#[derive(Debug)]
pub(crate) struct Region {
    /// Bit `s` set = slot `s` holds a complete block whose crc32c is `crcs[s]`.
    pub present: u64,
    pub crcs: Box<[u32]>,
    /// Bytes accounted against the cap: allocation of the present blocks.
    pub bytes: u64,
    /// Writes into this region between their reservation and their publication; eviction
    /// leaves such a region alone (its records and data are being written).
    pub writers: u32,
    /// LRU clock value of the last read or write.
    pub last_used: u64,
    /// Wall-clock seconds last recorded in the sidecar (recency that survives restarts;
    /// refreshed at most every `TOUCH_INTERVAL_SECS`).
    pub touched_secs: u64,
}

impl Region {
    pub(crate) fn new(blocks_per_region: u64, last_used: u64, touched_secs: u64) -> Region {
        Region {
            present: 0,
            crcs: vec![0; blocks_per_region as usize].into_boxed_slice(),
            bytes: 0,
            writers: 0,
            last_used,
            touched_secs,
        }
    }
}

/// How many handles of a blob's data file are out ([`super::CompleteBlob`]s alive). Shared
/// with the pins so dropping one needs no lock.
#[derive(Debug, Default)]
pub(crate) struct PinCount(AtomicU64);

impl PinCount {
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Adds a holder; true if it is the first.
    pub(crate) fn add(&self) -> bool {
        self.0.fetch_add(1, Ordering::AcqRel) == 0
    }

    /// Removes a holder; true if it was the last.
    pub(crate) fn remove(&self) -> bool {
        self.0.fetch_sub(1, Ordering::AcqRel) == 1
    }
}

/// One cached blob: its data file and sidecar.
#[derive(Debug)]
pub(crate) struct BlobEntry {
    pub blob_size: u64,
    /// Unique per created/loaded file pair, so a late writer or reader can tell the files it
    /// used from newer ones at the same paths after a removal.
    pub incarnation: u64,
    pub regions: HashMap<u64, Region>,
    /// Sum of the present bits of all regions.
    pub present_blocks: u64,
    /// Bytes accounted for the sidecar.
    pub meta_bytes: u64,
    /// Some(data file ctime when verified) while the whole content is known to match its key.
    pub verified: Option<Ctime>,
    /// The data file was handed out (pinned) since this process opened the cache. The kernel
    /// may keep reading such a file after the last pin is gone (an mmap outlives its file
    /// descriptor), so its space is only ever reclaimed by deleting it whole, never by
    /// punching holes that would read as zeros.
    pub exported: bool,
    /// Removal was asked while pinned: the blob is gone for every reader and writer, and its
    /// files are deleted once the last pin is dropped.
    pub doomed: bool,
    pub pins: Arc<PinCount>,
}

impl BlobEntry {
    pub(crate) fn new(blob_size: u64, incarnation: u64, meta_bytes: u64) -> Self {
        BlobEntry {
            blob_size,
            incarnation,
            regions: HashMap::new(),
            present_blocks: 0,
            meta_bytes,
            verified: None,
            exported: false,
            doomed: false,
            pins: Arc::new(PinCount::default()),
        }
    }

    /// Bytes the blob accounts against the cap.
    pub(crate) fn bytes(&self) -> u64 {
        self.meta_bytes + self.regions.values().map(|r| r.bytes).sum::<u64>()
    }

    pub(crate) fn pinned(&self) -> bool {
        self.pins.get() > 0
    }

    /// Whether block slot `slot` of `region` is present.
    pub(crate) fn has(&self, region: u64, slot: u64) -> bool {
        self.regions
            .get(&region)
            .is_some_and(|r| r.present & (1 << slot) != 0)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Shard {
    pub blobs: HashMap<BlobKey, BlobEntry>,
}

impl Shard {
    /// The blob entry if it is cached with this size and not doomed (anything else is absent
    /// to readers and writers).
    pub(crate) fn blob(&self, key: &BlobKey, blob_size: u64) -> Option<&BlobEntry> {
        self.blobs
            .get(key)
            .filter(|b| b.blob_size == blob_size && !b.doomed)
    }

    pub(crate) fn blob_mut(&mut self, key: &BlobKey, blob_size: u64) -> Option<&mut BlobEntry> {
        self.blobs
            .get_mut(key)
            .filter(|b| b.blob_size == blob_size && !b.doomed)
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
