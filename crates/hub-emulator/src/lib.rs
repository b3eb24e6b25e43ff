//! A local Hugging Face Hub for tests, demos and benchmarks (see hub-api.md §11).
//!
//! [`store`] keeps repos in a git-faithful object model on disk; `server` and `api` speak the
//! Hub's HTTP API (plus a stand-in CDN for LFS content); `net` adds latency, bandwidth caps and
//! fault injection so clients can be tested against a realistic network.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod git;
pub mod glob;
pub mod net;
pub mod server;
pub mod store;
pub mod time;

pub use config::Config;
pub use server::run;
