//! One batch: turns a set of pending changes into the operations of one Hub commit.
//!
//! Preupload decides regular vs LFS for staged contents. LFS contents go through Xet when the
//! Hub hands out a write token for the target (one pass over each file: chunks, dedup against
//! the CAS, sha256; only chunks the CAS lacks are sent), else they are hashed and uploaded
//! through LFS (basic or multipart, streamed from the staging file, several objects at a time);
//! either way the commit names them by sha256 in `lfsFile` lines. Regular contents are read
//! into the commit body. Renamed LFS files become `CopyLfs` (no upload),
//! deletions `DeleteFile` (dropped when the path is already gone on the Hub).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};

use crate::hub::types::{LfsObject, TreeEntry};
use crate::hub::xet::{RepoWriteToken, Sha256, XetUploader};
use crate::hub::{preupload_file, SAMPLE_SIZE};
use crate::hub::{CommitOp, HubClient, HubError};
use crate::repo::RepoRef;
use crate::stage::{Change, StagingArea};

use super::message::Effect;
use super::status::UploadCounters;
use super::XetWrites;

/// A change chosen for the next commit.
#[derive(Debug, Clone)]
pub struct Item {
    pub path: String,
    pub seq: u64,
    pub change: Change,
}

/// Where a batch goes.
pub struct Destination<'a> {
    pub client: &'a HubClient,
    pub repo: &'a RepoRef,
    pub revision: &'a str,
    /// The commit opens a pull request (no write access to `revision` needed).
    pub create_pr: bool,
    /// The commit the changes are made on.
    pub base: &'a str,
    pub upload_concurrency: usize,
    /// Upload through Xet when the Hub offers it (None: LFS only).
    pub xet: Option<&'a XetWrites>,
}

/// The operations of a commit, and the items that need none (already so on the Hub).
pub struct Prepared {
    pub ops: Vec<CommitOp>,
    pub bytes_uploaded: u64,
    pub uploads: UploadCounters,
    /// What the operations do, for the commit title.
    pub effects: Vec<Effect>,
}

/// Staged content of one item.
struct Staged {
    path: String,
    file: PathBuf,
    size: u64,
}

/// Builds the operations for `items`, uploading LFS contents first.
pub async fn prepare(
    dest: &Destination<'_>,
    area: &Arc<StagingArea>,
    items: &[Item],
) -> Result<Prepared, HubError> {
    let mut ops = Vec::new();
    let mut staged = Vec::new();
    let mut deletes = Vec::new();
    // Renamed LFS files: new path -> old path.
    let mut copied_from = HashMap::new();
    for item in items {
        match &item.change {
            Change::Put { file, .. } => {
                let path = area.file_path(*file);
                let size = std::fs::metadata(&path)
                    .map_err(|e| local_error(&path, e))?
                    .len();
                staged.push(Staged {
                    path: item.path.clone(),
                    file: path,
                    size,
                });
            }
            Change::CopyLfs {
                sha256, from_path, ..
            } => {
                copied_from.insert(item.path.clone(), from_path.clone());
                ops.push(CommitOp::CopyLfs {
                    path: item.path.clone(),
                    sha256: sha256.clone(),
                })
            }
            Change::Delete => deletes.push(item.path.clone()),
        }
    }
    // What the base has at these paths: deleting a path the Hub does not have fails the
    // whole commit (keep existing ones), and the title tells additions from updates.
    let all: Vec<String> = items.iter().map(|i| i.path.clone()).collect();
    let existing: HashMap<String, TreeEntry> = dest
        .client
        .paths_info(dest.repo, dest.base, &all)
        .await?
        .into_iter()
        .filter(|e| !e.is_dir())
        .map(|e| (e.path.clone(), e))
        .collect();
    for path in &deletes {
        if existing.contains_key(path) {
            ops.push(CommitOp::DeleteFile { path: path.clone() });
        }
    }
    let mut bytes_uploaded = 0;
    let mut uploads = UploadCounters::default();
    if !staged.is_empty() {
        let (regular, lfs) = split_by_mode(dest, &staged).await?;
        for s in regular {
            let content = read_whole(&s.file).await?;
            ops.push(CommitOp::AddRegular {
                path: s.path.clone(),
                content,
            });
        }
        let hashed = match upload_xet(dest, &lfs, &mut uploads).await? {
            Some(hashed) => {
                bytes_uploaded = uploads.xet_xorb_bytes_sent;
                hashed
            }
            None => {
                let hashed = hash_all(&lfs).await?;
                bytes_uploaded = upload_lfs(dest, &hashed).await?;
                uploads.lfs_files = hashed.len() as u64;
                uploads.lfs_bytes = bytes_uploaded;
                hashed
            }
        };
        for (s, sha256) in hashed {
            ops.push(CommitOp::AddLfs {
                path: s.path.clone(),
                sha256,
                size: s.size,
            });
        }
    }
    let effects = effects(&ops, &existing, &copied_from);
    Ok(Prepared {
        ops,
        bytes_uploaded,
        uploads,
        effects,
    })
}

/// What `ops` do to the base: additions, updates, deletions, and renames (a deleted file
/// whose content reappears under a new path in the same commit: an LFS copy of it, or a
/// regular file with the same git blob id).
fn effects(
    ops: &[CommitOp],
    existing: &HashMap<String, TreeEntry>,
    copied_from: &HashMap<String, String>,
) -> Vec<Effect> {
    let deleted: HashSet<&str> = ops
        .iter()
        .filter_map(|op| match op {
            CommitOp::DeleteFile { path } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    let mut renamed_away: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for op in ops {
        let (path, source) = match op {
            CommitOp::AddRegular { path, content } => {
                let blob = git_blob_sha1(content);
                let source = deleted.iter().find(|d| {
                    !renamed_away.contains(**d)
                        && existing
                            .get(**d)
                            .is_some_and(|e| e.lfs.is_none() && e.oid == blob)
                });
                (path, source.map(|d| d.to_string()))
            }
            CommitOp::AddLfs { path, .. } => (path, None),
            CommitOp::CopyLfs { path, .. } => (
                path,
                copied_from
                    .get(path)
                    .filter(|f| deleted.contains(f.as_str()) && !renamed_away.contains(*f))
                    .cloned(),
            ),
            CommitOp::DeleteFile { .. } | CommitOp::DeleteFolder { .. } => continue,
        };
        if existing.contains_key(path) {
            out.push(Effect::Update(path.clone()));
        } else if let Some(from) = source {
            renamed_away.insert(from.clone());
            out.push(Effect::Rename {
                from,
                to: path.clone(),
            });
        } else {
            out.push(Effect::Add(path.clone()));
        }
    }
    for op in ops {
        match op {
            CommitOp::DeleteFile { path } | CommitOp::DeleteFolder { path }
                if !renamed_away.contains(path) =>
            {
                out.push(Effect::Delete(path.clone()))
            }
            _ => {}
        }
    }
    out
}

/// The git blob id of `content` (what the Hub reports as `oid` of a regular file).
fn git_blob_sha1(content: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", content.len()).as_bytes());
    h.update(content);
    hex::encode(h.finalize())
}

fn local_error(path: &Path, e: std::io::Error) -> HubError {
    HubError::invalid(format!("staging file {}: {e}", path.display()))
}

/// Asks preupload which contents go to LFS. Empty files are always regular (the Hub's LFS
/// store refuses empty objects); files the repo's `.gitignore` ignores are left out.
async fn split_by_mode<'s>(
    dest: &Destination<'_>,
    staged: &'s [Staged],
) -> Result<(Vec<&'s Staged>, Vec<&'s Staged>), HubError> {
    let mut files = Vec::with_capacity(staged.len());
    for s in staged {
        let head = read_head(&s.file).map_err(|e| local_error(&s.file, e))?;
        files.push(preupload_file(&s.path, &head, s.size));
    }
    let answer = dest
        .client
        .preupload(dest.repo, dest.revision, &files, dest.create_pr)
        .await?;
    let (mut regular, mut lfs) = (Vec::new(), Vec::new());
    for s in staged {
        let a = answer.files.iter().find(|a| a.path == s.path);
        if a.is_some_and(|a| a.should_ignore) {
            tracing::info!(
                "{} is ignored by the repo's .gitignore: not committed",
                s.path
            );
            continue;
        }
        if s.size > 0 && a.is_some_and(|a| a.upload_mode == "lfs") {
            lfs.push(s);
        } else {
            regular.push(s);
        }
    }
    Ok((regular, lfs))
}

fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(SAMPLE_SIZE);
    std::fs::File::open(path)?
        .take(SAMPLE_SIZE as u64)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

async fn read_whole(path: &Path) -> Result<Vec<u8>, HubError> {
    tokio::fs::read(path)
        .await
        .map_err(|e| local_error(path, e))
}

/// sha256 of each LFS content, computed off the async workers (streamed: bounded memory).
async fn hash_all<'s>(lfs: &[&'s Staged]) -> Result<Vec<(&'s Staged, String)>, HubError> {
    let mut out = Vec::with_capacity(lfs.len());
    for s in lfs {
        let path = s.file.clone();
        let sha = tokio::task::spawn_blocking(move || sha256_file(&path))
            .await
            .map_err(|e| HubError::invalid(format!("hashing task failed: {e}")))?
            .map_err(|e| local_error(&s.file, e))?;
        out.push((*s, sha));
    }
    Ok(out)
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    digest_file(sha2::Sha256::default(), path)
}

/// The git blob id of a staged file's content (what the Hub reports as `oid` of a regular file).
pub fn git_blob_sha1_file(path: &Path) -> std::io::Result<String> {
    use sha1::Digest;
    let len = std::fs::metadata(path)?.len();
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {len}\0").as_bytes());
    digest_file(h, path)
}

/// Feeds a file's content to `h` in 1 MiB reads and returns the hex digest.
fn digest_file<D: sha2::Digest>(mut h: D, path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Uploads `lfs` through Xet and returns each content with its sha256 (computed in the same
/// pass as the chunks); None when Xet is off or the Hub has none for this target (the
/// write-token route answers 404): the caller uploads through LFS. Other failures fail the
/// batch (retried with backoff like any upload failure).
///
/// Nothing is journaled between the upload and the commit: a crash in between redoes the
/// upload on the next mount, which re-reads the file locally but sends almost nothing (the
/// CAS answers "exists" to every xorb grant already stored, and the shard names chunks the
/// global dedup query then finds).
async fn upload_xet<'s>(
    dest: &Destination<'_>,
    lfs: &[&'s Staged],
    counters: &mut UploadCounters,
) -> Result<Option<Vec<(&'s Staged, String)>>, HubError> {
    let Some(xet) = dest.xet.filter(|_| !lfs.is_empty()) else {
        return Ok(None);
    };
    let source = RepoWriteToken {
        repo: dest.repo.clone(),
        revision: (!dest.create_pr).then(|| dest.revision.to_string()),
    };
    let uploader = XetUploader::new(
        dest.client.clone(),
        xet.ctx.clone(),
        Arc::new(source),
        xet.cache_root.clone(),
        xet.token_timeout,
    );
    let token = match uploader.token().await {
        Ok(t) => t,
        Err(e) if e.is_not_found() => {
            tracing::debug!(
                "no Xet write token for {}: uploading through LFS",
                dest.repo
            );
            counters.xet_unavailable += 1;
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let files = lfs
        .iter()
        .map(|s| (s.file.clone(), Sha256::Compute))
        .collect();
    let report = uploader.upload_with(token, files).await?;
    if report.files.len() != lfs.len() {
        return Err(HubError::invalid(format!(
            "Xet upload answered for {} of {} files",
            report.files.len(),
            lfs.len()
        )));
    }
    let mut out = Vec::with_capacity(lfs.len());
    for (s, up) in lfs.iter().zip(&report.files) {
        let sha = up
            .sha256
            .clone()
            .ok_or_else(|| HubError::invalid("Xet upload without sha256"))?;
        if up.size != s.size {
            // The staging file is immutable once journaled: a mismatch is a bug, not a race.
            return Err(HubError::invalid(format!(
                "{}: Xet uploaded {} bytes of a {}-byte staging file",
                s.path, up.size, s.size
            )));
        }
        out.push((*s, sha));
    }
    counters.xet_files += out.len() as u64;
    counters.xet_file_bytes += lfs.iter().map(|s| s.size).sum::<u64>();
    counters.xet_deduped_bytes += report.deduped_bytes;
    counters.xet_xorb_bytes_sent += report.xorb_bytes_sent;
    Ok(Some(out))
}

/// Uploads the LFS objects the Hub does not have yet; returns the bytes sent.
async fn upload_lfs(dest: &Destination<'_>, hashed: &[(&Staged, String)]) -> Result<u64, HubError> {
    if hashed.is_empty() {
        return Ok(0);
    }
    let objects: Vec<LfsObject> = hashed
        .iter()
        .map(|(s, sha)| LfsObject {
            oid: sha.clone(),
            size: s.size,
        })
        .collect();
    let answer = if dest.create_pr {
        dest.client
            .lfs_batch_upload_for_pr(dest.repo, &objects)
            .await?
    } else {
        dest.client
            .lfs_batch_upload(dest.repo, dest.revision, &objects)
            .await?
    };
    let transfer = answer.transfer.clone().unwrap_or_else(|| "basic".into());
    let jobs: Vec<_> = answer
        .objects
        .iter()
        .filter(|o| o.actions.is_some())
        .filter_map(|o| {
            let (s, _) = hashed.iter().find(|(_, sha)| *sha == o.oid)?;
            Some((o.clone(), s.file.clone(), s.size))
        })
        .collect();
    let client = dest.client.clone();
    let sent: Vec<u64> = futures_util::stream::iter(jobs)
        .map(move |(object, file, size)| {
            let transfer = transfer.clone();
            let client = client.clone();
            async move {
                client
                    .upload_lfs_object(&object, &transfer, &file, None)
                    .await
                    .map(|_| size)
            }
        })
        .buffer_unordered(dest.upload_concurrency.max(1))
        .try_collect()
        .await?;
    Ok(sent.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, oid: &str, lfs: bool) -> (String, TreeEntry) {
        let mut v = serde_json::json!({"type": "file", "oid": oid, "size": 3, "path": path});
        if lfs {
            v["lfs"] = serde_json::json!({"oid": "ab", "size": 3, "pointerSize": 120});
        }
        (
            path.to_string(),
            serde_json::from_value(v).expect("tree entry"),
        )
    }

    #[test]
    fn renames_updates_adds_and_deletes_are_told_apart() {
        let existing: HashMap<String, TreeEntry> = [
            entry("old.txt", &git_blob_sha1(b"abc"), false),
            entry("w.bin", "pointer", true),
            entry("cfg.json", "x", false),
            entry("gone.txt", "y", false),
        ]
        .into_iter()
        .collect();
        let copied_from: HashMap<String, String> =
            [("w2.bin".to_string(), "w.bin".to_string())].into();
        let ops = vec![
            CommitOp::AddRegular {
                path: "new.txt".into(),
                content: b"abc".to_vec(),
            },
            CommitOp::CopyLfs {
                path: "w2.bin".into(),
                sha256: "ab".into(),
            },
            CommitOp::AddRegular {
                path: "cfg.json".into(),
                content: b"{}".to_vec(),
            },
            CommitOp::AddRegular {
                path: "other.txt".into(),
                content: b"zzz".to_vec(),
            },
            CommitOp::DeleteFile {
                path: "old.txt".into(),
            },
            CommitOp::DeleteFile {
                path: "w.bin".into(),
            },
            CommitOp::DeleteFile {
                path: "gone.txt".into(),
            },
        ];
        let e = effects(&ops, &existing, &copied_from);
        assert_eq!(
            e,
            vec![
                Effect::Rename {
                    from: "old.txt".into(),
                    to: "new.txt".into()
                },
                Effect::Rename {
                    from: "w.bin".into(),
                    to: "w2.bin".into()
                },
                Effect::Update("cfg.json".into()),
                Effect::Add("other.txt".into()),
                Effect::Delete("gone.txt".into()),
            ]
        );
    }
}
