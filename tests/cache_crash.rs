//! kill -9 in the middle of writes (and evictions) never makes a later read return wrong bytes.
//!
//! The test re-runs this test binary as a child process that writes blocks in a loop under a
//! small cap, kills it with SIGKILL at a random moment, repeats, then checks every cached block.

mod cache_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use cache_support::*;
use hubfs::cache::{BlobKey, BlockCache};

const CHILD_ENV: &str = "HUBFS_CACHE_CRASH_CHILD_DIR";
const READY: &str = "CRASH-CHILD-READY";
const CAP: u64 = 2 << 20;

fn blobs() -> Vec<(BlobKey, Vec<u8>)> {
    (0..12)
        .map(|i| {
            let d = content(7000 + i, 100 * BS + 321);
            (git_key(&d), d)
        })
        .collect()
}

/// Writes random blocks of `blobs()`; `limit` = None runs until killed (or 60 s, so an orphan
/// cannot outlive a crashed parent for long).
fn write_loop(dir: &Path, seed: u64, limit: Option<u64>) {
    let cache = open(dir, CAP);
    let blobs = blobs();
    let mut rng = fastrand::Rng::with_seed(seed);
    let start = Instant::now();
    let mut n = 0u64;
    while limit.is_none_or(|l| n < l) && start.elapsed() < Duration::from_secs(60) {
        let (key, data) = &blobs[rng.usize(..blobs.len())];
        let idx = rng.u64(..data.len().div_ceil(BS as usize) as u64);
        let block = &data[(idx * BS) as usize..((idx + 1) * BS).min(data.len() as u64) as usize];
        cache
            .write_block(key, data.len() as u64, idx, block)
            .unwrap();
        n += 1;
        if n == 200 && limit.is_none() {
            println!("{READY}");
        }
    }
}

/// Every cached block has the right bytes; returns how many are cached.
fn check_all(cache: &BlockCache) -> u64 {
    let mut present = 0;
    for (key, data) in blobs() {
        let size = data.len() as u64;
        for idx in 0..size.div_ceil(BS) {
            if let Some(got) = cache.read_block(&key, size, idx).unwrap() {
                let want = &data[(idx * BS) as usize..((idx + 1) * BS).min(size) as usize];
                assert!(got == want, "wrong bytes for block {idx} of {key}");
                present += 1;
            }
        }
    }
    present
}

/// The child side of the test below (when `CHILD_ENV` is set); run directly, it does a bounded
/// amount of the same work and checks the result.
#[test]
fn crash_child_writer() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        write_loop(Path::new(&dir), std::process::id().into(), None);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_loop(dir.path(), 1, Some(2000));
    let cache = open(dir.path(), CAP);
    assert!(check_all(&cache) > 0);
    assert!(cache.stats().used_bytes <= CAP);
}

#[test]
fn kill_9_mid_write_never_yields_wrong_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = fastrand::Rng::with_seed(42);
    for round in 0..6 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()) // a child panic shows up in the test output
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains(READY) {
                    let _ = tx.send(());
                }
            }
        });
        let ready = rx.recv_timeout(Duration::from_secs(30));
        if ready.is_ok() {
            thread::sleep(Duration::from_millis(rng.u64(5..120)));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(ready.is_ok(), "child of round {round} never got going");
    }
    let cache = open(dir.path(), CAP);
    assert!(cache.stats().used_bytes <= CAP);
    assert!(check_all(&cache) > 0);
    let s = cache.stats();
    assert_eq!(
        s.corrupt_dropped, 0,
        "a kill -9 leaves no torn block behind: {s:?}"
    );
}
