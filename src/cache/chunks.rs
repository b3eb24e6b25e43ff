//! The Xet chunk store: decompressed, verified chunks keyed by `(xorb hash, chunk index)`.
//!
//! Content-addressed by the xorb that holds them, so one store serves every file, revision and
//! repo whose reconstruction names a xorb: a chunk fetched for `model@v1` is not fetched again
//! for `model@v2`, nor for a copy of the file at another path or in another repo.
//!
//! # Layout and keying
//!
//! ```text
//! <cache dir>/chunks/blocks/...      a second block store (same format as the file cache)
//! <cache dir>/chunks/footers/xx/<xorb hex>   the xorb's footer bytes, as the CAS served them
//! ```
//!
//! Each xorb is one blob of the inner [`BlockCache`], named by the xorb hash (stored in the
//! sha256 key slot: the store holds nothing else, so the names cannot collide) and as long as
//! its chunks decompressed and concatenated: chunk `i` sits at `sum(len[..i])`, the offsets the
//! footer gives. Blocks are [`CHUNK_BLOCK_SIZE`] (64 KiB, about one chunk); a fetched run of
//! chunks rarely ends on a block edge, so its edge blocks are kept in memory as pieces
//! ([`ChunkStore::write_piece`]) until the neighbouring run's fetch completes them.
//!
//! # Guarantees
//!
//! - **One cap**: the inner store shares the file cache's accounting, LRU clock and cap
//!   ([`BlockCache::open_sharing`]): both together stay under `--cache-size`, and eviction
//!   frees the least recently used regions of either. Footers (~40 bytes a chunk, 0.06% of the
//!   data) are not counted and not evicted.
//! - **Nothing unverified is served**: a block is visible only after its bytes and then its
//!   record are written (the block store's rule, crash-safe), and the read path checks every
//!   chunk it takes from here against the chunk hash in the footer (keyed blake3, ~1 GB/s a
//!   core) before handing it out; a chunk that fails is counted in `corrupt`, its blocks are
//!   dropped, and it is fetched again. So the blocks carry no crc32c of their own (a second
//!   pass over every byte that would catch nothing the chunk hash misses). A footer is
//!   written to a temporary file and renamed, and is re-authenticated against the xorb hash
//!   whenever it is loaded.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use super::block_cache::BlockCache;
use super::config::CacheConfig;
use super::key::BlobKey;
use super::stats::CacheStats;

/// Sub-directory of the cache dir holding the chunk store.
pub const CHUNKS_DIR: &str = "chunks";
/// Block size of the chunk store: about one Xet chunk (8 to 128 KiB, 64 KiB on average), so
/// rounding a chunk run out to whole blocks costs about one chunk at each end.
pub const CHUNK_BLOCK_SIZE: u64 = 64 << 10;

/// Counters shown by `hubfs status` (`chunks` section) and the metrics.
#[derive(Debug, Default, Serialize)]
pub struct ChunkStats {
    /// Chunks handed to the read path from the store (verified).
    pub hits: AtomicU64,
    pub hit_bytes: AtomicU64,
    /// Chunks the read path needed and fetched from the CAS.
    pub misses: AtomicU64,
    /// Decompressed bytes fetched from the CAS into the store (edge chunks included).
    pub fetched_bytes: AtomicU64,
    /// Chunks read from the store that failed their hash (dropped and fetched again).
    pub corrupt: AtomicU64,
    /// Footers found on disk / written to disk.
    pub footers_loaded: AtomicU64,
    pub footers_stored: AtomicU64,
}

/// Blocks a fetch covered in part, waiting for the rest: at most this many (64 KiB each).
const PIECES_KEPT: usize = 512;

/// The chunk store of one cache dir (`Send + Sync`, shared through an `Arc`).
pub struct ChunkStore {
    blocks: Arc<BlockCache>,
    footers: PathBuf,
    /// Blocks known in part, by (xorb, block index): the bytes so far and the covered range.
    pieces: parking_lot::Mutex<lru::LruCache<([u8; 32], u64), Piece>>,
    pub stats: ChunkStats,
}

/// A block of which bytes `lo..hi` are known.
struct Piece {
    data: Vec<u8>,
    lo: usize,
    hi: usize,
}

impl ChunkStore {
    /// Opens (creating if needed) the store under `cache_dir/chunks`, sharing `main`'s cap.
    pub fn open(cache_dir: &Path, main: &Arc<BlockCache>) -> io::Result<ChunkStore> {
        let dir = cache_dir.join(CHUNKS_DIR);
        let blocks = BlockCache::open_sharing(
            CacheConfig {
                block_size: CHUNK_BLOCK_SIZE,
                ..CacheConfig::new(&dir)
            },
            main,
            // Every chunk read from here is checked against its chunk hash (blake3): a crc32c
            // on top cost 4.5% of a cold Xet read's CPU (perf, stop 28) and protects nothing more.
            false,
        )?;
        let footers = dir.join("footers");
        crate::private::create_dir_all(&footers)?;
        Ok(ChunkStore {
            blocks,
            footers,
            pieces: parking_lot::Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(PIECES_KEPT).unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            stats: ChunkStats::default(),
        })
    }

    pub fn block_size(&self) -> u64 {
        self.blocks.block_size()
    }

    /// The blocks `blocks` of xorb `xorb` (decompressed length `xorb_len`): Some where cached
    /// and readable, None where absent or evicted (the caller checks every chunk it takes from
    /// them against its hash).
    pub fn read_blocks(
        &self,
        xorb: &[u8; 32],
        xorb_len: u64,
        blocks: Range<u64>,
    ) -> Vec<Option<Bytes>> {
        let key = BlobKey::Sha256(*xorb);
        blocks
            .map(|idx| {
                self.blocks
                    .read_block(&key, xorb_len, idx)
                    .unwrap_or_else(|e| {
                        tracing::warn!(%key, idx, "chunk store read failed ({e}); fetching instead");
                        None
                    })
            })
            .collect()
    }

    /// Stores one whole block of the xorb (its chunks verified by the caller). Best effort: a
    /// failure only costs a later fetch.
    pub fn write_block(&self, xorb: &[u8; 32], xorb_len: u64, idx: u64, data: &[u8]) {
        let key = BlobKey::Sha256(*xorb);
        if let Err(e) = self.blocks.write_block(&key, xorb_len, idx, data) {
            tracing::warn!(%key, idx, "chunk store write failed: {e}");
        }
    }

    /// Stores whole consecutive blocks `first`, `first + 1`, ... of the xorb (verified by the
    /// caller) with one vectored write where they qualify (`BlockCache::write_run_with_crc`):
    /// one device request per fetched run instead of one per 64 KiB block. Best effort.
    pub fn write_blocks(&self, xorb: &[u8; 32], xorb_len: u64, first: u64, blocks: &[&[u8]]) {
        let key = BlobKey::Sha256(*xorb);
        let with_crc: Vec<(&[u8], u32)> =
            blocks.iter().map(|b| (*b, self.blocks.crc_of(b))).collect();
        if let Err(e) = self
            .blocks
            .write_run_with_crc(&key, xorb_len, first, &with_crc)
        {
            tracing::warn!(%key, first, "chunk store write failed: {e}");
        }
    }

    /// Bytes `at..at + bytes.len()` of block `idx` (verified by the caller), the rest of the
    /// block unknown: kept in memory until pieces that join up cover the block, which is then
    /// written like any block. A piece that does not touch the known range replaces it.
    pub fn write_piece(&self, xorb: &[u8; 32], xorb_len: u64, idx: u64, at: u64, bytes: &[u8]) {
        let bs = self.blocks.block_size();
        let len = ((idx + 1) * bs).min(xorb_len).saturating_sub(idx * bs) as usize;
        let (lo, hi) = (at as usize, at as usize + bytes.len());
        if hi > len || lo >= hi {
            return;
        }
        let full = {
            let mut pieces = self.pieces.lock();
            let key = (*xorb, idx);
            let piece = match pieces.get_mut(&key) {
                Some(p) if p.data.len() == len && lo <= p.hi && hi >= p.lo => p,
                _ => {
                    pieces.put(
                        key,
                        Piece {
                            data: vec![0; len],
                            lo,
                            hi,
                        },
                    );
                    match pieces.get_mut(&key) {
                        Some(p) => p,
                        None => return,
                    }
                }
            };
            piece.data[lo..hi].copy_from_slice(bytes);
            piece.lo = piece.lo.min(lo);
            piece.hi = piece.hi.max(hi);
            if piece.lo == 0 && piece.hi == len {
                pieces.pop(&key).map(|p| p.data)
            } else {
                None
            }
        };
        if let Some(block) = full {
            self.write_block(xorb, xorb_len, idx, &block);
        }
    }

    /// The read path is done with blocks `blocks` (read or written): their pages leave the page
    /// cache in the background (as the file cache's do, see `pages.rs`), so a Xet read does not
    /// leave a second copy of what it read in memory.
    pub fn release_pages(&self, xorb: &[u8; 32], xorb_len: u64, blocks: Range<u64>) {
        let bs = self.blocks.block_size();
        let bytes = blocks.start * bs..(blocks.end * bs).min(xorb_len);
        self.blocks
            .release_pages(&BlobKey::Sha256(*xorb), xorb_len, bytes);
    }

    /// Forgets a block whose chunk failed its hash, so the next read fetches it.
    pub fn drop_block(&self, xorb: &[u8; 32], xorb_len: u64, idx: u64) {
        let key = BlobKey::Sha256(*xorb);
        self.blocks.forget_block(&key, xorb_len, idx);
    }

    /// The footer bytes stored for `xorb`, unverified (the caller authenticates them).
    pub fn footer(&self, xorb_hex: &str) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.footer_path(xorb_hex)).ok()?;
        self.stats.footers_loaded.fetch_add(1, Ordering::Relaxed);
        Some(bytes)
    }

    /// Keeps an authenticated footer: written to a temporary file, then renamed into place.
    pub fn put_footer(&self, xorb_hex: &str, bytes: &[u8]) {
        let path = self.footer_path(xorb_hex);
        let write = || -> io::Result<()> {
            let dir = path.parent().unwrap_or(&self.footers);
            crate::private::create_dir_all(dir)?;
            // A name no other writer uses (pid, counter): the rename publishes a whole file.
            static SEQ: AtomicU64 = AtomicU64::new(0);
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let tmp = dir.join(format!(".{xorb_hex}.{}.{n}.tmp", std::process::id()));
            let written = crate::private::write(&tmp, bytes);
            match written.and_then(|()| std::fs::rename(&tmp, &path)) {
                Ok(()) => Ok(()),
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    Err(e)
                }
            }
        };
        match write() {
            Ok(()) => {
                self.stats.footers_stored.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!("storing the footer of xorb {xorb_hex}: {e}"),
        }
    }

    /// Removes a stored footer that failed authentication.
    pub fn drop_footer(&self, xorb_hex: &str) {
        let _ = std::fs::remove_file(self.footer_path(xorb_hex));
    }

    /// The inner block store's counters (`used_bytes` is shared with the file cache).
    pub fn cache_stats(&self) -> CacheStats {
        self.blocks.stats()
    }

    fn footer_path(&self, xorb_hex: &str) -> PathBuf {
        let fan = xorb_hex.get(..2).unwrap_or("00");
        self.footers.join(fan).join(xorb_hex)
    }
}

/// Decompressed byte range of chunks `chunks` of a xorb whose chunk `i` ends at `ends[i]`.
pub fn chunk_bytes(ends: &[u64], chunks: Range<u32>) -> Range<u64> {
    let at = |i: u32| if i == 0 { 0 } else { ends[i as usize - 1] };
    at(chunks.start)..at(chunks.end)
}

/// The blocks (of `block_size`) that bytes `bytes` of a xorb touch.
pub fn blocks_touching(bytes: Range<u64>, block_size: u64) -> Range<u64> {
    if bytes.is_empty() {
        return 0..0;
    }
    bytes.start / block_size..bytes.end.div_ceil(block_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_and_block_geometry() {
        // Chunks of 30, 50, 40, 100, 10 bytes; blocks of 64.
        let ends = [30, 80, 120, 220, 230];
        assert_eq!(chunk_bytes(&ends, 0..2), 0..80);
        assert_eq!(chunk_bytes(&ends, 2..4), 80..220);
        assert_eq!(blocks_touching(80..220, 64), 1..4);
        assert_eq!(blocks_touching(0..0, 64), 0..0);
    }

    #[test]
    fn store_keeps_blocks_under_the_shared_cap_and_footers() {
        let dir = tempfile::tempdir().unwrap();
        let main = Arc::new(
            BlockCache::open(CacheConfig {
                max_bytes: 1 << 20,
                ..CacheConfig::new(dir.path())
            })
            .unwrap(),
        );
        let store = ChunkStore::open(dir.path(), &main).unwrap();
        let xorb = [7u8; 32];
        let len = 3 * CHUNK_BLOCK_SIZE + 100;
        let block = vec![5u8; CHUNK_BLOCK_SIZE as usize];
        store.write_block(&xorb, len, 1, &block);
        store.write_block(&xorb, len, 3, &[9u8; 100]);
        let got = store.read_blocks(&xorb, len, 0..4);
        assert!(got[0].is_none() && got[2].is_none());
        assert_eq!(got[1].as_deref(), Some(&block[..]));
        assert_eq!(got[3].as_deref(), Some(&[9u8; 100][..]));
        // The bytes count in the file cache's accounting: one cap for both.
        assert!(main.stats().used_bytes >= CHUNK_BLOCK_SIZE + 4096);
        assert_eq!(main.stats().used_bytes, store.cache_stats().used_bytes);
        // Filling the file cache past the cap evicts the chunk store's older regions.
        let key = BlobKey::Sha256([1u8; 32]);
        let big = 2 << 20;
        let bs = main.block_size();
        for idx in 0..(big / bs) {
            main.write_block(&key, big, idx, &vec![1u8; bs as usize])
                .unwrap();
        }
        assert!(main.stats().used_bytes <= 1 << 20);
        assert!(
            store.read_blocks(&xorb, len, 1..2)[0].is_none(),
            "evicted by the file cache"
        );
        // Pieces of a block are written once they join up to the whole block.
        let x2 = [8u8; 32];
        let half = (CHUNK_BLOCK_SIZE / 2) as usize;
        store.write_piece(&x2, len, 0, 0, &block[..half + 10]);
        assert!(
            store.read_blocks(&x2, len, 0..1)[0].is_none(),
            "half a block is not stored"
        );
        store.write_piece(&x2, len, 0, half as u64, &block[half..]);
        assert_eq!(
            store.read_blocks(&x2, len, 0..1)[0].as_deref(),
            Some(&block[..])
        );
        store.put_footer("ab12", b"footer");
        assert_eq!(store.footer("ab12").as_deref(), Some(&b"footer"[..]));
        store.drop_footer("ab12");
        assert!(store.footer("ab12").is_none());
    }
}
