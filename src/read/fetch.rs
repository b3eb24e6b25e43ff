//! Fetching one contiguous run of blocks with a ranged GET.
//!
//! Bytes arrive in arbitrary chunk sizes; they are cut into cache blocks, each written to the
//! cache and published to its waiters as soon as it is whole, so the first reader does not wait
//! for the whole run. A body cut mid-way is resumed from the exact byte where it stopped; after
//! the attempts run out, every block not yet delivered fails with EIO.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{timeout_at, Instant};

use super::inflight::Slot;
use super::run_buf::RunWriter;
use super::shared::Via;
use super::{Blob, ReadPath};
use crate::fs::Errno;
use crate::hub::HubError;

/// Blocks fetched ahead of their readers that go to the cache in one write: 1 MiB (the kernel's
/// read size here), one device request instead of eight; a reader arriving meanwhile waits at
/// most for the next block's arrival.
const WRITE_GROUP: usize = 8;

/// A fetched block not yet stored nor published.
struct Held {
    idx: u64,
    slot: Arc<Slot>,
    block: bytes::Bytes,
    crc: u32,
}

impl ReadPath {
    pub(super) async fn fetch_run(self: &Arc<Self>, blob: &Arc<Blob>, run: Vec<(u64, Arc<Slot>)>) {
        if run.is_empty() {
            return;
        }
        if let Some(inv) = &self.inventory {
            // Once per blob and name in this mount's life; a small local write otherwise.
            let repo = blob.repo.to_string();
            inv.note(&blob.key, blob.size, &repo, &blob.commit, &blob.path);
        }
        match self.plan_split(blob, run.len()) {
            None => {
                self.fetch_part(blob, &run, Via::Tiered).await;
            }
            Some(split) => {
                // Both parts at once: the tier's head, the Hub's tail (read/shared.rs).
                let (head, tail) = run.split_at(split.tier_blocks);
                let (_, hub_bytes) = tokio::join!(
                    self.fetch_part(blob, head, Via::TierShare),
                    self.fetch_part(blob, tail, Via::HubShare)
                );
                self.split_done(split, hub_bytes);
            }
        }
    }

    /// Fetches one contiguous part of a run; returns the bytes delivered.
    async fn fetch_part(
        self: &Arc<Self>,
        blob: &Arc<Blob>,
        run: &[(u64, Arc<Slot>)],
        via: Via,
    ) -> u64 {
        let Some(&(first, _)) = run.first() else {
            return 0;
        };
        let bs = self.block_size();
        let start = first * bs;
        let end = ((first + run.len() as u64) * bs).min(blob.size);
        let mut next = 0usize; // index in `run` of the block being assembled
                               // Blocks fetched ahead of any reader wait here until a group is whole, then go to the
                               // cache in one write (cache/direct.rs); a block someone waits for goes at once.
        let mut held: Vec<Held> = Vec::with_capacity(WRITE_GROUP);
        let mut delivered = 0u64;
        let stream = self.stream_range(blob, start, end, via, |block| {
            let Some((idx, slot)) = run.get(next) else {
                return;
            };
            delivered += block.len() as u64;
            // One crc pass serves the cache record and the verification fingerprint.
            let crc = crc32c::crc32c(&block);
            held.push(Held {
                idx: *idx,
                slot: slot.clone(),
                block,
                crc,
            });
            next += 1;
            if held.len() >= WRITE_GROUP
                || next == run.len()
                || held.iter().any(|h| h.slot.has_waiters())
            {
                self.store_and_publish(blob, &mut held);
            }
        });
        // An unmount in progress ends the fetch (and the reads waiting on it) with EIO.
        let result = self.abort.run(stream, || Errno::EIO).await;
        // Whole blocks that arrived before a failure are good.
        self.store_and_publish(blob, &mut held);
        if let Err(errno) = result {
            self.stats.fetch_failures.fetch_add(1, Ordering::Relaxed);
            for (idx, slot) in &run[next..] {
                self.fresh.settle(&blob.key, *idx);
                self.inflight.finish(&blob.key, *idx, slot, Err(errno));
            }
        }
        delivered
    }

    /// Writes the held (consecutive) blocks to the cache, then hands each to the hash and its
    /// readers: a block is in the cache before it is published. A block fetched ahead goes to
    /// memory for its reader first (`fresh`): once the cache holds it, a reader arriving before
    /// it is in memory would read it back from the cache file instead.
    fn store_and_publish(self: &Arc<Self>, blob: &Arc<Blob>, held: &mut Vec<Held>) {
        let Some(first) = held.first().map(|h| h.idx) else {
            return;
        };
        for h in held.iter() {
            if h.slot.has_waiters() {
                // Its reader is here and gets it from the fetch: the budget goes back.
                self.fresh.settle(&blob.key, h.idx);
            } else {
                // Fetched ahead: its reader takes this buffer instead of reading the cache.
                self.fresh.put(&blob.key, h.idx, &h.block, h.crc);
            }
        }
        let blocks: Vec<(&[u8], u32)> = held.iter().map(|h| (&h.block[..], h.crc)).collect();
        if let Err(e) = self
            .cache
            .write_run_with_crc(&blob.key, blob.size, first, &blocks)
        {
            // Serving from memory still works; only the persistence is lost.
            tracing::warn!("cache write of {} blocks {first}..: {e}", blob.path);
        }
        drop(blocks);
        for h in held.drain(..) {
            self.verify_block(blob, h.idx, &h.block, h.crc);
            self.inflight.finish(&blob.key, h.idx, &h.slot, Ok(h.block));
        }
    }

    /// Streams `[start, end)` of the blob, calling `on_block` with each whole cache block in
    /// order. Resumes cut bodies; returns the errno to report if the range cannot be finished.
    /// `via`: the tier first, or (the Hub's share of a split run) the Hub only.
    async fn stream_range(
        &self,
        blob: &Blob,
        start: u64,
        end: u64,
        via: Via,
        mut on_block: impl FnMut(bytes::Bytes),
    ) -> Result<(), Errno> {
        if self
            .serve_from_hf_cache(blob, start, end, &mut on_block)
            .await
        {
            return Ok(());
        }
        let Some(client) = self.client.as_ref() else {
            tracing::info!(
                "offline: {}@{}: {} bytes {start}..{end} are not cached",
                blob.repo,
                blob.commit,
                blob.path
            );
            return Err(Errno::EIO);
        };
        if self.stalls.recent(&blob.key) {
            tracing::debug!(
                "{}@{}: {} stalled a moment ago: failing bytes {start}..{end} at once",
                blob.repo,
                blob.commit,
                blob.path
            );
            return Err(Errno::EIO);
        }
        // The block sources before the bridge, in order: the cluster's shared cache, then (Xet
        // files) verified chunks from the CAS, then the bridge. Whatever the CAS or the bridge
        // delivers also fills the shared cache. The tier and the Hub may take turns: segments
        // this node claimed come from the Hub, then the tier serves what other nodes claimed.
        let mut pos = start;
        while pos < end {
            let (from, to) = match via {
                Via::Tiered | Via::TierShare => {
                    self.serve_from_shared(blob, pos, end, via, &mut on_block)
                        .await
                }
                Via::HubShare => (pos, end),
            };
            if from >= end {
                break;
            }
            // Never an empty Hub part (it would come back here forever).
            let to = if to > from { to.min(end) } else { end };
            let mut got = from;
            let counted = |b: bytes::Bytes| {
                got += b.len() as u64;
                on_block(b)
            };
            let on_block = self.filling_shared(blob, from, via, counted);
            if let Err(errno) = self.fetch_from_hub(client, blob, from, to, on_block).await {
                // Other nodes fetch what this node claimed and will not write, rather than
                // wait for it.
                self.release_claims_from(blob, got, to);
                return Err(errno);
            }
            pos = to;
        }
        Ok(())
    }

    /// Fetches `[start, end)` (block-aligned `start`) from the Xet CAS or the bridge.
    async fn fetch_from_hub(
        &self,
        client: &crate::hub::HubClient,
        blob: &Blob,
        start: u64,
        end: u64,
        mut on_block: impl FnMut(bytes::Bytes),
    ) -> Result<(), Errno> {
        // The Hub's rate per run part, waiting for a request slot included (the tier's part
        // waits for its lookups' slots too): what splitting compares (shared/split.rs).
        let hub_started = std::time::Instant::now();
        if self.serve_from_xet(blob, start, end, &mut on_block).await {
            self.note_hub_rate(end - start, hub_started.elapsed());
            return Ok(());
        }
        let _permit = self.permits.acquire().await.map_err(|_| Errno::EIO)?;
        let bs = self.block_size() as usize;
        // Blocks are cut from run buffers (read/run_buf.rs): aligned, so the cache writes them
        // with O_DIRECT straight from there, and back to back, so a read over several is
        // answered without a copy (read/spans.rs).
        let new_buf = |at: u64| {
            let w = RunWriter::with_capacity(run_buf_len(at, end, bs as u64));
            self.spans.keep(w.weak());
            w
        };
        tracing::trace!("fetch {} [{start}, {end})", blob.path);
        let mut buf = new_buf(start);
        let mut pos = start;
        let mut attempts = 0u32;
        // Moves forward whenever bytes arrive: only a fetch making no progress times out.
        let mut deadline = Instant::now() + self.cfg.io_timeout;
        let gave_up = |pos: u64| {
            tracing::warn!(
                "{}@{}: no data for {} bytes {pos}..{end} of {} within {:?}: giving up",
                blob.repo,
                blob.commit,
                end - pos,
                blob.path,
                self.cfg.io_timeout
            );
            self.stalls.record(&blob.key);
            Errno::EIO
        };
        while pos < end {
            self.stats.fetches.fetch_add(1, Ordering::Relaxed);
            let request = client.get_range(&blob.repo, &blob.commit, &blob.path, pos, end);
            let failure = match timeout_at(deadline, request).await {
                Err(_) => return Err(gave_up(pos)),
                // The client already retried what was worth retrying.
                Ok(Err(e)) => return Err(self.failed(blob, pos, end, &e)),
                Ok(Ok(mut body)) => loop {
                    match timeout_at(deadline, body.chunk()).await {
                        Err(_) => return Err(gave_up(pos)),
                        Ok(Ok(Some(chunk))) => {
                            deadline = Instant::now() + self.cfg.io_timeout;
                            pos += chunk.len() as u64;
                            self.stats
                                .bytes_fetched
                                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                            let mut chunk = &chunk[..];
                            let mut overrun = false;
                            while !chunk.is_empty() {
                                let take = buf.remaining().min(bs - buf.pending()).min(chunk.len());
                                if take == 0 {
                                    // Bytes past `end`: the body is longer than the range.
                                    overrun = true;
                                    break;
                                }
                                buf.extend_from_slice(&chunk[..take]);
                                chunk = &chunk[take..];
                                if buf.pending() == bs {
                                    on_block(buf.cut());
                                }
                                if buf.remaining() == 0 && pos - (chunk.len() as u64) < end {
                                    buf = new_buf(pos - chunk.len() as u64);
                                }
                            }
                            if overrun {
                                break Some(HubError::Protocol {
                                    target: blob.path.clone(),
                                    message: format!("body runs past byte {end}"),
                                });
                            }
                        }
                        Ok(Ok(None)) if pos >= end => break None,
                        Ok(Ok(None)) => {
                            break Some(HubError::Protocol {
                                target: blob.path.clone(),
                                message: format!("body ended at {pos} before {end}"),
                            })
                        }
                        Ok(Err(e)) => break Some(e),
                    }
                },
            };
            let Some(failure) = failure else {
                break;
            };
            // A body cut mid-way: resume from the exact byte where it stopped.
            attempts += 1;
            if !failure.is_retryable() || attempts > self.cfg.resume_attempts {
                return Err(self.failed(blob, pos, end, &failure));
            }
            self.stats.fetch_resumes.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("resuming {} at {pos} after: {failure}", blob.path);
            tokio::time::sleep(Duration::from_millis(100 << attempts.min(5))).await;
        }
        self.note_hub_rate(end - start, hub_started.elapsed());
        if buf.pending() > 0 {
            // The file's last block is shorter than a cache block.
            on_block(buf.cut());
        }
        Ok(())
    }

    /// Delivers `[start, end)` from a verified copy in the huggingface_hub cache, if there is
    /// one; false (nothing delivered) sends the caller to the Hub.
    async fn serve_from_hf_cache(
        &self,
        blob: &Blob,
        start: u64,
        end: u64,
        on_block: &mut impl FnMut(bytes::Bytes),
    ) -> bool {
        let Some(hf) = self.hf_cache.as_ref() else {
            return false;
        };
        let Some(path) = hf.source(blob).await else {
            return false;
        };
        let data = match super::hf_cache::read_range(path.clone(), start, end).await {
            Ok(data) => data,
            Err(e) => {
                tracing::warn!("HF cache: reading {} failed: {e}", path.display());
                return false;
            }
        };
        self.stats
            .hf_cache_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let bs = self.block_size() as usize;
        let mut at = 0;
        while at < data.len() {
            let to = (at + bs).min(data.len());
            on_block(data.slice(at..to));
            at = to;
        }
        true
    }

    fn failed(&self, blob: &Blob, pos: u64, end: u64, e: &HubError) -> Errno {
        tracing::warn!(
            "{}@{}: reading {} bytes {pos}..{end} failed: {e}",
            blob.repo,
            blob.commit,
            blob.path
        );
        match Errno::from(e) {
            // The listing said the file exists: any failure now is an I/O error.
            Errno::ENOENT => Errno::EIO,
            errno => errno,
        }
    }
}

/// Bytes of blocks per run buffer: two FUSE reads (the kernel asks 1 MiB at a time). Buffers
/// are cut from the run's start, and read-ahead requests start where the reader's reads end
/// (however the kernel aligned them: a `cat` reads 1 MiB at 768 KiB past each MiB), so most
/// reads fall inside one buffer. Small, because a buffer lives as long as any of its blocks
/// (a block parked for the hash, a block left in memory for its reader); the usual size is
/// the one `run_buf.rs` recycles.
const RUN_BUF_BYTES: u64 = super::run_buf::POOLED_LEN as u64;

/// The length of the run buffer that starts at `at` (block-aligned) in a fetch ending at
/// `end`: the rest of the fetch, in whole blocks up to about [`RUN_BUF_BYTES`] (so a block
/// never straddles two buffers).
fn run_buf_len(at: u64, end: u64, block_size: u64) -> usize {
    (end - at).min(run_buf_cap(block_size) as u64) as usize
}

/// The longest run buffer: whole blocks, about [`RUN_BUF_BYTES`].
pub(super) fn run_buf_cap(block_size: u64) -> usize {
    ((RUN_BUF_BYTES / block_size).max(1) * block_size) as usize
}

#[cfg(test)]
mod tests {
    use super::run_buf_len;

    #[test]
    fn a_run_is_one_buffer_up_to_the_cap_in_whole_blocks() {
        let bs = 128 << 10;
        assert_eq!(run_buf_len(3 * bs, 3 * bs + 5, bs), 5);
        assert_eq!(run_buf_len(3 * bs, 100 << 20, bs), 2 << 20);
        // A block larger than the cap: one block per buffer.
        assert_eq!(run_buf_len(0, 100 << 20, 16 << 20), 16 << 20);
        // A block size that does not divide the cap: whole blocks only.
        let odd = 768 << 10;
        assert_eq!(run_buf_len(0, 100 << 20, odd), 2 * odd as usize);
    }
}
