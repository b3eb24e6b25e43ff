//! One repository's mutable state: settings, refs (branches, tags, PRs, convert refs) and its
//! commits, persisted under `repos/{type}s/{id}/` as `repo.json` (rewritten atomically) and
//! `commits.jsonl` (append-only). Files and trees live in the shared object store.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard};
use serde::{Deserialize, Serialize};

use super::commits::{append_log, read_log, write_log, CommitRec};
use crate::git::Oid;
use hub_wire::repo::RepoType;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TagMeta {
    pub target: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrMeta {
    pub target: String,
    /// Branch the pull request was opened against.
    #[serde(default = "main_branch")]
    pub base: String,
    pub title: String,
    pub author: String,
    pub created_ms: u64,
}

fn main_branch() -> String {
    "main".into()
}

/// Persisted settings and refs of a repo. Ref targets are 40-hex commit ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoMeta {
    pub repo_type: RepoType,
    /// Canonical casing of the id.
    pub id: String,
    /// Stable 24-hex id, like the Hub's `_id`.
    pub mongo_id: String,
    pub private: bool,
    /// `false`, `"auto"` or `"manual"`.
    pub gated: serde_json::Value,
    pub created_ms: u64,
    /// Who created the repo (owner of legacy ids without a namespace).
    pub creator: String,
    /// Spaces only.
    #[serde(default)]
    pub sdk: Option<String>,
    pub branches: BTreeMap<String, String>,
    pub tags: BTreeMap<String, TagMeta>,
    pub prs: BTreeMap<u64, PrMeta>,
    pub converts: BTreeMap<String, String>,
    /// Next discussion / pull request number.
    pub next_num: u64,
}

impl RepoMeta {
    pub fn namespace(&self) -> Option<&str> {
        self.id.split_once('/').map(|(ns, _)| ns)
    }
}

/// In-memory state of a repo.
pub struct RepoState {
    pub meta: RepoMeta,
    pub commits: HashMap<Oid, Arc<CommitRec>>,
    /// Set when the repo is deleted while a request still holds it.
    pub deleted: bool,
}

impl RepoState {
    pub fn commit(&self, id: &Oid) -> Option<Arc<CommitRec>> {
        self.commits.get(id).cloned()
    }

    /// Commit a ref target (hex) points to.
    pub fn target(&self, hex: &str) -> Option<Arc<CommitRec>> {
        Oid::from_hex(hex).and_then(|o| self.commit(&o))
    }
}

pub struct Repo {
    pub repo_type: RepoType,
    dir: PathBuf,
    state: RwLock<RepoState>,
    /// Serializes writers (commits, ref changes) without blocking readers.
    write_lock: tokio::sync::Mutex<()>,
}

fn meta_path(dir: &Path) -> PathBuf {
    dir.join("repo.json")
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("commits.jsonl")
}

fn write_meta(dir: &Path, meta: &RepoMeta) -> io::Result<()> {
    let tmp = dir.join("repo.json.tmp");
    fs::write(
        &tmp,
        serde_json::to_vec_pretty(meta).map_err(io::Error::other)?,
    )?;
    fs::rename(tmp, meta_path(dir))
}

impl Repo {
    pub fn load(dir: &Path) -> io::Result<Repo> {
        let meta: RepoMeta = serde_json::from_slice(&fs::read(meta_path(dir))?)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let commits = read_log(&log_path(dir))?
            .into_iter()
            .map(|c| (c.id, Arc::new(c)))
            .collect();
        Ok(Repo {
            repo_type: meta.repo_type,
            dir: dir.to_path_buf(),
            state: RwLock::new(RepoState {
                meta,
                commits,
                deleted: false,
            }),
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Writes a new repo's files; `meta.branches` must already point at `initial`.
    pub fn create(dir: &Path, meta: RepoMeta, initial: CommitRec) -> io::Result<Repo> {
        fs::create_dir_all(dir)?;
        write_log(&log_path(dir), std::slice::from_ref(&initial))?;
        write_meta(dir, &meta)?;
        Ok(Repo {
            repo_type: meta.repo_type,
            dir: dir.to_path_buf(),
            state: RwLock::new(RepoState {
                meta,
                commits: HashMap::from([(initial.id, Arc::new(initial))]),
                deleted: false,
            }),
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Takes the writer lock; `None` if the repo was deleted meanwhile (e.g. by the writer this
    /// one waited behind), so nothing is written into a removed repo.
    pub async fn writer(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        let guard = self.write_lock.lock().await;
        (!self.state.read().deleted).then_some(guard)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn read(&self) -> RwLockReadGuard<'_, RepoState> {
        self.state.read()
    }

    /// Records a new commit (log first, so a crash never leaves a ref to an unknown commit).
    pub fn add_commit(&self, c: CommitRec) -> io::Result<Arc<CommitRec>> {
        if let Some(existing) = self.state.read().commits.get(&c.id) {
            return Ok(existing.clone());
        }
        append_log(&log_path(&self.dir), &c)?;
        let c = Arc::new(c);
        self.state.write().commits.insert(c.id, c.clone());
        Ok(c)
    }

    /// Changes settings or refs and persists them; `f` may refuse by returning `Err`.
    pub fn update<R, E: From<io::Error>>(
        &self,
        f: impl FnOnce(&mut RepoMeta) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut st = self.state.write();
        let mut meta = st.meta.clone();
        let r = f(&mut meta)?;
        write_meta(&self.dir, &meta)?;
        st.meta = meta;
        Ok(r)
    }

    pub(super) fn mark_deleted(&self) {
        self.state.write().deleted = true;
    }
}
