//! A view: one revision directory of a mount (`ns/name`, `ns/name@v1.0`, `ns/name@<sha>`).
//!
//! A view is bound to the snapshot its revision resolved to. Views of a commit id never move;
//! views of a branch (or tag) move to a newer commit only when refreshed (`--refresh`), and
//! everything already open keeps reading the snapshot it opened. A writable view (a branch of
//! a single-repo mount) also has a [`Workspace`]: its local changes, shown over the snapshot,
//! and it moves to each commit hubfs makes.

use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use super::services::Services;
use super::snapshot::{Snapshot, SnapshotError};
use super::workspace::Workspace;
use crate::repo::{looks_like_commit, RepoRef};

pub struct View {
    pub id: u64,
    pub repo: RepoRef,
    /// None = the repo's default branch.
    pub revision: Option<String>,
    /// The revision is a commit id: the view can never change.
    pub pinned: bool,
    current: RwLock<Arc<Snapshot>>,
    workspace: OnceLock<Arc<Workspace>>,
}

impl View {
    pub fn new(id: u64, snapshot: Arc<Snapshot>, revision: Option<String>) -> View {
        let pinned = revision
            .as_deref()
            .is_some_and(|r| looks_like_commit(r) && snapshot.commit.starts_with(r));
        View {
            id,
            repo: snapshot.repo.clone(),
            revision,
            pinned,
            current: RwLock::new(snapshot),
            workspace: OnceLock::new(),
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().clone()
    }

    /// Local changes of a writable view; None = read-only.
    pub fn workspace(&self) -> Option<&Arc<Workspace>> {
        self.workspace.get()
    }

    pub fn make_writable(&self, ws: Arc<Workspace>) {
        let _ = self.workspace.set(ws);
    }

    /// Moves the view to `snapshot` (a commit hubfs made, or a branch head it saw).
    pub fn advance(&self, snapshot: Arc<Snapshot>) {
        *self.current.write() = snapshot;
    }

    /// `ns/name@rev` as users write it.
    pub fn label(&self) -> String {
        match &self.revision {
            Some(r) => format!("{}@{r}", self.repo),
            None => self.repo.to_string(),
        }
    }

    /// Re-resolves the revision; returns true if the view moved to another commit.
    pub async fn refresh(&self, svc: &Arc<Services>) -> Result<bool, SnapshotError> {
        // A writable view moves with its own commits; it follows the branch only while nothing
        // local waits for a commit (else the committer's conflict handling decides).
        let quiet = || self.workspace().is_none_or(|ws| ws.is_quiet());
        if self.pinned || svc.client.is_none() || !quiet() {
            return Ok(false);
        }
        let fresh = Snapshot::open(svc, &self.repo, self.revision.as_deref()).await?;
        if !quiet() {
            return Ok(false);
        }
        let moved = fresh.commit != self.current.read().commit;
        if moved {
            tracing::info!(
                "{} moved {} -> {}",
                self.label(),
                self.current.read().commit,
                fresh.commit
            );
            *self.current.write() = fresh;
        }
        Ok(moved)
    }
}
