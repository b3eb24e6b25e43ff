//! The file tree of one commit, as far as it has been listed.
//!
//! A `TreeIndex` is filled incrementally from tree-API pages (per directory, or one recursive
//! listing of the whole repo) and answers lookups and directory listings. Because a commit is
//! immutable, anything inserted stays true forever; the only state that changes is which
//! directories are known to be *complete* (all children listed), which decides whether a
//! missing name means ENOENT or "not listed yet".

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::cache::BlobKey;
use crate::hub::types::TreeEntry;

/// What a reader needs to know about a file of a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Content size in bytes.
    pub size: u64,
    /// Git blob id (of the LFS pointer for LFS files).
    pub oid: String,
    /// sha256 of the content for LFS files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lfs_sha256: Option<String>,
}

impl FileInfo {
    pub fn from_entry(e: &TreeEntry) -> FileInfo {
        FileInfo {
            size: e.content_size(),
            oid: e.oid.clone(),
            lfs_sha256: e.lfs.as_ref().map(|l| l.oid.clone()),
        }
    }

    /// Content identity used as the block-cache key: the LFS sha256, else the git blob id.
    pub fn blob_key(&self) -> Option<BlobKey> {
        match &self.lfs_sha256 {
            Some(sha) => BlobKey::sha256_hex(sha).ok(),
            None => BlobKey::git_sha1_hex(&self.oid).ok(),
        }
    }
}

/// A node of the tree: a file with its content identity, or a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File(FileInfo),
    Dir,
}

#[derive(Debug, Default)]
struct DirState {
    /// Child name → node. Ordered so listings are stable and sorted like `ls`.
    children: BTreeMap<String, Node>,
    complete: bool,
}

/// Outcome of looking up a name in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Node),
    /// The directory is completely listed and has no such child.
    Absent,
    /// Not known yet: the directory must be listed first.
    Unknown,
}

#[derive(Debug, Default)]
pub struct TreeIndex {
    /// Directory path ("" = root) → children.
    dirs: HashMap<String, DirState>,
    /// Every directory listed (or implied) as complete once a recursive listing of the root ended.
    all_complete: bool,
    files: usize,
}

fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

impl TreeIndex {
    pub fn new() -> TreeIndex {
        let mut t = TreeIndex::default();
        t.dirs.insert(String::new(), DirState::default());
        t
    }

    /// Number of files known.
    pub fn file_count(&self) -> usize {
        self.files
    }

    pub fn dir_count(&self) -> usize {
        self.dirs.len()
    }

    /// Inserts a file or directory and every directory above it.
    pub fn insert(&mut self, path: &str, node: Node) {
        if path.is_empty() {
            return;
        }
        if matches!(node, Node::Dir) {
            self.dirs.entry(path.to_string()).or_default();
        }
        let (parent, name) = split_parent(path);
        let is_new_file = {
            let dir = self.dirs.entry(parent.to_string()).or_default();
            let is_file = matches!(node, Node::File(_));
            let prev = dir.children.insert(name.to_string(), node);
            is_file && !matches!(prev, Some(Node::File(_)))
        };
        if is_new_file {
            self.files += 1;
        }
        // Make sure the ancestors exist and name their children.
        let mut child = parent;
        while !child.is_empty() {
            let (up, name) = split_parent(child);
            let dir = self.dirs.entry(up.to_string()).or_default();
            if dir.children.contains_key(name) {
                break;
            }
            dir.children.insert(name.to_string(), Node::Dir);
            child = up;
        }
    }

    pub fn insert_entry(&mut self, e: &TreeEntry) {
        let node = if e.is_dir() {
            Node::Dir
        } else {
            Node::File(FileInfo::from_entry(e))
        };
        self.insert(&e.path, node);
    }

    /// Records that `dir`'s children are all known.
    pub fn mark_complete(&mut self, dir: &str) {
        self.dirs.entry(dir.to_string()).or_default().complete = true;
    }

    /// Records that a recursive listing of the whole repo ended: everything is known.
    pub fn mark_all_complete(&mut self) {
        self.all_complete = true;
        for d in self.dirs.values_mut() {
            d.complete = true;
        }
    }

    pub fn all_complete(&self) -> bool {
        self.all_complete
    }

    pub fn is_complete(&self, dir: &str) -> bool {
        self.all_complete || self.dirs.get(dir).is_some_and(|d| d.complete)
    }

    /// The node at `path` ("" = root).
    pub fn get(&self, path: &str) -> Lookup {
        if path.is_empty() {
            return Lookup::Found(Node::Dir);
        }
        let (parent, name) = split_parent(path);
        match self.dirs.get(parent) {
            Some(d) => match d.children.get(name) {
                Some(n) => Lookup::Found(n.clone()),
                None if d.complete || self.all_complete => Lookup::Absent,
                None => Lookup::Unknown,
            },
            None if self.all_complete => Lookup::Absent,
            None => Lookup::Unknown,
        }
    }

    /// Children of a complete directory, sorted by name; None if not completely listed.
    pub fn children(&self, dir: &str) -> Option<Vec<(String, Node)>> {
        let d = self.dirs.get(dir)?;
        if !(d.complete || self.all_complete) {
            return None;
        }
        Some(
            d.children
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// Every file and directory, for persisting a complete index.
    pub fn entries(&self) -> Vec<(String, Node)> {
        let mut out = Vec::with_capacity(self.files + self.dirs.len());
        for (dir, state) in &self.dirs {
            for (name, node) in &state.children {
                let path = if dir.is_empty() {
                    name.clone()
                } else {
                    format!("{dir}/{name}")
                };
                out.push((path, node.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64) -> Node {
        Node::File(FileInfo {
            size,
            oid: "0".repeat(40),
            lfs_sha256: None,
        })
    }

    #[test]
    fn lookups_distinguish_absent_from_unknown() {
        let mut t = TreeIndex::new();
        t.insert("a/b/c.txt", file(3));
        assert_eq!(t.get("a"), Lookup::Found(Node::Dir));
        assert_eq!(t.get("a/b"), Lookup::Found(Node::Dir));
        assert_eq!(t.get("a/b/c.txt"), Lookup::Found(file(3)));
        assert_eq!(t.get("a/b/d.txt"), Lookup::Unknown);
        assert_eq!(t.children("a/b"), None);
        t.mark_complete("a/b");
        assert_eq!(t.get("a/b/d.txt"), Lookup::Absent);
        assert_eq!(t.children("a/b").unwrap().len(), 1);
        assert_eq!(t.get("zzz"), Lookup::Unknown);
        t.mark_all_complete();
        assert_eq!(t.get("zzz"), Lookup::Absent);
        assert_eq!(t.get("x/y/z"), Lookup::Absent);
        assert_eq!(t.file_count(), 1);
    }

    #[test]
    fn entries_round_trip() {
        let mut t = TreeIndex::new();
        t.insert("x.bin", file(10));
        t.insert("d/e/f", file(1));
        t.insert("empty-listed-dir", Node::Dir);
        let mut entries = t.entries();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let paths: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(paths, ["d", "d/e", "d/e/f", "empty-listed-dir", "x.bin"]);
        let mut u = TreeIndex::new();
        for (p, n) in entries {
            u.insert(&p, n);
        }
        u.mark_all_complete();
        assert_eq!(u.file_count(), 2);
        assert_eq!(u.children("").unwrap().len(), 3);
    }
}
