//! Account-level endpoints: `whoami-v2` (hub-api.md §2.4), `validate-yaml` (§4.7) and the Xet
//! token routes (§8) that hand out CAS tokens for the emulator's CAS (`api::cas`).

use axum::body::Body;
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{read_body, resolve_rev, Reply};
use crate::auth::Caller;
use crate::server::cas_token::{self, CasClaims};
use crate::server::ctx::Ctx;
use crate::server::error::ApiError;
use crate::server::App;
use crate::store::repo::Repo;
use crate::time::expiry_secs;

/// A stable 24-hex id derived from a name (the Hub's ids are Mongo ObjectIds).
pub fn object_id(kind: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{kind}:{}", name.to_ascii_lowercase()));
    hex::encode(&digest[..12])
}

pub fn whoami(app: &App, ctx: &Ctx) -> Reply {
    let Caller::User(user) = &ctx.caller else {
        return Err(ApiError::anonymous());
    };
    let orgs: Vec<_> = app
        .auth
        .orgs_of(&user.name)
        .into_iter()
        .map(|o| {
            json!({
                "type": "org", "id": object_id("org", &o), "name": o, "fullname": o,
                "email": null, "canPay": false, "periodEnd": null, "isEnterprise": false,
                "avatarUrl": super::json::avatar(&o), "roleInOrg": "write",
            })
        })
        .collect();
    Ok(axum::Json(json!({
        "type": "user",
        "id": object_id("user", &user.name),
        "name": user.name,
        "fullname": user.name,
        "email": format!("{}@example.com", user.name),
        "emailVerified": true,
        "isPro": false,
        "canPay": false,
        "billingMode": "prepaid",
        "periodEnd": null,
        "avatarUrl": super::json::avatar(&user.name),
        "orgs": orgs,
        "auth": {
            "type": "access_token",
            "accessToken": {
                "displayName": user.token_name,
                "role": user.role.as_str(),
                "createdAt": "2026-01-01T00:00:00.000Z",
            }
        }
    }))
    .into_response())
}

/// huggingface_hub validates README.md front matter before committing; accept everything.
pub async fn validate_yaml(ctx: &Ctx, body: Body) -> Reply {
    super::expect_method(ctx, &[axum::http::Method::POST])?;
    read_body(body, 16 << 20).await?;
    Ok(axum::Json(json!({})).into_response())
}

/// `GET /api/{type}s/{repo}/xet-read-token/{rev}` and `…/xet-write-token/{rev}[?create_pr=1]`:
/// a CAS token scoped to the repo, revision and access, answered twice over as the Hub does:
/// `X-Xet-*` headers (what huggingface_hub reads on downloads) and a JSON body (what hf_xet's
/// refresher and the upload path parse). 404 on a `--no-xet` Hub.
pub fn xet_token(app: &App, ctx: &Ctx, repo: &Repo, write: bool, rev: &str) -> Reply {
    if app.xet.is_none() {
        return Err(ApiError::not_found("Not Found"));
    }
    let id = {
        let st = repo.read();
        if write {
            if ctx.flag("create_pr") {
                app.auth.check_pr(&st.meta, &ctx.caller)?;
            } else {
                app.auth.check_write(&st.meta, &ctx.caller)?;
            }
        } else {
            app.auth.check_content(&st.meta, &ctx.caller)?;
        }
        // huggingface_hub sends the literal revision `None` when a PR ref is not known yet.
        if rev != "None" {
            resolve_rev(&st, rev)?;
        }
        st.meta.id.clone()
    };
    let claims = CasClaims {
        write,
        repo: format!("{}/{id}", repo.repo_type.plural()),
        rev: (rev != "None").then(|| rev.to_string()),
        exp: expiry_secs(app.cfg.xet_token_ttl),
    };
    Ok(xet_token_answer(app, ctx, &claims))
}

/// A CAS token for `claims`, answered in both forms clients read: the `X-Xet-*` headers
/// (huggingface_hub's download path) and the JSON body (hf_xet's refresher and uploads).
pub fn xet_token_answer(app: &App, ctx: &Ctx, claims: &CasClaims) -> axum::response::Response {
    let exp = claims.exp;
    let token = cas_token::issue(&app.signer, claims);
    let cas_url = super::cas::cas_url(app, &ctx.hostname);
    let mut resp = axum::Json(json!({
        "casUrl": cas_url,
        "accessToken": token,
        "exp": exp,
    }))
    .into_response();
    let h = resp.headers_mut();
    for (k, v) in [
        ("x-xet-cas-url", cas_url.as_str()),
        ("x-xet-access-token", token.as_str()),
        ("x-xet-token-expiration", &exp.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    }
    resp
}
