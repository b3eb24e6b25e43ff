//! Tunables of the block cache and their defaults, each with the reason for its value.

use std::io;
use std::path::PathBuf;

use super::layout::Layout;

/// 128 KiB blocks: a random 4 KiB read (an mmap page fault) fetches at most one small block,
/// while sequential reads still use large HTTP ranges (the read path fetches many blocks per
/// request), so a bigger block would only add read amplification to random access.
pub const DEFAULT_BLOCK_SIZE: u64 = 128 * 1024;

/// 10 GiB: holds a few typical model checkpoints without surprising users on a laptop disk;
/// `--cache-size` overrides it.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// Where the cache lives and how large it may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// The cache root: blocks go to `dir/blocks`, a [`super::MetaStore`] opened on the same root
    /// uses `dir/meta`. Use the effective directory returned by [`super::lock_cache_dir`].
    pub dir: PathBuf,
    /// Upper bound of the bytes the block store keeps on disk (sidecars included), pinned blobs
    /// included.
    pub max_bytes: u64,
    /// Block size in bytes: a multiple of 4 KiB between 4 KiB and 16 MiB. Changing it on an
    /// existing cache discards the cached blocks (their offsets depend on it).
    pub block_size: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            dir: default_cache_dir(),
            max_bytes: DEFAULT_MAX_BYTES,
            block_size: DEFAULT_BLOCK_SIZE,
        }
    }
}

impl CacheConfig {
    /// Default sizes with the given cache root.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CacheConfig {
            dir: dir.into(),
            ..Default::default()
        }
    }

    pub(crate) fn layout(&self) -> io::Result<Layout> {
        Layout::new(self.block_size)
    }
}

/// `$XDG_CACHE_HOME/hubfs`, else `$HOME/.cache/hubfs`, else `<tmp>/hubfs-cache` (the XDG base
/// directory rule, which is what users expect of a cache on Linux).
pub fn default_cache_dir() -> PathBuf {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(xdg) = non_empty("XDG_CACHE_HOME") {
        return PathBuf::from(xdg).join("hubfs");
    }
    if let Some(home) = non_empty("HOME") {
        return PathBuf::from(home).join(".cache").join("hubfs");
    }
    std::env::temp_dir().join("hubfs-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = CacheConfig::new("/x");
        assert_eq!(c.block_size, 128 * 1024);
        assert_eq!(c.max_bytes, 10 << 30);
        assert_eq!(c.dir, PathBuf::from("/x"));
        assert_eq!(c.layout().unwrap().blocks_per_region(), 32);
    }

    #[test]
    fn rejects_odd_block_sizes() {
        for bs in [0, 1000, 4097, 32 << 20] {
            let c = CacheConfig {
                block_size: bs,
                ..CacheConfig::new("/x")
            };
            assert!(c.layout().is_err(), "{bs}");
        }
    }
}
