//! A circuit breaker: after a few failures in a row the shared tier is skipped for a while, so a
//! dead or slow store costs each read nothing instead of a timeout. After the pause one request
//! probes it; success closes the breaker, failure opens it again.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    pause: Duration,
}

#[derive(Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    /// A probe is out after a pause: everyone else keeps skipping until it answers.
    probing: bool,
}

impl Breaker {
    /// Opens after `threshold` failures in a row, for `pause`.
    pub fn new(threshold: u32, pause: Duration) -> Breaker {
        Breaker {
            state: Mutex::default(),
            threshold: threshold.max(1),
            pause,
        }
    }

    /// May a request go to the store now?
    pub fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        let mut s = self.state.lock();
        match s.open_until {
            None => true,
            Some(until) if now < until || s.probing => false,
            Some(_) => {
                s.probing = true;
                true
            }
        }
    }

    pub fn success(&self) {
        *self.state.lock() = State::default();
    }

    pub fn failure(&self) {
        self.failure_at(Instant::now());
    }

    fn failure_at(&self, now: Instant) {
        let mut s = self.state.lock();
        s.failures = s.failures.saturating_add(1);
        if s.probing || s.failures >= self.threshold {
            s.open_until = Some(now + self.pause);
            s.probing = false;
        }
    }

    /// True while requests are being skipped.
    pub fn is_open(&self) -> bool {
        self.state.lock().open_until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_probes_once_after_the_pause_and_closes_on_success() {
        let b = Breaker::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(b.allow_at(t0));
        b.failure_at(t0);
        b.failure_at(t0);
        assert!(b.allow_at(t0), "two failures do not open it");
        b.failure_at(t0);
        assert!(!b.allow_at(t0), "three do");
        assert!(!b.allow_at(t0 + Duration::from_secs(9)));
        let later = t0 + Duration::from_secs(11);
        assert!(b.allow_at(later), "one probe after the pause");
        assert!(!b.allow_at(later), "only one");
        b.failure_at(later);
        assert!(
            !b.allow_at(later + Duration::from_secs(5)),
            "a failed probe reopens it"
        );
        let again = later + Duration::from_secs(11);
        assert!(b.allow_at(again));
        b.success();
        assert!(b.allow_at(again) && b.allow_at(again) && !b.is_open());
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = Breaker::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        b.failure_at(t0);
        b.success();
        b.failure_at(t0);
        assert!(b.allow_at(t0));
    }
}
