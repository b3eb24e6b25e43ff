//! The Hub client: the only module of hubfs that speaks HTTP.
//!
//! Layers above (snapshots, cache, staging, fs) call [`HubClient`] and get typed answers or a
//! [`HubError`]; they never see URLs, headers or status codes. Pieces, one job each:
//!
//! - `auth`: the [`Token`] and where to find it;
//! - `config`: [`HubConfig`], endpoints and default timeouts;
//! - `error`: [`HubError`] and the mapping from the Hub's error answers;
//! - `retry`: [`RetryPolicy`], backoff and `Retry-After` / `RateLimit` parsing;
//! - `transport`: one HTTP exchange (token only to the Hub's origin, deadlines, retries, logs);
//! - `client`: [`HubClient`] and the JSON metadata calls;
//! - `pagination`: `Link` headers and the [`TreePager`];
//! - `content`: [`FileMetadata`] probes and ranged reads ([`RangeBody`]) with the CDN memo;
//! - `buckets`: the bucket variants of info/tree/paths-info/token/resolve, and the batch API;
//! - `upload`: preupload, LFS transfers and commits; `manage`: repos, branches, tags;
//! - `stats`: [`HubStats`] counters; `request_metrics`: [`RequestMetrics`] by kind and status;
//! - `types`: the Hub's JSON wire types, shared with the emulator.

mod auth;
mod buckets;
mod client;
mod config;
mod content;
mod error;
mod manage;
mod pagination;
mod request_metrics;
mod retry;
mod stats;
mod transport;
pub use hub_wire::types;
mod upload;
pub mod xet;

pub use auth::{loose_token_file_warning, token_source_file, Token};
pub use buckets::{bucket_state, BatchFailure, BucketWrite, BUCKET_BATCH_MAX, BUCKET_STATE_PREFIX};
pub use client::{HubClient, PATHS_INFO_BATCH};
pub use config::{parse_endpoint, BodyLimits, HubConfig, ListingLimits, DEFAULT_ENDPOINT};
pub use content::{signed_expiry, FileMetadata, RangeBody};
pub use error::{is_retryable_status, HubError};
pub use pagination::{TreeOptions, TreePager};
pub use request_metrics::{KindLabel, RequestLabels, RequestMetrics};
pub use retry::RetryPolicy;
pub use stats::HubStats;
pub use types::{
    CommitInfo, CommitResponse, LfsBatchObject, LfsBatchResponse, LfsObject, PreuploadFile,
    PreuploadResponse, Refs, RepoInfo, TreeEntry, WhoAmI,
};
pub use upload::{
    commit_body, preupload_file, CommitHeader, CommitOp, Progress, LFS_BATCH, PREUPLOAD_BATCH,
    SAMPLE_SIZE,
};
