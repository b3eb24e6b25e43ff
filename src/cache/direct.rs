//! Cache writes that bypass the page cache (`O_DIRECT`), and the aligned buffers they need.
//!
//! A block fetched cold is handed to the kernel in a FUSE reply, which caches it as the mounted
//! file's page. Writing it to the data file through the page cache costs a second copy of every
//! byte, a fresh page per 4 KiB (the most expensive part of a cold read on a VM), then the
//! write-back and the dropping of those pages (`pages.rs`). Written with `O_DIRECT` from the
//! buffer it arrived in, the block goes from that buffer to the disk: no copy, no page.
//!
//! `O_DIRECT` needs the buffer's address, the length and the file offset aligned to the
//! device's logical block size; [`ALIGN`] (4 KiB) covers every device in use. The fetch
//! assembles blocks in aligned buffers; bytes that came in a buffer of another source (the
//! huggingface_hub cache, the CAS, the shared cache) are copied into one first. A file's short
//! last block and filesystems without `O_DIRECT` (tmpfs) take the ordinary buffered write: same
//! bytes on disk, only the cost differs. Consecutive blocks go in one vectored write (the read
//! path groups read-ahead blocks): one device request, wait and context switch per group.
//!
//! The write is synchronous (it returns once the device has the data, with no page left
//! behind), which is also what made the old path's write-back happen anyway, only later.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use bytes::Bytes;

/// Alignment of address, length and offset that `O_DIRECT` accepts on any device here.
pub const ALIGN: usize = 4096;

/// A fixed-capacity byte buffer aligned to [`ALIGN`], filled by appending, frozen into a
/// [`Bytes`] without a copy.
pub struct AlignedBuf {
    ptr: std::ptr::NonNull<u8>,
    cap: usize,
    len: usize,
}

// SAFETY: the buffer owns its allocation exclusively (like a Vec<u8>).
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads the initialized prefix.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// An empty buffer with room for `cap` bytes (at least one byte is allocated).
    pub fn with_capacity(cap: usize) -> AlignedBuf {
        let cap = cap.max(1);
        let layout = Self::layout(cap);
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc(layout) };
        let Some(ptr) = std::ptr::NonNull::new(ptr) else {
            handle_alloc_error(layout)
        };
        AlignedBuf { ptr, cap, len: 0 }
    }

    fn layout(cap: usize) -> Layout {
        match Layout::from_size_align(cap, ALIGN) {
            Ok(l) => l,
            // Only for a capacity near usize::MAX, which no block reaches.
            Err(_) => handle_alloc_error(Layout::new::<u8>()),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left.
    pub fn remaining(&self) -> usize {
        self.cap - self.len
    }

    /// Appends `data`; panics if it does not fit (callers append at most `remaining()`).
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        assert!(data.len() <= self.remaining(), "AlignedBuf overflow");
        // SAFETY: the destination lies inside the allocation (checked above) and cannot overlap
        // `data`, which is borrowed from elsewhere while `self` is borrowed mutably.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                data.len(),
            )
        };
        self.len += data.len();
    }

    /// The filled bytes as a shared buffer (no copy; the allocation goes with the last holder).
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are initialized (only `extend_from_slice` grows `len`).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `with_capacity` with this very layout.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.cap)) }
    }
}

/// Whether `data` at `offset` can be written with `O_DIRECT`.
pub fn qualifies(data: &[u8], offset: u64) -> bool {
    !data.is_empty()
        && (data.as_ptr() as usize).is_multiple_of(ALIGN)
        && data.len().is_multiple_of(ALIGN)
        && offset.is_multiple_of(ALIGN as u64)
}

/// A second descriptor of `data` (the same open file's inode, whatever happened to its name
/// since) for `O_DIRECT` writes; None where the filesystem refuses `O_DIRECT`.
pub fn open_for(data: &File) -> Option<File> {
    let path = format!("/proc/self/fd/{}", data.as_raw_fd());
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

/// Writes the buffers back to back from `offset` through `direct` (the `O_DIRECT` descriptor of
/// `data`, if any) when their lengths and the offset allow; buffers whose address is not
/// aligned (bytes that came from another source than the fetch's own buffers) are first copied
/// into one aligned buffer: a copy in memory still costs far less than a page-cache write.
/// Returns how many bytes landed (0: none; the caller writes the rest the ordinary way).
pub fn write_blocks_at(direct: Option<&File>, bufs: &[&[u8]], offset: u64) -> io::Result<u64> {
    let Some(direct) = direct else {
        return Ok(0);
    };
    let sizes_fit = offset.is_multiple_of(ALIGN as u64)
        && bufs
            .iter()
            .all(|b| !b.is_empty() && b.len().is_multiple_of(ALIGN));
    if !sizes_fit {
        return Ok(0);
    }
    if bufs.iter().all(|b| qualifies(b, offset)) {
        return write_vectored_at(direct, bufs, offset);
    }
    let mut joined = AlignedBuf::with_capacity(bufs.iter().map(|b| b.len()).sum());
    for b in bufs {
        joined.extend_from_slice(b);
    }
    write_vectored_at(direct, &[joined.as_ref()], offset)
}

/// Writes the buffers back to back from `offset` through `direct` with one `pwritev` (each
/// qualifies). Returns how many bytes landed: all of them, fewer after a short write, or 0
/// where the device refuses (`EINVAL`); the caller writes the rest the ordinary way.
pub fn write_vectored_at(direct: &File, bufs: &[&[u8]], offset: u64) -> io::Result<u64> {
    let iov: Vec<libc::iovec> = bufs
        .iter()
        .map(|b| libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    let (Ok(off), Ok(cnt)) = (
        libc::off_t::try_from(offset),
        libc::c_int::try_from(iov.len()),
    ) else {
        return Ok(0);
    };
    loop {
        // SAFETY: every iovec points into a live buffer of `bufs` of the stated length; pwritev
        // only reads them.
        let n = unsafe { libc::pwritev(direct.as_raw_fd(), iov.as_ptr(), cnt, off) };
        if n >= 0 {
            return Ok(n as u64);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EINVAL) => return Ok(0),
            _ => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn aligned_buffers_freeze_without_copy_and_qualify() {
        let mut b = AlignedBuf::with_capacity(2 * ALIGN);
        b.extend_from_slice(&[7u8; ALIGN]);
        b.extend_from_slice(&[9u8; ALIGN]);
        assert_eq!(b.remaining(), 0);
        let ptr = b.as_ref().as_ptr();
        let frozen = b.freeze();
        assert_eq!(frozen.as_ptr(), ptr, "no copy");
        assert!(qualifies(&frozen, 0));
        assert!(!qualifies(&frozen[..100], 0), "short");
        assert!(!qualifies(&frozen[1..ALIGN + 1], 0), "unaligned address");
        assert!(!qualifies(&frozen, 512), "unaligned offset");
        assert_eq!(frozen[ALIGN - 1], 7);
        assert_eq!(frozen[ALIGN], 9);
    }

    #[test]
    fn direct_writes_land_where_buffered_reads_see_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.set_len(4 * ALIGN as u64).unwrap();
        let mut b = AlignedBuf::with_capacity(ALIGN);
        b.extend_from_slice(&[5u8; ALIGN]);
        let b = b.freeze();
        let direct = open_for(&f); // None: a filesystem without O_DIRECT (the plain write then)
        let landed = write_blocks_at(direct.as_ref(), &[&b], ALIGN as u64).unwrap();
        if landed < ALIGN as u64 {
            f.write_all_at(&b, ALIGN as u64).unwrap();
        }
        let mut back = vec![0u8; ALIGN];
        f.read_exact_at(&mut back, ALIGN as u64).unwrap();
        assert_eq!(back, vec![5u8; ALIGN]);
        // Two buffers back to back in one vectored write.
        let mut c = AlignedBuf::with_capacity(ALIGN);
        c.extend_from_slice(&[6u8; ALIGN]);
        let c = c.freeze();
        let landed = write_blocks_at(direct.as_ref(), &[&b, &c], 2 * ALIGN as u64).unwrap();
        if landed < 2 * ALIGN as u64 {
            f.write_all_at(&b, 2 * ALIGN as u64).unwrap();
            f.write_all_at(&c, 3 * ALIGN as u64).unwrap();
        }
        let mut back = vec![0u8; 2 * ALIGN];
        f.read_exact_at(&mut back, 2 * ALIGN as u64).unwrap();
        assert_eq!(&back[..ALIGN], &[5u8; ALIGN][..]);
        assert_eq!(&back[ALIGN..], &[6u8; ALIGN][..]);
        // Unaligned memory (bytes from another source) is copied into an aligned buffer first;
        // a length the device cannot take directly is left to the caller.
        let unaligned = vec![8u8; ALIGN + 1];
        let landed = write_blocks_at(direct.as_ref(), &[&unaligned[1..]], 0).unwrap();
        if landed < ALIGN as u64 {
            f.write_all_at(&unaligned[1..], 0).unwrap();
        }
        let mut back = vec![0u8; ALIGN];
        f.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(back, vec![8u8; ALIGN]);
        assert_eq!(
            write_blocks_at(direct.as_ref(), &[&b[..100]], 0).unwrap(),
            0
        );
        if direct.is_some() {
            assert!(
                landed == ALIGN as u64,
                "copied into an aligned buffer and written directly"
            );
        }
    }
}
