//! `lock_cache_dir` between processes: a live holder pushes a second daemon to an instance slot,
//! and a killed holder releases the directory at once.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use hubfs::cache::lock_cache_dir;

const CHILD_ENV: &str = "HUBFS_CACHE_LOCK_CHILD_DIR";
const LOCKED: &str = "LOCK-CHILD-HOLDS";

/// Child side (when `CHILD_ENV` is set): take the lock and hold it until stdin closes (or 30 s).
/// Run directly it does nothing: same-process locking is covered by the unit tests, and here a
/// concurrent test may fork at any moment, briefly sharing (until exec) any lock we take.
#[test]
fn lock_child_holder() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let (_lock, effective) = lock_cache_dir(Path::new(&dir)).unwrap();
        println!("{LOCKED} {}", effective.display());
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = std::io::stdin().read(&mut [0u8; 1]);
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(Duration::from_secs(30));
    }
}

/// Starts a child holding the lock on `dir`; returns it and the directory it got.
fn spawn_holder(dir: &Path) -> (std::process::Child, PathBuf) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_child_holder",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit()) // a child panic shows up in the test output
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // The test harness may print "test lock_child_holder ... " before our marker.
            if let Some((_, path)) = line.split_once(LOCKED) {
                let _ = tx.send(PathBuf::from(path.trim()));
            }
        }
    });
    let got = rx.recv_timeout(Duration::from_secs(30));
    if got.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    (child, got.expect("child took the lock"))
}

#[test]
fn a_live_holder_in_another_process_diverts_to_an_instance_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let (mut holder, held) = spawn_holder(&dir);
    assert_eq!(held, dir);

    let (lock, effective) = lock_cache_dir(&dir).unwrap();
    assert_eq!(effective, dir.join("instances").join("0"));
    drop(lock);

    // kill -9 of the holder releases the main directory for the next daemon.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let (_lock, effective) = lock_cache_dir(&dir).unwrap();
    assert_eq!(effective, dir);

    // And now a new process is the one diverted.
    let (mut second, held) = spawn_holder(&dir);
    assert_eq!(held, dir.join("instances").join("0"));
    second.kill().unwrap();
    second.wait().unwrap();
}
