//! Handler of the deliver function: DeliveryQueue and EmailQueue batches with
//! ReportBatchItemFailures. A failing record never fails its batch; on its last allowed receive
//! a failing chunk gives its notification up (marked Failed, its FAILURE callback sent; the
//! message then moves to the DLQ). An email job never fails its notification: a job SES
//! throttles continues in a later round, and one that fails every receive moves to its DLQ.
//! SES's bounce and complaint events (EmailEventsQueue) stop mailing their addresses and are
//! counted on their notification.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use shared::ports::Ports;
use shared::service::deadline::Deadline;
use shared::service::deliver::{self, Delivered};
use shared::service::emails::{self, EmailOutcome};

/// Records of a batch processed at once.
const CONCURRENCY: usize = 4;

/// A chunk this function still starts must be able to finish before the invocation's deadline
/// (the template gives deliver 60 s): one chunk's emails and pushes, 250 people at most with
/// email, take well under this.
pub const MARGIN: std::time::Duration = std::time::Duration::from_secs(20);

pub async fn handle(ports: &Ports, max_receives: u32, event: SqsEvent) -> SqsBatchResponse {
    handle_within(ports, max_receives, event, Deadline::NONE).await
}

/// As Lambda invokes it: records not started `MARGIN` before `deadline` are reported
/// as failures untouched (SQS redelivers them whole), and one at its last allowed receive is
/// given up now, while there is time, rather than dropped to the DLQ by the timeout.
pub async fn handle_within(
    ports: &Ports,
    max_receives: u32,
    event: SqsEvent,
    deadline: Deadline,
) -> SqsBatchResponse {
    use futures::StreamExt;
    let failures: Vec<Option<BatchItemFailure>> = futures::stream::iter(event.records)
        .map(|record| process(ports, max_receives, record, deadline))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures.into_iter().flatten().collect();
    response
}

async fn process(
    ports: &Ports,
    max_receives: u32,
    record: SqsMessage,
    deadline: Deadline,
) -> Option<BatchItemFailure> {
    let message_id = record.message_id.clone().unwrap_or_default();
    let receives: u32 =
        record.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1);
    let body = record.body.as_deref().unwrap_or_default();
    match Kind::of(body) {
        Kind::EmailJob => return process_email_job(ports, message_id, receives, body, deadline).await,
        Kind::SesEvent => return process_email_event(ports, message_id, receives, body).await,
        Kind::Chunk => {}
    }
    let mut notification = None;
    if !deadline.allows(ports.clock.now(), MARGIN) {
        tracing::warn!(message_id, receives, "too close to the deadline: chunk not started");
        if let (true, Ok(chunk)) = (receives >= max_receives, deliver::parse_chunk(body)) {
            let reason = format!("delivery not started in time at its last allowed receive ({receives})");
            give_up(ports, chunk.notification_id, &reason).await;
        }
        return Some(failure(message_id));
    }
    let result = match deliver::parse_chunk(body) {
        Ok(chunk) => {
            notification = Some(chunk.notification_id);
            deliver::deliver(ports, &chunk).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(Delivered::Written(n)) => {
            tracing::info!(message_id, notification = ?notification, items = n, "chunk delivered");
            None
        }
        Ok(outcome) => {
            tracing::info!(message_id, notification = ?notification, ?outcome, "nothing to deliver");
            None
        }
        Err(e) => {
            let last = receives >= max_receives;
            tracing::error!(message_id, notification = ?notification, receives, last_attempt = last, error = %e, "delivery failed");
            if let (true, Some(id)) = (last, notification) {
                give_up(ports, id, &format!("delivery failed after {receives} attempts: {e}")).await;
            }
            Some(failure(message_id))
        }
    }
}

/// What a record of deliver's three queues carries, told from its top-level keys in one pass
/// that skips every value (a chunk's body holds up to 2,000 recipients: it is parsed for real
/// once, by the path it takes).
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// An email job (EmailQueue): it names its `emailPart`.
    EmailJob,
    /// A record SES published through SNS (EmailEventsQueue): `eventType`, `notificationType` for
    /// an identity's feedback notifications, or SNS's envelope.
    SesEvent,
    /// A delivery chunk (DeliveryQueue), or anything unreadable, which that path refuses.
    Chunk,
}

impl Kind {
    fn of(body: &str) -> Kind {
        // Top-level keys only; a non-object or unreadable body is a chunk's to refuse.
        let Ok(keys) = serde_json::from_str::<std::collections::HashMap<String, Tag>>(body) else {
            return Kind::Chunk;
        };
        if keys.contains_key("emailPart") {
            Kind::EmailJob
        } else if keys.contains_key("eventType")
            || keys.contains_key("notificationType")
            || keys.get("Type").is_some_and(|t| t.0)
        {
            Kind::SesEvent
        } else {
            Kind::Chunk
        }
    }
}

/// A top-level value, skipped without being built: whether it is the string "Notification"
/// (SNS's envelope says `"Type": "Notification"`).
struct Tag(bool);

impl<'de> serde::Deserialize<'de> for Tag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct Skip;
        impl<'de> Visitor<'de> for Skip {
            type Value = Tag;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Tag, E> {
                Ok(Tag(v == "Notification"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Tag, E> {
                Ok(Tag(false))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Tag, E> {
                Ok(Tag(false))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Tag, E> {
                Ok(Tag(false))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Tag, E> {
                Ok(Tag(false))
            }
            fn visit_unit<E>(self) -> Result<Tag, E> {
                Ok(Tag(false))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tag, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Tag(false))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tag, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Tag(false))
            }
        }
        d.deserialize_any(Skip)
    }
}

/// One round of an email job (the queue gives each invocation one, see the template).
async fn process_email_job(
    ports: &Ports,
    message_id: String,
    receives: u32,
    body: &str,
    deadline: Deadline,
) -> Option<BatchItemFailure> {
    if !deadline.allows(ports.clock.now(), shared::service::channels::EMAIL_MARGIN) {
        tracing::warn!(message_id, receives, "too close to the deadline: email job not started");
        return Some(failure(message_id));
    }
    let job = match emails::parse_job(body) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(message_id, receives, error = %e, "email job failed");
            return Some(failure(message_id));
        }
    };
    let notification = job.notification_id;
    match emails::send_job(ports, &job, deadline).await {
        Ok(EmailOutcome::Recorded { sent, gave_up }) => {
            tracing::info!(message_id, %notification, chunk = job.chunk, part = job.email_part, sent, gave_up, "email job recorded");
            None
        }
        Ok(outcome) => {
            tracing::info!(message_id, %notification, chunk = job.chunk, part = job.email_part, ?outcome, "email job");
            None
        }
        Err(e) => {
            tracing::error!(message_id, %notification, receives, error = %e, "email job failed");
            Some(failure(message_id))
        }
    }
}

/// A bounce or complaint SES published (EmailEventsQueue, through SNS). One that cannot be
/// read is logged and dropped: redelivering it would not make it readable.
async fn process_email_event(
    ports: &Ports,
    message_id: String,
    receives: u32,
    body: &str,
) -> Option<BatchItemFailure> {
    let feedback = match shared::adapters::ses::parse_event(body) {
        Ok(Some(feedback)) => feedback,
        Ok(None) => {
            tracing::info!(
                message_id,
                "SES event that needs nothing (not a permanent bounce or a complaint)"
            );
            return None;
        }
        Err(why) => {
            tracing::error!(message_id, error = %why, "unreadable SES event dropped");
            return None;
        }
    };
    match emails::record_feedback(ports, &feedback).await {
        Ok(counted) => {
            // Addresses are personal data: not logged.
            tracing::info!(message_id, kind = feedback.kind.as_str(), notification = ?feedback.notification, addresses = feedback.addresses.len(), counted, "email feedback recorded");
            None
        }
        Err(e) => {
            tracing::error!(message_id, receives, error = %e, "email feedback not recorded");
            Some(failure(message_id))
        }
    }
}

/// Gives the notification up (Failed, its FAILURE callback); a failure to record it is logged.
async fn give_up(ports: &Ports, id: shared::model::NotificationId, reason: &str) {
    if let Err(mark) = shared::service::callback::give_up(ports, id, reason).await {
        tracing::error!(notification = %id, error = %mark, "could not record the failure");
    }
}

fn failure(message_id: String) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = message_id;
    f
}

#[cfg(test)]
mod tests;
