//! Content-addressed object storage on disk: regular file contents by git blob id, LFS objects
//! by sha256, and trees (see [`super::tree`]) by git tree id, each written once through a temp
//! file and an atomic rename. Parsed trees are kept in a weight-bounded LRU cache.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::lru::WeightedLru;
use super::tree::Tree;
use crate::git::{blob_oid, Oid, Sha256};

/// Upper bound on cached tree entries (all trees together), about 100 bytes each.
const TREE_CACHE_ENTRIES: usize = 400_000;

pub struct Objects {
    blobs: PathBuf,
    lfs: PathBuf,
    trees: PathBuf,
    tmp: PathBuf,
    tree_cache: Mutex<WeightedLru<Oid, Arc<Tree>>>,
    tmp_seq: AtomicU64,
}

/// `base/ab/cdef…`: two-level fan-out keeps directories small.
fn fanout(base: &Path, hex: &str) -> PathBuf {
    base.join(&hex[..2]).join(&hex[2..])
}

impl Objects {
    pub fn open(root: &Path) -> io::Result<Objects> {
        let o = Objects {
            blobs: root.join("objects/blobs"),
            lfs: root.join("objects/lfs"),
            trees: root.join("objects/trees"),
            tmp: root.join("tmp"),
            tree_cache: Mutex::new(WeightedLru::new(TREE_CACHE_ENTRIES)),
            tmp_seq: AtomicU64::new(0),
        };
        for d in [&o.blobs, &o.lfs, &o.trees] {
            fs::create_dir_all(d)?;
        }
        // Leftovers of interrupted uploads are garbage.
        let _ = fs::remove_dir_all(&o.tmp);
        fs::create_dir_all(&o.tmp)?;
        Ok(o)
    }

    pub fn blob_path(&self, oid: &Oid) -> PathBuf {
        fanout(&self.blobs, &oid.hex())
    }

    pub fn lfs_path(&self, sha: &Sha256) -> PathBuf {
        fanout(&self.lfs, &sha.hex())
    }

    /// Stores a regular file's content; returns its git blob id.
    pub fn put_blob(&self, data: &[u8]) -> io::Result<Oid> {
        let oid = blob_oid(data);
        let dest = self.blob_path(&oid);
        if !dest.exists() {
            let mut t = self.temp()?;
            t.file().write_all(data)?;
            t.persist(&dest)?;
        }
        Ok(oid)
    }

    /// Reads a (small) regular blob fully, e.g. `.gitattributes`.
    pub fn read_blob(&self, oid: &Oid) -> io::Result<Vec<u8>> {
        fs::read(self.blob_path(oid))
    }

    /// Size of a stored LFS object, or `None` if it is not stored.
    pub fn lfs_size(&self, sha: &Sha256) -> Option<u64> {
        fs::metadata(self.lfs_path(sha)).ok().map(|m| m.len())
    }

    /// A fresh temp file in the store's own file system, so persisting is a rename.
    pub fn temp(&self) -> io::Result<TempFile> {
        let n = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let path = self.tmp.join(format!("{}-{n}", std::process::id()));
        let file = File::create(&path)?;
        Ok(TempFile {
            path,
            file,
            persisted: false,
        })
    }

    pub fn get_tree(&self, oid: &Oid) -> io::Result<Arc<Tree>> {
        if let Some(t) = self.tree_cache.lock().get(oid) {
            return Ok(t);
        }
        let bytes = fs::read(fanout(&self.trees, &oid.hex()))?;
        let tree = Arc::new(Tree::decode(&bytes)?);
        self.tree_cache
            .lock()
            .put(*oid, tree.clone(), tree.items.len());
        Ok(tree)
    }

    /// Stores a tree (once) and returns its git id.
    pub fn put_tree(&self, tree: Tree) -> io::Result<Oid> {
        let oid = tree.oid();
        let dest = fanout(&self.trees, &oid.hex());
        if !dest.exists() {
            let mut t = self.temp()?;
            t.file().write_all(&tree.encode())?;
            t.persist(&dest)?;
        }
        let weight = tree.items.len();
        self.tree_cache.lock().put(oid, Arc::new(tree), weight);
        Ok(oid)
    }
}

/// A temp file removed on drop unless persisted.
pub struct TempFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Moves the file to `dest` (creating parent directories). A concurrent identical write
    /// simply wins: objects are content-addressed. No fsync: a crash of the emulator (not of the
    /// machine) leaves either the old state or the complete object, which is all tests need.
    pub fn persist(mut self, dest: &Path) -> io::Result<()> {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(&self.path, dest)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}
