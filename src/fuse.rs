//! The FUSE adapter: translates kernel requests into calls on the filesystem core.
//!
//! Thin on purpose: no semantics live here. Every request that may wait (network, cache) is
//! answered from a task on the tokio runtime, so a slow read never blocks the threads reading
//! `/dev/fuse` and many requests proceed in parallel. Write operations are forwarded the same
//! way; the core decides what a read-only view refuses (EROFS).

use std::ffi::OsStr;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno as FuseErrno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::fs::{Attr, Errno, FileKind, HubFs};

mod backing;

/// Kernel connection settings. Defaults carry their reasons.
#[derive(Debug, Clone)]
pub struct KernelTuning {
    /// Requests the kernel keeps in flight to us (reads of read-ahead included): far above the
    /// default 12 so parallel readers and prefetch-friendly read-ahead are not throttled.
    pub max_background: u16,
    /// Largest write the kernel sends in one request.
    pub max_write: u32,
    /// The kernel's own read-ahead for the mount (KiB): sequential readers then send 512 KiB
    /// requests, several in flight, instead of one 128 KiB request at a time (our own window
    /// prefetches far beyond it); an mmap fault reads at most this much around the page, which
    /// bounds what a random reader or a one-tensor load pulls in (1 MiB cost a 10 MiB tensor
    /// load 2 MiB more, for no sequential gain measured).
    pub read_ahead_kib: u32,
    /// Let the kernel read fully cached, verified files straight from the cache's data file
    /// (FUSE passthrough, when the kernel offers it): reads, mmap and the page cache then run
    /// at local-disk speed instead of a round trip to hubfs per request.
    pub passthrough: bool,
}

impl Default for KernelTuning {
    fn default() -> Self {
        KernelTuning {
            max_background: 128,
            max_write: 1 << 20,
            read_ahead_kib: 512,
            passthrough: true,
        }
    }
}

pub struct FuseAdapter {
    fs: Arc<HubFs>,
    rt: tokio::runtime::Handle,
    tuning: KernelTuning,
    backings: Arc<backing::Backings>,
}

fn fuse_errno(e: Errno) -> FuseErrno {
    FuseErrno::from_i32(e.0)
}

fn fuse_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.mtime,
        crtime: a.mtime,
        kind: match a.kind {
            FileKind::File => FileType::RegularFile,
            FileKind::Dir => FileType::Directory,
        },
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        flags: 0,
        blksize: 128 << 10,
    }
}

fn file_type(k: FileKind) -> FileType {
    match k {
        FileKind::File => FileType::RegularFile,
        FileKind::Dir => FileType::Directory,
    }
}

/// Non-UTF-8 names cannot exist on the Hub.
fn utf8(name: &OsStr) -> Option<String> {
    name.to_str().map(str::to_string)
}

impl FuseAdapter {
    pub fn new(fs: Arc<HubFs>, rt: tokio::runtime::Handle, tuning: KernelTuning) -> FuseAdapter {
        FuseAdapter {
            fs,
            rt,
            tuning,
            backings: Arc::default(),
        }
    }

    fn spawn<F>(&self, f: impl FnOnce(Arc<HubFs>) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.rt.spawn(f(self.fs.clone()));
    }
}

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let wanted = [
            // ls -l / find: names and attributes in one round trip.
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            // Lookups in one directory need not be serialized by the kernel.
            InitFlags::FUSE_PARALLEL_DIROPS,
        ];
        for flag in wanted {
            if config.add_capabilities(flag).is_err() {
                tracing::debug!("kernel lacks {flag:?}");
            }
        }
        let _ = config.set_max_background(self.tuning.max_background);
        let _ = config.set_congestion_threshold(self.tuning.max_background * 3 / 4);
        let _ = config.set_max_write(self.tuning.max_write);
        // The largest read-ahead the kernel offers (raised after mounting, see `read_ahead_kib`).
        if let Err(max) = config.set_max_readahead(u32::MAX) {
            let _ = config.set_max_readahead(max);
        }
        if self.tuning.passthrough {
            // Depth 1: backing files live on a regular filesystem (the cache directory).
            let agreed = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
                && config.set_max_stack_depth(1).is_ok();
            if agreed {
                self.fs.passthrough().enable();
            } else {
                tracing::info!("kernel lacks FUSE passthrough; cached files are served by hubfs");
            }
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = utf8(name) else {
            return reply.error(FuseErrno::ENOENT);
        };
        self.spawn(|fs| async move {
            match fs.lookup(parent.0, &name).await {
                Ok(e) => reply.entry(&e.ttl, &fuse_attr(&e.attr), Generation(0)),
                Err(e) => reply.error(fuse_errno(e)),
            }
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.spawn(|fs| async move {
            match fs.getattr(ino.0).await {
                Ok(e) => reply.attr(&e.ttl, &fuse_attr(&e.attr)),
                Err(e) => reply.error(fuse_errno(e)),
            }
        });
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.spawn(|fs| async move {
            match fs
                .setattr(ino.0, fh.map(|f| f.0), mode, uid, gid, size)
                .await
            {
                Ok(e) => reply.attr(&e.ttl, &fuse_attr(&e.attr)),
                Err(e) => reply.error(fuse_errno(e)),
            }
        });
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let Some(name) = utf8(name) else {
            return reply.error(FuseErrno::EINVAL);
        };
        self.spawn(|fs| async move {
            match fs.mkdir(parent.0, &name).await {
                Ok(e) => reply.entry(&e.ttl, &fuse_attr(&e.attr), Generation(0)),
                Err(e) => reply.error(fuse_errno(e)),
            }
        });
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        // Only regular files exist on the Hub (create() makes those).
        reply.error(FuseErrno::EPERM);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(name) = utf8(name) else {
            return reply.error(FuseErrno::ENOENT);
        };
        self.spawn(|fs| async move {
            match fs.unlink(parent.0, &name).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(fuse_errno(e)),
            }
        });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(name) = utf8(name) else {
            return reply.error(FuseErrno::ENOENT);
        };
        self.spawn(|fs| async move {
            match fs.rmdir(parent.0, &name).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(fuse_errno(e)),
            }
        });
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        // The Hub's commit API cannot create symlinks.
        reply.error(FuseErrno::EPERM);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let (Some(name), Some(newname)) = (utf8(name), utf8(newname)) else {
            return reply.error(FuseErrno::EINVAL);
        };
        self.spawn(|fs| async move {
            match fs
                .rename(parent.0, &name, newparent.0, &newname, flags.bits())
                .await
            {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(fuse_errno(e)),
            }
        });
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        // A Hub file has exactly one name.
        reply.error(FuseErrno::EPERM);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let backings = self.backings.clone();
        self.spawn(|fs| async move {
            match fs.open(ino.0, flags.0).await {
                Ok(o) => {
                    let mut f = FopenFlags::empty();
                    if o.keep_cache {
                        f |= FopenFlags::FOPEN_KEEP_CACHE;
                    }
                    let fh = o.fh;
                    if !backings.reply_open(ino.0, o, f, reply, fs.passthrough()) {
                        let _ = fs.release(fh);
                    }
                }
                Err(e) => reply.error(fuse_errno(e)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.spawn(|fs| async move {
            match fs.read(fh.0, offset, size).await {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(fuse_errno(e)),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // Local disk only: answered on this thread, no copy of the data needed.
        match self.fs.write(fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(fuse_errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        match self.fs.flush(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fuse_errno(e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.backings.release(fh.0, self.fs.passthrough());
        match self.fs.release(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fuse_errno(e)),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.spawn(|fs| async move {
            match fs.fsync(fh.0).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(fuse_errno(e)),
            }
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.spawn(|fs| async move {
            match fs.opendir(ino.0).await {
                Ok(o) => {
                    // Listings of a commit never change: let the kernel cache them, and keep
                    // that cache across opens while the directory stays on the same commit.
                    let mut f = FopenFlags::FOPEN_CACHE_DIR;
                    if o.keep_cache {
                        f |= FopenFlags::FOPEN_KEEP_CACHE;
                    }
                    reply.opened(FileHandle(o.fh), f)
                }
                Err(e) => reply.error(fuse_errno(e)),
            }
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let dir = match self.fs.dir_handle(fh.0) {
            Ok(d) => d,
            Err(e) => return reply.error(fuse_errno(e)),
        };
        // Offsets: 0 = start, 1 = after ".", 2 = after "..", 2+i+1 = after entry i.
        if offset == 0 && reply.add(ino, 1, FileType::Directory, ".") {
            return reply.ok();
        }
        if offset <= 1 && reply.add(ino, 2, FileType::Directory, "..") {
            return reply.ok();
        }
        let skip = offset.saturating_sub(2) as usize;
        for (i, (name, child_ino, kind)) in dir.entries.iter().enumerate().skip(skip) {
            if reply.add(INodeNo(*child_ino), 3 + i as u64, file_type(*kind), &**name) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let dir = match self.fs.dir_handle(fh.0) {
            Ok(d) => d,
            Err(e) => return reply.error(fuse_errno(e)),
        };
        self.spawn(|fs| async move {
            // "." and ".." carry no attributes the kernel uses; their inode is never counted.
            let zero = Duration::ZERO;
            if offset == 0 {
                let attr = match fs.getattr(ino.0).await {
                    Ok(e) => fuse_attr(&e.attr),
                    Err(e) => return reply.error(fuse_errno(e)),
                };
                if reply.add(ino, 1, ".", &zero, &attr, Generation(0))
                    || reply.add(ino, 2, "..", &zero, &attr, Generation(0))
                {
                    return reply.ok();
                }
            }
            let skip = offset.saturating_sub(2) as usize;
            for (i, (name, _, _)) in dir.entries.iter().enumerate().skip(skip) {
                let entry = match fs.listed_entry(ino.0, name).await {
                    Ok(e) => e,
                    // Listed a moment ago; if it cannot be looked up now, skip it.
                    Err(_) => continue,
                };
                let attr = fuse_attr(&entry.attr);
                if reply.add(
                    attr.ino,
                    3 + i as u64,
                    &**name,
                    &entry.ttl,
                    &attr,
                    Generation(0),
                ) {
                    // Not sent: the kernel did not take this reference.
                    fs.forget(attr.ino.0, 1);
                    break;
                }
            }
            reply.ok();
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let s = self.fs.statfs();
        reply.statfs(
            s.blocks, s.bfree, s.bfree, s.files, 0, s.bsize, s.namelen, s.bsize,
        );
    }

    // Hub files carry no extended attributes. ENOSYS makes the kernel remember that and answer
    // EOPNOTSUPP itself from then on, so `ls -l` and `cp -a` cost no round trip per file.
    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(FuseErrno::ENOSYS);
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(FuseErrno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(FuseErrno::ENOSYS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(FuseErrno::ENOSYS);
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        match self.fs.access(ino.0, mask.contains(AccessFlags::W_OK)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fuse_errno(e)),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let Some(name) = utf8(name) else {
            return reply.error(FuseErrno::EINVAL);
        };
        self.spawn(|fs| async move {
            match fs.create(parent.0, &name, flags).await {
                Ok((e, o)) => reply.created(
                    &e.ttl,
                    &fuse_attr(&e.attr),
                    Generation(0),
                    FileHandle(o.fh),
                    FopenFlags::empty(),
                ),
                Err(e) => reply.error(fuse_errno(e)),
            }
        });
    }

    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        // Not a terminal, no reflinks: programs probe (isatty, FICLONE) and fall back.
        reply.error(FuseErrno::ENOTTY);
    }
}
