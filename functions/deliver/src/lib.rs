//! Handler of the deliver function: DeliveryQueue and EmailQueue batches with
//! ReportBatchItemFailures. A failing record never fails its batch; when a chunk is given up
//! (its last allowed receive) is the service's rule (`service::deliver::attempt`). An email job never fails its notification: a job SES
//! throttles continues in a later round, and one that fails every receive moves to its DLQ.
//! SES's bounce and complaint events (EmailEventsQueue) stop mailing their addresses and are
//! counted on their notification.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::batch::{self, Record, Step};
use shared::runtime::Ports;
use shared::service::deadline::Deadline;
use shared::service::deliver::{self, Attempt};
use shared::service::emails::{self, EmailOutcome};

/// Records of a batch processed at once.
const CONCURRENCY: usize = 4;

/// A chunk starts only this long before the invocation's deadline (the rule and its figure are
/// the service's).
pub use shared::service::deliver::MARGIN;

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
    batch::run(event, CONCURRENCY, |record| process(ports, max_receives, record, deadline)).await
}

async fn process(ports: &Ports, max_receives: u32, record: Record, deadline: Deadline) -> Step {
    let (message_id, receives, body) = (record.message_id.as_str(), record.receives, record.body.as_str());
    match Kind::of(body) {
        Kind::EmailJob => process_email_job(ports, message_id, receives, body, deadline).await,
        Kind::SesEvent => process_email_event(ports, message_id, receives, body).await,
        Kind::Chunk => {
            match deliver::attempt(&ports.deliver(), message_id, body, receives, max_receives, deadline).await
            {
                Attempt::Done => Step::Done,
                Attempt::Again => Step::Again,
            }
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
    message_id: &str,
    receives: u32,
    body: &str,
    deadline: Deadline,
) -> Step {
    if !deadline.allows(ports.clock.now(), shared::service::channels::EMAIL_MARGIN) {
        tracing::warn!(message_id, receives, "too close to the deadline: email job not started");
        return Step::Again;
    }
    let job = match emails::parse_job(body) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(message_id, receives, error = %e, "email job failed");
            return Step::Again;
        }
    };
    let notification = job.notification_id;
    match emails::send_job(&ports.email_jobs(), &job, deadline).await {
        Ok(EmailOutcome::Recorded { sent, gave_up }) => {
            tracing::info!(message_id, %notification, chunk = job.chunk, part = job.email_part, sent, gave_up, "email job recorded");
            Step::Done
        }
        Ok(outcome) => {
            tracing::info!(message_id, %notification, chunk = job.chunk, part = job.email_part, ?outcome, "email job");
            Step::Done
        }
        Err(e) => {
            tracing::error!(message_id, %notification, receives, error = %e, "email job failed");
            Step::Again
        }
    }
}

/// A bounce or complaint SES published (EmailEventsQueue, through SNS). One that cannot be
/// read is logged and dropped: redelivering it would not make it readable.
async fn process_email_event(ports: &Ports, message_id: &str, receives: u32, body: &str) -> Step {
    let feedback = match shared::adapters::ses::parse_event(body) {
        Ok(Some(feedback)) => feedback,
        Ok(None) => {
            tracing::info!(
                message_id,
                "SES event that needs nothing (not a permanent bounce or a complaint)"
            );
            return Step::Done;
        }
        Err(why) => {
            tracing::error!(message_id, error = %why, "unreadable SES event dropped");
            return Step::Done;
        }
    };
    match emails::record_feedback(&ports.feedback(), &feedback).await {
        Ok(counted) => {
            // Addresses are personal data: not logged.
            tracing::info!(message_id, kind = feedback.kind.as_str(), notification = ?feedback.notification, addresses = feedback.addresses.len(), counted, "email feedback recorded");
            Step::Done
        }
        Err(e) => {
            tracing::error!(message_id, receives, error = %e, "email feedback not recorded");
            Step::Again
        }
    }
}

#[cfg(test)]
mod tests;
