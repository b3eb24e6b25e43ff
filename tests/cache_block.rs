//! Behaviour of the block store through its public API: persistence, LRU eviction under a cap,
//! corruption handling, crash leftovers, verification.

mod cache_support;

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use cache_support::*;
use hubfs::cache::{BlobKey, BlockCache, CacheConfig};

const BIG: u64 = 1 << 30;

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for d in fs::read_dir(dir.join("blocks")).unwrap() {
        let d = d.unwrap();
        if d.file_type().unwrap().is_dir() {
            for f in fs::read_dir(d.path()).unwrap() {
                out.push(f.unwrap().file_name().into_string().unwrap());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn blocks_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(1, 3 * BS + 100);
    let size = data.len() as u64;
    let key = sha256_key(&data);
    {
        let c = open(dir.path(), BIG);
        assert!(!c.contains_block(&key, size, 0));
        assert_eq!(c.read_block(&key, size, 0).unwrap(), None);
        write_all(&c, &key, &data);
        assert!(c.is_complete(&key, size));
        assert_eq!(read_all(&c, &key, size).as_deref(), Some(&data[..]));
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.blocks_written), (4, 1, 4));
        assert_eq!(s.used_bytes, blob_cost(3, 100));
        assert_eq!(s.max_bytes, BIG);
    }
    let c = open(dir.path(), BIG);
    assert!(c.is_complete(&key, size));
    assert_eq!(c.stats().used_bytes, blob_cost(3, 100));
    assert_eq!(read_all(&c, &key, size).as_deref(), Some(&data[..]));
    assert_eq!(
        files_under(dir.path()),
        vec![format!("sha256-{key}.data"), format!("sha256-{key}.meta")],
        "one data file and one sidecar per blob"
    );
    assert_eq!(
        fs::read(data_path(dir.path(), &key)).unwrap(),
        data,
        "the data file of a complete blob is its content"
    );
}

#[test]
fn partial_blobs_span_regions_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    // 70 blocks + a tail: two regions of 64 blocks.
    let data = content(2, 70 * BS + 1);
    let size = data.len() as u64;
    let key = git_key(&data);
    let block = |i: u64| &data[(i * BS) as usize..((i + 1) * BS).min(size) as usize];
    {
        let c = open(dir.path(), BIG);
        for i in [0, 65, 70] {
            c.write_block(&key, size, i, block(i)).unwrap();
        }
        assert!(!c.is_complete(&key, size));
    }
    let c = open(dir.path(), BIG);
    for i in 0..71 {
        let want = [0, 65, 70].contains(&i);
        assert_eq!(c.contains_block(&key, size, i), want, "block {i}");
        let got = c.read_block(&key, size, i).unwrap();
        assert_eq!(got.as_deref(), want.then(|| block(i)), "block {i}");
    }
    assert_eq!(c.stats().used_bytes, blob_cost(2, 1));
    // Absent blocks are holes: the data file is the blob's length but holds 3 blocks.
    let data_file = fs::metadata(data_path(dir.path(), &key)).unwrap();
    assert_eq!(data_file.len(), size);
    assert_eq!(data_file.blocks() * 512, 2 * BS + alloc(1));
    assert_eq!(c.missing_blocks(&key, size, 63..67), vec![63, 64, 66]);
    assert_eq!(c.missing_blocks(&key, size, 69..1000), vec![69]);
    assert_eq!(c.missing_blocks(&key, size, 0..1), Vec::<u64>::new());
    assert_eq!(
        c.missing_blocks(&key, size + 1, 0..2),
        vec![0, 1],
        "other size"
    );
    assert_eq!(files_under(dir.path()).len(), 2);
    for i in 0..71 {
        c.write_block(&key, size, i, block(i)).unwrap();
    }
    assert!(c.is_complete(&key, size));
    assert_eq!(read_all(&c, &key, size).as_deref(), Some(&data[..]));
}

#[test]
fn invalid_arguments_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), BIG);
    let data = content(3, BS + 10);
    let key = sha256_key(&data);
    let size = data.len() as u64;
    let err = c.write_block(&key, size, 1, &data[..100]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = c.write_block(&key, size, 0, &data[..10]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = c.write_block(&key, size, 2, &data[..10]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = c.read_block(&key, size, 2).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!c.contains_block(&key, size, 2));
    assert!(
        c.is_complete(&key, 0),
        "an empty blob is trivially complete"
    );
    for bs in [0, 1000, 3 * 4096 + 1] {
        let cfg = CacheConfig {
            block_size: bs,
            ..config(dir.path(), BIG)
        };
        assert!(BlockCache::open(cfg).is_err(), "{bs}");
    }
}

#[test]
fn rewriting_a_present_block_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), BIG);
    let data = content(4, BS);
    let key = sha256_key(&data);
    c.write_block(&key, BS, 0, &data).unwrap();
    let used = c.stats().used_bytes;
    c.write_block(&key, BS, 0, &data).unwrap();
    assert_eq!(c.stats().used_bytes, used);
    assert_eq!(
        c.read_block(&key, BS, 0).unwrap().as_deref(),
        Some(&data[..])
    );
}

#[test]
fn another_size_for_a_key_replaces_the_cached_copy() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), BIG);
    let data = content(5, 2 * BS);
    let key = sha256_key(&data);
    write_all(&c, &key, &data);
    // Lookups with another size see nothing; a write with it replaces the old copy.
    assert!(!c.contains_block(&key, BS, 0));
    assert_eq!(c.read_block(&key, BS, 0).unwrap(), None);
    c.write_block(&key, BS, 0, &data[..BS as usize]).unwrap();
    assert!(c.is_complete(&key, BS));
    assert!(!c.contains_block(&key, 2 * BS, 0));
    assert_eq!(c.stats().used_bytes, blob_cost(1, 0));
}

/// One-block blobs: each is one region costing `blob_cost(1, 0)`.
fn one_block_blobs(n: u64) -> Vec<(BlobKey, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let d = content(100 + i, BS);
            (sha256_key(&d), d)
        })
        .collect()
}

#[test]
fn lru_evicts_least_recently_used_regions_first() {
    let dir = tempfile::tempdir().unwrap();
    // Room for 5 blobs plus a little: each eviction pass frees exactly one blob.
    let cap = 5 * blob_cost(1, 0) + 1024;
    let c = open(dir.path(), cap);
    let blobs = one_block_blobs(8);
    let present = |c: &BlockCache| -> Vec<usize> {
        (0..blobs.len())
            .filter(|&i| c.contains_block(&blobs[i].0, BS, 0))
            .collect()
    };
    for (k, d) in &blobs[..5] {
        c.write_block(k, BS, 0, d).unwrap();
    }
    assert_eq!(present(&c), vec![0, 1, 2, 3, 4]);
    // Reading 0 and 1 makes 2 the least recently used.
    c.read_block(&blobs[0].0, BS, 0).unwrap().unwrap();
    c.read_block(&blobs[1].0, BS, 0).unwrap().unwrap();
    c.write_block(&blobs[5].0, BS, 0, &blobs[5].1).unwrap();
    assert_eq!(present(&c), vec![0, 1, 3, 4, 5]);
    assert!(c.stats().used_bytes <= cap);
    c.write_block(&blobs[6].0, BS, 0, &blobs[6].1).unwrap();
    assert_eq!(present(&c), vec![0, 1, 4, 5, 6]);
    c.read_block(&blobs[4].0, BS, 0).unwrap().unwrap();
    c.write_block(&blobs[7].0, BS, 0, &blobs[7].1).unwrap();
    assert_eq!(present(&c), vec![1, 4, 5, 6, 7]);
    let s = c.stats();
    assert_eq!(s.evictions, 3);
    assert!(s.used_bytes <= cap);
    // Evicted blobs are gone from disk too (data file and sidecar).
    assert_eq!(files_under(dir.path()).len(), 10);
    assert_eq!(c.read_block(&blobs[0].0, BS, 0).unwrap(), None);
}

#[test]
fn cap_holds_after_every_write_and_matches_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 300 * 1024;
    let c = open(dir.path(), cap);
    for i in 0..40 {
        let d = content(200 + i, 5 * BS + 7);
        let k = git_key(&d);
        write_all(&c, &k, &d);
        assert!(c.stats().used_bytes <= cap, "after blob {i}");
    }
    assert!(c.stats().evictions > 0);
    // Accounting equals what the files occupy: sidecars + allocated data.
    assert_eq!(allocated_on_disk(dir.path()), c.stats().used_bytes);
    // The newest blob is intact.
    let d = content(239, 5 * BS + 7);
    assert_eq!(read_all(&c, &git_key(&d), d.len() as u64), Some(d));
}

#[test]
fn a_cap_below_one_block_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1000);
    let d = content(6, BS);
    let k = sha256_key(&d);
    c.write_block(&k, BS, 0, &d).unwrap();
    assert!(!c.contains_block(&k, BS, 0));
    assert_eq!(c.stats().used_bytes, 0);
}

/// Sets the last-use stamp of region 0 of `key` in its sidecar to `secs_ago` seconds ago.
fn set_stamp(dir: &Path, key: &BlobKey, secs_ago: u64) {
    let f = OpenOptions::new()
        .write(true)
        .open(meta_path(dir, key))
        .unwrap();
    let then = SystemTime::now() - Duration::from_secs(secs_ago);
    let secs = then
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    f.write_all_at(&secs.to_le_bytes(), stamp_offset(0))
        .unwrap();
}

#[test]
fn recency_survives_reopen_through_sidecar_stamps() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 3 * blob_cost(1, 0) + 512;
    let blobs = one_block_blobs(4);
    {
        let c = open(dir.path(), cap);
        for (k, d) in &blobs[..3] {
            c.write_block(k, BS, 0, d).unwrap();
        }
    }
    // Pretend blob 0 was last used 300 s ago, 1 200 s ago, 2 100 s ago.
    for (i, ago) in [(0, 300), (1, 200), (2, 100)] {
        set_stamp(dir.path(), &blobs[i].0, ago);
    }
    {
        // A read of blob 0 moves its stamp forward (it was older than the touch interval).
        let c = open(dir.path(), cap);
        c.read_block(&blobs[0].0, BS, 0).unwrap().unwrap();
    }
    let c = open(dir.path(), cap);
    c.write_block(&blobs[3].0, BS, 0, &blobs[3].1).unwrap();
    let present: Vec<bool> = blobs
        .iter()
        .map(|(k, _)| c.contains_block(k, BS, 0))
        .collect();
    assert_eq!(
        present,
        vec![true, false, true, true],
        "blob 1 was least recently used"
    );
}

#[test]
fn lowering_the_cap_evicts_oldest_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = one_block_blobs(4);
    {
        let c = open(dir.path(), BIG);
        for (k, d) in &blobs {
            c.write_block(k, BS, 0, d).unwrap();
        }
    }
    for (i, (k, _)) in blobs.iter().enumerate() {
        set_stamp(dir.path(), k, 1000 - 100 * i as u64);
    }
    let cap = 2 * blob_cost(1, 0) + 512;
    let c = open(dir.path(), cap);
    assert!(c.stats().used_bytes <= cap);
    let present: Vec<bool> = blobs
        .iter()
        .map(|(k, _)| c.contains_block(k, BS, 0))
        .collect();
    assert_eq!(present, vec![false, false, true, true]);
}

fn flip_byte(path: &Path, offset: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 0x10], offset).unwrap();
}

#[test]
fn a_flipped_data_byte_is_a_miss_and_the_block_is_refetchable() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(7, 3 * BS);
    let (key, size) = (sha256_key(&data), 3 * BS);
    let c = open(dir.path(), BIG);
    write_all(&c, &key, &data);
    flip_byte(&data_path(dir.path(), &key), BS + 10); // inside block 1
    assert_eq!(c.read_block(&key, size, 1).unwrap(), None);
    let s = c.stats();
    assert_eq!(s.corrupt_dropped, 1);
    assert_eq!(s.used_bytes, blob_cost(2, 0));
    // The bad block's space is punched out of the data file, whose length stays the blob's.
    let data_file = fs::metadata(data_path(dir.path(), &key)).unwrap();
    assert_eq!((data_file.len(), data_file.blocks() * 512), (size, 2 * BS));
    assert!(!c.contains_block(&key, size, 1));
    assert!(!c.is_complete(&key, size));
    // Neighbours are unaffected.
    assert!(c.read_block(&key, size, 0).unwrap().is_some());
    assert!(c.read_block(&key, size, 2).unwrap().is_some());
    // The drop is persistent...
    drop(c);
    let c = open(dir.path(), BIG);
    assert!(!c.contains_block(&key, size, 1));
    // ...and the block can be stored again.
    c.write_block(&key, size, 1, &data[BS as usize..2 * BS as usize])
        .unwrap();
    assert_eq!(read_all(&c, &key, size), Some(data));
}

#[test]
fn a_flipped_record_checksum_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(8, 2 * BS);
    let (key, size) = (git_key(&data), 2 * BS);
    write_all(&open(dir.path(), BIG), &key, &data);
    flip_byte(&meta_path(dir.path(), &key), record_offset(size, 1) + 1); // crc of block 1
    let c = open(dir.path(), BIG);
    assert!(
        c.contains_block(&key, size, 1),
        "records are only checked on read"
    );
    assert_eq!(c.read_block(&key, size, 1).unwrap(), None);
    assert!(!c.contains_block(&key, size, 1));
    assert_eq!(c.stats().corrupt_dropped, 1);
}

#[test]
fn a_truncated_data_file_loses_only_the_cut_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(9, 4 * BS);
    let (key, size) = (sha256_key(&data), 4 * BS);
    let c = open(dir.path(), BIG);
    write_all(&c, &key, &data);
    let data_file = data_path(dir.path(), &key);
    // While open: the cut is found on read.
    OpenOptions::new()
        .write(true)
        .open(&data_file)
        .unwrap()
        .set_len(3 * BS + 5)
        .unwrap();
    assert_eq!(c.read_block(&key, size, 3).unwrap(), None);
    assert_eq!(c.stats().corrupt_dropped, 1);
    assert!(c.read_block(&key, size, 2).unwrap().is_some());
    drop(c);
    // Across a restart: the scan clears records past the end of the file.
    OpenOptions::new()
        .write(true)
        .open(&data_file)
        .unwrap()
        .set_len(BS + 5)
        .unwrap();
    let c = open(dir.path(), BIG);
    let present: Vec<bool> = (0..4).map(|i| c.contains_block(&key, size, i)).collect();
    assert_eq!(present, vec![true, false, false, false]);
    assert_eq!(c.stats().used_bytes, blob_cost(1, 0));
    assert_eq!(
        fs::metadata(&data_file).unwrap().len(),
        size,
        "the data file gets its length back"
    );
    assert_eq!(
        c.read_block(&key, size, 0).unwrap().as_deref(),
        Some(&data[..BS as usize])
    );
    // A sidecar cut into its header is not a sidecar any more: the blob is dropped.
    drop(c);
    OpenOptions::new()
        .write(true)
        .open(meta_path(dir.path(), &key))
        .unwrap()
        .set_len(50)
        .unwrap();
    let c = open(dir.path(), BIG);
    assert!(!c.contains_block(&key, size, 0));
    assert!(!data_file.exists());
    assert!(files_under(dir.path()).is_empty());
}

#[test]
fn garbage_and_stray_files_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(10, BS);
    let key = sha256_key(&data);
    write_all(&open(dir.path(), BIG), &key, &data);
    let meta = meta_path(dir.path(), &key);
    let data_file = data_path(dir.path(), &key);
    fs::write(&meta, content(11, 3 * 4096)).unwrap();
    let fanout = meta.parent().unwrap();
    fs::write(fanout.join("not-a-blob"), b"x").unwrap();
    // A lone data file (its sidecar lost) says nothing about its blocks.
    let lone = content(21, BS);
    let lone_key = sha256_key(&lone);
    fs::create_dir_all(data_path(dir.path(), &lone_key).parent().unwrap()).unwrap();
    fs::write(data_path(dir.path(), &lone_key), &lone).unwrap();
    // A valid blob under a name in the wrong fan-out directory is not trusted either.
    let other = dir.path().join("blocks").join("00");
    fs::create_dir_all(&other).unwrap();
    let c = open(dir.path(), BIG);
    assert!(!c.contains_block(&key, BS, 0), "garbage sidecar");
    assert!(
        !c.contains_block(&lone_key, BS, 0),
        "data file without sidecar"
    );
    assert!(
        files_under(dir.path()).is_empty(),
        "garbage and stray files deleted"
    );
    write_all(&c, &key, &data);
    drop(c);
    for path in [&meta, &data_file] {
        fs::rename(path, other.join(path.file_name().unwrap())).unwrap();
    }
    let c = open(dir.path(), BIG);
    assert!(!c.contains_block(&key, BS, 0));
    assert_eq!(c.stats().used_bytes, 0);
    assert!(files_under(dir.path()).is_empty());
}

#[test]
fn a_kill_between_data_and_record_leaves_the_block_absent() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(12, 3 * BS);
    let (key, size) = (sha256_key(&data), 3 * BS);
    let c = open(dir.path(), BIG);
    c.write_block(&key, size, 0, &data[..BS as usize]).unwrap();
    drop(c);
    let open_rw = |path| OpenOptions::new().write(true).open(path).unwrap();
    let data_file = open_rw(data_path(dir.path(), &key));
    // Block 1's data landed but its record did not (the process died in between).
    data_file
        .write_all_at(&data[BS as usize..2 * BS as usize], BS)
        .unwrap();
    // Power loss reordered writes: block 2's record landed, its data did not.
    let crc = crc32c::crc32c(&data[2 * BS as usize..]);
    let mut rec = crc.to_le_bytes().to_vec();
    rec.extend_from_slice(&(BS as u32).to_le_bytes());
    open_rw(meta_path(dir.path(), &key))
        .write_all_at(&rec, record_offset(size, 2))
        .unwrap();
    let c = open(dir.path(), BIG);
    assert!(!c.contains_block(&key, size, 1));
    assert_eq!(
        data_file.metadata().unwrap().blocks() * 512,
        BS,
        "the unrecorded block's space is freed at open"
    );
    assert_eq!(
        c.read_block(&key, size, 2).unwrap(),
        None,
        "zeros fail the crc"
    );
    assert_eq!(
        c.read_block(&key, size, 0).unwrap().as_deref(),
        Some(&data[..BS as usize])
    );
}

#[test]
fn verify_accepts_the_right_bytes_once_and_remembers_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(13, 100 * BS + 3); // two regions
    let (key, size) = (sha256_key(&data), data.len() as u64);
    {
        let c = open(dir.path(), BIG);
        write_all(&c, &key, &data[..BS as usize]);
        assert_eq!(
            c.verify_sha256(&key, size).unwrap_err().kind(),
            ErrorKind::NotFound,
            "incomplete blob"
        );
        write_all(&c, &key, &data);
        assert!(!c.is_verified(&key));
        assert!(c.verify_sha256(&key, size).unwrap());
        assert!(c.is_verified(&key));
        assert_eq!(c.stats().hits, 0, "verification is not a cache hit");
    }
    let c = open(dir.path(), BIG);
    assert!(c.is_verified(&key), "verification is persistent");
    assert!(c.verify_sha256(&key, size).unwrap());
    // Losing a block (here: corruption) makes the blob unverified until checked again.
    flip_byte(&data_path(dir.path(), &key), 64 * BS + 5);
    assert_eq!(c.read_block(&key, size, 64).unwrap(), None);
    assert!(!c.is_verified(&key));
    c.write_block(
        &key,
        size,
        64,
        &data[(64 * BS) as usize..(65 * BS) as usize],
    )
    .unwrap();
    assert!(!c.is_verified(&key));
    assert!(c.verify_sha256(&key, size).unwrap());
    assert!(c.is_verified(&key));
    drop(c);
    let c = open(dir.path(), BIG);
    assert!(c.is_verified(&key));
}

#[test]
fn an_evicted_and_refetched_region_needs_a_new_verification() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(19, 64 * BS + 10); // region 0: 64 blocks, region 1: the tail
    let (key, size) = (sha256_key(&data), data.len() as u64);
    let other = content(20, BS);
    let cap = blob_cost(64, 10) + blob_cost(1, 0) - 2048;
    let c = open(dir.path(), cap);
    write_all(&c, &key, &data);
    assert!(c.verify_sha256(&key, size).unwrap());
    // Make region 0 the least recently used, then need room for another blob.
    c.read_block(&key, size, 64).unwrap().unwrap();
    c.write_block(&sha256_key(&other), BS, 0, &other).unwrap();
    assert!(!c.contains_block(&key, size, 0), "region 0 evicted");
    let data_file = fs::metadata(data_path(dir.path(), &key)).unwrap();
    assert_eq!(
        (data_file.len(), data_file.blocks() * 512),
        (size, alloc(10)),
        "region 0 punched out of the data file"
    );
    assert!(c.contains_block(&key, size, 64));
    assert!(!c.is_verified(&key));
    c.remove_blob(&sha256_key(&other)).unwrap();
    write_all(&c, &key, &data);
    assert!(c.is_complete(&key, size));
    assert!(!c.is_verified(&key), "refetched bytes were never checked");
    assert!(c.verify_sha256(&key, size).unwrap());
    assert!(c.is_verified(&key));
}

#[test]
fn verify_rejects_wrong_bytes_and_drops_the_blob() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), BIG);
    let data = content(14, 2 * BS + 9);
    let size = data.len() as u64;
    let mut wrong = data.clone();
    wrong[BS as usize + 3] ^= 1;
    for key in [sha256_key(&data), git_key(&data)] {
        write_all(&c, &key, &wrong);
        assert!(!c.verify_sha256(&key, size).unwrap());
        assert!(!c.is_verified(&key));
        assert!(!c.contains_block(&key, size, 0), "all blocks dropped");
        assert_eq!(c.stats().used_bytes, 0);
        write_all(&c, &key, &data);
        assert!(c.verify_sha256(&key, size).unwrap(), "{key:?}");
        assert!(c.is_verified(&key));
        c.remove_blob(&key).unwrap();
        assert!(!c.is_verified(&key));
    }
    assert!(files_under(dir.path()).is_empty());
    assert!(c.verify_sha256(&sha256_key(b""), 0).unwrap());
    assert!(c.verify_sha256(&git_key(b""), 0).unwrap());
    assert!(!c.verify_sha256(&git_key(b"x"), 0).unwrap());
}

#[test]
fn warm_reads_open_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(15, 130 * BS); // three regions, one data file
    let (key, size) = (sha256_key(&data), data.len() as u64);
    write_all(&open(dir.path(), BIG), &key, &data);
    let c = open(dir.path(), BIG);
    assert_eq!(c.stats().file_opens, 0);
    assert_eq!(read_all(&c, &key, size).as_deref(), Some(&data[..]));
    assert_eq!(c.stats().file_opens, 1, "one open per blob, on first use");
    assert_eq!(read_all(&c, &key, size).as_deref(), Some(&data[..]));
    assert_eq!(c.stats().file_opens, 1, "warm reads reuse open descriptors");
}

#[test]
fn a_block_size_change_discards_old_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(16, 3 * BS);
    let key = sha256_key(&data);
    write_all(&open(dir.path(), BIG), &key, &data);
    let cfg = CacheConfig {
        block_size: 2 * BS,
        ..config(dir.path(), BIG)
    };
    let c = BlockCache::open(cfg).unwrap();
    assert_eq!(c.block_size(), 2 * BS);
    assert!(!c.contains_block(&key, 3 * BS, 0));
    assert_eq!(c.stats().used_bytes, 0);
    assert!(files_under(dir.path()).is_empty());
}

#[test]
fn remove_blob_deletes_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), BIG);
    let a = content(17, 70 * BS);
    let b = content(18, BS);
    write_all(&c, &sha256_key(&a), &a);
    write_all(&c, &sha256_key(&b), &b);
    c.remove_blob(&sha256_key(&a)).unwrap();
    c.remove_blob(&sha256_key(&a)).unwrap();
    assert_eq!(c.stats().used_bytes, blob_cost(1, 0));
    assert_eq!(files_under(dir.path()).len(), 2);
    assert!(c.contains_block(&sha256_key(&b), BS, 0));
}
