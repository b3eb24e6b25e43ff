//! Storage Buckets (hub-api.md §1, xet-plan §2.4): flat, mutable, unversioned file stores named
//! `ns/name`. A bucket maps paths to Xet files (`xetHash` + size; the bytes live in the CAS) with
//! the client's mtime and the server's upload time. There is no history: a batch changes the
//! map in place. Each bucket is one JSON file under `<data>/buckets/`, rewritten atomically after
//! every change, so a restarted emulator serves the same buckets.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// Which Xet files exist and their sizes, as far as the bucket layer asks (the CAS store
/// answers for uploaded files; [`KnownXetFiles`] for test fixtures).
pub trait XetFiles: Send + Sync {
    /// The size of the Xet file `hash` (64 hex), if known.
    fn file_size(&self, hash: &str) -> Option<u64>;
}

/// Xet files registered as fixtures (`POST /_emulator/xet-files`): tests of the bucket rules
/// that do not run a Xet client declare "this hash of this size is in the CAS". Memory only.
#[derive(Default)]
pub struct KnownXetFiles {
    files: RwLock<HashMap<String, u64>>,
}

impl KnownXetFiles {
    pub fn register(&self, hash: &str, size: u64) {
        self.files.write().insert(hash.to_ascii_lowercase(), size);
    }
}

impl XetFiles for KnownXetFiles {
    fn file_size(&self, hash: &str) -> Option<u64> {
        self.files.read().get(hash).copied()
    }
}

/// One file of a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketFile {
    pub xet_hash: String,
    pub size: u64,
    /// The client's modification time (ms since the epoch), as sent in `addFile`.
    pub mtime_ms: u64,
    /// When the server registered the file.
    pub uploaded_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketMeta {
    /// Canonical `ns/name` casing.
    pub id: String,
    pub mongo_id: String,
    pub private: bool,
    pub created_ms: u64,
    /// Last change of the bucket's settings or files (hf-mount polls `updatedAt`).
    pub updated_ms: u64,
    pub creator: String,
}

impl BucketMeta {
    pub fn namespace(&self) -> &str {
        self.id
            .split_once('/')
            .map_or(self.id.as_str(), |(ns, _)| ns)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bucket {
    pub meta: BucketMeta,
    pub files: BTreeMap<String, BucketFile>,
}

impl Bucket {
    pub fn total_size(&self) -> u64 {
        self.files.values().map(|f| f.size).sum()
    }
}

/// An entry of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File(String, BucketFile),
    /// A directory and the latest upload time of a file below it.
    Dir(String, u64),
}

impl Entry {
    pub fn path(&self) -> &str {
        match self {
            Entry::File(p, _) | Entry::Dir(p, _) => p,
        }
    }
}

/// Lists `files` whose path starts with `prefix` as a plain string (the Hub matches bucket
/// prefixes lexically, like S3: `logs` also lists `logs.json`). Non-recursive listings show one
/// level below the prefix: the part after the prefix (one leading `/` dropped) is a file if it
/// has no `/`, else its first component is a directory. Recursive listings are files only.
pub fn list(files: &BTreeMap<String, BucketFile>, prefix: &str, recursive: bool) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for (path, f) in files.range(prefix.to_string()..) {
        let Some(rest) = path.strip_prefix(prefix) else {
            break;
        };
        if recursive {
            out.push(Entry::File(path.clone(), f.clone()));
            continue;
        }
        let skip = usize::from(rest.starts_with('/') && !prefix.is_empty());
        let rest = &rest[skip..];
        match rest.find('/') {
            None => out.push(Entry::File(path.clone(), f.clone())),
            Some(i) => {
                let dir = &path[..prefix.len() + skip + i];
                match out.last_mut() {
                    Some(Entry::Dir(d, t)) if d == dir => *t = (*t).max(f.uploaded_ms),
                    _ => out.push(Entry::Dir(dir.to_string(), f.uploaded_ms)),
                }
            }
        }
    }
    // A directory appears at its first file, which may sort after a sibling file (`logs/x` after
    // `logs.json`); order entries by their own path, which is what keyset cursors compare.
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

/// Why a bucket file path is refused (`None`: acceptable).
pub fn invalid_path(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("Path must not be empty");
    }
    if path.len() > 1024 {
        return Some("Path is longer than 1024 bytes");
    }
    if path.starts_with('/') || path.ends_with('/') {
        return Some("Path must not start or end with '/'");
    }
    if path.chars().any(|c| c.is_control()) {
        return Some("Path must not contain control characters");
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Some("Path must not contain empty, '.' or '..' segments");
    }
    None
}

/// All buckets, by case-folded id.
pub struct Buckets {
    dir: PathBuf,
    map: RwLock<HashMap<String, Bucket>>,
}

fn key(id: &str) -> String {
    id.to_ascii_lowercase()
}

impl Buckets {
    /// Loads every bucket under `root/buckets`.
    pub fn open(root: &Path) -> io::Result<Buckets> {
        let dir = root.join("buckets");
        fs::create_dir_all(&dir)?;
        let mut map = HashMap::new();
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                // A `.tmp` left by a crash mid-write: the previous `.json` is still whole.
                continue;
            }
            match fs::read(&path)
                .and_then(|b| serde_json::from_slice::<Bucket>(&b).map_err(io::Error::other))
            {
                Ok(b) => {
                    map.insert(key(&b.meta.id), b);
                }
                Err(e) => tracing::error!(path = %path.display(), "cannot load bucket: {e}"),
            }
        }
        Ok(Buckets {
            dir,
            map: RwLock::new(map),
        })
    }

    fn file_for(&self, id: &str) -> PathBuf {
        // `%` never appears in a valid id, so it stands for the `/` unambiguously.
        self.dir.join(format!("{}.json", key(id).replace('/', "%")))
    }

    fn persist(&self, b: &Bucket) -> io::Result<()> {
        let path = self.file_for(&b.meta.id);
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, serde_json::to_vec(b).map_err(io::Error::other)?)?;
        fs::rename(&tmp, &path)
    }

    /// A snapshot of one bucket.
    pub fn get(&self, id: &str) -> Option<Bucket> {
        self.map.read().get(&key(id)).cloned()
    }

    /// Runs `f` on one bucket without copying it.
    pub fn with<T>(&self, id: &str, f: impl FnOnce(&Bucket) -> T) -> Option<T> {
        self.map.read().get(&key(id)).map(f)
    }

    pub fn exists(&self, id: &str) -> bool {
        self.map.read().contains_key(&key(id))
    }

    /// Metadata, file count and total size of every bucket.
    pub fn summaries(&self) -> Vec<(BucketMeta, usize, u64)> {
        self.map
            .read()
            .values()
            .map(|b| (b.meta.clone(), b.files.len(), b.total_size()))
            .collect()
    }

    /// Creates a bucket unless one with the same (case-folded) id exists: `Ok(false)` then.
    pub fn create(&self, meta: BucketMeta) -> io::Result<bool> {
        let mut map = self.map.write();
        let k = key(&meta.id);
        if map.contains_key(&k) {
            return Ok(false);
        }
        let b = Bucket {
            meta,
            files: BTreeMap::new(),
        };
        self.persist(&b)?;
        map.insert(k, b);
        Ok(true)
    }

    pub fn delete(&self, id: &str) -> io::Result<bool> {
        let mut map = self.map.write();
        if map.remove(&key(id)).is_none() {
            return Ok(false);
        }
        fs::remove_file(self.file_for(id))?;
        Ok(true)
    }

    /// Changes a bucket under the write lock and persists it; `None` if it does not exist.
    /// `f` returns whether it changed anything (then `updated_ms` is set to `now_ms`).
    pub fn update<T>(
        &self,
        id: &str,
        now_ms: u64,
        f: impl FnOnce(&mut Bucket) -> (bool, T),
    ) -> io::Result<Option<T>> {
        let mut map = self.map.write();
        let Some(b) = map.get_mut(&key(id)) else {
            return Ok(None);
        };
        let (changed, out) = f(b);
        if changed {
            b.meta.updated_ms = now_ms;
            self.persist(b)?;
        }
        Ok(Some(out))
    }

    /// Renames `from` to `to` (another namespace or name). `Ok(false)` if `from` is missing,
    /// `Err(AlreadyExists)` if `to` is taken.
    pub fn rename(&self, from: &str, to: &str, now_ms: u64) -> io::Result<bool> {
        let mut map = self.map.write();
        let to_key = key(to);
        if to_key != key(from) && map.contains_key(&to_key) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let Some(mut b) = map.remove(&key(from)) else {
            return Ok(false);
        };
        let old_file = self.file_for(&b.meta.id);
        b.meta.id = to.to_string();
        b.meta.updated_ms = now_ms;
        if let Err(e) = self.persist(&b) {
            map.insert(key(from), b);
            return Err(e);
        }
        if old_file != self.file_for(to) {
            fs::remove_file(old_file)?;
        }
        map.insert(to_key, b);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(t: u64) -> BucketFile {
        BucketFile {
            xet_hash: "ab".repeat(32),
            size: 1,
            mtime_ms: t,
            uploaded_ms: t,
            content_type: None,
        }
    }

    fn paths(e: &[Entry]) -> Vec<String> {
        e.iter()
            .map(|e| match e {
                Entry::File(p, _) => p.clone(),
                Entry::Dir(p, _) => format!("{p}/"),
            })
            .collect()
    }

    #[test]
    fn lists_one_level_or_all_files_lexically() {
        let files: BTreeMap<String, BucketFile> = [
            "a.txt",
            "logs/x/1",
            "logs/x/2",
            "logs/y",
            "logs.json",
            "logs_backup/z",
        ]
        .iter()
        .enumerate()
        .map(|(i, p)| (p.to_string(), file(i as u64)))
        .collect();
        assert_eq!(
            paths(&list(&files, "", false)),
            ["a.txt", "logs/", "logs.json", "logs_backup/"]
        );
        assert_eq!(
            paths(&list(&files, "logs", false)),
            ["logs.json", "logs/x/", "logs/y", "logs_backup/"]
        );
        assert_eq!(paths(&list(&files, "logs/", false)), ["logs/x/", "logs/y"]);
        assert_eq!(
            paths(&list(&files, "logs/", true)),
            ["logs/x/1", "logs/x/2", "logs/y"]
        );
        match &list(&files, "logs/", false)[0] {
            Entry::Dir(_, t) => assert_eq!(*t, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_odd_paths() {
        for bad in ["", "/a", "a/", "a//b", "a/./b", "../a", "a\nb"] {
            assert!(invalid_path(bad).is_some(), "{bad:?}");
        }
        assert!(invalid_path("a b/#c.txt").is_none());
    }

    #[test]
    fn persists_renames_and_deletes() {
        let tmp = tempfile::tempdir().unwrap();
        let b = Buckets::open(tmp.path()).unwrap();
        let meta = BucketMeta {
            id: "Alice/One".into(),
            mongo_id: "0".into(),
            private: false,
            created_ms: 1,
            updated_ms: 1,
            creator: "alice".into(),
        };
        assert!(b.create(meta.clone()).unwrap());
        assert!(!b.create(meta).unwrap());
        b.update("alice/one", 5, |b| {
            b.files.insert("x".into(), file(3));
            (true, ())
        })
        .unwrap()
        .unwrap();
        assert!(b.rename("alice/one", "acme/two", 6).unwrap());
        let again = Buckets::open(tmp.path()).unwrap();
        assert!(!again.exists("alice/one"));
        let two = again.get("ACME/two").unwrap();
        assert_eq!((two.meta.id.as_str(), two.files.len()), ("acme/two", 1));
        assert_eq!(two.meta.updated_ms, 6);
        assert!(again.delete("acme/two").unwrap());
        assert!(Buckets::open(tmp.path()).unwrap().get("acme/two").is_none());
    }
}
