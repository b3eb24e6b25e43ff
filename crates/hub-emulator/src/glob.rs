//! `.gitattributes` and `.gitignore` matching, as the Hub applies them in preupload (§5.2):
//! which paths go to LFS, which paths a client must drop from a commit.
//!
//! Patterns follow git's wildmatch: `*` and `?` stop at `/`, `**` spans directories, `[...]`
//! classes; a pattern without a `/` matches the file name at any depth, one with a `/` is
//! anchored at the repo root. Only the `filter` attribute matters here.

/// Git wildmatch with `WM_PATHNAME` semantics on byte strings.
pub fn wildmatch(pat: &[u8], text: &[u8]) -> bool {
    match pat.first() {
        None => text.is_empty(),
        Some(b'*') if pat.get(1) == Some(&b'*') => {
            let rest = &pat[2..];
            match rest.first() {
                None => true,
                // `**/` matches zero or more whole directories.
                Some(b'/') => {
                    wildmatch(&rest[1..], text)
                        || text
                            .iter()
                            .enumerate()
                            .any(|(i, &c)| c == b'/' && wildmatch(&rest[1..], &text[i + 1..]))
                }
                _ => (0..=text.len()).any(|i| wildmatch(rest, &text[i..])),
            }
        }
        Some(b'*') => {
            let rest = &pat[1..];
            for i in 0..=text.len() {
                if wildmatch(rest, &text[i..]) {
                    return true;
                }
                if i < text.len() && text[i] == b'/' {
                    break;
                }
            }
            false
        }
        Some(b'?') => !text.is_empty() && text[0] != b'/' && wildmatch(&pat[1..], &text[1..]),
        Some(b'[') => match (text.first(), class_end(pat)) {
            (Some(&c), Some(end)) if c != b'/' => {
                class_matches(&pat[1..end], c) && wildmatch(&pat[end + 1..], &text[1..])
            }
            (Some(&c), None) => c == b'[' && wildmatch(&pat[1..], &text[1..]),
            _ => false,
        },
        Some(b'\\') if pat.len() > 1 => {
            text.first() == Some(&pat[1]) && wildmatch(&pat[2..], &text[1..])
        }
        Some(&c) => text.first() == Some(&c) && wildmatch(&pat[1..], &text[1..]),
    }
}

/// Index of the `]` closing the class that starts at `pat[0] == '['`.
fn class_end(pat: &[u8]) -> Option<usize> {
    let mut i = 1;
    if matches!(pat.get(i), Some(b'!' | b'^')) {
        i += 1;
    }
    if pat.get(i) == Some(&b']') {
        i += 1;
    }
    while i < pat.len() {
        if pat[i..].starts_with(b"[:") {
            if let Some(j) = pat[i + 2..].windows(2).position(|w| w == b":]") {
                i += j + 4;
                continue;
            }
        }
        if pat[i] == b']' {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// POSIX character classes git-lfs writes into `.gitattributes` (`[[:space:]]`).
fn posix_class(name: &[u8], c: u8) -> bool {
    match name {
        b"space" => c.is_ascii_whitespace(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"digit" => c.is_ascii_digit(),
        b"alnum" => c.is_ascii_alphanumeric(),
        b"upper" => c.is_ascii_uppercase(),
        b"lower" => c.is_ascii_lowercase(),
        _ => false,
    }
}

fn class_matches(class: &[u8], c: u8) -> bool {
    let (negate, body) = match class.first() {
        Some(b'!' | b'^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut hit = false;
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(b"[:") {
            if let Some(j) = body[i + 2..].windows(2).position(|w| w == b":]") {
                hit |= posix_class(&body[i + 2..i + 2 + j], c);
                i += j + 4;
                continue;
            }
        }
        if i + 2 < body.len() && body[i + 1] == b'-' {
            hit |= (body[i]..=body[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= body[i] == c;
            i += 1;
        }
    }
    hit != negate
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// One pattern with git's anchoring rule applied.
#[derive(Debug, Clone)]
struct Pattern {
    glob: String,
    /// Contains a `/` (other than a trailing one): matched against the whole path.
    anchored: bool,
}

impl Pattern {
    fn new(raw: &str) -> Pattern {
        let anchored = raw.contains('/');
        Pattern {
            glob: raw.trim_start_matches('/').to_string(),
            anchored,
        }
    }

    fn matches(&self, path: &str) -> bool {
        let target = if self.anchored { path } else { basename(path) };
        wildmatch(self.glob.as_bytes(), target.as_bytes())
    }
}

/// The LFS rules of a `.gitattributes` file.
#[derive(Debug, Clone, Default)]
pub struct GitAttributes {
    /// (pattern, whether it sets `filter=lfs` or unsets the filter), in file order.
    rules: Vec<(Pattern, bool)>,
}

impl GitAttributes {
    pub fn parse(text: &str) -> GitAttributes {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(pat) = words.next() else { continue };
            // Patterns ending in `/` never match in .gitattributes.
            if pat.ends_with('/') {
                continue;
            }
            let mut effect = None;
            for attr in words {
                match attr {
                    "filter=lfs" => effect = Some(true),
                    "-filter" | "!filter" => effect = Some(false),
                    a if a.starts_with("filter=") => effect = Some(false),
                    _ => {}
                }
            }
            if let Some(lfs) = effect {
                rules.push((Pattern::new(pat), lfs));
            }
        }
        GitAttributes { rules }
    }

    /// True when the last rule matching `path` sets `filter=lfs`.
    pub fn is_lfs(&self, path: &str) -> bool {
        self.rules
            .iter()
            .rev()
            .find(|(p, _)| p.matches(path))
            .is_some_and(|(_, lfs)| *lfs)
    }
}

/// The rules of a `.gitignore` file at the repo root.
#[derive(Debug, Clone, Default)]
pub struct GitIgnore {
    rules: Vec<IgnoreRule>,
}

#[derive(Debug, Clone)]
struct IgnoreRule {
    pattern: Pattern,
    negate: bool,
    dir_only: bool,
}

impl GitIgnore {
    pub fn parse(text: &str) -> GitIgnore {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, line) = match line.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let (dir_only, line) = match line.strip_suffix('/') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            if line.is_empty() {
                continue;
            }
            rules.push(IgnoreRule {
                pattern: Pattern::new(line),
                negate,
                dir_only,
            });
        }
        GitIgnore { rules }
    }

    fn verdict(&self, path: &str, is_dir: bool) -> Option<bool> {
        self.rules
            .iter()
            .rev()
            .find(|r| (is_dir || !r.dir_only) && r.pattern.matches(path))
            .map(|r| !r.negate)
    }

    /// True when `path` (a file) or one of its parent directories is ignored. As in git, a file
    /// inside an ignored directory cannot be re-included.
    pub fn is_ignored(&self, path: &str) -> bool {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            if self.verdict(&path[..end], true) == Some(true) {
                return true;
            }
            end += 1;
        }
        self.verdict(path, false) == Some(true)
    }
}

/// Escapes a literal path into a `.gitattributes` pattern the way `git lfs track` does
/// (glob characters backslash-escaped, whitespace as `[[:space:]]`).
pub fn escape_attr_pattern(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '*' | '?' | '[' | ']' | '\\' | '!' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_whitespace() => out.push_str("[[:space:]]"),
            c => out.push(c),
        }
    }
    out
}

/// The `.gitattributes` the Hub writes into a new repo (hub-api.md §5.2). The model list is the
/// widely copied Hub template; the dataset additions (media types) are from memory.
pub fn default_gitattributes(repo_type: hub_wire::repo::RepoType) -> String {
    const COMMON: &[&str] = &[
        "*.7z",
        "*.arrow",
        "*.bin",
        "*.bz2",
        "*.ckpt",
        "*.ftz",
        "*.gz",
        "*.h5",
        "*.joblib",
        "*.lfs.*",
        "*.mlmodel",
        "*.model",
        "*.msgpack",
        "*.npy",
        "*.npz",
        "*.onnx",
        "*.ot",
        "*.parquet",
        "*.pb",
        "*.pickle",
        "*.pkl",
        "*.pt",
        "*.pth",
        "*.rar",
        "*.safetensors",
        "saved_model/**/*",
        "*.tar.*",
        "*.tar",
        "*.tflite",
        "*.tgz",
        "*.wasm",
        "*.xz",
        "*.zip",
        "*.zst",
        "*tfevents*",
    ];
    const DATASET_EXTRA: &[(&str, &[&str])] = &[
        ("", &["*.lz4", "*.mds"]),
        ("# Audio files - uncompressed", &["*.pcm", "*.sam", "*.raw"]),
        (
            "# Audio files - compressed",
            &["*.aac", "*.flac", "*.mp3", "*.ogg", "*.wav"],
        ),
        (
            "# Image files - uncompressed",
            &["*.bmp", "*.gif", "*.png", "*.tiff"],
        ),
        ("# Image files - compressed", &["*.jpg", "*.jpeg", "*.webp"]),
        ("# Video files - compressed", &["*.mp4", "*.webm"]),
    ];
    let rule = |p: &str| format!("{p} filter=lfs diff=lfs merge=lfs -text\n");
    let mut out: String = COMMON.iter().map(|p| rule(p)).collect();
    if repo_type == hub_wire::repo::RepoType::Dataset {
        for (comment, pats) in DATASET_EXTRA {
            if !comment.is_empty() {
                out.push_str(comment);
                out.push('\n');
            }
            out.extend(pats.iter().map(|p| rule(p)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub_wire::repo::RepoType;

    #[test]
    fn wildmatch_follows_git() {
        assert!(wildmatch(b"*.bin", b"x.bin"));
        assert!(!wildmatch(b"*.bin", b"d/x.bin"));
        assert!(wildmatch(b"saved_model/**/*", b"saved_model/a/b/c"));
        assert!(wildmatch(b"saved_model/**/*", b"saved_model/c"));
        assert!(wildmatch(b"**/foo", b"a/b/foo"));
        assert!(wildmatch(b"**/foo", b"foo"));
        assert!(wildmatch(b"a/**", b"a/b/c"));
        assert!(wildmatch(b"*tfevents*", b"events.out.tfevents.123"));
        assert!(wildmatch(b"file[0-9].txt", b"file7.txt"));
        assert!(!wildmatch(b"file[!0-9].txt", b"file7.txt"));
        assert!(wildmatch(b"?.txt", b"a.txt"));
        assert!(!wildmatch(b"?.txt", b"/.txt"));
    }

    #[test]
    fn default_attributes_route_weights_to_lfs() {
        let ga = GitAttributes::parse(&default_gitattributes(RepoType::Model));
        assert!(ga.is_lfs("model.safetensors"));
        assert!(ga.is_lfs("deep/dir/weights.bin"));
        assert!(ga.is_lfs("saved_model/variables/x"));
        assert!(!ga.is_lfs("config.json"));
        assert!(!ga.is_lfs("image.png"));
        let ds = GitAttributes::parse(&default_gitattributes(RepoType::Dataset));
        assert!(ds.is_lfs("images/cat.png"));
    }

    #[test]
    fn later_attribute_lines_win() {
        let ga = GitAttributes::parse("*.bin filter=lfs\nsmall.bin -filter\n/top.txt filter=lfs\n");
        assert!(ga.is_lfs("a.bin"));
        assert!(!ga.is_lfs("small.bin"));
        assert!(ga.is_lfs("top.txt"));
        assert!(!ga.is_lfs("sub/top.txt"));
    }

    #[test]
    fn escaped_paths_match_only_themselves() {
        for path in ["a b/c d.bin", "w[1]*.x", "x#y?.z"] {
            let ga = GitAttributes::parse(&format!("{} filter=lfs\n", escape_attr_pattern(path)));
            assert!(ga.is_lfs(path), "{path}");
        }
        let ga = GitAttributes::parse(&format!("{} filter=lfs\n", escape_attr_pattern("w[1]*.x")));
        assert!(!ga.is_lfs("w1abc.x"));
    }

    #[test]
    fn gitignore_handles_dirs_and_negation() {
        let gi = GitIgnore::parse("# c\n*.log\n!keep.log\nbuild/\n/root_only\n");
        assert!(gi.is_ignored("a.log"));
        assert!(gi.is_ignored("x/y/a.log"));
        assert!(!gi.is_ignored("keep.log"));
        assert!(gi.is_ignored("build/out.txt"));
        assert!(gi.is_ignored("src/build/out.txt"));
        assert!(!gi.is_ignored("build"));
        assert!(gi.is_ignored("root_only"));
        assert!(!gi.is_ignored("sub/root_only"));
        assert!(!gi.is_ignored("main.py"));
    }
}
