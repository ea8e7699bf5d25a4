//! Capped exponential backoff with full jitter: retries of partial batches, callbacks, contended
//! transactions and throttled email rounds.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_millis(25), cap: Duration::from_secs(2), max_attempts: 8 }
    }
}

impl Backoff {
    /// The ceiling of the wait before retry number `attempt` (1-based): base·2^(attempt-1), capped.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.saturating_sub(1).min(16)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random wait in [0, ceiling] ("full jitter": spreads retries of concurrent callers).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt).as_millis() as u64;
        Duration::from_millis(rand::random_range(0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_then_caps() {
        let b = Backoff { base: Duration::from_millis(10), cap: Duration::from_millis(100), max_attempts: 5 };
        assert_eq!(b.ceiling(1), Duration::from_millis(10));
        assert_eq!(b.ceiling(2), Duration::from_millis(20));
        assert_eq!(b.ceiling(4), Duration::from_millis(80));
        assert_eq!(b.ceiling(5), Duration::from_millis(100));
        assert_eq!(b.ceiling(60), Duration::from_millis(100));
        for attempt in 1..10 {
            assert!(b.delay(attempt) <= b.ceiling(attempt));
        }
    }
}
