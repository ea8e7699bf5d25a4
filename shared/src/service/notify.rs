//! Notifications to named people (department notify, desktop assistant, in-app): stored like
//! any other, then delivered through the same fan-out and delivery path: queued, scheduled, or
//! synchronously in process.

use chrono::{DateTime, Utc};

use super::deadline::Deadline;
use super::fanout::{self, Sink};
use super::send::{enqueue_fanout, insert_once};
use crate::error::ApiError;
use crate::model::*;
use crate::ports::Ports;

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
    ports: &Ports,
    mut n: Notification,
    synchronously: bool,
    deadline: Deadline,
) -> Result<Delivery, ApiError> {
    n.schedule_id = ports.notifications.next_schedule_id().await?;
    let n = insert_once(ports, n).await?;
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
        enqueue_fanout(ports, n.id).await;
        return Ok(Delivery::Queued);
    }
    if !deadline.allows(ports.clock.now(), SYNC_MARGIN) {
        enqueue_fanout(ports, n.id).await;
        return Ok(Delivery::NotYet(
            "too close to this request's deadline to deliver before answering; it is delivered in the background"
                .into(),
        ));
    }
    match fanout::claim_and_fan_out(ports, n.id, Sink::Inline).await {
        Ok(true) => match ports.notifications.get(n.id).await? {
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
            // The claim's lease expires and the next tick resumes it: not lost, only late.
            tracing::warn!(notification = %n.id, error = %e, "synchronous delivery failed; left to the scheduler");
            Ok(Delivery::NotYet("delivery is temporarily unavailable; it will be retried".into()))
        }
    }
}
