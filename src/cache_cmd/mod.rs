//! `hubfs cache ls|rm|gc`: what the on-disk cache holds, in user terms, and cleaning it up.
//!
//! A cache directory holds one cache root (`blocks/` + `meta/`), plus one per instance slot
//! (`instances/N/`, used by concurrent mounts). Each root is handled on its own:
//! - `ls` reads the sidecars and blob records directly, changing nothing, so it is safe
//!   whoever owns the root.
//! - `rm` and `gc` must not race the daemon that owns a root (its index lives in memory): a
//!   root a running mount holds is handed to that daemon over its control socket, which does
//!   the work with its own cache (and so its pins: a blob an open file reads directly is
//!   skipped and reported). A root nobody holds is locked by the command itself for the
//!   duration, so a mount started meanwhile uses another slot.

pub mod ops;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cache::{
    cache_root_holder, scan_root, stamped_block_size, try_lock_cache_root, BlobRecord, BlockCache,
    CacheConfig, CachedBlob, Inventory, MetaStore, INSTANCES_DIR,
};
use crate::daemon::{control, mounts};
use crate::units::format_size;
use ops::{GcRequest, Report, RmRequest};

/// Longest wait for a daemon's answer to a `cache_rm` / `cache_gc` request.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(120);

/// The cache roots under a cache directory: the directory itself, then its instance slots.
pub fn roots(cache_dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![cache_dir.to_path_buf()];
    let mut slots: Vec<(u32, PathBuf)> = std::fs::read_dir(cache_dir.join(INSTANCES_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .collect();
    slots.sort();
    out.extend(slots.into_iter().map(|(_, p)| p));
    out
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn when(secs: u64) -> String {
    if secs == 0 {
        return "-".into();
    }
    let t = std::time::UNIX_EPOCH + Duration::from_secs(secs);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    // 2026-12-02T14:00:00Z -> 2026-12-02 14:00 (UTC)
    s.get(..16).map_or(s.clone(), |m| m.replace('T', " "))
}

fn check_dir(cache_dir: &Path) -> Result<(), String> {
    if cache_dir.is_dir() {
        Ok(())
    } else {
        Err(format!("no hubfs cache at {}", cache_dir.display()))
    }
}

/// `hubfs cache ls [REPO]`.
pub fn ls(cache_dir: &Path, repo: Option<&str>, json_out: bool) -> Result<(), String> {
    check_dir(cache_dir)?;
    let filter = repo.map(parse_repo_filter).transpose()?;
    let mut rows: Vec<(CachedBlob, Option<BlobRecord>)> = Vec::new();
    let mut json_roots = Vec::new();
    let mut footers = Vec::new();
    for root in roots(cache_dir) {
        let blobs = scan_root(&root).map_err(|e| format!("reading {}: {e}", root.display()))?;
        let meta = MetaStore::open_existing(&root);
        let inventory = Inventory::new(Arc::new(meta));
        let holder = cache_root_holder(&root);
        let mut listed = Vec::new();
        for b in blobs {
            let record = inventory.get(&b.key);
            if filter.as_ref().is_some_and(|f| !f.matches(record.as_ref())) {
                continue;
            }
            listed.push((b, record));
        }
        let bytes: u64 = listed.iter().map(|(b, _)| b.cached_bytes).sum();
        json_roots.push(json!({
            "dir": root,
            "in_use_by_pid": holder,
            "cached_bytes": bytes,
            "blobs": listed.iter().map(|(b, r)| json!({
                "key": format!("{}:{}", b.key.kind_name(), b.key),
                "size": b.size,
                "cached_bytes": b.cached_bytes,
                "complete": b.complete,
                "last_used": b.last_used,
                "refs": r.as_ref().map(|r| r.refs.clone()).unwrap_or_default(),
            })).collect::<Vec<_>>(),
        }));
        if !listed.is_empty() || holder.is_some() || root == cache_dir {
            footers.push(format!(
                "{} file(s), {} cached in {}{}",
                listed.len(),
                format_size(bytes),
                root.display(),
                holder.map_or(String::new(), |p| format!(" (in use by hubfs pid {p})"))
            ));
        }
        rows.extend(listed);
    }
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "roots": json_roots })).unwrap_or_default()
        );
        return Ok(());
    }
    let mut table: Vec<[String; 7]> = rows
        .iter()
        .map(|(b, r)| {
            let first = r.as_ref().and_then(|r| r.refs.first());
            let more = r.as_ref().map_or(0, |r| r.refs.len().saturating_sub(1));
            let path = match first {
                Some(f) if more > 0 => format!("{} (+{more} more)", f.path),
                Some(f) => f.path.clone(),
                None => format!("{}:{}", b.key.kind_name(), b.key),
            };
            [
                first.map_or("(unknown)".into(), |f| f.repo.clone()),
                first.map_or("-".into(), |f| f.commit.chars().take(12).collect()),
                path,
                format_size(b.size),
                format_size(b.cached_bytes),
                if b.complete { "complete" } else { "partial" }.into(),
                when(b.last_used),
            ]
        })
        .collect();
    table.sort();
    if !table.is_empty() {
        let head = [
            "REPO",
            "REVISION",
            "PATH",
            "SIZE",
            "CACHED",
            "STATE",
            "LAST USED",
        ]
        .map(String::from);
        let mut width = [0usize; 7];
        for row in std::iter::once(&head).chain(&table) {
            for (w, c) in width.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        for row in std::iter::once(&head).chain(&table) {
            let cells: Vec<String> = row
                .iter()
                .zip(width)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            println!("{}", cells.join("  ").trim_end());
        }
    }
    for f in footers {
        println!("{f}");
    }
    Ok(())
}

/// A repo (`ns/name`, `datasets/ns/name`, optionally `/sub/dir`) as an rm filter.
pub fn parse_repo_filter(spec: &str) -> Result<RmRequest, String> {
    match crate::repo::HfPath::parse(spec).map_err(|e| e.to_string())? {
        crate::repo::HfPath::Hub => Err("name a repo (e.g. ns/name, datasets/ns/name)".into()),
        crate::repo::HfPath::Repo {
            repo,
            revision,
            subpath,
        } => {
            if revision.is_some() {
                return Err(format!(
                    "{spec:?}: the cache keeps file contents, not revisions; name the repo \
                     without @REVISION"
                ));
            }
            Ok(RmRequest {
                all: false,
                repo: Some(repo.to_string()),
                prefix: (!subpath.is_empty()).then_some(subpath),
                globs: Vec::new(),
            })
        }
    }
}

/// What to do to each root: a request the daemon (or we) run.
enum Work {
    Rm(RmRequest),
    Gc(GcRequest),
}

impl Work {
    fn command(&self) -> Value {
        match self {
            Work::Rm(r) => json!({"cmd": "cache_rm", "request": r}),
            Work::Gc(g) => json!({"cmd": "cache_gc", "request": g}),
        }
    }

    fn run(&self, cache: &BlockCache, inventory: &Inventory) -> Report {
        match self {
            Work::Rm(r) => ops::remove(cache, inventory, r),
            Work::Gc(g) => ops::gc(cache, inventory, g, now_secs()),
        }
    }
}

/// Runs `work` on `root`: here under its lock if nobody holds it, else by the daemon that does.
fn run_on_root(root: &Path, work: &Work) -> Result<Report, String> {
    if !root.join(crate::cache::BLOCKS_DIR).is_dir() {
        return Ok(Report::default());
    }
    let lock = try_lock_cache_root(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let Some(_lock) = lock else {
        return ask_daemon(root, work);
    };
    let block_size = stamped_block_size(root).unwrap_or(crate::cache::DEFAULT_BLOCK_SIZE);
    let cache = BlockCache::open(CacheConfig {
        max_bytes: u64::MAX / 2,
        block_size,
        ..CacheConfig::new(root)
    })
    .map_err(|e| format!("opening the cache in {}: {e}", root.display()))?;
    let meta = MetaStore::open(root.to_path_buf())
        .map_err(|e| format!("opening the metadata in {}: {e}", root.display()))?;
    let inventory = Inventory::new(Arc::new(meta));
    Ok(work.run(&cache, &inventory))
}

/// Hands `work` to the running mount whose daemon owns `root`.
fn ask_daemon(root: &Path, work: &Work) -> Result<Report, String> {
    let pid = cache_root_holder(root).unwrap_or(0);
    let want = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() };
    for m in mounts::list()
        .into_iter()
        .filter(|m| me == 0 || m.user_id == me)
    {
        let Ok(status) = control::request(
            &m.mountpoint,
            &json!({"cmd": "status"}),
            Duration::from_secs(5),
        ) else {
            continue;
        };
        let d = &status["daemon"];
        let owns = d["cache_root"]
            .as_str()
            .map(|r| Path::new(r).canonicalize().unwrap_or_else(|_| r.into()))
            .is_some_and(|r| r == want)
            || (pid != 0 && d["pid"].as_u64() == Some(u64::from(pid)));
        if !owns {
            continue;
        }
        let answer = control::request(&m.mountpoint, &work.command(), DAEMON_TIMEOUT)?;
        if let Some(e) = answer.get("error").and_then(|e| e.as_str()) {
            return Err(format!(
                "{} (in use by the mount at {}): {e}",
                root.display(),
                m.mountpoint.display()
            ));
        }
        return serde_json::from_value(answer).map_err(|e| {
            format!(
                "bad answer from the daemon of {}: {e}",
                m.mountpoint.display()
            )
        });
    }
    Err(format!(
        "{} is in use by process {pid}, which is not a hubfs mount this user can reach: \
         left alone (unmount it, or run this as its user)",
        root.display()
    ))
}

fn print_report(root: &Path, r: &Report, verb: &str) {
    for i in &r.skipped_in_use {
        println!(
            "skipped (in use by an open file): {}",
            i.name.as_deref().unwrap_or(&i.key)
        );
    }
    if r.removed.is_empty() && r.freed_bytes == 0 {
        return;
    }
    println!(
        "{}: {verb} {} file(s), freed {} ({} -> {})",
        root.display(),
        r.removed.len(),
        format_size(r.freed_bytes),
        format_size(r.used_before),
        format_size(r.used_after)
    );
}

/// Runs the work `work_for` gives each root; prints per-root reports and a total.
fn run_all(
    roots: Vec<PathBuf>,
    work_for: impl Fn(&Path) -> Work,
    verb: &str,
    json_out: bool,
) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut reports = Vec::new();
    for root in roots {
        match run_on_root(&root, &work_for(&root)) {
            Ok(r) => reports.push((root, r)),
            Err(e) => errors.push(e),
        }
    }
    let freed: u64 = reports.iter().map(|(_, r)| r.freed_bytes).sum();
    let removed: usize = reports.iter().map(|(_, r)| r.removed.len()).sum();
    let skipped: usize = reports.iter().map(|(_, r)| r.skipped_in_use.len()).sum();
    if json_out {
        let roots: Vec<Value> = reports
            .iter()
            .map(|(root, r)| json!({"dir": root, "report": r}))
            .collect();
        let out = json!({"roots": roots, "freed_bytes": freed, "removed": removed,
            "skipped_in_use": skipped, "errors": errors});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        for (root, r) in &reports {
            print_report(root, r, verb);
        }
        let skipped = if skipped > 0 {
            format!(", {skipped} in use skipped")
        } else {
            String::new()
        };
        println!(
            "freed {} ({removed} file(s) {verb}{skipped})",
            format_size(freed)
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// `hubfs cache rm`.
pub fn rm(cache_dir: &Path, req: RmRequest, json_out: bool) -> Result<(), String> {
    check_dir(cache_dir)?;
    let work = |_: &Path| Work::Rm(req.clone());
    run_all(roots(cache_dir), work, "removed", json_out)
}

/// `hubfs cache gc`: `--max-size` applies to the whole directory; with several roots each is
/// brought down in proportion to what it holds, so the total fits.
pub fn gc(
    cache_dir: &Path,
    max_size: Option<u64>,
    older_than: Option<Duration>,
    json_out: bool,
) -> Result<(), String> {
    if max_size.is_none() && older_than.is_none() {
        return Err("say what to collect: --max-size SIZE and/or --older-than AGE".into());
    }
    check_dir(cache_dir)?;
    let roots = roots(cache_dir);
    let used: Vec<u64> = roots
        .iter()
        .map(|r| {
            scan_root(r)
                .map(|b| b.iter().map(|b| b.cached_bytes).sum())
                .unwrap_or(0)
        })
        .collect();
    let total: u64 = used.iter().sum();
    let shares: std::collections::HashMap<PathBuf, u64> = roots
        .iter()
        .zip(&used)
        .map(|(r, &u)| {
            let share = match max_size {
                Some(m) if total > m => (u128::from(u) * u128::from(m) / u128::from(total)) as u64,
                _ => u64::MAX,
            };
            (r.clone(), share)
        })
        .collect();
    let older_than_secs = older_than.map(|d| d.as_secs());
    let work = |root: &Path| {
        Work::Gc(GcRequest {
            target_bytes: max_size.and(shares.get(root).copied()),
            older_than_secs,
        })
    };
    run_all(roots.clone(), work, "evicted", json_out)
}
