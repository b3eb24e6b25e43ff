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
    /// How large contents were uploaded (counted when uploaded, whether the commit landed).
    pub uploads: UploadCounters,
}

/// Large-file uploads by transport.
#[derive(Debug, Default, Clone, Serialize)]
pub struct UploadCounters {
    /// Files uploaded through Xet.
    pub xet_files: u64,
    /// Their size in total.
    pub xet_file_bytes: u64,
    /// Bytes of them the CAS already had (not sent).
    pub xet_deduped_bytes: u64,
    /// Xorb bytes sent (compressed; what actually went over the wire, shards aside).
    pub xet_xorb_bytes_sent: u64,
    /// Batches that found no Xet (write-token route 404) and uploaded through LFS.
    pub xet_unavailable: u64,
    /// Files uploaded through LFS, and their bytes.
    pub lfs_files: u64,
    pub lfs_bytes: u64,
}

impl UploadCounters {
    pub fn add(&mut self, o: &UploadCounters) {
        self.xet_files += o.xet_files;
        self.xet_file_bytes += o.xet_file_bytes;
        self.xet_deduped_bytes += o.xet_deduped_bytes;
        self.xet_xorb_bytes_sent += o.xet_xorb_bytes_sent;
        self.xet_unavailable += o.xet_unavailable;
        self.lfs_files += o.lfs_files;
        self.lfs_bytes += o.lfs_bytes;
    }
}
