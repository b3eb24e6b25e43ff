//! The work of `hubfs cache rm` and `gc` on one opened cache root, shared by the daemon that
//! owns a root (asked over its control socket) and by the command on a root nobody owns.
//! Requests and reports are plain serde types: they travel as JSON on the control socket.

use serde::{Deserialize, Serialize};

use crate::cache::{BlobRecord, BlockCache, CachedBlob, Inventory, Removal};

/// Which blobs `hubfs cache rm` removes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RmRequest {
    /// Every blob, whatever it is.
    #[serde(default)]
    pub all: bool,
    /// Blobs cached for this repo (`ns/name`, `datasets/ns/name`, `spaces/ns/name`).
    #[serde(default)]
    pub repo: Option<String>,
    /// Only the repo's files under this directory (or this file).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Only the repo's files whose path matches one of these globs (`*` any run, `?` one).
    #[serde(default)]
    pub globs: Vec<String>,
}

impl RmRequest {
    /// Whether a blob with this record (None: unknown blob) is to be removed.
    pub fn matches(&self, record: Option<&BlobRecord>) -> bool {
        if self.all {
            return true;
        }
        let (Some(repo), Some(record)) = (&self.repo, record) else {
            return false;
        };
        record.refs.iter().any(|r| {
            let in_dir = self.prefix.as_deref().is_none_or(|p| {
                r.path == p || (r.path.starts_with(p) && r.path[p.len()..].starts_with('/'))
            });
            r.repo == *repo
                && in_dir
                && (self.globs.is_empty()
                    || self.globs.iter().any(|g| {
                        crate::commit::ignore::glob_match(g.as_bytes(), r.path.as_bytes())
                    }))
        })
    }
}

/// What `hubfs cache gc` does to one root.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GcRequest {
    /// Evict least recently used data until the root holds at most this many bytes.
    pub target_bytes: Option<u64>,
    /// Remove blobs not used for this many seconds.
    pub older_than_secs: Option<u64>,
}

/// One blob named in a report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub key: String,
    pub size: u64,
    pub cached_bytes: u64,
    /// `repo/path` of its most recent name, if known.
    pub name: Option<String>,
}

/// What `rm` or `gc` did to one root.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub removed: Vec<Item>,
    /// Matched but kept: an open file reads its data file directly.
    pub skipped_in_use: Vec<Item>,
    pub freed_bytes: u64,
    pub used_before: u64,
    pub used_after: u64,
    /// Records of blobs no longer cached that were deleted.
    pub records_pruned: usize,
}

fn item(b: &CachedBlob, record: Option<&BlobRecord>) -> Item {
    Item {
        key: format!("{}:{}", b.key.kind_name(), b.key),
        size: b.size,
        cached_bytes: b.cached_bytes,
        name: record
            .and_then(|r| r.refs.first())
            .map(|r| format!("{}/{}", r.repo, r.path)),
    }
}

/// Removes every blob `req` matches, except pinned ones (reported as in use).
pub fn remove(cache: &BlockCache, inventory: &Inventory, req: &RmRequest) -> Report {
    let mut report = Report {
        used_before: cache.used_bytes(),
        ..Report::default()
    };
    for b in cache.blobs() {
        let record = inventory.get(&b.key);
        if !req.matches(record.as_ref()) {
            continue;
        }
        remove_one(cache, inventory, &b, record.as_ref(), &mut report);
    }
    finish(cache, inventory, report)
}

fn remove_one(
    cache: &BlockCache,
    inventory: &Inventory,
    b: &CachedBlob,
    record: Option<&BlobRecord>,
    report: &mut Report,
) {
    match cache.remove_unless_pinned(&b.key) {
        Removal::Removed(_) => {
            inventory.forget(&b.key);
            report.removed.push(item(b, record));
        }
        Removal::Pinned => report.skipped_in_use.push(item(b, record)),
        Removal::Absent => {}
    }
}

/// Removes blobs unused for `older_than_secs`, then evicts down to `target_bytes`.
pub fn gc(cache: &BlockCache, inventory: &Inventory, req: &GcRequest, now_secs: u64) -> Report {
    let mut report = Report {
        used_before: cache.used_bytes(),
        ..Report::default()
    };
    if let Some(age) = req.older_than_secs {
        let cutoff = now_secs.saturating_sub(age);
        for b in cache.blobs() {
            if b.last_used < cutoff {
                let record = inventory.get(&b.key);
                remove_one(cache, inventory, &b, record.as_ref(), &mut report);
            }
        }
    }
    if let Some(target) = req.target_bytes {
        cache.evict_down_to(target);
    }
    finish(cache, inventory, report)
}

fn finish(cache: &BlockCache, inventory: &Inventory, mut report: Report) -> Report {
    report.records_pruned = inventory.prune(|k| cache.holds(k)).unwrap_or_else(|e| {
        tracing::warn!("pruning blob records: {e}");
        0
    });
    report.used_after = cache.used_bytes();
    report.freed_bytes = report.used_before.saturating_sub(report.used_after);
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::BlobRef;

    #[test]
    fn rm_filters_by_repo_directory_and_glob() {
        let rec = BlobRecord {
            size: 1,
            refs: vec![BlobRef {
                repo: "datasets/ns/d".into(),
                commit: "c".into(),
                path: "data/train/part-1.parquet".into(),
            }],
        };
        let req = |repo: &str, prefix: Option<&str>, globs: &[&str]| RmRequest {
            all: false,
            repo: Some(repo.into()),
            prefix: prefix.map(Into::into),
            globs: globs.iter().map(|g| g.to_string()).collect(),
        };
        assert!(req("datasets/ns/d", None, &[]).matches(Some(&rec)));
        assert!(!req("ns/d", None, &[]).matches(Some(&rec)));
        assert!(req("datasets/ns/d", Some("data"), &[]).matches(Some(&rec)));
        assert!(req("datasets/ns/d", Some("data/train"), &["*.parquet"]).matches(Some(&rec)));
        assert!(!req("datasets/ns/d", Some("dat"), &[]).matches(Some(&rec)));
        assert!(!req("datasets/ns/d", None, &["*.json"]).matches(Some(&rec)));
        assert!(!req("datasets/ns/d", None, &[]).matches(None));
        let all = RmRequest {
            all: true,
            ..RmRequest::default()
        };
        assert!(all.matches(None));
    }
}
