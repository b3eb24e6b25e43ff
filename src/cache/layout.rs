//! Geometry of the block store: how a blob splits into blocks, blocks group into segment files,
//! and where each block lives inside its segment file.
//!
//! Block `i` of a blob covers bytes `[i*block_size, min((i+1)*block_size, blob_size))`; segment
//! `s` holds blocks `s*B .. (s+1)*B` (B = blocks per segment) at fixed offsets after a page-sized
//! header, so a cached block is read with one `pread` at a computed offset.

use std::io;

/// Segment files aim at 4 MiB of data: large enough that a 100 GiB cache is ~25k files (cheap to
/// scan at startup, few open descriptors), small enough that evicting one frees little that is
/// still hot.
const SEGMENT_TARGET_BYTES: u64 = 4 << 20;

/// The in-memory presence bitmap of a segment is one `u64`.
pub(crate) const MAX_BLOCKS_PER_SEGMENT: u64 = 64;

/// Header bytes before the first block: one page, so block data stays page-aligned.
pub(crate) const HEADER_LEN: u64 = 4096;

const MIN_BLOCK: u64 = 4096;
const MAX_BLOCK: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    block_size: u64,
    blocks_per_segment: u64,
}

impl Layout {
    pub(crate) fn new(block_size: u64) -> io::Result<Layout> {
        if !(MIN_BLOCK..=MAX_BLOCK).contains(&block_size) || !block_size.is_multiple_of(MIN_BLOCK) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cache block size {block_size} must be a multiple of 4 KiB between 4 KiB and 16 MiB"),
            ));
        }
        let blocks_per_segment =
            (SEGMENT_TARGET_BYTES / block_size).clamp(1, MAX_BLOCKS_PER_SEGMENT);
        Ok(Layout {
            block_size,
            blocks_per_segment,
        })
    }

    pub(crate) fn block_size(&self) -> u64 {
        self.block_size
    }

    pub(crate) fn blocks_per_segment(&self) -> u64 {
        self.blocks_per_segment
    }

    pub(crate) fn nblocks(&self, blob_size: u64) -> u64 {
        blob_size.div_ceil(self.block_size)
    }

    pub(crate) fn nsegments(&self, blob_size: u64) -> u64 {
        self.nblocks(blob_size).div_ceil(self.blocks_per_segment)
    }

    /// Length of block `idx`, or None past the end of the blob.
    pub(crate) fn block_len(&self, blob_size: u64, idx: u64) -> Option<u64> {
        let start = idx.checked_mul(self.block_size)?;
        (start < blob_size).then(|| (blob_size - start).min(self.block_size))
    }

    /// (segment number, slot inside the segment) of block `idx`.
    pub(crate) fn locate(&self, idx: u64) -> (u64, u64) {
        (idx / self.blocks_per_segment, idx % self.blocks_per_segment)
    }

    /// Block index of slot 0 of segment `seg`.
    pub(crate) fn first_block(&self, seg: u64) -> u64 {
        seg * self.blocks_per_segment
    }

    /// Bitmap with one bit per block that segment `seg` of a `blob_size` blob holds when full.
    pub(crate) fn full_mask(&self, blob_size: u64, seg: u64) -> u64 {
        let n = self
            .nblocks(blob_size)
            .saturating_sub(self.first_block(seg))
            .min(self.blocks_per_segment);
        if n >= 64 {
            u64::MAX
        } else {
            (1u64 << n) - 1
        }
    }

    /// File offset of the data of `slot`.
    pub(crate) fn data_offset(&self, slot: u64) -> u64 {
        HEADER_LEN + slot * self.block_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        let l = Layout::new(4096).unwrap();
        assert_eq!(l.blocks_per_segment(), 64);
        assert_eq!(l.nblocks(0), 0);
        assert_eq!(l.nblocks(1), 1);
        assert_eq!(l.nblocks(4096), 1);
        assert_eq!(l.nblocks(4097), 2);
        assert_eq!(l.block_len(4097, 1), Some(1));
        assert_eq!(l.block_len(4097, 2), None);
        assert_eq!(l.block_len(4096, 0), Some(4096));
        assert_eq!(l.block_len(10, u64::MAX), None);
        assert_eq!(l.locate(130), (2, 2));
        assert_eq!(l.nsegments(64 * 4096), 1);
        assert_eq!(l.nsegments(64 * 4096 + 1), 2);
        assert_eq!(l.full_mask(64 * 4096 + 1, 0), u64::MAX);
        assert_eq!(l.full_mask(64 * 4096 + 1, 1), 1);
        assert_eq!(l.full_mask(3 * 4096, 0), 0b111);
        assert_eq!(l.data_offset(0), HEADER_LEN);
        assert_eq!(l.data_offset(2), HEADER_LEN + 8192);

        let big = Layout::new(8 << 20).unwrap();
        assert_eq!(big.blocks_per_segment(), 1);
    }
}
