//! Xet storage, the HTTP side: CAS tokens from the Hub, the CAS client, xorb footers, uploads.
//!
//! The Hub stores most large files in Xet: content-defined chunks packed into xorbs in a CAS,
//! a file being a list of (xorb, chunk range) terms, its "reconstruction". This module is the
//! only code that speaks HTTP to the token routes and the CAS (`src/read/xet/` orchestrates a
//! read on top of it). Pieces, one job each:
//!
//! - `token`: `GET /api/{type}s/{repo}/xet-read-token/{rev}` ([`XetToken`]), and
//!   [`HubTokenRefresher`], which xet-client calls 30 s before the token expires;
//! - `session`: one [`CasSession`] per repo: xet-client's `RemoteClient` (reconstruction v2 with
//!   v1 fallback, signed xorb range fetches re-planned on 403, chunk decompression) configured
//!   with our bounded timeouts and no telemetry, on the daemon's tokio runtime;
//! - `upload`: [`XetUploader`], uploads through xet-data's `FileUploadSession` (chunking,
//!   dedup against the CAS, xorbs, shard) with a write token from a pluggable
//!   [`WriteTokenSource`] (a repo's `xet-write-token/{rev}`, a bucket's `xet-write-token`);
//! - `footer`: the suffix-range GET of a xorb's footer (its chunk hashes), which xet-client does
//!   not offer and chunk verification needs.
//!
//! Formats (hashes, xorbs, reconstruction JSON) come from xet-core, never from our own copy.

mod footer;
mod session;
mod token;
mod upload;

pub use session::{xet_config, CasSession};
pub use token::{HubTokenRefresher, XetToken};
pub use upload::{
    BucketWriteToken, RepoWriteToken, Sha256, UploadReport, WriteTokenSource, XetUploaded,
    XetUploader,
};

/// Installs ring as the process's rustls provider. xet-client is built with
/// `rustls-no-provider` (the default provider, aws-lc, is a C build), and reqwest 0.13 panics
/// building any client when no provider is installed. Idempotent: a second call is a no-op.
pub fn install_crypto_provider() {
    // Err means one is installed already (a second call, or a test harness): fine either way.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
