//! What a file of a mount is on the Hub (repo, revision, commit, path, content id), for
//! `hubfs warm --hf-cache-layout`, which lays files out as huggingface_hub's cache does.

use serde::{Deserialize, Serialize};

use super::errno::Errno;
use super::snapshot::Snapshot;
use super::{HubFs, Located, Node};

/// A file of a mount as huggingface_hub names it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileOrigin {
    /// `models`, `datasets` or `spaces`.
    pub repo_type: String,
    /// `ns/name`.
    pub repo_id: String,
    /// The revision the mount shows (None: the default branch).
    pub revision: Option<String>,
    pub commit: String,
    /// Path in the repo.
    pub path: String,
    pub size: u64,
    /// huggingface_hub's blob name: the sha256 of an LFS file, else its git blob id.
    pub etag: String,
}

/// The answer for a file whose content in a writable mount is not the Hub's.
pub const LOCAL_CHANGES: Errno = Errno(libc::EBUSY);

impl HubFs {
    /// The Hub file that inode `ino` shows. `EISDIR` for a directory, `EBUSY` for a file with
    /// local changes in a writable mount (it is not the Hub's file).
    pub async fn describe(&self, ino: u64) -> Result<FileOrigin, Errno> {
        let (_, located) = self.locate(ino)?;
        let Some(Located { view, path, origin }) = located else {
            return Err(Errno::EISDIR);
        };
        if view.workspace().is_some_and(|ws| ws.get(&path).is_some()) {
            return Err(LOCAL_CHANGES);
        }
        let snap: std::sync::Arc<Snapshot> = origin.unwrap_or_else(|| view.snapshot());
        let info = match snap.lookup(&path).await? {
            Node::File(f) => f,
            Node::Dir => return Err(Errno::EISDIR),
        };
        Ok(FileOrigin {
            repo_type: view.repo.repo_type.plural().to_string(),
            repo_id: view.repo.id.to_string(),
            revision: view.revision.clone(),
            commit: snap.commit.clone(),
            path,
            size: info.size,
            etag: info.lfs_sha256.clone().unwrap_or_else(|| info.oid.clone()),
        })
    }
}
