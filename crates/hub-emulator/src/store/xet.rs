//! The Xet store behind the emulator's CAS (issue 11): one xet-core `LocalClient` under
//! `<data>/cas`, which owns every format (xorbs with footers, shards, the global-dedup and
//! file tables, reconstruction plans), plus what the Hub side needs and xet-core does not keep:
//! the index `sha256 -> (xet file hash, size)` built from the `metadata_ext` of accepted shards
//! (and from LFS objects migrated into the store), persisted as an append-only JSON-lines file.
//!
//! Layout: `<data>/cas/xet/xorbs/` is the `LocalClient` root (the path xet-data's
//! `TranslatorConfig::local_config(<data>/cas)` uses, so an in-process `FileUploadSession`
//! writes into the same store); xorb files are `…/xorbs/default.<hash>` (checked by a test, as
//! the crate keeps that path private); `<data>/cas/index.jsonl` is our index;
//! `<data>/cas/staging/` holds bytes PUT to upload grants until their commit.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use xet_client::cas_client::{Client, DirectAccessClient, LocalClient};
use xet_client::cas_types::{
    FileChunkHashesResponse, FileRange, QueryReconstructionResponse, QueryReconstructionResponseV2,
};
use xet_client::ClientError;
use xet_core_structures::merklehash::MerkleHash;
use xet_core_structures::metadata_shard::streaming_shard::MDBMinimalShard;
use xet_core_structures::xorb_object::SerializedXorbObject;
use xet_data::file_reconstruction::FileReconstructor;
use xet_data::processing::configurations::TranslatorConfig;
use xet_data::processing::{FileUploadSession, Sha256Policy};
use xet_runtime::config::XetConfig;
use xet_runtime::core::XetContext;

/// Why a CAS operation failed, mapped to HTTP statuses by the routes.
#[derive(Debug, thiserror::Error)]
pub enum XetError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("range not satisfiable")]
    Range,
    #[error("bad request: {0}")]
    Bad(String),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("xet store: {0}")]
    Other(String),
}

impl From<ClientError> for XetError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::XORBNotFound(h) => XetError::NotFound(format!("xorb {}", h.hex())),
            ClientError::FileNotFound(h) => XetError::NotFound(format!("file {}", h.hex())),
            ClientError::InvalidRange => XetError::Range,
            ClientError::InvalidArguments => XetError::Bad("invalid arguments".into()),
            other => XetError::Other(other.to_string()),
        }
    }
}

pub type XetResult<T> = Result<T, XetError>;

/// A Xet file the Hub knows: its hash, size and (for files uploaded with a sha256, i.e. repo
/// files, not bucket files) the sha256 that commits name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XetFile {
    pub xet: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

#[derive(Default)]
struct Index {
    by_sha: HashMap<String, XetFile>,
    by_xet: HashMap<String, XetFile>,
}

impl Index {
    fn add(&mut self, f: XetFile) {
        if let Some(sha) = &f.sha256 {
            self.by_sha.insert(sha.clone(), f.clone());
        }
        match self.by_xet.get(&f.xet) {
            // A later record without sha256 (bucket upload of the same bytes) keeps the link.
            Some(old) if old.sha256.is_some() && f.sha256.is_none() => {}
            _ => {
                self.by_xet.insert(f.xet.clone(), f);
            }
        }
    }
}

pub struct XetStore {
    ctx: XetContext,
    client: Arc<LocalClient>,
    root: PathBuf,
    xorb_dir: PathBuf,
    staging: PathBuf,
    index: RwLock<Index>,
    /// Append handle of `index.jsonl` (one writer at a time).
    index_log: Mutex<File>,
}

/// Parses a Xet hash in its wire form (`MerkleHash::hex`).
pub fn parse_hash(s: &str) -> XetResult<MerkleHash> {
    MerkleHash::from_hex(s).map_err(|_| XetError::Bad(format!("invalid hash {s:?}")))
}

impl XetStore {
    /// Opens (or creates) the store under `<data>/cas`, running xet-core on the current tokio
    /// runtime (no thread pool of its own).
    pub async fn open(data: &Path) -> io::Result<Arc<XetStore>> {
        let root = data.join("cas");
        let client_root = root.join("xet").join("xorbs");
        let staging = root.join("staging");
        fs::create_dir_all(&client_root)?;
        // Leftovers of grants never committed are garbage.
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging)?;
        let handle = tokio::runtime::Handle::current();
        // Defaults, not the environment: `HF_XET_*` variables set for the clients under test
        // must not change how the server side stores or plans.
        let ctx = XetContext::from_external(handle, XetConfig::default());
        let client = LocalClient::new(ctx.clone(), &client_root)
            .await
            .map_err(|e| io::Error::other(format!("xet LocalClient: {e}")))?;
        let index_path = root.join("index.jsonl");
        let mut index = Index::default();
        if let Ok(f) = File::open(&index_path) {
            for line in BufReader::new(f).lines() {
                let line = line?;
                // A torn last line (crash mid-append) is skipped.
                if let Ok(rec) = serde_json::from_str::<XetFile>(&line) {
                    index.add(rec);
                }
            }
        }
        let index_log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&index_path)?;
        Ok(Arc::new(XetStore {
            ctx,
            client,
            root,
            xorb_dir: client_root.join("xorbs"),
            staging,
            index: RwLock::new(index),
            index_log: Mutex::new(index_log),
        }))
    }

    pub fn client(&self) -> &Arc<LocalClient> {
        &self.client
    }

    pub fn context(&self) -> &XetContext {
        &self.ctx
    }

    fn record(&self, f: XetFile) -> io::Result<()> {
        {
            let idx = self.index.read();
            let known = idx.by_xet.get(&f.xet);
            if known == Some(&f) || (known.is_some() && f.sha256.is_none()) {
                return Ok(());
            }
        }
        let mut line = serde_json::to_vec(&f).map_err(io::Error::other)?;
        line.push(b'\n');
        self.index_log.lock().write_all(&line)?;
        self.index.write().add(f);
        Ok(())
    }

    /// The Xet file uploaded with this sha256 (lowercase hex), if any.
    pub fn by_sha256(&self, sha: &str) -> Option<XetFile> {
        self.index.read().by_sha.get(sha).cloned()
    }

    /// A Xet file known by its hash (any shard accepted by this CAS that named it).
    pub fn by_xet(&self, xet: &str) -> Option<XetFile> {
        self.index.read().by_xet.get(xet).cloned()
    }

    /// Whether a Xet file with this hash exists in the CAS (for bucket `addFile` checks).
    pub async fn file_exists(&self, hash: &MerkleHash) -> bool {
        self.by_xet(&hash.hex()).is_some() || self.file_size(hash).await.is_ok()
    }

    pub async fn file_size(&self, hash: &MerkleHash) -> XetResult<u64> {
        Ok(self.client.get_file_size(hash).await?)
    }

    // ---- xorbs ----

    /// Where a stored xorb (with footer) lives; served by range straight from this file.
    pub fn xorb_path(&self, hash: &MerkleHash) -> PathBuf {
        self.xorb_dir.join(format!("default.{}", hash.hex()))
    }

    pub async fn xorb_exists(&self, hash: &MerkleHash) -> XetResult<bool> {
        Ok(self.client.xorb_exists(hash).await?)
    }

    /// Stores a xorb as clients send it (chunks, no footer): xet-core rebuilds the footer and
    /// refuses data whose hash is not `hash`. Returns whether it was new.
    pub async fn upload_xorb(
        &self,
        prefix: &str,
        hash: MerkleHash,
        data: Bytes,
    ) -> XetResult<bool> {
        let existed = self.xorb_exists(&hash).await?;
        validate_chunks(hash, &data)?;
        let obj = SerializedXorbObject {
            hash,
            raw_num_bytes: data.len() as u64,
            serialized_data: data.to_vec(),
            num_chunks: 0,
            footer_start: None,
        };
        let permit = self.client.acquire_upload_permit().await?;
        self.client.upload_xorb(prefix, obj, None, permit).await?;
        Ok(!existed)
    }

    /// Staging file of an upload grant (bytes PUT to the grant URL before its commit).
    pub fn staging_path(&self, grant: &str) -> XetResult<PathBuf> {
        if grant.is_empty()
            || !grant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(XetError::NotFound("upload grant".into()));
        }
        Ok(self.staging.join(grant))
    }

    /// Commits the bytes staged for `grant` as xorb `hash`.
    pub async fn commit_grant(
        &self,
        prefix: &str,
        hash: MerkleHash,
        grant: &str,
    ) -> XetResult<bool> {
        let path = self.staging_path(grant)?;
        let data = match tokio::fs::read(&path).await {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if self.xorb_exists(&hash).await? {
                    return Ok(false);
                }
                return Err(XetError::NotFound("no uploaded data for this grant".into()));
            }
            Err(e) => return Err(e.into()),
        };
        let inserted = self.upload_xorb(prefix, hash, Bytes::from(data)).await?;
        let _ = fs::remove_file(&path);
        Ok(inserted)
    }

    // ---- shards ----

    /// Accepts a shard: refuses one naming a xorb this CAS does not hold, stores it through
    /// xet-core (dedup and file tables), and indexes its files (sha256 from `metadata_ext`).
    /// Returns the stored shard's hash.
    pub async fn upload_shard(&self, data: Bytes) -> XetResult<Option<MerkleHash>> {
        let shard = MDBMinimalShard::from_reader(&mut Cursor::new(&data[..]), true, true)
            .map_err(|e| XetError::Bad(format!("invalid shard: {e}")))?;
        for i in 0..shard.num_xorb() {
            if let Some(x) = shard.xorb(i) {
                let h = x.xorb_hash();
                if !self.xorb_exists(&h).await? {
                    return Err(XetError::Bad(format!(
                        "shard names unknown xorb {}",
                        h.hex()
                    )));
                }
            }
        }
        let files: Vec<(MerkleHash, Option<String>)> = (0..shard.num_files())
            .filter_map(|i| shard.file(i))
            .map(|f| (f.file_hash(), f.metadata_ext().map(|m| m.sha256.hex())))
            .collect();
        let permit = self.client.acquire_upload_permit().await?;
        let stored = self.client.upload_shard(data, permit, None).await?;
        for (hash, sha256) in files {
            let size = self.file_size(&hash).await?;
            self.record(XetFile {
                xet: hash.hex(),
                size,
                sha256,
            })?;
        }
        Ok(stored)
    }

    /// Global dedup: the shard holding `chunk`, if any.
    pub async fn dedup_query(&self, prefix: &str, chunk: &MerkleHash) -> XetResult<Option<Bytes>> {
        Ok(self
            .client
            .query_for_global_dedup_shard(prefix, chunk)
            .await?)
    }

    // ---- reconstruction ----

    /// Resolves an HTTP `Range` header against a file: `None` = whole file. A file this CAS
    /// does not know is `NotFound` (whatever the range).
    pub async fn file_range(
        &self,
        hash: &MerkleHash,
        range: Option<&str>,
    ) -> XetResult<Option<FileRange>> {
        let size = self
            .file_size(hash)
            .await
            .map_err(|_| XetError::NotFound(format!("file {}", hash.hex())))?;
        let Some(spec) = range.map(str::trim) else {
            return Ok(None);
        };
        let spec = spec
            .strip_prefix("bytes=")
            .ok_or_else(|| XetError::Bad("bad Range".into()))?;
        let (a, b) = spec.split_once('-').ok_or(XetError::Range)?;
        let (a, b) = (a.trim(), b.trim());
        let r = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
            (None, Some(n)) if a.is_empty() => FileRange::new(size.saturating_sub(n), size),
            (Some(s), None) if b.is_empty() => FileRange::new(s, size),
            (Some(s), Some(e)) if s <= e => FileRange::new(s, e.saturating_add(1).min(size)),
            _ => return Err(XetError::Range),
        };
        if r.start >= size || r.start >= r.end {
            return Err(XetError::Range);
        }
        Ok(Some(r))
    }

    pub async fn reconstruction_v1(
        &self,
        hash: &MerkleHash,
        range: Option<FileRange>,
    ) -> XetResult<QueryReconstructionResponse> {
        self.client
            .get_reconstruction_v1(hash, range)
            .await?
            .ok_or(XetError::Range)
    }

    pub async fn reconstruction_v2(
        &self,
        hash: &MerkleHash,
        range: Option<FileRange>,
    ) -> XetResult<QueryReconstructionResponseV2> {
        self.client
            .get_reconstruction_v2(hash, range)
            .await?
            .ok_or(XetError::Range)
    }

    /// Chunk-hash summary for a partial re-upload (`upload_ranges`), narrowed to `dirty`.
    pub async fn file_chunk_hashes(
        &self,
        hash: &MerkleHash,
        dirty: Vec<FileRange>,
    ) -> XetResult<FileChunkHashesResponse> {
        Ok(self.client.get_file_chunk_hashes(hash, dirty).await?)
    }

    /// Streams bytes `[range)` of a Xet file, reassembled in-process (the bridge's source).
    pub fn read_stream(
        &self,
        hash: MerkleHash,
        range: FileRange,
    ) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static {
        let client: Arc<dyn Client> = self.client.clone();
        let stream = FileReconstructor::new(&self.ctx, &client, hash)
            .with_byte_range(range)
            .reconstruct_to_stream();
        futures_util::stream::unfold(Some(stream), |st| async move {
            let mut s = st?;
            match s.next().await {
                Ok(Some(b)) => Some((Ok(b), Some(s))),
                Ok(None) => None,
                Err(e) => Some((Err(io::Error::other(e.to_string())), None)),
            }
        })
    }

    /// Migrates an LFS object into the store (as the Hub does for LFS uploads): chunks it
    /// through xet-data's upload session (deduplicated against everything stored), links its
    /// sha256 and returns the Xet file.
    pub async fn ingest(&self, path: &Path, sha256: &str, size: u64) -> XetResult<XetFile> {
        if let Some(f) = self.by_sha256(sha256) {
            return Ok(f);
        }
        let cfg = TranslatorConfig::local_config(&self.ctx, &self.root)
            .map_err(|e| XetError::Other(e.to_string()))?;
        let session = FileUploadSession::new(Arc::new(cfg))
            .await
            .map_err(|e| XetError::Other(e.to_string()))?;
        let infos = session
            .upload_files([(path, Sha256Policy::from_hex(sha256))])
            .await
            .map_err(|e| XetError::Other(e.to_string()))?;
        session
            .finalize()
            .await
            .map_err(|e| XetError::Other(e.to_string()))?;
        let info = infos
            .into_iter()
            .next()
            .ok_or_else(|| XetError::Other("upload session returned no file".into()))?;
        let f = XetFile {
            xet: info.hash,
            size,
            sha256: Some(sha256.to_string()),
        };
        self.record(f.clone())?;
        Ok(f)
    }
}

/// Checks that `data` is exactly a chunk sequence (no footer, nothing trailing) hashing to
/// `hash`, as the CAS does before storing a client's xorb.
fn validate_chunks(hash: MerkleHash, data: &[u8]) -> XetResult<()> {
    let (obj, computed) =
        xet_core_structures::xorb_object::reconstruct_xorb_with_footer(&mut Vec::new(), data)
            .map_err(|e| XetError::Bad(format!("invalid xorb: {e}")))?;
    let len = obj
        .get_contents_length()
        .map_err(|e| XetError::Bad(format!("invalid xorb: {e}")))?;
    if len as usize != data.len() {
        return Err(XetError::Bad(
            "xorb must be a chunk sequence without footer or trailing bytes".into(),
        ));
    }
    if computed != hash {
        return Err(XetError::Bad(format!(
            "xorb hash mismatch: expected {}, got {}",
            hash.hex(),
            computed.hex()
        )));
    }
    Ok(())
}
