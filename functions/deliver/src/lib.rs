//! Handler of the deliver function: DeliveryQueue, EmailQueue, EmailEventsQueue and WebhookQueue
//! batches with ReportBatchItemFailures, and the dead-letter queues of the first two. Which of the six a
//! record is comes from the queue it came from (its `eventSourceARN`, against [`Sources`]); a
//! DeliveryQueue record is a chunk or a recall's step by its body (`service::delivery_queue`). A dead letter is settled in place (`settle_dead_letter`,
//! `emails::give_up`): its notification given up, or what it left counted failed. A failing record never fails
//! its batch; when a chunk is given up (its last allowed receive) is the service's rule
//! (`service::deliver::attempt`). An email job never fails its notification: a job SES throttles
//! continues in a later round, and one that fails every receive moves to its DLQ. SES's bounce
//! and complaint events (EmailEventsQueue) stop mailing their addresses and are counted on their
//! notification. The WebhookQueue's records are tries of tenants' status events
//! (`service::webhooks::deliver`): a receiver's failure is the event's outcome (tried again
//! later), never the record's.
//!
//! The handler takes [`Deps`], the ports it uses; `wiring.rs` builds them from the bag.

mod wiring;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::batch::{self, Record, Step};
use shared::ports::Clock;
use shared::service::deadline::Deadline;
use shared::service::deliver::{self, Attempt, DeliverDeps};
use shared::service::delivery_queue;
use shared::service::emails::{self, EmailJobDeps, EmailOutcome, FeedbackDeps};
use shared::service::recall::StepDeps;
use shared::service::webhooks::{self, HookDeliveryDeps};

pub use wiring::{handle, handle_within, local_queues};

/// Records of a batch processed at once.
const CONCURRENCY: usize = 4;

/// A chunk starts only this long before the invocation's deadline (the rule and its figure are
/// the service's).
pub use shared::service::deliver::MARGIN;

/// What the deliver function uses.
pub struct Deps<'a> {
    pub deliver: DeliverDeps<'a>,
    /// A recall's steps, which the DeliveryQueue carries beside chunks.
    pub recall: StepDeps<'a>,
    pub email_jobs: EmailJobDeps<'a>,
    pub feedback: FeedbackDeps<'a>,
    /// Tries of tenants' status events (the WebhookQueue).
    pub hooks: HookDeliveryDeps<'a>,
    pub clock: &'a dyn Clock,
    /// Which queue is which.
    pub sources: Sources,
    /// Receives of a message before its queue moves it to the DLQ (the redrive policy).
    pub max_receives: u32,
}

/// The six queues deliver consumes, by name (an ARN's last part, a URL's last segment: a
/// queue's name is unique within its account and region, where the function's event source
/// mappings are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    pub chunks: String,
    pub email_jobs: String,
    pub email_events: String,
    pub dead_chunks: String,
    pub dead_email_jobs: String,
    pub hooks: String,
}

/// What a record of deliver's six queues carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A delivery chunk (DeliveryQueue).
    Chunk,
    /// An email job (EmailQueue).
    EmailJob,
    /// A record SES published through SNS (EmailEventsQueue).
    SesEvent,
    /// A delivery chunk or push job the DeliveryQueue gave up on (its dead-letter queue).
    DeadChunk,
    /// An email job the EmailQueue gave up on (its dead-letter queue).
    DeadEmailJob,
    /// A try of a status event (WebhookQueue).
    Hook,
}

impl Kind {
    /// The `Queue` dimension of the `DeadLetters` metric, for a dead-letter queue's records.
    pub fn dead_letter_queue(self) -> Option<&'static str> {
        match self {
            Kind::DeadChunk => Some("delivery"),
            Kind::DeadEmailJob => Some("email"),
            Kind::Chunk | Kind::EmailJob | Kind::SesEvent | Kind::Hook => None,
        }
    }
}

impl Sources {
    /// From the deployment's configuration: `DELIVERY_QUEUE_URL`, `EMAIL_QUEUE_URL`,
    /// `EMAIL_EVENTS_QUEUE_ARN` and the two dead-letter queues' ARNs (the last three are
    /// deliver's alone; the absence of one stops the init).
    pub fn from_config(config: &shared::Config) -> Result<Sources, shared::config::ConfigError> {
        use shared::config::{Config, ConfigError};
        let own = |value: &Option<String>, var: &'static str| value.clone().ok_or(ConfigError::Missing(var));
        let events = own(&config.email_events_queue_arn, Config::EMAIL_EVENTS_QUEUE_ARN)?;
        let dead_chunks =
            own(&config.delivery_dead_letter_queue_arn, Config::DELIVERY_DEAD_LETTER_QUEUE_ARN)?;
        let dead_email_jobs = own(&config.email_dead_letter_queue_arn, Config::EMAIL_DEAD_LETTER_QUEUE_ARN)?;
        let name = |var: &'static str, value: &str| match name_of(value) {
            "" => Err(ConfigError::Invalid { var, reason: format!("{value:?} names no queue") }),
            name => Ok(name.to_string()),
        };
        Ok(Sources {
            chunks: name(Config::DELIVERY_QUEUE_URL, &config.delivery_queue_url)?,
            email_jobs: name(Config::EMAIL_QUEUE_URL, &config.email_queue_url)?,
            email_events: name(Config::EMAIL_EVENTS_QUEUE_ARN, &events)?,
            dead_chunks: name(Config::DELIVERY_DEAD_LETTER_QUEUE_ARN, &dead_chunks)?,
            dead_email_jobs: name(Config::EMAIL_DEAD_LETTER_QUEUE_ARN, &dead_email_jobs)?,
            hooks: name(Config::WEBHOOK_QUEUE_URL, &config.webhook_queue_url)?,
        })
    }

    /// The queue a record came from, by its `eventSourceARN`; `None` for any other queue.
    pub fn kind_of(&self, source_arn: &str) -> Option<Kind> {
        let name = name_of(source_arn);
        if name.is_empty() || !source_arn.starts_with("arn:") {
            None
        } else if name == self.chunks {
            Some(Kind::Chunk)
        } else if name == self.email_jobs {
            Some(Kind::EmailJob)
        } else if name == self.email_events {
            Some(Kind::SesEvent)
        } else if name == self.dead_chunks {
            Some(Kind::DeadChunk)
        } else if name == self.dead_email_jobs {
            Some(Kind::DeadEmailJob)
        } else if name == self.hooks {
            Some(Kind::Hook)
        } else {
            None
        }
    }
}

/// A queue's name from its URL (`https://sqs.{region}.amazonaws.com/{account}/{name}`) or ARN
/// (`arn:aws:sqs:{region}:{account}:{name}`).
fn name_of(url_or_arn: &str) -> &str {
    let tail = url_or_arn.rsplit('/').next().unwrap_or_default();
    tail.rsplit(':').next().unwrap_or_default()
}

/// As Lambda invokes it: records not started `MARGIN` before `deadline` are reported
/// as failures untouched (SQS redelivers them whole), and one at its last allowed receive is
/// given up now, while there is time, rather than dropped to the DLQ by the timeout.
pub async fn handle_batch(deps: &Deps<'_>, event: SqsEvent, deadline: Deadline) -> SqsBatchResponse {
    batch::run(event, CONCURRENCY, |record| process(deps, record, deadline)).await
}

async fn process(deps: &Deps<'_>, record: Record, deadline: Deadline) -> Step {
    let (message_id, receives, body) = (record.message_id.as_str(), record.receives, record.body.as_str());
    let attempt = record.attempt.as_str();
    let kind = deps.sources.kind_of(&record.source);
    // Each receive from a dead-letter queue is counted (the `DeadLetters` alarm): deliver settles
    // them, so the queue's own depth shows them only for moments.
    if let Some(queue) = kind.and_then(Kind::dead_letter_queue) {
        shared::metrics::count(shared::metrics::Metric::DeadLetters, 1, &[queue]);
    }
    match kind {
        Some(Kind::EmailJob) => {
            step(emails::attempt(&deps.email_jobs, (message_id, attempt), body, receives, deadline).await)
        }
        Some(Kind::SesEvent) => process_email_event(deps, message_id, receives, body).await,
        Some(Kind::DeadChunk) => {
            let settled = delivery_queue::settle_dead_letter(
                (&deps.deliver, &deps.recall),
                (message_id, attempt),
                body,
                receives,
                deps.max_receives,
            );
            step(settled.await)
        }
        Some(Kind::DeadEmailJob) => settle_dead_email_job(deps, (message_id, attempt), body, receives).await,
        Some(Kind::Hook) => match Box::pin(webhooks::deliver(&deps.hooks, body, deadline)).await {
            Ok(outcome) => {
                tracing::info!(message_id, ?outcome, "status event tried");
                Step::Done
            }
            Err(shared::error::DeliverError::Permanent(why)) => {
                tracing::error!(message_id, error = %why, "unreadable status event try dropped");
                Step::Done
            }
            Err(e) => {
                tracing::warn!(message_id, receives, error = %e, "status event try not recorded; it comes back");
                Step::Again
            }
        },
        Some(Kind::Chunk) => step(
            delivery_queue::attempt(
                (&deps.deliver, &deps.recall),
                (message_id, attempt),
                body,
                receives,
                deps.max_receives,
                deadline,
            )
            .await,
        ),
        None => {
            // A mapping this function was not built for: left to that queue's redrive policy.
            tracing::error!(message_id, source = %record.source, "record from a queue deliver does not consume");
            Step::Again
        }
    }
}

/// What the batch does with a record the delivery service answered for.
fn step(attempt: Attempt) -> Step {
    match attempt {
        Attempt::Done => Step::Done,
        Attempt::Again => Step::Again,
    }
}

/// An email job the EmailQueue gave up on: what it did not send counts failed, once. One that
/// cannot be read is logged and dropped (nothing in it names what it was for).
async fn settle_dead_email_job(
    deps: &Deps<'_>,
    (message_id, attempt): (&str, &str),
    body: &str,
    receives: u32,
) -> Step {
    let job = match emails::parse_job(body) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(message_id, error = %e, "unreadable dead letter dropped");
            return Step::Done;
        }
    };
    let notification = job.notification_id;
    match emails::give_up(&deps.email_jobs, &job, attempt).await {
        Ok(EmailOutcome::Busy) => Step::Again,
        Ok(outcome) => {
            tracing::warn!(message_id, %notification, chunk = job.chunk, part = job.email_part, ?outcome, "dead-lettered email job settled");
            Step::Done
        }
        Err(e) => {
            tracing::error!(message_id, %notification, chunk = job.chunk, part = job.email_part, error = %e, "dead-lettered email job not settled");
            step(deliver::dead_letter_again(&e, receives, deps.max_receives))
        }
    }
}

/// A bounce or complaint SES published (EmailEventsQueue, through SNS). One that cannot be
/// read is logged and dropped: redelivering it would not make it readable.
async fn process_email_event(deps: &Deps<'_>, message_id: &str, receives: u32, body: &str) -> Step {
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
    // In the trace of the email's notification and request (its tags).
    let trace =
        shared::trace::Trace { request: feedback.request.clone(), notification: feedback.notification };
    shared::trace::within(trace, async {
        match emails::record_feedback(&deps.feedback, &feedback).await {
            Ok(counted) => {
                // Addresses are personal data: not logged.
                tracing::info!(
                    message_id,
                    kind = feedback.kind.as_str(),
                    addresses = feedback.addresses.len(),
                    counted,
                    "email feedback recorded"
                );
                Step::Done
            }
            Err(e) => {
                tracing::error!(message_id, receives, error = %e, "email feedback not recorded");
                Step::Again
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests;
