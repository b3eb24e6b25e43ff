//! Content identity of a blob: the key under which the block cache stores its bytes.
//!
//! LFS (and Xet-backed) files are named by the sha256 of their content (`lfs.oid` in tree
//! listings), regular files by their git blob sha1 (`oid`). Both are digests of the content, so
//! the same file in two revisions or two repos maps to one key and is fetched once.

use std::fmt;

use sha1::Digest as _;
use xet_core_structures::merklehash::MerkleHash;

use crate::hub::types::TreeEntry;

/// Content identity of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlobKey {
    /// sha256 of the content (LFS / Xet files).
    Sha256([u8; 32]),
    /// git blob sha1 (`sha1("blob {size}\0" + content)`) of a regular file.
    GitSha1([u8; 20]),
    /// Xet file hash (the Merkle hash of its content-defined chunks) of a bucket file, which
    /// has no sha256 and no git id. Bytes as `MerkleHash` holds them; printed in Xet's
    /// word-reordered hex, as the Hub shows it (`xetHash`).
    Xet([u8; 32]),
}

/// A string that is not a digest of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} digest {value:?}: expected {len} hex characters")]
pub struct BlobKeyError {
    kind: &'static str,
    len: usize,
    value: String,
}

impl BlobKey {
    /// Parses a sha256 digest (64 hex characters, either case).
    pub fn sha256_hex(s: &str) -> Result<Self, BlobKeyError> {
        parse_hex::<32>(s, "sha256").map(BlobKey::Sha256)
    }

    /// Parses a git blob sha1 (40 hex characters, either case).
    pub fn git_sha1_hex(s: &str) -> Result<Self, BlobKeyError> {
        parse_hex::<20>(s, "git sha1").map(BlobKey::GitSha1)
    }

    /// Parses a Xet file hash as the Hub prints it (`xetHash`, 64 hex).
    pub fn xet_hex(s: &str) -> Result<Self, BlobKeyError> {
        xet_core_structures::merklehash::MerkleHash::from_hex(s)
            .map(|h| {
                let mut d = [0u8; 32];
                d.copy_from_slice(h.as_bytes());
                BlobKey::Xet(d)
            })
            .map_err(|_| BlobKeyError {
                kind: "xet",
                len: 64,
                value: s.chars().take(80).collect(),
            })
    }

    /// The key of a file entry of a tree listing: `lfs.oid` when present, else the git `oid`.
    pub fn for_tree_entry(entry: &TreeEntry) -> Result<Self, BlobKeyError> {
        match &entry.lfs {
            Some(lfs) => Self::sha256_hex(&lfs.oid),
            None => Self::git_sha1_hex(&entry.oid),
        }
    }

    /// The raw digest bytes (32 for sha256, 20 for sha1).
    pub fn digest(&self) -> &[u8] {
        match self {
            BlobKey::Sha256(d) => d,
            BlobKey::GitSha1(d) => d,
            BlobKey::Xet(d) => d,
        }
    }

    /// Short name of the digest kind, used in file names (`sha256` / `sha1`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            BlobKey::Sha256(_) => "sha256",
            BlobKey::GitSha1(_) => "sha1",
            BlobKey::Xet(_) => "xet",
        }
    }

    /// Inverse of [`BlobKey::kind_name`] + hex digest.
    pub(crate) fn from_kind_hex(kind: &str, hex: &str) -> Option<Self> {
        match kind {
            "sha256" => Self::sha256_hex(hex).ok(),
            "sha1" => Self::git_sha1_hex(hex).ok(),
            "xet" => Self::xet_hex(hex).ok(),
            _ => None,
        }
    }

    /// 64 well-mixed bits for sharding: the key is already a cryptographic digest.
    pub(crate) fn shard_bits(&self) -> u64 {
        let d = self.digest();
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        u64::from_le_bytes(b)
    }
}

fn parse_hex<const N: usize>(s: &str, kind: &'static str) -> Result<[u8; N], BlobKeyError> {
    let mut out = [0u8; N];
    match hex::decode_to_slice(s, &mut out) {
        Ok(()) => Ok(out),
        Err(_) => Err(BlobKeyError {
            kind,
            len: 2 * N,
            value: s.chars().take(80).collect(),
        }),
    }
}

/// Lower-case hex of the digest, as the Hub prints it.
impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let BlobKey::Xet(d) = self {
            return f.write_str(&xet_core_structures::merklehash::MerkleHash::from(*d).hex());
        }
        for b in self.digest() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Hashes content the way its key was computed (sha256, or git's blob sha1), to check bytes
/// against their key as they stream.
pub enum ContentHasher {
    Sha256(sha2::Sha256),
    GitSha1(sha1::Sha1),
    /// Xet's content-defined chunker and the (chunk hash, length) list its file hash is
    /// computed from (a few dozen bytes per 64 KiB chunk).
    Xet(
        Box<xet_data::deduplication::Chunker>,
        Vec<(MerkleHash, u64)>,
    ),
}

impl ContentHasher {
    pub fn new(key: &BlobKey, blob_size: u64) -> Self {
        match key {
            BlobKey::Sha256(_) => ContentHasher::Sha256(sha2::Sha256::new()),
            BlobKey::GitSha1(_) => {
                // A git blob id hashes a "blob <size>\0" header before the content.
                let mut h = sha1::Sha1::new();
                h.update(format!("blob {blob_size}\0").as_bytes());
                ContentHasher::GitSha1(h)
            }
            BlobKey::Xet(_) => ContentHasher::Xet(Box::default(), Vec::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            ContentHasher::Sha256(h) => h.update(data),
            ContentHasher::GitSha1(h) => h.update(data),
            ContentHasher::Xet(chunker, chunks) => {
                for c in chunker.next_block(data, false) {
                    chunks.push((c.hash, c.data.len() as u64));
                }
            }
        }
    }

    pub fn matches(self, key: &BlobKey) -> bool {
        match self {
            ContentHasher::Sha256(h) => h.finalize().as_slice() == key.digest(),
            ContentHasher::GitSha1(h) => h.finalize().as_slice() == key.digest(),
            ContentHasher::Xet(mut chunker, mut chunks) => {
                if let Some(c) = chunker.finish() {
                    chunks.push((c.hash, c.data.len() as u64));
                }
                xet_core_structures::merklehash::file_hash(&chunks).as_bytes() == key.digest()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const SHA1: &str = "30d74d258442c7c65512eafab474568dd706c430";

    #[test]
    fn parses_and_prints_lower_hex() {
        let k = BlobKey::sha256_hex(&SHA256.to_uppercase()).unwrap();
        assert_eq!(k.to_string(), SHA256);
        assert_eq!(k.kind_name(), "sha256");
        let g = BlobKey::git_sha1_hex(SHA1).unwrap();
        assert_eq!(g.to_string(), SHA1);
        assert_eq!(g.digest().len(), 20);
        assert_eq!(BlobKey::from_kind_hex("sha1", SHA1), Some(g));
        assert_eq!(BlobKey::from_kind_hex("md5", SHA1), None);
    }

    #[test]
    fn xet_keys_print_as_the_hub_and_hash_content_like_xet() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let chunks: Vec<(MerkleHash, u64)> = xet_data::deduplication::Chunker::default()
            .next_block(&data, true)
            .into_iter()
            .map(|c| (c.hash, c.data.len() as u64))
            .collect();
        let hex = xet_core_structures::merklehash::file_hash(&chunks).hex();
        let key = BlobKey::xet_hex(&hex).unwrap();
        assert_eq!(key.to_string(), hex);
        assert_eq!(BlobKey::from_kind_hex("xet", &hex), Some(key));
        // Fed in odd pieces, as a stream arrives.
        let mut h = ContentHasher::new(&key, data.len() as u64);
        for piece in data.chunks(4097) {
            h.update(piece);
        }
        assert!(h.matches(&key));
        let mut h = ContentHasher::new(&key, data.len() as u64);
        h.update(&data[1..]);
        assert!(!h.matches(&key));
    }

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        assert!(BlobKey::sha256_hex(SHA1).is_err());
        assert!(BlobKey::git_sha1_hex(SHA256).is_err());
        assert!(BlobKey::git_sha1_hex(&SHA1.replace('3', "g")).is_err());
        let err = BlobKey::sha256_hex("").unwrap_err();
        assert!(err.to_string().contains("64 hex"), "{err}");
    }

    #[test]
    fn tree_entry_prefers_lfs_oid() {
        let mut e: TreeEntry = serde_json::from_value(serde_json::json!({
            "type": "file", "oid": SHA1, "size": 4, "path": "a.bin",
            "lfs": {"oid": SHA256, "size": 4, "pointerSize": 130}
        }))
        .unwrap();
        assert_eq!(
            BlobKey::for_tree_entry(&e).unwrap(),
            BlobKey::sha256_hex(SHA256).unwrap()
        );
        e.lfs = None;
        assert_eq!(
            BlobKey::for_tree_entry(&e).unwrap(),
            BlobKey::git_sha1_hex(SHA1).unwrap()
        );
    }
}
