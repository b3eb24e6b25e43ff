//! All repos, found by type and case-insensitive id (repo ids are case-insensitive on the Hub;
//! the canonical casing is kept in each repo's metadata).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use super::commits::CommitRec;
use super::repo::{Repo, RepoMeta};
use hub_wire::repo::RepoType;

type Key = (RepoType, String);

pub struct Registry {
    root: PathBuf,
    repos: RwLock<HashMap<Key, Arc<Repo>>>,
}

fn key(t: RepoType, id: &str) -> Key {
    (t, id.to_ascii_lowercase())
}

impl Registry {
    /// Loads every repo under `root/repos`.
    pub fn open(root: &Path) -> io::Result<Registry> {
        let root = root.join("repos");
        let mut repos = HashMap::new();
        for t in RepoType::ALL {
            let dir = root.join(t.plural());
            fs::create_dir_all(&dir)?;
            for entry in fs::read_dir(&dir)? {
                let path = entry?.path();
                if !path.join("repo.json").exists() {
                    // An interrupted create or delete: nothing to serve.
                    continue;
                }
                match Repo::load(&path) {
                    Ok(repo) => {
                        let id = repo.read().meta.id.clone();
                        repos.insert(key(t, &id), Arc::new(repo));
                    }
                    Err(e) => tracing::error!(path = %path.display(), "cannot load repo: {e}"),
                }
            }
        }
        Ok(Registry {
            root,
            repos: RwLock::new(repos),
        })
    }

    /// On-disk folder of a repo: ids never contain `--`, so `ns--name` is unambiguous.
    fn dir_for(&self, t: RepoType, id: &str) -> PathBuf {
        self.root
            .join(t.plural())
            .join(id.to_ascii_lowercase().replace('/', "--"))
    }

    pub fn get(&self, t: RepoType, id: &str) -> Option<Arc<Repo>> {
        self.repos.read().get(&key(t, id)).cloned()
    }

    pub fn exists(&self, t: RepoType, id: &str) -> bool {
        self.repos.read().contains_key(&key(t, id))
    }

    pub fn list(&self, t: RepoType) -> Vec<Arc<Repo>> {
        self.repos
            .read()
            .iter()
            .filter(|((rt, _), _)| *rt == t)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Creates a repo unless one with the same (case-folded) id exists: `Ok(None)` then.
    pub fn create(&self, meta: RepoMeta, initial: CommitRec) -> io::Result<Option<Arc<Repo>>> {
        let k = key(meta.repo_type, &meta.id);
        let mut repos = self.repos.write();
        if repos.contains_key(&k) {
            return Ok(None);
        }
        let dir = self.dir_for(meta.repo_type, &meta.id);
        if dir.exists() {
            // Leftover of an interrupted delete.
            fs::remove_dir_all(&dir)?;
        }
        let repo = Arc::new(Repo::create(&dir, meta, initial)?);
        repos.insert(k, repo.clone());
        Ok(Some(repo))
    }

    /// Deletes a repo's refs and history; objects stay (they may be shared).
    pub fn delete(&self, t: RepoType, id: &str) -> io::Result<bool> {
        let Some(repo) = self.repos.write().remove(&key(t, id)) else {
            return Ok(false);
        };
        repo.mark_deleted();
        // Remove repo.json first so a crash midway never resurrects a half-deleted repo.
        fs::remove_file(repo.dir().join("repo.json"))?;
        fs::remove_dir_all(repo.dir())?;
        Ok(true)
    }
}
