//! Inode numbers and what they stand for.
//!
//! A directory inode names a place: `(view, path)` inside a revision directory, or one of the
//! virtual directories of a whole-Hub mount; after a branch view moves to a new commit, the same
//! directory shows the new listing. A file inode of a read-only view names a place *and a
//! content*: `(view, path, blob id)`, remembering the snapshot it was found in. When a refresh
//! brings a new version of a file, the name leads to a new inode, exactly as if the file had been
//! replaced by an atomic rename: a reader that opened the old one keeps reading the old bytes
//! (and the kernel's cached pages of one version never serve the other). In a writable view a
//! file keeps its `(view, path)` inode while it is written in place and follows renames. Lookup
//! counts follow the kernel's (`forget`), so the table only holds what the kernel still
//! references.

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
    /// A path ("" = the repo root) inside a revision directory: directories, and every file
    /// of a writable view (where a file keeps its inode while its content changes in place).
    Path { view: u64, path: String },
    /// One version of a file of a read-only view: a new version is a new inode.
    File {
        view: u64,
        path: String,
        oid: String,
    },
    /// What a file replaced by a rename became: nothing (its inode number lives on until the
    /// kernel forgets it).
    Orphan(u64),
}

struct Slot {
    key: InodeKey,
    /// The snapshot a `File` inode was found in (its content lives at that commit).
    origin: Option<Arc<Snapshot>>,
    lookups: u64,
    /// Content id seen by the last open, to decide whether the kernel may keep cached pages.
    last_open_oid: Option<String>,
    /// An open of `last_open_oid` since the kernel looked this inode up was served by hubfs:
    /// the kernel's page cache of the inode may hold what hubfs answered (until the kernel
    /// forgets the inode, which takes its pages with it, or another content is opened).
    served: bool,
}

/// What an open learns about the inode's earlier opens.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenHistory {
    /// The last open saw the same content id: pages the kernel cached are still valid.
    pub same_content: bool,
    /// An earlier open was served by hubfs (see `Slot::served`).
    pub served: bool,
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
                served: false,
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

    /// The inode of `key`, created if needed, with its kernel lookup count raised by one
    /// (call it exactly when an entry is handed to the kernel).
    pub fn lookup(&self, key: InodeKey) -> u64 {
        self.lookup_with(key, None)
    }

    /// Like `lookup`, remembering for a new inode the snapshot it was found in.
    pub fn lookup_with(&self, key: InodeKey, origin: Option<Arc<Snapshot>>) -> u64 {
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
                served: false,
            },
        );
        ino
    }

    /// The inode of `key` if the kernel knows it, without counting a lookup.
    pub fn peek(&self, key: &InodeKey) -> Option<u64> {
        self.inner.lock().by_key.get(key).copied()
    }

    /// The snapshot a `File` inode was found in.
    pub fn origin(&self, ino: u64) -> Option<Arc<Snapshot>> {
        self.inner
            .lock()
            .by_ino
            .get(&ino)
            .and_then(|s| s.origin.clone())
    }

    pub fn get(&self, ino: u64) -> Option<InodeKey> {
        self.inner.lock().by_ino.get(&ino).map(|s| s.key.clone())
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

    /// Records the content id opened through `ino` and says what earlier opens left.
    pub fn note_open(&self, ino: u64, oid: &str) -> OpenHistory {
        let mut inner = self.inner.lock();
        match inner.by_ino.get_mut(&ino) {
            Some(slot) => {
                let same_content = slot.last_open_oid.as_deref() == Some(oid);
                if !same_content {
                    slot.last_open_oid = Some(oid.to_string());
                    slot.served = false;
                }
                OpenHistory {
                    same_content,
                    served: slot.served,
                }
            }
            None => OpenHistory::default(),
        }
    }

    /// An open of `ino` is served by hubfs (not passed through): see `Slot::served`.
    pub fn note_served(&self, ino: u64) {
        if let Some(slot) = self.inner.lock().by_ino.get_mut(&ino) {
            slot.served = true;
        }
    }

    /// After a rename of `from` to `to` in `view`: inodes of `from` and everything below it
    /// now name the new place; inodes that named the replaced `to` (and below) name nothing.
    pub fn rename(&self, view: u64, from: &str, to: &str) {
        let mut inner = self.inner.lock();
        let moved = |p: &str, dir: &str| -> Option<String> {
            if p == dir {
                Some(String::new())
            } else {
                p.strip_prefix(dir)
                    .filter(|rest| rest.starts_with('/'))
                    .map(str::to_string)
            }
        };
        let keys: Vec<(InodeKey, u64)> = inner
            .by_key
            .iter()
            .filter(|(k, _)| matches!(k, InodeKey::Path { view: v, .. } if *v == view))
            .map(|(k, i)| (k.clone(), *i))
            .collect();
        for (key, ino) in &keys {
            if let InodeKey::Path { path, .. } = key {
                if moved(path, to).is_some() {
                    inner.by_key.remove(key);
                    if let Some(slot) = inner.by_ino.get_mut(ino) {
                        slot.key = InodeKey::Orphan(*ino);
                    }
                }
            }
        }
        for (key, ino) in keys {
            let InodeKey::Path { path, .. } = &key else {
                continue;
            };
            let Some(rest) = moved(path, from) else {
                continue;
            };
            let new_key = InodeKey::Path {
                view,
                path: format!("{to}{rest}"),
            };
            inner.by_key.remove(&key);
            inner.by_key.insert(new_key.clone(), ino);
            if let Some(slot) = inner.by_ino.get_mut(&ino) {
                slot.key = new_key;
                slot.last_open_oid = None;
                slot.served = false;
            }
        }
    }

    /// After an unlink of `path` in `view`: its inode names nothing any more (handles open
    /// on it keep working; a new file at the path gets a new inode).
    pub fn orphan(&self, view: u64, path: &str) {
        let mut inner = self.inner.lock();
        let key = InodeKey::Path {
            view,
            path: path.to_string(),
        };
        if let Some(ino) = inner.by_key.remove(&key) {
            if let Some(slot) = inner.by_ino.get_mut(&ino) {
                slot.key = InodeKey::Orphan(ino);
            }
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
        let a = t.lookup(path("a"));
        assert_eq!(t.lookup(path("a")), a);
        assert_ne!(a, ROOT_INO);
        t.forget(a, 1);
        assert_eq!(t.get(a), Some(path("a")));
        t.forget(a, 1);
        assert_eq!(t.get(a), None);
        assert_ne!(t.lookup(path("a")), a, "numbers are not reused");
        t.forget(ROOT_INO, 1000);
        assert_eq!(t.get(ROOT_INO), Some(InodeKey::HubRoot));
    }

    #[test]
    fn keep_cache_only_when_content_is_unchanged() {
        let t = InodeTable::new(InodeKey::HubRoot);
        let a = t.lookup(path("f"));
        assert!(!t.note_open(a, "x").same_content);
        assert!(t.note_open(a, "x").same_content);
        assert!(!t.note_open(a, "y").same_content);
    }

    #[test]
    fn a_served_inode_is_remembered_until_the_kernel_forgets_it() {
        let t = InodeTable::new(InodeKey::HubRoot);
        let a = t.lookup(path("f"));
        assert!(!t.note_open(a, "x").served);
        t.note_served(a);
        assert!(t.note_open(a, "x").served);
        assert!(
            !t.note_open(a, "y").served,
            "other content: its pages are not cached"
        );
        assert!(
            !t.note_open(a, "y").served,
            "the other content was not served yet"
        );
        t.note_served(a);
        t.forget(a, 1);
        let again = t.lookup(path("f"));
        assert!(
            !t.note_open(again, "y").served,
            "the kernel's pages went with the inode"
        );
    }

    #[test]
    fn rename_moves_inodes_below_and_orphans_the_replaced_target() {
        let t = InodeTable::new(InodeKey::HubRoot);
        let d = t.lookup(path("d"));
        let f = t.lookup(path("d/f"));
        let other = t.lookup(path("dx"));
        let old_target = t.lookup(path("e"));
        t.rename(0, "d", "e");
        assert_eq!(t.get(d), Some(path("e")));
        assert_eq!(t.get(f), Some(path("e/f")));
        assert_eq!(
            t.get(other),
            Some(path("dx")),
            "a sibling with the prefix stays"
        );
        assert_eq!(t.get(old_target), Some(InodeKey::Orphan(old_target)));
        assert_eq!(t.peek(&path("e")), Some(d));
    }
}
