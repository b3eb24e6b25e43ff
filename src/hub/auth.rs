//! The user's Hub token and where to find it.
//!
//! A [`Token`] is a bearer secret: it only ever leaves this type through [`Token::secret`],
//! which the client uses to fill the `Authorization` header. Debug and Display print `hf_***`,
//! so a token can sit in config structs that get logged without leaking.
//!
//! [`Token::discover`] follows huggingface_hub's lookup order (hub-api.md §2.2) so a user who
//! logged in with `hf auth login` is authenticated in hubfs too.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use super::error::HubError;

/// A Hub access token (`hf_…`).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token from its text; surrounding whitespace and line breaks are removed (token files
    /// usually end with a newline). `None` when nothing is left.
    pub fn new(secret: impl AsRef<str>) -> Option<Token> {
        let trimmed = secret.as_ref().trim();
        (!trimmed.is_empty()).then(|| Token(trimmed.to_string()))
    }

    /// The secret itself, for the `Authorization` header only.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Finds the token the way huggingface_hub does, reading the process environment:
    ///
    /// 1. `token_file` (an explicit `--token-file`): must exist and be non-empty;
    /// 2. `HF_TOKEN` — set but empty means "anonymous" and stops the search;
    /// 3. `HUGGING_FACE_HUB_TOKEN` (legacy);
    /// 4. the token file: `HF_TOKEN_PATH`, else `$HF_HOME/token`, else
    ///    `$XDG_CACHE_HOME/huggingface/token`, else `~/.cache/huggingface/token` (the first
    ///    variable that is set decides the path, as `HF_HOME` defaults to the cache dir).
    ///
    /// `Ok(None)` means anonymous access.
    pub fn discover(token_file: Option<&Path>) -> Result<Option<Token>, HubError> {
        Token::discover_with(token_file, |name| std::env::var_os(name))
    }

    /// [`Token::discover`] with an injectable environment, so tests need not mutate the
    /// process environment (tests run in parallel).
    pub fn discover_with(
        token_file: Option<&Path>,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Option<Token>, HubError> {
        if let Some(path) = token_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                HubError::invalid(format!("cannot read token file {}: {e}", path.display()))
            })?;
            return match Token::new(text) {
                Some(t) => Ok(Some(t)),
                None => Err(HubError::invalid(format!(
                    "token file {} is empty",
                    path.display()
                ))),
            };
        }
        if let Some(value) = env("HF_TOKEN") {
            // An explicitly empty HF_TOKEN is how users ask for anonymous access.
            return Ok(Token::new(value.to_string_lossy()));
        }
        if let Some(t) = env("HUGGING_FACE_HUB_TOKEN").and_then(|v| Token::new(v.to_string_lossy()))
        {
            return Ok(Some(t));
        }
        let Some(path) = token_path(&env) else {
            return Ok(None);
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Token::new(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(HubError::invalid(format!(
                "cannot read token file {}: {e}",
                path.display()
            ))),
        }
    }
}

/// The file [`Token::discover_with`] takes the token from, when it takes it from a file.
pub fn token_source_file(
    token_file: Option<&Path>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Option<PathBuf> {
    if let Some(path) = token_file {
        return Some(path.to_path_buf());
    }
    if env("HF_TOKEN").is_some()
        || env("HUGGING_FACE_HUB_TOKEN").is_some_and(|v| Token::new(v.to_string_lossy()).is_some())
    {
        return None;
    }
    token_path(&env)
}

/// A warning for a token file that users other than its owner may read or change (group or
/// other permission bits). Not refused: huggingface_hub writes `$HF_HOME/token` with the
/// default umask (usually 0644), and refusing it would lock out every user who logged in.
pub fn loose_token_file_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "warning: token file {} is accessible to other users (mode {mode:04o});              run `chmod 600 {}`",
            path.display(),
            path.display()
        )
    })
}

/// Where the stored token lives, from the environment (see [`Token::discover`]).
fn token_path(env: &impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = set("HF_TOKEN_PATH") {
        return Some(p);
    }
    if let Some(home) = set("HF_HOME") {
        return Some(home.join("token"));
    }
    if let Some(cache) = set("XDG_CACHE_HOME") {
        return Some(cache.join("huggingface").join("token"));
    }
    set("HOME").map(|home| home.join(".cache").join("huggingface").join("token"))
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("hf_***")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("hf_***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn found(r: Result<Option<Token>, HubError>) -> Option<String> {
        r.unwrap().map(|t| t.secret().to_string())
    }

    #[test]
    fn never_prints_the_secret() {
        let t = Token::new("  hf_abc\r\n").unwrap();
        assert_eq!(t.secret(), "hf_abc");
        assert_eq!(format!("{t:?} {t}"), "hf_*** hf_***");
        assert!(Token::new(" \n").is_none());
    }

    #[test]
    fn explicit_file_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "hf_file\n").unwrap();
        let env = env_of(&[("HF_TOKEN", "hf_env")]);
        assert_eq!(
            found(Token::discover_with(Some(&f), &env)).as_deref(),
            Some("hf_file")
        );
        std::fs::write(&f, "\n").unwrap();
        assert!(Token::discover_with(Some(&f), &env).is_err());
        let missing = dir.path().join("missing");
        assert!(Token::discover_with(Some(&missing), &env).is_err());
    }

    #[test]
    fn env_vars_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        std::fs::write(dir.path().join("token"), "hf_home\n").unwrap();

        let env = env_of(&[
            ("HF_TOKEN", "hf_a"),
            ("HUGGING_FACE_HUB_TOKEN", "hf_b"),
            ("HF_HOME", home),
        ]);
        assert_eq!(
            found(Token::discover_with(None, env)).as_deref(),
            Some("hf_a")
        );

        let env = env_of(&[("HUGGING_FACE_HUB_TOKEN", "hf_b"), ("HF_HOME", home)]);
        assert_eq!(
            found(Token::discover_with(None, env)).as_deref(),
            Some("hf_b")
        );

        // An empty HF_TOKEN means anonymous, even when a token file exists.
        let env = env_of(&[("HF_TOKEN", ""), ("HF_HOME", home)]);
        assert_eq!(found(Token::discover_with(None, env)), None);

        // An empty legacy variable does not stop the search.
        let env = env_of(&[("HUGGING_FACE_HUB_TOKEN", ""), ("HF_HOME", home)]);
        assert_eq!(
            found(Token::discover_with(None, env)).as_deref(),
            Some("hf_home")
        );
    }

    #[test]
    fn the_file_in_use_and_its_loose_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "hf_x\n").unwrap();
        let explicit = dir.path().join("explicit");
        assert_eq!(
            token_source_file(Some(&explicit), env_of(&[("HF_TOKEN", "hf_a")])),
            Some(explicit)
        );
        assert_eq!(
            token_source_file(None, env_of(&[("HF_HOME", home)])),
            Some(f.clone())
        );
        // A token from the environment (even an empty HF_TOKEN) reads no file.
        assert_eq!(
            token_source_file(None, env_of(&[("HF_TOKEN", ""), ("HF_HOME", home)])),
            None
        );
        assert_eq!(
            token_source_file(
                None,
                env_of(&[("HUGGING_FACE_HUB_TOKEN", "hf_b"), ("HF_HOME", home)])
            ),
            None
        );

        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = loose_token_file_warning(&f).unwrap();
        assert!(
            w.contains("0644") && w.contains(&format!("chmod 600 {}", f.display())),
            "{w}"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(loose_token_file_warning(&f), None);
        assert_eq!(loose_token_file_warning(&dir.path().join("missing")), None);
    }

    #[test]
    fn token_file_locations() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            p
        };
        let explicit = write("custom/tok", "hf_path\n");
        write("hfhome/token", "hf_hfhome");
        write("xdg/huggingface/token", "hf_xdg");
        write("home/.cache/huggingface/token", " hf_user \n");
        let s = |rel: &str| root.join(rel).to_str().unwrap().to_string();

        let env = env_of(&[
            ("HF_TOKEN_PATH", explicit.to_str().unwrap()),
            ("HF_HOME", &s("hfhome")),
        ]);
        assert_eq!(
            found(Token::discover_with(None, env)).as_deref(),
            Some("hf_path")
        );
        let env = env_of(&[("HF_HOME", &s("hfhome")), ("XDG_CACHE_HOME", &s("xdg"))]);
        assert_eq!(
            found(Token::discover_with(None, env)).as_deref(),
            Some("hf_hfhome")
        );
        let env = env_of(&[("XDG_CACHE_HOME", &s("xdg")), ("HOME", &s("home"))]);
        assert_eq!(
            found(Token::discover_with(None, env)).as_deref(),
            Some("hf_xdg")
        );
        let env = env_of(&[("HOME", &s("home"))]);
        assert_eq!(
            found(Token::discover_with(None, env)).as_deref(),
            Some("hf_user")
        );
        // A configured location without a file is anonymous, not an error, and does not
        // fall back to another location.
        let env = env_of(&[("HF_HOME", &s("nowhere")), ("HOME", &s("home"))]);
        assert_eq!(found(Token::discover_with(None, env)), None);
        assert_eq!(found(Token::discover_with(None, env_of(&[]))), None);
    }
}
