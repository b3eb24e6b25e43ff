//! The Hub client: the only module that speaks HTTP to the Hub.

pub mod types;
