//! The git-lfs batch API (hub-api.md §5.3): tells clients where to upload each object (basic
//! PUT or multipart parts on the CDN, completion on the Hub) or where to download it, and the
//! optional verify step.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::upload::start_multipart;
use super::{json_body, Reply};
use crate::git::Sha256;
use crate::server::ctx::Ctx;
use crate::server::error::ApiError;
use crate::server::App;
use crate::store::repo::Repo;
use crate::time::{iso_ms, now_ms};
use hub_wire::types::{
    LfsAction, LfsActions, LfsBatchObject, LfsBatchRequest, LfsBatchResponse, LfsObjectError,
};

/// S3's limit on the number of parts.
const MAX_PARTS: u64 = 10_000;

fn lfs_json(resp: axum::response::Response) -> axum::response::Response {
    let mut resp = resp;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.git-lfs+json"),
    );
    resp
}

pub async fn batch(app: &App, ctx: &Ctx, repo: &Repo, body: Body) -> Reply {
    let req: LfsBatchRequest = json_body(body).await?;
    let upload = match req.operation.as_str() {
        "upload" => true,
        "download" => false,
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown operation {other:?}"
            )))
        }
    };
    let (prefix, id) = {
        let st = repo.read();
        if upload {
            // A read token cannot upload; pushing to a PR only needs read access to the repo.
            app.auth.check_pr(&st.meta, &ctx.caller)?;
        } else {
            app.auth.check_content(&st.meta, &ctx.caller)?;
        }
        (repo.repo_type.url_prefix(), st.meta.id.clone())
    };
    let multipart_ok = req.transfers.iter().any(|t| t == "multipart");
    let cdn = app.cdn_origin(&ctx.hostname);
    let expires_at = iso_ms(now_ms() + app.cfg.cdn_url_ttl * 1000);
    let mut any_multipart = false;
    let mut objects = Vec::new();
    for obj in req.objects {
        let sha = Sha256::from_hex(&obj.oid).filter(|_| obj.oid.len() == 64);
        let Some(sha) = sha else {
            objects.push(LfsBatchObject {
                oid: obj.oid,
                size: obj.size,
                actions: None,
                error: Some(LfsObjectError {
                    code: 422,
                    message: "Invalid oid".into(),
                }),
            });
            continue;
        };
        let stored = stored_size(app, &sha);
        let mut out = LfsBatchObject {
            oid: obj.oid.clone(),
            size: obj.size,
            actions: None,
            error: None,
        };
        if !upload {
            match stored {
                Some(_) => {
                    let href = match app.store.objects.lfs_size(&sha) {
                        Some(_) => {
                            let q = app.signer.sign("GET", &format!("/lfs/{sha}"), &[]);
                            format!("{cdn}/lfs/{sha}?{q}")
                        }
                        // Only in Xet (uploaded through the CAS): the bridge serves it.
                        None => {
                            let xet = app.xet.as_ref().and_then(|x| x.by_sha256(&sha.hex()));
                            let hash = xet.map(|f| f.xet).unwrap_or_default();
                            super::cas::bridge_url(app, &cdn, &hash, &sha.hex(), None)
                        }
                    };
                    out.actions = Some(LfsActions {
                        download: Some(LfsAction {
                            href,
                            header: BTreeMap::new(),
                            expires_at: Some(expires_at.clone()),
                        }),
                        ..LfsActions::default()
                    });
                }
                None => {
                    out.error = Some(LfsObjectError {
                        code: 404,
                        message: "Object does not exist".into(),
                    })
                }
            }
            objects.push(out);
            continue;
        }
        if stored == Some(obj.size) {
            // Already stored: nothing to upload.
            objects.push(out);
            continue;
        }
        let verify = LfsAction {
            href: format!("{}/{prefix}{id}.git/info/lfs/objects/verify", ctx.origin),
            header: BTreeMap::new(),
            expires_at: None,
        };
        let upload_action =
            if multipart_ok && obj.size >= app.cfg.multipart_threshold && obj.size > 0 {
                any_multipart = true;
                let part_size = app
                    .cfg
                    .multipart_part_size
                    .max(obj.size.div_ceil(MAX_PARTS));
                let (uid, parts) = start_multipart(app, &sha, obj.size, part_size)?;
                let mut header = BTreeMap::new();
                header.insert("chunk_size".to_string(), part_size.to_string());
                for part in 1..=parts {
                    let path = format!("/multipart/{uid}/{part}");
                    let q = app.signer.sign("PUT", &path, &[]);
                    header.insert(format!("{part:05}"), format!("{cdn}{path}?{q}"));
                }
                let q = app.signer.sign("POST", &format!("/complete/{uid}"), &[]);
                LfsAction {
                    href: format!(
                        "{}/{prefix}{id}.git/info/lfs/objects/complete/{uid}?{q}",
                        ctx.origin
                    ),
                    header,
                    expires_at: Some(expires_at.clone()),
                }
            } else {
                let path = format!("/upload/{sha}");
                let q = app
                    .signer
                    .sign("PUT", &path, &[("size", obj.size.to_string())]);
                LfsAction {
                    href: format!("{cdn}{path}?{q}"),
                    header: BTreeMap::new(),
                    expires_at: Some(expires_at.clone()),
                }
            };
        out.actions = Some(LfsActions {
            upload: Some(upload_action),
            verify: Some(verify),
            download: None,
        });
        objects.push(out);
    }
    let resp = LfsBatchResponse {
        transfer: Some(if any_multipart { "multipart" } else { "basic" }.into()),
        objects,
    };
    Ok(lfs_json(axum::Json(resp).into_response()))
}

#[derive(Deserialize)]
struct VerifyBody {
    oid: String,
    size: u64,
}

/// `POST {repo}.git/info/lfs/objects/verify`: 200 if the object is stored with that size.
pub async fn verify(app: &App, body: Body) -> Reply {
    let v: VerifyBody = json_body(body).await?;
    let sha = Sha256::from_hex(&v.oid).ok_or_else(|| ApiError::bad_request("Invalid oid"))?;
    match stored_size(app, &sha) {
        Some(size) if size == v.size => Ok(lfs_json(
            axum::Json(json!({"message": "Object verified"})).into_response(),
        )),
        Some(size) => Err(ApiError::unprocessable(format!(
            "Object {} has size {size}, not {}",
            v.oid, v.size
        ))),
        None => Err(ApiError::not_found(format!(
            "Object {} does not exist",
            v.oid
        ))),
    }
}

/// Size of the content with this sha256, stored as an LFS object or as a Xet file.
fn stored_size(app: &App, sha: &Sha256) -> Option<u64> {
    app.store.objects.lfs_size(sha).or_else(|| {
        app.xet
            .as_ref()
            .and_then(|x| x.by_sha256(&sha.hex()))
            .map(|f| f.size)
    })
}
