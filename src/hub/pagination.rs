//! Paginated listings: the `Link: <…>; rel="next"` header and the tree pager.
//!
//! The Hub paginates tree listings, commit history and repo lists with an absolute next-page
//! URL carrying an opaque cursor (hub-api.md §4.2). Clients must follow it verbatim; a relative
//! one is resolved against the page's URL rather than silently ending the listing.

use reqwest::header::{HeaderMap, LINK};
use url::Url;

use super::client::HubClient;
use super::error::{ErrorContext, HubError};
use super::types::TreeEntry;

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

/// Pages of a tree listing, fetched on demand.
pub struct TreePager {
    client: HubClient,
    /// The next page to fetch; an error found while building the first URL is reported by
    /// the first [`TreePager::next_page`] call.
    next: Option<Result<Url, HubError>>,
    ctx: ErrorContext,
}

impl TreePager {
    pub(crate) fn new(
        client: HubClient,
        first: Result<Url, HubError>,
        ctx: ErrorContext,
    ) -> TreePager {
        TreePager {
            client,
            next: Some(first),
            ctx,
        }
    }

    /// The next page of entries, or `None` after the last one. Paths in entries are relative
    /// to the repo root.
    pub async fn next_page(&mut self) -> Result<Option<Vec<TreeEntry>>, HubError> {
        let Some(next) = self.next.take() else {
            return Ok(None);
        };
        let r = async {
            let url = next?;
            let (entries, link) = self.client.get_page(url.clone(), &self.ctx).await?;
            if link.as_ref() == Some(&url) {
                return Err(HubError::protocol(
                    &self.ctx.target(),
                    "pagination link points to the same page",
                ));
            }
            Ok((entries, link))
        }
        .await;
        let (entries, link) = self.client.count(r)?;
        self.next = link.map(Ok);
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
