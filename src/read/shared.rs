//! The shared tier as a block source: between the local cache (and the huggingface_hub cache)
//! and the Hub. This file, two lines of `fetch.rs::stream_range` and the split in
//! `fetch.rs::fetch_run` are the whole hook.
//!
//! - **Entries are segments**: `SEGMENT` bytes of consecutive cache blocks, aligned in the file,
//!   so a node reading from the tier makes one ranged GET per segment (per part of one that a
//!   run needs), not one per block.
//! - **Read**: a run of blocks the local cache misses is looked up in the shared tier, segment
//!   by segment (all of a run's lookups in flight, delivered in order); the longest prefix found is
//!   delivered, the rest comes from the Hub. Delivered blocks take exactly the path of Hub bytes
//!   (`fetch_run`'s `on_block`: local cache, in-order content hash, waiters), after the tier's
//!   own per-block check. A lookup that fails, times out or is slower than the Hub ends the
//!   prefix; it never fails the read.
//! - **Fill**: blocks the Hub delivers are gathered per segment; a segment the run fetched
//!   whole is queued for the tier at once (`SharedCache::try_fill`, which never waits). A
//!   segment the run fetched only part of (the run started or ended inside it, or was cut), or
//!   one the full queue had no room for, goes by name into a bounded backlog; one background
//!   task writes those as room appears, reading them back from the local cache (crc-checked)
//!   once all their blocks are there. So a fast reader is never slowed, memory stays bounded
//!   (one segment per run being fetched, the queue), and the tier still ends up with the file.
//! - **Split** (`shared/split.rs`): once this node has measured both, a run of a file the tier
//!   has served before is shared when the tier is measurably slower than the Hub: its first
//!   part from the tier, its tail from the Hub at the same time, in proportion to their rates
//!   per run part, so the run ends about when the faster alone would have, and the Hub still
//!   serves only its share. A node that has read only from the tier measures the Hub first
//!   with one probe (a run's second half from the Hub; at most one per `PROBE_EVERY`). The Hub's
//!   share is not written back (the tier served this file already; an entry it lacks costs a
//!   later node a Hub fetch, never a wrong byte).
//! - **Wrong content**: a blob that fails its content hash has its entries purged from the
//!   tier, and this node stops using the tier for it, so its refetch comes from the Hub.
//! - **Privacy**: the tier is consulted only by an online mount (`client` is Some), whose every
//!   blob comes from a snapshot opened by a repo-info answer the Hub gave this node's token
//!   (`fs::snapshot::Snapshot::open`): a node never learns bytes of a repo its token cannot
//!   list, since it cannot know their key. Offline mounts never touch the tier.

use std::collections::{HashSet, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;

use super::{Blob, ReadPath};
use crate::cache::{BlobKey, BlockCache};
use crate::shared::split::{probe_share, tier_share};
use crate::shared::{Claimed, Lookup, SharedCache, SharedKey, SharedStats};

/// Bytes per shared-tier entry, rounded down to whole cache blocks (at least one): 4 MiB makes
/// a GET's fixed cost small against its transfer and keeps what a lookup holds small.
const SEGMENT: u64 = 4 << 20;
/// Blobs this node stopped trusting the tier for, remembered at most (then forgotten at once:
/// their entries were purged anyway).
const MAX_DISTRUSTED: usize = 4096;
/// Segments waiting in the backlog at most: names only (~80 bytes each), 16 GiB of 4 MiB.
const MAX_BACKLOG: usize = 4096;
/// How often the backlog task looks for room in the fill queue, or again at a segment that
/// was not whole in the local cache yet.
const BACKLOG_POLL: Duration = Duration::from_millis(20);
/// Times a segment is found not whole before the backlog gives up on it (about half a second).
const UNREADY_TRIES: u32 = 25;
/// Hub requests and tier run parts at least this long measure a rate (shorter ones mostly
/// measure latency). Also the least Hub share of a split or a probe.
const RATE_SAMPLE_MIN: u64 = 1 << 20;
/// Blobs the tier served whole lookups of, remembered at most (then forgotten at once: a
/// forgotten blob only loses splitting until its next hit).
const MAX_SEEN: usize = 4096;
/// Probes of the Hub's rate at most this often (a file whose Hub share does not measure it,
/// such as one read from the Xet CAS at a low rate, does not turn every run into a probe).
const PROBE_EVERY: Duration = Duration::from_secs(10);

/// How a run is fetched: the tier first (then the Hub for what it lacks), or, for the tail of
/// a split run, from the Hub only, not written back to the tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Via {
    Tiered,
    /// The head of a split run: as `Tiered`, and its rate counts however short it is (a slow
    /// tier's share is small; without its samples a tier that recovers would not be seen).
    TierShare,
    HubShare,
}

/// A run to share: its first `tier_blocks` blocks from the tier, the rest from the Hub.
#[derive(Clone, Copy, Debug)]
pub(super) struct Split {
    pub tier_blocks: usize,
    /// The Hub share measures the Hub's rate (this node did not know it).
    pub probe: bool,
}

/// The tier and what the read path remembers about it.
pub struct Shared {
    pub cache: Arc<SharedCache>,
    /// Blobs whose content failed its hash: read from the Hub only, until the mount restarts.
    distrusted: Mutex<HashSet<BlobKey>>,
    backlog: Arc<Backlog>,
    /// Blobs the tier served a whole lookup of: the runs that may be split.
    seen: Mutex<HashSet<BlobKey>>,
    /// When the last probe of the Hub's rate started, and whether one is out.
    probe: Mutex<(Option<Instant>, bool)>,
}

/// One segment of one blob: (content, its size, segment index).
type SegmentRef = (BlobKey, u64, u64);

/// A segment in the backlog, the times it was found not yet whole, and when to look again.
type Pending = (SegmentRef, u32, Instant);

/// Segments to write from the local cache, each once.
#[derive(Default)]
struct Backlog {
    queue: Mutex<(VecDeque<Pending>, HashSet<SegmentRef>)>,
    /// True while a task drains the backlog.
    draining: AtomicBool,
}

/// Cache blocks per segment for block size `bs`.
fn per_segment(bs: u64) -> u64 {
    (SEGMENT / bs).max(1)
}

/// The entry of segment `seg` of a blob of `size` bytes, for block size `bs`.
fn segment_key(blob: BlobKey, size: u64, bs: u64, seg: u64) -> SharedKey {
    let span = per_segment(bs) * bs;
    let offset = seg * span;
    SharedKey::Range {
        blob,
        offset,
        // A segment is at most max(SEGMENT, block size <= 16 MiB): fits a u32.
        len: (size - offset).min(span) as u32,
        block: bs as u32,
    }
}

/// The blocks of segment `seg` of a blob of `size` bytes.
fn segment_blocks(size: u64, bs: u64, seg: u64) -> Range<u64> {
    let per = per_segment(bs);
    seg * per..((seg + 1) * per).min(size.div_ceil(bs))
}

impl Shared {
    pub fn new(cache: Arc<SharedCache>) -> Shared {
        Shared {
            cache,
            distrusted: Mutex::default(),
            backlog: Arc::default(),
            seen: Mutex::default(),
            probe: Mutex::default(),
        }
    }

    /// Takes the probe if none is out and the last is `PROBE_EVERY` old.
    fn start_probe(&self) -> bool {
        let mut p = self.probe.lock();
        if p.1 || p.0.is_some_and(|t| t.elapsed() < PROBE_EVERY) {
            return false;
        }
        *p = (Some(Instant::now()), true);
        true
    }

    /// Queues a segment fetched whole, or its name for later.
    fn fill(&self, local: &Arc<BlockCache>, seg: SegmentRef, key: SharedKey, blocks: Vec<Bytes>) {
        if !self.cache.try_fill(key, blocks) {
            self.defer(local, seg);
        }
    }

    /// Remembers a segment to write from the local cache once all its blocks are there.
    fn defer(&self, local: &Arc<BlockCache>, seg: SegmentRef) {
        {
            let mut q = self.backlog.queue.lock();
            if q.1.contains(&seg) {
                return;
            }
            if q.0.len() >= MAX_BACKLOG {
                self.cache.dropped(1);
                let (blob, size, idx) = seg;
                self.cache
                    .release_claim(&segment_key(blob, size, local.block_size(), idx));
                return;
            }
            q.0.push_back((seg, 0, Instant::now()));
            q.1.insert(seg);
        }
        SharedStats::bump(&self.cache.stats.deferred);
        if !self.backlog.draining.swap(true, Ordering::AcqRel) {
            tokio::spawn(drain(
                self.backlog.clone(),
                self.cache.clone(),
                local.clone(),
            ));
        }
    }
}

/// This node claimed a missing segment ending at `to`: claims the missing segments right after
/// it (`asks`, whose lookups `found` holds) at once, and returns where the Hub's fetch ends:
/// after the last of them this node won in a row. A segment present, or claimed by another
/// node, ends it: the caller comes back to the tier for it after the Hub's part.
async fn claim_following(
    shared: &Shared,
    asks: &[(SharedKey, Range<u32>)],
    found: &[Lookup],
    mut to: u64,
) -> u64 {
    let missing = asks
        .iter()
        .zip(found)
        .take_while(|(_, l)| l.missing)
        .map(|(a, _)| a.0);
    let claims = futures_util::future::join_all(
        missing.map(|k| async move { (k, shared.cache.claim(&k).await) }),
    )
    .await;
    for (k, claimed) in claims {
        if claimed != Claimed::Mine {
            break;
        }
        to = k.end();
    }
    to
}

/// Adds `blob` to a bounded set (full: forgotten at once).
fn remember_blob(set: &Mutex<HashSet<BlobKey>>, blob: BlobKey) {
    let mut set = set.lock();
    if set.contains(&blob) {
        return;
    }
    if set.len() >= MAX_SEEN {
        set.clear();
    }
    set.insert(blob);
}

/// Reads a whole segment back from the local cache (None: a block is not there, or unreadable).
fn read_segment(local: &BlockCache, (blob, size, seg): SegmentRef) -> Option<Vec<Bytes>> {
    let blocks = segment_blocks(size, local.block_size(), seg);
    if !local.missing_blocks(&blob, size, blocks.clone()).is_empty() {
        return None;
    }
    blocks
        .map(|i| local.read_block(&blob, size, i).ok().flatten())
        .collect()
}

/// Feeds the backlog to the fill queue as room appears, reading each segment back from the
/// local cache; gives up on all of it when the breaker opens. A segment not whole in the local
/// cache is looked at again a few times, then dropped (evicted, or fetched only in part).
async fn drain(backlog: Arc<Backlog>, tier: Arc<SharedCache>, local: Arc<BlockCache>) {
    loop {
        if tier.breaker_open() {
            let mut q = backlog.queue.lock();
            tier.dropped(q.0.len() as u64);
            // Their claims stay: deleting them from a bucket that is down would take a
            // timeout each, queued before every other delete, and they expire in 30 s.
            q.0.clear();
            q.1.clear();
        }
        let next = {
            let mut q = backlog.queue.lock();
            let next = q.0.pop_front();
            if let Some((s, _, _)) = &next {
                q.1.remove(s);
            }
            next
        };
        let Some((seg, unready, not_before)) = next else {
            backlog.draining.store(false, Ordering::Release);
            // A segment pushed between the pop and the store finds `draining` still set: look
            // again, and keep going if it is there and nobody else took over.
            if backlog.queue.lock().0.is_empty() || backlog.draining.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        };
        while tier.fill_room() == 0 && !tier.breaker_open() {
            tokio::time::sleep(BACKLOG_POLL).await;
        }
        // Requeued segments are in order of their time: one sleep serves all that are due.
        let early = not_before.saturating_duration_since(Instant::now());
        if !early.is_zero() {
            tokio::time::sleep(early).await;
        }
        let local2 = local.clone();
        let read = tokio::task::spawn_blocking(move || read_segment(&local2, seg)).await;
        let key = segment_key(seg.0, seg.1, local.block_size(), seg.2);
        match read {
            Ok(Some(blocks)) => {
                if !tier.try_fill(key, blocks) {
                    // Fetches took the room first: its turn comes again.
                    let mut q = backlog.queue.lock();
                    if q.1.insert(seg) {
                        q.0.push_front((seg, unready, not_before));
                    }
                }
            }
            // Not whole yet: a run hands its last segment over with the last block, before
            // that block is stored, and other runs may still be fetching some of it. Looked at
            // again, a few times (another run that completes it defers it again anyway).
            _ if unready < UNREADY_TRIES => {
                let mut q = backlog.queue.lock();
                if q.1.insert(seg) {
                    q.0.push_back((seg, unready + 1, Instant::now() + BACKLOG_POLL));
                }
            }
            // Evicted meanwhile, or never fetched whole: not written, and other nodes need
            // not wait for it.
            _ => tier.release_claim(&key),
        }
    }
}

/// Gathers the blocks a run fetched into segments for the tier (see the module doc).
struct Assembler<'a> {
    shared: &'a Shared,
    local: &'a Arc<BlockCache>,
    blob: &'a Blob,
    bs: u64,
    /// Index of the next block.
    idx: u64,
    /// Index of `blocks[0]`.
    first: u64,
    blocks: Vec<Bytes>,
}

impl Assembler<'_> {
    fn push(&mut self, data: Bytes) {
        let per = per_segment(self.bs);
        if self.blocks.is_empty() {
            self.first = self.idx;
        }
        self.blocks.push(data);
        let seg = self.idx / per;
        self.idx += 1;
        let blocks = segment_blocks(self.blob.size, self.bs, seg);
        if self.idx < blocks.end {
            return;
        }
        let whole = std::mem::take(&mut self.blocks);
        let r = (self.blob.key, self.blob.size, seg);
        if self.first == blocks.start {
            let key = segment_key(self.blob.key, self.blob.size, self.bs, seg);
            self.shared.fill(self.local, r, key, whole);
        } else {
            self.shared.defer(self.local, r);
        }
    }
}

impl Drop for Assembler<'_> {
    /// The run ended inside a segment (or was cut): write it once the rest is here.
    fn drop(&mut self) {
        if !self.blocks.is_empty() {
            let seg = self.first / per_segment(self.bs);
            self.shared
                .defer(self.local, (self.blob.key, self.blob.size, seg));
        }
    }
}

impl ReadPath {
    /// Delivers the longest prefix of `[start, end)` (block-aligned `start`) the shared tier
    /// has, in order, waiting for entries other nodes claimed (`shared/claim.rs`). Returns
    /// `(from, to)`: the Hub must fetch `[from, to)`, then the caller comes back here for the
    /// rest (`to < end` when this node claimed only the first missing segments of the run;
    /// `from == end`: all delivered).
    pub(super) async fn serve_from_shared(
        &self,
        blob: &Blob,
        start: u64,
        end: u64,
        via: Via,
        on_block: &mut impl FnMut(Bytes),
    ) -> (u64, u64) {
        let Some(shared) = self.shared.as_ref() else {
            return (start, end);
        };
        // Offline mounts never get here (see the module doc on privacy).
        if self.client.is_none() || shared.distrusted.lock().contains(&blob.key) || start >= end {
            return (start, end);
        }
        let bs = self.block_size();
        let per = per_segment(bs);
        let (first, last) = (start / bs, end.div_ceil(bs));
        let asks: Vec<(SharedKey, Range<u32>)> = (first / per..=(last - 1) / per)
            .map(|seg| {
                let base = seg * per;
                let lo = first.max(base) - base;
                let hi = last.min(base + per) - base;
                let key = segment_key(blob.key, blob.size, bs, seg);
                (key, lo as u32..hi as u32)
            })
            .collect();
        let started = Instant::now();
        // All of the run's segments at once, like the Hub path's one request for the run (a
        // run is one read-ahead request, at most `max_request`): the read-ahead window sets
        // how many are in flight, `MAX_LOOKUPS` bounds the mount.
        let lookahead = asks.len().max(1);
        let mut found = futures_util::stream::iter(asks.clone())
            .map(|(k, r)| async move { shared.cache.get(&k, r).await })
            .buffered(lookahead);
        let mut pos = start;
        let mut hub_to = end;
        // The part's rate counts when it ran to its end, or was cut for slowness: a miss, an
        // error or a wait for another node says nothing about the tier's speed.
        let mut measured = true;
        let mut waited = false;
        let mut i = 0;
        // The run's other lookups once one missed: gathered before claiming or waiting, so
        // none sits unpolled meanwhile (holding its slot, its body deadline running out).
        let mut rest: Option<std::vec::IntoIter<Lookup>> = None;
        loop {
            let next = match rest.as_mut() {
                Some(rest) => rest.next(),
                None => found.next().await,
            };
            let Some(mut lookup) = next else {
                break;
            };
            let (key, range) = asks[i].clone();
            i += 1;
            if lookup.missing && waited {
                // Looked up before a wait: the entry may have come meanwhile (and its claim
                // expired or was dropped, so a stale miss would claim it again).
                lookup = shared.cache.get_again(&key, range.clone()).await;
            }
            if lookup.missing {
                if rest.is_none() {
                    let gathered: Vec<Lookup> = found.by_ref().collect().await;
                    rest = Some(gathered.into_iter());
                }
                match shared.cache.claim(&key).await {
                    Claimed::Theirs(owner) => {
                        (measured, waited) = (false, true);
                        lookup = shared.cache.wait_for(&key, range, &owner).await;
                    }
                    Claimed::Mine => {
                        // The Hub fetches this segment and the missing ones right after it
                        // that this node claims too.
                        let following: Vec<Lookup> = rest.take().into_iter().flatten().collect();
                        hub_to = claim_following(shared, &asks[i..], &following, key.end())
                            .await
                            .min(end);
                        measured = false;
                        break;
                    }
                }
            }
            for block in lookup.blocks {
                pos = (pos + block.len() as u64).min(end);
                on_block(block);
            }
            if !lookup.complete {
                measured &= lookup.slow;
                hub_to = end;
                break;
            }
            remember_blob(&shared.seen, blob.key);
        }
        let long_enough = pos - start >= RATE_SAMPLE_MIN || (via == Via::TierShare && pos > start);
        if measured && long_enough {
            shared.cache.note_tier_run(pos - start, started.elapsed());
        }
        (pos, hub_to.max(pos))
    }

    /// A Hub fetch failed at `at` on its way to `to`: this node will not write the segments
    /// from the one holding `at` on, so its claims on them go at once (other nodes fetch them
    /// rather than wait their budget out). Claims it does not hold are left alone.
    pub(super) fn release_claims_from(&self, blob: &Blob, at: u64, to: u64) {
        let Some(shared) = self.shared.as_ref() else {
            return;
        };
        let bs = self.block_size();
        let span = per_segment(bs) * bs;
        for seg in at / span..to.min(blob.size).div_ceil(span) {
            shared
                .cache
                .release_claim(&segment_key(blob.key, blob.size, bs, seg));
        }
    }

    /// Whether to share a run of `blocks` blocks between the tier and the Hub (see the module
    /// doc): None for a run fetched the usual way. Counts what it decides.
    pub(super) fn plan_split(&self, blob: &Blob, blocks: usize) -> Option<Split> {
        let shared = self.shared.as_ref()?;
        // Not while other nodes fetch for this one (it waited for a claim lately): their
        // entries are on the way, and a Hub share would fetch them again.
        if self.client.is_none()
            || shared.cache.breaker_open()
            || shared.cache.waited_within(PROBE_EVERY)
            || !shared.seen.lock().contains(&blob.key)
            || shared.distrusted.lock().contains(&blob.key)
        {
            return None;
        }
        let bs = self.block_size();
        let min_hub = RATE_SAMPLE_MIN.div_ceil(bs);
        let n = blocks as u64;
        let (tier, hub) = shared.cache.run_rates();
        let (tier_blocks, probe) = if hub <= 0.0 && tier > 0.0 {
            let share = probe_share(n, min_hub)?;
            if !shared.start_probe() {
                return None;
            }
            SharedStats::bump(&shared.cache.stats.probes);
            (share, true)
        } else {
            let share = tier_share(n, tier, hub, min_hub)?;
            SharedStats::bump(&shared.cache.stats.split_runs);
            (share, false)
        };
        Some(Split {
            tier_blocks: tier_blocks as usize,
            probe,
        })
    }

    /// The Hub's share of a split run ended (`bytes` delivered).
    pub(super) fn split_done(&self, split: Split, bytes: u64) {
        if let Some(shared) = self.shared.as_ref() {
            SharedStats::add(&shared.cache.stats.split_hub_bytes, bytes);
            if split.probe {
                shared.probe.lock().1 = false;
            }
        }
    }

    /// Wraps the Hub's `on_block` (blocks from `start` on, in order) so each block, once
    /// handed to the reader, is also gathered into its segment for the shared tier.
    /// Not for the Hub's share of a split run (`via`), which the tier has already.
    pub(super) fn filling_shared<'a>(
        &'a self,
        blob: &'a Blob,
        start: u64,
        via: Via,
        mut on_block: impl FnMut(Bytes) + 'a,
    ) -> impl FnMut(Bytes) + 'a {
        let bs = self.block_size();
        let shared = self.shared.as_ref().filter(|_| via != Via::HubShare);
        let mut assembler = shared.map(|shared| Assembler {
            shared,
            local: &self.cache,
            blob,
            bs,
            idx: start / bs,
            first: start / bs,
            blocks: Vec::new(),
        });
        move |data: Bytes| {
            on_block(data.clone());
            if let Some(a) = assembler.as_mut() {
                a.push(data);
            }
        }
    }

    /// A Hub request moved `bytes` in `took`: the yardstick the tier's lookups are held to.
    pub(super) fn note_hub_rate(&self, bytes: u64, took: Duration) {
        if let Some(shared) = self.shared.as_ref() {
            if bytes >= RATE_SAMPLE_MIN {
                shared.cache.note_hub_rate(bytes, took);
            }
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
            // A segment the drain task holds counts too: zero means every fill is done.
            let held = usize::from(s.backlog.draining.load(Ordering::Acquire));
            v["backlog"] = (s.backlog.queue.lock().0.len() + held).into();
            v
        })
    }
}
