//! The shared tier as a block source: between the local cache (and the huggingface_hub cache)
//! and the Hub. This file and two lines of `fetch.rs::stream_range` are the whole hook.
//!
//! - **Read**: a run of blocks the local cache misses is looked up in the shared tier, block by
//!   block (a few lookups in flight, in order); the longest prefix found is delivered, the rest
//!   comes from the Hub. Delivered blocks take exactly the path of Hub bytes (`fetch_run`'s
//!   `on_block`: local cache, in-order content hash, waiters), after the tier's own trailer
//!   check. A lookup that fails or times out is a miss; it never fails the read.
//! - **Fill**: every block the Hub delivers is queued for the tier (`SharedCache::try_fill`,
//!   which never waits). When the queue is full (the Hub is faster than the store), only the
//!   block's name goes into a bounded backlog; one background task feeds those blocks to the
//!   queue as room appears, reading them back from the local cache (crc-checked). So a fast
//!   reader is never slowed and the tier still ends up with the whole file.
//! - **Wrong content**: a blob that fails its content hash has its entries purged from the
//!   tier, and this node stops using the tier for it, so its refetch comes from the Hub.
//! - **Privacy**: the tier is consulted only by an online mount (`client` is Some), whose every
//!   blob comes from a snapshot opened by a repo-info answer the Hub gave this node's token
//!   (`fs::snapshot::Snapshot::open`): a node never learns bytes of a repo its token cannot
//!   list, since it cannot know their key. Offline mounts never touch the tier.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;

use super::{Blob, ReadPath};
use crate::cache::{BlobKey, BlockCache};
use crate::shared::{Lookup, SharedCache, SharedKey};

/// Lookups of one run in flight at once.
const LOOKAHEAD: usize = 8;
/// Blobs this node stopped trusting the tier for, remembered at most (then forgotten at once:
/// their entries were purged anyway).
const MAX_DISTRUSTED: usize = 4096;

/// Blocks waiting in the backlog at most: names only (~70 bytes each), 8 GiB of 128 KiB blocks.
const MAX_BACKLOG: usize = 65536;
/// How often the backlog task looks for room in the fill queue.
const BACKLOG_POLL: Duration = Duration::from_millis(20);

/// The tier and what the read path remembers about it.
pub struct Shared {
    pub cache: Arc<SharedCache>,
    /// Blobs whose content failed its hash: read from the Hub only, until the mount restarts.
    distrusted: Mutex<HashSet<BlobKey>>,
    backlog: Arc<Backlog>,
}

/// Blocks fetched while the fill queue was full: (content, its size, block index, entry name).
#[derive(Default)]
struct Backlog {
    queue: Mutex<VecDeque<(BlobKey, u64, u64, SharedKey)>>,
    /// True while a task drains the backlog.
    draining: AtomicBool,
}

impl Shared {
    pub fn new(cache: Arc<SharedCache>) -> Shared {
        Shared {
            cache,
            distrusted: Mutex::default(),
            backlog: Arc::default(),
        }
    }

    /// Queues a fetched block for the tier, or its name for later.
    fn fill(&self, local: &Arc<BlockCache>, blob: &Blob, idx: u64, key: SharedKey, data: Bytes) {
        if self.cache.try_fill(key, data) {
            return;
        }
        {
            let mut q = self.backlog.queue.lock();
            if q.len() >= MAX_BACKLOG {
                self.cache.dropped(1);
                return;
            }
            q.push_back((blob.key, blob.size, idx, key));
        }
        crate::shared::SharedStats::bump(&self.cache.stats.deferred);
        if !self.backlog.draining.swap(true, Ordering::AcqRel) {
            tokio::spawn(drain(
                self.backlog.clone(),
                self.cache.clone(),
                local.clone(),
            ));
        }
    }
}

/// Feeds the backlog to the fill queue as room appears, reading each block back from the local
/// cache; gives up on all of it when the breaker opens.
async fn drain(backlog: Arc<Backlog>, tier: Arc<SharedCache>, local: Arc<BlockCache>) {
    loop {
        if tier.breaker_open() {
            let mut q = backlog.queue.lock();
            tier.dropped(q.len() as u64);
            q.clear();
        }
        let next = backlog.queue.lock().pop_front();
        let Some((blob, size, idx, key)) = next else {
            backlog.draining.store(false, Ordering::Release);
            // A block pushed between the pop and the store finds `draining` still set: look
            // again, and keep going if it is there and nobody else took over.
            if backlog.queue.lock().is_empty() || backlog.draining.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        };
        while tier.fill_room() == 0 && !tier.breaker_open() {
            tokio::time::sleep(BACKLOG_POLL).await;
        }
        let local2 = local.clone();
        let read = tokio::task::spawn_blocking(move || local2.read_block(&blob, size, idx)).await;
        match read {
            Ok(Ok(Some(data))) => {
                if !tier.try_fill(key, data) {
                    // Fetches took the room first: its turn comes again.
                    backlog.queue.lock().push_front((blob, size, idx, key));
                }
            }
            // Evicted meanwhile, or unreadable.
            _ => tier.dropped(1),
        }
    }
}

impl ReadPath {
    fn shared_key(&self, blob: &Blob, idx: u64) -> SharedKey {
        let bs = self.block_size();
        let offset = idx * bs;
        SharedKey::Range {
            blob: blob.key,
            offset,
            // A block is at most the block size (<= 16 MiB): fits a u32.
            len: (blob.size - offset).min(bs) as u32,
        }
    }

    /// Delivers the longest prefix of `[start, end)` (block-aligned `start`) the shared tier
    /// has, in order; returns where the Hub must take over (`end`: all delivered).
    pub(super) async fn serve_from_shared(
        &self,
        blob: &Blob,
        start: u64,
        end: u64,
        on_block: &mut impl FnMut(Bytes),
    ) -> u64 {
        let Some(shared) = self.shared.as_ref() else {
            return start;
        };
        // Offline mounts never get here (see the module doc on privacy).
        if self.client.is_none() || shared.distrusted.lock().contains(&blob.key) {
            return start;
        }
        let bs = self.block_size();
        let first = start / bs;
        let last = end.div_ceil(bs);
        let keys: Vec<SharedKey> = (first..last).map(|i| self.shared_key(blob, i)).collect();
        let mut found = futures_util::stream::iter(keys)
            .map(|k| async move { shared.cache.get(&k).await })
            .buffered(LOOKAHEAD);
        let mut pos = start;
        while let Some(Lookup::Hit(data)) = found.next().await {
            pos = (pos + data.len() as u64).min(end);
            on_block(data);
        }
        pos
    }

    /// Wraps the Hub's `on_block` (blocks from `start` on, in order) so each block, once
    /// handed to the reader, is also queued for the shared tier.
    pub(super) fn filling_shared<'a>(
        &'a self,
        blob: &'a Blob,
        start: u64,
        mut on_block: impl FnMut(Bytes) + 'a,
    ) -> impl FnMut(Bytes) + 'a {
        let mut idx = start / self.block_size();
        move |data: Bytes| {
            on_block(data.clone());
            if let Some(shared) = self.shared.as_ref() {
                shared.fill(&self.cache, blob, idx, self.shared_key(blob, idx), data);
            }
            idx += 1;
        }
    }

    /// `blob`'s content failed its hash: its entries in the tier may be the cause (or were
    /// filled from bad Hub bytes). Purge them and read it from the Hub from now on.
    pub(super) fn distrust_shared(&self, blob: &Blob) {
        let Some(shared) = self.shared.as_ref() else {
            return;
        };
        {
            let mut d = shared.distrusted.lock();
            if d.len() >= MAX_DISTRUSTED {
                d.clear();
            }
            d.insert(blob.key);
        }
        shared.cache.purge(&blob.key);
    }

    /// The tier's counters for `hubfs status` (None: no shared cache).
    pub fn shared_status(&self) -> Option<serde_json::Value> {
        self.shared.as_ref().map(|s| {
            let mut v = s.cache.status();
            v["backlog"] = s.backlog.queue.lock().len().into();
            v
        })
    }
}
