//! Intake: a notification is accepted. Every dialect's request ends here: the notification is
//! stored once under its id (a retried request whose first attempt stored it finds that one,
//! and nothing is sent twice), then queued for fan-out, left for its time (the scheduler tick
//! takes it), or delivered in this process before the answer (synchronous department notify).
//!
//! Invariant: nothing is queued or delivered before the notification is stored, and a queue
//! that is down never fails a stored notification (it stays due; the next tick takes it).

use chrono::{DateTime, Utc};

use super::deadline::Deadline;
use super::fanout::{self, FanOutDeps, Sink};
use crate::error::ApiError;
use crate::model::*;
use crate::ports::{Clock, NotificationIntake, NotificationLookup, Queue};

/// What storing a notification once and queueing its fan-out use.
pub struct StoreDeps<'a> {
    pub(crate) lookup: &'a dyn NotificationLookup,
    pub(crate) intake: &'a dyn NotificationIntake,
    pub(crate) fanout_queue: &'a dyn Queue,
    /// Whether its tenant has a webhook endpoint, and its `notification.accepted` event.
    pub(crate) hooks: super::webhooks::EmitDeps<'a>,
}

/// What accepting a notification uses: storing it, the clock, and fan-out for a synchronous
/// delivery.
pub struct AcceptDeps<'a> {
    pub(crate) store: StoreDeps<'a>,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) fanout: FanOutDeps<'a>,
}

/// Where a notification stands when the request returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Handed to fan-out; delivery follows in the background.
    Queued,
    /// Waiting for its time.
    Scheduled(DateTime<Utc>),
    /// Delivered before answering (synchronous).
    Delivered,
    /// A synchronous delivery did not complete; it is retried in the background.
    NotYet(String),
    /// It will not be delivered (its recipient is gone, say): the reason.
    Failed(String),
}

/// A synchronous delivery starts only this long before the request's deadline (the function
/// has 10 s; delivering one person in process takes milliseconds, its callback leaves the
/// request): closer than that, the request answers and delivery goes on in the background.
pub const SYNC_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Stores `n` (its schedule id is assigned here) and starts its delivery; a synchronous one
/// only when `deadline` leaves `SYNC_MARGIN`.
pub async fn accept(
    ports: &AcceptDeps<'_>,
    mut n: Notification,
    synchronously: bool,
    deadline: Deadline,
) -> Result<Delivery, ApiError> {
    n.schedule_id = ports.store.intake.next_schedule_id().await?;
    let n = insert_once(&ports.store, n).await?;
    // What follows is about the stored notification, in its trace.
    let trace = crate::trace::Trace::notification(n.id, n.origin_request.as_deref());
    crate::trace::within(trace, Box::pin(start(ports, n, synchronously, deadline))).await
}

/// Starts the delivery of the stored `n`.
async fn start(
    ports: &AcceptDeps<'_>,
    n: Notification,
    synchronously: bool,
    deadline: Deadline,
) -> Result<Delivery, ApiError> {
    let now = ports.clock.now();
    if n.due_at > now {
        tracing::info!(notification = %n.id, due = %n.due_at, "notification scheduled");
        return Ok(Delivery::Scheduled(n.due_at));
    }
    if n.status != Status::Pending {
        // A retry of a request whose notification is already on its way.
        return Ok(if n.status == Status::Delivered { Delivery::Delivered } else { Delivery::Queued });
    }
    if !synchronously {
        enqueue_fanout(&ports.store, n.id).await;
        return Ok(Delivery::Queued);
    }
    if !deadline.allows(ports.clock.now(), SYNC_MARGIN) {
        enqueue_fanout(&ports.store, n.id).await;
        return Ok(Delivery::NotYet(
            "too close to this request's deadline to deliver before answering; it is delivered in the background"
                .into(),
        ));
    }
    match fanout::claim_and_fan_out(&ports.fanout, n.id, Sink::Inline).await {
        Ok(true) => match ports.store.lookup.get(n.id).await? {
            Some(done) if done.status == Status::Delivered => Ok(Delivery::Delivered),
            Some(failed) if failed.status == Status::Failed => {
                Ok(Delivery::Failed(failed.failure.unwrap_or_else(|| "delivery failed".into())))
            }
            Some(other) => {
                Ok(Delivery::NotYet(other.failure.unwrap_or_else(|| format!("status {:?}", other.status))))
            }
            None => Ok(Delivery::NotYet("notification vanished".into())),
        },
        Ok(false) => Ok(Delivery::Queued),
        Err(e) => {
            // The claim's lease expires and the next tick resumes it: not lost, only late. A
            // fan-out job too: if the failure came after the fan-out finished (its completion),
            // the tick no longer sees it, and the job completes it.
            tracing::warn!(notification = %n.id, error = %e, "synchronous delivery failed; left to the scheduler");
            enqueue_fanout(&ports.store, n.id).await;
            Ok(Delivery::NotYet("delivery is temporarily unavailable; it will be retried".into()))
        }
    }
}

/// Asks fan-out to start now. If the queue is unavailable the notification is still stored as
/// due, and the next scheduler tick fans it out: so this never fails the request.
pub async fn enqueue_fanout(ports: &StoreDeps<'_>, id: NotificationId) {
    if let Err(e) = fanout::queue_job(ports.fanout_queue, id).await {
        tracing::warn!(notification = %id, error = %e, "fan-out job not enqueued; the next tick will pick it up");
    }
}

/// Stores a notification; if one with its id exists (a retried idempotent request whose first
/// attempt stored it but lost the answer), that one is the result.
pub async fn insert_once(
    ports: &StoreDeps<'_>,
    mut notification: Notification,
) -> Result<Notification, ApiError> {
    // The request that makes it, which every later line about it names (`crate::trace`).
    if notification.origin_request.is_none() {
        notification.origin_request = crate::trace::current().request;
    }
    crate::trace::about(notification.id, notification.origin_request.as_deref());
    // Status events are owed only while the tenant has an endpoint (a look per notification
    // accepted, none per chunk of one whose tenant has none).
    // A failed look owes them anyway: their settle looks again, and finds none or sends them.
    notification.hooks = match ports.hooks.hooks.endpoint(notification.company_id).await {
        Ok(endpoint) => endpoint.is_some(),
        Err(e) => {
            tracing::warn!(notification = %notification.id, error = %e, "webhook endpoint not read; its events are owed");
            true
        }
    };
    let stored = insert_stored(ports, notification).await?;
    super::webhooks::settle(&ports.hooks, &stored).await;
    Ok(stored)
}

async fn insert_stored(ports: &StoreDeps<'_>, notification: Notification) -> Result<Notification, ApiError> {
    match ports.intake.insert(&notification).await {
        Ok(()) => {
            crate::metrics::count(
                crate::metrics::Metric::NotificationsAccepted,
                1,
                &[notification.origin.name()],
            );
            Ok(notification)
        }
        Err(crate::error::StoreError::Conflict(why)) => match ports.lookup.get(notification.id).await? {
            Some(existing) => {
                // A retried request: the first one made it.
                crate::trace::about(existing.id, existing.origin_request.as_deref());
                tracing::info!(notification = %existing.id, "retried request: already stored");
                Ok(existing)
            }
            None => Err(crate::error::StoreError::Conflict(why).into()),
        },
        Err(e) => Err(e.into()),
    }
}
