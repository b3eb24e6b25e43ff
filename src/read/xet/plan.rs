//! Reconstruction plans, cached per (file hash, byte range) and fetched single-flight.
//!
//! A plan names, per xorb, signed URLs and byte ranges to send with them. The ranges asked for
//! are windows of 256 MiB (`window.rs`), cut locally into the plans of the runs inside them,
//! and, until a run's window is cached, the run's own range. What the cache saves: one request
//! per window instead of one per run, the repeated asks of one range (a run read again after
//! its blocks were evicted, a range retried after a failure), and the re-plans of every
//! parallel xorb range of one plan whose URLs expired. A plan lives until shortly before the
//! earliest expiry its URLs announce (`expires=` / `Expires=`), at most [`MAX_TTL`]; without
//! an announced expiry, [`UNKNOWN_EXPIRY_TTL`]. A URL refused anyway (403) re-plans through
//! [`Plans::replan`], which drops the stale plan once for all its users.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use xet_client::cas_client::Client;
use xet_client::cas_types::{FileRange, QueryReconstructionResponseV2};
use xet_core_structures::merklehash::MerkleHash;

use super::flight::Flights;
use super::{XetError, XetStats};
use crate::hub::signed_expiry;

/// Longest a plan is kept, whatever its URLs say (the Hub's URLs live about an hour).
const MAX_TTL: Duration = Duration::from_secs(15 * 60);
/// Kept this long when no URL of the plan states its expiry.
const UNKNOWN_EXPIRY_TTL: Duration = Duration::from_secs(60);
/// A plan is dropped this long before its first URL expires, so a fetch that starts just
/// before does not race the expiry (a quarter of what is left, if less).
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Plans kept: windows and ranges readers asked for. A window of a file stored in order names
/// a handful of xorbs (a few KB); one of a file pieced together from many xorbs may name
/// hundreds (~150 KB), so 512 keeps the worst case under ~75 MB, and still covers the windows
/// and first runs of dozens of files read at once (an evicted plan costs one request).
const PLANS_KEPT: usize = 512;

pub type Plan = Arc<QueryReconstructionResponseV2>;
type Key = (MerkleHash, u64, u64);

/// The plan cache of one mount.
pub struct Plans {
    flights: Flights<Key, Plan>,
}

impl Default for Plans {
    fn default() -> Self {
        Plans {
            flights: Flights::new(PLANS_KEPT),
        }
    }
}

impl Plans {
    /// The plan of `range` of `file`: cached, joined, or asked of the CAS.
    pub async fn get(
        &self,
        client: &Arc<dyn Client>,
        file: &MerkleHash,
        range: FileRange,
        stats: &XetStats,
    ) -> Result<Plan, XetError> {
        let key = (*file, range.start, range.end);
        let (plan, reused) = self
            .flights
            .get(&key, || async {
                stats.reconstructions.fetch_add(1, Ordering::Relaxed);
                let plan = client
                    .get_reconstruction(file, Some(range))
                    .await
                    .map_err(|e| XetError::Cas(format!("reconstruction: {e}")))?
                    .ok_or_else(|| {
                        XetError::Cas(format!(
                            "no reconstruction for {}..{}",
                            range.start, range.end
                        ))
                    })?;
                let until = expiry(&plan, Instant::now(), SystemTime::now());
                Ok::<_, XetError>((Arc::new(plan), Some(until)))
            })
            .await?;
        if reused {
            stats.plans_reused.fetch_add(1, Ordering::Relaxed);
        }
        Ok(plan)
    }

    /// The plan of `range` of `file` if it is cached and fresh (no request).
    pub fn cached(&self, file: &MerkleHash, range: FileRange) -> Option<Plan> {
        self.flights.peek(&(*file, range.start, range.end))
    }

    /// A new plan after the CAS refused a URL of `stale`: dropped once (whoever of its users
    /// comes first), then asked again single-flight.
    pub async fn replan(
        &self,
        client: &Arc<dyn Client>,
        file: &MerkleHash,
        range: FileRange,
        stale: &Plan,
        stats: &XetStats,
    ) -> Result<Plan, XetError> {
        let key = (*file, range.start, range.end);
        self.flights
            .invalidate_if(&key, |cached| Arc::ptr_eq(cached, stale));
        self.get(client, file, range, stats).await
    }
}

/// When a plan fetched at `now` stops being served: before its earliest URL expiry.
fn expiry(plan: &QueryReconstructionResponseV2, now: Instant, wall: SystemTime) -> Instant {
    let first = plan
        .xorbs
        .values()
        .flatten()
        .filter_map(|f| url::Url::parse(&f.url).ok())
        .filter_map(|u| signed_expiry(&u))
        .min();
    let ttl = match first {
        Some(at) => {
            let left = at.duration_since(wall).unwrap_or(Duration::ZERO);
            left.saturating_sub(EXPIRY_MARGIN.min(left / 4))
                .min(MAX_TTL)
        }
        None => UNKNOWN_EXPIRY_TTL,
    };
    now + ttl
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::UNIX_EPOCH;
    use xet_client::cas_types::XorbMultiRangeFetch;

    fn plan_with(urls: &[&str]) -> QueryReconstructionResponseV2 {
        let mut xorbs = HashMap::new();
        for (i, u) in urls.iter().enumerate() {
            let hash = MerkleHash::from_hex(&format!("{i:064x}")).unwrap();
            xorbs.insert(
                hash.into(),
                vec![XorbMultiRangeFetch {
                    url: u.to_string(),
                    ranges: vec![],
                }],
            );
        }
        QueryReconstructionResponseV2 {
            offset_into_first_range: 0,
            terms: vec![],
            xorbs,
        }
    }

    #[test]
    fn plans_expire_before_their_first_url() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let p = plan_with(&[
            "http://cas/x?expires=1003600&signature=a",
            "http://cas/y?Expires=1000600&Signature=b",
        ]);
        // The earlier URL (600 s left) rules, less the 30 s margin.
        assert_eq!(expiry(&p, now, wall), now + Duration::from_secs(570));
        // An hour left: capped.
        let p = plan_with(&["http://cas/x?expires=1003600"]);
        assert_eq!(expiry(&p, now, wall), now + MAX_TTL);
        // 20 s left: a quarter of it as margin.
        let p = plan_with(&["http://cas/x?expires=1000020"]);
        assert_eq!(expiry(&p, now, wall), now + Duration::from_secs(15));
        // Already expired: not served again.
        let p = plan_with(&["http://cas/x?expires=999999"]);
        assert_eq!(expiry(&p, now, wall), now);
        let p = plan_with(&["http://cas/x?sig=1"]);
        assert_eq!(expiry(&p, now, wall), now + UNKNOWN_EXPIRY_TTL);
    }
}
