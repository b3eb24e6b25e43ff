//! The Hub API handlers. [`dispatch`] identifies the caller, parses the route, finds the repo and
//! hands over to one module per concern: reading snapshots, resolving files, writing commits,
//! LFS transfers, repo/ref management, account endpoints, the CDN and control routes.

pub mod account;
pub mod cas;
pub mod cdn;
pub mod control;
pub mod cursor;
pub mod json;
pub mod lfs;
pub mod list;
pub mod manage;
pub mod read;
pub mod resolve;
pub mod upload;
pub mod write;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::StreamExt;

use super::net;
use super::server::ctx::Ctx;
use super::server::error::{ApiError, ApiResult};
use super::server::route::{self, RepoOp, RepoTarget, Route};
use super::server::App;
use super::store::repo::{Repo, RepoState};
use super::store::revision::Resolved;

pub type Reply = ApiResult<Response>;

pub fn hub_router(app: Arc<App>) -> Router {
    control::router()
        .fallback(dispatch)
        .layer(axum::middleware::from_fn_with_state(
            app.net.clone(),
            net::layer,
        ))
        .with_state(app)
}

fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

/// Fails unless the request method is one of `allowed`.
pub fn expect_method(ctx: &Ctx, allowed: &[Method]) -> ApiResult<()> {
    if allowed.contains(&ctx.method) {
        Ok(())
    } else {
        Err(method_not_allowed())
    }
}

/// Reads a request body of at most `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> ApiResult<Bytes> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("cannot read request body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// Parses a JSON body; an empty body reads as `{}` where `T` allows it.
pub async fn json_body<T: serde::de::DeserializeOwned>(body: Body) -> ApiResult<T> {
    let bytes = read_body(body, 64 << 20).await?;
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))
}

/// Resolves a revision or answers 404 `RevisionNotFound`.
pub fn resolve_rev(st: &RepoState, rev: &str) -> ApiResult<Resolved> {
    st.resolve(rev)
        .ok_or_else(|| ApiError::revision_not_found(rev))
}

/// Runs blocking store work (listings, commits, file assembly) off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::from(std::io::Error::other(e)))?
}

async fn dispatch(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let caller = match app.auth.identify(&parts.headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let ctx = Ctx::new(&parts, caller, &app.hub_addr.to_string());
    let route = route::parse(&ctx.path, |t, id| app.store.repos.exists(t, id));
    let stats = &app.net.stats;
    let result = match route {
        Route::Whoami => {
            stats.route("whoami");
            account::whoami(&app, &ctx)
        }
        Route::ValidateYaml => {
            stats.route("validate-yaml");
            account::validate_yaml(&ctx, body).await
        }
        Route::CreateRepo => {
            stats.route("repo-create");
            manage::create_repo(&app, &ctx, body).await
        }
        Route::DeleteRepo => {
            stats.route("repo-delete");
            manage::delete_repo(&app, &ctx, body).await
        }
        Route::ListRepos(t) => {
            stats.route("list-repos");
            list::list_repos(&app, &ctx, t)
        }
        Route::Repo(target, op) => repo_route(&app, &ctx, target, op, body).await,
        Route::NotFound => Err(ApiError::not_found("Not Found")),
    };
    let resp = result.unwrap_or_else(IntoResponse::into_response);
    tracing::debug!(method = %ctx.method, path = %ctx.path, status = resp.status().as_u16(), "request");
    resp
}

/// Finds the repo, enforces read access and canonical casing, then runs the operation.
async fn repo_route(app: &Arc<App>, ctx: &Ctx, t: RepoTarget, op: RepoOp, body: Body) -> Reply {
    let repo = app
        .store
        .repos
        .get(t.repo_type, &t.id)
        .ok_or_else(|| ApiError::repo_not_found(&ctx.caller))?;
    // Multipart completion carries a signed URL instead of a token.
    if !matches!(op, RepoOp::LfsComplete { .. }) {
        let st = repo.read();
        app.auth.check_read(&st.meta, &ctx.caller)?;
        if st.meta.id != t.id && ctx.is_read() {
            let mut loc = format!(
                "{}{}{}",
                &ctx.path[..t.span.start],
                st.meta.id,
                &ctx.path[t.span.end..]
            );
            if let Some(q) = &ctx.raw_query {
                loc = format!("{loc}?{q}");
            }
            return Err(ApiError::redirect(&loc));
        }
    }
    let stats = &app.net.stats;
    let name = op_name(&op);
    stats.route(name);
    let get = [Method::GET, Method::HEAD];
    match op {
        RepoOp::Info { rev } => {
            expect_method(ctx, &get)?;
            read::repo_info(app, ctx, repo, rev).await
        }
        RepoOp::Tree { rev, path } => {
            expect_method(ctx, &get)?;
            read::tree(app, ctx, repo, rev, path).await
        }
        RepoOp::PathsInfo { rev } => {
            expect_method(ctx, &[Method::POST])?;
            read::paths_info(app, ctx, repo, rev, body).await
        }
        RepoOp::Refs => {
            expect_method(ctx, &get)?;
            read::refs(ctx, &repo)
        }
        RepoOp::Commits { rev } => {
            expect_method(ctx, &get)?;
            read::commits(app, ctx, &repo, &rev)
        }
        RepoOp::AuthCheck { write } => {
            expect_method(ctx, &get)?;
            if write {
                app.auth.check_write(&repo.read().meta, &ctx.caller)?;
            }
            Ok(axum::Json(serde_json::json!({})).into_response())
        }
        RepoOp::XetToken { write, rev } => {
            expect_method(ctx, &get)?;
            account::xet_token(app, ctx, &repo, write, &rev)
        }
        RepoOp::Resolve { rev, path } => {
            expect_method(ctx, &get)?;
            resolve::resolve(app, ctx, &repo, &rev, &path, false)
        }
        RepoOp::Raw { rev, path } => {
            expect_method(ctx, &get)?;
            resolve::resolve(app, ctx, &repo, &rev, &path, true)
        }
        RepoOp::Preupload { rev } => {
            expect_method(ctx, &[Method::POST])?;
            write::preupload(app, ctx, repo, rev, body).await
        }
        RepoOp::Commit { rev } => {
            expect_method(ctx, &[Method::POST])?;
            write::commit(app, ctx, repo, rev, body).await
        }
        RepoOp::Branch { name } => manage::branch(app, ctx, &repo, &name, body).await,
        RepoOp::Tag { name } => manage::tag(app, ctx, &repo, &name, body).await,
        RepoOp::Settings => {
            expect_method(ctx, &[Method::PUT])?;
            manage::settings(app, ctx, &repo, body).await
        }
        RepoOp::Discussions => {
            expect_method(ctx, &[Method::POST])?;
            manage::open_pr(app, ctx, &repo, body).await
        }
        RepoOp::Discussion { num } => {
            expect_method(ctx, &get)?;
            manage::pr_details(&repo, num)
        }
        RepoOp::LfsBatch => {
            expect_method(ctx, &[Method::POST])?;
            lfs::batch(app, ctx, &repo, body).await
        }
        RepoOp::LfsVerify => {
            expect_method(ctx, &[Method::POST])?;
            lfs::verify(app, body).await
        }
        RepoOp::LfsComplete { upload } => {
            expect_method(ctx, &[Method::POST])?;
            upload::complete(app, ctx, &upload, body).await
        }
    }
}

fn op_name(op: &RepoOp) -> &'static str {
    match op {
        RepoOp::Info { .. } => "repo-info",
        RepoOp::Tree { .. } => "tree",
        RepoOp::PathsInfo { .. } => "paths-info",
        RepoOp::Refs => "refs",
        RepoOp::Commits { .. } => "commits",
        RepoOp::Preupload { .. } => "preupload",
        RepoOp::Commit { .. } => "commit",
        RepoOp::Branch { .. } => "branch",
        RepoOp::Tag { .. } => "tag",
        RepoOp::Settings => "settings",
        RepoOp::AuthCheck { .. } => "auth-check",
        RepoOp::XetToken { .. } => "xet-token",
        RepoOp::Discussions | RepoOp::Discussion { .. } => "discussions",
        RepoOp::Resolve { .. } => "resolve",
        RepoOp::Raw { .. } => "raw",
        RepoOp::LfsBatch => "lfs-batch",
        RepoOp::LfsVerify => "lfs-verify",
        RepoOp::LfsComplete { .. } => "lfs-complete",
    }
}

/// `/{prefix}{id}`: the repo's web URL on this emulator.
pub fn repo_url(ctx: &Ctx, repo: &Repo) -> String {
    let st = repo.read();
    format!(
        "{}/{}{}",
        ctx.origin,
        repo.repo_type.url_prefix(),
        st.meta.id
    )
}
