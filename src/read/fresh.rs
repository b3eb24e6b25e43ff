//! Blocks fetched ahead of their reader, kept in memory until the reader asks for them.
//!
//! Read-ahead fetches blocks before anyone reads them. Without this store such a block was
//! written to the cache file and, moments later, read back with a `pread` and a crc check: one
//! more copy and one more checksum pass per byte, and the cache file's pages filled in the
//! page cache to serve a read that the kernel then caches a second time. Here the fetch leaves
//! the block's buffer (shared, no copy), and the first read of it takes it out.
//!
//! Bounded: at most `max_bytes` for the whole mount (the buffers are counted once, however many
//! other holders share them). A block that does not fit is not kept (the cache file serves it,
//! as before); the blocks kept are thus the ones nearest their readers, which is what a
//! sequential reader asks for next. A block nobody takes (a reader that stopped early) leaves
//! after `MAX_AGE`, so an abandoned read-ahead cannot hold the budget.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::cache::BlobKey;

/// A block not taken within this time is dropped: sequential readers reach their read-ahead in
/// well under a second; older blocks belong to readers that went elsewhere.
const MAX_AGE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Inner {
    blocks: HashMap<(BlobKey, u64), (Bytes, u32)>,
    /// Insertion order, for dropping old blocks (entries already taken are skipped).
    order: VecDeque<(Instant, BlobKey, u64)>,
    bytes: u64,
}

pub(super) struct Fresh {
    inner: Mutex<Inner>,
    max_bytes: u64,
}

impl Fresh {
    pub(super) fn new(max_bytes: u64) -> Fresh {
        Fresh {
            inner: Mutex::default(),
            max_bytes,
        }
    }

    /// Keeps a block just fetched (with its crc32c) for its first reader, if the budget allows.
    pub(super) fn put(&self, key: &BlobKey, idx: u64, block: &Bytes, crc: u32) {
        if self.max_bytes == 0 {
            return;
        }
        let now = Instant::now();
        let mut inner = self.inner.lock();
        inner.expire(now);
        let len = block.len() as u64;
        if inner.bytes + len > self.max_bytes || inner.blocks.contains_key(&(*key, idx)) {
            return;
        }
        inner.blocks.insert((*key, idx), (block.clone(), crc));
        inner.order.push_back((now, *key, idx));
        inner.bytes += len;
    }

    /// Takes a kept block out (its one reader is here: the kernel caches what it is given).
    pub(super) fn take(&self, key: &BlobKey, idx: u64) -> Option<Bytes> {
        let mut inner = self.inner.lock();
        let (b, _) = inner.blocks.remove(&(*key, idx))?;
        inner.bytes -= b.len() as u64;
        if inner.blocks.is_empty() {
            inner.order.clear();
        }
        Some(b)
    }

    /// A kept block and its crc32c, left in place (for the in-order hash, which must not take
    /// it from its reader).
    pub(super) fn peek(&self, key: &BlobKey, idx: u64) -> Option<(Bytes, u32)> {
        self.inner.lock().blocks.get(&(*key, idx)).cloned()
    }

    /// Forgets every kept block of a blob (its cached bytes were dropped).
    pub(super) fn forget_blob(&self, key: &BlobKey) {
        let mut inner = self.inner.lock();
        let before = inner.blocks.len();
        inner.blocks.retain(|(k, _), _| k != key);
        if inner.blocks.len() != before {
            inner.bytes = inner.blocks.values().map(|(b, _)| b.len() as u64).sum();
        }
    }

    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.inner.lock().bytes
    }
}

impl Inner {
    /// Drops blocks older than `MAX_AGE`, and the order entries of blocks already taken.
    fn expire(&mut self, now: Instant) {
        while let Some(&(at, key, idx)) = self.order.front() {
            let stale = now.duration_since(at) >= MAX_AGE;
            if !stale && self.blocks.contains_key(&(key, idx)) {
                break;
            }
            self.order.pop_front();
            if stale {
                if let Some((b, _)) = self.blocks.remove(&(key, idx)) {
                    self.bytes -= b.len() as u64;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> BlobKey {
        BlobKey::Sha256([n; 32])
    }

    #[test]
    fn keeps_within_budget_and_gives_each_block_once() {
        let f = Fresh::new(3 * 4);
        for i in 0..5 {
            f.put(&key(1), i, &Bytes::from(vec![i as u8; 4]), 0);
        }
        assert_eq!(f.bytes(), 12, "only three 4-byte blocks fit");
        assert_eq!(f.take(&key(1), 0).as_deref(), Some(&[0u8; 4][..]));
        assert!(f.take(&key(1), 0).is_none(), "taken once");
        assert!(f.take(&key(1), 4).is_none(), "did not fit");
        f.put(&key(1), 4, &Bytes::from(vec![4u8; 4]), 7);
        assert_eq!(f.peek(&key(1), 4).map(|(_, crc)| crc), Some(7));
        assert!(f.take(&key(1), 4).is_some(), "room again after a take");
        f.forget_blob(&key(1));
        assert_eq!(f.bytes(), 0);
        assert!(f.take(&key(1), 1).is_none());
    }

    #[test]
    fn zero_budget_keeps_nothing() {
        let f = Fresh::new(0);
        f.put(&key(2), 0, &Bytes::from_static(b"abcd"), 0);
        assert!(f.take(&key(2), 0).is_none());
    }
}
