//! SQS adapter: SendMessageBatch of at most 10 messages and 256 KiB per request, failed entries
//! retried with capped exponential backoff and jitter. Every message sent inside a trace carries
//! it as the `trace` message attribute (`crate::trace`: counted in the message's size, as SQS
//! counts attributes), and a receive reads it back.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, SendMessageBatchRequestEntry};

use super::dynamodb::classify;
use crate::backoff::Backoff;
use crate::error::{StoreError, StoreResult};
use crate::ports::{Queue, ReceivedMessage};

/// SQS limits a batch to 10 entries and 256 KiB in total.
const MAX_BATCH_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;

pub struct SqsQueue {
    client: Client,
    url: String,
    backoff: Backoff,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        SqsQueue { client, url: url.into(), backoff: Backoff::default() }
    }
}

/// The current trace as a message attribute, and its size as SQS counts it (its name, type and
/// value).
fn trace_attribute() -> StoreResult<Option<(MessageAttributeValue, usize)>> {
    let trace = crate::trace::current();
    if trace.is_empty() {
        return Ok(None);
    }
    let value = trace.encode();
    let size = crate::trace::ATTRIBUTE.len() + "String".len() + value.len();
    let attribute = MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| StoreError::Other(e.to_string()))?;
    Ok(Some((attribute, size)))
}

/// Splits bodies into batches within SQS's entry-count and size limits, each message's
/// attributes (`extra` bytes) counted with its body.
pub(crate) fn batches(bodies: &[String], extra: usize) -> Vec<&[String]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, body) in bodies.iter().enumerate() {
        let size = body.len() + extra;
        let full = i - start == MAX_BATCH_ENTRIES || (i > start && bytes + size > MAX_BATCH_BYTES);
        if full {
            out.push(&bodies[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < bodies.len() {
        out.push(&bodies[start..]);
    }
    out
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send_all(&self, bodies: &[String]) -> StoreResult<()> {
        let trace = trace_attribute()?;
        for batch in batches(bodies, trace.as_ref().map_or(0, |(_, size)| *size)) {
            let mut pending: Vec<(usize, &String)> = batch.iter().enumerate().collect();
            let mut attempt = 0;
            loop {
                let entries = pending
                    .iter()
                    .map(|(i, body)| {
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(body.as_str())
                            .set_message_attributes(trace.as_ref().map(|(attribute, _)| {
                                [(crate::trace::ATTRIBUTE.to_string(), attribute.clone())].into()
                            }))
                            .build()
                            .map_err(|e| StoreError::Other(e.to_string()))
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(classify)?;
                if let Some(f) = out.failed.iter().find(|f| f.sender_fault) {
                    return Err(StoreError::Other(format!(
                        "SQS rejected a message: {} {:?}",
                        f.code, f.message
                    )));
                }
                let failed: std::collections::HashSet<&str> =
                    out.failed.iter().map(|f| f.id.as_str()).collect();
                pending.retain(|(i, _)| failed.contains(i.to_string().as_str()));
                if pending.is_empty() {
                    break;
                }
                attempt += 1;
                if attempt >= self.backoff.max_attempts {
                    return Err(StoreError::Transient(format!(
                        "{} messages not accepted after {attempt} attempts",
                        pending.len()
                    )));
                }
                tokio::time::sleep(self.backoff.delay(attempt)).await;
            }
        }
        Ok(())
    }

    async fn send_later(&self, body: &str, delay: std::time::Duration) -> StoreResult<()> {
        let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .set_message_attributes(
                trace_attribute()?
                    .map(|(attribute, _)| [(crate::trace::ATTRIBUTE.to_string(), attribute)].into()),
            )
            .delay_seconds(seconds.min(crate::adapters::memory::MAX_DELAY_SECONDS) as i32)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn receive(&self, max: usize) -> StoreResult<Vec<ReceivedMessage>> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names(crate::trace::ATTRIBUTE)
            .send()
            .await
            .map_err(classify)?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| ReceivedMessage {
                receive_count: m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1),
                message_id: m.message_id.unwrap_or_default(),
                receipt: m.receipt_handle.unwrap_or_default(),
                trace: m
                    .message_attributes
                    .as_ref()
                    .and_then(|a| a.get(crate::trace::ATTRIBUTE))
                    .and_then(|v| v.string_value.clone()),
                body: m.body.unwrap_or_default(),
            })
            .collect())
    }

    async fn ack(&self, receipt: &str) -> StoreResult<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn nack(&self, receipt: &str) -> StoreResult<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_count_and_size() {
        let small: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        let b = batches(&small, 0);
        assert_eq!(b.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![10, 10, 5]);
        let big: Vec<String> = (0..5).map(|_| "x".repeat(100 * 1024)).collect();
        let b = batches(&big, 0);
        assert!(b.iter().all(|b| b.iter().map(String::len).sum::<usize>() <= MAX_BATCH_BYTES));
        assert_eq!(b.iter().map(|b| b.len()).sum::<usize>(), 5);
        assert!(batches(&[], 0).is_empty());
        // Attributes count: two bodies that fit alone do not fit with theirs.
        let half: Vec<String> = (0..2).map(|_| "x".repeat(MAX_BATCH_BYTES / 2)).collect();
        assert_eq!(batches(&half, 0).len(), 1);
        assert_eq!(batches(&half, 100).len(), 2);
    }
}
