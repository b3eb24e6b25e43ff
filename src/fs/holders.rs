//! Whether a process still holds a descriptor of a file, from `/proc/PID/fd*`.
//!
//! FUSE sends FLUSH for every `close(2)` of every duplicate of an open file, and RELEASE only
//! when the last one goes; the release comes *after* `close` returned. When a flush comes, the
//! descriptor tables of the closing process and of its parent tell whether a writable
//! descriptor of the file is left: if none is, the version is complete and only its release
//! is on its way. The parent covers `(cmd1; cmd2) > file`, where `cmd1` exits (closing its
//! inherited descriptor; an exiting process shows no descriptors at all) while the subshell
//! still holds the file for `cmd2`. Holders further away (a grandparent, an unrelated process
//! that received the descriptor) are not seen. `/proc` is read in the kernel, never through a
//! FUSE mount, so this cannot deadlock.

use std::path::Path;

/// Descriptors looked at, at most (a process with more is assumed to keep the file open).
const MAX_FDS: usize = 4096;

/// True if process (or thread) `pid` or its parent has a descriptor open for writing whose
/// kernel inode number is `ino` and whose path ends with `/name`.
pub fn holds(pid: u32, ino: u64, name: &str) -> bool {
    holds_in(pid, ino, name) || parent_of(pid).is_some_and(|pp| pp > 1 && holds_in(pp, ino, name))
}

/// The parent process of `pid` (field 4 of `/proc/PID/stat`, after the command in parens).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `holds` for one process (or more descriptors than are looked at).
fn holds_in(pid: u32, ino: u64, name: &str) -> bool {
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
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        let same_ino = field("ino:").is_some_and(|v| v.parse::<u64>() == Ok(ino));
        let writable = field("flags:")
            .and_then(|v| i32::from_str_radix(&v, 8).ok())
            .is_some_and(|f| f & libc::O_ACCMODE != libc::O_RDONLY);
        if !same_ino || !writable {
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
    fn sees_an_open_writable_descriptor_of_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held.txt");
        let f = std::fs::File::create(&path).unwrap();
        let ino = f.metadata().unwrap().ino();
        let pid = std::process::id();
        assert!(holds(pid, ino, "held.txt"));
        assert!(!holds(pid, ino, "other.txt"));
        drop(f);
        assert!(!holds(pid, ino, "held.txt"));
        let reader = std::fs::File::open(&path).unwrap();
        assert!(!holds(pid, ino, "held.txt"), "a reader does not write more");
        drop(reader);
        assert_eq!(parent_of(pid), Some(std::os::unix::process::parent_id()));
    }
}
