//! Storage Buckets over HTTP (xet-plan §2.4; what huggingface_hub 2.4's bucket methods and
//! `hf buckets` call): create/info/list/delete/move/settings, tree (lexical prefix, recursive,
//! Link-paginated), paths-info, NDJSON batch (add/copy/delete Xet files), the bucket Xet token
//! routes and `resolve`. Visibility follows the repo rules: a private bucket is missing (401
//! anonymous, 404 `RepoNotFound` otherwise) to anyone outside its namespace; writing needs a
//! write token of a namespace member.

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::account::object_id;
use super::read::{page_limit, with_link};
use super::{expect_method, json_body, read_body, Reply};
use crate::auth::{Caller, User};
use crate::config::Role;
use crate::server::cas_token::CasClaims;
use crate::server::ctx::Ctx;
use crate::server::error::{ApiError, ApiResult};
use crate::server::App;
use crate::store::buckets::{invalid_path, list, BucketFile, BucketMeta, Entry, XetFiles};
use crate::store::xet::parse_hash;
use crate::time::{expiry_secs, iso_ms, now_ms};
use hub_wire::repo::{validate_id_part, RepoType};

/// Most operations in one batch and paths in one paths-info call (the client sends ≤ 1000).
const MAX_OPS: usize = 1000;

/// The operations on one bucket (`/api/buckets/{ns}/{name}/…`, `/buckets/{ns}/{name}/resolve/…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketOp {
    /// `GET` info, `POST` create, `DELETE` delete.
    Root,
    Tree {
        prefix: String,
    },
    PathsInfo,
    Batch,
    Settings,
    XetToken {
        write: bool,
    },
    Resolve {
        path: String,
    },
}

impl BucketOp {
    pub fn stat_name(&self, method: &Method) -> &'static str {
        match self {
            BucketOp::Root if method == Method::POST => "bucket-create",
            BucketOp::Root if method == Method::DELETE => "bucket-delete",
            BucketOp::Root => "bucket-info",
            BucketOp::Tree { .. } => "bucket-tree",
            BucketOp::PathsInfo => "bucket-paths-info",
            BucketOp::Batch => "bucket-batch",
            BucketOp::Settings => "bucket-settings",
            BucketOp::XetToken { .. } => "bucket-xet-token",
            BucketOp::Resolve { .. } => "bucket-resolve",
        }
    }
}

fn in_ns(app: &App, caller: &Caller, ns: &str) -> bool {
    caller
        .user()
        .is_some_and(|u| app.auth.in_namespace(&u.name, ns))
}

fn can_read(app: &App, meta: &BucketMeta, caller: &Caller) -> bool {
    !meta.private || in_ns(app, caller, meta.namespace())
}

/// The bucket's metadata if the caller may see it; a missing bucket and a private one look alike.
fn readable(app: &App, ctx: &Ctx, id: &str) -> ApiResult<BucketMeta> {
    app.store
        .buckets
        .with(id, |b| b.meta.clone())
        .filter(|m| can_read(app, m, &ctx.caller))
        .ok_or_else(|| ApiError::repo_not_found(&ctx.caller))
}

/// A user with a write token, or the Hub's 401 (anonymous) / 403 (read token).
fn writer(ctx: &Ctx) -> ApiResult<&User> {
    match &ctx.caller {
        Caller::Anonymous => Err(ApiError::anonymous()),
        Caller::User(u) if u.role != Role::Write => Err(ApiError::forbidden(
            "You have read access but not the required permissions for this operation.",
        )),
        Caller::User(u) => Ok(u),
    }
}

/// Write access: visible, a write token, and a member of the bucket's namespace.
fn writable(app: &App, ctx: &Ctx, id: &str) -> ApiResult<BucketMeta> {
    let meta = readable(app, ctx, id)?;
    let user = writer(ctx)?;
    if !app.auth.in_namespace(&user.name, meta.namespace()) {
        return Err(ApiError::forbidden(format!(
            "You don't have the rights to write to bucket {}",
            meta.id
        )));
    }
    Ok(meta)
}

fn info_json(meta: &BucketMeta, files: usize, size: u64) -> Value {
    json!({
        "_id": meta.mongo_id,
        "id": meta.id,
        "author": meta.namespace(),
        "private": meta.private,
        "createdAt": iso_ms(meta.created_ms),
        "updatedAt": iso_ms(meta.updated_ms),
        "size": size,
        "totalFiles": files,
    })
}

fn file_json(path: &str, f: &BucketFile) -> Value {
    let mut v = json!({
        "type": "file",
        "path": path,
        "size": f.size,
        "xetHash": f.xet_hash,
        "mtime": iso_ms(f.mtime_ms),
        "uploadedAt": iso_ms(f.uploaded_ms),
    });
    if let Some(ct) = &f.content_type {
        v["contentType"] = json!(ct);
    }
    v
}

fn entry_json(e: &Entry) -> Value {
    match e {
        Entry::File(p, f) => file_json(p, f),
        Entry::Dir(p, t) => json!({ "type": "directory", "path": p, "uploadedAt": iso_ms(*t) }),
    }
}

/// `GET /api/buckets/{ns}`: the namespace's buckets the caller may see (`me` = the caller),
/// filtered by `search` (substring of the name, any case), sorted by id, Link-paginated.
pub fn list_buckets(app: &App, ctx: &Ctx, ns: &str) -> Reply {
    expect_method(ctx, &[Method::GET, Method::HEAD])?;
    let ns = if ns == "me" {
        ctx.caller
            .user()
            .ok_or_else(ApiError::anonymous)?
            .name
            .clone()
    } else {
        ns.to_string()
    };
    let search = ctx.q("search").map(str::to_ascii_lowercase);
    let mut rows: Vec<(String, Value)> = app
        .store
        .buckets
        .summaries()
        .into_iter()
        .filter(|(m, _, _)| m.namespace().eq_ignore_ascii_case(&ns))
        .filter(|(m, _, _)| can_read(app, m, &ctx.caller))
        .filter(|(m, _, _)| {
            search.as_deref().is_none_or(|s| {
                let name = m.id.split_once('/').map_or("", |(_, n)| n);
                name.to_ascii_lowercase().contains(s)
            })
        })
        .map(|(m, n, size)| (m.id.to_ascii_lowercase(), info_json(&m, n, size)))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let after = ctx.q("cursor").map(decode_cursor).transpose()?;
    let rows: Vec<(String, Value)> = rows
        .into_iter()
        .filter(|(k, _)| after.as_deref().is_none_or(|a| k.as_str() > a))
        .collect();
    let limit = page_limit(ctx, app.cfg.page_size);
    let link =
        (rows.len() > limit).then(|| ctx.next_link("cursor", &encode_cursor(&rows[limit - 1].0)));
    let page: Vec<Value> = rows.into_iter().take(limit).map(|r| r.1).collect();
    Ok(with_link(axum::Json(page).into_response(), link))
}

/// Keyset cursors: the last path (or id) of the previous page, so pages stay consistent while
/// the bucket changes between them.
fn encode_cursor(last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
}

fn decode_cursor(c: &str) -> ApiResult<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim_end_matches('='))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad_request("Invalid cursor"))
}

/// Everything under `/api/buckets/{ns}/{name}` and `/buckets/{ns}/{name}/resolve/…`.
pub async fn bucket_route(app: &App, ctx: &Ctx, id: &str, op: BucketOp, body: Body) -> Reply {
    app.net.stats.route(op.stat_name(&ctx.method));
    let get = [Method::GET, Method::HEAD];
    match op {
        BucketOp::Root if ctx.method == Method::POST => create(app, ctx, id, body).await,
        BucketOp::Root if ctx.method == Method::DELETE => delete(app, ctx, id),
        BucketOp::Root => {
            expect_method(ctx, &get)?;
            let meta = readable(app, ctx, id)?;
            let (n, size) = app
                .store
                .buckets
                .with(id, |b| (b.files.len(), b.total_size()))
                .unwrap_or_default();
            Ok(axum::Json(info_json(&meta, n, size)).into_response())
        }
        BucketOp::Tree { prefix } => {
            expect_method(ctx, &get)?;
            tree(app, ctx, id, &prefix)
        }
        BucketOp::PathsInfo => {
            expect_method(ctx, &[Method::POST])?;
            paths_info(app, ctx, id, body).await
        }
        BucketOp::Batch => {
            expect_method(ctx, &[Method::POST])?;
            batch(app, ctx, id, body).await
        }
        BucketOp::Settings => {
            expect_method(ctx, &[Method::PUT])?;
            settings(app, ctx, id, body).await
        }
        BucketOp::XetToken { write } => {
            expect_method(ctx, &get)?;
            let meta = if write {
                writable(app, ctx, id)?
            } else {
                readable(app, ctx, id)?
            };
            if app.xet.is_none() {
                // A legacy (`--no-xet`) Hub has no CAS to hand out tokens for.
                return Err(ApiError::not_found("Not Found"));
            }
            let claims = CasClaims {
                write,
                repo: format!("buckets/{}", meta.id),
                rev: None,
                exp: expiry_secs(app.cfg.xet_token_ttl),
            };
            Ok(super::account::xet_token_answer(app, ctx, &claims))
        }
        BucketOp::Resolve { path } => {
            expect_method(ctx, &get)?;
            resolve(app, ctx, id, &path)
        }
    }
}

#[derive(Deserialize, Default)]
struct CreateBody {
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    private: Option<bool>,
}

/// `POST /api/buckets/{ns}/{name}`: `ns` `me` is the caller; org namespaces need membership.
async fn create(app: &App, ctx: &Ctx, id: &str, body: Body) -> Reply {
    let b: CreateBody = json_body(body).await?;
    let user = writer(ctx)?;
    let (ns, name) = id.split_once('/').unwrap_or(("me", id));
    let ns = if ns == "me" || ns.eq_ignore_ascii_case(&user.name) {
        user.name.clone()
    } else if app.auth.in_namespace(&user.name, ns) {
        app.auth.org_name(ns).unwrap_or(ns).to_string()
    } else {
        return Err(ApiError::forbidden(format!(
            "You don't have the rights to create a bucket under the namespace \"{ns}\""
        )));
    };
    validate_id_part(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let private = match b.visibility.as_deref() {
        None => b.private.unwrap_or(false),
        Some("private") => true,
        Some("public") => false,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "Invalid visibility {v:?}: expected \"public\" or \"private\""
            )))
        }
    };
    let id = format!("{ns}/{name}");
    let now = now_ms();
    let meta = BucketMeta {
        id: id.clone(),
        mongo_id: object_id(&format!("bucket-{now}"), &id),
        private,
        created_ms: now,
        updated_ms: now,
        creator: user.name.clone(),
    };
    let existing = app.store.buckets.with(&id, |b| b.meta.id.clone());
    let created = existing.is_none() && app.store.buckets.create(meta)?;
    if !created {
        let canonical = app
            .store
            .buckets
            .with(&id, |b| b.meta.id.clone())
            .unwrap_or(id);
        return Err(ApiError::conflict("You already created this bucket")
            .with_field("url", json!(format!("{}/buckets/{canonical}", ctx.origin))));
    }
    Ok(axum::Json(json!({
        "url": format!("{}/buckets/{id}", ctx.origin),
        "id": id,
        "name": name,
    }))
    .into_response())
}

fn delete(app: &App, ctx: &Ctx, id: &str) -> Reply {
    let meta = writable(app, ctx, id)?;
    if !app.store.buckets.delete(&meta.id)? {
        return Err(ApiError::repo_not_found(&ctx.caller));
    }
    Ok(axum::Json(json!({})).into_response())
}

#[derive(Deserialize)]
struct SettingsBody {
    #[serde(default)]
    private: Option<bool>,
    #[serde(default)]
    visibility: Option<String>,
}

/// `PUT /api/buckets/{id}/settings` `{"private": bool}` (or `visibility`).
async fn settings(app: &App, ctx: &Ctx, id: &str, body: Body) -> Reply {
    let b: SettingsBody = json_body(body).await?;
    let meta = writable(app, ctx, id)?;
    let private = match (b.private, b.visibility.as_deref()) {
        (Some(p), _) => Some(p),
        (None, Some("private")) => Some(true),
        (None, Some("public")) => Some(false),
        (None, Some(v)) => return Err(ApiError::bad_request(format!("Invalid visibility {v:?}"))),
        (None, None) => None,
    };
    if let Some(p) = private {
        app.store.buckets.update(&meta.id, now_ms(), |b| {
            let changed = b.meta.private != p;
            b.meta.private = p;
            (changed, ())
        })?;
    }
    Ok(axum::Json(json!({ "private": private.unwrap_or(meta.private) })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MoveBody {
    from_repo: String,
    to_repo: String,
    #[serde(default, rename = "type")]
    repo_type: Option<String>,
}

/// `POST /api/repos/move` `{"fromRepo","toRepo","type":"bucket"}`: rename or transfer a
/// bucket. Moving git repos is not emulated (400).
pub async fn move_repo(app: &App, ctx: &Ctx, body: Body) -> Reply {
    expect_method(ctx, &[Method::POST])?;
    app.net.stats.route("repo-move");
    let b: MoveBody = json_body(body).await?;
    if b.repo_type.as_deref() != Some("bucket") {
        return Err(ApiError::bad_request(
            "The emulator moves buckets only (type \"bucket\")",
        ));
    }
    let meta = writable(app, ctx, &b.from_repo)?;
    let user = writer(ctx)?;
    let Some((ns, name)) = b.to_repo.split_once('/') else {
        return Err(ApiError::bad_request("toRepo must be namespace/name"));
    };
    validate_id_part(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !app.auth.in_namespace(&user.name, ns) {
        return Err(ApiError::forbidden(format!(
            "You don't have the rights to move a bucket to the namespace \"{ns}\""
        )));
    }
    let ns = if ns.eq_ignore_ascii_case(&user.name) {
        user.name.as_str()
    } else {
        app.auth.org_name(ns).unwrap_or(ns)
    };
    let to = format!("{ns}/{name}");
    match app.store.buckets.rename(&meta.id, &to, now_ms()) {
        Ok(true) => Ok(axum::Json(json!({ "id": to })).into_response()),
        Ok(false) => Err(ApiError::repo_not_found(&ctx.caller)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(ApiError::conflict(format!("A bucket {to} already exists")))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /api/buckets/{id}/tree[/{prefix}]?recursive=&limit=&cursor=`.
fn tree(app: &App, ctx: &Ctx, id: &str, prefix: &str) -> Reply {
    readable(app, ctx, id)?;
    let recursive = ctx.flag("recursive");
    let after = ctx.q("cursor").map(decode_cursor).transpose()?;
    let limit = page_limit(ctx, app.cfg.page_size);
    let entries = app
        .store
        .buckets
        .with(id, |b| list(&b.files, prefix, recursive))
        .unwrap_or_default();
    let rest: Vec<&Entry> = entries
        .iter()
        .filter(|e| after.as_deref().is_none_or(|a| e.path() > a))
        .collect();
    let link = (rest.len() > limit)
        .then(|| ctx.next_link("cursor", &encode_cursor(rest[limit - 1].path())));
    let page: Vec<Value> = rest.iter().take(limit).map(|e| entry_json(e)).collect();
    Ok(with_link(axum::Json(page).into_response(), link))
}

#[derive(Deserialize)]
struct PathsBody {
    #[serde(default)]
    paths: Vec<String>,
}

/// `POST /api/buckets/{id}/paths-info` `{"paths": [...]}`: the files among `paths` (missing
/// paths and directories are left out), in request order.
async fn paths_info(app: &App, ctx: &Ctx, id: &str, body: Body) -> Reply {
    let b: PathsBody = json_body(body).await?;
    readable(app, ctx, id)?;
    if b.paths.len() > MAX_OPS {
        return Err(ApiError::bad_request(format!(
            "At most {MAX_OPS} paths per request"
        )));
    }
    let mut seen = HashSet::new();
    let out: Vec<Value> = app
        .store
        .buckets
        .with(id, |bucket| {
            b.paths
                .iter()
                .filter(|p| seen.insert(p.as_str()))
                .filter_map(|p| bucket.files.get(p).map(|f| file_json(p, f)))
                .collect()
        })
        .unwrap_or_default();
    Ok(axum::Json(out).into_response())
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Op {
    #[serde(rename = "addFile", rename_all = "camelCase")]
    Add {
        path: String,
        xet_hash: String,
        #[serde(default)]
        mtime: Option<u64>,
        #[serde(default)]
        content_type: Option<String>,
    },
    #[serde(rename = "copyFile", rename_all = "camelCase")]
    Copy {
        path: String,
        xet_hash: String,
        #[serde(default)]
        mtime: Option<u64>,
        source_repo_type: String,
        source_repo_id: String,
        #[serde(default)]
        content_type: Option<String>,
    },
    #[serde(rename = "deleteFile")]
    Delete { path: String },
}

impl Op {
    fn path(&self) -> &str {
        match self {
            Op::Add { path, .. } | Op::Copy { path, .. } | Op::Delete { path } => path,
        }
    }
}

/// The size of Xet file `hash` if the CAS holds it (or a test declared it).
async fn xet_size(app: &App, hash: &str) -> Option<u64> {
    if let Some(size) = app.xet_fixtures.file_size(hash) {
        return Some(size);
    }
    let store = app.xet.as_ref()?;
    let h = parse_hash(hash).ok()?;
    store.file_size(&h).await.ok()
}

fn is_xet_hash(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Why the caller may not copy `hash` out of `source` (`None`: allowed). The source must exist
/// and be readable by the caller; a bucket source must hold a file with that hash.
fn copy_refused(
    app: &App,
    ctx: &Ctx,
    source_type: &str,
    source_id: &str,
    hash: &str,
) -> Option<String> {
    if source_type == "bucket" {
        let holds = app.store.buckets.with(source_id, |b| {
            (
                can_read(app, &b.meta, &ctx.caller),
                b.files.values().any(|f| f.xet_hash == hash),
            )
        });
        return match holds {
            None | Some((false, _)) => Some(format!("Source bucket {source_id} not found")),
            Some((true, false)) => Some(format!("Xet file {hash} is not in bucket {source_id}")),
            Some((true, true)) => None,
        };
    }
    let Some(t) = RepoType::parse(source_type) else {
        return Some(format!("Invalid source repo type {source_type:?}"));
    };
    match app.store.repos.get(t, source_id) {
        Some(repo)
            if app
                .auth
                .check_content(&repo.read().meta, &ctx.caller)
                .is_ok() =>
        {
            None
        }
        _ => Some(format!("Source {t} {source_id} not found")),
    }
}

/// `POST /api/buckets/{id}/batch` (NDJSON `addFile` / `copyFile` / `deleteFile`, ≤ 1000 lines).
/// Operations apply in order and independently: each refused one is listed in `failed`; the
/// answer is 200, or 422 when every operation failed. Added and copied content must already be
/// in the CAS (an `xetHash` it does not know is refused), as on the Hub.
async fn batch(app: &App, ctx: &Ctx, id: &str, body: Body) -> Reply {
    let bytes = read_body(body, 64 << 20).await?;
    let meta = writable(app, ctx, id)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("Batch body is not UTF-8"))?;
    let mut ops = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let op: Op = serde_json::from_str(line).map_err(|e| {
            ApiError::bad_request(format!("Invalid operation on line {}: {e}", i + 1))
        })?;
        ops.push(op);
    }
    if ops.len() > MAX_OPS {
        return Err(ApiError::bad_request(format!(
            "At most {MAX_OPS} operations per batch"
        )));
    }
    // Check content before taking the bucket's lock: the CAS may have to look things up.
    let mut failed: Vec<Value> = Vec::new();
    let mut checked: Vec<(Op, Option<u64>)> = Vec::new();
    for op in ops {
        let refusal = if let Some(why) = invalid_path(op.path()) {
            Err(why.to_string())
        } else {
            match &op {
                Op::Delete { .. } => Ok(None),
                Op::Add { xet_hash, .. } | Op::Copy { xet_hash, .. } if !is_xet_hash(xet_hash) => {
                    Err(format!(
                        "Invalid xetHash {xet_hash:?}: expected 64 lowercase hex digits"
                    ))
                }
                Op::Add { xet_hash, .. } => xet_size(app, xet_hash)
                    .await
                    .map(Some)
                    .ok_or_else(|| format!("Xet file {xet_hash} was not uploaded")),
                Op::Copy {
                    xet_hash,
                    source_repo_type,
                    source_repo_id,
                    ..
                } => match copy_refused(app, ctx, source_repo_type, source_repo_id, xet_hash) {
                    Some(why) => Err(why),
                    None => xet_size(app, xet_hash)
                        .await
                        .map(Some)
                        .ok_or_else(|| format!("Xet file {xet_hash} was not uploaded")),
                },
            }
        };
        match refusal {
            Ok(size) => checked.push((op, size)),
            Err(why) => failed.push(json!({ "path": op.path(), "error": why })),
        }
    }
    let total = checked.len() + failed.len();
    let now = now_ms();
    let missing = app
        .store
        .buckets
        .update(&meta.id, now, |b| {
            let mut missing = Vec::new();
            let mut changed = false;
            for (op, size) in checked {
                match op {
                    Op::Add {
                        path,
                        xet_hash,
                        mtime,
                        content_type,
                    }
                    | Op::Copy {
                        path,
                        xet_hash,
                        mtime,
                        content_type,
                        ..
                    } => {
                        b.files.insert(
                            path,
                            BucketFile {
                                xet_hash,
                                size: size.unwrap_or(0),
                                mtime_ms: mtime.unwrap_or(now),
                                uploaded_ms: now,
                                content_type,
                            },
                        );
                        changed = true;
                    }
                    Op::Delete { path } => {
                        if b.files.remove(&path).is_some() {
                            changed = true;
                        } else {
                            missing.push(path);
                        }
                    }
                }
            }
            (changed, missing)
        })?
        .ok_or_else(|| ApiError::repo_not_found(&ctx.caller))?;
    failed.extend(
        missing
            .into_iter()
            .map(|p| json!({ "path": p, "error": "File not found" })),
    );
    let status = if total > 0 && failed.len() == total {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(json!({ "failed": failed }))).into_response())
}

fn put(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// `HEAD|GET /buckets/{id}/resolve/{path}`: a 302 to the CAS bridge carrying the Xet metadata
/// (`X-Xet-Hash`, `X-Linked-Size`, `Link` with `xet-auth` = the bucket's read-token route and
/// `xet-reconstruction-info`), like a Xet file of a repo (hub-api.md §3.1 b). Without a CAS
/// bridge, HEAD answers the same headers with a 200 and GET a 503.
fn resolve(app: &App, ctx: &Ctx, id: &str, path: &str) -> Reply {
    let meta = readable(app, ctx, id)?;
    let file = app
        .store
        .buckets
        .with(id, |b| b.files.get(path).cloned())
        .flatten()
        .ok_or_else(|| ApiError::entry_not_found("Entry not found"))?;
    let cdn = app.cdn_origin(&ctx.hostname);
    let mut h = HeaderMap::new();
    let etag = format!("\"{}\"", file.xet_hash);
    put(&mut h, "etag", &etag);
    put(&mut h, "x-xet-hash", &file.xet_hash);
    put(&mut h, "x-linked-size", &file.size.to_string());
    put(&mut h, "x-linked-etag", &etag);
    put(&mut h, "accept-ranges", "bytes");
    put(&mut h, "cache-control", "no-store");
    put(
        &mut h,
        "access-control-expose-headers",
        "ETag,Link,X-Xet-Hash,X-Linked-Size,X-Linked-ETag",
    );
    if let Some(ct) = &file.content_type {
        put(&mut h, "content-type", ct);
    }
    let auth = format!("{}/api/buckets/{}/xet-read-token", ctx.origin, meta.id);
    let mut link = format!("<{auth}>; rel=\"xet-auth\"");
    if app.xet.is_some() {
        let cas = super::cas::cas_url(app, &ctx.hostname);
        link.push_str(&format!(
            ", <{cas}/v1/reconstructions/{}>; rel=\"xet-reconstruction-info\"",
            file.xet_hash
        ));
    }
    put(&mut h, "link", &link);
    let name = path.rsplit('/').next().unwrap_or(path);
    let bridge = app
        .xet
        .as_ref()
        .map(|_| super::cas::bridge_url(app, &cdn, &file.xet_hash, name, None));
    match bridge {
        Some(location) => {
            put(&mut h, "location", &location);
            let body = format!("Found. Redirecting to {location}");
            Ok((StatusCode::FOUND, h, body).into_response())
        }
        None if ctx.method == Method::HEAD => {
            let mut resp: Response = (StatusCode::OK, h).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
            Ok(resp)
        }
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "No CAS serves this Xet file's content",
        )),
    }
}
