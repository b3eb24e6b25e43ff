//! Counters of the shared tier, shown by `hubfs status` and the Prometheus metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct SharedStats {
    /// Lookups that returned verified bytes.
    pub hits: AtomicU64,
    /// Lookups that found no object.
    pub misses: AtomicU64,
    /// Bytes served from the tier.
    pub bytes: AtomicU64,
    /// Lookups that failed (timeout, connection, server error): the Hub served instead.
    pub errors: AtomicU64,
    /// Objects that were not what was stored (bad trailer): deleted, the Hub served instead.
    pub corrupt: AtomicU64,
    /// Lookups not sent because the breaker was open.
    pub skipped: AtomicU64,
    /// Blocks written to the tier after a Hub fetch.
    pub fills: AtomicU64,
    pub fill_bytes: AtomicU64,
    /// Writes that failed.
    pub fill_errors: AtomicU64,
    /// Blocks the fill queue had no room for when fetched: written later from the local cache.
    pub deferred: AtomicU64,
    /// Blocks never written: the breaker was open, the backlog full, or the block left the
    /// local cache before its turn.
    pub drops: AtomicU64,
    /// Blobs whose entries were deleted after failing their content hash.
    pub purges: AtomicU64,
}

impl SharedStats {
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}
