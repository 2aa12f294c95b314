//! The one retry policy: exponential backoff with ±20% jitter (like the
//! Java client), used by every retry loop of the engine (batch retries,
//! metadata refreshes, reconnects, InitProducerId, transactional calls).

use std::time::Duration;

/// Delay `base * 2^(attempt-1)`, capped at `max` (never below `base`),
/// with ±20% jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max }
    }

    pub const fn from_millis(base_ms: u64, max_ms: u64) -> Backoff {
        Backoff::new(Duration::from_millis(base_ms), Duration::from_millis(max_ms))
    }

    /// The delay before retry number `attempt` (1 = the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, fastrand::f64())
    }

    /// The delay before retry number `attempt`, its jitter given by `unit`
    /// in [0, 1] (0: -20%, 1: +20%): retries that share a draw go together.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.base.as_millis() as u64;
        let max = self.max.as_millis() as u64;
        let exp = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(20)).min(max.max(base));
        let jitter = exp / 5;
        let v = exp - jitter + ((2 * jitter) as f64 * unit.clamp(0.0, 1.0)) as u64;
        Duration::from_millis(v)
    }

    /// A counter of attempts for one retry loop.
    pub fn start(self) -> Retries {
        Retries { policy: self, attempt: 0 }
    }
}

/// One retry loop's progress: each `next_delay` is longer, up to the cap.
#[derive(Clone, Copy, Debug)]
pub struct Retries {
    policy: Backoff,
    attempt: u32,
}

impl Retries {
    /// Counts a failed attempt and returns how long to wait before the next.
    pub fn next_delay(&mut self) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        self.policy.delay(self.attempt)
    }

    /// Failed attempts since the start or the last `reset`.
    pub fn failures(&self) -> u32 {
        self.attempt
    }

    /// After a success: the next failure waits `base` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Counts a failed attempt and sleeps for its delay.
    pub async fn sleep(&mut self) {
        tokio::time::sleep(self.next_delay()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_and_stays_capped() {
        let b = Backoff::from_millis(100, 1000);
        for _ in 0..200 {
            let d1 = b.delay(1).as_millis();
            assert!((80..=120).contains(&d1), "first retry {d1}");
            let d3 = b.delay(3).as_millis();
            assert!((320..=480).contains(&d3), "third retry {d3}");
            let d30 = b.delay(30).as_millis();
            assert!((800..=1200).contains(&d30), "capped {d30}");
        }
    }

    #[test]
    fn one_jitter_draw_gives_one_delay() {
        let b = Backoff::from_millis(100, 1000);
        assert_eq!(b.delay_with(1, 0.0), Duration::from_millis(80));
        assert_eq!(b.delay_with(1, 1.0), Duration::from_millis(120));
        assert_eq!(b.delay_with(2, 0.5), Duration::from_millis(200));
        assert_eq!(b.delay_with(3, 0.37), b.delay_with(3, 0.37));
    }

    #[test]
    fn max_below_base_means_base() {
        let b = Backoff::from_millis(100, 10);
        assert!((80..=120).contains(&b.delay(5).as_millis()));
        assert_eq!(Backoff::from_millis(0, 0).delay(7), Duration::ZERO);
    }

    #[test]
    fn retries_count_and_reset() {
        let mut r = Backoff::from_millis(10, 1000).start();
        assert_eq!(r.failures(), 0);
        let a = r.next_delay();
        let _ = r.next_delay();
        let c = r.next_delay();
        assert_eq!(r.failures(), 3);
        assert!(c > a, "{c:?} > {a:?}");
        r.reset();
        assert_eq!(r.failures(), 0);
        assert!(r.next_delay().as_millis() <= 12);
    }
}
