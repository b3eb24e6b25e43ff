//! Metrics a monitor can scrape (`hubfs mount --metrics-addr ADDR:PORT`): the Prometheus text
//! format at `/metrics`.
//!
//! - `status`: the figures of `hubfs status` (bytes, cache, reads, writes, conflicts,
//!   passthrough), read from the same status JSON so both always agree;
//! - the Hub client's requests by kind and status and their latency histograms
//!   ([`crate::hub::RequestMetrics`]), live families shared with the client;
//! - `server`: the bounded HTTP endpoint.

mod server;
mod status;

use prometheus_client::registry::Registry;

pub use server::serve;
pub use status::{StatusCollector, StatusSource};

/// Every metric of a mount, named `hubfs_*`.
pub fn registry(status: StatusSource, hub: Option<crate::hub::RequestMetrics>) -> Registry {
    let mut registry = Registry::with_prefix("hubfs");
    registry.register_collector(Box::new(StatusCollector::new(status)));
    if let Some(hub) = hub {
        registry.register(
            "hub_requests",
            "Hub request attempts (retries and redirect hops included) by kind and status",
            hub.requests,
        );
        registry.register(
            "hub_request_duration_seconds",
            "Time from sending a Hub request to its answer's head, by kind",
            hub.latency,
        );
    }
    registry
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn scrape_renders_status_figures_and_hub_families() {
        let status: StatusSource = Arc::new(|| {
            serde_json::json!({
                "offline": false,
                "read": {"bytes_read": 42},
                "cache": {"hits": 3, "used_bytes": 4096},
                "shared_cache": {"stats": {"hits": 5, "bytes": 640}, "queued_fills": 1},
                "writes": {"pending": 2, "commit": {"conflicts": {"a": {}, "b": {}}}},
            })
        });
        let hub = crate::hub::RequestMetrics::default();
        let url = url::Url::parse("http://h/ns/m/resolve/main/f").unwrap();
        hub.observe(&url, true, Some(200), Duration::from_millis(2));
        let mut text = String::new();
        let reg = registry(status, Some(hub));
        prometheus_client::encoding::prometheus_text::encode(&mut text, &reg).unwrap();
        for line in [
            "hubfs_read_served_bytes_total 42",
            "hubfs_cache_hits_total 3",
            "hubfs_cache_used_bytes 4096",
            "hubfs_shared_cache_hits_total 5",
            "hubfs_shared_cache_served_bytes_total 640",
            "hubfs_shared_cache_queued_fills 1",
            "hubfs_writes_pending 2",
            "hubfs_commit_conflicts 2",
            "hubfs_offline 0",
            "hubfs_hub_requests_total{kind=\"resolve\",status=\"200\"} 1",
            "hubfs_hub_request_duration_seconds_count{kind=\"resolve\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        // Absent figures are left out, not reported as 0.
        assert!(!text.contains("hubfs_commits_total"));
    }
}
