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
//!   blocks/LAYOUT                  block size + blocks per segment; a change discards blocks
//!   blocks/xx/<kind>-<hex>.<seg>   segment files, xx = first digest byte, kind = sha256|sha1
//!   meta/<namespace>/<name>        MetaStore documents
//! ```
//!
//! A blob (file content) is named by its [`BlobKey`] and cut into blocks of `block_size`
//! (128 KiB by default). Consecutive blocks are grouped into segment files of about 4 MiB
//! (32 blocks): a page-sized header with one record (crc32c, length) per slot, then the block
//! data at fixed offsets, sparse where blocks are missing. See `segment.rs` for the byte format.
//!
//! # Guarantees
//!
//! - **Persistent**: a re-opened cache serves the same blocks; the index is rebuilt from segment
//!   headers (one small read per 4 MiB segment).
//! - **Content-addressed**: the same content in two revisions or repos is one set of blocks.
//! - **Never wrong bytes**: every `read_block` checks the block's crc32c; a bit flip, a truncated
//!   file or garbage is a miss, and the entry is dropped so it can be refetched. A kill -9 at
//!   any point cannot make a later read return wrong bytes (data is written before the record
//!   that declares it). [`BlockCache::verify_sha256`] checks a complete blob end-to-end.
//! - **Size cap with LRU**: accounted bytes (segment headers + blocks + writes in progress) never
//!   exceed `max_bytes`; the least recently used segments are evicted first. Recency survives a
//!   restart approximately (segment mtimes, refreshed on read at most once a minute).
//! - **Concurrency**: `BlockCache` and `MetaStore` are `Send + Sync`; any number of threads may
//!   read and write, including different blocks of one segment at once.
//! - **Bounded memory**: per segment, not per block (about 250 bytes per 4 MiB segment), plus a
//!   bounded cache of open segment files.
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

mod block_cache;
mod config;
mod evict;
mod fds;
mod index;
mod key;
mod layout;
mod lock;
mod meta;
mod rebuild;
mod remove;
mod segment;
mod stats;
mod verify;
mod write;

pub use block_cache::{BlockCache, BLOCKS_DIR};
pub use config::{default_cache_dir, CacheConfig, DEFAULT_BLOCK_SIZE, DEFAULT_MAX_BYTES};
pub use key::{BlobKey, BlobKeyError, ContentHasher};
pub use lock::{lock_cache_dir, CacheDirLock, INSTANCES_DIR};
pub use meta::{MetaStore, META_DIR};
pub use stats::CacheStats;
