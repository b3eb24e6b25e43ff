//! CAS access tokens: the Hub's `xet-read-token` route, and the refresher xet-client calls.
//!
//! The Hub answers both in headers (`X-Xet-Cas-Url`, `X-Xet-Access-Token`,
//! `X-Xet-Token-Expiration`) and in a JSON body `{"casUrl","accessToken","exp"}`; we read the
//! body, like hf_xet's own refresher. The token never reaches a log, an error or `Debug`.

use std::fmt;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use xet_client::cas_client::auth::{AuthError, TokenInfo, TokenRefresher};

use crate::hub::client::HubClient;
use crate::hub::error::{ErrorContext, HubError};
use crate::repo::{encode_revision, RepoRef};

/// A CAS token: where the CAS is, the bearer token for it, and when it expires.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct XetToken {
    pub cas_url: String,
    pub access_token: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

impl fmt::Debug for XetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XetToken")
            .field("cas_url", &self.cas_url)
            .field("access_token", &"<redacted>")
            .field("exp", &self.exp)
            .finish()
    }
}

/// Largest token answer accepted (a JWT and a URL).
const TOKEN_BODY_MAX: usize = 64 << 10;

impl HubClient {
    /// `GET /api/{type}s/{repo}/xet-read-token/{revision}` with the Hub token: a CAS token that
    /// reads this repo. 404 means the repo (or the Hub) has no Xet; the caller reads through
    /// the bridge instead. Bounded by the API timeout; retried when transient.
    pub async fn xet_read_token(
        &self,
        repo: &RepoRef,
        revision: &str,
    ) -> Result<XetToken, HubError> {
        let ctx = self.repo_ctx(repo, Some(revision), None);
        // A bucket has no revision: `/api/buckets/{id}/xet-read-token`.
        let path = if repo.repo_type == crate::repo::RepoType::Bucket {
            HubClient::bucket_token_path(repo, false)
        } else {
            format!(
                "{}/xet-read-token/{}",
                repo.api_path(),
                encode_revision(revision)
            )
        };
        self.xet_token(&path, &ctx).await
    }

    /// `GET /api/{type}s/{repo}/xet-write-token/{revision}`: a CAS token that uploads for a
    /// commit to `revision`; `None` asks for one that opens a pull request (the Hub's
    /// `None?create_pr=1`, which a read token with discussions enabled may get). 404 means no
    /// Xet for this repo or Hub: the caller uploads through LFS.
    pub async fn xet_write_token(
        &self,
        repo: &RepoRef,
        revision: Option<&str>,
    ) -> Result<XetToken, HubError> {
        let ctx = self.repo_ctx(repo, revision, None);
        let path = match revision {
            Some(rev) => format!(
                "{}/xet-write-token/{}",
                repo.api_path(),
                encode_revision(rev)
            ),
            None => format!("{}/xet-write-token/None?create_pr=1", repo.api_path()),
        };
        self.xet_token(&path, &ctx).await
    }

    /// `GET /api/buckets/{id}/xet-write-token` (no revision: buckets have no history).
    pub async fn bucket_xet_write_token(&self, bucket: &str) -> Result<XetToken, HubError> {
        let ctx = self.ctx(ErrorContext::label(&format!("bucket {bucket}")));
        self.xet_token(&format!("/api/buckets/{bucket}/xet-write-token"), &ctx)
            .await
    }

    /// One token route: the JSON body, checked for its two required fields.
    async fn xet_token(&self, path: &str, ctx: &ErrorContext) -> Result<XetToken, HubError> {
        let r = async {
            let url = self.url(path)?;
            let req = self
                .api_request(Method::GET, url, ctx)
                .max_body(TOKEN_BODY_MAX);
            let token: XetToken = self.call_json(&req).await?;
            if token.cas_url.is_empty() || token.access_token.is_empty() {
                return Err(HubError::protocol(
                    &ctx.target(),
                    "xet token answer without casUrl or accessToken",
                ));
            }
            Ok(token)
        }
        .await;
        self.count(r)
    }
}

/// Fetches a fresh read token for one repo when xet-client asks (30 s before expiry, or after
/// a 401). Each call is bounded by `limit` on top of the client's own deadlines.
pub struct HubTokenRefresher {
    client: HubClient,
    repo: RepoRef,
    revision: String,
    limit: Duration,
}

impl HubTokenRefresher {
    pub fn new(client: HubClient, repo: RepoRef, revision: String, limit: Duration) -> Self {
        HubTokenRefresher {
            client,
            repo,
            revision,
            limit,
        }
    }
}

#[async_trait::async_trait]
impl TokenRefresher for HubTokenRefresher {
    async fn refresh(&self) -> Result<TokenInfo, AuthError> {
        let call = self.client.xet_read_token(&self.repo, &self.revision);
        match tokio::time::timeout(self.limit, call).await {
            Ok(Ok(t)) => {
                tracing::debug!(target: "hubfs::xet", "{}: CAS token refreshed", self.repo);
                Ok((t.access_token, t.exp))
            }
            // HubError messages never carry a token.
            Ok(Err(e)) => Err(AuthError::token_refresh_failure(e)),
            Err(_) => Err(AuthError::token_refresh_failure(format!(
                "{}: no CAS token within {:?}",
                self.repo, self.limit
            ))),
        }
    }
}
