//! Many threads writing and reading one cache at once: data integrity, the cap as an invariant
//! at every instant, and a consistent state after reopening.

mod cache_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use cache_support::*;
use hubfs::cache::{BlobKey, BlockCache};

struct Blob {
    key: BlobKey,
    data: Vec<u8>,
}

impl Blob {
    fn new(seed: u64, size: u64) -> Self {
        let data = content(seed, size);
        Blob {
            key: sha256_key(&data),
            data,
        }
    }

    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn nblocks(&self) -> u64 {
        self.size().div_ceil(BS)
    }

    fn block(&self, idx: u64) -> &[u8] {
        &self.data[(idx * BS) as usize..((idx + 1) * BS).min(self.size()) as usize]
    }

    /// Reads a block; panics if it is present with wrong bytes.
    fn check(&self, cache: &BlockCache, idx: u64) -> bool {
        match cache.read_block(&self.key, self.size(), idx).unwrap() {
            Some(got) => {
                assert!(got == self.block(idx), "wrong bytes for block {idx}");
                true
            }
            None => false,
        }
    }
}

#[test]
fn parallel_writers_of_one_blob_and_readers_see_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(open(dir.path(), 1 << 30));
    let blobs: Arc<Vec<Blob>> = Arc::new((0..4).map(|i| Blob::new(i, 200 * BS + 77)).collect());
    let writers_done = Arc::new(AtomicBool::new(false));
    const WRITERS: u64 = 8;

    let readers: Vec<_> = (0..4)
        .map(|r| {
            let (cache, blobs, done) = (cache.clone(), blobs.clone(), writers_done.clone());
            thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(r);
                let mut hits = 0u64;
                while !done.load(Ordering::Acquire) {
                    let b = &blobs[rng.usize(..blobs.len())];
                    hits += u64::from(b.check(&cache, rng.u64(..b.nblocks())));
                }
                hits
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (cache, blobs) = (cache.clone(), blobs.clone());
            thread::spawn(move || {
                // Thread t owns blocks t, t+8, ...: neighbours in one region are written by
                // different threads at the same time.
                for b in blobs.iter() {
                    for idx in (t..b.nblocks()).step_by(WRITERS as usize) {
                        cache
                            .write_block(&b.key, b.size(), idx, b.block(idx))
                            .unwrap();
                        assert!(b.check(&cache, idx), "own write visible");
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    writers_done.store(true, Ordering::Release);
    let hits: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(cache.stats().hits >= hits);

    for b in blobs.iter() {
        assert!(cache.is_complete(&b.key, b.size()));
        assert_eq!(
            read_all(&cache, &b.key, b.size()).as_deref(),
            Some(&b.data[..])
        );
        assert!(cache.verify_sha256(&b.key, b.size()).unwrap());
    }
    let expected: u64 = blobs
        .iter()
        .map(|b| blob_cost(b.size() / BS, b.size() % BS))
        .sum();
    assert_eq!(cache.stats().used_bytes, expected);
    assert_eq!(cache.stats().corrupt_dropped, 0);
}

#[test]
fn eviction_under_concurrent_load_keeps_the_cap_and_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 1 << 20; // a quarter of the data below
    let cache = Arc::new(open(dir.path(), cap));
    let blobs: Arc<Vec<Blob>> = Arc::new((0..8).map(|i| Blob::new(50 + i, 130 * BS + 5)).collect());
    let stop = Arc::new(AtomicBool::new(false));

    // The cap is an invariant at every instant, not only after writes return.
    let monitor = {
        let (cache, stop) = (cache.clone(), stop.clone());
        thread::spawn(move || {
            let mut samples = 0u64;
            while !stop.load(Ordering::Acquire) {
                assert!(cache.stats().used_bytes <= cap);
                samples += 1;
                thread::yield_now();
            }
            samples
        })
    };
    let workers: Vec<_> = (0..6)
        .map(|t| {
            let (cache, blobs) = (cache.clone(), blobs.clone());
            thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(1000 + t);
                for _ in 0..3000 {
                    let b = &blobs[rng.usize(..blobs.len())];
                    let idx = rng.u64(..b.nblocks());
                    if !b.check(&cache, idx) {
                        cache
                            .write_block(&b.key, b.size(), idx, b.block(idx))
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    assert!(monitor.join().unwrap() > 0);

    let s = cache.stats();
    assert!(s.evictions > 0, "{s:?}");
    assert!(s.used_bytes <= cap);
    assert_eq!(s.corrupt_dropped, 0);
    let present = |c: &BlockCache| -> u64 {
        blobs
            .iter()
            .map(|b| {
                (0..b.nblocks())
                    .filter(|&i| c.contains_block(&b.key, b.size(), i))
                    .count() as u64
            })
            .sum()
    };
    let before = present(&cache);
    assert!(before > 0);
    drop(cache);

    // After a reopen, the same blocks are there with the same bytes.
    let cache = open(dir.path(), cap);
    assert_eq!(cache.stats().used_bytes, s.used_bytes);
    assert_eq!(present(&cache), before);
    for b in blobs.iter() {
        for idx in 0..b.nblocks() {
            if cache.contains_block(&b.key, b.size(), idx) {
                assert!(b.check(&cache, idx));
            }
        }
    }
    assert_eq!(cache.stats().corrupt_dropped, 0);
}
