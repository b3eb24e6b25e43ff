//! The read-ahead memory budget: blocks fetched ahead of their reader, in flight or waiting in
//! memory, until the reader asks for them.
//!
//! Read-ahead fetches blocks before anyone reads them. Such a block waits here, in the buffer it
//! arrived in (shared, no copy), and the first read of it takes it out: no cache-file read-back,
//! no second crc pass, no page-cache copy of the cache file.
//!
//! One budget (`max_bytes`, whole mount) covers every byte read ahead and not yet served: a
//! read-ahead request *reserves* its bytes before it is issued (`reserve`), its blocks are
//! *pending* while they are fetched, *kept* once they arrive, and the budget is released when
//! the reader takes them (or a reader waiting for the block got it straight from the fetch).
//! A request that does not fit is not issued (backpressure): the reader's window waits until
//! its own consumption frees room, so a sequential reader's prefetched blocks are always served
//! from memory, however many readers there are. Before, the window fetched freely and what did
//! not fit in the store was written to the cache file and read back from disk moments later.
//!
//! Fair share: each reader (`owner`, one per open stream) may hold at most the budget divided
//! among the readers active now, so four `cat`s get a quarter each rather than the first
//! window taking it all; a lone reader may use the whole budget. A block nobody takes (a reader
//! that stopped early) leaves after `MAX_AGE`, so an abandoned read-ahead cannot hold the
//! budget.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::cache::BlobKey;

/// A block not taken within this time is dropped: sequential readers reach their read-ahead in
/// well under a second; older blocks belong to readers that went elsewhere.
const MAX_AGE: Duration = Duration::from_secs(5);
/// A reader holding nothing counts as active (for the fair share) this long after its last
/// reservation: a reader that just consumed all it had is about to ask again.
const ACTIVE_FOR: Duration = Duration::from_secs(1);

/// Who reserved a block: one open file's read stream.
pub(super) type Owner = u64;

struct Kept {
    block: Bytes,
    crc: u32,
    owner: Owner,
}

#[derive(Default)]
struct Inner {
    blocks: HashMap<(BlobKey, u64), Kept>,
    /// Read-ahead blocks being fetched: reserved bytes and their owner.
    pending: HashMap<(BlobKey, u64), (u64, Owner)>,
    /// Insertion order of `blocks`, for dropping old ones (entries already taken are skipped).
    order: VecDeque<(Instant, BlobKey, u64)>,
    /// Bytes charged to each reader, and when it last reserved.
    owners: HashMap<Owner, (u64, Instant)>,
    /// Kept bytes plus pending reservations.
    bytes: u64,
}

pub(super) struct Fresh {
    inner: Mutex<Inner>,
    max_bytes: u64,
}

/// Counters of the budget (`hubfs status` `read`).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Usage {
    pub bytes: u64,
    pub readers: u64,
}

impl Fresh {
    pub(super) fn new(max_bytes: u64) -> Fresh {
        Fresh {
            inner: Mutex::default(),
            max_bytes,
        }
    }

    /// Reserves `bytes` of read-ahead for `owner`; false (nothing reserved) if they do not fit
    /// in the budget or in the owner's fair share. An idle budget always admits one request,
    /// so a budget smaller than a request still lets read-ahead run.
    pub(super) fn reserve(&self, owner: Owner, bytes: u64) -> bool {
        if self.max_bytes == 0 {
            return false;
        }
        let now = Instant::now();
        let mut inner = self.inner.lock();
        inner.expire(now);
        inner.owners.retain(|o, (held, at)| {
            *o == owner || *held > 0 || now.duration_since(*at) < ACTIVE_FOR
        });
        let active = inner.owners.len() as u64 + u64::from(!inner.owners.contains_key(&owner));
        let share = self.max_bytes / active.max(1);
        let held = inner.owners.get(&owner).map_or(0, |(h, _)| *h);
        let fits = inner.bytes + bytes <= self.max_bytes && held + bytes <= share.max(bytes);
        if !(fits || inner.bytes == 0) {
            // Still active: its next read asks again.
            inner.owners.entry(owner).or_insert((0, now)).1 = now;
            return false;
        }
        inner.bytes += bytes;
        let e = inner.owners.entry(owner).or_insert((0, now));
        e.0 += bytes;
        e.1 = now;
        true
    }

    /// Gives back reserved bytes no block was claimed for (cached or already in flight).
    pub(super) fn unreserve(&self, owner: Owner, bytes: u64) {
        let mut inner = self.inner.lock();
        inner.charge(owner, bytes);
    }

    /// Marks a block as pending: `bytes` of `owner`'s reservation are for it.
    pub(super) fn pend(&self, owner: Owner, key: &BlobKey, idx: u64, bytes: u64) {
        let mut inner = self.inner.lock();
        if let Some((old, old_owner)) = inner.pending.insert((*key, idx), (bytes, owner)) {
            inner.charge(old_owner, old);
        }
    }

    /// A pending block's fetch ended without keeping it (a reader waited for it and got it
    /// from the fetch, or the fetch failed): its reservation goes back.
    pub(super) fn settle(&self, key: &BlobKey, idx: u64) {
        let mut inner = self.inner.lock();
        if let Some((bytes, owner)) = inner.pending.remove(&(*key, idx)) {
            inner.charge(owner, bytes);
        }
    }

    /// Keeps a block just fetched (with its crc32c) for its first reader: always if it was
    /// reserved (pending), else only if it fits.
    pub(super) fn put(&self, key: &BlobKey, idx: u64, block: &Bytes, crc: u32) {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        inner.expire(now);
        let len = block.len() as u64;
        let owner = match inner.pending.remove(&(*key, idx)) {
            Some((reserved, owner)) => {
                // The reservation becomes the kept block's (the last block may be shorter).
                inner.charge(owner, reserved);
                owner
            }
            None if self.max_bytes == 0 || inner.bytes + len > self.max_bytes => return,
            None => Owner::MAX,
        };
        if inner.blocks.contains_key(&(*key, idx)) {
            return;
        }
        inner.bytes += len;
        if owner != Owner::MAX {
            inner.owners.entry(owner).or_insert((0, now)).0 += len;
        }
        inner.blocks.insert(
            (*key, idx),
            Kept {
                block: block.clone(),
                crc,
                owner,
            },
        );
        inner.order.push_back((now, *key, idx));
    }

    /// Takes a kept block out (its one reader is here: the kernel caches what it is given).
    pub(super) fn take(&self, key: &BlobKey, idx: u64) -> Option<(Bytes, u32)> {
        let mut inner = self.inner.lock();
        let kept = inner.blocks.remove(&(*key, idx))?;
        inner.release(&kept);
        if inner.blocks.is_empty() {
            inner.order.clear();
        }
        Some((kept.block, kept.crc))
    }

    /// Whether block `idx` of `key` is held here.
    pub(super) fn holds(&self, key: &BlobKey, idx: u64) -> bool {
        self.inner.lock().blocks.contains_key(&(*key, idx))
    }

    /// A kept block and its crc32c, left in place (for the in-order hash, which must not take
    /// it from its reader).
    pub(super) fn peek(&self, key: &BlobKey, idx: u64) -> Option<(Bytes, u32)> {
        self.inner
            .lock()
            .blocks
            .get(&(*key, idx))
            .map(|k| (k.block.clone(), k.crc))
    }

    /// Forgets every kept block of a blob (its cached bytes were dropped).
    pub(super) fn forget_blob(&self, key: &BlobKey) {
        let mut inner = self.inner.lock();
        let gone: Vec<(BlobKey, u64)> = inner
            .blocks
            .keys()
            .filter(|(k, _)| k == key)
            .copied()
            .collect();
        for k in gone {
            if let Some(kept) = inner.blocks.remove(&k) {
                inner.release(&kept);
            }
        }
    }

    /// Bytes held now (kept and pending) and the readers holding them.
    pub(super) fn usage(&self) -> Usage {
        let inner = self.inner.lock();
        Usage {
            bytes: inner.bytes,
            readers: inner.owners.values().filter(|(h, _)| *h > 0).count() as u64,
        }
    }

    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.inner.lock().bytes
    }
}

impl Inner {
    /// Gives `bytes` back from the budget and from `owner`'s share.
    fn charge(&mut self, owner: Owner, bytes: u64) {
        self.bytes = self.bytes.saturating_sub(bytes);
        if let Some((held, _)) = self.owners.get_mut(&owner) {
            *held = held.saturating_sub(bytes);
        }
    }

    fn release(&mut self, kept: &Kept) {
        self.charge(kept.owner, kept.block.len() as u64);
    }

    /// Drops blocks older than `MAX_AGE`, and the order entries of blocks already taken.
    fn expire(&mut self, now: Instant) {
        while let Some(&(at, key, idx)) = self.order.front() {
            let stale = now.duration_since(at) >= MAX_AGE;
            if !stale && self.blocks.contains_key(&(key, idx)) {
                break;
            }
            self.order.pop_front();
            if stale {
                if let Some(kept) = self.blocks.remove(&(key, idx)) {
                    self.release(&kept);
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

    fn block(n: u8) -> Bytes {
        Bytes::from(vec![n; 4])
    }

    #[test]
    fn unreserved_blocks_are_kept_within_budget_and_given_once() {
        let f = Fresh::new(3 * 4);
        for i in 0..5 {
            f.put(&key(1), i, &block(i as u8), 0);
        }
        assert_eq!(f.bytes(), 12, "only three 4-byte blocks fit");
        assert_eq!(
            f.take(&key(1), 0).map(|(b, _)| b).as_deref(),
            Some(&[0u8; 4][..])
        );
        assert!(f.take(&key(1), 0).is_none(), "taken once");
        assert!(f.take(&key(1), 4).is_none(), "did not fit");
        f.put(&key(1), 4, &block(4), 7);
        assert_eq!(f.peek(&key(1), 4).map(|(_, crc)| crc), Some(7));
        assert!(f.take(&key(1), 4).is_some(), "room again after a take");
        f.forget_blob(&key(1));
        assert_eq!(f.bytes(), 0);
        assert!(f.take(&key(1), 1).is_none());
    }

    #[test]
    fn a_reserved_block_is_always_kept_and_its_take_frees_the_budget() {
        let f = Fresh::new(8);
        assert!(f.reserve(1, 8));
        assert!(!f.reserve(1, 4), "the budget is full");
        f.pend(1, &key(1), 0, 4);
        f.pend(1, &key(1), 1, 4);
        // Unreserved blocks find no room: the reservations hold it.
        f.put(&key(2), 0, &block(9), 0);
        assert!(f.take(&key(2), 0).is_none());
        f.put(&key(1), 0, &block(0), 0);
        f.put(&key(1), 1, &block(1), 0);
        assert_eq!(f.bytes(), 8);
        assert!(f.take(&key(1), 0).is_some());
        assert!(f.reserve(1, 4), "a take makes room");
        f.pend(1, &key(1), 2, 4);
        f.settle(&key(1), 2);
        assert!(f.take(&key(1), 1).is_some());
        assert_eq!(f.bytes(), 0);
        assert!(f.reserve(1, 6));
        f.unreserve(1, 6);
        assert_eq!(f.bytes(), 0);
        assert_eq!(f.usage().readers, 0);
    }

    #[test]
    fn readers_share_the_budget_fairly() {
        let f = Fresh::new(16);
        // A lone reader may take it all.
        assert!(f.reserve(1, 8));
        assert!(f.reserve(1, 8));
        assert!(!f.reserve(2, 4), "full");
        // The first reader consumes; the room goes to the second, not back to the first.
        f.unreserve(1, 8);
        assert!(!f.reserve(1, 4), "over its half while another reader waits");
        assert!(f.reserve(2, 8));
        assert_eq!(f.usage().readers, 2);
    }

    #[test]
    fn an_idle_budget_admits_one_request_larger_than_itself() {
        let f = Fresh::new(4);
        assert!(f.reserve(1, 8));
        assert!(!f.reserve(1, 8));
        f.unreserve(1, 8);
        assert!(f.reserve(1, 8));
    }

    #[test]
    fn zero_budget_keeps_nothing() {
        let f = Fresh::new(0);
        assert!(!f.reserve(1, 4));
        f.put(&key(2), 0, &Bytes::from_static(b"abcd"), 0);
        assert!(f.take(&key(2), 0).is_none());
    }
}
