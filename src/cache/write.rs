//! The write path of [`BlockCache`]: reserving room, finding or creating the segment, writing
//! data then record, and publishing the block in the index.
//!
//! Different blocks of one segment may be written by different threads at once: each writes its
//! own slot's data and record with positional I/O, and publishes under the shard lock.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::block_cache::{now_secs, BlockCache};
use super::evict::Reservation;
use super::index::{BlobEntry, Segment};
use super::key::BlobKey;
use super::layout::HEADER_LEN;
use super::segment::{self, Record};
use super::stats::Counters;

impl BlockCache {
    /// Stores one whole block (`data.len()` = block size, or the tail length for the last
    /// block). May evict least recently used segments first. A block already present is left as
    /// is (same key, same bytes). Success does not pin the block: a later write may evict it at
    /// any time, so serve readers from the buffer just written, not by reading it back.
    /// If the block cannot fit even in an empty cache (cap smaller than one block), it is not
    /// stored and Ok is returned.
    pub fn write_block(
        &self,
        key: &BlobKey,
        blob_size: u64,
        idx: u64,
        data: &[u8],
    ) -> io::Result<()> {
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
        let (seg, slot) = self.layout.locate(idx);
        // Reserve as if the segment had to be created; the header part is given back if not.
        let Some(mut reservation) = self.reserve(HEADER_LEN + len) else {
            tracing::debug!(%key, idx, "cache cap too small for one block; not cached");
            return Ok(());
        };
        let Some((incarnation, file)) =
            self.segment_for_write(key, blob_size, seg, slot, &mut reservation)?
        else {
            return Ok(()); // stored by a concurrent writer meanwhile
        };
        let crc = crc32c::crc32c(data);
        // Data first, then the record that declares it (see segment.rs on crash safety).
        file.write_all_at(data, self.layout.data_offset(slot))?;
        // `len` <= 16 MiB (the block size limit) always fits a u32.
        segment::write_record(
            &file,
            slot,
            Some(Record {
                crc,
                len: len as u32,
            }),
        )?;

        let tick = self.tick();
        let mut shard = self.index.lock(key);
        if let Some((s, present_blocks, _)) = shard.segment_mut(key, blob_size, seg) {
            if s.incarnation == incarnation && s.present & (1 << slot) == 0 {
                s.present |= 1 << slot;
                s.crcs[slot as usize] = crc;
                s.bytes += len;
                s.last_used = tick;
                s.touched_secs = now_secs();
                *present_blocks += 1;
                reservation.commit(len);
            }
        }
        Counters::bump(&self.counters.blocks_written);
        Ok(())
    }

    /// Finds or creates the segment a new block goes to and returns its incarnation and file;
    /// None if the block is already present. Settles the header part of `reservation`.
    fn segment_for_write(
        &self,
        key: &BlobKey,
        blob_size: u64,
        seg: u64,
        slot: u64,
        reservation: &mut Reservation<'_>,
    ) -> io::Result<Option<(u64, Arc<File>)>> {
        let mut shard = self.index.lock(key);
        if shard
            .blobs
            .get(key)
            .is_some_and(|b| b.blob_size != blob_size)
        {
            // One key names one content, hence one size; a different size means the cached
            // copy was stored under a wrong size, so it is replaced.
            tracing::warn!(%key, blob_size, "cached blob has another size; replacing it");
            self.remove_blob_locked(&mut shard, key);
        }
        let existing = shard
            .blob(key, blob_size)
            .and_then(|b| b.segments.get(&seg))
            .map(|s| (s.present & (1 << slot) != 0, s.incarnation));
        if let Some((present, incarnation)) = existing {
            if present {
                return Ok(None);
            }
            let cached = self.fds.get(key, seg, incarnation);
            let file = match cached {
                Some(f) => Some(f),
                None => match OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(self.segment_path(key, seg))
                {
                    Ok(f) => {
                        Counters::bump(&self.counters.segment_opens);
                        let f = Arc::new(f);
                        self.fds.insert(key, seg, incarnation, Arc::clone(&f));
                        Some(f)
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        let lost = self.remove_segment_locked(&mut shard, key, seg);
                        self.counters
                            .corrupt_dropped
                            .fetch_add(lost.blocks, Ordering::Relaxed);
                        None // recreated below
                    }
                    Err(e) => return Err(e),
                },
            };
            if let Some(file) = file {
                reservation.release(HEADER_LEN);
                return Ok(Some((incarnation, file)));
            }
        }
        let file = Arc::new(self.create_segment_file(key, blob_size, seg)?);
        let incarnation = self.incarnations.fetch_add(1, Ordering::Relaxed);
        let blob = shard
            .blobs
            .entry(*key)
            .or_insert_with(|| BlobEntry::new(blob_size));
        blob.segments.insert(
            seg,
            Segment {
                incarnation,
                version: 0,
                present: 0,
                crcs: vec![0; self.layout.blocks_per_segment() as usize].into_boxed_slice(),
                bytes: HEADER_LEN,
                last_used: self.tick(),
                touched_secs: now_secs(),
                verified: false,
            },
        );
        reservation.commit(HEADER_LEN);
        self.fds.insert(key, seg, incarnation, Arc::clone(&file));
        Ok(Some((incarnation, file)))
    }

    fn create_segment_file(&self, key: &BlobKey, blob_size: u64, seg: u64) -> io::Result<File> {
        let path = self.segment_path(key, seg);
        Counters::bump(&self.counters.segment_opens);
        match segment::create(&path, &self.layout, key, blob_size, seg) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // The fan-out directory is made lazily (or was removed behind our back).
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                segment::create(&path, &self.layout, key, blob_size, seg)
            }
            other => other,
        }
    }
}
