//! Hub requests by kind and status, with their latency: what `--metrics-addr` exposes beyond
//! the plain totals of [`super::stats`].
//!
//! Every attempt the transport sends (retries and redirect hops included, as in
//! `HubStats::requests`) is counted once, when its answer (or its failure) arrives. Labels are
//! bounded: the kind comes from a fixed list derived from the URL (never the repo or path), the
//! status is the HTTP code or `error`, so a scrape stays small whatever the mount reads.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use url::Url;

/// Labels of a request count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub kind: &'static str,
    /// HTTP status code, or `error` when no answer came (connection, timeout).
    pub status: String,
}

/// Labels of a latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

type LatencyFamily = Family<KindLabel, Histogram, fn() -> Histogram>;

/// Shared by every clone of a client (the families are reference-counted inside).
#[derive(Clone, Debug)]
pub struct RequestMetrics {
    pub requests: Family<RequestLabels, Counter>,
    /// Seconds from sending a request to its answer's head (or its failure).
    pub latency: LatencyFamily,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        RequestMetrics {
            requests: Family::default(),
            // 5 ms .. ~20 s: loopback answers to CDN downloads under load.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 13))
            }),
        }
    }
}

impl RequestMetrics {
    /// Records one attempt to `url` (`same_origin`: sent to the Hub endpoint, not a CDN).
    pub(crate) fn observe(
        &self,
        url: &Url,
        same_origin: bool,
        status: Option<u16>,
        elapsed: Duration,
    ) {
        let kind = if same_origin { kind_of(url) } else { "cdn" };
        let status = status.map_or_else(|| "error".to_string(), |s| s.to_string());
        self.requests
            .get_or_create(&RequestLabels { kind, status })
            .inc();
        self.latency
            .get_or_create(&KindLabel { kind })
            .observe(elapsed.as_secs_f64());
    }
}

/// The kind of a request to the Hub's origin, from its path (hub-api.md): a fixed vocabulary.
fn kind_of(url: &Url) -> &'static str {
    let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    if segments.contains(&"resolve") {
        return "resolve";
    }
    if segments.last() == Some(&"batch") && segments.contains(&"lfs") {
        return "lfs_batch";
    }
    if segments.first() != Some(&"api") {
        return "other";
    }
    match segments.get(1).copied() {
        Some("whoami-v2") | Some("whoami") => return "whoami",
        Some("repos") => return "repos",
        _ => {}
    }
    // /api/{type}s/{ns}/{name}/{op}/... or /api/{type}s/{name}/{op}/... (legacy repo ids).
    for seg in segments.iter().skip(3).take(2) {
        let kind = match *seg {
            "tree" => "tree",
            "paths-info" => "paths_info",
            "revision" => "info",
            "commit" => "commit",
            "preupload" => "preupload",
            "refs" => "refs",
            "branch" => "branch",
            "tag" => "tag",
            "commits" => "commits",
            _ => continue,
        };
        return kind;
    }
    if segments.len() <= 4 {
        return "info";
    }
    "api_other"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(path: &str) -> &'static str {
        kind_of(&Url::parse(&format!("http://h{path}")).unwrap())
    }

    #[test]
    fn kinds_come_from_a_fixed_vocabulary() {
        assert_eq!(kind("/ns/m/resolve/main/a/b.bin"), "resolve");
        assert_eq!(kind("/datasets/ns/d/resolve/abc/x"), "resolve");
        assert_eq!(kind("/api/models/ns/m/tree/main/dir"), "tree");
        assert_eq!(kind("/api/models/gpt2/tree/main"), "tree");
        assert_eq!(kind("/api/datasets/ns/d/paths-info/main"), "paths_info");
        assert_eq!(kind("/api/models/ns/m/revision/main"), "info");
        assert_eq!(kind("/api/models/ns/m"), "info");
        assert_eq!(kind("/api/models/ns/m/commit/main"), "commit");
        assert_eq!(kind("/api/models/ns/m/preupload/main"), "preupload");
        assert_eq!(kind("/ns/m.git/info/lfs/objects/batch"), "lfs_batch");
        assert_eq!(kind("/api/whoami-v2"), "whoami");
        assert_eq!(kind("/api/repos/create"), "repos");
        assert_eq!(kind("/api/models/ns/m/something/else/x"), "api_other");
        assert_eq!(kind("/elsewhere"), "other");
    }

    #[test]
    fn observe_counts_by_kind_and_status() {
        let m = RequestMetrics::default();
        let url = Url::parse("http://h/ns/m/resolve/main/f").unwrap();
        m.observe(&url, true, Some(206), Duration::from_millis(3));
        m.observe(&url, true, Some(206), Duration::from_millis(3));
        m.observe(&url, false, None, Duration::from_millis(3));
        let get = |kind, status: &str| {
            m.requests
                .get_or_create(&RequestLabels {
                    kind,
                    status: status.to_string(),
                })
                .get()
        };
        assert_eq!(get("resolve", "206"), 2);
        assert_eq!(get("cdn", "error"), 1);
    }
}
