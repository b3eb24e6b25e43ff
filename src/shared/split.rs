//! How a run of blocks is shared between the tier and the Hub when both could serve it.
//!
//! A tier slower than the Hub must not make a read slower than the Hub alone. Cutting a slow
//! lookup short (`SLOW_FACTOR` in `mod.rs`) bounds the loss; splitting removes it: the run's
//! first part goes to the tier, its tail to the Hub at the same time, in proportion to their
//! measured rates per run part, so both parts end together and the run takes
//! `B / (tier + hub)` instead of `B / hub`, while the tier still saves the Hub its share.
//! A tier not clearly slower than the Hub (`SPLIT_BELOW`) serves whole runs: splitting then
//! would only cost Hub bytes.
//!
//! The rates are per run part (the time one fetch task waits for its bytes), measured under
//! the current load on both sides, and move with every sample: if the Hub slows down when it
//! takes shares (a saturated node), its rate falls and its share with it.

/// The tier serves whole runs unless its rate is below this fraction of the Hub's: the
/// estimates are noisy (a moving average per run part, on a loaded node), a split always costs
/// Hub bytes, and near parity it gains little even in theory, nothing when the tier and the
/// Hub share the bottleneck (on the 2-CPU benchmark machine, where Garage and the emulator
/// share the CPUs, splits at 0.87x made later nodes no faster, 1.3x the Hub bytes).
pub const SPLIT_BELOW: f64 = 0.75;

/// What a run of `blocks` blocks should do, given the tier's and the Hub's rates per run part
/// (bytes/s; 0 = not measured). `min_hub` is the fewest blocks a Hub share may have (one that
/// measures the Hub's rate). Returns how many of the first blocks go to the tier (the rest to
/// the Hub), or None: no split (the tier first, the Hub for what it misses, as usual).
pub fn tier_share(blocks: u64, tier: f64, hub: f64, min_hub: u64) -> Option<u64> {
    if blocks < 2 || tier <= 0.0 || hub <= 0.0 || tier >= SPLIT_BELOW * hub {
        return None;
    }
    let share = (blocks as f64 * tier / (tier + hub)).round() as u64;
    // The tier keeps at least one block, so its rate keeps being measured and a tier that
    // recovers gets its share back; the Hub's share is worth a request.
    let share = share.clamp(1, blocks - 1);
    (blocks - share >= min_hub.max(1)).then_some(share)
}

/// The run that probes the Hub's rate when it is not known yet (a node reading everything
/// from the tier never fetched from the Hub): its second half goes to the Hub, at least
/// `min_hub` blocks, and the tier keeps a part. Half a run, not a token MiB: the Hub's rate is
/// compared with the tier's over run parts of a few MiB, and a short request measures mostly
/// the Hub's latency (1 MiB measured 12-14 MiB/s where 8 MiB runs make 30-40 on the shaped
/// benchmark emulator). None: the run is too short.
pub fn probe_share(blocks: u64, min_hub: u64) -> Option<u64> {
    let hub = (blocks / 2).max(min_hub.max(1));
    (blocks > hub).then(|| blocks - hub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tier_as_fast_as_the_hub_serves_whole_runs() {
        assert_eq!(tier_share(64, 100.0, 100.0, 8), None);
        assert_eq!(tier_share(64, 95.0, 100.0, 8), None);
        assert_eq!(tier_share(64, 80.0, 100.0, 8), None);
        assert_eq!(tier_share(64, 300.0, 100.0, 8), None);
    }

    #[test]
    fn nothing_is_split_before_both_rates_are_known() {
        assert_eq!(tier_share(64, 0.0, 100.0, 8), None);
        assert_eq!(tier_share(64, 10.0, 0.0, 8), None);
        assert_eq!(tier_share(1, 10.0, 100.0, 1), None);
    }

    #[test]
    fn a_slower_tier_gets_its_share_so_both_parts_end_together() {
        // Tier 25, Hub 75: the tier takes a quarter; 16 blocks at 25 take as long as 48 at 75.
        assert_eq!(tier_share(64, 25.0, 75.0, 8), Some(16));
        assert_eq!(tier_share(64, 50.0, 100.0, 8), Some(21));
    }

    #[test]
    fn a_very_slow_tier_keeps_one_block_and_a_short_hub_share_is_not_worth_a_request() {
        assert_eq!(tier_share(64, 0.001, 100.0, 8), Some(1));
        // 8 blocks at a rate a third of the Hub's: 2 would go to the tier, 6 to the Hub < 8.
        assert_eq!(tier_share(8, 1.0, 3.0, 8), None);
        assert_eq!(tier_share(8, 1.0, 3.0, 1), Some(2));
    }

    #[test]
    fn a_probe_takes_half_a_run_and_leaves_the_tier_a_part() {
        assert_eq!(probe_share(64, 8), Some(32));
        assert_eq!(probe_share(12, 8), Some(4));
        assert_eq!(probe_share(8, 8), None);
    }
}
