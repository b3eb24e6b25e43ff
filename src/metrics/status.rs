//! The figures of `hubfs status`, read at each scrape from the very JSON the control socket
//! answers, so a scrape and `hubfs status --json` taken at the same moment agree by
//! construction.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use serde_json::Value;

/// How a status figure becomes a sample.
#[derive(Clone, Copy)]
enum Kind {
    /// Monotonic since the mount started.
    Counter,
    /// A level that goes up and down.
    Gauge,
    /// A gauge counting the entries of a JSON object (conflicts, failures).
    Entries,
}

/// (JSON pointer in the status, metric name without the `hubfs_` prefix, help, kind).
/// Figures absent from a mount's status (no Hub client offline, no writes read-only) are left
/// out of its scrape rather than reported as 0.
const FIGURES: &[(&str, &str, &str, Kind)] = &[
    // The Hub client (totals; by kind and status in hubfs_hub_requests_total).
    (
        "/hub/retries",
        "hub_retries",
        "Hub request attempts that retried a failed one",
        Kind::Counter,
    ),
    (
        "/hub/bytes_received",
        "hub_received_bytes",
        "Response body bytes received from the Hub and its CDN",
        Kind::Counter,
    ),
    (
        "/hub/bytes_sent",
        "hub_sent_bytes",
        "Request body bytes sent (uploads, JSON)",
        Kind::Counter,
    ),
    (
        "/hub/errors",
        "hub_errors",
        "Hub operations that ended in an error",
        Kind::Counter,
    ),
    (
        "/hub/location_hits",
        "hub_location_hits",
        "Range reads sent straight to a remembered CDN location",
        Kind::Counter,
    ),
    (
        "/hub/location_refreshes",
        "hub_location_refreshes",
        "Remembered CDN locations dropped (expired or refused)",
        Kind::Counter,
    ),
    (
        "/hub/invalid_entries",
        "hub_invalid_entries",
        "Entries the Hub listed that were skipped as invalid (bad names, outside the directory)",
        Kind::Counter,
    ),
    // The read path.
    (
        "/read/reads",
        "read_requests",
        "Reads served to applications",
        Kind::Counter,
    ),
    (
        "/read/bytes_read",
        "read_served_bytes",
        "Bytes served to applications by reads",
        Kind::Counter,
    ),
    (
        "/read/block_hits",
        "read_block_hits",
        "Blocks a read found in the cache",
        Kind::Counter,
    ),
    (
        "/read/block_misses",
        "read_block_misses",
        "Blocks a read had to fetch",
        Kind::Counter,
    ),
    (
        "/read/fetches",
        "read_fetches",
        "Range fetches from the Hub",
        Kind::Counter,
    ),
    (
        "/read/bytes_fetched",
        "read_fetched_bytes",
        "Bytes fetched from the Hub by reads",
        Kind::Counter,
    ),
    (
        "/read/fetch_resumes",
        "read_fetch_resumes",
        "Fetches resumed after a broken transfer",
        Kind::Counter,
    ),
    (
        "/read/fetch_failures",
        "read_fetch_failures",
        "Fetches that failed for the reader",
        Kind::Counter,
    ),
    (
        "/read/prefetched_bytes",
        "read_prefetched_bytes",
        "Bytes fetched ahead of reads",
        Kind::Counter,
    ),
    (
        "/read/fresh_hits",
        "read_fresh_hits",
        "Blocks served from read-ahead held in memory",
        Kind::Counter,
    ),
    (
        "/read/cache_reads",
        "read_cache_reads",
        "Blocks a read took from the cache file",
        Kind::Counter,
    ),
    (
        "/read/replies_joined",
        "read_replies_joined",
        "Replies over several blocks sent from one buffer without a copy",
        Kind::Counter,
    ),
    (
        "/read/replies_copied",
        "read_replies_copied",
        "Replies over several blocks copied into one buffer",
        Kind::Counter,
    ),
    (
        "/read/hash_read_back",
        "read_hash_read_back",
        "Blocks the in-order hash read back from the cache file",
        Kind::Counter,
    ),
    (
        "/read/run_bufs_recycled",
        "read_run_bufs_recycled",
        "Fetch buffers recycled from the pool, already mapped",
        Kind::Counter,
    ),
    (
        "/read/run_bufs_fresh",
        "read_run_bufs_fresh",
        "Fetch buffers the pool mapped fresh, paying a page fault per 4 KiB",
        Kind::Counter,
    ),
    (
        "/read/run_bufs_allocated",
        "read_run_bufs_allocated",
        "Fetch buffers too short for the pool, from the allocator",
        Kind::Counter,
    ),
    (
        "/read/hash_paced",
        "read_hash_paced",
        "Reads held until the in-order hash came close enough",
        Kind::Counter,
    ),
    (
        "/read/prefetch_deferred",
        "read_prefetch_deferred",
        "Read-ahead requests held back by the read-ahead memory budget",
        Kind::Counter,
    ),
    (
        "/read/context_runs",
        "read_context_runs",
        "Sequential runs found by the bytes cached just before a read",
        Kind::Counter,
    ),
    (
        "/read_ahead/bytes",
        "read_ahead_bytes",
        "Read-ahead bytes in flight or waiting in memory for their reader",
        Kind::Gauge,
    ),
    (
        "/read/verified_blobs",
        "read_verified_blobs",
        "Blobs checked against their hash",
        Kind::Counter,
    ),
    (
        "/read/verify_failures",
        "read_verify_failures",
        "Blobs that failed their hash check",
        Kind::Counter,
    ),
    (
        "/inflight_blocks",
        "inflight_fetches",
        "Blocks being fetched from the Hub now",
        Kind::Gauge,
    ),
    // The Xet chunk store (absent offline or with --no-xet).
    (
        "/chunks/hits",
        "chunk_store_hits",
        "Xet chunks served from the chunk store (verified)",
        Kind::Counter,
    ),
    (
        "/chunks/hit_bytes",
        "chunk_store_hit_bytes",
        "Bytes of Xet chunks served from the chunk store",
        Kind::Counter,
    ),
    (
        "/chunks/misses",
        "chunk_store_misses",
        "Xet chunks needed and fetched from the CAS",
        Kind::Counter,
    ),
    (
        "/chunks/fetched_bytes",
        "chunk_store_fetched_bytes",
        "Decompressed bytes fetched from the CAS into the chunk store",
        Kind::Counter,
    ),
    (
        "/chunks/corrupt",
        "chunk_store_corrupt",
        "Chunks read from the chunk store that failed their hash (fetched again)",
        Kind::Counter,
    ),
    // The shared cache tier (absent without --shared-cache).
    (
        "/shared_cache/stats/hits",
        "shared_cache_hits",
        "Shared cache lookups (ranged GETs of a segment) that returned every block asked for",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/misses",
        "shared_cache_misses",
        "Shared cache lookups that found no entry",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/bytes",
        "shared_cache_served_bytes",
        "Bytes served from the shared cache",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/errors",
        "shared_cache_errors",
        "Shared cache lookups that failed or timed out (the Hub served the rest)",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/slow",
        "shared_cache_slow",
        "Shared cache lookups abandoned for being slower than the Hub (the Hub served the rest)",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/corrupt",
        "shared_cache_corrupt",
        "Shared cache entries refused by their check and deleted",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/skipped",
        "shared_cache_skipped",
        "Shared cache lookups skipped while its circuit breaker was open",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/fills",
        "shared_cache_fills",
        "Segments written to the shared cache after a Hub fetch",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/fill_bytes",
        "shared_cache_written_bytes",
        "Bytes written to the shared cache",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/fill_errors",
        "shared_cache_fill_errors",
        "Shared cache writes that failed",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/drops",
        "shared_cache_drops",
        "Segments not written to the shared cache (backlog full or breaker open)",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/purges",
        "shared_cache_purges",
        "Files whose shared cache entries were deleted after failing their hash",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/deferred",
        "shared_cache_deferred",
        "Segments written later from the local cache (fill queue full, or fetched in parts)",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/fill_present",
        "shared_cache_fill_present",
        "Shared cache writes skipped because the entry was already there",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/split_runs",
        "shared_cache_split_runs",
        "Runs shared between a slower shared cache (head) and the Hub (tail)",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/split_hub_bytes",
        "shared_cache_split_hub_bytes",
        "Bytes of split runs and probes served by the Hub",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/claims",
        "shared_cache_claims",
        "Missing shared cache entries this node claimed and fetched from the Hub",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/waits",
        "shared_cache_waits",
        "Missing shared cache entries another node had claimed (waited for)",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/wait_hits",
        "shared_cache_wait_hits",
        "Waits for another node's entry that ended reading it from the shared cache",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/wait_timeouts",
        "shared_cache_wait_timeouts",
        "Waits for another node's entry that ran out (fetched from the Hub)",
        Kind::Counter,
    ),
    (
        "/shared_cache/stats/probes",
        "shared_cache_probes",
        "Runs whose tail was read from the Hub to measure its rate",
        Kind::Counter,
    ),
    (
        "/shared_cache/backlog",
        "shared_cache_backlog",
        "Segments waiting to be written later from the local cache",
        Kind::Gauge,
    ),
    (
        "/shared_cache/queued_fills",
        "shared_cache_queued_fills",
        "Segments queued or being written to the shared cache",
        Kind::Gauge,
    ),
    // The block cache.
    (
        "/cache/hits",
        "cache_hits",
        "Block cache lookups that returned bytes",
        Kind::Counter,
    ),
    (
        "/cache/misses",
        "cache_misses",
        "Block cache lookups that found nothing",
        Kind::Counter,
    ),
    (
        "/cache/evictions",
        "cache_evictions",
        "Regions or blobs evicted to stay under the cap",
        Kind::Counter,
    ),
    (
        "/cache/corrupt_dropped",
        "cache_corrupt_dropped",
        "Blocks dropped for a bad checksum",
        Kind::Counter,
    ),
    (
        "/cache/blocks_written",
        "cache_blocks_written",
        "Blocks stored in the cache",
        Kind::Counter,
    ),
    (
        "/cache/file_opens",
        "cache_file_opens",
        "Blob files opened by the cache",
        Kind::Counter,
    ),
    (
        "/cache/used_bytes",
        "cache_used_bytes",
        "Bytes on disk accounted against the cache cap",
        Kind::Gauge,
    ),
    (
        "/cache/max_bytes",
        "cache_max_bytes",
        "The cache cap",
        Kind::Gauge,
    ),
    (
        "/cache/pinned_bytes",
        "cache_pinned_bytes",
        "Cache bytes of blobs handed out (pinned)",
        Kind::Gauge,
    ),
    (
        "/cache/pinned_blobs",
        "cache_pinned_blobs",
        "Blobs with at least one pin",
        Kind::Gauge,
    ),
    // Passthrough opens (the kernel reads the cache file itself).
    (
        "/passthrough/opens",
        "passthrough_opens",
        "Opens served by FUSE passthrough",
        Kind::Counter,
    ),
    (
        "/passthrough/served_fallbacks",
        "passthrough_fallbacks",
        "Passthrough opens that fell back to reads through hubfs",
        Kind::Counter,
    ),
    (
        "/passthrough/kept_served",
        "passthrough_kept_served",
        "Opens of cached files kept served: the kernel's page cache of the inode is warm",
        Kind::Counter,
    ),
    (
        "/passthrough/inodes",
        "passthrough_inodes",
        "Inodes with a passthrough backing now",
        Kind::Gauge,
    ),
    // Writes (writable mounts).
    (
        "/writes/pending",
        "writes_pending",
        "Changed paths waiting to be committed",
        Kind::Gauge,
    ),
    (
        "/writes/overlay_entries",
        "writes_overlay_entries",
        "Local changes shown over the Hub's tree",
        Kind::Gauge,
    ),
    (
        "/writes/commit/in_flight",
        "commit_in_flight",
        "Changes in the commit being made now",
        Kind::Gauge,
    ),
    (
        "/writes/commit/commits",
        "commits",
        "Commits that landed",
        Kind::Counter,
    ),
    (
        "/writes/commit/committed_changes",
        "committed_changes",
        "Changes (files added, replaced, deleted) that landed",
        Kind::Counter,
    ),
    (
        "/writes/commit/conflicts",
        "commit_conflicts",
        "Staged changes held back because the Hub changed the path",
        Kind::Entries,
    ),
    (
        "/writes/commit/failures",
        "commit_failures",
        "Paths whose last commit attempt failed",
        Kind::Entries,
    ),
    // The mount itself.
    ("/inodes", "inodes", "Inodes the mount knows", Kind::Gauge),
    (
        "/open_files",
        "open_files",
        "Files open through the mount",
        Kind::Gauge,
    ),
];

/// The status of the mount, as `hubfs status --json` reports it.
pub type StatusSource = Arc<dyn Fn() -> Value + Send + Sync>;

/// Emits [`FIGURES`] from a fresh status at every scrape.
pub struct StatusCollector {
    source: StatusSource,
}

impl StatusCollector {
    pub fn new(source: StatusSource) -> StatusCollector {
        StatusCollector { source }
    }
}

impl std::fmt::Debug for StatusCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusCollector")
    }
}

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let status = (self.source)();
        for (pointer, name, help, kind) in FIGURES {
            let Some(value) = status.pointer(pointer) else {
                continue;
            };
            match kind {
                Kind::Counter => {
                    let Some(v) = value.as_u64() else { continue };
                    let metric =
                        encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
                    ConstCounter::new(v).encode(metric)?;
                }
                Kind::Gauge => {
                    let Some(v) = value.as_i64() else { continue };
                    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                    ConstGauge::new(v).encode(metric)?;
                }
                Kind::Entries => {
                    let Some(entries) = value.as_object() else {
                        continue;
                    };
                    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                    ConstGauge::new(entries.len() as i64).encode(metric)?;
                }
            }
        }
        let offline = status.get("offline").and_then(Value::as_bool);
        if let Some(offline) = offline {
            let help = "1 when the mount serves the cache only (no Hub client)";
            let metric = encoder.encode_descriptor("offline", help, None, MetricType::Gauge)?;
            ConstGauge::new(i64::from(offline)).encode(metric)?;
        }
        Ok(())
    }
}
