//! Ending a mount: on `hubfs unmount`, on SIGTERM/SIGINT, or after a plain `umount`.
//!
//! - Staged changes are committed first, bounded by the flush timeout; the log says at once
//!   how many and for how long, and a second SIGTERM/SIGINT ends the wait (what is left stays
//!   in the journal and is committed by the next mount of the branch with this cache).
//! - Then the Hub requests in flight are aborted ([`crate::read::Abort`]): a reader stalled on
//!   the Hub gets EIO instead of keeping the mount busy, and the unmount is retried for a few
//!   seconds while such readers let go.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::mountpoint::{self, UnmountError};
use crate::fs::HubFs;
use crate::read::Abort;

/// How long the unmount is retried after the abort while readers close their files.
pub const UNMOUNT_PATIENCE: Duration = Duration::from_secs(5);

/// Aborts the mount's Hub requests, then unmounts `mp`, retrying while it is busy for
/// `patience`. Still busy after that: with `lazy`, detaches it (it goes away when its last
/// user lets go); else puts the mount back in service and says why it stays.
pub async fn abort_and_unmount(
    abort: &Abort,
    mp: &Path,
    patience: Duration,
    lazy: bool,
) -> Result<(), String> {
    abort.abort();
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let path = mp.to_path_buf();
        let tried = tokio::task::spawn_blocking(move || mountpoint::unmount_with(&path, false))
            .await
            .unwrap_or_else(|e| Err(UnmountError::Other(format!("unmount task: {e}"))));
        match tried {
            // Gone already (someone ran umount meanwhile): what was asked is done.
            Ok(()) | Err(UnmountError::NotMounted(_)) => return Ok(()),
            Err(UnmountError::Busy(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(UnmountError::Busy(why)) if lazy => {
                tracing::warn!("{why}; detaching it (it goes away once its last user lets go)");
                let path = mp.to_path_buf();
                return tokio::task::spawn_blocking(move || mountpoint::unmount_with(&path, true))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string());
            }
            Err(e) => {
                abort.resume();
                return Err(e.to_string());
            }
        }
    }
}

/// Staged changes not yet committed, and where they are kept.
fn pending(fs: &HubFs) -> (u64, String) {
    let status = fs.status();
    let w = &status["writes"];
    (
        w["pending"].as_u64().unwrap_or(0),
        w["staging_dir"]
            .as_str()
            .unwrap_or("the staging area")
            .to_string(),
    )
}

/// Counts SIGTERM and SIGINT; once watched, neither kills the daemon any more.
pub fn watch_signals() -> std::io::Result<watch::Receiver<u32>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = watch::channel(0u32);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tx.send_modify(|n| *n += 1);
        }
    });
    Ok(rx)
}

/// Waits until at least `n` signals were received (forever if the watcher is gone).
async fn signals_reach(rx: &mut watch::Receiver<u32>, n: u32) {
    if rx.wait_for(|&seen| seen >= n).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Commits what is staged, bounded by `limit`, unless a signal beyond the `seen` first ones
/// arrives. Tells the log at once what it waits for.
async fn flush(
    fs: &HubFs,
    limit: Duration,
    signals: &mut watch::Receiver<u32>,
    seen: u32,
    why: &str,
) {
    fs.await_releases(limit).await;
    let (n, dir) = pending(fs);
    if n == 0 {
        return;
    }
    tracing::info!(
        "{why}: committing {n} staged change(s) first (waiting at most {}s; SIGTERM or SIGINT \
         stops waiting and keeps them staged for the next mount)",
        limit.as_secs()
    );
    tokio::select! {
        report = fs.sync(limit) => super::report_flush(report),
        _ = signals_reach(signals, seen + 1) => {
            let (n, _) = pending(fs);
            tracing::warn!(
                "signal received: stopped waiting; {n} staged change(s) stay in {dir} and are \
                 committed by the next mount of this branch with this cache"
            );
        }
    }
}

/// The daemon's shutdown on its first SIGTERM/SIGINT: commit (bounded, a second signal ends
/// the wait), then abort and unmount. Sets `flushed` once the commit wait is over, so the
/// end of the session does not wait again.
pub async fn on_signal(
    fs: Arc<HubFs>,
    mp: std::path::PathBuf,
    limit: Duration,
    mut signals: watch::Receiver<u32>,
    flushed: Arc<AtomicBool>,
) {
    signals_reach(&mut signals, 1).await;
    tracing::info!("signal received: unmounting {}", mp.display());
    flush(&fs, limit, &mut signals, 1, "signal received").await;
    flushed.store(true, Ordering::SeqCst);
    let abort = fs.svc.reader.abort().clone();
    if let Err(e) = abort_and_unmount(&abort, &mp, UNMOUNT_PATIENCE, true).await {
        tracing::warn!("unmount of {} failed: {e}", mp.display());
    }
}

/// After the session ended (`umount`, `hubfs unmount`): commits what is still staged while
/// the daemon lives, bounded by `limit`; any signal ends the wait.
pub async fn after_session(fs: &HubFs, limit: Duration, mut signals: watch::Receiver<u32>) {
    let seen = *signals.borrow_and_update();
    flush(fs, limit, &mut signals, seen, "unmounted").await;
}
