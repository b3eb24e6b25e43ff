//! End-to-end verification of fetched files while they stream in.
//!
//! Every file's cache key is a hash of its content (sha256 for LFS files, the git blob sha1 for
//! the others), so what the Hub sent can be checked. A `StreamVerifier` hashes a blob's blocks in
//! order as fetches deliver them (catching up from the cache when blocks arrived out of order,
//! as parallel read-ahead makes them), so the check costs no extra pass over the data. The read
//! that asks for a file's *last* block waits for the verdict: a sequential reader (`cat`, `cp`,
//! `sha256sum`, a loader reading a whole file) gets EIO instead of the end of a file whose bytes
//! do not match their hash, and the blob's cached bytes are dropped. Readers that skip around
//! never complete the in-order hash; for them the cache re-hashes the blob once it is complete.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Blob, ReadPath};
use crate::cache::{BlobKey, BlockFingerprint, ContentHasher};
use crate::fs::Errno;

/// In-order verifiers kept at once; the ones that progressed least are dropped first (they are
/// an optimisation: the cache's own check still runs when such a blob completes).
const MAX_VERIFIERS: usize = 256;
/// The reader of a last block waits for the verdict only if at most this many blocks remain to
/// be hashed (fetching those nobody asked for yet); more means it was not a sequential read, and
/// it passes without waiting (the cache checks the blob once it is complete).
const MAX_CATCH_UP_BLOCKS: u64 = 32;

struct StreamVerifier {
    hasher: Option<ContentHasher>,
    /// The blocks hashed so far, so a success can be recorded in the cache (which makes the
    /// file eligible for passthrough) only if the cached blocks are the ones hashed.
    fingerprint: BlockFingerprint,
    /// Next block to hash.
    next: u64,
    blocks: u64,
    /// Some(ok) once every block was hashed.
    verdict: Option<bool>,
}

#[derive(Default)]
pub(super) struct Verifiers {
    map: Mutex<HashMap<BlobKey, Arc<Mutex<StreamVerifier>>>>,
    /// Blobs that failed since the last open: the kernel may hold their bad pages.
    tainted: Mutex<std::collections::HashSet<BlobKey>>,
}

impl ReadPath {
    fn blocks_of(&self, blob: &Blob) -> u64 {
        blob.size.div_ceil(self.block_size())
    }

    /// Called by a fetch with each block it delivers, before readers see it.
    pub(super) fn verify_block(&self, blob: &Blob, idx: u64, data: &[u8]) {
        let v = if idx == 0 {
            let mut map = self.verifiers.map.lock();
            if map.len() >= MAX_VERIFIERS && !map.contains_key(&blob.key) {
                evict_least_progressed(&mut map);
            }
            let fresh = || {
                Arc::new(Mutex::new(StreamVerifier {
                    hasher: Some(ContentHasher::new(&blob.key, blob.size)),
                    fingerprint: BlockFingerprint::new(),
                    next: 0,
                    blocks: self.blocks_of(blob),
                    verdict: None,
                }))
            };
            let v = map.entry(blob.key).or_insert_with(fresh);
            // A blob that failed is being fetched again: judge the new bytes afresh.
            if v.lock().verdict == Some(false) {
                *v = fresh();
            }
            v.clone()
        } else {
            match self.verifiers.map.lock().get(&blob.key) {
                Some(v) => v.clone(),
                None => return,
            }
        };
        let mut v = v.lock();
        if v.verdict.is_some() || v.next != idx {
            return;
        }
        if let Some(h) = v.hasher.as_mut() {
            h.update(data);
        }
        v.fingerprint.push(data);
        v.next += 1;
        self.catch_up(blob, &mut v, u64::MAX);
    }

    /// Hashes blocks that are already cached, in order, up to `limit` of them.
    fn catch_up(&self, blob: &Blob, v: &mut StreamVerifier, limit: u64) {
        let mut budget = limit;
        while v.verdict.is_none() && v.next < v.blocks && budget > 0 {
            match self.cache.read_block(&blob.key, blob.size, v.next) {
                Ok(Some(b)) => {
                    if let Some(h) = v.hasher.as_mut() {
                        h.update(&b);
                    }
                    v.fingerprint.push(&b);
                    v.next += 1;
                    budget -= 1;
                }
                // Not here (yet): the fetch that brings it continues the hash.
                _ => break,
            }
        }
        if v.next == v.blocks && v.verdict.is_none() {
            let ok = v.hasher.take().is_some_and(|h| h.matches(&blob.key));
            v.verdict = Some(ok);
            if ok {
                // Every block was written to the cache before it was hashed here; if one was
                // evicted or replaced since, nothing is recorded and the background check of
                // the completed blob (`maybe_verify`) does it.
                let fingerprint = std::mem::take(&mut v.fingerprint);
                self.cache.mark_verified(&blob.key, blob.size, fingerprint);
            }
            self.record_verdict(blob, ok);
        }
    }

    fn record_verdict(&self, blob: &Blob, ok: bool) {
        if ok {
            self.stats.verified_blobs.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.stats.verify_failures.fetch_add(1, Ordering::Relaxed);
        self.verifiers.tainted.lock().insert(blob.key);
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
    /// end (hashing cached blocks, waiting for or fetching the others) and fails with EIO if the
    /// content does not match. Passes when no in-order hash is under way or it is far behind:
    /// not a sequential read (the cache's own check covers those files once complete).
    pub(super) async fn check_last_block(self: &Arc<Self>, blob: &Arc<Blob>) -> Result<(), Errno> {
        let Some(v) = self.verifiers.map.lock().get(&blob.key).cloned() else {
            return Ok(());
        };
        let verdict = loop {
            let next = {
                let mut v = v.lock();
                if v.verdict.is_none() && v.blocks - v.next <= MAX_CATCH_UP_BLOCKS {
                    self.catch_up(blob, &mut v, MAX_CATCH_UP_BLOCKS);
                }
                if v.verdict.is_some() || v.blocks - v.next > MAX_CATCH_UP_BLOCKS {
                    break v.verdict;
                }
                v.next
            };
            // A fetch feeds the hash before it publishes the block: wait for it (or start it).
            for pending in self.acquire(blob, next..=next)? {
                if let super::Pending::Wait(rx) = pending {
                    super::inflight::wait(rx).await?;
                }
            }
        };
        match verdict {
            Some(true) => {
                self.verifiers.map.lock().remove(&blob.key);
                Ok(())
            }
            // Every read of the end fails (the kernel retries failed read-ahead with a plain
            // read) until the file is opened again: see `take_tainted`.
            Some(false) => Err(Errno::EIO),
            None => Ok(()),
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
            if let Err(e) = self.cache.remove_blob(key) {
                tracing::warn!("dropping the cached bytes of {key}: {e}");
            }
        }
        tainted
    }

    /// True if the in-order hash already checked this blob (no need to hash it again).
    pub(super) fn stream_verified(&self, key: &BlobKey) -> bool {
        self.verifiers
            .map
            .lock()
            .get(key)
            .is_some_and(|v| v.try_lock().is_some_and(|v| v.verdict.is_some()))
    }
}

fn evict_least_progressed(map: &mut HashMap<BlobKey, Arc<Mutex<StreamVerifier>>>) {
    let victim = map
        .iter()
        .filter_map(|(k, v)| v.try_lock().map(|v| (*k, v.next)))
        .min_by_key(|(_, next)| *next)
        .map(|(k, _)| k);
    if let Some(k) = victim {
        map.remove(&k);
    }
}
