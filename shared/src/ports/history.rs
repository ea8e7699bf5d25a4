//! Sent history: the group-send API's record of what a company sent, read through an index.

use async_trait::async_trait;

use crate::error::StoreResult;
use crate::model::*;

/// Reading sent history.
#[async_trait]
pub trait SentHistory: Send + Sync {
    /// Sent history, newest first (by schedule id), through an index: the group-send API's record,
    /// so notifications sent through the other dialects are not in it. Each as history shows it:
    /// its email's parameters, not its body (`Notification::without_email_body`).
    async fn history(&self, scope: &HistoryScope, page: &PageRequest) -> StoreResult<Page<Notification>>;
    /// The notification a schedule id names, as `history` gives it (whatever its origin: the
    /// caller decides what it may see).
    async fn record(&self, schedule_id: u64) -> StoreResult<Option<Notification>>;
}

/// A notification's delivery log: the records its delivery made, once per chunk, email job and
/// SES event (no write of its own: what the ledger records is the log).
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    /// The log of notification `id`: chunks, then email jobs (each by number), then SES's
    /// bounces and complaints; at most `page.limit` entries after `page.after`.
    async fn log(&self, id: NotificationId, page: &PageRequest) -> StoreResult<Page<LogEntry>>;
}
