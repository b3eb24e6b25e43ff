//! The shared cache tier: an S3-compatible bucket that every node of a cluster reads before the
//! Hub and fills after it, so N nodes mounting the same repos fetch each byte from the Hub about
//! once. The only code speaking S3 (through object_store's client: SigV4, no hand-written
//! signing).
//!
//! What it promises the read path (`read/shared.rs` is the one place that uses it):
//! - **Never wrong bytes.** An object is accepted only if its trailer matches its name and bytes
//!   (`key.rs`); anything else is counted, deleted in the background, and reported as a miss.
//!   Accepted bytes then go through the same in-order content hash as Hub bytes.
//! - **Never a failed or much slower read.** A lookup gives up after a short first-byte timeout
//!   and a bounded total; errors feed a circuit breaker that skips the tier for a while
//!   (`breaker.rs`). Every failure is a miss: the Hub serves.
//! - **Never a slower reader.** Fills are queued (bounded) and written by a few background
//!   tasks; when the queue is full the read path remembers the block's name and writes it later
//!   from the local cache (`read/shared.rs`).
//! - **Bounded**: lookups in flight (a semaphore), the fill queue, its writers.

mod breaker;
pub mod config;
pub mod key;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use tokio::sync::{mpsc, Semaphore};

pub use breaker::Breaker;
pub use config::{Resolved, SharedCacheOptions};
pub use key::SharedKey;
pub use stats::SharedStats;

/// Lookups in flight at once (each holds one block in memory).
const MAX_LOOKUPS: usize = 32;
/// Blocks waiting to be written: 16 MiB of 128 KiB blocks. Past it, fills are dropped.
const FILL_QUEUE: usize = 128;
/// Background writers draining the queue.
const FILL_WRITERS: usize = 8;
/// Longest a lookup may take in all, body included (the first-byte timeout is shorter).
const LOOKUP_TOTAL: Duration = Duration::from_secs(5);
/// Longest a fill or a delete may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Failures in a row that open the breaker, and how long it stays open.
const BREAKER_THRESHOLD: u32 = 3;
const BREAKER_PAUSE: Duration = Duration::from_secs(30);

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// Bytes stored by a node for this key (trailer checked).
    Hit(Bytes),
    /// Nothing usable: no object, a bad one, an error, a timeout or an open breaker.
    Miss,
}

struct Fill {
    key: SharedKey,
    data: Bytes,
}

pub struct SharedCache {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// `s3://bucket/prefix`, for status.
    location: String,
    breaker: Arc<Breaker>,
    lookups: Semaphore,
    fills: mpsc::Sender<Fill>,
    first_byte_timeout: Duration,
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
            first_byte_timeout: cfg.first_byte_timeout,
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

    /// Looks `key` up. Never fails and never waits past the timeouts: every problem is a miss.
    pub async fn get(&self, key: &SharedKey) -> Lookup {
        if !self.breaker.allow() {
            SharedStats::bump(&self.stats.skipped);
            return Lookup::Miss;
        }
        let Ok(_permit) = self.lookups.acquire().await else {
            return Lookup::Miss;
        };
        let name = key.object_name(&self.prefix);
        let path = ObjPath::from(name.as_str());
        let answer = tokio::time::timeout(self.first_byte_timeout, self.store.get(&path)).await;
        let body = match answer {
            Ok(Ok(r)) => tokio::time::timeout(LOOKUP_TOTAL, self.body(r, key.data_len())).await,
            Ok(Err(object_store::Error::NotFound { .. })) => {
                self.breaker.success();
                SharedStats::bump(&self.stats.misses);
                return Lookup::Miss;
            }
            Ok(Err(e)) => return self.failed(&name, &e.to_string()),
            Err(_) => return self.failed(&name, "no answer within the first-byte timeout"),
        };
        let object = match body {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return self.failed(&name, &e.to_string()),
            Err(_) => return self.failed(&name, "body too slow"),
        };
        self.breaker.success();
        match key::unframe(key, &name, object) {
            Some(data) => {
                SharedStats::bump(&self.stats.hits);
                SharedStats::add(&self.stats.bytes, data.len() as u64);
                Lookup::Hit(data)
            }
            None => {
                SharedStats::bump(&self.stats.corrupt);
                tracing::warn!("shared cache: {name} is not what hubfs stored; deleting it");
                self.delete_in_background(path);
                Lookup::Miss
            }
        }
    }

    /// Reads a lookup's body, giving up when the store stalls for longer than the first-byte
    /// timeout between two pieces: a store that hangs mid-body (a stopped node, a dropped
    /// link) costs the reader one short timeout, not the whole `LOOKUP_TOTAL`.
    async fn body(
        &self,
        r: object_store::GetResult,
        expect: usize,
    ) -> Result<Bytes, object_store::Error> {
        let mut stream = r.into_stream();
        let want = expect + key::TRAILER;
        let mut buf = bytes::BytesMut::with_capacity(want);
        loop {
            match tokio::time::timeout(self.first_byte_timeout, stream.next()).await {
                Ok(Some(piece)) => {
                    let piece = piece?;
                    // A longer object is wrong anyway (the trailer check refuses it): stop
                    // reading rather than buffer whatever a hostile store sends.
                    if buf.len() + piece.len() > want {
                        return Ok(Bytes::new());
                    }
                    buf.extend_from_slice(&piece);
                }
                Ok(None) => return Ok(buf.freeze()),
                Err(_) => {
                    return Err(object_store::Error::Generic {
                        store: "shared cache",
                        source: "the store stalled mid-body".into(),
                    })
                }
            }
        }
    }

    fn failed(&self, name: &str, why: &str) -> Lookup {
        SharedStats::bump(&self.stats.errors);
        self.breaker.failure();
        tracing::debug!("shared cache: lookup of {name} failed: {why}");
        if self.breaker.is_open() {
            tracing::warn!(
                "shared cache {} unavailable ({why}): reading from the Hub for {BREAKER_PAUSE:?}",
                self.location
            );
        }
        Lookup::Miss
    }

    /// Queues `data` (verified Hub bytes for `key`) to be written; never waits. An open
    /// breaker drops it (counted). False: the queue is full and nothing was done (the caller
    /// may defer the block, see `read/shared.rs`, or count it dropped with [`Self::dropped`]).
    pub fn try_fill(&self, key: SharedKey, data: Bytes) -> bool {
        if self.breaker.is_open() {
            SharedStats::bump(&self.stats.drops);
            return true;
        }
        self.fills.try_send(Fill { key, data }).is_ok()
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
        if !self.breaker.allow() {
            SharedStats::bump(&self.stats.drops);
            return;
        }
        let name = fill.key.object_name(&self.prefix);
        let trailer = key::trailer(&name, &fill.data);
        let len = fill.data.len() as u64;
        let payload = PutPayload::from_iter([fill.data, trailer]);
        let path = ObjPath::from(name.as_str());
        let put = self.store.put(&path, payload);
        match tokio::time::timeout(WRITE_TIMEOUT, put).await {
            Ok(Ok(_)) => {
                self.breaker.success();
                SharedStats::bump(&self.stats.fills);
                SharedStats::add(&self.stats.fill_bytes, len);
            }
            Ok(Err(e)) => {
                self.breaker.failure();
                SharedStats::bump(&self.stats.fill_errors);
                tracing::debug!("shared cache: writing {name} failed: {e}");
            }
            Err(_) => {
                self.breaker.failure();
                SharedStats::bump(&self.stats.fill_errors);
                tracing::debug!("shared cache: writing {name} timed out");
            }
        }
    }

    fn delete_in_background(&self, path: ObjPath) {
        let store = self.store.clone();
        tokio::spawn(async move {
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
            "queued_fills": FILL_QUEUE - self.fills.capacity(),
            "stats": &*self.stats,
        })
    }
}
