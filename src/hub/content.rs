//! File content: metadata probes and ranged reads through `/resolve/`, with the CDN redirect.
//!
//! A file's bytes live behind `/{prefix}{repo}/resolve/{rev}/{path}`: regular files are
//! answered there (possibly after a same-origin hop), LFS files by a redirect to a signed CDN
//! URL on another host (hub-api.md §3). [`HubClient::file_metadata`] probes with a HEAD and
//! reads commit, etag and size from the last same-origin answer. [`HubClient::get_range`]
//! fetches `[start, end)` of a file at a pinned commit; it remembers where the CDN serves each
//! (repo, commit, path), so repeated reads of one file cost one round trip instead of two, and
//! forgets the location when it expires or the CDN refuses it. The token never goes to the CDN
//! (see `transport.rs`).

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use lru::LruCache;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE};
use reqwest::{Method, StatusCode};
use tokio::sync::OwnedSemaphorePermit;
use url::Url;

use super::client::HubClient;
use super::error::{self, ErrorContext, HubError};
use super::stats::Counters;
use super::transport::{location, Deadline, Request, Sent, MAX_REDIRECTS};
use crate::repo::{encode_path, encode_revision, validate_repo_path, RepoRef};

/// What the Hub says about one file at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMetadata {
    /// The 40-hex commit the revision resolved to (`X-Repo-Commit`).
    pub commit: String,
    /// Content identity, unquoted: sha256 for LFS files, git blob sha1 otherwise.
    pub etag: String,
    /// Real size of the content.
    pub size: u64,
    /// Where the bytes are served: the CDN URL of a foreign redirect, else the final URL.
    pub location: Url,
    /// Stored in LFS/Xet (content-addressed by sha256).
    pub is_lfs: bool,
}

impl HubClient {
    /// `{endpoint}/{prefix}{repo}/resolve/{rev}/{path}` with the clients' encoding rules.
    /// A bucket has no revision: `{endpoint}/buckets/{id}/resolve/{path}`.
    pub fn resolve_url(&self, repo: &RepoRef, revision: &str, path: &str) -> Result<Url, HubError> {
        if repo.repo_type == crate::repo::RepoType::Bucket {
            return self.bucket_resolve_url(repo, path);
        }
        validate_repo_path(path).map_err(|e| HubError::invalid(e.to_string()))?;
        self.url(&format!(
            "{}/resolve/{}/{}",
            repo.web_path(),
            encode_revision(revision),
            encode_path(path)
        ))
    }

    /// HEAD on the resolve URL with redirects off: same-origin hops are followed by hand, a
    /// redirect to another host ends the probe and its headers are the metadata.
    pub async fn file_metadata(
        &self,
        repo: &RepoRef,
        revision: &str,
        path: &str,
    ) -> Result<FileMetadata, HubError> {
        let ctx = self.repo_ctx(repo, Some(revision), Some(path));
        let r = self.file_metadata_inner(repo, revision, path, &ctx).await;
        self.count(r)
    }

    async fn file_metadata_inner(
        &self,
        repo: &RepoRef,
        revision: &str,
        path: &str,
        ctx: &ErrorContext,
    ) -> Result<FileMetadata, HubError> {
        let t = &self.inner.transport;
        let mut url = self.resolve_url(repo, revision, path)?;
        for _ in 0..=MAX_REDIRECTS {
            let req = self.api_request(Method::HEAD, url.clone(), ctx);
            let sent = t.send(&req).await?;
            if sent.status().is_redirection() {
                let next = location(&sent, ctx)?;
                if t.is_same_origin(&next) {
                    url = next;
                    continue;
                }
                let meta = metadata_from(sent.headers(), next, true, ctx)?;
                // The CDN URL serves this blob whatever revision named it: seed the memo
                // for the commit, so the first range read skips the redirect.
                self.inner.locations.lock().put(
                    LocationKey::new(repo, &meta.commit, path),
                    meta.location.clone(),
                );
                return Ok(meta);
            }
            let sent = t.ensure_success(sent, ctx).await?;
            return metadata_from(sent.headers(), url, false, ctx);
        }
        Err(HubError::protocol(&ctx.target(), "too many redirects"))
    }

    /// Ranged GET of `[start, end)` of `path` at `commit`. The body yields exactly those bytes,
    /// `end` clamped to the file size (a range at or past EOF is empty). Transient failures
    /// before the body are retried; a failure inside the body is an error from
    /// [`RangeBody::chunk`] and the caller resumes from where it got.
    pub async fn get_range(
        &self,
        repo: &RepoRef,
        commit: &str,
        path: &str,
        start: u64,
        end: u64,
    ) -> Result<RangeBody, HubError> {
        let ctx = self.repo_ctx(repo, Some(commit), Some(path));
        let r = self
            .get_range_inner(repo, commit, path, start, end, &ctx)
            .await;
        self.count(r)
    }

    async fn get_range_inner(
        &self,
        repo: &RepoRef,
        commit: &str,
        path: &str,
        start: u64,
        end: u64,
        ctx: &ErrorContext,
    ) -> Result<RangeBody, HubError> {
        let resolve = self.resolve_url(repo, commit, path)?;
        if end <= start {
            return Ok(RangeBody::empty(self, ctx));
        }
        let t = &self.inner.transport;
        let key = LocationKey::new(repo, commit, path);
        let range = HeaderValue::from_str(&format!("bytes={}-{}", start, end - 1))
            .map_err(|_| HubError::invalid("invalid range"))?;
        let cfg = &self.inner.config;
        let deadline = Deadline::Headers(cfg.connect_timeout + cfg.read_idle_timeout);
        let mut refreshed = false;
        'resolve: loop {
            let remembered = self.inner.locations.lock().get(&key);
            if remembered.is_some() {
                t.counters.location_hit();
            }
            let mut url = remembered.clone().unwrap_or_else(|| resolve.clone());
            for _ in 0..=MAX_REDIRECTS {
                let req = Request::new(Method::GET, url.clone(), deadline, ctx.clone())
                    .header("range", range.clone());
                let sent = t.send(&req).await?;
                let status = sent.status();
                if status.is_redirection() {
                    url = location(&sent, ctx)?;
                    continue;
                }
                // Remember a location learned from a redirect (not one we already had: its
                // lifetime must not be extended by use).
                let learned = url != resolve && remembered.as_ref() != Some(&url);
                if matches!(status.as_u16(), 401 | 403 | 404 | 410)
                    && !t.is_same_origin(&url)
                    && !refreshed
                {
                    // A signed CDN URL that expired or was revoked, or a remembered one that
                    // serves only the range it was minted for: ask the Hub for a new one.
                    refreshed = true;
                    if remembered.as_ref() == Some(&url) {
                        if self.inner.locations.lock().refused(&key, &url) {
                            tracing::info!(
                                target: "hubfs::hub",
                                "{} refused a remembered location before its expiry: its URLs look bound to one range; resolving each range from now on",
                                url.origin().ascii_serialization()
                            );
                        }
                    } else {
                        self.inner.locations.lock().forget(&key);
                    }
                    t.counters.location_refresh();
                    tracing::debug!(target: "hubfs::hub", status = status.as_u16(), "CDN refused a location; resolving again");
                    continue 'resolve;
                }
                if !matches!(status.as_u16(), 200 | 206 | 416) {
                    return Err(t.error_from(sent, ctx).await);
                }
                if learned {
                    self.inner.locations.lock().put(key.clone(), url.clone());
                }
                return RangeBody::from_response(self, sent, start, end, ctx);
            }
            return Err(HubError::protocol(&ctx.target(), "too many redirects"));
        }
    }

    /// Reads `[start, end)` whole, resuming after transient failures inside the body (up to
    /// the retry policy's attempts without progress). For small reads and tests; streaming
    /// callers use [`HubClient::get_range`].
    pub async fn read_range(
        &self,
        repo: &RepoRef,
        commit: &str,
        path: &str,
        start: u64,
        end: u64,
    ) -> Result<Bytes, HubError> {
        let policy = self.inner.transport.retry_policy().clone();
        let mut buf = BytesMut::new();
        let mut failures = 0u32;
        loop {
            let pos = start + buf.len() as u64;
            let mut body = self.get_range(repo, commit, path, pos, end).await?;
            let before = buf.len();
            let failure = loop {
                match body.chunk().await {
                    Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
                    Ok(None) => return Ok(buf.freeze()),
                    Err(e) => break e,
                }
            };
            if buf.len() > before {
                failures = 0;
            }
            failures += 1;
            if !failure.is_retryable() || failures >= policy.max_attempts {
                return Err(failure);
            }
            self.inner.transport.counters.retry();
            tokio::time::sleep(policy.backoff(failures)).await;
        }
    }
}

/// Reads [`FileMetadata`] from the headers of the answer that ends a probe.
fn metadata_from(
    headers: &HeaderMap,
    location: Url,
    is_redirect: bool,
    ctx: &ErrorContext,
) -> Result<FileMetadata, HubError> {
    let target = ctx.target();
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let commit = text("x-repo-commit")
        .filter(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            HubError::protocol(
                &target,
                "no valid X-Repo-Commit header (not a Hub endpoint?)",
            )
        })?
        .to_ascii_lowercase();
    let etag = text("x-linked-etag")
        .or_else(|| text("etag"))
        .map(unquote_etag)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| HubError::protocol(&target, "no ETag or X-Linked-Etag header"))?;
    let size = match text("x-linked-size") {
        Some(s) => Some(s),
        // A redirect's Content-Length is the size of the redirect body, not the file's.
        None if !is_redirect => text(CONTENT_LENGTH.as_str()),
        None => None,
    }
    .and_then(|s| s.parse::<u64>().ok())
    .ok_or_else(|| HubError::protocol(&target, "no file size (X-Linked-Size / Content-Length)"))?;
    let is_lfs = text("x-xet-hash").is_some()
        || (etag.len() == 64 && etag.bytes().all(|b| b.is_ascii_hexdigit()));
    Ok(FileMetadata {
        commit,
        etag,
        size,
        location,
        is_lfs,
    })
}

/// `W/"abc"` → `abc`.
fn unquote_etag(raw: &str) -> String {
    raw.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

/// A parsed `Content-Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ContentRange {
    /// First and last byte (inclusive); `None` for `*` (416 answers).
    range: Option<(u64, u64)>,
    /// Full size; `None` for `*` (unknown).
    total: Option<u64>,
}

/// Parses `bytes a-b/N`, `bytes a-b/*` or `bytes */N`.
fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let range = match range.trim() {
        "*" => None,
        r => {
            let (a, b) = r.split_once('-')?;
            let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            if b < a {
                return None;
            }
            Some((a, b))
        }
    };
    Some(ContentRange { range, total })
}

/// The body of a range read: yields exactly the requested bytes.
pub struct RangeBody {
    response: Option<reqwest::Response>,
    /// Leading bytes to drop (a `200` answer that ignored the range).
    skip: u64,
    remaining: u64,
    /// The length is known, so an early end of stream is a cut, not EOF.
    exact: bool,
    total_size: Option<u64>,
    idle: Duration,
    counters: Arc<Counters>,
    target: String,
    _permit: Option<OwnedSemaphorePermit>,
}

impl std::fmt::Debug for RangeBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeBody")
            .field("target", &self.target)
            .field("remaining", &self.remaining)
            .field("total_size", &self.total_size)
            .finish()
    }
}

impl RangeBody {
    fn empty(client: &HubClient, ctx: &ErrorContext) -> RangeBody {
        RangeBody {
            response: None,
            skip: 0,
            remaining: 0,
            exact: true,
            total_size: None,
            idle: client.inner.config.read_idle_timeout,
            counters: Arc::clone(&client.inner.transport.counters),
            target: ctx.target(),
            _permit: None,
        }
    }

    /// Interprets a `206`, `200` or `416` answer to `Range: bytes=start-(end-1)`.
    fn from_response(
        client: &HubClient,
        sent: Sent,
        start: u64,
        end: u64,
        ctx: &ErrorContext,
    ) -> Result<RangeBody, HubError> {
        let target = ctx.target();
        let mut body = RangeBody::empty(client, ctx);
        let headers = sent.headers();
        if let Some(enc) = headers.get(CONTENT_ENCODING) {
            if !enc.as_bytes().eq_ignore_ascii_case(b"identity") {
                return Err(HubError::protocol(
                    &target,
                    "content arrived compressed despite Accept-Encoding: identity",
                ));
            }
        }
        let content_range = headers
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                parse_content_range(v).ok_or_else(|| {
                    HubError::protocol(&target, format!("invalid Content-Range {v:?}"))
                })
            })
            .transpose()?;
        match sent.status() {
            StatusCode::PARTIAL_CONTENT => {
                let Some(ContentRange {
                    range: Some((first, last)),
                    total,
                }) = content_range
                else {
                    return Err(HubError::protocol(
                        &target,
                        "206 without a byte Content-Range",
                    ));
                };
                let at_eof = total.is_none_or(|n| last + 1 == n);
                if first != start || last >= end || (last + 1 < end && !at_eof) {
                    return Err(HubError::protocol(
                        &target,
                        format!(
                            "asked for bytes {start}-{}, got {first}-{last}/{}",
                            end - 1,
                            total.map_or("*".to_string(), |n| n.to_string())
                        ),
                    ));
                }
                body.remaining = last - first + 1;
                body.total_size = total;
            }
            StatusCode::OK => {
                // The server ignored the range: skip to `start` and stop at `end`.
                let len = headers
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                body.skip = start;
                body.total_size = len;
                match len {
                    Some(n) => body.remaining = end.min(n).saturating_sub(start),
                    None => {
                        body.remaining = end - start;
                        body.exact = false;
                    }
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // `start` is at or past EOF: an empty read, as on a local file.
                let total = content_range.and_then(|c| c.total);
                if let Some(n) = total {
                    if start < n {
                        return Err(HubError::protocol(
                            &target,
                            format!("416 for bytes {start}-{} of a {n}-byte file", end - 1),
                        ));
                    }
                }
                body.total_size = total;
                return Ok(body);
            }
            status => {
                return Err(HubError::protocol(
                    &target,
                    format!("unexpected status {status}"),
                ))
            }
        }
        if body.remaining > 0 {
            body.response = Some(sent.response);
            body._permit = Some(sent.permit);
        }
        Ok(body)
    }

    /// The next piece of the range, `None` once all of it was yielded. Each wait is bounded
    /// by the read idle timeout; a stream that ends early is an error.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HubError> {
        let r = self.next_chunk().await;
        if r.is_err() {
            self.counters.error();
            self.finish();
        }
        r
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>, HubError> {
        loop {
            if self.remaining == 0 {
                self.finish();
                return Ok(None);
            }
            let Some(response) = self.response.as_mut() else {
                return Ok(None);
            };
            let next = match tokio::time::timeout(self.idle, response.chunk()).await {
                Err(_) => {
                    return Err(HubError::Timeout {
                        target: self.target.clone(),
                        after: self.idle,
                    })
                }
                Ok(r) => r.map_err(|e| error::from_transport(e, &self.target, self.idle))?,
            };
            let Some(mut bytes) = next else {
                if self.exact {
                    return Err(HubError::Network {
                        target: self.target.clone(),
                        message: format!(
                            "connection closed with {} bytes of the range still missing",
                            self.remaining
                        ),
                    });
                }
                self.remaining = 0;
                continue;
            };
            self.counters.received(bytes.len() as u64);
            if self.skip > 0 {
                let n = self.skip.min(bytes.len() as u64);
                self.skip -= n;
                bytes = bytes.slice(n as usize..);
            }
            if bytes.is_empty() {
                continue;
            }
            if bytes.len() as u64 > self.remaining {
                bytes.truncate(self.remaining as usize);
            }
            self.remaining -= bytes.len() as u64;
            if self.remaining == 0 {
                self.finish();
            }
            return Ok(Some(bytes));
        }
    }

    /// Bytes still to come (an upper bound when the server sent no length).
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The file's size if the answer told it (`Content-Range` total or full-body length).
    pub fn total_size(&self) -> Option<u64> {
        self.total_size
    }

    /// Concatenates the rest of the body.
    pub async fn collect(mut self) -> Result<Bytes, HubError> {
        let mut buf = BytesMut::with_capacity(self.remaining.min(64 << 20) as usize);
        while let Some(chunk) = self.chunk().await? {
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// Releases the connection and its in-flight slot.
    fn finish(&mut self) {
        self.response = None;
        self._permit = None;
    }
}

/// Identity of a blob location: a path at a commit of a repo.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct LocationKey {
    repo: RepoRef,
    commit: String,
    path: String,
}

impl LocationKey {
    pub fn new(repo: &RepoRef, commit: &str, path: &str) -> LocationKey {
        LocationKey {
            repo: repo.clone(),
            commit: commit.to_string(),
            path: path.to_string(),
        }
    }
}

/// Remembered CDN locations, each valid until its signature expires or the TTL ends.
///
/// Some CDNs sign a location for the one `Range` it was minted for (a byte-range condition in
/// the signed policy: Hub clients report it for Xet-backed files). Reusing such a location for
/// another range costs a refusal and a new resolve each time, so a CDN origin that refuses a
/// remembered location before its expiry is not remembered for again (`range_bound`).
pub(crate) struct LocationMemo {
    entries: LruCache<LocationKey, (Url, Instant)>,
    ttl: Duration,
    /// Origins (`scheme://host:port`) whose locations serve one range only.
    range_bound: HashSet<String>,
}

/// A remembered URL is dropped this long before its signature's stated expiry, so a read
/// that starts just before expiry does not race it.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

impl LocationMemo {
    pub fn new(capacity: usize, ttl: Duration) -> LocationMemo {
        LocationMemo {
            entries: LruCache::new(NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN)),
            ttl,
            range_bound: HashSet::new(),
        }
    }

    pub fn get(&mut self, key: &LocationKey) -> Option<Url> {
        let (url, until) = self.entries.get(key)?;
        if Instant::now() < *until {
            return Some(url.clone());
        }
        self.entries.pop(key);
        None
    }

    pub fn put(&mut self, key: LocationKey, url: Url) {
        if self
            .range_bound
            .contains(&url.origin().ascii_serialization())
        {
            return;
        }
        let mut lifetime = self.ttl;
        if let Some(expires) = signed_expiry(&url) {
            let left = expires
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            lifetime = lifetime.min(left.saturating_sub(EXPIRY_MARGIN.min(left / 4)));
        }
        if lifetime.is_zero() {
            self.entries.pop(&key);
            return;
        }
        self.entries.put(key, (url, Instant::now() + lifetime));
    }

    pub fn forget(&mut self, key: &LocationKey) {
        self.entries.pop(key);
    }

    /// A remembered `url` was refused although its lifetime had not run out: its origin's
    /// locations are taken to serve one range each and are no longer remembered. True the
    /// first time for an origin.
    pub fn refused(&mut self, key: &LocationKey, url: &Url) -> bool {
        self.entries.pop(key);
        let origin = url.origin().ascii_serialization();
        if !self.range_bound.insert(origin.clone()) {
            return false;
        }
        let same: Vec<LocationKey> = self
            .entries
            .iter()
            .filter(|(_, (u, _))| u.origin().ascii_serialization() == origin)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &same {
            self.entries.pop(k);
        }
        true
    }
}

/// Expiry announced by a signed URL: `Expires=<unix seconds>` (CloudFront and the Hub's
/// CDN) or `exp=`.
pub fn signed_expiry(url: &Url) -> Option<SystemTime> {
    url.query_pairs()
        .find(|(k, _)| k.eq_ignore_ascii_case("expires") || k.eq_ignore_ascii_case("exp"))
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::{RepoId, RepoType};

    #[test]
    fn content_ranges() {
        let cr = |range, total| Some(ContentRange { range, total });
        assert_eq!(
            parse_content_range("bytes 0-99/1234"),
            cr(Some((0, 99)), Some(1234))
        );
        assert_eq!(parse_content_range("bytes 5-5/*"), cr(Some((5, 5)), None));
        assert_eq!(parse_content_range("bytes */2307"), cr(None, Some(2307)));
        assert_eq!(parse_content_range("bytes 9-3/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes 0-x/2"), None);
    }

    #[test]
    fn etags_are_unquoted() {
        assert_eq!(unquote_etag("\"abc\""), "abc");
        assert_eq!(unquote_etag("W/\"abc\""), "abc");
        assert_eq!(unquote_etag("abc"), "abc");
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn metadata_from_a_cdn_redirect() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let oid = "a".repeat(64);
        let mut h = headers(&[
            ("x-repo-commit", "0123456789abcdef0123456789abcdef01234567"),
            ("x-linked-size", "548105171"),
            ("content-length", "1008"),
        ]);
        h.insert(
            "x-linked-etag",
            HeaderValue::from_str(&format!("\"{oid}\"")).unwrap(),
        );
        let loc = Url::parse("http://cdn:9/blob?Expires=1").unwrap();
        let m = metadata_from(&h, loc.clone(), true, &ErrorContext::default()).unwrap();
        assert_eq!(m.commit, sha);
        assert_eq!(m.etag, oid);
        assert_eq!(m.size, 548105171);
        assert_eq!(m.location, loc);
        assert!(m.is_lfs);
    }

    #[test]
    fn metadata_of_a_regular_file_and_missing_headers() {
        let h = headers(&[
            ("x-repo-commit", "0123456789abcdef0123456789abcdef01234567"),
            ("etag", "\"1a42034850e2f5213e1a89a887747b667dc9d125\""),
            ("content-length", "665"),
        ]);
        let loc = Url::parse("http://hub/x/resolve/main/config.json").unwrap();
        let m = metadata_from(&h, loc.clone(), false, &ErrorContext::default()).unwrap();
        assert_eq!(m.size, 665);
        assert_eq!(m.etag, "1a42034850e2f5213e1a89a887747b667dc9d125");
        assert!(!m.is_lfs);
        // A redirect without X-Linked-Size has no trustworthy size.
        assert!(metadata_from(&h, loc.clone(), true, &ErrorContext::default()).is_err());
        let no_commit = headers(&[("etag", "\"x\""), ("content-length", "1")]);
        assert!(metadata_from(&no_commit, loc, false, &ErrorContext::default()).is_err());
    }

    #[test]
    fn memo_honours_ttl_and_signed_expiry() {
        let repo = RepoRef::new(RepoType::Model, RepoId::parse("a/b").unwrap());
        let key = LocationKey::new(&repo, "c", "p");
        let mut memo = LocationMemo::new(2, Duration::from_secs(600));
        let plain = Url::parse("http://cdn/blob").unwrap();
        memo.put(key.clone(), plain.clone());
        assert_eq!(memo.get(&key), Some(plain));
        let past = Url::parse("http://cdn/blob?Expires=1000").unwrap();
        memo.put(key.clone(), past);
        assert_eq!(memo.get(&key), None);
        let far = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let future = Url::parse(&format!("http://cdn/blob?Expires={far}")).unwrap();
        memo.put(key.clone(), future.clone());
        assert_eq!(memo.get(&key), Some(future));
        memo.forget(&key);
        assert_eq!(memo.get(&key), None);

        let mut short = LocationMemo::new(2, Duration::from_millis(1));
        short.put(key.clone(), Url::parse("http://cdn/x").unwrap());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.get(&key), None);
    }
}
