//! The emulator's configuration, parsed from the command line (see [`super::cli`]).

use std::path::PathBuf;

use super::net::faults::FaultSpec;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Read,
    Write,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
        }
    }
}

/// `--token NAME:ROLE:SECRET`: NAME is the user the token belongs to.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub user: String,
    pub role: Role,
    pub secret: String,
}

impl TokenSpec {
    pub fn parse(s: &str) -> Result<TokenSpec, String> {
        let mut parts = s.splitn(3, ':');
        let (Some(user), Some(role), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err("expected NAME:ROLE:SECRET".into());
        };
        hub_wire::repo::validate_id_part(user).map_err(|e| e.to_string())?;
        let role = match role {
            "read" => Role::Read,
            "write" => Role::Write,
            other => return Err(format!("role must be read or write, not {other:?}")),
        };
        if secret.is_empty() {
            return Err("empty token secret".into());
        }
        Ok(TokenSpec {
            user: user.into(),
            role,
            secret: secret.into(),
        })
    }
}

/// `--org ORG:USER[,USER...]`.
#[derive(Debug, Clone)]
pub struct OrgSpec {
    pub name: String,
    pub members: Vec<String>,
}

impl OrgSpec {
    pub fn parse(s: &str) -> Result<OrgSpec, String> {
        let (name, members) = s.split_once(':').ok_or("expected ORG:USER[,USER...]")?;
        hub_wire::repo::validate_id_part(name).map_err(|e| e.to_string())?;
        let members: Vec<String> = members
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect();
        Ok(OrgSpec {
            name: name.into(),
            members,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data: PathBuf,
    /// `HOST:PORT` of the Hub API (port 0 = any free port).
    pub listen: String,
    /// `HOST:PORT` of the stand-in CDN; default: the Hub's host, any free port.
    pub cdn_listen: Option<String>,
    pub tokens: Vec<TokenSpec>,
    pub orgs: Vec<OrgSpec>,
    /// Maximum entries per page of tree/commit/repo listings (expanded trees: at most 50).
    pub page_size: usize,
    /// LFS objects at least this big are uploaded with the multipart transfer.
    pub multipart_threshold: u64,
    pub multipart_part_size: u64,
    /// Preupload answers `lfs` for files at least this big (besides `.gitattributes` rules).
    pub lfs_threshold: u64,
    pub latency_ms: u64,
    /// Per-connection response body cap, bytes per second.
    pub bandwidth: Option<u64>,
    pub faults: Vec<FaultSpec>,
    pub fault_seed: u64,
    /// Lifetime of signed CDN URLs, seconds.
    pub cdn_url_ttl: u64,
    /// Xet-era Hub (default): Xet CAS, token routes, `xetHash`, bridge redirects. `false` =
    /// `--no-xet`, a legacy LFS-only Hub.
    pub xet: bool,
    /// Lifetime of CAS access tokens, seconds.
    pub xet_token_ttl: u64,
    /// Lifetime of signed xorb fetch, grant and bridge URLs, seconds.
    pub xet_url_ttl: u64,
    /// Serve the v2 CAS routes (reconstructions, shards); `false` answers 404 there.
    pub xet_v2: bool,
    /// Offer xorb upload grants; `false` answers 404 (clients then POST xorbs directly).
    pub xet_grants: bool,
    /// Sign each xorb fetch URL and each resolve redirect to the Xet bridge for the exact
    /// `Range` header it was minted for (any other range, or none, is refused with 403), as
    /// xet-client documents for the real CAS and as Hub clients report for the real bridge.
    /// Off by default: hubfs's chunk checks and sub-runs ask for ranges of their own
    /// (docs/xet-plan.md, finding 12).
    pub range_bound_urls: bool,
}

impl Config {
    /// Defaults for everything but the data dir (listening on a free loopback port).
    pub fn new(data: PathBuf) -> Config {
        Config {
            data,
            listen: "127.0.0.1:0".into(),
            cdn_listen: None,
            tokens: Vec::new(),
            orgs: Vec::new(),
            page_size: 1000,
            multipart_threshold: 5 << 30,
            multipart_part_size: 64 << 20,
            lfs_threshold: 10 << 20,
            latency_ms: 0,
            bandwidth: None,
            faults: Vec::new(),
            fault_seed: 0,
            cdn_url_ttl: 3600,
            xet: true,
            xet_token_ttl: 3600,
            xet_url_ttl: 3600,
            xet_v2: true,
            xet_grants: true,
            range_bound_urls: false,
        }
    }
}
