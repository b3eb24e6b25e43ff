//! hubfs: mount Hugging Face Hub repositories as local directories.
//!
//! Layers (see design.md), each knowing nothing of the ones above it:
//! - [`repo`]: names (repo types, ids, revisions, `hf://` paths) shared by everything;
//! - [`private`]: modes of what hubfs writes on disk (private to its user);
//! - [`hub`]: the Hub client, the only code that speaks HTTP;
//! - [`cache`]: blocks of file content and metadata kept on disk;
//! - [`shared`]: the shared cache tier of a cluster (S3), the only code that speaks S3;
//! - [`read`]: lazy, parallel, de-duplicated reads through the cache;
//! - [`stage`]: staged file contents and the journal of pending changes (writable mounts);
//! - [`commit`]: turns staged changes into batched Hub commits;
//! - [`fs`]: POSIX semantics as `Result<_, Errno>`, independent of FUSE;
//! - [`fuse`]: the thin adapter to the kernel;
//! - [`daemon`]: options, mounting, the control socket;
//! - [`warm`]: `hubfs warm`, reading files through a mount so they are cached.
//!
//! The Hub emulator the tests run against is its own crate (`crates/hub-emulator`); what both
//! sides share ([`repo`], [`units`], the Hub's wire types in `hub::types`) lives in `hub-wire`.

pub mod cache;
pub mod cache_cmd;
pub mod commit;
pub mod daemon;
pub mod fs;
pub mod fuse;
pub mod hf_layout;
pub mod hub;
pub mod metrics;
pub mod private;
pub mod read;
pub use hub_wire::repo;
pub mod shared;
pub mod stage;
pub use hub_wire::units;
pub mod warm;
