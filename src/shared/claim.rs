//! Claims: nodes that miss the same segment at the same moment fetch it from the Hub once.
//!
//! Without them, the nodes of a job that start together all miss every segment, all fetch it
//! from the Hub and all write it back: the tier saves the Hub nothing. With them, a node that
//! misses a segment writes a small claim object naming itself, reads it back a moment later,
//! and fetches the segment only if the claim is still its own; the others wait for the entry
//! to appear, then read it from the tier (`read/shared.rs`). Nodes reading in step then share
//! the file's runs between them instead of each fetching all of it.
//!
//! A claim is advice, not a lock: it needs no conditional write (Garage has none; S3's
//! `If-None-Match` is recent and not everywhere). The store keeps the last write of a key, so
//! the nodes racing for one segment read back the same winner once their writes have landed;
//! a node whose write lands after the others read back fetches too, which costs a Hub fetch,
//! never a wrong byte (every node writes the same entry, and readers check it). What bounds a
//! wait, so a dead or slow claimer costs a reader about one Hub fetch at most:
//! - a node waits for an entry at most `wait_budget`: a few times what the Hub would take for
//!   it plus a slack, at most 10 s, then fetches the segment itself;
//! - a claim older than `CLAIM_TTL` by the store's clock is ignored (its node died, or the
//!   clocks disagree: both end as if there were no claims), as are, for `CLAIM_TTL`, the
//!   claims of a node whose claims this mount waited out `WAITED_OUT` times in a row;
//! - a claimer that will not write its entry after all (a dropped or failed fill) deletes its
//!   claim at once; one whose entry is written, `CLAIM_LINGER` later (deleted at once, a node
//!   whose lookup missed just before the entry landed would find no claim and fetch the
//!   segment again; left, claims would pile up in the bucket).

use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, GetRange, ObjectStoreExt, PutPayload};

use super::{Lookup, SharedCache, SharedKey, SharedStats, LOOKUP_TOTAL};

/// A claim older than this (the store's clock against this node's) is ignored: fetching and
/// writing one segment never takes this long on a node that is alive.
const CLAIM_TTL: Duration = Duration::from_secs(30);
/// How long a claim stays after its entry is written (see the module doc).
const CLAIM_LINGER: Duration = Duration::from_secs(10);
/// Waits in a row that ran out before a node's entry appeared, after which this mount stops
/// waiting for that node for `CLAIM_TTL` (a loaded store makes a live node miss a few).
const WAITED_OUT: u32 = 3;
/// Waits in a row that ran out, whoever the claimers, after which this mount honours no
/// claim for `CLAIM_TTL`: claims planted under a new id per segment (a hostile writer to the
/// bucket) would otherwise cost every segment a whole wait.
const ANY_WAITED_OUT: u32 = 6;
/// Nodes whose waits ran out, remembered at most.
const MAX_OWNERS: usize = 1024;
/// A waiter asks for the entry this often at first, backing off to `POLL_MAX`: the entry
/// appears about one Hub fetch plus one write after the claim, and each ask is a request.
const POLL_MIN: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_millis(500);
/// A waiter checks that the claim still stands every this many asks for the entry.
const CLAIM_RECHECK: u32 = 4;
/// A wait lasts `WAIT_SLACK` plus `WAIT_FACTOR` times what the Hub would take for the entry
/// (at most `LOOKUP_TOTAL`): the claimer fetches it, then writes it (three copies on a
/// replicated store), and the waiter reads it.
const WAIT_SLACK: Duration = Duration::from_secs(4);
const WAIT_FACTOR: f64 = 8.0;
/// What a claim holds: this tag and the claimer's id. Anything else is not a claim.
const TAG: &str = "hubfs-claim-1 ";
/// Bytes of a claim read at most (a hostile store's longer answer is not read).
const CLAIM_MAX: usize = 128;
/// The read-back comes this long after the claim's write (twice its latency, within these
/// bounds): the time racing writes need to land. On a loaded store write latencies vary
/// several-fold, and a read-back before another node's write lands makes both fetch.
const SETTLE_MIN: Duration = Duration::from_millis(20);
const SETTLE_MAX: Duration = Duration::from_millis(500);

/// Who fetches a segment the tier does not have yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// This node: it fetches the segment from the Hub and writes it.
    Mine,
    /// Another node (its id) fetches it: wait for its entry.
    Theirs(String),
}

/// This mount's claimer id: random, plus the process id for a human reading the bucket.
pub fn node_id() -> String {
    format!("{:016x}-{}", fastrand::u64(..), std::process::id())
}

impl SharedCache {
    /// Decides who fetches segment `key`, which a lookup found missing: another node whose
    /// fresh claim is there, or this one (after claiming it). Never fails: a claim that cannot
    /// be written or read makes it this node's, as it was without claims.
    pub async fn claim(&self, key: &SharedKey) -> Claimed {
        // Not `allow()`: that would take the half-open breaker's one probe, which only a
        // lookup reports back on.
        if self.breaker.is_open() {
            return Claimed::Mine;
        }
        let path = self.claim_path(key);
        if let Some(owner) = self.claim_owner(&path).await {
            if owner != self.node {
                return Claimed::Theirs(owner);
            }
        }
        let started = Instant::now();
        let body = PutPayload::from(Bytes::from(format!("{TAG}{}", self.node)));
        let put = tokio::time::timeout(self.first_byte_timeout, self.store.put(&path, body)).await;
        if !matches!(put, Ok(Ok(_))) {
            tracing::debug!("shared cache: claiming {path} failed: fetching it unclaimed");
            return Claimed::Mine;
        }
        tokio::time::sleep((started.elapsed() * 2).clamp(SETTLE_MIN, SETTLE_MAX)).await;
        match self.claim_owner(&path).await {
            Some(owner) if owner != self.node => Claimed::Theirs(owner),
            _ => {
                // Several runs of one node may claim a segment: counted once.
                if super::remember(&self.claimed, *key) {
                    SharedStats::bump(&self.stats.claims);
                }
                Claimed::Mine
            }
        }
    }

    /// The claimer named by the claim at `path`, if that claim counts: there, well-formed,
    /// fresh, and not from a node this mount stopped waiting for.
    async fn claim_owner(&self, path: &ObjPath) -> Option<String> {
        let opts = GetOptions {
            range: Some(GetRange::Bounded(0..CLAIM_MAX as u64)),
            ..GetOptions::default()
        };
        let read = async {
            let r = self.store.get_opts(path, opts).await.ok()?;
            let age = SystemTime::now()
                .duration_since(SystemTime::from(r.meta.last_modified))
                .unwrap_or_else(|e| e.duration());
            let mut body = Vec::new();
            let mut stream = r.into_stream();
            while let Some(piece) = stream.next().await {
                body.extend_from_slice(&piece.ok()?);
                if body.len() > CLAIM_MAX {
                    return None;
                }
            }
            Some((age, body))
        };
        let (age, body) = tokio::time::timeout(self.first_byte_timeout, read)
            .await
            .ok()??;
        if age > CLAIM_TTL {
            return None;
        }
        let owner = std::str::from_utf8(&body)
            .ok()?
            .strip_prefix(TAG)
            .filter(|id| !id.is_empty())?
            .to_string();
        (!self.not_honoured(&owner)).then_some(owner)
    }

    /// Waits for the entry of segment `key`, which `owner` claimed, and reads `blocks` of it.
    /// Gives up after `wait_budget` (an incomplete lookup: the caller fetches from the Hub).
    /// Also gives up, early, when the claim is gone or changed hands: its node will not write
    /// the entry after all (it fetched only part of the segment, for a random read, and its
    /// backlog gave up on the rest), or its claim expired.
    pub async fn wait_for(&self, key: &SharedKey, blocks: Range<u32>, owner: &str) -> Lookup {
        *self.last_wait.lock() = Some(Instant::now());
        SharedStats::bump(&self.stats.waits);
        let deadline = Instant::now() + self.wait_budget(key.data_len() as u64);
        let claim = self.claim_path(key);
        let mut poll = POLL_MIN;
        let mut asked = 0u32;
        let given_up = || Lookup {
            missing: true,
            ..Lookup::default()
        };
        loop {
            asked = asked.wrapping_add(1);
            // Other waits ran out meanwhile and this claimer, or every claimer, is no longer
            // honoured: the runs waiting at that moment stop too, rather than each run out its
            // own budget (not counted as timeouts: the ones that ran out are).
            if self.not_honoured(owner) {
                return given_up();
            }
            if asked.is_multiple_of(CLAIM_RECHECK)
                && self.claim_owner(&claim).await.as_deref() != Some(owner)
            {
                if !self.not_honoured(owner) {
                    SharedStats::bump(&self.stats.wait_timeouts);
                }
                return given_up();
            }
            tokio::time::sleep(poll.min(deadline.saturating_duration_since(Instant::now()))).await;
            let found = self.lookup(key, blocks.clone(), false).await;
            if !found.missing {
                if found.complete {
                    SharedStats::bump(&self.stats.wait_hits);
                    let mut w = self.waited_out.lock();
                    w.remove(owner);
                    w.remove(ANY);
                }
                return found;
            }
            if Instant::now() >= deadline {
                // Runs that started waiting together run out together: once the first ones
                // stopped claims being honoured, the rest only end with them.
                let mut w = self.waited_out.lock();
                if not_honoured_in(&mut w, owner) {
                    return found;
                }
                SharedStats::bump(&self.stats.wait_timeouts);
                if w.len() >= MAX_OWNERS {
                    w.clear();
                }
                for who in [owner, ANY] {
                    let e = w.entry(who.to_string()).or_insert((0, Instant::now()));
                    *e = (e.0 + 1, Instant::now());
                }
                tracing::debug!(
                    "shared cache: {owner} claimed {} but did not write it in time",
                    key.object_name(&self.prefix)
                );
                return found;
            }
            poll = (poll * 3 / 2).min(POLL_MAX);
        }
    }

    /// Whether claims by `owner` are no longer waited for: it, or every claimer, was waited
    /// out too often in a row (see `ignored`).
    fn not_honoured(&self, owner: &str) -> bool {
        not_honoured_in(&mut self.waited_out.lock(), owner)
    }

    /// This node waited for another's claim within `within`: other nodes are fetching the
    /// files it reads, so a run it sends to the Hub on its own (a split) duplicates their work.
    pub fn waited_within(&self, within: Duration) -> bool {
        self.last_wait.lock().is_some_and(|t| t.elapsed() < within)
    }

    /// How long a node waits for an entry of `bytes` another node claimed.
    fn wait_budget(&self, bytes: u64) -> Duration {
        match self.hub_rate.time_for(bytes) {
            Some(hub) => (WAIT_SLACK + hub.mul_f64(WAIT_FACTOR)).min(LOOKUP_TOTAL),
            // Nothing fetched from the Hub yet (nodes starting together): half the bound.
            None => LOOKUP_TOTAL / 2,
        }
    }

    /// The entry `key` is in the tier: this node's claim on it, if any, is deleted
    /// `CLAIM_LINGER` later (one sleeping task each: as many as fills in that time).
    pub(super) fn claim_done(&self, key: &SharedKey) {
        self.drop_claim(key, CLAIM_LINGER);
    }

    /// This node will not write the entry `key` after all: other nodes must not wait for it.
    pub fn release_claim(&self, key: &SharedKey) {
        self.drop_claim(key, Duration::ZERO);
    }

    /// Deletes this node's claim on `key`, if it holds one, `after` from now.
    fn drop_claim(&self, key: &SharedKey, after: Duration) {
        if self.claimed.lock().remove(key) {
            self.delete_in_background(self.claim_path(key), after);
        }
    }

    fn claim_path(&self, key: &SharedKey) -> ObjPath {
        ObjPath::from(key.claim_name(&self.prefix).as_str())
    }
}

/// Claimers whose waits ran out: how many times in a row, and when last; `ANY` counts them
/// all.
pub type WaitedOut = HashMap<String, (u32, Instant)>;

/// The `WaitedOut` entry of every claimer together (no node id is empty).
const ANY: &str = "";

/// [`SharedCache::not_honoured`], under the caller's lock of its waited-out counts.
fn not_honoured_in(waited_out: &mut WaitedOut, owner: &str) -> bool {
    ignored(waited_out, ANY, ANY_WAITED_OUT) || ignored(waited_out, owner, WAITED_OUT)
}

/// Whether `who`'s claims are ignored: waited out `limit` times in a row within `CLAIM_TTL`.
/// Ignored long enough, it is waited for afresh (`limit` more waits before it is again).
fn ignored(waited_out: &mut WaitedOut, who: &str, limit: u32) -> bool {
    match waited_out.get(who) {
        Some(&(n, _)) if n < limit => false,
        Some(&(_, last)) if last.elapsed() < CLAIM_TTL => true,
        Some(_) => {
            waited_out.remove(who);
            false
        }
        None => false,
    }
}
