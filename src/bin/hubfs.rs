//! `hubfs`: mount Hugging Face Hub repos as local directories.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use hubfs::daemon::{self, control, mountpoint, ready, MountOptions};
use hubfs::units::{format_size, parse_size};

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
        #[arg(long, value_name = "SECS", default_value_t = 120)]
        timeout: u64,
    },
    /// Wait until every change staged in a writable mount has landed on the Hub; exits 1
    /// naming the paths that could not be committed (conflicts, failures).
    Sync {
        mountpoint: PathBuf,
        /// Give up after SECS seconds.
        #[arg(long, value_name = "SECS", default_value_t = 600)]
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
    /// Largest size of the block cache (e.g. 500M, 10G).
    #[arg(long, default_value = "10G", value_parser = parse_size)]
    cache_size: u64,
    /// Never write, even on a branch.
    #[arg(long)]
    read_only: bool,
    /// Send changes to a pull request (opened by the first commit) instead of the branch.
    #[arg(long)]
    create_pr: bool,
    /// Quiet period before staged changes are committed (a burst becomes one commit).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    commit_delay: f64,
    /// Title of every commit [default: one naming the changed paths].
    #[arg(long)]
    commit_message: Option<String>,
    /// Check branches for new commits every SECS seconds (open files keep their commit).
    #[arg(long, value_name = "SECS")]
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
    /// Threads reading kernel requests.
    #[arg(long, default_value_t = 4)]
    fuse_threads: usize,
    /// Fail a read or lookup with EIO when the Hub sends nothing for SECS seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    io_timeout: u64,
    /// Largest read-ahead window of a sequential reader (e.g. 32M, 256M).
    #[arg(long, value_name = "SIZE", default_value = "128M", value_parser = parse_size)]
    read_ahead: u64,
    /// Range requests in flight at once for the whole mount.
    #[arg(long, value_name = "N", default_value_t = 32)]
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
        io_timeout: Duration::from_secs(args.io_timeout.max(1)),
        read_ahead: args.read_ahead,
        max_requests: args.max_requests.clamp(1, 256),
        create_pr: args.create_pr,
        commit_delay: Duration::from_secs_f64(args.commit_delay.clamp(0.0, 3600.0)),
        commit_message: args.commit_message.clone(),
        flush_timeout: Duration::from_secs(120),
    };
    if args.foreground {
        init_logging();
        return daemon::run(opts, ready::ReadyPipe::none());
    }
    // Fail fast on what can be checked here, then start the daemon and wait for its verdict.
    hubfs::repo::HfPath::parse(&args.source).map_err(|e| e.to_string())?;
    mountpoint::check_mountpoint(&args.mountpoint)?;
    std::fs::create_dir_all(&opts.cache_dir)
        .map_err(|e| format!("cache dir {}: {e}", opts.cache_dir.display()))?;
    let log_path = args
        .log_file
        .clone()
        .unwrap_or_else(|| opts.cache_dir.join("hubfs.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("log file {}: {e}", log_path.display()))?;
    let shown_log = log_path.display().to_string();
    // SAFETY: no thread was started yet: the runtime is built by `daemon::run` in the child.
    unsafe {
        ready::fork_daemon(log, move |pipe| {
            init_logging();
            daemon::run(opts, pipe).is_ok()
        })
    }
    .map_err(|e| format!("{e} (daemon log: {shown_log})"))
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

/// Commits staged changes (bounded), then unmounts; what could not land is reported and
/// stays staged for the next mount.
fn unmount(mp: &std::path::Path, timeout: u64) -> Result<(), String> {
    if let Err(e) = sync(mp, timeout) {
        if !e.contains("not a running hubfs mount") {
            eprintln!("hubfs: {e}");
        }
    }
    mountpoint::unmount(mp)
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
