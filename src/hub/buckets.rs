//! Storage Buckets: the bucket variants of the metadata calls, and the batch API.
//!
//! A bucket (`RepoType::Bucket`, `buckets/NS/NAME`) is a flat set of Xet files under paths:
//! no git, no commits, no revisions. The calls the rest of hubfs makes on a repo
//! (`repo_info`, `list_tree`, `paths_info`, `xet_read_token`, `resolve_url`) dispatch here
//! for a bucket, so snapshots and the read path need no bucket-specific HTTP:
//!
//! - info: `GET /api/buckets/{id}`; there is no commit, so the answer gets a synthetic `sha`,
//!   [`bucket_state`] of its `updatedAt` (a snapshot of a bucket is "the bucket as listed
//!   after that update", and a refresh sees a new one when the bucket changed);
//! - tree: `GET /api/buckets/{id}/tree[/{prefix}]?recursive=` (Link pagination, as repos);
//! - paths-info: `POST /api/buckets/{id}/paths-info` with JSON `{"paths": [...]}`;
//! - CAS tokens: `GET /api/buckets/{id}/xet-read-token` / `xet-write-token` (no revision);
//! - bytes: `/buckets/{id}/resolve/{path}` (the bridge, fallback of CAS reads);
//! - writes: `POST /api/buckets/{id}/batch`, NDJSON `addFile` / `copyFile` / `deleteFile`
//!   lines, answered 200 (or 422) with `{"failed": [{"path","error"}]}`.

use reqwest::Method;
use serde::Deserialize;
use url::Url;

use super::client::HubClient;
use super::error::HubError;
use super::pagination::{TreeOptions, TreePager};
use super::transport::{Deadline, Request, RetryMode};
use super::types::{RepoInfo, TreeEntry};
use crate::repo::{encode_path, encode_revision, validate_repo_path, RepoRef};

/// Prefix of the synthetic commit of a bucket snapshot (never sent to the Hub).
pub const BUCKET_STATE_PREFIX: &str = "bucket@";

/// Operations of one `batch` call at most (the Hub's limit, huggingface_hub's batch size).
pub const BUCKET_BATCH_MAX: usize = 1000;

/// The synthetic "commit" of a bucket as of `updated_at` (its info's `updatedAt`).
pub fn bucket_state(updated_at: Option<&str>) -> String {
    format!("{BUCKET_STATE_PREFIX}{}", updated_at.unwrap_or("?"))
}

/// One operation of a bucket batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketWrite {
    /// `path` now holds the Xet file `xet_hash` (uploaded to the CAS first).
    Add {
        path: String,
        xet_hash: String,
        /// Modification time, Unix milliseconds.
        mtime_ms: u64,
    },
    /// `path` now holds the Xet file `xet_hash` already in this bucket (a rename's new name).
    Copy {
        path: String,
        xet_hash: String,
        mtime_ms: u64,
    },
    Delete {
        path: String,
    },
}

impl BucketWrite {
    pub fn path(&self) -> &str {
        match self {
            BucketWrite::Add { path, .. }
            | BucketWrite::Copy { path, .. }
            | BucketWrite::Delete { path } => path,
        }
    }
}

#[derive(Deserialize)]
struct BatchAnswer {
    #[serde(default)]
    failed: Vec<BatchFailure>,
}

/// A path the batch refused, with the Hub's reason.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchFailure {
    pub path: String,
    #[serde(default)]
    pub error: String,
}

/// Largest info / token / batch answer read.
const SMALL_BODY_MAX: usize = 1 << 20;

impl HubClient {
    /// `GET /api/buckets/{ns}`: the namespace's buckets the caller may see (Link pages), as
    /// [`RepoInfo`]s (`id` = `ns/name`), up to `max`.
    pub async fn list_buckets(&self, ns: &str, max: usize) -> Result<Vec<RepoInfo>, HubError> {
        let ctx = self.ctx(super::error::ErrorContext::label(&format!(
            "buckets of {ns}"
        )));
        let r = async {
            crate::repo::validate_id_part(ns).map_err(|e| HubError::invalid(e.to_string()))?;
            let url = self.url(&format!("/api/buckets/{ns}"))?;
            self.collect_pages(url, &ctx, max).await
        }
        .await;
        self.count(r)
    }

    /// `GET /api/buckets/{id}` as a [`RepoInfo`] whose `sha` is the bucket's state marker and
    /// `lastModified` its `updatedAt`. `state`: a marker the caller chose (a landing's, see
    /// `commit::bucket`) to name the snapshot instead: the listing is fresh either way.
    pub(crate) async fn bucket_info(
        &self,
        repo: &RepoRef,
        state: Option<&str>,
    ) -> Result<RepoInfo, HubError> {
        let ctx = self.repo_ctx(repo, None, None);
        let url = self.url(&repo.api_path())?;
        let req = self
            .api_request(Method::GET, url, &ctx)
            .max_body(SMALL_BODY_MAX);
        let mut info: RepoInfo = self.call_json(&req).await?;
        let updated = info
            .extra
            .get("updatedAt")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        info.sha = Some(match state {
            Some(s) if s.starts_with(BUCKET_STATE_PREFIX) => s.to_string(),
            _ => bucket_state(updated.as_deref()),
        });
        if info.last_modified.is_none() {
            info.last_modified = updated;
        }
        info.siblings = None;
        Ok(info)
    }

    /// A listing of the directory `path` of a bucket ("" = the root).
    pub(crate) fn bucket_tree(
        &self,
        repo: &RepoRef,
        path: &str,
        options: TreeOptions,
    ) -> TreePager {
        let ctx = self.repo_ctx(repo, None, Some(path));
        let first = (|| {
            let mut p = format!("{}/tree", repo.api_path());
            if !path.is_empty() {
                validate_repo_path(path).map_err(|e| HubError::invalid(e.to_string()))?;
                // A bucket prefix is lexical (`data` also matches `data2/x`): list `dir/`, as
                // one escaped segment like huggingface_hub sends it.
                p.push('/');
                p.push_str(&encode_revision(&format!("{path}/")));
            }
            p.push_str(&format!("?recursive={}", options.recursive));
            if let Some(limit) = options.limit {
                p.push_str(&format!("&limit={limit}"));
            }
            self.url(&p)
        })();
        TreePager::new(self.clone(), first, ctx, path, options.recursive)
    }

    /// `POST /api/buckets/{id}/paths-info` for `paths` (one call per 1000; missing paths are
    /// absent from the answer).
    pub(crate) async fn bucket_paths_info(
        &self,
        repo: &RepoRef,
        paths: &[String],
    ) -> Result<Vec<TreeEntry>, HubError> {
        let ctx = self.repo_ctx(repo, None, None);
        let url = self.url(&format!("{}/paths-info", repo.api_path()))?;
        let mut out = Vec::with_capacity(paths.len());
        for batch in paths.chunks(BUCKET_BATCH_MAX) {
            for p in batch {
                validate_repo_path(p).map_err(|e| HubError::invalid(e.to_string()))?;
            }
            let body = serde_json::to_vec(&serde_json::json!({ "paths": batch }))
                .map_err(|e| HubError::invalid(format!("paths-info body: {e}")))?;
            let req = self
                .api_request(Method::POST, url.clone(), &ctx)
                .body(body, "application/json");
            let mut entries: Vec<TreeEntry> = self.call_json(&req).await?;
            entries.retain(|e| {
                batch.contains(&e.path) && crate::repo::validate_listed_path(&e.path).is_ok()
            });
            out.extend(entries);
        }
        Ok(out)
    }

    /// The path (under the endpoint) of a bucket's CAS token route.
    pub(crate) fn bucket_token_path(repo: &RepoRef, write: bool) -> String {
        let kind = if write { "write" } else { "read" };
        format!("{}/xet-{kind}-token", repo.api_path())
    }

    /// `{endpoint}/buckets/{id}/resolve/{path}`: the bridge for a bucket file's bytes.
    pub(crate) fn bucket_resolve_url(&self, repo: &RepoRef, path: &str) -> Result<Url, HubError> {
        validate_repo_path(path).map_err(|e| HubError::invalid(e.to_string()))?;
        self.url(&format!(
            "{}/resolve/{}",
            repo.web_path(),
            encode_path(path)
        ))
    }

    /// `POST /api/buckets/{id}/batch`: applies `ops` (at most [`BUCKET_BATCH_MAX`]) and returns
    /// the paths the Hub refused. Each line stands alone: there is no commit, the batch is
    /// not atomic, and a refused line leaves the others applied.
    pub async fn bucket_batch(
        &self,
        repo: &RepoRef,
        ops: &[BucketWrite],
    ) -> Result<Vec<BatchFailure>, HubError> {
        let ctx = self.repo_ctx(repo, None, None);
        let r = async {
            if ops.len() > BUCKET_BATCH_MAX {
                return Err(HubError::invalid(format!(
                    "a bucket batch holds at most {BUCKET_BATCH_MAX} operations"
                )));
            }
            let mut body = Vec::new();
            for op in ops {
                validate_repo_path(op.path()).map_err(|e| HubError::invalid(e.to_string()))?;
                let line = match op {
                    BucketWrite::Add {
                        path,
                        xet_hash,
                        mtime_ms,
                    } => serde_json::json!({
                        "type": "addFile", "path": path, "xetHash": xet_hash, "mtime": mtime_ms,
                    }),
                    BucketWrite::Copy {
                        path,
                        xet_hash,
                        mtime_ms,
                    } => serde_json::json!({
                        "type": "copyFile", "path": path, "xetHash": xet_hash, "mtime": mtime_ms,
                        "sourceRepoType": "bucket", "sourceRepoId": repo.id.to_string(),
                    }),
                    BucketWrite::Delete { path } => {
                        serde_json::json!({ "type": "deleteFile", "path": path })
                    }
                };
                serde_json::to_writer(&mut body, &line)
                    .map_err(|e| HubError::invalid(format!("batch body: {e}")))?;
                body.push(b'\n');
            }
            let url = self.url(&format!("{}/batch", repo.api_path()))?;
            let req = Request::new(
                Method::POST,
                url,
                Deadline::Total(self.inner.config.commit_timeout),
                ctx.clone(),
            )
            .body(body, "application/x-ndjson")
            .max_body(SMALL_BODY_MAX)
            // Every line is idempotent (add/copy the same hash, delete an absent path is
            // reported, not applied twice): resending after a lost answer is harmless.
            .retry(RetryMode::Transient);
            match self.call_json::<BatchAnswer>(&req).await {
                Ok(a) => Ok(a.failed),
                Err(e) => Err(e),
            }
        }
        .await;
        self.count(r)
    }
}
