//! A message queue with at-least-once delivery (SQS; the memory queue in the local runner).

use async_trait::async_trait;

use crate::error::StoreResult;

/// A message queue with at-least-once delivery. A message carries the trace it is sent in
/// (`crate::trace::current`), received as [`ReceivedMessage::trace`], as SQS carries a message
/// attribute: a queue that holds messages back (a wrapper) keeps each one's.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends all bodies (batched by the adapter: at most 10 per request on SQS).
    async fn send_all(&self, bodies: &[String]) -> StoreResult<()>;
    /// Sends one body that becomes visible `delay` from now, in whole seconds rounded up (SQS's
    /// DelaySeconds: at most 15 minutes, longer is capped).
    async fn send_later(&self, body: &str, delay: std::time::Duration) -> StoreResult<()>;
    /// Receives up to `max` messages, hiding them for the visibility timeout.
    async fn receive(&self, max: usize) -> StoreResult<Vec<ReceivedMessage>>;
    /// Deletes a processed message.
    async fn ack(&self, receipt: &str) -> StoreResult<()>;
    /// Makes a message visible again at once (a failed attempt).
    async fn nack(&self, receipt: &str) -> StoreResult<()>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
    /// The trace it was sent in (its `crate::trace::ATTRIBUTE` attribute, encoded), if any.
    pub trace: Option<String>,
}
