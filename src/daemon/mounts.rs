//! The hubfs mounts of this machine, from `/proc/self/mountinfo` (type `fuse.hubfs`): what
//! `hubfs status` lists without a mountpoint, and whose daemon (by user) a mountpoint has, so
//! its control socket is found from any login, sudo or cron.

use std::path::{Path, PathBuf};

use super::mountpoint::unescape_mountinfo;

/// The filesystem type every hubfs mount has in /proc/mounts.
pub const FSTYPE: &str = "fuse.hubfs";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubfsMount {
    pub mountpoint: PathBuf,
    /// What was mounted (`alice/model@main`), as given to `hubfs mount`.
    pub source: String,
    /// The user who mounted (the kernel's `user_id=`): whose daemon serves it.
    pub user_id: u32,
}

/// Every hubfs mount in `mountinfo` text.
pub fn parse(mountinfo: &str) -> Vec<HubfsMount> {
    mountinfo.lines().filter_map(parse_line).collect()
}

/// One line: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`.
fn parse_line(line: &str) -> Option<HubfsMount> {
    let (left, right) = line.split_once(" - ")?;
    let mountpoint = left.split(' ').nth(4)?;
    let mut right = right.split(' ');
    if right.next()? != FSTYPE {
        return None;
    }
    let source = right.next()?;
    let user_id = right
        .next()?
        .split(',')
        .find_map(|o| o.strip_prefix("user_id="))
        .and_then(|v| v.parse().ok())?;
    Some(HubfsMount {
        mountpoint: PathBuf::from(unescape_mountinfo(mountpoint)),
        source: unescape_mountinfo(source),
        user_id,
    })
}

/// The hubfs mounts this process can see.
pub fn list() -> Vec<HubfsMount> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse(&t))
        .unwrap_or_default()
}

/// The hubfs mount at `canonical` (the newest, if stacked).
pub fn find(canonical: &Path) -> Option<HubfsMount> {
    list().into_iter().rfind(|m| m.mountpoint == canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
301 28 0:77 / /mnt/a\\040b rw,nosuid,nodev,relatime shared:150 - fuse.hubfs alice/m@main rw,user_id=1000,group_id=1000,default_permissions
302 28 0:78 / /mnt/c ro,nosuid,nodev - fuse.hubfs hf:// ro,user_id=0,group_id=0,allow_other
303 28 0:79 / /mnt/s rw - fuse.sshfs me@host: rw,user_id=0,group_id=0
";

    #[test]
    fn only_hubfs_mounts_with_their_owner() {
        let m = parse(INFO);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mountpoint, PathBuf::from("/mnt/a b"));
        assert_eq!(m[0].source, "alice/m@main");
        assert_eq!(m[0].user_id, 1000);
        assert_eq!(m[1].source, "hf://");
        assert_eq!(m[1].user_id, 0);
    }
}
