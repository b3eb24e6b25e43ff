//! Exclusive use of a cache directory by one daemon, with a fallback for concurrent mounts.
//!
//! The block store assumes a single owner (its index lives in memory), so a daemon holds an
//! advisory `flock` on `<dir>/lock` for its lifetime; the kernel drops it when the process dies,
//! so a crashed daemon never blocks the next one. A second daemon on the same directory uses the
//! first free slot `<dir>/instances/N` instead: concurrent mounts do not share blocks, while a
//! remount after unmount gets the main directory (and its blocks) back.

use std::fs::{File, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Sub-directory with the fallback slots.
pub const INSTANCES_DIR: &str = "instances";
const LOCK_FILE: &str = "lock";
/// More concurrent daemons on one cache directory than this is surely a mistake.
const MAX_INSTANCES: u32 = 64;

/// Holds the lock until dropped (or the process exits).
#[derive(Debug)]
pub struct CacheDirLock {
    _file: File,
    dir: PathBuf,
}

impl CacheDirLock {
    /// The directory this lock owns (the effective cache directory).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Locks `dir`, or if another live process holds it, the first free `dir/instances/N`.
/// Returns the lock and the effective directory to use as the cache root.
pub fn lock_cache_dir(dir: &Path) -> io::Result<(CacheDirLock, PathBuf)> {
    if let Some(lock) = try_lock(dir)? {
        return Ok((lock, dir.to_path_buf()));
    }
    for n in 0..MAX_INSTANCES {
        let slot = dir.join(INSTANCES_DIR).join(n.to_string());
        if let Some(lock) = try_lock(&slot)? {
            tracing::info!(
                dir = %dir.display(),
                slot = %slot.display(),
                "cache directory in use by another hubfs; using a separate instance slot"
            );
            return Ok((lock, slot));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::WouldBlock,
        format!(
            "cache directory {} and all {MAX_INSTANCES} instance slots are in use",
            dir.display()
        ),
    ))
}

/// Locks exactly `dir` (no instance slot); None if a live process holds it. For `hubfs cache`
/// commands, which must not work on a root a daemon is using.
pub fn try_lock_cache_root(dir: &Path) -> io::Result<Option<CacheDirLock>> {
    try_lock(dir)
}

/// The pid written in the lock of `dir` if a live process holds it, else None. Creates nothing.
pub fn cache_root_holder(dir: &Path) -> Option<u32> {
    let file = File::open(dir.join(LOCK_FILE)).ok()?;
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(TryLockError::WouldBlock) => Some(
            std::fs::read_to_string(dir.join(LOCK_FILE))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0),
        ),
        Err(TryLockError::Error(_)) => None,
    }
}

fn try_lock(dir: &Path) -> io::Result<Option<CacheDirLock>> {
    crate::private::create_dir_all(dir)?;
    let mut file = crate::private::open_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(e)) => return Err(e),
    }
    // For humans wondering who holds the cache; the lock itself is what counts.
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    Ok(Some(CacheDirLock {
        _file: file,
        dir: dir.to_path_buf(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_gets_an_instance_slot_and_main_dir_is_reusable() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cache");
        let (a, dir_a) = lock_cache_dir(&root).unwrap();
        assert_eq!(dir_a, root);
        assert_eq!(a.dir(), root);
        // flock conflicts between separate open files even within one process.
        let (b, dir_b) = lock_cache_dir(&root).unwrap();
        assert_eq!(dir_b, root.join("instances").join("0"));
        let (_c, dir_c) = lock_cache_dir(&root).unwrap();
        assert_eq!(dir_c, root.join("instances").join("1"));
        drop(b);
        let (_d, dir_d) = lock_cache_dir(&root).unwrap();
        assert_eq!(dir_d, root.join("instances").join("0"));
        drop(a);
        let (_e, dir_e) = lock_cache_dir(&root).unwrap();
        assert_eq!(dir_e, root);
        let pid = std::fs::read_to_string(root.join("lock")).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
    }
}
