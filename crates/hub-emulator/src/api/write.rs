//! The write path (hub-api.md §5): preupload (regular vs LFS, gitignore) and the NDJSON commit
//! endpoint. Commit bodies are parsed line by line as they arrive, on a blocking thread that
//! writes regular files straight into the object store, so a 100k-file commit needs memory only
//! for its list of operations.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{blocking, json_body, repo_url, resolve_rev, Reply};
use crate::git::{blob_oid, lfs_pointer, Sha256};
use crate::glob::{GitAttributes, GitIgnore};
use crate::server::ctx::Ctx;
use crate::server::error::{ApiError, ApiResult};
use crate::server::App;
use crate::store::commits::CommitRec;
use crate::store::listing::lookup;
use crate::store::mutate::{ApplyError, Op};
use crate::store::repo::Repo;
use crate::store::revision::RefKind;
use crate::store::tree::{FileMeta, ItemKind};
use crate::store::writer::{CommitError, NewCommit, Target};
use hub_wire::repo::validate_repo_path;
use hub_wire::types::{CommitResponse, PreuploadAnswer, PreuploadRequest, PreuploadResponse};

/// Binary regular files at least this big go to LFS (the Hub refuses them as regular).
const BINARY_LFS_THRESHOLD: u64 = 1_000_000;

/// Checks that the caller may push to `rev` (a branch, or a PR ref / new PR for any writer).
fn check_push(
    app: &App,
    ctx: &Ctx,
    repo: &Repo,
    rev: &str,
    create_pr: bool,
) -> ApiResult<(RefKind, Arc<CommitRec>)> {
    let st = repo.read();
    let r = resolve_rev(&st, rev)?;
    if create_pr || matches!(r.kind, RefKind::Pr(_)) {
        app.auth.check_pr(&st.meta, &ctx.caller)?;
    } else {
        app.auth.check_write(&st.meta, &ctx.caller)?;
    }
    Ok((r.kind, r.commit))
}

/// Text of a small regular file at `path` in the tree, if any.
fn read_text(app: &App, tree: &crate::git::Oid, path: &str) -> ApiResult<Option<String>> {
    match lookup(&app.store.objects, tree, path)? {
        Some(e) if matches!(e.kind, ItemKind::File(FileMeta { lfs: None, .. })) => Ok(Some(
            String::from_utf8_lossy(&app.store.objects.read_blob(&e.oid)?).into_owned(),
        )),
        _ => Ok(None),
    }
}

pub async fn preupload(
    app: &Arc<App>,
    ctx: &Ctx,
    repo: Arc<Repo>,
    rev: String,
    body: Body,
) -> Reply {
    let (_, commit) = check_push(app, ctx, &repo, &rev, ctx.flag("create_pr"))?;
    let req: PreuploadRequest = json_body(body).await?;
    let app2 = app.clone();
    let answer = blocking(move || {
        let attrs = match req.git_attributes {
            Some(t) => t,
            None => read_text(&app2, &commit.tree, ".gitattributes")?.unwrap_or_default(),
        };
        let ignore = match req.git_ignore {
            Some(t) => t,
            None => read_text(&app2, &commit.tree, ".gitignore")?.unwrap_or_default(),
        };
        let (attrs, ignore) = (GitAttributes::parse(&attrs), GitIgnore::parse(&ignore));
        let mut files = Vec::with_capacity(req.files.len());
        for f in req.files {
            let sample = base64::engine::general_purpose::STANDARD
                .decode(&f.sample)
                .unwrap_or_default();
            let binary = sample.contains(&0);
            let lfs = attrs.is_lfs(&f.path)
                || f.size >= app2.cfg.lfs_threshold
                || (binary && f.size >= BINARY_LFS_THRESHOLD);
            let oid = match lookup(&app2.store.objects, &commit.tree, f.path.trim_matches('/'))? {
                Some(e) => match e.kind {
                    ItemKind::File(FileMeta { lfs: Some(sha), .. }) => Some(sha.hex()),
                    ItemKind::File(_) => Some(e.oid.hex()),
                    ItemKind::Dir => None,
                },
                None => None,
            };
            files.push(PreuploadAnswer {
                should_ignore: ignore.is_ignored(&f.path),
                upload_mode: if lfs { "lfs" } else { "regular" }.into(),
                oid,
                path: f.path,
            });
        }
        Ok(PreuploadResponse {
            files,
            commit_oid: Some(commit.id.hex()),
        })
    })
    .await?;
    Ok(axum::Json(answer).into_response())
}

#[derive(Deserialize)]
struct Line {
    key: String,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize, Default)]
struct Header {
    #[serde(default)]
    summary: String,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "parentCommit")]
    parent_commit: Option<String>,
}

#[derive(Deserialize)]
struct FileLine {
    path: String,
    content: String,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize)]
struct LfsLine {
    path: String,
    oid: String,
    #[serde(default)]
    size: Option<u64>,
}

#[derive(Deserialize)]
struct PathLine {
    path: String,
}

struct Parsed {
    header: Header,
    ops: Vec<Op>,
}

fn bad_line(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Invalid commit line: {e}"))
}

fn check_path(path: &str) -> ApiResult<String> {
    let p = path
        .strip_prefix("./")
        .unwrap_or(path)
        .trim_start_matches('/');
    if p.contains('\n') || p.contains('\0') {
        return Err(ApiError::unprocessable(format!("Invalid path: {path:?}")));
    }
    validate_repo_path(p).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    Ok(p.to_string())
}

/// Turns one NDJSON line into an operation, storing regular file contents on the way.
fn parse_line(app: &App, raw: &[u8], parsed: &mut Option<Parsed>) -> ApiResult<()> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let line: Line = serde_json::from_slice(raw).map_err(bad_line)?;
    let Some(p) = parsed.as_mut() else {
        if line.key != "header" {
            return Err(ApiError::bad_request(
                "The first line must have the key `header`",
            ));
        }
        let header: Header = serde_json::from_value(line.value).map_err(bad_line)?;
        if header.summary.trim().is_empty() {
            return Err(ApiError::bad_request(
                "The commit summary must not be empty",
            ));
        }
        *parsed = Some(Parsed {
            header,
            ops: Vec::new(),
        });
        return Ok(());
    };
    let op = match line.key.as_str() {
        "file" => {
            let f: FileLine = serde_json::from_value(line.value).map_err(bad_line)?;
            let path = check_path(&f.path)?;
            let data = match f.encoding.as_deref() {
                Some("utf-8" | "utf8") => f.content.into_bytes(),
                _ => base64::engine::general_purpose::STANDARD
                    .decode(f.content.as_bytes())
                    .map_err(|e| {
                        ApiError::bad_request(format!("Invalid base64 content for {path}: {e}"))
                    })?,
            };
            let oid = app.store.objects.put_blob(&data)?;
            Op::Put {
                path,
                oid,
                meta: FileMeta {
                    size: data.len() as u64,
                    lfs: None,
                },
            }
        }
        "lfsFile" => {
            let f: LfsLine = serde_json::from_value(line.value).map_err(bad_line)?;
            let path = check_path(&f.path)?;
            let sha = Sha256::from_hex(&f.oid)
                .ok_or_else(|| ApiError::bad_request(format!("Invalid oid {:?}", f.oid)))?;
            // Known as an LFS object, or as a Xet file uploaded with this sha256 (the link
            // comes from the accepted shard's metadata_ext, as on the Hub).
            let xet_size = || {
                app.xet
                    .as_ref()
                    .and_then(|x| x.by_sha256(&sha.hex()))
                    .map(|f| f.size)
            };
            let stored = app
                .store
                .objects
                .lfs_size(&sha)
                .or_else(xet_size)
                .ok_or_else(|| {
                    ApiError::unprocessable(format!(
                        "LFS pointer pointed to a file that does not exist: {path} (oid {sha})"
                    ))
                })?;
            if f.size.is_some_and(|s| s != stored) {
                return Err(ApiError::unprocessable(format!(
                    "LFS object {sha} has size {stored}, not {}",
                    f.size.unwrap_or_default()
                )));
            }
            let oid = blob_oid(lfs_pointer(&sha, stored).as_bytes());
            Op::Put {
                path,
                oid,
                meta: FileMeta {
                    size: stored,
                    lfs: Some(sha),
                },
            }
        }
        "deletedFile" | "deletedFolder" => {
            let f: PathLine = serde_json::from_value(line.value).map_err(bad_line)?;
            let path = check_path(f.path.trim_end_matches('/'))?;
            if line.key == "deletedFile" {
                Op::DeleteFile(path)
            } else {
                Op::DeleteFolder(path)
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "Add a line with the key `lfsFile`, `file` or `deletedFile`",
            ))
        }
    };
    p.ops.push(op);
    Ok(())
}

/// Consumes body chunks from `rx` and parses complete lines as they arrive.
fn parse_stream(app: &App, mut rx: mpsc::Receiver<Bytes>) -> ApiResult<Parsed> {
    let mut buf: Vec<u8> = Vec::new();
    let mut scanned = 0;
    let mut parsed = None;
    while let Some(chunk) = rx.blocking_recv() {
        buf.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(pos) = buf[scanned..].iter().position(|&b| b == b'\n') {
            let end = scanned + pos;
            parse_line(app, &buf[start..end], &mut parsed)?;
            start = end + 1;
            scanned = start;
        }
        buf.drain(..start);
        scanned = buf.len();
    }
    parse_line(app, &buf, &mut parsed)?;
    parsed.ok_or_else(|| ApiError::bad_request("Empty commit body"))
}

fn commit_error(e: CommitError) -> ApiError {
    match e {
        CommitError::RevisionNotFound(rev) => ApiError::revision_not_found(&rev),
        CommitError::Stale => ApiError::new(StatusCode::PRECONDITION_FAILED, e.to_string()),
        CommitError::Apply(ApplyError::NotFound(m)) => ApiError::entry_not_found(m),
        CommitError::Apply(ApplyError::Conflict(m)) => ApiError::unprocessable(m),
        CommitError::Apply(ApplyError::Io(e)) | CommitError::Io(e) => e.into(),
    }
}

pub async fn commit(app: &Arc<App>, ctx: &Ctx, repo: Arc<Repo>, rev: String, body: Body) -> Reply {
    let create_pr = ctx.flag("create_pr");
    let (kind, _) = check_push(app, ctx, &repo, &rev, create_pr)?;
    if !create_pr && !kind.is_writable() {
        return Err(ApiError::bad_request(format!(
            "Invalid rev id: {rev} is not a branch"
        )));
    }
    let author = ctx
        .caller
        .user()
        .map(|u| u.name.clone())
        .unwrap_or_default();

    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let app2 = app.clone();
    let parser = tokio::task::spawn_blocking(move || parse_stream(&app2, rx));
    let mut stream = body.into_data_stream();
    let mut read_error = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                if tx.send(c).await.is_err() {
                    break; // the parser stopped on an error; it reports it
                }
            }
            Err(e) => {
                read_error = Some(ApiError::bad_request(format!(
                    "cannot read commit body: {e}"
                )));
                break;
            }
        }
    }
    drop(tx);
    let parsed = parser
        .await
        .map_err(|e| ApiError::from(std::io::Error::other(e)))??;
    if let Some(e) = read_error {
        return Err(e);
    }

    let _writer = repo
        .writer()
        .await
        .ok_or_else(|| ApiError::repo_not_found(&ctx.caller))?;
    let target = if create_pr {
        let st = repo.read();
        let head = resolve_rev(&st, &rev)?;
        let base = match &parsed.header.parent_commit {
            Some(p) => st
                .resolve(p)
                .map(|r| r.commit)
                .ok_or_else(|| ApiError::revision_not_found(p))?,
            None => head.commit,
        };
        let branch = match head.kind {
            RefKind::Branch(b) => b,
            _ => "main".into(),
        };
        Target::NewPr { base, branch }
    } else {
        match kind {
            RefKind::Branch(b) => Target::Branch(b),
            RefKind::Pr(n) => Target::Pr(n),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Invalid rev id: {rev} is not a branch"
                )))
            }
        }
    };
    let new = NewCommit {
        target,
        ops: parsed.ops,
        author,
        title: parsed.header.summary,
        description: parsed.header.description,
        parent: parsed.header.parent_commit,
    };
    let (app2, repo2) = (app.clone(), repo.clone());
    let landed = blocking(move || app2.store.commit(&repo2, new).map_err(commit_error)).await?;
    app.net.stats.commit();
    let base_url = repo_url(ctx, &repo);
    let resp = CommitResponse {
        success: true,
        commit_oid: landed.commit.id.hex(),
        commit_url: format!("{base_url}/commit/{}", landed.commit.id),
        hook_output: String::new(),
        pull_request_url: landed
            .pr
            .filter(|_| create_pr)
            .map(|n| format!("{base_url}/discussions/{n}")),
    };
    Ok(axum::Json(resp).into_response())
}
