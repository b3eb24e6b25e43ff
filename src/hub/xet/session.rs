//! One CAS session per repo: xet-client's `RemoteClient`, authenticated with a refreshing
//! read token, configured in code (no `HF_XET_*` environment, no telemetry, bounded waits).

use std::sync::Arc;
use std::time::Duration;

use xet_client::cas_client::auth::AuthConfig;
use xet_client::cas_client::{Client, RemoteClient};
use xet_runtime::config::XetConfig;
use xet_runtime::core::XetContext;

use super::token::HubTokenRefresher;
use crate::hub::client::HubClient;
use crate::hub::error::HubError;
use crate::repo::RepoRef;

/// xet-core's settings for hubfs. Values carry their reasons; nothing comes from `HF_XET_*`
/// (a mount must behave the same whatever the user's shell exports for hf_xet).
pub fn xet_config(io_timeout: Duration) -> XetConfig {
    let mut cfg = XetConfig::default();
    // A mount reports nothing to the CAS about what its users read.
    cfg.telemetry.enabled = false;
    // Our read path bounds every wait itself (`io_timeout`) and falls back to the bridge on a
    // CAS failure: xet-core's own retries (5 attempts, 3 s base, up to 6 min) must fit inside.
    cfg.client.retry_max_attempts = 3;
    cfg.client.retry_base_delay = Duration::from_millis(200);
    cfg.client.retry_max_duration = io_timeout;
    cfg.client.connect_timeout = io_timeout.min(Duration::from_secs(10));
    // A stalled transfer must free the reader (hf-mount's lesson: 30 s, not 300 s).
    cfg.client.read_timeout = io_timeout.min(Duration::from_secs(30));
    // Our read-ahead already issues parallel runs (up to 32, the read path's request permits),
    // each in 2 MiB pieces: do not start at 4 connections. 32, not 16: on the shaped benchmark
    // link a cold 1 GiB Xet read went from 404-406 to 420-446 MiB/s (the bridge's 436-456).
    cfg.client.ac_initial_download_concurrency = 32;
    cfg
}

/// The CAS as seen by one repo: the client and the endpoint its token names.
pub struct CasSession {
    pub client: Arc<dyn Client>,
    pub cas_url: String,
}

impl CasSession {
    /// Asks the Hub for a read token of `repo` at `revision` and builds a `RemoteClient` that
    /// refreshes it (xet-client refreshes 30 s before `exp`, through [`HubTokenRefresher`]).
    pub async fn open(
        ctx: &XetContext,
        hub: &HubClient,
        repo: &RepoRef,
        revision: &str,
        limit: Duration,
    ) -> Result<CasSession, HubError> {
        let token = hub.xet_read_token(repo, revision).await?;
        let refresher = HubTokenRefresher::new(hub.clone(), repo.clone(), revision.into(), limit);
        let auth = Some(AuthConfig {
            token: token.access_token,
            token_expiration: token.exp,
            token_refresher: Arc::new(refresher),
        });
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::USER_AGENT,
            reqwest::header::HeaderValue::from_static(concat!("hubfs/", env!("CARGO_PKG_VERSION"))),
        );
        let cas_url = token.cas_url.trim_end_matches('/').to_string();
        let session_id = format!("hubfs-{}", std::process::id());
        let client = RemoteClient::new(
            ctx.clone(),
            &cas_url,
            &auth,
            &session_id,
            false,
            Some(Arc::new(headers)),
        );
        Ok(CasSession { client, cas_url })
    }
}
