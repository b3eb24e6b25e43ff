//! `--shared-cache s3://BUCKET/PREFIX` and its companions: where the shared tier is, and the
//! usual AWS credential sources, resolved the way the AWS CLI does (minus SSO and processes):
//!
//! 1. an explicit profile (`--shared-cache-profile`) reads the shared files, nothing else;
//! 2. else `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`;
//! 3. else the profile `AWS_PROFILE` (or `default`) of the shared credentials file
//!    (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`) or of the config file
//!    (`AWS_CONFIG_FILE`, else `~/.aws/config`, sections `[profile NAME]`);
//! 4. else object_store's own fallback (instance metadata).
//!
//! The region is `--shared-cache-region`, else `AWS_REGION` / `AWS_DEFAULT_REGION`, else the
//! profile's `region`, else `us-east-1`. Secrets are never logged or shown: `Debug` hides them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the command line says about the shared tier.
#[derive(Debug, Clone)]
pub struct SharedCacheOptions {
    /// `s3://BUCKET` or `s3://BUCKET/PREFIX`.
    pub url: String,
    /// An S3-compatible endpoint (`http://127.0.0.1:3900`); None: AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    /// `BUCKET.host` instead of `host/BUCKET` (path style, the default, is what self-hosted
    /// stores serve).
    pub virtual_hosted: bool,
    /// A lookup answering nothing for this long is abandoned for the Hub.
    pub first_byte_timeout: Duration,
}

/// Where the tier is and how to sign for it, ready for the client.
#[derive(Clone)]
pub struct Resolved {
    pub bucket: String,
    /// No leading or trailing '/'; may be empty.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub credentials: Option<Credentials>,
    /// Where the credentials came from, for the log (never the secret).
    pub credential_source: String,
    pub virtual_hosted: bool,
    pub first_byte_timeout: Duration,
}

#[derive(Clone)]
pub struct Credentials {
    pub key_id: String,
    pub secret: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ key_id: {:?}, secret: <hidden> }}",
            self.key_id
        )
    }
}

/// Splits `s3://BUCKET/PREFIX`.
pub fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("--shared-cache {url:?}: expected s3://BUCKET/PREFIX"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    if bucket.len() < 3 || bucket.len() > 63 || !bucket.chars().all(valid) {
        return Err(format!(
            "--shared-cache {url:?}: {bucket:?} is not a bucket name"
        ));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// Resolves `opts` with the environment `env` and home directory `home`.
pub fn resolve(
    opts: &SharedCacheOptions,
    env: impl Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<Resolved, String> {
    let (bucket, prefix) = parse_url(&opts.url)?;
    let nonempty = |n: &str| env(n).filter(|v| !v.is_empty());
    let profile_name = opts
        .profile
        .clone()
        .or_else(|| nonempty("AWS_PROFILE"))
        .unwrap_or_else(|| "default".to_string());
    let file_or = |var: &str, rel: &str| {
        nonempty(var)
            .map(PathBuf::from)
            .or_else(|| home.map(|h| h.join(rel)))
    };
    let creds_file = file_or("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    let config_file = file_or("AWS_CONFIG_FILE", ".aws/config");
    let from_creds = creds_file
        .as_deref()
        .and_then(|p| read_ini(p).remove(&profile_name));
    let config_section = if profile_name == "default" {
        "default".to_string()
    } else {
        format!("profile {profile_name}")
    };
    let from_config = config_file
        .as_deref()
        .and_then(|p| read_ini(p).remove(&config_section));
    let profile_creds = |sec: &Option<HashMap<String, String>>| {
        let sec = sec.as_ref()?;
        Some(Credentials {
            key_id: sec.get("aws_access_key_id")?.clone(),
            secret: sec.get("aws_secret_access_key")?.clone(),
            session_token: sec.get("aws_session_token").cloned(),
        })
    };
    let env_creds = || {
        Some(Credentials {
            key_id: nonempty("AWS_ACCESS_KEY_ID")?,
            secret: nonempty("AWS_SECRET_ACCESS_KEY")?,
            session_token: nonempty("AWS_SESSION_TOKEN"),
        })
    };
    let from_profile = || {
        profile_creds(&from_creds)
            .map(|c| (c, format!("profile {profile_name} (credentials file)")))
            .or_else(|| {
                profile_creds(&from_config)
                    .map(|c| (c, format!("profile {profile_name} (config file)")))
            })
    };
    let found = if opts.profile.is_some() {
        let found = from_profile();
        if found.is_none() {
            return Err(format!(
                "--shared-cache-profile {profile_name}: no keys for it in {} or {}",
                show(&creds_file),
                show(&config_file)
            ));
        }
        found
    } else {
        env_creds()
            .map(|c| (c, "environment (AWS_ACCESS_KEY_ID)".to_string()))
            .or_else(from_profile)
    };
    let region = opts
        .region
        .clone()
        .or_else(|| nonempty("AWS_REGION"))
        .or_else(|| nonempty("AWS_DEFAULT_REGION"))
        .or_else(|| from_config.as_ref().and_then(|s| s.get("region").cloned()))
        .unwrap_or_else(|| "us-east-1".to_string());
    let (credentials, credential_source) = match found {
        Some((c, src)) => (Some(c), src),
        None => (None, "instance metadata (no keys found)".to_string()),
    };
    Ok(Resolved {
        bucket,
        prefix,
        endpoint: opts.endpoint.clone(),
        region,
        credentials,
        credential_source,
        virtual_hosted: opts.virtual_hosted,
        first_byte_timeout: opts.first_byte_timeout,
    })
}

fn show(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map_or_else(|| "(no home)".to_string(), |p| p.display().to_string())
}

/// The sections of an AWS-style INI file (`[name]`, `key = value`, `#`/`;` comments); an
/// unreadable file has none.
fn read_ini(path: &Path) -> HashMap<String, HashMap<String, String>> {
    std::fs::read_to_string(path)
        .map(|s| parse_ini(&s))
        .unwrap_or_default()
}

fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.trim().to_string());
            continue;
        }
        if let (Some(sec), Some((k, v))) = (&section, line.split_once('=')) {
            out.entry(sec.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(profile: Option<&str>) -> SharedCacheOptions {
        SharedCacheOptions {
            url: "s3://hubfs-cache/team/a/".into(),
            endpoint: Some("http://127.0.0.1:3900".into()),
            region: None,
            profile: profile.map(String::from),
            virtual_hosted: false,
            first_byte_timeout: Duration::from_millis(500),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("s3://b-1.x/p/q/").unwrap(),
            ("b-1.x".to_string(), "p/q".to_string())
        );
        assert_eq!(parse_url("s3://bkt").unwrap().1, "");
        assert!(parse_url("https://bkt/p").is_err());
        assert!(parse_url("s3://B/p").is_err());
        assert!(parse_url("s3:///p").is_err());
    }

    #[test]
    fn env_then_files_and_an_explicit_profile_wins() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".aws")).unwrap();
        std::fs::write(
            home.path().join(".aws/credentials"),
            "# c\n[default]\naws_access_key_id = DEF\naws_secret_access_key = s1\n\
             [garage]\naws_access_key_id=GK\naws_secret_access_key=s2\n",
        )
        .unwrap();
        std::fs::write(
            home.path().join(".aws/config"),
            "[profile cfgonly]\nregion = garage\naws_access_key_id = CK\n\
             aws_secret_access_key = s3\n",
        )
        .unwrap();
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                vars.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            }
        };
        let h = Some(home.path());
        let r = resolve(
            &opts(None),
            env(&[("AWS_ACCESS_KEY_ID", "EK"), ("AWS_SECRET_ACCESS_KEY", "es")]),
            h,
        )
        .unwrap();
        assert_eq!(r.credentials.unwrap().key_id, "EK");
        assert_eq!(
            (r.bucket.as_str(), r.prefix.as_str(), r.region.as_str()),
            ("hubfs-cache", "team/a", "us-east-1")
        );
        let r = resolve(&opts(None), env(&[]), h).unwrap();
        assert_eq!(r.credentials.unwrap().key_id, "DEF");
        let r = resolve(&opts(None), env(&[("AWS_PROFILE", "garage")]), h).unwrap();
        assert_eq!(r.credentials.unwrap().key_id, "GK");
        let r = resolve(
            &opts(Some("cfgonly")),
            env(&[("AWS_ACCESS_KEY_ID", "EK"), ("AWS_SECRET_ACCESS_KEY", "es")]),
            h,
        )
        .unwrap();
        let c = r.credentials.unwrap();
        assert_eq!((c.key_id.as_str(), r.region.as_str()), ("CK", "garage"));
        assert!(!format!("{c:?}").contains("s3"), "the secret is hidden");
        assert!(resolve(&opts(Some("nope")), env(&[]), h).is_err());
        let r = resolve(&opts(None), env(&[]), None).unwrap();
        assert!(r.credentials.is_none());
    }
}
