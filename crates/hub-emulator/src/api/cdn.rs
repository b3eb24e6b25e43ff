//! The stand-in CDN on its own port: serves LFS objects (Range/206/416) and accepts LFS
//! uploads, authorized only by signed, expiring URLs. It never reads, needs or logs an
//! Authorization header, like S3/CloudFront.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::upload::{put_object, put_part};
use crate::git::Sha256;
use crate::net;
use crate::server::content;
use crate::server::error::{ApiError, ApiResult};
use crate::server::sign::SignError;
use crate::server::App;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(axum::middleware::from_fn_with_state(
            app.net.clone(),
            net::layer,
        ))
        .with_state(app)
}

fn denied(e: SignError) -> ApiError {
    let msg = match e {
        SignError::Expired => "Request has expired",
        SignError::Missing | SignError::Invalid => "Access Denied: invalid signature",
    };
    ApiError::forbidden(msg)
}

async fn dispatch(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let result = handle(&app, &parts.method, &path, &query, &parts.headers, body).await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn handle(
    app: &App,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let stats = &app.net.stats;
    if let ["cas", rest @ ..] = segs.as_slice() {
        let req = super::cas::CasRequest {
            method,
            segs: rest,
            path,
            query,
            headers,
        };
        return super::cas::handle(app, req, body).await;
    }
    match (method, segs.as_slice()) {
        (&Method::GET | &Method::HEAD, ["lfs", oid]) => {
            stats.route("cdn-get");
            // HEAD is authorized by the GET signature, as with presigned S3 URLs.
            let params = app.signer.verify("GET", path, query).map_err(denied)?;
            let sha = Sha256::from_hex(oid).ok_or_else(|| ApiError::not_found("NoSuchKey"))?;
            let size = app
                .store
                .objects
                .lfs_size(&sha)
                .ok_or_else(|| ApiError::not_found("NoSuchKey"))?;
            let mut h = HeaderMap::new();
            let etag = format!("\"{sha}\"");
            for (k, v) in [
                ("etag", etag.as_str()),
                ("content-type", "application/octet-stream"),
            ] {
                if let Ok(v) = HeaderValue::from_str(v) {
                    h.insert(k, v);
                }
            }
            if let Some((_, name)) = params.iter().find(|(k, _)| k == "filename") {
                let encoded = hub_wire::repo::encode_revision(name);
                if let Ok(v) = HeaderValue::from_str(&format!("inline; filename*=UTF-8''{encoded}"))
                {
                    h.insert(header::CONTENT_DISPOSITION, v);
                }
            }
            Ok(content::serve(
                &app.store.objects.lfs_path(&sha),
                size,
                method,
                headers,
                h,
            )?)
        }
        (&Method::PUT, ["upload", oid]) => {
            stats.route("cdn-put");
            let params = app.signer.verify("PUT", path, query).map_err(denied)?;
            let sha = Sha256::from_hex(oid).ok_or_else(|| ApiError::bad_request("bad oid"))?;
            let size = params
                .iter()
                .find(|(k, _)| k == "size")
                .and_then(|(_, v)| v.parse().ok())
                .ok_or_else(|| ApiError::bad_request("missing size"))?;
            put_object(app, sha, size, body).await
        }
        (&Method::PUT, ["multipart", id, part]) => {
            stats.route("cdn-part");
            app.signer.verify("PUT", path, query).map_err(denied)?;
            let part = part
                .parse()
                .map_err(|_| ApiError::bad_request("bad part number"))?;
            put_part(app, id, part, body).await
        }
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "NoSuchKey")),
    }
}
