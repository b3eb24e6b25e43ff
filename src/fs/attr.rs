//! File attributes as the core reports them, independent of the FUSE library's types.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::FsConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FileKind {
    File,
    Dir,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Attr {
    pub ino: u64,
    pub kind: FileKind,
    pub size: u64,
    /// 512-byte blocks, so `du` reports the content size.
    pub blocks: u64,
    pub perm: u16,
    pub nlink: u32,
    pub mtime: SystemTime,
    pub uid: u32,
    pub gid: u32,
}

impl Attr {
    /// A file of a read-only snapshot.
    pub fn file(ino: u64, size: u64, mtime: SystemTime, cfg: &FsConfig) -> Attr {
        Attr {
            ino,
            kind: FileKind::File,
            size,
            blocks: size.div_ceil(512),
            perm: cfg.file_mode.unwrap_or(0o444),
            nlink: 1,
            mtime,
            uid: cfg.uid,
            gid: cfg.gid,
        }
    }

    pub fn dir(ino: u64, mtime: SystemTime, cfg: &FsConfig) -> Attr {
        Attr {
            ino,
            kind: FileKind::Dir,
            size: 0,
            blocks: 0,
            perm: cfg.dir_mode.unwrap_or(0o755),
            nlink: 2,
            mtime,
            uid: cfg.uid,
            gid: cfg.gid,
        }
    }
}

/// An entry handed to the kernel: attributes and how long it may trust them (and the name).
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub attr: Attr,
    pub ttl: Duration,
}
