//! The vocabulary hubfs and its Hub emulator share, and nothing else: both sides of the wire
//! must agree on it, while each keeps its own stack (the product never links the emulator's
//! server, the emulator never links the FUSE daemon).
//!
//! - [`repo`]: repo types, ids, revisions and `hf://` paths;
//! - [`types`]: the Hub's JSON wire types, in the Hub's exact field names;
//! - [`units`]: sizes and rates as users type them (`64M`, `50M/s`).

pub mod repo;
pub mod types;
pub mod units;
