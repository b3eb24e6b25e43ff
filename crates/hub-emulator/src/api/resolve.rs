//! `HEAD|GET /{prefix}{repo}/resolve/{rev}/{path}` (hub-api.md §3, §11.1) and `/raw/`.
//!
//! Regular files are answered directly (200/206/416/304) with the metadata headers clients
//! require. LFS files get a 302 to the CDN listener with a signed, expiring URL; the metadata
//! (`X-Repo-Commit`, `X-Linked-Etag`, `X-Linked-Size`, `ETag`) is on the 302 itself because
//! clients stop at a foreign host and read it there. LFS files stored in Xet redirect to the Xet
//! bridge instead and add `X-Xet-Hash` and the `Link` routes Xet clients use (§3.1 b).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;

use super::{resolve_rev, Reply};
use crate::git::lfs_pointer;
use crate::server::content;
use crate::server::ctx::Ctx;
use crate::server::error::ApiError;
use crate::server::App;
use crate::store::listing::lookup;
use crate::store::repo::Repo;
use crate::store::tree::ItemKind;

const EXPOSE: &str = "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag,X-Xet-Hash";

fn put(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// `inline; filename*=UTF-8''…; filename="…"` as the Hub sends it.
fn disposition(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let encoded = hub_wire::repo::encode_revision(name);
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && c != '"' && !c.is_ascii_control() {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("inline; filename*=UTF-8''{encoded}; filename=\"{ascii}\";")
}

/// A plausible Content-Type from the extension (cosmetic for clients).
pub fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "json" | "txt" | "md" | "py" | "yaml" | "yml" | "csv" | "jsonl" | "gitattributes"
        | "gitignore" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

pub fn resolve(app: &App, ctx: &Ctx, repo: &Repo, rev: &str, path: &str, raw: bool) -> Reply {
    let (commit, entry) = {
        let st = repo.read();
        app.auth.check_content(&st.meta, &ctx.caller)?;
        let commit = resolve_rev(&st, rev)?.commit;
        (
            commit.clone(),
            lookup(&app.store.objects, &commit.tree, path)?,
        )
    };
    let commit_hex = commit.id.hex();
    let meta = match entry.as_ref().map(|e| e.kind) {
        Some(ItemKind::File(m)) => m,
        _ => {
            return Err(ApiError::entry_not_found("Entry not found").with_header(
                header::HeaderName::from_static("x-repo-commit"),
                &commit_hex,
            ))
        }
    };
    let Some(entry) = entry else {
        return Err(ApiError::entry_not_found("Entry not found"));
    };

    let mut h = HeaderMap::new();
    put(&mut h, "x-repo-commit", &commit_hex);
    put(&mut h, "access-control-expose-headers", EXPOSE);
    put(&mut h, "content-disposition", &disposition(path));

    match meta.lfs {
        Some(sha) if raw => {
            // `/raw/` of an LFS file is the pointer git stores.
            let text = lfs_pointer(&sha, meta.size);
            put(&mut h, "etag", &format!("\"{}\"", entry.oid));
            put(&mut h, "content-type", "text/plain; charset=utf-8");
            let body = if ctx.method == axum::http::Method::HEAD {
                String::new()
            } else {
                text.clone()
            };
            let mut resp = (StatusCode::OK, h, body).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
            Ok(resp)
        }
        Some(sha)
            if app
                .xet
                .as_ref()
                .is_some_and(|x| x.by_sha256(&sha.hex()).is_some()) =>
        {
            // Stored in Xet: hub-api.md §3.1(b). The 302 goes to the bridge on the CDN origin
            // (a foreign origin: clients drop the Hub token there); Xet clients stop here and
            // use X-Xet-Hash + the Link routes instead.
            let xet = app
                .xet
                .as_ref()
                .and_then(|x| x.by_sha256(&sha.hex()))
                .ok_or_else(|| ApiError::entry_not_found("Entry not found"))?;
            let cdn = app.cdn_origin(&ctx.hostname);
            let name = path.rsplit('/').next().unwrap_or(path);
            // The redirect serves the range it answers (only that one, with --range-bound-urls).
            let asked = super::cas::asked_range(&ctx.headers);
            let location = super::cas::bridge_url(app, &cdn, &xet.xet, name, Some(asked));
            let auth = format!(
                "{}/api/{}/{}/xet-read-token/{commit_hex}",
                ctx.origin,
                repo.repo_type.plural(),
                repo.read().meta.id
            );
            let link = format!(
                "<{auth}>; rel=\"xet-auth\", <{cdn}/cas/v1/reconstructions/{}>; rel=\"xet-reconstruction-info\"",
                xet.xet
            );
            put(&mut h, "etag", &format!("\"{}\"", xet.xet));
            put(&mut h, "x-linked-etag", &format!("\"{sha}\""));
            put(&mut h, "x-linked-size", &meta.size.to_string());
            put(&mut h, "x-xet-hash", &xet.xet);
            put(&mut h, "link", &link);
            put(&mut h, "location", &location);
            put(&mut h, "accept-ranges", "bytes");
            put(&mut h, "cache-control", "no-store");
            put(&mut h, "content-type", "text/plain; charset=utf-8");
            let body = format!("Found. Redirecting to {location}");
            Ok((StatusCode::FOUND, h, body).into_response())
        }
        Some(sha) => {
            let etag = format!("\"{sha}\"");
            let q = app.signer.sign(
                "GET",
                &format!("/lfs/{sha}"),
                &[(
                    "filename",
                    path.rsplit('/').next().unwrap_or(path).to_string(),
                )],
            );
            let location = format!("{}/lfs/{sha}?{q}", app.cdn_origin(&ctx.hostname));
            put(&mut h, "etag", &etag);
            put(&mut h, "x-linked-etag", &etag);
            put(&mut h, "x-linked-size", &meta.size.to_string());
            put(&mut h, "location", &location);
            put(&mut h, "accept-ranges", "bytes");
            put(&mut h, "cache-control", "no-store");
            put(&mut h, "content-type", "text/plain; charset=utf-8");
            let body = format!("Found. Redirecting to {location}");
            Ok((StatusCode::FOUND, h, body).into_response())
        }
        None => {
            let etag = format!("\"{}\"", entry.oid);
            put(&mut h, "etag", &etag);
            put(&mut h, "x-linked-etag", &etag);
            put(&mut h, "x-linked-size", &meta.size.to_string());
            put(&mut h, "content-type", content_type(path));
            let matches = ctx
                .headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.split(',')
                        .any(|t| t.trim().trim_start_matches("W/") == etag)
                });
            if matches {
                return Ok((StatusCode::NOT_MODIFIED, h).into_response());
            }
            let blob = app.store.objects.blob_path(&entry.oid);
            Ok(content::serve(
                &blob,
                meta.size,
                &ctx.method,
                &ctx.headers,
                h,
            )?)
        }
    }
}
