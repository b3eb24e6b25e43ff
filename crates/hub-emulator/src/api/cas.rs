//! The Xet CAS, under `/cas` on the CDN listener (a foreign origin to the Hub, like
//! `cas-server.xethub.hf.co`): the routes hf_xet 1.8 calls (xet-plan.md §2.1, §2.2, §4.1 item 3).
//! Every API route checks the `Authorization: Bearer` CAS token (read, or write for uploads);
//! xorb fetches, grant uploads and the bridge are authorized by signed, expiring URLs instead.
//! Every format operation is delegated to [`XetStore`] (xet-core's `LocalClient`).
//!
//! | route | auth |
//! |---|---|
//! | `GET /cas/v1\|v2/reconstructions/{file}` (+ `Range`; 416) | read |
//! | `GET /cas/v1/chunks/{prefix}/{chunk}` (global dedup; 404 = unknown) | read |
//! | `HEAD\|POST /cas/v1/xorbs/{prefix}/{xorb}` | write |
//! | `POST /cas/v1/xorb-grants/{prefix}/{xorb}` → 201 grant / 200 exists / 404 off | write |
//! | `PUT /cas/upload/{grant}?…` | signed |
//! | `POST /cas/v1/xorb-commits/{prefix}/{xorb}/grant/{grant}` | write |
//! | `POST /cas/v1/shards`, `POST /cas/v2/shards` (NDJSON) | write |
//! | `GET /cas/v2/file-chunk-hashes/{file}` (+ `X-Range-Dirty`) | read |
//! | `POST /cas/v1/telemetry` | read |
//! | `GET\|HEAD /cas/xorb/{xorb}?…` (206 + `Content-Range`, suffix ranges, 403 expired) | signed |
//! | `GET\|HEAD /cas/bridge/{file}?…` (the resolve redirect target, full Range support) | signed |

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use xet_client::cas_types::{
    Checksum, FileRange, HexMerkleHash, HttpRange, ShardUploadEvent, UploadShardResponse,
    UploadShardResponseType, XorbUploadGrant, XorbUploadGrantRequest,
};
use xet_core_structures::merklehash::MerkleHash;

use super::read_body;
use crate::net::CasBody;
use crate::server::cas_token::{self, CasClaims, TokenError};
use crate::server::content::{self, parse_range, RangeSpec};
use crate::server::error::{ApiError, ApiResult};
use crate::server::sign::SignError;
use crate::server::App;
use crate::store::xet::{parse_hash, XetError, XetStore};

/// Largest xorb or shard body accepted (xorbs are at most 64 MiB plus chunk headers).
const MAX_UPLOAD: usize = 80 << 20;

impl From<XetError> for ApiError {
    fn from(e: XetError) -> Self {
        match e {
            XetError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
            XetError::Range => {
                ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "Range not satisfiable")
            }
            XetError::Bad(m) => ApiError::bad_request(m),
            XetError::Io(e) => ApiError::from(e),
            XetError::Other(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m),
        }
    }
}

fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::Missing => ApiError::new(StatusCode::UNAUTHORIZED, "missing CAS token"),
        TokenError::Invalid => ApiError::new(StatusCode::UNAUTHORIZED, "invalid CAS token"),
        TokenError::Expired => ApiError::new(StatusCode::UNAUTHORIZED, "CAS token expired"),
        TokenError::ReadOnly => {
            ApiError::new(StatusCode::FORBIDDEN, "CAS token does not allow writes")
        }
    }
}

fn denied(e: SignError) -> ApiError {
    match e {
        SignError::Expired => ApiError::forbidden("Request has expired"),
        SignError::Missing | SignError::Invalid => {
            ApiError::forbidden("Access Denied: invalid signature")
        }
    }
}

/// One CAS request, as the CDN dispatcher hands it over.
pub struct CasRequest<'a> {
    pub method: &'a Method,
    /// Path without the `/cas` prefix, split on `/`.
    pub segs: &'a [&'a str],
    /// Full path (what URLs are signed over).
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
}

impl CasRequest<'_> {
    fn auth(&self, app: &App, write: bool) -> ApiResult<CasClaims> {
        let token = cas_token::bearer(self.headers).ok_or(TokenError::Missing);
        token
            .and_then(|t| cas_token::verify(&app.signer, t, write))
            .map_err(token_error)
    }

    /// `http://host:port` of the CDN as this client reaches it.
    fn origin(&self, app: &App) -> String {
        let host = self
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let hostname = match host.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        app.cdn_origin(hostname)
    }
}

/// The `casUrl` the token routes announce for a client that reached the Hub as `hostname`.
pub fn cas_url(app: &App, hostname: &str) -> String {
    format!("{}/cas", app.cdn_origin(hostname))
}

/// A signed URL to fetch xorb `hash` by range (`GET`, and `HEAD` with the same signature).
/// `range`: the `Range` header value the plan names for it; with `--range-bound-urls` the URL
/// serves that header only.
pub fn xorb_url(app: &App, origin: &str, hash: &str, range: &str) -> String {
    let path = format!("/cas/xorb/{hash}");
    let q = app.xet_signer.sign("GET", &path, &bound(app, range));
    format!("{origin}{path}?{q}")
}

/// A signed URL of the bridge serving Xet file `hash` (`sha256`, when known, picks the LFS
/// copy as a faster source and is the ETag). `range`: the `Range` header of the request the
/// redirect answers ("" for none), which `--range-bound-urls` binds the URL to; `None` for
/// URLs handed out before any range is known (LFS batch actions, bucket listings).
pub fn bridge_url(
    app: &App,
    origin: &str,
    hash: &str,
    filename: &str,
    range: Option<&str>,
) -> String {
    let path = format!("/cas/bridge/{hash}");
    let mut params = vec![("filename", filename.to_string())];
    if let Some(range) = range {
        params.extend(bound(app, range));
    }
    let q = app.xet_signer.sign("GET", &path, &params);
    format!("{origin}{path}?{q}")
}

/// The signed parameter that binds a URL to one `Range` value, when the emulator does that.
fn bound(app: &App, range: &str) -> Vec<(&'static str, String)> {
    if app.cfg.range_bound_urls {
        vec![(SIGNED_RANGE, range.trim().to_string())]
    } else {
        Vec::new()
    }
}

const SIGNED_RANGE: &str = "range";

/// The request's `Range` header as a bound URL compares it ("" when absent).
pub fn asked_range(headers: &HeaderMap) -> &str {
    headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
}

/// A URL bound to a range serves exactly that `Range` header (absent = ""), like a CDN policy
/// with a byte-range condition: anything else is refused before any byte is read.
fn check_bound(params: &[(String, String)], headers: &HeaderMap) -> ApiResult<()> {
    let Some((_, signed)) = params.iter().find(|(k, _)| k == SIGNED_RANGE) else {
        return Ok(());
    };
    if asked_range(headers) == signed {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "The Range header does not match the range this URL was signed for",
        ))
    }
}

/// The `Range` value a client sends for `ranges` of one fetch (as xet-client builds it).
fn range_value(ranges: &[HttpRange]) -> String {
    let joined: Vec<String> = ranges
        .iter()
        .map(|r| format!("{}-{}", r.start, r.end))
        .collect();
    format!("bytes={}", joined.join(","))
}

fn store(app: &App) -> ApiResult<&Arc<XetStore>> {
    app.xet
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Not Found"))
}

fn key(prefix_hash: &[&str]) -> ApiResult<(String, MerkleHash)> {
    match prefix_hash {
        [prefix, hash] => Ok((prefix.to_string(), parse_hash(hash)?)),
        _ => Err(ApiError::not_found("Not Found")),
    }
}

fn v2_off(app: &App) -> ApiResult<()> {
    if app.cfg.xet_v2 {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "v2 routes disabled (--no-xet-v2)",
        ))
    }
}

pub async fn handle(app: &App, req: CasRequest<'_>, body: Body) -> ApiResult<Response> {
    let xet = store(app)?.clone();
    let stats = &app.net.stats;
    let get = matches!(*req.method, Method::GET | Method::HEAD);
    let post = *req.method == Method::POST;
    match req.segs {
        [v @ ("v1" | "v2"), "reconstructions", file] if get => {
            stats.route(if *v == "v1" {
                "cas-reconstruction-v1"
            } else {
                "cas-reconstruction-v2"
            });
            if *v == "v2" {
                v2_off(app)?;
            }
            req.auth(app, false)?;
            stats.cas_reconstruction();
            let hash = parse_hash(file)?;
            let range_hdr = req.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
            let range = xet.file_range(&hash, range_hdr).await?;
            let origin = req.origin(app);
            if *v == "v1" {
                let mut r = xet.reconstruction_v1(&hash, range).await?;
                for (h, infos) in r.fetch_info.iter_mut() {
                    for fi in infos.iter_mut() {
                        fi.url = xorb_url(app, &origin, &h.0.hex(), &range_value(&[fi.url_range]));
                    }
                }
                Ok(axum::Json(r).into_response())
            } else {
                let mut r = xet.reconstruction_v2(&hash, range).await?;
                for (h, fetches) in r.xorbs.iter_mut() {
                    for f in fetches.iter_mut() {
                        let ranges: Vec<HttpRange> = f.ranges.iter().map(|r| r.bytes).collect();
                        f.url = xorb_url(app, &origin, &h.0.hex(), &range_value(&ranges));
                    }
                }
                Ok(axum::Json(r).into_response())
            }
        }
        ["v1", "chunks", rest @ ..] if get => {
            stats.route("cas-chunks");
            req.auth(app, false)?;
            stats.cas_dedup_query();
            let (prefix, chunk) = key(rest)?;
            match xet.dedup_query(&prefix, &chunk).await? {
                Some(shard) => Ok(octets(StatusCode::OK, shard)),
                None => Err(ApiError::not_found("chunk not found")),
            }
        }
        ["v1", "xorbs", rest @ ..] if *req.method == Method::HEAD => {
            stats.route("cas-xorb-head");
            req.auth(app, false)?;
            let (_, hash) = key(rest)?;
            if xet.xorb_exists(&hash).await? {
                Ok(StatusCode::OK.into_response())
            } else {
                Err(ApiError::not_found("xorb not found"))
            }
        }
        ["v1", "xorbs", rest @ ..] if post => {
            stats.route("cas-xorb-upload");
            req.auth(app, true)?;
            let (prefix, hash) = key(rest)?;
            let data = read_body(body, MAX_UPLOAD).await?;
            stats.cas_received(data.len() as u64);
            stats.cas_xorb_upload();
            let inserted = xet.upload_xorb(&prefix, hash, data).await?;
            Ok(axum::Json(json!({ "was_inserted": inserted })).into_response())
        }
        ["v1", "xorb-grants", rest @ ..] if post => {
            stats.route("cas-xorb-grant");
            if !app.cfg.xet_grants {
                return Err(ApiError::not_found(
                    "xorb upload grants disabled (--no-xet-grants)",
                ));
            }
            req.auth(app, true)?;
            let (_, hash) = key(rest)?;
            let bytes = read_body(body, 64 << 10).await?;
            let grant: XorbUploadGrantRequest = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("invalid grant request: {e}")))?;
            if xet.xorb_exists(&hash).await? {
                return Ok(StatusCode::OK.into_response());
            }
            let Checksum::Crc64Nvme(crc) = grant.checksum;
            let id = grant_id();
            let path = format!("/cas/upload/{id}");
            let q = app.xet_signer.sign(
                "PUT",
                &path,
                &[
                    ("xorb", hash.hex()),
                    ("length", grant.length.to_string()),
                    ("crc64nvme", crc.to_string()),
                ],
            );
            let g = XorbUploadGrant {
                id,
                method: "PUT".into(),
                url: format!("{}{path}?{q}", req.origin(app)),
                headers: [("If-None-Match".to_string(), "*".to_string())].into(),
            };
            Ok((StatusCode::CREATED, axum::Json(g)).into_response())
        }
        ["upload", grant] if *req.method == Method::PUT => {
            stats.route("cas-grant-put");
            let params = app
                .xet_signer
                .verify("PUT", req.path, req.query)
                .map_err(denied)?;
            let p = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let length: u64 = p("length").and_then(|v| v.parse().ok()).unwrap_or(0);
            let crc: u64 = p("crc64nvme").and_then(|v| v.parse().ok()).unwrap_or(0);
            let staged = xet.staging_path(grant)?;
            if staged.exists()
                && req
                    .headers
                    .get(header::IF_NONE_MATCH)
                    .is_some_and(|v| v == "*")
            {
                return Ok(StatusCode::PRECONDITION_FAILED.into_response());
            }
            let data = read_body(body, MAX_UPLOAD).await?;
            stats.cas_received(data.len() as u64);
            if data.len() as u64 != length || crc64nvme(&data) != crc {
                return Err(ApiError::bad_request(
                    "data does not match the upload grant",
                ));
            }
            let tmp = staged.with_extension("part");
            tokio::fs::write(&tmp, &data).await?;
            tokio::fs::rename(&tmp, &staged).await?;
            Ok(StatusCode::OK.into_response())
        }
        ["v1", "xorb-commits", prefix, hash, "grant", grant] if post => {
            stats.route("cas-xorb-commit");
            req.auth(app, true)?;
            let hash = parse_hash(hash)?;
            stats.cas_xorb_upload();
            xet.commit_grant(prefix, hash, grant).await?;
            Ok(StatusCode::OK.into_response())
        }
        [v @ ("v1" | "v2"), "shards"] if post => {
            stats.route(if *v == "v1" {
                "cas-shard-v1"
            } else {
                "cas-shard-v2"
            });
            if *v == "v2" {
                v2_off(app)?;
            }
            req.auth(app, true)?;
            let data = read_body(body, MAX_UPLOAD).await?;
            stats.cas_received(data.len() as u64);
            let stored = xet.upload_shard(data).await;
            if *v == "v1" {
                let stored = stored?;
                return Ok(axum::Json(UploadShardResponse {
                    result: UploadShardResponseType::SyncPerformed,
                    shard_hash: stored.map(HexMerkleHash),
                })
                .into_response());
            }
            // v2: 200 with NDJSON frames; a refusal is a terminal error frame, as on the CAS.
            let mut events = vec![ShardUploadEvent::Validating {
                verified: 0,
                total: 1,
            }];
            match stored {
                Ok(_) => events.extend([
                    ShardUploadEvent::Validating {
                        verified: 1,
                        total: 1,
                    },
                    ShardUploadEvent::Committing {
                        stage: xet_client::cas_types::CommitStage::Uploading,
                    },
                    ShardUploadEvent::Committing {
                        stage: xet_client::cas_types::CommitStage::Syncing,
                    },
                    ShardUploadEvent::Result,
                ]),
                Err(XetError::Bad(m)) | Err(XetError::NotFound(m)) => {
                    events.push(ShardUploadEvent::Error {
                        message: m,
                        retryable: false,
                    })
                }
                Err(e) => events.push(ShardUploadEvent::Error {
                    message: e.to_string(),
                    retryable: true,
                }),
            }
            let mut out = Vec::new();
            for e in &events {
                serde_json::to_writer(&mut out, e).map_err(std::io::Error::other)?;
                out.push(b'\n');
            }
            Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-ndjson")],
                out,
            )
                .into_response())
        }
        ["v2", "file-chunk-hashes", file] if get => {
            stats.route("cas-file-chunk-hashes");
            v2_off(app)?;
            req.auth(app, false)?;
            let hash = parse_hash(file)?;
            let dirty = match req
                .headers
                .get("x-range-dirty")
                .and_then(|v| v.to_str().ok())
            {
                Some(v) => parse_dirty(v)?,
                None => Vec::new(),
            };
            Ok(axum::Json(xet.file_chunk_hashes(&hash, dirty).await?).into_response())
        }
        ["v1", "telemetry"] if post => {
            stats.route("cas-telemetry");
            req.auth(app, false)?;
            read_body(body, 4 << 20).await?;
            Ok(StatusCode::OK.into_response())
        }
        ["xorb", hash] if get => {
            stats.route("cas-xorb-get");
            let params = app
                .xet_signer
                .verify("GET", req.path, req.query)
                .map_err(denied)?;
            check_bound(&params, req.headers)?;
            stats.cas_xorb_fetch();
            // A suffix range (`bytes=-N`) reads a xorb's footer: counted apart, so tests can
            // tell footer reads from data reads.
            let suffix = req
                .headers
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().starts_with("bytes=-"));
            if suffix {
                stats.route("cas-xorb-suffix");
            }
            let hash = parse_hash(hash)?;
            serve_xorb(&xet, &hash, req.method, req.headers).await
        }
        ["bridge", file] if get => {
            stats.route("cas-bridge");
            let params = app
                .xet_signer
                .verify("GET", req.path, req.query)
                .map_err(denied)?;
            let filename = params
                .iter()
                .find(|(k, _)| k == "filename")
                .map(|(_, v)| v.clone());
            check_bound(&params, req.headers)?;
            bridge(app, &xet, file, filename, req.method, req.headers).await
        }
        _ => Err(ApiError::not_found("Not Found")),
    }
}

fn octets(status: StatusCode, data: Bytes) -> Response {
    let mut resp = (status, data).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp
}

fn grant_id() -> String {
    let mut rng = fastrand::Rng::new();
    (0..16).map(|_| format!("{:02x}", rng.u8(..))).collect()
}

/// CRC-64/NVME, the checksum hf_xet sends with a grant request.
fn crc64nvme(data: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, data)
}

/// `X-Range-Dirty: bytes=s1-e1,s2-e2` (inclusive) → end-exclusive ranges.
fn parse_dirty(v: &str) -> ApiResult<Vec<FileRange>> {
    let spec = v
        .trim()
        .strip_prefix("bytes=")
        .ok_or_else(|| ApiError::bad_request("bad X-Range-Dirty"))?;
    spec.split(',')
        .map(|r| {
            let (a, b) = r
                .trim()
                .split_once('-')
                .ok_or_else(|| ApiError::bad_request("bad X-Range-Dirty"))?;
            let a: u64 = a
                .parse()
                .map_err(|_| ApiError::bad_request("bad X-Range-Dirty"))?;
            let b: u64 = b
                .parse()
                .map_err(|_| ApiError::bad_request("bad X-Range-Dirty"))?;
            Ok(FileRange::new(a, b + 1))
        })
        .collect()
}

/// Serves a stored xorb by range straight from its file (mapped or `pread`, never a
/// whole-file read per request): 200, 206 with `Content-Range` (incl. `bytes=-N`), 416, and
/// `multipart/byteranges` when several ranges are asked in one header (hf_xet's
/// `HF_XET_CLIENT_ENABLE_MULTIRANGE_FETCHING`).
async fn serve_xorb(
    xet: &XetStore,
    hash: &MerkleHash,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let path = xet.xorb_path(hash);
    let size = match tokio::fs::metadata(&path).await {
        Ok(m) => m.len(),
        Err(_) => return Err(ApiError::not_found("NoSuchKey")),
    };
    let mut extra = HeaderMap::new();
    extra.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", hash.hex())) {
        extra.insert(header::ETAG, v);
    }
    let multi = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
        .filter(|v| v.contains(','))
        .map(str::to_string);
    let mut resp = match multi {
        Some(spec) => multipart(&path, size, &spec, method).await?,
        None => content::serve(&path, size, method, headers, extra)?,
    };
    if resp
        .extensions_mut()
        .remove::<crate::net::ContentBody>()
        .is_some()
    {
        resp.extensions_mut().insert(CasBody);
    }
    Ok(resp)
}

async fn multipart(
    path: &std::path::Path,
    size: u64,
    spec: &str,
    method: &Method,
) -> ApiResult<Response> {
    let mut ranges = Vec::new();
    for part in spec.split(',') {
        let v = HeaderValue::from_str(&format!("bytes={}", part.trim()))
            .map_err(|_| ApiError::bad_request("bad Range"))?;
        match parse_range(Some(&v), size) {
            RangeSpec::Partial(a, b) => ranges.push((a, b)),
            _ => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                )
                    .into_response())
            }
        }
    }
    let file = File::open(path)?;
    let boundary = "hub_emulator_byteranges";
    let body = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        for (a, b) in ranges {
            out.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {a}-{b}/{size}\r\n\r\n"
                )
                .as_bytes(),
            );
            let start = out.len();
            out.resize(start + (b - a + 1) as usize, 0);
            file.read_exact_at(&mut out[start..], a)?;
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        Ok(out)
    })
    .await
    .map_err(std::io::Error::other)??;
    let len = body.len();
    let body = if *method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(body)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}")) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp.extensions_mut().insert(CasBody);
    Ok(resp)
}

/// The Xet bridge: a Xet file's bytes over plain HTTP with full Range support, for clients
/// that follow the resolve redirect. When the bytes also exist as an LFS object (uploaded
/// through LFS, then migrated) they are served from it (no reassembly); otherwise they are
/// reassembled from xorbs in-process, streaming.
async fn bridge(
    app: &App,
    xet: &Arc<XetStore>,
    file: &str,
    filename: Option<String>,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let hash = parse_hash(file)?;
    let size = xet
        .file_size(&hash)
        .await
        .map_err(|_| ApiError::not_found("NoSuchKey"))?;
    let known = xet.by_xet(&hash.hex());
    let mut extra = HeaderMap::new();
    for (k, v) in [
        ("etag", format!("\"{}\"", hash.hex())),
        ("content-type", "application/octet-stream".to_string()),
        ("x-xet-hash", hash.hex()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            extra.insert(k, v);
        }
    }
    if let Some(name) = filename {
        let encoded = hub_wire::repo::encode_revision(&name);
        if let Ok(v) = HeaderValue::from_str(&format!("inline; filename*=UTF-8''{encoded}")) {
            extra.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    if let Some(sha) = known
        .as_ref()
        .and_then(|f| f.sha256.as_deref())
        .and_then(crate::git::Sha256::from_hex)
    {
        if app.store.objects.lfs_size(&sha) == Some(size) {
            return Ok(content::serve(
                &app.store.objects.lfs_path(&sha),
                size,
                method,
                headers,
                extra,
            )?);
        }
    }
    let range = parse_range(headers.get(header::RANGE), size);
    let (status, start, len) = match range {
        RangeSpec::Full => (StatusCode::OK, 0, size),
        RangeSpec::Partial(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        RangeSpec::Unsatisfiable => (StatusCode::RANGE_NOT_SATISFIABLE, 0, 0),
    };
    let body = if *method == Method::HEAD || len == 0 {
        Body::empty()
    } else {
        Body::from_stream(xet.read_stream(hash, FileRange::new(start, start + len)))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    *h = extra;
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    let cr = match range {
        RangeSpec::Partial(a, b) => Some(format!("bytes {a}-{b}/{size}")),
        RangeSpec::Unsatisfiable => Some(format!("bytes */{size}")),
        RangeSpec::Full => None,
    };
    if let Some(v) = cr.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_RANGE, v);
    }
    if *method != Method::HEAD {
        resp.extensions_mut().insert(crate::net::ContentBody);
    }
    Ok(resp)
}
