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

/// Decodes the octal escapes (`\040` for space) of /proc/self/mountinfo paths.
fn unescape_mountinfo(s: &str) -> String {
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

/// True if `canonical` is the mount point of some mount.
pub fn is_mounted(canonical: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|mp| Path::new(&unescape_mountinfo(mp)) == canonical)
    })
}

/// Unmounts `path` (a FUSE mount). Root calls umount(2) directly; others go through
/// fusermount3/fusermount, which check that the caller owns the mount.
pub fn unmount(path: &Path) -> Result<(), String> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| "mountpoint contains a NUL byte".to_string())?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EBUSY) => {
            return Err(format!(
                "{} is busy: a process still uses it (see `fuser -vm {}`)",
                path.display(),
                path.display()
            ))
        }
        Some(libc::EINVAL) => return Err(format!("{} is not mounted", path.display())),
        Some(libc::EPERM) => {}
        _ => return Err(format!("unmounting {}: {err}", path.display())),
    }
    for tool in ["fusermount3", "fusermount"] {
        if let Ok(status) = std::process::Command::new(tool)
            .arg("-u")
            .arg(path)
            .status()
        {
            if status.success() {
                return Ok(());
            }
            return Err(format!("{tool} -u {} failed", path.display()));
        }
    }
    Err(format!("unmounting {}: {err}", path.display()))
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
        let d = tempfile::tempdir().unwrap();
        assert!(!is_mounted(&d.path().canonicalize().unwrap()));
        assert!(check_mountpoint(d.path()).is_ok());
        assert!(check_mountpoint(&d.path().join("missing")).is_err());
    }
}
