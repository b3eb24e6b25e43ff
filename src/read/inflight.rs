//! Blocks being fetched right now, so concurrent readers of one block share one fetch.
//!
//! A reader that misses the cache either finds a slot for the block (someone is fetching it:
//! wait) or creates one (it is now the fetcher's job). The fetcher publishes the block's bytes
//! or an errno into the slot, then removes the slot, after the block is in the cache, so a
//! later reader finds it there.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::cache::BlobKey;
use crate::fs::Errno;

pub type BlockResult = Option<Result<Bytes, Errno>>;

/// One block in flight. Waiters subscribe; the fetcher publishes once.
pub struct Slot {
    tx: watch::Sender<BlockResult>,
}

impl Slot {
    fn new() -> Arc<Slot> {
        let (tx, _) = watch::channel(None);
        Arc::new(Slot { tx })
    }

    pub fn subscribe(&self) -> watch::Receiver<BlockResult> {
        self.tx.subscribe()
    }

    /// True if a reader waits for this block (else it was fetched ahead of any reader).
    pub fn has_waiters(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn publish(&self, r: Result<Bytes, Errno>) {
        self.tx.send_replace(Some(r));
    }
}

/// Waits for a slot's result. A fetcher that vanished without publishing is an I/O error.
pub async fn wait(mut rx: watch::Receiver<BlockResult>) -> Result<Bytes, Errno> {
    match rx.wait_for(|v| v.is_some()).await {
        Ok(v) => v.clone().unwrap_or(Err(Errno::EIO)),
        Err(_) => Err(Errno::EIO),
    }
}

#[derive(Default)]
pub struct Inflight {
    slots: Mutex<HashMap<(BlobKey, u64), Arc<Slot>>>,
}

/// What `claim` found for a block.
pub enum Claim {
    /// Someone else fetches it: wait on this.
    Wait(watch::Receiver<BlockResult>),
    /// Ours to fetch.
    Mine(Arc<Slot>),
}

impl Inflight {
    /// Joins the fetch of a block, or claims it. `present` re-checks the cache under the lock,
    /// closing the race with a fetcher that just finished; it returns None if present.
    pub fn claim(&self, key: &BlobKey, idx: u64, present: impl FnOnce() -> bool) -> Option<Claim> {
        let mut slots = self.slots.lock();
        if let Some(s) = slots.get(&(*key, idx)) {
            return Some(Claim::Wait(s.subscribe()));
        }
        if present() {
            return None;
        }
        let slot = Slot::new();
        slots.insert((*key, idx), slot.clone());
        Some(Claim::Mine(slot))
    }

    /// Publishes a block's result and forgets the slot.
    pub fn finish(&self, key: &BlobKey, idx: u64, slot: &Slot, r: Result<Bytes, Errno>) {
        slot.publish(r);
        self.slots.lock().remove(&(*key, idx));
    }

    /// True while someone fetches this block.
    pub fn is_fetching(&self, key: &BlobKey, idx: u64) -> bool {
        self.slots.lock().contains_key(&(*key, idx))
    }

    pub fn len(&self) -> usize {
        self.slots.lock().len()
    }
}
