//! Directory snapshots: git tree objects annotated with what listings need.
//!
//! A tree's id is the sha1 of git's canonical tree encoding (modes `100644`/`40000`, git sort
//! order), so directory `oid`s match git. On disk the emulator stores each tree once, under that
//! id, in a line format that also keeps every file's size and LFS sha256: listing a directory
//! never has to open the files in it, and unchanged subtrees are shared between commits.

use std::io;

use crate::git::{lfs_pointer, tree_order, Oid, Sha256, TreeHasher};

/// What a file entry needs besides its git id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    /// Real content size (also for LFS files).
    pub size: u64,
    /// LFS object id; `None` for a regular git blob.
    pub lfs: Option<Sha256>,
}

impl FileMeta {
    /// Size of the LFS pointer blob that git stores for an LFS file.
    pub fn pointer_size(&self) -> Option<u64> {
        self.lfs
            .map(|sha| lfs_pointer(&sha, self.size).len() as u64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    File(FileMeta),
    Dir,
}

/// One entry of a tree: its name, git id (blob, LFS-pointer blob, or tree) and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeItem {
    pub name: String,
    pub oid: Oid,
    pub kind: ItemKind,
}

impl TreeItem {
    pub fn is_dir(&self) -> bool {
        self.kind == ItemKind::Dir
    }
}

/// A directory: items in git tree order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub items: Vec<TreeItem>,
}

impl Tree {
    /// Builds a tree from items in any order.
    pub fn from_items(mut items: Vec<TreeItem>) -> Tree {
        items.sort_by(|a, b| tree_order(&a.name, a.is_dir(), &b.name, b.is_dir()));
        Tree { items }
    }

    /// Git's id for this tree.
    pub fn oid(&self) -> Oid {
        let mut h = TreeHasher::new();
        for it in &self.items {
            h.entry(&it.name, it.is_dir(), &it.oid);
        }
        h.finish()
    }

    /// The item called `name`, file or directory.
    pub fn get(&self, name: &str) -> Option<&TreeItem> {
        // Git order depends on the kind, so probe both positions.
        [false, true].into_iter().find_map(|as_dir| {
            self.items
                .binary_search_by(|it| tree_order(&it.name, it.is_dir(), name, as_dir))
                .ok()
                .map(|i| &self.items[i])
        })
    }

    /// On-disk form: one line per item, `f OID SIZE NAME`, `l OID SIZE SHA256 NAME` or
    /// `d OID NAME`. Names never contain a newline (commit validation refuses them).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.items.len() * 64);
        for it in &self.items {
            let line = match it.kind {
                ItemKind::Dir => format!("d {} {}\n", it.oid, it.name),
                ItemKind::File(FileMeta { size, lfs: None }) => {
                    format!("f {} {size} {}\n", it.oid, it.name)
                }
                ItemKind::File(FileMeta {
                    size,
                    lfs: Some(sha),
                }) => format!("l {} {size} {sha} {}\n", it.oid, it.name),
            };
            out.extend_from_slice(line.as_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> io::Result<Tree> {
        let bad = |line: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad tree line {line:?}"),
            )
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut items = Vec::new();
        for line in text.lines() {
            let (tag, rest) = line.split_at_checked(2).ok_or_else(|| bad(line))?;
            let mut parts = rest.splitn(
                if tag == "l " {
                    4
                } else if tag == "f " {
                    3
                } else {
                    2
                },
                ' ',
            );
            let oid = parts
                .next()
                .and_then(Oid::from_hex)
                .ok_or_else(|| bad(line))?;
            let kind = match tag {
                "d " => ItemKind::Dir,
                "f " | "l " => {
                    let size = parts
                        .next()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| bad(line))?;
                    let lfs = if tag == "l " {
                        Some(
                            parts
                                .next()
                                .and_then(Sha256::from_hex)
                                .ok_or_else(|| bad(line))?,
                        )
                    } else {
                        None
                    };
                    ItemKind::File(FileMeta { size, lfs })
                }
                _ => return Err(bad(line)),
            };
            let name = parts.next().ok_or_else(|| bad(line))?.to_string();
            items.push(TreeItem { name, oid, kind });
        }
        Ok(Tree { items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::{blob_oid, EMPTY_TREE_HEX};

    #[test]
    fn encodes_round_trip_and_hashes_like_git() {
        assert_eq!(Tree::default().oid().hex(), EMPTY_TREE_HEX);
        let t = Tree::from_items(vec![
            TreeItem {
                name: "b c.bin".into(),
                oid: blob_oid(b"ptr"),
                kind: ItemKind::File(FileMeta {
                    size: 99,
                    lfs: Some(Sha256([1; 32])),
                }),
            },
            TreeItem {
                name: "a".into(),
                oid: blob_oid(b"hello"),
                kind: ItemKind::File(FileMeta { size: 5, lfs: None }),
            },
            TreeItem {
                name: "dir".into(),
                oid: Tree::default().oid(),
                kind: ItemKind::Dir,
            },
        ]);
        assert_eq!(Tree::decode(&t.encode()).unwrap(), t);
        assert_eq!(t.get("dir").unwrap().kind, ItemKind::Dir);
        assert_eq!(t.get("b c.bin").unwrap().oid, blob_oid(b"ptr"));
        assert!(t.get("zzz").is_none());
    }
}
