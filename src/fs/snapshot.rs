//! A snapshot: one repo at one commit, the immutable thing every revision directory serves.
//!
//! Resolving a revision (branch, tag, sha, PR ref) yields a commit; everything below is read
//! from that commit's tree, so listings, sizes and bytes never change under a reader and can be
//! cached for good. Metadata arrives three ways, cheapest first:
//! 1. the persisted complete listing of the commit (a previous mount listed it);
//! 2. the `siblings` of the repo-info answer that resolved the revision: file names, sizes and
//!    ids in the same round trip, used as positive hints so the first lookup costs nothing;
//! 3. the tree API: one directory on demand, plus one recursive listing of the whole repo
//!    started by the first `readdir`, which completes every directory when it ends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::errno::Errno;
use super::services::Services;
use super::tree::{FileInfo, Lookup, Node, TreeIndex};
use crate::hub::types::RepoInfo;
use crate::hub::{HubError, ListingLimits};
use crate::repo::{RepoRef, RepoType};

/// Why a snapshot could not be opened. Shown to users by `hubfs mount`.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("offline: {0}")]
    NotCached(String),
    #[error("the Hub answered without a commit id for {0}")]
    NoCommit(String),
}

impl From<&SnapshotError> for Errno {
    fn from(e: &SnapshotError) -> Errno {
        match e {
            SnapshotError::Hub(h) => Errno::from(h),
            SnapshotError::NotCached(_) => Errno::ENOENT,
            SnapshotError::NoCommit(_) => Errno::EIO,
        }
    }
}

/// What is remembered about a resolved revision, for offline mounts.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RevisionRecord {
    commit: String,
    private: bool,
    mtime_secs: u64,
    /// Fingerprints of tokens that could read this (private) repo; offline mounts of a private
    /// repo need one of them, so the cache never shows a private repo to a stranger.
    tokens: Vec<String>,
}

/// Compact persisted form of a tree entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredEntry {
    p: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    f: Option<FileInfo>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredTree {
    complete: bool,
    entries: Vec<StoredEntry>,
}

type LoadFuture = Shared<BoxFuture<'static, Result<(), Errno>>>;

#[derive(Default)]
enum FullListing {
    #[default]
    NotStarted,
    Running,
    Done,
}

pub struct Snapshot {
    pub repo: RepoRef,
    pub commit: String,
    /// Date of the commit: the mtime of everything in the snapshot.
    pub mtime: SystemTime,
    pub private: bool,
    index: RwLock<TreeIndex>,
    hints: HashMap<String, Node>,
    dir_loads: Mutex<HashMap<String, LoadFuture>>,
    full: Mutex<FullListing>,
    svc: Arc<Services>,
}

fn parent_of(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

fn tree_key(repo: &RepoRef, commit: &str) -> String {
    format!(
        "{}/{}/{}",
        repo.repo_type.plural(),
        repo.id.folded(),
        commit
    )
}

fn rev_key(repo: &RepoRef, revision: Option<&str>) -> String {
    format!(
        "{}/{}/@{}",
        repo.repo_type.plural(),
        repo.id.folded(),
        revision.unwrap_or("")
    )
}

fn parse_mtime(info: &RepoInfo) -> SystemTime {
    info.last_modified
        .as_deref()
        .and_then(|s| humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn hints_from(info: &RepoInfo) -> HashMap<String, Node> {
    let mut hints = HashMap::new();
    for s in info.siblings.iter().flatten() {
        let (Some(oid), Some(size)) = (&s.blob_id, s.size) else {
            continue;
        };
        let file = FileInfo {
            size: s.lfs.as_ref().map_or(size, |l| l.size),
            oid: oid.clone(),
            lfs_sha256: s.lfs.as_ref().map(|l| l.sha256.clone()),
            xet_hash: None,
        };
        let mut dir = parent_of(&s.rfilename);
        while !dir.is_empty() {
            hints.insert(dir.to_string(), Node::Dir);
            dir = parent_of(dir);
        }
        hints.insert(s.rfilename.clone(), Node::File(file));
    }
    hints
}

impl Snapshot {
    /// Resolves `revision` (None = default branch) of `repo` to a commit and opens its snapshot.
    pub async fn open(
        svc: &Arc<Services>,
        repo: &RepoRef,
        revision: Option<&str>,
    ) -> Result<Arc<Snapshot>, SnapshotError> {
        let Some(client) = svc.client.as_ref() else {
            return Snapshot::open_offline(svc, repo, revision);
        };
        let info = svc
            .bounded(&repo.to_string(), client.repo_info(repo, revision, true))
            .await?;
        Snapshot::from_info(svc, repo, revision, info)
    }

    /// Opens the snapshot that a repo-info answer (with its file list) describes, for a caller
    /// that asked for it already.
    pub fn from_info(
        svc: &Arc<Services>,
        repo: &RepoRef,
        revision: Option<&str>,
        info: RepoInfo,
    ) -> Result<Arc<Snapshot>, SnapshotError> {
        let commit = info
            .sha
            .clone()
            .ok_or_else(|| SnapshotError::NoCommit(repo.to_string()))?;
        let mtime = parse_mtime(&info);
        let hints = hints_from(&info);
        if repo.repo_type != RepoType::Bucket {
            svc.remember_revision(repo, revision, &commit, info.private, mtime);
        }
        let snap = Snapshot::new(svc, repo, commit, mtime, info.private, hints);
        snap.load_persisted();
        Ok(snap)
    }

    fn open_offline(
        svc: &Arc<Services>,
        repo: &RepoRef,
        revision: Option<&str>,
    ) -> Result<Arc<Snapshot>, SnapshotError> {
        if repo.repo_type == RepoType::Bucket {
            // A bucket changes in place: nothing listed earlier is known to be true now.
            return Err(SnapshotError::NotCached(format!(
                "{repo}: buckets are not available offline"
            )));
        }
        let not_cached = || {
            SnapshotError::NotCached(format!(
                "{repo}@{} was never resolved while online with this cache",
                revision.unwrap_or("main")
            ))
        };
        let rec: RevisionRecord = svc
            .meta
            .get("rev", &rev_key(repo, revision))
            .ok()
            .flatten()
            .ok_or_else(not_cached)?;
        if rec.private
            && !svc
                .token_fingerprint
                .as_ref()
                .is_some_and(|fp| rec.tokens.contains(fp))
        {
            // Same answer as the Hub gives a stranger: indistinguishable from missing.
            return Err(not_cached());
        }
        let mtime = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(rec.mtime_secs);
        let snap = Snapshot::new(svc, repo, rec.commit, mtime, rec.private, HashMap::new());
        snap.load_persisted();
        Ok(snap)
    }

    fn new(
        svc: &Arc<Services>,
        repo: &RepoRef,
        commit: String,
        mtime: SystemTime,
        private: bool,
        hints: HashMap<String, Node>,
    ) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            repo: repo.clone(),
            commit,
            mtime,
            private,
            index: RwLock::new(TreeIndex::new()),
            hints,
            dir_loads: Mutex::new(HashMap::new()),
            full: Mutex::new(FullListing::NotStarted),
            svc: svc.clone(),
        })
    }

    /// Loads what earlier mounts learnt about this commit.
    fn load_persisted(&self) {
        if self.is_bucket() {
            return;
        }
        let key = tree_key(&self.repo, &self.commit);
        // Straight into the index: a tree of a million entries is never held twice.
        let mut loaded = TreeIndex::new();
        let seed = StoredTreeSeed {
            index: &mut loaded,
            repo: &self.repo,
        };
        if let Ok(Some(complete)) = self.svc.meta.get_seed("tree", &key, seed) {
            let mut index = self.index.write();
            *index = loaded;
            if complete {
                index.mark_all_complete();
                *self.full.lock() = FullListing::Done;
            }
        }
        if !self.hints.is_empty() && !self.index.read().all_complete() {
            // Offline mounts have no siblings: keep them as a partial listing.
            let stored = StoredTree {
                complete: false,
                entries: self
                    .hints
                    .iter()
                    .map(|(p, n)| StoredEntry {
                        p: p.clone(),
                        f: match n {
                            Node::File(f) => Some(f.clone()),
                            Node::Dir => None,
                        },
                    })
                    .collect(),
            };
            if let Ok(None) = self.svc.meta.get::<serde_json::Value>("tree", &key) {
                self.persist("tree", &key, &stored);
            }
        }
    }

    fn persist<T: Serialize>(&self, ns: &str, key: &str, value: &T) {
        if let Err(e) = self.svc.meta.put(ns, key, value) {
            tracing::warn!("could not persist metadata of {}: {e}", self.repo);
        }
    }

    /// A bucket snapshot: its listing is the bucket as this mount listed it, never persisted.
    pub fn is_bucket(&self) -> bool {
        self.repo.repo_type == RepoType::Bucket
    }

    /// Without listing anything: Some(Some(xet hash)) for a file, Some(None) when `path` is
    /// absent (or a directory), None when its directory was never listed.
    pub fn peek_xet(&self, path: &str) -> Option<Option<String>> {
        match self.index.read().get(path) {
            Lookup::Found(Node::File(f)) => Some(f.xet_hash),
            Lookup::Found(Node::Dir) | Lookup::Absent => Some(None),
            Lookup::Unknown => None,
        }
    }

    pub fn file_count(&self) -> usize {
        self.index.read().file_count()
    }

    /// The node at `path` ("" = root), listing its parent directory first if needed.
    pub async fn lookup(self: &Arc<Self>, path: &str) -> Result<Node, Errno> {
        for _ in 0..3 {
            match self.index.read().get(path) {
                Lookup::Found(n) => return Ok(n),
                Lookup::Absent => return Err(Errno::ENOENT),
                Lookup::Unknown => {}
            }
            if let Some(n) = self.hints.get(path) {
                return Ok(n.clone());
            }
            self.ensure_listed(parent_of(path)).await?;
        }
        Err(Errno::ENOENT)
    }

    /// Children of the directory `dir`, sorted by name.
    pub async fn list_dir(self: &Arc<Self>, dir: &str) -> Result<Vec<(String, Node)>, Errno> {
        self.start_full_listing();
        for _ in 0..3 {
            if let Some(children) = self.index.read().children(dir) {
                return Ok(children);
            }
            match self.ensure_listed(dir).await {
                // Offline, a directory that exists but was never listed online: its content
                // is unknown, which is an I/O error, not "no such directory".
                Err(Errno::ENOENT) if self.svc.client.is_none() => return Err(Errno::EIO),
                other => other?,
            }
        }
        Err(Errno::EIO)
    }

    /// Makes sure every child of `dir` is in the index.
    async fn ensure_listed(self: &Arc<Self>, dir: &str) -> Result<(), Errno> {
        if self.index.read().is_complete(dir) {
            return Ok(());
        }
        let load = {
            let mut loads = self.dir_loads.lock();
            match loads.get(dir) {
                Some(f) => f.clone(),
                None => {
                    let me = self.clone();
                    let d = dir.to_string();
                    let task = self.svc.rt.spawn(async move { me.load_dir(d).await });
                    let fut = async move { task.await.unwrap_or(Err(Errno::EIO)) }
                        .boxed()
                        .shared();
                    loads.insert(dir.to_string(), fut.clone());
                    fut
                }
            }
        };
        let result = load.await;
        self.dir_loads.lock().remove(dir);
        result
    }

    async fn load_dir(self: Arc<Self>, dir: String) -> Result<(), Errno> {
        let dir = dir.as_str();
        let key = format!("{}/{dir}", tree_key(&self.repo, &self.commit));
        let Some(client) = self.svc.client.as_ref() else {
            let stored: Option<StoredTree> = self.svc.meta.get("dir", &key).ok().flatten();
            let Some(stored) = stored else {
                tracing::info!(
                    "offline: directory {dir:?} of {}@{} was never listed online",
                    self.repo,
                    self.commit
                );
                return Err(Errno::ENOENT);
            };
            self.insert_stored(dir, &stored);
            return Ok(());
        };
        if let Err(e) = self.list_pages(client, dir, false).await {
            if !e.is_not_found() {
                tracing::warn!("listing {dir:?} of {}@{}: {e}", self.repo, self.commit);
            }
            return Err(Errno::from(&e));
        }
        self.index.write().mark_complete(dir);
        self.persist_index("dir", key, Some(dir.to_string())).await;
        Ok(())
    }

    /// Lists `dir` (recursively or not) page by page into the index. Each page is bounded by
    /// the I/O timeout; a directory listing (which a reader waits for) is bounded as a whole
    /// by it too, while the recursive listing of the whole commit runs in the background
    /// under the client's [`ListingLimits`] (budgets and deadline). Either way the index
    /// never grows past `max_entries` nodes.
    async fn list_pages(
        &self,
        client: &crate::hub::HubClient,
        dir: &str,
        recursive: bool,
    ) -> Result<(), HubError> {
        let limits = client.config().listing;
        let mut pager = client.list_tree(&self.repo, &self.commit, dir, recursive);
        if !recursive {
            pager = pager.with_limits(ListingLimits {
                deadline: limits.deadline.min(self.svc.io_timeout),
                ..limits
            });
        }
        let what = format!("listing {dir:?} of {}", self.repo);
        while let Some(page) = self.svc.bounded(&what, pager.next_page()).await? {
            {
                let mut index = self.index.write();
                for e in &page {
                    index.insert_entry(e);
                }
                if index.node_count() > limits.max_entries {
                    // A Hub inventing names (page after page, directory after directory)
                    // must not grow the daemon without bound.
                    return Err(HubError::Protocol {
                        target: what,
                        message: format!(
                            "the tree of {}@{} exceeds the budget of {} entries",
                            self.repo, self.commit, limits.max_entries
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn insert_stored(&self, dir: &str, stored: &StoredTree) {
        let mut index = self.index.write();
        for e in &stored.entries {
            if usable_stored(&e.p, &self.repo) {
                index.insert(&e.p, e.f.clone().map_or(Node::Dir, Node::File));
            }
        }
        if stored.complete {
            index.mark_complete(dir);
        }
    }

    /// Starts the one recursive listing of the whole commit (once; online only).
    fn start_full_listing(self: &Arc<Self>) {
        if self.svc.client.is_none() {
            return;
        }
        {
            let mut full = self.full.lock();
            if !matches!(*full, FullListing::NotStarted) {
                return;
            }
            *full = FullListing::Running;
        }
        let me = self.clone();
        self.svc.rt.spawn(async move {
            let ok = me.load_everything().await;
            *me.full.lock() = if ok {
                FullListing::Done
            } else {
                // Per-directory listings keep working; a later readdir tries again.
                FullListing::NotStarted
            };
        });
    }

    async fn load_everything(self: &Arc<Self>) -> bool {
        let Some(client) = self.svc.client.as_ref() else {
            return false;
        };
        let started = std::time::Instant::now();
        if let Err(e) = self.list_pages(client, "", true).await {
            tracing::warn!("recursive listing of {}@{}: {e}", self.repo, self.commit);
            return false;
        }
        {
            let mut index = self.index.write();
            index.mark_all_complete();
            tracing::debug!(
                "listed {} files of {}@{} in {:?}",
                index.file_count(),
                self.repo,
                self.commit,
                started.elapsed()
            );
        }
        self.persist_index("tree", tree_key(&self.repo, &self.commit), None)
            .await;
        true
    }

    /// Persists the index (`dir` None: all of it, as a complete tree; else the children of
    /// `dir`, as a complete directory) straight from the index, without copying it: a
    /// listing of a million entries would otherwise be held two or three times over. The
    /// writing happens off the async workers, under the index's read lock.
    async fn persist_index(self: &Arc<Self>, ns: &'static str, key: String, dir: Option<String>) {
        if self.is_bucket() {
            // Buckets change in place (no commit pins a listing): never reused by a later mount.
            return;
        }
        let me = self.clone();
        let write = tokio::task::spawn_blocking(move || {
            let index = me.index.read();
            let view = IndexView {
                index: &index,
                dir: dir.as_deref(),
            };
            if let Err(e) = me.svc.meta.put(ns, &key, &view) {
                tracing::warn!("could not persist metadata of {}: {e}", me.repo);
            }
        });
        let _ = write.await;
    }
}

/// Whether a persisted path may be shown: caches written by an older hubfs may hold names
/// the Hub should never have listed (see `hub::pagination`).
fn usable_stored(path: &str, repo: &RepoRef) -> bool {
    let ok = crate::repo::validate_listed_path(path).is_ok();
    if !ok {
        tracing::debug!("{repo}: skipping the cached entry {path:?}: not a valid path");
    }
    ok
}

/// Deserializes a [`StoredTree`] into an index entry by entry (no `Vec` of the entries);
/// the value is its `complete` flag.
struct StoredTreeSeed<'a> {
    index: &'a mut TreeIndex,
    repo: &'a RepoRef,
}

impl<'de> serde::de::DeserializeSeed<'de> for StoredTreeSeed<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StoredTreeSeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a stored tree")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut complete = false;
        while let Some(field) = map.next_key::<String>()? {
            match field.as_str() {
                "complete" => complete = map.next_value()?,
                "entries" => map.next_value_seed(EntriesSeed {
                    index: &mut *self.index,
                    repo: self.repo,
                })?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(complete)
    }
}

struct EntriesSeed<'a> {
    index: &'a mut TreeIndex,
    repo: &'a RepoRef,
}

impl<'de> serde::de::DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for EntriesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("stored tree entries")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(e) = seq.next_element::<StoredEntry>()? {
            if usable_stored(&e.p, self.repo) {
                self.index.insert(&e.p, e.f.map_or(Node::Dir, Node::File));
            }
        }
        Ok(())
    }
}

/// Serializes as a complete [`StoredTree`], reading the index in place.
struct IndexView<'a> {
    index: &'a TreeIndex,
    /// None: every entry; else the children of this directory.
    dir: Option<&'a str>,
}

impl Serialize for IndexView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Entries<'a>(&'a IndexView<'a>);
        impl Serialize for Entries<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let stored = |p: String, n: Node| StoredEntry {
                    p,
                    f: match n {
                        Node::File(f) => Some(f),
                        Node::Dir => None,
                    },
                };
                match self.0.dir {
                    None => s.collect_seq(self.0.index.iter().map(|(p, n)| stored(p, n))),
                    Some(dir) => s.collect_seq(
                        self.0
                            .index
                            .iter_children(dir)
                            .map(|(name, n)| stored(join_path(dir, name), n)),
                    ),
                }
            }
        }
        let mut st = s.serialize_struct("StoredTree", 2)?;
        st.serialize_field("complete", &true)?;
        st.serialize_field("entries", &Entries(self))?;
        st.end()
    }
}

fn join_path(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// A revision's complete listing from outside the Hub (the huggingface_hub cache), for
/// `Services::seed_offline_revision`.
pub struct SeedListing {
    pub commit: String,
    pub mtime: SystemTime,
    /// Every path with Some(file), or None for a directory.
    pub entries: Vec<(String, Option<FileInfo>)>,
}

impl Services {
    /// For an offline mount of a revision this cache never resolved: records `commit` and its
    /// complete listing (`entries`: path, Some(file) or None for a directory) as if listed
    /// online, so `Snapshot::open` finds them. Does nothing if the revision is known already.
    /// Used with a listing read from the huggingface_hub cache (`read::hf_cache`).
    pub fn seed_offline_revision(
        &self,
        repo: &RepoRef,
        revision: Option<&str>,
        listing: impl FnOnce() -> Option<SeedListing>,
    ) -> bool {
        let known = self
            .meta
            .get::<RevisionRecord>("rev", &rev_key(repo, revision))
            .ok()
            .flatten();
        if let Some(rec) = &known {
            // Resolved online before: only its tree may be missing (the mount never listed
            // it); the HF cache's snapshot of that same commit fills it in.
            /// Only the flag: the entries are skipped, not built.
            #[derive(serde::Deserialize)]
            struct TreeHead {
                complete: bool,
            }
            let tree = self
                .meta
                .get::<TreeHead>("tree", &tree_key(repo, &rec.commit))
                .ok()
                .flatten();
            if tree.is_some_and(|t| t.complete) {
                return false;
            }
        }
        let Some(SeedListing {
            commit,
            mtime,
            entries,
        }) = listing()
        else {
            return false;
        };
        if known.as_ref().is_some_and(|rec| rec.commit != commit) {
            return false;
        }
        let stored = StoredTree {
            complete: true,
            entries: entries
                .into_iter()
                .map(|(p, f)| StoredEntry { p, f })
                .collect(),
        };
        let key = tree_key(repo, &commit);
        if let Err(e) = self.meta.put("tree", &key, &stored) {
            tracing::warn!("could not record the listing of {repo}: {e}");
            return false;
        }
        if known.is_none() {
            self.remember_revision(repo, revision, &commit, false, mtime);
        }
        true
    }

    fn remember_revision(
        &self,
        repo: &RepoRef,
        revision: Option<&str>,
        commit: &str,
        private: bool,
        mtime: SystemTime,
    ) {
        let key = rev_key(repo, revision);
        let mut tokens: Vec<String> = match self.meta.get::<RevisionRecord>("rev", &key) {
            Ok(Some(old)) if old.commit == commit => old.tokens,
            _ => Vec::new(),
        };
        if let Some(fp) = &self.token_fingerprint {
            if !tokens.contains(fp) {
                tokens.push(fp.clone());
            }
        }
        let rec = RevisionRecord {
            commit: commit.to_string(),
            private,
            mtime_secs: mtime
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            tokens,
        };
        if let Err(e) = self.meta.put("rev", &key, &rec) {
            tracing::warn!("could not remember revision of {repo}: {e}");
        }
    }
}
