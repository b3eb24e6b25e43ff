//! Uploads through Xet: local files chunked, deduplicated against what the CAS already has,
//! and only the new chunks sent (xet-data's `FileUploadSession`).
//!
//! One [`XetUploader::upload`] call is one upload session: a write token from the
//! [`WriteTokenSource`] (a repo's `xet-write-token/{rev}`, a bucket's `xet-write-token`), each
//! file read once (content-defined chunks, their hashes and, if asked, the sha256 in the same
//! pass), a global dedup query for the first chunk of each file and for the chunks the CAS marks
//! eligible (`GET /v1/chunks/...`: an answer names the xorbs an earlier upload stored, so an
//! edited copy of a large file sends only its changed chunks), new xorbs (grant + PUT, or a
//! plain POST), then one shard that ties files to their chunks. What comes back is each file's
//! Xet hash, size and sha256: what an `lfsFile` commit line (repos) or an `addFile` batch line
//! (buckets) needs.
//!
//! Tokens are refreshed by xet-client 30 s before they expire, through the same source; every
//! refresh is bounded. A token never reaches a log, an error or `Debug` (see `token`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use xet_client::cas_client::auth::{AuthConfig, AuthError, TokenInfo, TokenRefresher};
use xet_data::processing::configurations::{SessionContext, TranslatorConfig};
use xet_data::processing::{FileUploadSession, Sha256Policy};
use xet_runtime::core::XetContext;

use super::token::XetToken;
use crate::hub::client::HubClient;
use crate::hub::error::HubError;
use crate::repo::RepoRef;

/// Where an upload's CAS write token comes from (and where xet-client's refresher asks again).
#[async_trait::async_trait]
pub trait WriteTokenSource: Send + Sync {
    async fn write_token(&self, hub: &HubClient) -> Result<XetToken, HubError>;
    /// Names the target in logs and errors (never the token).
    fn label(&self) -> String;
}

/// A repo's `xet-write-token/{revision}`; `revision: None` asks for a pull-request token
/// (`None?create_pr=1`).
pub struct RepoWriteToken {
    pub repo: RepoRef,
    pub revision: Option<String>,
}

#[async_trait::async_trait]
impl WriteTokenSource for RepoWriteToken {
    async fn write_token(&self, hub: &HubClient) -> Result<XetToken, HubError> {
        hub.xet_write_token(&self.repo, self.revision.as_deref())
            .await
    }
    fn label(&self) -> String {
        format!("{}", self.repo)
    }
}

/// A bucket's `xet-write-token` (buckets: no revision, upload with [`Sha256::Skip`]).
pub struct BucketWriteToken {
    /// `NS/NAME`.
    pub bucket: String,
}

#[async_trait::async_trait]
impl WriteTokenSource for BucketWriteToken {
    async fn write_token(&self, hub: &HubClient) -> Result<XetToken, HubError> {
        hub.bucket_xet_write_token(&self.bucket).await
    }
    fn label(&self) -> String {
        format!("bucket {}", self.bucket)
    }
}

/// What to do about a file's sha256.
#[derive(Debug, Clone)]
pub enum Sha256 {
    /// Compute it while chunking (the file is still read once).
    Compute,
    /// Already known (64 hex): recorded in the shard as is.
    Known(String),
    /// Not wanted (buckets): the shard carries no sha256.
    Skip,
}

/// One uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XetUploaded {
    /// The file's Xet hash (64 hex), its identity in the CAS.
    pub xet_hash: String,
    pub size: u64,
    /// None with [`Sha256::Skip`].
    pub sha256: Option<String>,
}

/// The result of one upload session.
#[derive(Debug, Clone, Default)]
pub struct UploadReport {
    /// In the order of the request.
    pub files: Vec<XetUploaded>,
    /// Bytes of the files that were new to the CAS (before compression).
    pub new_bytes: u64,
    /// Bytes found already stored (in this session, the local shard cache, or by a global
    /// dedup query), so not sent.
    pub deduped_bytes: u64,
    /// Xorb bytes sent (after compression, chunk headers included).
    pub xorb_bytes_sent: u64,
    pub shard_bytes_sent: u64,
}

/// Uploads files through the CAS of the target its token source names.
pub struct XetUploader {
    hub: HubClient,
    ctx: XetContext,
    source: Arc<dyn WriteTokenSource>,
    /// xet-data's shard cache and session staging live under this directory.
    cache_root: PathBuf,
    /// Bounds each token request (first one and refreshes).
    limit: Duration,
}

impl XetUploader {
    pub fn new(
        hub: HubClient,
        ctx: XetContext,
        source: Arc<dyn WriteTokenSource>,
        cache_root: PathBuf,
        limit: Duration,
    ) -> XetUploader {
        XetUploader {
            hub,
            ctx,
            source,
            cache_root,
            limit,
        }
    }

    /// The first token of a session. A not-found answer (`HubError::is_not_found`) means this
    /// Hub or repo has no Xet: callers with another way to upload (LFS) take it.
    pub async fn token(&self) -> Result<XetToken, HubError> {
        bounded(
            self.limit,
            &self.source.label(),
            self.source.write_token(&self.hub),
        )
        .await
    }

    /// Uploads `files` in one session and returns their Xet hashes, sizes and sha256s, in the
    /// request's order. Every byte is in the CAS (xorbs and shard) once this returns Ok.
    pub async fn upload(&self, files: Vec<(PathBuf, Sha256)>) -> Result<UploadReport, HubError> {
        let token = self.token().await?;
        self.upload_with(token, files).await
    }

    /// [`XetUploader::upload`] with a first token already fetched (by [`XetUploader::token`]).
    pub async fn upload_with(
        &self,
        token: XetToken,
        files: Vec<(PathBuf, Sha256)>,
    ) -> Result<UploadReport, HubError> {
        let label = self.source.label();
        let fail = |what: &str, e: &dyn std::fmt::Display| HubError::Network {
            target: format!("{label} (CAS)"),
            message: format!("{what}: {e}"),
        };
        let refresher = SourceRefresher {
            hub: self.hub.clone(),
            source: self.source.clone(),
            limit: self.limit,
        };
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
            session_id: Some(format!("hubfs-{}-upload", std::process::id())),
            cache_root: Some(self.cache_root.clone()),
        };
        let config = TranslatorConfig::new(&self.ctx, session)
            .map_err(|e| fail("upload session", &e))?
            .disable_progress_aggregation();
        let up = FileUploadSession::new(Arc::new(config))
            .await
            .map_err(|e| fail("upload session", &e))?;
        let sizes: Vec<u64> = files
            .iter()
            .map(|(p, _)| std::fs::metadata(p).map(|m| m.len()))
            .collect::<Result<_, _>>()
            .map_err(|e| HubError::invalid(format!("file to upload: {e}")))?;
        let wanted: Vec<bool> = files
            .iter()
            .map(|(_, s)| !matches!(s, Sha256::Skip))
            .collect();
        let args = files.into_iter().map(|(p, s)| (p, policy(&s)));
        let infos = up
            .upload_files(args)
            .await
            .map_err(|e| fail("upload", &e))?;
        let metrics = up.finalize().await.map_err(|e| fail("shard upload", &e))?;
        let mut report = UploadReport {
            new_bytes: metrics.new_bytes,
            deduped_bytes: metrics.deduped_bytes,
            xorb_bytes_sent: metrics.xorb_bytes_uploaded,
            shard_bytes_sent: metrics.shard_bytes_uploaded,
            ..UploadReport::default()
        };
        for ((info, size), want_sha) in infos.into_iter().zip(sizes).zip(wanted) {
            let sha256 = info.sha256().map(str::to_string);
            if want_sha && sha256.is_none() {
                return Err(fail("upload", &"no sha256 in the upload result"));
            }
            report.files.push(XetUploaded {
                xet_hash: info.hash().to_string(),
                size: info.file_size().unwrap_or(size),
                sha256,
            });
        }
        tracing::debug!(
            target: "hubfs::xet",
            "{label}: {} file(s) uploaded through Xet: {} new bytes, {} deduplicated, {} xorb bytes sent",
            report.files.len(),
            report.new_bytes,
            report.deduped_bytes,
            report.xorb_bytes_sent
        );
        Ok(report)
    }
}

fn policy(s: &Sha256) -> Sha256Policy {
    match s {
        Sha256::Compute => Sha256Policy::Compute,
        // A malformed value is computed instead (from_hex's rule).
        Sha256::Known(hex) => Sha256Policy::from_hex(hex),
        Sha256::Skip => Sha256Policy::Skip,
    }
}

/// `call`, or a timeout error after `limit`.
async fn bounded<T>(
    limit: Duration,
    label: &str,
    call: impl std::future::Future<Output = Result<T, HubError>>,
) -> Result<T, HubError> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => r,
        Err(_) => Err(HubError::Timeout {
            target: format!("{label} (xet write token)"),
            after: limit,
        }),
    }
}

/// xet-client's refresher over a [`WriteTokenSource`].
struct SourceRefresher {
    hub: HubClient,
    source: Arc<dyn WriteTokenSource>,
    limit: Duration,
}

#[async_trait::async_trait]
impl TokenRefresher for SourceRefresher {
    async fn refresh(&self) -> Result<TokenInfo, AuthError> {
        let label = self.source.label();
        match bounded(self.limit, &label, self.source.write_token(&self.hub)).await {
            Ok(t) => {
                tracing::debug!(target: "hubfs::xet", "{label}: CAS write token refreshed");
                Ok((t.access_token, t.exp))
            }
            // HubError messages never carry a token.
            Err(e) => Err(AuthError::token_refresh_failure(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against xet-data's in-process CAS (`local://DIR`, a `LocalClient`): no HTTP, the same
    //! upload session, chunking, dedup and shard code as against the Hub.
    use super::*;
    use crate::hub::{parse_endpoint, HubConfig, Token};
    use sha2::Digest;

    struct LocalCas(PathBuf);

    #[async_trait::async_trait]
    impl WriteTokenSource for LocalCas {
        async fn write_token(&self, _: &HubClient) -> Result<XetToken, HubError> {
            Ok(XetToken {
                cas_url: format!("local://{}", self.0.display()),
                access_token: "unused".into(),
                exp: u64::MAX / 2,
            })
        }
        fn label(&self) -> String {
            "local CAS".into()
        }
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        // xorshift: incompressible enough that every new chunk costs its size.
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uploads_dedup_an_edited_copy_and_report_sha256() {
        crate::hub::xet::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let hub = HubClient::new(HubConfig::new(
            parse_endpoint("http://127.0.0.1:1/").unwrap(),
            Token::new("hf_unused"),
        ))
        .unwrap();
        let ctx = XetContext::from_external(
            tokio::runtime::Handle::current(),
            crate::hub::xet::xet_config(Duration::from_secs(30)),
        );
        let up = XetUploader::new(
            hub,
            ctx,
            Arc::new(LocalCas(dir.path().join("cas"))),
            dir.path().join("cache"),
            Duration::from_secs(10),
        );
        let mut data = noise(8 << 20, 7);
        let a = dir.path().join("a.bin");
        std::fs::write(&a, &data).unwrap();
        let first = up.upload(vec![(a, Sha256::Compute)]).await.unwrap();
        let f = &first.files[0];
        assert_eq!(f.size, data.len() as u64);
        assert_eq!(f.xet_hash.len(), 64);
        assert_eq!(
            f.sha256.as_deref(),
            Some(hex::encode(sha2::Sha256::digest(&data)).as_str())
        );
        assert!(first.xorb_bytes_sent >= data.len() as u64);

        // 256 KiB changed in the middle: only about that (plus a chunk at each edge) is new.
        data[4 << 20..(4 << 20) + (256 << 10)].copy_from_slice(&noise(256 << 10, 9));
        let b = dir.path().join("b.bin");
        std::fs::write(&b, &data).unwrap();
        let second = up.upload(vec![(b, Sha256::Skip)]).await.unwrap();
        assert_eq!(second.files[0].sha256, None);
        assert_ne!(second.files[0].xet_hash, f.xet_hash);
        assert!(
            second.xorb_bytes_sent < 1 << 20,
            "{} xorb bytes sent for a 256 KiB edit",
            second.xorb_bytes_sent
        );
        assert!(second.deduped_bytes >= (7 << 20), "{second:?}");
    }
}
