//! One buffer for a stretch of a fetch, handed out block by block while it is still filling.
//!
//! The kernel asks for up to 1 MiB per FUSE read and a reply is one slice, so a read over eight
//! 128 KiB blocks that each had a buffer of their own was copied into a new 1 MiB buffer
//! (5% of a cold read's CPU by the profile of issue 14). A fetch instead fills a run buffer of
//! several blocks front to back and cuts each block out of it the moment the block is whole:
//! the blocks of one buffer lie back to back in memory, so a read over them is a slice of the
//! buffer (`spans.rs`), and no reader waits for more than its own block.
//!
//! Sound by construction: one [`RunWriter`] owns the unfilled tail and writes only there; a
//! piece handed out covers filled bytes only, which are never written again. So a shared
//! reference never sees a byte that changes. The allocation is aligned for `O_DIRECT`
//! (`cache::direct`): a block cut at a block-size offset stays aligned, and the cache writes it
//! straight from here.
//!
//! Buffers of [`POOLED_MIN`] to [`POOLED_LEN`] bytes are mapped from the kernel and recycled
//! through a pool: a recycled buffer's pages are already there, where a fresh one pays a page
//! fault per 4 KiB (a cold read's second-largest cost on a VM after the hash; with 4 readers a
//! tenth of the daemon's CPU). The pool keeps what a burst of readers used until it has been
//! idle a few seconds, then gives it back exactly (`munmap`), where the allocator kept freed
//! 2 MiB chunks around: 150 MiB more resident for a 1 GiB read.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Once, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

use parking_lot::Mutex;

use crate::cache::direct::ALIGN;

/// The size of the buffers the pool recycles: a fetch's run buffer (`fetch.rs`).
pub const POOLED_LEN: usize = 2 << 20;
/// Idle buffers kept at most: 512 MiB, above the default read-ahead budget (256 MiB) and what
/// the hash parks besides. The pool maps a buffer only when it has none idle, so it never
/// holds more than the most buffers in use at once: a high bound costs nothing at the peak,
/// and keeps the pages of a burst of readers for the next burst instead of giving them back
/// and faulting them in again (with 4 readers, 16 idle buffers left a fifth of the fetches on
/// fresh memory).
const POOL_MAX: usize = 256;
/// Idle buffers kept however long they stay idle: 32 MiB, what an idle mount keeps resident;
/// also the bound when there is no thread to trim the pool.
const POOL_KEEP: usize = 16;
/// Buffers beyond [`POOL_KEEP`] idle for this long go back to the kernel: long enough to
/// span the gaps between the reads of one load, short enough that a finished load's memory
/// does not linger.
const IDLE_TRIM: Duration = Duration::from_secs(3);
/// The shortest buffer taken from the pool: a recycled mapping has all its pages resident,
/// and a buffer lives as long as any of its blocks (in read-ahead memory, parked for the
/// hash), so a short buffer on a 2 MiB mapping would hold more than the budget counts; at
/// half the mapping at most twice.
const POOLED_MIN: usize = POOLED_LEN / 2;

/// Idle mapped buffers of [`POOLED_LEN`] bytes (their addresses) and when each came back,
/// oldest first: taken from the back (the warmest), trimmed from the front.
static POOL: Mutex<VecDeque<(usize, Instant)>> = Mutex::new(VecDeque::new());

/// A mapped buffer of [`POOLED_LEN`] bytes, and whether it was recycled (else freshly mapped).
fn take_pooled() -> Option<(NonNull<u8>, bool)> {
    if let Some((addr, _)) = POOL.lock().pop_back() {
        return NonNull::new(addr as *mut u8).map(|p| (p, true));
    }
    // SAFETY: an anonymous private mapping; no file, no address hint.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            POOLED_LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return None;
    }
    NonNull::new(ptr.cast()).map(|p| (p, false))
}

/// Returns a mapped buffer to the pool, or to the kernel if the pool is full.
fn give_back(ptr: NonNull<u8>) {
    let max = if start_trimmer() { POOL_MAX } else { POOL_KEEP };
    let mut pool = POOL.lock();
    if pool.len() < max {
        pool.push_back((ptr.as_ptr() as usize, Instant::now()));
        return;
    }
    drop(pool);
    // SAFETY: a pooled buffer's mapping, given back by its owner's drop: nothing refers to it.
    unsafe { unmap(ptr.as_ptr() as usize) };
}

/// Unmaps a pooled buffer.
///
/// # Safety
/// `addr` is a mapping of [`POOLED_LEN`] bytes made by [`take_pooled`] that nothing refers to
/// any more (neither a [`RunBuf`] nor the pool).
unsafe fn unmap(addr: usize) {
    // SAFETY: as the caller promises.
    unsafe { libc::munmap(addr as *mut libc::c_void, POOLED_LEN) };
}

/// Gives back to the kernel the idle buffers beyond [`POOL_KEEP`] that have been idle for
/// [`IDLE_TRIM`].
fn trim_idle(now: Instant) {
    let gone = take_stale(&mut POOL.lock(), now);
    for addr in gone {
        // SAFETY: taken out of the pool, which held the only reference to an idle buffer.
        unsafe { unmap(addr) };
    }
}

/// Removes from `pool` (oldest first) the buffers beyond [`POOL_KEEP`] idle for
/// [`IDLE_TRIM`] at `now`, and returns them.
fn take_stale(pool: &mut VecDeque<(usize, Instant)>, now: Instant) -> Vec<usize> {
    let mut gone = Vec::new();
    while pool.len() > POOL_KEEP {
        match pool.front() {
            Some(&(addr, since)) if now.saturating_duration_since(since) >= IDLE_TRIM => {
                gone.push(addr);
                pool.pop_front();
            }
            _ => break,
        }
    }
    gone
}

/// Starts, once per process, the thread that trims the pool (an idle mount makes no calls
/// that could do it); whether it runs.
fn start_trimmer() -> bool {
    static STARTED: Once = Once::new();
    static RUNNING: AtomicBool = AtomicBool::new(false);
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("hubfs-buf-trim".into())
            .spawn(|| loop {
                std::thread::sleep(IDLE_TRIM / 3);
                trim_idle(Instant::now());
            });
        match spawned {
            Ok(_) => RUNNING.store(true, Ordering::Release),
            // The pool then keeps only what it keeps however long idle.
            Err(e) => tracing::warn!("no thread to trim the fetch buffer pool: {e}"),
        }
    });
    RUNNING.load(Ordering::Acquire)
}

/// Fetch buffers recycled from the pool, their mapping already there.
static RECYCLED: AtomicU64 = AtomicU64::new(0);
/// Fetch buffers the pool had to map: fresh memory, a page fault per 4 KiB to fill.
static FRESH: AtomicU64 = AtomicU64::new(0);
/// Fetch buffers outside the pool's sizes, from the allocator (which may recycle them too).
static ALLOCATED: AtomicU64 = AtomicU64::new(0);

/// The pool's counters for `hubfs status` (its `read` section): process-wide, as the pool is.
#[derive(Debug, Default)]
pub struct PoolStats;

impl serde::Serialize for PoolStats {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("PoolStats", 3)?;
        st.serialize_field("run_bufs_recycled", &RECYCLED.load(Ordering::Relaxed))?;
        st.serialize_field("run_bufs_fresh", &FRESH.load(Ordering::Relaxed))?;
        st.serialize_field("run_bufs_allocated", &ALLOCATED.load(Ordering::Relaxed))?;
        st.end()
    }
}

/// The allocation shared by a writer and the pieces it handed out.
pub struct RunBuf {
    ptr: NonNull<u8>,
    cap: usize,
    /// Mapped and recycled through the pool (else from the allocator).
    pooled: bool,
    /// Bytes handed out so far, all at the front: never written again.
    handed_out: AtomicUsize,
}

// SAFETY: the allocation is owned by the RunBuf (like a Vec<u8>'s); shared access reads only
// the handed-out front, which no one writes (see the module doc).
unsafe impl Send for RunBuf {}
// SAFETY: as above.
unsafe impl Sync for RunBuf {}

impl RunBuf {
    fn layout(cap: usize) -> Layout {
        match Layout::from_size_align(cap.max(1), ALIGN) {
            Ok(l) => l,
            // Only for a capacity near usize::MAX, which no run reaches.
            Err(_) => handle_alloc_error(Layout::new::<u8>()),
        }
    }

    /// Where the handed-out bytes lie in memory: (address, length).
    pub fn handed_out_span(&self) -> (usize, usize) {
        (
            self.ptr.as_ptr() as usize,
            self.handed_out.load(Ordering::Acquire),
        )
    }

    /// Bytes `[off, off + len)` as shared bytes; `None` unless they were handed out.
    pub fn piece(self: &Arc<Self>, off: usize, len: usize) -> Option<Bytes> {
        let end = off.checked_add(len)?;
        (end <= self.handed_out.load(Ordering::Acquire)).then(|| {
            Bytes::from_owner(Piece {
                buf: self.clone(),
                off,
                len,
            })
        })
    }
}

impl Drop for RunBuf {
    fn drop(&mut self) {
        if self.pooled {
            give_back(self.ptr);
            return;
        }
        // SAFETY: allocated in `RunWriter::with_capacity` with this very layout.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.cap)) }
    }
}

/// A handed-out stretch of a run buffer (what a [`Bytes`] of it owns).
struct Piece {
    buf: Arc<RunBuf>,
    off: usize,
    len: usize,
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `[off, off + len)` lies inside the allocation and was handed out (checked
        // when the piece was made), so it is initialized and never written again.
        unsafe { std::slice::from_raw_parts(self.buf.ptr.as_ptr().add(self.off), self.len) }
    }
}

/// The one writer of a run buffer: appends at the back, cuts filled bytes off the front.
pub struct RunWriter {
    buf: Arc<RunBuf>,
    filled: usize,
}

impl RunWriter {
    /// A buffer with room for `cap` bytes.
    pub fn with_capacity(cap: usize) -> RunWriter {
        // Buffers down to half the mapping (a run's last one, a small run) take a pooled
        // mapping too: one that comes from the allocator may be fresh memory each time, a page
        // fault per 4 KiB (see `POOLED_MIN` for why not shorter ones).
        let pooled = if (POOLED_MIN..=POOLED_LEN).contains(&cap) {
            take_pooled()
        } else {
            None
        };
        let (ptr, pooled) = match pooled {
            Some((ptr, recycled)) => {
                let counter = if recycled { &RECYCLED } else { &FRESH };
                counter.fetch_add(1, Ordering::Relaxed);
                (ptr, true)
            }
            None => {
                let layout = RunBuf::layout(cap);
                // SAFETY: the layout has a non-zero size.
                let ptr = unsafe { alloc(layout) };
                let Some(ptr) = NonNull::new(ptr) else {
                    handle_alloc_error(layout)
                };
                ALLOCATED.fetch_add(1, Ordering::Relaxed);
                (ptr, false)
            }
        };
        RunWriter {
            buf: Arc::new(RunBuf {
                ptr,
                cap,
                pooled,
                handed_out: AtomicUsize::new(0),
            }),
            filled: 0,
        }
    }

    /// Room left.
    pub fn remaining(&self) -> usize {
        self.buf.cap - self.filled
    }

    /// Bytes filled and not yet cut.
    pub fn pending(&self) -> usize {
        self.filled - self.buf.handed_out.load(Ordering::Relaxed)
    }

    /// Bytes filled in all.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Appends `data`; panics if it does not fit (callers append at most `remaining()`).
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        assert!(data.len() <= self.remaining(), "RunWriter overflow");
        // SAFETY: the destination lies inside the allocation (checked above), past every byte
        // handed out, so no shared reference covers it; `data` is borrowed from elsewhere.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.buf.ptr.as_ptr().add(self.filled),
                data.len(),
            )
        };
        self.filled += data.len();
    }

    /// The bytes filled since the last cut, as shared bytes (no copy).
    pub fn cut(&mut self) -> Bytes {
        let from = self.buf.handed_out.load(Ordering::Relaxed);
        // Release: whoever sees the new length (a span join) sees the bytes under it.
        self.buf.handed_out.store(self.filled, Ordering::Release);
        Bytes::from_owner(Piece {
            buf: self.buf.clone(),
            off: from,
            len: self.filled - from,
        })
    }

    /// The buffer, for joining reads over its pieces (`spans.rs`); keeps nothing alive.
    pub fn weak(&self) -> Weak<RunBuf> {
        Arc::downgrade(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_back_to_back_views_of_one_aligned_allocation() {
        let mut w = RunWriter::with_capacity(3 * 4096);
        w.extend_from_slice(&[1u8; 100]);
        w.extend_from_slice(&[2u8; 3996]);
        assert_eq!(w.pending(), 4096);
        let a = w.cut();
        assert_eq!(a.as_ptr() as usize % ALIGN, 0, "aligned for O_DIRECT");
        w.extend_from_slice(&[3u8; 4096]);
        let b = w.cut();
        assert_eq!(b.as_ptr() as usize, a.as_ptr() as usize + 4096, "no copy");
        assert_eq!(&a[..100], &[1u8; 100][..]);
        assert_eq!(&b[..], &[3u8; 4096][..]);
        assert_eq!(w.remaining(), 4096);
        let weak = w.weak();
        let buf = weak.upgrade().expect("alive");
        let both = buf.piece(0, 8192).expect("handed out");
        assert_eq!(&both[4096..], &b[..]);
        assert!(buf.piece(4096, 4097).is_none(), "past what was handed out");
        drop((w, buf, both));
        assert!(weak.upgrade().is_some(), "a piece keeps the buffer");
        drop((a, b));
        assert!(weak.upgrade().is_none(), "gone with its last piece");
    }

    #[test]
    fn pooled_buffers_are_recycled_with_their_bytes_fresh_to_the_writer() {
        let mut w = RunWriter::with_capacity(POOLED_LEN);
        assert!(w.buf.pooled);
        w.extend_from_slice(&vec![9u8; POOLED_LEN]);
        let all = w.cut();
        assert_eq!(all.as_ptr() as usize % ALIGN, 0);
        drop((w, all));
        // Reused or not (other tests share the pool), a new writer starts empty and its
        // pieces hold exactly what it wrote.
        let mut w = RunWriter::with_capacity(POOLED_LEN);
        assert!(w.buf.pooled);
        // A shorter buffer is a pooled mapping too, down to half the mapping.
        assert!(RunWriter::with_capacity(POOLED_MIN).buf.pooled);
        assert!(!RunWriter::with_capacity(POOLED_MIN - 4096).buf.pooled);
        assert_eq!((w.len(), w.pending(), w.remaining()), (0, 0, POOLED_LEN));
        w.extend_from_slice(&[1, 2, 3]);
        assert_eq!(&w.cut()[..], &[1, 2, 3]);
        assert!(POOL.lock().len() <= POOL_MAX);
    }

    #[test]
    fn idle_buffers_beyond_the_kept_few_go_back_to_the_kernel_oldest_first() {
        let t0 = Instant::now();
        let mut pool: VecDeque<(usize, Instant)> = (0..POOL_KEEP + 4)
            .map(|i| (i, t0 + Duration::from_millis(i as u64)))
            .collect();
        assert!(
            take_stale(&mut pool, t0).is_empty(),
            "none idle long enough"
        );
        // The first two have been idle long enough, the rest not yet.
        let gone = take_stale(&mut pool, t0 + IDLE_TRIM + Duration::from_millis(1));
        assert_eq!(gone, vec![0, 1]);
        let gone = take_stale(&mut pool, t0 + 2 * IDLE_TRIM);
        assert_eq!(gone, vec![2, 3], "never below the kept few");
        assert_eq!(pool.len(), POOL_KEEP);
        assert_eq!(pool.front().map(|e| e.0), Some(4));
    }

    #[test]
    #[should_panic(expected = "RunWriter overflow")]
    fn writing_past_the_capacity_is_refused() {
        let mut w = RunWriter::with_capacity(8);
        w.extend_from_slice(&[0u8; 9]);
    }

    #[test]
    #[should_panic(expected = "RunWriter overflow")]
    fn writing_past_the_capacity_of_a_short_pooled_buffer_is_refused() {
        // The mapping is longer than the buffer: only the check stops a write past it.
        let mut w = RunWriter::with_capacity(POOLED_MIN);
        assert!(w.buf.pooled);
        w.extend_from_slice(&vec![0u8; POOLED_MIN + 1]);
    }
}
