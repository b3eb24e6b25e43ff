//! The write path of [`BlockCache`]: reserving room, finding or creating the blob's files,
//! writing data then record, and publishing the block in the index.
//!
//! Different blocks of one blob may be written by different threads at once: each writes its
//! own block's data and record with positional I/O, and publishes under the shard lock.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::block_cache::{now_secs, BlockCache};
use super::direct;
use super::evict::Reservation;
use super::fds::BlobFiles;
use super::index::{BlobEntry, Region};
use super::key::BlobKey;
use super::layout::alloc;
use super::sidecar::{self, Record};
use super::stats::Counters;

/// Where a block is about to be written.
struct Target {
    incarnation: u64,
    files: Arc<BlobFiles>,
}

impl BlockCache {
    /// Stores one whole block (`data.len()` = block size, or the tail length for the last
    /// block). May evict least recently used regions first. A block already present is left as
    /// is (same key, same bytes). Success does not pin the block: a later write may evict it at
    /// any time, so serve readers from the buffer just written, not by reading it back.
    /// If the block cannot fit even in an empty cache (cap smaller than one block), or its blob
    /// is pinned while being removed, it is not stored and Ok is returned.
    pub fn write_block(
        &self,
        key: &BlobKey,
        blob_size: u64,
        idx: u64,
        data: &[u8],
    ) -> io::Result<()> {
        self.write_block_with_crc(key, blob_size, idx, data, self.crc_of(data))
    }

    /// [`BlockCache::write_block`] for a caller that already has the block's crc32c (the read
    /// path computes it once for the cache record and the verification fingerprint).
    pub fn write_block_with_crc(
        &self,
        key: &BlobKey,
        blob_size: u64,
        idx: u64,
        data: &[u8],
        crc: u32,
    ) -> io::Result<()> {
        debug_assert_eq!(crc, self.crc_of(data));
        let len = self.expect_block(blob_size, idx)?;
        if data.len() as u64 != len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "block {idx} of a {blob_size}-byte blob is {len} bytes, got {}",
                    data.len()
                ),
            ));
        }
        if self.contains_block(key, blob_size, idx) {
            return Ok(());
        }
        // Reserve as if the blob's files had to be created; the sidecar part is given back if
        // they exist.
        let meta_bytes = alloc(sidecar::len(&self.layout, blob_size));
        let Some(mut reservation) = self.reserve(meta_bytes + alloc(len)) else {
            tracing::debug!(%key, idx, "cache cap too small for one block; not cached");
            return Ok(());
        };
        let Some(target) = self.target_for_write(key, blob_size, idx, &mut reservation)? else {
            return Ok(()); // present meanwhile, or not storable now
        };
        let written = self.write_data_then_record(&target.files, blob_size, idx, data, crc);
        let crc = match written {
            Ok(crc) => crc,
            Err(e) => {
                self.end_write(key, blob_size, idx, target.incarnation, None);
                return Err(e);
            }
        };
        if self.end_write(key, blob_size, idx, target.incarnation, Some(crc)) {
            reservation.commit(alloc(len));
        }
        Counters::bump(&self.counters.blocks_written);
        Ok(())
    }

    /// Stores consecutive blocks `first`, `first + 1`, ... (each with its crc32c) like
    /// [`BlockCache::write_block_with_crc`] each, but writes the data of the ones not yet
    /// present with one vectored `O_DIRECT` write where they qualify: one device request per
    /// group instead of one per block (each costs a wait, a context switch and, on a VM, an
    /// exit to the host). Blocks that cannot be stored are skipped as there.
    pub fn write_run_with_crc(
        &self,
        key: &BlobKey,
        blob_size: u64,
        first: u64,
        blocks: &[(&[u8], u32)],
    ) -> io::Result<()> {
        if blocks.len() <= 1 {
            return match blocks.first() {
                Some((data, crc)) => self.write_block_with_crc(key, blob_size, first, data, *crc),
                None => Ok(()),
            };
        }
        struct Pending<'c, 'd> {
            idx: u64,
            data: &'d [u8],
            crc: u32,
            target: Target,
            reservation: Reservation<'c>,
        }
        let mut pending: Vec<Pending<'_, '_>> = Vec::with_capacity(blocks.len());
        for (i, (data, crc)) in blocks.iter().enumerate() {
            let idx = first + i as u64;
            debug_assert_eq!(*crc, self.crc_of(data));
            let len = self.expect_block(blob_size, idx)?;
            if data.len() as u64 != len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("block {idx}: {len} bytes expected, got {}", data.len()),
                ));
            }
            if self.contains_block(key, blob_size, idx) {
                continue;
            }
            let meta_bytes = alloc(sidecar::len(&self.layout, blob_size));
            let Some(mut reservation) = self.reserve(meta_bytes + alloc(len)) else {
                continue;
            };
            let Some(target) = self.target_for_write(key, blob_size, idx, &mut reservation)? else {
                continue;
            };
            pending.push(Pending {
                idx,
                data,
                crc: *crc,
                target,
                reservation,
            });
        }
        // The data: consecutive blocks into one file in one vectored direct write; what that
        // does not cover, the ordinary way.
        let mut written = vec![false; pending.len()];
        let mut failure = None;
        let mut at = 0;
        while at < pending.len() {
            let mut end = at + 1;
            while end < pending.len()
                && pending[end].idx == pending[end - 1].idx + 1
                && Arc::ptr_eq(&pending[end].target.files, &pending[at].target.files)
            {
                end += 1;
            }
            let files = &pending[at].target.files;
            let offset = self.layout.block_offset(pending[at].idx);
            let bufs: Vec<&[u8]> = pending[at..end].iter().map(|p| p.data).collect();
            let mut done = 0u64;
            match direct::write_blocks_at(files.direct(), &bufs, offset) {
                Ok(n) => done = n,
                Err(e) => failure = Some(e),
            }
            let mut block_start = 0u64;
            for (i, p) in pending[at..end].iter().enumerate() {
                let len = p.data.len() as u64;
                if failure.is_none() {
                    if block_start + len <= done {
                        Counters::bump(&self.counters.direct_writes);
                        written[at + i] = true;
                    } else {
                        let offset = self.layout.block_offset(p.idx);
                        match files.data.write_all_at(p.data, offset) {
                            Ok(()) => written[at + i] = true,
                            Err(e) => failure = Some(e),
                        }
                    }
                }
                block_start += len;
            }
            at = end;
        }
        // Then each block's record, and its publication.
        for (p, ok) in pending.iter_mut().zip(written) {
            let recorded = ok
                && failure.is_none()
                && match sidecar::write_record(
                    &p.target.files.meta,
                    &self.layout,
                    blob_size,
                    p.idx,
                    Some(Record {
                        crc: p.crc,
                        len: p.data.len() as u32,
                    }),
                ) {
                    Ok(()) => true,
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                };
            let crc = recorded.then_some(p.crc);
            if self.end_write(key, blob_size, p.idx, p.target.incarnation, crc) {
                p.reservation
                    .commit(alloc(self.layout.block_len(blob_size, p.idx).unwrap_or(0)));
            }
            if recorded {
                Counters::bump(&self.counters.blocks_written);
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Data first, then the record that declares it (see sidecar.rs on crash safety).
    fn write_data_then_record(
        &self,
        files: &BlobFiles,
        blob_size: u64,
        idx: u64,
        data: &[u8],
        crc: u32,
    ) -> io::Result<u32> {
        let offset = self.layout.block_offset(idx);
        // Straight to the disk where the length allows (see direct.rs): no second page-cache
        // copy of the block.
        let landed = direct::write_blocks_at(files.direct(), &[data], offset)?;
        if landed == data.len() as u64 {
            Counters::bump(&self.counters.direct_writes);
        } else {
            files.data.write_all_at(data, offset)?;
        }
        // `len` <= 16 MiB (the block size limit) always fits a u32.
        let record = Record {
            crc,
            len: data.len() as u32,
        };
        sidecar::write_record(&files.meta, &self.layout, blob_size, idx, Some(record))?;
        Ok(crc)
    }

    /// Publishes a written block (`crc` Some) or gives up on it, and ends the region's write.
    /// True if the block became present (its bytes now belong to the region).
    fn end_write(
        &self,
        key: &BlobKey,
        blob_size: u64,
        idx: u64,
        incarnation: u64,
        crc: Option<u32>,
    ) -> bool {
        let (region, slot) = self.layout.locate(idx);
        let len = self.layout.block_len(blob_size, idx).unwrap_or(0);
        let tick = self.tick();
        let mut shard = self.index.lock(key);
        let Some(blob) = shard
            .blobs
            .get_mut(key)
            .filter(|b| b.incarnation == incarnation)
        else {
            return false; // the files were deleted meanwhile: the write went nowhere
        };
        let Some(r) = blob.regions.get_mut(&region) else {
            return false;
        };
        r.writers -= 1;
        let published = match crc {
            Some(crc) if r.present & (1 << slot) == 0 && !blob.doomed => {
                r.present |= 1 << slot;
                r.crcs[slot as usize] = crc;
                r.bytes += alloc(len);
                r.last_used = tick;
                blob.present_blocks += 1;
                true
            }
            _ => false,
        };
        if r.present == 0 && r.writers == 0 {
            blob.regions.remove(&region);
        }
        published
    }

    /// Finds or creates the blob's files and registers a write into the block's region; None
    /// if the block is already present or the blob cannot take writes now (pinned while being
    /// removed, or pinned under another size). Settles the sidecar part of `reservation`.
    fn target_for_write(
        &self,
        key: &BlobKey,
        blob_size: u64,
        idx: u64,
        reservation: &mut Reservation<'_>,
    ) -> io::Result<Option<Target>> {
        let (region, slot) = self.layout.locate(idx);
        let mut shard = self.index.lock(key);
        if let Some(b) = shard.blobs.get(key) {
            if b.doomed || b.blob_size != blob_size {
                if b.pinned() {
                    return Ok(None);
                }
                if !b.doomed {
                    // One key names one content, hence one size; a different size means the
                    // cached copy was stored under a wrong size, so it is replaced.
                    tracing::warn!(%key, blob_size, "cached blob has another size; replacing it");
                }
                self.delete_blob_locked(&mut shard, key);
            }
        }
        let existing = shard.blobs.get(key).map(|b| b.incarnation);
        let (incarnation, files) = match existing {
            Some(incarnation) => {
                reservation.release(alloc(sidecar::len(&self.layout, blob_size)));
                if shard.blobs.get(key).is_some_and(|b| b.has(region, slot)) {
                    return Ok(None);
                }
                match self.fds.get(key, incarnation) {
                    Some(f) => (incarnation, f),
                    None => {
                        drop(shard);
                        match self.open_files(key, blob_size, incarnation)? {
                            Some(f) => {
                                shard = self.index.lock(key);
                                if shard
                                    .blob(key, blob_size)
                                    .is_none_or(|b| b.incarnation != incarnation)
                                {
                                    return Ok(None); // removed meanwhile; the block is not stored
                                }
                                (incarnation, f)
                            }
                            None => return Ok(None), // lost; forgotten by open_files
                        }
                    }
                }
            }
            None => {
                let files = Arc::new(self.create_files(key, blob_size)?);
                let incarnation = self.incarnations.fetch_add(1, Ordering::Relaxed);
                let meta_bytes = alloc(sidecar::len(&self.layout, blob_size));
                shard
                    .blobs
                    .insert(*key, BlobEntry::new(blob_size, incarnation, meta_bytes));
                reservation.commit(meta_bytes);
                self.fds.insert(key, incarnation, Arc::clone(&files));
                (incarnation, files)
            }
        };
        let Some(blob) = shard.blob_mut(key, blob_size) else {
            return Ok(None);
        };
        if blob.has(region, slot) {
            return Ok(None);
        }
        let (tick, now, per_region) = (self.tick(), now_secs(), self.layout.blocks_per_region());
        blob.regions
            .entry(region)
            .or_insert_with(|| Region::new(per_region, tick, now))
            .writers += 1;
        Ok(Some(Target { incarnation, files }))
    }

    /// Creates a blob's data file (sparse, full length) and its empty sidecar. The data file
    /// comes first: a crash in between leaves a data file without sidecar, which the next
    /// open deletes.
    fn create_files(&self, key: &BlobKey, blob_size: u64) -> io::Result<BlobFiles> {
        let paths = self.paths(key);
        Counters::bump(&self.counters.file_opens);
        let data = match create_data_file(&paths.data, blob_size) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // The fan-out directory is made lazily (or was removed behind our back).
                if let Some(parent) = paths.data.parent() {
                    crate::private::create_dir_all(parent)?;
                }
                create_data_file(&paths.data, blob_size)
            }
            other => other,
        }?;
        let meta = sidecar::create(&paths.meta, &self.layout, key, blob_size)?;
        Ok(BlobFiles::new(data, meta))
    }
}

fn create_data_file(path: &Path, blob_size: u64) -> io::Result<File> {
    let file = crate::private::open_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.set_len(blob_size)?;
    Ok(file)
}
