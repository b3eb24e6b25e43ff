//! Applying a commit's operations to a snapshot: file additions, file and folder deletions,
//! producing new trees only for the directories that changed (everything else is shared).

use std::collections::BTreeMap;
use std::io;

use super::objects::Objects;
use super::tree::{FileMeta, ItemKind, Tree, TreeItem};
use crate::git::Oid;

/// One change, in commit order.
#[derive(Debug, Clone)]
pub enum Op {
    Put {
        path: String,
        oid: Oid,
        meta: FileMeta,
    },
    /// Deletes a file, or a whole folder when the path is a directory (the Hub accepts that).
    DeleteFile(String),
    DeleteFolder(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

enum Node {
    File(Oid, FileMeta),
    Dir(Dir),
}

/// A directory being edited: untouched until loaded, rewritten only if dirty.
struct Dir {
    oid: Option<Oid>,
    children: Option<BTreeMap<String, Node>>,
    dirty: bool,
}

impl Dir {
    fn existing(oid: Oid) -> Dir {
        Dir {
            oid: Some(oid),
            children: None,
            dirty: false,
        }
    }

    fn new_empty() -> Dir {
        Dir {
            oid: None,
            children: Some(BTreeMap::new()),
            dirty: true,
        }
    }

    /// No file below it (its files were all deleted earlier in the same commit): git has no
    /// empty directories, so it is gone.
    fn is_empty(&mut self, objects: &Objects) -> io::Result<bool> {
        for node in self.children(objects)?.values_mut() {
            match node {
                Node::File(..) => return Ok(false),
                Node::Dir(d) => {
                    if !d.is_empty(objects)? {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    fn children(&mut self, objects: &Objects) -> io::Result<&mut BTreeMap<String, Node>> {
        if self.children.is_none() {
            let mut map = BTreeMap::new();
            if let Some(oid) = self.oid {
                for it in &objects.get_tree(&oid)?.items {
                    let node = match it.kind {
                        ItemKind::Dir => Node::Dir(Dir::existing(it.oid)),
                        ItemKind::File(m) => Node::File(it.oid, m),
                    };
                    map.insert(it.name.clone(), node);
                }
            }
            self.children = Some(map);
        }
        Ok(self.children.get_or_insert_with(BTreeMap::new))
    }

    /// Walks to the parent directory of `path`, creating missing directories if `create`.
    fn parent_of<'a>(
        &'a mut self,
        objects: &Objects,
        path: &str,
        create: bool,
    ) -> Result<Option<&'a mut Dir>, ApplyError> {
        let segs: Vec<&str> = path.split('/').collect();
        let mut cur = self;
        cur.dirty = true;
        for (i, seg) in segs[..segs.len() - 1].iter().enumerate() {
            let children = cur.children(objects)?;
            if !children.contains_key(*seg) {
                if !create {
                    return Ok(None);
                }
                children.insert(seg.to_string(), Node::Dir(Dir::new_empty()));
            }
            match children.get_mut(*seg) {
                Some(Node::Dir(d)) => {
                    d.dirty = true;
                    cur = d;
                }
                _ if create => {
                    return Err(ApplyError::Conflict(format!(
                        "cannot create {path}: {} is a file",
                        segs[..=i].join("/")
                    )))
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// Writes the dirty directories bottom-up; `None` when the directory ended up empty.
    fn store(self, objects: &Objects) -> io::Result<Option<Oid>> {
        if !self.dirty {
            return Ok(self.oid);
        }
        let mut items = Vec::new();
        for (name, node) in self.children.unwrap_or_default() {
            match node {
                Node::File(oid, meta) => items.push(TreeItem {
                    name,
                    oid,
                    kind: ItemKind::File(meta),
                }),
                Node::Dir(d) => {
                    if let Some(oid) = d.store(objects)? {
                        items.push(TreeItem {
                            name,
                            oid,
                            kind: ItemKind::Dir,
                        });
                    }
                }
            }
        }
        if items.is_empty() {
            return Ok(None);
        }
        objects.put_tree(Tree::from_items(items)).map(Some)
    }
}

fn leaf(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Applies `ops` in order to the tree `base`; returns the new root tree id.
pub fn apply(objects: &Objects, base: &Oid, ops: &[Op]) -> Result<Oid, ApplyError> {
    let mut root = Dir::existing(*base);
    for op in ops {
        match op {
            Op::Put { path, oid, meta } => {
                let dir = root
                    .parent_of(objects, path, true)?
                    .ok_or_else(|| ApplyError::Conflict(path.clone()))?;
                let children = dir.children(objects)?;
                if let Some(Node::Dir(d)) = children.get_mut(leaf(path)) {
                    if !d.is_empty(objects)? {
                        return Err(ApplyError::Conflict(format!(
                            "cannot write {path}: it is a directory"
                        )));
                    }
                }
                children.insert(leaf(path).to_string(), Node::File(*oid, *meta));
            }
            Op::DeleteFile(path) | Op::DeleteFolder(path) => {
                let path = path.trim_end_matches('/');
                let missing = || {
                    ApplyError::NotFound(if matches!(op, Op::DeleteFile(_)) {
                        format!("A file with this name doesn't exist: {path}")
                    } else {
                        format!("A folder with this name doesn't exist: {path}")
                    })
                };
                let dir = root.parent_of(objects, path, false)?.ok_or_else(missing)?;
                dir.children(objects)?
                    .remove(leaf(path))
                    .ok_or_else(missing)?;
            }
        }
    }
    Ok(match root.store(objects)? {
        Some(oid) => oid,
        None => objects.put_tree(Tree::default())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::blob_oid;
    use crate::store::listing::lookup;

    fn put(objects: &Objects, path: &str, data: &[u8]) -> Op {
        let oid = objects.put_blob(data).unwrap();
        Op::Put {
            path: path.into(),
            oid,
            meta: FileMeta {
                size: data.len() as u64,
                lfs: None,
            },
        }
    }

    #[test]
    fn edits_share_untouched_subtrees() {
        let dir = tempfile::tempdir().unwrap();
        let o = Objects::open(dir.path()).unwrap();
        let empty = o.put_tree(Tree::default()).unwrap();
        let r1 = apply(
            &o,
            &empty,
            &[put(&o, "a/x.txt", b"x"), put(&o, "b/y.txt", b"y")],
        )
        .unwrap();
        let r2 = apply(&o, &r1, &[put(&o, "a/z.txt", b"z")]).unwrap();
        let b1 = lookup(&o, &r1, "b").unwrap().unwrap();
        let b2 = lookup(&o, &r2, "b").unwrap().unwrap();
        assert_eq!(b1.oid, b2.oid);
        assert_eq!(
            lookup(&o, &r2, "a/z.txt").unwrap().unwrap().oid,
            blob_oid(b"z")
        );

        // Deleting the last file of a directory removes the directory.
        let r3 = apply(&o, &r2, &[Op::DeleteFile("b/y.txt".into())]).unwrap();
        assert!(lookup(&o, &r3, "b").unwrap().is_none());
        // Deleting a folder recursively; deleting a missing file fails.
        let r4 = apply(&o, &r3, &[Op::DeleteFolder("a/".into())]).unwrap();
        assert_eq!(r4, empty);
        assert!(matches!(
            apply(&o, &r4, &[Op::DeleteFile("nope".into())]),
            Err(ApplyError::NotFound(_))
        ));
        assert!(matches!(
            apply(&o, &r2, &[put(&o, "a/x.txt/deeper", b"1")]),
            Err(ApplyError::Conflict(_))
        ));
    }
}
