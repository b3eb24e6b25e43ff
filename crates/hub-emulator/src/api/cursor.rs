//! Opaque pagination cursors (`cursor=` in `Link: rel="next"` URLs): an offset, plus for tree
//! listings the id of the listed tree, so later pages come from the same snapshot even if the
//! branch moves meanwhile.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::server::error::ApiError;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_oid: Option<String>,
    pub offset: usize,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(s: &str) -> Result<Cursor, ApiError> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| ApiError::bad_request("Invalid cursor"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let c = Cursor {
            tree_oid: Some("ab".into()),
            offset: 7,
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("!!").is_err());
    }
}
