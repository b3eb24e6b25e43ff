//! Reading Xet files through the CAS, verified chunk by chunk.
//!
//! For a run of cache blocks `[start, end)` of a file whose entry has a `xetHash`, the read
//! path asks [`XetReader::read`] before the bridge (`resolve`). It:
//! 1. plans the run: from the cached plan of the 256 MiB window around it, cut down to the
//!    run's chunks with their xorbs' footers (`window`); or, while that window is not cached
//!    yet (it is then asked for in the background), from a reconstruction of exactly that
//!    byte range (xet-client: v2, v1 fallback). Plans are cached until shortly before their
//!    URLs expire, single-flight (`plan`);
//! 2. fetches every xorb range in parallel, long ones in pieces of about 2 MiB (xet-client:
//!    ranged GET, decompression, a new plan on 403), bounded by the read path's request
//!    permits and xet-client's connection permits;
//! 3. checks each chunk against the xorb's footer (`verify`; footers fetched once per xorb by
//!    suffix range, single-flight, authenticated by the xorb hash, kept in a small LRU and in
//!    the chunk store);
//! 4. assembles the terms, cuts `[start, end)` and hands it back whole, in 4 KiB-aligned
//!    buffers from the run-buffer pool (the cache writes its blocks with `O_DIRECT` without
//!    another copy), with the `(chunk hash, length)` list it was cut from.
//!
//! Nothing is handed out before every chunk of the range passed. Any failure (no Xet for the
//! repo, CAS error, timeout, a chunk or footer that fails its hash) returns an error and the
//! caller fetches the same range through the bridge, counting the fallback: a reader sees the
//! right bytes or EIO, never bad bytes. What the CAS delivered goes through the same block
//! writes as bridge bytes (cache, crc), so read-ahead, mmap, passthrough once complete and
//! offline reads of cached blocks are unchanged. The whole-file check of a file read entirely
//! from the CAS is its Xet file hash recomputed from the chunk lists (`read::verify`, "chain
//! mode"): every byte is hashed once (its chunk hash), not a second time by sha256.
//!
//! A file opened before its directory was listed is known only from the repo info's
//! `siblings`, which carry no `xetHash`: that open reads through the bridge (decided: see
//! SEMANTICS.md, "Xet files").

mod flight;
mod plan;
mod stored;
mod verify;
mod window;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flight::Flights;
use lru::LruCache;
use parking_lot::Mutex;
use plan::{Plan, Plans};
use serde::Serialize;
use xet_client::cas_client::{Client, URLProvider};
use xet_client::cas_types::{FileRange, HttpRange, QueryReconstructionResponseV2};
use xet_core_structures::merklehash::MerkleHash;
use xet_runtime::core::XetContext;

use super::{Blob, ReadPath};
use crate::cache::ChunkStore;
use crate::hub::xet::CasSession;
use crate::hub::{HubClient, HubError};
pub use verify::{Footer, VerifyError};

/// How long a repo whose token route failed reads through the bridge before we ask again.
const RETRY_UNAVAILABLE: Duration = Duration::from_secs(60);
/// Footers kept (each ~50 bytes per chunk: ~50 KB for a full 64 MiB xorb).
const FOOTERS_KEPT: usize = 1024;
/// CAS sessions kept (one per repo read).
const SESSIONS_KEPT: usize = 64;
/// A run at least this long asks for the plan of its window when it is not cached: a reader
/// going on through the file (sequential read-ahead runs are 512 KiB by its 4th MiB, then grow
/// to 8 MiB) or reading whole tensors. Shorter runs (small random reads) plan exactly and ask
/// for no window they may never use.
const WINDOW_MIN_RUN: u64 = 256 << 10;
/// Windows asked for in the background, remembered so that one is asked once per
/// `RETRY_UNAVAILABLE` however many runs find it missing meanwhile.
const WINDOWS_ASKED: usize = 512;

/// Counters shown by `hubfs status` (`xet` section).
#[derive(Debug, Default, Serialize)]
pub struct XetStats {
    /// Runs served from the CAS.
    pub reads: AtomicU64,
    /// Bytes handed to the read path from the CAS.
    pub bytes: AtomicU64,
    /// Xorb ranges fetched (one GET each, retries aside).
    pub xorb_ranges: AtomicU64,
    /// Decompressed bytes fetched from xorbs (the over-fetch at chunk edges included).
    pub xorb_bytes: AtomicU64,
    pub footers_fetched: AtomicU64,
    /// Footers taken from the LRU or from another range's fetch of it in flight.
    pub footers_reused: AtomicU64,
    /// Reconstruction requests sent to the CAS (first plans and re-plans after a 403).
    pub reconstructions: AtomicU64,
    /// Plans taken from the plan cache or from another run's request in flight.
    pub plans_reused: AtomicU64,
    /// Runs planned from the cached plan of their window, without a request of their own.
    pub plans_cut: AtomicU64,
    pub chunks_verified: AtomicU64,
    /// Chunks or footers that failed their hash: those runs went to the bridge.
    pub verify_failures: AtomicU64,
    /// Runs read through the bridge after a CAS failure of any kind.
    pub fallbacks: AtomicU64,
    /// Files whose whole-file check was their Xet hash over the chunk lists of the CAS runs
    /// (every block from the CAS): no sha256 pass over their bytes.
    pub chain_verified: AtomicU64,
    /// Whole-file checks that began on chunk lists and went back to hashing the bytes (a block
    /// from elsewhere, e.g. the bridge after a CAS failure).
    pub chain_abandoned: AtomicU64,
    /// Reads over several blocks answered with a slice of one CAS run's buffer (no copy).
    pub replies_without_copy: AtomicU64,
    pub token_requests: AtomicU64,
    /// Footer fetches the CAS refused (403) on a fresh plan URL: its URLs serve only the
    /// ranges the plan names, so chunks cannot be checked and Xet files go to the bridge.
    pub ranges_refused: AtomicU64,
}

/// A verified chunk: its decompressed bytes and its hash (from the authenticated footer).
type Chunk = (Bytes, MerkleHash);

/// What one CAS read delivers: bytes `[start, end)` of the file and the chunks they were cut
/// from, in file order, the first starting at file offset `first_chunk_at` (≤ `start`).
pub struct CasRun {
    /// The bytes, in pieces of `piece_len` (whole blocks, the last piece aside), each with its
    /// buffer, for reads over several of its blocks (`read::spans`). Pieces of the run-buffer
    /// pool's size are recycled mappings, not fresh memory (`run_buf.rs`).
    pub(in crate::read) pieces: Vec<(Bytes, std::sync::Weak<super::run_buf::RunBuf>)>,
    pub chunks: Vec<(MerkleHash, u64)>,
    pub first_chunk_at: u64,
}

/// Why a CAS read did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum XetError {
    #[error("no CAS access: {0}")]
    Unavailable(String),
    #[error("CAS: {0}")]
    Cas(String),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// A URL of a cached plan was refused (403): asked again with a fresh plan before the
    /// refusal is taken for URLs bound to their ranges.
    #[error("CAS refused a cached URL: {0}")]
    Refused(String),
}

enum SessionSlot {
    Ready(Arc<CasSession>),
    /// The token route failed at this instant: bridge until `RETRY_UNAVAILABLE` passed.
    Failed(Instant),
}

/// The CAS side of the read path, shared by all open files of a mount.
pub struct XetReader {
    hub: HubClient,
    ctx: XetContext,
    limit: Duration,
    sessions: Mutex<LruCache<String, SessionSlot>>,
    /// Serializes session opening, so N readers of a fresh repo ask for one token.
    opening: tokio::sync::Mutex<()>,
    footers: Flights<MerkleHash, Arc<Footer>>,
    plans: Plans,
    /// Verified chunks kept across files, revisions and mounts (None: fetch every time).
    chunks: Option<Arc<ChunkStore>>,
    /// When the CAS last refused a range of our own (a footer): until `RETRY_UNAVAILABLE`
    /// has passed, runs go straight to the bridge instead of paying a plan and a refusal each.
    refused_at: Mutex<Option<Instant>>,
    /// Windows asked for in the background and when (see `WINDOWS_ASKED`).
    windows_asked: Mutex<LruCache<(MerkleHash, u64), Instant>>,
    pub stats: XetStats,
}

impl XetReader {
    /// `limit` bounds each token request; the read path bounds the whole read.
    pub fn new(hub: HubClient, ctx: XetContext, limit: Duration) -> XetReader {
        XetReader {
            hub,
            ctx,
            limit,
            sessions: Mutex::new(LruCache::new(nonzero(SESSIONS_KEPT))),
            opening: tokio::sync::Mutex::new(()),
            footers: Flights::new(FOOTERS_KEPT),
            plans: Plans::default(),
            chunks: None,
            refused_at: Mutex::new(None),
            windows_asked: Mutex::new(LruCache::new(nonzero(WINDOWS_ASKED))),
            stats: XetStats::default(),
        }
    }

    /// Reads chunks from `store` first and keeps what it fetches there (see `stored.rs`).
    pub fn with_chunks(mut self, store: Option<Arc<ChunkStore>>) -> XetReader {
        self.chunks = store;
        self
    }

    pub fn chunk_store(&self) -> Option<&Arc<ChunkStore>> {
        self.chunks.as_ref()
    }

    /// The CAS session of the blob's repo, opening it (one token request) if needed.
    async fn session(&self, blob: &Blob) -> Result<Arc<CasSession>, XetError> {
        let key = format!("{}", blob.repo);
        let cached = |me: &XetReader| match me.sessions.lock().get(&key) {
            Some(SessionSlot::Ready(s)) => Some(Ok(s.clone())),
            Some(SessionSlot::Failed(at)) if at.elapsed() < RETRY_UNAVAILABLE => Some(Err(
                XetError::Unavailable("the token route failed a moment ago".into()),
            )),
            _ => None,
        };
        if let Some(r) = cached(self) {
            return r;
        }
        let _one = self.opening.lock().await;
        if let Some(r) = cached(self) {
            return r;
        }
        self.stats.token_requests.fetch_add(1, Ordering::Relaxed);
        let opened =
            CasSession::open(&self.ctx, &self.hub, &blob.repo, &blob.commit, self.limit).await;
        match opened {
            Ok(s) => {
                let s = Arc::new(s);
                tracing::debug!(target: "hubfs::xet", "{}: CAS at {}", blob.repo, s.cas_url);
                self.sessions.lock().put(key, SessionSlot::Ready(s.clone()));
                Ok(s)
            }
            Err(e) => {
                tracing::warn!(
                    "{}: no CAS access ({e}): its Xet files read through the bridge for {} s",
                    blob.repo,
                    RETRY_UNAVAILABLE.as_secs()
                );
                self.sessions
                    .lock()
                    .put(key, SessionSlot::Failed(Instant::now()));
                Err(XetError::Unavailable(e.to_string()))
            }
        }
    }

    /// Bytes `[start, end)` of the Xet file `xet_hash`, every chunk verified. All or nothing.
    pub async fn read(
        self: &Arc<Self>,
        blob: &Blob,
        xet_hash: &str,
        start: u64,
        end: u64,
        piece_len: usize,
    ) -> Result<CasRun, XetError> {
        let file = MerkleHash::from_hex(xet_hash)
            .map_err(|e| XetError::Cas(format!("bad xetHash {xet_hash:?}: {e}")))?;
        if self
            .refused_at
            .lock()
            .is_some_and(|at| at.elapsed() < RETRY_UNAVAILABLE)
        {
            return Err(XetError::Unavailable(
                "the CAS refused a footer range a moment ago".into(),
            ));
        }
        let session = self.session(blob).await?;
        let client = session.client.clone();
        let range = FileRange::new(start, end);
        if let Some(own) = window::window_of(start, end, blob.size) {
            // The run's own window, or the one before it, which covers this half too; a run
            // in that second half asks for its own window ahead of the runs that follow.
            let before = window::window_before(own, end);
            let cached = |w: FileRange| self.plans.cached(&file, w).map(|plan| (w, plan));
            let found = cached(own).or_else(|| before.and_then(cached));
            if found.as_ref().is_none_or(|(w, _)| *w != own) && end - start >= WINDOW_MIN_RUN {
                self.plan_window_later(&client, file, own);
            }
            if let Some(found) = found {
                return self
                    .read_in_window(&client, &file, found, start, end, piece_len)
                    .await;
            }
        }
        let plan = self.plans.get(&client, &file, range, &self.stats).await?;
        let chunks = self
            .fetch_chunks(&client, &file, range, &plan, &plan, false)
            .await?;
        assemble(&plan, &chunks, start, end, piece_len)
    }

    /// `[start, end)` planned from the cached plan of the window `w` holding it (`window.rs`):
    /// its terms cut down with the footers of their xorbs, fetched by our own byte ranges.
    async fn read_in_window(
        self: &Arc<Self>,
        client: &Arc<dyn Client>,
        file: &MerkleHash,
        (w, mut window): (FileRange, Plan),
        start: u64,
        end: u64,
        piece_len: usize,
    ) -> Result<CasRun, XetError> {
        let footers = match self.footers_under(&window, w, start, end, false).await {
            // The window's URL of a xorb was refused: once with a fresh window before taking
            // it for URLs bound to their ranges (the window may be minutes old).
            Err(XetError::Refused(_)) => {
                window = self
                    .plans
                    .replan(client, file, w, &window, &self.stats)
                    .await?;
                self.footers_under(&window, w, start, end, true).await?
            }
            other => other?,
        };
        let plan = window::cut(&window, w.start, &footers, start, end)?;
        let chunks = self
            .fetch_chunks(client, file, w, &window, &plan, true)
            .await?;
        let run = assemble(&plan, &chunks, start, end, piece_len)?;
        self.stats.plans_cut.fetch_add(1, Ordering::Relaxed);
        Ok(run)
    }

    /// The verified footers of the xorbs under `[start, end)` of window `w`; `conclude`: a
    /// refused footer URL means the CAS binds URLs to their ranges (else `Refused`).
    async fn footers_under(
        &self,
        window: &Plan,
        w: FileRange,
        start: u64,
        end: u64,
        conclude: bool,
    ) -> Result<HashMap<MerkleHash, Arc<Footer>>, XetError> {
        let xorbs = window::xorbs_under(window, w.start, start, end)?;
        let footers = xorbs.iter().map(|(xorb, url)| async move {
            Ok::<_, XetError>((*xorb, self.footer(xorb, url, conclude).await?))
        });
        Ok(futures_util::future::try_join_all(footers)
            .await?
            .into_iter()
            .collect())
    }

    /// Asks the CAS for the plan of window `w` in the background, so the runs after this one
    /// are planned from it: once per `RETRY_UNAVAILABLE` however many runs find it missing,
    /// bounded by the token limit like any CAS request of ours.
    fn plan_window_later(
        self: &Arc<Self>,
        client: &Arc<dyn Client>,
        file: MerkleHash,
        w: FileRange,
    ) {
        {
            let mut asked = self.windows_asked.lock();
            let key = (file, w.start);
            if asked
                .get(&key)
                .is_some_and(|at| at.elapsed() < RETRY_UNAVAILABLE)
            {
                return;
            }
            asked.put(key, Instant::now());
        }
        let (me, client) = (self.clone(), client.clone());
        tokio::spawn(async move {
            let asked = me.plans.get(&client, &file, w, &me.stats);
            let failure = match tokio::time::timeout(me.limit, asked).await {
                Ok(Ok(_)) => return,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {:?}", me.limit),
            };
            tracing::debug!(target: "hubfs::xet", "plan of window {}..{}: {failure}", w.start, w.end);
        });
    }

    /// Fetches, in parallel, every xorb range `ranges` names; returns each verified chunk.
    /// `plan` (of `range`) is where the URLs come from, and what a 403 re-plans; `own`: the
    /// byte ranges are ours, cut from it (`window.rs`), not ones it signed.
    async fn fetch_chunks(
        self: &Arc<Self>,
        client: &Arc<dyn Client>,
        file: &MerkleHash,
        range: FileRange,
        plan: &Plan,
        ranges: &QueryReconstructionResponseV2,
        own: bool,
    ) -> Result<HashMap<(MerkleHash, u32), Chunk>, XetError> {
        let mut jobs = Vec::new();
        for (xorb, fetches) in &ranges.xorbs {
            let xorb: MerkleHash = xorb.into();
            for fetch in fetches {
                for r in &fetch.ranges {
                    let job = Fetch {
                        client,
                        file,
                        range,
                        plan,
                        xorb,
                        url: fetch.url.clone(),
                        own,
                    };
                    jobs.push(async move {
                        match &self.chunks {
                            Some(store) => {
                                self.range_via_store(store, &job, r.chunks.start, r.chunks.end)
                                    .await
                            }
                            None => {
                                self.fetch_range(&job, r.chunks.start, r.chunks.end, r.bytes)
                                    .await
                            }
                        }
                    });
                }
            }
        }
        let mut chunks = HashMap::new();
        for part in futures_util::future::try_join_all(jobs).await? {
            chunks.extend(part);
        }
        Ok(chunks)
    }

    /// One xorb range: fetched and decompressed by xet-client, then checked chunk by chunk.
    async fn fetch_range(
        self: &Arc<Self>,
        job: &Fetch<'_>,
        chunk_start: u32,
        chunk_end: u32,
        bytes: HttpRange,
    ) -> Result<Vec<((MerkleHash, u32), Chunk)>, XetError> {
        let footer = self.footer(&job.xorb, &job.url, true);
        let data = self.get_run(job, chunk_start, bytes, job.own, None);
        let (footer, (data, offsets)) = tokio::try_join!(footer, data)?;
        self.check_run(&footer, &job.xorb, chunk_start, chunk_end, &data, &offsets)?;
        let mut out = Vec::with_capacity((chunk_end - chunk_start) as usize);
        let mut at = 0usize;
        for index in chunk_start..chunk_end {
            let len = footer.chunk_lens[index as usize] as usize;
            let hash = footer.chunk_hashes[index as usize];
            out.push(((job.xorb, index), (data.slice(at..at + len), hash)));
            at += len;
        }
        Ok(out)
    }

    /// GETs one run of chunks starting at `chunk_start` (stored bytes `bytes`, inclusive) and
    /// decompresses it: (data, chunk offsets). `own_range`: `bytes` is not one the plan gave
    /// (a sub-run), so a re-plan after a 403 only renews the URL. `unpacked_len`: the run's
    /// decompressed length when the footer is known; xet-client then decompresses into one
    /// buffer of that size instead of a growing one (its reallocations copied each run about
    /// once more and faulted in fresh pages: a tenth of a cold Xet read's CPU). A body that
    /// decompresses to another length, which the chunk check would refuse anyway, is then
    /// refused by xet-client as a transfer error: retried (3 attempts), then the read falls
    /// back to the bridge, not counted in `verify_failures`.
    async fn get_run(
        self: &Arc<Self>,
        job: &Fetch<'_>,
        chunk_start: u32,
        bytes: HttpRange,
        own_range: bool,
        unpacked_len: Option<usize>,
    ) -> Result<(Bytes, Vec<u32>), XetError> {
        let provider = PlanUrl {
            reader: self.clone(),
            client: job.client.clone(),
            file: *job.file,
            range: job.range,
            xorb: job.xorb,
            chunk_start,
            own_range,
            current: Mutex::new((job.plan.clone(), job.url.clone(), bytes)),
        };
        let permit = job
            .client
            .acquire_download_permit()
            .await
            .map_err(|e| XetError::Cas(e.to_string()))?;
        let got = job
            .client
            .get_file_term_data(Box::new(provider), permit, None, unpacked_len)
            .await
            .map_err(|e| XetError::Cas(format!("xorb {}: {e}", job.xorb.hex())))?;
        self.stats.xorb_ranges.fetch_add(1, Ordering::Relaxed);
        self.stats
            .xorb_bytes
            .fetch_add(got.0.len() as u64, Ordering::Relaxed);
        Ok(got)
    }

    /// Checks a fetched run of chunks against the footer, counting the outcome.
    fn check_run(
        &self,
        footer: &Footer,
        xorb: &MerkleHash,
        chunk_start: u32,
        chunk_end: u32,
        data: &[u8],
        offsets: &[u32],
    ) -> Result<(), XetError> {
        if let Err(e) = footer.check_chunks(xorb, chunk_start, chunk_end, data, offsets) {
            self.stats.verify_failures.fetch_add(1, Ordering::Relaxed);
            return Err(e.into());
        }
        self.stats
            .chunks_verified
            .fetch_add(u64::from(chunk_end - chunk_start), Ordering::Relaxed);
        Ok(())
    }

    /// The verified footer of `xorb`, from the LRU, joined while another range fetches it, or
    /// fetched through `url`: one GET per xorb however many of its ranges start at once.
    async fn footer(
        &self,
        xorb: &MerkleHash,
        url: &str,
        conclude: bool,
    ) -> Result<Arc<Footer>, XetError> {
        let (footer, reused) = self
            .footers
            .get(xorb, || async {
                if let Some(footer) = self.stored_footer(xorb) {
                    return Ok((footer, None));
                }
                let bytes = self.hub.xorb_footer(url).await.map_err(|e| match &e {
                    HubError::Forbidden { .. } if conclude => self.footer_refused(xorb, &e),
                    HubError::Forbidden { .. } => {
                        XetError::Refused(format!("footer of xorb {}: {e}", xorb.hex()))
                    }
                    _ => XetError::Cas(format!("footer of xorb {}: {e}", xorb.hex())),
                })?;
                self.stats.footers_fetched.fetch_add(1, Ordering::Relaxed);
                match Footer::parse(xorb, &bytes) {
                    Ok(f) => {
                        if let Some(store) = &self.chunks {
                            store.put_footer(&xorb.hex(), &bytes);
                        }
                        Ok((Arc::new(f), None))
                    }
                    Err(e) => {
                        self.stats.verify_failures.fetch_add(1, Ordering::Relaxed);
                        Err(XetError::from(e))
                    }
                }
            })
            .await?;
        if reused {
            self.stats.footers_reused.fetch_add(1, Ordering::Relaxed);
        }
        Ok(footer)
    }

    /// The CAS refused the suffix range of a xorb footer on a URL its plan just gave: its URLs
    /// serve only the ranges the plan names (as xet-client documents for the real CAS;
    /// docs/xet-plan.md, finding 12). Without footers no chunk can be checked, so Xet files read
    /// through the bridge, and the CAS is tried again after `RETRY_UNAVAILABLE`.
    fn footer_refused(&self, xorb: &MerkleHash, e: &HubError) -> XetError {
        self.stats.ranges_refused.fetch_add(1, Ordering::Relaxed);
        let first = self.refused_at.lock().replace(Instant::now()).is_none();
        if first {
            tracing::warn!(
                "the CAS refused the footer range of xorb {} ({e}): its URLs look bound to the plan's ranges, so chunks cannot be checked; Xet files read through the bridge (the CAS is tried again every {} s)",
                xorb.hex(),
                RETRY_UNAVAILABLE.as_secs()
            );
        }
        XetError::Unavailable(format!("footer of xorb {} refused: {e}", xorb.hex()))
    }

    /// The footer kept in the chunk store, authenticated again (a bad one is removed).
    fn stored_footer(&self, xorb: &MerkleHash) -> Option<Arc<Footer>> {
        let store = self.chunks.as_ref()?;
        let hex = xorb.hex();
        let bytes = store.footer(&hex)?;
        match Footer::parse(xorb, &bytes) {
            Ok(f) => Some(Arc::new(f)),
            Err(e) => {
                tracing::warn!("stored footer of xorb {hex} refused ({e}); fetching it again");
                store.drop_footer(&hex);
                None
            }
        }
    }
}

/// What every fetch of one xorb range shares: the CAS client, the plan it came from (to
/// re-plan on 403) and the signed URL.
struct Fetch<'a> {
    client: &'a Arc<dyn Client>,
    file: &'a MerkleHash,
    range: FileRange,
    plan: &'a Plan,
    xorb: MerkleHash,
    url: String,
    /// The byte ranges fetched are ours, not ones the plan signed (a 403 renews the URL only).
    own: bool,
}

/// Joins the plan's terms from verified chunks and cuts `[start, end)` out of them, into
/// aligned buffers of `piece_len` bytes; lists the chunks used, in order (terms past `end` are
/// not listed).
fn assemble(
    plan: &QueryReconstructionResponseV2,
    chunks: &HashMap<(MerkleHash, u32), Chunk>,
    start: u64,
    end: u64,
    piece_len: usize,
) -> Result<CasRun, XetError> {
    let want = (end - start) as usize;
    let piece_len = piece_len.max(1);
    let skip = plan.offset_into_first_range as usize;
    let first_chunk_at = start
        .checked_sub(skip as u64)
        .ok_or_else(|| XetError::Cas(format!("plan starts {skip} bytes before byte {start}")))?;
    let new_piece =
        |done: usize| super::run_buf::RunWriter::with_capacity((want - done).min(piece_len));
    let mut pieces = Vec::new();
    let mut out = new_piece(0);
    // Bytes placed so far (in `pieces` and `out`).
    let mut done = 0usize;
    let mut used = Vec::new();
    let mut skipped = 0usize;
    for term in &plan.terms {
        let xorb: MerkleHash = (&term.hash).into();
        let mut term_len = 0u64;
        for index in term.range.start..term.range.end {
            let (chunk, hash) = chunks.get(&(xorb, index)).ok_or_else(|| {
                XetError::Cas(format!(
                    "plan has no fetch for xorb {} chunk {index}",
                    xorb.hex()
                ))
            })?;
            term_len += chunk.len() as u64;
            if skipped + done < skip + want {
                used.push((*hash, chunk.len() as u64));
            }
            let mut piece = &chunk[..];
            if skipped < skip {
                let drop = (skip - skipped).min(piece.len());
                skipped += drop;
                piece = &piece[drop..];
            }
            while !piece.is_empty() && done < want {
                if out.remaining() == 0 {
                    pieces.push((out.cut(), out.weak()));
                    out = new_piece(done);
                }
                let take = out.remaining().min(piece.len());
                out.extend_from_slice(&piece[..take]);
                piece = &piece[take..];
                done += take;
            }
        }
        if term_len != u64::from(term.unpacked_length) {
            return Err(XetError::Cas(format!(
                "xorb {} chunks {}..{}: {term_len} bytes, the plan says {}",
                xorb.hex(),
                term.range.start,
                term.range.end,
                term.unpacked_length
            )));
        }
    }
    if done != want {
        return Err(XetError::Cas(format!(
            "reconstruction gave {done} of {want} bytes"
        )));
    }
    if out.pending() > 0 {
        pieces.push((out.cut(), out.weak()));
    }
    Ok(CasRun {
        pieces,
        chunks: used,
        first_chunk_at,
    })
}

/// The signed URL of one xorb range, re-planned when the CAS answers 403 (an expired URL):
/// through the plan cache, so the parallel ranges of one stale plan ask the CAS once.
struct PlanUrl {
    reader: Arc<XetReader>,
    client: Arc<dyn Client>,
    file: MerkleHash,
    range: FileRange,
    xorb: MerkleHash,
    chunk_start: u32,
    /// The byte range is ours (a sub-run of a plan range): keep it, renew only the URL.
    own_range: bool,
    /// The plan the URL came from, the URL and the byte range it was signed for.
    current: Mutex<(Plan, String, HttpRange)>,
}

#[async_trait::async_trait]
impl URLProvider for PlanUrl {
    async fn retrieve_url(&self) -> xet_client::error::Result<(String, Vec<HttpRange>)> {
        let (_, url, bytes) = self.current.lock().clone();
        Ok((url, vec![bytes]))
    }

    async fn refresh_url(&self) -> xet_client::error::Result<()> {
        let stale = self.current.lock().0.clone();
        let plan = self
            .reader
            .plans
            .replan(
                &self.client,
                &self.file,
                self.range,
                &stale,
                &self.reader.stats,
            )
            .await
            .map_err(|e| xet_client::error::ClientError::Other(e.to_string()))?;
        let Some(fetches) = plan
            .xorbs
            .iter()
            .find_map(|(x, fetches)| (MerkleHash::from(x) == self.xorb).then_some(fetches))
        else {
            return Ok(());
        };
        let mut current = self.current.lock();
        if self.own_range {
            // The URL names the xorb, not a range: any of the new plan's URLs for it serves.
            if let Some(f) = fetches.first() {
                let bytes = current.2;
                *current = (plan.clone(), f.url.clone(), bytes);
            }
        } else if let Some((url, bytes)) = fetches.iter().find_map(|f| {
            f.ranges
                .iter()
                .find(|r| r.chunks.start == self.chunk_start)
                .map(|r| (f.url.clone(), r.bytes))
        }) {
            *current = (plan.clone(), url, bytes);
        }
        Ok(())
    }
}

fn nonzero(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

impl ReadPath {
    /// Delivers `[start, end)` from the CAS if the blob is a Xet file and the CAS answers with
    /// bytes that pass their chunk hashes; false (nothing delivered, fallback counted) sends
    /// the caller to the bridge.
    pub(super) async fn serve_from_xet(
        &self,
        blob: &Blob,
        start: u64,
        end: u64,
        on_block: &mut impl FnMut(Bytes),
    ) -> bool {
        let (Some(xet), Some(hash)) = (self.xet.as_ref(), blob.xet_hash.as_deref()) else {
            return false;
        };
        let read = {
            let _permit = match self.permits.acquire().await {
                Ok(p) => p,
                Err(_) => return false,
            };
            let piece_len = super::fetch::run_buf_cap(self.block_size());
            tokio::time::timeout(
                self.cfg.io_timeout,
                xet.read(blob, hash, start, end, piece_len),
            )
            .await
        };
        let run = match read {
            Ok(Ok(run)) => run,
            Ok(Err(e)) => {
                xet.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                // No CAS access was logged once when it began; each run's fallback is not news.
                if matches!(e, XetError::Unavailable(_)) {
                    tracing::debug!(
                        "{}@{}: {} bytes {start}..{end} through the bridge: {e}",
                        blob.repo,
                        blob.commit,
                        blob.path
                    );
                } else {
                    tracing::warn!(
                        "{}@{}: {} bytes {start}..{end} from the CAS failed, reading through the bridge: {e}",
                        blob.repo,
                        blob.commit,
                        blob.path
                    );
                }
                return false;
            }
            Err(_) => {
                xet.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "{}@{}: {} bytes {start}..{end}: no answer from the CAS within {:?}, reading through the bridge",
                    blob.repo,
                    blob.commit,
                    blob.path,
                    self.cfg.io_timeout
                );
                return false;
            }
        };
        // The chunks are the whole-file check of these blocks (chain mode of `verify.rs`).
        self.note_cas_run(blob, start, end, &run);
        let len: u64 = run.pieces.iter().map(|(d, _)| d.len() as u64).sum();
        xet.stats.reads.fetch_add(1, Ordering::Relaxed);
        xet.stats.bytes.fetch_add(len, Ordering::Relaxed);
        // `read.fetches` / `read.bytes_fetched` count what came from the network, whichever way.
        self.stats.fetches.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes_fetched.fetch_add(len, Ordering::Relaxed);
        let bs = self.block_size() as usize;
        for (data, buf) in run.pieces {
            self.spans.keep(buf);
            let mut at = 0;
            while at < data.len() {
                let to = (at + bs).min(data.len());
                on_block(data.slice(at..to));
                at = to;
            }
        }
        true
    }
}
