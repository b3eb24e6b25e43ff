//! Reading snapshots: find a path in a commit's tree, list a directory (optionally recursively)
//! with a cache of flattened listings so paging through 100k entries costs one walk, and find
//! the last commit that touched each path (`expand=true`).

use std::io;
use std::sync::Arc;

use parking_lot::Mutex;

use super::commits::CommitRec;
use super::lru::WeightedLru;
use super::objects::Objects;
use super::repo::RepoState;
use super::tree::ItemKind;
use crate::git::Oid;

/// Upper bound on cached listing entries, all listings together.
const LISTING_CACHE_ENTRIES: usize = 400_000;

/// A file or directory at a full path inside a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the repo root; empty for the root itself.
    pub path: String,
    pub oid: Oid,
    pub kind: ItemKind,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.kind == ItemKind::Dir
    }
}

/// Listing cache key: (tree id, path prefix of that tree, recursive).
type ListKey = (Oid, String, bool);

pub struct Listings {
    cache: Mutex<WeightedLru<ListKey, Arc<Vec<Entry>>>>,
}

impl Default for Listings {
    fn default() -> Self {
        Listings {
            cache: Mutex::new(WeightedLru::new(LISTING_CACHE_ENTRIES)),
        }
    }
}

/// Finds `path` below the tree `root`; the empty path is the root directory itself.
pub fn lookup(objects: &Objects, root: &Oid, path: &str) -> io::Result<Option<Entry>> {
    let mut cur = Entry {
        path: String::new(),
        oid: *root,
        kind: ItemKind::Dir,
    };
    if path.is_empty() {
        return Ok(Some(cur));
    }
    for seg in path.split('/') {
        if !cur.is_dir() {
            return Ok(None);
        }
        let tree = objects.get_tree(&cur.oid)?;
        let Some(item) = tree.get(seg) else {
            return Ok(None);
        };
        cur = Entry {
            path: String::new(),
            oid: item.oid,
            kind: item.kind,
        };
    }
    cur.path = path.to_string();
    Ok(Some(cur))
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Depth-first, pre-order walk in git tree order (a directory, then its contents).
fn walk(
    objects: &Objects,
    tree: &Oid,
    prefix: &str,
    recursive: bool,
    out: &mut Vec<Entry>,
) -> io::Result<()> {
    let t = objects.get_tree(tree)?;
    for it in &t.items {
        let path = join(prefix, &it.name);
        let is_dir = it.is_dir();
        out.push(Entry {
            path: path.clone(),
            oid: it.oid,
            kind: it.kind,
        });
        if recursive && is_dir {
            walk(objects, &it.oid, &path, true, out)?;
        }
    }
    Ok(())
}

impl Listings {
    /// Entries below the directory `dir` (whose path is `prefix`), cached per tree id.
    pub fn list(
        &self,
        objects: &Objects,
        dir: &Oid,
        prefix: &str,
        recursive: bool,
    ) -> io::Result<Arc<Vec<Entry>>> {
        let key = (*dir, prefix.to_string(), recursive);
        if let Some(hit) = self.cache.lock().get(&key) {
            return Ok(hit);
        }
        let mut out = Vec::new();
        walk(objects, dir, prefix, recursive, &mut out)?;
        let out = Arc::new(out);
        self.cache.lock().put(key, out.clone(), out.len());
        Ok(out)
    }
}

/// For each entry, the newest commit (first-parent history from `head`) that changed it.
pub fn last_commits(
    objects: &Objects,
    state: &RepoState,
    head: &Arc<CommitRec>,
    entries: &[&Entry],
) -> io::Result<Vec<Arc<CommitRec>>> {
    let mut result: Vec<Option<Arc<CommitRec>>> = vec![None; entries.len()];
    let mut pending: Vec<usize> = (0..entries.len()).collect();
    let mut cur = head.clone();
    while !pending.is_empty() {
        let Some(parent) = cur.parent.and_then(|p| state.commit(&p)) else {
            break;
        };
        if parent.tree != cur.tree {
            let mut still = Vec::with_capacity(pending.len());
            for i in pending {
                let e = entries[i];
                let before = lookup(objects, &parent.tree, &e.path)?;
                if before.is_some_and(|b| b.oid == e.oid && b.kind == e.kind) {
                    still.push(i);
                } else {
                    result[i] = Some(cur.clone());
                }
            }
            pending = still;
        }
        cur = parent;
    }
    // Whatever is left was there since the oldest commit reached.
    Ok(result
        .into_iter()
        .map(|r| r.unwrap_or_else(|| cur.clone()))
        .collect())
}
