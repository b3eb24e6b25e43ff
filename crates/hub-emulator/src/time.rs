//! Timestamps in the Hub's wire format: ISO-8601 UTC with milliseconds and `Z`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The Unix second a grant of `ttl_secs` made now expires at, for checks of the form
/// `now_ms() / 1000 >= expires`: rounded up, so the grant lives at least `ttl_secs` (at most one
/// second more). Rounding `now` down instead made a 1 s lifetime anything from 0 to 1 s, and
/// tests of short lifetimes failed when a request came a few milliseconds late.
pub fn expiry_secs(ttl_secs: u64) -> u64 {
    expiry_secs_at(now_ms(), ttl_secs)
}

fn expiry_secs_at(now_ms: u64, ttl_secs: u64) -> u64 {
    if ttl_secs == 0 {
        // No lifetime: expired at once.
        return now_ms / 1000;
    }
    now_ms
        .saturating_add(ttl_secs.saturating_mul(1000))
        .div_ceil(1000)
}

/// Formats epoch milliseconds as `2026-01-01T00:00:00.000Z`.
pub fn iso_ms(ms: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_hub() {
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn grants_live_at_least_their_ttl() {
        // Issued 1 ms before a second ends: still valid a whole second later.
        let issued: u64 = 1_700_000_000_999;
        let exp = expiry_secs_at(issued, 1);
        let at = |ms: u64| (issued + ms) / 1000;
        assert!(at(1000) < exp, "valid a whole second later");
        assert!(at(2000) >= exp, "expired 2 s later");
        assert_eq!(expiry_secs_at(1_700_000_000_000, 1), 1_700_000_001);
        assert!(
            1_700_000_000_500 / 1000 >= expiry_secs_at(1_700_000_000_500, 0),
            "0 s: expired at once"
        );
    }
}
