//! What the committer reports: counters, the last error, conflicts and failing paths.

use std::collections::BTreeMap;

use serde::Serialize;

/// A staged change the committer will not commit because the Hub changed the same path.
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    /// Version of the staged change (a newer local change re-queues the path).
    #[serde(skip)]
    pub seq: u64,
    /// The commit the change was made on.
    pub base: String,
    /// The branch head that changed the path meanwhile.
    pub head: String,
}

/// The last failed attempt to commit a change.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    #[serde(skip)]
    pub seq: u64,
    pub error: String,
    /// Retrying will not help without a change on the user's side (auth, invalid path...).
    pub permanent: bool,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct CommitStatus {
    /// Commits that landed.
    pub commits: u64,
    /// Changes (files added, replaced or deleted) that landed.
    pub committed_changes: u64,
    /// Changes in the batch being committed now.
    pub in_flight: usize,
    pub last_error: Option<String>,
    /// Where commits go (branch, or the PR ref).
    pub revision: String,
    pub conflicts: BTreeMap<String, Conflict>,
    pub failures: BTreeMap<String, Failure>,
    /// Bucket mounts: paths another client had changed since this mount listed them, which
    /// our batch then replaced or deleted (last writer wins).
    pub bucket_overwrites: u64,
}
