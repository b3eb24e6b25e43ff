//! Handing out complete, verified data files (`open_complete`) and the pins that keep eviction
//! and removal away from them; recording a verification done by a streaming hasher
//! (`mark_verified`).

mod cache_support;

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::FileExt;

use cache_support::*;
use hubfs::cache::{BlobKey, BlockCache, BlockFingerprint};

const BIG: u64 = 1 << 30;

fn read_file(blob: &hubfs::cache::CompleteBlob) -> Vec<u8> {
    let mut out = Vec::new();
    let mut f = blob.file().try_clone().unwrap();
    f.read_to_end(&mut out).unwrap();
    out
}

/// A blob written and verified in `c`.
fn verified_blob(c: &BlockCache, seed: u64, size: u64) -> (BlobKey, Vec<u8>) {
    let data = content(seed, size);
    let key = sha256_key(&data);
    write_all(c, &key, &data);
    assert!(c.verify_sha256(&key, size).unwrap());
    (key, data)
}

#[test]
fn only_complete_verified_blobs_are_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), BIG);
    let data = content(1, 70 * BS + 5);
    let (key, size) = (git_key(&data), data.len() as u64);
    assert!(c.open_complete(&key, size).unwrap().is_none(), "not cached");
    write_all(&c, &key, &data[..BS as usize]);
    assert!(c.open_complete(&key, size).unwrap().is_none(), "partial");
    write_all(&c, &key, &data);
    assert!(
        c.open_complete(&key, size).unwrap().is_none(),
        "complete but never verified"
    );
    assert!(c.verify_sha256(&key, size).unwrap());
    let blob = c.open_complete(&key, size).unwrap().expect("verified");
    assert_eq!(read_file(&blob), data, "the data file is the content");
    assert!(
        blob.file().write_at(b"x", 0).is_err(),
        "handed out read-only"
    );
    assert!(
        c.open_complete(&key, size + 1).unwrap().is_none(),
        "another size"
    );
    assert!(c.open_complete(&sha256_key(b""), 0).unwrap().is_none());
    let s = c.stats();
    assert_eq!((s.pinned_blobs, s.pinned_bytes), (1, s.used_bytes));
    let second = c.open_complete(&key, size).unwrap().expect("reopen");
    assert_eq!(c.stats().pinned_blobs, 1, "one blob, two pins");
    drop(blob);
    assert_eq!(c.stats().pinned_blobs, 1);
    drop(second);
    let s = c.stats();
    assert_eq!((s.pinned_blobs, s.pinned_bytes), (0, 0));
    // Persistent: a restarted cache hands it out without hashing again.
    drop(c);
    let c = open(dir.path(), BIG);
    let blob = c.open_complete(&key, size).unwrap().expect("after reopen");
    assert_eq!(read_file(&blob), data);
}

#[test]
fn eviction_never_touches_a_pinned_blob() {
    let dir = tempfile::tempdir().unwrap();
    // Room for the pinned blob and a few one-block blobs.
    let cap = blob_cost(128, 0) + 4 * blob_cost(1, 0);
    let c = open(dir.path(), cap);
    let (key, data) = verified_blob(&c, 2, 128 * BS);
    let size = data.len() as u64;
    let blob = c.open_complete(&key, size).unwrap().expect("verified");
    for i in 0..40 {
        let d = content(100 + i, BS);
        c.write_block(&sha256_key(&d), BS, 0, &d).unwrap();
        assert!(c.stats().used_bytes <= cap, "the cap holds, pins included");
    }
    assert!(c.stats().evictions > 0, "other blobs cycled through");
    assert!(
        c.is_complete(&key, size),
        "the pinned blob kept every block"
    );
    assert_eq!(read_file(&blob), data);
    // Once the pin is gone, the blob is evicted like any other, but whole: the kernel may still
    // read a handed-out file through an mmap, and a hole would read as zeros.
    drop(blob);
    let other = content(200, 100 * BS);
    write_all(&c, &sha256_key(&other), &other);
    assert!(!c.contains_block(&key, size, 127), "evicted after release");
    assert!(
        !data_path(dir.path(), &key).exists(),
        "deleted, not punched"
    );
}

#[test]
fn a_pinned_blob_removed_keeps_its_file_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), BIG);
    let (key, data) = verified_blob(&c, 3, 5 * BS + 1);
    let size = data.len() as u64;
    let blob = c.open_complete(&key, size).unwrap().expect("verified");
    c.remove_blob(&key).unwrap();
    assert!(!c.contains_block(&key, size, 0), "gone for readers at once");
    assert!(!c.is_verified(&key));
    assert!(c.open_complete(&key, size).unwrap().is_none());
    // Writers do not store into a removed blob that is still pinned...
    c.write_block(&key, size, 0, &data[..BS as usize]).unwrap();
    assert!(!c.contains_block(&key, size, 0));
    // ...and its data file is untouched while pinned.
    assert!(data_path(dir.path(), &key).exists());
    assert_eq!(read_file(&blob), data);
    drop(blob);
    // After the release the blob can be cached again from scratch.
    write_all(&c, &key, &data);
    assert!(c.is_complete(&key, size));
    assert!(!c.is_verified(&key), "new bytes need a new verification");
    assert_eq!(c.stats().used_bytes, blob_cost(5, 1));
}

#[test]
fn a_corrupt_block_of_a_handed_out_blob_is_dropped_and_repaired_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), BIG);
    let (key, data) = verified_blob(&c, 4, 3 * BS);
    let size = data.len() as u64;
    drop(c.open_complete(&key, size).unwrap().expect("verified"));
    // Bit rot written behind our back: open_complete refuses a data file changed after its
    // verification (its ctime moved) and clears the mark.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(data_path(dir.path(), &key))
        .unwrap();
    f.write_all_at(&[data[BS as usize + 1] ^ 0x40], BS + 1)
        .unwrap();
    assert!(c.open_complete(&key, size).unwrap().is_none());
    assert!(!c.is_verified(&key));
    // The read path finds the bad block and drops just that one, even though the file was
    // handed out: its bytes were wrong anyway, and the refetch repairs the same file.
    let held = c.open_complete(&key, size).unwrap();
    assert!(held.is_none());
    assert_eq!(c.read_block(&key, size, 1).unwrap(), None);
    assert!(c.contains_block(&key, size, 0));
    assert!(!c.contains_block(&key, size, 1));
    assert_eq!(c.stats().corrupt_dropped, 1);
    write_all(&c, &key, &data);
    assert!(c.verify_sha256(&key, size).unwrap());
    let blob = c.open_complete(&key, size).unwrap().expect("refetched");
    assert_eq!(read_file(&blob), data);
}

#[test]
fn mark_verified_needs_the_very_blocks_that_were_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), BIG);
    let data = content(5, 66 * BS + 3);
    let (key, size) = (sha256_key(&data), data.len() as u64);
    let fingerprint_of = |bytes: &[u8]| {
        let mut f = BlockFingerprint::new();
        for block in bytes.chunks(BS as usize) {
            f.push(block);
        }
        f
    };
    write_all(&c, &key, &data[..65 * BS as usize]);
    assert!(
        !c.mark_verified(&key, size, fingerprint_of(&data)),
        "incomplete"
    );
    write_all(&c, &key, &data);
    let mut other = data.clone();
    other[7] ^= 1;
    assert!(
        !c.mark_verified(&key, size, fingerprint_of(&other)),
        "hashed bytes differ from the cached ones"
    );
    assert!(
        !c.mark_verified(&key, size, fingerprint_of(&data[..BS as usize])),
        "too few blocks hashed"
    );
    assert!(!c.is_verified(&key));
    assert!(c.mark_verified(&key, size, fingerprint_of(&data)));
    assert!(c.is_verified(&key));
    assert_eq!(c.stats().hits, 0, "no block was read back");
    assert!(c.open_complete(&key, size).unwrap().is_some());
    drop(c);
    assert!(open(dir.path(), BIG).is_verified(&key), "persistent");
}

#[test]
fn accounting_matches_allocated_bytes_with_pins_and_punches() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 600 * 1024;
    let c = open(dir.path(), cap);
    let (key, data) = verified_blob(&c, 6, 40 * BS);
    let pin = c.open_complete(&key, data.len() as u64).unwrap().unwrap();
    // Two-region blobs: eviction punches regions out of their data files.
    for i in 0..6 {
        let d = content(300 + i, 70 * BS + 100);
        write_all(&c, &git_key(&d), &d);
        assert!(c.stats().used_bytes <= cap);
    }
    assert_eq!(allocated_on_disk(dir.path()), c.stats().used_bytes);
    assert_eq!(c.stats().pinned_bytes, blob_cost(40, 0));
    drop(pin);
}
