//! The kernel side of passthrough: which mode each open inode is in, and the backing files of
//! passthrough inodes.
//!
//! The kernel gives every inode one I/O mode while it is open: either its opens are served by
//! hubfs (reads come to us, the FUSE page cache holds them) or they all read one backing file;
//! an open of the other kind, or with another backing file, fails with EIO. So the first open
//! of an inode decides: passthrough if the core offered a complete, verified cache file, served
//! otherwise, and every open until the last release follows that decision. A backing id is
//! registered once per inode, reused by all its handles, and closed (with the cache pin of its
//! file released) at the inode's last release.
//!
//! The core gives a new version of a file a new inode, so an inode's content does not change
//! while it is open. Should an open of a passthrough inode still come with other content, it
//! cannot be answered: the old backing file has the wrong bytes, and the kernel accepts no other
//! open of the inode (served, direct I/O or another backing file) until its last release, so
//! that open fails with EBUSY.

use std::collections::HashMap;

use fuser::{BackingId, Errno as FuseErrno, FileHandle, FopenFlags, ReplyOpen};
use parking_lot::Mutex;

use crate::cache::{BlobKey, CompleteBlob};
use crate::fs::{Opened, Passthrough};

/// Flags of a passthrough open: the kernel refuses any but PASSTHROUGH (added by fuser),
/// DIRECT_IO, PARALLEL_DIRECT_WRITES and NOFLUSH with it (KEEP_CACHE included: the page cache
/// is the backing file's anyway).
const PASSTHROUGH_FLAGS: FopenFlags = FopenFlags::empty();

enum Mode {
    /// Reads come to hubfs.
    Served,
    /// The kernel reads the cache's data file of `key`.
    Passthrough {
        key: BlobKey,
        id: BackingId,
        /// Keeps the data file pinned in the cache (never punched nor deleted) meanwhile.
        _blob: CompleteBlob,
    },
}

struct InodeIo {
    mode: Mode,
    /// Handles open in `mode`.
    handles: u64,
}

#[derive(Default)]
struct Table {
    inodes: HashMap<u64, InodeIo>,
    /// Handle -> inode, for the handles counted in `InodeIo::handles`.
    handles: HashMap<u64, u64>,
}

/// Open modes and backing files of all open inodes.
#[derive(Default)]
pub(super) struct Backings {
    table: Mutex<Table>,
}

impl Backings {
    /// Answers an open of `ino` that the core accepted. Takes the lock for the reply too, so a
    /// concurrent release cannot close the backing id between the decision and the reply.
    /// `flags` are those of a served open. Returns false if the open was refused (the caller
    /// releases the core's handle).
    #[must_use]
    pub(super) fn reply_open(
        &self,
        ino: u64,
        opened: Opened,
        flags: FopenFlags,
        reply: ReplyOpen,
        stats: &Passthrough,
    ) -> bool {
        let fh = FileHandle(opened.fh);
        let mut guard = self.table.lock();
        let table = &mut *guard;
        if let Some(io) = table.inodes.get_mut(&ino) {
            match &io.mode {
                Mode::Passthrough { key, id, .. } if opened.content == Some(*key) => {
                    io.handles += 1;
                    table.handles.insert(opened.fh, ino);
                    stats.count_open();
                    reply.opened_passthrough(fh, PASSTHROUGH_FLAGS, id);
                }
                Mode::Passthrough { .. } => {
                    tracing::warn!(
                        ino,
                        "file changed while its previous version is open through passthrough; refusing the open until it is closed"
                    );
                    reply.error(FuseErrno::EBUSY);
                    return false;
                }
                Mode::Served => {
                    if opened.backing.is_some() {
                        stats.count_fallback();
                    }
                    io.handles += 1;
                    table.handles.insert(opened.fh, ino);
                    reply.opened(fh, flags);
                }
            }
            return true;
        }
        let mode = match (opened.backing, opened.content) {
            (Some(blob), Some(key)) if stats.available() => match reply.open_backing(blob.file()) {
                Ok(id) => Mode::Passthrough {
                    key,
                    id,
                    _blob: blob,
                },
                Err(e) => {
                    stats.disable(&e);
                    stats.count_fallback();
                    Mode::Served
                }
            },
            _ => Mode::Served,
        };
        table.handles.insert(opened.fh, ino);
        let io = table
            .inodes
            .entry(ino)
            .or_insert(InodeIo { mode, handles: 1 });
        match &io.mode {
            Mode::Passthrough { id, .. } => {
                stats.inode_entered();
                stats.count_open();
                reply.opened_passthrough(fh, PASSTHROUGH_FLAGS, id);
            }
            Mode::Served => reply.opened(fh, flags),
        }
        true
    }

    /// A handle was released: the inode's backing file goes with its last handle.
    pub(super) fn release(&self, fh: u64, stats: &Passthrough) {
        let mut table = self.table.lock();
        let Some(ino) = table.handles.remove(&fh) else {
            return;
        };
        let Some(io) = table.inodes.get_mut(&ino) else {
            return;
        };
        io.handles -= 1;
        if io.handles == 0 {
            if let Some(io) = table.inodes.remove(&ino) {
                if matches!(io.mode, Mode::Passthrough { .. }) {
                    stats.inode_left();
                }
            }
        }
    }
}
