//! Everything hubfs writes on local disk is private to the user running it: directories 0700,
//! files 0600, whatever the umask (cached file bytes of private repos, metadata naming them,
//! staged changes, the journal and the log are all as secret as the repos themselves).
//!
//! Modes are given explicitly when a file or directory is created (a umask can only remove
//! bits from them, never add). A cache directory from an older hubfs, or one a user loosened,
//! is tightened once when a daemon opens it ([`secure_dir`]); a directory owned by someone else
//! is refused, since its owner could read or plant anything in it.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every directory hubfs creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file hubfs creates.
pub const FILE_MODE: u32 = 0o600;
/// Permission bits that let other users in.
const OTHERS: u32 = 0o077;

/// `mkdir -p` where each directory it creates is 0700 (set explicitly after mkdir, so even a
/// zero umask cannot widen it). Directories that exist already are left as they are.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => fs::set_permissions(dir, Permissions::from_mode(DIR_MODE)),
        // Made by a concurrent creator in between: fine if it is a directory.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Options opening a file that, if created, is 0600.
pub fn open_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// `fs::write` with a 0600 file (for new files; an existing file keeps its mode).
pub fn write(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(data)
}

/// The effective user id (the owner of everything hubfs creates).
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// What [`secure_dir`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tightened {
    /// The directory's mode before, when it let other users in.
    pub was: Option<u32>,
    /// Entries (the directory included) whose modes were tightened.
    pub entries: u64,
    /// Entries that could not be tightened (with the first error).
    pub failed: u64,
    pub first_error: Option<String>,
}

/// Creates `dir` (0700) if missing; refuses it if another user owns it; if it lets other
/// users in (an old cache, a hand-made directory), tightens it and everything below it to
/// 0700/0600 (group and other bits cleared; symlinks are not followed). A directory that is
/// already 0700 is not walked: nobody else can reach what is inside.
pub fn secure_dir(dir: &Path, what: &str) -> Result<Tightened, String> {
    create_dir_all(dir).map_err(|e| format!("{what} {}: {e}", dir.display()))?;
    let meta = fs::metadata(dir).map_err(|e| format!("{what} {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{what} {} is not a directory", dir.display()));
    }
    check_owner(dir, &meta, what)?;
    let mut done = Tightened::default();
    let mode = meta.mode() & 0o7777;
    if mode & OTHERS == 0 {
        return Ok(done);
    }
    done.was = Some(mode);
    // The walk does not follow symlinks: start from the real directory.
    let real = fs::canonicalize(dir).map_err(|e| format!("{what} {}: {e}", dir.display()))?;
    tighten_tree(&real, &mut done);
    Ok(done)
}

/// Err with a clear message when `path` (with `meta`) is not owned by the current user.
pub fn check_owner(path: &Path, meta: &fs::Metadata, what: &str) -> Result<(), String> {
    let me = euid();
    if meta.uid() != me {
        return Err(format!(
            "{what} {} belongs to uid {}, not to you (uid {me}): refusing to use it \
             (its owner could read or change what hubfs keeps there); choose another \
             directory",
            path.display(),
            meta.uid()
        ));
    }
    Ok(())
}

/// Clears the group/other bits of `path` and, for a real directory, of everything below it.
fn tighten_tree(path: &Path, done: &mut Tightened) {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return fail(done, path, e),
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        return;
    }
    let mode = meta.mode() & 0o7777;
    if mode & OTHERS != 0 {
        let want = if ft.is_dir() {
            DIR_MODE
        } else {
            mode & !OTHERS
        };
        match fs::set_permissions(path, Permissions::from_mode(want)) {
            Ok(()) => done.entries += 1,
            Err(e) => fail(done, path, e),
        }
    }
    if ft.is_dir() {
        match fs::read_dir(path) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    tighten_tree(&entry.path(), done);
                }
            }
            Err(e) => fail(done, path, e),
        }
    }
}

fn fail(done: &mut Tightened, path: &Path, e: io::Error) {
    done.failed += 1;
    if done.first_error.is_none() {
        done.first_error = Some(format!("{}: {e}", path.display()));
    }
}

/// Makes an open regular file of ours 0600 if it lets others in (a log file from an older
/// hubfs); refuses one owned by another user. Anything else (`/dev/null`, a terminal, a pipe)
/// is left alone. Returns the old mode when it changed it.
pub fn secure_file(file: &File, path: &Path, what: &str) -> Result<Option<u32>, String> {
    let meta = file
        .metadata()
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Ok(None);
    }
    check_owner(path, &meta, what)?;
    let mode = meta.mode() & 0o7777;
    if mode & OTHERS == 0 {
        return Ok(None);
    }
    file.set_permissions(Permissions::from_mode(mode & !OTHERS & 0o777))
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    Ok(Some(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    /// Runs `f` with a zero umask (the loosest possible) and restores the old one.
    fn with_umask_zero<T>(f: impl FnOnce() -> T) -> T {
        // SAFETY: umask only changes this process's file-creation mask.
        let old = unsafe { libc::umask(0) };
        let out = f();
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        out
    }

    #[test]
    fn creates_private_dirs_and_files_even_with_a_zero_umask() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        with_umask_zero(|| {
            create_dir_all(&deep).unwrap();
            write(&deep.join("f"), b"x").unwrap();
            open_options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(deep.join("g"))
                .unwrap();
        });
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode(&tmp.path().join(d)), 0o700, "{d}");
        }
        assert_eq!(mode(&deep.join("f")), 0o600);
        assert_eq!(mode(&deep.join("g")), 0o600);
        // Existing directories are not an error.
        create_dir_all(&deep).unwrap();
    }

    #[test]
    fn loose_trees_are_tightened_once() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cache");
        fs::create_dir_all(root.join("blocks/ab")).unwrap();
        fs::write(root.join("blocks/ab/x.data"), b"secret").unwrap();
        fs::write(root.join("run.sh"), b"#!/bin/sh").unwrap();
        fs::set_permissions(root.join("run.sh"), Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        for d in ["", "blocks", "blocks/ab"] {
            fs::set_permissions(root.join(d), Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(root.join("blocks/ab/x.data"), Permissions::from_mode(0o644)).unwrap();
        let etc = mode(Path::new("/etc"));

        let done = secure_dir(&root, "cache dir").unwrap();
        assert_eq!(done.was, Some(0o755));
        assert_eq!(done.entries, 5, "{done:?}");
        assert_eq!(done.failed, 0);
        for d in ["", "blocks", "blocks/ab"] {
            assert_eq!(mode(&root.join(d)), 0o700, "{d}");
        }
        assert_eq!(mode(&root.join("blocks/ab/x.data")), 0o600);
        assert_eq!(mode(&root.join("run.sh")), 0o700);
        // A symlink is not followed.
        assert_eq!(mode(Path::new("/etc")), etc);

        // Already private: nothing to do, nothing walked.
        fs::set_permissions(root.join("run.sh"), Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            secure_dir(&root, "cache dir").unwrap(),
            Tightened::default()
        );
        assert_eq!(mode(&root.join("run.sh")), 0o755);
    }

    #[test]
    fn a_missing_dir_is_created_private() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("new/cache");
        assert_eq!(
            secure_dir(&root, "cache dir").unwrap(),
            Tightened::default()
        );
        assert_eq!(mode(&root), 0o700);
    }

    #[test]
    fn someone_elses_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let meta = fs::metadata(tmp.path()).unwrap();
        assert!(check_owner(tmp.path(), &meta, "cache dir").is_ok());
        if euid() == 0 {
            let theirs = tmp.path().join("theirs");
            fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            let e = secure_dir(&theirs, "cache dir").unwrap_err();
            assert!(e.contains("belongs to uid 65534"), "{e}");
        } else {
            let e = secure_dir(Path::new("/"), "cache dir").unwrap_err();
            assert!(e.contains("belongs to uid 0"), "{e}");
        }
    }

    #[test]
    fn loose_files_of_ours_are_made_private() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("hubfs.log");
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&p, Permissions::from_mode(0o644)).unwrap();
        let f = OpenOptions::new().append(true).open(&p).unwrap();
        assert_eq!(secure_file(&f, &p, "log file").unwrap(), Some(0o644));
        assert_eq!(mode(&p), 0o600);
        assert_eq!(secure_file(&f, &p, "log file").unwrap(), None);
        // Not a regular file: not ours to judge (`--log-file /dev/null`).
        let null = OpenOptions::new().append(true).open("/dev/null").unwrap();
        let null_path = Path::new("/dev/null");
        assert_eq!(secure_file(&null, null_path, "log file").unwrap(), None);
    }

    #[test]
    fn a_symlinked_cache_root_is_tightened_where_it_points() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::write(real.join("f"), b"x").unwrap();
        fs::set_permissions(&real, Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(real.join("f"), Permissions::from_mode(0o644)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let done = secure_dir(&link, "cache dir").unwrap();
        assert_eq!((done.was, done.entries), (Some(0o755), 2));
        assert_eq!(mode(&real), 0o700);
        assert_eq!(mode(&real.join("f")), 0o600);
    }
}
