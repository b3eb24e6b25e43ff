//! Account-level endpoints: `whoami-v2` (hub-api.md §2.4), `validate-yaml` (§4.7) and the Xet
//! token routes (§8), answered like the Hub although the emulator stores no Xet files.

use axum::body::Body;
use axum::response::IntoResponse;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{read_body, resolve_rev, Reply};
use crate::auth::Caller;
use crate::server::ctx::Ctx;
use crate::server::error::ApiError;
use crate::server::App;
use crate::store::repo::Repo;
use crate::time::{iso_ms, now_ms};

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

/// A token in the Hub's shape; no Xet headers, so Xet-aware clients fall back to plain HTTP.
pub fn xet_token(app: &App, ctx: &Ctx, repo: &Repo, write: bool, rev: &str) -> Reply {
    {
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
    }
    // No `X-Xet-*` headers for repos yet: repo files are not Xet files here.
    Ok(xet_token_answer(ctx, false))
}

/// A Xet token answer: the JSON body (what hf_xet reads) and, with `headers`, the `X-Xet-*`
/// headers too (what huggingface_hub's download path reads).
pub fn xet_token_answer(ctx: &Ctx, headers: bool) -> axum::response::Response {
    let mut rng = fastrand::Rng::new();
    let token: String = (0..32).map(|_| format!("{:02x}", rng.u8(..))).collect();
    let exp = now_ms() / 1000 + 3600;
    let cas = format!("{}/_xet", ctx.origin);
    let mut resp = axum::Json(json!({
        "casUrl": cas,
        "accessToken": token,
        "exp": exp,
        "expiresAt": iso_ms(exp * 1000),
    }))
    .into_response();
    let h = resp.headers_mut();
    if !headers {
        return resp;
    }
    for (k, v) in [
        ("x-xet-cas-url", cas),
        ("x-xet-access-token", token),
        ("x-xet-token-expiration", exp.to_string()),
    ] {
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    resp
}
