//! Parses raw (still percent-encoded) request paths into Hub routes. Done by hand rather than
//! with a router pattern because repo ids have one or two segments, and revisions and file
//! paths need hub-api.md §1.3's decoding rules: a revision is one encoded segment (`%2F` for
//! `/`), except a literal `refs/pr/N` or `refs/convert/X` after `/tree/`; file paths may use
//! raw `/` or `%2F`.

use std::ops::Range;

use crate::api::buckets::BucketOp;
use hub_wire::repo::{decode_component, RepoType};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Whoami,
    ValidateYaml,
    CreateRepo,
    DeleteRepo,
    ListRepos(RepoType),
    Repo(RepoTarget, RepoOp),
    /// `POST /api/repos/move`.
    MoveRepo,
    /// `GET /api/buckets/{ns}`.
    ListBuckets(String),
    /// A bucket (`ns/name`, decoded) and what to do with it.
    Bucket(String, BucketOp),
    NotFound,
}

/// The repo a route addresses, as written in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoTarget {
    pub repo_type: RepoType,
    pub id: String,
    /// Byte range of the id in the raw path (to build a redirect to the canonical casing).
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoOp {
    Info { rev: Option<String> },
    Tree { rev: String, path: String },
    PathsInfo { rev: String },
    Refs,
    Commits { rev: String },
    Preupload { rev: String },
    Commit { rev: String },
    Branch { name: String },
    Tag { name: String },
    Settings,
    AuthCheck { write: bool },
    XetToken { write: bool, rev: String },
    Discussions,
    Discussion { num: u64 },
    Resolve { rev: String, path: String },
    Raw { rev: String, path: String },
    LfsBatch,
    LfsVerify,
    LfsComplete { upload: String },
}

/// A raw segment and its byte offset in the path.
#[derive(Clone, Copy)]
struct Seg<'a> {
    s: &'a str,
    at: usize,
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    for s in path.split('/') {
        if !(s.is_empty() && at == 0) {
            out.push(Seg { s, at });
        }
        at += s.len() + 1;
    }
    out
}

fn decode(s: &str) -> Option<String> {
    decode_component(s).ok()
}

/// Decodes segments and joins them with `/` (a revision or path written with raw slashes).
fn join(segs: &[Seg]) -> Option<String> {
    let parts: Option<Vec<String>> = segs.iter().map(|s| decode(s.s)).collect();
    let joined = parts?.join("/");
    (!joined.is_empty()).then_some(joined)
}

/// File path after a revision: raw `/` or `%2F`, no empty segments kept.
fn file_path(segs: &[Seg]) -> Option<String> {
    let parts: Option<Vec<String>> = segs.iter().map(|s| decode(s.s)).collect();
    Some(
        parts?
            .join("/")
            .split('/')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

const API_OPS: &[&str] = &[
    "revision",
    "tree",
    "paths-info",
    "refs",
    "commits",
    "preupload",
    "commit",
    "branch",
    "tag",
    "settings",
    "auth-check",
    "xet-read-token",
    "xet-write-token",
    "discussions",
];

fn api_op(rest: &[Seg]) -> Option<RepoOp> {
    let first = rest.first().map(|s| s.s);
    let tail = rest.get(1..).unwrap_or_default();
    Some(match first {
        None => RepoOp::Info { rev: None },
        Some("revision") => RepoOp::Info {
            rev: Some(join(tail)?),
        },
        Some("tree") => {
            let (rev, after) = match tail {
                [r, kind, n, ..] if r.s == "refs" && matches!(kind.s, "pr" | "convert") => {
                    (format!("refs/{}/{}", kind.s, decode(n.s)?), &tail[3..])
                }
                [r, ..] => (decode(r.s)?, &tail[1..]),
                [] => return None,
            };
            RepoOp::Tree {
                rev,
                path: file_path(after)?,
            }
        }
        Some("paths-info") => RepoOp::PathsInfo { rev: join(tail)? },
        Some("refs") if tail.is_empty() => RepoOp::Refs,
        Some("commits") => RepoOp::Commits { rev: join(tail)? },
        Some("preupload") => RepoOp::Preupload { rev: join(tail)? },
        Some("commit") => RepoOp::Commit { rev: join(tail)? },
        Some("branch") => RepoOp::Branch { name: join(tail)? },
        Some("tag") => RepoOp::Tag { name: join(tail)? },
        Some("settings") if tail.is_empty() => RepoOp::Settings,
        Some("auth-check") if tail.is_empty() => RepoOp::AuthCheck { write: false },
        Some("auth-check") if tail.len() == 1 && tail[0].s == "write" => {
            RepoOp::AuthCheck { write: true }
        }
        Some("xet-read-token") => RepoOp::XetToken {
            write: false,
            rev: join(tail)?,
        },
        Some("xet-write-token") => RepoOp::XetToken {
            write: true,
            rev: join(tail)?,
        },
        Some("discussions") if tail.is_empty() => RepoOp::Discussions,
        Some("discussions") if tail.len() == 1 => RepoOp::Discussion {
            num: tail[0].s.parse().ok()?,
        },
        _ => return None,
    })
}

fn target(repo_type: RepoType, id_segs: &[Seg], strip_git: bool) -> Option<RepoTarget> {
    let first = id_segs.first()?;
    let last = id_segs.last()?;
    let mut end = last.at + last.s.len();
    let mut id = join(id_segs)?;
    if strip_git {
        id = id.strip_suffix(".git")?.to_string();
        end -= 4;
    }
    Some(RepoTarget {
        repo_type,
        id,
        span: first.at..end,
    })
}

/// Parses `path`; `exists(type, id)` breaks the tie between a one-part legacy id and a
/// two-part id when both readings are possible.
pub fn parse(path: &str, exists: impl Fn(RepoType, &str) -> bool) -> Route {
    parse_inner(path, &exists).unwrap_or(Route::NotFound)
}

fn two(segs: &[Seg]) -> String {
    format!("{}/{}", segs[0].s, segs[1].s)
}

/// `/api/buckets/…` (after `api`) and `/buckets/{ns}/{name}/resolve/{path}`.
fn bucket_route(segs: &[Seg], api: bool) -> Option<Route> {
    let id = |s: &[Seg]| Some(format!("{}/{}", decode(s[0].s)?, decode(s[1].s)?));
    if api {
        return Some(match segs {
            [_, ns] => Route::ListBuckets(decode(ns.s)?),
            [_, a, b, rest @ ..] => {
                let id = id(&[*a, *b])?;
                let op = match rest.first().map(|s| s.s) {
                    None => BucketOp::Root,
                    Some("tree") => BucketOp::Tree {
                        // Either one encoded segment (huggingface_hub) or raw slashes (hf-mount).
                        prefix: rest[1..]
                            .iter()
                            .map(|s| decode(s.s))
                            .collect::<Option<Vec<_>>>()?
                            .join("/"),
                    },
                    Some("paths-info") if rest.len() == 1 => BucketOp::PathsInfo,
                    Some("batch") if rest.len() == 1 => BucketOp::Batch,
                    Some("settings") if rest.len() == 1 => BucketOp::Settings,
                    Some("xet-read-token") if rest.len() == 1 => {
                        BucketOp::XetToken { write: false }
                    }
                    Some("xet-write-token") if rest.len() == 1 => {
                        BucketOp::XetToken { write: true }
                    }
                    _ => return None,
                };
                Route::Bucket(id, op)
            }
            _ => return None,
        });
    }
    match segs {
        [_, a, b, kw, path @ ..] if kw.s == "resolve" && !path.is_empty() => {
            let path = file_path(path)?;
            (!path.is_empty()).then_some(())?;
            Some(Route::Bucket(id(&[*a, *b])?, BucketOp::Resolve { path }))
        }
        _ => None,
    }
}

fn parse_inner(path: &str, exists: &dyn Fn(RepoType, &str) -> bool) -> Option<Route> {
    let segs = segments(path);
    if segs.first()?.s == "buckets" && segs.get(3).is_some_and(|s| s.s == "resolve") {
        return bucket_route(&segs, false);
    }
    if segs.first()?.s == "api" {
        let rest = &segs[1..];
        if rest.first()?.s == "buckets" {
            return bucket_route(rest, true);
        }
        return Some(match rest.first()?.s {
            "repos" if rest.len() == 2 && rest[1].s == "move" => Route::MoveRepo,
            "whoami-v2" if rest.len() == 1 => Route::Whoami,
            "validate-yaml" if rest.len() == 1 => Route::ValidateYaml,
            "repos" if rest.len() == 2 && rest[1].s == "create" => Route::CreateRepo,
            "repos" if rest.len() == 2 && rest[1].s == "delete" => Route::DeleteRepo,
            plural => {
                let t = RepoType::from_plural(plural)?;
                let rest = &rest[1..];
                if rest.is_empty() {
                    return Some(Route::ListRepos(t));
                }
                let legacy = rest.len() == 1
                    || (API_OPS.contains(&rest[1].s)
                        && !exists(t, &two(rest))
                        && exists(t, rest[0].s));
                let n = if legacy { 1 } else { 2 };
                Route::Repo(target(t, &rest[..n], false)?, api_op(&rest[n..])?)
            }
        });
    }
    let (t, rest) = match segs[0].s {
        "datasets" if segs.len() > 1 => (RepoType::Dataset, &segs[1..]),
        "spaces" if segs.len() > 1 => (RepoType::Space, &segs[1..]),
        _ => (RepoType::Model, &segs[..]),
    };
    // `{id}.git/info/lfs/objects/...`
    for n in [1, 2] {
        if rest.len() > n + 3
            && rest[n - 1].s.ends_with(".git")
            && rest[n].s == "info"
            && rest[n + 1].s == "lfs"
            && rest[n + 2].s == "objects"
        {
            let op = match &rest[n + 3..] {
                [b] if b.s == "batch" => RepoOp::LfsBatch,
                [v] if v.s == "verify" => RepoOp::LfsVerify,
                [c, id] if c.s == "complete" => RepoOp::LfsComplete {
                    upload: decode(id.s)?,
                },
                _ => return None,
            };
            return Some(Route::Repo(target(t, &rest[..n], true)?, op));
        }
    }
    // `{id}/resolve|raw/{rev}/{path}`
    let is_kw = |i: usize| {
        rest.get(i)
            .is_some_and(|s| s.s == "resolve" || s.s == "raw")
    };
    let n = if is_kw(1)
        && (rest.len() < 3 || !exists(t, &two(rest)))
        && !(is_kw(2) && exists(t, &two(rest)))
    {
        1
    } else if is_kw(2) {
        2
    } else {
        return None;
    };
    if rest.len() < n + 3 {
        return None;
    }
    let rev = decode(rest[n + 1].s)?;
    let path = file_path(&rest[n + 2..])?;
    if path.is_empty() {
        return None;
    }
    let op = if rest[n].s == "resolve" {
        RepoOp::Resolve { rev, path }
    } else {
        RepoOp::Raw { rev, path }
    };
    Some(Route::Repo(target(t, &rest[..n], false)?, op))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: RepoType, _: &str) -> bool {
        false
    }

    fn op(path: &str) -> (String, RepoOp) {
        match parse(path, none) {
            Route::Repo(t, op) => (t.id, op),
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn parses_api_routes() {
        assert_eq!(parse("/api/whoami-v2", none), Route::Whoami);
        assert_eq!(
            parse("/api/datasets", none),
            Route::ListRepos(RepoType::Dataset)
        );
        assert_eq!(
            op("/api/models/a/b"),
            ("a/b".into(), RepoOp::Info { rev: None })
        );
        assert_eq!(
            op("/api/models/a/b/revision/refs%2Fpr%2F1"),
            (
                "a/b".into(),
                RepoOp::Info {
                    rev: Some("refs/pr/1".into())
                }
            )
        );
        assert_eq!(
            op("/api/models/a/b/tree/feature%2Fx/dir%2Fsub"),
            (
                "a/b".into(),
                RepoOp::Tree {
                    rev: "feature/x".into(),
                    path: "dir/sub".into()
                }
            )
        );
        assert_eq!(
            op("/api/datasets/a/b/tree/refs/pr/3/x/y"),
            (
                "a/b".into(),
                RepoOp::Tree {
                    rev: "refs/pr/3".into(),
                    path: "x/y".into()
                }
            )
        );
        assert_eq!(
            op("/api/models/a/b/tree/main"),
            (
                "a/b".into(),
                RepoOp::Tree {
                    rev: "main".into(),
                    path: "".into()
                }
            )
        );
        assert_eq!(
            op("/api/spaces/a/b/commit/main").1,
            RepoOp::Commit { rev: "main".into() }
        );
        assert_eq!(op("/api/models/gpt2").0, "gpt2");
        assert_eq!(parse("/api/models/a/b/nope", none), Route::NotFound);
    }

    #[test]
    fn legacy_ids_win_only_when_they_exist() {
        let gpt2 = |_: RepoType, id: &str| id == "gpt2";
        match parse("/api/models/gpt2/tree/main", gpt2) {
            Route::Repo(t, RepoOp::Tree { rev, .. }) => {
                assert_eq!((t.id.as_str(), rev.as_str()), ("gpt2", "main"))
            }
            other => panic!("{other:?}"),
        }
        match parse("/gpt2/resolve/main/config.json", gpt2) {
            Route::Repo(t, RepoOp::Resolve { rev, path }) => {
                assert_eq!(
                    (t.id.as_str(), rev.as_str(), path.as_str()),
                    ("gpt2", "main", "config.json")
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_bucket_routes() {
        assert_eq!(
            parse("/api/buckets/me", none),
            Route::ListBuckets("me".into())
        );
        assert_eq!(
            parse("/api/buckets/a/b", none),
            Route::Bucket("a/b".into(), BucketOp::Root)
        );
        assert_eq!(
            parse("/api/buckets/a/b/tree/logs%2Fx", none),
            Route::Bucket(
                "a/b".into(),
                BucketOp::Tree {
                    prefix: "logs/x".into()
                }
            )
        );
        assert_eq!(
            parse("/api/buckets/a/b/tree/logs/x", none),
            Route::Bucket(
                "a/b".into(),
                BucketOp::Tree {
                    prefix: "logs/x".into()
                }
            )
        );
        assert_eq!(
            parse("/api/buckets/a/b/xet-write-token", none),
            Route::Bucket("a/b".into(), BucketOp::XetToken { write: true })
        );
        assert_eq!(
            parse("/buckets/a/b/resolve/d%2Fe%20f.txt", none),
            Route::Bucket(
                "a/b".into(),
                BucketOp::Resolve {
                    path: "d/e f.txt".into()
                }
            )
        );
        assert_eq!(parse("/api/repos/move", none), Route::MoveRepo);
        assert_eq!(parse("/api/buckets/a/b/nope", none), Route::NotFound);
        assert_eq!(parse("/buckets/a/b/resolve", none), Route::NotFound);
    }

    #[test]
    fn parses_web_routes() {
        let (id, o) = op("/datasets/Ns/Name/resolve/refs%2Fpr%2F1/a%20b/%23c.txt");
        assert_eq!(id, "Ns/Name");
        assert_eq!(
            o,
            RepoOp::Resolve {
                rev: "refs/pr/1".into(),
                path: "a b/#c.txt".into()
            }
        );
        assert_eq!(
            op("/ns/n.git/info/lfs/objects/batch"),
            ("ns/n".into(), RepoOp::LfsBatch)
        );
        assert_eq!(
            op("/spaces/ns/n.git/info/lfs/objects/verify").1,
            RepoOp::LfsVerify
        );
        assert_eq!(
            op("/ns/n/raw/main/x").1,
            RepoOp::Raw {
                rev: "main".into(),
                path: "x".into()
            }
        );
        match parse("/ns/n/resolve/main/x", none) {
            Route::Repo(t, _) => assert_eq!(&"/ns/n/resolve/main/x"[t.span], "ns/n"),
            other => panic!("{other:?}"),
        }
        assert_eq!(parse("/ns/n/resolve/main", none), Route::NotFound);
    }
}
