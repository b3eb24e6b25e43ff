//! The workspace of a writable view: its local changes over the base snapshot.
//!
//! The overlay maps paths to what is local: a file with local content (a [`FileNode`]), a
//! deletion, or a directory made with `mkdir`. Lookups and listings of the view consult the
//! overlay first, then the snapshot. Every change that must survive a crash is journaled in
//! the staging area before the operation returns; the committer commits journaled changes,
//! and once a commit lands the view moves to it and committed entries leave the overlay.
//!
//! A version is queued for commit only when its last writable handle is released (or on
//! `fsync`): a `close` of one descriptor among several (the shell's `cmd > file` closes its
//! first descriptor at once) only makes the bytes durable and reports write errors. A version
//! a write failed on is **poisoned**: it is never committed, stays staged and visible, and is
//! reported (`hubfs status`/`sync`) until the file is written afresh or deleted. A flushed
//! version whose writer is still open is journaled as held: after a crash it comes back
//! poisoned rather than committed half-written, unless that flush was the writer's last
//! `close` with nothing written since (only the release was lost): then it is queued.
//!
//! Lock order: overlay → node → staging area.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;

use super::errno::Errno;
use super::tree::FileInfo;
use crate::commit::Committer;
use crate::stage::{Change, Record, StagingArea, StagingFile};

/// Where a local file's bytes are.
#[derive(Clone)]
pub enum Content {
    /// In a staging file; `sealed` = journaled, so immutable (writers copy it first).
    Staged {
        file: Arc<StagingFile>,
        sealed: bool,
    },
    /// Unchanged bytes of a file of an earlier commit, now under another name (a renamed LFS
    /// file: committed as a copy of the same object, without upload).
    Remote {
        commit: String,
        path: String,
        info: FileInfo,
    },
}

pub struct NodeState {
    /// Current path in the view (renames move it).
    pub path: String,
    pub content: Content,
    pub size: u64,
    /// Open handles that may write.
    pub writers: u32,
    /// Written since the last seal.
    pub dirty: bool,
    /// Unlinked or replaced: nothing it does reaches the journal any more.
    pub detached: bool,
    /// Journal version of its last seal (what fsync waits for).
    pub seq: Option<u64>,
    /// Last local change (the Hub keeps no mtimes; this one lives until the change lands).
    pub mtime: SystemTime,
    /// Why this version must never be committed (a write failed, or it was still open for
    /// writing at a crash). Only writing the file afresh (truncating it to 0) or deleting it
    /// ends it.
    pub poison: Option<Poison>,
    /// The journal holds a `Hold` record for this node's path; `Some(true)`: one marked
    /// complete (replayed as a pending change).
    pub held: Option<bool>,
    /// A descriptor was closed (FUSE flush) since the last write: a release is on its way.
    pub flushed: bool,
}

/// Why a version is not committed.
#[derive(Clone, Debug)]
pub struct Poison {
    /// What `close`/`fsync` report.
    pub errno: Errno,
    pub reason: String,
}

/// Reason journaled for a flushed version whose writer is still open (shown after a crash).
const OPEN_AT_CRASH: &str =
    "it was still open for writing when the daemon stopped: not committed (write it again, \
     or delete it)";

/// A file with local content, shared by its open handles.
pub struct FileNode {
    pub state: Mutex<NodeState>,
}

#[derive(Clone)]
pub enum Local {
    File(Arc<FileNode>),
    Deleted,
    Dir,
}

/// What a path is in the merged view, as far as the overlay knows.
pub enum Merged {
    File(u64),
    Dir,
}

pub struct Workspace {
    pub area: Arc<StagingArea>,
    pub committer: Arc<Committer>,
    overlay: Mutex<BTreeMap<String, Local>>,
}

fn io(e: std::io::Error) -> Errno {
    tracing::warn!("staging: {e}");
    Errno::from(e)
}

fn is_below(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

impl FileNode {
    fn new(path: &str, content: Content, size: u64, writers: u32, dirty: bool) -> Arc<FileNode> {
        Arc::new(FileNode {
            state: Mutex::new(NodeState {
                path: path.to_string(),
                content,
                size,
                writers,
                dirty,
                detached: false,
                seq: None,
                mtime: SystemTime::now(),
                poison: None,
                held: None,
                flushed: false,
            }),
        })
    }
}

impl Workspace {
    /// Rebuilds the overlay from the journal (changes of an earlier mount not yet committed).
    pub fn open(area: Arc<StagingArea>, committer: Arc<Committer>) -> Result<Workspace, Errno> {
        let (pending, dirs, held) =
            area.with_journal(|j| (j.pending().clone(), j.dirs().clone(), j.held().clone()));
        let mut overlay = BTreeMap::new();
        for (path, p) in pending {
            let local = match p.change {
                Change::Put { file, size } => {
                    let staged = area.open_file(file).map_err(io)?;
                    let node = FileNode::new(
                        &path,
                        Content::Staged {
                            file: staged,
                            sealed: true,
                        },
                        size,
                        0,
                        false,
                    );
                    node.state.lock().seq = Some(p.seq);
                    Local::File(node)
                }
                Change::CopyLfs {
                    sha256,
                    size,
                    oid,
                    from_commit,
                    from_path,
                } => {
                    let info = FileInfo {
                        size,
                        oid,
                        lfs_sha256: Some(sha256),
                        xet_hash: None,
                    };
                    let content = Content::Remote {
                        commit: from_commit,
                        path: from_path,
                        info,
                    };
                    let node = FileNode::new(&path, content, size, 0, false);
                    node.state.lock().seq = Some(p.seq);
                    Local::File(node)
                }
                Change::Delete => Local::Deleted,
            };
            overlay.insert(path, local);
        }
        // A local directory made where a file was deleted (the deletion still pending) is
        // what the path is now.
        for d in dirs {
            if !matches!(overlay.get(&d), Some(Local::File(_))) {
                overlay.insert(d, Local::Dir);
            }
        }
        // A held version is newer than any pending change of its path: it is what the mount
        // shows (and reports), while the pending one still lands.
        for (path, h) in held {
            let opened = area.open_file(h.file).and_then(|f| Ok((f.len()?, f)));
            let (size, staged) = match opened {
                Ok(o) => o,
                Err(e) => {
                    // Nothing to show: the path is what the Hub (or a pending change) says.
                    tracing::warn!("held version of {path} is unreadable, dropped: {e}");
                    continue;
                }
            };
            let node = FileNode::new(
                &path,
                Content::Staged {
                    file: staged,
                    sealed: false,
                },
                size,
                0,
                false,
            );
            {
                let mut st = node.state.lock();
                st.held = Some(false);
                st.poison = Some(Poison {
                    errno: Errno::EIO,
                    reason: h.reason,
                });
            }
            overlay.insert(path, Local::File(node));
        }
        Ok(Workspace {
            area,
            committer,
            overlay: Mutex::new(overlay),
        })
    }

    /// The overlay's entry for `path`, or a directory implied by local files below it.
    pub fn get(&self, path: &str) -> Option<Local> {
        let overlay = self.overlay.lock();
        if let Some(l) = overlay.get(path) {
            return Some(l.clone());
        }
        let implied = overlay
            .range(format!("{path}/")..)
            .take_while(|(p, _)| is_below(p, path))
            .any(|(_, l)| !matches!(l, Local::Deleted));
        implied.then_some(Local::Dir)
    }

    /// A directory made here (mkdir, rename) that the view's commit does not have: nothing
    /// below it exists on the Hub, so lookups need not ask.
    pub fn is_local_dir(&self, path: &str) -> bool {
        !path.is_empty() && matches!(self.overlay.lock().get(path), Some(Local::Dir))
    }

    /// Local directories, to check against a newer snapshot.
    pub fn local_dirs(&self) -> Vec<String> {
        let overlay = self.overlay.lock();
        overlay
            .iter()
            .filter(|(_, l)| matches!(l, Local::Dir))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Directories the view's new commit has: no longer local-only (in the journal too, so
    /// that after a restart the Hub is asked about what is below them).
    pub fn forget_dirs(&self, dirs: &[String]) {
        if dirs.is_empty() {
            return;
        }
        let mut overlay = self.overlay.lock();
        for d in dirs {
            if matches!(overlay.get(d), Some(Local::Dir)) {
                overlay.remove(d);
            }
        }
        drop(overlay);
        let records: Vec<Record> = dirs
            .iter()
            .map(|d| Record::Rmdir { path: d.clone() })
            .collect();
        if let Err(e) = self.area.record(&records) {
            tracing::warn!("journaling directories now on the Hub: {e}");
        }
    }

    /// Directories above deleted entries (their deletion may be landing), not deleted
    /// themselves: those that vanish from the Hub with it are kept (see `keep_dirs`).
    pub fn dirs_of_deleted(&self) -> Vec<String> {
        let overlay = self.overlay.lock();
        let mut dirs = std::collections::BTreeSet::new();
        for (path, local) in overlay.iter() {
            if !matches!(local, Local::Deleted) {
                continue;
            }
            let mut p = path.as_str();
            while let Some(i) = p.rfind('/') {
                p = &p[..i];
                if !dirs.insert(p.to_string()) {
                    break;
                }
            }
        }
        dirs.into_iter()
            .filter(|d| !matches!(overlay.get(d), Some(Local::Deleted | Local::Dir)))
            .collect()
    }

    /// Directories that stay although the Hub no longer has them: local until `rmdir`
    /// (journaled, so they survive a remount).
    pub fn keep_dirs(&self, dirs: &[String]) {
        if dirs.is_empty() {
            return;
        }
        let mut overlay = self.overlay.lock();
        let records: Vec<Record> = dirs
            .iter()
            .map(|d| {
                overlay.insert(d.clone(), Local::Dir);
                Record::Mkdir { path: d.clone() }
            })
            .collect();
        drop(overlay);
        if let Err(e) = self.area.record(&records) {
            tracing::warn!("journaling kept directories: {e}");
        }
    }

    /// Applies the overlay to a directory listing of the base (`base`: name → node).
    pub fn merge_listing(&self, dir: &str, base: &mut BTreeMap<String, Merged>) {
        let overlay = self.overlay.lock();
        let start = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        for (path, local) in overlay.range(start.clone()..) {
            if !is_below(path, dir) {
                break;
            }
            let rest = &path[start.len()..];
            match rest.split_once('/') {
                None => match local {
                    Local::File(n) => {
                        base.insert(rest.to_string(), Merged::File(n.state.lock().size));
                    }
                    Local::Dir => {
                        base.insert(rest.to_string(), Merged::Dir);
                    }
                    Local::Deleted => {
                        base.remove(rest);
                    }
                },
                Some((child, _)) if !matches!(local, Local::Deleted) => {
                    base.entry(child.to_string()).or_insert(Merged::Dir);
                }
                Some(_) => {}
            }
        }
    }

    /// Journals records and wakes the committer.
    fn journal(&self, records: &[Record]) -> Result<(), Errno> {
        self.area.record(records).map_err(io)?;
        self.committer.queued();
        Ok(())
    }

    fn next_seq(&self) -> u64 {
        self.area.with_journal(|j| j.next_seq())
    }

    fn has_pending(&self, path: &str) -> bool {
        self.area.with_journal(|j| j.pending().contains_key(path))
    }

    /// A new empty file at `path`, open for writing (replaces whatever was there).
    pub fn create(&self, path: &str) -> Result<Arc<FileNode>, Errno> {
        let file = self.area.create_file().map_err(io)?;
        let node = FileNode::new(
            path,
            Content::Staged {
                file,
                sealed: false,
            },
            0,
            1,
            true,
        );
        let old = self
            .overlay
            .lock()
            .insert(path.to_string(), Local::File(node.clone()));
        if let Some(Local::File(old)) = old {
            old.state.lock().detached = true;
        }
        self.unhold(path);
        Ok(node)
    }

    /// Ends the journaled hold of `path`, if any (its version was replaced or deleted).
    /// Best effort: a leftover hold only shows a stale version again after a crash.
    fn unhold(&self, path: &str) {
        if self.area.with_journal(|j| j.held().contains_key(path)) {
            let rec = Record::Unhold {
                path: path.to_string(),
            };
            if let Err(e) = self.area.record_with(&[rec], false) {
                tracing::warn!("journaling the end of the hold of {path}: {e}");
            }
        }
    }

    /// Marks the node's version as never to be committed and journals it as held (so it is
    /// still reported after a restart); returns the error for the failed call.
    fn poison(&self, st: &mut NodeState, errno: Errno, what: &str) -> Errno {
        let reason = format!(
            "{what} failed ({errno}): this version is incomplete and is not committed \
             (write the file again from the start, or delete it)"
        );
        tracing::warn!("{}: {reason}", st.path);
        if st.poison.is_none() && !st.detached {
            if let Content::Staged { file, .. } = &st.content {
                let rec = Record::Hold {
                    path: st.path.clone(),
                    file: file.id(),
                    size: st.size,
                    reason: reason.clone(),
                    complete: false,
                };
                match self.area.record(&[rec]) {
                    Ok(()) => st.held = Some(false),
                    // The disk may be full: the poison still holds in memory.
                    Err(e) => tracing::warn!("journaling the hold of {}: {e}", st.path),
                }
            }
        }
        st.poison = Some(Poison { errno, reason });
        errno
    }

    /// Adds a node whose content was fetched from the Hub (a base file opened for writing),
    /// unless another open got there first: then that node is used.
    pub fn adopt(&self, path: &str, file: Arc<StagingFile>, size: u64) -> Arc<FileNode> {
        let mut overlay = self.overlay.lock();
        if let Some(Local::File(existing)) = overlay.get(path) {
            return existing.clone();
        }
        let node = FileNode::new(
            path,
            Content::Staged {
                file,
                sealed: false,
            },
            size,
            0,
            false,
        );
        overlay.insert(path.to_string(), Local::File(node.clone()));
        node
    }

    /// Makes the node's content an unsealed staging file it may write to (copying a sealed
    /// version first). `Remote` content must have been materialized by the caller.
    fn writable<'a>(
        &self,
        st: &'a mut NodeState,
        truncate: bool,
    ) -> Result<&'a Arc<StagingFile>, Errno> {
        let replace = match &st.content {
            Content::Staged { sealed: false, .. } => None,
            Content::Staged { file, sealed: true } => Some(if truncate {
                self.area.create_file().map_err(io)?
            } else {
                self.area.copy_file(file).map_err(io)?
            }),
            Content::Remote { .. } if truncate => Some(self.area.create_file().map_err(io)?),
            Content::Remote { .. } => return Err(Errno::EIO),
        };
        if let Some(file) = replace {
            st.content = Content::Staged {
                file,
                sealed: false,
            };
        }
        match &st.content {
            Content::Staged { file, .. } => Ok(file),
            Content::Remote { .. } => Err(Errno::EIO),
        }
    }

    /// One more writer on `node`; `truncate` empties it (O_TRUNC).
    pub fn open_writer(&self, node: &FileNode, truncate: bool) -> Result<(), Errno> {
        let mut st = node.state.lock();
        if truncate {
            self.empty(&mut st)?;
        }
        st.writers += 1;
        Ok(())
    }

    /// Truncates the node to nothing: the file is written afresh, so an earlier failed
    /// write no longer matters.
    fn empty(&self, st: &mut NodeState) -> Result<(), Errno> {
        self.touch(st)?;
        if st.poison.is_some() {
            // Start from a new staging file: the poisoned one may be big, on a full disk.
            st.content = Content::Staged {
                file: self.area.create_file().map_err(io)?,
                sealed: false,
            };
        }
        let file = self.writable(st, true)?.clone();
        file.set_len(0).map_err(io)?;
        if st.held.is_some() {
            self.unhold(&st.path);
            st.held = None;
        }
        st.poison = None;
        st.size = 0;
        st.dirty = true;
        st.flushed = false;
        st.mtime = SystemTime::now();
        Ok(())
    }

    /// Before content changes: a hold journaled as complete (by a flush) is not any more.
    fn touch(&self, st: &mut NodeState) -> Result<(), Errno> {
        if st.held != Some(true) {
            return Ok(());
        }
        if let Content::Staged { file, .. } = &st.content {
            let rec = Record::Hold {
                path: st.path.clone(),
                file: file.id(),
                size: st.size,
                reason: OPEN_AT_CRASH.to_string(),
                complete: false,
            };
            if let Err(e) = self.area.record_with(&[rec], false) {
                return Err(self.poison(st, io(e), "journaling a write"));
            }
        }
        st.held = Some(false);
        Ok(())
    }

    /// A write through an open handle; a failure poisons the version.
    pub fn write(&self, node: &FileNode, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let mut st = node.state.lock();
        self.touch(&mut st)?;
        let written = self
            .writable(&mut st, false)
            .cloned()
            .and_then(|file| file.write_at(offset, data).map_err(io));
        if let Err(e) = written {
            return Err(self.poison(&mut st, e, "a write"));
        }
        st.size = st.size.max(offset + data.len() as u64);
        st.dirty = true;
        st.flushed = false;
        st.mtime = SystemTime::now();
        Ok(())
    }

    /// A truncate (through a handle or by path); a failure poisons the version, a truncate
    /// to 0 makes it a fresh one.
    pub fn truncate(&self, node: &FileNode, size: u64) -> Result<(), Errno> {
        let mut st = node.state.lock();
        self.touch(&mut st)?;
        if size == 0 {
            return self.empty(&mut st);
        }
        let done = self
            .writable(&mut st, false)
            .cloned()
            .and_then(|file| file.set_len(size).map_err(io));
        if let Err(e) = done {
            return Err(self.poison(&mut st, e, "a truncate"));
        }
        st.size = size;
        st.dirty = true;
        st.flushed = false;
        st.mtime = SystemTime::now();
        Ok(())
    }

    /// `close(2)` of one descriptor of a writer: makes the bytes durable on local disk and
    /// reports a failed write, but queues nothing (other descriptors of the same open file
    /// may still write; the release of the last one queues). The version is journaled as
    /// held meanwhile, `last` (the closing process keeps no other descriptor of the file)
    /// marking it complete: a crash before the release then queues it at replay, else it
    /// stays held.
    pub fn flush(&self, node: &FileNode, last: bool) -> Result<(), Errno> {
        let mut st = node.state.lock();
        if let Some(p) = &st.poison {
            return Err(p.errno);
        }
        if st.detached || !st.dirty {
            st.flushed = true;
            return Ok(());
        }
        let Content::Staged { file, .. } = &st.content else {
            return Ok(());
        };
        let file = file.clone();
        if let Err(e) = file.sync().map_err(io) {
            return Err(self.poison(&mut st, e, "writing to local disk"));
        }
        if st.held != Some(last) {
            let rec = Record::Hold {
                path: st.path.clone(),
                file: file.id(),
                size: st.size,
                reason: OPEN_AT_CRASH.to_string(),
                complete: last,
            };
            // Not fsync'd: it reaches the disk with the next journaled change or the kernel's
            // writeback; a daemon crash keeps it, a power loss may forget it (the version is
            // then absent after the restart, never partial).
            self.area.record_with(&[rec], false).map_err(io)?;
            st.held = Some(last);
        }
        st.flushed = true;
        Ok(())
    }

    /// Makes the node's current content a pending change: fsync, journal, queue. Returns the
    /// journal version holding it (None if the node is detached or was never changed).
    pub fn seal(&self, node: &FileNode) -> Result<Option<u64>, Errno> {
        let mut st = node.state.lock();
        if st.detached {
            return Ok(st.seq);
        }
        if let Some(p) = &st.poison {
            return Err(p.errno);
        }
        if !st.dirty {
            return Ok(st.seq);
        }
        let size = st.size;
        let Content::Staged { file, .. } = &st.content else {
            return Ok(st.seq);
        };
        let file = file.clone();
        if let Err(e) = file.sync().map_err(io) {
            return Err(self.poison(&mut st, e, "writing to local disk"));
        }
        let Content::Staged { file, sealed } = &mut st.content else {
            return Ok(st.seq);
        };
        let seq = self.next_seq();
        let change = Change::Put {
            file: file.id(),
            size,
        };
        *sealed = true;
        let path = st.path.clone();
        if let Err(e) = self.journal(&[Record::Change { path, seq, change }]) {
            // Not queued: the version stays writable, and a later close tries again.
            if let Content::Staged { sealed, .. } = &mut st.content {
                *sealed = false;
            }
            return Err(e);
        }
        st.dirty = false;
        // The change record ended the hold of the path.
        st.held = None;
        st.seq = Some(seq);
        Ok(Some(seq))
    }

    /// A writable handle was released; the last one seals (queues) the content.
    pub fn close_writer(&self, node: &FileNode) -> Result<(), Errno> {
        let last = {
            let mut st = node.state.lock();
            st.writers = st.writers.saturating_sub(1);
            st.flushed = false;
            st.writers == 0
        };
        if last {
            self.seal(node)?;
        }
        Ok(())
    }

    /// Files whose current version will not be committed, with the reason.
    pub fn poisoned(&self) -> Vec<(String, String)> {
        let overlay = self.overlay.lock();
        overlay
            .iter()
            .filter_map(|(path, l)| match l {
                Local::File(n) => {
                    let st = n.state.lock();
                    let p = st.poison.as_ref().filter(|_| !st.detached)?;
                    Some((path.clone(), p.reason.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Files closed by one descriptor with the release of their open file still to come
    /// (the kernel sends it right after the last `close`): `hubfs sync` waits for them.
    pub fn releasing(&self) -> usize {
        let overlay = self.overlay.lock();
        overlay
            .values()
            .filter(|l| match l {
                Local::File(n) => {
                    let st = n.state.lock();
                    st.writers > 0 && st.flushed && st.dirty && !st.detached
                }
                _ => false,
            })
            .count()
    }

    /// Removes the file at `path`; `in_base` = the base snapshot has it.
    pub fn unlink(&self, path: &str, in_base: bool) -> Result<(), Errno> {
        let mut overlay = self.overlay.lock();
        if let Some(Local::File(n)) = overlay.get(path) {
            n.state.lock().detached = true;
        }
        self.unhold(path);
        // A pending change may be in a commit being sent: delete explicitly in that case too.
        if in_base || self.has_pending(path) {
            overlay.insert(path.to_string(), Local::Deleted);
            let seq = self.next_seq();
            self.journal(&[Record::Change {
                path: path.to_string(),
                seq,
                change: Change::Delete,
            }])?;
        } else {
            overlay.remove(path);
        }
        Ok(())
    }

    pub fn mkdir(&self, path: &str) -> Result<(), Errno> {
        self.overlay.lock().insert(path.to_string(), Local::Dir);
        self.area
            .record(&[Record::Mkdir {
                path: path.to_string(),
            }])
            .map_err(io)
    }

    /// Removes an (empty) directory; `in_base` = the base snapshot has it.
    pub fn rmdir(&self, path: &str, in_base: bool) -> Result<(), Errno> {
        let mut overlay = self.overlay.lock();
        if in_base {
            overlay.insert(path.to_string(), Local::Deleted);
        } else {
            overlay.remove(path);
        }
        drop(overlay);
        self.area
            .record(&[Record::Rmdir {
                path: path.to_string(),
            }])
            .map_err(io)
    }

    /// Moves local file `node` (or, with `remote`, a committed file) from `from` to `to`,
    /// replacing whatever `to` was. `from_in_base`: the base snapshot has `from`.
    pub fn rename_file(
        &self,
        from: &str,
        to: &str,
        source: RenameSource,
        from_in_base: bool,
    ) -> Result<(), Errno> {
        let mut overlay = self.overlay.lock();
        let node = match source {
            RenameSource::Local(node) => node,
            RenameSource::Remote { commit, path, info } => {
                let size = info.size;
                FileNode::new(to, Content::Remote { commit, path, info }, size, 0, true)
            }
            RenameSource::Fetched(file, size) => FileNode::new(
                to,
                Content::Staged {
                    file,
                    sealed: false,
                },
                size,
                0,
                true,
            ),
        };
        if let Some(Local::File(old)) = overlay.get(to) {
            if !Arc::ptr_eq(old, &node) {
                old.state.lock().detached = true;
            }
        }
        let mut records = Vec::new();
        if self.area.with_journal(|j| j.held().contains_key(from)) {
            records.push(Record::Unhold {
                path: from.to_string(),
            });
        }
        {
            let mut st = node.state.lock();
            st.path = to.to_string();
            if st.poison.is_some() || (st.held.is_some() && st.writers > 0 && st.dirty) {
                // A held version stays held under its new name.
                if let Content::Staged { file, .. } = &st.content {
                    let reason = st
                        .poison
                        .as_ref()
                        .map_or(OPEN_AT_CRASH.to_string(), |p| p.reason.clone());
                    records.push(Record::Hold {
                        path: to.to_string(),
                        file: file.id(),
                        size: st.size,
                        reason,
                        complete: st.held == Some(true) && st.poison.is_none(),
                    });
                }
            } else if st.writers == 0 || !st.dirty {
                // Content already journaled (or never to be written again) is journaled under
                // the new name now; content still being written is journaled when its writer
                // is released.
                let seq = self.next_seq();
                let change = match &mut st.content {
                    Content::Staged { file, sealed } => {
                        if !*sealed {
                            file.sync().map_err(io)?;
                            *sealed = true;
                        }
                        Change::Put {
                            file: file.id(),
                            size: st.size,
                        }
                    }
                    Content::Remote { commit, path, info } => Change::CopyLfs {
                        sha256: info.lfs_sha256.clone().unwrap_or_default(),
                        size: info.size,
                        // A bucket file's identity is its Xet hash: the bucket batch copies it.
                        oid: info.identity().to_string(),
                        from_commit: commit.clone(),
                        from_path: path.clone(),
                    },
                };
                records.push(Record::Change {
                    path: to.to_string(),
                    seq,
                    change,
                });
                st.dirty = false;
                st.held = None;
                st.seq = Some(seq);
            }
        }
        overlay.insert(to.to_string(), Local::File(node));
        if from_in_base || self.has_pending(from) {
            overlay.insert(from.to_string(), Local::Deleted);
            let seq = self.next_seq();
            records.push(Record::Change {
                path: from.to_string(),
                seq,
                change: Change::Delete,
            });
        } else {
            overlay.remove(from);
        }
        drop(overlay);
        self.journal(&records)
    }

    /// After renaming a directory's files: the old directory (and its sub-directories) is
    /// gone, the new ones exist.
    pub fn move_dirs(&self, moves: &[(String, String, bool)]) -> Result<(), Errno> {
        let mut overlay = self.overlay.lock();
        let mut records = Vec::new();
        for (from, to, from_in_base) in moves {
            if *from_in_base {
                overlay.insert(from.clone(), Local::Deleted);
            } else {
                overlay.remove(from);
            }
            overlay.insert(to.clone(), Local::Dir);
            records.push(Record::Rmdir { path: from.clone() });
            records.push(Record::Mkdir { path: to.clone() });
        }
        drop(overlay);
        self.area.record(&records).map_err(io)
    }

    /// Paths of the overlay's live files and directories below `dir`.
    pub fn local_below(&self, dir: &str) -> Vec<(String, Local)> {
        let overlay = self.overlay.lock();
        overlay
            .range(format!("{dir}/")..)
            .take_while(|(p, _)| is_below(p, dir))
            .map(|(p, l)| (p.clone(), l.clone()))
            .collect()
    }

    /// After the view moved to a commit that holds the landed changes: entries that are
    /// now what the snapshot says leave the overlay. Local directories stay (the Hub drops
    /// empty ones; locally they exist until `rmdir`).
    /// `shown`: the commit the view shows; nothing is dropped unless it is the journal's base
    /// (a landing whose view move failed keeps its entries until a later move succeeds).
    pub fn prune(&self, shown: &str) {
        let Some(pending) = self
            .area
            .with_journal(|j| (j.base() == Some(shown)).then(|| j.pending().clone()))
        else {
            return;
        };
        let pending_below = |dir: &str| {
            pending
                .range(format!("{dir}/")..)
                .next()
                .is_some_and(|(p, _)| is_below(p, dir))
        };
        let mut overlay = self.overlay.lock();
        overlay.retain(|path, local| {
            if pending.contains_key(path) {
                return true;
            }
            match local {
                Local::Deleted => pending_below(path),
                Local::Dir => true,
                Local::File(n) => {
                    let st = n.state.lock();
                    // A close may have journaled this file after `pending` was read: ask the
                    // journal again while holding the node (sealing holds it too).
                    st.writers > 0
                        || st.dirty
                        || st.poison.is_some()
                        || self.area.with_journal(|j| j.pending().contains_key(path))
                }
            }
        });
    }

    /// No change waits for a commit and no file is being written: the base may move to a
    /// newer head without anything local depending on the old one.
    pub fn is_quiet(&self) -> bool {
        // Ignored junk stays pending for good: it must not pin the view to an old commit.
        let waiting = self.area.with_journal(|j| {
            j.pending()
                .iter()
                .any(|(p, v)| !self.committer.local_only(p, &v.change))
        });
        if waiting {
            return false;
        }
        self.overlay.lock().values().all(|local| match local {
            Local::File(n) => {
                let st = n.state.lock();
                st.writers == 0 && !st.dirty && st.poison.is_none()
            }
            Local::Dir | Local::Deleted => true,
        })
    }

    /// Counts for `hubfs status`.
    pub fn overlay_len(&self) -> usize {
        self.overlay.lock().len()
    }
}

/// What a renamed file's content is.
pub enum RenameSource {
    /// A file with local content.
    Local(Arc<FileNode>),
    /// An unchanged committed LFS file.
    Remote {
        commit: String,
        path: String,
        info: FileInfo,
    },
    /// An unchanged committed regular file, fetched into a staging file (it must be re-sent).
    Fetched(Arc<StagingFile>, u64),
}
