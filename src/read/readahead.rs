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
//! small requests. A far seek starts a new run; a read that then continues an earlier run
//! resumes it (see `Readahead`). The kernel delivers its own read-ahead slightly out of order,
//! so "right after" allows some slack.
//!
//! Remembered runs cannot follow every order a reader may produce (more streams through one
//! handle than it remembers, page faults of an mmap copy landing between the kernel's
//! read-ahead requests). So a read that continues no remembered run also looks at the file
//! itself, as the kernel's "context read-ahead" does: if the bytes just before it are already
//! cached or on their way, something is reading this part of the file forward, and the read
//! starts a run that counts them as already read. A random reader rarely finds `start_after`
//! bytes present right before its offset, and where it does (a file mostly cached) the
//! prefetch finds little to fetch.

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
    /// The kernel's largest read (FUSE replies of up to this much): prefetches end in step
    /// with the reader's replies (see `in_step_with_replies`); 0 turns that off.
    pub reply_len: u64,
}

/// What the file itself shows around a read that continues no remembered run: the bytes that
/// are cached or being fetched, whoever asked for them.
pub trait Context {
    /// How many bytes (up to `max`) directly before `start` are present.
    fn present_before(&mut self, start: u64, max: u64) -> u64;
    /// How many bytes (up to `max`) from `from` on are present.
    fn present_from(&mut self, from: u64, max: u64) -> u64;
}

/// A file of which nothing is cached or in flight.
pub struct NoContext;

impl Context for NoContext {
    fn present_before(&mut self, _start: u64, _max: u64) -> u64 {
        0
    }
    fn present_from(&mut self, _from: u64, _max: u64) -> u64 {
        0
    }
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
    /// The lowest offset the run has read (a tensor's head read after its tail lowers it).
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

    /// How a read at `start` continues this run, if it does.
    fn continued_by(&self, start: u64, cfg: &WindowConfig) -> Option<Step> {
        if start + cfg.slack < self.last_start {
            return None;
        }
        if start <= self.expected + cfg.slack {
            return Some(Step::Near);
        }
        // A jump ahead no longer than the run itself: a loader that copies each tensor from
        // its end down (glibc's memmove copies backward when source and destination sit at
        // nearly the same offset within a page) starts the next tensor one tensor further on,
        // and skips nothing for long.
        (start - self.expected <= self.expected - self.start).then_some(Step::Ahead)
    }
}

/// How a read continues a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Within the slack of where the run got to.
    Near,
    /// Further ahead, within the run's own length: the reader's next reads may come back
    /// below it (down through the tensor it jumped to the end of), so the run keeps the
    /// previous read's offset as its floor.
    Ahead,
}

/// A read that starts a run this close to where the current run got to is a "near break": the
/// reader looks sequential, but its reads did not follow the run (see `LostTrack`).
const NEAR: u64 = 16 << 20;
/// Reads remembered before each near break, and near breaks whose reads are kept.
const RECENT: usize = 32;
const SAMPLES: usize = 8;

/// How often read-ahead failed a reader that looked sequential, with reads that show how:
/// what the daemon logs when a file closes after many such reads (the read order a kernel or
/// a loader produced that the detector did not follow is otherwise lost). Two ways to fail:
/// reads that start a new run close to the current one (near breaks), and reads that continue
/// a run yet find their blocks neither cached nor on their way (the window is not ahead).
#[derive(Debug, Default, Clone)]
pub struct LostTrack {
    pub reads: u64,
    pub near_breaks: u64,
    /// Near breaks whose run was found by its context (prefetch went on).
    pub found: u64,
    /// Reads that continued a run.
    pub continued: u64,
    /// Reads that had to request blocks themselves (`note_demand`).
    pub demanded: u64,
    /// The last `RECENT` reads as (offset, length), oldest first once full.
    pub recent: std::collections::VecDeque<(u64, u64)>,
    /// For the first `SAMPLES` near breaks: the reads up to and including it.
    pub samples: Vec<Vec<(u64, u64)>>,
}

impl LostTrack {
    /// Worth a line in the log: a reader that mostly looked sequential and was mostly lost,
    /// or mostly followed and still mostly waiting for requests of its own.
    pub fn worth_logging(&self) -> bool {
        let lost = self.near_breaks >= 64 && self.near_breaks * 4 >= self.reads;
        let behind = self.reads >= 256
            && self.demanded * 2 >= self.reads
            && self.continued * 4 >= self.reads * 3;
        lost || behind
    }
}

/// Runs one open file remembers: a few interleaved streams (shards read by threads through
/// one handle, the stray page faults of an mmap copy) each keep their window.
const MAX_RUNS: usize = 4;

/// The read-ahead state of one open file: its most recent runs, the current one first. A copy
/// of a large buffer out of an mmap touches its last page before its first (glibc's memcpy
/// loads the tail first), so a loader reading tensor after tensor jumps ahead and back once per
/// tensor; going back to the run the stray read interrupted resumes it, window and all,
/// instead of starting over with a slow start for every tensor.
#[derive(Debug, Default, Clone)]
pub struct Readahead {
    runs: Vec<Run>,
    lost: LostTrack,
}

impl Readahead {
    /// Where the current sequential run started (None before the first read).
    pub fn run_start(&self) -> Option<u64> {
        self.runs.first().map(|r| r.start)
    }

    /// Records a read of `[start, end)` of a file of `size` bytes and returns what to prefetch.
    /// `context` is asked only when the read continues no remembered run.
    pub fn on_read(
        &mut self,
        start: u64,
        end: u64,
        size: u64,
        cfg: &WindowConfig,
        context: &mut impl Context,
    ) -> Option<Prefetch> {
        self.lost.reads += 1;
        if self.lost.recent.len() == RECENT {
            self.lost.recent.pop_front();
        }
        self.lost.recent.push_back((start, end - start));
        let continued = self
            .runs
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.continued_by(start, cfg).map(|step| (i, step)));
        let step = match continued {
            Some((i, how)) => {
                let run = self.runs.remove(i);
                self.runs.insert(0, run);
                self.lost.continued += 1;
                how
            }
            None => {
                // The whole `start_after` before the read, or all of the file before it.
                let wanted = start.min(cfg.start_after);
                let history = match wanted {
                    0 => 0,
                    max => context.present_before(start, max).min(max),
                };
                let found = wanted > 0 && history == wanted;
                let mut run = Run::starting(start, end);
                if found {
                    // A stream found by its context: it has read what lies behind it, and what
                    // lies ahead of it may be on its way already (its earlier run's read-ahead):
                    // prefetch resumes past that, in whole requests. A found run starts with
                    // the smallest window, so looking further ahead would change nothing.
                    run.start = start - history;
                    let ahead = context.present_from(end, cfg.min_window.min(size - end));
                    run.prefetched_to = end + ahead;
                }
                let near = self
                    .runs
                    .first()
                    .is_some_and(|r| start.abs_diff(r.expected) <= NEAR);
                if near {
                    self.lost.near_breaks += 1;
                    self.lost.found += u64::from(found);
                    if self.lost.samples.len() < SAMPLES {
                        self.lost
                            .samples
                            .push(self.lost.recent.iter().copied().collect());
                    }
                }
                self.runs.insert(0, run);
                self.runs.truncate(MAX_RUNS);
                if !found {
                    return None;
                }
                Step::Near
            }
        };
        let run = self.runs.first_mut()?;
        // A read a little before the run's first one (the head of a tensor whose tail came
        // first) belongs to it.
        run.start = run.start.min(start);
        if step == Step::Near {
            run.last_start = start;
        }
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
            let whole = from + (target - from) / request * request;
            // Only a full-size read shows where the kernel's replies fall.
            let reply = if end - start == cfg.reply_len {
                cfg.reply_len
            } else {
                0
            };
            in_step_with_replies(whole, from, run.expected, request, reply)
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
        if let Some(run) = self.runs.first_mut() {
            run.prefetched_to = run.prefetched_to.min(to.max(run.expected));
        }
    }

    /// The last read had to request some of its blocks itself: none was cached or in flight.
    pub fn note_demand(&mut self) {
        self.lost.demanded += 1;
    }

    /// How often read-ahead failed a reader that looked sequential.
    pub fn lost_track(&self) -> &LostTrack {
        &self.lost
    }

    /// The window of the current run (0 before a run has formed).
    pub fn window(&self) -> u64 {
        self.runs.first().map_or(0, |r| r.window)
    }
}

/// Ends a prefetch `[from, to)` where one of the reader's replies begins (`expected` plus a
/// multiple of `reply`), moving `to` back by less than one reply. Once one prefetch ends in
/// step, every later one starts in step, and so do its requests (whole multiples of a reply)
/// and the run buffers cut from each request's start (`fetch.rs`): a reply then lies inside
/// one buffer and goes out as a slice of it. Out of step (the ramp's 512 KiB requests leave
/// `cat`'s 1 MiB reads 512 KiB off), half of a cold read's replies straddled two buffers and
/// were copied.
fn in_step_with_replies(to: u64, from: u64, expected: u64, request: u64, reply: u64) -> u64 {
    if reply == 0 || request < reply || to < expected {
        return to;
    }
    let off = (to - expected) % reply;
    if off == 0 || to - off <= from {
        to
    } else {
        to - off
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
        reply_len: MIB,
    };

    /// Reads `[from, to)` sequentially in `step`s; returns the furthest prefetched offset and
    /// checks that prefetch ranges never overlap or leave holes.
    fn read_seq(ra: &mut Readahead, from: u64, to: u64, step: u64, size: u64) -> u64 {
        let mut off = from;
        let mut furthest = 0;
        while off < to {
            if let Some(p) = ra.on_read(off, off + step, size, &CFG, &mut NoContext) {
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
    fn prefetches_fall_in_step_with_the_kernels_replies() {
        // As `cat` through FUSE: 256 KiB, 512 KiB, then 1 MiB reads 768 KiB past each MiB.
        let mut ra = Readahead::default();
        let size = 1 << 30;
        let mut reads = vec![(0, 256 * KIB), (256 * KIB, 768 * KIB)];
        let mut off = 768 * KIB;
        while off + MIB <= 512 * MIB {
            reads.push((off, off + MIB));
            off += MIB;
        }
        let mut furthest = 0;
        let mut big = Vec::new();
        for (start, end) in reads {
            if let Some(p) = ra.on_read(start, end, size, &CFG, &mut NoContext) {
                assert!(
                    furthest == 0 || p.from == furthest,
                    "{p:?} after {furthest}"
                );
                furthest = p.to;
                if p.request >= MIB {
                    big.push(p);
                }
            }
        }
        assert!(big.len() > 8, "{big:?}");
        // The first prefetch of 1 MiB requests or more may start out of step; it ends in step,
        // and so every later one starts and ends there, in whole requests.
        for p in &big[1..] {
            assert_eq!(p.from % MIB, 768 * KIB, "{p:?}");
            assert_eq!(p.to % MIB, 768 * KIB, "{p:?}");
        }
        assert_eq!(big.last().unwrap().request, 8 * MIB);
        assert!(furthest > 512 * MIB);
    }

    #[test]
    fn in_step_moves_the_end_back_by_less_than_a_reply() {
        // Out of step by 512 KiB: back to the reply boundary.
        assert_eq!(
            in_step_with_replies(
                24 * MIB + 256 * KIB,
                16 * MIB + 256 * KIB,
                10 * MIB + 768 * KIB,
                8 * MIB,
                MIB
            ),
            23 * MIB + 768 * KIB
        );
        // Already in step, requests smaller than a reply, no reply size known: unchanged.
        assert_eq!(
            in_step_with_replies(24 * MIB, 16 * MIB, 10 * MIB, 8 * MIB, MIB),
            24 * MIB
        );
        assert_eq!(
            in_step_with_replies(3 * MIB, 2 * MIB + 512 * KIB, 0, 512 * KIB, MIB),
            3 * MIB
        );
        assert_eq!(
            in_step_with_replies(3 * MIB + 1, 2 * MIB, 0, 8 * MIB, 0),
            3 * MIB + 1
        );
        // Never back to or before `from`.
        assert_eq!(
            in_step_with_replies(
                2 * MIB + 512 * KIB,
                2 * MIB + 384 * KIB,
                256 * KIB,
                MIB,
                MIB
            ),
            2 * MIB + 512 * KIB
        );
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
            if let Some(p) = ra.on_read(off, off + 128 * KIB, size, &CFG, &mut NoContext) {
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
            assert!(ra
                .on_read(off, off + 128 * KIB, size, &CFG, &mut NoContext)
                .is_none());
            assert!(ra
                .on_read(off + 128 * KIB, off + 256 * KIB, size, &CFG, &mut NoContext)
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
            first = ra.on_read(off, off + 128 * KIB, size, &CFG, &mut NoContext);
            off += 128 * KIB;
        }
        let p = first.unwrap();
        // Nothing was issued: the next read asks for the same bytes again, and more.
        ra.issued_to(p.from);
        let again = ra
            .on_read(off, off + 128 * KIB, size, &CFG, &mut NoContext)
            .unwrap();
        assert_eq!(again.from, off + 128 * KIB, "from where the reader is now");
        assert!(again.from < p.to && again.to >= p.to);
        // Issued in full: the next read asks only for what lies beyond.
        ra.issued_to(again.to + MIB);
        if let Some(next) = ra.on_read(off + 128 * KIB, off + 256 * KIB, size, &CFG, &mut NoContext)
        {
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
            .on_read(500 * MIB, 500 * MIB + 4096, size, &CFG, &mut NoContext)
            .is_none());
        assert_eq!(ra.window(), 0);
    }

    #[test]
    fn slightly_out_of_order_reads_continue_the_run_and_prefetch_stops_at_eof() {
        let mut ra = Readahead::default();
        let size = 3 * MIB + 5;
        ra.on_read(0, 128 * KIB, size, &CFG, &mut NoContext);
        ra.on_read(256 * KIB, 384 * KIB, size, &CFG, &mut NoContext);
        ra.on_read(128 * KIB, 256 * KIB, size, &CFG, &mut NoContext);
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
            requests += usize::from(
                ra.on_read(tail, tail + 4096, size, &CFG, &mut NoContext)
                    .is_some(),
            );
            let end = off + tensor;
            let mut pos = off;
            while pos < end {
                requests += usize::from(
                    ra.on_read(pos, pos + MIB, size, &CFG, &mut NoContext)
                        .is_some(),
                );
                pos += MIB;
            }
            off = end;
        }
        assert_eq!(ra.window(), 128 * MIB, "one run across all tensors");
        assert!(requests < 100, "{requests} prefetch calls");
    }

    /// The blocks of a file that are cached or in flight: what reads and prefetches leave.
    struct Present {
        block: u64,
        blocks: std::collections::BTreeSet<u64>,
        requests: usize,
    }

    impl Present {
        fn new() -> Self {
            Present {
                block: 128 * KIB,
                blocks: Default::default(),
                requests: 0,
            }
        }

        fn add(&mut self, from: u64, to: u64) {
            self.blocks
                .extend(from / self.block..to.div_ceil(self.block));
        }

        fn covers(&self, from: u64, to: u64) -> bool {
            (from / self.block..to.div_ceil(self.block)).all(|b| self.blocks.contains(&b))
        }

        /// Reads `[start, end)` through `ra`; true if the bytes were all present beforehand.
        /// Counts the prefetch requests in `requests`.
        fn read(&mut self, ra: &mut Readahead, start: u64, end: u64, size: u64) -> bool {
            let had = self.covers(start, end);
            let p = ra.on_read(start, end, size, &CFG, self);
            self.add(start, end);
            if let Some(p) = p {
                // Only what is not there yet is fetched.
                let mut off = p.from;
                while off < p.to {
                    let to = (off + p.request).min(p.to);
                    if !self.covers(off, to) {
                        self.requests += 1;
                    }
                    off = to;
                }
                self.add(p.from, p.to);
            }
            had
        }
    }

    impl Context for Present {
        fn present_before(&mut self, start: u64, max: u64) -> u64 {
            let mut n = 0;
            let mut b = start / self.block;
            while n < max && b > 0 && self.blocks.contains(&(b - 1)) {
                n = start - (b - 1) * self.block;
                b -= 1;
            }
            n.min(max)
        }

        fn present_from(&mut self, from: u64, max: u64) -> u64 {
            let mut n = 0;
            let mut b = from / self.block;
            while n < max && self.blocks.contains(&b) {
                b += 1;
                n = b * self.block - from;
            }
            n.min(max)
        }
    }

    #[test]
    fn three_streams_through_one_handle_each_keep_a_full_window() {
        let mut ra = Readahead::default();
        let size = 1 << 30;
        let mut biggest = 0;
        for i in 0..2048u64 {
            for s in [0, 300 * MIB, 600 * MIB] {
                let off = s + i * 128 * KIB;
                if let Some(p) = ra.on_read(off, off + 128 * KIB, size, &CFG, &mut NoContext) {
                    biggest = biggest.max(p.request);
                }
            }
        }
        assert_eq!(biggest, 8 * MIB, "windows grew to the largest requests");
        assert_eq!(ra.window(), 128 * MIB);
    }

    #[test]
    fn a_loader_copying_small_tensors_tail_first_keeps_its_run() {
        // Tensors shorter than the slack: each tail read continues the run, and the first
        // tensor's head, read after its tail, belongs to the run the tail started.
        let mut ra = Readahead::default();
        let size = 1 << 30;
        let tensor = MIB + 4096;
        let mut off = 0;
        while off < 64 * MIB {
            let tail = off + tensor - 4096;
            ra.on_read(tail, tail + 4096, size, &CFG, &mut NoContext);
            let mut pos = off;
            while pos < off + tensor {
                let to = (pos + 128 * KIB).min(off + tensor);
                ra.on_read(pos, to, size, &CFG, &mut NoContext);
                pos = to;
            }
            off += tensor;
        }
        assert_eq!(ra.run_start(), Some(0), "one run across all tensors");
        assert!(ra.window() >= 64 * MIB, "window {}", ra.window());
    }

    #[test]
    fn more_streams_than_a_handle_remembers_are_found_by_their_context() {
        // More interleaved streams than the remembered runs: each read continues none, but
        // the bytes just behind it are there, so each stream keeps its read-ahead.
        let mut ra = Readahead::default();
        let mut file = Present::new();
        let size = 1 << 30;
        let starts: Vec<u64> = (0..MAX_RUNS as u64 + 2).map(|i| i * 150 * MIB).collect();
        let step = 128 * KIB;
        let (mut reads, mut ready) = (0, 0);
        for i in 0..256u64 {
            for &s in &starts {
                let off = s + i * step;
                let had = file.read(&mut ra, off, off + step, size);
                if i >= 16 {
                    reads += 1;
                    ready += usize::from(had);
                }
            }
        }
        assert!(
            ready * 10 >= reads * 9,
            "{ready} of {reads} reads found their bytes prefetched"
        );
        // In whole requests, not a block at a time at each stream's frontier.
        let all_reads = starts.len() * 256;
        assert!(
            file.requests * 3 <= all_reads,
            "{} requests for {all_reads} reads",
            file.requests
        );
    }

    #[test]
    fn a_reader_the_runs_keep_losing_is_worth_a_log_line_and_others_are_not() {
        let size = 1 << 30;
        // Sequential, tail-first loader, random: followed or not sequential-looking.
        let mut seq = Readahead::default();
        read_seq(&mut seq, 0, 64 * MIB, 128 * KIB, size);
        assert!(!seq.lost_track().worth_logging());
        let mut random = Readahead::default();
        for i in 0..1000u64 {
            let off = (i * 7919 * MIB) % (1000 * MIB);
            random.on_read(off, off + 4096, size, &CFG, &mut NoContext);
        }
        assert!(
            !random.lost_track().worth_logging(),
            "{:?}",
            random.lost_track().near_breaks
        );
        // Reads that each jump 3 MiB ahead and come back: near, and lost every time.
        let mut lost = Readahead::default();
        for i in 0..200u64 {
            let off = i * 8 * MIB;
            lost.on_read(off, off + 128 * KIB, size, &CFG, &mut NoContext);
            lost.on_read(
                off + 3 * MIB,
                off + 3 * MIB + 128 * KIB,
                size,
                &CFG,
                &mut NoContext,
            );
        }
        let t = lost.lost_track();
        assert!(
            t.worth_logging(),
            "{} near breaks of {} reads",
            t.near_breaks,
            t.reads
        );
        assert_eq!(t.samples.len(), SAMPLES);
        assert!(t.samples.iter().all(|s| !s.is_empty() && s.len() <= RECENT));
        // Followed, but every read requested its own blocks: worth a line too.
        let mut behind = Readahead::default();
        for i in 0..300u64 {
            behind.on_read(
                i * 128 * KIB,
                (i + 1) * 128 * KIB,
                size,
                &CFG,
                &mut NoContext,
            );
            behind.note_demand();
        }
        assert!(behind.lost_track().worth_logging());
        assert_eq!(behind.lost_track().recent.len(), RECENT);
    }

    #[test]
    fn a_loader_copying_each_tensor_backward_is_prefetched_ahead() {
        // glibc's memmove copies backward when source and destination sit at nearly the same
        // offset within a page (it avoids 4 KiB aliasing), so a loader may fault each tensor in
        // from its end down (the kernel's read-around: 512 KiB around the first fault, then
        // 260 KiB below each next one), tensor after tensor up the file. Seen in the
        // benchmark: every read waited for a request of its own.
        let mut ra = Readahead::default();
        let mut file = Present::new();
        let size = 1 << 30;
        let (mut reads, mut waited) = (0, 0);
        let mut tensor_start = 0;
        let mut k = 0u64;
        while tensor_start < 600 * MIB {
            let tensor = 5 * MIB + (k % 7) * 333 * KIB;
            let end = tensor_start + tensor;
            let mut hi = end;
            let mut lo = end - 256 * KIB;
            let mut first = true;
            while hi > tensor_start {
                let from = lo.max(tensor_start);
                let to = if first {
                    (hi + 256 * KIB).min(size)
                } else {
                    hi + 4 * KIB
                };
                let had = file.read(&mut ra, from, to, size);
                reads += 1;
                waited += usize::from(!had);
                first = false;
                hi = from;
                lo = from.saturating_sub(256 * KIB);
            }
            tensor_start = end;
            k += 1;
        }
        assert!(
            waited * 20 <= reads,
            "{waited} of {reads} reads waited for a request"
        );
    }

    #[test]
    fn random_reads_find_no_context_and_never_prefetch() {
        let mut ra = Readahead::default();
        let mut file = Present::new();
        let size = 1 << 30;
        for i in 0..2000u64 {
            let off = (i * 7919 * MIB + i * 4096) % (1000 * MIB);
            file.read(&mut ra, off, off + 4096, size);
            file.read(&mut ra, off + 4096, off + 8192, size);
        }
        assert_eq!(ra.window(), 0);
        // Only the bytes read: nothing was prefetched.
        assert!(
            file.blocks.len() <= 4000,
            "{} blocks present",
            file.blocks.len()
        );
    }

    #[test]
    fn a_read_right_after_cached_bytes_starts_a_run_with_their_history() {
        let mut ra = Readahead::default();
        let mut file = Present::new();
        let size = 1 << 30;
        // Someone else (another handle, an earlier mount) left [0, 8 MiB) cached.
        file.add(0, 8 * MIB);
        file.read(&mut ra, 8 * MIB, 8 * MIB + 128 * KIB, size);
        assert!(ra.window() >= MIB, "window {}", ra.window());
        assert!(
            file.covers(8 * MIB, 9 * MIB),
            "prefetched ahead of the read"
        );
    }
}
