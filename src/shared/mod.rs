//! The shared cache tier: an S3-compatible bucket that every node of a cluster reads before the
//! Hub and fills after it, so N nodes mounting the same repos fetch each byte from the Hub about
//! once. The only code speaking S3 (through object_store's client: SigV4, no hand-written
//! signing).
//!
//! What it promises the read path (`read/shared.rs` is the one place that uses it):
//! - **Never wrong bytes.** An entry is a segment of consecutive blocks, each framed with a crc
//!   bound to the object's name and the block's index (`key.rs`); a block is accepted only if
//!   its frame checks. A damaged entry is counted, deleted in the background, not asked for
//!   again until rewritten, and the Hub serves from the first bad block on. Accepted bytes then
//!   go through the same in-order content hash as Hub bytes.
//! - **Never a failed or much slower read.** A lookup gives up after a short first-byte
//!   timeout, when the body stalls for as long between two pieces, or when the body takes more
//!   than `SLOW_FACTOR` times what the Hub (its measured rate) would; the blocks checked so far
//!   are used, the Hub serves the rest. Errors, timeouts and slow lookups that delivered
//!   nothing feed a circuit breaker that skips the tier for a while (`breaker.rs`). A tier
//!   measurably slower than the Hub shares runs with it (`split.rs`, used by `read/shared.rs`).
//! - **Each byte from the Hub about once, even for nodes starting together.** A node that
//!   misses an entry claims it before fetching it; a node that finds another's fresh claim
//!   waits (bounded) for the entry instead (`claim.rs`).
//! - **Never a slower reader.** Fills are queued (bounded) and written by a few background
//!   tasks; when the queue is full the read path remembers the segment's name and writes it
//!   later from the local cache (`read/shared.rs`).
//! - **Bounded**: lookups in flight (a semaphore), the fill queue, its writers.

mod breaker;
mod claim;
pub mod config;
pub mod key;
mod rate;
pub mod split;
mod stats;

use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use object_store::{GetOptions, GetRange};
use parking_lot::Mutex;
use tokio::sync::{mpsc, Semaphore};

pub use breaker::Breaker;
pub use claim::Claimed;
pub use config::{Resolved, SharedCacheOptions};
pub use key::SharedKey;
pub use rate::Rate;
pub use stats::SharedStats;

/// Segment lookups in flight at once: as many as the Hub requests a mount may have in flight
/// (`ReadConfig::max_parallel_requests`' default), so the tier is not held to less parallelism
/// than the Hub. Each holds up to one segment (4 MiB) in memory: 128 MiB at most, the size of
/// the read-ahead window it fills.
const MAX_LOOKUPS: usize = 32;
/// Segments waiting to be written. Past it, the read path defers them (see `read/shared.rs`).
const FILL_QUEUE: usize = 8;
/// Background writers draining the queue.
const FILL_WRITERS: usize = 4;
/// Longest a lookup may take in all when the Hub's rate is not known yet (the first-byte
/// timeout and the stall timeout between two pieces of the body are shorter).
const LOOKUP_TOTAL: Duration = Duration::from_secs(10);
/// A lookup's body may take this many times what the Hub would take for its bytes (plus one
/// first-byte timeout) before it is abandoned as slow: the blocks checked so far are used and
/// the Hub serves the rest. Not 1: the estimates are per request and noisy, and every byte the
/// tier serves is one the Hub does not.
const SLOW_FACTOR: f64 = 2.0;
/// Longest a fill or a delete may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Failures in a row that open the breaker, and how long it stays open.
const BREAKER_THRESHOLD: u32 = 3;
const BREAKER_PAUSE: Duration = Duration::from_secs(30);
/// Entries found damaged (not asked for again until this node rewrites them), or written by
/// this node, remembered at most.
const MAX_REMEMBERED: usize = 16384;
/// Background deletes (claims, entries) in flight at once: a breaker that drops a full backlog
/// releases thousands of claims, which must not become thousands of connections.
const MAX_DELETES: usize = 8;

/// Adds `key` to a bounded set (full: forgotten at once, which only costs a repeated request).
/// False: it was there.
fn remember(set: &Mutex<HashSet<SharedKey>>, key: SharedKey) -> bool {
    let mut set = set.lock();
    if set.len() >= MAX_REMEMBERED {
        set.clear();
    }
    set.insert(key)
}

/// What a lookup found: the checked blocks of the range asked for, in order, from its first.
#[derive(Debug, Default)]
pub struct Lookup {
    pub blocks: Vec<Bytes>,
    /// Every block asked for is in `blocks`. False: a miss, an error, a timeout, a damaged
    /// frame or a slow store cut it short; the caller fetches the rest elsewhere.
    pub complete: bool,
    /// Cut short for being slower than the Hub: `blocks` measure the tier's rate.
    pub slow: bool,
    /// The store has no such entry (yet): the one case a claim decides who fetches it.
    pub missing: bool,
}

struct Fill {
    key: SharedKey,
    blocks: Vec<Bytes>,
}

/// How reading a lookup's body ended.
enum BodyEnd {
    Done,
    Damaged,
    Slow,
    Failed(String),
}

pub struct SharedCache {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// `s3://bucket/prefix`, for status.
    location: String,
    breaker: Arc<Breaker>,
    lookups: Semaphore,
    fills: mpsc::Sender<Fill>,
    /// Fills queued or being written.
    pending: AtomicU64,
    first_byte_timeout: Duration,
    /// Throughput of one Hub request (fed by the read path) and of one tier lookup.
    hub_rate: Rate,
    tier_rate: Rate,
    /// Throughput of one run part served by the tier (several lookups in parallel): what a
    /// split compares with `hub_rate` (see `split.rs`).
    tier_run_rate: Rate,
    /// Most lookups seen in flight at once (status: is the tier given the parallelism?).
    peak_lookups: AtomicU64,
    bad: Mutex<HashSet<SharedKey>>,
    /// Entries known to be in the tier: queued or written by this node, or found there by a
    /// lookup cut short. Not written (again): two runs that each fetched part of a segment may
    /// both find it whole in the local cache, and a slow lookup's rest comes from the Hub.
    written: Mutex<HashSet<SharedKey>>,
    /// This mount's id in the claims it writes (`claim.rs`).
    node: String,
    /// Entries this node claimed and has not written yet.
    claimed: Mutex<HashSet<SharedKey>>,
    /// Claimers whose claims this mount waited out, and how often.
    waited_out: Mutex<claim::WaitedOut>,
    /// When this node last waited for another node's claim.
    last_wait: Mutex<Option<Instant>>,
    /// Bounds the background deletes (`MAX_DELETES`).
    deletes: Arc<Semaphore>,
    pub stats: Arc<SharedStats>,
}

impl SharedCache {
    /// Builds the client and starts the fill writers on the current tokio runtime.
    pub fn start(cfg: &Resolved) -> Result<Arc<SharedCache>, String> {
        let client = ClientOptions::new()
            .with_allow_http(true)
            .with_connect_timeout(cfg.first_byte_timeout.max(Duration::from_millis(200)))
            .with_timeout(WRITE_TIMEOUT);
        // One attempt: a failed lookup goes to the Hub, which is always the faster answer.
        let retry = RetryConfig {
            max_retries: 0,
            retry_timeout: LOOKUP_TOTAL,
            ..RetryConfig::default()
        };
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_virtual_hosted_style_request(cfg.virtual_hosted)
            .with_client_options(client)
            .with_retry(retry);
        if let Some(ep) = &cfg.endpoint {
            b = b.with_endpoint(ep);
        }
        if let Some(c) = &cfg.credentials {
            b = b
                .with_access_key_id(&c.key_id)
                .with_secret_access_key(&c.secret);
            if let Some(t) = &c.session_token {
                b = b.with_token(t);
            }
        }
        let store = b
            .build()
            .map_err(|e| format!("--shared-cache s3://{}: {e}", cfg.bucket))?;
        let (tx, rx) = mpsc::channel(FILL_QUEUE);
        let me = Arc::new(SharedCache {
            store: Arc::new(store),
            prefix: cfg.prefix.clone(),
            location: format!("s3://{}/{}", cfg.bucket, cfg.prefix),
            breaker: Arc::new(Breaker::new(BREAKER_THRESHOLD, BREAKER_PAUSE)),
            lookups: Semaphore::new(MAX_LOOKUPS),
            fills: tx,
            pending: AtomicU64::new(0),
            first_byte_timeout: cfg.first_byte_timeout,
            hub_rate: Rate::default(),
            tier_rate: Rate::default(),
            tier_run_rate: Rate::default(),
            peak_lookups: AtomicU64::new(0),
            bad: Mutex::default(),
            written: Mutex::default(),
            node: claim::node_id(),
            claimed: Mutex::default(),
            waited_out: Mutex::default(),
            last_wait: Mutex::default(),
            deletes: Arc::new(Semaphore::new(MAX_DELETES)),
            stats: Arc::default(),
        });
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..FILL_WRITERS {
            let (me, rx) = (Arc::downgrade(&me), rx.clone());
            tokio::spawn(async move {
                loop {
                    let Some(fill) = rx.lock().await.recv().await else {
                        return;
                    };
                    let Some(me) = me.upgrade() else {
                        return;
                    };
                    me.write(fill).await;
                }
            });
        }
        tracing::info!(
            "shared cache {} at {} (region {}, credentials from {})",
            me.location,
            cfg.endpoint.as_deref().unwrap_or("AWS"),
            cfg.region,
            cfg.credential_source
        );
        Ok(me)
    }

    /// Reads blocks `blocks` of entry `key` with one ranged GET, checking each frame as it
    /// arrives. Never fails and never waits past the timeouts: every problem ends the lookup
    /// early, keeping the blocks checked so far.
    pub async fn get(&self, key: &SharedKey, blocks: Range<u32>) -> Lookup {
        self.lookup(key, blocks, true).await
    }

    /// [`Self::get`] again for an entry whose miss was counted already (looked up before this
    /// node waited for another entry: it may have landed meanwhile).
    pub async fn get_again(&self, key: &SharedKey, blocks: Range<u32>) -> Lookup {
        self.lookup(key, blocks, false).await
    }

    /// [`Self::get`]; a miss is counted only if `count_miss` (a waiter's repeated asks are not
    /// misses of the tier).
    async fn lookup(&self, key: &SharedKey, blocks: Range<u32>, count_miss: bool) -> Lookup {
        let mut found = Lookup::default();
        if blocks.is_empty() {
            found.complete = true;
            return found;
        }
        if self.bad.lock().contains(key) {
            SharedStats::bump(&self.stats.misses);
            return found;
        }
        if !self.breaker.allow() {
            SharedStats::bump(&self.stats.skipped);
            return found;
        }
        let Ok(_permit) = self.lookups.acquire().await else {
            return found;
        };
        let in_flight = (MAX_LOOKUPS - self.lookups.available_permits()) as u64;
        self.peak_lookups.fetch_max(in_flight, Ordering::Relaxed);
        let name = key.object_name(&self.prefix);
        let path = ObjPath::from(name.as_str());
        let range = key.frame_range(blocks.clone());
        let bytes = range.end - range.start;
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let started = Instant::now();
        let answer =
            tokio::time::timeout(self.first_byte_timeout, self.store.get_opts(&path, opts)).await;
        let r = match answer {
            Ok(Ok(r)) => r,
            Ok(Err(object_store::Error::NotFound { .. })) => {
                self.breaker.success();
                if count_miss {
                    SharedStats::bump(&self.stats.misses);
                }
                found.missing = true;
                return found;
            }
            Ok(Err(e)) => {
                self.failed(&name, &e.to_string());
                return found;
            }
            Err(_) => {
                self.failed(&name, "no answer within the first-byte timeout");
                return found;
            }
        };
        let end = self
            .body(r, key, &name, blocks.clone(), bytes, &mut found.blocks)
            .await;
        let got: u64 = found.blocks.iter().map(|b| b.len() as u64).sum();
        SharedStats::add(&self.stats.bytes, got);
        match end {
            BodyEnd::Done => {
                self.breaker.success();
                self.tier_rate.sample(bytes, started.elapsed());
                SharedStats::bump(&self.stats.hits);
                found.complete = true;
            }
            BodyEnd::Damaged => {
                // The store answered: it works, but this entry is wrong. Two lookups of it in
                // flight at once count it once.
                self.breaker.success();
                self.written.lock().remove(key);
                if remember(&self.bad, *key) {
                    SharedStats::bump(&self.stats.corrupt);
                    tracing::warn!("shared cache: {name} is not what hubfs stored; deleting it");
                    self.delete_in_background(path, Duration::ZERO);
                }
            }
            BodyEnd::Slow => {
                // The entry is there: a node that fetches the rest from the Hub need not
                // write it again.
                let _ = remember(&self.written, *key);
                SharedStats::bump(&self.stats.slow);
                found.slow = true;
                // A slow store that delivers is given smaller shares (its rate falls, see
                // `split.rs`), not skipped; one that delivered nothing in its budget is as
                // good as down.
                if got == 0 {
                    self.breaker.failure();
                } else {
                    self.breaker.success();
                }
                self.tier_rate.sample(got, started.elapsed());
                tracing::debug!(
                    "shared cache: {name} slower than the Hub ({:.1} MiB/s there): the Hub serves the rest",
                    self.hub_rate.mib_s()
                );
            }
            BodyEnd::Failed(why) => {
                let _ = remember(&self.written, *key);
                self.failed(&name, &why);
            }
        }
        found
    }

    /// Time a lookup's body of `bytes` may take: a multiple of what the Hub would take, plus
    /// one first-byte timeout of slack; bounded by `LOOKUP_TOTAL`.
    fn body_budget(&self, bytes: u64) -> Duration {
        match self.hub_rate.time_for(bytes) {
            Some(hub) => (hub.mul_f64(SLOW_FACTOR) + self.first_byte_timeout).min(LOOKUP_TOTAL),
            None => LOOKUP_TOTAL,
        }
    }

    /// Reads a lookup's body frame by frame into `out` (checked blocks). Gives up when the store
    /// stalls for longer than the first-byte timeout between two pieces (a stopped node, a
    /// dropped link: one short timeout, not the whole budget), or when the body as a whole is
    /// slower than the Hub would be. Memory: one frame plus one piece beyond `out`.
    async fn body(
        &self,
        r: object_store::GetResult,
        key: &SharedKey,
        name: &str,
        blocks: Range<u32>,
        bytes: u64,
        out: &mut Vec<Bytes>,
    ) -> BodyEnd {
        let deadline = tokio::time::Instant::now() + self.body_budget(bytes);
        let seed = key::seed(name);
        let mut stream = r.into_stream();
        let mut buf = bytes::BytesMut::new();
        let mut i = blocks.start;
        while i < blocks.end {
            let frame_len = key.block_len(i) + key::FRAME_CRC;
            if buf.len() >= frame_len {
                let frame = buf.split_to(frame_len).freeze();
                match key::unframe(key, seed, i, frame) {
                    Some(block) => out.push(block),
                    None => return BodyEnd::Damaged,
                }
                i += 1;
                continue;
            }
            let stall = tokio::time::Instant::now() + self.first_byte_timeout;
            match tokio::time::timeout_at(stall.min(deadline), stream.next()).await {
                Ok(Some(Ok(piece))) => buf.extend_from_slice(&piece),
                Ok(Some(Err(e))) => return BodyEnd::Failed(e.to_string()),
                // Shorter than the entry: truncated.
                Ok(None) => return BodyEnd::Damaged,
                Err(_) if tokio::time::Instant::now() >= deadline => return BodyEnd::Slow,
                Err(_) => return BodyEnd::Failed("the store stalled mid-body".into()),
            }
        }
        // Whatever else a hostile store would send is not read.
        BodyEnd::Done
    }

    /// A Hub request moved `bytes` in `took`: the yardstick for a slow tier.
    pub fn note_hub_rate(&self, bytes: u64, took: Duration) {
        self.hub_rate.sample(bytes, took);
    }

    /// A run part served by the tier moved `bytes` in `took` (several lookups in parallel).
    pub fn note_tier_run(&self, bytes: u64, took: Duration) {
        self.tier_run_rate.sample(bytes, took);
    }

    /// (tier, Hub) bytes per second of one run part; 0: not measured yet.
    pub fn run_rates(&self) -> (f64, f64) {
        (self.tier_run_rate.get(), self.hub_rate.get())
    }

    fn failed(&self, name: &str, why: &str) {
        SharedStats::bump(&self.stats.errors);
        self.breaker.failure();
        tracing::debug!("shared cache: lookup of {name} failed: {why}");
        if self.breaker.is_open() {
            tracing::warn!(
                "shared cache {} unavailable ({why}): reading from the Hub for {BREAKER_PAUSE:?}",
                self.location
            );
        }
    }

    /// Queues `blocks` (the whole entry `key`, verified Hub bytes) to be written; never waits.
    /// An open breaker drops it (counted). False: the queue is full and nothing was done (the
    /// caller may defer the entry, see `read/shared.rs`, or count it dropped with
    /// [`Self::dropped`]).
    pub fn try_fill(&self, key: SharedKey, blocks: Vec<Bytes>) -> bool {
        if self.breaker.is_open() {
            SharedStats::bump(&self.stats.drops);
            self.release_claim(&key);
            return true;
        }
        if self.written.lock().contains(&key) {
            // Written before: a claim made since (the entry was purged, or expired from the
            // bucket) is done too.
            self.claim_done(&key);
            return true;
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.fills.try_send(Fill { key, blocks }).is_ok() {
            let _ = remember(&self.written, key);
            return true;
        }
        self.pending.fetch_sub(1, Ordering::AcqRel);
        false
    }

    /// Room left in the fill queue.
    pub fn fill_room(&self) -> usize {
        self.fills.capacity()
    }

    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Counts blocks given up on.
    pub fn dropped(&self, n: u64) {
        SharedStats::add(&self.stats.drops, n);
    }

    async fn write(&self, fill: Fill) {
        self.write_one(fill).await;
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    async fn write_one(&self, fill: Fill) {
        if !self.breaker.allow() {
            self.written.lock().remove(&fill.key);
            SharedStats::bump(&self.stats.drops);
            self.release_claim(&fill.key);
            return;
        }
        let name = fill.key.object_name(&self.prefix);
        let len = fill.key.data_len() as u64;
        let path = ObjPath::from(name.as_str());
        // Another node may have written it meanwhile (nodes reading together, a deferred
        // segment): one small request instead of a segment written again, three times over.
        let head = tokio::time::timeout(self.first_byte_timeout, self.store.head(&path)).await;
        if let Ok(Ok(meta)) = head {
            if meta.size == fill.key.object_len() {
                self.breaker.success();
                SharedStats::bump(&self.stats.fill_present);
                self.claim_done(&fill.key);
                return;
            }
        }
        let payload = PutPayload::from_iter(key::frames(&name, &fill.blocks));
        let put = self.store.put(&path, payload);
        match tokio::time::timeout(WRITE_TIMEOUT, put).await {
            Ok(Ok(_)) => {
                self.breaker.success();
                self.bad.lock().remove(&fill.key);
                self.claim_done(&fill.key);
                SharedStats::bump(&self.stats.fills);
                SharedStats::add(&self.stats.fill_bytes, len);
            }
            Ok(Err(e)) => {
                self.breaker.failure();
                self.written.lock().remove(&fill.key);
                self.release_claim(&fill.key);
                SharedStats::bump(&self.stats.fill_errors);
                tracing::debug!("shared cache: writing {name} failed: {e}");
            }
            Err(_) => {
                self.breaker.failure();
                self.written.lock().remove(&fill.key);
                self.release_claim(&fill.key);
                SharedStats::bump(&self.stats.fill_errors);
                tracing::debug!("shared cache: writing {name} timed out");
            }
        }
    }

    /// Deletes `path`, `after` from now (one task each, bounded by a timeout).
    fn delete_in_background(&self, path: ObjPath, after: Duration) {
        let store = self.store.clone();
        let deletes = self.deletes.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let Ok(_slot) = deletes.acquire().await else {
                return;
            };
            let _ = tokio::time::timeout(WRITE_TIMEOUT, store.delete(&path)).await;
        });
    }

    /// Deletes every entry of `blob` (its content failed its hash: some entry may be wrong,
    /// and the tier cannot tell which). In the background, bounded by a timeout.
    pub fn purge(self: &Arc<Self>, blob: &crate::cache::BlobKey) {
        SharedStats::bump(&self.stats.purges);
        let me = self.clone();
        let dir = key::blob_dir(&self.prefix, blob);
        tokio::spawn(async move {
            let prefix = ObjPath::from(dir.trim_end_matches('/'));
            let work = async {
                let names = me.store.list(Some(&prefix)).map(|m| m.map(|m| m.location));
                me.store
                    .delete_stream(names.boxed())
                    .for_each(|_| async {})
                    .await;
            };
            if tokio::time::timeout(WRITE_TIMEOUT, work).await.is_err() {
                tracing::warn!("shared cache: purging {dir} timed out");
            }
        });
    }

    /// For `hubfs status`.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "location": self.location,
            "breaker_open": self.breaker.is_open(),
            "queued_fills": self.pending.load(Ordering::Acquire),
            "hub_mib_s": self.hub_rate.mib_s(),
            "tier_mib_s": self.tier_rate.mib_s(),
            "tier_run_mib_s": self.tier_run_rate.mib_s(),
            "lookups_peak": self.peak_lookups.load(Ordering::Relaxed),
            "stats": &*self.stats,
        })
    }
}
