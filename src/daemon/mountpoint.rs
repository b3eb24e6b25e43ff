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
        let dev = mount_device(Path::new("/")).unwrap();
        assert!(dev.split_once(':').is_some(), "{dev}");
        let d = tempfile::tempdir().unwrap();
        assert!(!is_mounted(&d.path().canonicalize().unwrap()));
        assert!(check_mountpoint(d.path()).is_ok());
        assert!(check_mountpoint(&d.path().join("missing")).is_err());
    }
}
