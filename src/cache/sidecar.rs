//! The two files of a cached blob, and the byte format of the small one.
//!
//! `xx/<kind>-<hex>.data` is the content itself at its natural offsets, `blob size` long and
//! sparse where blocks are missing (so the kernel can read a complete one directly).
//! `xx/<kind>-<hex>.meta`, the sidecar, says which blocks of it are valid:
//!
//! ```text
//! offset  size  field
//!      0     8  magic "HUBFSBM1"
//!      8     1  key kind (1 = sha256, 2 = git sha1), then 3 zero bytes
//!     12     4  blocks per region (u32 LE)
//!     16     8  block size (u64 LE)
//!     24     8  blob size (u64 LE)
//!     32    32  key digest (a sha1 is zero-padded)
//!     64     4  crc32c of bytes 0..64 (the identity above never changes)
//!     68     1  0xA5 when the whole blob's digest was verified (else 0), then 3 zero bytes
//!     72     8  ctime seconds (i64 LE) of the data file when it was verified
//!     80     4  ctime nanoseconds (u32 LE)
//!    128  8*R   per region: unix seconds of its last use (u64 LE), R = regions of the blob
//! 128+8R  8*N   per block: crc32c (u32 LE) and length (u32 LE); length 0 = absent
//! ```
//!
//! Write order gives crash safety without fsync: a block's data is written before its record,
//! and a record (and before it the verified mark) is cleared before its data is punched out,
//! so a process killed at any point leaves records that describe fully written data. Power loss
//! can still reorder writes; the crc32c checked on every read turns that into a detected miss.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::key::BlobKey;
use super::layout::Layout;

const MAGIC: &[u8; 8] = b"HUBFSBM1";
const IDENT_LEN: usize = 64;
const VERIFIED_OFFSET: u64 = 68;
const VERIFIED_MARK: u8 = 0xA5;
const STAMPS_OFFSET: u64 = 128;
const RECORD_LEN: u64 = 8;

/// Presence and checksum of one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    pub crc: u32,
    pub len: u32,
}

/// Change time of a data file, to notice that it was written after it was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Ctime {
    pub secs: i64,
    pub nanos: u32,
}

impl Ctime {
    pub(crate) fn of(file: &File) -> io::Result<Ctime> {
        use std::os::unix::fs::MetadataExt;
        let m = file.metadata()?;
        Ok(Ctime {
            secs: m.ctime(),
            // Always within 0..1e9.
            nanos: m.ctime_nsec() as u32,
        })
    }
}

/// A parsed, validated sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sidecar {
    pub blob_size: u64,
    /// Some(ctime of the data file at verification) when the blob was verified.
    pub verified: Option<Ctime>,
    /// Last use of each region, unix seconds.
    pub stamps: Vec<u64>,
    /// One entry per block; `None` = absent.
    pub records: Vec<Option<Record>>,
}

/// Which of a blob's two files a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileRole {
    Data,
    Meta,
}

/// Paths of a blob's data file and sidecar.
#[derive(Debug, Clone)]
pub(crate) struct BlobPaths {
    pub data: PathBuf,
    pub meta: PathBuf,
}

impl BlobPaths {
    /// Under the block store `root`, fanned out by the first digest byte so no directory grows
    /// past a few hundred entries.
    pub(crate) fn new(root: &Path, key: &BlobKey) -> BlobPaths {
        let hex = key.to_string();
        let stem = format!("{}-{hex}", key.kind_name());
        let dir = root.join(&hex[..2]);
        BlobPaths {
            data: dir.join(format!("{stem}.data")),
            meta: dir.join(format!("{stem}.meta")),
        }
    }
}

/// Inverse of the file-name part of [`BlobPaths::new`].
pub(crate) fn parse_file_name(name: &str) -> Option<(BlobKey, FileRole)> {
    let (stem, ext) = name.rsplit_once('.')?;
    let role = match ext {
        "data" => FileRole::Data,
        "meta" => FileRole::Meta,
        _ => return None,
    };
    let (kind, hex) = stem.split_once('-')?;
    let key = BlobKey::from_kind_hex(kind, hex)?;
    // Only the canonical spelling (lower-case hex) is ours: one blob, one file name.
    (key.to_string() == hex).then_some((key, role))
}

fn records_offset(layout: &Layout, blob_size: u64) -> u64 {
    STAMPS_OFFSET + 8 * layout.nregions(blob_size)
}

/// Length of the sidecar of a `blob_size` blob.
pub(crate) fn len(layout: &Layout, blob_size: u64) -> u64 {
    records_offset(layout, blob_size) + RECORD_LEN * layout.nblocks(blob_size)
}

fn identity(layout: &Layout, key: &BlobKey, blob_size: u64) -> [u8; IDENT_LEN] {
    let mut b = [0u8; IDENT_LEN];
    b[..8].copy_from_slice(MAGIC);
    b[8] = match key {
        BlobKey::Sha256(_) => 1,
        BlobKey::GitSha1(_) => 2,
        BlobKey::Xet(_) => 3,
    };
    // blocks_per_region <= 64 always fits.
    b[12..16].copy_from_slice(&(layout.blocks_per_region() as u32).to_le_bytes());
    b[16..24].copy_from_slice(&layout.block_size().to_le_bytes());
    b[24..32].copy_from_slice(&blob_size.to_le_bytes());
    let d = key.digest();
    b[32..32 + d.len()].copy_from_slice(d);
    b
}

/// Creates (or truncates) the sidecar at `path`: identity, no block, never used, unverified.
/// Written whole (not sparse) so its accounted size is what it occupies.
pub(crate) fn create(
    path: &Path,
    layout: &Layout,
    key: &BlobKey,
    blob_size: u64,
) -> io::Result<File> {
    let file = crate::private::open_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let mut buf = vec![0u8; len(layout, blob_size) as usize];
    let ident = identity(layout, key, blob_size);
    buf[..IDENT_LEN].copy_from_slice(&ident);
    buf[IDENT_LEN..IDENT_LEN + 4].copy_from_slice(&crc32c::crc32c(&ident).to_le_bytes());
    file.write_all_at(&buf, 0)?;
    Ok(file)
}

/// Reads and validates a sidecar; `Ok(None)` when it is not one of this layout (garbage,
/// truncated, other block size) or names another blob than `key`.
pub(crate) fn read(file: &File, layout: &Layout, key: &BlobKey) -> io::Result<Option<Sidecar>> {
    let mut head = [0u8; STAMPS_OFFSET as usize];
    match file.read_exact_at(&mut head, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let crc = u32::from_le_bytes([head[64], head[65], head[66], head[67]]);
    if &head[..8] != MAGIC || crc != crc32c::crc32c(&head[..IDENT_LEN]) {
        return Ok(None);
    }
    let u64_at = |b: &[u8], o: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(x)
    };
    let blob_size = u64_at(&head, 24);
    if head[..IDENT_LEN] != identity(layout, key, blob_size) {
        return Ok(None);
    }
    let verified = (head[VERIFIED_OFFSET as usize] == VERIFIED_MARK).then(|| Ctime {
        secs: u64_at(&head, 72) as i64,
        nanos: u32::from_le_bytes([head[80], head[81], head[82], head[83]]),
    });
    let mut body = vec![0u8; (len(layout, blob_size) - STAMPS_OFFSET) as usize];
    match file.read_exact_at(&mut body, STAMPS_OFFSET) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let nregions = layout.nregions(blob_size) as usize;
    let stamps = (0..nregions).map(|r| u64_at(&body, 8 * r)).collect();
    let records = body[8 * nregions..]
        .chunks_exact(RECORD_LEN as usize)
        .map(|r| {
            let crc = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
            let len = u32::from_le_bytes([r[4], r[5], r[6], r[7]]);
            (len != 0).then_some(Record { crc, len })
        })
        .collect();
    Ok(Some(Sidecar {
        blob_size,
        verified,
        stamps,
        records,
    }))
}

/// Writes the record of block `idx` (`None` marks it absent).
pub(crate) fn write_record(
    file: &File,
    layout: &Layout,
    blob_size: u64,
    idx: u64,
    record: Option<Record>,
) -> io::Result<()> {
    let mut b = [0u8; RECORD_LEN as usize];
    if let Some(r) = record {
        b[..4].copy_from_slice(&r.crc.to_le_bytes());
        b[4..].copy_from_slice(&r.len.to_le_bytes());
    }
    file.write_all_at(&b, records_offset(layout, blob_size) + RECORD_LEN * idx)
}

/// Marks the blocks of `blocks` absent, in one write.
pub(crate) fn clear_records(
    file: &File,
    layout: &Layout,
    blob_size: u64,
    blocks: std::ops::Range<u64>,
) -> io::Result<()> {
    let zeros = vec![0u8; (RECORD_LEN * (blocks.end - blocks.start)) as usize];
    file.write_all_at(
        &zeros,
        records_offset(layout, blob_size) + RECORD_LEN * blocks.start,
    )
}

/// Sets the verified mark with the data file's ctime, or clears it (`None`).
pub(crate) fn write_verified(file: &File, verified: Option<Ctime>) -> io::Result<()> {
    match verified {
        None => file.write_all_at(&[0], VERIFIED_OFFSET),
        Some(c) => {
            let mut b = [0u8; 16];
            b[0] = VERIFIED_MARK;
            b[4..12].copy_from_slice(&c.secs.to_le_bytes());
            b[12..16].copy_from_slice(&c.nanos.to_le_bytes());
            file.write_all_at(&b, VERIFIED_OFFSET)
        }
    }
}

/// Records the last use of `region`.
pub(crate) fn write_stamp(file: &File, region: u64, secs: u64) -> io::Result<()> {
    file.write_all_at(&secs.to_le_bytes(), STAMPS_OFFSET + 8 * region)
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
        let p = BlobPaths::new(Path::new("/r"), &k);
        assert_eq!(
            p.data,
            PathBuf::from("/r/30/sha1-30d74d258442c7c65512eafab474568dd706c430.data")
        );
        assert_eq!(
            p.meta,
            PathBuf::from("/r/30/sha1-30d74d258442c7c65512eafab474568dd706c430.meta")
        );
        let name = p.meta.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_file_name(name), Some((k, FileRole::Meta)));
        for bad in [
            "sha1-30D74D258442C7C65512EAFAB474568DD706C430.data",
            "sha1-30d74d258442c7c65512eafab474568dd706c430.7",
            "sha1-30d74d258442c7c65512eafab474568dd706c430",
            "md5-30d74d258442c7c65512eafab474568dd706c430.data",
            ".tmp",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trip_and_validation() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(4096).unwrap();
        let k = key();
        let path = dir.path().join("meta");
        // 70 blocks: two regions.
        let size = 70 * 4096 - 10;
        let f = create(&path, &layout, &k, size).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 128 + 16 + 70 * 8);
        let s = read(&f, &layout, &k).unwrap().unwrap();
        assert_eq!(s.blob_size, size);
        assert_eq!(s.verified, None);
        assert_eq!(s.stamps, vec![0, 0]);
        assert_eq!(s.records.len(), 70);
        assert!(s.records.iter().all(Option::is_none));

        write_record(&f, &layout, size, 69, Some(Record { crc: 9, len: 4086 })).unwrap();
        write_record(&f, &layout, size, 3, Some(Record { crc: 1, len: 4096 })).unwrap();
        write_record(&f, &layout, size, 4, Some(Record { crc: 2, len: 4096 })).unwrap();
        write_stamp(&f, 1, 12345).unwrap();
        let ctime = Ctime {
            secs: 1_700_000_000,
            nanos: 42,
        };
        write_verified(&f, Some(ctime)).unwrap();
        let s = read(&f, &layout, &k).unwrap().unwrap();
        assert_eq!(s.records[69], Some(Record { crc: 9, len: 4086 }));
        assert_eq!(s.records[3], Some(Record { crc: 1, len: 4096 }));
        assert_eq!(s.stamps, vec![0, 12345]);
        assert_eq!(s.verified, Some(ctime));

        clear_records(&f, &layout, size, 3..5).unwrap();
        write_verified(&f, None).unwrap();
        let s = read(&f, &layout, &k).unwrap().unwrap();
        assert_eq!(s.records[3], None);
        assert_eq!(s.records[4], None);
        assert_eq!(s.records[69], Some(Record { crc: 9, len: 4086 }));
        assert_eq!(s.verified, None);

        // Another blob or another layout: not ours.
        let other = BlobKey::sha256_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(read(&f, &layout, &other).unwrap(), None);
        let big = Layout::new(8192).unwrap();
        assert_eq!(read(&f, &big, &k).unwrap(), None);

        // A flipped identity byte fails the header checksum.
        f.write_all_at(&[0xff], 30).unwrap();
        assert_eq!(read(&f, &layout, &k).unwrap(), None);

        // A truncated sidecar is not one.
        let f = create(&path, &layout, &k, size).unwrap();
        f.set_len(200).unwrap();
        assert_eq!(read(&f, &layout, &k).unwrap(), None);
    }
}
