//! Repo and ref management (hub-api.md §6): create/delete repos, settings, branches, tags and
//! pull requests.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::Method;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{json, Value};

use super::account::object_id;
use super::{expect_method, json_body, resolve_rev, Reply};
use crate::auth::Caller;
use crate::config::Role;
use crate::git::Oid;
use crate::server::ctx::Ctx;
use crate::server::error::{ApiError, ApiResult};
use crate::server::App;
use crate::store::commits::CommitRec;
use crate::store::repo::{PrMeta, Repo, RepoMeta, TagMeta};
use crate::store::tree::Tree;
use crate::time::{iso_ms, now_ms};
use hub_wire::repo::{validate_id_part, RepoType};

#[derive(Deserialize, Default)]
struct RepoBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default, rename = "type")]
    repo_type: Option<String>,
    #[serde(default)]
    private: Option<bool>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    sdk: Option<String>,
}

fn body_type(b: &RepoBody) -> ApiResult<RepoType> {
    match b.repo_type.as_deref() {
        None => Ok(RepoType::Model),
        Some(t) => RepoType::parse(t)
            .ok_or_else(|| ApiError::bad_request(format!("Invalid repo type {t:?}"))),
    }
}

/// A writing user, or the Hub's errors for anonymous (401) and read tokens (403).
fn writer(ctx: &Ctx) -> ApiResult<&crate::auth::User> {
    match &ctx.caller {
        Caller::Anonymous => Err(ApiError::anonymous()),
        Caller::User(u) if u.role != Role::Write => Err(ApiError::forbidden(
            "You have read access but not the required permissions for this operation.",
        )),
        Caller::User(u) => Ok(u),
    }
}

/// Creates a repo owned by `creator` with its initial commit; returns the canonical id.
/// A conflict answer carries the existing repo's absolute URL (`exist_ok` clients use it).
pub fn create(
    app: &App,
    origin: &str,
    t: RepoType,
    id: &str,
    creator: &str,
    private: bool,
    sdk: Option<String>,
) -> ApiResult<String> {
    let url = match app.store.repos.get(t, id) {
        Some(r) => format!("{origin}/{}{}", t.url_prefix(), r.read().meta.id),
        None => format!("{origin}/{}{id}", t.url_prefix()),
    };
    if app.store.repos.exists(t, id) {
        return Err(
            ApiError::conflict(format!("You already created this {t} repo"))
                .with_field("url", json!(url)),
        );
    }
    let initial = app.store.initial_commit(t, creator)?;
    let meta = RepoMeta {
        repo_type: t,
        id: id.to_string(),
        mongo_id: object_id(&format!("{t}-{}", now_ms()), id),
        private,
        gated: json!(false),
        created_ms: now_ms(),
        creator: creator.to_string(),
        sdk,
        branches: BTreeMap::from([("main".to_string(), initial.id.hex())]),
        tags: BTreeMap::new(),
        prs: BTreeMap::new(),
        converts: BTreeMap::new(),
        next_num: 1,
    };
    match app.store.repos.create(meta, initial)? {
        Some(_) => Ok(id.to_string()),
        None => Err(
            ApiError::conflict(format!("You already created this {t} repo"))
                .with_field("url", json!(url)),
        ),
    }
}

pub async fn create_repo(app: &App, ctx: &Ctx, body: Body) -> Reply {
    expect_method(ctx, &[Method::POST])?;
    let b: RepoBody = json_body(body).await?;
    let user = writer(ctx)?;
    let t = body_type(&b)?;
    let ns = match &b.organization {
        Some(org) if !org.eq_ignore_ascii_case(&user.name) => {
            if !app.auth.in_namespace(&user.name, org) {
                return Err(ApiError::forbidden(format!(
                    "You don't have the rights to create a {t} under the namespace \"{org}\""
                )));
            }
            app.auth.org_name(org).unwrap_or(org).to_string()
        }
        _ => user.name.clone(),
    };
    validate_id_part(&b.name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if t == RepoType::Space && b.sdk.is_none() {
        return Err(ApiError::bad_request(
            "Missing sdk: spaces need one of gradio, docker, static",
        ));
    }
    let private = b.private.unwrap_or(false) || b.visibility.as_deref() == Some("private");
    let id = create(
        app,
        &ctx.origin,
        t,
        &format!("{ns}/{}", b.name),
        &user.name,
        private,
        b.sdk,
    )?;
    let (mongo, canonical) = {
        let repo = app
            .store
            .repos
            .get(t, &id)
            .ok_or_else(|| ApiError::not_found("repo vanished"))?;
        let st = repo.read();
        (st.meta.mongo_id.clone(), st.meta.id.clone())
    };
    Ok(axum::Json(json!({
        "url": format!("{}/{}{canonical}", ctx.origin, t.url_prefix()),
        "name": canonical,
        "id": mongo,
    }))
    .into_response())
}

pub async fn delete_repo(app: &App, ctx: &Ctx, body: Body) -> Reply {
    expect_method(ctx, &[Method::DELETE])?;
    let b: RepoBody = json_body(body).await?;
    let t = body_type(&b)?;
    let ns = match (&b.organization, ctx.caller.user()) {
        (Some(o), _) => o.clone(),
        (None, Some(u)) => u.name.clone(),
        (None, None) => return Err(ApiError::anonymous()),
    };
    let id = format!("{ns}/{}", b.name);
    let repo = app
        .store
        .repos
        .get(t, &id)
        .ok_or_else(|| ApiError::repo_not_found(&ctx.caller))?;
    let canonical = {
        let st = repo.read();
        app.auth.check_write(&st.meta, &ctx.caller)?;
        st.meta.id.clone()
    };
    let _writer = repo
        .writer()
        .await
        .ok_or_else(|| ApiError::repo_not_found(&ctx.caller))?;
    app.store.repos.delete(t, &canonical)?;
    Ok("OK".into_response())
}

#[derive(Deserialize)]
struct SettingsBody {
    #[serde(default)]
    private: Option<bool>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    gated: Option<Value>,
}

pub async fn settings(app: &App, ctx: &Ctx, repo: &Repo, body: Body) -> Reply {
    app.auth.check_write(&repo.read().meta, &ctx.caller)?;
    let b: SettingsBody = json_body(body).await?;
    if let Some(g) = &b.gated {
        if !(g == &json!(false) || g == &json!("auto") || g == &json!("manual")) {
            return Err(ApiError::bad_request(
                "gated must be false, \"auto\" or \"manual\"",
            ));
        }
    }
    let _writer = repo
        .writer()
        .await
        .ok_or_else(|| ApiError::repo_not_found(&ctx.caller))?;
    repo.update(|m| -> ApiResult<()> {
        if let Some(p) = b.private {
            m.private = p;
        }
        if let Some(v) = &b.visibility {
            m.private = v == "private";
        }
        if let Some(g) = b.gated {
            m.gated = g;
        }
        Ok(())
    })?;
    Ok(axum::Json(json!({})).into_response())
}

/// Git's ref-name rules, plus the Hub's refusal of `refs/…` names for branches and tags.
fn valid_ref_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with("refs/")
        && !name.starts_with('-')
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.ends_with(".lock")
        && !name.ends_with('.')
        && name != "HEAD"
        && name != "@"
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && !name.split('/').any(|s| s.starts_with('.'))
        && !name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
}

#[derive(Deserialize, Default)]
struct BranchBody {
    #[serde(default, rename = "startingPoint")]
    starting_point: Option<String>,
    #[serde(default, rename = "emptyBranch")]
    empty_branch: bool,
    #[serde(default)]
    overwrite: bool,
}

pub async fn branch(app: &App, ctx: &Ctx, repo: &Repo, name: &str, body: Body) -> Reply {
    expect_method(ctx, &[Method::POST, Method::DELETE])?;
    app.auth.check_write(&repo.read().meta, &ctx.caller)?;
    let delete = ctx.method == Method::DELETE;
    let b: BranchBody = if delete {
        BranchBody::default()
    } else {
        json_body(body).await?
    };
    let _writer = repo
        .writer()
        .await
        .ok_or_else(|| ApiError::repo_not_found(&ctx.caller))?;
    if delete {
        if name == "main" {
            return Err(ApiError::forbidden("Cannot delete refs/heads/main"));
        }
        repo.update(|m| {
            m.branches
                .remove(name)
                .map(|_| ())
                .ok_or_else(|| ApiError::revision_not_found(name))
        })?;
        return Ok(axum::Json(json!({})).into_response());
    }
    if !valid_ref_name(name) {
        return Err(ApiError::bad_request("Invalid reference for a branch"));
    }
    let target = if b.empty_branch {
        let author = ctx
            .caller
            .user()
            .map(|u| u.name.clone())
            .unwrap_or_default();
        let tree = app.store.objects.put_tree(Tree::default())?;
        let c = CommitRec::new(tree, None, &author, now_ms() / 1000, "initial commit", "");
        repo.add_commit(c)?.id
    } else {
        let st = repo.read();
        resolve_rev(&st, b.starting_point.as_deref().unwrap_or("main"))?
            .commit
            .id
    };
    repo.update(|m| -> ApiResult<()> {
        if m.branches.contains_key(name) && !b.overwrite {
            return Err(ApiError::conflict(format!(
                "Reference refs/heads/{name} already exists"
            )));
        }
        m.branches.insert(name.to_string(), target.hex());
        Ok(())
    })?;
    Ok(axum::Json(json!({})).into_response())
}

#[derive(Deserialize)]
struct TagBody {
    tag: String,
    #[serde(default)]
    message: Option<String>,
}

/// `POST …/tag/{revision}` creates `body.tag` at the revision; `DELETE …/tag/{tag}` removes it.
pub async fn tag(app: &App, ctx: &Ctx, repo: &Repo, name: &str, body: Body) -> Reply {
    expect_method(ctx, &[Method::POST, Method::DELETE])?;
    app.auth.check_write(&repo.read().meta, &ctx.caller)?;
    let _writer = repo
        .writer()
        .await
        .ok_or_else(|| ApiError::repo_not_found(&ctx.caller))?;
    if ctx.method == Method::DELETE {
        repo.update(|m| {
            m.tags
                .remove(name)
                .map(|_| ())
                .ok_or_else(|| ApiError::revision_not_found(name))
        })?;
        return Ok(axum::Json(json!({})).into_response());
    }
    let b: TagBody = json_body(body).await?;
    if !valid_ref_name(&b.tag) {
        return Err(ApiError::bad_request(format!(
            "Invalid tag name {:?}",
            b.tag
        )));
    }
    let target: Oid = resolve_rev(&repo.read(), name)?.commit.id;
    repo.update(|m| -> ApiResult<()> {
        if m.tags.contains_key(&b.tag) {
            return Err(ApiError::conflict(format!("Tag {} already exists", b.tag)));
        }
        m.tags.insert(
            b.tag.clone(),
            TagMeta {
                target: target.hex(),
                message: b.message.clone().unwrap_or_default(),
            },
        );
        Ok(())
    })?;
    Ok(axum::Json(json!({})).into_response())
}

#[derive(Deserialize)]
struct DiscussionBody {
    #[serde(default)]
    title: String,
    #[serde(default, rename = "pullRequest")]
    pull_request: bool,
}

/// `POST …/discussions`: opens a pull request (`refs/pr/N` at the head of `main`); plain
/// discussions only take a number.
pub async fn open_pr(app: &App, ctx: &Ctx, repo: &Repo, body: Body) -> Reply {
    app.auth.check_pr(&repo.read().meta, &ctx.caller)?;
    let b: DiscussionBody = json_body(body).await?;
    let author = ctx
        .caller
        .user()
        .map(|u| u.name.clone())
        .unwrap_or_default();
    let _writer = repo
        .writer()
        .await
        .ok_or_else(|| ApiError::repo_not_found(&ctx.caller))?;
    let head = resolve_rev(&repo.read(), "main")?.commit.id.hex();
    let num = repo.update(|m| -> ApiResult<u64> {
        let n = m.next_num;
        m.next_num += 1;
        if b.pull_request {
            m.prs.insert(
                n,
                PrMeta {
                    target: head.clone(),
                    base: "main".into(),
                    title: b.title.clone(),
                    author: author.clone(),
                    created_ms: now_ms(),
                },
            );
        }
        Ok(n)
    })?;
    Ok(axum::Json(json!({
        "num": num,
        "pullRequest": b.pull_request,
        "url": format!("{}/discussions/{num}", super::repo_url(ctx, repo)),
    }))
    .into_response())
}

pub fn pr_details(repo: &Repo, num: u64) -> Reply {
    let st = repo.read();
    let pr = st
        .meta
        .prs
        .get(&num)
        .ok_or_else(|| ApiError::not_found(format!("Discussion #{num} not found")))?;
    Ok(axum::Json(json!({
        "num": num,
        "title": pr.title,
        "author": {"name": pr.author},
        "createdAt": iso_ms(pr.created_ms),
        "status": "open",
        "repo": {"name": st.meta.id, "type": repo.repo_type.as_str()},
        "isPullRequest": true,
        "events": [],
        "changes": {"base": format!("refs/heads/{}", pr.base)},
        "filesWithConflicts": [],
    }))
    .into_response())
}
