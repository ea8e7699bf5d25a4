//! The deliver function's composition: its [`Deps`] from the bag of every port. Only this
//! module, `main.rs` and tests see the bag; the local runner, the benchmarks and the suites call
//! [`handle`] with the queues of the local runner ([`local_queues`]).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::runtime::Ports;
use shared::service::deadline::Deadline;

use super::{Deps, Sources};

impl<'a> Deps<'a> {
    pub fn new(ports: &'a Ports, sources: Sources, max_receives: u32) -> Deps<'a> {
        Deps {
            deliver: ports.deliver(),
            recall: ports.recall_steps(),
            email_jobs: ports.email_jobs(),
            feedback: ports.feedback(),
            hooks: ports.hook_deliveries(),
            clock: &*ports.clock,
            sources,
            max_receives,
        }
    }
}

/// The queues of the local runner and the suites: `local::workers` hands out their records
/// with these ARNs.
pub mod local_queues {
    pub const CHUNKS: &str = "arn:aws:sqs:local:000000000000:notifications-local-delivery";
    pub const EMAIL_JOBS: &str = "arn:aws:sqs:local:000000000000:notifications-local-email";
    pub const EMAIL_EVENTS: &str = "arn:aws:sqs:local:000000000000:notifications-local-email-events";
    pub const DEAD_CHUNKS: &str = "arn:aws:sqs:local:000000000000:notifications-local-delivery-dlq";
    pub const DEAD_EMAIL_JOBS: &str = "arn:aws:sqs:local:000000000000:notifications-local-email-dlq";
    pub const HOOKS: &str = "arn:aws:sqs:local:000000000000:notifications-local-webhooks";

    pub fn sources() -> super::Sources {
        let name = |arn: &str| super::super::name_of(arn).to_string();
        super::Sources {
            chunks: name(CHUNKS),
            email_jobs: name(EMAIL_JOBS),
            email_events: name(EMAIL_EVENTS),
            dead_chunks: name(DEAD_CHUNKS),
            dead_email_jobs: name(DEAD_EMAIL_JOBS),
            hooks: name(HOOKS),
        }
    }
}

/// A batch of the local runner's queues, with no deadline.
pub async fn handle(ports: &Ports, max_receives: u32, event: SqsEvent) -> SqsBatchResponse {
    handle_within(ports, max_receives, event, Deadline::NONE).await
}

/// A batch of the local runner's queues, within `deadline`.
pub async fn handle_within(
    ports: &Ports,
    max_receives: u32,
    event: SqsEvent,
    deadline: Deadline,
) -> SqsBatchResponse {
    super::handle_batch(&Deps::new(ports, local_queues::sources(), max_receives), event, deadline).await
}
