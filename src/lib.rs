//! hubfs: mount Hugging Face Hub repositories as local directories.
//!
//! Layers (see design.md): [`repo`] names things, [`hub`] speaks HTTP, [`cache`] keeps blocks on
//! disk, `fs` implements POSIX semantics as `Result<_, Errno>`, `fuse` glues it to the kernel, and
//! [`emulator`] is a local Hub for tests, demos and benchmarks.

pub mod cache;
pub mod emulator;
pub mod hub;
pub mod repo;
