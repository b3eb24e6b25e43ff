//! The write side of the filesystem core: operations on writable views.
//!
//! Every operation resolves names in the merged view (workspace overlay over the snapshot),
//! applies the change to the workspace (which journals it) and answers like a local
//! filesystem would. Opening an existing file for writing without `O_TRUNC` first fetches its
//! bytes through the read path into a staging file. The release of the last writable handle
//! seals and queues (a `close` only makes the bytes durable and reports write errors);
//! `fsync` seals and waits until the commit holding the file has landed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::tree::{FileInfo, Node};
use super::view::View;
use super::workspace::{Content, FileNode, Local, Merged, RenameSource, Workspace};
use super::{join, Attr, Entry, Errno, FileKind, HubFs, InodeKey, Located, OpenFile, Opened};
use crate::commit::{Committer, SyncReport};
use crate::read::{Blob, ReadStream};
use crate::repo::RepoRef;
use crate::stage::{Record, StagingArea, StagingFile};

/// What makes a mount writable: its staging area and committer (built by the daemon).
pub struct WriteSetup {
    pub area: Arc<StagingArea>,
    pub committer: Arc<Committer>,
    /// Longest wait of an `fsync` for its commit to land.
    pub fsync_timeout: Duration,
}

/// A name in the merged view.
pub(super) enum Found {
    Base(Node),
    Local(Arc<FileNode>),
    LocalDir,
}

impl Found {
    fn is_dir(&self) -> bool {
        matches!(self, Found::LocalDir | Found::Base(Node::Dir))
    }
}

fn parent_of(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// Longest wait of `hubfs sync` for the releases of files already closed.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Bytes fetched per read when copying a committed file into a staging file.
const FETCH_CHUNK: u32 = 1 << 20;

impl HubFs {
    pub(super) fn attach_workspace(
        self: &Arc<Self>,
        setup: WriteSetup,
    ) -> Result<(), super::SnapshotError> {
        let view = match self.inodes.get(super::ROOT_INO) {
            Some(InodeKey::Path { view, .. }) => self.views.get(view),
            _ => None,
        }
        .ok_or_else(|| super::SnapshotError::NotCached("no repo view to write to".into()))?;
        let committer = setup.committer.clone();
        let area = setup.area.clone();
        // Changes made now are made on the commit the view shows, unless the journal holds
        // older ones (they keep their base: the committer checks it against the head).
        let base = view.snapshot().commit.clone();
        let needs_base = area.with_journal(|j| j.base().is_none() || j.pending().is_empty());
        if needs_base {
            area.record(&[Record::Base { commit: base }])
                .map_err(|e| super::SnapshotError::NotCached(format!("journal: {e}")))?;
        }
        let ws = Workspace::open(area, committer.clone())
            .map_err(|e| super::SnapshotError::NotCached(format!("staging area: {e}")))?;
        let ws = Arc::new(ws);
        view.make_writable(ws.clone());
        *self.fsync_timeout.lock() = setup.fsync_timeout;
        let weak = Arc::downgrade(self);
        let (v, w) = (view.clone(), ws.clone());
        committer.on_landing(Box::new(move |commit| {
            let (weak, view, ws) = (weak.clone(), v.clone(), w.clone());
            Box::pin(async move {
                if let Some(fs) = weak.upgrade() {
                    fs.advance_view(&view, &ws, &commit).await;
                }
            })
        }));
        if view.snapshot().is_bucket() {
            let v = view.clone();
            committer.on_shown(Box::new(move |path| v.snapshot().peek_xet(path)));
        }
        self.follow_landings(view, ws, &committer);
        committer.spawn(&self.svc.rt);
        Ok(())
    }

    /// Moves the view to `commit` (a commit hubfs just journaled as landed, or a branch head
    /// it saw). Errors are logged: the view then stays where it was, and the overlay
    /// keeps what it shows until a later move succeeds.
    async fn advance_view(&self, view: &View, ws: &Workspace, commit: &str) -> bool {
        let old = view.snapshot();
        if old.commit == commit {
            return true;
        }
        let snap = match super::Snapshot::open(&self.svc, &view.repo, Some(commit)).await {
            Ok(snap) => snap,
            Err(e) => {
                tracing::warn!("opening landed commit {commit}: {e}");
                return false;
            }
        };
        // Directories that now exist on the Hub are no longer local-only.
        let mut real = Vec::new();
        for d in ws.local_dirs() {
            if matches!(snap.lookup(&d).await, Ok(Node::Dir)) {
                real.push(d);
            }
        }
        // A directory shown now that the new commit drops (the deletion of its last file
        // lands) stays, as a local directory, until `rmdir`: like on a local filesystem.
        let mut kept = Vec::new();
        for d in ws.dirs_of_deleted() {
            if matches!(old.lookup(&d).await, Ok(Node::Dir))
                && !matches!(snap.lookup(&d).await, Ok(Node::Dir))
            {
                kept.push(d);
            }
        }
        ws.keep_dirs(&kept);
        view.advance(snap);
        ws.forget_dirs(&real);
        true
    }

    /// Follows the committer's announcements (landings, and the new head after a moved
    /// branch): moves the view if the hook did not already, then drops what the overlay no
    /// longer needs, once the view shows the journal's base (so no reader ever sees a
    /// snapshot lacking what the overlay dropped).
    fn follow_landings(self: &Arc<Self>, view: Arc<View>, ws: Arc<Workspace>, c: &Committer) {
        let mut rx = c.landed();
        let weak = Arc::downgrade(self);
        self.svc.rt.spawn(async move {
            // Journaled local directories the Hub has meanwhile (a crash came between a
            // landing and forgetting them) are Hub directories again.
            let snap = view.snapshot();
            let mut real = Vec::new();
            for d in ws.local_dirs() {
                if matches!(snap.lookup(&d).await, Ok(Node::Dir)) {
                    real.push(d);
                }
            }
            ws.forget_dirs(&real);
            while rx.changed().await.is_ok() {
                let Some(commit) = rx.borrow_and_update().clone() else {
                    continue;
                };
                let Some(fs) = weak.upgrade() else { break };
                let base = ws.area.with_journal(|j| j.base().map(str::to_string));
                if base.as_deref() != Some(commit.as_str()) {
                    // A newer announcement follows.
                    continue;
                }
                if fs.advance_view(&view, &ws, &commit).await {
                    ws.prune(&view.snapshot().commit);
                }
            }
        });
    }

    fn root_workspace(&self) -> Option<Arc<Workspace>> {
        match self.inodes.get(super::ROOT_INO)? {
            InodeKey::Path { view, .. } => self.views.get(view)?.workspace().cloned(),
            _ => None,
        }
    }

    /// What `path` is in the view, overlay first.
    pub(super) async fn find(&self, view: &View, path: &str) -> Result<Found, Errno> {
        let Some(ws) = view.workspace() else {
            return Ok(Found::Base(view.snapshot().lookup(path).await?));
        };
        match ws.get(path) {
            Some(Local::File(n)) => return Ok(Found::Local(n)),
            Some(Local::Dir) => return Ok(Found::LocalDir),
            Some(Local::Deleted) => return Err(Errno::ENOENT),
            None => {}
        }
        // Below a directory made locally the Hub has nothing: do not ask.
        if ws.is_local_dir(parent_of(path)) {
            return Err(Errno::ENOENT);
        }
        Ok(Found::Base(view.snapshot().lookup(path).await?))
    }

    pub(super) fn found_attr(&self, ino: u64, view: &View, found: &Found) -> Attr {
        let snap = view.snapshot();
        let mut attr = match found {
            Found::Base(node) => self.node_attr(ino, &snap, node),
            Found::LocalDir => Attr::dir(ino, snap.mtime, &self.cfg),
            Found::Local(n) => {
                let st = n.state.lock();
                Attr::file(ino, st.size, st.mtime, &self.cfg)
            }
        };
        if view.workspace().is_some() {
            attr.perm = if attr.kind == FileKind::Dir {
                self.cfg.dir_mode.unwrap_or(0o755)
            } else {
                self.cfg.file_mode.unwrap_or(0o644)
            };
        }
        attr
    }

    /// Children of `dir` in the merged view, sorted by name.
    pub(super) async fn list_merged(
        &self,
        view: &View,
        dir: &str,
    ) -> Result<Vec<(String, FileKind)>, Errno> {
        let found = self.find(view, dir).await?;
        if !found.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let mut merged = BTreeMap::new();
        let local_dir = match found {
            Found::LocalDir if view.workspace().is_some_and(|ws| ws.is_local_dir(dir)) => true,
            // Implied by local files below it (a new directory after a remount, whose files
            // have not landed yet): the Hub may or may not have it.
            Found::LocalDir => match view.snapshot().lookup(dir).await {
                Ok(Node::Dir) => false,
                Ok(Node::File(_)) => true,
                Err(e) if e == Errno::ENOENT || e == Errno::ENOTDIR => true,
                Err(e) => return Err(e),
            },
            _ => false,
        };
        let listing = if local_dir {
            Ok(Vec::new())
        } else {
            view.snapshot().list_dir(dir).await
        };
        match listing {
            Ok(children) => {
                for (name, node) in children {
                    let m = match node {
                        Node::File(f) => Merged::File(f.size),
                        Node::Dir => Merged::Dir,
                    };
                    merged.insert(name, m);
                }
            }
            // A directory made locally has no listing on the Hub.
            Err(e) => return Err(e),
        }
        if let Some(ws) = view.workspace() {
            ws.merge_listing(dir, &mut merged);
        }
        Ok(merged
            .into_iter()
            .map(|(name, m)| {
                let kind = match m {
                    Merged::File(_) => FileKind::File,
                    Merged::Dir => FileKind::Dir,
                };
                (name, kind)
            })
            .collect())
    }

    fn repo(&self) -> Result<RepoRef, Errno> {
        match &self.root {
            super::MountRoot::Repo { repo, .. } => Ok(repo.clone()),
            super::MountRoot::Hub => Err(Errno::EROFS),
        }
    }

    fn blob(&self, commit: &str, path: &str, info: &FileInfo) -> Result<Arc<Blob>, Errno> {
        let key = info.blob_key().ok_or(Errno::EIO)?;
        Ok(Arc::new(Blob {
            repo: self.repo()?,
            commit: commit.to_string(),
            path: path.to_string(),
            key,
            size: info.size,
            sha256: info.lfs_sha256.clone(),
            xet_hash: info.xet_hash.clone(),
        }))
    }

    /// Copies a committed file's bytes (fetched through the read path) into a new staging file.
    async fn fetch_into_staging(
        &self,
        ws: &Workspace,
        commit: &str,
        path: &str,
        info: &FileInfo,
    ) -> Result<Arc<StagingFile>, Errno> {
        let stream = ReadStream::new(self.blob(commit, path, info)?);
        let file = ws.area.create_file().map_err(Errno::from)?;
        let mut offset = 0;
        while offset < info.size {
            let chunk = self.svc.reader.read(&stream, offset, FETCH_CHUNK).await?;
            if chunk.is_empty() {
                tracing::warn!("{path}: content ended at {offset} of {} bytes", info.size);
                return Err(Errno::EIO);
            }
            // Zeros are left as a hole (a sparse file stays sparse on local disk).
            if chunk.iter().any(|&b| b != 0) {
                file.write_at(offset, &chunk).map_err(Errno::from)?;
            }
            offset += chunk.len() as u64;
        }
        file.set_len(info.size).map_err(Errno::from)?;
        Ok(file)
    }

    /// Gives a node whose bytes are still remote a staging file to write to.
    async fn ready_for_writing(
        &self,
        ws: &Workspace,
        node: &FileNode,
        truncate: bool,
    ) -> Result<(), Errno> {
        let remote = match &node.state.lock().content {
            Content::Remote { commit, path, info } if !truncate => {
                Some((commit.clone(), path.clone(), info.clone()))
            }
            _ => None,
        };
        if let Some((commit, path, info)) = remote {
            let file = self.fetch_into_staging(ws, &commit, &path, &info).await?;
            let mut st = node.state.lock();
            if matches!(st.content, Content::Remote { .. }) {
                st.content = Content::Staged {
                    file,
                    sealed: false,
                };
            }
        }
        Ok(())
    }

    pub(super) async fn open_in_workspace(
        &self,
        ino: u64,
        view: &Arc<View>,
        path: &str,
        flags: i32,
    ) -> Result<Opened, Errno> {
        let ws = view.workspace().cloned().ok_or(Errno::EROFS)?;
        let truncate = flags & libc::O_TRUNC != 0;
        let writer = flags & libc::O_ACCMODE != libc::O_RDONLY || truncate;
        let node = match self.find(view, path).await? {
            Found::LocalDir | Found::Base(Node::Dir) => return Err(Errno::EISDIR),
            Found::Local(n) => {
                if writer {
                    self.ready_for_writing(&ws, &n, truncate).await?;
                    ws.open_writer(&n, truncate)?;
                }
                n
            }
            Found::Base(Node::File(info)) if !writer => {
                return self.open_snapshot_file(
                    ino,
                    view,
                    view.snapshot(),
                    path,
                    info,
                    super::Backing::Never,
                );
            }
            Found::Base(Node::File(_)) if truncate => ws.create(path)?,
            Found::Base(Node::File(info)) => {
                let commit = view.snapshot().commit.clone();
                let file = self.fetch_into_staging(&ws, &commit, path, &info).await?;
                let n = ws.adopt(path, file, info.size);
                self.ready_for_writing(&ws, &n, false).await?;
                ws.open_writer(&n, false)?;
                n
            }
        };
        let fh = self.insert_handle(OpenFile::Local {
            ino,
            node,
            writable: writer,
            ws,
            remote: parking_lot::Mutex::new(None),
        });
        // Local content changes under the kernel's feet (commits, other handles): no caching.
        Ok(Opened::served(fh, false))
    }

    pub(super) async fn read_local(
        &self,
        node: &FileNode,
        remote: &parking_lot::Mutex<Option<(String, Arc<ReadStream>)>>,
        offset: u64,
        size: u32,
    ) -> Result<Vec<u8>, Errno> {
        let (content, len) = {
            let st = node.state.lock();
            (st.content.clone(), st.size)
        };
        if offset >= len {
            return Ok(Vec::new());
        }
        let want = (len - offset).min(u64::from(size));
        match content {
            Content::Staged { file, .. } => {
                file.read_at(offset, want as usize).map_err(Errno::from)
            }
            Content::Remote { commit, path, info } => {
                let key = format!("{commit}/{path}");
                let stream = {
                    let mut slot = remote.lock();
                    match &*slot {
                        Some((k, s)) if *k == key => s.clone(),
                        _ => {
                            let s = Arc::new(ReadStream::new(self.blob(&commit, &path, &info)?));
                            *slot = Some((key, s.clone()));
                            s
                        }
                    }
                };
                self.svc
                    .reader
                    .read(&stream, offset, want as u32)
                    .await
                    .map(|b| b.to_vec())
            }
        }
    }

    pub(super) fn release_local(&self, file: &OpenFile) -> Result<(), Errno> {
        match file {
            OpenFile::Local {
                node,
                writable: true,
                ws,
                ..
            } => ws.close_writer(node),
            _ => Ok(()),
        }
    }

    fn writer_of(&self, fh: u64) -> Result<(Arc<FileNode>, Arc<Workspace>), Errno> {
        match &*self.handle(fh)? {
            OpenFile::Local {
                node,
                writable: true,
                ws,
                ..
            } => Ok((node.clone(), ws.clone())),
            _ => Err(Errno::EBADF),
        }
    }

    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let (node, ws) = self.writer_of(fh)?;
        ws.write(&node, offset, data)?;
        Ok(data.len() as u32)
    }

    /// `close(2)` of a descriptor (FUSE sends it for every close of every duplicate): the
    /// bytes become durable on local disk and a failed write is reported, but nothing is
    /// queued: only the release of the last writable handle does that (`cmd > file` closes
    /// its first descriptor before `cmd` writes anything).
    /// `ino` and `pid`: the file's inode and the closing process.
    pub fn flush(&self, fh: u64, ino: u64, pid: u32) -> Result<(), Errno> {
        let Ok((node, ws)) = self.writer_of(fh) else {
            return Ok(());
        };
        let name = {
            let st = node.state.lock();
            st.path.rsplit('/').next().unwrap_or_default().to_string()
        };
        let last = !super::holders::holds(pid, ino, &name);
        ws.flush(&node, last)
    }

    /// Returns once the commit holding the file's current content has landed.
    pub async fn fsync(&self, fh: u64) -> Result<(), Errno> {
        let (node, ws) = match &*self.handle(fh)? {
            OpenFile::Local { node, ws, .. } => (node.clone(), ws.clone()),
            OpenFile::Snapshot { .. } => return Ok(()),
        };
        let Some(seq) = ws.seal(&node)? else {
            return Ok(());
        };
        let path = node.state.lock().path.clone();
        let timeout = *self.fsync_timeout.lock();
        ws.committer
            .wait_landed(&path, seq, timeout)
            .await
            .map_err(|why| {
                tracing::warn!("fsync of {path}: {why}");
                Errno::EIO
            })
    }

    /// The writable view and path of directory `ino`.
    async fn writable_dir(&self, ino: u64) -> Result<(Arc<View>, Arc<Workspace>, String), Errno> {
        let (_, located) = self.locate(ino)?;
        let Some(Located { view, path, .. }) = located else {
            return Err(Errno::EROFS);
        };
        let ws = view.workspace().cloned().ok_or(Errno::EROFS)?;
        if !self.find(&view, &path).await?.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok((view, ws, path))
    }

    fn child_path(dir: &str, name: &str) -> Result<String, Errno> {
        if name.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        let path = join(dir, name);
        // Names the Hub refuses (`.git`, `..`) cannot be created.
        crate::repo::validate_repo_path(&path).map_err(|_| Errno::EINVAL)?;
        Ok(path)
    }

    async fn exists(&self, view: &View, path: &str) -> Result<Option<Found>, Errno> {
        match self.find(view, path).await {
            Ok(f) => Ok(Some(f)),
            Err(e) if e == Errno::ENOENT => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn entry_of(&self, view: &View, path: &str, found: &Found) -> Entry {
        let ino = self.inodes.lookup(InodeKey::Path {
            view: view.id,
            path: path.to_string(),
        });
        Entry {
            attr: self.found_attr(ino, view, found),
            ttl: self.ttl_of(Some(view)),
        }
    }

    pub async fn create(
        &self,
        parent: u64,
        name: &str,
        flags: i32,
    ) -> Result<(Entry, Opened), Errno> {
        let (view, ws, dir) = self.writable_dir(parent).await?;
        let path = Self::child_path(&dir, name)?;
        if let Some(found) = self.exists(&view, &path).await? {
            if flags & libc::O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            if found.is_dir() {
                return Err(Errno::EISDIR);
            }
            let entry = self.entry_of(&view, &path, &found);
            let opened = self
                .open_in_workspace(entry.attr.ino, &view, &path, flags)
                .await?;
            return Ok((entry, opened));
        }
        let node = ws.create(&path)?;
        let entry = self.entry_of(&view, &path, &Found::Local(node.clone()));
        let fh = self.insert_handle(OpenFile::Local {
            ino: entry.attr.ino,
            node,
            writable: true,
            ws,
            remote: parking_lot::Mutex::new(None),
        });
        Ok((entry, Opened::served(fh, false)))
    }

    pub async fn mkdir(&self, parent: u64, name: &str) -> Result<Entry, Errno> {
        let (view, ws, dir) = self.writable_dir(parent).await?;
        let _gate = ws.committer.landing_gate().await;
        let path = Self::child_path(&dir, name)?;
        if self.exists(&view, &path).await?.is_some() {
            return Err(Errno::EEXIST);
        }
        ws.mkdir(&path)?;
        Ok(self.entry_of(&view, &path, &Found::LocalDir))
    }

    pub async fn unlink(&self, parent: u64, name: &str) -> Result<(), Errno> {
        let (view, ws, dir) = self.writable_dir(parent).await?;
        let _gate = ws.committer.landing_gate().await;
        let path = join(&dir, name);
        if self.find(&view, &path).await?.is_dir() {
            return Err(Errno::EISDIR);
        }
        let in_base = matches!(view.snapshot().lookup(&path).await, Ok(Node::File(_)));
        self.keep_parent(&view, &ws, &path).await;
        ws.unlink(&path, in_base)?;
        self.inodes.orphan(view.id, &path);
        Ok(())
    }

    pub async fn rmdir(&self, parent: u64, name: &str) -> Result<(), Errno> {
        let (view, ws, dir) = self.writable_dir(parent).await?;
        let _gate = ws.committer.landing_gate().await;
        let path = join(&dir, name);
        if !self.find(&view, &path).await?.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if !self.list_merged(&view, &path).await?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        // Anything of the base at the path (also a file deleted before this directory was
        // made there) must stay hidden once the directory goes.
        let in_base = view.snapshot().lookup(&path).await.is_ok();
        self.keep_parent(&view, &ws, &path).await;
        ws.rmdir(&path, in_base)
    }

    /// Before `path` goes away: its parent directory stays (until `rmdir`) even if `path` was
    /// all that made it visible (a directory the Hub does not have, known only from staged
    /// files below it, e.g. after a remount).
    async fn keep_parent(&self, view: &View, ws: &Workspace, path: &str) {
        let parent = parent_of(path);
        if parent.is_empty() || ws.is_local_dir(parent) {
            return;
        }
        if matches!(view.snapshot().lookup(parent).await, Ok(Node::Dir)) {
            // On the Hub: kept when the deletion lands (see `advance_view`).
            return;
        }
        ws.keep_dirs(&[parent.to_string()]);
    }

    pub async fn rename(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        flags: u32,
    ) -> Result<(), Errno> {
        let (view, ws, from_dir) = self.writable_dir(parent).await?;
        let (to_view, _, to_dir) = self.writable_dir(new_parent).await?;
        let _gate = ws.committer.landing_gate().await;
        if to_view.id != view.id {
            return Err(Errno::EXDEV);
        }
        if flags & libc::RENAME_EXCHANGE != 0 {
            return Err(Errno::EINVAL);
        }
        let from = join(&from_dir, name);
        let to = Self::child_path(&to_dir, new_name)?;
        let src = self.find(&view, &from).await?;
        if from == to {
            return Ok(());
        }
        let dst = self.exists(&view, &to).await?;
        if dst.is_some() && flags & libc::RENAME_NOREPLACE != 0 {
            return Err(Errno::EEXIST);
        }
        match (&dst, src.is_dir()) {
            (Some(d), false) if d.is_dir() => return Err(Errno::EISDIR),
            (Some(d), true) if !d.is_dir() => return Err(Errno::ENOTDIR),
            (Some(_), true) if !self.list_merged(&view, &to).await?.is_empty() => {
                return Err(Errno::ENOTEMPTY)
            }
            _ => {}
        }
        self.keep_parent(&view, &ws, &from).await;
        if src.is_dir() {
            if to.starts_with(&format!("{from}/")) {
                return Err(Errno::EINVAL);
            }
            self.rename_dir(&view, &ws, &from, &to).await?;
        } else {
            self.rename_file(&view, &ws, &from, &to, src).await?;
        }
        self.inodes.rename(view.id, &from, &to);
        Ok(())
    }

    async fn rename_file(
        &self,
        view: &View,
        ws: &Workspace,
        from: &str,
        to: &str,
        src: Found,
    ) -> Result<(), Errno> {
        let snap = view.snapshot();
        let source = match src {
            Found::Local(n) => RenameSource::Local(n),
            // LFS files are copied by sha256, bucket files by Xet hash: no bytes move.
            Found::Base(Node::File(info))
                if info.lfs_sha256.is_some() || (snap.is_bucket() && info.xet_hash.is_some()) =>
            {
                RenameSource::Remote {
                    commit: snap.commit.clone(),
                    path: from.to_string(),
                    info,
                }
            }
            Found::Base(Node::File(info)) => {
                let file = self
                    .fetch_into_staging(ws, &snap.commit, from, &info)
                    .await?;
                RenameSource::Fetched(file, info.size)
            }
            Found::Base(Node::Dir) | Found::LocalDir => return Err(Errno::EISDIR),
        };
        let from_in_base = matches!(snap.lookup(from).await, Ok(Node::File(_)));
        ws.rename_file(from, to, source, from_in_base)
    }

    /// Renames every file below `from`, then the directories themselves.
    async fn rename_dir(
        &self,
        view: &View,
        ws: &Workspace,
        from: &str,
        to: &str,
    ) -> Result<(), Errno> {
        let mut dirs = vec![from.to_string()];
        let mut files = Vec::new();
        let mut i = 0;
        while i < dirs.len() {
            let dir = dirs[i].clone();
            for (name, kind) in self.list_merged(view, &dir).await? {
                let p = join(&dir, &name);
                match kind {
                    FileKind::Dir => dirs.push(p),
                    FileKind::File => files.push(p),
                }
            }
            i += 1;
        }
        let moved = |p: &str| format!("{to}{}", &p[from.len()..]);
        for f in files {
            let src = self.find(view, &f).await?;
            self.rename_file(view, ws, &f, &moved(&f), src).await?;
        }
        let snap = view.snapshot();
        let mut moves = Vec::new();
        for d in dirs {
            // As in rmdir: whatever the base has at `d` stays hidden.
            let in_base = snap.lookup(&d).await.is_ok();
            moves.push((d.clone(), moved(&d), in_base));
        }
        ws.move_dirs(&moves)
    }

    /// `truncate`, `chmod`, `chown`, `utimes`. Sizes change through the open handle if one is
    /// given, else by path. Modes and owners cannot be stored on the Hub: only a no-op change
    /// (to what is shown already) is accepted, so `cp -p` works; times are accepted and ignored.
    #[allow(clippy::too_many_arguments)]
    pub async fn setattr(
        &self,
        ino: u64,
        fh: Option<u64>,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
    ) -> Result<Entry, Errno> {
        let located = match self.locate(ino) {
            Ok((_, located)) => located,
            // Unlinked while open: `ftruncate` through a writable handle still works.
            Err(e) => {
                let writer = fh.and_then(|fh| self.writer_of(fh).ok());
                return match (writer, size) {
                    (Some((node, ws)), Some(size)) if mode.is_none() && uid.is_none() => {
                        ws.truncate(&node, size)?;
                        self.getattr(ino).await
                    }
                    _ => Err(e),
                };
            }
        };
        let Some(Located { view, path, .. }) = located else {
            return Err(Errno::EROFS);
        };
        let Some(ws) = view.workspace().cloned() else {
            return Err(Errno::EROFS);
        };
        let current = self.getattr(ino).await?.attr;
        if mode.is_some_and(|m| m & 0o7777 != u32::from(current.perm))
            || uid.is_some_and(|u| u != current.uid)
            || gid.is_some_and(|g| g != current.gid)
        {
            return Err(Errno::EPERM);
        }
        if let Some(size) = size {
            if current.kind == FileKind::Dir {
                return Err(Errno::EISDIR);
            }
            match fh.and_then(|fh| self.writer_of(fh).ok()) {
                Some((node, ws)) => ws.truncate(&node, size)?,
                None => self.truncate_path(&view, &ws, &path, size).await?,
            }
        }
        self.getattr(ino).await
    }

    async fn truncate_path(
        &self,
        view: &View,
        ws: &Workspace,
        path: &str,
        size: u64,
    ) -> Result<(), Errno> {
        let node = match self.find(view, path).await? {
            Found::Local(n) => {
                self.ready_for_writing(ws, &n, size == 0).await?;
                ws.open_writer(&n, false)?;
                n
            }
            Found::Base(Node::File(_)) if size == 0 => ws.create(path)?,
            Found::Base(Node::File(info)) => {
                let commit = view.snapshot().commit.clone();
                let file = self.fetch_into_staging(ws, &commit, path, &info).await?;
                let n = ws.adopt(path, file, info.size);
                ws.open_writer(&n, false)?;
                n
            }
            Found::Base(Node::Dir) | Found::LocalDir => return Err(Errno::EISDIR),
        };
        let result = ws.truncate(&node, size);
        ws.close_writer(&node)?;
        result
    }

    /// `access(2)`: W_OK only on writable views.
    pub fn access(&self, ino: u64, write: bool) -> Result<(), Errno> {
        let (_, located) = self.locate(ino)?;
        if !write {
            return Ok(());
        }
        match located {
            Some(Located { view, .. }) if view.workspace().is_some() => Ok(()),
            _ => Err(Errno::EROFS),
        }
    }

    /// Waits (at most `limit`, and never more than [`RELEASE_WAIT`]) for the releases of files
    /// already closed. The kernel sends a release after `close` returned, so a `sync` right
    /// after `cp`, or a SIGTERM right after a shell redirect ended, would otherwise miss the
    /// version that the release queues.
    pub async fn await_releases(&self, limit: Duration) {
        let Some(ws) = self.root_workspace() else {
            return;
        };
        let until = std::time::Instant::now() + RELEASE_WAIT.min(limit);
        while ws.releasing() > 0 && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// `hubfs sync`: None on a read-only mount.
    pub async fn sync(&self, timeout: Duration) -> Option<SyncReport> {
        let ws = self.root_workspace()?;
        self.await_releases(timeout).await;
        let mut report = ws.committer.sync(timeout).await;
        for (path, why) in ws.poisoned() {
            if !report.failed.iter().any(|(p, _)| *p == path) {
                report.failed.push((path, why));
            }
        }
        report.ok = report.failed.is_empty();
        Some(report)
    }

    pub(super) fn write_status(&self) -> serde_json::Value {
        let Some(ws) = self.root_workspace() else {
            return serde_json::Value::Null;
        };
        serde_json::json!({
            "pending": ws.committer.pending_count(),
            "overlay_entries": ws.overlay_len(),
            "held": ws.poisoned().into_iter().collect::<BTreeMap<_, _>>(),
            "commit": ws.committer.status(),
            "staging_dir": ws.area.dir(),
        })
    }
}
