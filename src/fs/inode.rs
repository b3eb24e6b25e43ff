//! Inode numbers and what they stand for.
//!
//! A directory inode names a place: `(view, path)` inside a revision directory, or one of the
//! virtual directories of a whole-Hub mount; after a branch view moves to a new commit, the same
//! directory shows the new listing. A file inode names a place *and a content*: `(view, path,
//! blob id)`, remembering the snapshot it was found in. When a refresh brings a new version of a
//! file, the name leads to a new inode, exactly as if the file had been replaced by an atomic
//! rename: a reader that opened the old one keeps reading the old bytes (and the kernel's
//! cached pages of one version never serve the other). Lookup counts follow the kernel's
//! (`forget`), so the table only holds what the kernel still references.

use std::collections::HashMap;

use std::sync::Arc;

use parking_lot::Mutex;

use super::snapshot::Snapshot;
use crate::repo::RepoType;

pub const ROOT_INO: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InodeKey {
    /// Root of a whole-Hub mount: models' namespaces, plus `datasets/` and `spaces/`.
    HubRoot,
    /// `datasets/` or `spaces/` of a whole-Hub mount.
    TypeRoot(RepoType),
    /// An author's directory of repos of one type.
    Namespace(RepoType, String),
    /// A directory ("" = the repo root) inside a revision directory.
    Path { view: u64, path: String },
    /// One version of a file inside a revision directory.
    File {
        view: u64,
        path: String,
        oid: String,
    },
}

struct Slot {
    key: InodeKey,
    /// The snapshot a file inode was found in (its content lives at that commit).
    origin: Option<Arc<Snapshot>>,
    lookups: u64,
    /// Content id seen by the last open, to decide whether the kernel may keep cached pages.
    last_open_oid: Option<String>,
}

struct Inner {
    by_ino: HashMap<u64, Slot>,
    by_key: HashMap<InodeKey, u64>,
    next: u64,
}

pub struct InodeTable {
    inner: Mutex<Inner>,
}

impl InodeTable {
    pub fn new(root: InodeKey) -> InodeTable {
        let mut by_ino = HashMap::new();
        let mut by_key = HashMap::new();
        by_key.insert(root.clone(), ROOT_INO);
        by_ino.insert(
            ROOT_INO,
            Slot {
                key: root,
                origin: None,
                // The root is never forgotten.
                lookups: u64::MAX / 2,
                last_open_oid: None,
            },
        );
        InodeTable {
            inner: Mutex::new(Inner {
                by_ino,
                by_key,
                next: ROOT_INO + 1,
            }),
        }
    }

    /// The inode of `key`, created if needed (remembering `origin`), with its kernel lookup
    /// count raised by one (call it exactly when an entry is handed to the kernel).
    pub fn lookup(&self, key: InodeKey, origin: Option<Arc<Snapshot>>) -> u64 {
        let mut inner = self.inner.lock();
        if let Some(&ino) = inner.by_key.get(&key) {
            if let Some(slot) = inner.by_ino.get_mut(&ino) {
                slot.lookups += 1;
            }
            return ino;
        }
        let ino = inner.next;
        inner.next += 1;
        inner.by_key.insert(key.clone(), ino);
        inner.by_ino.insert(
            ino,
            Slot {
                key,
                origin,
                lookups: 1,
                last_open_oid: None,
            },
        );
        ino
    }

    /// The inode of `key` if the kernel knows it, without counting a lookup.
    pub fn peek(&self, key: &InodeKey) -> Option<u64> {
        self.inner.lock().by_key.get(key).copied()
    }

    pub fn get(&self, ino: u64) -> Option<(InodeKey, Option<Arc<Snapshot>>)> {
        self.inner
            .lock()
            .by_ino
            .get(&ino)
            .map(|s| (s.key.clone(), s.origin.clone()))
    }

    /// Drops `n` kernel references; the inode number dies with the last one.
    pub fn forget(&self, ino: u64, n: u64) {
        let mut inner = self.inner.lock();
        let remove = match inner.by_ino.get_mut(&ino) {
            Some(slot) => {
                slot.lookups = slot.lookups.saturating_sub(n);
                slot.lookups == 0
            }
            None => false,
        };
        if remove {
            if let Some(slot) = inner.by_ino.remove(&ino) {
                inner.by_key.remove(&slot.key);
            }
        }
    }

    /// Records the content id opened through `ino`; true if it is the same as the last open's,
    /// i.e. pages the kernel cached for this inode are still valid.
    pub fn note_open(&self, ino: u64, oid: &str) -> bool {
        let mut inner = self.inner.lock();
        match inner.by_ino.get_mut(&ino) {
            Some(slot) => {
                let same = slot.last_open_oid.as_deref() == Some(oid);
                slot.last_open_oid = Some(oid.to_string());
                same
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().by_ino.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> InodeKey {
        InodeKey::Path {
            view: 0,
            path: p.into(),
        }
    }

    #[test]
    fn inodes_live_until_the_kernel_forgets_them() {
        let t = InodeTable::new(InodeKey::HubRoot);
        let a = t.lookup(path("a"), None);
        assert_eq!(t.lookup(path("a"), None), a);
        assert_ne!(a, ROOT_INO);
        t.forget(a, 1);
        assert_eq!(t.get(a).map(|g| g.0), Some(path("a")));
        t.forget(a, 1);
        assert!(t.get(a).is_none());
        assert_ne!(t.lookup(path("a"), None), a, "numbers are not reused");
        t.forget(ROOT_INO, 1000);
        assert_eq!(t.get(ROOT_INO).map(|g| g.0), Some(InodeKey::HubRoot));
    }

    #[test]
    fn keep_cache_only_when_content_is_unchanged() {
        let t = InodeTable::new(InodeKey::HubRoot);
        let a = t.lookup(path("f"), None);
        assert!(!t.note_open(a, "x"));
        assert!(t.note_open(a, "x"));
        assert!(!t.note_open(a, "y"));
    }
}
