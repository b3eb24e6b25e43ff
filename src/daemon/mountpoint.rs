//! Mountpoint checks and unmounting.

use std::path::{Path, PathBuf};

/// Checks that `path` can be mounted on and returns its canonical form.
pub fn check_mountpoint(path: &Path) -> Result<PathBuf, String> {
    let canonical = path
        .canonicalize()
        .map_err(|e| format!("mountpoint {}: {e}", path.display()))?;
    let meta =
        std::fs::metadata(&canonical).map_err(|e| format!("mountpoint {}: {e}", path.display()))?;
    if !meta.is_dir() {
        return Err(format!("mountpoint {} is not a directory", path.display()));
    }
    if is_mounted(&canonical) {
        return Err(format!(
            "mountpoint {} is busy: something is already mounted there",
            path.display()
        ));
    }
    Ok(canonical)
}

/// Refuses a mountpoint with entries: the mount would hide them (as rclone does; mounting
/// there anyway is `--allow-non-empty`).
pub fn check_empty(canonical: &Path) -> Result<(), String> {
    let mut entries = std::fs::read_dir(canonical)
        .map_err(|e| format!("mountpoint {}: {e}", canonical.display()))?;
    match entries.next() {
        None => Ok(()),
        Some(first) => {
            let name = first
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .unwrap_or_default();
            Err(format!(
                "mountpoint {} is not empty (it holds {name:?}...): the mount would hide its \
                 files; use an empty directory, or --allow-non-empty (fstab: nonempty)",
                canonical.display()
            ))
        }
    }
}

/// Decodes the octal escapes (`\040` for space) of /proc/self/mountinfo paths.
pub(crate) fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `major:minor` device of the newest mount at `canonical`, from /proc/self/mountinfo
/// (read without touching the mount itself, which may not serve requests yet).
pub fn mount_device(canonical: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let dev = fields.nth(2)?;
            let mp = fields.nth(1)?;
            (Path::new(&unescape_mountinfo(mp)) == canonical).then(|| dev.to_string())
        })
        .next_back()
}

/// True if `canonical` is the mount point of some mount.
pub fn is_mounted(canonical: &Path) -> bool {
    mount_device(canonical).is_some()
}

/// Sets the kernel's read-ahead for the mount at `canonical` (its backing device info).
pub fn set_read_ahead(canonical: &Path, kib: u32) -> Result<(), String> {
    let dev = mount_device(canonical).ok_or("not mounted")?;
    let knob = format!("/sys/class/bdi/{dev}/read_ahead_kb");
    std::fs::write(&knob, kib.to_string()).map_err(|e| format!("{knob}: {e}"))
}

/// Why an unmount failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnmountError {
    /// A process still uses the mount (open file, working directory).
    Busy(String),
    /// Nothing is mounted there.
    NotMounted(String),
    Other(String),
}

impl std::fmt::Display for UnmountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnmountError::Busy(m) | UnmountError::NotMounted(m) | UnmountError::Other(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Unmounts `path` (a FUSE mount). Root calls umount(2) directly; others go through
/// fusermount3/fusermount, which check that the caller owns the mount.
pub fn unmount(path: &Path) -> Result<(), String> {
    unmount_with(path, false).map_err(|e| e.to_string())
}

/// [`unmount`], lazily (`umount -l`) when `lazy`: the mount leaves the namespace at once and
/// goes away when its last user lets go.
pub fn unmount_with(path: &Path, lazy: bool) -> Result<(), UnmountError> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| UnmountError::Other("mountpoint contains a NUL byte".to_string()))?;
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    let busy = || {
        UnmountError::Busy(format!(
            "{} is busy: a process still uses it (see `fuser -vm {}`)",
            path.display(),
            path.display()
        ))
    };
    match err.raw_os_error() {
        Some(libc::EBUSY) => return Err(busy()),
        Some(libc::EINVAL) => {
            return Err(UnmountError::NotMounted(format!(
                "{} is not mounted",
                path.display()
            )))
        }
        Some(libc::EPERM) => {}
        _ => {
            return Err(UnmountError::Other(format!(
                "unmounting {}: {err}",
                path.display()
            )))
        }
    }
    for tool in ["fusermount3", "fusermount"] {
        let mut cmd = std::process::Command::new(tool);
        cmd.arg(if lazy { "-uz" } else { "-u" }).arg(path);
        if let Ok(out) = cmd.stderr(std::process::Stdio::piped()).output() {
            if out.status.success() {
                return Ok(());
            }
            let said = String::from_utf8_lossy(&out.stderr);
            if said.contains("busy") {
                return Err(busy());
            }
            return Err(UnmountError::Other(format!(
                "{tool} -u {} failed: {}",
                path.display(),
                said.trim()
            )));
        }
    }
    Err(UnmountError::Other(format!(
        "unmounting {}: {err}",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn root_is_mounted_and_a_temp_dir_is_not() {
        assert!(is_mounted(Path::new("/")));
        let dev = mount_device(Path::new("/")).unwrap();
        assert!(dev.split_once(':').is_some(), "{dev}");
        let d = tempfile::tempdir().unwrap();
        assert!(!is_mounted(&d.path().canonicalize().unwrap()));
        assert!(check_mountpoint(d.path()).is_ok());
        assert!(check_mountpoint(&d.path().join("missing")).is_err());
        assert!(check_empty(d.path()).is_ok());
        std::fs::write(d.path().join("kept.txt"), b"x").unwrap();
        let e = check_empty(d.path()).unwrap_err();
        assert!(e.contains("not empty") && e.contains("kept.txt"), "{e}");
    }
}
