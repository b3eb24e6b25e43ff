//! The committer: turns the staging area's pending changes into Hub commits.
//!
//! Changes are queued when a file is closed (or renamed, deleted...). After a quiet period,
//! or once enough changes wait, the committer takes a batch (bounded in files and inline
//! bytes) and commits it with `parentCommit` = the commit the changes were made on. A moved
//! branch (412) is retried on the new head when none of the pending paths changed on the Hub
//! meanwhile; changed paths become conflicts and stay staged. Other failures are retried with
//! backoff; nothing staged is dropped. A landed commit is journaled at once (which ends the
//! pending state of its changes), then the filesystem's landing hook moves its view to the
//! new commit, both under the write side of the landing gate: filesystem operations that
//! decide from the view and the journal (does the Hub have this path? is it pending?) hold
//! its read side, so they never see a change that is neither pending nor in the commit the
//! view shows. Then the landing is announced, and the filesystem drops what its overlay no
//! longer needs.
//!
//! Nothing here knows about FUSE: the filesystem core calls [`Committer::queued`],
//! [`Committer::wait_landed`] and [`Committer::sync`], and watches [`Committer::landed`].

mod batch;
mod bucket;
pub mod ignore;
pub mod message;
pub mod status;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{watch, Notify};

use crate::hub::{CommitHeader, HubClient, HubError};
use crate::repo::RepoRef;
use crate::stage::{Change, Record, StagingArea};
use batch::git_blob_sha1_file;
pub use batch::{sha256_file, Item};
pub use status::UploadCounters;
use status::{CommitStatus, Conflict, Failure};

/// Batching and retry behaviour. Defaults carry their reasons.
#[derive(Debug, Clone)]
pub struct CommitConfig {
    /// Quiet period after the last queued change: a burst of closes (`cp -r`, an editor's
    /// save dance) lands as one commit instead of one per file.
    pub delay: Duration,
    /// Longest wait under a steady stream of changes, so work still lands regularly.
    pub max_delay: Duration,
    /// Files per commit: the Hub recommends staying around 100.
    pub max_files: usize,
    /// Regular (inline, base64) bytes per commit: commit bodies must stay far below the
    /// Hub's limits and its 60 s server-side commit time.
    pub max_inline_bytes: u64,
    /// LFS objects uploaded at once (each multipart object is parallel on its own too).
    pub upload_concurrency: usize,
    /// First retry delay after a failed commit; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// `--commit-message`; None = a title naming the paths.
    pub message: Option<String>,
    /// Contents at least this big are assumed to go to LFS when sizing a batch (the Hub's
    /// threshold for large files).
    pub lfs_size_hint: u64,
    /// Editor and OS junk: kept local, never committed (`--ignore`, `--no-default-ignore`).
    pub ignore: ignore::IgnoreList,
    /// Upload large contents through Xet when the Hub offers it (None: `--no-xet`, LFS only).
    pub xet: Option<XetWrites>,
}

/// What the committer needs to upload through Xet.
#[derive(Debug, Clone)]
pub struct XetWrites {
    /// xet-core's runtime context (the daemon's tokio runtime).
    pub ctx: xet_runtime::core::XetContext,
    /// xet-data's shard cache and session files (under the staging area).
    pub cache_root: std::path::PathBuf,
    /// Bounds each write-token request.
    pub token_timeout: Duration,
}

impl Default for CommitConfig {
    fn default() -> Self {
        CommitConfig {
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
            max_files: 100,
            max_inline_bytes: 64 << 20,
            upload_concurrency: 4,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            message: None,
            lfs_size_hint: 10 << 20,
            ignore: ignore::IgnoreList::defaults(),
            xet: None,
        }
    }
}

/// Where commits go.
#[derive(Debug, Clone)]
pub struct Target {
    pub repo: RepoRef,
    /// The mounted branch (or `refs/pr/N`).
    pub revision: String,
    /// Open a pull request with the first commit, then commit to it.
    pub create_pr: bool,
}

/// What the mount shows at a path of a bucket: Some(Some(xet hash)) a file, Some(None)
/// nothing, None not known (never listed). Bucket batches compare it with the bucket now.
pub type ShownHook = Box<dyn Fn(&str) -> Option<Option<String>> + Send + Sync>;

/// Called with a commit just journaled as landed; returns once the filesystem shows it.
pub type LandingHook = Box<dyn Fn(String) -> BoxFuture<'static, ()> + Send + Sync>;

/// Outcome of `hubfs sync`.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub ok: bool,
    /// Paths that could not be committed, with the reason.
    pub failed: Vec<(String, String)>,
}

pub struct Committer {
    area: Arc<StagingArea>,
    client: HubClient,
    target: Target,
    cfg: CommitConfig,
    wake: Notify,
    flush: AtomicBool,
    state: Mutex<CommitStatus>,
    /// Bumped on every landing, conflict or failure: waiters re-check their condition.
    changed: watch::Sender<u64>,
    /// The newest commit the mounted revision is known to be at (after our commits).
    landed: watch::Sender<Option<String>>,
    after_landing: OnceLock<LandingHook>,
    gate: tokio::sync::RwLock<()>,
    /// A bucket target: uploads through Xet and lands with the batch API (see `bucket`).
    bucket: OnceLock<std::sync::Arc<crate::hub::xet::XetUploader>>,
    shown: OnceLock<ShownHook>,
}

/// How a failed batch is handled.
enum Outcome {
    Landed,
    /// Try again at once (the base moved, conflicts were set aside).
    Again,
    Failed(HubError),
}

impl Committer {
    pub fn new(
        area: Arc<StagingArea>,
        client: HubClient,
        target: Target,
        cfg: CommitConfig,
    ) -> Arc<Committer> {
        let revision = area
            .with_journal(|j| j.target().map(str::to_string))
            .unwrap_or_else(|| target.revision.clone());
        Arc::new(Committer {
            area,
            client,
            state: Mutex::new(CommitStatus {
                revision,
                ..CommitStatus::default()
            }),
            target,
            cfg,
            wake: Notify::new(),
            flush: AtomicBool::new(false),
            changed: watch::channel(0).0,
            landed: watch::channel(None).0,
            after_landing: OnceLock::new(),
            gate: tokio::sync::RwLock::new(()),
            bucket: OnceLock::new(),
            shown: OnceLock::new(),
        })
    }

    pub fn area(&self) -> &Arc<StagingArea> {
        &self.area
    }

    /// Sets the hook run after each landing is journaled (once, before [`Committer::spawn`]).
    pub fn on_landing(&self, hook: LandingHook) {
        let _ = self.after_landing.set(hook);
    }

    /// Makes this the committer of a bucket: batches go through `uploader` and the batch API.
    pub fn set_bucket_uploader(&self, uploader: Arc<crate::hub::xet::XetUploader>) {
        let _ = self.bucket.set(uploader);
    }

    /// Sets how a bucket batch learns what the mount showed at a path (conflict detection).
    pub fn on_shown(&self, hook: ShownHook) {
        let _ = self.shown.set(hook);
    }

    /// Held (read side) by filesystem operations that decide from the view and the journal;
    /// a landing takes the write side from its journaling until the view shows it.
    pub async fn landing_gate(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().await
    }

    /// Starts the background loop on `rt`.
    pub fn spawn(self: &Arc<Self>, rt: &tokio::runtime::Handle) {
        let me = self.clone();
        rt.spawn(async move { me.run().await });
        if self.area.with_journal(|j| !j.pending().is_empty()) {
            tracing::info!("replaying staged changes of an earlier mount");
            self.queued();
        }
    }

    /// A change was journaled: commit it after the quiet period.
    pub fn queued(&self) {
        self.wake.notify_one();
    }

    /// Commit what is pending now, without the quiet period.
    pub fn flush_now(&self) {
        self.flush.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Announces landed commits (the new commit id of the mounted revision).
    pub fn landed(&self) -> watch::Receiver<Option<String>> {
        self.landed.subscribe()
    }

    pub fn status(&self) -> CommitStatus {
        self.state.lock().clone()
    }

    /// Pending changes in the journal.
    pub fn pending_count(&self) -> usize {
        self.area.with_journal(|j| {
            j.pending()
                .iter()
                .filter(|(path, p)| !self.local_only(path, &p.change))
                .count()
        })
    }

    /// An ignored file's content: stays pending in the journal (so it lives on in the mount,
    /// across remounts) but is never committed. Deleting an ignored name is committed like
    /// any deletion (dropped when the Hub has no such file).
    pub fn local_only(&self, path: &str, change: &Change) -> bool {
        !matches!(change, Change::Delete) && self.cfg.ignore.is_ignored(path)
    }

    /// Waits until version `seq` of `path` has landed (Ok), cannot land without the user
    /// (Err: conflict or permanent failure), or `timeout` passes (Err).
    pub async fn wait_landed(&self, path: &str, seq: u64, timeout: Duration) -> Result<(), String> {
        self.flush_now();
        let mut rx = self.changed.subscribe();
        let deadline = Instant::now() + timeout;
        loop {
            let pending = self.area.with_journal(|j| {
                j.pending()
                    .get(path)
                    .filter(|p| !self.local_only(path, &p.change))
                    .map(|p| p.seq)
            });
            if pending.is_none_or(|s| s > seq) {
                return Ok(());
            }
            if let Some(reason) = self.blocked_reason(path, seq) {
                return Err(reason);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                return Err(format!("{path}: not committed after {timeout:?}"));
            }
        }
    }

    /// Why version `seq` of `path` cannot land without the user, if it cannot.
    fn blocked_reason(&self, path: &str, seq: u64) -> Option<String> {
        let st = self.state.lock();
        if let Some(c) = st.conflicts.get(path).filter(|c| c.seq == seq) {
            return Some(format!(
                "conflict: changed on the Hub since {} (head {})",
                short(&c.base),
                short(&c.head)
            ));
        }
        st.failures
            .get(path)
            .filter(|f| f.seq == seq && f.permanent)
            .map(|f| f.error.clone())
    }

    /// `hubfs sync`: commits everything pending now and waits until it landed, or until what
    /// is left cannot land without the user, or `timeout`.
    pub async fn sync(&self, timeout: Duration) -> SyncReport {
        self.flush_now();
        let mut rx = self.changed.subscribe();
        let deadline = Instant::now() + timeout;
        loop {
            let pending: Vec<(String, u64)> = self.area.with_journal(|j| {
                j.pending()
                    .iter()
                    .filter(|(p, v)| !self.local_only(p, &v.change))
                    .map(|(p, v)| (p.clone(), v.seq))
                    .collect()
            });
            let blocked: Vec<(String, String)> = pending
                .iter()
                .filter_map(|(p, s)| self.blocked_reason(p, *s).map(|r| (p.clone(), r)))
                .collect();
            let left = deadline.saturating_duration_since(Instant::now());
            let timed_out = left.is_zero();
            if blocked.len() == pending.len() || timed_out {
                let mut failed = blocked;
                if timed_out {
                    let last = self.state.lock().last_error.clone();
                    for (p, s) in &pending {
                        if self.blocked_reason(p, *s).is_none() {
                            let why = last.clone().unwrap_or_else(|| "still uploading".into());
                            failed.push((p.clone(), format!("not committed yet: {why}")));
                        }
                    }
                }
                return SyncReport {
                    ok: failed.is_empty(),
                    failed,
                };
            }
            let _ = tokio::time::timeout(left, rx.changed()).await;
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            let started = Instant::now();
            loop {
                if self.flush.swap(false, Ordering::SeqCst)
                    || self.committable().len() >= self.cfg.max_files
                    || started.elapsed() >= self.cfg.max_delay
                {
                    break;
                }
                if tokio::time::timeout(self.cfg.delay, self.wake.notified())
                    .await
                    .is_err()
                {
                    break;
                }
            }
            self.drain().await;
        }
    }

    /// Pending changes that may be committed now (not parked as conflicts), oldest first.
    fn committable(&self) -> Vec<Item> {
        let mut items: Vec<Item> = self.area.with_journal(|j| {
            j.pending()
                .iter()
                .filter(|(path, p)| !self.local_only(path, &p.change))
                .map(|(path, p)| Item {
                    path: path.clone(),
                    seq: p.seq,
                    change: p.change.clone(),
                })
                .collect()
        });
        let mut st = self.state.lock();
        // A newer local change of a conflicting path re-queues it on the current head.
        st.conflicts
            .retain(|p, c| items.iter().any(|i| &i.path == p && i.seq == c.seq));
        items.retain(|i| !st.conflicts.contains_key(&i.path));
        items.sort_by_key(|i| i.seq);
        items
    }

    /// Commits batches until nothing committable is left; backs off on failures.
    async fn drain(&self) {
        let mut backoff = self.cfg.min_backoff;
        loop {
            let batch = self.next_batch();
            if batch.is_empty() {
                return;
            }
            match self.commit_batch(&batch).await {
                Outcome::Landed | Outcome::Again => {
                    backoff = self.cfg.min_backoff;
                    // What piled up while this batch was committing waits for its own quiet
                    // period (unless it already fills a batch or someone asked to flush), so a
                    // long `cp -r` makes a few full commits, not a trail of small ones.
                    let waiting = self.committable().len();
                    if waiting < self.cfg.max_files && !self.flush.load(Ordering::SeqCst) {
                        if waiting > 0 {
                            self.wake.notify_one();
                        }
                        return;
                    }
                }
                Outcome::Failed(e) => {
                    tracing::warn!(
                        "commit of {} change(s) failed, retrying in {backoff:?}: {e}",
                        batch.len()
                    );
                    self.note_failure(&batch, &e);
                    // A flush request (sync, fsync) retries at once.
                    let jitter = Duration::from_millis(fastrand::u64(0..250));
                    let _ = tokio::time::timeout(backoff + jitter, self.wake.notified()).await;
                    backoff = (backoff * 2).min(self.cfg.max_backoff);
                }
            }
        }
    }

    /// The oldest committable changes, within the file and inline-byte limits.
    fn next_batch(&self) -> Vec<Item> {
        let mut batch = Vec::new();
        let mut inline = 0u64;
        for item in self.committable() {
            let size = match &item.change {
                Change::Put { size, .. } if *size < self.cfg.lfs_size_hint => *size,
                _ => 0,
            };
            if !batch.is_empty()
                && (batch.len() >= self.cfg.max_files || inline + size > self.cfg.max_inline_bytes)
            {
                break;
            }
            inline += size;
            batch.push(item);
        }
        batch
    }

    fn note_failure(&self, batch: &[Item], e: &HubError) {
        let permanent = !e.is_retryable() && !matches!(e, HubError::CommitUnknown { .. });
        let mut st = self.state.lock();
        st.last_error = Some(e.to_string());
        for item in batch {
            st.failures.insert(
                item.path.clone(),
                Failure {
                    seq: item.seq,
                    error: e.to_string(),
                    permanent,
                },
            );
        }
        drop(st);
        self.changed.send_modify(|g| *g += 1);
    }

    async fn commit_batch(&self, batch: &[Item]) -> Outcome {
        let ids: Vec<u64> = batch
            .iter()
            .filter_map(|i| i.change.staging_file())
            .collect();
        self.area.pin(&ids);
        self.state.lock().in_flight = batch.len();
        let outcome = self.try_commit(batch).await;
        self.state.lock().in_flight = 0;
        self.area.unpin(&ids);
        outcome
    }

    async fn try_commit(&self, batch: &[Item]) -> Outcome {
        if self.target.repo.repo_type == crate::repo::RepoType::Bucket {
            return self.try_bucket_batch(batch).await;
        }
        let (base, revision, opening_pr) = {
            let (base, target) = self
                .area
                .with_journal(|j| (j.base().map(str::to_string), j.target().map(str::to_string)));
            let Some(base) = base else {
                return Outcome::Failed(HubError::invalid("the journal has no base commit"));
            };
            let opening_pr = self.target.create_pr && target.is_none();
            (
                base,
                target.unwrap_or_else(|| self.target.revision.clone()),
                opening_pr,
            )
        };
        let dest = batch::Destination {
            client: &self.client,
            repo: &self.target.repo,
            revision: &revision,
            create_pr: opening_pr,
            base: &base,
            upload_concurrency: self.cfg.upload_concurrency,
            xet: self.cfg.xet.as_ref(),
        };
        let prepared = match batch::prepare(&dest, &self.area, batch).await {
            Ok(p) => p,
            Err(e) => return Outcome::Failed(e),
        };
        self.state.lock().uploads.add(&prepared.uploads);
        if prepared.ops.is_empty() {
            // Nothing to change on the Hub (deleted paths already gone, ignored files).
            return self.record_landed(&base, batch, None, 0).await;
        }
        let marker = format!("hubfs-batch: {:016x}", fastrand::u64(..));
        let header = CommitHeader {
            summary: self
                .cfg
                .message
                .clone()
                .unwrap_or_else(|| message::title(&prepared.effects)),
            description: marker.clone(),
            parent_commit: Some(base.clone()),
        };
        let result = self
            .client
            .commit(
                &self.target.repo,
                &revision,
                header,
                prepared.ops,
                opening_pr,
            )
            .await;
        tracing::debug!(
            "commit of {} change(s), {} bytes uploaded ({} file(s) through Xet): {}",
            batch.len(),
            prepared.bytes_uploaded,
            prepared.uploads.xet_files,
            if result.is_ok() { "landed" } else { "failed" }
        );
        match result {
            Ok(answer) => {
                let pr = answer
                    .pull_request_url
                    .as_deref()
                    .and_then(|u| u.rsplit('/').next())
                    .filter(|n| opening_pr && n.parse::<u64>().is_ok())
                    .map(|n| format!("refs/pr/{n}"));
                if let Some(pr) = &pr {
                    tracing::info!("opened pull request {pr}");
                }
                self.record_landed(&answer.commit_oid, batch, pr, 1).await
            }
            Err(HubError::Conflict { .. }) => self.after_moved_branch(&base, &revision).await,
            Err(HubError::CommitUnknown { cause }) => {
                self.after_unknown_outcome(&base, &revision, &marker, batch, cause)
                    .await
            }
            Err(e) => Outcome::Failed(e),
        }
    }

    async fn record_landed(
        &self,
        commit: &str,
        batch: &[Item],
        pr: Option<String>,
        commits: u64,
    ) -> Outcome {
        let _gate = self.gate.write().await;
        let mut records = Vec::new();
        if let Some(pr) = &pr {
            records.push(Record::Target {
                revision: pr.clone(),
            });
        }
        records.push(Record::Landed {
            commit: commit.to_string(),
            paths: batch.iter().map(|i| (i.path.clone(), i.seq)).collect(),
        });
        if let Err(e) = self.area.record(&records) {
            // The commit is on the Hub; replaying it later is harmless (a no-op commit).
            tracing::error!("journaling a landed commit failed: {e}");
        }
        if let Some(hook) = self.after_landing.get() {
            hook(commit.to_string()).await;
        }
        drop(_gate);
        {
            let mut st = self.state.lock();
            st.commits += commits;
            st.committed_changes += batch.len() as u64;
            st.last_error = None;
            if let Some(pr) = pr {
                st.revision = pr;
            }
            for item in batch {
                if st
                    .failures
                    .get(&item.path)
                    .is_some_and(|f| f.seq <= item.seq)
                {
                    st.failures.remove(&item.path);
                }
            }
        }
        if commits > 0 {
            tracing::info!("committed {} change(s) as {}", batch.len(), short(commit));
        }
        self.landed.send_replace(Some(commit.to_string()));
        self.changed.send_modify(|g| *g += 1);
        Outcome::Landed
    }

    /// The head of `revision` now.
    async fn head(&self, revision: &str) -> Result<String, HubError> {
        let info = self
            .client
            .repo_info(&self.target.repo, Some(revision), false)
            .await?;
        info.sha
            .ok_or_else(|| HubError::invalid("the Hub answered without a commit id"))
    }

    /// 412: the branch moved. Pending paths the Hub changed since `base` become conflicts;
    /// the rest are retried on the new head.
    async fn after_moved_branch(&self, base: &str, revision: &str) -> Outcome {
        let head = match self.head(revision).await {
            Ok(h) => h,
            Err(e) => return Outcome::Failed(e),
        };
        // Ignored junk never lands: it cannot conflict with the Hub.
        let pending: BTreeMap<String, u64> = self.area.with_journal(|j| {
            j.pending()
                .iter()
                .filter(|(p, v)| !self.local_only(p, &v.change))
                .map(|(p, v)| (p.clone(), v.seq))
                .collect()
        });
        let paths: Vec<String> = pending.keys().cloned().collect();
        let mut changed = match self.changed_paths(base, &head, &paths).await {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(e),
        };
        if !changed.is_empty() {
            // Our own commit may be what moved the branch: it landed but the daemon died
            // before journaling it. Paths the head already has exactly as staged are not
            // conflicts (committing them again on the head changes nothing).
            let asked: Vec<String> = changed.iter().cloned().collect();
            match self.already_on(&head, &asked).await {
                Ok(same) => changed.retain(|p| !same.contains(p)),
                Err(e) => return Outcome::Failed(e),
            }
        }
        if !changed.is_empty() {
            tracing::warn!(
                "conflict: {} staged path(s) changed on the Hub between {} and {}: {}; \
                 they stay staged and are not committed",
                changed.len(),
                short(base),
                short(&head),
                changed.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        {
            let mut st = self.state.lock();
            for path in &changed {
                st.conflicts.insert(
                    path.clone(),
                    Conflict {
                        seq: pending[path],
                        base: base.to_string(),
                        head: head.clone(),
                    },
                );
            }
        }
        tracing::info!(
            "{revision} moved from {} to {}: retrying on the new head",
            short(base),
            short(&head)
        );
        if let Err(e) = self.area.record(&[Record::Base {
            commit: head.clone(),
        }]) {
            return Outcome::Failed(HubError::invalid(format!("journal: {e}")));
        }
        self.landed.send_replace(Some(head));
        self.changed.send_modify(|g| *g += 1);
        Outcome::Again
    }

    /// Which of `paths` commit `at` already has exactly as their pending change makes them.
    async fn already_on(&self, at: &str, paths: &[String]) -> Result<HashSet<String>, HubError> {
        let entries = self.client.paths_info(&self.target.repo, at, paths).await?;
        let pending: BTreeMap<String, Change> = self.area.with_journal(|j| {
            paths
                .iter()
                .filter_map(|p| j.pending().get(p).map(|v| (p.clone(), v.change.clone())))
                .collect()
        });
        let mut same = HashSet::new();
        for (path, change) in pending {
            let entry = entries.iter().find(|e| e.path == path && !e.is_dir());
            let equal = match (&change, entry) {
                (Change::Delete, None) => true,
                (Change::CopyLfs { sha256, .. }, Some(e)) => {
                    e.lfs.as_ref().is_some_and(|l| l.oid == *sha256)
                }
                (Change::Put { file, .. }, Some(e)) => {
                    let staged = self.area.file_path(*file);
                    let lfs = e.lfs.as_ref().map(|l| l.oid.clone());
                    let oid = e.oid.clone();
                    tokio::task::spawn_blocking(move || match lfs {
                        Some(sha) => Ok(sha256_file(&staged)? == sha),
                        None => Ok(git_blob_sha1_file(&staged)? == oid),
                    })
                    .await
                    .map_err(|e| HubError::invalid(format!("hashing task failed: {e}")))?
                    .unwrap_or_else(|e: std::io::Error| {
                        tracing::warn!("hashing staged {path}: {e}");
                        false
                    })
                }
                _ => false,
            };
            if equal {
                same.insert(path);
            }
        }
        Ok(same)
    }

    /// Paths whose entry differs between two commits (added, removed or changed content).
    async fn changed_paths(
        &self,
        from: &str,
        to: &str,
        paths: &[String],
    ) -> Result<HashSet<String>, HubError> {
        let repo = &self.target.repo;
        let before = self.client.paths_info(repo, from, paths).await?;
        let after = self.client.paths_info(repo, to, paths).await?;
        let key = |e: &crate::hub::TreeEntry| (e.path.clone(), e.oid.clone());
        let a: HashSet<_> = before.iter().map(key).collect();
        let b: HashSet<_> = after.iter().map(key).collect();
        Ok(a.symmetric_difference(&b).map(|(p, _)| p.clone()).collect())
    }

    /// The commit POST failed ambiguously: look at the head to learn whether it landed.
    async fn after_unknown_outcome(
        &self,
        base: &str,
        revision: &str,
        marker: &str,
        batch: &[Item],
        cause: String,
    ) -> Outcome {
        tracing::warn!("commit outcome unknown ({cause}): checking the branch head");
        let head = match self.head(revision).await {
            Ok(h) => h,
            Err(e) => return Outcome::Failed(e),
        };
        if head == base {
            return Outcome::Failed(HubError::CommitUnknown { cause });
        }
        match self.client.list_commits(&self.target.repo, &head, 1).await {
            Ok(commits) if commits.first().is_some_and(|c| c.message.contains(marker)) => {
                tracing::info!("the commit had landed as {}", short(&head));
                self.record_landed(&head, batch, None, 1).await
            }
            Ok(_) => self.after_moved_branch(base, revision).await,
            Err(e) => Outcome::Failed(e),
        }
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(8)]
}
