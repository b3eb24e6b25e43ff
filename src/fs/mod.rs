//! The filesystem core: POSIX semantics over Hub repos, as `Result<_, Errno>`.
//!
//! Kernel-independent: the FUSE adapter (`crate::fuse`) only translates. The core owns the inode
//! table, the views (revision directories) and their snapshots, open file and directory
//! handles, and maps every operation to snapshot lookups and the read path. Writable views
//! (branches of single-repo mounts) add a workspace of local changes (`workspace`, `write`).

mod attr;
mod describe;
mod errno;
mod holders;
mod inode;
mod namespace;
mod passthrough;
pub mod services;
pub mod snapshot;
pub mod tree;
mod view;
mod workspace;
mod write;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

pub use attr::{Attr, Entry, FileKind};
pub use describe::{FileOrigin, LOCAL_CHANGES};
pub use errno::Errno;
pub use inode::{InodeKey, ROOT_INO};
pub use passthrough::Passthrough;
pub use services::Services;
pub use snapshot::SnapshotError;
pub use write::WriteSetup;

use crate::cache::{BlobKey, CompleteBlob};
use crate::hub::types::RepoInfo;
use crate::hub::HubError;
use crate::read::{Blob, ReadStream};
use crate::repo::RepoRef;
use inode::InodeTable;
use snapshot::Snapshot;
use tree::Node;
use view::View;
use workspace::FileNode;
use write::Found;

/// Behaviour of the filesystem core. Defaults carry their reasons.
#[derive(Debug, Clone)]
pub struct FsConfig {
    /// Owner shown for every file: the user who mounted.
    pub uid: u32,
    pub gid: u32,
    /// Permission bits of files (`--file-mode`); None: 0444 in read-only views, 0644 in
    /// writable ones.
    pub file_mode: Option<u16>,
    /// Permission bits of directories (`--dir-mode`); None: 0755 everywhere, so a `cp -r`
    /// copy of a read-only mount can be removed by its owner (writes into the mount are still
    /// refused, EROFS).
    pub dir_mode: Option<u16>,
    /// How long the kernel may trust entries and attributes of a commit-pinned view: they never
    /// change, so "forever" (a day keeps the number sane).
    pub pinned_ttl: Duration,
    /// Same for views of branches and tags: they change only on refresh, so the refresh period
    /// (or a day without `--refresh`).
    pub branch_ttl: Duration,
    /// Virtual directories of a whole-Hub mount (lists of repos) change as repos are created.
    pub virtual_ttl: Duration,
    /// Re-resolve branch views this often; None = never (a view stays on its first commit).
    pub refresh: Option<Duration>,
    /// Writable views change under the kernel only through this mount, but their entries
    /// (sizes of files being written, names created and removed) must not outlive a commit
    /// landing for long: a second.
    pub writable_ttl: Duration,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            uid: 0,
            gid: 0,
            file_mode: None,
            dir_mode: None,
            pinned_ttl: Duration::from_secs(86_400),
            branch_ttl: Duration::from_secs(86_400),
            virtual_ttl: Duration::from_secs(30),
            refresh: None,
            writable_ttl: Duration::from_secs(1),
        }
    }
}

/// What a mount shows at its root.
#[derive(Debug, Clone)]
pub enum MountRoot {
    /// `hf://`: every repo of the Hub, autofs style.
    Hub,
    /// One repo at one revision, optionally only a sub-directory of it.
    Repo {
        repo: RepoRef,
        revision: Option<String>,
        subpath: String,
    },
}

/// An open regular file.
pub enum OpenFile {
    /// A file of a snapshot, read through the read path.
    Snapshot {
        ino: u64,
        snapshot: Arc<Snapshot>,
        stream: ReadStream,
        /// Opened in a writable view (its attributes show write permission).
        writable_view: bool,
    },
    /// A file with local content in a writable view.
    Local {
        ino: u64,
        node: Arc<FileNode>,
        /// Opened for writing: counts as a writer of the node until released.
        writable: bool,
        ws: Arc<workspace::Workspace>,
        /// Read stream of the node's remote content (a renamed, unchanged LFS file).
        remote: Mutex<Option<(String, Arc<ReadStream>)>>,
    },
}

/// An open directory: its listing, taken once at opendir so paging through it is consistent.
pub struct OpenDir {
    /// Name, inode number to report, kind (names as `Box<str>`: a listing can be huge).
    pub entries: Vec<(Box<str>, u64, FileKind)>,
}

/// Whether an open of a read-only file may be answered with the cache's data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backing {
    /// When the content is complete and verified in the cache.
    IfComplete,
    /// Never: files of a writable view change under their inode, so hubfs serves them.
    Never,
}

/// Answer to `open`.
#[derive(Debug)]
pub struct Opened {
    pub fh: u64,
    /// The kernel may keep pages cached from earlier opens: the content is the same.
    pub keep_cache: bool,
    /// The content a read-only file handle reads (None for local files of a writable view and
    /// for directories).
    pub content: Option<BlobKey>,
    /// The cache's data file of that content, when it is complete and verified and passthrough
    /// is available: the adapter may let the kernel read it directly (see `passthrough.rs`).
    /// Pinned in the cache while this value lives.
    pub backing: Option<CompleteBlob>,
}

impl Opened {
    /// A handle whose reads hubfs serves.
    pub(crate) fn served(fh: u64, keep_cache: bool) -> Opened {
        Opened {
            fh,
            keep_cache,
            content: None,
            backing: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct StatFs {
    pub blocks: u64,
    pub bfree: u64,
    pub files: u64,
    pub bsize: u32,
    pub namelen: u32,
}

pub struct HubFs {
    pub svc: Arc<Services>,
    cfg: FsConfig,
    root: MountRoot,
    inodes: InodeTable,
    views: namespace::Views,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    /// Longest wait of an `fsync` on a writable view.
    fsync_timeout: Mutex<Duration>,
    dirs: Mutex<HashMap<u64, Arc<OpenDir>>>,
    next_fh: AtomicU64,
    passthrough: Passthrough,
}

/// Target of an inode inside a revision directory: its view and path, and for a file version
/// of a read-only view the snapshot it belongs to.
struct Located {
    view: Arc<View>,
    path: String,
    origin: Option<Arc<Snapshot>>,
}

impl HubFs {
    /// Builds the core. A single-repo mount resolves its revision now, so a bad repo, revision
    /// or token fails the mount instead of the first `ls`.
    /// `root_info`: the root repo's info (with files) if the caller already asked for it, so
    /// the mount's one round trip can overlap the rest of its start.
    pub async fn new(
        svc: Arc<Services>,
        cfg: FsConfig,
        root: MountRoot,
        writable: Option<WriteSetup>,
        root_info: Option<Result<RepoInfo, HubError>>,
    ) -> Result<Arc<HubFs>, SnapshotError> {
        let views = namespace::Views::default();
        let root_key = match &root {
            MountRoot::Hub => InodeKey::HubRoot,
            MountRoot::Repo {
                repo,
                revision,
                subpath,
            } => {
                let snap = match root_info {
                    Some(info) => Snapshot::from_info(&svc, repo, revision.as_deref(), info?)?,
                    None => Snapshot::open(&svc, repo, revision.as_deref()).await?,
                };
                if !subpath.is_empty() {
                    match snap.lookup(subpath).await {
                        Ok(Node::Dir) => {}
                        Ok(Node::File(_)) => {
                            return Err(SnapshotError::NotCached(format!(
                                "{subpath} is a file, not a directory"
                            )))
                        }
                        Err(_) => {
                            return Err(SnapshotError::Hub(crate::hub::HubError::EntryNotFound {
                                repo: repo.to_string(),
                                revision: revision.clone().unwrap_or_else(|| "main".into()),
                                path: subpath.clone(),
                            }))
                        }
                    }
                }
                if svc.client.is_none() && snap.list_dir(subpath).await.is_err() {
                    // Every tool starts by listing the mount: a root that cannot be listed is a
                    // mount that does not work, so say why now instead of "No such file".
                    let what = if subpath.is_empty() {
                        "top directory".to_string()
                    } else {
                        format!("directory {subpath}")
                    };
                    return Err(SnapshotError::NotCached(format!(
                        "the {what} of {repo}@{} (commit {}) was never listed while online with \
                         this cache: mount it online and list it once (ls, or hubfs warm), or \
                         download it with huggingface_hub (snapshot_download) and mount with \
                         that HF cache",
                        revision.as_deref().unwrap_or("main"),
                        &snap.commit[..snap.commit.len().min(12)]
                    )));
                }
                let view = views.insert(snap, revision.clone());
                InodeKey::Path {
                    view: view.id,
                    path: subpath.clone(),
                }
            }
        };
        let fs = Arc::new(HubFs {
            svc,
            cfg,
            root,
            inodes: InodeTable::new(root_key),
            views,
            files: Mutex::new(HashMap::new()),
            fsync_timeout: Mutex::new(Duration::from_secs(300)),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            passthrough: Passthrough::default(),
        });
        if let Some(period) = fs.cfg.refresh {
            fs.spawn_refresher(period);
        }
        if let Some(setup) = writable {
            fs.attach_workspace(setup)?;
        }
        Ok(fs)
    }

    fn spawn_refresher(self: &Arc<Self>, period: Duration) {
        let weak = Arc::downgrade(self);
        self.svc.rt.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(fs) = weak.upgrade() else { break };
                for view in fs.views.all() {
                    if let Err(e) = view.refresh(&fs.svc).await {
                        tracing::warn!("refreshing {}: {e}", view.label());
                    }
                }
            }
        });
    }

    pub fn config(&self) -> &FsConfig {
        &self.cfg
    }

    fn locate(&self, ino: u64) -> Result<(InodeKey, Option<Located>), Errno> {
        let key = self.inodes.get(ino).ok_or(Errno::ENOENT)?;
        let located = match &key {
            InodeKey::Orphan(_) => return Err(Errno::ENOENT),
            InodeKey::Path { view, path } => Some(Located {
                view: self.views.get(*view).ok_or(Errno::ENOENT)?,
                path: path.clone(),
                origin: None,
            }),
            InodeKey::File { view, path, .. } => Some(Located {
                view: self.views.get(*view).ok_or(Errno::ENOENT)?,
                path: path.clone(),
                origin: self.inodes.origin(ino),
            }),
            _ => None,
        };
        Ok((key, located))
    }

    /// The inode key of what was found at `path` of `view`: a version of a file of a read-only
    /// view, else the place.
    fn child_key(view: &View, path: String, found: &Found) -> InodeKey {
        match found {
            Found::Base(Node::File(f)) if view.workspace().is_none() => InodeKey::File {
                view: view.id,
                path,
                oid: f.identity().to_string(),
            },
            _ => InodeKey::Path {
                view: view.id,
                path,
            },
        }
    }

    /// Hands the kernel an entry for what was found at `path` of `view` (one lookup).
    fn found_entry(&self, view: &View, path: String, found: &Found) -> Entry {
        let key = Self::child_key(view, path, found);
        let origin = matches!(key, InodeKey::File { .. }).then(|| view.snapshot());
        let ino = self.inodes.lookup_with(key, origin);
        Entry {
            attr: self.found_attr(ino, view, found),
            ttl: self.ttl_of(Some(view)),
        }
    }

    fn ttl_of(&self, view: Option<&View>) -> Duration {
        match view {
            Some(v) if v.workspace().is_some() => self.cfg.writable_ttl,
            Some(v) if v.pinned => self.cfg.pinned_ttl,
            Some(_) => self.cfg.branch_ttl,
            None => self.cfg.virtual_ttl,
        }
    }

    fn node_attr(&self, ino: u64, snap: &Snapshot, node: &Node) -> Attr {
        match node {
            Node::File(f) => Attr::file(ino, f.size, snap.mtime, &self.cfg),
            Node::Dir => Attr::dir(ino, snap.mtime, &self.cfg),
        }
    }

    /// Hands an entry for `key` to the kernel (counts one lookup).
    fn entry_for(&self, key: InodeKey, view: Option<&View>, node: &Node) -> Entry {
        let ino = self.inodes.lookup(key);
        let attr = match view {
            Some(v) => self.node_attr(ino, &v.snapshot(), node),
            None => Attr::dir(ino, std::time::SystemTime::UNIX_EPOCH, &self.cfg),
        };
        Entry {
            attr,
            ttl: self.ttl_of(view),
        }
    }

    pub async fn lookup(&self, parent: u64, name: &str) -> Result<Entry, Errno> {
        if name.is_empty() || name.contains('/') {
            return Err(Errno::ENOENT);
        }
        if name.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        let (key, located) = self.locate(parent)?;
        if let Some(Located { view, path, .. }) = located {
            let child = join(&path, name);
            let found = self.find(&view, &child).await?;
            return Ok(self.found_entry(&view, child, &found));
        }
        match self.views.lookup_virtual(&self.svc, &key, name).await? {
            namespace::VirtualChild::Dir(child) => Ok(self.entry_for(child, None, &Node::Dir)),
            namespace::VirtualChild::Repo(view) => {
                let key = InodeKey::Path {
                    view: view.id,
                    path: String::new(),
                };
                Ok(self.entry_for(key, Some(&view), &Node::Dir))
            }
        }
    }

    /// Attributes of `ino`; an inode whose name is gone (unlinked, replaced) while a handle
    /// is open on it answers from the handle, like a local file does.
    pub async fn getattr(&self, ino: u64) -> Result<Entry, Errno> {
        match self.getattr_by_name(ino).await {
            Err(e) if e == Errno::ENOENT => self.open_attr(ino).ok_or(e),
            found => found,
        }
    }

    /// Attributes from a handle open on `ino`, if there is one.
    fn open_attr(&self, ino: u64) -> Option<Entry> {
        let file = self
            .files
            .lock()
            .values()
            .find(|f| match &***f {
                OpenFile::Snapshot { ino: i, .. } | OpenFile::Local { ino: i, .. } => *i == ino,
            })?
            .clone();
        let attr = match &*file {
            OpenFile::Snapshot {
                snapshot,
                stream,
                writable_view,
                ..
            } => {
                let mut a = Attr::file(ino, stream.blob.size, snapshot.mtime, &self.cfg);
                if *writable_view {
                    a.perm = 0o644;
                }
                a
            }
            OpenFile::Local { node, .. } => {
                let st = node.state.lock();
                let mut a = Attr::file(ino, st.size, st.mtime, &self.cfg);
                a.perm = 0o644;
                a
            }
        };
        // No name leads to it any more.
        let attr = Attr { nlink: 0, ..attr };
        Some(Entry {
            attr,
            ttl: std::time::Duration::ZERO,
        })
    }

    async fn getattr_by_name(&self, ino: u64) -> Result<Entry, Errno> {
        let (_, located) = self.locate(ino)?;
        match located {
            Some(Located {
                view,
                path,
                origin: Some(snap),
            }) => {
                // A file version: its attributes are those of its own commit.
                let node = snap.lookup(&path).await?;
                Ok(Entry {
                    attr: self.node_attr(ino, &snap, &node),
                    ttl: self.ttl_of(Some(&view)),
                })
            }
            Some(Located { view, path, .. }) => {
                let found = self.find(&view, &path).await?;
                Ok(Entry {
                    attr: self.found_attr(ino, &view, &found),
                    ttl: self.ttl_of(Some(&view)),
                })
            }
            None => Ok(Entry {
                attr: Attr::dir(ino, std::time::SystemTime::UNIX_EPOCH, &self.cfg),
                ttl: self.cfg.virtual_ttl,
            }),
        }
    }

    pub fn forget(&self, ino: u64, n: u64) {
        self.inodes.forget(ino, n);
    }

    /// Lists a directory once; readdir pages through this listing. `keep_cache` says the
    /// kernel may keep serving the listing it cached from an earlier open (same commit, no
    /// local changes possible).
    pub async fn opendir(&self, ino: u64) -> Result<Opened, Errno> {
        let (key, located) = self.locate(ino)?;
        let mut entries = Vec::new();
        let mut keep_cache = false;
        match located {
            Some(Located { view, path, .. }) => {
                if view.workspace().is_none() {
                    let commit = view.snapshot().commit.clone();
                    keep_cache = self.inodes.note_open(ino, &commit).same_content || view.pinned;
                }
                for (name, kind) in self.list_merged(&view, &path).await? {
                    // Stand-in numbers only; a listed file's real inode depends on its version.
                    let key = InodeKey::Path {
                        view: view.id,
                        path: join(&path, &name),
                    };
                    let ino = self.dirent_ino(&key);
                    entries.push((name.into_boxed_str(), ino, kind));
                }
            }
            None => {
                for name in self.views.list_virtual(&self.svc, &key).await? {
                    let ino = self.dirent_ino(&InodeKey::Namespace(
                        crate::repo::RepoType::Model,
                        format!("{key:?}/{name}"),
                    ));
                    entries.push((name.into_boxed_str(), ino, FileKind::Dir));
                }
            }
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.dirs.lock().insert(fh, Arc::new(OpenDir { entries }));
        Ok(Opened::served(fh, keep_cache))
    }

    /// The inode number readdir reports for an entry: the real one if the kernel knows it,
    /// else a stable stand-in (never 0, which some programs treat as a deleted entry; high bit
    /// set so it cannot collide with a real number). A lookup assigns the real one.
    fn dirent_ino(&self, key: &InodeKey) -> u64 {
        use std::hash::{Hash, Hasher};
        if let Some(ino) = self.inodes.peek(key) {
            return ino;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        h.finish() | (1 << 63)
    }

    pub fn dir_handle(&self, fh: u64) -> Result<Arc<OpenDir>, Errno> {
        self.dirs.lock().get(&fh).cloned().ok_or(Errno::EBADF)
    }

    /// The entry of one listed child, counted as a kernel lookup (for readdirplus).
    pub async fn listed_entry(&self, dir_ino: u64, name: &str) -> Result<Entry, Errno> {
        self.lookup(dir_ino, name).await
    }

    pub fn releasedir(&self, fh: u64) {
        self.dirs.lock().remove(&fh);
    }

    pub async fn open(&self, ino: u64, flags: i32) -> Result<Opened, Errno> {
        let wants_write = flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
        let (_, located) = self.locate(ino)?;
        let Some(Located { view, path, origin }) = located else {
            return if wants_write {
                Err(Errno::EROFS)
            } else {
                Err(Errno::EISDIR)
            };
        };
        if view.workspace().is_some() {
            return self.open_in_workspace(ino, &view, &path, flags).await;
        }
        if wants_write {
            return Err(Errno::EROFS);
        }
        // A file version reads its own commit; a place reads the view's current one.
        let snap = origin.unwrap_or_else(|| view.snapshot());
        let info = match snap.lookup(&path).await? {
            Node::File(f) => f,
            Node::Dir => return Err(Errno::EISDIR),
        };
        self.open_snapshot_file(ino, &view, snap, &path, info, Backing::IfComplete)
    }

    /// A handle reading a file of a snapshot through the read path, and with `backing` the
    /// cache's data file when passthrough can serve it.
    fn open_snapshot_file(
        &self,
        ino: u64,
        view: &View,
        snap: Arc<Snapshot>,
        path: &str,
        info: tree::FileInfo,
        backing: Backing,
    ) -> Result<Opened, Errno> {
        let key = info.blob_key().ok_or_else(|| {
            tracing::warn!("{}: {path} has a malformed object id", snap.repo);
            Errno::EIO
        })?;
        let history = self.inodes.note_open(ino, info.identity());
        // Pages the kernel cached from bytes that failed their hash must go.
        let tainted = self.svc.reader.take_tainted(&key);
        let blob = Arc::new(Blob {
            repo: snap.repo.clone(),
            commit: snap.commit.clone(),
            path: path.to_string(),
            key,
            size: info.size,
            sha256: info.lfs_sha256.clone(),
            xet_hash: info.xet_hash.clone(),
        });
        // A blob cached before its name was recorded (older hubfs, lost record) gets one now.
        self.svc.reader.note_cached(&blob);
        let backing = match backing {
            Backing::IfComplete if self.passthrough.available() && !tainted => {
                let complete = self.complete_blob(&key, info.size);
                // The kernel's page cache of this inode holds what hubfs served, while the
                // cache file, written with O_DIRECT, has no pages: passing through now would
                // read the file again from disk (a warm 1 GiB load: 0.8-2.4 s instead of
                // 0.2). The inode stays served until the kernel forgets it with its pages.
                if history.served && complete.is_some() {
                    self.passthrough.count_kept_served();
                    None
                } else {
                    complete
                }
            }
            _ => None,
        };
        if backing.is_none() {
            self.inodes.note_served(ino);
        }
        let fh = self.insert_handle(OpenFile::Snapshot {
            ino,
            writable_view: view.workspace().is_some(),
            snapshot: snap,
            stream: ReadStream::new(blob),
        });
        Ok(Opened {
            fh,
            keep_cache: (view.pinned || history.same_content) && !tainted,
            content: Some(key),
            backing,
        })
    }

    /// The pinned data file of a complete, verified blob; None when it is not (or on a cache
    /// error: the read path serves the file then).
    fn complete_blob(&self, key: &BlobKey, size: u64) -> Option<CompleteBlob> {
        match self.svc.reader.cache().open_complete(key, size) {
            Ok(blob) => blob,
            Err(e) => {
                tracing::warn!(%key, "cache data file not usable for passthrough: {e}");
                None
            }
        }
    }

    /// Passthrough availability and counters (shared with the FUSE adapter).
    pub fn passthrough(&self) -> &Passthrough {
        &self.passthrough
    }

    fn insert_handle(&self, file: OpenFile) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.files.lock().insert(fh, Arc::new(file));
        fh
    }

    fn handle(&self, fh: u64) -> Result<Arc<OpenFile>, Errno> {
        self.files.lock().get(&fh).cloned().ok_or(Errno::EBADF)
    }

    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> Result<bytes::Bytes, Errno> {
        match &*self.handle(fh)? {
            OpenFile::Snapshot { stream, .. } => self.svc.reader.read(stream, offset, size).await,
            OpenFile::Local { node, remote, .. } => self
                .read_local(node, remote, offset, size)
                .await
                .map(bytes::Bytes::from),
        }
    }

    pub fn release(&self, fh: u64) -> Result<(), Errno> {
        let Some(file) = self.files.lock().remove(&fh) else {
            return Ok(());
        };
        self.release_local(&file)
    }

    pub fn statfs(&self) -> StatFs {
        let stats = self.svc.reader.cache().stats();
        let bsize = 4096u64;
        StatFs {
            blocks: stats.max_bytes / bsize,
            bfree: stats.max_bytes.saturating_sub(stats.used_bytes) / bsize,
            files: self.inodes.len() as u64,
            bsize: bsize as u32,
            namelen: 255,
        }
    }

    /// Counters for `hubfs status`.
    pub fn status(&self) -> serde_json::Value {
        let cache = self.svc.reader.cache().stats();
        let hub = self.svc.client.as_ref().map(|c| c.stats());
        serde_json::json!({
            "root": match &self.root {
                MountRoot::Hub => "hf://".to_string(),
                MountRoot::Repo { repo, revision, subpath } => format!(
                    "{repo}{}{}{subpath}",
                    revision.as_deref().map(|r| format!("@{r}")).unwrap_or_default(),
                    if subpath.is_empty() { "" } else { "/" },
                ),
            },
            "pid": std::process::id(),
            "offline": self.svc.client.is_none(),
            "views": self.views.all().iter().map(|v| serde_json::json!({
                "revision": v.label(),
                "commit": v.snapshot().commit,
                "files_known": v.snapshot().file_count(),
            })).collect::<Vec<_>>(),
            "writes": self.write_status(),
            "inodes": self.inodes.len(),
            "open_files": self.files.lock().len(),
            "read": &self.svc.reader.stats,
            "xet": self.svc.reader.xet_stats(),
            "chunks": self.svc.reader.chunk_status(),
            "inflight_blocks": self.svc.reader.inflight_blocks(),
            "read_ahead": self.svc.reader.read_ahead_status(),
            "shared_cache": self.svc.reader.shared_status(),
            "cache": cache,
            "passthrough": self.passthrough.status(),
            "hub": hub,
        })
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}
