//! What `hubfs cache ls|rm|gc` needs of the block store: a listing of its blobs, removal that
//! never takes a pinned blob (one whose data file the kernel may be reading directly), and
//! eviction down to a size. Used by the daemon that owns a cache root (asked over its control
//! socket) and by the command itself on a root no daemon holds. [`scan_root`] lists a root
//! without opening it (read-only: no repair, no lock), for a root a daemon may be writing.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::block_cache::{BlockCache, BLOCKS_DIR};
use super::key::BlobKey;
use super::layout::{alloc, Layout};
use super::sidecar::{self, FileRole};

/// One cached blob as the cache commands report it.
#[derive(Debug, Clone, Serialize)]
pub struct CachedBlob {
    pub key: BlobKey,
    /// Size of the content.
    pub size: u64,
    /// Disk bytes held (present blocks rounded to 4 KiB, plus the sidecar).
    pub cached_bytes: u64,
    /// Every block is cached.
    pub complete: bool,
    /// Last use, unix seconds (0 = unknown): the later of its last read (recorded to within a
    /// minute) and its last write.
    pub last_used: u64,
    /// Its data file is handed out (an open file reads it directly): never removed.
    pub pinned: bool,
}

impl Serialize for BlobKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}:{self}", self.kind_name()))
    }
}

/// Outcome of [`BlockCache::remove_unless_pinned`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Deleted; the bytes it held.
    Removed(u64),
    /// Kept: its data file is in use.
    Pinned,
    /// Not cached.
    Absent,
}

impl BlockCache {
    /// Every cached blob (doomed ones excluded).
    pub fn blobs(&self) -> Vec<CachedBlob> {
        let mut out = Vec::new();
        self.index.for_each_shard(|shard| {
            for (key, b) in &shard.blobs {
                if b.doomed {
                    continue;
                }
                out.push(CachedBlob {
                    key: *key,
                    size: b.blob_size,
                    cached_bytes: b.bytes(),
                    complete: b.present_blocks == self.layout.nblocks(b.blob_size),
                    last_used: b
                        .regions
                        .values()
                        .map(|r| r.touched_secs)
                        .max()
                        .unwrap_or(0),
                    pinned: b.pinned(),
                });
            }
        });
        // Region stamps record reads (refreshed at most once a minute); a region written and
        // never read again keeps stamp 0 on disk. Its data file's mtime is its last write.
        for b in &mut out {
            b.last_used = b.last_used.max(mtime_secs(&self.paths(&b.key).data));
        }
        out
    }

    /// Whether any block of the blob is cached.
    pub fn holds(&self, key: &BlobKey) -> bool {
        self.index
            .lock(key)
            .blobs
            .get(key)
            .is_some_and(|b| !b.doomed)
    }

    /// Deletes the blob's files unless it is pinned (then it stays, whole and usable).
    pub fn remove_unless_pinned(&self, key: &BlobKey) -> Removal {
        let mut shard = self.index.lock(key);
        match shard.blobs.get(key) {
            None => Removal::Absent,
            Some(b) if b.doomed => Removal::Absent,
            Some(b) if b.pinned() => Removal::Pinned,
            Some(_) => Removal::Removed(self.delete_blob_locked(&mut shard, key)),
        }
    }

    /// Evicts least recently used, unpinned regions until at most `target` bytes are held;
    /// returns the bytes freed.
    pub fn evict_down_to(&self, target: u64) -> u64 {
        let _pass = self.evict_lock.lock();
        self.evict_to(target)
    }

    /// Bytes held (accounted against the cap).
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

/// Modification time of a file in unix seconds (0 if unknown).
fn mtime_secs(path: &Path) -> u64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// The layout a block store root was written with (its `LAYOUT` stamp), None if it has none.
fn stamped_layout(blocks: &Path) -> Option<Layout> {
    let stamp = std::fs::read_to_string(blocks.join("LAYOUT")).ok()?;
    let block_size = stamp
        .lines()
        .find_map(|l| l.strip_prefix("block_size "))?
        .trim()
        .parse()
        .ok()?;
    let layout = Layout::new(block_size).ok()?;
    let bpr = stamp
        .lines()
        .find_map(|l| l.strip_prefix("blocks_per_region "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    (bpr == Some(layout.blocks_per_region())).then_some(layout)
}

/// The block size the cache root `root` was written with, if it has a valid stamp: a
/// `BlockCache` opened with another one would discard every block.
pub fn stamped_block_size(root: &Path) -> Option<u64> {
    stamped_layout(&root.join(BLOCKS_DIR)).map(|l| l.block_size())
}

/// The blobs of the cache root `root` (the directory holding `blocks/`), read from their
/// sidecars without changing anything: safe while a daemon owns the root (a blob it is
/// writing may show a block more or less). Damaged sidecars are skipped. Nothing is pinned
/// from here's point of view (`pinned` is false).
pub fn scan_root(root: &Path) -> io::Result<Vec<CachedBlob>> {
    let blocks = root.join(BLOCKS_DIR);
    let Some(layout) = stamped_layout(&blocks) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&blocks)? {
        let dir = dir?;
        if !dir.file_type()?.is_dir() {
            continue;
        }
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name();
            let Some((key, FileRole::Meta)) = name.to_str().and_then(sidecar::parse_file_name)
            else {
                continue;
            };
            let Ok(file) = File::open(f.path()) else {
                continue;
            };
            let Ok(Some(side)) = sidecar::read(&file, &layout, &key) else {
                continue;
            };
            let present: Vec<u64> = side
                .records
                .iter()
                .flatten()
                .map(|r| u64::from(r.len))
                .collect();
            if present.is_empty() {
                continue;
            }
            out.push(CachedBlob {
                key,
                size: side.blob_size,
                cached_bytes: present.iter().map(|&l| alloc(l)).sum::<u64>()
                    + alloc(sidecar::len(&layout, side.blob_size)),
                complete: present.len() == side.records.len(),
                last_used: side
                    .stamps
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(0)
                    .max(mtime_secs(&f.path().with_extension("data"))),
                pinned: false,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheConfig;

    #[test]
    fn lists_removes_and_evicts_but_never_a_pinned_blob() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = CacheConfig {
            block_size: 4096,
            ..CacheConfig::new(dir.path())
        };
        let cache = BlockCache::open(cfg).unwrap();
        let (a, b) = (BlobKey::Sha256([1; 32]), BlobKey::Sha256([2; 32]));
        let data = vec![7u8; 8192];
        for k in [&a, &b] {
            for i in 0..2 {
                cache.write_block(k, 8192, i, &data[..4096]).unwrap();
            }
        }
        let mut listed = cache.blobs();
        listed.sort_by_key(|c| c.key);
        assert_eq!(listed.len(), 2);
        assert!(listed
            .iter()
            .all(|c| c.complete && c.size == 8192 && c.last_used > 0));
        let scanned = scan_root(dir.path()).unwrap();
        assert_eq!(scanned.len(), 2);
        assert_eq!(
            scanned.iter().map(|c| c.cached_bytes).sum::<u64>(),
            cache.used_bytes()
        );

        // Pinned through a verified, complete handle: removal refuses, eviction skips it.
        let digest = {
            use sha2::Digest as _;
            let mut h = sha2::Sha256::new();
            h.update(&data);
            h.finalize()
        };
        let real = BlobKey::Sha256(digest.into());
        cache.write_block(&real, 8192, 0, &data[..4096]).unwrap();
        cache.write_block(&real, 8192, 1, &data[4096..]).unwrap();
        assert!(cache.verify_sha256(&real, 8192).unwrap());
        let pin = cache.open_complete(&real, 8192).unwrap().unwrap();
        assert_eq!(cache.remove_unless_pinned(&real), Removal::Pinned);
        let freed = cache.evict_down_to(0);
        assert!(freed > 0);
        assert!(cache.holds(&real) && !cache.holds(&a) && !cache.holds(&b));
        assert_eq!(cache.remove_unless_pinned(&a), Removal::Absent);
        drop(pin);
        assert!(matches!(cache.remove_unless_pinned(&real), Removal::Removed(n) if n > 0));
        assert_eq!(cache.used_bytes(), 0);
        assert!(scan_root(dir.path()).unwrap().is_empty());
    }
}
