//! The shared services every part of the filesystem core uses: the Hub client (absent when
//! offline), the metadata store, the read path and the runtime that runs background work.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::cache::MetaStore;
use crate::hub::{HubClient, HubError, Token};
use crate::read::ReadPath;

pub struct Services {
    /// None in offline mode: nothing may touch the network.
    pub client: Option<HubClient>,
    pub meta: Arc<MetaStore>,
    pub reader: Arc<ReadPath>,
    /// Identifies the mount's token in persisted metadata without storing the token.
    pub token_fingerprint: Option<String>,
    pub rt: tokio::runtime::Handle,
    /// Longest wait for one metadata answer, retries included (see `ReadConfig::io_timeout`).
    pub io_timeout: std::time::Duration,
}

impl Services {
    /// Runs a Hub call, giving up after `io_timeout` so no lookup hangs on a stalled Hub, or
    /// at once when the mount is being unmounted (see [`crate::read::Abort`]).
    pub async fn bounded<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, HubError>>,
    ) -> Result<T, HubError> {
        let aborted = || HubError::Network {
            target: what.to_string(),
            message: "aborted: the mount is being unmounted".to_string(),
        };
        let call = bounded(self.io_timeout, what, call);
        self.reader.abort().run(call, aborted).await
    }
}

/// Runs a Hub call about `what`, giving up after `limit` with [`HubError::Timeout`].
pub async fn bounded<T>(
    limit: std::time::Duration,
    what: &str,
    call: impl std::future::Future<Output = Result<T, HubError>>,
) -> Result<T, HubError> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => r,
        Err(_) => Err(HubError::Timeout {
            target: what.to_string(),
            after: limit,
        }),
    }
}

/// A stable, non-reversible name for a token: enough to recognise it again, useless to steal.
pub fn token_fingerprint(token: &Token) -> String {
    let mut h = Sha256::new();
    h.update(b"hubfs token fingerprint v1\0");
    h.update(token.secret().as_bytes());
    hex::encode(&h.finalize()[..16])
}
