//! What the shared tier stores under which name, and the framing that lets a reader tell a
//! stored object from garbage, a piece at a time.
//!
//! A key names content, never a file: the blob's digest (the same [`BlobKey`] the local cache
//! uses) plus the byte range, so an entry never goes stale, and two nodes writing one key write
//! the same bytes. An entry is a *segment*: a run of consecutive cache blocks (a few MiB), so a
//! node reading from the tier makes one request per segment, not one per 128 KiB block. The
//! range is part of the key rather than a segment index so the key can later name a Xet chunk
//! range the same way (another variant, another object name).
//!
//! An object is its blocks, each followed by a 4-byte crc32c over a magic, the object's name,
//! the block's index in the segment and the block's bytes ("frames"). Every frame checks on its
//! own, so a reader may ask for any run of frames with one ranged GET and deliver each block as
//! soon as it is checked. It catches truncation (a short body), bit rot, an object (or a frame)
//! copied under another name or index, and planted garbage. It cannot stop a writer who
//! computes valid crcs (nothing without a secret could): such bytes are caught by the
//! whole-file hash, exactly as wrong bytes from the Hub would be (see `read/shared.rs`).

use std::ops::Range;

use bytes::Bytes;

use crate::cache::BlobKey;

/// Mixed into every frame's crc: the format's name and version.
const MAGIC: &[u8; 8] = b"hubfsSC2";
/// Bytes after each block: its crc32c.
pub const FRAME_CRC: usize = 4;
/// Version directory under the prefix: a new framing gets a new one, old objects are ignored
/// (v1 held one 128 KiB block per object with a trailer).
const VERSION_DIR: &str = "hubfs-v2";
/// Where claims live (`claim.rs`): apart from the entries, so a listing of entries (a purge)
/// never meets one.
const CLAIM_DIR: &str = "hubfs-claims";

/// The name of one shared-tier entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SharedKey {
    /// `len` bytes at `offset` of the content named `blob`, framed in blocks of `block` bytes
    /// (the local cache's block size: part of the name, so nodes with another block size
    /// never misread an entry).
    Range {
        blob: BlobKey,
        offset: u64,
        len: u32,
        block: u32,
    },
}

impl SharedKey {
    pub fn blob(&self) -> &BlobKey {
        match self {
            SharedKey::Range { blob, .. } => blob,
        }
    }

    /// Where the entry's bytes end in their file.
    pub fn end(&self) -> u64 {
        match self {
            SharedKey::Range { offset, len, .. } => offset + u64::from(*len),
        }
    }

    /// The entry's length in bytes (without its frames' crcs).
    pub fn data_len(&self) -> usize {
        match self {
            SharedKey::Range { len, .. } => *len as usize,
        }
    }

    fn block(&self) -> u64 {
        match self {
            SharedKey::Range { block, .. } => u64::from(*block).max(1),
        }
    }

    /// Blocks in the entry (the last may be short).
    pub fn blocks(&self) -> u32 {
        (self.data_len() as u64).div_ceil(self.block()) as u32
    }

    /// Length of block `i` of the entry.
    pub fn block_len(&self, i: u32) -> usize {
        let start = u64::from(i) * self.block();
        (self.data_len() as u64 - start).min(self.block()) as usize
    }

    /// Where frames `blocks` lie in the object.
    pub fn frame_range(&self, blocks: Range<u32>) -> Range<u64> {
        let at = |i: u32| u64::from(i) * (self.block() + FRAME_CRC as u64);
        let end = if blocks.end >= self.blocks() {
            self.object_len()
        } else {
            at(blocks.end)
        };
        at(blocks.start)..end
    }

    /// The object's length: the bytes plus one crc per block.
    pub fn object_len(&self) -> u64 {
        self.data_len() as u64 + u64::from(self.blocks()) * FRAME_CRC as u64
    }

    /// The object name under `prefix` (no leading or trailing slash; may be empty).
    pub fn object_name(&self, prefix: &str) -> String {
        format!("{}{}", blob_dir(prefix, self.blob()), self.leaf())
    }

    /// The name of the entry's claim (`claim.rs`) under `prefix`.
    pub fn claim_name(&self, prefix: &str) -> String {
        format!("{}{}", dir(prefix, CLAIM_DIR, self.blob()), self.leaf())
    }

    fn leaf(&self) -> String {
        match self {
            SharedKey::Range {
                offset, len, block, ..
            } => format!("{offset}+{len}.{block}"),
        }
    }
}

/// The directory holding every entry of one blob (ends with '/'): what a purge lists.
pub fn blob_dir(prefix: &str, blob: &BlobKey) -> String {
    dir(prefix, VERSION_DIR, blob)
}

fn dir(prefix: &str, top: &str, blob: &BlobKey) -> String {
    let sep = if prefix.is_empty() { "" } else { "/" };
    format!("{prefix}{sep}{top}/{}/{blob}/", blob.kind_name())
}

/// The crc state every frame of the object `name` starts from.
pub fn seed(name: &str) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(MAGIC), name.as_bytes())
}

fn frame_crc(seed: u32, i: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c_append(seed, &i.to_le_bytes()), data)
}

/// The object to store under `name`: `blocks` (the entry's, in order) each followed by its crc,
/// as pieces (no copy of the blocks).
pub fn frames(name: &str, blocks: &[Bytes]) -> Vec<Bytes> {
    let seed = seed(name);
    let mut out = Vec::with_capacity(blocks.len() * 2);
    for (i, b) in blocks.iter().enumerate() {
        let crc = frame_crc(seed, i as u32, b);
        out.push(b.clone());
        out.push(Bytes::copy_from_slice(&crc.to_le_bytes()));
    }
    out
}

/// Block `i` of `key` out of its frame as read back from the store, if it is what a node
/// stored there (`seed` from [`seed`] of the object's name).
pub fn unframe(key: &SharedKey, seed: u32, i: u32, frame: Bytes) -> Option<Bytes> {
    let want = key.block_len(i);
    if i >= key.blocks() || frame.len() != want + FRAME_CRC {
        return None;
    }
    let (data, crc) = frame.split_at(want);
    let crc = u32::from_le_bytes(crc.try_into().ok()?);
    (crc == frame_crc(seed, i, data)).then(|| frame.slice(..want))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(offset: u64, len: u32) -> SharedKey {
        let blob = BlobKey::sha256_hex(&"ab".repeat(32)).unwrap();
        SharedKey::Range {
            blob,
            offset,
            len,
            block: 4,
        }
    }

    fn object(k: &SharedKey, name: &str, data: &[u8]) -> Vec<u8> {
        let blocks: Vec<Bytes> = data
            .chunks(k.block() as usize)
            .map(Bytes::copy_from_slice)
            .collect();
        frames(name, &blocks).concat()
    }

    #[test]
    fn names_are_content_addressed_and_grouped_by_blob() {
        let k = key(131072, 4096);
        let name = k.object_name("cache/hf");
        assert_eq!(
            name,
            format!("cache/hf/hubfs-v2/sha256/{}/131072+4096.4", "ab".repeat(32))
        );
        assert!(name.starts_with(&blob_dir("cache/hf", k.blob())));
        assert!(k.object_name("").starts_with("hubfs-v2/sha256/"));
        assert_eq!(
            k.claim_name("cache/hf"),
            format!(
                "cache/hf/hubfs-claims/sha256/{}/131072+4096.4",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn frames_lie_where_frame_range_says_and_check_one_by_one() {
        let k = key(0, 10); // blocks of 4, 4, 2
        let name = k.object_name("p");
        let obj = object(&k, &name, b"helloworld");
        assert_eq!(obj.len() as u64, k.object_len());
        assert_eq!(k.frame_range(0..3), 0..22);
        assert_eq!(k.frame_range(1..2), 8..16);
        assert_eq!(k.frame_range(2..3), 16..22);
        let s = seed(&name);
        let got: Vec<Bytes> = (0..3)
            .map(|i| {
                let r = k.frame_range(i..i + 1);
                let f = Bytes::copy_from_slice(&obj[r.start as usize..r.end as usize]);
                unframe(&k, s, i, f).unwrap()
            })
            .collect();
        assert_eq!(got.concat(), b"helloworld");
    }

    #[test]
    fn every_kind_of_damage_is_refused() {
        let k = key(0, 8);
        let name = k.object_name("p");
        let obj = Bytes::from(object(&k, &name, b"abcdefgh"));
        let s = seed(&name);
        let frame0 = obj.slice(0..8);
        assert!(unframe(&k, s, 0, frame0.clone()).is_some());
        // A flipped bit, a truncation, garbage of the right length, the frame under another
        // index, the object under another name.
        let mut flipped = frame0.to_vec();
        flipped[1] ^= 1;
        assert!(unframe(&k, s, 0, Bytes::from(flipped)).is_none());
        assert!(unframe(&k, s, 0, frame0.slice(..7)).is_none());
        assert!(unframe(&k, s, 0, Bytes::from(vec![7u8; 8])).is_none());
        assert!(unframe(&k, s, 1, frame0.clone()).is_none());
        let other = key(8, 8);
        assert!(unframe(&other, seed(&other.object_name("p")), 0, frame0).is_none());
    }
}
