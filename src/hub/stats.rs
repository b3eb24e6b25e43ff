//! Counters of what the client did on the network, readable while it runs.
//!
//! Atomics shared by every clone of a client; [`HubStats`] is a plain snapshot of them, for
//! `hubfs status`, logs and tests ("this read moved N bytes").

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the client's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HubStats {
    /// HTTP requests sent (every attempt and every redirect hop counts).
    pub requests: u64,
    /// Attempts that were retries of a failed one.
    pub retries: u64,
    /// Response body bytes received (file content and JSON).
    pub bytes_received: u64,
    /// Request body bytes sent (uploads and JSON).
    pub bytes_sent: u64,
    /// Operations that ended in an error for the caller.
    pub errors: u64,
    /// Range reads that went straight to a remembered CDN location.
    pub location_hits: u64,
    /// Remembered CDN locations dropped because they expired or were refused.
    pub location_refreshes: u64,
    /// Entries the Hub listed (tree, paths-info, siblings) that were skipped as invalid:
    /// names no local filesystem can show (`.`, `..`, NUL, over 255 bytes...) or outside
    /// the directory asked for.
    pub invalid_entries: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    errors: AtomicU64,
    location_hits: AtomicU64,
    location_refreshes: AtomicU64,
    invalid_entries: AtomicU64,
}

impl Counters {
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    pub fn received(&self, n: u64) {
        self.bytes_received.fetch_add(n, Ordering::Relaxed);
    }
    pub fn sent(&self, n: u64) {
        self.bytes_sent.fetch_add(n, Ordering::Relaxed);
    }
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
    pub fn location_hit(&self) {
        self.location_hits.fetch_add(1, Ordering::Relaxed);
    }
    pub fn location_refresh(&self) {
        self.location_refreshes.fetch_add(1, Ordering::Relaxed);
    }
    pub fn invalid_entries(&self, n: u64) {
        self.invalid_entries.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HubStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HubStats {
            requests: get(&self.requests),
            retries: get(&self.retries),
            bytes_received: get(&self.bytes_received),
            bytes_sent: get(&self.bytes_sent),
            errors: get(&self.errors),
            location_hits: get(&self.location_hits),
            location_refreshes: get(&self.location_refreshes),
            invalid_entries: get(&self.invalid_entries),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reflects_counts() {
        let c = Counters::default();
        c.request();
        c.request();
        c.retry();
        c.received(10);
        c.received(5);
        c.sent(3);
        c.error();
        c.location_hit();
        c.location_refresh();
        c.invalid_entries(2);
        assert_eq!(
            c.snapshot(),
            HubStats {
                requests: 2,
                retries: 1,
                bytes_received: 15,
                bytes_sent: 3,
                errors: 1,
                location_hits: 1,
                location_refreshes: 1,
                invalid_entries: 2,
            }
        );
    }
}
