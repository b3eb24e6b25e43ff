//! Read-only metadata: repo info, tree listings with cursor pagination, paths-info, refs and
//! commit history (hub-api.md §4.1–4.5).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::cursor::Cursor;
use super::json::{commit_info, repo_summary, sibling, tree_entry};
use super::{blocking, read_body, resolve_rev, Reply};
use crate::git::Oid;
use crate::server::ctx::Ctx;
use crate::server::error::ApiError;
use crate::server::App;
use crate::store::listing::{last_commits, lookup, Entry};
use crate::store::repo::Repo;
use hub_wire::types::{GitRef, Refs};

/// Page size when listing with `expand=true` (the Hub's limit; lastCommit is costly).
const EXPAND_PAGE: usize = 50;
/// Default page size of commit history.
const COMMITS_PAGE: usize = 100;

pub fn with_link(mut resp: Response, link: Option<String>) -> Response {
    if let Some(l) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(header::LINK, l);
    }
    resp
}

pub fn page_limit(ctx: &Ctx, max: usize) -> usize {
    ctx.q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| l > 0)
        .map_or(max, |l| l.min(max))
}

pub async fn repo_info(app: &Arc<App>, ctx: &Ctx, repo: Arc<Repo>, rev: Option<String>) -> Reply {
    let rev = rev.unwrap_or_else(|| "main".into());
    let (meta, commit) = {
        let st = repo.read();
        (st.meta.clone(), resolve_rev(&st, &rev)?.commit)
    };
    let blobs = ctx.flag("blobs");
    let expand: Vec<String> = ctx
        .q_all("expand")
        .into_iter()
        .chain(ctx.q_all("expand[]"))
        .map(str::to_string)
        .collect();
    let mut m = repo_summary(&meta, Some(&commit));
    m.insert("sha".into(), json!(commit.id.hex()));
    // Every repo of a Xet-era Hub is Xet-enabled (new repos are, on the Hub).
    m.insert("xetEnabled".into(), json!(app.xet.is_some()));
    m.insert("spaces".into(), json!([]));
    // Siblings list every file: skip the work when `expand=` does not ask for them.
    if expand.is_empty() || expand.iter().any(|e| e == "siblings" || e == "usedStorage") {
        let app2 = app.clone();
        let tree = commit.tree;
        let files = blocking(move || {
            Ok(app2
                .store
                .listings
                .list(&app2.store.objects, &tree, "", true)?)
        })
        .await?;
        let siblings: Vec<_> = files
            .iter()
            .filter(|e| !e.is_dir())
            .map(|e| sibling(e, blobs))
            .collect();
        if blobs {
            let used: u64 = siblings.iter().filter_map(|s| s.size).sum();
            m.insert("usedStorage".into(), json!(used));
        }
        m.insert("siblings".into(), json!(siblings));
    }
    if !expand.is_empty() {
        // `expand=` returns only the listed fields (plus the ids).
        m.retain(|k, _| k == "_id" || k == "id" || expand.iter().any(|e| e == k));
    }
    Ok(axum::Json(Value::Object(m)).into_response())
}

pub async fn tree(app: &Arc<App>, ctx: &Ctx, repo: Arc<Repo>, rev: String, path: String) -> Reply {
    let head = resolve_rev(&repo.read(), &rev)?.commit;
    let recursive = ctx.flag("recursive");
    let expand = ctx.flag("expand");
    let max = if expand {
        EXPAND_PAGE.min(app.cfg.page_size)
    } else {
        app.cfg.page_size
    };
    let limit = page_limit(ctx, max);
    let cursor = match ctx.q("cursor") {
        Some(c) => Some(Cursor::decode(c)?),
        None => None,
    };
    let app2 = app.clone();
    let path2 = path.clone();
    let (dir, page, total, offset) = blocking(move || {
        let store = &app2.store;
        let (dir, offset) = match cursor {
            Some(c) => {
                let oid = c
                    .tree_oid
                    .as_deref()
                    .and_then(Oid::from_hex)
                    .ok_or_else(|| ApiError::bad_request("Invalid cursor"))?;
                store
                    .objects
                    .get_tree(&oid)
                    .map_err(|_| ApiError::bad_request("Invalid cursor"))?;
                (oid, c.offset)
            }
            None => match lookup(&store.objects, &head.tree, &path2)? {
                Some(e) if e.is_dir() => (e.oid, 0),
                _ => {
                    return Err(ApiError::entry_not_found(format!(
                        "{path2} does not exist on \"{rev}\""
                    )));
                }
            },
        };
        let all = store
            .listings
            .list(&store.objects, &dir, &path2, recursive)?;
        let end = (offset + limit).min(all.len());
        let page: Vec<Entry> = all
            .get(offset..end)
            .map(<[Entry]>::to_vec)
            .unwrap_or_default();
        let entries: Vec<_> = if expand {
            let refs: Vec<&Entry> = page.iter().collect();
            let lasts = last_commits(&store.objects, &repo.read(), &head, &refs)?;
            page.iter()
                .zip(lasts.iter())
                .map(|(e, c)| tree_entry(e, Some(c), app2.xet.as_deref()))
                .collect()
        } else {
            page.iter()
                .map(|e| tree_entry(e, None, app2.xet.as_deref()))
                .collect()
        };
        Ok((dir, entries, all.len(), end))
    })
    .await?;
    let link = (offset < total).then(|| {
        ctx.next_link(
            "cursor",
            &Cursor {
                tree_oid: Some(dir.hex()),
                offset,
            }
            .encode(),
        )
    });
    Ok(with_link(axum::Json(page).into_response(), link))
}

#[derive(Deserialize)]
struct PathsJson {
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    expand: Option<Value>,
}

pub async fn paths_info(
    app: &Arc<App>,
    ctx: &Ctx,
    repo: Arc<Repo>,
    rev: String,
    body: Body,
) -> Reply {
    let head = resolve_rev(&repo.read(), &rev)?.commit;
    let bytes = read_body(body, 16 << 20).await?;
    let is_json = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let (paths, expand) = if is_json {
        let p: PathsJson = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
        let expand = p
            .expand
            .is_some_and(|v| v == json!(true) || v == json!("true"));
        (p.paths, expand)
    } else {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        let expand = pairs
            .iter()
            .any(|(k, v)| k == "expand" && matches!(v.to_ascii_lowercase().as_str(), "true" | "1"));
        let paths = pairs
            .into_iter()
            .filter(|(k, _)| k == "paths" || k == "paths[]")
            .map(|(_, v)| v)
            .collect();
        (paths, expand)
    };
    if paths.len() > 1000 {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too many parameters",
        ));
    }
    let app2 = app.clone();
    let entries = blocking(move || {
        let store = &app2.store;
        let mut found = Vec::new();
        for p in &paths {
            let p = p.trim_matches('/');
            if let Some(e) = lookup(&store.objects, &head.tree, p)? {
                found.push(e);
            }
        }
        let lasts = if expand {
            let refs: Vec<&Entry> = found.iter().collect();
            Some(last_commits(&store.objects, &repo.read(), &head, &refs)?)
        } else {
            None
        };
        Ok(found
            .iter()
            .enumerate()
            .map(|(i, e)| tree_entry(e, lasts.as_ref().map(|l| &*l[i]), app2.xet.as_deref()))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(axum::Json(entries).into_response())
}

pub fn refs(ctx: &Ctx, repo: &Repo) -> Reply {
    let st = repo.read();
    let m = &st.meta;
    let r = |name: String, reference: String, target: &str| GitRef {
        name,
        reference,
        target_commit: target.to_string(),
    };
    // `main` first, then the rest by name, like the Hub's listing.
    let mut branches: Vec<GitRef> = m
        .branches
        .iter()
        .map(|(b, t)| r(b.clone(), format!("refs/heads/{b}"), t))
        .collect();
    branches.sort_by_key(|b| (b.name != "main", b.name.clone()));
    let out = Refs {
        branches,
        tags: m
            .tags
            .iter()
            .map(|(n, t)| r(n.clone(), format!("refs/tags/{n}"), &t.target))
            .collect(),
        converts: m
            .converts
            .iter()
            .map(|(n, t)| r(n.clone(), format!("refs/convert/{n}"), t))
            .collect(),
        pull_requests: ctx.flag("include_prs").then(|| {
            m.prs
                .iter()
                .map(|(n, p)| r(n.to_string(), format!("refs/pr/{n}"), &p.target))
                .collect()
        }),
    };
    Ok(axum::Json(out).into_response())
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn commits(app: &App, ctx: &Ctx, repo: &Repo, rev: &str) -> Reply {
    let st = repo.read();
    let head = resolve_rev(&st, rev)?.commit;
    // An explicit `limit` may go up to the page size; the default is smaller, like the Hub's.
    let limit = match ctx.q("limit") {
        Some(_) => page_limit(ctx, app.cfg.page_size),
        None => COMMITS_PAGE.min(app.cfg.page_size),
    };
    let page: usize = ctx.q("p").and_then(|p| p.parse().ok()).unwrap_or(0);
    let formatted =
        ctx.q_all("expand[]").contains(&"formatted") || ctx.q_all("expand").contains(&"formatted");
    let skip = page.saturating_mul(limit);
    let mut items = Vec::new();
    let mut cur = Some(head.clone());
    let mut i = 0usize;
    while let Some(c) = cur {
        if i >= skip + limit {
            break;
        }
        if i >= skip {
            let mut v = serde_json::to_value(commit_info(&c)).unwrap_or_default();
            if formatted {
                v["formatted"] =
                    json!({"title": html_escape(&c.title), "message": html_escape(&c.description)});
            }
            items.push(v);
        }
        i += 1;
        cur = c.parent.and_then(|p| st.commit(&p));
    }
    let more = (skip + items.len()) < head.depth as usize;
    let mut resp = axum::Json(items).into_response();
    resp.headers_mut()
        .insert("x-total-count", HeaderValue::from(head.depth));
    let link = more.then(|| ctx.next_link("p", &(page + 1).to_string()));
    Ok(with_link(resp, link))
}
