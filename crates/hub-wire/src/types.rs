//! Wire types of the Hub's JSON API (hub-api.md §4–6), in the Hub's exact field names.
//!
//! The emulator serializes them and the client deserializes them, so both sides share one
//! definition. Optional fields are skipped when absent, as on the Hub; unknown fields sent by
//! the Hub are ignored by the client.

use serde::{Deserialize, Serialize};

/// `lfs` object of a tree / paths-info entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LfsInfo {
    /// sha256 of the content, lower-case hex.
    pub oid: String,
    /// Real size of the content.
    pub size: u64,
    #[serde(rename = "pointerSize")]
    pub pointer_size: u64,
}

/// `lastCommit` of an expanded tree entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCommit {
    pub id: String,
    pub title: String,
    /// ISO-8601 with milliseconds and `Z`.
    pub date: String,
}

/// One entry of `/tree/` and `/paths-info/` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    /// `"file"` or `"directory"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Git object id: blob sha1 (of the LFS pointer for LFS files) or tree sha1. Empty for
    /// bucket entries (no git: their identity is `xetHash`).
    #[serde(default)]
    pub oid: String,
    /// Real size for files (equal to `lfs.size` for LFS files), 0 for directories (buckets
    /// omit it for directories).
    #[serde(default)]
    pub size: u64,
    /// Path relative to the repo root.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lfs: Option<LfsInfo>,
    /// Xet file hash (64 hex, Xet's word-reordered form) of an LFS file stored in Xet.
    #[serde(default, rename = "xetHash", skip_serializing_if = "Option::is_none")]
    pub xet_hash: Option<String>,
    #[serde(
        default,
        rename = "lastCommit",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_commit: Option<LastCommit>,
    #[serde(
        default,
        rename = "securityFileStatus",
        skip_serializing_if = "Option::is_none"
    )]
    pub security_file_status: Option<serde_json::Value>,
}

impl TreeEntry {
    pub fn is_dir(&self) -> bool {
        self.kind == "directory"
    }

    /// Size of the content a reader sees (prefers `lfs.size`, see hub-api.md §4.2).
    pub fn content_size(&self) -> u64 {
        self.lfs.as_ref().map_or(self.size, |l| l.size)
    }
}

/// `lfs` object of a sibling in repo info with `blobs=true` (note `sha256`, not `oid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiblingLfs {
    pub sha256: String,
    pub size: u64,
    #[serde(rename = "pointerSize")]
    pub pointer_size: u64,
}

/// One file of repo info `siblings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sibling {
    pub rfilename: String,
    #[serde(default, rename = "blobId", skip_serializing_if = "Option::is_none")]
    pub blob_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lfs: Option<SiblingLfs>,
}

/// Repo info: `GET /api/{type}s/{repo}[/revision/{rev}]`. Only the fields hubfs and the
/// official client rely on are typed; the emulator adds type-specific extras as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoInfo {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub mongo_id: Option<String>,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Commit the revision resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    #[serde(
        default,
        rename = "lastModified",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_modified: Option<String>,
    #[serde(default, rename = "createdAt", skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default)]
    pub private: bool,
    /// `false`, `"auto"` or `"manual"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gated: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub siblings: Option<Vec<Sibling>>,
    /// Everything else (downloads, likes, tags, sdk, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One ref of `GET /api/{type}s/{repo}/refs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitRef {
    pub name: String,
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(rename = "targetCommit")]
    pub target_commit: String,
}

/// `GET /api/{type}s/{repo}/refs[?include_prs=1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refs {
    pub branches: Vec<GitRef>,
    pub tags: Vec<GitRef>,
    #[serde(default)]
    pub converts: Vec<GitRef>,
    #[serde(
        default,
        rename = "pullRequests",
        skip_serializing_if = "Option::is_none"
    )]
    pub pull_requests: Option<Vec<GitRef>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitAuthor {
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

/// One item of `GET /api/{type}s/{repo}/commits/{rev}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    pub id: String,
    pub title: String,
    pub message: String,
    pub authors: Vec<CommitAuthor>,
    pub date: String,
}

/// One file of a preupload request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreuploadFile {
    pub path: String,
    /// Base64 of the first ≤ 512 bytes.
    pub sample: String,
    pub size: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreuploadRequest {
    pub files: Vec<PreuploadFile>,
    #[serde(default, rename = "gitIgnore", skip_serializing_if = "Option::is_none")]
    pub git_ignore: Option<String>,
    #[serde(
        default,
        rename = "gitAttributes",
        skip_serializing_if = "Option::is_none"
    )]
    pub git_attributes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreuploadAnswer {
    pub path: String,
    /// `"lfs"` or `"regular"`.
    #[serde(rename = "uploadMode")]
    pub upload_mode: String,
    #[serde(rename = "shouldIgnore")]
    pub should_ignore: bool,
    /// Present when the path exists at the revision: git sha1 (regular) or sha256 (LFS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreuploadResponse {
    pub files: Vec<PreuploadAnswer>,
    #[serde(default, rename = "commitOid", skip_serializing_if = "Option::is_none")]
    pub commit_oid: Option<String>,
}

/// An object of an LFS batch request or answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LfsObject {
    pub oid: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LfsRefName {
    pub name: String,
}

/// `POST /{prefix}{repo}.git/info/lfs/objects/batch` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LfsBatchRequest {
    pub operation: String,
    #[serde(default)]
    pub transfers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_algo: Option<String>,
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<LfsRefName>,
    pub objects: Vec<LfsObject>,
}

/// One action (`upload` / `verify`) of an LFS batch answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LfsAction {
    pub href: String,
    /// For multipart uploads: `chunk_size` plus zero-padded part numbers → part URLs.
    #[serde(default)]
    pub header: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LfsActions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<LfsAction>,
    /// Answer to a `download` batch: where to GET the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<LfsAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<LfsAction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LfsObjectError {
    pub code: u16,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LfsBatchObject {
    pub oid: String,
    pub size: u64,
    /// Absent when the object is already stored: nothing to upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<LfsActions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<LfsObjectError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LfsBatchResponse {
    /// `"basic"` or `"multipart"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<String>,
    pub objects: Vec<LfsBatchObject>,
}

/// One part of a multipart completion body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedPart {
    #[serde(rename = "partNumber")]
    pub part_number: u32,
    pub etag: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartCompletion {
    pub oid: String,
    pub parts: Vec<CompletedPart>,
}

/// Answer of `POST /api/{type}s/{repo}/commit/{rev}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitResponse {
    pub success: bool,
    #[serde(rename = "commitOid")]
    pub commit_oid: String,
    #[serde(rename = "commitUrl")]
    pub commit_url: String,
    #[serde(default, rename = "hookOutput")]
    pub hook_output: String,
    #[serde(
        default,
        rename = "pullRequestUrl",
        skip_serializing_if = "Option::is_none"
    )]
    pub pull_request_url: Option<String>,
}

/// The subset of `GET /api/whoami-v2` that hubfs reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhoAmI {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub orgs: Vec<serde_json::Value>,
    #[serde(default)]
    pub auth: serde_json::Value,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl WhoAmI {
    /// `auth.accessToken.role`: `read`, `write` or `fineGrained`.
    pub fn token_role(&self) -> Option<&str> {
        self.auth.get("accessToken")?.get("role")?.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_entry_uses_hub_field_names() {
        let json = r#"{"type":"file","oid":"abc","size":10,"path":"m.bin",
            "lfs":{"oid":"def","size":10,"pointerSize":130},"xetHash":"zzz"}"#;
        let e: TreeEntry = serde_json::from_str(json).unwrap();
        assert!(!e.is_dir());
        assert_eq!(e.lfs.as_ref().unwrap().pointer_size, 130);
        let back = serde_json::to_value(&e).unwrap();
        assert_eq!(back["lfs"]["pointerSize"], 130);
        assert!(back.get("lastCommit").is_none());
    }
}
