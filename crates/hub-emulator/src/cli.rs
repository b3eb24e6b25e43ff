//! Command-line flags of the `hub-emulator` binary.

use std::path::PathBuf;

use clap::Parser;

use super::config::{Config, OrgSpec, TokenSpec};
use super::net::faults::FaultSpec;
use hub_wire::units::{parse_rate, parse_size};

const AFTER_HELP: &str = "\
SIZES AND RATES
  Binary suffixes: K=1024, M=1024^2, G=1024^3 (512K, 50M, 1G, 1.5M). Rates are bytes/second.

FAULT SPECS (--fault, repeatable; also POST /_emulator/faults, one spec per line)
  Comma-separated key=value pairs:
    route=R          content | resolve | cdn | api | commit | upload | cas | xorb | any
                     (default any). content = resolve HEAD/GET + CDN GET (LFS and the Xet
                     bridge); api = /api/* incl. commits and LFS batch/verify; upload = LFS
                     PUT, multipart parts and completion; cas = Xet CAS API routes and grant
                     uploads (/cas/...); xorb = signed xorb fetches (/cas/xorb/...)
    path=SUBSTR      only requests whose path contains SUBSTR
    method=M         only this HTTP method
    every=N          inject on the Nth, 2Nth, ... matching request
    prob=P           inject with probability P (seeded by --fault-seed)
    after=N          ignore the first N matching requests
    times=N          inject at most N times
  and one or more actions:
    status=CODE      answer CODE instead of the real response (e.g. 500, 503, 429)
    retry-after=S    with status: add Retry-After: S (and a RateLimit header for 429)
    cut-after=BYTES  send the headers and BYTES body bytes, then drop the connection
    stall=SECS       wait SECS (fractional allowed) before answering normally
    corrupt=1        invert the byte in the middle of the body (e.g. route=xorb: a bad chunk)
    corrupt-at=N     invert the body's byte at offset N (e.g. route=xorb and 5: the first chunk
                     header's uncompressed length)
    rewrite=FROM:TO  answer as if the path said TO where it says FROM (e.g. route=cas and two
                     xetHashes: the reconstruction of another file)
  Examples:
    --fault route=content,every=5,status=503
    --fault route=content,every=4,status=429,retry-after=1
    --fault route=cdn,every=3,cut-after=100000
    --fault route=resolve,every=7,stall=30

CONTROL ROUTES (never shaped, faulted or counted)
  GET /_emulator/stats, POST /_emulator/stats/reset,
  GET|POST|DELETE /_emulator/faults, GET|POST /_emulator/shaping
  ({\"latency_ms\":N,\"bandwidth\":\"50M\"|null}), POST /_emulator/refs (convert refs),
  POST /_emulator/repos (repos with legacy one-part ids).";

/// A local Hugging Face Hub: models, datasets and spaces over the Hub's HTTP API, with an
/// LFS stand-in CDN, network shaping and fault injection.
#[derive(Debug, Parser)]
#[command(name = "hub-emulator", version, after_help = AFTER_HELP)]
pub struct Args {
    /// Directory holding all state (created if missing); a restart serves the same repos.
    #[arg(long)]
    pub data: PathBuf,
    /// HOST:PORT of the Hub API; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// HOST:PORT of the LFS CDN listener [default: the --listen host, a free port].
    #[arg(long)]
    pub cdn_listen: Option<String>,
    /// NAME:ROLE:SECRET, ROLE = read|write; NAME is the token's user. Repeatable.
    #[arg(long = "token", value_parser = TokenSpec::parse)]
    pub tokens: Vec<TokenSpec>,
    /// File of NAME:ROLE:SECRET lines (blank lines and `#` comments ignored): like --token, but
    /// the secrets stay out of the process list.
    #[arg(long = "token-file")]
    pub token_files: Vec<PathBuf>,
    /// ORG:USER[,USER...]: members may create and write repos in ORG. Repeatable.
    #[arg(long = "org", value_parser = OrgSpec::parse)]
    pub orgs: Vec<OrgSpec>,
    /// Maximum entries per page of tree, commit and repo listings (expanded trees: 50 max).
    #[arg(long, default_value_t = 1000)]
    pub page_size: usize,
    /// LFS uploads at least this big use the multipart transfer.
    #[arg(long, default_value = "5G", value_parser = parse_size)]
    pub multipart_threshold: u64,
    /// Part size of multipart uploads.
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    pub multipart_part_size: u64,
    /// Preupload routes files at least this big to LFS (besides .gitattributes rules).
    #[arg(long, default_value = "10M", value_parser = parse_size)]
    pub lfs_threshold: u64,
    /// Delay added before every response (not control routes).
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Per-connection cap on response bodies, bytes/second (e.g. 50M).
    #[arg(long, value_parser = parse_rate)]
    pub bandwidth: Option<u64>,
    /// Fault injection rule (see FAULT SPECS). Repeatable.
    #[arg(long = "fault", value_parser = FaultSpec::parse)]
    pub faults: Vec<FaultSpec>,
    /// Seed of the fault injector's random choices (prob=).
    #[arg(long, default_value_t = 0)]
    pub fault_seed: u64,
    /// Lifetime of signed CDN URLs, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub cdn_url_ttl: u64,
    /// A legacy (pre-Xet) Hub: no CAS, no xet-*-token routes, no xetHash, no X-Xet-* headers.
    #[arg(long)]
    pub no_xet: bool,
    /// Lifetime of Xet CAS access tokens, in seconds (clients refresh 30-60 s before expiry).
    #[arg(long, default_value_t = 3600)]
    pub xet_token_ttl: u64,
    /// Lifetime of signed xorb fetch, upload-grant and Xet bridge URLs, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub xet_url_ttl: u64,
    /// CAS v2 routes (reconstructions, shards) answer 404, to test the clients' v1 fallback.
    #[arg(long)]
    pub no_xet_v2: bool,
    /// No xorb upload grants (404), to test the direct xorb upload path.
    #[arg(long)]
    pub no_xet_grants: bool,
    /// Bind every signed xorb URL, and every resolve redirect to the Xet bridge, to the exact
    /// Range header it was minted for: any other range answers 403 (the real Hub's behaviour
    /// as xet-client documents it).
    #[arg(long)]
    pub range_bound_urls: bool,
}

impl Args {
    pub fn into_config(self) -> Result<Config, String> {
        if self.page_size == 0 {
            return Err("--page-size must be positive".into());
        }
        if self.multipart_part_size == 0 {
            return Err("--multipart-part-size must be positive".into());
        }
        let mut tokens = self.tokens;
        for path in &self.token_files {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--token-file {}: {e}", path.display()))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                // The error names the line, never its content (it holds a secret).
                tokens.push(
                    TokenSpec::parse(line).map_err(|e| {
                        format!("--token-file {} line {}: {e}", path.display(), n + 1)
                    })?,
                );
            }
        }
        Ok(Config {
            data: self.data,
            listen: self.listen,
            cdn_listen: self.cdn_listen,
            tokens,
            orgs: self.orgs,
            page_size: self.page_size,
            multipart_threshold: self.multipart_threshold,
            multipart_part_size: self.multipart_part_size,
            lfs_threshold: self.lfs_threshold,
            latency_ms: self.latency_ms,
            bandwidth: self.bandwidth,
            faults: self.faults,
            fault_seed: self.fault_seed,
            cdn_url_ttl: self.cdn_url_ttl,
            xet: !self.no_xet,
            xet_token_ttl: self.xet_token_ttl,
            xet_url_ttl: self.xet_url_ttl,
            xet_v2: !self.no_xet_v2,
            xet_grants: !self.no_xet_grants,
            range_bound_urls: self.range_bound_urls,
        })
    }
}
