//! Everything a [`HubClient`](super::HubClient) needs to know before its first request:
//! where the Hub is, who we are, and how patient to be.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::auth::Token;
use super::error::HubError;
use super::retry::RetryPolicy;

/// The public Hub, used when neither `--endpoint` nor `HF_ENDPOINT` says otherwise.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Client configuration. Build with [`HubConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Base URL of the Hub (`https://huggingface.co`, or an emulator). May carry a path prefix.
    pub endpoint: Url,
    /// Bearer token, sent only to the endpoint's own origin.
    pub token: Option<Token>,
    pub user_agent: String,
    /// TCP + TLS connect bound.
    pub connect_timeout: Duration,
    /// Longest wait for the next byte of a response (headers included) on content reads and
    /// uploads: a stalled server turns into an error instead of a hung reader.
    pub read_idle_timeout: Duration,
    /// Whole-request bound for JSON API calls and metadata HEADs.
    pub api_timeout: Duration,
    /// Whole-request bound for a commit POST (which carries inline files).
    pub commit_timeout: Duration,
    pub retry: RetryPolicy,
    /// Most requests in flight at once (a range stream holds one until its body ends or is
    /// dropped); also the idle connections kept per host.
    pub max_connections: usize,
    /// Parts of one multipart LFS upload sent in parallel.
    pub upload_concurrency: usize,
    /// Longest time a CDN location learned from a redirect is reused without asking the Hub
    /// again (shorter if the signed URL says it expires sooner).
    pub location_ttl: Duration,
    /// How many (repo, commit, path) → CDN location entries are remembered.
    pub location_cache_entries: usize,
    /// Bounds of every paginated listing (tree, repos, commits).
    pub listing: ListingLimits,
    /// Largest bodies read into memory.
    pub bodies: BodyLimits,
    /// A PEM bundle of certificate authorities trusted besides the built-in Mozilla roots
    /// (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`: see [`HubConfig::ca_bundle_from_env`]).
    pub ca_bundle: Option<PathBuf>,
}

/// Bounds of one paginated listing: a Hub (or something posing as one) whose pages never end,
/// loop, or grow without bound ends the listing with an error instead of a hung reader and a
/// daemon that eats memory. A `Link: next` URL seen twice in one listing is always an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListingLimits {
    /// Pages fetched per listing. The Hub pages trees by 1000 entries (50 when expanded), so
    /// 20 000 pages cover 20 M entries, four times the biggest repos' few million files; a
    /// server sending tiny pages forever stops here.
    pub max_pages: u32,
    /// Entries accepted per listing. The biggest Hub repos hold a few million files; 5 M
    /// covers them while bounding memory (about 150 bytes per entry in the tree index, see
    /// `fs::tree`, so well under 1 GiB).
    pub max_entries: usize,
    /// Wall-clock bound of one whole listing. A recursive listing of a few million files
    /// takes minutes (thousands of pages); 30 min leaves room for a slow link. Listings a
    /// reader waits on are bounded tighter by the caller (the mount's `--io-timeout`).
    pub deadline: Duration,
}

impl Default for ListingLimits {
    fn default() -> Self {
        ListingLimits {
            max_pages: 20_000,
            max_entries: 5_000_000,
            deadline: Duration::from_secs(30 * 60),
        }
    }
}

/// Largest response bodies read into memory whole; past them the request fails (not retried:
/// a server that sent too much once will again). File content is streamed, never buffered whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// One page of a listing: 1000 tree entries are ~300 KiB of JSON (with `lastCommit`
    /// and security status, 50 entries are less); 32 MiB is 100 times that.
    pub page: usize,
    /// Repo info with `siblings` (file names, sizes, ids): ~200 bytes per file, so 128 MiB
    /// holds the siblings of a repo of more than half a million files.
    pub repo_info: usize,
    /// Every other JSON answer (paths-info batches of 500 entries, refs, whoami, commit and
    /// upload answers): a few KiB to a few hundred KiB; 16 MiB leaves ample headroom.
    pub json: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            page: 32 << 20,
            repo_info: 128 << 20,
            json: 16 << 20,
        }
    }
}

impl HubConfig {
    /// A configuration with defaults chosen for a FUSE daemon on an ordinary network.
    pub fn new(endpoint: Url, token: Option<Token>) -> HubConfig {
        HubConfig {
            endpoint,
            token,
            user_agent: format!("hubfs/{}", env!("CARGO_PKG_VERSION")),
            // Connects finish in milliseconds even across continents; 10 s covers a slow DNS
            // or TLS handshake while still failing fast enough to retry.
            connect_timeout: Duration::from_secs(10),
            // huggingface_hub waits 10 s for a download byte (HF_HUB_DOWNLOAD_TIMEOUT); a CDN
            // assembling a cold Xet-backed file can take a few seconds more before the first
            // byte, so 20 s, after which the read is retried and finally fails with EIO.
            read_idle_timeout: Duration::from_secs(20),
            // Tree pages and paths-info of big repos can take several seconds server-side; the
            // Hub itself cuts requests at 60 s.
            api_timeout: Duration::from_secs(60),
            // A commit may carry up to ~100 MiB of inline base64 and the Hub may spend its full
            // 60 s applying it; 5 min covers the upload on a modest link.
            commit_timeout: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            // ~32 parallel range streams (read-ahead of several files) plus metadata calls
            // and uploads, with headroom.
            max_connections: 64,
            // Parts are large (the Hub picks the chunk size); 8 in flight saturate most links
            // without holding many file descriptors and buffers.
            upload_concurrency: 8,
            // The Hub's signed CDN URLs last about an hour; re-asking every 10 min costs one
            // redirect and keeps us clear of clock skew on `Expires`.
            location_ttl: Duration::from_secs(600),
            // A location is ~300 bytes; 4096 entries cover every file a mount reads at once.
            location_cache_entries: 4096,
            listing: ListingLimits::default(),
            bodies: BodyLimits::default(),
            ca_bundle: None,
        }
    }

    /// The CA bundle a user pointed Hub clients at, the first set of `SSL_CERT_FILE` (OpenSSL,
    /// rustls), `REQUESTS_CA_BUNDLE` and `CURL_CA_BUNDLE` (huggingface_hub goes through
    /// requests/httpx, which read these). The system's certificate directory is not scanned:
    /// the built-in Mozilla roots are what huggingface_hub trusts by default (certifi), and
    /// parsing every file of `/etc/ssl/certs` costs each mount ~5 ms before its first request.
    pub fn ca_bundle_from_env() -> Option<PathBuf> {
        ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"]
            .iter()
            .filter_map(std::env::var_os)
            .find(|v| !v.is_empty())
            .map(PathBuf::from)
    }

    /// The endpoint from `HF_ENDPOINT` (trailing `/` stripped), else the public Hub.
    pub fn endpoint_from_env() -> Result<Url, HubError> {
        match std::env::var("HF_ENDPOINT") {
            Ok(v) if !v.trim().is_empty() => parse_endpoint(&v),
            _ => parse_endpoint(DEFAULT_ENDPOINT),
        }
    }
}

/// Parses an endpoint URL: http(s) only, no query or fragment, trailing `/` removed.
pub fn parse_endpoint(text: &str) -> Result<Url, HubError> {
    let trimmed = text.trim().trim_end_matches('/');
    let url = Url::parse(trimmed)
        .map_err(|e| HubError::invalid(format!("invalid endpoint {trimmed:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(HubError::invalid(format!(
            "invalid endpoint {trimmed:?}: expected an http:// or https:// URL"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(HubError::invalid(format!(
            "invalid endpoint {trimmed:?}: no query or fragment allowed"
        )));
    }
    Ok(url)
}

/// `endpoint` as a string prefix for paths: no trailing `/`.
pub(crate) fn endpoint_base(endpoint: &Url) -> String {
    endpoint.as_str().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let u = parse_endpoint("http://127.0.0.1:8080/").unwrap();
        assert_eq!(endpoint_base(&u), "http://127.0.0.1:8080");
        let u = parse_endpoint("https://hub.example/prefix/").unwrap();
        assert_eq!(endpoint_base(&u), "https://hub.example/prefix");
        assert!(parse_endpoint("ftp://x").is_err());
        assert!(parse_endpoint("not a url").is_err());
        assert!(parse_endpoint("http://x/?a=b").is_err());
    }

    #[test]
    fn defaults_are_sane() {
        let c = HubConfig::new(parse_endpoint(DEFAULT_ENDPOINT).unwrap(), None);
        assert!(c.user_agent.starts_with("hubfs/"));
        assert!(c.read_idle_timeout < c.api_timeout);
        assert!(c.max_connections >= 32);
        assert!(c.retry.max_attempts >= 1);
    }
}
