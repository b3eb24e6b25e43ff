//! Recovering the index from disk at open: the `LAYOUT` stamp of the block store, and a scan of
//! every blob's sidecar.
//!
//! Only sidecars are read (8 bytes per block), never block data: checksums are verified lazily
//! on each read. The scan also repairs what a crash or a damaged disk can leave behind: files
//! that are not ours, data files without a sidecar (and the reverse), records that point past
//! the end of a cut data file or carry an impossible length, space allocated to blocks that have
//! no record (a crash between data and record), and blobs left without any block.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::thread;

use super::block_cache::{now_secs, BlockCache};
use super::index::{BlobEntry, Region};
use super::key::BlobKey;
use super::layout::{alloc, Layout};
use super::remove::punch_hole;
use super::sidecar::{self, BlobPaths, Ctime, FileRole};

const LAYOUT_FILE: &str = "LAYOUT";

/// One region of a blob found on disk.
pub(super) struct LoadedRegion {
    region: u64,
    present: u64,
    crcs: Box<[u32]>,
    bytes: u64,
    stamp: u64,
}

/// A valid blob found on disk.
pub(super) struct Loaded {
    key: BlobKey,
    blob_size: u64,
    meta_bytes: u64,
    verified: Option<Ctime>,
    regions: Vec<LoadedRegion>,
}

/// Version 2 is the one-data-file-per-blob layout; a cache written by version 1 (segment files
/// with headers) is discarded when opened, like one of another block size.
fn layout_stamp(layout: &Layout) -> String {
    format!(
        "hubfs block store 2\nblock_size {}\nblocks_per_region {}\n",
        layout.block_size(),
        layout.blocks_per_region()
    )
}

fn is_fanout_dir(name: &str) -> bool {
    name.len() == 2
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Creates the block store root; if it was written with another layout (block size, or an
/// older format), its blocks are useless and are deleted.
pub(super) fn prepare_root(root: &Path, layout: &Layout) -> io::Result<()> {
    crate::private::create_dir_all(root)?;
    let stamp_path = root.join(LAYOUT_FILE);
    let want = layout_stamp(layout);
    match fs::read_to_string(&stamp_path) {
        Ok(have) if have == want => return Ok(()),
        Ok(_) => {
            tracing::info!(root = %root.display(), "cache layout or block size changed; discarding cached blocks")
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(is_fanout_dir) {
            fs::remove_dir_all(entry.path())?;
        }
    }
    let tmp = root.join(format!(".{LAYOUT_FILE}.tmp"));
    crate::private::write(&tmp, want.as_bytes())?;
    fs::rename(&tmp, &stamp_path)
}

/// Reads every sidecar under `root`, fan-out directories spread over a few threads (the scan is
/// dominated by per-file syscalls).
pub(super) fn scan(root: &Path, layout: &Layout) -> io::Result<Vec<Loaded>> {
    let mut dirs = Vec::new();
    for dir in fs::read_dir(root)? {
        let dir = dir?;
        let name = dir.file_name().to_str().map(str::to_owned);
        if let Some(name) = name.filter(|n| is_fanout_dir(n)) {
            if dir.file_type()?.is_dir() {
                dirs.push((name, dir.path()));
            }
        }
    }
    let threads = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let chunk = dirs.len().div_ceil(threads).max(1);
    thread::scope(|scope| {
        let workers: Vec<_> = dirs
            .chunks(chunk)
            .map(|part| scope.spawn(move || scan_dirs(root, part, layout)))
            .collect();
        let mut found = Vec::new();
        for w in workers {
            found.extend(
                w.join()
                    .map_err(|_| io::Error::other("cache scan thread panicked"))??,
            );
        }
        Ok(found)
    })
}

fn scan_dirs(root: &Path, dirs: &[(String, PathBuf)], layout: &Layout) -> io::Result<Vec<Loaded>> {
    let mut found = Vec::new();
    for (dir_name, dir) in dirs {
        // Which of its two files each blob has here.
        let mut blobs: HashMap<BlobKey, (bool, bool)> = HashMap::new();
        for file in fs::read_dir(dir)? {
            let file = file?;
            let parsed = file
                .file_name()
                .to_str()
                .and_then(sidecar::parse_file_name)
                .filter(|(key, _)| key.to_string().starts_with(dir_name.as_str()));
            match parsed {
                Some((key, FileRole::Data)) => blobs.entry(key).or_default().0 = true,
                Some((key, FileRole::Meta)) => blobs.entry(key).or_default().1 = true,
                None => remove_quietly(&file.path()),
            }
        }
        for (key, (has_data, has_meta)) in blobs {
            let paths = BlobPaths::new(root, &key);
            let loaded = if has_data && has_meta {
                load_blob(&paths, layout, key).unwrap_or_else(|e| {
                    tracing::warn!(path = %paths.meta.display(), "unreadable cache entry: {e}");
                    None
                })
            } else {
                None
            };
            match loaded {
                Some(l) => found.push(l),
                None => {
                    remove_quietly(&paths.data);
                    remove_quietly(&paths.meta);
                }
            }
        }
    }
    Ok(found)
}

fn remove_quietly(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => tracing::debug!(path = %path.display(), "removed invalid cache file"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), "could not remove invalid cache file: {e}")
        }
    }
}

fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// Validates one blob's files, repairing what can be; None if they should be deleted.
fn load_blob(paths: &BlobPaths, layout: &Layout, key: BlobKey) -> io::Result<Option<Loaded>> {
    let meta = open_rw(&paths.meta)?;
    let data = open_rw(&paths.data)?;
    if !meta.metadata()?.is_file() || !data.metadata()?.is_file() {
        return Ok(None);
    }
    let Some(side) = sidecar::read(&meta, layout, &key)? else {
        return Ok(None);
    };
    let blob_size = side.blob_size;
    let data_len = data.metadata()?.len();
    let mut regions: HashMap<u64, LoadedRegion> = HashMap::new();
    let mut absent = Vec::new();
    for (idx, record) in side.records.iter().enumerate() {
        let idx = idx as u64;
        let expected = layout.block_len(blob_size, idx);
        let valid = record.filter(|r| {
            let len = u64::from(r.len);
            expected == Some(len) && layout.block_offset(idx) + len <= data_len
        });
        let Some(r) = valid else {
            if record.is_some() {
                // Truncated data file or damaged record: the block is gone.
                sidecar::write_record(&meta, layout, blob_size, idx, None)?;
            }
            absent.push(idx);
            continue;
        };
        let (region, slot) = layout.locate(idx);
        let entry = regions.entry(region).or_insert_with(|| LoadedRegion {
            region,
            present: 0,
            crcs: vec![0; layout.blocks_per_region() as usize].into_boxed_slice(),
            bytes: 0,
            stamp: side.stamps.get(region as usize).copied().unwrap_or(0),
        });
        entry.present |= 1 << slot;
        entry.crcs[slot as usize] = r.crc;
        entry.bytes += alloc(u64::from(r.len));
    }
    if regions.is_empty() {
        return Ok(None);
    }
    if data_len != blob_size {
        // Cut short (or grown) behind our back: back to the blob's length, so it stays a valid
        // backing file; cut blocks were cleared above.
        data.set_len(blob_size)?;
    }
    if data.metadata()?.blocks() > 0 {
        // Space held by blocks without a record (a crash between data and record) is freed.
        // Not only when more is allocated than the records declare: a record whose data was
        // lost (power loss) can hide a block whose record was lost. One fallocate per run of
        // absent blocks, only for partial blobs.
        for run in runs(&absent) {
            let start = layout.block_offset(run.start);
            let end = layout.block_offset(run.end).min(blob_size);
            punch_hole(&data, start, end - start)?;
        }
    }
    let complete = absent.is_empty();
    let verified = side.verified.filter(|_| complete);
    if side.verified.is_some() && verified.is_none() {
        sidecar::write_verified(&meta, None)?;
    }
    Ok(Some(Loaded {
        key,
        blob_size,
        meta_bytes: alloc(sidecar::len(layout, blob_size)),
        verified,
        regions: regions.into_values().collect(),
    }))
}

/// Maximal runs of consecutive block indexes in a sorted list.
fn runs(sorted: &[u64]) -> Vec<std::ops::Range<u64>> {
    let mut out: Vec<std::ops::Range<u64>> = Vec::new();
    for &i in sorted {
        match out.last_mut() {
            Some(r) if r.end == i => r.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

impl BlockCache {
    /// Inserts scanned blobs; regions get LRU clock values in the order of their last-use
    /// stamps, so eviction order approximates the order of last use before the restart.
    pub(super) fn load(&self, found: Vec<Loaded>) {
        let mut order: Vec<(u64, usize, u64)> = found
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.regions.iter().map(move |r| (r.stamp, i, r.region)))
            .collect();
        order.sort_unstable();
        let mut ticks: HashMap<(usize, u64), u64> = HashMap::with_capacity(order.len());
        for (_, i, region) in order {
            ticks.insert((i, region), self.tick());
        }
        let now = now_secs();
        for (i, l) in found.into_iter().enumerate() {
            let mut shard = self.index.lock(&l.key);
            let incarnation = self.incarnations.fetch_add(1, Ordering::Relaxed);
            let mut blob = BlobEntry::new(l.blob_size, incarnation, l.meta_bytes);
            blob.verified = l.verified;
            for r in l.regions {
                let mut region = Region::new(
                    self.layout.blocks_per_region(),
                    ticks.get(&(i, r.region)).copied().unwrap_or(0),
                    r.stamp.min(now),
                );
                region.present = r.present;
                region.crcs = r.crcs;
                region.bytes = r.bytes;
                blob.present_blocks += u64::from(r.present.count_ones());
                blob.regions.insert(r.region, region);
            }
            self.used.fetch_add(blob.bytes(), Ordering::AcqRel);
            shard.blobs.insert(l.key, blob);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn runs_of_consecutive_blocks() {
        assert_eq!(runs(&[]), vec![]);
        assert_eq!(runs(&[3]), vec![3..4]);
        assert_eq!(runs(&[0, 1, 2, 5, 7, 8]), vec![0..3, 5..6, 7..9]);
    }
}
