//! Landing a batch in a Storage Bucket: no commit, no parent, no history.
//!
//! Staged contents are uploaded through Xet (`hub::xet::XetUploader` with a bucket write token, no sha256), then one
//! `POST /api/buckets/{id}/batch` names them: `addFile` for staged files, `copyFile` for a
//! renamed file the bucket already has (its Xet hash, no bytes moved), `deleteFile` for
//! deletions (skipped when the path is already gone). Adds and copies go before deletes, so a
//! rename (copy + delete, not atomic) never loses the content: at worst both names exist for
//! a moment, and a failure between them leaves both.
//!
//! Another client may change the same path meanwhile. The rule is **last writer wins**: our
//! batch is applied regardless. Before it, paths-info tells what the bucket holds now; where
//! that differs from what this mount showed (the Xet hash of its listing, or absence), the
//! path was changed by someone else since we listed it: it is logged and counted
//! (`writes.commit.bucket_overwrites` in `hubfs status --json`), then overwritten (or deleted).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::status::UploadCounters;
use super::{Committer, Item, Outcome};
use crate::hub::xet::Sha256;
use crate::hub::{bucket_state, BucketWrite, HubError};
use crate::stage::Change;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Committer {
    pub(super) async fn try_bucket_batch(&self, batch: &[Item]) -> Outcome {
        let Some(uploader) = self.bucket.get() else {
            return Outcome::Failed(HubError::invalid("a bucket mount without an uploader"));
        };
        let repo = &self.target.repo;
        let paths: Vec<String> = batch.iter().map(|i| i.path.clone()).collect();
        // What the bucket holds at these paths now (path -> Xet hash).
        let now: HashMap<String, String> = match self.client.paths_info(repo, "", &paths).await {
            Ok(entries) => entries
                .into_iter()
                .filter(|e| !e.is_dir())
                .map(|e| (e.path.clone(), e.xet_hash.unwrap_or_default()))
                .collect(),
            Err(e) => return Outcome::Failed(e),
        };
        let overwritten: Vec<String> = match self.shown.get() {
            Some(shown) => paths
                .iter()
                .filter(|p| {
                    // None: this mount never listed the path's directory; nothing to compare.
                    shown(p).is_some_and(|seen| seen.as_deref() != now.get(*p).map(String::as_str))
                })
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let mtime_ms = now_ms();
        let mut ops = Vec::new();
        let mut files = Vec::new();
        let mut put_paths = Vec::new();
        for item in batch {
            match &item.change {
                Change::Put { file, .. } => {
                    files.push(self.area.file_path(*file));
                    put_paths.push(item.path.clone());
                }
                // A renamed bucket file: `oid` holds its Xet hash (`FileInfo::identity`).
                Change::CopyLfs { oid, .. } => ops.push(BucketWrite::Copy {
                    path: item.path.clone(),
                    xet_hash: oid.clone(),
                    mtime_ms,
                }),
                Change::Delete => {
                    if now.contains_key(&item.path) {
                        ops.push(BucketWrite::Delete {
                            path: item.path.clone(),
                        });
                    }
                }
            }
        }
        let uploaded = if files.is_empty() {
            Vec::new()
        } else {
            let files = files.into_iter().map(|f| (f, Sha256::Skip)).collect();
            match uploader.upload(files).await {
                Ok(report) => {
                    let n = report.files.len() as u64;
                    let bytes: u64 = report.files.iter().map(|u| u.size).sum();
                    self.state.lock().uploads.add(&UploadCounters {
                        xet_files: n,
                        xet_file_bytes: bytes,
                        xet_deduped_bytes: report.deduped_bytes,
                        xet_xorb_bytes_sent: report.xorb_bytes_sent,
                        ..UploadCounters::default()
                    });
                    report.files
                }
                Err(e) => return Outcome::Failed(e),
            }
        };
        if uploaded.len() != put_paths.len() {
            return Outcome::Failed(HubError::invalid(format!(
                "Xet upload returned {} results for {} files",
                uploaded.len(),
                put_paths.len()
            )));
        }
        let bytes: u64 = uploaded.iter().map(|u| u.size).sum();
        for (path, u) in put_paths.into_iter().zip(uploaded) {
            ops.push(BucketWrite::Add {
                path,
                xet_hash: u.xet_hash,
                mtime_ms,
            });
        }
        // Stable: adds and copies first, deletes last.
        ops.sort_by_key(|o| matches!(o, BucketWrite::Delete { .. }));
        if !ops.is_empty() {
            match self.client.bucket_batch(repo, &ops).await {
                Ok(failed) if failed.is_empty() => {}
                Ok(failed) => {
                    let what: Vec<String> = failed
                        .iter()
                        .map(|f| format!("{}: {}", f.path, f.error))
                        .collect();
                    // The other lines were applied; resending them is harmless.
                    return Outcome::Failed(HubError::InvalidInput {
                        message: format!("the bucket refused {}", what.join("; ")),
                    });
                }
                Err(e) => return Outcome::Failed(e),
            }
        }
        if !overwritten.is_empty() {
            tracing::warn!(
                "{repo}: {} path(s) were changed by another client since this mount listed \
                 them; last writer wins, ours replaced theirs: {}",
                overwritten.len(),
                overwritten.join(", ")
            );
            self.state.lock().bucket_overwrites += overwritten.len() as u64;
        }
        tracing::debug!(
            "bucket batch of {} operation(s) landed, {bytes} bytes uploaded",
            ops.len()
        );
        // The bucket's new state: the view moves to a fresh listing of it. The landing's time
        // makes the name unique, so the view always moves (and the overlay is pruned only
        // once the view lists what landed), even when `updatedAt` did not change.
        let state = match self.client.repo_info(repo, None, false).await {
            Ok(info) => info.sha.unwrap_or_else(|| bucket_state(None)),
            Err(e) => {
                tracing::warn!("{repo}: reading the bucket's state after a batch: {e}");
                bucket_state(None)
            }
        };
        let state = format!("{state}#{mtime_ms}");
        self.record_landed(&state, batch, None, 1).await
    }
}
