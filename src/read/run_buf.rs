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
//! Buffers of the usual size ([`POOLED_LEN`]) are mapped from the kernel and recycled through a
//! small pool: a recycled buffer's pages are already there, where a fresh one pays a page fault
//! per 4 KiB (a cold read's second-largest cost on a VM after the hash), and the pool gives
//! memory back exactly (`munmap`), where the allocator kept freed 2 MiB chunks around: 150 MiB
//! more resident for a 1 GiB read.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;

use parking_lot::Mutex;

use crate::cache::direct::ALIGN;

/// The size of the buffers the pool recycles: a fetch's run buffer (`fetch.rs`).
pub const POOLED_LEN: usize = 2 << 20;
/// Idle buffers kept for reuse: 32 MiB at most. Buffers come and go at the pace of read-ahead
/// (a reader frees them as fast as the fetches take them), so a few cover the churn; the
/// bound is what an idle mount keeps resident after a burst.
const POOL_MAX: usize = 16;

/// Idle mapped buffers of [`POOLED_LEN`] bytes (their addresses).
static POOL: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// A mapped buffer of [`POOLED_LEN`] bytes: a recycled one if there is one.
fn take_pooled() -> Option<NonNull<u8>> {
    if let Some(addr) = POOL.lock().pop() {
        return NonNull::new(addr as *mut u8);
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
    NonNull::new(ptr.cast())
}

/// Returns a mapped buffer to the pool, or to the kernel if the pool is full.
fn give_back(ptr: NonNull<u8>) {
    let mut pool = POOL.lock();
    if pool.len() < POOL_MAX {
        pool.push(ptr.as_ptr() as usize);
        return;
    }
    drop(pool);
    // SAFETY: mapped by `take_pooled` with this length; nothing refers to it any more.
    unsafe { libc::munmap(ptr.as_ptr().cast(), POOLED_LEN) };
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
        let pooled = if cap == POOLED_LEN {
            take_pooled()
        } else {
            None
        };
        let (ptr, pooled) = match pooled {
            Some(ptr) => (ptr, true),
            None => {
                let layout = RunBuf::layout(cap);
                // SAFETY: the layout has a non-zero size.
                let ptr = unsafe { alloc(layout) };
                let Some(ptr) = NonNull::new(ptr) else {
                    handle_alloc_error(layout)
                };
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
        assert_eq!((w.len(), w.pending(), w.remaining()), (0, 0, POOLED_LEN));
        w.extend_from_slice(&[1, 2, 3]);
        assert_eq!(&w.cut()[..], &[1, 2, 3]);
        assert!(POOL.lock().len() <= POOL_MAX);
    }

    #[test]
    #[should_panic(expected = "RunWriter overflow")]
    fn writing_past_the_capacity_is_refused() {
        let mut w = RunWriter::with_capacity(8);
        w.extend_from_slice(&[0u8; 9]);
    }
}
