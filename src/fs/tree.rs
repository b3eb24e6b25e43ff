//! The file tree of one commit, as far as it has been listed.
//!
//! A `TreeIndex` is filled incrementally from tree-API pages (per directory, or one recursive
//! listing of the whole repo) and answers lookups and directory listings. Because a commit is
//! immutable, anything inserted stays true forever; the only state that changes is which
//! directories are known to be *complete* (all children listed), which decides whether a
//! missing name means ENOENT or "not listed yet".

use std::collections::{BTreeMap, HashMap};

use hex::FromHex;
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
    /// Xet file hash when the Hub stores the content in Xet: reads go through the CAS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xet_hash: Option<String>,
}

impl FileInfo {
    pub fn from_entry(e: &TreeEntry) -> FileInfo {
        FileInfo {
            size: e.content_size(),
            oid: e.oid.clone(),
            lfs_sha256: e.lfs.as_ref().map(|l| l.oid.clone()),
            xet_hash: e.xet_hash.clone(),
        }
    }

    /// A string naming the content: the git blob id, or for bucket files (no git) the Xet
    /// hash. Tells two versions of a path apart (inode keys, kernel page cache reuse).
    pub fn identity(&self) -> &str {
        match &self.xet_hash {
            Some(x) if self.oid.is_empty() => x,
            _ => &self.oid,
        }
    }

    /// Content identity used as the block-cache key: the LFS sha256, else the git blob id,
    /// else (bucket files: no git) the Xet file hash.
    pub fn blob_key(&self) -> Option<BlobKey> {
        match (&self.lfs_sha256, &self.xet_hash) {
            (Some(sha), _) => BlobKey::sha256_hex(sha).ok(),
            (None, Some(xet)) if self.oid.is_empty() => BlobKey::xet_hex(xet).ok(),
            (None, _) => BlobKey::git_sha1_hex(&self.oid).ok(),
        }
    }
}

/// A node of the tree: a file with its content identity, or a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File(FileInfo),
    Dir,
}

/// How the index holds a node: ids as bytes instead of hex strings, the LFS hash boxed (many
/// files have none), so a big listing costs ~150 bytes per entry instead of ~400.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Packed {
    Dir,
    File {
        size: u64,
        oid: PackedId,
        lfs_sha256: Option<Box<PackedId>>,
        xet_hash: Option<Box<PackedId>>,
    },
}

/// A hex object id as bytes when it is canonical (lower-case hex of 20 or 32 bytes), else
/// kept as text so that whatever the Hub sent comes back unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PackedId {
    Sha1([u8; 20]),
    Sha256([u8; 32]),
    Text(Box<str>),
}

impl PackedId {
    fn pack(hex_id: &str) -> PackedId {
        let canonical = hex_id
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if canonical {
            if let Ok(b) = <[u8; 20]>::from_hex(hex_id) {
                return PackedId::Sha1(b);
            }
            if let Ok(b) = <[u8; 32]>::from_hex(hex_id) {
                return PackedId::Sha256(b);
            }
        }
        PackedId::Text(hex_id.into())
    }

    fn unpack(&self) -> String {
        match self {
            PackedId::Sha1(b) => hex::encode(b),
            PackedId::Sha256(b) => hex::encode(b),
            PackedId::Text(t) => t.to_string(),
        }
    }
}

impl Packed {
    fn pack(node: Node) -> Packed {
        match node {
            Node::Dir => Packed::Dir,
            Node::File(f) => Packed::File {
                size: f.size,
                oid: PackedId::pack(&f.oid),
                lfs_sha256: f.lfs_sha256.map(|h| Box::new(PackedId::pack(&h))),
                xet_hash: f.xet_hash.map(|h| Box::new(PackedId::pack(&h))),
            },
        }
    }

    fn unpack(&self) -> Node {
        match self {
            Packed::Dir => Node::Dir,
            Packed::File {
                size,
                oid,
                lfs_sha256,
                xet_hash,
            } => Node::File(FileInfo {
                size: *size,
                oid: oid.unpack(),
                lfs_sha256: lfs_sha256.as_ref().map(|h| h.unpack()),
                xet_hash: xet_hash.as_ref().map(|h| h.unpack()),
            }),
        }
    }

    fn is_file(&self) -> bool {
        matches!(self, Packed::File { .. })
    }
}

#[derive(Debug, Default)]
struct DirState {
    /// Child name → node. Ordered so listings are stable and sorted like `ls`.
    children: BTreeMap<Box<str>, Packed>,
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
    dirs: HashMap<Box<str>, DirState>,
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
        t.dirs.insert("".into(), DirState::default());
        t
    }

    /// Number of files known.
    pub fn file_count(&self) -> usize {
        self.files
    }

    pub fn dir_count(&self) -> usize {
        self.dirs.len()
    }

    /// Files and directories known: what the entry budget counts.
    pub fn node_count(&self) -> usize {
        self.files + self.dirs.len()
    }

    /// Inserts a file or directory and every directory above it.
    pub fn insert(&mut self, path: &str, node: Node) {
        if path.is_empty() {
            return;
        }
        let node = Packed::pack(node);
        if node == Packed::Dir && !self.dirs.contains_key(path) {
            self.dirs.insert(path.into(), DirState::default());
        }
        let (parent, name) = split_parent(path);
        let is_new_file = {
            let dir = self.dir_mut(parent);
            let is_file = node.is_file();
            let prev = dir.children.insert(name.into(), node);
            is_file && !prev.is_some_and(|p| p.is_file())
        };
        if is_new_file {
            self.files += 1;
        }
        // Make sure the ancestors exist and name their children.
        let mut child = parent;
        while !child.is_empty() {
            let (up, name) = split_parent(child);
            let dir = self.dir_mut(up);
            if dir.children.contains_key(name) {
                break;
            }
            dir.children.insert(name.into(), Packed::Dir);
            child = up;
        }
    }

    /// The state of `dir`, created if new (without allocating a key when it exists).
    fn dir_mut(&mut self, dir: &str) -> &mut DirState {
        if !self.dirs.contains_key(dir) {
            self.dirs.insert(dir.into(), DirState::default());
        }
        self.dirs.get_mut(dir).expect("inserted above")
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
        self.dir_mut(dir).complete = true;
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
                Some(n) => Lookup::Found(n.unpack()),
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
                .map(|(k, v)| (k.to_string(), v.unpack()))
                .collect(),
        )
    }

    /// Every file and directory, for persisting a complete index.
    pub fn entries(&self) -> Vec<(String, Node)> {
        self.iter().collect()
    }

    /// Path and node of every file and directory, in no particular order (stable while the
    /// index is not modified), without copying the index.
    pub fn iter(&self) -> impl Iterator<Item = (String, Node)> + '_ {
        self.dirs.iter().flat_map(|(dir, state)| {
            state.children.iter().map(move |(name, node)| {
                let path = if dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{dir}/{name}")
                };
                (path, node.unpack())
            })
        })
    }

    /// Name and node of each child of `dir` known so far, in name order.
    pub fn iter_children<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a str, Node)> + 'a {
        self.dirs.get(dir).into_iter().flat_map(|d| {
            d.children
                .iter()
                .map(|(name, node)| (&**name, node.unpack()))
        })
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
            xet_hash: None,
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
    fn packed_ids_come_back_as_sent() {
        let sha1 = "0123456789abcdef0123456789abcdef01234567";
        let sha256 = "a".repeat(64);
        for id in [
            sha1,
            &sha256,
            "ABCDEF0123456789abcdef0123456789abcdef01",
            "x",
            "",
        ] {
            assert_eq!(PackedId::pack(id).unpack(), id);
        }
        assert!(matches!(PackedId::pack(sha1), PackedId::Sha1(_)));
        let mut t = TreeIndex::new();
        let info = FileInfo {
            size: 7,
            oid: sha1.into(),
            lfs_sha256: Some(sha256.clone()),
            xet_hash: None,
        };
        t.insert("d/f", Node::File(info.clone()));
        assert_eq!(t.get("d/f"), Lookup::Found(Node::File(info.clone())));
        assert_eq!(t.node_count(), 3);
        let kids: Vec<_> = t.iter_children("d").collect();
        assert_eq!(kids, [("f", Node::File(info))]);
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
