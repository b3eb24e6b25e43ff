//! Helpers shared by the `cache_*` integration tests: deterministic blob contents, their keys,
//! and the paths and byte offsets of a blob's data file and sidecar (from the layout documented
//! in `hubfs::cache`).
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use hubfs::cache::{BlobKey, BlockCache, CacheConfig};
use sha2::Digest;

pub const BS: u64 = 4096;

/// Deterministic pseudo-random bytes for (seed, length).
pub fn content(seed: u64, len: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The sha256 key of `data`.
pub fn sha256_key(data: &[u8]) -> BlobKey {
    BlobKey::Sha256(sha2::Sha256::digest(data).into())
}

/// The git blob sha1 key of `data`.
pub fn git_key(data: &[u8]) -> BlobKey {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    BlobKey::GitSha1(h.finalize().into())
}

pub fn config(dir: &Path, max_bytes: u64) -> CacheConfig {
    CacheConfig {
        dir: dir.to_path_buf(),
        max_bytes,
        block_size: BS,
    }
}

pub fn open(dir: &Path, max_bytes: u64) -> BlockCache {
    BlockCache::open(config(dir, max_bytes)).unwrap()
}

/// Writes every block of `data` as blob `key`.
pub fn write_all(cache: &BlockCache, key: &BlobKey, data: &[u8]) {
    let bs = cache.block_size() as usize;
    for (idx, chunk) in data.chunks(bs).enumerate() {
        cache
            .write_block(key, data.len() as u64, idx as u64, chunk)
            .unwrap();
    }
}

/// Reads every block back; None if any is missing.
pub fn read_all(cache: &BlockCache, key: &BlobKey, size: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for idx in 0..size.div_ceil(cache.block_size()) {
        out.extend_from_slice(&cache.read_block(key, size, idx).unwrap()?);
    }
    Some(out)
}

fn blob_path(dir: &Path, key: &BlobKey, ext: &str) -> PathBuf {
    let hex = key.to_string();
    dir.join("blocks")
        .join(&hex[..2])
        .join(format!("{}-{hex}.{ext}", key.kind_name()))
}

/// Path of the data file of `key` under cache root `dir` (the content at natural offsets).
pub fn data_path(dir: &Path, key: &BlobKey) -> PathBuf {
    blob_path(dir, key, "data")
}

/// Path of the sidecar of `key` under cache root `dir`.
pub fn meta_path(dir: &Path, key: &BlobKey) -> PathBuf {
    blob_path(dir, key, "meta")
}

/// Blocks per region with `BS` blocks (regions aim at 4 MiB, at most 64 blocks).
pub const BLOCKS_PER_REGION: u64 = 64;

/// Offset in the sidecar of the last-use stamp of `region`.
pub fn stamp_offset(region: u64) -> u64 {
    128 + 8 * region
}

/// Offset in the sidecar of the record (crc32c, length) of block `idx` of a `size`-byte blob.
pub fn record_offset(size: u64, idx: u64) -> u64 {
    let nregions = size.div_ceil(BS).div_ceil(BLOCKS_PER_REGION);
    128 + 8 * nregions + 8 * idx
}

/// Disk bytes accounted for `len` bytes (whole 4 KiB allocation units).
pub fn alloc(len: u64) -> u64 {
    len.div_ceil(4096) * 4096
}

/// Bytes accounted for a blob with `full` full blocks and a tail block of `tail` bytes (0 =
/// none) present: its sidecar (one allocation unit for every blob in these tests) plus the
/// allocated data.
pub fn blob_cost(full: u64, tail: u64) -> u64 {
    4096 + full * BS + alloc(tail)
}

/// Bytes the cache's files (data files and sidecars) occupy on disk: what `used_bytes` accounts.
pub fn allocated_on_disk(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for d in std::fs::read_dir(dir.join("blocks")).unwrap() {
        let d = d.unwrap();
        if d.file_type().unwrap().is_dir() {
            for f in std::fs::read_dir(d.path()).unwrap() {
                total += f.unwrap().metadata().unwrap().blocks() * 512;
            }
        }
    }
    total
}
