//! What a mount by a non-root user needs, checked before mounting so a failure names its cause
//! and its fix instead of a bare `Permission denied (os error 13)`.
//!
//! Root mounts with mount(2) directly. Other users need `/dev/fuse` open to them (the FUSE
//! library opens it before anything else) and the setuid-root `fusermount3` (Debian package
//! `fuse3`), which performs the mount on their behalf; `--allow-other` additionally needs
//! `user_allow_other` in `/etc/fuse.conf`, which fusermount3 checks.

use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const DEV_FUSE: &str = "/dev/fuse";
pub const FUSE_CONF: &str = "/etc/fuse.conf";

/// Checks what the current user needs to mount; Err(cause and fix) when something is missing.
pub fn check(allow_other: bool) -> Result<(), String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(());
    }
    check_dev_fuse(Path::new(DEV_FUSE))?;
    let fusermount = find_fusermount(std::env::var_os("PATH").as_deref()).ok_or_else(|| {
        "fusermount3 not found: mounting as a non-root user needs it (install the Debian \
         package fuse3: `sudo apt-get install fuse3`)"
            .to_string()
    })?;
    check_setuid(&fusermount)?;
    if allow_other {
        let conf = std::fs::read_to_string(FUSE_CONF).unwrap_or_default();
        if !allows_other(&conf) {
            return Err(format!(
                "--allow-other (allow_other) needs the line `user_allow_other` in {FUSE_CONF} \
                 when a non-root user mounts (add it as root, or mount without --allow-other)"
            ));
        }
    }
    Ok(())
}

fn check_dev_fuse(dev: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dev).map_err(|e| {
        format!(
            "{}: {e}: the FUSE kernel module is not loaded (`sudo modprobe fuse`), or the \
             container has no access to the device (docker: --device /dev/fuse)",
            dev.display()
        )
    })?;
    let c = CString::new(dev.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("{}: NUL in path", dev.display()))?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK) } != 0 {
        let err = std::io::Error::last_os_error();
        return Err(format!(
            "{}: {err}: non-root mounts need read and write access to it (it is mode {:04o}, \
             owner uid {}; the fuse3 package's udev rule makes it 0666: `sudo chmod 0666 {}`)",
            dev.display(),
            meta.permissions().mode() & 0o7777,
            meta.uid(),
            dev.display()
        ));
    }
    Ok(())
}

/// fusermount3, else fusermount (FUSE 2's, which works too), from `$FUSERMOUNT_PATH` (what the
/// FUSE library honours), `$PATH`, then the usual system directories.
fn find_fusermount(path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FUSERMOUNT_PATH").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = path_var
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from));
    for name in ["fusermount3", "fusermount"] {
        for d in &dirs {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn check_setuid(fusermount: &Path) -> Result<(), String> {
    let Ok(meta) = std::fs::metadata(fusermount) else {
        return Ok(()); // Let the mount itself say what is wrong.
    };
    if meta.uid() != 0 || meta.permissions().mode() & libc::S_ISUID == 0 {
        return Err(format!(
            "{} is not setuid root, so it cannot mount for a non-root user (reinstall the \
             Debian package fuse3, or `sudo chmod u+s {}`)",
            fusermount.display(),
            fusermount.display()
        ));
    }
    Ok(())
}

/// True if `fuse.conf` text enables `user_allow_other` (a line of its own; `#` comments).
fn allows_other(conf: &str) -> bool {
    conf.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .any(|l| l == "user_allow_other")
}

/// Rewrites a mount failure whose cause is known into cause and fix.
pub fn explain_mount_error(err: &str, allow_other: bool) -> String {
    if err.contains("user_allow_other") || (allow_other && err.contains("allow_other")) {
        return format!(
            "--allow-other needs the line `user_allow_other` in {FUSE_CONF} when a non-root \
             user mounts (fusermount3 said: {})",
            err.trim()
        );
    }
    err.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuse_conf_parsing() {
        assert!(!allows_other("#user_allow_other\n"));
        assert!(!allows_other(""));
        assert!(allows_other("mount_max = 5\n  user_allow_other  \n"));
        assert!(allows_other("user_allow_other # yes\n"));
    }

    #[test]
    fn a_missing_device_names_modprobe() {
        let e = check_dev_fuse(Path::new("/nonexistent/fuse")).unwrap_err();
        assert!(e.contains("modprobe fuse"), "{e}");
    }

    #[test]
    fn fusermount_search_uses_path() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("fusermount3"), b"").unwrap();
        let found = find_fusermount(Some(d.path().as_os_str()));
        assert!(found.is_some());
        let e = check_setuid(&d.path().join("fusermount3")).unwrap_err();
        assert!(e.contains("not setuid root"), "{e}");
    }
}
