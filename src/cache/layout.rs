//! Geometry of the block store: how a blob splits into blocks, blocks group into regions (the
//! unit of LRU eviction), and what a block costs on disk.
//!
//! Block `i` of a blob covers bytes `[i*block_size, min((i+1)*block_size, blob_size))` of the
//! content, and sits at exactly that offset in the blob's data file: the data file *is* the
//! content, sparse where blocks are missing. Region `r` holds blocks `r*B .. (r+1)*B` (B = blocks
//! per region), about 4 MiB of the file.

use std::io;
use std::ops::Range;

/// Regions aim at 4 MiB of data: eviction frees space in steps large enough that a pass is
/// rare and a 100 GiB cache is ~25k regions (a few MiB of index), small enough that evicting
/// one throws away little that is still hot.
const REGION_TARGET_BYTES: u64 = 4 << 20;

/// The in-memory presence bitmap of a region is one `u64`.
pub(crate) const MAX_BLOCKS_PER_REGION: u64 = 64;

/// What filesystems allocate in: a 100-byte tail block still occupies 4 KiB of disk, so
/// accounting rounds every block (and sidecar) up to it.
pub(crate) const ALLOC_UNIT: u64 = 4096;

const MIN_BLOCK: u64 = 4096;
const MAX_BLOCK: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    block_size: u64,
    blocks_per_region: u64,
}

impl Layout {
    pub(crate) fn new(block_size: u64) -> io::Result<Layout> {
        if !(MIN_BLOCK..=MAX_BLOCK).contains(&block_size) || !block_size.is_multiple_of(MIN_BLOCK) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cache block size {block_size} must be a multiple of 4 KiB between 4 KiB and 16 MiB"),
            ));
        }
        let blocks_per_region = (REGION_TARGET_BYTES / block_size).clamp(1, MAX_BLOCKS_PER_REGION);
        Ok(Layout {
            block_size,
            blocks_per_region,
        })
    }

    pub(crate) fn block_size(&self) -> u64 {
        self.block_size
    }

    pub(crate) fn blocks_per_region(&self) -> u64 {
        self.blocks_per_region
    }

    pub(crate) fn nblocks(&self, blob_size: u64) -> u64 {
        blob_size.div_ceil(self.block_size)
    }

    pub(crate) fn nregions(&self, blob_size: u64) -> u64 {
        self.nblocks(blob_size).div_ceil(self.blocks_per_region)
    }

    /// Length of block `idx`, or None past the end of the blob.
    pub(crate) fn block_len(&self, blob_size: u64, idx: u64) -> Option<u64> {
        let start = idx.checked_mul(self.block_size)?;
        (start < blob_size).then(|| (blob_size - start).min(self.block_size))
    }

    /// Offset of block `idx` in the data file (its offset in the content).
    pub(crate) fn block_offset(&self, idx: u64) -> u64 {
        idx * self.block_size
    }

    /// (region, slot inside the region) of block `idx`.
    pub(crate) fn locate(&self, idx: u64) -> (u64, u64) {
        (idx / self.blocks_per_region, idx % self.blocks_per_region)
    }

    /// Block index of slot 0 of `region`.
    pub(crate) fn first_block(&self, region: u64) -> u64 {
        region * self.blocks_per_region
    }

    /// The blocks of `region` that exist in a `blob_size` blob.
    pub(crate) fn region_blocks(&self, blob_size: u64, region: u64) -> Range<u64> {
        let first = self.first_block(region);
        first..(first + self.blocks_per_region).min(self.nblocks(blob_size))
    }

    /// Byte range of the data file covered by `region` (the last one ends at the blob's end).
    pub(crate) fn region_bytes(&self, blob_size: u64, region: u64) -> Range<u64> {
        let blocks = self.region_blocks(blob_size, region);
        let start = self.block_offset(blocks.start);
        start..self.block_offset(blocks.end).min(blob_size).max(start)
    }
}

/// Disk bytes accounted for `len` bytes of file content.
pub(crate) fn alloc(len: u64) -> u64 {
    len.div_ceil(ALLOC_UNIT) * ALLOC_UNIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        let l = Layout::new(4096).unwrap();
        assert_eq!(l.blocks_per_region(), 64);
        assert_eq!(l.nblocks(0), 0);
        assert_eq!(l.nblocks(1), 1);
        assert_eq!(l.nblocks(4096), 1);
        assert_eq!(l.nblocks(4097), 2);
        assert_eq!(l.block_len(4097, 1), Some(1));
        assert_eq!(l.block_len(4097, 2), None);
        assert_eq!(l.block_len(4096, 0), Some(4096));
        assert_eq!(l.block_len(10, u64::MAX), None);
        assert_eq!(l.block_offset(3), 3 * 4096);
        assert_eq!(l.locate(130), (2, 2));
        assert_eq!(l.nregions(64 * 4096), 1);
        assert_eq!(l.nregions(64 * 4096 + 1), 2);
        assert_eq!(l.region_blocks(64 * 4096 + 1, 1), 64..65);
        assert_eq!(l.region_bytes(64 * 4096 + 1, 1), 64 * 4096..64 * 4096 + 1);
        assert_eq!(l.region_bytes(3 * 4096 - 5, 0), 0..3 * 4096 - 5);

        let big = Layout::new(8 << 20).unwrap();
        assert_eq!(big.blocks_per_region(), 1);
    }

    #[test]
    fn allocation_rounds_to_whole_fs_blocks() {
        assert_eq!(alloc(0), 0);
        assert_eq!(alloc(1), 4096);
        assert_eq!(alloc(4096), 4096);
        assert_eq!(alloc(4097), 8192);
    }
}
