//! End-to-end verification of fetched files while they stream in.
//!
//! Every file's cache key is a hash of its content (sha256 for LFS files, the git blob sha1 for
//! the others), so what the Hub sent can be checked. A `StreamVerifier` hashes a blob's blocks in
//! order as fetches deliver them, so the check costs no extra pass over the data. Hashing runs
//! on a blocking thread of its own, never in a fetch: parallel read-ahead delivers blocks out
//! of order, and a fetch that had to hash everything queued behind its block would stall the
//! async workers that receive the other fetches. Blocks that arrive ahead of the hash are
//! parked in memory (shared buffers, no copy) up to a bound; beyond it they are read back from
//! the cache when their turn comes. The read that asks for a file's *last* block waits for the
//! verdict: a sequential reader (`cat`, `cp`, `sha256sum`, a loader reading a whole file) gets
//! EIO instead of the end of a file whose bytes do not match their hash, and the blob's cached
//! bytes are dropped. Readers that skip around never complete the in-order hash; for them the
//! cache re-hashes the blob once it is complete.
//!
//! **Chain mode** (Xet files with the CAS in use): a block the CAS delivered was cut from chunks
//! that each passed their hash (`xet::verify`), and the file's Xet hash is a Merkle hash over
//! its `(chunk hash, length)` list. So instead of hashing the bytes again with sha256, the
//! verifier collects the chunk lists of the CAS runs by file offset; once every block in order
//! came from the CAS, the chain of chunks from offset 0 must reach the end, every listed chunk
//! must lie on it, and its file hash must equal the listing's `xetHash` (the key the bytes were
//! promised under). That ties every delivered byte to the file with one hash pass per byte.
//! The first block from anywhere else (the bridge after a CAS failure, the shared tier, a
//! block cached before this verifier began), or CAS runs whose chunk lists disagree, turn the
//! verifier back to hashing bytes from block 0 (read back from the cache): the same verdict,
//! at the cost of a second pass in a rare case.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;
use xet_core_structures::merklehash::{file_hash, MerkleHash};

use super::xet::CasRun;
use super::{Blob, ReadPath};
use crate::cache::{BlobKey, BlockFingerprint, ContentHasher};
use crate::fs::Errno;

/// In-order verifiers kept at once; finished ones and then the ones that progressed least are
/// dropped first (they are an optimisation: the cache's own check still runs when such a blob
/// completes).
const MAX_VERIFIERS: usize = 256;
/// The reader of a last block waits for the verdict only if at most this many blocks remain to
/// be hashed (fetching those nobody asked for yet); more means it was not a sequential read, and
/// it passes without waiting (the cache checks the blob once it is complete).
const MAX_CATCH_UP_BLOCKS: u64 = 32;
/// How far ahead of one blob's hash blocks are parked: 32 MiB of 128 KiB blocks. Blocks further
/// ahead stay with their reader (read-ahead memory) and are parked when the reader is done
/// with them, if the hash has come close enough by then; a block parked nowhere is read back
/// from the cache when the hash reaches it. Small enough that four readers stay well inside the
/// daemon's memory budget.
const MAX_PARKED_BLOCKS: u64 = 256;
/// A sequential reader this many blocks ahead of its blob's hash waits for it (at most
/// `MAX_PACE_WAIT` per read): past the parking range, the blocks it is done with would be
/// read back from the cache for the hash, a second pass over the disk and the crc that costs
/// more CPU than the wait (the hash lags only when the CPU is short). 1 MiB of room to spare.
const HASH_LEAD_BLOCKS: u64 = MAX_PARKED_BLOCKS - 8;
/// Longest a read waits for the hash to catch up: pacing is a saving, never a stall.
const MAX_PACE_WAIT: Duration = Duration::from_secs(1);
/// Blocks hashed per turn of the worker between looks at the shared state.
const HASH_BATCH: usize = 32;
/// A reader waiting for a verdict looks again this often even without news (nothing is lost if
/// a wake-up is missed, only time).
const VERDICT_POLL: Duration = Duration::from_millis(200);

/// What the worker carries forward: the content hash, and the identity of the blocks it saw so
/// a success can be recorded in the cache (which makes the file eligible for passthrough) only
/// if the cached blocks are the ones hashed.
struct InOrderHash {
    content: ContentHasher,
    fingerprint: BlockFingerprint,
}

impl InOrderHash {
    fn new(blob: &Blob) -> InOrderHash {
        InOrderHash {
            content: ContentHasher::new(&blob.key, blob.size),
            fingerprint: BlockFingerprint::new(),
        }
    }
}

/// Chain mode (see the module doc): what the CAS runs of one Xet file delivered.
struct Chain {
    /// The file's Xet hash, as listed.
    expected: MerkleHash,
    /// Chunks the CAS runs were cut from, by file offset: (chunk hash, length).
    chunks: BTreeMap<u64, (MerkleHash, u64)>,
    /// Blocks a CAS run noted and is delivering (not yet handed to `verify_block`).
    pending: HashSet<u64>,
    /// crc32c of each block the CAS delivered.
    crcs: HashMap<u64, u32>,
    /// Two runs listed different chunks at one offset: hash the bytes instead.
    spoiled: bool,
}

impl Chain {
    /// The verdict once every block came from the CAS: None if the recorded chunks do not form
    /// one chain over `[0, size)` (then the bytes are hashed instead).
    fn verdict(&self, size: u64) -> Option<bool> {
        let mut list = Vec::with_capacity(self.chunks.len());
        let mut at = 0u64;
        while at < size {
            let &(hash, len) = self.chunks.get(&at)?;
            if len == 0 {
                return None;
            }
            list.push((hash, len));
            at += len;
        }
        if at != size || list.len() != self.chunks.len() {
            return None;
        }
        Some(file_hash(&list) == self.expected)
    }
}

struct StreamVerifier {
    /// None while the hashing worker holds it.
    hasher: Option<InOrderHash>,
    /// Next block to hash.
    next: u64,
    blocks: u64,
    /// Blocks that arrived ahead of `next`, with their crc32c.
    parked: BTreeMap<u64, (Bytes, u32)>,
    /// Some(ok) once every block was hashed.
    verdict: Option<bool>,
    /// Some while in chain mode (see the module doc).
    chain: Option<Chain>,
    /// Chain mode ended while the worker held the hasher: it starts over with a fresh one.
    restart: bool,
}

impl StreamVerifier {
    fn worker_idle(&self) -> bool {
        self.hasher.is_some() && self.verdict.is_none()
    }

    /// Leaves chain mode: the bytes are hashed from block 0 (read back from the cache).
    fn unchain(&mut self, blob: &Blob) {
        self.chain = None;
        self.next = 0;
        match self.hasher.as_mut() {
            Some(h) => *h = InOrderHash::new(blob),
            None => self.restart = true,
        }
    }

    /// Chain mode's step: the next block can move the hash forward (or end chain mode).
    fn chain_can_step(&self) -> bool {
        self.chain
            .as_ref()
            .is_some_and(|c| c.spoiled || c.crcs.contains_key(&self.next))
    }
}

struct Shared {
    state: Mutex<StreamVerifier>,
    /// Woken at every step of the hash and at the verdict.
    progress: Notify,
}

#[derive(Default)]
pub(super) struct Verifiers {
    map: Mutex<HashMap<BlobKey, Arc<Shared>>>,
    /// Blobs that failed since the last open: the kernel may hold their bad pages.
    tainted: Mutex<std::collections::HashSet<BlobKey>>,
}

impl Verifiers {
    /// Bytes of blocks parked ahead of their blob's hash (`hubfs status`), whole mount.
    pub(super) fn parked_bytes(&self) -> u64 {
        let shared: Vec<Arc<Shared>> = self.map.lock().values().cloned().collect();
        shared
            .iter()
            .map(|s| {
                let v = s.state.lock();
                v.parked.values().map(|(b, _)| b.len() as u64).sum::<u64>()
            })
            .sum()
    }
}

impl ReadPath {
    fn blocks_of(&self, blob: &Blob) -> u64 {
        blob.size.div_ceil(self.block_size())
    }

    /// The blob's verifier; a new one if `create` (a delivery of block 0) and there is none or
    /// the last one failed.
    fn verifier(&self, blob: &Blob, create: bool) -> Option<Arc<Shared>> {
        if !create {
            return self.verifiers.map.lock().get(&blob.key).cloned();
        }
        let mut map = self.verifiers.map.lock();
        if map.len() >= MAX_VERIFIERS && !map.contains_key(&blob.key) {
            evict_one(&mut map);
        }
        let fresh = || {
            // Chain mode for Xet files while the CAS is in use; it ends by itself otherwise.
            let chain = match (&self.xet, &blob.xet_hash) {
                (Some(_), Some(hex)) => MerkleHash::from_hex(hex).ok().map(|expected| Chain {
                    expected,
                    chunks: BTreeMap::new(),
                    pending: HashSet::new(),
                    crcs: HashMap::new(),
                    spoiled: false,
                }),
                _ => None,
            };
            Arc::new(Shared {
                state: Mutex::new(StreamVerifier {
                    hasher: Some(InOrderHash::new(blob)),
                    next: 0,
                    blocks: self.blocks_of(blob),
                    parked: BTreeMap::new(),
                    verdict: None,
                    chain,
                    restart: false,
                }),
                progress: Notify::new(),
            })
        };
        let v = map.entry(blob.key).or_insert_with(fresh);
        // A blob that failed is being fetched again: judge the new bytes afresh.
        if v.state.lock().verdict == Some(false) {
            *v = fresh();
        }
        Some(v.clone())
    }

    /// Called by the CAS path before it delivers blocks `[start, end)` (bytes) of `run`: records
    /// the chunks they were cut from and expects those blocks from the CAS (chain mode). Any
    /// run starts the verifier (parallel read-ahead may deliver later runs before the first):
    /// a run not recorded would send the whole file back to hashing bytes.
    pub(super) fn note_cas_run(&self, blob: &Blob, start: u64, end: u64, run: &CasRun) {
        let bs = self.block_size();
        let first = start / bs;
        let Some(shared) = self.verifier(blob, true) else {
            return;
        };
        let mut v = shared.state.lock();
        if v.verdict.is_some() {
            return;
        }
        let Some(chain) = v.chain.as_mut() else {
            return;
        };
        let mut at = run.first_chunk_at;
        for &(hash, len) in &run.chunks {
            let known = chain.chunks.entry(at).or_insert((hash, len));
            if *known != (hash, len) {
                chain.spoiled = true;
            }
            at += len;
        }
        chain.pending.extend(first..end.div_ceil(bs));
    }

    /// Called by a fetch with each block it delivers, before readers see it. Never hashes here.
    pub(super) fn verify_block(
        self: &Arc<Self>,
        blob: &Arc<Blob>,
        idx: u64,
        data: &Bytes,
        crc: u32,
    ) {
        let Some(shared) = self.verifier(blob, idx == 0) else {
            return;
        };
        let start_worker = {
            let mut v = shared.state.lock();
            if v.verdict.is_some() {
                return;
            }
            if let Some(chain) = v.chain.as_mut() {
                if chain.pending.remove(&idx) {
                    // From the CAS: its chunks were recorded; only its crc is needed.
                    chain.crcs.insert(idx, crc);
                    v.worker_idle() && v.chain_can_step()
                } else {
                    // Bytes from elsewhere: hash the bytes of every block.
                    v.unchain(blob);
                    if let Some(xet) = &self.xet {
                        xet.stats.chain_abandoned.fetch_add(1, Ordering::Relaxed);
                    }
                    park(&mut v, idx, data, crc)
                }
            } else {
                park(&mut v, idx, data, crc)
            }
        };
        if start_worker {
            self.start_hashing(blob, shared);
        }
    }

    /// Runs the hash of `shared` forward on a blocking thread, unless a worker already does.
    fn start_hashing(self: &Arc<Self>, blob: &Arc<Blob>, shared: Arc<Shared>) {
        let Some(hasher) = shared.state.lock().hasher.take() else {
            return;
        };
        let me = self.clone();
        let blob = blob.clone();
        tokio::task::spawn_blocking(move || me.hash_forward(&blob, &shared, hasher));
    }

    /// The hashing worker: hashes parked blocks, or cached ones, in order, until the next block
    /// is neither (then gives the hasher back: the fetch that brings it starts a new worker) or
    /// the end is reached.
    fn hash_forward(&self, blob: &Blob, shared: &Shared, mut hasher: InOrderHash) {
        loop {
            let (first, mut batch) = {
                let mut v = shared.state.lock();
                if v.restart {
                    v.restart = false;
                    hasher = InOrderHash::new(blob);
                }
                if v.chain.is_some() {
                    match self.chain_step(blob, &mut v, &mut hasher) {
                        ChainStep::Moved => {
                            drop(v);
                            shared.progress.notify_waiters();
                            continue;
                        }
                        ChainStep::Wait => {
                            v.hasher = Some(hasher);
                            return;
                        }
                        ChainStep::Unchained => continue,
                        ChainStep::Done(ok) => {
                            v.chain = None;
                            v.verdict = Some(ok);
                            drop(v);
                            if let Some(xet) = &self.xet {
                                xet.stats.chain_verified.fetch_add(1, Ordering::Relaxed);
                            }
                            self.conclude(blob, shared, hasher.fingerprint, ok);
                            return;
                        }
                    }
                }
                let first = v.next;
                let mut batch = Vec::new();
                while batch.len() < HASH_BATCH {
                    match v.parked.remove(&(first + batch.len() as u64)) {
                        Some(b) => batch.push(b),
                        None => break,
                    }
                }
                if batch.is_empty() && !self.cache.contains_block(&blob.key, blob.size, first) {
                    v.hasher = Some(hasher);
                    drop(v);
                    // Idle now: a reader pacing itself on this hash need not wait for it.
                    shared.progress.notify_waiters();
                    return;
                }
                (first, batch)
            };
            if batch.is_empty() {
                if let Some(kept) = self.fresh.peek(&blob.key, first) {
                    // Not parked, but still in memory for its reader: no cache read.
                    batch.push(kept);
                }
            }
            if batch.is_empty() {
                // Dropped from the park (or fetched before this hash began): from the cache.
                match self.cache.read_block(&blob.key, blob.size, first) {
                    Ok(Some(b)) => {
                        self.stats.hash_read_back.fetch_add(1, Ordering::Relaxed);
                        let crc = crc32c::crc32c(&b);
                        batch.push((b, crc));
                    }
                    // Gone or damaged: its refetch parks it. Decide under the lock, so a block
                    // parked meanwhile is not left without a worker.
                    _ => {
                        let mut v = shared.state.lock();
                        if v.parked.contains_key(&first) {
                            continue;
                        }
                        v.hasher = Some(hasher);
                        drop(v);
                        shared.progress.notify_waiters();
                        return;
                    }
                }
            }
            for (b, crc) in &batch {
                hasher.content.update(b);
                hasher.fingerprint.push_crc(*crc);
            }
            let mut v = shared.state.lock();
            v.next = first + batch.len() as u64;
            // A block parked while the worker hashed it from elsewhere (its reader took it out
            // of memory meanwhile) is behind the hash now: it would stay parked for nothing.
            let next = v.next;
            while let Some(behind) = v.parked.first_entry() {
                if *behind.key() >= next {
                    break;
                }
                behind.remove();
            }
            if v.next >= v.blocks {
                let InOrderHash {
                    content,
                    fingerprint,
                } = hasher;
                let ok = content.matches(&blob.key);
                v.verdict = Some(ok);
                v.parked.clear();
                drop(v);
                self.conclude(blob, shared, fingerprint, ok);
                return;
            }
            drop(v);
            shared.progress.notify_waiters();
        }
    }

    /// One step of the worker in chain mode, under the state lock: takes the crcs of the
    /// blocks the CAS delivered in order; at the end, checks the chain of chunks.
    fn chain_step(
        &self,
        blob: &Blob,
        v: &mut StreamVerifier,
        hasher: &mut InOrderHash,
    ) -> ChainStep {
        let Some(chain) = v.chain.as_ref() else {
            return ChainStep::Unchained;
        };
        if chain.spoiled {
            return self.unchain_held(blob, v, hasher, "the CAS listed two chunks at one offset");
        }
        let first = v.next;
        let mut next = first;
        while next < v.blocks {
            let Some(&crc) = chain.crcs.get(&next) else {
                break;
            };
            hasher.fingerprint.push_crc(crc);
            next += 1;
        }
        v.next = next;
        if next >= v.blocks {
            return match chain.verdict(blob.size) {
                Some(ok) => ChainStep::Done(ok),
                None => self.unchain_held(blob, v, hasher, "the chunk lists do not chain"),
            };
        }
        if next > first {
            return ChainStep::Moved;
        }
        if chain.pending.contains(&first) || !self.cache.contains_block(&blob.key, blob.size, first)
        {
            return ChainStep::Wait;
        }
        self.unchain_held(blob, v, hasher, "a block did not come from the CAS")
    }

    /// Leaves chain mode from the worker (which holds the hasher): bytes from block 0.
    fn unchain_held(
        &self,
        blob: &Blob,
        v: &mut StreamVerifier,
        hasher: &mut InOrderHash,
        why: &str,
    ) -> ChainStep {
        tracing::debug!("{}: {why}: hashing its bytes instead", blob.path);
        if let Some(xet) = &self.xet {
            xet.stats.chain_abandoned.fetch_add(1, Ordering::Relaxed);
        }
        v.chain = None;
        v.next = 0;
        *hasher = InOrderHash::new(blob);
        ChainStep::Unchained
    }

    /// Records a verdict reached by the worker and wakes who waits for it.
    fn conclude(&self, blob: &Blob, shared: &Shared, fingerprint: BlockFingerprint, ok: bool) {
        if ok {
            // Every block was written to the cache before it was hashed here; if one was
            // evicted or replaced since, nothing is recorded and the background check of the
            // completed blob (`maybe_verify`) does it.
            self.cache.mark_verified(&blob.key, blob.size, fingerprint);
        }
        self.record_verdict(blob, ok);
        shared.progress.notify_waiters();
    }

    fn record_verdict(&self, blob: &Blob, ok: bool) {
        if ok {
            self.stats.verified_blobs.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.stats.verify_failures.fetch_add(1, Ordering::Relaxed);
        self.distrust_shared(blob);
        self.verifiers.tainted.lock().insert(blob.key);
        self.fresh.forget_blob(&blob.key);
        tracing::error!(
            "{}@{}: {} does not match its content hash ({}); its cached bytes were dropped",
            blob.repo,
            blob.commit,
            blob.path,
            blob.key
        );
        if let Err(e) = self.cache.remove_blob(&blob.key) {
            tracing::warn!("dropping the cached bytes of {}: {e}", blob.path);
        }
    }

    /// For the read that returns a file's last block: waits for the in-order hash to reach the
    /// end (fetching the block it waits for if nobody does) and fails with EIO if the content
    /// does not match. Passes without waiting when the hash could only finish by fetching more
    /// than a few blocks nobody asked for: not a sequential read (the cache's own check covers
    /// those files once complete).
    pub(super) async fn check_last_block(self: &Arc<Self>, blob: &Arc<Blob>) -> Result<(), Errno> {
        let Some(shared) = self.verifiers.map.lock().get(&blob.key).cloned() else {
            return Ok(());
        };
        let (next, blocks) = {
            let v = shared.state.lock();
            (v.next, v.blocks)
        };
        let unrequested = self
            .cache
            .missing_blocks(&blob.key, blob.size, next..blocks)
            .into_iter()
            .filter(|&idx| !self.inflight.is_fetching(&blob.key, idx))
            .take(MAX_CATCH_UP_BLOCKS as usize + 1)
            .count();
        if unrequested > MAX_CATCH_UP_BLOCKS as usize {
            return Ok(());
        }
        let verdict = loop {
            let progressed = shared.progress.notified();
            let (next, idle) = {
                let v = shared.state.lock();
                if v.verdict.is_some() {
                    break v.verdict;
                }
                (v.next, v.worker_idle())
            };
            if idle {
                if self.cache.contains_block(&blob.key, blob.size, next) {
                    self.start_hashing(blob, shared.clone());
                } else {
                    // Its fetch hands it to the hash: wait for it (or start it).
                    for pending in self.acquire(blob, next..=next, 0)?.0 {
                        if let super::Pending::Wait(rx) = pending {
                            super::inflight::wait(rx).await?;
                        }
                    }
                }
            }
            let _ = tokio::time::timeout(VERDICT_POLL, progressed).await;
        };
        match verdict {
            Some(true) => Ok(()),
            // Every read of the end fails (the kernel retries failed read-ahead with a plain
            // read) until the file is opened again: see `take_tainted`.
            Some(false) => Err(Errno::EIO),
            None => Ok(()),
        }
    }

    /// Once every block of a blob is cached: makes sure an idle in-order hash finishes from
    /// the cache (its remaining blocks may all have been read back rather than parked).
    pub(super) fn finish_stream_hash(self: &Arc<Self>, blob: &Arc<Blob>) {
        let Some(shared) = self.verifiers.map.lock().get(&blob.key).cloned() else {
            return;
        };
        if shared.state.lock().worker_idle() {
            self.start_hashing(blob, shared);
        }
    }

    /// True (once) if this content failed its hash since it was last asked: the next open must
    /// not let the kernel keep pages it cached from the bad bytes.
    pub fn take_tainted(&self, key: &BlobKey) -> bool {
        let tainted = self.verifiers.tainted.lock().remove(key);
        if tainted {
            // Reads retried after the failure may have cached bad blocks again: drop them all, so
            // the new open fetches everything and is judged afresh.
            self.verifiers.map.lock().remove(key);
            self.fresh.forget_blob(key);
            if let Err(e) = self.cache.remove_blob(key) {
                tracing::warn!("dropping the cached bytes of {key}: {e}");
            }
        }
        tainted
    }

    /// Bytes of the blob the in-order hash has consumed: the cache file's pages below this are
    /// not needed by the hash any more. The whole blob if no hash is under way.
    pub(super) fn hashed_to(&self, blob: &Blob) -> u64 {
        match self.verifiers.map.lock().get(&blob.key) {
            Some(v) => {
                let v = v.state.lock();
                // Chain mode reads no bytes back: the pages are not needed.
                if v.verdict.is_some() || v.chain.is_some() {
                    blob.size
                } else {
                    (v.next * self.block_size()).min(blob.size)
                }
            }
            None => blob.size,
        }
    }

    /// A block its reader took out of read-ahead memory: parked if the in-order hash has not
    /// passed it and it is within the parking range (it may have been too far ahead when it
    /// arrived), so the hash does not read it back from the cache.
    pub(super) fn park_for_hash(
        self: &Arc<Self>,
        blob: &Arc<Blob>,
        idx: u64,
        data: &Bytes,
        crc: u32,
    ) {
        let Some(shared) = self.verifier(blob, false) else {
            return;
        };
        let start_worker = {
            let mut v = shared.state.lock();
            v.verdict.is_none()
                && v.chain.is_none()
                && !v.parked.contains_key(&idx)
                && park(&mut v, idx, data, crc)
        };
        // The worker went idle without this block (not parked when it came, and not in the
        // cache: its write failed): it can move on now.
        if start_worker {
            self.start_hashing(blob, shared);
        }
    }

    /// Holds a read of blocks up to `last` (held in read-ahead memory), by a sequential run
    /// that began at block `run_first`, while it is more than `HASH_LEAD_BLOCKS` ahead of the
    /// blob's in-order hash and the hash is at work (bounded by `MAX_PACE_WAIT`). Only the run
    /// the hash follows is held: one that began past the hash's position (another thread's part
    /// of the file, a reader that skipped ahead) is not, nor is anyone by a hash that waits for
    /// a block nobody fetched yet, one in chain mode (it reads no bytes back) or one already
    /// concluded.
    pub(super) async fn keep_pace_with_hash(&self, blob: &Blob, run_first: u64, last: u64) {
        let Some(shared) = self.verifier(blob, false) else {
            return;
        };
        if !self.fresh.holds(&blob.key, last) {
            // Not from read-ahead memory (the cache file has it, or it is yet to come): the
            // hash loses nothing by this read, nothing to wait for.
            return;
        }
        let deadline = tokio::time::Instant::now() + MAX_PACE_WAIT;
        let mut waited = false;
        loop {
            let progressed = shared.progress.notified();
            {
                let v = shared.state.lock();
                let hashing = v.hasher.is_none() && v.verdict.is_none() && v.chain.is_none();
                if !hashing || run_first > v.next || last < v.next + HASH_LEAD_BLOCKS {
                    break;
                }
            }
            waited = true;
            if tokio::time::timeout_at(deadline, progressed).await.is_err() {
                break;
            }
        }
        if waited {
            self.stats.hash_paced.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// True while an in-order hash of this blob is under way: it records its own verdict, no
    /// need to hash the blob again. (A finished one says nothing: the cache's mark may have
    /// been cleared since, e.g. when a damaged block was dropped and refetched.)
    pub(super) fn stream_verified(&self, key: &BlobKey) -> bool {
        self.verifiers
            .map
            .lock()
            .get(key)
            .is_some_and(|v| v.state.lock().verdict.is_none())
    }
}

/// What one chain-mode step of the worker came to.
enum ChainStep {
    /// The hash moved forward: look again.
    Moved,
    /// The next block is not here yet: give the hasher back.
    Wait,
    /// Back to hashing bytes from block 0.
    Unchained,
    /// Every block came from the CAS and the chain of chunks was checked.
    Done(bool),
}

/// Parks a block delivered ahead of the hash; true if an idle worker can now move forward.
fn park(v: &mut StreamVerifier, idx: u64, data: &Bytes, crc: u32) -> bool {
    if idx < v.next {
        return false;
    }
    if idx < v.next + MAX_PARKED_BLOCKS {
        v.parked.insert(idx, (data.clone(), crc));
    }
    v.worker_idle() && v.parked.contains_key(&v.next)
}

/// Drops a finished verifier if there is one, else the one that progressed least.
fn evict_one(map: &mut HashMap<BlobKey, Arc<Shared>>) {
    let victim = map
        .iter()
        .filter_map(|(k, v)| {
            v.state
                .try_lock()
                .map(|v| (*k, (v.verdict.is_none(), v.next)))
        })
        .min_by_key(|(_, rank)| *rank)
        .map(|(k, _)| k);
    if let Some(k) = victim {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> MerkleHash {
        MerkleHash::from([n; 32])
    }

    /// A chain of chunks of `lens` at their offsets, expecting the file hash of `chunks`.
    fn chain(expected: &[(MerkleHash, u64)], recorded: &[(u64, MerkleHash, u64)]) -> Chain {
        Chain {
            expected: file_hash(expected),
            chunks: recorded.iter().map(|&(at, h, l)| (at, (h, l))).collect(),
            pending: HashSet::new(),
            crcs: HashMap::new(),
            spoiled: false,
        }
    }

    #[test]
    fn a_complete_chain_checks_the_file_hash() {
        let file = [(h(1), 100), (h(2), 50), (h(3), 7)];
        let c = chain(&file, &[(0, h(1), 100), (100, h(2), 50), (150, h(3), 7)]);
        assert_eq!(c.verdict(157), Some(true));
        // The right chunk lengths but another chunk in the middle: a different file.
        let c = chain(&file, &[(0, h(1), 100), (100, h(9), 50), (150, h(3), 7)]);
        assert_eq!(c.verdict(157), Some(false));
    }

    #[test]
    fn chunks_that_do_not_chain_are_no_verdict() {
        let file = [(h(1), 100), (h(2), 50)];
        // A gap: nothing recorded at 100.
        assert_eq!(
            chain(&file, &[(0, h(1), 100), (101, h(2), 49)]).verdict(150),
            None
        );
        // A chunk off the chain (bytes served from it are not covered by the file hash).
        let c = chain(&file, &[(0, h(1), 100), (100, h(2), 50), (60, h(4), 90)]);
        assert_eq!(c.verdict(150), None);
        // Past the end, or short of it.
        assert_eq!(
            chain(&file, &[(0, h(1), 100), (100, h(2), 50)]).verdict(140),
            None
        );
        assert_eq!(chain(&file, &[(0, h(1), 100)]).verdict(150), None);
    }
}
