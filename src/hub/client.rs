//! [`HubClient`]: a cheap-to-clone handle on one configured connection to the Hub, and the
//! JSON metadata calls (who am I, repo info, refs, tree, paths-info, listings, history).
//!
//! Content reads live in `content.rs`, the write side in `upload.rs` and `manage.rs`; all go
//! through the same [`Transport`].

use std::sync::Arc;

use parking_lot::Mutex;
use reqwest::Method;
use url::Url;

use super::config::{endpoint_base, HubConfig};
use super::content::LocationMemo;
use super::error::{ErrorContext, HubError};
use super::pagination::{entry_problem, next_link, ListingBudget, TreeOptions, TreePager};
use super::request_metrics::RequestMetrics;
use super::stats::HubStats;
use super::transport::{Deadline, Request, Transport};
use super::types::{CommitInfo, Refs, RepoInfo, TreeEntry, WhoAmI};
use crate::repo::{
    encode_path, encode_revision, validate_listed_path, validate_repo_path, RepoRef, RepoType,
};

/// The directory part of a repo path ("" at the root).
fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// paths-info requests carry at most this many paths (huggingface_hub's batch; the Hub
/// refuses ~1000+ with 413).
pub const PATHS_INFO_BATCH: usize = 500;

/// Largest page requested from the repo listing endpoints (the Hub's own maximum is ~1000).
const LIST_PAGE_MAX: usize = 1000;

/// Handle on the Hub. Clones share connections, counters and the CDN location memo.
#[derive(Clone)]
pub struct HubClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: HubConfig,
    /// Endpoint without trailing `/`, prefix of every Hub URL.
    pub base: String,
    pub transport: Transport,
    pub locations: Mutex<LocationMemo>,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("endpoint", &self.inner.base)
            .field("token", &self.inner.config.token)
            .finish()
    }
}

impl HubClient {
    pub fn new(config: HubConfig) -> Result<HubClient, HubError> {
        let config = HubConfig {
            endpoint: super::config::parse_endpoint(config.endpoint.as_str())?,
            ..config
        };
        let transport = Transport::new(&config)?;
        let locations = Mutex::new(LocationMemo::new(
            config.location_cache_entries,
            config.location_ttl,
        ));
        Ok(HubClient {
            inner: Arc::new(Inner {
                base: endpoint_base(&config.endpoint),
                config,
                transport,
                locations,
            }),
        })
    }

    pub fn endpoint(&self) -> &Url {
        &self.inner.config.endpoint
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Whether requests carry a token.
    pub fn is_authenticated(&self) -> bool {
        self.inner.config.token.is_some()
    }

    pub fn stats(&self) -> HubStats {
        self.inner.transport.counters.snapshot()
    }

    /// Requests by kind and status and their latency, shared with the client (live).
    pub fn request_metrics(&self) -> RequestMetrics {
        self.inner.transport.counters.by_kind.clone()
    }

    /// `GET /api/whoami-v2`: the token's user and role. Anonymous clients get
    /// [`HubError::AuthRequired`] without a request.
    pub async fn whoami(&self) -> Result<WhoAmI, HubError> {
        let ctx = self.ctx(ErrorContext::label("whoami"));
        if !self.is_authenticated() {
            return self.count(Err(HubError::AuthRequired {
                target: ctx.target(),
            }));
        }
        let r = async {
            let url = self.url("/api/whoami-v2")?;
            self.get_json(url, &ctx).await
        }
        .await;
        self.count(r)
    }

    /// `GET /api/{type}s/{repo}[/revision/{rev}]`; `sha` is the commit the revision (default
    /// branch if `None`) resolves to; `blobs` adds sizes and LFS info to `siblings`.
    pub async fn repo_info(
        &self,
        repo: &RepoRef,
        revision: Option<&str>,
        blobs: bool,
    ) -> Result<RepoInfo, HubError> {
        if repo.repo_type == RepoType::Bucket {
            let r = self.bucket_info(repo, revision).await;
            return self.count(r);
        }
        let ctx = self.repo_ctx(repo, revision, None);
        let r = async {
            let mut path = repo.api_path();
            if let Some(rev) = revision {
                path.push_str("/revision/");
                path.push_str(&encode_revision(rev));
            }
            if blobs {
                path.push_str("?blobs=true");
            }
            let url = self.url(&path)?;
            let req = self
                .api_request(Method::GET, url, &ctx)
                .max_body(self.inner.config.bodies.repo_info);
            let mut info: RepoInfo = self.call_json(&req).await?;
            if let Some(siblings) = info.siblings.as_mut() {
                let before = siblings.len();
                siblings.retain(|s| validate_listed_path(&s.rfilename).is_ok());
                self.skipped(&ctx, "siblings", before - siblings.len());
            }
            Ok(info)
        }
        .await;
        self.count(r)
    }

    /// `GET /api/{type}s/{repo}/refs`: branches, tags, converts and (optionally) PR refs.
    pub async fn list_refs(&self, repo: &RepoRef, include_prs: bool) -> Result<Refs, HubError> {
        let ctx = self.repo_ctx(repo, None, None);
        let r = async {
            let mut path = format!("{}/refs", repo.api_path());
            if include_prs {
                path.push_str("?include_prs=1");
            }
            let url = self.url(&path)?;
            self.get_json(url, &ctx).await
        }
        .await;
        self.count(r)
    }

    /// Lists `path` ("" = root) at `revision`, page by page (non-expanded). A missing
    /// directory yields [`HubError::EntryNotFound`] from the first page.
    pub fn list_tree(
        &self,
        repo: &RepoRef,
        revision: &str,
        path: &str,
        recursive: bool,
    ) -> TreePager {
        self.list_tree_with(
            repo,
            revision,
            path,
            TreeOptions {
                recursive,
                ..TreeOptions::default()
            },
        )
    }

    /// [`HubClient::list_tree`] with every option (`expand` adds `lastCommit`, `limit` sets
    /// the page size).
    pub fn list_tree_with(
        &self,
        repo: &RepoRef,
        revision: &str,
        path: &str,
        options: TreeOptions,
    ) -> TreePager {
        let path = path.trim_matches('/');
        if repo.repo_type == RepoType::Bucket {
            // No revision: a bucket has one state, listed as it is now.
            return self.bucket_tree(repo, path, options);
        }
        let ctx = self.repo_ctx(repo, Some(revision), Some(path));
        let first = (|| {
            if !path.is_empty() {
                validate_repo_path(path).map_err(|e| HubError::invalid(e.to_string()))?;
            }
            let mut p = format!("{}/tree/{}", repo.api_path(), encode_revision(revision));
            if !path.is_empty() {
                p.push('/');
                p.push_str(&encode_path(path));
            }
            p.push_str(&format!(
                "?recursive={}&expand={}",
                options.recursive, options.expand
            ));
            if let Some(limit) = options.limit {
                p.push_str(&format!("&limit={limit}"));
            }
            self.url(&p)
        })();
        TreePager::new(self.clone(), first, ctx, path, options.recursive)
    }

    /// `POST /api/{type}s/{repo}/paths-info/{rev}`: entries for the given paths that exist
    /// (missing ones are silently absent), in batches of [`PATHS_INFO_BATCH`].
    pub async fn paths_info(
        &self,
        repo: &RepoRef,
        revision: &str,
        paths: &[String],
    ) -> Result<Vec<TreeEntry>, HubError> {
        if repo.repo_type == RepoType::Bucket {
            let r = self.bucket_paths_info(repo, paths).await;
            return self.count(r);
        }
        let ctx = self.repo_ctx(repo, Some(revision), None);
        let r = async {
            for p in paths {
                validate_repo_path(p).map_err(|e| HubError::invalid(e.to_string()))?;
            }
            let url = self.url(&format!(
                "{}/paths-info/{}",
                repo.api_path(),
                encode_revision(revision)
            ))?;
            let mut out = Vec::with_capacity(paths.len());
            for batch in paths.chunks(PATHS_INFO_BATCH) {
                // The serializer is not Send: finish it before the await.
                let form = {
                    let mut form = form_urlencoded::Serializer::new(String::new());
                    for p in batch {
                        form.append_pair("paths", p);
                    }
                    form.append_pair("expand", "false");
                    form.finish()
                };
                let req = self
                    .api_request(Method::POST, url.clone(), &ctx)
                    .body(form, "application/x-www-form-urlencoded");
                let mut entries: Vec<TreeEntry> = self.call_json(&req).await?;
                let before = entries.len();
                // Only what was asked, and nothing unshowable: the answer names paths.
                entries.retain(|e| {
                    batch.contains(&e.path) && entry_problem(e, parent(&e.path), false).is_none()
                });
                self.skipped(&ctx, "paths-info entries", before - entries.len());
                out.extend(entries);
            }
            Ok(out)
        }
        .await;
        self.count(r)
    }

    /// `GET /api/{models|datasets|spaces}` filtered by author and/or search, following pages
    /// until `max` repos (`usize::MAX` for all).
    pub async fn list_repos(
        &self,
        repo_type: RepoType,
        author: Option<&str>,
        search: Option<&str>,
        max: usize,
    ) -> Result<Vec<RepoInfo>, HubError> {
        let ctx = self.ctx(ErrorContext::label(&format!(
            "list of {}",
            repo_type.plural()
        )));
        let r = async {
            // The serializer is not Send: finish it before the first await.
            let query = {
                let mut q = form_urlencoded::Serializer::new(String::new());
                if let Some(a) = author {
                    q.append_pair("author", a);
                }
                if let Some(s) = search {
                    q.append_pair("search", s);
                }
                q.append_pair("limit", &max.clamp(1, LIST_PAGE_MAX).to_string());
                q.finish()
            };
            let url = self.url(&format!("/api/{}?{query}", repo_type.plural()))?;
            self.collect_pages(url, &ctx, max).await
        }
        .await;
        self.count(r)
    }

    /// `GET /api/{type}s/{repo}/commits/{rev}`: history newest first, up to `max` commits.
    pub async fn list_commits(
        &self,
        repo: &RepoRef,
        revision: &str,
        max: usize,
    ) -> Result<Vec<CommitInfo>, HubError> {
        let ctx = self.repo_ctx(repo, Some(revision), None);
        let r = async {
            let url = self.url(&format!(
                "{}/commits/{}?limit={}",
                repo.api_path(),
                encode_revision(revision),
                max.clamp(1, LIST_PAGE_MAX)
            ))?;
            self.collect_pages(url, &ctx, max).await
        }
        .await;
        self.count(r)
    }

    // ----- helpers shared by the other client files -----

    /// `{endpoint}{path_and_query}`.
    pub(crate) fn url(&self, path_and_query: &str) -> Result<Url, HubError> {
        let text = format!("{}{}", self.inner.base, path_and_query);
        Url::parse(&text).map_err(|e| HubError::invalid(format!("cannot build URL: {e}")))
    }

    pub(crate) fn ctx(&self, ctx: ErrorContext) -> ErrorContext {
        self.inner.transport.ctx(ctx)
    }

    pub(crate) fn repo_ctx(
        &self,
        repo: &RepoRef,
        revision: Option<&str>,
        path: Option<&str>,
    ) -> ErrorContext {
        self.ctx(ErrorContext {
            repo: Some(repo.to_string()),
            revision: revision.map(str::to_string),
            path: path.map(str::to_string),
            ..ErrorContext::default()
        })
    }

    /// A JSON API request: whole-request timeout, retried when transient, token if same origin.
    pub(crate) fn api_request(&self, method: Method, url: Url, ctx: &ErrorContext) -> Request {
        Request::new(
            method,
            url,
            Deadline::Total(self.inner.config.api_timeout),
            ctx.clone(),
        )
    }

    /// Sends `req` (following same-origin redirects), checks the status, parses the JSON.
    pub(crate) async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        req: &Request,
    ) -> Result<T, HubError> {
        let t = &self.inner.transport;
        let sent = t.send_following(req).await?;
        let sent = t.ensure_success(sent, &req.ctx).await?;
        t.read_json(sent, &req.ctx).await
    }

    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        ctx: &ErrorContext,
    ) -> Result<T, HubError> {
        self.call_json(&self.api_request(Method::GET, url, ctx))
            .await
    }

    /// One page of a paginated list and the URL of the next one (`Link: <…>; rel="next"`).
    pub(crate) async fn get_page<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        ctx: &ErrorContext,
    ) -> Result<(Vec<T>, Option<Url>), HubError> {
        let t = &self.inner.transport;
        let req = self
            .api_request(Method::GET, url, ctx)
            .max_body(self.inner.config.bodies.page);
        let sent = t.send_following(&req).await?;
        let sent = t.ensure_success(sent, ctx).await?;
        let next = next_link(sent.headers(), &sent.url, &ctx.target())?;
        let items = t.read_json(sent, ctx).await?;
        Ok((items, next))
    }

    pub(crate) async fn collect_pages<T: serde::de::DeserializeOwned>(
        &self,
        first: Url,
        ctx: &ErrorContext,
        max: usize,
    ) -> Result<Vec<T>, HubError> {
        let mut out = Vec::new();
        let mut next = Some(first);
        let mut budget = ListingBudget::new(self.inner.config.listing);
        let target = ctx.target();
        while let Some(url) = next.take() {
            if out.len() >= max {
                break;
            }
            let left = budget.admit(&url, &target)?;
            let page = self.get_page::<T>(url, ctx);
            let (items, link) = match tokio::time::timeout(left, page).await {
                Ok(r) => r?,
                Err(_) => return Err(budget.timeout(&target)),
            };
            if items.is_empty() {
                break;
            }
            budget.add_entries(items.len(), &target)?;
            out.extend(items);
            next = link;
        }
        out.truncate(max);
        Ok(out)
    }

    /// Counts and logs (once per answer) entries of an answer that were dropped as invalid.
    fn skipped(&self, ctx: &ErrorContext, what: &str, n: usize) {
        if n == 0 {
            return;
        }
        self.inner.transport.counters.invalid_entries(n as u64);
        tracing::warn!(
            target: "hubfs::hub",
            "{}: skipped {n} {what} the Hub sent that cannot be shown (invalid or unexpected paths)",
            ctx.target()
        );
    }

    /// Counts a failed operation in the stats and passes the result through.
    pub(crate) fn count<T>(&self, r: Result<T, HubError>) -> Result<T, HubError> {
        if r.is_err() {
            self.inner.transport.counters.error();
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::auth::Token;
    use crate::hub::config::parse_endpoint;

    #[test]
    fn client_is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<HubClient>();
    }

    #[test]
    fn debug_hides_the_token() {
        let c = HubClient::new(HubConfig::new(
            parse_endpoint("http://127.0.0.1:1/").unwrap(),
            Token::new("hf_secret"),
        ))
        .unwrap();
        let text = format!("{c:?}");
        assert!(!text.contains("hf_secret"), "{text}");
        assert_eq!(c.endpoint().as_str(), "http://127.0.0.1:1/");
        assert_eq!(
            c.url("/api/x").unwrap().as_str(),
            "http://127.0.0.1:1/api/x"
        );
    }

    #[tokio::test]
    async fn anonymous_whoami_needs_no_request() {
        let c = HubClient::new(HubConfig::new(
            parse_endpoint("http://127.0.0.1:1").unwrap(),
            None,
        ))
        .unwrap();
        assert!(matches!(
            c.whoami().await,
            Err(HubError::AuthRequired { .. })
        ));
        assert_eq!(c.stats().requests, 0);
        assert_eq!(c.stats().errors, 1);
    }
}
