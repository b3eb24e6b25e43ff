//! The on-disk cache: a content-addressed block store for file bytes ([`BlockCache`]) and a
//! small document store for metadata ([`MetaStore`]), both under one cache directory owned by
//! one daemon at a time ([`lock_cache_dir`]). Independent of FUSE and HTTP: the read path
//! fetches, this layer keeps.
//!
//! # On-disk layout
//!
//! ```text
//! <cache dir>/                     (the effective dir returned by lock_cache_dir)
//!   lock                           flock held by the owning daemon (contains its pid)
//!   instances/N/                   fallback roots for concurrent daemons (same layout inside)
//!   blocks/LAYOUT                  format version, block size, blocks per region
//!   blocks/xx/<kind>-<hex>.data    a blob's content at its natural offsets (sparse)
//!   blocks/xx/<kind>-<hex>.meta    its sidecar: per-block presence + crc32c, verified mark
//!   chunks/                        the Xet chunk store (see chunks.rs): xorb chunks keyed by
//!                                  (xorb hash, chunk index), under the same cap
//!   meta/<namespace>/<name>        MetaStore documents (meta/blobs/: what each blob is, see
//!                                  inventory.rs)
//! ```
//!
//! A blob (file content) is named by its [`BlobKey`] (`xx` = first digest byte, kind =
//! sha256|sha1) and cut into blocks of `block_size` (128 KiB by default). Its data file is as
//! long as the blob and holds every cached block where the content has it, so a complete blob's
//! data file *is* the file: the kernel can be handed it and read it directly (FUSE
//! passthrough, see [`BlockCache::open_complete`]). Blocks are grouped into ~4 MiB regions, the
//! unit of eviction. See `sidecar.rs` for the sidecar's byte format.
//!
//! A cache written by the previous layout (blocks in ~4 MiB segment files with a header) is
//! discarded when opened: it is a cache, its blobs are fetched again when read.
//!
//! # Guarantees
//!
//! - **Persistent**: a re-opened cache serves the same blocks; the index is rebuilt from the
//!   sidecars (one small read per blob, 8 bytes per block).
//! - **Content-addressed**: the same content in two revisions or repos is one data file.
//! - **Never wrong bytes through `read_block`**: every read checks the block's crc32c; a bit
//!   flip, a truncated file or garbage is a miss, and the block is dropped so it can be
//!   refetched. A kill -9 at any point cannot make a later read return wrong bytes (data is
//!   written before the record that declares it). [`BlockCache::verify_sha256`] checks a
//!   complete blob end-to-end and remembers it. A data file handed out with `open_complete` is
//!   read without these checks: what holds for it is said there.
//! - **Size cap with LRU**: accounted bytes (allocated blocks rounded to 4 KiB, sidecars, writes
//!   in progress) never exceed `max_bytes`; the least recently used regions are punched out of
//!   their data files first (`fallocate(PUNCH_HOLE)`), and a blob left empty is deleted.
//!   Pinned blobs count against the cap but are never evicted. Recency survives a restart
//!   approximately (per-region stamps in the sidecar, refreshed on read at most once a minute).
//! - **Concurrency**: `BlockCache` and `MetaStore` are `Send + Sync`; any number of threads may
//!   read and write, including different blocks of one blob at once.
//! - **Bounded memory**: per region, not per block (about 200 bytes per 4 MiB region), plus a
//!   bounded cache of open files.
//!
//! # For the read path
//!
//! - Serve data from the buffer you fetched, not by reading it back after `write_block`: the
//!   cache may evict any block at any time (and does not store anything if the cap is smaller
//!   than one block).
//! - `read_block` returning None is always "fetch it": absent, evicted or found corrupt.
//! - The cache does not de-duplicate in-flight fetches; two writers of one block are harmless
//!   (the second is a no-op), but the read path should coalesce fetches to save bandwidth.
//! - Keys carry no access rights: only hand out blocks for a key the mount learned from a tree
//!   listing it was allowed to read (that is what keeps private content private).
//! - Empty blobs have no blocks: don't go through the cache for them.
//! - Once a range was handed to the kernel (which caches it as the mounted file's pages), call
//!   [`BlockCache::release_pages`]: the data file's pages of that range are written back and
//!   dropped in the background, so a cold read leaves one page-cache copy, not two.

mod block_cache;
mod chunks;
mod config;
pub mod direct;
mod evict;
mod fds;
mod index;
mod inventory;
mod key;
mod layout;
mod lock;
mod manage;
mod meta;
mod pages;
mod pin;
mod rebuild;
mod remove;
mod sidecar;
mod stats;
mod verify;
mod write;

pub use block_cache::{BlockCache, BLOCKS_DIR};
pub use chunks::{
    blocks_touching, chunk_bytes, ChunkStats, ChunkStore, CHUNKS_DIR, CHUNK_BLOCK_SIZE,
};
pub use config::{default_cache_dir, CacheConfig, DEFAULT_BLOCK_SIZE, DEFAULT_MAX_BYTES};
pub use inventory::{BlobRecord, BlobRef, Inventory, INVENTORY_NS};
pub use key::{BlobKey, BlobKeyError, ContentHasher};
pub use lock::{
    cache_root_holder, lock_cache_dir, try_lock_cache_root, CacheDirLock, INSTANCES_DIR,
};
pub use manage::{scan_root, stamped_block_size, CachedBlob, Removal};
pub use meta::{MetaStore, META_DIR};
pub use pin::CompleteBlob;
pub use stats::CacheStats;
pub use verify::BlockFingerprint;
