//! The write path of a commit (hub-api.md §5): preupload, LFS batch, LFS transfer, commit.
//!
//! 1. [`HubClient::preupload`] asks which files go to LFS;
//! 2. [`HubClient::lfs_batch_upload`] asks where to put the LFS objects;
//! 3. [`HubClient::upload_lfs_object`] streams each object from its file: one `PUT` (basic) or
//!    parallel part `PUT`s plus a completion `POST` (multipart), then the optional verify —
//!    presigned URLs never get the token;
//! 4. [`HubClient::commit`] sends the NDJSON commit in one body. It is not retried once the
//!    Hub may have seen it: an ambiguous failure is [`HubError::CommitUnknown`], resolved by
//!    the caller reading the branch head (`parentCommit` makes a retry safe).

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::json;
use url::Url;

use super::client::HubClient;
use super::error::{ErrorContext, HubError};
use super::transport::{Auth, Body, ByteProgress, Deadline, Request, RetryMode};
use super::types::{
    CommitResponse, CompletedPart, LfsAction, LfsBatchObject, LfsBatchRequest, LfsBatchResponse,
    LfsObject, LfsRefName, MultipartCompletion, PreuploadFile, PreuploadRequest, PreuploadResponse,
};
use crate::repo::{encode_revision, validate_repo_path, RepoRef};

/// Upload progress: called with the bytes of the object sent so far (it may go down when a
/// failed attempt is rewound).
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// Files per preupload request (huggingface_hub's batch).
pub const PREUPLOAD_BATCH: usize = 256;
/// Objects per LFS batch request (huggingface_hub's batch).
pub const LFS_BATCH: usize = 256;
/// Bytes of a file sent as the preupload `sample`.
pub const SAMPLE_SIZE: usize = 512;

const LFS_JSON: &str = "application/vnd.git-lfs+json";

/// The first line of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitHeader {
    /// Commit title; required, non-empty.
    pub summary: String,
    pub description: String,
    /// The commit the changes were made on: the Hub answers 412 if the branch moved.
    pub parent_commit: Option<String>,
}

/// One change of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOp {
    /// A regular (non-LFS) file, sent inline as base64.
    AddRegular {
        path: String,
        content: Vec<u8>,
    },
    /// A file whose content was uploaded to LFS storage.
    AddLfs {
        path: String,
        sha256: String,
        size: u64,
    },
    /// A file pointing at an LFS object already in the repo (copy / rename without upload).
    CopyLfs {
        path: String,
        sha256: String,
    },
    DeleteFile {
        path: String,
    },
    /// Everything below a folder.
    DeleteFolder {
        path: String,
    },
}

impl CommitOp {
    pub fn path(&self) -> &str {
        match self {
            CommitOp::AddRegular { path, .. }
            | CommitOp::AddLfs { path, .. }
            | CommitOp::CopyLfs { path, .. }
            | CommitOp::DeleteFile { path }
            | CommitOp::DeleteFolder { path } => path,
        }
    }

    /// The op's NDJSON line (without newline).
    fn line(&self) -> Result<String, HubError> {
        let path = self.path().trim_end_matches('/');
        validate_repo_path(path).map_err(|e| HubError::invalid(e.to_string()))?;
        let value = match self {
            CommitOp::AddRegular { content, .. } => json!({"key": "file", "value": {
                "path": path,
                "content": base64::engine::general_purpose::STANDARD.encode(content),
                "encoding": "base64",
            }}),
            CommitOp::AddLfs { sha256, size, .. } => json!({"key": "lfsFile", "value": {
                "path": path, "algo": "sha256", "oid": sha256, "size": size,
            }}),
            // huggingface_hub's copy: an lfsFile line without size.
            CommitOp::CopyLfs { sha256, .. } => json!({"key": "lfsFile", "value": {
                "path": path, "algo": "sha256", "oid": sha256,
            }}),
            CommitOp::DeleteFile { .. } => json!({"key": "deletedFile", "value": {"path": path}}),
            // Folder paths end with `/` by client convention.
            CommitOp::DeleteFolder { .. } => {
                json!({"key": "deletedFolder", "value": {"path": format!("{path}/")}})
            }
        };
        Ok(value.to_string())
    }
}

/// A preupload entry for a file: its path, size and the base64 of its first bytes.
pub fn preupload_file(path: &str, head: &[u8], size: u64) -> PreuploadFile {
    let sample = &head[..head.len().min(SAMPLE_SIZE)];
    PreuploadFile {
        path: path.to_string(),
        sample: base64::engine::general_purpose::STANDARD.encode(sample),
        size,
    }
}

/// The NDJSON body of a commit: the header line, then one line per op.
pub fn commit_body(header: &CommitHeader, ops: &[CommitOp]) -> Result<String, HubError> {
    if header.summary.trim().is_empty() {
        return Err(HubError::invalid("a commit needs a non-empty summary"));
    }
    let mut value = json!({"summary": header.summary, "description": header.description});
    if let Some(parent) = &header.parent_commit {
        value["parentCommit"] = json!(parent);
    }
    let mut body = json!({"key": "header", "value": value}).to_string();
    body.push('\n');
    for op in ops {
        body.push_str(&op.line()?);
        body.push('\n');
    }
    Ok(body)
}

impl HubClient {
    /// `POST /api/{type}s/{repo}/preupload/{rev}`: upload mode (`lfs`/`regular`), ignore flag
    /// and current oid of each file, in batches of [`PREUPLOAD_BATCH`].
    pub async fn preupload(
        &self,
        repo: &RepoRef,
        revision: &str,
        files: &[PreuploadFile],
        create_pr: bool,
    ) -> Result<PreuploadResponse, HubError> {
        let ctx = self.repo_ctx(repo, Some(revision), None);
        let r = async {
            let mut path = format!(
                "{}/preupload/{}",
                repo.api_path(),
                encode_revision(revision)
            );
            if create_pr {
                path.push_str("?create_pr=1");
            }
            let url = self.url(&path)?;
            let mut all = PreuploadResponse {
                files: Vec::with_capacity(files.len()),
                commit_oid: None,
            };
            for batch in files.chunks(PREUPLOAD_BATCH) {
                let body = PreuploadRequest {
                    files: batch.to_vec(),
                    ..PreuploadRequest::default()
                };
                let req = self
                    .api_request(Method::POST, url.clone(), &ctx)
                    .body(to_json(&body)?, "application/json");
                let answer: PreuploadResponse = self.call_json(&req).await?;
                all.files.extend(answer.files);
                all.commit_oid = answer.commit_oid.or(all.commit_oid);
            }
            Ok(all)
        }
        .await;
        self.count(r)
    }

    /// `POST /{prefix}{repo}.git/info/lfs/objects/batch` for an upload to `revision`,
    /// offering the basic and multipart transfers. An object the Hub refuses is an error.
    pub async fn lfs_batch_upload(
        &self,
        repo: &RepoRef,
        revision: &str,
        objects: &[LfsObject],
    ) -> Result<LfsBatchResponse, HubError> {
        self.lfs_batch(repo, Some(revision), objects).await
    }

    /// [`HubClient::lfs_batch_upload`] for a commit that will open a pull request (no ref
    /// is named, so no write access to a branch is needed).
    pub async fn lfs_batch_upload_for_pr(
        &self,
        repo: &RepoRef,
        objects: &[LfsObject],
    ) -> Result<LfsBatchResponse, HubError> {
        self.lfs_batch(repo, None, objects).await
    }

    async fn lfs_batch(
        &self,
        repo: &RepoRef,
        revision: Option<&str>,
        objects: &[LfsObject],
    ) -> Result<LfsBatchResponse, HubError> {
        let ctx = self.repo_ctx(repo, revision, None);
        let r = async {
            let url = self.url(&format!("{}.git/info/lfs/objects/batch", repo.web_path()))?;
            let mut all = LfsBatchResponse {
                transfer: None,
                objects: Vec::with_capacity(objects.len()),
            };
            for batch in objects.chunks(LFS_BATCH) {
                let body = LfsBatchRequest {
                    operation: "upload".into(),
                    transfers: vec!["basic".into(), "multipart".into()],
                    hash_algo: Some("sha256".into()),
                    reference: revision.map(|r| LfsRefName {
                        name: r.to_string(),
                    }),
                    objects: batch.to_vec(),
                };
                let req = self
                    .api_request(Method::POST, url.clone(), &ctx)
                    .header("accept", HeaderValue::from_static(LFS_JSON))
                    .body(to_json(&body)?, LFS_JSON);
                let answer: LfsBatchResponse = self.call_json(&req).await?;
                if let Some(bad) = answer.objects.iter().find(|o| o.error.is_some()) {
                    return Err(lfs_object_error(bad, &ctx));
                }
                all.transfer = all.transfer.or(answer.transfer);
                all.objects.extend(answer.objects);
            }
            Ok(all)
        }
        .await;
        self.count(r)
    }

    /// Uploads one LFS object from `file` as the batch answer says: nothing if the Hub
    /// already has it, a single streamed `PUT` (basic), or parallel part `PUT`s and a
    /// completion `POST` (multipart, recognised by `chunk_size` in the upload header); then
    /// the verify `POST` if asked for. Every step is retried on transient failures.
    pub async fn upload_lfs_object(
        &self,
        object: &LfsBatchObject,
        transfer: &str,
        file: &Path,
        progress: Option<Progress>,
    ) -> Result<(), HubError> {
        let ctx = self.ctx(ErrorContext::label(&format!(
            "LFS upload of {}",
            &object.oid[..object.oid.len().min(12)]
        )));
        let r = async {
            let Some(actions) = &object.actions else {
                return Ok(());
            };
            let Some(upload) = &actions.upload else {
                return Ok(());
            };
            if !matches!(transfer, "basic" | "multipart") {
                return Err(HubError::protocol(
                    &ctx.target(),
                    format!(
                        "the Hub chose the {transfer:?} transfer, which this client does not speak"
                    ),
                ));
            }
            let size = tokio::fs::metadata(file)
                .await
                .map_err(|e| HubError::invalid(format!("cannot stat {}: {e}", file.display())))?
                .len();
            if size != object.size {
                return Err(HubError::invalid(format!(
                    "{} is {size} bytes but the LFS object is {} bytes",
                    file.display(),
                    object.size
                )));
            }
            let progress = progress.map(|p| Arc::new(ByteProgress::new(p)));
            if upload.header.contains_key("chunk_size") {
                self.upload_multipart(object, upload, file, progress, &ctx)
                    .await?;
            } else {
                self.put_file(&upload.href, file, 0, size, progress, &ctx)
                    .await?;
            }
            if let Some(verify) = &actions.verify {
                let url = parse_href(&verify.href, &ctx)?;
                let body = json!({"oid": object.oid, "size": object.size}).to_string();
                let req = self
                    .api_request(Method::POST, url, &ctx)
                    .header("accept", HeaderValue::from_static(LFS_JSON))
                    .body(body, LFS_JSON);
                self.call_discarding(&req).await?;
            }
            Ok(())
        }
        .await;
        self.count(r)
    }

    async fn upload_multipart(
        &self,
        object: &LfsBatchObject,
        upload: &LfsAction,
        file: &Path,
        progress: Option<Arc<ByteProgress>>,
        ctx: &ErrorContext,
    ) -> Result<(), HubError> {
        let chunk_size: u64 = upload
            .header
            .get("chunk_size")
            .and_then(|v| v.trim().parse().ok())
            .filter(|c| *c > 0)
            .ok_or_else(|| HubError::protocol(&ctx.target(), "invalid multipart chunk_size"))?;
        let mut parts: Vec<(u32, String)> = upload
            .header
            .iter()
            .filter_map(|(k, v)| k.parse::<u32>().ok().map(|n| (n, v.clone())))
            .collect();
        parts.sort_by_key(|(n, _)| *n);
        let expected = object.size.div_ceil(chunk_size);
        let numbered = parts
            .iter()
            .enumerate()
            .all(|(i, (n, _))| *n as usize == i + 1);
        if parts.len() as u64 != expected || !numbered {
            return Err(HubError::protocol(
                &ctx.target(),
                format!(
                    "multipart answer has {} part URLs, expected {expected} numbered from 1",
                    parts.len()
                ),
            ));
        }
        let size = object.size;
        let mut completed: Vec<CompletedPart> = futures_util::stream::iter(parts)
            .map(|(n, href)| {
                let offset = u64::from(n - 1) * chunk_size;
                let len = chunk_size.min(size - offset);
                let progress = progress.clone();
                async move {
                    let etag = self
                        .put_file(&href, file, offset, len, progress, ctx)
                        .await?
                        .ok_or_else(|| {
                            HubError::protocol(
                                &ctx.target(),
                                format!("part {n} answer has no ETag"),
                            )
                        })?;
                    Ok::<_, HubError>(CompletedPart {
                        part_number: n,
                        etag,
                    })
                }
            })
            .buffer_unordered(self.inner.config.upload_concurrency.max(1))
            .try_collect()
            .await?;
        completed.sort_by_key(|p| p.part_number);
        let body = MultipartCompletion {
            oid: object.oid.clone(),
            parts: completed,
        };
        let url = parse_href(&upload.href, ctx)?;
        // Assembling the parts can take the server a while: the commit bound, not the API one.
        let req = Request::new(
            Method::POST,
            url,
            Deadline::Total(self.inner.config.commit_timeout),
            ctx.clone(),
        )
        .header("accept", HeaderValue::from_static(LFS_JSON))
        .body(to_json(&body)?, LFS_JSON)
        .auth(Auth::Never);
        self.call_discarding(&req).await
    }

    /// Streams `[offset, offset+len)` of `file` to a presigned URL with `PUT` (no token).
    /// Returns the answer's `ETag`.
    async fn put_file(
        &self,
        href: &str,
        file: &Path,
        offset: u64,
        len: u64,
        progress: Option<Arc<ByteProgress>>,
        ctx: &ErrorContext,
    ) -> Result<Option<String>, HubError> {
        let cfg = &self.inner.config;
        let url = parse_href(href, ctx)?;
        let mut req = Request::new(
            Method::PUT,
            url,
            Deadline::Upload {
                idle: cfg.read_idle_timeout,
                after_body: cfg.api_timeout,
            },
            ctx.clone(),
        )
        .auth(Auth::Never);
        req.body = Body::File {
            path: file.to_path_buf(),
            offset,
            len,
            progress,
        };
        let t = &self.inner.transport;
        let sent = t.send(&req).await?;
        let sent = t.ensure_success(sent, ctx).await?;
        let etag = sent
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        t.read_body(sent, ctx).await?;
        Ok(etag)
    }

    /// `POST /api/{type}s/{repo}/commit/{rev}[?create_pr=1]` with the NDJSON body sent whole.
    /// 412 (branch moved past `parent_commit`) is [`HubError::Conflict`]; a failure after the
    /// Hub may have received the commit is [`HubError::CommitUnknown`]. Only failures where
    /// the Hub surely did nothing (no connection, 429) are retried.
    pub async fn commit(
        &self,
        repo: &RepoRef,
        revision: &str,
        header: CommitHeader,
        ops: Vec<CommitOp>,
        create_pr: bool,
    ) -> Result<CommitResponse, HubError> {
        let ctx = self.repo_ctx(repo, Some(revision), None);
        let r = async {
            let body = commit_body(&header, &ops)?;
            let mut path = format!("{}/commit/{}", repo.api_path(), encode_revision(revision));
            if create_pr {
                path.push_str("?create_pr=1");
            }
            let url = self.url(&path)?;
            let req = Request::new(
                Method::POST,
                url,
                Deadline::Total(self.inner.config.commit_timeout),
                ctx.clone(),
            )
            .body(body, "application/x-ndjson")
            .retry(RetryMode::Safe);
            self.call_json::<CommitResponse>(&req)
                .await
                .map_err(|e| match e {
                    HubError::Network { .. }
                    | HubError::Timeout { .. }
                    | HubError::Server { .. }
                    | HubError::Protocol { .. } => HubError::CommitUnknown {
                        cause: e.to_string(),
                    },
                    other => other,
                })
        }
        .await;
        self.count(r)
    }

    /// Sends `req` (same-origin redirects followed), checks for success, drains the body.
    pub(crate) async fn call_discarding(&self, req: &Request) -> Result<(), HubError> {
        let t = &self.inner.transport;
        let sent = t.send_following(req).await?;
        let sent = t.ensure_success(sent, &req.ctx).await?;
        t.read_body(sent, &req.ctx).await?;
        Ok(())
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, HubError> {
    serde_json::to_string(value)
        .map_err(|e| HubError::invalid(format!("cannot encode the request: {e}")))
}

fn parse_href(href: &str, ctx: &ErrorContext) -> Result<Url, HubError> {
    Url::parse(href).map_err(|_| HubError::protocol(&ctx.target(), "invalid URL in LFS answer"))
}

/// A per-object error of an LFS batch answer as a [`HubError`].
fn lfs_object_error(object: &LfsBatchObject, ctx: &ErrorContext) -> HubError {
    let (code, message) = object
        .error
        .as_ref()
        .map(|e| (e.code, e.message.clone()))
        .unwrap_or_default();
    let message = format!("LFS object {} refused ({code}): {message}", object.oid);
    match code {
        401 | 403 => HubError::Forbidden {
            target: ctx.target(),
            message,
        },
        400 | 404 | 409 | 410 | 413 | 422 => HubError::InvalidInput { message },
        _ => HubError::Server {
            status: code,
            target: ctx.target(),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_body_is_ndjson_in_hub_shapes() {
        let header = CommitHeader {
            summary: "Upload".into(),
            description: String::new(),
            parent_commit: Some("abc1234".into()),
        };
        let ops = vec![
            CommitOp::AddRegular {
                path: "a b.txt".into(),
                content: b"hi".to_vec(),
            },
            CommitOp::AddLfs {
                path: "w.bin".into(),
                sha256: "f".repeat(64),
                size: 7,
            },
            CommitOp::CopyLfs {
                path: "copy.bin".into(),
                sha256: "f".repeat(64),
            },
            CommitOp::DeleteFile {
                path: "old.txt".into(),
            },
            CommitOp::DeleteFolder {
                path: "logs/".into(),
            },
        ];
        let body = commit_body(&header, &ops).unwrap();
        let lines: Vec<serde_json::Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(body.ends_with('\n'));
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[0]["key"], "header");
        assert_eq!(lines[0]["value"]["parentCommit"], "abc1234");
        assert_eq!(lines[1]["value"]["content"], "aGk=");
        assert_eq!(lines[1]["value"]["encoding"], "base64");
        assert_eq!(lines[2]["key"], "lfsFile");
        assert_eq!(lines[2]["value"]["size"], 7);
        assert_eq!(lines[2]["value"]["algo"], "sha256");
        assert!(lines[3]["value"].get("size").is_none());
        assert_eq!(lines[4]["key"], "deletedFile");
        assert_eq!(lines[5]["key"], "deletedFolder");
        assert_eq!(lines[5]["value"]["path"], "logs/");
    }

    #[test]
    fn commit_body_refuses_bad_input() {
        let header = CommitHeader {
            summary: " ".into(),
            description: String::new(),
            parent_commit: None,
        };
        assert!(commit_body(&header, &[]).is_err());
        let header = CommitHeader {
            summary: "x".into(),
            ..header
        };
        let body = commit_body(&header, &[]).unwrap();
        assert!(!body.contains("parentCommit"));
        for bad in ["../x", "a/./b", ".git/config", ""] {
            let op = CommitOp::DeleteFile { path: bad.into() };
            assert!(commit_body(&header, &[op]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn preupload_samples_are_capped() {
        let f = preupload_file("x.bin", &[7u8; 2000], 2000);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&f.sample)
            .unwrap();
        assert_eq!(decoded.len(), SAMPLE_SIZE);
        assert_eq!(f.size, 2000);
    }

    #[test]
    fn lfs_object_errors_map() {
        let obj = |code| LfsBatchObject {
            oid: "o".into(),
            size: 1,
            actions: None,
            error: Some(crate::hub::types::LfsObjectError {
                code,
                message: "m".into(),
            }),
        };
        let ctx = ErrorContext::label("t");
        assert!(matches!(
            lfs_object_error(&obj(403), &ctx),
            HubError::Forbidden { .. }
        ));
        assert!(matches!(
            lfs_object_error(&obj(422), &ctx),
            HubError::InvalidInput { .. }
        ));
        assert!(lfs_object_error(&obj(503), &ctx).is_retryable());
    }
}
