//! A small single-flight cache: concurrent callers asking for the same key while its value is
//! being fetched wait for that one fetch instead of starting their own.
//!
//! Used for xorb footers (N parallel ranges of one xorb ask for its footer once) and for
//! reconstruction plans (parallel runs and every 403 re-plan of one range ask the CAS once).
//! A value may carry an expiry; an expired value is replaced by the next caller. A failed
//! fetch stores nothing: the next caller (a waiter included) tries again.

use std::future::Future;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Instant;

use lru::LruCache;
use parking_lot::Mutex;
use tokio::sync::OnceCell;

/// One key's value, fetched at most once at a time, valid until `expires` (if any).
struct Slot<V> {
    cell: OnceCell<(V, Option<Instant>)>,
}

impl<V> Slot<V> {
    fn expired(&self, now: Instant) -> bool {
        matches!(self.cell.get(), Some((_, Some(until))) if *until <= now)
    }
}

/// Keys to values, LRU-bounded, each fetched once however many callers ask at once.
pub struct Flights<K: Hash + Eq, V> {
    slots: Mutex<LruCache<K, Arc<Slot<V>>>>,
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    pub fn new(capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Flights {
            slots: Mutex::new(LruCache::new(cap)),
        }
    }

    /// The value of `key`: cached and unexpired, or joined while another caller fetches it, or
    /// fetched by `fetch` (returning the value and its expiry). `hit` tells whether this call
    /// started no fetch of its own.
    pub async fn get<F, Fut, E>(&self, key: &K, fetch: F) -> Result<(V, bool), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, Option<Instant>), E>>,
    {
        let slot = {
            let mut slots = self.slots.lock();
            match slots.get(key) {
                Some(s) if !s.expired(Instant::now()) => s.clone(),
                _ => {
                    let s = Arc::new(Slot {
                        cell: OnceCell::new(),
                    });
                    slots.put(key.clone(), s.clone());
                    s
                }
            }
        };
        let mut fetched = false;
        let (value, _) = slot
            .cell
            .get_or_try_init(|| {
                fetched = true;
                fetch()
            })
            .await?;
        Ok((value.clone(), !fetched))
    }

    /// `key`'s value if it is cached and unexpired; never waits, never fetches.
    pub fn peek(&self, key: &K) -> Option<V> {
        let mut slots = self.slots.lock();
        let (v, until) = slots.get(key)?.cell.get()?.clone();
        until.is_none_or(|u| u > Instant::now()).then_some(v)
    }

    /// Drops `key`'s value if `stale(value)` says it is the one the caller found wanting (a
    /// plan whose URL the CAS refused): concurrent callers that found the same stale value
    /// drop it once, and the first of them to ask again fetches the replacement for all.
    pub fn invalidate_if(&self, key: &K, stale: impl FnOnce(&V) -> bool) {
        let mut slots = self.slots.lock();
        let drop = slots
            .peek(key)
            .and_then(|s| s.cell.get())
            .is_some_and(|(v, _)| stale(v));
        if drop {
            slots.pop(key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let flights: Arc<Flights<u32, u64>> = Arc::new(Flights::new(8));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (flights, calls) = (flights.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                flights
                    .get(&7, || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, ()>((42, None))
                    })
                    .await
            }));
        }
        let mut hits = 0;
        for t in tasks {
            let (v, hit) = t.await.unwrap().unwrap();
            assert_eq!(v, 42);
            hits += usize::from(hit);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(hits, 15);
    }

    #[tokio::test]
    async fn failures_are_not_kept_and_expiry_refetches() {
        let flights: Flights<u32, u64> = Flights::new(8);
        let r: Result<(u64, bool), &str> = flights.get(&1, || async { Err("down") }).await;
        assert!(r.is_err());
        let (v, hit) = flights
            .get(&1, || async { Ok::<_, ()>((5, Some(Instant::now()))) })
            .await
            .unwrap();
        assert_eq!((v, hit), (5, false));
        // Expired at once: the next caller fetches again.
        let (v, hit) = flights
            .get(&1, || async { Ok::<_, ()>((6, None)) })
            .await
            .unwrap();
        assert_eq!((v, hit), (6, false));
        let (v, hit) = flights
            .get(&1, || async { Ok::<_, ()>((7, None)) })
            .await
            .unwrap();
        assert_eq!((v, hit), (6, true));
        flights.invalidate_if(&1, |v| *v == 5);
        assert_eq!(flights.len(), 1, "a newer value than the stale one stays");
        flights.invalidate_if(&1, |v| *v == 6);
        assert_eq!(flights.len(), 0);
    }
}
