//! The read path: bytes of a pinned file, from the block cache or fetched lazily from the Hub.
//!
//! `read(stream, offset, len)` serves the blocks covering the range: cached blocks straight
//! from disk; missing ones by joining an in-flight fetch of the block, or by claiming them and
//! fetching each contiguous run of claimed blocks with one ranged GET. A sequential reader also
//! gets a read-ahead window (see `readahead`) fetched as several parallel range requests.
//! Every fetched block is written to the cache before it is published, so a re-read never moves
//! file bytes again; a completed LFS blob is checked against its sha256 once. A block fetched
//! ahead of its reader waits in memory rather than being read back from the cache file: read-ahead
//! is issued only as far as the mount's read-ahead memory budget (`fresh`) can hold its bytes,
//! shared fairly among the readers, and released as they consume. What was served (and hashed) leaves the cache file's page cache
//! (`BlockCache::release_pages`): one copy per byte, in the kernel's cache of the mounted file.
//!
//! Lock order: a stream's read-ahead state may be held while the `fresh`, `inflight` and cache
//! index locks are taken (to look at the context of a read, `BlobContext`), never the
//! reverse. `inflight` may be held while the cache index is locked (`Inflight::claim`).

pub mod abort;
mod fetch;
mod fresh;
pub mod hf_cache;
mod inflight;
pub mod readahead;
mod run_buf;
mod shared;
mod spans;
mod stall;
mod verify;
pub mod xet;

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::cache::{BlobKey, BlockCache};
use crate::fs::Errno;
use crate::hub::HubClient;
use crate::repo::RepoRef;
pub use abort::Abort;
use inflight::{Claim, Inflight};
use readahead::{Readahead, WindowConfig};

/// Tuning of the read path. Defaults carry their reasons.
#[derive(Debug, Clone)]
pub struct ReadConfig {
    /// First read-ahead window of a sequential reader: small, so a reader that stops early
    /// (`head`, `file`) wastes little.
    pub min_window: u64,
    /// Largest read-ahead window: deep enough to keep `max_window / max_request` range requests
    /// busy, which is what beats one stream on a bandwidth-capped CDN connection.
    pub max_window: u64,
    /// Largest prefetch request: large enough that the per-request round trip is small against
    /// its transfer time, small enough to spread one file over many connections.
    pub max_request: u64,
    /// Smallest prefetch request: below this, round trips dominate.
    pub min_request: u64,
    /// The kernel's largest FUSE read, which prefetches keep in step with (`readahead.rs`):
    /// 1 MiB, what `fuse.rs`'s `max_write` lets the kernel ask (256 pages).
    pub reply_len: u64,
    /// A sequential run prefetches only once it has read this much: two adjacent reads of a
    /// random reader (one fio 256 KiB read arrives as two kernel requests) are not a run.
    pub start_after: u64,
    /// Until a run has read this much its window is an eighth of what it read (a loader reading
    /// one tensor wastes little); after, twice (a `cat` ramps up fast).
    pub slow_start: u64,
    /// Range requests in flight for the whole mount: bounds sockets, memory and threads.
    pub max_parallel_requests: usize,
    /// Attempts to finish one range after its body was cut (each resumes where it stopped).
    pub resume_attempts: u32,
    /// A fetch that receives no byte for this long fails with EIO, whatever the client's
    /// retries are doing: a reader never hangs on a stalled or dead Hub.
    pub io_timeout: std::time::Duration,
    /// Read-ahead memory budget of the whole mount (see `fresh`): bytes fetched ahead of their
    /// readers, in flight or waiting in memory, and not yet served. Read-ahead that does not
    /// fit waits (backpressure), so every prefetched block is served from the buffer it arrived
    /// in, never read back from the cache file. Shared fairly among the readers.
    pub fresh_bytes: u64,
}

impl Default for ReadConfig {
    fn default() -> Self {
        ReadConfig {
            min_window: 1 << 20,
            max_window: 128 << 20,
            max_request: 8 << 20,
            min_request: 512 << 10,
            reply_len: 1 << 20,
            start_after: 512 << 10,
            slow_start: 16 << 20,
            max_parallel_requests: 32,
            resume_attempts: 5,
            io_timeout: std::time::Duration::from_secs(60),
            // As many 8 MiB requests as `max_parallel_requests` lets fly (32): one reader's
            // full window, or 64 MiB for each of four. Measured (issue 14): peak RSS 383-391 MiB
            // with four 1 GiB readers (192 MiB: 325-362, but fewer requests in flight on a
            // shaped link), inside the 512 MiB target.
            fresh_bytes: DEFAULT_READ_AHEAD_MEMORY,
        }
    }
}

/// Default of `ReadConfig::fresh_bytes` (`--read-ahead-memory`).
pub const DEFAULT_READ_AHEAD_MEMORY: u64 = 256 << 20;

/// A file's content as the read path sees it: where to fetch it and how it is cached.
#[derive(Debug)]
pub struct Blob {
    pub repo: RepoRef,
    pub commit: String,
    pub path: String,
    pub key: BlobKey,
    pub size: u64,
    /// Expected sha256 of the whole content (LFS files).
    pub sha256: Option<String>,
    /// Xet file hash: the content can be reconstructed from the CAS (see `xet`).
    pub xet_hash: Option<String>,
}

/// Served bytes whose cache-file pages are released in batches of this much (one write-back
/// and drop request each).
const RELEASE_BATCH: u64 = 8 << 20;
/// Out-of-order replies of the kernel's parallel read-ahead still extend the served range.
const RELEASE_SLACK: u64 = 2 << 20;

/// Per-open-file read state.
pub struct ReadStream {
    pub blob: Arc<Blob>,
    /// Who this stream's read-ahead is charged to in the memory budget.
    owner: fresh::Owner,
    readahead: Mutex<Readahead>,
    /// Bytes served to the kernel and not yet released from the cache file's pages.
    served: Mutex<Option<std::ops::Range<u64>>>,
}

impl ReadStream {
    pub fn new(blob: Arc<Blob>) -> ReadStream {
        static NEXT_OWNER: AtomicU64 = AtomicU64::new(0);
        ReadStream {
            blob,
            owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
            readahead: Mutex::new(Readahead::default()),
            served: Mutex::new(None),
        }
    }

    /// Records `[from, to)` as served; returns a range whose cache-file pages may go now: served,
    /// and below `hashed` (the in-order hash may still read back what is above).
    fn served(&self, from: u64, to: u64, hashed: u64) -> Option<std::ops::Range<u64>> {
        let mut served = self.served.lock();
        match served.as_mut() {
            Some(r) if from + RELEASE_SLACK >= r.start && from <= r.end + RELEASE_SLACK => {
                r.start = r.start.min(from);
                r.end = r.end.max(to);
            }
            _ => {
                // A new run: what the old one served (and was hashed) goes now.
                let old = served.replace(from..to)?;
                let upto = old.end.min(hashed);
                return (upto > old.start).then_some(old.start..upto);
            }
        }
        let r = served.as_mut()?;
        let upto = r.end.min(hashed);
        if upto > r.start && (upto - r.start >= RELEASE_BATCH || upto == self.blob.size) {
            let out = r.start..upto;
            r.start = upto;
            return Some(out);
        }
        None
    }
}

impl Drop for ReadStream {
    /// A file whose reads looked sequential but kept escaping the read-ahead leaves its read
    /// order in the log: the pattern that cost it a round trip per read.
    fn drop(&mut self) {
        let ra = self.readahead.get_mut();
        let t = ra.lost_track();
        if t.worth_logging() {
            tracing::info!(
                "read-ahead failed {}: of {} reads, {} continued a run, {} requested their own \
                 blocks, {} started a run near the previous one ({} found by context); reads \
                 (offset, length) before the first of those: {:?}; the last reads: {:?}",
                self.blob.path,
                t.reads,
                t.continued,
                t.demanded,
                t.near_breaks,
                t.found,
                t.samples,
                t.recent
            );
        }
    }
}

/// Counters shown by `hubfs status`.
#[derive(Debug, Default, Serialize)]
pub struct ReadStats {
    pub reads: AtomicU64,
    pub bytes_read: AtomicU64,
    pub block_hits: AtomicU64,
    pub block_misses: AtomicU64,
    pub fetches: AtomicU64,
    pub bytes_fetched: AtomicU64,
    pub fetch_resumes: AtomicU64,
    pub fetch_failures: AtomicU64,
    pub prefetched_bytes: AtomicU64,
    pub verified_blobs: AtomicU64,
    pub verify_failures: AtomicU64,
    /// Bytes read from verified blobs of the huggingface_hub cache instead of the Hub.
    pub hf_cache_bytes: AtomicU64,
    /// Blocks served from the buffer a read-ahead fetch left in memory (no cache read).
    pub fresh_hits: AtomicU64,
    /// Blocks a read took from the cache file (re-reads, or read-ahead that was not kept).
    pub cache_reads: AtomicU64,
    /// Read-ahead requests held back because the read-ahead memory budget was full.
    pub prefetch_deferred: AtomicU64,
    /// Sequential runs found by their context (the bytes just before a read were there) after
    /// the handle's own read-ahead state had lost them (`readahead.rs`).
    pub context_runs: AtomicU64,
    /// Replies over several blocks answered with one piece of their run buffer (no copy).
    pub replies_joined: AtomicU64,
    /// Replies over several blocks that had to be copied into one buffer.
    pub replies_copied: AtomicU64,
    /// Blocks the in-order hash read back from the cache file (neither parked nor in memory).
    pub hash_read_back: AtomicU64,
    /// Reads held until the in-order hash came close enough (`verify.rs`).
    pub hash_paced: AtomicU64,
    /// `run_bufs_recycled`, `run_bufs_fresh`, `run_bufs_allocated`: fetch buffers (LFS,
    /// bridge and CAS alike) recycled from the pool, newly mapped by it, or too short for it
    /// (`run_buf.rs`).
    #[serde(flatten)]
    pub run_bufs: run_buf::PoolStats,
}

pub struct ReadPath {
    client: Option<HubClient>,
    cache: Arc<BlockCache>,
    inflight: Inflight,
    permits: Arc<Semaphore>,
    cfg: ReadConfig,
    window: WindowConfig,
    verifying: Mutex<HashSet<BlobKey>>,
    verifiers: verify::Verifiers,
    /// Ends fetches in flight when the mount is being unmounted.
    abort: Arc<Abort>,
    /// The huggingface_hub cache, consulted before every fetch (None: `--no-hf-cache`).
    hf_cache: Option<hf_cache::HfCache>,
    /// Told what each blob is before its first blocks are stored (`hubfs cache ls`).
    inventory: Option<Arc<crate::cache::Inventory>>,
    /// Contents whose fetch just timed out: the kernel's immediate retry fails at once.
    stalls: stall::Stalls,
    /// The CAS reader for Xet files (None: offline, or `--no-xet`): bridge reads only.
    xet: Option<Arc<xet::XetReader>>,
    /// Read-ahead blocks waiting in memory for their first reader.
    fresh: fresh::Fresh,
    /// Buffers of recent CAS runs: multi-block reads inside one need no copy.
    spans: spans::Spans,
    /// The cluster's shared cache tier, consulted before the Hub (None: `--shared-cache` unset).
    shared: Option<shared::Shared>,
    pub stats: ReadStats,
}

enum Pending {
    Ready(Bytes),
    Wait(tokio::sync::watch::Receiver<inflight::BlockResult>),
}

impl ReadPath {
    /// `client` is None in offline mode: misses are then errors, never network traffic.
    pub fn new(client: Option<HubClient>, cache: Arc<BlockCache>, cfg: ReadConfig) -> ReadPath {
        let window = WindowConfig {
            min_window: cfg.min_window,
            max_window: cfg.max_window,
            slack: (cfg.min_window * 2).max(2 << 20),
            start_after: cfg.start_after,
            slow_start: cfg.slow_start,
            max_request: cfg.max_request,
            min_request: cfg.min_request,
            reply_len: cfg.reply_len,
        };
        ReadPath {
            client,
            cache,
            inflight: Inflight::default(),
            permits: Arc::new(Semaphore::new(cfg.max_parallel_requests.max(1))),
            fresh: fresh::Fresh::new(cfg.fresh_bytes),
            spans: spans::Spans::default(),
            cfg,
            window,
            verifying: Mutex::new(HashSet::new()),
            verifiers: verify::Verifiers::default(),
            abort: Arc::default(),
            hf_cache: None,
            inventory: None,
            stalls: stall::Stalls::default(),
            xet: None,
            shared: None,
            stats: ReadStats::default(),
        }
    }

    /// Serves blobs found (and verified) in the huggingface_hub cache at `dir` without fetching.
    pub fn with_hf_cache(mut self, dir: Option<std::path::PathBuf>) -> ReadPath {
        self.hf_cache = dir.map(hf_cache::HfCache::new);
        self
    }

    /// Records what each blob is (repo, commit, path) in `inventory` when it is first stored.
    pub fn with_inventory(mut self, inventory: Arc<crate::cache::Inventory>) -> ReadPath {
        self.inventory = Some(inventory);
        self
    }

    pub fn inventory(&self) -> Option<&Arc<crate::cache::Inventory>> {
        self.inventory.as_ref()
    }

    /// Records the name of a blob being opened if the cache holds some of it (a blob fetched
    /// now is recorded by the fetch). After the first time per name, a set lookup.
    pub fn note_cached(&self, blob: &Blob) {
        if let Some(inv) = &self.inventory {
            if self.cache.holds(&blob.key) {
                let repo = blob.repo.to_string();
                inv.note(&blob.key, blob.size, &repo, &blob.commit, &blob.path);
            }
        }
    }

    /// Reads files that have a `xetHash` through the CAS first (see `xet`).
    pub fn with_xet(mut self, xet: Option<Arc<xet::XetReader>>) -> ReadPath {
        self.xet = xet;
        self
    }

    /// The CAS reader's counters, if Xet reads are on.
    pub fn xet_stats(&self) -> Option<&xet::XetStats> {
        self.xet.as_deref().map(|x| &x.stats)
    }

    /// The Xet chunk store's counters (`hubfs status` `chunks`), None without one.
    pub fn chunk_status(&self) -> Option<serde_json::Value> {
        let store = self.xet.as_deref()?.chunk_store()?;
        let inner = store.cache_stats();
        let mut v = serde_json::to_value(&store.stats).ok()?;
        if let Some(o) = v.as_object_mut() {
            o.insert("blocks_written".into(), inner.blocks_written.into());
            o.insert("evictions".into(), inner.evictions.into());
            o.insert("corrupt_blocks".into(), inner.corrupt_dropped.into());
        }
        Some(v)
    }

    /// Reads through (and fills) the cluster's shared cache tier.
    pub fn with_shared_cache(mut self, tier: Option<Arc<crate::shared::SharedCache>>) -> ReadPath {
        self.shared = tier.map(shared::Shared::new);
        self
    }

    pub fn cache(&self) -> &Arc<BlockCache> {
        &self.cache
    }

    /// The switch that fails every Hub request of the mount (unmount).
    pub fn abort(&self) -> &Arc<Abort> {
        &self.abort
    }

    fn block_size(&self) -> u64 {
        self.cache.block_size()
    }

    /// Reads up to `len` bytes at `offset`; short only at end of file. A read within one block
    /// shares the block's buffer (no copy), as does one within one CAS run (`spans`).
    pub async fn read(
        self: &Arc<Self>,
        stream: &ReadStream,
        offset: u64,
        len: u32,
    ) -> Result<Bytes, Errno> {
        let blob = &stream.blob;
        if offset >= blob.size || len == 0 {
            return Ok(Bytes::new());
        }
        let end = (offset + u64::from(len)).min(blob.size);
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        let (prefetch, run_start) = {
            let mut ra = stream.readahead.lock();
            let prefetch = ra.on_read(
                offset,
                end,
                blob.size,
                &self.window,
                &mut BlobContext { path: self, blob },
            );
            (prefetch, ra.run_start().unwrap_or(offset))
        };
        tracing::trace!("read {} [{offset}, {end}) prefetch {prefetch:?}", blob.path);
        let bs = self.block_size();
        let blocks = (offset / bs)..=((end - 1) / bs);
        self.keep_pace_with_hash(blob, run_start / bs, *blocks.end())
            .await;
        let (pending, demanded) = self.acquire(blob, blocks.clone(), end)?;
        if demanded {
            stream.readahead.lock().note_demand();
        }
        if let Some(p) = prefetch {
            let issued = self.prefetch(blob, stream.owner, p);
            if issued < p.to {
                self.stats.prefetch_deferred.fetch_add(1, Ordering::Relaxed);
                stream.readahead.lock().issued_to(issued);
            }
        }
        let mut parts = Vec::with_capacity(pending.len());
        for (idx, p) in blocks.zip(pending) {
            let block_start = idx * bs;
            let block = match p {
                Pending::Ready(b) => b,
                Pending::Wait(rx) => {
                    let b = inflight::wait(rx).await?;
                    if self.consumes(blob, idx, end) {
                        // Kept for a reader too (this one joined the fetch just after it
                        // looked for waiters): served now, so it leaves the budget.
                        self.fresh.take(&blob.key, idx);
                    }
                    b
                }
            };
            let from = offset.saturating_sub(block_start) as usize;
            let to = ((end - block_start) as usize).min(block.len());
            if from >= to {
                // The block is shorter than the file says: never hand out a partial answer.
                return Err(Errno::EIO);
            }
            parts.push(block.slice(from..to));
        }
        let out = if parts.len() == 1 {
            parts.swap_remove(0)
        } else if let Some(one) = self.spans.join(&parts) {
            self.stats.replies_joined.fetch_add(1, Ordering::Relaxed);
            if let Some(xet) = &self.xet {
                xet.stats
                    .replies_without_copy
                    .fetch_add(1, Ordering::Relaxed);
            }
            one
        } else {
            self.stats.replies_copied.fetch_add(1, Ordering::Relaxed);
            let mut joined = bytes::BytesMut::with_capacity((end - offset) as usize);
            for p in &parts {
                joined.extend_from_slice(p);
            }
            joined.freeze()
        };
        if end == blob.size {
            // The end of the file: never hand it out if the content fails its hash.
            self.check_last_block(blob).await?;
        }
        self.stats
            .bytes_read
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        if let Some(r) = stream.served(offset, end, self.hashed_to(blob)) {
            self.cache.release_pages(&blob.key, blob.size, r);
        }
        Ok(out)
    }

    /// Finds each block of `blocks` in the cache, in flight, or claims it, and starts fetching
    /// the claimed ones (one request per contiguous run); true if it claimed any. The read ends
    /// at `end`: a block held in memory for its reader is taken out only when the read reaches
    /// the block's end (the next read may start inside it).
    fn acquire(
        self: &Arc<Self>,
        blob: &Arc<Blob>,
        blocks: RangeInclusive<u64>,
        end: u64,
    ) -> Result<(Vec<Pending>, bool), Errno> {
        let mut claimed = false;
        let mut out = Vec::new();
        let mut run: Vec<(u64, Arc<inflight::Slot>)> = Vec::new();
        for idx in blocks {
            loop {
                if let Some(b) = self.cached_block(blob, idx, self.consumes(blob, idx, end)) {
                    self.stats.block_hits.fetch_add(1, Ordering::Relaxed);
                    out.push(Pending::Ready(b));
                    break;
                }
                let present = || self.cache.contains_block(&blob.key, blob.size, idx);
                match self.inflight.claim(&blob.key, idx, present) {
                    // Stored between our read and the claim: read it again.
                    None => continue,
                    Some(Claim::Wait(rx)) => {
                        self.stats.block_misses.fetch_add(1, Ordering::Relaxed);
                        out.push(Pending::Wait(rx));
                    }
                    Some(Claim::Mine(slot)) => {
                        self.stats.block_misses.fetch_add(1, Ordering::Relaxed);
                        claimed = true;
                        out.push(Pending::Wait(slot.subscribe()));
                        if run.last().is_some_and(|(last, _)| *last + 1 != idx) {
                            self.spawn_fetch(blob, std::mem::take(&mut run));
                        }
                        run.push((idx, slot));
                    }
                }
                break;
            }
        }
        if !run.is_empty() {
            self.spawn_fetch(blob, run);
        }
        Ok((out, claimed))
    }

    /// Whether block `idx` of `blob` is cached, held for a reader or being fetched.
    fn block_present(&self, blob: &Blob, idx: u64) -> bool {
        self.fresh.holds(&blob.key, idx)
            || self.inflight.is_fetching(&blob.key, idx)
            || self.cache.contains_block(&blob.key, blob.size, idx)
    }

    /// Whether a read ending at `end` reaches the end of block `idx`: a block kept in memory for
    /// its reader leaves the budget only then (the next read may start inside it).
    fn consumes(&self, blob: &Blob, idx: u64, end: u64) -> bool {
        end >= ((idx + 1) * self.block_size()).min(blob.size)
    }

    fn cached_block(self: &Arc<Self>, blob: &Arc<Blob>, idx: u64, consumed: bool) -> Option<Bytes> {
        let kept = if consumed {
            self.fresh.take(&blob.key, idx).inspect(|(b, crc)| {
                // Its reader is done with it; the in-order hash may not be.
                self.park_for_hash(blob, idx, b, *crc);
            })
        } else {
            self.fresh.peek(&blob.key, idx)
        };
        if let Some((b, _)) = kept {
            self.stats.fresh_hits.fetch_add(1, Ordering::Relaxed);
            return Some(b);
        }
        if !self.cache.contains_block(&blob.key, blob.size, idx) {
            return None;
        }
        match self.cache.read_block(&blob.key, blob.size, idx) {
            Ok(b) => {
                if b.is_some() {
                    self.stats.cache_reads.fetch_add(1, Ordering::Relaxed);
                }
                b
            }
            Err(e) => {
                tracing::warn!("cache read of {} failed, refetching: {e}", blob.path);
                None
            }
        }
    }

    /// Starts fetching `[from, to)` in requests of `request` bytes, without waiting, as far as
    /// the read-ahead memory budget admits each request; returns where it stopped (`p.to` if
    /// everything was issued).
    fn prefetch(
        self: &Arc<Self>,
        blob: &Arc<Blob>,
        owner: fresh::Owner,
        p: readahead::Prefetch,
    ) -> u64 {
        let bs = self.block_size();
        let chunk_blocks = (p.request / bs).max(1);
        let first = p.from / bs;
        let last = (p.to - 1) / bs;
        let block_len = |i: u64| (blob.size.min((i + 1) * bs)).saturating_sub(i * bs);
        let mut idx = first;
        while idx <= last {
            let chunk_end = (idx + chunk_blocks - 1).min(last);
            let want: u64 = (idx..=chunk_end).map(block_len).sum();
            if !self.fresh.reserve(owner, want) {
                return (idx * bs).max(p.from);
            }
            let mut run: Vec<(u64, Arc<inflight::Slot>)> = Vec::new();
            for i in idx..=chunk_end {
                let present = || self.cache.contains_block(&blob.key, blob.size, i);
                let claim = self.inflight.claim(&blob.key, i, present);
                if matches!(claim, Some(Claim::Mine(_))) {
                    self.fresh.pend(owner, &blob.key, i, block_len(i));
                } else {
                    self.fresh.unreserve(owner, block_len(i));
                }
                match claim {
                    Some(Claim::Mine(slot)) => {
                        if run.last().is_some_and(|(last, _)| *last + 1 != i) {
                            self.spawn_fetch(blob, std::mem::take(&mut run));
                        }
                        run.push((i, slot));
                    }
                    // Cached or already in flight: a hole in this run.
                    _ => {
                        if !run.is_empty() {
                            self.spawn_fetch(blob, std::mem::take(&mut run));
                        }
                    }
                }
            }
            if !run.is_empty() {
                let bytes = run.len() as u64 * bs;
                self.stats
                    .prefetched_bytes
                    .fetch_add(bytes, Ordering::Relaxed);
                self.spawn_fetch(blob, run);
            }
            idx = chunk_end + 1;
        }
        p.to
    }

    fn spawn_fetch(self: &Arc<Self>, blob: &Arc<Blob>, run: Vec<(u64, Arc<inflight::Slot>)>) {
        let me = self.clone();
        let blob = blob.clone();
        tokio::spawn(async move {
            me.fetch_run(&blob, run).await;
            if me.cache.is_complete(&blob.key, blob.size) {
                me.finish_stream_hash(&blob);
            }
            me.maybe_verify(&blob);
        });
    }

    /// Once every block of a blob is cached, checks its digest (sha256 for LFS files, the git
    /// sha1 otherwise; once, in the background) unless the in-order hash of the fetches already
    /// did. A verified blob is what passthrough may hand to the kernel.
    fn maybe_verify(self: &Arc<Self>, blob: &Arc<Blob>) {
        if self.cache.is_verified(&blob.key)
            || self.stream_verified(&blob.key)
            || !self.cache.is_complete(&blob.key, blob.size)
            || !self.verifying.lock().insert(blob.key)
        {
            return;
        }
        let me = self.clone();
        let blob = blob.clone();
        tokio::task::spawn_blocking(move || {
            match me.cache.verify_sha256(&blob.key, blob.size) {
                Ok(true) => {
                    me.stats.verified_blobs.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => {
                    me.stats.verify_failures.fetch_add(1, Ordering::Relaxed);
                    me.fresh.forget_blob(&blob.key);
                    me.distrust_shared(&blob);
                    tracing::error!(
                        "{}@{}: {} failed its content hash check; its cached bytes were dropped",
                        blob.repo,
                        blob.commit,
                        blob.path
                    );
                }
                Err(e) => tracing::warn!("could not verify {}: {e}", blob.path),
            }
            me.verifying.lock().remove(&blob.key);
        });
    }

    /// The read-ahead memory budget now (`hubfs status` `read_ahead`): bytes held (in flight
    /// or waiting for their reader), the readers holding them, and the budget; and the blocks
    /// parked ahead of the in-order hash (memory outside the budget, shared with it while a
    /// parked block also waits for its reader).
    pub fn read_ahead_status(&self) -> serde_json::Value {
        let u = self.fresh.usage();
        serde_json::json!({
            "bytes": u.bytes,
            "readers": u.readers,
            "budget": self.cfg.fresh_bytes,
            "hash_parked_bytes": self.verifiers.parked_bytes(),
        })
    }

    pub fn inflight_blocks(&self) -> usize {
        self.inflight.len()
    }
}

/// The context of a read (`readahead::Context`): the blocks of its blob that are cached, held
/// for a reader or being fetched. Looks at `max / block size + 1` blocks at most.
struct BlobContext<'a> {
    path: &'a ReadPath,
    blob: &'a Blob,
}

impl readahead::Context for BlobContext<'_> {
    fn present_before(&mut self, start: u64, max: u64) -> u64 {
        let bs = self.path.block_size();
        let mut idx = start / bs;
        let mut bytes = 0;
        while bytes < max && idx > 0 && self.path.block_present(self.blob, idx - 1) {
            idx -= 1;
            bytes = start - idx * bs;
        }
        // `Readahead` asks for exactly what a found run needs: all of `max` present.
        if bytes >= max {
            self.path.stats.context_runs.fetch_add(1, Ordering::Relaxed);
        }
        bytes.min(max)
    }

    fn present_from(&mut self, from: u64, max: u64) -> u64 {
        let bs = self.path.block_size();
        let mut idx = from / bs;
        let mut bytes = 0;
        while bytes < max && self.path.block_present(self.blob, idx) {
            idx += 1;
            bytes = idx * bs - from;
        }
        bytes.min(max)
    }
}
