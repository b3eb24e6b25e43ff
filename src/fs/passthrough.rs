//! FUSE passthrough as the core sees it: whether the kernel connection can read cache files
//! directly, and the counters `hubfs status` shows.
//!
//! Passthrough: for a read-only file whose content is complete and verified in the block cache,
//! `open` hands the adapter the cache's data file (a [`crate::cache::CompleteBlob`], which pins
//! it), and the adapter registers it with the kernel as the open file's backing file. The kernel
//! then serves read, mmap and the page cache from that file without asking hubfs: native local
//! speed, and no integrity check per read (the content was checked once, when it completed).
//! The adapter (`src/fuse/backing.rs`) owns the kernel side: backing ids per inode, and the rule
//! that an inode's opens are either all passthrough or all served by hubfs.
//!
//! An inode hubfs has served stays served while the kernel holds it, even once its file is
//! complete: the kernel's page cache of that inode has the bytes hubfs answered, and the cache
//! file (written with O_DIRECT, so it does not fill a second copy) has none, so passing through
//! would read the whole file from disk again. When the kernel forgets the inode (its pages go
//! with it: memory pressure, `drop_caches`, an unmount), the next open passes through.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Availability and counters, shared by the core and the FUSE adapter.
#[derive(Debug, Default)]
pub struct Passthrough {
    available: AtomicBool,
    /// Opens answered with a backing file (monotonic).
    opens: AtomicU64,
    /// Inodes currently in passthrough mode (a gauge).
    inodes: AtomicU64,
    /// Opens of a complete, verified file that were served by hubfs anyway: the inode was
    /// already open in served mode, or the kernel refused the backing file.
    served_fallbacks: AtomicU64,
    /// Opens of a complete, verified file kept served because hubfs served the inode before:
    /// the kernel's page cache holds it, the cache file's pages are cold.
    kept_served: AtomicU64,
}

impl Passthrough {
    /// Whether open should look for a backing file (the kernel accepted passthrough at INIT and
    /// has not refused a backing file since).
    pub fn available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    /// Set by the adapter once the kernel agreed to passthrough at INIT.
    pub fn enable(&self) {
        self.available.store(true, Ordering::Relaxed);
    }

    /// The kernel refused a backing file: every later open is served by hubfs. Logged once.
    pub fn disable(&self, why: &std::io::Error) {
        if self.available.swap(false, Ordering::Relaxed) {
            tracing::warn!("FUSE passthrough refused by the kernel ({why}); cached files are served by hubfs from now on");
        }
    }

    pub fn count_open(&self) {
        self.opens.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_fallback(&self) {
        self.served_fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_kept_served(&self) {
        self.kept_served.fetch_add(1, Ordering::Relaxed);
    }

    pub fn inode_entered(&self) {
        self.inodes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn inode_left(&self) {
        self.inodes.fetch_sub(1, Ordering::Relaxed);
    }

    /// For `hubfs status`.
    pub fn status(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "available": self.available(),
            "opens": get(&self.opens),
            "inodes": get(&self.inodes),
            "served_fallbacks": get(&self.served_fallbacks),
            "kept_served": get(&self.kept_served),
        })
    }
}
