//! LFS object uploads, S3-style: a basic single PUT, or multipart (parts PUT to signed CDN URLs,
//! then a completion POST on the Hub). Bodies stream to a temp file while being hashed; an
//! object enters the store only after its sha256 and size check out, by atomic rename.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256 as Sha256Hasher};
use tokio::io::AsyncWriteExt;

use super::{blocking, json_body, Reply};
use crate::git::Sha256;
use crate::server::ctx::Ctx;
use crate::server::error::{ApiError, ApiResult};
use crate::server::App;
use crate::store::objects::TempFile;
use hub_wire::types::MultipartCompletion;

/// Buffer between the socket and the temp file.
const WRITE_BUF: usize = 1 << 20;

pub struct Received {
    pub temp: TempFile,
    pub sha: Sha256,
    pub len: u64,
}

/// Streams `body` into a temp file, hashing it; refuses more than `max` bytes.
pub async fn receive(app: &App, body: Body, max: u64) -> ApiResult<Received> {
    let mut temp = app.store.objects.temp()?;
    let file = tokio::fs::File::from_std(temp.file().try_clone()?);
    let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUF, file);
    let mut hasher = Sha256Hasher::new();
    let mut len = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?;
        len += chunk.len() as u64;
        if len > max {
            return Err(ApiError::bad_request(format!(
                "body larger than the announced {max} bytes"
            )));
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    app.net.stats.uploaded(len);
    Ok(Received {
        temp,
        sha: Sha256(hasher.finalize().into()),
        len,
    })
}

/// Basic transfer: `PUT /upload/{sha256}?size=N` on the CDN.
pub async fn put_object(app: &App, sha: Sha256, size: u64, body: Body) -> Reply {
    let r = receive(app, body, size).await?;
    if r.len != size || r.sha != sha {
        return Err(ApiError::bad_request(format!(
            "content does not match: got {} bytes with sha256 {}, expected {size} bytes with {sha}",
            r.len, r.sha
        )));
    }
    r.temp.persist(&app.store.objects.lfs_path(&sha))?;
    migrate(app, &sha, size).await?;
    Ok(etag_response(&sha.hex()))
}

/// Stores a just-uploaded LFS object in Xet too (the Hub migrates LFS uploads to Xet), so its
/// tree entries gain `xetHash` and `resolve` answers the Xet way. Synchronous, so that what a
/// test sees right after the upload is deterministic. The LFS copy stays: the bridge serves
/// from it, and a `--no-xet` restart on the same data still works.
/// A failed migration leaves a plain LFS object (served the legacy way) and is logged.
pub async fn migrate(app: &App, sha: &Sha256, size: u64) -> ApiResult<()> {
    if let Some(xet) = &app.xet {
        if let Err(e) = xet
            .ingest(&app.store.objects.lfs_path(sha), &sha.hex(), size)
            .await
        {
            tracing::warn!(%sha, error = %e, "LFS object not migrated to Xet");
        }
    }
    Ok(())
}

fn etag_response(tag: &str) -> Response {
    let mut resp = axum::Json(json!({})).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{tag}\"")) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// State of one multipart upload, kept in `uploads/{id}/meta.json`.
#[derive(Serialize, Deserialize)]
struct Multipart {
    oid: String,
    size: u64,
    part_size: u64,
    parts: u64,
}

fn upload_dir(app: &App, id: &str) -> ApiResult<PathBuf> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found("No such upload"));
    }
    Ok(app.store.root.join("uploads").join(id))
}

fn load(app: &App, id: &str) -> ApiResult<(PathBuf, Multipart)> {
    let dir = upload_dir(app, id)?;
    let bytes =
        fs::read(dir.join("meta.json")).map_err(|_| ApiError::not_found("No such upload"))?;
    let m = serde_json::from_slice(&bytes).map_err(io::Error::other)?;
    Ok((dir, m))
}

fn part_len(m: &Multipart, part: u64) -> u64 {
    if part < m.parts {
        m.part_size
    } else {
        m.size - m.part_size * (m.parts - 1)
    }
}

/// Opens a multipart upload; returns its id and number of parts.
pub fn start_multipart(
    app: &App,
    sha: &Sha256,
    size: u64,
    part_size: u64,
) -> io::Result<(String, u64)> {
    let mut rng = fastrand::Rng::new();
    let id: String = (0..16).map(|_| format!("{:02x}", rng.u8(..))).collect();
    let parts = size.div_ceil(part_size).max(1);
    let dir = app.store.root.join("uploads").join(&id);
    fs::create_dir_all(&dir)?;
    let m = Multipart {
        oid: sha.hex(),
        size,
        part_size,
        parts,
    };
    fs::write(
        dir.join("meta.json"),
        serde_json::to_vec(&m).map_err(io::Error::other)?,
    )?;
    Ok((id, parts))
}

/// `PUT /multipart/{id}/{part}` on the CDN; answers the part's ETag.
pub async fn put_part(app: &App, id: &str, part: u64, body: Body) -> Reply {
    let (dir, m) = load(app, id)?;
    if part == 0 || part > m.parts {
        return Err(ApiError::bad_request(format!(
            "part number {part} out of range 1..={}",
            m.parts
        )));
    }
    let want = part_len(&m, part);
    let r = receive(app, body, want).await?;
    if r.len != want {
        return Err(ApiError::bad_request(format!(
            "part {part} has {} bytes, expected {want}",
            r.len
        )));
    }
    let tag = r.sha.hex();
    r.temp.persist(&dir.join(format!("part-{part:05}")))?;
    fs::write(dir.join(format!("part-{part:05}.etag")), &tag)?;
    Ok(etag_response(&tag))
}

/// Completion: `POST /{repo}.git/info/lfs/objects/complete/{id}` (signed, no token needed).
pub async fn complete(app: &std::sync::Arc<App>, ctx: &Ctx, id: &str, body: Body) -> Reply {
    let query = ctx.raw_query.as_deref().unwrap_or("");
    app.signer
        .verify("POST", &format!("/complete/{id}"), query)
        .map_err(|e| ApiError::forbidden(format!("invalid completion URL: {e:?}")))?;
    let req: MultipartCompletion = json_body(body).await?;
    let (dir, m) = load(app, id)?;
    if !req.oid.eq_ignore_ascii_case(&m.oid) {
        return Err(ApiError::bad_request("oid does not match the upload"));
    }
    let mut parts = req.parts.clone();
    parts.sort_by_key(|p| p.part_number);
    if parts.len() as u64 != m.parts
        || parts
            .iter()
            .enumerate()
            .any(|(i, p)| p.part_number as usize != i + 1)
    {
        return Err(ApiError::bad_request(format!(
            "expected parts 1..={}",
            m.parts
        )));
    }
    for p in &parts {
        let stored = fs::read_to_string(dir.join(format!("part-{:05}.etag", p.part_number)))
            .map_err(|_| {
                ApiError::bad_request(format!("part {} was not uploaded", p.part_number))
            })?;
        if p.etag.trim_matches('"') != stored.trim() {
            return Err(ApiError::bad_request(format!(
                "etag mismatch for part {}",
                p.part_number
            )));
        }
    }
    let app2 = app.clone();
    let (sha, size) = (Sha256::from_hex(&m.oid), m.size);
    blocking(move || assemble(&app2, &dir, &m)).await?;
    if let Some(sha) = sha {
        migrate(app, &sha, size).await?;
    }
    Ok(axum::Json(json!({"success": true})).into_response())
}

/// Concatenates the parts into the object store after checking size and sha256.
fn assemble(app: &App, dir: &std::path::Path, m: &Multipart) -> ApiResult<()> {
    let sha = Sha256::from_hex(&m.oid).ok_or_else(|| ApiError::bad_request("bad oid"))?;
    let dest = app.store.objects.lfs_path(&sha);
    if app.store.objects.lfs_size(&sha) != Some(m.size) {
        let mut temp = app.store.objects.temp()?;
        let mut hasher = Sha256Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        for part in 1..=m.parts {
            let mut f = File::open(dir.join(format!("part-{part:05}")))?;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                temp.file().write_all(&buf[..n])?;
                total += n as u64;
            }
        }
        let got = Sha256(hasher.finalize().into());
        if got != sha || total != m.size {
            return Err(ApiError::bad_request(format!(
                "assembled object has sha256 {got} and {total} bytes, expected {sha} and {}",
                m.size
            )));
        }
        temp.persist(&dest)?;
    }
    fs::remove_dir_all(dir)?;
    Ok(())
}
