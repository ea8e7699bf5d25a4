//! Delivery of one chunk: one inbox entry per recipient (deterministic keys, so a redelivered
//! chunk writes nothing new; the content is stored once, by the fan-out), the chunk's pushes (marked as they go, so a redelivered chunk
//! sends nothing twice), then the chunk's outcomes are counted on the notification exactly
//! once, and its emails are handed to the email queue (`emails`), where SES's rate and
//! throttling cannot hold up or fail the in-app delivery.

use chrono::Duration;

use super::{callback, channels, emails};
use crate::error::StoreError;
use crate::model::*;
use crate::ports::ChunkRecord;
use crate::ports::Ports;

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// Will not succeed on retry (malformed message, notification gone).
    #[error("{0}")]
    Permanent(String),
    /// May succeed on retry (throttling, timeouts).
    #[error(transparent)]
    Transient(#[from] StoreError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Items written and counted.
    Written(u64),
    /// An earlier delivery of this chunk already did everything.
    AlreadyDone,
    /// The notification failed meanwhile: nothing to do.
    Skipped,
}

/// What every recipient of a notification sees, stored once. Times come from the notification,
/// not the clock, so that writing it again writes the same.
pub fn inbox_content(n: &Notification) -> InboxContent {
    InboxContent {
        notification_id: n.id,
        origin: n.origin,
        title: n.content.title.clone(),
        body: n.content.body.clone(),
        url: n.content.url.clone(),
        override_content: n.content.override_content.clone(),
        icon: n.content.icon,
        toast: n.content.toast,
        priority: n.content.priority,
        actions: n.content.actions.clone(),
        data: n.content.data.clone(),
        source: n.content.source.clone(),
        created_at: n.due_at,
        expires_at: expires_at(n),
    }
}

/// When a notification leaves its recipients' centers.
fn expires_at(n: &Notification) -> chrono::DateTime<chrono::Utc> {
    let ttl = Duration::try_seconds(n.ttl_seconds.min(i64::MAX as u64) as i64).unwrap_or(Duration::MAX);
    n.due_at.checked_add_signed(ttl).unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// A recipient's entry, delivered at `at`: no content, so one write unit whatever it says.
pub fn inbox_entry(n: &Notification, user: UserId, at: chrono::DateTime<chrono::Utc>) -> InboxEntry {
    InboxEntry {
        user_id: user,
        notification_id: n.id,
        priority: n.content.priority,
        created_at: n.due_at,
        expires_at: expires_at(n),
        delivered_at: at,
        marks: Marks::default(),
    }
}

/// Parses a delivery-queue message.
pub fn parse_chunk(body: &str) -> Result<DeliveryChunk, DeliverError> {
    serde_json::from_str(body)
        .map_err(|e| DeliverError::Permanent(format!("malformed delivery message: {e}")))
}

/// Delivers a chunk and, when that finished the notification, sends its callback.
pub async fn deliver(ports: &Ports, chunk: &DeliveryChunk) -> Result<Delivered, DeliverError> {
    let (outcome, has_callback) = deliver_chunk(ports, chunk).await?;
    // Only notifications with a callback need another look; a redelivered chunk was not read,
    // and may still owe the callback a crash interrupted.
    if has_callback != Some(false)
        && let Some(n) = ports.notifications.get(chunk.notification_id).await?
        && n.callback.is_some()
    {
        callback::send_if_due(ports, &n).await;
    }
    Ok(outcome)
}

/// Writes a chunk's inbox items and records the chunk, exactly once.
pub async fn deliver_chunk_only(ports: &Ports, chunk: &DeliveryChunk) -> Result<Delivered, DeliverError> {
    deliver_chunk(ports, chunk).await.map(|(outcome, _)| outcome)
}

/// The delivery, and whether the notification has a callback (`None` when it was not read).
async fn deliver_chunk(
    ports: &Ports,
    chunk: &DeliveryChunk,
) -> Result<(Delivered, Option<bool>), DeliverError> {
    let id = chunk.notification_id;
    let context = ports.notifications.chunk_context(id, chunk.chunk).await?;
    if context.recorded {
        // Recorded, but the notification may still be Delivering with every chunk done (the
        // run that recorded the last chunk stopped before completing it): complete it now; the
        // callback it owes follows in `deliver`.
        let Some(n) = &context.notification else {
            return Ok((Delivered::AlreadyDone, None));
        };
        // Its email jobs may not have been queued either (a job queued twice counts once).
        emails::queue_jobs(ports, n, chunk).await?;
        if n.status == Status::Delivering && n.chunks_total.is_some_and(|total| n.chunks_done >= total) {
            ports.notifications.complete_if_done(id, ports.clock.now()).await?;
            return Ok((Delivered::AlreadyDone, Some(n.callback.is_some())));
        }
        return Ok((Delivered::AlreadyDone, None));
    }
    let n = context
        .notification
        .ok_or_else(|| DeliverError::Permanent(format!("notification {id} does not exist")))?;
    let has_callback = Some(n.callback.is_some());
    if n.status == Status::Failed {
        return Ok((Delivered::Skipped, has_callback));
    }
    // The content was stored by the fan-out, before this chunk was queued.
    let now = ports.clock.now();
    let entries: Vec<InboxEntry> = chunk.recipients.iter().map(|u| inbox_entry(&n, *u, now)).collect();
    ports.inbox.put_entries(&entries).await?;
    let mut tally = ChunkTally { delivered: entries.len() as u64, ..ChunkTally::default() };
    drop(entries);
    // Open centers hear of it now (a redelivered chunk tells them again: ids make it harmless).
    let event = InboxEvent::New { ids: vec![n.id] };
    ports.realtime.publish(n.company_id, &chunk.recipients, now.timestamp_millis(), &event).await;
    if n.email.is_some() {
        tally.emails_queued = chunk.recipients.len() as u64;
    }
    if n.pushes() {
        tally.pushes = channels::send_pushes(ports, &n, chunk, &context.marks).await?;
    }
    let outcome = match ports.notifications.record_chunk(id, chunk.chunk, &tally, ports.clock.now()).await? {
        ChunkRecord::Recorded => Delivered::Written(tally.delivered),
        ChunkRecord::AlreadyRecorded => Delivered::AlreadyDone,
    };
    emails::queue_jobs(ports, &n, chunk).await?;
    Ok((outcome, has_callback))
}
