//! The background half of the service, in process: the scheduler tick and the three queue
//! consumers. Queue messages are handed to the same handlers Lambda invokes, as SQS events;
//! failures reported by a handler are made visible again (and reach the DLQ after the
//! configured receives), successes are deleted.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use shared::ports::{Queue, ReceivedMessage};
use shared::runtime::Ports;

/// Runs the fan-out function as the scheduler would invoke it.
pub async fn tick(ports: &Ports) -> Result<fanout::Answer, shared::StoreError> {
    let mut event = EventBridgeEvent::default();
    event.detail_type = "Scheduled Event".into();
    event.source = "aws.scheduler".into();
    fanout::handle(ports, fanout::Trigger::Schedule(event)).await
}

/// The queue fan-out jobs come from, as the local runner names it.
pub const FANOUT_QUEUE_ARN: &str = "arn:aws:sqs:local:000000000000:notifications-local-fanout";
pub use deliver::local_queues::{
    CHUNKS as DELIVERY_QUEUE_ARN, DEAD_CHUNKS as DELIVERY_DEAD_LETTER_QUEUE_ARN,
    DEAD_EMAIL_JOBS as EMAIL_DEAD_LETTER_QUEUE_ARN, EMAIL_EVENTS as EMAIL_EVENTS_QUEUE_ARN,
    EMAIL_JOBS as EMAIL_QUEUE_ARN, HOOKS as WEBHOOK_QUEUE_ARN,
};

/// `messages` of the queue `source_arn` as an SQS event source hands them to a function.
pub fn sqs_event(source_arn: &str, messages: &[ReceivedMessage]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = Some(m.message_id.clone());
            record.receipt_handle = Some(m.receipt.clone());
            record.body = Some(m.body.clone());
            record.attributes.insert("ApproximateReceiveCount".into(), m.receive_count.to_string());
            if let Some(trace) = &m.trace {
                let mut attribute = aws_lambda_events::event::sqs::SqsMessageAttribute::default();
                attribute.string_value = Some(trace.clone());
                attribute.data_type = Some("String".into());
                record.message_attributes.insert(shared::trace::ATTRIBUTE.into(), attribute);
            }
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(source_arn.into());
            record
        })
        .collect();
    event
}

/// Acknowledges what succeeded and releases what failed.
pub async fn settle(
    queue: &dyn Queue,
    messages: &[ReceivedMessage],
    failed: &[String],
) -> Result<(), shared::StoreError> {
    for m in messages {
        if failed.contains(&m.message_id) {
            queue.nack(&m.receipt).await?;
        } else {
            queue.ack(&m.receipt).await?;
        }
    }
    Ok(())
}

/// One batch from the FanoutQueue through the fan-out handler. Returns messages handled.
pub async fn drain_fanout_once(ports: &Ports) -> Result<usize, shared::StoreError> {
    let messages = ports.fanout_queue.receive(10).await?;
    if messages.is_empty() {
        return Ok(0);
    }
    let failed = match fanout::handle(ports, fanout::Trigger::Queue(sqs_event(FANOUT_QUEUE_ARN, &messages)))
        .await?
    {
        fanout::Answer::Batch(b) => b.batch_item_failures.into_iter().map(|f| f.item_identifier).collect(),
        fanout::Answer::Tick { .. } => Vec::new(),
    };
    settle(ports.fanout_queue.as_ref(), &messages, &failed).await?;
    Ok(messages.len())
}

/// One batch from the DeliveryQueue through the deliver handler. Returns messages handled.
pub async fn drain_delivery_once(ports: &Ports, max_receives: u32) -> Result<usize, shared::StoreError> {
    deliver_from(ports, ports.delivery_queue.as_ref(), DELIVERY_QUEUE_ARN, 10, max_receives).await
}

/// One email job from the EmailQueue through the deliver handler (one per invocation, as the
/// template's event source gives them). Returns messages handled.
pub async fn drain_email_once(ports: &Ports, max_receives: u32) -> Result<usize, shared::StoreError> {
    deliver_from(ports, ports.email_queue.as_ref(), EMAIL_QUEUE_ARN, 1, max_receives).await
}

/// Tries of status events from the WebhookQueue through the deliver handler. Returns messages
/// handled.
pub async fn drain_webhooks_once(ports: &Ports, max_receives: u32) -> Result<usize, shared::StoreError> {
    deliver_from(ports, ports.webhook_queue.as_ref(), WEBHOOK_QUEUE_ARN, 10, max_receives).await
}

/// Up to `batch` messages of `queue` through the deliver handler, as one invocation.
async fn deliver_from(
    ports: &Ports,
    queue: &dyn Queue,
    source_arn: &str,
    batch: usize,
    max_receives: u32,
) -> Result<usize, shared::StoreError> {
    let messages = queue.receive(batch).await?;
    if messages.is_empty() {
        return Ok(0);
    }
    let response = deliver::handle(ports, max_receives, sqs_event(source_arn, &messages)).await;
    let failed: Vec<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
    settle(queue, &messages, &failed).await?;
    Ok(messages.len())
}

/// Drains the queues until none has a visible message (bounded, so a test cannot hang).
/// Messages delayed for later (an email job's next round) are left to a later call.
pub async fn run_until_idle(ports: &Ports, max_receives: u32) -> Result<usize, shared::StoreError> {
    let mut handled = 0;
    for _ in 0..10_000 {
        let n = drain_fanout_once(ports).await?
            + drain_delivery_once(ports, max_receives).await?
            + drain_email_once(ports, max_receives).await?
            + drain_webhooks_once(ports, max_receives).await?;
        if n == 0 {
            return Ok(handled);
        }
        handled += n;
    }
    Ok(handled)
}

/// The background loops of the local runner: a tick every `tick_every`, queues polled between.
pub async fn run_forever(ports: Ports, max_receives: u32, tick_every: std::time::Duration) {
    let mut ticker = tokio::time::interval(tick_every);
    let mut poll = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(e) = tick(&ports).await {
                    tracing::warn!(error = %e, "tick failed");
                }
            }
            _ = poll.tick() => {
                if let Err(e) = run_until_idle(&ports, max_receives).await {
                    tracing::warn!(error = %e, "queue worker failed");
                }
            }
        }
    }
}
