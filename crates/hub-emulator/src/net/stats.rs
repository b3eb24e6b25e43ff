//! Request and byte counters behind `GET /_emulator/stats`, so tests and benchmarks can see
//! what a client really fetched.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::Class;

#[derive(Default)]
pub struct Stats {
    requests: AtomicU64,
    /// File-content bytes handed to the socket by resolve and CDN responses.
    bytes_served: AtomicU64,
    content_requests: AtomicU64,
    resolve_requests: AtomicU64,
    cdn_requests: AtomicU64,
    api_requests: AtomicU64,
    upload_requests: AtomicU64,
    commits: AtomicU64,
    lfs_bytes_uploaded: AtomicU64,
    faults_injected: AtomicU64,
    cas_bytes_received: AtomicU64,
    cas_bytes_served: AtomicU64,
    xorb_uploads: AtomicU64,
    xorb_fetches: AtomicU64,
    reconstructions: AtomicU64,
    dedup_queries: AtomicU64,
    routes: Mutex<BTreeMap<&'static str, u64>>,
}

impl Stats {
    pub fn request(&self, c: &Class) {
        self.requests.fetch_add(1, Relaxed);
        for (on, counter) in [
            (c.content, &self.content_requests),
            (c.resolve, &self.resolve_requests),
            (c.cdn, &self.cdn_requests),
            (c.api, &self.api_requests),
            (c.upload, &self.upload_requests),
        ] {
            if on {
                counter.fetch_add(1, Relaxed);
            }
        }
    }

    /// Counts one request of a named route (`tree`, `resolve`, `commit`, ...).
    pub fn route(&self, name: &'static str) {
        *self.routes.lock().entry(name).or_default() += 1;
    }

    pub fn served(&self, n: u64) {
        self.bytes_served.fetch_add(n, Relaxed);
    }

    pub fn commit(&self) {
        self.commits.fetch_add(1, Relaxed);
    }

    pub fn uploaded(&self, n: u64) {
        self.lfs_bytes_uploaded.fetch_add(n, Relaxed);
    }

    /// Request bodies the CAS accepted (xorbs, grant uploads, shards).
    pub fn cas_received(&self, n: u64) {
        self.cas_bytes_received.fetch_add(n, Relaxed);
    }

    /// Xorb bytes handed to the socket.
    pub fn cas_served(&self, n: u64) {
        self.cas_bytes_served.fetch_add(n, Relaxed);
    }

    pub fn cas_xorb_upload(&self) {
        self.xorb_uploads.fetch_add(1, Relaxed);
    }

    pub fn cas_xorb_fetch(&self) {
        self.xorb_fetches.fetch_add(1, Relaxed);
    }

    pub fn cas_reconstruction(&self) {
        self.reconstructions.fetch_add(1, Relaxed);
    }

    pub fn cas_dedup_query(&self) {
        self.dedup_queries.fetch_add(1, Relaxed);
    }

    pub fn fault(&self) {
        self.faults_injected.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Value {
        json!({
            "requests": self.requests.load(Relaxed),
            "bytes_served": self.bytes_served.load(Relaxed),
            "content_requests": self.content_requests.load(Relaxed),
            "resolve_requests": self.resolve_requests.load(Relaxed),
            "cdn_requests": self.cdn_requests.load(Relaxed),
            "api_requests": self.api_requests.load(Relaxed),
            "upload_requests": self.upload_requests.load(Relaxed),
            "commits": self.commits.load(Relaxed),
            "lfs_bytes_uploaded": self.lfs_bytes_uploaded.load(Relaxed),
            "faults_injected": self.faults_injected.load(Relaxed),
            "cas_bytes_received": self.cas_bytes_received.load(Relaxed),
            "cas_bytes_served": self.cas_bytes_served.load(Relaxed),
            "xorb_uploads": self.xorb_uploads.load(Relaxed),
            "xorb_fetches": self.xorb_fetches.load(Relaxed),
            "reconstructions": self.reconstructions.load(Relaxed),
            "dedup_queries": self.dedup_queries.load(Relaxed),
            "routes": *self.routes.lock(),
        })
    }

    pub fn reset(&self) {
        for c in [
            &self.requests,
            &self.bytes_served,
            &self.content_requests,
            &self.resolve_requests,
            &self.cdn_requests,
            &self.api_requests,
            &self.upload_requests,
            &self.commits,
            &self.lfs_bytes_uploaded,
            &self.faults_injected,
            &self.cas_bytes_received,
            &self.cas_bytes_served,
            &self.xorb_uploads,
            &self.xorb_fetches,
            &self.reconstructions,
            &self.dedup_queries,
        ] {
            c.store(0, Relaxed);
        }
        self.routes.lock().clear();
    }
}
