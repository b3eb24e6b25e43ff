//! Local, durable state of a writable mount: staged file contents and the journal of
//! pending changes. Nothing here knows about HTTP or FUSE: the filesystem core stages changes
//! here, the committer (`crate::commit`) turns them into Hub commits and journals the result.

mod area;
pub mod journal;

pub use area::{area_name, AreaError, StagingArea, StagingFile};
pub use journal::{Change, Held, Journal, Pending, Record};
