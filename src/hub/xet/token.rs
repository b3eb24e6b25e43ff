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
use crate::hub::error::HubError;
use crate::repo::{encode_revision, RepoRef, RepoType};

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
    /// reads this repo (a bucket: `/api/buckets/{id}/xet-read-token`, `revision` unused).
    /// 404 means the repo (or the Hub) has no Xet; the caller reads through the bridge
    /// instead. Bounded by the API timeout; retried when transient.
    pub async fn xet_read_token(
        &self,
        repo: &RepoRef,
        revision: &str,
    ) -> Result<XetToken, HubError> {
        self.xet_token(repo, revision, false).await
    }

    /// A CAS token that reads (`write` false) or writes this repo or bucket. Only buckets
    /// are written through Xet by hubfs: `/api/buckets/{id}/xet-write-token`.
    pub async fn xet_token(
        &self,
        repo: &RepoRef,
        revision: &str,
        write: bool,
    ) -> Result<XetToken, HubError> {
        let ctx = self.repo_ctx(repo, Some(revision), None);
        let r = async {
            let path = if repo.repo_type == RepoType::Bucket {
                HubClient::bucket_token_path(repo, write)
            } else {
                format!(
                    "{}/xet-{}-token/{}",
                    repo.api_path(),
                    if write { "write" } else { "read" },
                    encode_revision(revision)
                )
            };
            let url = self.url(&path)?;
            let req = self
                .api_request(Method::GET, url, &ctx)
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
    write: bool,
}

impl HubTokenRefresher {
    pub fn new(client: HubClient, repo: RepoRef, revision: String, limit: Duration) -> Self {
        HubTokenRefresher {
            client,
            repo,
            revision,
            limit,
            write: false,
        }
    }

    /// Refreshes a write token instead (bucket uploads).
    pub fn for_writes(mut self) -> Self {
        self.write = true;
        self
    }
}

#[async_trait::async_trait]
impl TokenRefresher for HubTokenRefresher {
    async fn refresh(&self) -> Result<TokenInfo, AuthError> {
        let call = self
            .client
            .xet_token(&self.repo, &self.revision, self.write);
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
