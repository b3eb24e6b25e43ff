//! Creating commits: apply operations to the base snapshot, keep `.gitattributes` covering every
//! LFS file (as the Hub does), record the commit and move the target ref.

use std::io;
use std::sync::Arc;

use super::commits::CommitRec;
use super::listing::lookup;
use super::mutate::{apply, ApplyError, Op};
use super::repo::{PrMeta, Repo};
use super::tree::{FileMeta, ItemKind, Tree, TreeItem};
use super::Store;
use crate::glob::{default_gitattributes, escape_attr_pattern, GitAttributes};
use crate::time::now_ms;
use hub_wire::repo::RepoType;

/// Where a commit lands.
#[derive(Debug, Clone)]
pub enum Target {
    Branch(String),
    Pr(u64),
    /// Opens pull request `refs/pr/N` on top of `base`, against branch `branch`.
    NewPr {
        base: Arc<CommitRec>,
        branch: String,
    },
}

pub struct NewCommit {
    pub target: Target,
    pub ops: Vec<Op>,
    pub author: String,
    pub title: String,
    pub description: String,
    /// Expected current head (full or ≥ 7-char prefix); a mismatch is a conflict (412).
    pub parent: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("Invalid rev id: {0}")]
    RevisionNotFound(String),
    #[error("The branch was updated since you opened this page. Please refresh and try again.")]
    Stale,
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

pub struct Landed {
    pub commit: Arc<CommitRec>,
    /// Set when the commit opened or updated a pull request.
    pub pr: Option<u64>,
}

fn now_secs() -> u64 {
    now_ms() / 1000
}

const LFS_RULE: &str = "filter=lfs diff=lfs merge=lfs -text";

impl Store {
    /// The first commit of a new repo: the default `.gitattributes`.
    pub fn initial_commit(&self, repo_type: RepoType, author: &str) -> io::Result<CommitRec> {
        let text = default_gitattributes(repo_type);
        let oid = self.objects.put_blob(text.as_bytes())?;
        let tree = self.objects.put_tree(Tree::from_items(vec![TreeItem {
            name: ".gitattributes".into(),
            oid,
            kind: ItemKind::File(FileMeta {
                size: text.len() as u64,
                lfs: None,
            }),
        }]))?;
        Ok(CommitRec::new(
            tree,
            None,
            author,
            now_secs(),
            "initial commit",
            "",
        ))
    }

    /// Appends rules to `.gitattributes` for LFS files it does not already route to LFS.
    fn cover_lfs_paths(
        &self,
        root: &crate::git::Oid,
        ops: &[Op],
    ) -> Result<Option<Op>, ApplyError> {
        let lfs_paths: Vec<&str> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Put {
                    path,
                    meta: FileMeta { lfs: Some(_), .. },
                    ..
                } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        if lfs_paths.is_empty() {
            return Ok(None);
        }
        let mut text = match lookup(&self.objects, root, ".gitattributes")? {
            Some(e) if !e.is_dir() => {
                String::from_utf8_lossy(&self.objects.read_blob(&e.oid)?).into_owned()
            }
            _ => String::new(),
        };
        let attrs = GitAttributes::parse(&text);
        let missing: Vec<&str> = lfs_paths.into_iter().filter(|p| !attrs.is_lfs(p)).collect();
        if missing.is_empty() {
            return Ok(None);
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        for p in missing {
            text.push_str(&format!("{} {LFS_RULE}\n", escape_attr_pattern(p)));
        }
        let oid = self.objects.put_blob(text.as_bytes())?;
        Ok(Some(Op::Put {
            path: ".gitattributes".into(),
            oid,
            meta: FileMeta {
                size: text.len() as u64,
                lfs: None,
            },
        }))
    }

    /// Lands a commit. The caller holds `repo.write_lock`; this does blocking I/O.
    pub fn commit(&self, repo: &Repo, new: NewCommit) -> Result<Landed, CommitError> {
        let base = {
            let st = repo.read();
            match &new.target {
                Target::Branch(b) => st.meta.branches.get(b).and_then(|t| st.target(t)),
                Target::Pr(n) => st.meta.prs.get(n).and_then(|p| st.target(&p.target)),
                Target::NewPr { base, .. } => Some(base.clone()),
            }
        };
        let base = base.ok_or_else(|| {
            CommitError::RevisionNotFound(match &new.target {
                Target::Branch(b) => b.clone(),
                Target::Pr(n) => format!("refs/pr/{n}"),
                Target::NewPr { base, .. } => base.id.hex(),
            })
        })?;
        if let Some(p) = &new.parent {
            if !matches!(new.target, Target::NewPr { .. })
                && !base.id.hex().starts_with(&p.to_ascii_lowercase())
            {
                return Err(CommitError::Stale);
            }
        }
        let mut root = apply(&self.objects, &base.tree, &new.ops)?;
        if let Some(op) = self.cover_lfs_paths(&root, &new.ops)? {
            root = apply(&self.objects, &root, &[op])?;
        }
        let rec = CommitRec::new(
            root,
            Some(&base),
            &new.author,
            now_secs(),
            &new.title,
            &new.description,
        );
        let commit = repo.add_commit(rec)?;
        let hex = commit.id.hex();
        let pr = repo.update(|m| -> Result<Option<u64>, io::Error> {
            Ok(match &new.target {
                Target::Branch(b) => {
                    m.branches.insert(b.clone(), hex.clone());
                    None
                }
                Target::Pr(n) => {
                    if let Some(p) = m.prs.get_mut(n) {
                        p.target = hex.clone();
                    }
                    Some(*n)
                }
                Target::NewPr { branch, .. } => {
                    let n = m.next_num;
                    m.next_num += 1;
                    m.prs.insert(
                        n,
                        PrMeta {
                            target: hex.clone(),
                            base: branch.clone(),
                            title: new.title.clone(),
                            author: new.author.clone(),
                            created_ms: now_ms(),
                        },
                    );
                    Some(n)
                }
            })
        })?;
        Ok(Landed { commit, pr })
    }
}
