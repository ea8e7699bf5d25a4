//! Handler of the fan-out function. Two triggers: the EventBridge Scheduler tick (every
//! minute: fan out everything due) and FanoutQueue messages (ad hoc sends: fan out now; and a
//! retraction's or a correction's plan: one step per chunk on the delivery queue).
//!
//! It takes [`Deps`], the ports it uses; `wiring.rs` builds them from the bag.

mod wiring;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::{Deserialize, Serialize};
use shared::batch::{self, Step};
use shared::model::FanoutJob;
use shared::ports::Clock;
use shared::service::deadline::Deadline;
use shared::service::fanout::{self, FanOutDeps};

pub use wiring::{handle, handle_within};

/// What the fan-out function uses.
pub struct Deps<'a> {
    pub fan_out: FanOutDeps<'a>,
    /// A recall's plan, which the FanoutQueue carries beside fan-out jobs.
    pub recall: shared::service::recall::PlanDeps<'a>,
    pub clock: &'a dyn Clock,
}

/// What invoked the function.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Trigger {
    Queue(SqsEvent),
    Schedule(EventBridgeEvent),
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Answer {
    Batch(SqsBatchResponse),
    Tick { due: usize, fanned_out: usize },
}

/// As Lambda invokes it: nothing new starts `fanout::MARGIN` before `deadline`; jobs not
/// started are reported as failures (SQS redelivers them), due notifications wait for the next
/// tick.
pub async fn handle_trigger(
    deps: &Deps<'_>,
    trigger: Trigger,
    deadline: Deadline,
) -> Result<Answer, shared::StoreError> {
    match trigger {
        Trigger::Schedule(_) => {
            let report = fanout::tick_within(&deps.fan_out, deadline).await;
            // Retractions whose plan was lost, or whose steps were: planned again, whatever the
            // tick's fan-outs came to. Never fails the tick (the next one looks again).
            match shared::service::recall::sweep(&deps.recall, deadline).await {
                Ok(0) => {}
                Ok(planned) => tracing::info!(planned, "retractions planned again"),
                Err(e) => tracing::warn!(error = %e, "retractions not swept; the next tick tries"),
            }
            let report = report?;
            if report.due > 0 {
                tracing::info!(due = report.due, fanned_out = report.fanned_out, "tick");
            } else {
                tracing::debug!("tick: nothing due");
            }
            Ok(Answer::Tick { due: report.due, fanned_out: report.fanned_out })
        }
        Trigger::Queue(event) => Ok(Answer::Batch(jobs(deps, event, deadline).await)),
    }
}

/// Fans out each job; a failed one is reported alone (ReportBatchItemFailures) and retried.
/// Fan-out jobs one at a time (each may fan out a large audience), through the one batch runner.
async fn jobs(deps: &Deps<'_>, event: SqsEvent, deadline: Deadline) -> SqsBatchResponse {
    let fan_out = &deps.fan_out;
    batch::run(event, 1, |record| async move {
        let message_id = record.message_id.as_str();
        if !deadline.allows(deps.clock.now(), fanout::MARGIN) {
            tracing::warn!(message_id, "too close to the deadline: fan-out job not started");
            return Step::Again;
        }
        let job: FanoutJob = match serde_json::from_str(&record.body) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(message_id, error = %e, "malformed fan-out job");
                return Step::Again;
            }
        };
        // A job of an earlier version carries no trace: it names its notification.
        shared::trace::about(job.notification_id, None);
        if let Some(recall) = job.recall {
            return match shared::service::recall::plan(&deps.recall, job.notification_id, recall).await {
                Ok(steps) => {
                    tracing::info!(notification = %job.notification_id, ?recall, steps, "recall planned");
                    Step::Done
                }
                Err(e) => {
                    tracing::warn!(notification = %job.notification_id, error = %e, "recall plan failed; will retry");
                    Step::Again
                }
            };
        }
        match fanout::fan_out_if_claimed(fan_out, job.notification_id).await {
            Ok(done) => {
                tracing::info!(notification = %job.notification_id, fanned_out = done, "fan-out job");
                Step::Done
            }
            Err(e) => {
                tracing::warn!(notification = %job.notification_id, error = %e, "fan-out job failed; will retry");
                Step::Again
            }
        }
    })
    .await
}

pub fn failure(message_id: String) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = message_id;
    f
}
