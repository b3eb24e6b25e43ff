//! Paginated listings: the `Link: <…>; rel="next"` header, the tree pager and the budget
//! every listing runs under.
//!
//! The Hub paginates tree listings, commit history and repo lists with an absolute next-page
//! URL carrying an opaque cursor (hub-api.md §4.2). Clients must follow it verbatim; a relative
//! one is resolved against the page's URL rather than silently ending the listing.
//!
//! Nothing in a listing is trusted: a [`ListingBudget`] ends it with an error when a page URL
//! comes back (a loop), when it runs past its page or entry budget or its deadline
//! ([`ListingLimits`]); and every tree entry is validated like a path hubfs sends
//! ([`validate_listed_path`]) and must lie where it was asked for: invalid ones are skipped,
//! counted (`hubfs status`: `hub.invalid_entries`) and logged once per listing.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, LINK};
use url::Url;

use super::client::HubClient;
use super::config::ListingLimits;
use super::error::{ErrorContext, HubError};
use super::types::TreeEntry;
use crate::repo::validate_listed_path;

/// Options of a tree listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeOptions {
    /// List every file and directory below, not just direct children.
    pub recursive: bool,
    /// Add `lastCommit` (and security status) to entries; the Hub then pages by 50.
    pub expand: bool,
    /// Page size to ask for (server default when `None`).
    pub limit: Option<usize>,
}

/// What one listing may still cost: pages, entries, time, and the page URLs already fetched.
#[derive(Debug)]
pub(crate) struct ListingBudget {
    limits: ListingLimits,
    started: Instant,
    pages: u32,
    entries: usize,
    /// Hashes of the page URLs fetched (64-bit: a false "loop" is a 1-in-10^10 event at the
    /// page budget, and the set stays small).
    seen: HashSet<u64>,
}

impl ListingBudget {
    pub fn new(limits: ListingLimits) -> ListingBudget {
        ListingBudget {
            limits,
            started: Instant::now(),
            pages: 0,
            entries: 0,
            seen: HashSet::new(),
        }
    }

    /// Admits fetching `url` as the next page: fails on a URL seen before in this listing,
    /// past the page budget or the deadline. Returns the time left.
    pub fn admit(&mut self, url: &Url, target: &str) -> Result<Duration, HubError> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        url.as_str().hash(&mut h);
        if !self.seen.insert(h.finish()) {
            return Err(self.refuse(
                target,
                format!(
                    "pagination loops (page {} links back to a page already fetched)",
                    self.pages
                ),
            ));
        }
        if self.pages >= self.limits.max_pages {
            return Err(self.refuse(
                target,
                format!(
                    "listing exceeds its budget of {} pages",
                    self.limits.max_pages
                ),
            ));
        }
        let left = self.limits.deadline.saturating_sub(self.started.elapsed());
        if left.is_zero() {
            return Err(self.timeout(target));
        }
        self.pages += 1;
        Ok(left)
    }

    /// Counts `n` more entries; fails past the entry budget.
    pub fn add_entries(&mut self, n: usize, target: &str) -> Result<(), HubError> {
        self.entries = self.entries.saturating_add(n);
        if self.entries > self.limits.max_entries {
            return Err(self.refuse(
                target,
                format!(
                    "listing exceeds its budget of {} entries",
                    self.limits.max_entries
                ),
            ));
        }
        Ok(())
    }

    /// The error of a listing that ran out of time.
    pub fn timeout(&self, target: &str) -> HubError {
        tracing::warn!(
            target: "hubfs::hub",
            "{target}: listing did not end within {:?} ({} pages, {} entries): giving up",
            self.limits.deadline,
            self.pages,
            self.entries
        );
        HubError::Timeout {
            target: target.to_string(),
            after: self.limits.deadline,
        }
    }

    fn refuse(&self, target: &str, why: String) -> HubError {
        tracing::warn!(
            target: "hubfs::hub",
            "{target}: {why} after {} pages, {} entries, {:?}: giving up",
            self.pages,
            self.entries,
            self.started.elapsed()
        );
        HubError::protocol(target, why)
    }
}

/// Pages of a tree listing, fetched on demand.
pub struct TreePager {
    client: HubClient,
    /// The next page to fetch; an error found while building the first URL is reported by
    /// the first [`TreePager::next_page`] call.
    next: Option<Result<Url, HubError>>,
    ctx: ErrorContext,
    /// The directory listed ("" = root): every entry must lie below it.
    dir: String,
    recursive: bool,
    budget: ListingBudget,
    /// Entries skipped as invalid so far (the first one is logged).
    invalid: u64,
}

impl TreePager {
    pub(crate) fn new(
        client: HubClient,
        first: Result<Url, HubError>,
        ctx: ErrorContext,
        dir: &str,
        recursive: bool,
    ) -> TreePager {
        let limits = client.config().listing;
        TreePager {
            client,
            next: Some(first),
            ctx,
            dir: dir.to_string(),
            recursive,
            budget: ListingBudget::new(limits),
            invalid: 0,
        }
    }

    /// Replaces the client's [`ListingLimits`] for this listing (e.g. a shorter deadline
    /// for a listing a reader waits on).
    pub fn with_limits(mut self, limits: ListingLimits) -> TreePager {
        self.budget = ListingBudget::new(limits);
        self
    }

    /// Entries skipped so far because they were invalid or outside the listed directory.
    pub fn invalid_entries(&self) -> u64 {
        self.invalid
    }

    /// The next page of valid entries, or `None` after the last one. Paths in entries are
    /// relative to the repo root.
    pub async fn next_page(&mut self) -> Result<Option<Vec<TreeEntry>>, HubError> {
        let Some(next) = self.next.take() else {
            return Ok(None);
        };
        let target = self.ctx.target();
        let r = async {
            let url = next?;
            let left = self.budget.admit(&url, &target)?;
            let page = self.client.get_page(url, &self.ctx);
            let (entries, link) = match tokio::time::timeout(left, page).await {
                Ok(r) => r?,
                Err(_) => return Err(self.budget.timeout(&target)),
            };
            self.budget.add_entries(entries.len(), &target)?;
            Ok((entries, link))
        }
        .await;
        let (mut entries, link) = self.client.count(r)?;
        self.next = link.map(Ok);
        entries.retain(|e| {
            let why = match entry_problem(e, &self.dir, self.recursive) {
                None => return true,
                Some(why) => why,
            };
            self.invalid += 1;
            self.client.inner.transport.counters.invalid_entries(1);
            if self.invalid == 1 {
                tracing::warn!(
                    target: "hubfs::hub",
                    "{target}: skipping entries the Hub listed that cannot be shown ({why}); \
                     first: {:?}",
                    e.path
                );
            }
            false
        });
        Ok(Some(entries))
    }

    /// All remaining entries.
    pub async fn collect_all(mut self) -> Result<Vec<TreeEntry>, HubError> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page);
        }
        Ok(all)
    }
}

/// Why a tree entry listed for `dir` must not be shown, if it must not.
pub(crate) fn entry_problem(e: &TreeEntry, dir: &str, recursive: bool) -> Option<String> {
    if e.kind != "file" && e.kind != "directory" {
        return Some(format!("unknown entry type {:?}", e.kind));
    }
    if let Err(why) = validate_listed_path(&e.path) {
        return Some(why.0);
    }
    let below = if dir.is_empty() {
        Some(e.path.as_str())
    } else {
        e.path
            .strip_prefix(dir)
            .and_then(|rest| rest.strip_prefix('/'))
    };
    match below {
        None => Some(format!("{:?} is not inside the listed directory", e.path)),
        Some(rest) if !recursive && rest.contains('/') => Some(format!(
            "{:?} is not a direct child of the listed directory",
            e.path
        )),
        Some(_) => None,
    }
}

/// The `rel="next"` target of the `Link` headers, resolved against the page's URL.
pub(crate) fn next_link(
    headers: &HeaderMap,
    page_url: &Url,
    target: &str,
) -> Result<Option<Url>, HubError> {
    for value in headers.get_all(LINK) {
        let text = value
            .to_str()
            .map_err(|_| HubError::protocol(target, "Link header is not ASCII"))?;
        for (uri, params) in parse_link_header(text) {
            if has_rel(params, "next") {
                let url = page_url
                    .join(uri)
                    .map_err(|_| HubError::protocol(target, "invalid next-page URL in Link"))?;
                return Ok(Some(url));
            }
        }
    }
    Ok(None)
}

/// Splits `<a>; rel="next", <b>; rel="prev"` into `(uri, params)` pairs. URIs are delimited
/// by angle brackets, so commas inside them are harmless.
fn parse_link_header(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>').map(|i| open + i) else {
            break;
        };
        let uri = &rest[open + 1..close];
        let after = &rest[close + 1..];
        let params_end = after.find('<').unwrap_or(after.len());
        out.push((uri, &after[..params_end]));
        rest = &after[params_end..];
    }
    out
}

/// Whether link params contain `rel` with `wanted` (rel may list several space-separated
/// relation types).
fn has_rel(params: &str, wanted: &str) -> bool {
    params
        .split([';', ','])
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            (k.trim().eq_ignore_ascii_case("rel")).then(|| v.trim().trim_matches('"'))
        })
        .any(|v| v.split_whitespace().any(|r| r.eq_ignore_ascii_case(wanted)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn link(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(LINK, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn follows_absolute_next_links_verbatim() {
        let page = Url::parse("http://127.0.0.1:1/api/models/a/b/tree/main").unwrap();
        let h = link(&[
            r#"<http://127.0.0.1:1/api/models/a/b/tree/main?recursive=true&cursor=ZXl%3D%3D>; rel="next""#,
        ]);
        let next = next_link(&h, &page, "t").unwrap().unwrap();
        assert_eq!(
            next.as_str(),
            "http://127.0.0.1:1/api/models/a/b/tree/main?recursive=true&cursor=ZXl%3D%3D"
        );
    }

    #[test]
    fn picks_next_among_several() {
        let page = Url::parse("http://h/api/x").unwrap();
        let h = link(&[r#"<http://h/p?a=1,2>; rel="prev", <http://h/n?c=3>; rel="next""#]);
        assert_eq!(
            next_link(&h, &page, "t").unwrap().unwrap().as_str(),
            "http://h/n?c=3"
        );
        let h = link(&[
            r#"<http://h/p>; rel=prev"#,
            r#"<http://h/n2>; rel="last next""#,
        ]);
        assert_eq!(
            next_link(&h, &page, "t").unwrap().unwrap().as_str(),
            "http://h/n2"
        );
    }

    #[test]
    fn relative_links_resolve_and_absent_links_end() {
        let page = Url::parse("http://h/api/models/a/b/tree/main?x=1").unwrap();
        let h = link(&[r#"</api/models/a/b/tree/main?cursor=2>; rel="next""#]);
        assert_eq!(
            next_link(&h, &page, "t").unwrap().unwrap().as_str(),
            "http://h/api/models/a/b/tree/main?cursor=2"
        );
        assert_eq!(next_link(&HeaderMap::new(), &page, "t").unwrap(), None);
        let h = link(&[r#"<http://h/p>; rel="prev""#]);
        assert_eq!(next_link(&h, &page, "t").unwrap(), None);
    }
}
