//! Xet CAS access tokens (what `xet-read-token` / `xet-write-token` hand out and the CAS
//! routes check as `Authorization: Bearer`). Stateless: the claims (scope, repo, revision,
//! expiry) travel in the token, MACed with the emulator's persistent signing key, so tokens
//! survive a restart like the real Hub's JWTs and nothing has to be stored per token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::sign::Signer;
use crate::time::now_ms;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasClaims {
    /// Write tokens may upload xorbs and shards; read tokens only read.
    pub write: bool,
    /// `models/ns/name`, `datasets/…`, `spaces/…` or `buckets/ns/name`.
    pub repo: String,
    /// Revision the token was asked for (`None` for buckets and `create_pr` uploads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
    /// Expiry, unix seconds.
    pub exp: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    /// No `Authorization: Bearer` at all.
    Missing,
    /// Not a token of ours, or tampered with.
    Invalid,
    Expired,
    /// Valid, but a read token used on a write route.
    ReadOnly,
}

/// Makes a token for `claims`.
pub fn issue(signer: &Signer, claims: &CasClaims) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let tag = signer.tag(body.as_bytes());
    format!("xet1.{body}.{tag}")
}

/// Checks a token (signature, expiry, and write scope when `write`).
pub fn verify(signer: &Signer, token: &str, write: bool) -> Result<CasClaims, TokenError> {
    let rest = token.strip_prefix("xet1.").ok_or(TokenError::Invalid)?;
    let (body, tag) = rest.split_once('.').ok_or(TokenError::Invalid)?;
    if !signer.check_tag(body.as_bytes(), tag) {
        return Err(TokenError::Invalid);
    }
    let claims: CasClaims = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Invalid)?;
    if now_ms() / 1000 >= claims.exp {
        return Err(TokenError::Expired);
    }
    if write && !claims.write {
        return Err(TokenError::ReadOnly);
    }
    Ok(claims)
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_scope_and_expire() {
        let s = Signer::new(b"k".to_vec(), 60);
        let c = CasClaims {
            write: false,
            repo: "models/a/b".into(),
            rev: Some("main".into()),
            exp: now_ms() / 1000 + 60,
        };
        let t = issue(&s, &c);
        assert_eq!(verify(&s, &t, false), Ok(c.clone()));
        assert_eq!(verify(&s, &t, true), Err(TokenError::ReadOnly));
        let other = Signer::new(b"other".to_vec(), 60);
        assert_eq!(verify(&other, &t, false), Err(TokenError::Invalid));
        let forged = t.replace("xet1.", "xet1.e30");
        assert_eq!(verify(&s, &forged, false), Err(TokenError::Invalid));
        let old = issue(&s, &CasClaims { exp: 1, ..c });
        assert_eq!(verify(&s, &old, false), Err(TokenError::Expired));
    }
}
