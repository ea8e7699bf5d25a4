//! An invocation's deadline, and how close to it a function still starts work.
//!
//! Lambda stops a function at its timeout wherever it is. A function that reads its deadline
//! starts no new unit of work (a delivery chunk, a fan-out) a safe margin before it: what it
//! did not start is reported back (batch item failures, or left due for the next tick) and is
//! redelivered whole, instead of being cut off half-way. Outside Lambda there is no deadline.

use chrono::{DateTime, Duration, Utc};

/// How long an attempt holds the piece of work it does (a chunk it writes entries for, an email
/// job it sends): at least the deliver function's timeout (60 s in template.yaml, so a holder is
/// dead when its lease runs out) and a margin for clocks, and less than the delivery and email
/// queues' visibility timeout (360 s: a message that comes back finds its last attempt's lease
/// run out). `tests/tests/parity.rs` holds the template to both.
pub const WORK_LEASE: std::time::Duration = std::time::Duration::from_secs(75);

/// Hands a piece of work that cannot start before the invocation's deadline to a new message of
/// its `queue` (visible at once, to another invocation), so that waiting for time never uses up
/// one of its receives. `false` when the hand-over failed (the receive then counts, as any
/// failed one does).
pub async fn hand_over(queue: &dyn crate::ports::Queue, body: &str) -> bool {
    match queue.send_later(body, std::time::Duration::ZERO).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "work not handed over to a new message");
            false
        }
    }
}

/// When a lease taken at `now` runs out.
pub fn lease_until(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::from_std(WORK_LEASE).unwrap_or(Duration::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deadline(Option<DateTime<Utc>>);

impl Deadline {
    /// No deadline (the local runner, tests).
    pub const NONE: Deadline = Deadline(None);

    pub fn at(when: DateTime<Utc>) -> Self {
        Deadline(Some(when))
    }

    /// From Lambda's `Lambda-Runtime-Deadline-Ms` (milliseconds since the epoch); 0, what a
    /// context built outside Lambda carries, is no deadline.
    pub fn from_epoch_ms(ms: u64) -> Self {
        match ms {
            0 => Deadline::NONE,
            ms => Deadline(DateTime::from_timestamp_millis(ms as i64)),
        }
    }

    /// How long work may run from `now` and still end `margin` before the deadline (zero when
    /// that moment has passed); `None` without a deadline.
    pub fn time_left(&self, now: DateTime<Utc>, margin: std::time::Duration) -> Option<std::time::Duration> {
        let margin = Duration::from_std(margin).unwrap_or(Duration::MAX);
        self.0.map(|deadline| (deadline - margin - now).to_std().unwrap_or_default())
    }

    /// Runs `work` for at most `time_left(now, margin)`: `None` when it was cut off there.
    pub async fn bound<T>(
        &self,
        now: DateTime<Utc>,
        margin: std::time::Duration,
        work: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        match self.time_left(now, margin) {
            None => Some(work.await),
            Some(left) => tokio::time::timeout(left, work).await.ok(),
        }
    }

    /// Whether work that may take up to `margin` should still start at `now`.
    pub fn allows(&self, now: DateTime<Utc>, margin: std::time::Duration) -> bool {
        let margin = Duration::from_std(margin).unwrap_or(Duration::MAX);
        self.0.is_none_or(|deadline| now + margin < deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_starts_only_a_margin_before_the_deadline() {
        let t0: DateTime<Utc> = "2026-11-22T09:00:00Z".parse().unwrap();
        let margin = std::time::Duration::from_secs(20);
        let d = Deadline::at(t0 + Duration::seconds(60));
        assert!(d.allows(t0, margin));
        assert!(d.allows(t0 + Duration::seconds(39), margin));
        assert!(!d.allows(t0 + Duration::seconds(40), margin));
        assert!(Deadline::NONE.allows(t0 + Duration::days(400), margin));
        assert_eq!(Deadline::from_epoch_ms(t0.timestamp_millis() as u64), Deadline::at(t0));
        assert_eq!(Deadline::from_epoch_ms(0), Deadline::NONE, "a context made outside Lambda");
        assert_eq!(d.time_left(t0, margin), Some(std::time::Duration::from_secs(40)));
        assert_eq!(
            d.time_left(t0 + Duration::seconds(50), margin),
            Some(std::time::Duration::ZERO),
            "passed"
        );
        assert_eq!(Deadline::NONE.time_left(t0, margin), None);
    }
}
