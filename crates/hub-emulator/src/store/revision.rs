//! Revision resolution (hub-api.md §1.3): branch, tag, `refs/heads|tags|pr|convert/…`, and full
//! or short (≥ 7 hex) commit ids of the repo.

use std::sync::Arc;

use super::commits::CommitRec;
use super::repo::RepoState;
use crate::git::Oid;
use hub_wire::repo::looks_like_commit;

/// What a revision named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefKind {
    Branch(String),
    Tag(String),
    Pr(u64),
    Convert(String),
    Commit,
}

impl RefKind {
    /// True for refs a commit can be pushed to.
    pub fn is_writable(&self) -> bool {
        matches!(self, RefKind::Branch(_) | RefKind::Pr(_))
    }
}

#[derive(Debug, Clone)]
pub struct Resolved {
    pub commit: Arc<CommitRec>,
    pub kind: RefKind,
}

impl RepoState {
    pub fn resolve(&self, rev: &str) -> Option<Resolved> {
        let m = &self.meta;
        let hit =
            |hex: &str, kind: RefKind| self.target(hex).map(|commit| Resolved { commit, kind });
        if let Some(t) = m.branches.get(rev) {
            return hit(t, RefKind::Branch(rev.to_string()));
        }
        if let Some(t) = m.tags.get(rev) {
            return hit(&t.target, RefKind::Tag(rev.to_string()));
        }
        if let Some(b) = rev.strip_prefix("refs/heads/") {
            return m
                .branches
                .get(b)
                .and_then(|t| hit(t, RefKind::Branch(b.to_string())));
        }
        if let Some(t) = rev.strip_prefix("refs/tags/") {
            return m
                .tags
                .get(t)
                .and_then(|x| hit(&x.target, RefKind::Tag(t.to_string())));
        }
        if let Some(n) = rev.strip_prefix("refs/pr/") {
            let n: u64 = n.parse().ok()?;
            return m.prs.get(&n).and_then(|p| hit(&p.target, RefKind::Pr(n)));
        }
        if let Some(c) = rev.strip_prefix("refs/convert/") {
            return m
                .converts
                .get(c)
                .and_then(|t| hit(t, RefKind::Convert(c.to_string())));
        }
        if looks_like_commit(rev) {
            if let Some(o) = Oid::from_hex(rev) {
                return self.commit(&o).map(|commit| Resolved {
                    commit,
                    kind: RefKind::Commit,
                });
            }
            // A short id must name exactly one commit of this repo.
            let mut found = self
                .commits
                .values()
                .filter(|c| c.id.hex().starts_with(rev));
            let first = found.next()?;
            if found.next().is_some() {
                return None;
            }
            return Some(Resolved {
                commit: first.clone(),
                kind: RefKind::Commit,
            });
        }
        None
    }
}
