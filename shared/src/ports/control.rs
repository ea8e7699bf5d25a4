//! A sender's control over a notification after its request: cancelling or changing it before
//! it goes out, retracting or correcting it after. One conditional write decides between the
//! cancel and every chunk's start (`DeliveryLedger::start_chunk`), so that the people a cancel
//! answers as reached are exactly the people who get it; a retraction closes the same gate, and
//! each chunk's part of it is done in the background (`RecallLedger`).

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

/// What a retraction came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetractOutcome {
    /// Retracted, by this request (`now`) or an earlier one (a repeat answers the same):
    /// `reached` people are in the chunks that started, whose entries are being removed.
    Retracted {
        retraction: Cancellation,
        reached: u64,
        now: bool,
    },
    /// Not out yet (pending: cancel it instead), or still going out (cancel it first).
    NotOut(Status),
    /// Stored by an earlier version, whose chunks kept no list of their people
    /// (`Notification::keeps_recipients`): nobody can say whose centers hold it.
    Unrecorded(Status),
    Missing,
}

/// What a correction came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorrectOutcome {
    Corrected,
    /// Not out yet (pending: change it instead), or its fan-out is still cutting chunks.
    NotOut(Status),
    /// Retracted: there is nothing left to correct.
    Retracted,
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
    /// Retracts notification `id` once it went out (delivered, failed, or cancelled: the chunks
    /// that started are fixed): one conditional write records who and when, closes its gate (no
    /// chunk starts after it) and registers it unfinished, its first look
    /// `RETRACTION_RECHECK_SECONDS` later (`RecallLedger::unfinished`; the request queues its
    /// plan); then the people reached are read. Its chunks' entries are
    /// removed by `RecallLedger`'s steps.
    async fn retract(&self, id: NotificationId, by: &str, now: DateTime<Utc>) -> StoreResult<RetractOutcome>;
    /// Replaces the content of a notification that went out (its fan-out finished: delivering,
    /// delivered, failed, cancelled) and not retracted with `changed`'s, with its `corrected`,
    /// modification and revision, if it is still at revision `read` (one conditional write).
    async fn correct(&self, changed: &Notification, read: u64) -> StoreResult<CorrectOutcome>;
}

/// How long after a retraction, and after each of its plans, it is looked at again while a chunk
/// is not done (`RecallLedger::unfinished`): longer than a step can live (20 hand-overs of up to a
/// minute, 5 receives of the delivery queue's 6-minute visibility timeout, 5 more from its
/// dead-letter queue: about 75 minutes), so a step still missing then was lost and is planned
/// again, never run twice at once by the look.
pub const RETRACTION_RECHECK_SECONDS: i64 = 90 * 60;

/// A recall's steps, one chunk at a time: which chunks started, whose entries they wrote, each
/// chunk closed for good before its entries are removed, and each chunk's removal recorded.
#[async_trait]
pub trait RecallLedger: Send + Sync {
    /// The chunks of `id` that ever started (each has a lease), in order.
    async fn started_chunks(&self, id: NotificationId) -> StoreResult<Vec<u32>>;
    /// The chunks that kept a list of their people (`DeliveryLedger::keep_recipients`), in
    /// order: kept as long as their entries, when the chunks' leases may be gone.
    async fn kept_chunks(&self, id: NotificationId) -> StoreResult<Vec<u32>>;
    /// The chunks whose retraction is recorded (`record_retracted`), in order.
    async fn retracted_chunks(&self, id: NotificationId) -> StoreResult<Vec<u32>>;
    /// Whether chunk `chunk`'s retraction is recorded.
    async fn chunk_retracted(&self, id: NotificationId, chunk: u32) -> StoreResult<bool>;
    /// Retractions not known to be finished whose next look is due at `now`, at most `limit`
    /// (`SendControl::retract` registers each, due at once).
    async fn unfinished(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<NotificationId>>;
    /// The next look at retraction `id` (`Some`), or none: it is finished (`None`).
    async fn recheck(&self, id: NotificationId, at: Option<DateTime<Utc>>) -> StoreResult<()>;
    /// The people every attempt at `chunk` kept (`DeliveryLedger::keep_recipients`), each once.
    async fn recipients(&self, id: NotificationId, chunk: u32) -> StoreResult<Vec<UserId>>;
    /// Closes a started chunk for good: no attempt starts it again, so none writes an entry of
    /// it after this (`start_chunk` answers `None`). `false`: an attempt holds it now (its lease
    /// runs) and may be writing: try again after it. A recorded chunk is closed whoever holds
    /// it: its entries were all written before its record, and no attempt writes one after.
    async fn close_chunk(&self, id: NotificationId, chunk: u32, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Records that chunk `chunk`'s `people` entries were removed (the first record stays).
    async fn record_retracted(
        &self,
        id: NotificationId,
        chunk: u32,
        people: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
}
