//! Counters of the shared tier, shown by `hubfs status` and the Prometheus metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct SharedStats {
    /// Lookups that returned every block asked for (one lookup: one ranged GET of a segment).
    pub hits: AtomicU64,
    /// Lookups that found no object (or one known damaged).
    pub misses: AtomicU64,
    /// Bytes served from the tier (checked blocks, including those of lookups cut short).
    pub bytes: AtomicU64,
    /// Lookups that failed (timeout, stall, connection, server error): the Hub served the rest.
    pub errors: AtomicU64,
    /// Lookups abandoned because the body was slower than the Hub would be.
    pub slow: AtomicU64,
    /// Objects that were not what was stored (a bad frame, a short body): deleted, the Hub
    /// served the rest.
    pub corrupt: AtomicU64,
    /// Lookups not sent because the breaker was open.
    pub skipped: AtomicU64,
    /// Entries (segments) written to the tier after a Hub fetch.
    pub fills: AtomicU64,
    pub fill_bytes: AtomicU64,
    /// Writes that failed.
    pub fill_errors: AtomicU64,
    /// Segments written later from the local cache: the fill queue had no room when they were
    /// fetched, or this node fetched only part of them in one run.
    pub deferred: AtomicU64,
    /// Segments never written: the breaker was open, the backlog full, or a block left the
    /// local cache before their turn.
    pub drops: AtomicU64,
    /// Blobs whose entries were deleted after failing their content hash.
    pub purges: AtomicU64,
    /// Fills not written: the entry was already there (another node wrote it).
    pub fill_present: AtomicU64,
    /// Runs shared between the tier and the Hub because the tier was measurably slower
    /// (`split.rs`): the tier served their first part, the Hub their tail at the same time.
    pub split_runs: AtomicU64,
    /// Bytes of split runs (and probes) handed to the Hub.
    pub split_hub_bytes: AtomicU64,
    /// Runs whose tail went to the Hub to measure its rate (a node that had only read from
    /// the tier did not know it).
    pub probes: AtomicU64,
    /// Missing entries this node claimed (`claim.rs`): it fetched them from the Hub for all.
    pub claims: AtomicU64,
    /// Missing entries another node had claimed: this node waited for them.
    pub waits: AtomicU64,
    /// Waits that ended with the entry read from the tier.
    pub wait_hits: AtomicU64,
    /// Waits that ran out before the entry appeared: this node fetched it from the Hub.
    pub wait_timeouts: AtomicU64,
}

impl SharedStats {
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}
