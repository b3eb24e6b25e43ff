//! The workspace of a writable view: its local changes over the base snapshot.
//!
//! The overlay maps paths to what is local: a file with local content (a [`FileNode`]), a
//! deletion, or a directory made with `mkdir`. Lookups and listings of the view consult the
//! overlay first, then the snapshot. Every change that must survive a crash is journaled in
//! the staging area before the operation returns; the committer commits journaled changes,
//! and once a commit lands the view moves to it and committed entries leave the overlay.
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
}

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
            }),
        })
    }
}

impl Workspace {
    /// Rebuilds the overlay from the journal (changes of an earlier mount not yet committed).
    pub fn open(area: Arc<StagingArea>, committer: Arc<Committer>) -> Result<Workspace, Errno> {
        let (pending, dirs) = area.with_journal(|j| (j.pending().clone(), j.dirs().clone()));
        let mut overlay = BTreeMap::new();
        for d in dirs {
            overlay.insert(d, Local::Dir);
        }
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

    /// Directories the view's new commit has: no longer local-only.
    pub fn forget_dirs(&self, dirs: &[String]) {
        let mut overlay = self.overlay.lock();
        for d in dirs {
            if matches!(overlay.get(d), Some(Local::Dir)) {
                overlay.remove(d);
            }
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
        Ok(node)
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
            let file = self.writable(&mut st, true)?.clone();
            file.set_len(0).map_err(io)?;
            st.size = 0;
            st.dirty = true;
            st.mtime = SystemTime::now();
        }
        st.writers += 1;
        Ok(())
    }

    pub fn write(&self, node: &FileNode, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let mut st = node.state.lock();
        let file = self.writable(&mut st, false)?.clone();
        file.write_at(offset, data).map_err(io)?;
        st.size = st.size.max(offset + data.len() as u64);
        st.dirty = true;
        st.mtime = SystemTime::now();
        Ok(())
    }

    pub fn truncate(&self, node: &FileNode, size: u64) -> Result<(), Errno> {
        let mut st = node.state.lock();
        let file = self.writable(&mut st, size == 0)?.clone();
        file.set_len(size).map_err(io)?;
        st.size = size;
        st.dirty = true;
        st.mtime = SystemTime::now();
        Ok(())
    }

    /// Makes the node's current content a pending change: fsync, journal, queue. Returns the
    /// journal version holding it (None if the node is detached or was never changed).
    pub fn seal(&self, node: &FileNode) -> Result<Option<u64>, Errno> {
        let mut st = node.state.lock();
        if st.detached || !st.dirty {
            return Ok(st.seq);
        }
        let size = st.size;
        let Content::Staged { file, sealed } = &mut st.content else {
            return Ok(st.seq);
        };
        file.sync().map_err(io)?;
        let seq = self.next_seq();
        let change = Change::Put {
            file: file.id(),
            size,
        };
        *sealed = true;
        let path = st.path.clone();
        self.journal(&[Record::Change { path, seq, change }])?;
        st.dirty = false;
        st.seq = Some(seq);
        Ok(Some(seq))
    }

    /// A writer closed; the last one seals the content.
    pub fn close_writer(&self, node: &FileNode) -> Result<(), Errno> {
        let last = {
            let mut st = node.state.lock();
            st.writers = st.writers.saturating_sub(1);
            st.writers == 0
        };
        if last {
            self.seal(node)?;
        }
        Ok(())
    }

    /// Removes the file at `path`; `in_base` = the base snapshot has it.
    pub fn unlink(&self, path: &str, in_base: bool) -> Result<(), Errno> {
        let mut overlay = self.overlay.lock();
        if let Some(Local::File(n)) = overlay.get(path) {
            n.state.lock().detached = true;
        }
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
        {
            let mut st = node.state.lock();
            st.path = to.to_string();
            // Content already journaled (or never to be written again) is journaled under the
            // new name now; content still being written is journaled when its writer closes.
            if st.writers == 0 || !st.dirty {
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
                        oid: info.oid.clone(),
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
    pub fn prune(&self) {
        let pending = self.area.with_journal(|j| j.pending().clone());
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
                        || self.area.with_journal(|j| j.pending().contains_key(path))
                }
            }
        });
    }

    /// No change waits for a commit and no file is being written: the base may move to a
    /// newer head without anything local depending on the old one.
    pub fn is_quiet(&self) -> bool {
        if !self.area.with_journal(|j| j.pending().is_empty()) {
            return false;
        }
        self.overlay.lock().values().all(|local| match local {
            Local::File(n) => {
                let st = n.state.lock();
                st.writers == 0 && !st.dirty
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
