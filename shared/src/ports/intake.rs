//! A notification is accepted: stored once under its id (and, for group sends, a schedule id),
//! counted against its company's daily cap, and read back by id. Every dialect's intake and
//! every later step (fan-out, delivery, callbacks) reads it through [`NotificationLookup`].

use async_trait::async_trait;

use crate::error::StoreResult;
use crate::model::*;

/// Reading a stored notification, without its email's body and parameters
/// (`Notification::without_email_content`): an email job reads them with its context
/// (`EmailLedger::email_context`), sent history the parameters (`SentHistory`).
#[async_trait]
pub trait NotificationLookup: Send + Sync {
    async fn get(&self, id: NotificationId) -> StoreResult<Option<Notification>>;
    async fn get_by_schedule_id(&self, schedule_id: u64) -> StoreResult<Option<Notification>>;
}

/// Accepting a notification: ids, the daily cap, the one insert.
#[async_trait]
pub trait NotificationIntake: Send + Sync {
    /// The next group-send `notificationScheduleId`: atomic, positive, increasing.
    async fn next_schedule_id(&self) -> StoreResult<u64>;
    /// Stores a new notification; `Conflict` if its id or schedule id is taken.
    async fn insert(&self, notification: &Notification) -> StoreResult<()>;
    /// Adds `recipients` to a company's count for `day` (UTC, `YYYY-MM-DD`) if the total stays
    /// within `cap`: atomic, so concurrent sends cannot overshoot. `false` when over the cap.
    async fn consume_quota(
        &self,
        company: CompanyId,
        day: &str,
        recipients: u64,
        cap: u64,
    ) -> StoreResult<bool>;
}
