//! The mount daemon: turns command-line options into a running FUSE session.
//!
//! `run` wires the layers together (token → Hub client → cache → filesystem core → FUSE
//! adapter), mounts, reports readiness to the parent `hubfs mount`, serves the control socket,
//! and unmounts cleanly on SIGTERM/SIGINT or when someone runs `umount`.

pub mod control;
pub mod environ;
pub mod fuse_access;
pub mod helper;
pub mod mountpoint;
pub mod mounts;
pub mod notify;
pub mod ready;
pub mod shutdown;
pub mod writable;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{lock_cache_dir, BlockCache, CacheConfig, ChunkStore, Inventory, MetaStore};
use crate::commit::{CommitConfig, Committer};
use crate::fs::services::{bounded, token_fingerprint};
use crate::fs::{FsConfig, HubFs, MountRoot, Services, WriteSetup};
use crate::fuse::{FuseAdapter, KernelTuning};
use crate::hub::{loose_token_file_warning, token_source_file, HubClient, HubConfig, Token};
use crate::read::{ReadConfig, ReadPath};
use crate::repo::HfPath;
use crate::stage::StagingArea;
use ready::ReadyPipe;

/// Everything `hubfs mount` was asked to do.
#[derive(Debug, Clone)]
pub struct MountOptions {
    pub source: String,
    pub mountpoint: PathBuf,
    pub endpoint: String,
    pub token_file: Option<PathBuf>,
    pub cache_dir: PathBuf,
    pub cache_size: u64,
    pub read_only: bool,
    pub refresh: Option<Duration>,
    pub allow_other: bool,
    pub offline: bool,
    /// FUSE worker threads reading /dev/fuse.
    pub fuse_threads: usize,
    /// A Hub request making no progress for this long fails (EIO), retries included.
    pub io_timeout: Duration,
    /// Entry budget of a listing and of a revision's tree (`ListingLimits::max_entries`).
    pub max_entries: usize,
    /// Largest read-ahead window (`ReadConfig::max_window`).
    pub read_ahead: u64,
    /// Read-ahead memory budget of the mount (`ReadConfig::fresh_bytes`).
    pub read_ahead_memory: u64,
    /// Range requests in flight for the mount (`ReadConfig::max_parallel_requests`).
    pub max_requests: usize,
    /// Writable mounts: changes go to a pull request instead of the branch.
    pub create_pr: bool,
    /// Writable mounts: quiet period before queued changes are committed.
    pub commit_delay: Duration,
    /// Writable mounts: title of every commit (None = one naming the paths).
    pub commit_message: Option<String>,
    /// Writable mounts: names kept local, never committed.
    pub ignore: crate::commit::ignore::IgnoreList,
    /// Longest wait for staged changes to land when unmounting (or on SIGTERM).
    pub flush_timeout: Duration,
    /// Owner shown for every file (None: the user who mounts).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Permission bits shown for files and directories (None: hubfs's defaults, see FsConfig).
    pub file_mode: Option<u16>,
    pub dir_mode: Option<u16>,
    /// Mount over a directory that has entries (hiding them while mounted).
    pub allow_non_empty: bool,
    /// Where to serve Prometheus metrics (`/metrics`); None: nowhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Where the daemon logs (None: stderr, in the foreground), reported by `hubfs status`.
    pub log_file: Option<PathBuf>,
    /// The huggingface_hub cache whose verified blobs are served without fetching (None: off).
    pub hf_cache: Option<PathBuf>,
    /// Read files that have a `xetHash` from the CAS (verified chunks) before the bridge, and
    /// upload large files through Xet when the Hub offers it (else LFS).
    pub xet: bool,
    /// The cluster's shared cache tier (`--shared-cache s3://...`); None: off.
    pub shared_cache: Option<crate::shared::SharedCacheOptions>,
}

pub use crate::cache::default_cache_dir;

/// The block cache keeps blob files open; give it the hard limit instead of the soft one.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max.min(1 << 16);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// The CAS reader of an online mount (None offline or with `--no-xet`), on the daemon's runtime.
fn xet_reader(
    opts: &MountOptions,
    client: Option<&HubClient>,
    rt: &tokio::runtime::Runtime,
) -> Option<crate::read::xet::XetReader> {
    let client = client.filter(|_| opts.xet)?;
    crate::hub::xet::install_crypto_provider();
    let ctx = xet_runtime::core::XetContext::from_external(
        rt.handle().clone(),
        crate::hub::xet::xet_config(opts.io_timeout),
    );
    Some(crate::read::xet::XetReader::new(
        client.clone(),
        ctx,
        opts.io_timeout,
    ))
}

/// Xet uploads of a writable mount (unless `--no-xet`): xet-core on the daemon's runtime, its
/// shard cache beside the staging files it uploads.
fn xet_writes(opts: &MountOptions, staging: &std::path::Path) -> crate::commit::XetWrites {
    crate::hub::xet::install_crypto_provider();
    crate::commit::XetWrites {
        ctx: xet_runtime::core::XetContext::from_external(
            tokio::runtime::Handle::current(),
            crate::hub::xet::xet_config(opts.io_timeout),
        ),
        cache_root: staging.join("xet"),
        token_timeout: opts.io_timeout,
    }
}

/// huggingface_hub's truthy values for HF_HUB_OFFLINE.
pub fn env_offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| matches!(v.to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE"))
        .unwrap_or(false)
}

/// Finds the token, warns about a token file others can read, and wipes the token from the
/// process environment (see `environ`).
///
/// # Safety
/// No other thread may exist yet (the environment is changed).
unsafe fn take_token(opts: &MountOptions, ready: &mut ReadyPipe) -> Result<Option<Token>, String> {
    let token = Token::discover(opts.token_file.as_deref()).map_err(|e| e.to_string());
    let file = token_source_file(opts.token_file.as_deref(), |n| std::env::var_os(n));
    // SAFETY: single thread, per this function's contract.
    unsafe { environ::scrub_token_vars() };
    let token = token?;
    if let Some(warning) = file
        .filter(|_| token.is_some())
        .and_then(|f| loose_token_file_warning(&f))
    {
        tracing::warn!("{warning}");
        ready.notice(&warning);
    }
    Ok(token)
}

/// Runs the mount in this process until it is unmounted. Failures before the mount is live are
/// returned (and sent through `ready`); afterwards they are logged.
///
/// # Safety
/// Must be called while the process has a single thread: the token is wiped from the process
/// environment before the runtime starts.
pub unsafe fn run(opts: MountOptions, mut ready: ReadyPipe) -> Result<(), String> {
    // SAFETY: single thread, per this function's contract.
    ready.systemd = unsafe { notify::Notifier::from_env() };
    // Read before the secrets are wiped from the environment (see `environ`).
    let aws = environ::aws_vars();
    // SAFETY: single thread, per this function's contract.
    let token = match unsafe { take_token(&opts, &mut ready) } {
        Ok(t) => t,
        Err(e) => {
            ready.fail(&e);
            return Err(e);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .thread_name("hubfs-worker")
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"));
    let result = rt.and_then(|rt| {
        let result = run_inner(&opts, token, &aws, &mut ready, &rt);
        if result.is_err() {
            // Tell the user now: a request still in flight (the early repo info) must not
            // hold the answer back until it times out.
            rt.shutdown_background();
        } else {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        result
    });
    if let Err(e) = &result {
        ready.fail(e);
    }
    result
}

fn run_inner(
    opts: &MountOptions,
    token: Option<Token>,
    aws: &std::collections::HashMap<String, String>,
    ready: &mut ReadyPipe,
    rt: &tokio::runtime::Runtime,
) -> Result<(), String> {
    // hubfs sets 0700/0600 on what it creates itself (`private`), but libraries write too
    // (xet-data's shard cache under staging/xet, describing private repos' files): a private
    // umask for the whole daemon keeps theirs private as well, whatever the caller's umask.
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    let source = HfPath::parse(&opts.source).map_err(|e| e.to_string())?;
    let mountpoint = mountpoint::check_mountpoint(&opts.mountpoint)?;
    if !opts.allow_non_empty {
        mountpoint::check_empty(&mountpoint)?;
    }
    fuse_access::check(opts.allow_other)?;
    // Bound before anything else: a taken port fails the mount now, with its cause.
    let metrics_listener = opts
        .metrics_addr
        .map(|addr| {
            std::net::TcpListener::bind(addr)
                .map_err(|e| format!("--metrics-addr {addr}: cannot listen there: {e}"))
        })
        .transpose()?;

    let fingerprint = token.as_ref().map(token_fingerprint);
    let client = if opts.offline {
        None
    } else {
        let endpoint = url::Url::parse(opts.endpoint.trim_end_matches('/'))
            .map_err(|e| format!("bad endpoint {:?}: {e}", opts.endpoint))?;
        let _guard = rt.enter();
        let mut cfg = HubConfig::new(endpoint, token);
        // One attempt may not outlast the whole budget of the read that waits on it.
        cfg.read_idle_timeout = cfg.read_idle_timeout.min(opts.io_timeout);
        cfg.api_timeout = cfg.api_timeout.min(opts.io_timeout);
        cfg.listing.max_entries = opts.max_entries;
        cfg.ca_bundle = HubConfig::ca_bundle_from_env();
        Some(HubClient::new(cfg).map_err(|e| e.to_string())?)
    };

    let root = match source {
        HfPath::Hub => MountRoot::Hub,
        HfPath::Repo {
            repo,
            revision,
            subpath,
        } => MountRoot::Repo {
            repo,
            revision,
            subpath,
        },
    };
    // The root repo's info is the round trip every mount needs: ask now, so opening the cache
    // and deciding writability (itself a round trip with a token) happen while it travels.
    let root_info = match (&root, &client) {
        (MountRoot::Repo { repo, revision, .. }, Some(client)) => {
            let (client, repo, revision) = (client.clone(), repo.clone(), revision.clone());
            let limit = opts.io_timeout;
            Some(rt.spawn(async move {
                let call = client.repo_info(&repo, revision.as_deref(), true);
                bounded(limit, &repo.to_string(), call).await
            }))
        }
        _ => None,
    };

    secure_cache_dir(&opts.cache_dir)?;
    let (cache_lock, cache_dir) = lock_cache_dir(&opts.cache_dir)
        .map_err(|e| format!("cache dir {}: {e}", opts.cache_dir.display()))?;
    raise_fd_limit();
    let cache = BlockCache::open(CacheConfig {
        max_bytes: opts.cache_size,
        ..CacheConfig::new(&cache_dir)
    })
    .map_err(|e| format!("opening the block cache in {}: {e}", cache_dir.display()))?;
    let meta = Arc::new(
        MetaStore::open(cache_dir.clone())
            .map_err(|e| format!("opening the metadata store in {}: {e}", cache_dir.display()))?,
    );
    // What each cached blob is, for `hubfs cache ls|rm`; records of blobs evicted while no
    // daemon was keeping them in step go now.
    let inventory = Arc::new(Inventory::new(meta.clone()));
    if let Err(e) = inventory.prune(|k| cache.holds(k)) {
        tracing::warn!("pruning cached blob records: {e}");
    }
    let shared = shared_cache(opts, aws, rt)?;
    let cache = Arc::new(cache);
    let xet = xet_reader(opts, client.as_ref(), rt).map(|x| {
        // The chunk store shares the cache's cap; without it Xet reads still work, uncached.
        let store = ChunkStore::open(&cache_dir, &cache)
            .map_err(|e| {
                tracing::warn!(
                    "opening the Xet chunk store in {}: {e}",
                    cache_dir.display()
                )
            })
            .ok()
            .map(Arc::new);
        Arc::new(x.with_chunks(store))
    });
    let reader = Arc::new(
        ReadPath::new(
            client.clone(),
            cache,
            ReadConfig {
                io_timeout: opts.io_timeout,
                max_window: opts.read_ahead.max(1 << 20),
                max_parallel_requests: opts.max_requests,
                fresh_bytes: opts.read_ahead_memory,
                ..ReadConfig::default()
            },
        )
        .with_hf_cache(opts.hf_cache.clone())
        .with_inventory(inventory)
        .with_xet(xet)
        .with_shared_cache(shared),
    );
    let svc = Arc::new(Services {
        client,
        meta,
        reader,
        token_fingerprint: fingerprint,
        rt: rt.handle().clone(),
        io_timeout: opts.io_timeout,
    });
    let (setup, root_info) = rt.block_on(async {
        let info = async {
            match root_info {
                // A lost task (it cannot panic short of a bug) is asked again by HubFs::new.
                Some(task) => task.await.ok(),
                None => None,
            }
        };
        tokio::join!(write_setup(opts, &root, &svc), info)
    });
    let (writes, read_only_reason) = match setup {
        Ok(w) => (w, None),
        Err(why) => (None, Some(why)),
    };
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let fs_cfg = FsConfig {
        uid: opts.uid.unwrap_or(uid),
        gid: opts.gid.unwrap_or(gid),
        file_mode: opts.file_mode,
        dir_mode: opts.dir_mode,
        branch_ttl: opts.refresh.unwrap_or(FsConfig::default().branch_ttl),
        refresh: opts.refresh,
        ..FsConfig::default()
    };
    if let (true, Some(hf), MountRoot::Repo { repo, revision, .. }) =
        (opts.offline, &opts.hf_cache, &root)
    {
        // An offline mount of a revision this cache never saw: take it from the HF cache.
        let listing = || crate::read::hf_cache::snapshot_listing(hf, repo, revision.as_deref());
        if svc.seed_offline_revision(repo, revision.as_deref(), listing) {
            tracing::info!(
                "offline: {repo} listed from the HF cache in {}",
                hf.display()
            );
        }
    }
    let writable = writes.is_some();
    let fs = rt
        .block_on(HubFs::new(svc, fs_cfg, root, writes, root_info))
        .map_err(|e| e.to_string())?;
    // Told only once the mount works: a failing mount gets its one-line reason alone.
    if let Some(why) = read_only_reason.filter(|w| !w.is_empty()) {
        tracing::warn!("{why}");
        ready.notice(&why);
    }

    let mut config = fuser::Config::default();
    config.mount_options = vec![
        // The source as given, so `findmnt` and mount(8) (`mount -a` skips what is mounted
        // already) match it with the fstab line.
        fuser::MountOption::FSName(opts.source.clone()),
        subtype_option(),
        if writable {
            fuser::MountOption::RW
        } else {
            fuser::MountOption::RO
        },
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
        fuser::MountOption::DefaultPermissions,
    ];
    if opts.allow_other {
        config.acl = fuser::SessionACL::All;
        config
            .mount_options
            .push(fuser::MountOption::CUSTOM("allow_other".into()));
    }
    config.n_threads = Some(opts.fuse_threads.max(1));
    config.clone_fd = true;
    let tuning = KernelTuning::default();
    let read_ahead = tuning.read_ahead_kib;
    let adapter = FuseAdapter::new(fs.clone(), rt.handle().clone(), tuning);
    let session = fuser::Session::new(adapter, &mountpoint, &config).map_err(|e| {
        let why = fuse_access::explain_mount_error(&e.to_string(), opts.allow_other);
        format!("mounting on {}: {why}", mountpoint.display())
    })?;
    if let Err(e) = mountpoint::set_read_ahead(&mountpoint, read_ahead) {
        // Only root may; others keep the kernel's 128 KiB default.
        tracing::info!("kernel read-ahead left at its default ({e})");
    }

    let control = {
        let _guard = rt.enter();
        let fs = fs.clone();
        let mp = mountpoint.clone();
        let about = Arc::new(about_mount(opts, writable, &cache_dir));
        control::serve(&mountpoint, move |req| {
            let (fs, mp, about) = (fs.clone(), mp.clone(), about.clone());
            async move { handle_control(&fs, &mp, &about, req).await }
        })
        .map_err(|e| format!("control socket: {e}"))?
    };
    let metrics = match metrics_listener {
        Some(listener) => {
            let _guard = rt.enter();
            let status_fs = fs.clone();
            let status: crate::metrics::StatusSource = Arc::new(move || status_fs.status());
            let hub = fs.svc.client.as_ref().map(|c| c.request_metrics());
            let registry = crate::metrics::registry(status, hub);
            let addr = listener
                .local_addr()
                .map_err(|e| format!("--metrics-addr: {e}"))?;
            let task = crate::metrics::serve(listener, registry)
                .map_err(|e| format!("--metrics-addr {addr}: {e}"))?;
            tracing::info!("metrics at http://{addr}/metrics");
            Some(task)
        }
        None => None,
    };

    // SIGTERM / SIGINT: commit what is staged (bounded; a second signal stops waiting), then
    // abort Hub requests and unmount. A plain `umount` ends the session by itself.
    let signals = {
        let _guard = rt.enter();
        shutdown::watch_signals().map_err(|e| format!("watching SIGTERM/SIGINT: {e}"))?
    };
    let flushed = Arc::new(AtomicBool::new(false));
    let on_signal = rt.spawn(shutdown::on_signal(
        fs.clone(),
        mountpoint.clone(),
        opts.flush_timeout,
        signals.clone(),
        flushed.clone(),
    ));
    tracing::info!("mounted {} on {}", opts.source, mountpoint.display());
    ready.ok();

    let result = session.run();
    ready.systemd.notify("STOPPING=1");
    if *signals.borrow() > 0 {
        // The signal's shutdown is under way: let it finish its (bounded) commit wait.
        let _ = rt.block_on(on_signal);
    }
    if !flushed.load(Ordering::SeqCst) {
        // Unmounted by `umount` or `hubfs unmount`: still commit what is staged while the
        // daemon lives (bounded; the journal keeps anything left for the next mount).
        rt.block_on(shutdown::after_session(&fs, opts.flush_timeout, signals));
    }
    drop(control);
    if let Some(task) = metrics {
        task.abort();
    }
    drop(cache_lock);
    tracing::info!("unmounted {}", mountpoint.display());
    result.map_err(|e| format!("FUSE session ended with an error: {e}"))
}

/// Builds the staging area and committer of a writable mount: Ok(None) when read-only by
/// nature or request, Err(reason) when a branch mount must be read-only (the reason is logged
/// and shown on the stderr of `hubfs mount`; empty = nothing worth telling).
async fn write_setup(
    opts: &MountOptions,
    root: &MountRoot,
    svc: &Arc<Services>,
) -> Result<Option<WriteSetup>, String> {
    let MountRoot::Repo { repo, revision, .. } = root else {
        return Ok(None);
    };
    let Some(client) = svc.client.as_ref() else {
        return Ok(None);
    };
    if opts.read_only {
        return Ok(None);
    }
    let target = writable::decide(client, repo, revision.as_deref(), opts.create_pr).await?;
    let identity = writable::staging_identity(&opts.endpoint, &target);
    let area = StagingArea::open(&opts.cache_dir, &identity)
        .map_err(|e| format!("{e}: mounted read-only"))?;
    let mut cfg = CommitConfig {
        delay: opts.commit_delay,
        message: opts.commit_message.clone(),
        ignore: opts.ignore.clone(),
        xet: opts.xet.then(|| xet_writes(opts, area.dir())),
        ..CommitConfig::default()
    };
    if target.repo.repo_type == crate::repo::RepoType::Bucket {
        // A bucket batch is no commit: up to 1000 lines per call, and nothing is sent inline
        // (every content goes through Xet), so only the Hub's batch limit bounds a batch.
        cfg.max_files = crate::hub::BUCKET_BATCH_MAX;
        cfg.max_inline_bytes = u64::MAX;
    }
    tracing::info!(
        "writable: commits go to {}{} (staging in {})",
        target.revision,
        if target.create_pr {
            " as a pull request"
        } else {
            ""
        },
        area.dir().display()
    );
    let bucket = target.repo.repo_type == crate::repo::RepoType::Bucket;
    let committer = Committer::new(area.clone(), client.clone(), target, cfg);
    if bucket {
        crate::hub::xet::install_crypto_provider();
        let ctx = xet_runtime::core::XetContext::from_external(
            svc.rt.clone(),
            crate::hub::xet::xet_config(opts.io_timeout),
        );
        committer.set_bucket_uploader(Arc::new(crate::hub::xet::XetUploader::new(
            client.clone(),
            ctx,
            Arc::new(crate::hub::xet::BucketWriteToken {
                bucket: repo.id.to_string(),
            }),
            opts.cache_dir.join("xet-upload"),
            opts.io_timeout,
        )));
    }
    Ok(Some(WriteSetup {
        area,
        committer,
        fsync_timeout: opts.flush_timeout.max(Duration::from_secs(60)),
    }))
}

fn report_flush(report: Option<crate::commit::SyncReport>) {
    match report {
        Some(r) if !r.ok => {
            for (path, why) in &r.failed {
                tracing::warn!("not committed: {path}: {why} (kept staged for the next mount)");
            }
        }
        Some(_) => tracing::info!("every staged change is committed"),
        None => {}
    }
}

/// Creates the cache root private, refuses one owned by someone else, and tightens one that
/// lets other users in (an older hubfs made it 0755), saying so in the log.
fn secure_cache_dir(dir: &std::path::Path) -> Result<(), String> {
    let done = crate::private::secure_dir(dir, "cache dir")?;
    if let Some(was) = done.was {
        tracing::warn!(
            "cache dir {} was accessible to other users (mode {was:04o}): made it private \
             ({} entries set to 0700/0600)",
            dir.display(),
            done.entries
        );
    }
    if let Some(e) = &done.first_error {
        tracing::warn!("could not tighten {} cache entries: {e}", done.failed);
    }
    Ok(())
}

/// The type shown in /proc/mounts is `fuse.hubfs`. Root mounts with mount(2) itself, where the
/// FUSE library sends the subtype nowhere (type `fuse`): there it goes to the kernel as the
/// `subtype=` option. Other users mount through fusermount3, which takes `subtype=` itself.
fn subtype_option() -> fuser::MountOption {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        fuser::MountOption::CUSTOM("subtype=hubfs".into())
    } else {
        fuser::MountOption::Subtype("hubfs".into())
    }
}

/// Starts the shared cache tier if asked for. Offline mounts never use it (no network, and its
/// privacy rule needs the Hub's answer for this token: see `read/shared.rs`).
fn shared_cache(
    opts: &MountOptions,
    aws: &std::collections::HashMap<String, String>,
    rt: &tokio::runtime::Runtime,
) -> Result<Option<Arc<crate::shared::SharedCache>>, String> {
    let Some(shared) = &opts.shared_cache else {
        return Ok(None);
    };
    if opts.offline {
        tracing::info!("offline: the shared cache {} is not used", shared.url);
        return Ok(None);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let resolved =
        crate::shared::config::resolve(shared, |n| aws.get(n).cloned(), home.as_deref())?;
    let _guard = rt.enter();
    crate::shared::SharedCache::start(&resolved).map(Some)
}

/// What `hubfs status` reports about the daemon itself (beside the filesystem's counters).
fn about_mount(
    opts: &MountOptions,
    writable: bool,
    cache_root: &std::path::Path,
) -> serde_json::Value {
    let mode = if opts.offline {
        "offline"
    } else if writable {
        "writable"
    } else {
        "read-only"
    };
    serde_json::json!({
        "source": opts.source,
        "mode": mode,
        "pid": std::process::id(),
        "cache_dir": opts.cache_dir,
        // The root this daemon owns (an instance slot when the directory was taken).
        "cache_root": cache_root,
        "log_file": opts.log_file,
        "metrics_addr": opts.metrics_addr.map(|a| a.to_string()),
        "hf_cache": opts.hf_cache,
        "shared_cache": opts.shared_cache.as_ref().map(|s| &s.url),
    })
}

async fn handle_control(
    fs: &Arc<HubFs>,
    mountpoint: &std::path::Path,
    about: &serde_json::Value,
    req: serde_json::Value,
) -> serde_json::Value {
    match req.get("cmd").and_then(|c| c.as_str()) {
        Some("unmount") => {
            // `hubfs unmount` committed first (its `sync`); now end what still holds the mount.
            tracing::info!("unmount requested: aborting Hub requests in flight");
            let abort = fs.svc.reader.abort().clone();
            let patience = shutdown::UNMOUNT_PATIENCE;
            match shutdown::abort_and_unmount(&abort, mountpoint, patience, false).await {
                Ok(()) => serde_json::json!({"ok": true}),
                Err(e) => serde_json::json!({"error": e}),
            }
        }
        Some("status") => {
            let mut status = fs.status();
            if let Some(obj) = status.as_object_mut() {
                obj.insert("daemon".into(), about.clone());
            }
            status
        }
        Some("sync") => {
            let secs = req.get("timeout").and_then(|t| t.as_u64()).unwrap_or(600);
            match fs.sync(Duration::from_secs(secs)).await {
                Some(report) => serde_json::json!(report),
                None => serde_json::json!({"ok": true, "failed": [], "read_only": true}),
            }
        }
        Some(cmd @ ("cache_rm" | "cache_gc")) => cache_command(fs, cmd, &req).await,
        Some("describe") => {
            // `hubfs warm --hf-cache-layout`: what the file it just read is on the Hub.
            let Some(ino) = req.get("ino").and_then(|i| i.as_u64()) else {
                return serde_json::json!({"error": "describe needs an inode number"});
            };
            match fs.describe(ino).await {
                Ok(origin) => serde_json::json!({ "file": origin }),
                Err(e) => serde_json::json!({
                    "error": e.to_string(),
                    "local_changes": e == crate::fs::LOCAL_CHANGES,
                }),
            }
        }
        other => serde_json::json!({"error": format!("unknown command {other:?}")}),
    }
}

/// `hubfs cache rm|gc` on the cache this daemon owns: done here, with the daemon's own index and
/// pins (a blob an open file reads directly is skipped), on a blocking thread.
async fn cache_command(fs: &Arc<HubFs>, cmd: &str, req: &serde_json::Value) -> serde_json::Value {
    use crate::cache_cmd::ops;
    let reader = fs.svc.reader.clone();
    let Some(inventory) = reader.inventory().cloned() else {
        return serde_json::json!({"error": "this mount keeps no blob records"});
    };
    let body = req.get("request").cloned().unwrap_or_default();
    let cmd = cmd.to_string();
    let work = tokio::task::spawn_blocking(move || -> Result<ops::Report, String> {
        let cache = reader.cache();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(match cmd.as_str() {
            "cache_rm" => {
                let r: ops::RmRequest = serde_json::from_value(body).map_err(|e| e.to_string())?;
                ops::remove(cache, &inventory, &r)
            }
            _ => {
                let g: ops::GcRequest = serde_json::from_value(body).map_err(|e| e.to_string())?;
                ops::gc(cache, &inventory, &g, now)
            }
        })
    });
    match work.await {
        Ok(Ok(report)) => {
            tracing::info!(
                "cache command: {} removed, {} bytes freed, {} in use skipped",
                report.removed.len(),
                report.freed_bytes,
                report.skipped_in_use.len()
            );
            serde_json::to_value(report).unwrap_or_default()
        }
        Ok(Err(e)) => serde_json::json!({"error": format!("bad request: {e}")}),
        Err(e) => serde_json::json!({"error": format!("cache command failed: {e}")}),
    }
}
