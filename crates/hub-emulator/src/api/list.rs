//! Repo listings: `GET /api/models|datasets|spaces` with `author`, `search`, `sort`, `full`
//! and `limit`, paginated with `Link: rel="next"` (hub-api.md §4.6).

use axum::http::Method;
use axum::response::IntoResponse;
use serde_json::{json, Value};

use super::cursor::Cursor;
use super::json::{repo_summary, sibling};
use super::read::{page_limit, with_link};
use super::{expect_method, Reply};
use crate::server::ctx::Ctx;
use crate::server::App;
use hub_wire::repo::RepoType;

pub fn list_repos(app: &App, ctx: &Ctx, t: RepoType) -> Reply {
    expect_method(ctx, &[Method::GET, Method::HEAD])?;
    let author = ctx.q("author").map(str::to_ascii_lowercase);
    let search = ctx.q("search").map(str::to_ascii_lowercase);
    let full = ctx.flag("full");
    let mut rows: Vec<(String, u64, u64, serde_json::Map<String, Value>)> = Vec::new();
    for repo in app.store.repos.list(t) {
        let st = repo.read();
        let m = &st.meta;
        if !app.auth.can_read(m, &ctx.caller) {
            continue;
        }
        let id = m.id.to_ascii_lowercase();
        if author
            .as_deref()
            .is_some_and(|a| m.namespace().map(str::to_ascii_lowercase).as_deref() != Some(a))
        {
            continue;
        }
        if search.as_deref().is_some_and(|s| !id.contains(s)) {
            continue;
        }
        let head = st.resolve("main").map(|r| r.commit);
        let mut item = repo_summary(m, head.as_deref());
        if full {
            if let Some(h) = &head {
                item.insert("sha".into(), json!(h.id.hex()));
                let files = app
                    .store
                    .listings
                    .list(&app.store.objects, &h.tree, "", true)?;
                let sib: Vec<_> = files
                    .iter()
                    .filter(|e| !e.is_dir())
                    .map(|e| sibling(e, false))
                    .collect();
                item.insert("siblings".into(), json!(sib));
            }
        }
        rows.push((id, m.created_ms, head.map_or(0, |h| h.time), item));
    }
    let desc = ctx.q("direction") != Some("1");
    match ctx.q("sort") {
        Some("lastModified") => rows.sort_by_key(|r| r.2),
        Some("createdAt") => rows.sort_by_key(|r| r.1),
        _ => rows.sort_by(|a, b| a.0.cmp(&b.0)),
    }
    if matches!(ctx.q("sort"), Some("lastModified" | "createdAt")) && desc {
        rows.reverse();
    }
    let limit = page_limit(ctx, app.cfg.page_size);
    let offset = match ctx.q("cursor") {
        Some(c) => Cursor::decode(c)?.offset,
        None => 0,
    };
    let end = (offset + limit).min(rows.len());
    let page: Vec<Value> = rows
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .map(|r| Value::Object(r.3.clone()))
        .collect();
    let link = (end < rows.len()).then(|| {
        ctx.next_link(
            "cursor",
            &Cursor {
                tree_oid: None,
                offset: end,
            }
            .encode(),
        )
    });
    Ok(with_link(axum::Json(page).into_response(), link))
}
