//! Sequential-access detection and the read-ahead window of one open file.
//!
//! A reader that keeps asking for the bytes right after the previous ones gets a window of
//! prefetched bytes ahead of it, twice what it has read so far in this run (within bounds): a
//! `cat` soon has many parallel range requests in flight, while a reader that stops early
//! (`head`, a header parser) never caused more than about twice its own reads to be fetched. Any far seek (mmap page faults, safetensors headers then
//! tensors, fio randread) resets the window to zero: random readers fetch only the blocks they
//! touch, never a read-ahead they would not use. The kernel issues read-ahead requests
//! asynchronously and slightly out of order, so "right after" allows some slack.

/// Window sizes; see `ReadConfig` for the reasons behind the defaults.
#[derive(Debug, Clone, Copy)]
pub struct WindowConfig {
    pub min_window: u64,
    pub max_window: u64,
    /// How far from the expected offset a read may land and still count as sequential.
    pub slack: u64,
}

#[derive(Debug, Default, Clone)]
pub struct Readahead {
    /// Highest end offset read so far: where a sequential reader continues.
    expected: u64,
    /// Offset of the previous read; sequential readers never go far back.
    last_start: u64,
    /// Where the current sequential run started.
    run_start: u64,
    window: u64,
    /// Prefetch has been requested up to here.
    prefetched_to: u64,
    reads: u64,
}

impl Readahead {
    /// Records a read of `[start, end)` of a file of `size` bytes and returns the byte range to
    /// prefetch now, if any.
    pub fn on_read(
        &mut self,
        start: u64,
        end: u64,
        size: u64,
        cfg: &WindowConfig,
    ) -> Option<(u64, u64)> {
        let first = self.reads == 0;
        self.reads += 1;
        let sequential = if first {
            start == 0
        } else {
            start + cfg.slack >= self.last_start && start <= self.expected + cfg.slack
        };
        self.last_start = start;
        if !sequential {
            self.window = 0;
            self.prefetched_to = 0;
            self.expected = end;
            self.run_start = start;
            return None;
        }
        if self.window == 0 {
            self.run_start = start;
        }
        self.expected = self.expected.max(end);
        let consumed = self.expected - self.run_start;
        self.window = (2 * consumed).clamp(cfg.min_window, cfg.max_window);
        let target = (self.expected + self.window).min(size);
        let from = self.prefetched_to.max(self.expected);
        if target <= from {
            return None;
        }
        self.prefetched_to = target;
        Some((from, target))
    }

    pub fn window(&self) -> u64 {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const CFG: WindowConfig = WindowConfig {
        min_window: MIB,
        max_window: 64 * MIB,
        slack: 2 * MIB,
    };

    #[test]
    fn the_window_stays_within_twice_what_was_read() {
        let mut ra = Readahead::default();
        let size = 1 << 30;
        let mut off = 0;
        let mut furthest = 0;
        while off < 8 * MIB {
            if let Some((_, to)) = ra.on_read(off, off + (128 << 10), size, &CFG) {
                furthest = to;
            }
            off += 128 << 10;
            assert!(
                furthest <= off + (2 * off).max(MIB),
                "{furthest} after reading {off}"
            );
        }
    }

    #[test]
    fn sequential_reads_grow_the_window_to_the_cap() {
        let mut ra = Readahead::default();
        let size = 1 << 30;
        let (a, b) = ra.on_read(0, 128 << 10, size, &CFG).unwrap();
        assert_eq!((a, b), (128 << 10, (128 << 10) + MIB));
        let mut off = 128 << 10;
        let mut last_to = b;
        for _ in 0..400 {
            if let Some((from, to)) = ra.on_read(off, off + (128 << 10), size, &CFG) {
                assert_eq!(
                    from, last_to,
                    "prefetch ranges must not overlap or leave holes"
                );
                last_to = to;
            }
            off += 128 << 10;
        }
        assert_eq!(ra.window(), 64 * MIB);
    }

    #[test]
    fn a_far_seek_stops_prefetching() {
        let mut ra = Readahead::default();
        let size = 1 << 30;
        assert!(ra.on_read(0, 4096, size, &CFG).is_some());
        assert!(ra
            .on_read(500 * MIB, 500 * MIB + 4096, size, &CFG)
            .is_none());
        assert_eq!(ra.window(), 0);
        // A first read that does not start at 0 is random too.
        let mut ra = Readahead::default();
        assert!(ra
            .on_read(300 * MIB, 300 * MIB + 4096, size, &CFG)
            .is_none());
    }

    #[test]
    fn slightly_out_of_order_reads_stay_sequential_and_prefetch_stops_at_eof() {
        let mut ra = Readahead::default();
        let size = 3 * MIB;
        ra.on_read(0, 128 << 10, size, &CFG);
        ra.on_read(256 << 10, 384 << 10, size, &CFG);
        ra.on_read(128 << 10, 256 << 10, size, &CFG);
        assert!(ra.window() >= MIB, "still sequential");
        let mut off = 384 << 10;
        while off < size {
            if let Some((_, to)) = ra.on_read(off, off + (128 << 10), size, &CFG) {
                assert!(to <= size);
            }
            off += 128 << 10;
        }
    }
}
