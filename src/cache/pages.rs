//! Dropping a data file's pages from the OS page cache once a reader has been served.
//!
//! A block fetched from the Hub is written to its data file (so a re-read after a remount never
//! moves it again) and handed to the kernel in a FUSE reply, which caches the *mounted* file's
//! pages. Left alone, the data file's pages stay cached too: two copies of every byte read
//! cold, 2 GiB of page cache per GiB read. Once the read path has served a range, it asks for
//! that range's pages to go: a background thread writes the range back
//! (`sync_file_range`: `POSIX_FADV_DONTNEED` leaves dirty pages alone) and then drops it.
//!
//! Why not `O_DIRECT`: it would make each cache write a synchronous disk write in the fetch
//! that received the block, and needs aligned buffers; the write-back here happens anyway
//! (the cache is persistent), only sooner and off the fetch path.
//!
//! Re-reads stay fast: the mounted file's pages are in the page cache; a new mount reads the
//! data file from disk once (FUSE passthrough), after which its pages are cached as usual.
//!
//! Bounded: a queue of `QUEUE` requests; when it is full a request is dropped (its pages merely
//! stay cached, the kernel reclaims them under pressure). Best effort throughout: a failure
//! costs memory, never correctness.

use std::os::fd::AsRawFd;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use super::fds::BlobFiles;

/// Requests waiting for the dropper thread (each covers megabytes).
const QUEUE: usize = 256;

pub(super) struct PageDropper {
    tx: SyncSender<(Arc<BlobFiles>, u64, u64)>,
}

impl PageDropper {
    /// Starts the dropper thread; it ends when the dropper is dropped.
    pub(super) fn start() -> std::io::Result<PageDropper> {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("hubfs-pagedrop".into())
            .spawn(move || run(rx))?;
        Ok(PageDropper { tx })
    }

    /// Asks for `[offset, offset + len)` of `files.data` to leave the page cache.
    pub(super) fn request(&self, files: Arc<BlobFiles>, offset: u64, len: u64) -> bool {
        match self.tx.try_send((files, offset, len)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

fn run(rx: Receiver<(Arc<BlobFiles>, u64, u64)>) {
    while let Ok((files, offset, len)) = rx.recv() {
        drop_range(&files.data, offset, len);
    }
}

/// Writes the range back, then drops its pages. Errors are ignored (see the module doc).
pub(super) fn drop_range(file: &std::fs::File, offset: u64, len: u64) {
    let (Ok(off), Ok(n)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    let fd = file.as_raw_fd();
    // SAFETY: plain syscalls on a descriptor this process owns (kept open by the Arc); they
    // read no memory of ours.
    unsafe {
        libc::sync_file_range(
            fd,
            off,
            n,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        );
        libc::posix_fadvise(fd, off, n, libc::POSIX_FADV_DONTNEED);
    }
}
