//! What the cached blobs are, in user terms: for each blob, the repos, commits and paths it
//! was cached for, so `hubfs cache ls` can say "gpt2 model.safetensors" instead of a digest
//! and `hubfs cache rm REPO` knows which blobs are a repo's.
//!
//! The block store is content-addressed and knows nothing of repos; the read path tells the
//! inventory once per (blob, repo, path) and mount life when it is about to store a blob's
//! first blocks ([`Inventory::note`]). Records are [`MetaStore`] documents in the `blobs`
//! namespace of the same cache root, one per blob, so they are as crash-safe as the rest of the
//! metadata (written whole to a temporary file and renamed, checksummed, a damaged one reads as
//! absent: the blob is then listed as "unknown", never wrongly). Bounded: at most
//! [`MAX_REFS`] references per blob (the most recent first), and records of blobs no longer
//! cached are deleted by [`Inventory::prune`] (at mount and by `hubfs cache gc`/`rm`).

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::key::BlobKey;
use super::meta::MetaStore;

/// The `MetaStore` namespace of the records.
pub const INVENTORY_NS: &str = "blobs";
/// References kept per blob: the same content under many names (a file copied across
/// revisions of many repos) would otherwise grow its record without bound.
pub const MAX_REFS: usize = 8;
/// Blobs whose recorded names are remembered in this mount's life; beyond this the memory is
/// cleared (a record is then read, and maybe rewritten, once more, which is harmless).
const MAX_SEEN: usize = 65_536;

/// One name a blob was cached under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// `ns/name`, `datasets/ns/name` or `spaces/ns/name`.
    pub repo: String,
    /// The commit the file was read at.
    pub commit: String,
    /// Path of the file in the repo.
    pub path: String,
}

/// The record of one blob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub size: u64,
    /// Most recently noted first; at most [`MAX_REFS`].
    pub refs: Vec<BlobRef>,
}

/// Records of what cached blobs are (see the module docs). `Send + Sync`.
pub struct Inventory {
    meta: Arc<MetaStore>,
    /// Serializes read-modify-write of records (two paths of one content noted at once).
    write: Mutex<()>,
    /// Names already recorded in this process, per blob (at most `MAX_REFS` each).
    seen: Mutex<HashMap<BlobKey, Vec<(String, String)>>>,
}

/// The document key of a blob: `sha256-<hex>` / `sha1-<hex>`.
pub fn record_key(key: &BlobKey) -> String {
    format!("{}-{key}", key.kind_name())
}

fn parse_record_key(s: &str) -> Option<BlobKey> {
    let (kind, hex) = s.split_once('-')?;
    BlobKey::from_kind_hex(kind, hex)
}

impl Inventory {
    pub fn new(meta: Arc<MetaStore>) -> Inventory {
        Inventory {
            meta,
            write: Mutex::new(()),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records that `key` (of `size` bytes) is being cached as `path` of `repo` at `commit`.
    /// Cheap after the first call for a (blob, repo, path) in this process. Failures are
    /// logged, not returned: the inventory is a convenience, the cache works without it.
    pub fn note(&self, key: &BlobKey, size: u64, repo: &str, commit: &str, path: &str) {
        {
            let mut seen = self.seen.lock();
            if seen.len() >= MAX_SEEN {
                seen.clear();
            }
            let names = seen.entry(*key).or_default();
            if names.iter().any(|(r, p)| r == repo && p == path) {
                return;
            }
            if names.len() >= MAX_REFS {
                names.clear();
            }
            names.push((repo.to_string(), path.to_string()));
        }
        let new = BlobRef {
            repo: repo.to_string(),
            commit: commit.to_string(),
            path: path.to_string(),
        };
        let _guard = self.write.lock();
        let doc_key = record_key(key);
        let mut rec = match self.meta.get::<BlobRecord>(INVENTORY_NS, &doc_key) {
            Ok(Some(r)) if r.size == size => r,
            _ => BlobRecord {
                size,
                refs: Vec::new(),
            },
        };
        if rec.refs.first() == Some(&new) {
            return;
        }
        rec.refs
            .retain(|r| !(r.repo == new.repo && r.path == new.path));
        rec.refs.insert(0, new);
        rec.refs.truncate(MAX_REFS);
        if let Err(e) = self.meta.put(INVENTORY_NS, &doc_key, &rec) {
            tracing::warn!(%key, "could not record what a cached blob is: {e}");
        }
    }

    /// The record of `key`, if one is stored and intact.
    pub fn get(&self, key: &BlobKey) -> Option<BlobRecord> {
        self.meta
            .get::<BlobRecord>(INVENTORY_NS, &record_key(key))
            .ok()
            .flatten()
    }

    /// Deletes the record of a blob that is no longer cached.
    pub fn forget(&self, key: &BlobKey) {
        let _guard = self.write.lock();
        if let Err(e) = self.meta.remove(INVENTORY_NS, &record_key(key)) {
            tracing::warn!(%key, "could not delete a blob record: {e}");
        }
        self.seen.lock().remove(key);
    }

    /// Deletes the records of blobs for which `cached` is false; returns how many went.
    pub fn prune(&self, cached: impl Fn(&BlobKey) -> bool) -> io::Result<usize> {
        let dir = self.meta.dir().join(INVENTORY_NS);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut gone = 0;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            // Document file names are `k-` + the key (see MetaStore); others are not records.
            let Some(key) = name
                .to_str()
                .and_then(|n| n.strip_prefix("k-"))
                .and_then(parse_record_key)
            else {
                continue;
            };
            if !cached(&key) {
                self.forget(&key);
                gone += 1;
            }
        }
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> BlobKey {
        BlobKey::Sha256([n; 32])
    }

    #[test]
    fn notes_are_bounded_deduplicated_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(MetaStore::open(dir.path().to_path_buf()).unwrap());
        let inv = Inventory::new(meta.clone());
        assert_eq!(inv.get(&key(1)), None);
        inv.note(&key(1), 10, "ns/a", "c1", "x.bin");
        inv.note(&key(1), 10, "ns/a", "c1", "x.bin");
        for i in 0..20 {
            inv.note(&key(1), 10, "ns/b", "c2", &format!("copy{i}.bin"));
        }
        inv.note(&key(2), 5, "datasets/ns/d", "c3", "d.csv");
        let rec = inv.get(&key(1)).unwrap();
        assert_eq!(rec.size, 10);
        assert_eq!(rec.refs.len(), MAX_REFS);
        assert_eq!(rec.refs[0].path, "copy19.bin");
        // A fresh process (empty `seen`) re-noting a known name moves it to the front.
        let inv = Inventory::new(meta);
        inv.note(&key(1), 10, "ns/b", "c9", "copy15.bin");
        let rec = inv.get(&key(1)).unwrap();
        assert_eq!(rec.refs.len(), MAX_REFS);
        assert_eq!(
            (rec.refs[0].commit.as_str(), rec.refs[1].path.as_str()),
            ("c9", "copy19.bin")
        );
        assert_eq!(inv.prune(|k| *k == key(2)).unwrap(), 1);
        assert_eq!(inv.get(&key(1)), None);
        assert_eq!(inv.get(&key(2)).unwrap().refs[0].repo, "datasets/ns/d");
    }
}
