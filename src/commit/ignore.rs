//! Editor and OS junk that a writable mount keeps local and never commits.
//!
//! Editors and desktops drop swap, backup, lock and metadata files next to the files a user
//! edits (vim's `.f.swp` and `4913` probe, `f~` backups, macOS `.DS_Store`...). In a
//! writable mount such files behave as local files (they can be created, written, read,
//! renamed and deleted, and are listed), but no commit ever adds them. Renaming one onto a
//! real name (an atomic save) commits the real name with its content.
//!
//! Patterns match the last path component only; `*` matches any run of characters and `?`
//! one character. `*.tmp` is deliberately not a default: it is a plausible data file name,
//! and a temporary file renamed onto its target before the commit never reaches the Hub
//! anyway (the journal keeps only each path's latest change).

/// The default list (`--no-default-ignore` turns it off). See SEMANTICS.md "Writable mounts".
pub const DEFAULT_IGNORE: &[&str] = &[
    // vim swap files (and the further ones vim picks when one exists), vim's write probe
    ".*.swp",
    ".*.swo",
    ".*.swn",
    ".*.swx",
    "4913",
    // backups (vim `backup`, emacs), emacs auto-save and lock files
    "*~",
    "#*#",
    ".#*",
    // macOS Finder metadata and AppleDouble resource forks, Windows thumbnail caches
    ".DS_Store",
    "._*",
    "Thumbs.db",
    // LibreOffice lock files
    ".~lock.*#",
];

/// Names never committed.
#[derive(Debug, Clone, Default)]
pub struct IgnoreList {
    patterns: Vec<String>,
}

impl IgnoreList {
    /// The default list (if `defaults`) plus `extra` patterns.
    pub fn new(defaults: bool, extra: &[String]) -> IgnoreList {
        let mut patterns: Vec<String> = Vec::new();
        if defaults {
            patterns.extend(DEFAULT_IGNORE.iter().map(|p| p.to_string()));
        }
        patterns.extend(extra.iter().cloned());
        IgnoreList { patterns }
    }

    /// The built-in defaults only.
    pub fn defaults() -> IgnoreList {
        IgnoreList::new(true, &[])
    }

    /// Checks a `--ignore` pattern: one path component, not empty.
    pub fn check_pattern(p: &str) -> Result<String, String> {
        if p.is_empty() || p.contains('/') || p.contains('\0') {
            return Err("a pattern matches one file name: not empty, no '/'".into());
        }
        Ok(p.to_string())
    }

    /// Whether the file at `path` (repo-relative) is junk never to be committed.
    pub fn is_ignored(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        self.patterns
            .iter()
            .any(|p| glob_match(p.as_bytes(), name.as_bytes()))
    }
}

/// `*` = any run of bytes, `?` = one byte, anything else matches itself.
pub(crate) fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    // Iterative with one backtrack point (the last `*`): linear-ish, no recursion.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() && (pat[p] == b'?' || (pat[p] != b'*' && pat[p] == name[n])) {
            p += 1;
            n += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_catch_editor_and_os_junk() {
        let l = IgnoreList::defaults();
        for junk in [
            ".config.json.swp",
            "dir/.f.swo",
            "..hidden.swp",
            "4913",
            "sub/4913",
            "model.py~",
            "#notes.md#",
            ".#notes.md",
            ".DS_Store",
            "a/._weights.bin",
            "Thumbs.db",
            ".~lock.sheet.ods#",
        ] {
            assert!(l.is_ignored(junk), "{junk}");
        }
    }

    #[test]
    fn defaults_keep_plausible_hub_files() {
        let l = IgnoreList::defaults();
        for real in [
            "config.json",
            "swp",
            "f.swp",
            "data.tmp",
            ".gitattributes",
            ".gitignore",
            "49130",
            "4913.txt",
            "README.md",
            "#tag",
            "dir~/file",
        ] {
            assert!(!l.is_ignored(real), "{real}");
        }
    }

    #[test]
    fn extra_patterns_and_no_defaults() {
        let l = IgnoreList::new(false, &["*.bak".into(), "scratch?".into()]);
        assert!(l.is_ignored("a/b.bak"));
        assert!(l.is_ignored("scratch1"));
        assert!(!l.is_ignored("scratch12"));
        assert!(!l.is_ignored("x~"));
        assert!(IgnoreList::check_pattern("a/b").is_err());
        assert!(IgnoreList::check_pattern("").is_err());
    }

    #[test]
    fn glob_edge_cases() {
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*b*c", b"aXbYbZc"));
        assert!(!glob_match(b"a*b*c", b"aXbYbZ"));
        assert!(glob_match(b"**x", b"yyx"));
        assert!(!glob_match(b"?", b""));
    }
}
