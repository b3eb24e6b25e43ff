//! The staging area of one writable branch: staging files plus the journal, in
//! `<cache-dir>/staging/<key hash>/`, owned by one daemon at a time (flock).
//!
//! A staging file holds one version of a file's content. It is written while open, then
//! sealed (fsync'd and journaled) on close, after which it never changes: a later writer
//! copies it first, so a commit never uploads a file being modified. A staging file is
//! deleted as soon as nothing needs it: no pending change refers to it, no open node holds it
//! and no upload is reading it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::journal::{Journal, Record};

const FILES_DIR: &str = "files";

struct Inner {
    journal: Journal,
    /// Staging files alive in memory (open nodes), with their count of holders.
    live: HashMap<u64, usize>,
    /// Staging files an upload is reading.
    pinned: HashMap<u64, usize>,
    next_file: u64,
}

pub struct StagingArea {
    dir: PathBuf,
    _lock: File,
    inner: Mutex<Inner>,
}

/// One version of a file's content on local disk.
pub struct StagingFile {
    id: u64,
    path: PathBuf,
    file: File,
    area: Weak<StagingArea>,
}

/// Why a staging area could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AreaError {
    #[error("another hubfs mount is writing to this branch with the same cache directory ({0})")]
    Busy(PathBuf),
    #[error("staging area {0}: {1}")]
    Io(PathBuf, io::Error),
}

/// The directory name of a branch's staging area: a hash of everything identifying it.
pub fn area_name(identity: &str) -> String {
    hex::encode(&Sha256::digest(identity.as_bytes())[..12])
}

impl StagingArea {
    /// Opens (creating) the area `root/staging/<hash of identity>` and locks it; replays its
    /// journal and deletes staging files the journal does not need (left by a crash).
    pub fn open(root: &Path, identity: &str) -> Result<Arc<StagingArea>, AreaError> {
        let dir = root.join("staging").join(area_name(identity));
        let io_err = |e| AreaError::Io(dir.clone(), e);
        std::fs::create_dir_all(dir.join(FILES_DIR)).map_err(io_err)?;
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("lock"))
            .map_err(io_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(AreaError::Busy(dir)),
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        // For humans: which branch this is and who holds it.
        lock.set_len(0).map_err(io_err)?;
        writeln!(lock, "{identity}\npid {}", std::process::id()).map_err(io_err)?;
        let journal = Journal::open(&dir).map_err(io_err)?;
        let mut next_file = 1;
        for entry in std::fs::read_dir(dir.join(FILES_DIR)).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let id = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok());
            match id {
                Some(id) if journal.references(id) => next_file = next_file.max(id + 1),
                _ => {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(Arc::new(StagingArea {
            _lock: lock,
            inner: Mutex::new(Inner {
                journal,
                live: HashMap::new(),
                pinned: HashMap::new(),
                next_file,
            }),
            dir,
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn file_path(&self, id: u64) -> PathBuf {
        self.dir.join(FILES_DIR).join(id.to_string())
    }

    /// Reads the journal's state.
    pub fn with_journal<R>(&self, f: impl FnOnce(&mut Journal) -> R) -> R {
        f(&mut self.inner.lock().journal)
    }

    /// Journals `records` durably, then deletes the staging files they released.
    pub fn record(&self, records: &[Record]) -> io::Result<()> {
        self.record_with(records, true)
    }

    /// Like [`StagingArea::record`]; see [`Journal::append_with`] for `durable`.
    pub fn record_with(&self, records: &[Record], durable: bool) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let released = inner.journal.append_with(records, durable)?;
        for id in released {
            if !inner.live.contains_key(&id) && !inner.pinned.contains_key(&id) {
                let _ = std::fs::remove_file(self.file_path(id));
            }
        }
        Ok(())
    }

    /// A new, empty staging file.
    pub fn create_file(self: &Arc<Self>) -> io::Result<Arc<StagingFile>> {
        let id = {
            let mut inner = self.inner.lock();
            let id = inner.next_file;
            inner.next_file += 1;
            *inner.live.entry(id).or_default() += 1;
            id
        };
        let path = self.file_path(id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path);
        self.wrap(id, path, file)
    }

    /// The existing staging file `id` (journal replay).
    pub fn open_file(self: &Arc<Self>, id: u64) -> io::Result<Arc<StagingFile>> {
        *self.inner.lock().live.entry(id).or_default() += 1;
        let path = self.file_path(id);
        let file = OpenOptions::new().read(true).write(true).open(&path);
        self.wrap(id, path, file)
    }

    fn wrap(
        self: &Arc<Self>,
        id: u64,
        path: PathBuf,
        file: io::Result<File>,
    ) -> io::Result<Arc<StagingFile>> {
        let staged = StagingFile {
            id,
            path,
            // Built before the error check so that Drop balances the `live` count.
            file: match file {
                Ok(f) => f,
                Err(e) => {
                    self.release(id);
                    return Err(e);
                }
            },
            area: Arc::downgrade(self),
        };
        Ok(Arc::new(staged))
    }

    /// A new staging file with the content of `src` (copy-on-write of a sealed version).
    /// Only data extents are copied: holes stay holes (a sparse file stays sparse).
    pub fn copy_file(self: &Arc<Self>, src: &StagingFile) -> io::Result<Arc<StagingFile>> {
        let dst = self.create_file()?;
        let len = src.len()?;
        let mut buf = vec![0u8; COPY_CHUNK];
        for (start, end) in data_extents(&src.file, len)? {
            let mut at = start;
            while at < end {
                let n = ((end - at) as usize).min(COPY_CHUNK);
                src.file.read_exact_at(&mut buf[..n], at)?;
                dst.file.write_all_at(&buf[..n], at)?;
                at += n as u64;
            }
        }
        dst.file.set_len(len)?;
        Ok(dst)
    }

    /// Keeps staging files on disk while an upload reads them.
    pub fn pin(&self, ids: &[u64]) {
        let mut inner = self.inner.lock();
        for id in ids {
            *inner.pinned.entry(*id).or_default() += 1;
        }
    }

    pub fn unpin(&self, ids: &[u64]) {
        let mut inner = self.inner.lock();
        for id in ids {
            if let Some(n) = inner.pinned.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    inner.pinned.remove(id);
                    if !inner.live.contains_key(id) && !inner.journal.references(*id) {
                        let _ = std::fs::remove_file(self.file_path(*id));
                    }
                }
            }
        }
    }

    fn release(&self, id: u64) {
        let mut inner = self.inner.lock();
        if let Some(n) = inner.live.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                inner.live.remove(&id);
            }
        }
        if !inner.live.contains_key(&id)
            && !inner.pinned.contains_key(&id)
            && !inner.journal.references(id)
        {
            let _ = std::fs::remove_file(self.file_path(id));
        }
    }
}

/// Bytes copied per read when copying a staging file.
const COPY_CHUNK: usize = 1 << 20;

/// The data extents `[start, end)` of the first `len` bytes of `file` (SEEK_DATA/SEEK_HOLE);
/// the whole range if the filesystem cannot tell.
fn data_extents(file: &File, len: u64) -> io::Result<Vec<(u64, u64)>> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let seek = |offset: u64, whence: i32| -> io::Result<Option<u64>> {
        // SAFETY: lseek on a descriptor this File owns; it only moves the file offset, which
        // nothing else here uses (all I/O is positional).
        let r = unsafe { libc::lseek(fd, offset as libc::off_t, whence) };
        if r >= 0 {
            return Ok(Some(r as u64));
        }
        match io::Error::last_os_error() {
            // No data at or after `offset`.
            e if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
            e => Err(e),
        }
    };
    let mut extents = Vec::new();
    let mut at = 0;
    while at < len {
        let start = match seek(at, libc::SEEK_DATA) {
            Ok(Some(s)) => s,
            Ok(None) => break,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(vec![(0, len)]),
            Err(e) => return Err(e),
        };
        if start >= len {
            break;
        }
        let end = seek(start, libc::SEEK_HOLE)?.unwrap_or(len).min(len);
        extents.push((start, end));
        at = end;
    }
    Ok(extents)
}

impl StagingFile {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let n = self.file.read_at(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        buf.truncate(done);
        Ok(buf)
    }

    pub fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }

    pub fn set_len(&self, size: u64) -> io::Result<()> {
        self.file.set_len(size)
    }

    pub fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Makes the content durable (before it is journaled).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

impl Drop for StagingFile {
    fn drop(&mut self) {
        if let Some(area) = self.area.upgrade() {
            area.release(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::journal::Change;

    #[test]
    fn copies_keep_holes() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        let area = StagingArea::open(root.path(), "x").unwrap();
        let f = area.create_file().unwrap();
        f.set_len(1 << 30).unwrap();
        f.write_at(5 << 20, b"middle").unwrap();
        f.write_at((1 << 30) - 3, b"end").unwrap();
        let copy = area.copy_file(&f).unwrap();
        assert_eq!(copy.len().unwrap(), 1 << 30);
        assert_eq!(copy.read_at(5 << 20, 6).unwrap(), b"middle");
        assert_eq!(copy.read_at((1 << 30) - 3, 3).unwrap(), b"end");
        assert_eq!(copy.read_at(0, 4).unwrap(), vec![0; 4]);
        let used = std::fs::metadata(copy.path()).unwrap().blocks() * 512;
        assert!(used < 16 << 20, "the copy is sparse ({used} bytes used)");
    }

    #[test]
    fn files_live_while_needed_and_the_area_is_exclusive() {
        let root = tempfile::tempdir().unwrap();
        let area = StagingArea::open(root.path(), "x").unwrap();
        assert!(matches!(
            StagingArea::open(root.path(), "x"),
            Err(AreaError::Busy(_))
        ));
        let f = area.create_file().unwrap();
        f.write_at(0, b"hello").unwrap();
        let path = f.path().to_path_buf();
        area.record(&[Record::Change {
            path: "a".into(),
            seq: 1,
            change: Change::Put {
                file: f.id(),
                size: 5,
            },
        }])
        .unwrap();
        drop(f);
        assert!(
            path.exists(),
            "journaled content stays after its node is gone"
        );
        let copy = area.copy_file(&area.open_file(1).unwrap()).unwrap();
        assert_eq!(copy.read_at(0, 10).unwrap(), b"hello");
        let unjournaled = copy.path().to_path_buf();
        drop(copy);
        assert!(
            !unjournaled.exists(),
            "an unsealed copy dies with its last holder"
        );
        area.record(&[Record::Landed {
            commit: "c".into(),
            paths: vec![("a".into(), 1)],
        }])
        .unwrap();
        assert!(!path.exists(), "landed content is deleted");
        drop(area);
        StagingArea::open(root.path(), "x").expect("the lock dies with its holder");
    }
}
