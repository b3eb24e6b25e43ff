//! What the shared tier stores under which name, and the framing that lets a reader tell a
//! stored object from garbage.
//!
//! A key names content, never a file: the blob's digest (the same [`BlobKey`] the local cache
//! uses) plus the byte range, so an entry never goes stale, and two nodes writing one key write
//! the same bytes. The range is part of the key rather than a fixed block index so the key can
//! later name a Xet chunk range the same way (another variant, another object name).
//!
//! An object is the bytes followed by a 16-byte trailer: a magic, the length, and a crc32c over
//! the object's name and the bytes. It catches truncation, bit rot, an object copied under
//! another key, and planted garbage. It cannot stop a writer who computes a valid trailer
//! (nothing without a secret could): such bytes are caught by the whole-file hash, exactly as
//! wrong bytes from the Hub would be (see `read/shared.rs`).

use bytes::Bytes;

use crate::cache::BlobKey;

/// First 8 bytes of the trailer: format name and version.
const MAGIC: &[u8; 8] = b"hubfsSC1";
/// Trailer length: magic, little-endian u32 length, little-endian u32 crc32c.
pub const TRAILER: usize = 16;
/// Version directory under the prefix: a new framing gets a new one, old objects are ignored.
const VERSION_DIR: &str = "hubfs-v1";

/// The name of one shared-tier entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SharedKey {
    /// `len` bytes at `offset` of the content named `blob` (a block of the local cache).
    Range {
        blob: BlobKey,
        offset: u64,
        len: u32,
    },
}

impl SharedKey {
    pub fn blob(&self) -> &BlobKey {
        match self {
            SharedKey::Range { blob, .. } => blob,
        }
    }

    /// The entry's length in bytes (its object is this plus the trailer).
    pub fn data_len(&self) -> usize {
        match self {
            SharedKey::Range { len, .. } => *len as usize,
        }
    }

    /// The object name under `prefix` (no leading or trailing slash; may be empty).
    pub fn object_name(&self, prefix: &str) -> String {
        match self {
            SharedKey::Range { offset, len, .. } => {
                format!("{}{offset}+{len}", blob_dir(prefix, self.blob()))
            }
        }
    }
}

/// The directory holding every entry of one blob (ends with '/'): what a purge lists.
pub fn blob_dir(prefix: &str, blob: &BlobKey) -> String {
    let sep = if prefix.is_empty() { "" } else { "/" };
    format!("{prefix}{sep}{VERSION_DIR}/{}/{blob}/", blob.kind_name())
}

fn checksum(name: &str, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(name.as_bytes()), data)
}

/// The trailer to store after `data` under `name`.
pub fn trailer(name: &str, data: &[u8]) -> Bytes {
    let mut t = Vec::with_capacity(TRAILER);
    t.extend_from_slice(MAGIC);
    t.extend_from_slice(&(data.len() as u32).to_le_bytes());
    t.extend_from_slice(&checksum(name, data).to_le_bytes());
    Bytes::from(t)
}

/// The bytes of an object read back under `name` for `key`, if it is what a node stored there.
pub fn unframe(key: &SharedKey, name: &str, object: Bytes) -> Option<Bytes> {
    let want = key.data_len();
    if object.len() != want + TRAILER {
        return None;
    }
    let (data, t) = object.split_at(want);
    let len = u32::from_le_bytes(t[8..12].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(t[12..16].try_into().ok()?);
    if &t[..8] != MAGIC || len != want || crc != checksum(name, data) {
        return None;
    }
    Some(object.slice(..want))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(offset: u64, len: u32) -> SharedKey {
        let blob = BlobKey::sha256_hex(&"ab".repeat(32)).unwrap();
        SharedKey::Range { blob, offset, len }
    }

    fn framed(name: &str, data: &[u8]) -> Bytes {
        let mut v = data.to_vec();
        v.extend_from_slice(&trailer(name, data));
        Bytes::from(v)
    }

    #[test]
    fn names_are_content_addressed_and_grouped_by_blob() {
        let k = key(131072, 4096);
        let name = k.object_name("cache/hf");
        assert_eq!(
            name,
            format!("cache/hf/hubfs-v1/sha256/{}/131072+4096", "ab".repeat(32))
        );
        assert!(name.starts_with(&blob_dir("cache/hf", k.blob())));
        assert!(k.object_name("").starts_with("hubfs-v1/sha256/"));
    }

    #[test]
    fn round_trip_and_every_kind_of_damage_is_refused() {
        let k = key(0, 5);
        let name = k.object_name("p");
        let good = framed(&name, b"hello");
        assert_eq!(
            unframe(&k, &name, good.clone()).as_deref(),
            Some(&b"hello"[..])
        );
        // A flipped byte, a truncation, garbage of the right length, another key's object.
        let mut flipped = good.to_vec();
        flipped[1] ^= 1;
        assert!(unframe(&k, &name, Bytes::from(flipped)).is_none());
        assert!(unframe(&k, &name, good.slice(..good.len() - 1)).is_none());
        assert!(unframe(&k, &name, Bytes::from(vec![7u8; 5 + TRAILER])).is_none());
        let other = key(5, 5);
        let other_name = other.object_name("p");
        assert!(unframe(&other, &other_name, good).is_none());
    }
}
