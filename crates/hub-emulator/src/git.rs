//! Git object ids, computed exactly as git does, so ids the emulator serves can be checked with
//! `git hash-object` and agree with the real Hub: blob ids, LFS pointer blobs, tree ids (git's
//! canonical tree encoding and sort order) and commit ids (sha1 of a git commit object).

use std::cmp::Ordering;
use std::fmt;

use sha1::{Digest, Sha1};

/// A git object id (sha1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(pub [u8; 20]);

/// The sha256 of a file's content: the LFS object id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256(pub [u8; 32]);

macro_rules! hex_id {
    ($t:ident, $n:expr) => {
        impl $t {
            pub fn hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses lower- or upper-case hex of exactly the right length.
            pub fn from_hex(s: &str) -> Option<$t> {
                let mut out = [0u8; $n];
                hex::decode_to_slice(s, &mut out).ok()?;
                Some($t(out))
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.hex())
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.hex())
            }
        }
    };
}
hex_id!(Oid, 20);
hex_id!(Sha256, 32);

/// Git's id of the empty tree.
pub const EMPTY_TREE_HEX: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// Incremental git blob hashing: `sha1("blob {len}\0" + bytes)`; the length must be known first.
pub struct BlobHasher(Sha1);

impl BlobHasher {
    pub fn new(len: u64) -> BlobHasher {
        let mut h = Sha1::new();
        h.update(format!("blob {len}\0").as_bytes());
        BlobHasher(h)
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> Oid {
        Oid(self.0.finalize().into())
    }
}

/// The git blob id of `data`.
pub fn blob_oid(data: &[u8]) -> Oid {
    let mut h = BlobHasher::new(data.len() as u64);
    h.update(data);
    h.finish()
}

/// The text git-lfs stores in git in place of the content.
pub fn lfs_pointer(sha: &Sha256, size: u64) -> String {
    format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {size}\n",
        sha.hex()
    )
}

/// Parses an LFS pointer (as produced by [`lfs_pointer`]); `None` if `text` is not one.
pub fn parse_lfs_pointer(text: &[u8]) -> Option<(Sha256, u64)> {
    let text = std::str::from_utf8(text).ok()?;
    let mut sha = None;
    let mut size = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("oid sha256:") {
            sha = Sha256::from_hex(v.trim());
        } else if let Some(v) = line.strip_prefix("size ") {
            size = v.trim().parse().ok();
        }
    }
    if !text.starts_with("version https://git-lfs.github.com/spec/") {
        return None;
    }
    Some((sha?, size?))
}

/// Git's tree entry order: byte-wise on names, a directory compared as if its name ended in `/`.
pub fn tree_order(a: &str, a_dir: bool, b: &str, b_dir: bool) -> Ordering {
    let ka = a.bytes().chain(a_dir.then_some(b'/'));
    let kb = b.bytes().chain(b_dir.then_some(b'/'));
    ka.cmp(kb)
}

/// Incremental git tree hashing; entries must be fed in [`tree_order`].
pub struct TreeHasher {
    body: Vec<u8>,
}

impl TreeHasher {
    pub fn new() -> TreeHasher {
        TreeHasher { body: Vec::new() }
    }

    /// Adds `{mode} {name}\0{20-byte id}` with mode `100644` (file) or `40000` (directory).
    pub fn entry(&mut self, name: &str, is_dir: bool, oid: &Oid) {
        self.body
            .extend_from_slice(if is_dir { b"40000 " } else { b"100644 " });
        self.body.extend_from_slice(name.as_bytes());
        self.body.push(0);
        self.body.extend_from_slice(&oid.0);
    }

    pub fn finish(self) -> Oid {
        let mut h = Sha1::new();
        h.update(format!("tree {}\0", self.body.len()).as_bytes());
        h.update(&self.body);
        Oid(h.finalize().into())
    }
}

impl Default for TreeHasher {
    fn default() -> Self {
        TreeHasher::new()
    }
}

/// The fields of a git commit object the emulator writes.
pub struct CommitObject<'a> {
    pub tree: &'a Oid,
    pub parent: Option<&'a Oid>,
    /// User name; the e-mail is derived like the Hub's noreply addresses.
    pub author: &'a str,
    /// Seconds since the epoch (git has no sub-second precision).
    pub time: u64,
    /// Full message: title, blank line, description.
    pub message: &'a str,
}

impl CommitObject<'_> {
    /// The commit object's text, as `git cat-file commit` would print it.
    pub fn encode(&self) -> String {
        let mut s = format!("tree {}\n", self.tree);
        if let Some(p) = self.parent {
            s.push_str(&format!("parent {p}\n"));
        }
        let who = format!(
            "{} <{}@users.noreply.huggingface.co> {} +0000",
            self.author, self.author, self.time
        );
        s.push_str(&format!(
            "author {who}\ncommitter {who}\n\n{}",
            self.message
        ));
        if !self.message.ends_with('\n') {
            s.push('\n');
        }
        s
    }

    pub fn oid(&self) -> Oid {
        let text = self.encode();
        let mut h = Sha1::new();
        h.update(format!("commit {}\0", text.len()).as_bytes());
        h.update(text.as_bytes());
        Oid(h.finalize().into())
    }
}

/// A commit message from a title and an optional description, as the Hub stores them.
pub fn commit_message(title: &str, description: &str) -> String {
    if description.is_empty() {
        title.to_string()
    } else {
        format!("{title}\n\n{description}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ids_match_git_hash_object() {
        // `printf hello | git hash-object --stdin`
        assert_eq!(
            blob_oid(b"hello").hex(),
            "b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0"
        );
        // `git hash-object /dev/null`
        assert_eq!(
            blob_oid(b"").hex(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
    }

    #[test]
    fn empty_tree_id_matches_git() {
        assert_eq!(TreeHasher::new().finish().hex(), EMPTY_TREE_HEX);
    }

    #[test]
    fn tree_ids_match_git() {
        // `mkdir t && cd t && git init -q && printf hello > a && git add a && git write-tree`
        let mut h = TreeHasher::new();
        h.entry("a", false, &blob_oid(b"hello"));
        assert_eq!(h.finish().hex(), "8917ce3833750c0f424a16966ef3391aafe880c1");
    }

    #[test]
    fn git_sort_puts_dirs_after_dotted_files() {
        // git orders "a.txt" < "a/" < "a0" because '.' < '/' < '0'.
        assert_eq!(tree_order("a.txt", false, "a", true), Ordering::Less);
        assert_eq!(tree_order("a", true, "a0", false), Ordering::Less);
        assert_eq!(tree_order("a", false, "a.txt", false), Ordering::Less);
    }

    #[test]
    fn lfs_pointer_round_trips() {
        let sha = Sha256([7; 32]);
        let p = lfs_pointer(&sha, 1234);
        assert_eq!(parse_lfs_pointer(p.as_bytes()), Some((sha, 1234)));
        assert!(parse_lfs_pointer(b"hello").is_none());
    }

    #[test]
    fn commit_encoding_has_git_shape() {
        let tree = Oid::from_hex(EMPTY_TREE_HEX).unwrap();
        let c = CommitObject {
            tree: &tree,
            parent: None,
            author: "alice",
            time: 1_700_000_000,
            message: "initial commit",
        };
        assert_eq!(
            c.encode(),
            "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
             author alice <alice@users.noreply.huggingface.co> 1700000000 +0000\n\
             committer alice <alice@users.noreply.huggingface.co> 1700000000 +0000\n\
             \ninitial commit\n"
        );
        // `git commit-tree` with the same author, committer and dates.
        assert_eq!(c.oid().hex(), "3eb59b334169754e470a035e9a0db085785c568e");
    }
}
