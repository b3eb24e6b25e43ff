//! The journal: the durable list of local changes not yet committed to the Hub.
//!
//! An append-only file of JSON lines, one [`Record`] each, fsync'd before the operation that
//! wrote it returns. Replaying it gives the pending changes (path → latest change, with a
//! sequence number), the local-only directories, the commit the changes were made on and the
//! revision commits go to. Landed commits are journaled too, so a replay never commits a change
//! twice. A torn last line (crash mid-append) is ignored: its operation had not returned yet.
//! The file is compacted (rewritten atomically) when opened.
//!
//! Besides pending changes, the journal names **held** versions: local content that must
//! never be committed as it is (a write to it failed, or its writer had flushed it but not
//! released it when the daemon stopped). A held version stays staged and visible until the
//! path is written afresh or deleted; it is what `hubfs status`/`sync` report.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One staged change of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// New content, in staging file `file` (immutable once journaled).
    Put {
        file: u64,
        size: u64,
    },
    /// An LFS object already in the repo, under this path (a rename without re-upload).
    /// `from_commit`/`from_path` say where its bytes can be read meanwhile.
    CopyLfs {
        sha256: String,
        size: u64,
        oid: String,
        from_commit: String,
        from_path: String,
    },
    Delete,
}

impl Change {
    pub fn staging_file(&self) -> Option<u64> {
        match self {
            Change::Put { file, .. } => Some(*file),
            _ => None,
        }
    }
}

/// A change waiting to be committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Increases with every change journaled; identifies this version of the path.
    pub seq: u64,
    pub change: Change,
}

/// A version of a path that is staged but must not be committed (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub file: u64,
    pub size: u64,
    /// Why it is held, for `hubfs status`/`sync`.
    pub reason: String,
    /// Flushed by the last close of its writer, with no write since: only the release (which
    /// the kernel sends right after) was missing. Replayed as a pending change.
    pub complete: bool,
}

/// A line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    /// The commit the following changes are made on (the parent of the next commit).
    Base {
        commit: String,
    },
    /// Commits go to this revision from now on (the PR ref once `--create-pr` opened it).
    Target {
        revision: String,
    },
    Change {
        path: String,
        seq: u64,
        change: Change,
    },
    Mkdir {
        path: String,
    },
    Rmdir {
        path: String,
    },
    /// Staging file `file` holds a version of `path` that must not be committed (a write to
    /// it failed, or it was flushed by a writer that had not closed it yet).
    Hold {
        path: String,
        file: u64,
        #[serde(default)]
        size: u64,
        reason: String,
        #[serde(default)]
        complete: bool,
    },
    /// The held version of `path` is gone (released, rewritten, deleted). Any change record
    /// of the path ends its hold too.
    Unhold {
        path: String,
    },
    /// A commit landed holding these versions of these paths; it is the new base.
    Landed {
        commit: String,
        paths: Vec<(String, u64)>,
    },
}

/// Replayed state plus the open file to append to.
pub struct Journal {
    path: PathBuf,
    file: File,
    base: Option<String>,
    target: Option<String>,
    pending: BTreeMap<String, Pending>,
    dirs: BTreeSet<String>,
    held: BTreeMap<String, Held>,
    next_seq: u64,
}

const FILE_NAME: &str = "journal.jsonl";

impl Journal {
    /// Opens (replaying and compacting) the journal in `dir`, creating an empty one.
    pub fn open(dir: &Path) -> io::Result<Journal> {
        let path = dir.join(FILE_NAME);
        let mut state = Journal {
            file: OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&path)?,
            path,
            base: None,
            target: None,
            pending: BTreeMap::new(),
            dirs: BTreeSet::new(),
            held: BTreeMap::new(),
            next_seq: 1,
        };
        let reader = BufReader::new(File::open(&state.path)?);
        for (n, line) in reader.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Record>(&line) {
                Ok(rec) => {
                    state.apply(&rec);
                }
                Err(e) => tracing::warn!(
                    "{}: ignoring line {} (torn write?): {e}",
                    state.path.display(),
                    n + 1
                ),
            }
        }
        state.complete_holds();
        state.compact()?;
        Ok(state)
    }

    /// After a restart: a version flushed by its writer's last close, with nothing written
    /// since, was complete; only its release was lost with the daemon. It is queued now
    /// (`close` had returned, so it must land). Other holds stay held.
    fn complete_holds(&mut self) {
        let complete: Vec<(String, Held)> = self
            .held
            .iter()
            .filter(|(_, h)| h.complete)
            .map(|(p, h)| (p.clone(), h.clone()))
            .collect();
        for (path, h) in complete {
            let seq = self.next_seq();
            let change = Change::Put {
                file: h.file,
                size: h.size,
            };
            self.apply(&Record::Change { path, seq, change });
        }
    }

    pub fn base(&self) -> Option<&str> {
        self.base.as_deref()
    }

    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    pub fn pending(&self) -> &BTreeMap<String, Pending> {
        &self.pending
    }

    pub fn dirs(&self) -> &BTreeSet<String> {
        &self.dirs
    }

    pub fn held(&self) -> &BTreeMap<String, Held> {
        &self.held
    }

    /// The sequence number the next change record must carry.
    pub fn next_seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    /// Appends `records` durably (one write, one fsync), then applies them. Returns the
    /// staging files no longer referenced by any pending change.
    pub fn append(&mut self, records: &[Record]) -> io::Result<Vec<u64>> {
        self.append_with(records, true)
    }

    /// Like [`Journal::append`]; without `durable` the records reach the disk with the next
    /// durable append (or the kernel's writeback): they survive a crash of the daemon, not
    /// necessarily of the machine.
    pub fn append_with(&mut self, records: &[Record], durable: bool) -> io::Result<Vec<u64>> {
        let mut text = String::new();
        for r in records {
            text.push_str(&serde_json::to_string(r).map_err(io::Error::other)?);
            text.push('\n');
        }
        let before = self.file.metadata()?.len();
        let written = self.file.write_all(text.as_bytes()).and_then(|()| {
            if durable {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // A partly written line (full disk) would glue itself to the next record and
            // corrupt it: cut the journal back to where this append started.
            let _ = self.file.set_len(before);
            return Err(e);
        }
        let mut released = Vec::new();
        for r in records {
            released.extend(self.apply(r));
        }
        released.retain(|id| !self.references(*id));
        Ok(released)
    }

    /// Whether a pending change still needs staging file `id`.
    pub fn references(&self, id: u64) -> bool {
        self.pending
            .values()
            .any(|p| p.change.staging_file() == Some(id))
            || self.held.values().any(|h| h.file == id)
    }

    /// Applies one record to the in-memory state; returns staging files it dropped.
    fn apply(&mut self, rec: &Record) -> Vec<u64> {
        let mut dropped = Vec::new();
        match rec {
            Record::Base { commit } => self.base = Some(commit.clone()),
            Record::Target { revision } => self.target = Some(revision.clone()),
            Record::Change { path, seq, change } => {
                self.next_seq = self.next_seq.max(seq + 1);
                let old = self.pending.insert(
                    path.clone(),
                    Pending {
                        seq: *seq,
                        change: change.clone(),
                    },
                );
                dropped.extend(old.and_then(|p| p.change.staging_file()));
                dropped.extend(self.held.remove(path).map(|h| h.file));
                if !matches!(change, Change::Delete) {
                    self.forget_ancestors(path);
                }
            }
            Record::Mkdir { path } => {
                self.dirs.insert(path.clone());
            }
            Record::Rmdir { path } => {
                self.dirs.remove(path);
            }
            Record::Hold {
                path,
                file,
                size,
                reason,
                complete,
            } => {
                let old = self.held.insert(
                    path.clone(),
                    Held {
                        file: *file,
                        size: *size,
                        reason: reason.clone(),
                        complete: *complete,
                    },
                );
                dropped.extend(old.map(|h| h.file).filter(|f| f != file));
            }
            Record::Unhold { path } => {
                dropped.extend(self.held.remove(path).map(|h| h.file));
            }
            Record::Landed { commit, paths } => {
                self.base = Some(commit.clone());
                for (path, seq) in paths {
                    if self.pending.get(path).is_some_and(|p| p.seq == *seq) {
                        dropped.extend(
                            self.pending
                                .remove(path)
                                .and_then(|p| p.change.staging_file()),
                        );
                    }
                }
            }
        }
        dropped
    }

    /// A directory holding a staged file no longer needs to be remembered as local-only:
    /// the file will create it on the Hub.
    fn forget_ancestors(&mut self, path: &str) {
        let mut p = path;
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            self.dirs.remove(p);
        }
    }

    /// Rewrites the journal as the minimal records giving the current state (atomically).
    pub fn compact(&mut self) -> io::Result<()> {
        let mut records = Vec::new();
        if let Some(c) = &self.base {
            records.push(Record::Base { commit: c.clone() });
        }
        if let Some(t) = &self.target {
            records.push(Record::Target {
                revision: t.clone(),
            });
        }
        for d in &self.dirs {
            records.push(Record::Mkdir { path: d.clone() });
        }
        for (path, p) in &self.pending {
            records.push(Record::Change {
                path: path.clone(),
                seq: p.seq,
                change: p.change.clone(),
            });
        }
        for (path, h) in &self.held {
            records.push(Record::Hold {
                path: path.clone(),
                file: h.file,
                size: h.size,
                reason: h.reason.clone(),
                complete: h.complete,
            });
        }
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            for r in &records {
                let line = serde_json::to_string(r).map_err(io::Error::other)?;
                f.write_all(line.as_bytes())?;
                f.write_all(b"\n")?;
            }
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(path: &str, seq: u64, file: u64) -> Record {
        Record::Change {
            path: path.into(),
            seq,
            change: Change::Put { file, size: 1 },
        }
    }

    #[test]
    fn replay_gives_the_latest_change_per_path() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = Journal::open(dir.path()).unwrap();
            j.append(&[Record::Base { commit: "a".into() }]).unwrap();
            j.append(&[Record::Mkdir { path: "d".into() }]).unwrap();
            j.append(&[put("d/x", 1, 1), put("y", 2, 2)]).unwrap();
            let released = j.append(&[put("y", 3, 3)]).unwrap();
            assert_eq!(
                released,
                vec![2],
                "the overwritten version's file is released"
            );
            assert!(
                j.dirs().is_empty(),
                "a staged file makes its directory real"
            );
        }
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.base(), Some("a"));
        assert_eq!(j.pending().len(), 2);
        assert_eq!(j.pending()["y"].seq, 3);
        assert_eq!(j.next_seq(), 4);
    }

    #[test]
    fn landed_changes_leave_unless_changed_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(&[put("a", 1, 1), put("b", 2, 2)]).unwrap();
        j.append(&[put("b", 3, 3)]).unwrap();
        let released = j
            .append(&[Record::Landed {
                commit: "c2".into(),
                paths: vec![("a".into(), 1), ("b".into(), 2)],
            }])
            .unwrap();
        assert_eq!(released, vec![1]);
        assert_eq!(j.base(), Some("c2"));
        assert_eq!(j.pending().keys().collect::<Vec<_>>(), vec!["b"]);
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(
            j.pending()["b"].seq,
            3,
            "nothing is committed twice after replay"
        );
    }

    #[test]
    fn held_versions_survive_replay_until_a_change_or_unhold() {
        let dir = tempfile::tempdir().unwrap();
        let hold = |path: &str, file| Record::Hold {
            path: path.into(),
            file,
            size: 1,
            reason: "r".into(),
            complete: false,
        };
        {
            let mut j = Journal::open(dir.path()).unwrap();
            j.append(&[put("a", 1, 1), hold("a", 2), hold("b", 3)])
                .unwrap();
            assert!(j.references(2) && j.references(3));
            // The version held under `a` does not replace its pending change.
            assert_eq!(j.pending()["a"].seq, 1);
            j.append_with(&[hold("c", 4)], false).unwrap();
        }
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(
            j.held().keys().collect::<Vec<_>>(),
            vec!["a", "b", "c"],
            "holds are replayed and compacted"
        );
        let released = j.append(&[put("a", 5, 2)]).unwrap();
        assert_eq!(released, vec![1], "the held file became the pending one");
        assert!(
            !j.held().contains_key("a"),
            "a change of the path ends its hold"
        );
        let released = j.append(&[Record::Unhold { path: "b".into() }]).unwrap();
        assert_eq!(released, vec![3]);
    }

    #[test]
    fn a_complete_hold_is_queued_at_replay() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = Journal::open(dir.path()).unwrap();
            j.append(&[
                put("a", 1, 1),
                Record::Hold {
                    path: "a".into(),
                    file: 2,
                    size: 7,
                    reason: "r".into(),
                    complete: true,
                },
            ])
            .unwrap();
            assert_eq!(j.pending()["a"].seq, 1, "not queued while running");
        }
        let j = Journal::open(dir.path()).unwrap();
        assert!(j.held().is_empty());
        assert_eq!(j.pending()["a"].change, Change::Put { file: 2, size: 7 });
        assert!(!j.references(1));
    }

    #[test]
    fn a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = Journal::open(dir.path()).unwrap();
            j.append(&[put("a", 1, 1)]).unwrap();
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE_NAME))
            .unwrap();
        f.write_all(b"{\"t\":\"change\",\"pa").unwrap();
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.pending().len(), 1);
    }
}
