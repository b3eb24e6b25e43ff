//! `hubfs warm PATH...`: fetches files of a mount into its cache ahead of use.
//!
//! It reads the files through the mount, so what lands in the cache is exactly what a later
//! read would fetch (blocks verified against their digests, or taken from the huggingface_hub
//! cache), and it works for any mount without a control request. A few readers run at once:
//! each sequential reader gets the daemon's parallel read-ahead, so a handful is enough to keep
//! the mount's request budget busy, and more would only thrash. A progress bar (bytes, rate,
//! ETA, files) is drawn on stderr when it is a terminal; otherwise the command is quiet and
//! only failures are printed. With `--hf-cache-layout` each file is also laid out in the
//! huggingface_hub cache (`hf_layout`), named by what the mount's daemon says it is.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::Mutex;

/// Read size: large enough that the per-call cost through FUSE is small.
const CHUNK: usize = 1 << 20;
/// Failures named in the error; the rest are counted.
const MAX_NAMED_FAILURES: usize = 10;

/// Every regular file under `paths` (a file, a directory, or a whole mount), with its size.
/// Symbolic links are not followed: a link can point out of the mount.
pub fn collect(paths: &[PathBuf]) -> (Vec<(PathBuf, u64)>, Vec<String>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut stack: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    while let Some(path) = stack.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                errors.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        if meta.is_file() {
            files.push((path, meta.len()));
        } else if meta.is_dir() {
            match std::fs::read_dir(&path) {
                Ok(entries) => {
                    let mut children: Vec<PathBuf> = entries
                        .filter_map(|e| match e {
                            Ok(e) => Some(e.path()),
                            Err(e) => {
                                errors.push(format!("{}: {e}", path.display()));
                                None
                            }
                        })
                        .collect();
                    // Depth first, in name order: a predictable progression.
                    children.sort();
                    stack.extend(children.into_iter().rev());
                }
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        }
    }
    (files, errors)
}

/// Where `--hf-cache-layout` puts files, and how it learns what they are.
struct HfTarget {
    root: PathBuf,
    /// Canonical mountpoints of this user's hubfs mounts, longest first.
    mounts: Vec<PathBuf>,
}

impl HfTarget {
    fn new(root: PathBuf) -> HfTarget {
        // SAFETY: getuid cannot fail.
        let me = unsafe { libc::getuid() };
        let mut mounts: Vec<PathBuf> = crate::daemon::mounts::list()
            .into_iter()
            .filter(|m| me == 0 || m.user_id == me)
            .map(|m| m.mountpoint)
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
        HfTarget { root, mounts }
    }

    /// Asks the mount's daemon what the open file `f` (at `path`) is, and lays it out.
    fn place(&self, path: &Path, f: &mut std::fs::File) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let canonical = path.canonicalize().map_err(|e| e.to_string())?;
        let mp = self
            .mounts
            .iter()
            .find(|m| canonical.starts_with(m))
            .ok_or("not in a hubfs mount of this user")?;
        let ino = f.metadata().map_err(|e| e.to_string())?.ino();
        let req = serde_json::json!({"cmd": "describe", "ino": ino});
        let answer = crate::daemon::control::request(mp, &req, std::time::Duration::from_secs(30))?;
        if answer["local_changes"].as_bool() == Some(true) {
            return Err("has local changes not on the Hub: not put in the HF cache".into());
        }
        if let Some(e) = answer.get("error").and_then(|e| e.as_str()) {
            return Err(format!("the mount cannot say what it is ({e})"));
        }
        let origin: crate::fs::FileOrigin = serde_json::from_value(answer["file"].clone())
            .map_err(|e| format!("bad answer from the daemon: {e}"))?;
        crate::hf_layout::place(&self.root, &origin, f)
            .map_err(|e| format!("HF cache {}: {e}", self.root.display()))
    }
}

/// Reads every file under `paths` with `jobs` readers at once; with `hf_cache` also lays each
/// out in that huggingface_hub cache (see `hf_layout`). Err names what failed.
pub fn warm(paths: &[PathBuf], jobs: usize, hf_cache: Option<PathBuf>) -> Result<(), String> {
    let hf = hf_cache.map(HfTarget::new);
    let started = Instant::now();
    let (files, mut errors) = collect(paths);
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let done = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let count = files.len();
    bar.set_message(format!("0/{count} files"));
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, count.max(1)) {
            s.spawn(|| {
                let mut buf = vec![0u8; CHUNK];
                while let Some((path, _)) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(e) = warm_file(path, &mut buf, &bar, hf.as_ref()) {
                        failures.lock().push(format!("{}: {e}", path.display()));
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    bar.set_message(format!("{n}/{count} files"));
                }
            });
        }
    });
    errors.extend(failures.into_inner());
    if tty {
        // The last frame stays on screen with the totals; end its line.
        let secs = started.elapsed().as_secs_f64();
        bar.finish_with_message(format!("{count}/{count} files, done in {secs:.1}s"));
        eprintln!();
    }
    if errors.is_empty() {
        return Ok(());
    }
    let more = errors.len().saturating_sub(MAX_NAMED_FAILURES);
    let mut msg = format!("{} could not be read:", errors.len());
    for e in errors.iter().take(MAX_NAMED_FAILURES) {
        msg.push_str("\n  ");
        msg.push_str(e);
    }
    if more > 0 {
        msg.push_str(&format!("\n  ... and {more} more"));
    }
    Err(msg)
}

/// Reads a file to its end, counting bytes on the bar, and lays it out in the HF cache if
/// asked (while it is open, so the daemon still knows its inode); then tells the kernel its
/// pages are not needed (the point was the daemon's cache, not the page cache).
fn warm_file(
    path: &Path,
    buf: &mut [u8],
    bar: &ProgressBar,
    hf: Option<&HfTarget>,
) -> Result<(), String> {
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    read_all(&mut f, buf, bar).map_err(|e| e.to_string())?;
    if let Some(hf) = hf {
        hf.place(path, &mut f)?;
    }
    use std::os::fd::AsRawFd;
    // SAFETY: advice on an open descriptor; a failure changes nothing.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    Ok(())
}

fn read_all(f: &mut std::fs::File, buf: &mut [u8], bar: &ProgressBar) -> std::io::Result<()> {
    loop {
        match f.read(buf) {
            Ok(0) => break,
            Ok(n) => bar.inc(n as u64),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_files_depth_first_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/x"), b"xyz").unwrap();
        std::fs::write(root.join("a/y"), b"12345").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("a/link")).unwrap();
        let (files, errors) = collect(&[root.to_path_buf(), root.join("missing")]);
        assert_eq!(files, vec![(root.join("a/b/x"), 3), (root.join("a/y"), 5)]);
        assert_eq!(errors.len(), 1, "{errors:?}");
    }
}
