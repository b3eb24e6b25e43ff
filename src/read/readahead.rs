//! Sequential-access detection and the read-ahead window of one open file.
//!
//! A reader that keeps asking for the bytes right after the previous ones (a "run") gets a
//! window of prefetched bytes ahead of it, fetched as several parallel range requests. The window
//! follows what the run has consumed: nothing until it has read `start_after` (two adjacent reads
//! of a random reader, such as the halves of one fio 256 KiB read, are not a run); a quarter of
//! it while the run is shorter than `slow_start` (so a reader that stops early, like a loader
//! reading one tensor, causes little waste); then twice of it, up to `max_window` (so a `cat` of
//! a big file soon has many requests in flight). Requests are issued in whole units of a
//! quarter window (at most `max_request`), so a fast reader does not turn into a stream of
//! small requests. Any far seek ends the run. The kernel delivers its own read-ahead slightly out
//! of order, so "right after" allows some slack.

/// Window sizes; see `ReadConfig` for the reasons behind the defaults.
#[derive(Debug, Clone, Copy)]
pub struct WindowConfig {
    pub min_window: u64,
    pub max_window: u64,
    /// How far from the expected offset a read may land and still continue the run.
    pub slack: u64,
    /// Bytes a run must have read before anything is prefetched.
    pub start_after: u64,
    /// Below this many bytes read, the window is a quarter of them; above, twice.
    pub slow_start: u64,
    /// Largest single prefetch request.
    pub max_request: u64,
    /// Smallest prefetch request (except the tail of the file).
    pub min_request: u64,
}

/// Bytes to prefetch now: `[from, to)` in requests of `request` bytes (the last may be short).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefetch {
    pub from: u64,
    pub to: u64,
    pub request: u64,
}

#[derive(Debug, Default, Clone)]
pub struct Readahead {
    /// Highest end offset read in this run: where a sequential reader continues.
    expected: u64,
    /// Offset of the previous read; sequential readers never go far back.
    last_start: u64,
    /// Where the current run started.
    run_start: u64,
    window: u64,
    /// Prefetch has been requested up to here.
    prefetched_to: u64,
    reads: u64,
}

impl Readahead {
    /// Records a read of `[start, end)` of a file of `size` bytes and returns what to prefetch.
    pub fn on_read(
        &mut self,
        start: u64,
        end: u64,
        size: u64,
        cfg: &WindowConfig,
    ) -> Option<Prefetch> {
        let continues = self.reads > 0
            && start + cfg.slack >= self.last_start
            && start <= self.expected + cfg.slack;
        self.reads += 1;
        self.last_start = start;
        if !continues {
            self.run_start = start;
            self.expected = end;
            self.prefetched_to = end;
            self.window = 0;
            return None;
        }
        self.expected = self.expected.max(end);
        let consumed = self.expected.saturating_sub(self.run_start);
        if consumed < cfg.start_after {
            return None;
        }
        let window = if consumed < cfg.slow_start {
            consumed / 4
        } else {
            consumed.saturating_mul(2)
        };
        self.window = window.clamp(cfg.min_window, cfg.max_window);
        let request = (self.window / 4).clamp(cfg.min_request, cfg.max_request);
        let target = (self.expected + self.window).min(size);
        let from = self.prefetched_to.max(self.expected);
        if target <= from {
            return None;
        }
        let to = if target == size {
            target
        } else {
            // Whole requests only; the rest waits until the window has moved on.
            from + (target - from) / request * request
        };
        if to <= from {
            return None;
        }
        self.prefetched_to = to;
        Some(Prefetch { from, to, request })
    }

    pub fn window(&self) -> u64 {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    const CFG: WindowConfig = WindowConfig {
        min_window: MIB,
        max_window: 128 * MIB,
        slack: 2 * MIB,
        start_after: 512 * KIB,
        slow_start: 16 * MIB,
        max_request: 8 * MIB,
        min_request: 512 * KIB,
    };

    /// Reads `[from, to)` sequentially in `step`s; returns the furthest prefetched offset and
    /// checks that prefetch ranges never overlap or leave holes.
    fn read_seq(ra: &mut Readahead, from: u64, to: u64, step: u64, size: u64) -> u64 {
        let mut off = from;
        let mut furthest = 0;
        while off < to {
            if let Some(p) = ra.on_read(off, off + step, size, &CFG) {
                assert!(
                    furthest == 0 || p.from == furthest,
                    "{p:?} after {furthest}"
                );
                assert!(p.to <= size);
                furthest = p.to;
            }
            off += step;
        }
        furthest
    }

    #[test]
    fn a_short_sequential_reader_causes_little_waste() {
        let mut ra = Readahead::default();
        let read = 10 * MIB;
        let furthest = read_seq(&mut ra, 0, read, 128 * KIB, 1 << 30);
        assert!(
            furthest <= read + read / 4 + MIB,
            "prefetched to {furthest}"
        );
    }

    #[test]
    fn a_long_sequential_reader_gets_the_full_window_in_big_requests() {
        let mut ra = Readahead::default();
        let size = 1 << 30;
        let mut off = 0;
        let mut requests = Vec::new();
        while off < 256 * MIB {
            if let Some(p) = ra.on_read(off, off + 128 * KIB, size, &CFG) {
                requests.push(p);
            }
            off += 128 * KIB;
        }
        assert_eq!(ra.window(), 128 * MIB);
        let last = requests.last().unwrap();
        assert_eq!(last.request, 8 * MIB);
        assert_eq!(
            (last.to - last.from) % last.request,
            0,
            "whole requests only"
        );
        // Far fewer prefetch decisions than reads: requests are batched.
        assert!(requests.len() < 200, "{} prefetch calls", requests.len());
    }

    #[test]
    fn random_reads_never_prefetch_even_in_adjacent_pairs() {
        let mut ra = Readahead::default();
        let size = 1 << 30;
        for i in 0..100u64 {
            let off = (i * 7919 * MIB) % (900 * MIB);
            // fio's 256 KiB read arrives as two adjacent 128 KiB requests.
            assert!(ra.on_read(off, off + 128 * KIB, size, &CFG).is_none());
            assert!(ra
                .on_read(off + 128 * KIB, off + 256 * KIB, size, &CFG)
                .is_none());
        }
        assert_eq!(ra.window(), 0);
    }

    #[test]
    fn a_far_seek_ends_the_run() {
        let mut ra = Readahead::default();
        let size = 1 << 30;
        read_seq(&mut ra, 0, 32 * MIB, 128 * KIB, size);
        assert!(ra.window() > 0);
        assert!(ra
            .on_read(500 * MIB, 500 * MIB + 4096, size, &CFG)
            .is_none());
        assert_eq!(ra.window(), 0);
    }

    #[test]
    fn slightly_out_of_order_reads_continue_the_run_and_prefetch_stops_at_eof() {
        let mut ra = Readahead::default();
        let size = 3 * MIB + 5;
        ra.on_read(0, 128 * KIB, size, &CFG);
        ra.on_read(256 * KIB, 384 * KIB, size, &CFG);
        ra.on_read(128 * KIB, 256 * KIB, size, &CFG);
        let furthest = read_seq(&mut ra, 384 * KIB, size, 128 * KIB, size);
        assert!(ra.window() >= MIB, "still sequential");
        assert_eq!(furthest, size, "the tail is prefetched, however short");
    }
}
