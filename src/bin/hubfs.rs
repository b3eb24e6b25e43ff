//! `hubfs`: mount Hugging Face Hub repos as local directories.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Parser, Subcommand};

use hubfs::daemon::{self, control, mountpoint, ready, MountOptions};
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

fn secs(range: std::ops::RangeInclusive<u64>) -> RangedU64ValueParser<u64> {
    RangedU64ValueParser::new().range(range)
}

fn count(range: std::ops::RangeInclusive<u64>) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(range)
}

#[derive(Parser)]
#[command(
    name = "hubfs",
    version,
    about = "Mount Hugging Face Hub repositories as local directories"
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
    /// Show a running mount's revisions and counters (requests, bytes, cache hits...).
    Status {
        mountpoint: PathBuf,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct MountArgs {
    source: String,
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
    /// Title of every commit [default: one naming the changed paths].
    #[arg(long)]
    commit_message: Option<String>,
    /// Check branches for new commits every SECS seconds (open files keep their commit).
    #[arg(long, value_name = "SECS", value_parser = secs(1..=MAX_SECS))]
    refresh: Option<u64>,
    /// Let other users access the mount.
    #[arg(long)]
    allow_other: bool,
    /// Serve only what is cached; no network at all (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    offline: bool,
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
        .init();
}

fn mount(args: MountArgs) -> Result<(), String> {
    let opts = MountOptions {
        source: args.source.clone(),
        mountpoint: args.mountpoint.clone(),
        endpoint: args.endpoint.clone(),
        token_file: args.token_file.clone(),
        cache_dir: args
            .cache_dir
            .clone()
            .unwrap_or_else(daemon::default_cache_dir),
        cache_size: args.cache_size,
        read_only: args.read_only,
        refresh: args.refresh.map(Duration::from_secs),
        allow_other: args.allow_other,
        offline: args.offline || daemon::env_offline(),
        fuse_threads: args.fuse_threads,
        io_timeout: Duration::from_secs(args.io_timeout),
        max_entries: args.max_entries,
        read_ahead: args.read_ahead,
        max_requests: args.max_requests,
        create_pr: args.create_pr,
        commit_delay: Duration::from_secs_f64(args.commit_delay),
        commit_message: args.commit_message.clone(),
        flush_timeout: Duration::from_secs(120),
    };
    if args.foreground {
        init_logging();
        // SAFETY: single thread: the runtime is built inside `daemon::run`.
        return unsafe { daemon::run(opts, ready::ReadyPipe::none()) };
    }
    // Fail fast on what can be checked here, then start the daemon and wait for its verdict.
    hubfs::repo::HfPath::parse(&args.source).map_err(|e| e.to_string())?;
    mountpoint::check_mountpoint(&args.mountpoint)?;
    // The daemon tightens an old, loose cache (and logs it); the log must be private already.
    private_cache_root(&opts.cache_dir)?;
    let log_path = args
        .log_file
        .clone()
        .unwrap_or_else(|| opts.cache_dir.join("hubfs.log"));
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

fn status(mountpoint: PathBuf, json: bool) -> Result<(), String> {
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
    if answer["offline"].as_bool() == Some(true) {
        println!("mode:        offline");
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
    let p = &answer["passthrough"];
    if p["available"].as_bool() == Some(true) {
        println!(
            "passthrough: {} opens, {} files open, {} pinned in the cache",
            n(&p["opens"]),
            n(&p["inodes"]),
            format_size(n(&c["pinned_bytes"]))
        );
    } else {
        println!("passthrough: off (every read is served by hubfs)");
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

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hubfs: {e}");
            ExitCode::FAILURE
        }
    }
}
