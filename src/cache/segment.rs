//! On-disk format of one segment file: a fixed header that names its blob and records, per
//! block slot, whether the block is present and its crc32c; block data follows at fixed offsets.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "HUBFSSG1"
//!      8     1  key kind (1 = sha256, 2 = git sha1), then 3 zero bytes
//!     12     4  blocks per segment (u32 LE)
//!     16     8  block size (u64 LE)
//!     24     8  blob size (u64 LE)
//!     32     8  segment number (u64 LE)
//!     40    32  key digest (a sha1 is zero-padded)
//!     72     4  crc32c of bytes 0..72 (the identity above never changes)
//!     76     1  0xA5 when the whole blob's digest was verified while this segment was full
//! 128+8*s     8  record of slot s: crc32c (u32 LE) and length (u32 LE) of the block; length 0 = absent
//!   4096     ..  block data, slot s at 4096 + s*block_size (the file is sparse where blocks are absent)
//! ```
//!
//! Write order gives crash safety without fsync: block data is written before its record, and a
//! record is cleared before anything else touches its slot, so a process killed at any point
//! leaves records that describe fully written data. Power loss can still reorder writes; the
//! crc32c checked on every read turns that into a detected miss instead of wrong bytes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::key::BlobKey;
use super::layout::Layout;

const MAGIC: &[u8; 8] = b"HUBFSSG1";
const IDENT_LEN: usize = 72;
const VERIFIED_OFFSET: u64 = 76;
const VERIFIED_MARK: u8 = 0xA5;
const RECORDS_OFFSET: u64 = 128;
const RECORD_LEN: u64 = 8;

/// Presence and checksum of one block slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    pub crc: u32,
    pub len: u32,
}

/// A parsed, validated segment header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub key: BlobKey,
    pub blob_size: u64,
    pub seg: u64,
    pub verified: bool,
    /// One entry per slot; `None` = absent.
    pub records: Vec<Option<Record>>,
}

/// `xx/<kind>-<hex>.<seg>` relative to the block store root, fanned out by the first digest byte
/// so no directory grows past a few hundred entries.
pub(crate) fn relative_path(key: &BlobKey, seg: u64) -> PathBuf {
    let hex = key.to_string();
    PathBuf::from(&hex[..2]).join(format!("{}-{hex}.{seg}", key.kind_name()))
}

/// Inverse of the file-name part of [`relative_path`].
pub(crate) fn parse_file_name(name: &str) -> Option<(BlobKey, u64)> {
    let (stem, seg_text) = name.rsplit_once('.')?;
    let (kind, hex) = stem.split_once('-')?;
    let seg: u64 = seg_text.parse().ok()?;
    let key = BlobKey::from_kind_hex(kind, hex)?;
    // Only the canonical spelling ("7", lower-case hex) is ours: one segment, one file name.
    (seg.to_string() == seg_text && key.to_string() == hex).then_some((key, seg))
}

fn records_end(layout: &Layout) -> u64 {
    RECORDS_OFFSET + RECORD_LEN * layout.blocks_per_segment()
}

fn identity(layout: &Layout, key: &BlobKey, blob_size: u64, seg: u64) -> [u8; IDENT_LEN] {
    let mut b = [0u8; IDENT_LEN];
    b[..8].copy_from_slice(MAGIC);
    b[8] = match key {
        BlobKey::Sha256(_) => 1,
        BlobKey::GitSha1(_) => 2,
    };
    // blocks_per_segment <= 64 always fits.
    b[12..16].copy_from_slice(&(layout.blocks_per_segment() as u32).to_le_bytes());
    b[16..24].copy_from_slice(&layout.block_size().to_le_bytes());
    b[24..32].copy_from_slice(&blob_size.to_le_bytes());
    b[32..40].copy_from_slice(&seg.to_le_bytes());
    let d = key.digest();
    b[40..40 + d.len()].copy_from_slice(d);
    b
}

/// Creates (or truncates) the segment file at `path` with an empty header.
pub(crate) fn create(
    path: &Path,
    layout: &Layout,
    key: &BlobKey,
    blob_size: u64,
    seg: u64,
) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let mut header = vec![0u8; records_end(layout) as usize];
    let ident = identity(layout, key, blob_size, seg);
    header[..IDENT_LEN].copy_from_slice(&ident);
    header[IDENT_LEN..IDENT_LEN + 4].copy_from_slice(&crc32c::crc32c(&ident).to_le_bytes());
    file.write_all_at(&header, 0)?;
    Ok(file)
}

/// Reads and validates the header; `Ok(None)` when the file is not a valid segment of this
/// layout (garbage, truncated header, other block size) or names another blob than `expect`.
pub(crate) fn read_header(
    file: &File,
    layout: &Layout,
    expect: (&BlobKey, u64),
) -> io::Result<Option<Header>> {
    let mut buf = vec![0u8; records_end(layout) as usize];
    match file.read_exact_at(&mut buf, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let crc = u32::from_le_bytes([buf[72], buf[73], buf[74], buf[75]]);
    if &buf[..8] != MAGIC || crc != crc32c::crc32c(&buf[..IDENT_LEN]) {
        return Ok(None);
    }
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&buf[o..o + 8]);
        u64::from_le_bytes(b)
    };
    let (key, seg) = expect;
    let blob_size = u64_at(24);
    if buf[..IDENT_LEN] != identity(layout, key, blob_size, seg) {
        return Ok(None);
    }
    let records = (0..layout.blocks_per_segment())
        .map(|slot| {
            let o = (RECORDS_OFFSET + RECORD_LEN * slot) as usize;
            let crc = u32::from_le_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
            let len = u32::from_le_bytes([buf[o + 4], buf[o + 5], buf[o + 6], buf[o + 7]]);
            (len != 0).then_some(Record { crc, len })
        })
        .collect();
    Ok(Some(Header {
        key: *key,
        blob_size,
        seg,
        verified: buf[VERIFIED_OFFSET as usize] == VERIFIED_MARK,
        records,
    }))
}

/// Writes the record of `slot` (`None` marks the slot absent).
pub(crate) fn write_record(file: &File, slot: u64, record: Option<Record>) -> io::Result<()> {
    let mut b = [0u8; RECORD_LEN as usize];
    if let Some(r) = record {
        b[..4].copy_from_slice(&r.crc.to_le_bytes());
        b[4..].copy_from_slice(&r.len.to_le_bytes());
    }
    file.write_all_at(&b, RECORDS_OFFSET + RECORD_LEN * slot)
}

/// Sets or clears the verified marker.
pub(crate) fn write_verified(file: &File, verified: bool) -> io::Result<()> {
    let mark = if verified { VERIFIED_MARK } else { 0 };
    file.write_all_at(&[mark], VERIFIED_OFFSET)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> BlobKey {
        BlobKey::git_sha1_hex("30d74d258442c7c65512eafab474568dd706c430").unwrap()
    }

    #[test]
    fn names_round_trip_and_reject_variants() {
        let k = key();
        let p = relative_path(&k, 7);
        assert_eq!(
            p,
            PathBuf::from("30/sha1-30d74d258442c7c65512eafab474568dd706c430.7")
        );
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_file_name(name), Some((k, 7)));
        for bad in [
            "sha1-30D74D258442C7C65512EAFAB474568DD706C430.7",
            "sha1-30d74d258442c7c65512eafab474568dd706c430.07",
            "sha1-30d74d258442c7c65512eafab474568dd706c430.+7",
            "sha1-30d74d258442c7c65512eafab474568dd706c430",
            "md5-30d74d258442c7c65512eafab474568dd706c430.1",
            ".tmp",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_round_trip_and_validation() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(4096).unwrap();
        let k = key();
        let path = dir.path().join("seg");
        let f = create(&path, &layout, &k, 10_000, 0).unwrap();
        let h = read_header(&f, &layout, (&k, 0)).unwrap().unwrap();
        assert_eq!(h.blob_size, 10_000);
        assert!(!h.verified);
        assert!(h.records.iter().all(Option::is_none));
        assert_eq!(h.records.len(), 64);

        write_record(&f, 2, Some(Record { crc: 9, len: 1808 })).unwrap();
        write_verified(&f, true).unwrap();
        let h = read_header(&f, &layout, (&k, 0)).unwrap().unwrap();
        assert_eq!(h.records[2], Some(Record { crc: 9, len: 1808 }));
        assert!(h.verified);

        // Wrong expectations or another layout: not ours.
        assert_eq!(read_header(&f, &layout, (&k, 1)).unwrap(), None);
        let other = Layout::new(8192).unwrap();
        assert_eq!(read_header(&f, &other, (&k, 0)).unwrap(), None);

        // A flipped identity byte fails the header checksum.
        f.write_all_at(&[0xff], 30).unwrap();
        assert_eq!(read_header(&f, &layout, (&k, 0)).unwrap(), None);

        // A truncated header is not a segment.
        f.set_len(100).unwrap();
        assert_eq!(read_header(&f, &layout, (&k, 0)).unwrap(), None);
    }
}
