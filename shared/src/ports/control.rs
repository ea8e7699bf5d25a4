//! A sender's control over a notification after its request: cancelling it. One conditional
//! write decides between the cancel and every chunk's start (`DeliveryLedger::start_chunk`), so
//! that the people a cancel answers as reached are exactly the people who get it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreResult;
use crate::model::*;

/// What a cancel came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Cancelled, by this request (`now`) or an earlier one (a repeated cancel answers the
    /// same). `reached`: the people in chunks that started before it, who have it or are being
    /// given it; no chunk starts after it, so nobody else ever will.
    Cancelled { cancellation: Cancellation, reached: u64, now: bool },
    /// Finished before the cancel (delivered or failed): nothing stopped.
    Finished(Status),
    /// Going out, stored by an earlier version whose chunks started without passing the gate
    /// (`Notification::gated`): nobody could say exactly whom it reached, so it is not stopped.
    Ungated(Status),
    /// No such notification.
    Missing,
}

/// What a change came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    Changed,
    /// Its fan-out started (or it finished, or was cancelled): too late to change.
    NotPending(Status),
    /// Changed by another request since it was read: read it again.
    Stale,
    Missing,
}

#[async_trait]
pub trait SendControl: Send + Sync {
    /// Replaces a pending notification's content, schedule and due time with `changed`'s (and
    /// its modification time, user and revision), if it is still pending and still at revision
    /// `read` (one conditional write).
    async fn change(&self, changed: &Notification, read: u64) -> StoreResult<ChangeOutcome>;
    /// Cancels notification `id` unless it finished: one conditional write moves it to
    /// `Cancelled` and closes its chunks' gate (a chunk not started by then never starts);
    /// then the gate's count, final from that moment, is read.
    async fn cancel(&self, id: NotificationId, by: &str, now: DateTime<Utc>) -> StoreResult<CancelOutcome>;
}
