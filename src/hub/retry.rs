//! When and how long to wait before trying a failed request again.
//!
//! Transient failures (hub-api.md §7.4: 408, 429, 500/502/503/504, connection errors and
//! timeouts) are retried with capped exponential backoff and jitter. A server that says how
//! long to wait (`Retry-After`, or the IETF `RateLimit: …;r=0;t=N` header the Hub sends) is
//! believed, up to a cap, so one misbehaving answer cannot park a reader for an hour.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

/// How a request is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first. Default 5: huggingface_hub and hf-hub both give up
    /// after about five tries; more only delays the error a FUSE reader is waiting for.
    pub max_attempts: u32,
    /// First backoff. Default 250 ms: long enough for a restarting backend or a dropped
    /// connection to come back, short enough that one blip costs a reader little.
    pub base_delay: Duration,
    /// Backoff ceiling. Default 8 s, huggingface_hub's largest sleep (1, 2, 4, 8, 8 s).
    pub max_delay: Duration,
    /// Ceiling on a server-requested wait (`Retry-After` / `RateLimit t=`). Default 30 s, as
    /// in hf-mount: a blocked `read(2)` should fail rather than hang for a long quota window.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Backoff before retry number `retry` (1 = the first retry): `base·2^(retry-1)` capped at
    /// `max_delay`, then jittered into `[d/2, d]` ("equal jitter") so parallel streams that
    /// failed together do not hammer the server in lockstep, yet each waits at least half.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let half = ceiling / 2;
        let jitter_ms = fastrand::u64(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter_ms)
    }

    /// The wait before retry number `retry`: the server's hint (capped) if it gave one, else
    /// the backoff.
    pub fn delay(&self, retry: u32, server_hint: Option<Duration>) -> Duration {
        match server_hint {
            Some(hint) => hint.min(self.max_retry_after),
            None => self.backoff(retry),
        }
    }
}

/// How long the server asks us to wait: `RateLimit` with `r=0` gives `t` (+1 s so the new
/// window has surely started, as huggingface_hub does), else `Retry-After` as delta-seconds
/// or an HTTP date.
pub fn server_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(wait) = text("ratelimit").and_then(parse_ratelimit) {
        return Some(wait);
    }
    let value = text("retry-after")?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = parse_http_date(value)?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `"api";r=0;t=55` → 56 s when the quota is exhausted (`r=0`); `None` otherwise.
fn parse_ratelimit(value: &str) -> Option<Duration> {
    let mut remaining = None;
    let mut reset = None;
    for param in value.split([';', ',']).map(str::trim) {
        if let Some(r) = param.strip_prefix("r=") {
            remaining = r.trim().parse::<u64>().ok();
        } else if let Some(t) = param.strip_prefix("t=") {
            reset = t.trim().parse::<u64>().ok();
        }
    }
    match (remaining, reset) {
        (Some(0), Some(t)) => Some(Duration::from_secs(t + 1)),
        _ => None,
    }
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only HTTP date format
/// servers may send today (RFC 9110 §5.6.7).
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u32 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as u32
        + 1;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days.checked_mul(86_400)? + (*h as i64) * 3600 + (*m as i64) * 60 + *sec as i64;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(5),
        };
        for _ in 0..200 {
            let d1 = p.backoff(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.backoff(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d20 = p.backoff(20);
            assert!(d20 >= Duration::from_millis(500) && d20 <= Duration::from_millis(1000));
        }
        // Huge retry numbers must not overflow.
        assert!(p.backoff(u32::MAX) <= Duration::from_millis(1000));
    }

    #[test]
    fn server_hints_are_capped() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn parses_retry_after_and_ratelimit() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            server_wait(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            server_wait(
                &headers(&[("retry-after", "Sun, 06 Nov 1994 08:49:47 GMT")]),
                now
            ),
            Some(Duration::from_secs(10))
        );
        // A date in the past means "now".
        assert_eq!(
            server_wait(
                &headers(&[("retry-after", "Sun, 06 Nov 1994 08:00:00 GMT")]),
                now
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(
            server_wait(&headers(&[("ratelimit", "\"api\";r=0;t=55")]), now),
            Some(Duration::from_secs(56))
        );
        // Quota not exhausted: RateLimit says nothing, Retry-After decides.
        assert_eq!(
            server_wait(
                &headers(&[("ratelimit", "\"api\";r=3;t=55"), ("retry-after", "2")]),
                now
            ),
            Some(Duration::from_secs(2))
        );
        assert_eq!(server_wait(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(server_wait(&HeaderMap::new(), now), None);
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(UNIX_EPOCH)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(1_835_438_400))
        );
        assert_eq!(parse_http_date("Tue, 29 Feb 2028 12:00:00 UTC"), None);
        assert_eq!(parse_http_date("garbage"), None);
    }
}
