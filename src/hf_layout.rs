//! Writing files into the huggingface_hub cache layout (`hubfs warm --hf-cache-layout`), so
//! `hf_hub_download(..., local_files_only=True)`, `snapshot_download(local_files_only=True)`
//! and `from_pretrained(..., local_files_only=True)` find them afterwards, with no network.
//!
//! The layout, as huggingface_hub writes it under its cache directory (HF_HUB_CACHE rules, see
//! `read::hf_cache::default_dir`):
//!
//! ```text
//! models--NS--NAME/                (datasets--…, spaces--…)
//!   blobs/<etag>                   the content; etag = sha256 of an LFS file, else its git blob id
//!   snapshots/<commit>/<path>      relative symlink to ../../blobs/<etag> (one ../ per directory)
//!   refs/<revision>                the commit the revision pointed to (not for a commit id)
//! ```
//!
//! Each file is written to a temporary name and renamed into place, so a reader (or a crash)
//! never sees a partial blob, link or ref; huggingface_hub itself names partial downloads
//! `<etag>.incomplete` and ignores them. A blob already there with the right size is kept.
//! Every name taken from the daemon's answer is checked: no component may be empty, `.` or
//! `..`, so nothing is written outside the repo's folder.

use std::fs;
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::fs::FileOrigin;

fn invalid(what: &str, value: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("refusing {what} {value:?} as a path in the HF cache"),
    )
}

/// A relative path of normal components only.
fn checked_rel(what: &str, value: &str) -> io::Result<PathBuf> {
    let ok = !value.is_empty()
        && !value.starts_with('/')
        && value
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'));
    if ok {
        Ok(PathBuf::from(value))
    } else {
        Err(invalid(what, value))
    }
}

fn checked_hex(what: &str, value: &str) -> io::Result<()> {
    if !value.is_empty() && value.len() <= 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(invalid(what, value))
    }
}

/// huggingface_hub's folder of a repo: `models--ns--name`.
fn repo_folder(o: &FileOrigin) -> io::Result<String> {
    checked_rel("repo id", &o.repo_id)?;
    if !matches!(o.repo_type.as_str(), "models" | "datasets" | "spaces") {
        return Err(invalid("repo type", &o.repo_type));
    }
    Ok(crate::read::hf_cache::folder_name(&o.repo_type, &o.repo_id))
}

/// Writes `bytes` to `path` through a temporary file and a rename (no partial content).
fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_name(path);
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// A temporary name beside `path`, unique to this call: `hubfs warm` lays files out from several
/// threads at once, and two of them writing the same name (`refs/main`, or one blob shared by two
/// paths) must not rename each other's temporary file away.
fn tmp_name(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.hubfs-{}-{n}.tmp", std::process::id()))
}

/// Lays `content` (the file `o` describes, read from the mount) out under the HF cache `root`.
pub fn place(root: &Path, o: &FileOrigin, content: &mut fs::File) -> io::Result<()> {
    checked_hex("etag", &o.etag)?;
    checked_hex("commit", &o.commit)?;
    let rel = checked_rel("path", &o.path)?;
    let repo_dir = root.join(repo_folder(o)?);

    // The blob: copied from the mount unless an intact-looking one is there already.
    let blobs = repo_dir.join("blobs");
    fs::create_dir_all(&blobs)?;
    let blob = blobs.join(&o.etag);
    let have = fs::metadata(&blob).map(|m| m.is_file() && m.len() == o.size);
    if !have.unwrap_or(false) {
        let tmp = blobs.join(format!(
            "{}.incomplete-hubfs-{}",
            o.etag,
            std::process::id()
        ));
        let mut copy = || -> io::Result<()> {
            content.seek(SeekFrom::Start(0))?;
            let mut out = fs::File::create(&tmp)?;
            let n = io::copy(content, &mut out)?;
            if n != o.size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("read {n} bytes of a {}-byte file", o.size),
                ));
            }
            out.sync_all()?;
            fs::rename(&tmp, &blob)
        };
        copy().inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })?;
    }

    // The snapshot link, relative like huggingface_hub's: one `..` per directory up to the
    // repo folder.
    let link = repo_dir.join("snapshots").join(&o.commit).join(&rel);
    if let Some(dir) = link.parent() {
        fs::create_dir_all(dir)?;
    }
    let depth = rel.components().count() + 1; // the path's directories, then <commit>, snapshots
    let target: PathBuf = std::iter::repeat_n("..", depth)
        .collect::<PathBuf>()
        .join("blobs")
        .join(&o.etag);
    if fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
        let tmp = tmp_name(&link);
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp)?;
        fs::rename(&tmp, &link).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })?;
    }

    // The ref: what the revision (the default branch when none was given) pointed to. A
    // revision that is the commit id itself has none, as with huggingface_hub.
    let revision = o.revision.as_deref().unwrap_or("main");
    if !o.commit.starts_with(revision) {
        let ref_path = repo_dir
            .join("refs")
            .join(checked_rel("revision", revision)?);
        if let Some(dir) = ref_path.parent() {
            fs::create_dir_all(dir)?;
        }
        if fs::read_to_string(&ref_path).ok().as_deref() != Some(o.commit.as_str()) {
            replace_file(&ref_path, o.commit.as_bytes())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn origin(path: &str, revision: Option<&str>) -> FileOrigin {
        FileOrigin {
            repo_type: "datasets".into(),
            repo_id: "ns/name".into(),
            revision: revision.map(Into::into),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            path: path.into(),
            size: 5,
            etag: "aa".repeat(32),
        }
    }

    #[test]
    fn lays_out_blobs_links_and_refs_like_huggingface_hub() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"hello").unwrap();
        let o = origin("a/b/c.txt", Some("refs/pr/1"));
        place(dir.path(), &o, &mut f).unwrap();
        place(dir.path(), &o, &mut f).unwrap(); // idempotent
        let repo = dir.path().join("datasets--ns--name");
        let link = repo.join("snapshots").join(&o.commit).join("a/b/c.txt");
        assert_eq!(
            fs::read_link(&link).unwrap(),
            PathBuf::from(format!("../../../../blobs/{}", o.etag))
        );
        assert_eq!(fs::read(&link).unwrap(), b"hello");
        assert_eq!(
            fs::read_to_string(repo.join("refs/refs/pr/1")).unwrap(),
            o.commit
        );
        // Top-level file, default branch.
        place(dir.path(), &origin("x", None), &mut f).unwrap();
        assert_eq!(
            fs::read_to_string(repo.join("refs/main")).unwrap(),
            o.commit
        );
        // A commit-id revision writes no ref.
        place(dir.path(), &origin("y", Some("0123456")), &mut f).unwrap();
        assert!(!repo.join("refs/0123456").exists());
        // Nothing escapes the repo folder.
        for bad in ["../x", "a/../../x", "/etc/x", "a//b", ""] {
            assert!(
                place(dir.path(), &origin(bad, None), &mut f).is_err(),
                "{bad}"
            );
        }
        let mut o = origin("z", Some("../../evil"));
        assert!(place(dir.path(), &o, &mut f).is_err());
        o.revision = None;
        o.etag = "../x".into();
        assert!(place(dir.path(), &o, &mut f).is_err());
        // A short read is an error, not a truncated blob.
        let mut o = origin("big", None);
        o.size = 6;
        o.etag = "bb".repeat(32);
        assert!(place(dir.path(), &o, &mut f).is_err());
        assert!(!repo.join("blobs").join(&o.etag).exists());
    }
}
