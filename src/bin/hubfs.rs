//! `hubfs`: mount Hugging Face Hub repos as local directories.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{CommandFactory, Parser, Subcommand};

use hubfs::daemon::helper::{self, HelperCall};
use hubfs::daemon::{self, control, mountpoint, mounts, ready, MountOptions};
use hubfs::shared::SharedCacheOptions;
use hubfs::units::{format_size, parse_size};

/// Smallest `--cache-size`: four ~4 MiB eviction regions, room for a read's blocks while
/// older ones are evicted.
const MIN_CACHE_SIZE: u64 = 16 << 20;
/// `--read-ahead` bounds: below 1 MiB a sequential reader waits on every round trip; beyond
/// 1 GiB the window outgrows what the parallel requests can keep filled.
const READ_AHEAD_RANGE: (u64, u64) = (1 << 20, 1 << 30);
/// Longest `--commit-delay`, `--io-timeout` and command `--timeout`, in seconds (one day: a
/// larger value is a typo, and would overflow the deadlines computed from it).
const MAX_SECS: u64 = 86_400;

fn parse_cache_size(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n < MIN_CACHE_SIZE {
        return Err(format!(
            "{s:?} is too small: the cache needs at least {}",
            format_size(MIN_CACHE_SIZE)
        ));
    }
    Ok(n)
}

fn parse_shared_cache(s: &str) -> Result<String, String> {
    hubfs::shared::config::parse_url(s).map(|_| s.to_string())
}

fn parse_read_ahead(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    let (lo, hi) = READ_AHEAD_RANGE;
    if !(lo..=hi).contains(&n) {
        return Err(format!(
            "{s:?} is out of range: between {} and {}",
            format_size(lo),
            format_size(hi)
        ));
    }
    Ok(n)
}

fn parse_commit_delay(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !secs.is_finite() || !(0.0..=3600.0).contains(&secs) {
        return Err(format!("{s:?} is out of range: between 0 and 3600 seconds"));
    }
    Ok(secs)
}

/// An octal permission mode (`0644`, `755`) for `--file-mode` / `--dir-mode`.
fn parse_mode(s: &str) -> Result<u16, String> {
    let digits = s.trim().trim_start_matches("0o");
    match u16::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!(
            "{s:?} is not an octal mode between 000 and 777 (e.g. 0644)"
        )),
    }
}

fn secs(range: std::ops::RangeInclusive<u64>) -> RangedU64ValueParser<u64> {
    RangedU64ValueParser::new().range(range)
}

fn count(range: std::ops::RangeInclusive<u64>) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(range)
}

const EXAMPLES: &str = "\
Examples:
  hubfs mount openai-community/gpt2 ~/gpt2            # main branch; writable with a write token
  hubfs mount datasets/ns/name@v1.0/data ~/data       # a tag, one sub-directory
  hubfs mount ns/model@feature%2Fx ~/m --read-only    # branch feature/x ('/' as %2F)
  hubfs mount hf:// ~/hub                             # the whole Hub, one directory per repo
  hubfs status                                        # every hubfs mount of this user
  hubfs warm ~/gpt2                                   # fetch the whole repo now, with progress
  hubfs warm ~/gpt2 --hf-cache-layout                 # ...and fill the huggingface_hub cache
  hubfs cache ls; hubfs cache gc --max-size 5G        # what the cache holds; shrink it
  hubfs sync ~/gpt2 && hubfs unmount ~/gpt2
  mount -t fuse.hubfs ns/model /mnt/m -o ro,cache_dir=/var/cache/hubfs,allow_other
  hubfs completions bash > /etc/bash_completion.d/hubfs; hubfs man | man -l -";

const MOUNT_EXAMPLES: &str = "\
Examples:
  hubfs mount openai-community/gpt2 ~/gpt2
  hubfs mount datasets/ns/name@refs%2Fpr%2F3 ~/pr --read-only
  hubfs mount ns/model ~/m --create-pr --commit-message 'Update weights'
  hubfs mount ns/model /srv/m -f --allow-other --uid 1000 --gid 1000   # systemd Type=notify

In /etc/fstab (options as in `mount -o`: cache_dir=DIR, read_only or ro, allow_other, uid=N...):
  ns/model  /srv/m  fuse.hubfs  ro,_netdev,nofail,cache_dir=/var/cache/hubfs,allow_other  0 0";

#[derive(Parser)]
#[command(
    name = "hubfs",
    version,
    about = "Mount Hugging Face Hub repositories as local directories",
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mount a repo (at a revision, optionally a sub-directory) or the whole Hub.
    ///
    /// SOURCE: [hf://][datasets/|spaces/]NAMESPACE/NAME[@REVISION][/SUBPATH], or hf:// alone for
    /// the whole Hub. REVISION is a branch, tag, commit id or refs/pr/N (percent-encode '/').
    #[command(after_help = MOUNT_EXAMPLES)]
    Mount(Box<MountArgs>),
    /// Unmount a hubfs mount, committing staged changes first (plain `umount` works too).
    Unmount {
        mountpoint: PathBuf,
        /// Longest wait for staged changes to land before unmounting anyway (they stay
        /// staged and are committed by the next mount).
        #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = secs(0..=MAX_SECS))]
        timeout: u64,
    },
    /// Wait until every change staged in a writable mount has landed on the Hub; exits 1
    /// naming the paths that could not be committed (conflicts, failures).
    Sync {
        mountpoint: PathBuf,
        /// Give up after SECS seconds.
        #[arg(long, value_name = "SECS", default_value_t = 600, value_parser = secs(0..=MAX_SECS))]
        timeout: u64,
    },
    /// Show a running mount's revisions and counters (requests, bytes, cache hits...); without
    /// a mountpoint, list every hubfs mount of this user (of all users for root).
    Status {
        mountpoint: Option<PathBuf>,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fetch files of a mount into its cache ahead of use (a file, a directory or the whole
    /// mount), with a progress bar (bytes, rate, ETA) when stderr is a terminal.
    Warm {
        /// Files or directories inside a hubfs mount (the mountpoint itself for everything).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Files read at once (1-64).
        #[arg(long, short = 'j', default_value_t = 4, value_parser = count(1..=64))]
        jobs: usize,
        /// Also put each file in the huggingface_hub cache (blobs/, snapshots/<commit>/,
        /// refs/<revision>), so `from_pretrained(..., local_files_only=True)` and
        /// `hf_hub_download(..., local_files_only=True)` find it with no network.
        #[arg(long)]
        hf_cache_layout: bool,
        /// The huggingface_hub cache to fill [default: HF_HUB_CACHE, else $HF_HOME/hub, else
        /// ~/.cache/huggingface/hub].
        #[arg(long, value_name = "DIR", requires = "hf_cache_layout")]
        hf_cache_dir: Option<PathBuf>,
    },
    /// List what the on-disk cache holds, remove a repo's files from it, or shrink it.
    #[command(subcommand, after_help = CACHE_EXAMPLES)]
    Cache(CacheCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff): `hubfs man | man -l -`; `hubfs man mount` for a command's.
    Man { command: Option<String> },
}

const CACHE_EXAMPLES: &str = "\
Examples:
  hubfs cache ls                                  # every cached file: repo, path, size, state
  hubfs cache ls datasets/ns/name --json
  hubfs cache rm ns/model                         # all of a repo's cached files
  hubfs cache rm ns/model --path '*.bin'          # only some of them
  hubfs cache gc --max-size 5G                    # evict least recently used data
  hubfs cache gc --older-than 30days

A cache a running mount uses is changed by that mount's daemon; files open in it whose data
the kernel reads directly are skipped (and named).";

#[derive(clap::Args)]
struct CacheDirArg {
    /// The cache directory [default: as `hubfs mount`: $XDG_CACHE_HOME/hubfs or ~/.cache/hubfs].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum CacheCommand {
    /// List cached files: repo, revision, path (where known), size, cached bytes, complete or
    /// partial, last use.
    Ls {
        /// Only this repo's files (ns/name, datasets/ns/name, spaces/ns/name).
        repo: Option<String>,
        #[command(flatten)]
        dir: CacheDirArg,
    },
    /// Remove cached files of a repo (optionally under a directory: ns/name/sub/dir, or
    /// matching --path globs), or everything with --all.
    Rm {
        /// The repo (ns/name, datasets/ns/name, spaces/ns/name), optionally with /SUB/DIR to
        /// remove only the files under that directory.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        repo: Option<String>,
        /// Only files whose path in the repo matches GLOB (`*` any run, `?` one character;
        /// repeatable).
        #[arg(long = "path", value_name = "GLOB", requires = "repo")]
        paths: Vec<String>,
        /// Remove every cached file.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        dir: CacheDirArg,
    },
    /// Evict least recently used data down to a size, and/or files unused for a while;
    /// reports the bytes freed.
    Gc {
        /// Keep at most SIZE cached (e.g. 5G, 500M).
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
        /// Remove files not used for AGE (e.g. 30days, 12h, 90m).
        #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration)]
        older_than: Option<Duration>,
        #[command(flatten)]
        dir: CacheDirArg,
    },
}

fn cache_command(cmd: CacheCommand) -> Result<(), String> {
    use hubfs::cache_cmd;
    let dir_of = |d: &CacheDirArg| {
        d.cache_dir
            .clone()
            .unwrap_or_else(daemon::default_cache_dir)
    };
    match cmd {
        CacheCommand::Ls { repo, dir } => cache_cmd::ls(&dir_of(&dir), repo.as_deref(), dir.json),
        CacheCommand::Rm {
            repo,
            paths,
            all,
            dir,
        } => {
            let req = match repo {
                Some(spec) if !all => cache_cmd::ops::RmRequest {
                    globs: paths,
                    ..cache_cmd::parse_repo_filter(&spec)?
                },
                _ => cache_cmd::ops::RmRequest {
                    all: true,
                    ..Default::default()
                },
            };
            cache_cmd::rm(&dir_of(&dir), req, dir.json)
        }
        CacheCommand::Gc {
            max_size,
            older_than,
            dir,
        } => cache_cmd::gc(&dir_of(&dir), max_size, older_than, dir.json),
    }
}

#[derive(clap::Args)]
struct MountArgs {
    /// The repo (and revision, sub-directory) to mount, or hf:// for the whole Hub.
    source: String,
    /// An existing, empty directory.
    mountpoint: PathBuf,
    /// Stay attached to the terminal instead of returning once the mount is live.
    #[arg(long, short = 'f')]
    foreground: bool,
    /// Hub endpoint.
    #[arg(long, env = "HF_ENDPOINT", default_value = "https://huggingface.co")]
    endpoint: String,
    /// Read the token from this file (else HF_TOKEN, HF_TOKEN_PATH, $HF_HOME/token).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Block cache and metadata directory [default: $XDG_CACHE_HOME/hubfs or ~/.cache/hubfs].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Largest size of the block cache (e.g. 500M, 10G; at least 16M).
    #[arg(long, default_value = "10G", value_parser = parse_cache_size)]
    cache_size: u64,
    /// Never write, even on a branch.
    #[arg(long)]
    read_only: bool,
    /// Send changes to a pull request (opened by the first commit) instead of the branch.
    #[arg(long)]
    create_pr: bool,
    /// Quiet period before staged changes are committed (a burst becomes one commit; 0-3600).
    #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = parse_commit_delay)]
    commit_delay: f64,
    /// Title of every commit [default: one saying what it does, e.g. "Add config.json via hubfs"].
    #[arg(long)]
    commit_message: Option<String>,
    /// Also keep files whose name matches GLOB local, never committed (repeatable; `*` and
    /// `?` match within the last path component).
    #[arg(long = "ignore", value_name = "GLOB", value_parser = hubfs::commit::ignore::IgnoreList::check_pattern)]
    ignore: Vec<String>,
    /// Commit editor and OS junk too (swap files, `x~` backups, `.DS_Store`...): see SEMANTICS.md.
    #[arg(long)]
    no_default_ignore: bool,
    /// Check branches for new commits every SECS seconds (open files keep their commit).
    #[arg(long, value_name = "SECS", value_parser = secs(1..=MAX_SECS))]
    refresh: Option<u64>,
    /// Let other users access the mount (non-root users: needs user_allow_other in
    /// /etc/fuse.conf).
    #[arg(long)]
    allow_other: bool,
    /// Mount over a directory that is not empty (its files are hidden while mounted).
    #[arg(long)]
    allow_non_empty: bool,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9464; anyone who
    /// can reach the address can read them: keep it on loopback or a trusted network).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Owner shown for every file and directory [default: the user who mounts].
    #[arg(long, value_name = "UID")]
    uid: Option<u32>,
    /// Group shown for every file and directory [default: the group of the user who mounts].
    #[arg(long, value_name = "GID")]
    gid: Option<u32>,
    /// Permission bits of files, octal [default: 0444 read-only, 0644 writable].
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    file_mode: Option<u16>,
    /// Permission bits of directories, octal [default: 0755].
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    dir_mode: Option<u16>,
    /// Serve files already in the huggingface_hub cache from there, verified, without fetching
    /// (the default; the cache is HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub).
    #[arg(long, overrides_with = "no_hf_cache")]
    hf_cache: bool,
    /// Never look into the huggingface_hub cache.
    #[arg(long, overrides_with = "hf_cache")]
    no_hf_cache: bool,
    /// No direct Xet CAS access: read Xet files through the HTTP bridge (`resolve`) only, and
    /// upload large files of a writable mount through LFS.
    #[arg(long)]
    no_xet: bool,
    /// Serve only what is cached; no network at all (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    offline: bool,
    /// A cache tier shared by the nodes of a cluster: an S3-compatible bucket read before the
    /// Hub and filled after it (e.g. s3://hubfs-cache/models). Credentials: AWS_ACCESS_KEY_ID /
    /// AWS_SECRET_ACCESS_KEY, else the profile (AWS_PROFILE) of ~/.aws/credentials or config.
    #[arg(long, value_name = "s3://BUCKET/PREFIX", value_parser = parse_shared_cache)]
    shared_cache: Option<String>,
    /// The shared cache's S3 endpoint, for self-hosted stores (MinIO, Garage, Ceph, R2...)
    /// [default: AWS].
    #[arg(long, value_name = "URL", requires = "shared_cache")]
    shared_cache_endpoint: Option<String>,
    /// The shared cache's region [default: AWS_REGION, the profile's, else us-east-1].
    #[arg(long, value_name = "REGION", requires = "shared_cache")]
    shared_cache_region: Option<String>,
    /// The AWS profile holding the shared cache's keys (overrides AWS_ACCESS_KEY_ID).
    #[arg(long, value_name = "NAME", requires = "shared_cache")]
    shared_cache_profile: Option<String>,
    /// Address the bucket as BUCKET.host (virtual-hosted) instead of host/BUCKET (path style).
    #[arg(long, requires = "shared_cache")]
    shared_cache_virtual_hosted: bool,
    /// Give up on a shared cache lookup that answers nothing within MS milliseconds and read
    /// from the Hub (10-60000).
    #[arg(long, value_name = "MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=60000))]
    shared_cache_timeout: u64,
    /// Where the background daemon writes its log [default: CACHE_DIR/hubfs.log].
    #[arg(long)]
    log_file: Option<PathBuf>,
    /// Threads reading kernel requests (1-64).
    #[arg(long, default_value_t = 4, value_parser = count(1..=64))]
    fuse_threads: usize,
    /// Fail a read or lookup with EIO when the Hub sends nothing for SECS seconds (1-86400).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = secs(1..=MAX_SECS))]
    io_timeout: u64,
    /// Most files and directories one listing, and one revision's tree, may hold (bounds
    /// the daemon's memory: ~200 bytes each); past it the listing fails with EIO
    /// (1-100000000).
    #[arg(long, value_name = "N", default_value_t = 5_000_000, value_parser = count(1..=100_000_000))]
    max_entries: usize,
    /// Largest read-ahead window of a sequential reader (e.g. 32M, 256M; 1M-1G).
    #[arg(long, value_name = "SIZE", default_value = "128M", value_parser = parse_read_ahead)]
    read_ahead: u64,
    /// Memory for read-ahead of the whole mount: bytes fetched ahead of their readers and not
    /// yet read, shared among the readers (e.g. 64M, 512M; 1M-1G).
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_read_ahead)]
    read_ahead_memory: u64,
    /// Range requests in flight at once for the whole mount (1-256).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = count(1..=256))]
    max_requests: usize,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("hubfs=info,warn"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        // A log line that cannot be written (full disk) is dropped: reporting it with
        // `eprintln!` to the same full file would panic and kill the daemon.
        .log_internal_errors(false)
        .init();
}

fn mount(args: MountArgs) -> Result<(), String> {
    let source = args.source.clone();
    mount_inner(args).map_err(|e| with_revision_hint(&source, e))
}

/// `ns/m@dev/exp` means revision `dev`, sub-directory `exp`: when that fails, suggest the
/// percent-encoded branch name the user probably meant.
fn with_revision_hint(source: &str, err: String) -> String {
    let Some((repo, rest)) = source.split_once('@') else {
        return err;
    };
    let Some((rev, sub)) = rest.split_once('/') else {
        return err;
    };
    if !(err.contains("revision") || err.contains("not found")) {
        return err;
    }
    format!(
        "{err} (for a branch or tag with '/' in its name, write it percent-encoded: \
         {repo}@{rev}%2F{sub})"
    )
}

fn mount_inner(args: MountArgs) -> Result<(), String> {
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(daemon::default_cache_dir);
    let log_file = (!args.foreground).then(|| {
        args.log_file
            .clone()
            .unwrap_or_else(|| cache_dir.join("hubfs.log"))
    });
    let opts = MountOptions {
        source: args.source.clone(),
        mountpoint: args.mountpoint.clone(),
        endpoint: args.endpoint.clone(),
        token_file: args.token_file.clone(),
        cache_dir,
        cache_size: args.cache_size,
        read_only: args.read_only,
        refresh: args.refresh.map(Duration::from_secs),
        allow_other: args.allow_other,
        offline: args.offline || daemon::env_offline(),
        fuse_threads: args.fuse_threads,
        io_timeout: Duration::from_secs(args.io_timeout),
        max_entries: args.max_entries,
        read_ahead: args.read_ahead,
        read_ahead_memory: args.read_ahead_memory,
        max_requests: args.max_requests,
        create_pr: args.create_pr,
        commit_delay: Duration::from_secs_f64(args.commit_delay),
        commit_message: args.commit_message.clone(),
        ignore: hubfs::commit::ignore::IgnoreList::new(!args.no_default_ignore, &args.ignore),
        flush_timeout: Duration::from_secs(120),
        uid: args.uid,
        gid: args.gid,
        file_mode: args.file_mode,
        dir_mode: args.dir_mode,
        allow_non_empty: args.allow_non_empty,
        metrics_addr: args.metrics_addr,
        log_file: log_file.clone(),
        hf_cache: (!args.no_hf_cache)
            .then(hubfs::read::hf_cache::default_dir)
            .flatten(),
        xet: !args.no_xet,
        shared_cache: args.shared_cache.clone().map(|url| SharedCacheOptions {
            url,
            endpoint: args.shared_cache_endpoint.clone(),
            region: args.shared_cache_region.clone(),
            profile: args.shared_cache_profile.clone(),
            virtual_hosted: args.shared_cache_virtual_hosted,
            first_byte_timeout: Duration::from_millis(args.shared_cache_timeout),
        }),
    };
    if args.foreground {
        init_logging();
        // SAFETY: single thread: the runtime is built inside `daemon::run`.
        return unsafe { daemon::run(opts, ready::ReadyPipe::none()) };
    }
    // Fail fast on what can be checked here, then start the daemon and wait for its verdict.
    hubfs::repo::HfPath::parse(&args.source).map_err(|e| e.to_string())?;
    let canonical = mountpoint::check_mountpoint(&args.mountpoint)?;
    if !args.allow_non_empty {
        mountpoint::check_empty(&canonical)?;
    }
    daemon::fuse_access::check(args.allow_other)?;
    // The daemon tightens an old, loose cache (and logs it); the log must be private already.
    private_cache_root(&opts.cache_dir)?;
    let log_path = log_file.unwrap_or_else(|| opts.cache_dir.join("hubfs.log"));
    let log = hubfs::private::open_options()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("log file {}: {e}", log_path.display()))?;
    let loosened = hubfs::private::secure_file(&log, &log_path, "log file")?;
    let shown_log = log_path.display().to_string();
    // SAFETY: no thread was started yet: the runtime is built by `daemon::run` in the child,
    // which has a single thread until then (what `daemon::run` needs too).
    unsafe {
        ready::fork_daemon(log, move |pipe| {
            init_logging();
            if let Some(was) = loosened {
                tracing::warn!("log file {shown_log} was mode {was:04o}: made it 0600");
            }
            daemon::run(opts, pipe).is_ok()
        })
    }
    .map_err(|e| format!("{e} (daemon log: {})", log_path.display()))
}

/// Creates the cache root 0700 if missing and refuses one owned by another user (before
/// anything is written into it).
fn private_cache_root(dir: &std::path::Path) -> Result<(), String> {
    hubfs::private::create_dir_all(dir).map_err(|e| format!("cache dir {}: {e}", dir.display()))?;
    let meta = std::fs::metadata(dir).map_err(|e| format!("cache dir {}: {e}", dir.display()))?;
    hubfs::private::check_owner(dir, &meta, "cache dir")
}

/// `hubfs status` without a mountpoint: every hubfs mount of this user (all users for root),
/// each with what its daemon says about it (or why it does not answer).
fn status_all(json: bool) -> Result<(), String> {
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() };
    let list: Vec<_> = mounts::list()
        .into_iter()
        .filter(|m| me == 0 || m.user_id == me)
        .collect();
    let req = serde_json::json!({"cmd": "status"});
    // Asked 16 at a time (each bounded by 5 s), so one stuck daemon does not delay the rest.
    let mut answers = Vec::with_capacity(list.len());
    for group in list.chunks(16) {
        std::thread::scope(|scope| {
            let asks: Vec<_> = group
                .iter()
                .map(|m| {
                    let req = &req;
                    scope
                        .spawn(move || control::request(&m.mountpoint, req, Duration::from_secs(5)))
                })
                .collect();
            for ask in asks {
                answers.push(
                    ask.join()
                        .unwrap_or_else(|_| Err("asking the daemon failed".to_string())),
                );
            }
        });
    }
    if json {
        let all: Vec<_> = list
            .iter()
            .zip(&answers)
            .map(|(m, a)| {
                let mut v = serde_json::json!({
                    "mountpoint": m.mountpoint,
                    "source": m.source,
                    "user_id": m.user_id,
                });
                match a {
                    Ok(status) => v["status"] = status.clone(),
                    Err(e) => v["error"] = e.clone().into(),
                }
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return Ok(());
    }
    if list.is_empty() {
        eprintln!("hubfs: no hubfs mounts");
        return Ok(());
    }
    for (i, (m, answer)) in list.iter().zip(&answers).enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}", m.mountpoint.display());
        println!("  source:    {}", m.source);
        if me == 0 {
            println!("  user:      uid {}", m.user_id);
        }
        let a = match answer {
            Ok(a) => a,
            Err(e) => {
                println!("  daemon:    not answering ({e})");
                continue;
            }
        };
        for v in a["views"].as_array().into_iter().flatten() {
            println!(
                "  revision:  {} -> {}",
                v["revision"].as_str().unwrap_or("?"),
                v["commit"].as_str().unwrap_or("?")
            );
        }
        let d = &a["daemon"];
        println!("  mode:      {}", d["mode"].as_str().unwrap_or("?"));
        println!("  cache dir: {}", d["cache_dir"].as_str().unwrap_or("?"));
        println!("  pid:       {}", d["pid"].as_u64().unwrap_or(0));
        println!(
            "  log:       {}",
            d["log_file"]
                .as_str()
                .unwrap_or("(stderr of the foreground process)")
        );
        if let Some(addr) = d["metrics_addr"].as_str() {
            println!("  metrics:   http://{addr}/metrics");
        }
    }
    Ok(())
}

fn status(mountpoint: Option<PathBuf>, json: bool) -> Result<(), String> {
    let Some(mountpoint) = mountpoint else {
        return status_all(json);
    };
    let answer = control::request(
        &mountpoint,
        &serde_json::json!({"cmd": "status"}),
        Duration::from_secs(10),
    )?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
        return Ok(());
    }
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    println!("mount:       {}", answer["root"].as_str().unwrap_or("?"));
    let d = &answer["daemon"];
    if let Some(mode) = d["mode"].as_str() {
        println!("mode:        {mode}");
    } else if answer["offline"].as_bool() == Some(true) {
        println!("mode:        offline");
    }
    if let Some(pid) = d["pid"].as_u64() {
        println!("pid:         {pid}");
        println!("cache dir:   {}", d["cache_dir"].as_str().unwrap_or("?"));
        println!(
            "log:         {}",
            d["log_file"]
                .as_str()
                .unwrap_or("(stderr of the foreground process)")
        );
        if let Some(addr) = d["metrics_addr"].as_str() {
            println!("metrics:     http://{addr}/metrics");
        }
    }
    for v in answer["views"].as_array().into_iter().flatten() {
        println!(
            "revision:    {} -> {} ({} files known)",
            v["revision"].as_str().unwrap_or("?"),
            v["commit"].as_str().unwrap_or("?"),
            n(&v["files_known"])
        );
    }
    if let Some(w) = answer.get("writes").filter(|w| !w.is_null()) {
        let c = &w["commit"];
        println!(
            "writes:      {} pending, {} in flight, {} committed in {} commits (to {})",
            n(&w["pending"]),
            n(&c["in_flight"]),
            n(&c["committed_changes"]),
            n(&c["commits"]),
            c["revision"].as_str().unwrap_or("?")
        );
        if let Some(e) = c["last_error"].as_str() {
            println!("last error:  {e}");
        }
        for (path, k) in c["conflicts"].as_object().into_iter().flatten() {
            println!(
                "conflict:    {path} (made on {}, changed on the Hub by {})",
                k["base"].as_str().unwrap_or("?"),
                k["head"].as_str().unwrap_or("?")
            );
        }
        for (path, why) in w["held"].as_object().into_iter().flatten() {
            println!("not landing: {path}: {}", why.as_str().unwrap_or("?"));
        }
    }
    let r = &answer["read"];
    println!(
        "reads:       {} ({} served)",
        n(&r["reads"]),
        format_size(n(&r["bytes_read"]))
    );
    println!(
        "blocks:      {} hits, {} misses",
        n(&r["block_hits"]),
        n(&r["block_misses"])
    );
    println!(
        "fetched:     {} in {} range requests ({} resumed, {} failed)",
        format_size(n(&r["bytes_fetched"])),
        n(&r["fetches"]),
        n(&r["fetch_resumes"]),
        n(&r["fetch_failures"])
    );
    let c = &answer["cache"];
    println!(
        "cache:       {} of {} used, {} evictions",
        format_size(n(&c["used_bytes"])),
        format_size(n(&c["max_bytes"])),
        n(&c["evictions"])
    );
    if let Some(k) = answer.get("chunks").filter(|k| !k.is_null()) {
        println!(
            "xet chunks:  {} hits ({}), {} misses ({} fetched), {} corrupt",
            n(&k["hits"]),
            format_size(n(&k["hit_bytes"])),
            n(&k["misses"]),
            format_size(n(&k["fetched_bytes"])),
            n(&k["corrupt"]) + n(&k["corrupt_blocks"])
        );
    }
    let p = &answer["passthrough"];
    if p["available"].as_bool() == Some(true) {
        println!(
            "passthrough: {} opens, {} files open, {} pinned in the cache, {} opens kept served (page cache warm)",
            n(&p["opens"]),
            n(&p["inodes"]),
            format_size(n(&c["pinned_bytes"])),
            n(&p["kept_served"])
        );
    } else {
        println!("passthrough: off (every read is served by hubfs)");
    }
    if let Some(s) = answer.get("shared_cache").filter(|s| !s.is_null()) {
        let st = &s["stats"];
        println!(
            "shared:      {} hits ({}), {} misses, {} errors, {} corrupt{}",
            n(&st["hits"]),
            format_size(n(&st["bytes"])),
            n(&st["misses"]),
            n(&st["errors"]),
            n(&st["corrupt"]),
            if s["breaker_open"].as_bool() == Some(true) {
                " (unavailable: reading from the Hub)"
            } else {
                ""
            }
        );
        println!(
            "shared fill: {} blocks ({}), {} dropped, {} failed",
            n(&st["fills"]),
            format_size(n(&st["fill_bytes"])),
            n(&st["drops"]),
            n(&st["fill_errors"])
        );
    }
    if let Some(h) = answer.get("hub").filter(|h| !h.is_null()) {
        println!(
            "hub:         {} requests, {} retries",
            n(&h["requests"]),
            n(&h["retries"])
        );
    }
    Ok(())
}

fn sync(mountpoint: &std::path::Path, timeout: u64) -> Result<(), String> {
    let answer = control::request(
        mountpoint,
        &serde_json::json!({"cmd": "sync", "timeout": timeout}),
        Duration::from_secs(timeout + 30),
    )?;
    if let Some(e) = answer.get("error").and_then(|e| e.as_str()) {
        return Err(e.to_string());
    }
    if answer["ok"].as_bool() == Some(true) {
        return Ok(());
    }
    let failed: Vec<String> = answer["failed"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            format!(
                "  {}: {}",
                f[0].as_str().unwrap_or("?"),
                f[1].as_str().unwrap_or("?")
            )
        })
        .collect();
    Err(format!(
        "{} change(s) not committed (still staged):\n{}",
        failed.len(),
        failed.join("\n")
    ))
}

/// Commits staged changes (bounded), then has the daemon abort its Hub requests (readers
/// stalled on the Hub get EIO and let go) and unmount; what could not land is reported and
/// stays staged for the next mount.
fn unmount(mp: &std::path::Path, timeout: u64) -> Result<(), String> {
    if let Err(e) = sync(mp, timeout) {
        if !e.contains("not a running hubfs mount") {
            eprintln!("hubfs: {e}");
        }
    }
    let req = serde_json::json!({"cmd": "unmount"});
    // The daemon retries a busy mount for a few seconds after the abort.
    match control::request(mp, &req, Duration::from_secs(60)) {
        Ok(answer) if answer["ok"].as_bool() == Some(true) => Ok(()),
        Ok(answer) => match answer["error"].as_str() {
            // A daemon from before the "unmount" command: unmount here.
            Some(e) if e.starts_with("unknown command") => mountpoint::unmount(mp),
            Some(e) => Err(e.to_string()),
            None => Err(format!("unexpected answer from the daemon: {answer}")),
        },
        // No daemon to ask (a dead one leaves its mount behind), or it went away with the
        // mount before answering.
        Err(e) => match mp.canonicalize() {
            Ok(canonical) if !mountpoint::is_mounted(&canonical) => Ok(()),
            _ => mountpoint::unmount(mp).map_err(|u| {
                if e.contains("not a running hubfs mount") {
                    u
                } else {
                    format!("{u} ({e})")
                }
            }),
        },
    }
}

/// `hubfs mount`'s long options: Some(takes a value) for those that exist.
fn mount_option_kind(name: &str) -> Option<bool> {
    let cli = Cli::command();
    let mount = cli.find_subcommand("mount")?;
    let arg = mount.get_arguments().find(|a| a.get_long() == Some(name))?;
    Some(arg.get_action().takes_values())
}

/// The arguments to parse: `hubfs`'s own, or those of a mount helper call translated to
/// `hubfs mount ...` (None: nothing to do, `mount -f`).
fn arguments() -> Result<Option<Vec<String>>, String> {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let argv0 = argv.first().cloned().unwrap_or_else(|| "hubfs".into());
    let rest = argv.get(1..).unwrap_or_default();
    // `/sbin/mount.fuse.hubfs SOURCE DIR -o ...` (mount(8)), or `hubfs SOURCE DIR -o ...`
    // (mount.fuse of the fuse3 package, for type fuse.hubfs): a source where a command goes.
    let first_is_source = rest.first().is_some_and(|a| {
        !a.starts_with('-')
            && Cli::command().find_subcommand(a).is_none()
            && a != "help"
            && hubfs::repo::HfPath::parse(a).is_ok()
    });
    let helper_call = helper::is_helper_name(&argv0) || (first_is_source && rest.len() >= 2);
    if !helper_call {
        return Ok(Some(argv));
    }
    match helper::translate(rest, mount_option_kind)? {
        HelperCall::Fake => Ok(None),
        HelperCall::Mount(args) => Ok(Some(
            std::iter::once("hubfs".to_string()).chain(args).collect(),
        )),
    }
}

fn warm(
    paths: &[PathBuf],
    jobs: usize,
    hf_cache_layout: bool,
    hf_cache_dir: Option<PathBuf>,
) -> Result<(), String> {
    let hf = if hf_cache_layout {
        let dir = hf_cache_dir
            .or_else(hubfs::read::hf_cache::default_dir)
            .ok_or("no huggingface_hub cache directory: set HF_HUB_CACHE or --hf-cache-dir")?;
        Some(dir)
    } else {
        None
    };
    hubfs::warm::warm(paths, jobs, hf)
}

fn print_completions(shell: clap_complete::Shell) -> Result<(), String> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "hubfs", &mut std::io::stdout());
    Ok(())
}

fn print_man(command: Option<String>) -> Result<(), String> {
    let cli = Cli::command();
    let page = match &command {
        None => cli,
        Some(name) => {
            let sub = cli
                .find_subcommand(name)
                .ok_or_else(|| format!("no command {name:?} (see hubfs --help)"))?
                .clone();
            let full = format!("hubfs-{name}");
            sub.name(full.clone()).bin_name(full)
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| e.to_string())?;
    use std::io::Write;
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| format!("writing the man page: {e}"))
}

fn main() -> ExitCode {
    let argv = match arguments() {
        Ok(Some(argv)) => argv,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hubfs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse_from(argv);
    if !matches!(cli.command, Command::Mount(_)) {
        // `hubfs status | head` must end quietly when the reader goes away, like other
        // commands that print (Rust ignores SIGPIPE, and println! would panic). Not for
        // `mount`: its daemon writes to sockets whose readers may leave.
        // SAFETY: setting a signal disposition before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let result = match cli.command {
        Command::Mount(args) => mount(*args),
        Command::Unmount {
            mountpoint,
            timeout,
        } => unmount(&mountpoint, timeout),
        Command::Sync {
            mountpoint,
            timeout,
        } => sync(&mountpoint, timeout),
        Command::Status { mountpoint, json } => status(mountpoint, json),
        Command::Warm {
            paths,
            jobs,
            hf_cache_layout,
            hf_cache_dir,
        } => warm(&paths, jobs, hf_cache_layout, hf_cache_dir),
        Command::Cache(cmd) => cache_command(cmd),
        Command::Completions { shell } => print_completions(shell),
        Command::Man { command } => print_man(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hubfs: {e}");
            ExitCode::FAILURE
        }
    }
}
