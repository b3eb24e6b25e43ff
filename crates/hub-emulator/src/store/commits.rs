//! Commit records: the git commit (tree, parent, author, time, message) plus the fields the API
//! serves without re-parsing (title, description, depth for `X-Total-Count`). Each repo keeps
//! its commits in an append-only JSON-lines log.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::git::{commit_message, CommitObject, Oid};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRec {
    pub id: Oid,
    pub tree: Oid,
    pub parent: Option<Oid>,
    pub author: String,
    /// Seconds since the epoch.
    pub time: u64,
    pub title: String,
    pub description: String,
    /// Number of commits reachable from this one, itself included.
    pub depth: u64,
}

impl CommitRec {
    /// Builds the record of a new commit on top of `parent`; the id is git's commit id.
    pub fn new(
        tree: Oid,
        parent: Option<&CommitRec>,
        author: &str,
        time: u64,
        title: &str,
        description: &str,
    ) -> CommitRec {
        let message = commit_message(title, description);
        let id = CommitObject {
            tree: &tree,
            parent: parent.map(|p| &p.id),
            author,
            time,
            message: &message,
        }
        .oid();
        CommitRec {
            id,
            tree,
            parent: parent.map(|p| p.id),
            author: author.to_string(),
            time,
            title: title.to_string(),
            description: description.to_string(),
            depth: parent.map_or(1, |p| p.depth + 1),
        }
    }
}

/// JSON-lines form, ids as hex.
#[derive(Serialize, Deserialize)]
struct CommitLine {
    id: String,
    tree: String,
    parent: Option<String>,
    author: String,
    time: u64,
    title: String,
    description: String,
    depth: u64,
}

fn to_line(c: &CommitRec) -> CommitLine {
    CommitLine {
        id: c.id.hex(),
        tree: c.tree.hex(),
        parent: c.parent.map(|p| p.hex()),
        author: c.author.clone(),
        time: c.time,
        title: c.title.clone(),
        description: c.description.clone(),
        depth: c.depth,
    }
}

fn from_line(l: CommitLine) -> Option<CommitRec> {
    Some(CommitRec {
        id: Oid::from_hex(&l.id)?,
        tree: Oid::from_hex(&l.tree)?,
        parent: match l.parent {
            Some(p) => Some(Oid::from_hex(&p)?),
            None => None,
        },
        author: l.author,
        time: l.time,
        title: l.title,
        description: l.description,
        depth: l.depth,
    })
}

/// Reads a commit log; a torn last line (crash mid-append) is ignored.
pub fn read_log(path: &Path) -> io::Result<Vec<CommitRec>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        match serde_json::from_str::<CommitLine>(&line)
            .ok()
            .and_then(from_line)
        {
            Some(c) => out.push(c),
            None => tracing::warn!(path = %path.display(), "skipping unreadable commit log line"),
        }
    }
    Ok(out)
}

pub fn append_log(path: &Path, c: &CommitRec) -> io::Result<()> {
    let mut line = serde_json::to_vec(&to_line(c)).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(&line)
}

/// Replaces a log atomically (used when a repo is created).
pub fn write_log(path: &Path, commits: &[CommitRec]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        for c in commits {
            let mut line = serde_json::to_vec(&to_line(c)).map_err(io::Error::other)?;
            line.push(b'\n');
            f.write_all(&line)?;
        }
    }
    fs::rename(tmp, path)
}
