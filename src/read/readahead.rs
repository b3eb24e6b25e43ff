//! Sequential-access detection and the read-ahead window of one open file.
//!
//! A reader that keeps asking for the bytes right after the previous ones (a "run") gets a
//! window of prefetched bytes ahead of it, fetched as several parallel range requests. The window
//! follows what the run has consumed: nothing until it has read `start_after` (two adjacent reads
//! of a random reader, such as the halves of one fio 256 KiB read, are not a run); an eighth of
//! it while the run is shorter than `slow_start` (so a reader that stops early, like a loader
//! reading one tensor, causes little waste: the kernel adds its own read-ahead on top); then twice of it, up to `max_window` (so a `cat` of
//! a big file soon has many requests in flight). Requests are issued in whole units of a
//! quarter window (at most `max_request`), so a fast reader does not turn into a stream of
//! small requests. A far seek starts a new run; a read that then continues the previous run
//! resumes it (see `Readahead`). The kernel delivers its own read-ahead slightly out
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
    /// Below this many bytes read, the window is an eighth of them; above, twice.
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

/// One sequential run: a reader moving forward through the file.
#[derive(Debug, Default, Clone)]
struct Run {
    /// Highest end offset read in this run: where a sequential reader continues.
    expected: u64,
    /// Offset of the previous read; sequential readers never go far back.
    last_start: u64,
    /// Where the run started.
    start: u64,
    window: u64,
    /// Prefetch has been requested up to here.
    prefetched_to: u64,
}

impl Run {
    fn starting(start: u64, end: u64) -> Self {
        Run {
            expected: end,
            last_start: start,
            start,
            window: 0,
            prefetched_to: end,
        }
    }

    fn continued_by(&self, start: u64, cfg: &WindowConfig) -> bool {
        start + cfg.slack >= self.last_start && start <= self.expected + cfg.slack
    }
}

/// The read-ahead state of one open file: its current run, and the run one stray read
/// interrupted. A copy of a large buffer out of an mmap touches its last page before its first
/// (glibc's memcpy loads the tail first), so a loader reading tensor after tensor jumps ahead
/// and back once per tensor; going back to the interrupted run resumes it, window and all,
/// instead of starting over with a slow start for every tensor.
#[derive(Debug, Default, Clone)]
pub struct Readahead {
    run: Option<Run>,
    interrupted: Option<Run>,
}

impl Readahead {
    /// Where the current sequential run started (None before the first read).
    pub fn run_start(&self) -> Option<u64> {
        self.run.as_ref().map(|r| r.start)
    }

    /// Records a read of `[start, end)` of a file of `size` bytes and returns what to prefetch.
    pub fn on_read(
        &mut self,
        start: u64,
        end: u64,
        size: u64,
        cfg: &WindowConfig,
    ) -> Option<Prefetch> {
        let continues = self
            .run
            .as_ref()
            .is_some_and(|r| r.continued_by(start, cfg));
        if !continues {
            let resumes = self
                .interrupted
                .as_ref()
                .is_some_and(|r| r.continued_by(start, cfg));
            if resumes {
                std::mem::swap(&mut self.run, &mut self.interrupted);
            } else {
                self.interrupted = self.run.replace(Run::starting(start, end));
                return None;
            }
        }
        let run = self.run.as_mut()?;
        run.last_start = start;
        run.expected = run.expected.max(end);
        let consumed = run.expected.saturating_sub(run.start);
        if consumed < cfg.start_after {
            return None;
        }
        let window = if consumed < cfg.slow_start {
            consumed / 8
        } else {
            consumed.saturating_mul(2)
        };
        run.window = window.clamp(cfg.min_window, cfg.max_window);
        let request = (run.window / 4).clamp(cfg.min_request, cfg.max_request);
        let target = (run.expected + run.window).min(size);
        let from = run.prefetched_to.max(run.expected);
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
        run.prefetched_to = to;
        Some(Prefetch { from, to, request })
    }

    /// Prefetch was issued only up to `to` (the read-ahead memory budget was full): the
    /// current run asks for the rest again at its next read.
    pub fn issued_to(&mut self, to: u64) {
        if let Some(run) = self.run.as_mut() {
            run.prefetched_to = run.prefetched_to.min(to.max(run.expected));
        }
    }

    /// The window of the current run (0 before a run has formed).
    pub fn window(&self) -> u64 {
        self.run.as_ref().map_or(0, |r| r.window)
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
            furthest <= read + read / 8 + MIB,
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
    fn prefetch_cut_short_by_the_budget_is_asked_for_again() {
        let mut ra = Readahead::default();
        let size = 1 << 30;
        let mut off = 0;
        let mut first = None;
        while first.is_none() {
            first = ra.on_read(off, off + 128 * KIB, size, &CFG);
            off += 128 * KIB;
        }
        let p = first.unwrap();
        // Nothing was issued: the next read asks for the same bytes again, and more.
        ra.issued_to(p.from);
        let again = ra.on_read(off, off + 128 * KIB, size, &CFG).unwrap();
        assert_eq!(again.from, off + 128 * KIB, "from where the reader is now");
        assert!(again.from < p.to && again.to >= p.to);
        // Issued in full: the next read asks only for what lies beyond.
        ra.issued_to(again.to + MIB);
        if let Some(next) = ra.on_read(off + 128 * KIB, off + 256 * KIB, size, &CFG) {
            assert_eq!(next.from, again.to);
        }
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

    #[test]
    fn a_loader_touching_each_tensor_tail_first_keeps_its_run() {
        let mut ra = Readahead::default();
        let size = 1 << 30;
        let tensor = 9 * MIB;
        let mut requests = 0;
        let mut off = 0;
        while off < 300 * MIB {
            // The tail page first, then the tensor from its start.
            let tail = off + tensor - 4096;
            requests += usize::from(ra.on_read(tail, tail + 4096, size, &CFG).is_some());
            let end = off + tensor;
            let mut pos = off;
            while pos < end {
                requests += usize::from(ra.on_read(pos, pos + MIB, size, &CFG).is_some());
                pos += MIB;
            }
            off = end;
        }
        assert_eq!(ra.window(), 128 * MIB, "one run across all tensors");
        assert!(requests < 100, "{requests} prefetch calls");
    }
}
