//! Serving blobs from the huggingface_hub cache instead of the network.
//!
//! `hf_hub_download` and `snapshot_download` keep each file once, under
//! `{HF cache}/{models|datasets|spaces}--{ns}--{name}/blobs/{digest}`, named by the same digest
//! hubfs keys its block cache with: the sha256 for LFS files, the git blob sha1 for the others.
//! So when the read path is about to fetch blocks of a blob, it first looks for that file; if it
//! is there with the right size, it is hashed once (in full, on a blocking thread) and, if the
//! digest matches, the blocks are read from it and go through the normal path (block cache,
//! in-order verification) exactly as fetched bytes would. A blob whose digest does not match is
//! ignored for the life of the mount (and logged); the file is fetched from the Hub instead.
//! hubfs never writes into the HF cache.
//!
//! The HF cache is found as huggingface_hub finds it: `HF_HUB_CACHE` (or the older
//! `HUGGINGFACE_HUB_CACHE`), else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
//! `~/.cache/huggingface/hub`.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::sync::OnceCell;

use super::Blob;
use crate::cache::{BlobKey, ContentHasher};
use crate::fs::snapshot::SeedListing;
use crate::fs::tree::FileInfo;
use crate::repo::RepoRef;

/// Verdicts kept at once; beyond, the map is cleared (a blob is then hashed again, which costs
/// time, never correctness).
const MAX_VERDICTS: usize = 65_536;

/// The HF cache directory huggingface_hub would use with this environment.
pub fn default_dir() -> Option<PathBuf> {
    dir_from(|k| std::env::var_os(k).filter(|v| !v.is_empty()))
}

fn dir_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let home = var("HOME").map(PathBuf::from);
    let expand = |v: std::ffi::OsString| -> PathBuf {
        let p = PathBuf::from(&v);
        match (p.strip_prefix("~"), &home) {
            (Ok(rest), Some(h)) => h.join(rest),
            _ => p,
        }
    };
    if let Some(v) = var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")) {
        return Some(expand(v));
    }
    if let Some(v) = var("HF_HOME") {
        return Some(expand(v).join("hub"));
    }
    if let Some(v) = var("XDG_CACHE_HOME") {
        return Some(expand(v).join("huggingface").join("hub"));
    }
    home.map(|h| h.join(".cache").join("huggingface").join("hub"))
}

/// huggingface_hub's folder name of a repo: `models--ns--name`.
pub fn repo_folder(repo: &RepoRef) -> String {
    folder_name(repo.repo_type.plural(), &repo.id.to_string())
}

/// The same from a repo type's plural (`models`) and a repo id (`ns/name`), as `hubfs warm
/// --hf-cache-layout` gets them from the daemon.
pub fn folder_name(type_plural: &str, repo_id: &str) -> String {
    format!("{type_plural}--{repo_id}").replace('/', "--")
}

/// What hashing a candidate file found, with the identity of the file that was hashed.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    ok: bool,
    len: u64,
    mtime: Option<SystemTime>,
}

/// A blob's verdict, computed once however many reads ask at the same time.
type VerdictCell = Arc<OnceCell<Verdict>>;

/// The huggingface_hub cache as a read-only source of blobs.
pub struct HfCache {
    root: PathBuf,
    verdicts: Mutex<HashMap<(PathBuf, BlobKey), VerdictCell>>,
}

impl HfCache {
    pub fn new(root: PathBuf) -> HfCache {
        HfCache {
            root,
            verdicts: Mutex::new(HashMap::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, blob: &Blob) -> PathBuf {
        self.root
            .join(repo_folder(&blob.repo))
            .join("blobs")
            .join(blob.key.to_string())
    }

    /// The path of a verified copy of `blob` in the HF cache, if there is one. The first call
    /// for a blob hashes the whole file; later ones only check it was not replaced since.
    pub async fn source(&self, blob: &Blob) -> Option<PathBuf> {
        let path = self.blob_path(blob);
        let meta = tokio::fs::metadata(&path).await.ok()?;
        if !meta.is_file() {
            return None;
        }
        if meta.len() != blob.size {
            tracing::debug!(
                "HF cache: {} has {} bytes, the tree says {}: not used",
                path.display(),
                meta.len(),
                blob.size
            );
            return None;
        }
        let cell = {
            let mut map = self.verdicts.lock();
            if map.len() >= MAX_VERDICTS {
                map.clear();
            }
            map.entry((path.clone(), blob.key)).or_default().clone()
        };
        let verdict = *cell
            .get_or_init(|| async {
                let (p, key, size) = (path.clone(), blob.key, blob.size);
                let hashed = tokio::task::spawn_blocking(move || hash_file(&p, &key, size)).await;
                let ok = match hashed {
                    Ok(Ok(ok)) => ok,
                    Ok(Err(e)) => {
                        tracing::warn!("HF cache: reading {} failed: {e}", path.display());
                        false
                    }
                    Err(_) => false,
                };
                if ok {
                    tracing::info!("HF cache: serving {} from {}", blob.path, path.display());
                } else {
                    tracing::warn!(
                        "HF cache: {} does not match its digest {}: ignored, fetching {} from the Hub",
                        path.display(),
                        blob.key,
                        blob.path
                    );
                }
                Verdict {
                    ok,
                    len: meta.len(),
                    mtime: meta.modified().ok(),
                }
            })
            .await;
        // A file replaced after it was hashed is not the file that was hashed.
        let same = verdict.len == meta.len() && verdict.mtime == meta.modified().ok();
        if verdict.ok && !same {
            self.verdicts.lock().remove(&(path.clone(), blob.key));
            return None;
        }
        verdict.ok.then_some(path)
    }
}

/// A revision as the HF cache holds it, for an offline mount: the commit (`refs/<revision>`,
/// `main` when None, or the revision itself if it is a commit id with a snapshot), the mtime of
/// the snapshot directory, and every entry of `snapshots/<commit>/` (path, Some(file) or None
/// for a directory). Files are the symlinks into `blobs/`; their digests name them (64 hex
/// characters: an LFS sha256, 40: a git blob id) and the blobs give their sizes. Any file that
/// is not such a link makes the listing unusable: the snapshot may be partial or foreign.
pub fn snapshot_listing(
    root: &Path,
    repo: &RepoRef,
    revision: Option<&str>,
) -> Option<SeedListing> {
    let base = root.join(repo_folder(repo));
    let rev = revision.unwrap_or("main");
    let commit = match std::fs::read_to_string(base.join("refs").join(rev)) {
        Ok(c) => c.trim().to_string(),
        Err(_) if crate::repo::looks_like_commit(rev) => rev.to_string(),
        Err(_) => return None,
    };
    if commit.is_empty() || commit.contains('/') || commit.starts_with('.') {
        return None;
    }
    let snap = base.join("snapshots").join(&commit);
    let mtime = std::fs::metadata(&snap).ok()?.modified().ok()?;
    let mut entries = Vec::new();
    let mut stack = vec![(snap, String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for e in std::fs::read_dir(&dir).ok()? {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let ft = e.file_type().ok()?;
            if ft.is_dir() {
                entries.push((path.clone(), None));
                stack.push((e.path(), path));
                continue;
            }
            if !ft.is_symlink() {
                return None;
            }
            let target = std::fs::read_link(e.path()).ok()?;
            let digest = target.file_name()?.to_str()?.to_ascii_lowercase();
            let size = std::fs::metadata(base.join("blobs").join(&digest))
                .ok()?
                .len();
            let info = match digest.len() {
                64 => FileInfo {
                    size,
                    // The pointer's git id is not in the HF cache; the content digest
                    // stands in as the file's identity.
                    oid: digest.clone(),
                    lfs_sha256: Some(digest),
                    xet_hash: None,
                },
                40 => FileInfo {
                    size,
                    oid: digest,
                    lfs_sha256: None,
                    xet_hash: None,
                },
                _ => return None,
            };
            entries.push((path, Some(info)));
        }
    }
    Some(SeedListing {
        commit,
        mtime,
        entries,
    })
}

/// Whether the file's content hashes to `key` (and is `size` bytes long).
fn hash_file(path: &Path, key: &BlobKey, size: u64) -> std::io::Result<bool> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = ContentHasher::new(key, size);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok(total == size && hasher.matches(key))
}

/// Reads `[start, end)` of a verified HF cache file (on a blocking thread). The range is at most
/// one fetch run, which the read path already bounds.
pub async fn read_range(path: PathBuf, start: u64, end: u64) -> std::io::Result<Bytes> {
    let task = tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&path)?;
        f.seek(SeekFrom::Start(start))?;
        let len = (end - start) as usize;
        let mut buf = BytesMut::zeroed(len);
        f.read_exact(&mut buf)?;
        Ok(buf.freeze())
    });
    task.await
        .map_err(|e| std::io::Error::other(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn finds_the_cache_as_huggingface_hub_does() {
        let all = env(&[
            ("HF_HUB_CACHE", "/a"),
            ("HF_HOME", "/h"),
            ("HOME", "/home/u"),
        ]);
        assert_eq!(dir_from(all), Some(PathBuf::from("/a")));
        let home = env(&[("HF_HOME", "~/hf"), ("HOME", "/home/u")]);
        assert_eq!(dir_from(home), Some(PathBuf::from("/home/u/hf/hub")));
        let xdg = env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/home/u")]);
        assert_eq!(dir_from(xdg), Some(PathBuf::from("/x/huggingface/hub")));
        let plain = env(&[("HOME", "/home/u")]);
        assert_eq!(
            dir_from(plain),
            Some(PathBuf::from("/home/u/.cache/huggingface/hub"))
        );
    }

    #[test]
    fn folder_names_match_huggingface_hub() {
        use crate::repo::{RepoId, RepoType};
        let r = RepoRef::new(RepoType::Dataset, RepoId::parse("ns/name").unwrap());
        assert_eq!(repo_folder(&r), "datasets--ns--name");
        let r = RepoRef::new(RepoType::Model, RepoId::parse("gpt2").unwrap());
        assert_eq!(repo_folder(&r), "models--gpt2");
    }
}
