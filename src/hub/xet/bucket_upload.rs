//! Uploading files into a bucket's CAS: the minimal Xet uploader bucket writes need.
//!
//! One [`FileUploadSession`] per batch (xet-data: content-defined chunking, dedup against
//! the local shard cache and the CAS's global dedup, xorb and shard uploads), with a write
//! token from `/api/buckets/{id}/xet-write-token` that xet-client refreshes through
//! [`HubTokenRefresher`]. Bucket files carry no sha256 (`Sha256Policy::Skip`, what the
//! official client sends for buckets). The returned Xet hashes are what the batch API's
//! `addFile` lines name.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use xet_client::cas_client::auth::AuthConfig;
use xet_data::processing::configurations::{SessionContext, TranslatorConfig};
use xet_data::processing::{FileUploadSession, Sha256Policy};
use xet_runtime::core::XetContext;

use super::token::HubTokenRefresher;
use crate::hub::client::HubClient;
use crate::hub::error::HubError;
use crate::repo::RepoRef;

/// Uploads staged files of one bucket mount.
pub struct BucketUploader {
    hub: HubClient,
    ctx: XetContext,
    repo: RepoRef,
    /// xet-data's shard cache and session staging (under the mount's cache dir).
    cache_root: PathBuf,
    limit: Duration,
}

/// One uploaded file: its Xet hash and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub xet_hash: String,
    pub size: u64,
}

fn xet_error(repo: &RepoRef, what: &str, e: impl std::fmt::Display) -> HubError {
    // Retryable: the committer backs off and tries the batch again.
    HubError::Network {
        target: repo.to_string(),
        message: format!("Xet upload ({what}): {e}"),
    }
}

impl BucketUploader {
    pub fn new(
        hub: HubClient,
        ctx: XetContext,
        repo: RepoRef,
        cache_root: PathBuf,
        limit: Duration,
    ) -> Self {
        BucketUploader {
            hub,
            ctx,
            repo,
            cache_root,
            limit,
        }
    }

    /// Uploads `files` (whole files, chunked and deduplicated) and returns their Xet hashes in
    /// the same order. Nothing is visible in the bucket until a batch names the hashes.
    pub async fn upload(&self, files: &[PathBuf]) -> Result<Vec<Uploaded>, HubError> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let token = self.hub.xet_token(&self.repo, "", true).await?;
        let refresher = HubTokenRefresher::new(
            self.hub.clone(),
            self.repo.clone(),
            String::new(),
            self.limit,
        )
        .for_writes();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::USER_AGENT,
            reqwest::header::HeaderValue::from_static(concat!("hubfs/", env!("CARGO_PKG_VERSION"))),
        );
        let session = SessionContext {
            endpoint: token.cas_url.trim_end_matches('/').to_string(),
            auth: Some(AuthConfig {
                token: token.access_token,
                token_expiration: token.exp,
                token_refresher: Arc::new(refresher),
            }),
            custom_headers: Some(Arc::new(headers)),
            repo_paths: vec![String::new()],
            session_id: Some(format!("hubfs-{}", std::process::id())),
            cache_root: Some(self.cache_root.clone()),
        };
        let repo = &self.repo;
        let cfg = TranslatorConfig::new(&self.ctx, session)
            .map_err(|e| xet_error(repo, "configuration", e))?;
        let up = FileUploadSession::new(Arc::new(cfg))
            .await
            .map_err(|e| xet_error(repo, "session", e))?;
        let infos = up
            .upload_files(files.iter().map(|p| (p.as_path(), Sha256Policy::Skip)))
            .await
            .map_err(|e| xet_error(repo, "files", e))?;
        up.finalize()
            .await
            .map_err(|e| xet_error(repo, "finalize", e))?;
        if infos.len() != files.len() {
            return Err(xet_error(
                repo,
                "files",
                format!("{} results for {} files", infos.len(), files.len()),
            ));
        }
        Ok(infos
            .into_iter()
            .zip(files)
            .map(|(i, f)| Uploaded {
                xet_hash: i.hash().to_string(),
                size: i
                    .file_size()
                    .unwrap_or_else(|| std::fs::metadata(f).map_or(0, |m| m.len())),
            })
            .collect())
    }
}
