//! Whether a process still holds a descriptor of a file, from `/proc/PID/fd*`.
//!
//! FUSE sends FLUSH for every `close(2)` of every duplicate of an open file, and RELEASE only
//! when the last one goes; the release comes *after* `close` returned. When a flush comes, the
//! closing process's descriptor table tells whether this was (as far as this process goes)
//! its last descriptor of the file: then the version is complete and only its release is on
//! its way. `/proc` is read in the kernel, never through a FUSE mount, so this cannot deadlock.

use std::path::Path;

/// Descriptors looked at, at most (a process with more is assumed to keep the file open).
const MAX_FDS: usize = 4096;

/// True if process (or thread) `pid` has a descriptor whose kernel inode number is `ino` and
/// whose path ends with `/name` (or more descriptors than are looked at).
pub fn holds(pid: u32, ino: u64, name: &str) -> bool {
    let dir = format!("/proc/{pid}/fdinfo");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        // Gone (it exited: it writes nothing more) or not ours to read (another user's
        // process on an `--allow-other` mount): the common case, a plain last close, is
        // assumed then.
        return false;
    };
    let suffix = format!("/{name}");
    for (n, entry) in entries.flatten().enumerate() {
        if n >= MAX_FDS {
            return true;
        }
        let Ok(info) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let same_ino = info.lines().any(|l| {
            l.strip_prefix("ino:")
                .is_some_and(|v| v.trim().parse::<u64>() == Ok(ino))
        });
        if !same_ino {
            continue;
        }
        let link = Path::new("/proc")
            .join(pid.to_string())
            .join("fd")
            .join(entry.file_name());
        if std::fs::read_link(link).is_ok_and(|t| t.to_string_lossy().ends_with(&suffix)) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn sees_an_open_descriptor_of_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held.txt");
        let f = std::fs::File::create(&path).unwrap();
        let ino = f.metadata().unwrap().ino();
        let pid = std::process::id();
        assert!(holds(pid, ino, "held.txt"));
        assert!(!holds(pid, ino, "other.txt"));
        drop(f);
        assert!(!holds(pid, ino, "held.txt"));
    }
}
