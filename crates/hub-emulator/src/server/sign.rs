//! HMAC-signed, expiring URLs for the stand-in CDN (like S3/CloudFront presigned URLs): the
//! signature covers the method, path and every query parameter, so a URL grants exactly one
//! operation on one object until it expires, with no Authorization header involved.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::time::{expiry_secs, now_ms};

type HmacSha256 = Hmac<Sha256>;

pub struct Signer {
    key: Vec<u8>,
    ttl_secs: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SignError {
    Missing,
    Expired,
    Invalid,
}

fn canonical(method: &str, path: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut s = format!("{method}\n{path}\n");
    for (k, v) in sorted {
        s.push_str(&format!("{}={}&", k.len(), k));
        s.push_str(&format!("{}={}\n", v.len(), v));
    }
    s.into_bytes()
}

fn encode(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish()
}

impl Signer {
    pub fn new(key: Vec<u8>, ttl_secs: u64) -> Signer {
        Signer { key, ttl_secs }
    }

    fn mac(&self, data: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length.
        let mut m = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        m.update(data);
        m
    }

    /// Lifetime of the URLs this signer makes, seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// A MAC of `data` (hex), for opaque tokens (Xet CAS tokens) that must survive restarts.
    pub fn tag(&self, data: &[u8]) -> String {
        hex::encode(self.mac(data).finalize().into_bytes())
    }

    /// Whether `tag` is [`Signer::tag`] of `data` (constant time).
    pub fn check_tag(&self, data: &[u8], tag: &str) -> bool {
        hex::decode(tag).is_ok_and(|t| self.mac(data).verify_slice(&t).is_ok())
    }

    /// The query string (`k=v&…&expires=…&signature=…`) authorizing `method path`.
    pub fn sign(&self, method: &str, path: &str, params: &[(&str, String)]) -> String {
        let mut p: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let expires = expiry_secs(self.ttl_secs);
        p.push(("expires".into(), expires.to_string()));
        let sig = hex::encode(
            self.mac(&canonical(method, path, &p))
                .finalize()
                .into_bytes(),
        );
        p.push(("signature".into(), sig));
        encode(&p)
    }

    /// Checks a signed query; returns its parameters (without `signature`).
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        query: &str,
    ) -> Result<Vec<(String, String)>, SignError> {
        let mut params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let pos = params
            .iter()
            .position(|(k, _)| k == "signature")
            .ok_or(SignError::Missing)?;
        let (_, sig) = params.remove(pos);
        let sig = hex::decode(sig).map_err(|_| SignError::Invalid)?;
        self.mac(&canonical(method, path, &params))
            .verify_slice(&sig)
            .map_err(|_| SignError::Invalid)?;
        let expires: u64 = params
            .iter()
            .find(|(k, _)| k == "expires")
            .and_then(|(_, v)| v.parse().ok())
            .ok_or(SignError::Invalid)?;
        if now_ms() / 1000 >= expires {
            return Err(SignError::Expired);
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_method_path_and_params() {
        let s = Signer::new(b"k".to_vec(), 60);
        let q = s.sign("GET", "/lfs/abc", &[("size", "5".into())]);
        assert!(s.verify("GET", "/lfs/abc", &q).is_ok());
        assert_eq!(s.verify("PUT", "/lfs/abc", &q), Err(SignError::Invalid));
        assert_eq!(s.verify("GET", "/lfs/abd", &q), Err(SignError::Invalid));
        assert_eq!(
            s.verify("GET", "/lfs/abc", &q.replace("size=5", "size=6")),
            Err(SignError::Invalid)
        );
        assert_eq!(
            s.verify("GET", "/lfs/abc", "size=5"),
            Err(SignError::Missing)
        );
        let expired = Signer::new(b"k".to_vec(), 0);
        let q = expired.sign("GET", "/x", &[]);
        assert_eq!(expired.verify("GET", "/x", &q), Err(SignError::Expired));
    }
}
