//! The views of a mount and the virtual directories of a whole-Hub mount.
//!
//! `hf://` shows `NAMESPACE/` directories for models and `datasets/NAMESPACE/`,
//! `spaces/NAMESPACE/`, `buckets/NAMESPACE/` for the other types (a bucket has no `@REV`); inside, `NAME` is the repo at its default branch
//! and `NAME@REV` (REV percent-encoded when it holds `/`) any revision. Nothing is listed up
//! front: names appear when looked up (autofs style), and `ls NAMESPACE` lists that author's
//! repos of the type.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::errno::Errno;
use super::inode::InodeKey;
use super::services::Services;
use super::snapshot::{Snapshot, SnapshotError};
use super::view::View;
use crate::repo::{decode_component, RepoId, RepoRef, RepoType};

/// How long a namespace's list of repos is trusted: repos appear as people create them.
const NAMESPACE_TTL: Duration = Duration::from_secs(30);
/// Most repos listed for one namespace directory (bounds memory and listing time).
const MAX_REPOS_PER_NAMESPACE: usize = 10_000;

pub enum VirtualChild {
    Dir(InodeKey),
    Repo(Arc<View>),
}

type ViewKey = (RepoType, String, Option<String>);
/// (type, lower-cased namespace) → when listed, repo names.
type NamespaceCache = HashMap<(RepoType, String), (Instant, Arc<Vec<String>>)>;

#[derive(Default)]
struct Registry {
    by_id: HashMap<u64, Arc<View>>,
    by_key: HashMap<ViewKey, u64>,
    next: u64,
}

#[derive(Default)]
pub struct Views {
    registry: Mutex<Registry>,
    namespaces: Mutex<NamespaceCache>,
}

fn view_key(repo: &RepoRef, revision: &Option<String>) -> ViewKey {
    (repo.repo_type, repo.id.folded(), revision.clone())
}

/// Splits `NAME@REV` (REV percent-decoded).
fn split_revision(name: &str) -> Result<(&str, Option<String>), Errno> {
    match name.split_once('@') {
        None => Ok((name, None)),
        Some((n, rev)) => {
            let rev = decode_component(rev).map_err(|_| Errno::ENOENT)?;
            if rev.is_empty() {
                return Err(Errno::ENOENT);
            }
            Ok((n, Some(rev)))
        }
    }
}

impl Views {
    pub fn insert(&self, snapshot: Arc<Snapshot>, revision: Option<String>) -> Arc<View> {
        let mut reg = self.registry.lock();
        let key = view_key(&snapshot.repo, &revision);
        if let Some(v) = reg.by_key.get(&key).and_then(|id| reg.by_id.get(id)) {
            return v.clone();
        }
        let id = reg.next;
        reg.next += 1;
        let view = Arc::new(View::new(id, snapshot, revision));
        reg.by_key.insert(key, id);
        reg.by_id.insert(id, view.clone());
        view
    }

    pub fn get(&self, id: u64) -> Option<Arc<View>> {
        self.registry.lock().by_id.get(&id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<View>> {
        self.registry.lock().by_id.values().cloned().collect()
    }

    /// The view of `repo` at `revision`, resolving it on first use.
    pub async fn view_for(
        &self,
        svc: &Arc<Services>,
        repo: RepoRef,
        revision: Option<String>,
    ) -> Result<Arc<View>, Errno> {
        let key = view_key(&repo, &revision);
        {
            let reg = self.registry.lock();
            if let Some(v) = reg.by_key.get(&key).and_then(|id| reg.by_id.get(id)) {
                return Ok(v.clone());
            }
        }
        match Snapshot::open(svc, &repo, revision.as_deref()).await {
            Ok(snap) => Ok(self.insert(snap, revision)),
            Err(e) => {
                let errno = Errno::from(&e);
                if errno == Errno::EACCES {
                    tracing::warn!("{repo}: access refused ({e}); a token with access is needed");
                } else if !matches!(&e, SnapshotError::Hub(h) if h.is_not_found()) {
                    tracing::warn!("{repo}: {e}");
                }
                Err(errno)
            }
        }
    }

    pub async fn lookup_virtual(
        &self,
        svc: &Arc<Services>,
        parent: &InodeKey,
        name: &str,
    ) -> Result<VirtualChild, Errno> {
        match parent {
            InodeKey::HubRoot => match name {
                "datasets" => Ok(VirtualChild::Dir(InodeKey::TypeRoot(RepoType::Dataset))),
                "spaces" => Ok(VirtualChild::Dir(InodeKey::TypeRoot(RepoType::Space))),
                "buckets" => Ok(VirtualChild::Dir(InodeKey::TypeRoot(RepoType::Bucket))),
                _ => self.type_root_child(svc, RepoType::Model, name).await,
            },
            InodeKey::TypeRoot(t) => self.type_root_child(svc, *t, name).await,
            InodeKey::Namespace(t, ns) => {
                let (repo_name, revision) = split_revision(name)?;
                if *t == RepoType::Bucket && revision.is_some() {
                    // Buckets have no revisions.
                    return Err(Errno::ENOENT);
                }
                let id = RepoId::parse(&format!("{ns}/{repo_name}")).map_err(|_| Errno::ENOENT)?;
                let view = self.view_for(svc, RepoRef::new(*t, id), revision).await?;
                Ok(VirtualChild::Repo(view))
            }
            InodeKey::Path { .. } | InodeKey::File { .. } | InodeKey::Orphan(_) => {
                Err(Errno::ENOTDIR)
            }
        }
    }

    /// A name right under the Hub root (models) or under `datasets/`/`spaces/`: an author's
    /// namespace, or a legacy one-part repo id (`gpt2`, `gpt2@main`).
    async fn type_root_child(
        &self,
        svc: &Arc<Services>,
        repo_type: RepoType,
        name: &str,
    ) -> Result<VirtualChild, Errno> {
        let (base, revision) = split_revision(name)?;
        let id = RepoId::parse(base).map_err(|_| Errno::ENOENT)?;
        if repo_type == RepoType::Bucket {
            // Always `buckets/NS/NAME`: no legacy one-part ids, no revisions.
            if revision.is_some() {
                return Err(Errno::ENOENT);
            }
            if svc.client.is_some() && self.namespace_repos(svc, repo_type, base).await?.is_empty()
            {
                return Err(Errno::ENOENT);
            }
            return Ok(VirtualChild::Dir(InodeKey::Namespace(
                repo_type,
                base.to_string(),
            )));
        }
        if revision.is_none() {
            if svc.client.is_none() {
                // Offline there is no way to list authors: any well-formed name may be one.
                return Ok(VirtualChild::Dir(InodeKey::Namespace(
                    repo_type,
                    base.to_string(),
                )));
            }
            if !self.namespace_repos(svc, repo_type, base).await?.is_empty() {
                return Ok(VirtualChild::Dir(InodeKey::Namespace(
                    repo_type,
                    base.to_string(),
                )));
            }
        }
        let view = self
            .view_for(svc, RepoRef::new(repo_type, id), revision)
            .await?;
        Ok(VirtualChild::Repo(view))
    }

    /// Names of the repos of `ns` (cached for NAMESPACE_TTL).
    async fn namespace_repos(
        &self,
        svc: &Arc<Services>,
        repo_type: RepoType,
        ns: &str,
    ) -> Result<Arc<Vec<String>>, Errno> {
        let key = (repo_type, ns.to_ascii_lowercase());
        if let Some((at, names)) = self.namespaces.lock().get(&key) {
            if at.elapsed() < NAMESPACE_TTL {
                return Ok(names.clone());
            }
        }
        let Some(client) = svc.client.as_ref() else {
            return Ok(Arc::new(Vec::new()));
        };
        let listing = async {
            if repo_type == RepoType::Bucket {
                client.list_buckets(ns, MAX_REPOS_PER_NAMESPACE).await
            } else {
                client
                    .list_repos(repo_type, Some(ns), None, MAX_REPOS_PER_NAMESPACE)
                    .await
            }
        };
        let repos = svc
            .bounded(&format!("listing {ns}"), listing)
            .await
            .map_err(|e| {
                tracing::warn!("listing {} of {ns}: {e}", repo_type.plural());
                Errno::from(&e)
            })?;
        let mut names: Vec<String> = repos
            .iter()
            .filter_map(|r| {
                let (owner, name) = r.id.split_once('/')?;
                // A name that is not a valid repo name could not be looked up anyway, and
                // may be `..` or carry a `/`: never list it.
                let valid = crate::repo::validate_id_part(name).is_ok();
                (valid && owner.eq_ignore_ascii_case(ns)).then(|| name.to_string())
            })
            .collect();
        names.sort();
        names.dedup();
        let names = Arc::new(names);
        self.namespaces
            .lock()
            .insert(key, (Instant::now(), names.clone()));
        Ok(names)
    }

    /// Names listed in a virtual directory.
    pub async fn list_virtual(
        &self,
        svc: &Arc<Services>,
        key: &InodeKey,
    ) -> Result<Vec<String>, Errno> {
        match key {
            InodeKey::HubRoot => Ok(vec!["buckets".into(), "datasets".into(), "spaces".into()]),
            // The Hub cannot list every author; namespaces appear when looked up.
            InodeKey::TypeRoot(_) => Ok(Vec::new()),
            InodeKey::Namespace(t, ns) => {
                Ok(self.namespace_repos(svc, *t, ns).await?.as_ref().clone())
            }
            InodeKey::Path { .. } | InodeKey::File { .. } | InodeKey::Orphan(_) => {
                Err(Errno::ENOTDIR)
            }
        }
    }
}
