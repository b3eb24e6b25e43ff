//! Repository identity: repo types, repo ids, revisions, and the `hf://` path grammar.
//!
//! Shared by the client and the emulator so both sides agree on one set of rules:
//! `[hf://][datasets/|spaces/]NAMESPACE/NAME[@REVISION][/SUBPATH]` (see design.md), the id
//! validation of huggingface_hub's `validate_repo_id`, and the URL encoding rules of
//! hub-api.md §1.3 (a revision is one fully-escaped path segment; file paths are escaped
//! segment by segment).

use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The kinds of repositories the Hub hosts. Serialized as in JSON bodies (`"model"`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RepoType {
    Model,
    Dataset,
    Space,
    /// A Storage Bucket: Xet files under paths, no git, no revisions. Not in [`RepoType::ALL`]
    /// and not accepted by [`RepoType::parse`]: bucket routes are separate (`/api/buckets/…`).
    Bucket,
}

impl RepoType {
    pub const ALL: [RepoType; 3] = [RepoType::Model, RepoType::Dataset, RepoType::Space];

    /// Lower-case singular name as used in JSON bodies (`"type": "dataset"`).
    pub fn as_str(self) -> &'static str {
        match self {
            RepoType::Model => "model",
            RepoType::Dataset => "dataset",
            RepoType::Space => "space",
            RepoType::Bucket => "bucket",
        }
    }

    /// Plural segment of API URLs: `/api/{plural}/...`.
    pub fn plural(self) -> &'static str {
        match self {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
            RepoType::Space => "spaces",
            RepoType::Bucket => "buckets",
        }
    }

    /// Prefix of resolve/web/git URLs: models have none.
    pub fn url_prefix(self) -> &'static str {
        match self {
            RepoType::Model => "",
            RepoType::Dataset => "datasets/",
            RepoType::Space => "spaces/",
            RepoType::Bucket => "buckets/",
        }
    }

    pub fn parse(s: &str) -> Option<RepoType> {
        match s {
            "model" | "models" => Some(RepoType::Model),
            "dataset" | "datasets" => Some(RepoType::Dataset),
            "space" | "spaces" => Some(RepoType::Space),
            _ => None,
        }
    }

    /// Parses the plural API segment only (`models`, `datasets`, `spaces`).
    pub fn from_plural(s: &str) -> Option<RepoType> {
        RepoType::ALL.into_iter().find(|t| t.plural() == s)
    }
}

impl fmt::Display for RepoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a repo id, revision or `hf://` path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(pub String);

/// Checks one part of a repo id (namespace or name) like huggingface_hub's `validate_repo_id`.
pub fn validate_id_part(part: &str) -> Result<(), InvalidName> {
    let bad = |why: &str| Err(InvalidName(format!("invalid repo id part {part:?}: {why}")));
    if part.is_empty() || part.len() > 96 {
        return bad("must be 1 to 96 characters");
    }
    if !part
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return bad("only ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    if part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
        return bad("must not start or end with '-' or '.'");
    }
    if part.contains("--") || part.contains("..") {
        return bad("'--' and '..' are forbidden");
    }
    if part.ends_with(".git") {
        return bad("must not end with '.git'");
    }
    Ok(())
}

/// A repository id: `name` (legacy) or `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoId {
    pub namespace: Option<String>,
    pub name: String,
}

impl RepoId {
    pub fn parse(s: &str) -> Result<RepoId, InvalidName> {
        let mut parts = s.split('/');
        let (ns, name) = match (parts.next(), parts.next(), parts.next()) {
            (Some(name), None, _) => (None, name),
            (Some(ns), Some(name), None) => (Some(ns), name),
            _ => {
                return Err(InvalidName(format!(
                    "invalid repo id {s:?}: at most one '/' is allowed"
                )))
            }
        };
        if let Some(ns) = ns {
            validate_id_part(ns)?;
        }
        validate_id_part(name)?;
        Ok(RepoId {
            namespace: ns.map(str::to_string),
            name: name.to_string(),
        })
    }

    /// Case-folded form: repo ids are case-insensitive on the Hub.
    pub fn folded(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A repo of a given type: the unit that has refs, commits and files.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoRef {
    pub repo_type: RepoType,
    pub id: RepoId,
}

impl RepoRef {
    pub fn new(repo_type: RepoType, id: RepoId) -> RepoRef {
        RepoRef { repo_type, id }
    }

    /// `/api/{plural}/{id}`.
    pub fn api_path(&self) -> String {
        format!("/api/{}/{}", self.repo_type.plural(), self.id)
    }

    /// `/{prefix}{id}`: the base of resolve and git URLs.
    pub fn web_path(&self) -> String {
        format!("/{}{}", self.repo_type.url_prefix(), self.id)
    }
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.repo_type.url_prefix(), self.id)
    }
}

/// Every byte except unreserved ones (`A-Z a-z 0-9 - . _ ~`) is escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Encodes a revision as exactly one path segment (`refs/pr/1` → `refs%2Fpr%2F1`).
pub fn encode_revision(rev: &str) -> String {
    utf8_percent_encode(rev, SEGMENT).to_string()
}

/// Encodes a file path segment by segment, keeping `/` literal (`a b/#c` → `a%20b/%23c`).
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|seg| utf8_percent_encode(seg, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Percent-decodes a URL component; invalid UTF-8 is refused.
pub fn decode_component(s: &str) -> Result<String, InvalidName> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| InvalidName(format!("not valid UTF-8 after percent-decoding: {s:?}")))
}

/// True for a full (40) or short (7..39) lower-case hex commit id.
pub fn looks_like_commit(rev: &str) -> bool {
    (7..=40).contains(&rev.len())
        && rev
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a path inside a repo the way the Hub does (hub-api.md §9): relative, `/`-separated,
/// no empty, `.` or `..` segments, nothing under `.git/`.
pub fn validate_repo_path(path: &str) -> Result<(), InvalidName> {
    let bad = |why: &str| Err(InvalidName(format!("invalid path {path:?}: {why}")));
    if path.is_empty() {
        return bad("empty");
    }
    if path.contains('\\') {
        return bad("backslashes are not allowed");
    }
    for seg in path.split('/') {
        match seg {
            "" => return bad("empty segment or leading/trailing '/'"),
            "." | ".." => return bad("'.' and '..' segments are not allowed"),
            ".git" => return bad("nothing may live under .git/"),
            _ => {}
        }
    }
    Ok(())
}

/// Longest path segment a local filesystem shows (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Longest path a local filesystem resolves (`PATH_MAX`).
pub const PATH_MAX: usize = 4096;

/// Checks a path *received* from the Hub (tree, paths-info and sibling entries) before it
/// may name anything in a mount: the rules of [`validate_repo_path`], plus what a local
/// filesystem cannot show (a NUL byte, a segment longer than [`NAME_MAX`] bytes, a path
/// longer than [`PATH_MAX`]).
pub fn validate_listed_path(path: &str) -> Result<(), InvalidName> {
    validate_repo_path(path)?;
    let bad = |why: &str| Err(InvalidName(format!("invalid path {path:?}: {why}")));
    if path.contains('\0') {
        return bad("NUL byte");
    }
    if path.len() > PATH_MAX {
        return bad("longer than PATH_MAX");
    }
    if path.split('/').any(|seg| seg.len() > NAME_MAX) {
        return bad("a segment longer than NAME_MAX");
    }
    Ok(())
}

/// A parsed `hf://` location: the whole Hub, or a repo at an optional revision and sub-path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HfPath {
    /// `hf://` alone: the whole Hub.
    Hub,
    Repo {
        repo: RepoRef,
        /// `None` = the repo's default branch.
        revision: Option<String>,
        /// Path inside the repo, without leading or trailing `/`; empty = root.
        subpath: String,
    },
}

impl HfPath {
    /// Parses `[hf://][datasets/|spaces/]NS/NAME[@REV][/SUBPATH]` or `hf://` alone, and
    /// `[hf://]buckets/NS/NAME[/SUBPATH]` (a bucket has no revisions: `@` is refused).
    /// The revision may be percent-encoded (`@refs%2Fpr%2F1`); a literal `refs/pr/N` or
    /// `refs/convert/X` revision is also accepted, as huggingface_hub does.
    pub fn parse(input: &str) -> Result<HfPath, InvalidName> {
        let rest = input.strip_prefix("hf://").unwrap_or(input);
        let rest = rest.trim_matches('/');
        if rest.is_empty() {
            if input.starts_with("hf://") {
                return Ok(HfPath::Hub);
            }
            return Err(InvalidName("empty repo path".into()));
        }
        let (repo_type, rest) = match rest.split_once('/') {
            Some(("datasets", r)) => (RepoType::Dataset, r),
            Some(("spaces", r)) => (RepoType::Space, r),
            Some(("models", r)) => (RepoType::Model, r),
            Some(("buckets", r)) => (RepoType::Bucket, r),
            _ => (RepoType::Model, rest),
        };
        if repo_type == RepoType::Bucket {
            return parse_bucket(input, rest);
        }
        let segs: Vec<&str> = rest.split('/').collect();
        // The revision marker may be on the first segment (legacy id) or the second.
        let (id_segs, rev_in_seg, after) = match segs.iter().position(|s| s.contains('@')) {
            Some(i) if i <= 1 => (i + 1, true, i + 1),
            _ => {
                let n = if segs.len() >= 2 { 2 } else { 1 };
                (n, false, n)
            }
        };
        let mut id_str = segs[..id_segs].join("/");
        let mut revision = None;
        let mut tail: Vec<&str> = segs[after..].to_vec();
        if rev_in_seg {
            let (id, rev) = id_str
                .split_once('@')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .unwrap_or_default();
            id_str = id;
            let mut rev = decode_component(&rev)?;
            // Literal `refs/pr/N` / `refs/convert/X` revisions swallow the next two segments.
            if rev == "refs" && tail.len() >= 2 && matches!(tail[0], "pr" | "convert") {
                rev = format!("refs/{}/{}", tail[0], decode_component(tail[1])?);
                tail.drain(..2);
            }
            if rev.is_empty() {
                return Err(InvalidName(format!("empty revision in {input:?}")));
            }
            revision = Some(rev);
        }
        let id = RepoId::parse(&id_str)?;
        let subpath = parse_subpath(&tail)?;
        Ok(HfPath::Repo {
            repo: RepoRef::new(repo_type, id),
            revision,
            subpath,
        })
    }
}

/// The path inside a repo or bucket from its percent-encoded segments (empty ones skipped),
/// validated like any repo path; "" for the root.
fn parse_subpath(segs: &[&str]) -> Result<String, InvalidName> {
    let subpath = segs
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| decode_component(s))
        .collect::<Result<Vec<_>, _>>()?
        .join("/");
    if !subpath.is_empty() {
        validate_repo_path(&subpath)?;
    }
    Ok(subpath)
}

/// `NS/NAME[/SUBPATH]` of a bucket: always two id parts, no revision.
fn parse_bucket(input: &str, rest: &str) -> Result<HfPath, InvalidName> {
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.len() < 2 {
        return Err(InvalidName(format!(
            "{input:?}: a bucket is named buckets/NAMESPACE/NAME"
        )));
    }
    if segs[..2].iter().any(|s| s.contains('@')) {
        return Err(InvalidName(format!(
            "{input:?}: buckets have no revisions (no '@')"
        )));
    }
    let id = RepoId::parse(&segs[..2].join("/"))?;
    let subpath = parse_subpath(&segs[2..])?;
    Ok(HfPath::Repo {
        repo: RepoRef::new(RepoType::Bucket, id),
        revision: None,
        subpath,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(input: &str) -> (RepoRef, Option<String>, String) {
        match HfPath::parse(input).unwrap() {
            HfPath::Repo {
                repo,
                revision,
                subpath,
            } => (repo, revision, subpath),
            HfPath::Hub => panic!("expected a repo for {input}"),
        }
    }

    #[test]
    fn listed_paths_are_checked_like_sent_ones_and_for_what_a_filesystem_can_show() {
        for ok in [
            "a",
            "d/e.txt",
            "sp ace/ü.bin",
            ".gitattributes",
            &"x".repeat(255),
        ] {
            assert!(validate_listed_path(ok).is_ok(), "{ok}");
        }
        let long_path = vec!["x"; 2100].join("/");
        for bad in [
            "",
            ".",
            "..",
            ".git",
            "d/.git/x",
            "a//b",
            "/abs",
            "d/",
            "a\0b",
            "..\\up",
            &"x".repeat(256),
            &long_path,
        ] {
            assert!(validate_listed_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_the_grammar() {
        assert_eq!(HfPath::parse("hf://").unwrap(), HfPath::Hub);
        let (r, rev, sub) = repo("hf://openai-community/gpt2@v1.0/onnx/model.onnx");
        assert_eq!(r.repo_type, RepoType::Model);
        assert_eq!(r.id.to_string(), "openai-community/gpt2");
        assert_eq!(rev.as_deref(), Some("v1.0"));
        assert_eq!(sub, "onnx/model.onnx");

        let (r, rev, sub) = repo("datasets/ns/name@refs%2Fpr%2F3/data/train.parquet");
        assert_eq!(r.repo_type, RepoType::Dataset);
        assert_eq!(rev.as_deref(), Some("refs/pr/3"));
        assert_eq!(sub, "data/train.parquet");

        let (r, rev, sub) = repo("hf://datasets/ns/name@refs/pr/3/data");
        assert_eq!(r.repo_type, RepoType::Dataset);
        assert_eq!(rev.as_deref(), Some("refs/pr/3"));
        assert_eq!(sub, "data");

        let (r, rev, sub) = repo("gpt2");
        assert_eq!(r.id.namespace, None);
        assert_eq!(rev, None);
        assert_eq!(sub, "");

        let (r, rev, _) = repo("gpt2@main");
        assert_eq!(r.id.name, "gpt2");
        assert_eq!(rev.as_deref(), Some("main"));

        let (r, rev, _) = repo("spaces/ns/app@feature%2Fx");
        assert_eq!(r.repo_type, RepoType::Space);
        assert_eq!(rev.as_deref(), Some("feature/x"));
    }

    #[test]
    fn parses_buckets() {
        let (r, rev, sub) = repo("hf://buckets/ns/bkt/a/b.txt");
        assert_eq!(r.repo_type, RepoType::Bucket);
        assert_eq!(r.id.to_string(), "ns/bkt");
        assert_eq!(rev, None);
        assert_eq!(sub, "a/b.txt");
        assert_eq!(r.api_path(), "/api/buckets/ns/bkt");
        assert_eq!(r.web_path(), "/buckets/ns/bkt");
        assert_eq!(r.to_string(), "buckets/ns/bkt");
        for bad in ["buckets/ns", "hf://buckets/ns/b@main", "buckets/ns/b/../x"] {
            assert!(HfPath::parse(bad).is_err(), "{bad:?} should be refused");
        }
        // Never a repo type the git routes accept.
        assert_eq!(RepoType::parse("bucket"), None);
        assert_eq!(RepoType::from_plural("buckets"), None);
    }

    #[test]
    fn refuses_bad_input() {
        for bad in [
            "",
            "a/b/../c",
            "-bad/name",
            "ns/na--me",
            "ns/name.git",
            "ns/name@",
            "ns/name/.git/config",
        ] {
            assert!(HfPath::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn encodes_like_the_clients() {
        assert_eq!(encode_revision("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(encode_revision("fix#1 a"), "fix%231%20a");
        assert_eq!(encode_path("a b/#c/%/é"), "a%20b/%23c/%25/%C3%A9");
        assert_eq!(decode_component("refs%2Fpr%2F1").unwrap(), "refs/pr/1");
        assert!(looks_like_commit("abcdef0"));
        assert!(!looks_like_commit("main"));
        assert!(!looks_like_commit("abc"));
    }
}
