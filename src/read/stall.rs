//! Remembers, for a moment, which contents the Hub just went silent on.
//!
//! A read through the page cache whose fetch times out is retried by the kernel at once (the
//! readahead fails, then the kernel reads the one page it needs): without a memory of the
//! stall that retry waits the whole `--io-timeout` again, and `cat` is released after twice
//! the timeout. A fetch of a content that stalled less than [`STALL_MEMORY`] ago fails at
//! once instead. The memory is short (a reader retrying by hand a moment later asks the Hub
//! again) and bounded.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::cache::BlobKey;

/// How long a stall is remembered: the kernel's retry comes within milliseconds.
pub const STALL_MEMORY: Duration = Duration::from_secs(1);

/// Contents remembered at most; older entries are dropped first (a handful are ever live).
const MAX_REMEMBERED: usize = 1024;

#[derive(Default)]
pub struct Stalls {
    recent: Mutex<HashMap<BlobKey, Instant>>,
}

impl Stalls {
    /// Notes that fetching `key` just timed out.
    pub fn record(&self, key: &BlobKey) {
        let now = Instant::now();
        let mut recent = self.recent.lock();
        recent.retain(|_, at| now.duration_since(*at) < STALL_MEMORY);
        if recent.len() >= MAX_REMEMBERED {
            recent.clear();
        }
        recent.insert(*key, now);
    }

    /// Whether fetching `key` timed out less than [`STALL_MEMORY`] ago.
    pub fn recent(&self, key: &BlobKey) -> bool {
        self.recent
            .lock()
            .get(key)
            .is_some_and(|at| at.elapsed() < STALL_MEMORY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalls_are_remembered_briefly() {
        let s = Stalls::default();
        let k = BlobKey::git_sha1_hex(&"ab".repeat(20)).unwrap();
        assert!(!s.recent(&k));
        s.record(&k);
        assert!(s.recent(&k));
        s.recent.lock().insert(k, Instant::now() - STALL_MEMORY);
        assert!(!s.recent(&k));
    }
}
