//! One SQS batch runner for every queue consumer (fan-out jobs, delivery chunks, email jobs, SES
//! events; the local runner's workers hand their messages to the same handlers): an
//! invocation's records, at most `concurrency` at a time, each through the consumer's
//! per-record step, answered as a partial batch response (`ReportBatchItemFailures`). A record
//! whose step says [`Step::Again`] is reported failed, so SQS hands out that record again (and
//! moves it to its dead-letter queue after the queue's `maxReceiveCount`); the others are
//! deleted. A failing record never fails its batch.
//!
//! Each record's step runs inside the trace its message was sent in (`crate::trace`: the
//! `trace` message attribute), so every line it logs carries its notification and request.
//!
//! The mechanics live here; what a record means, its deadline and when to give it up are the
//! step's (the service's rules).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::StreamExt;

/// One record as a step sees it (taken out of the event: nothing is copied).
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub message_id: String,
    pub body: String,
    /// SQS's `ApproximateReceiveCount`: this receive included (1 when absent).
    pub receives: u32,
    /// The queue it came from (`eventSourceARN`; empty when absent).
    pub source: String,
    /// This receive of the message, and no other: a digest of SQS's receipt handle (32 hex
    /// characters; the handle itself may be 1,024, too long to store on every lease item), or
    /// `message_id#receives` when absent. SQS may hand one message to two consumers at once,
    /// under one message id; a lease held by a receive keeps those copies apart.
    pub attempt: String,
}

/// A receipt handle's digest: 128 bits, as unique as the handles are.
fn receive_id(receipt_handle: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(receipt_handle.as_bytes())[..16])
}

/// What a record's step came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Handled: the message is deleted.
    Done,
    /// Not handled: reported failed, so SQS hands it out again.
    Again,
}

/// Runs `step` over the records of `event`, `concurrency` at a time (at least one), and answers
/// with the records whose step said `Again`.
pub async fn run<F, Fut>(event: SqsEvent, concurrency: usize, step: F) -> SqsBatchResponse
where
    F: Fn(Record) -> Fut,
    Fut: std::future::Future<Output = Step>,
{
    let outcomes: Vec<(String, Step)> = futures::stream::iter(event.records.into_iter().map(|r| {
        let receives = r.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1);
        let trace = r
            .message_attributes
            .get(crate::trace::ATTRIBUTE)
            .and_then(|a| a.string_value.as_deref())
            .and_then(crate::trace::Trace::decode)
            .unwrap_or_default();
        let message_id = r.message_id.unwrap_or_default();
        let record = Record {
            attempt: r
                .receipt_handle
                .map(|h| receive_id(&h))
                .unwrap_or_else(|| format!("{message_id}#{receives}")),
            receives,
            message_id,
            body: r.body.unwrap_or_default(),
            source: r.event_source_arn.unwrap_or_default(),
        };
        let id = record.message_id.clone();
        let fut = crate::trace::within(trace, step(record));
        async move { (id, fut.await) }
    }))
    .buffer_unordered(concurrency.max(1))
    .collect()
    .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcomes
        .into_iter()
        .filter(|(_, step)| *step == Step::Again)
        .map(|(id, _)| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    // Records to be received again: the `RecordsFailed` alarm (a failed record is no Lambda
    // error: the invocation answers).
    crate::metrics::count(
        crate::metrics::Metric::RecordsFailed,
        response.batch_item_failures.len() as u64,
        &[],
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsMessage;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn event(bodies: &[&str]) -> SqsEvent {
        let mut event = SqsEvent::default();
        for (i, body) in bodies.iter().enumerate() {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{i}"));
            m.body = Some(body.to_string());
            m.attributes.insert("ApproximateReceiveCount".into(), (i + 1).to_string());
            event.records.push(m);
        }
        event
    }

    #[tokio::test]
    async fn reports_exactly_the_records_to_try_again() {
        let e = event(&["ok", "again", "ok", "again"]);
        let response =
            run(e, 2, |r| async move { if r.body == "again" { Step::Again } else { Step::Done } }).await;
        let mut failed: Vec<String> =
            response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        failed.sort();
        assert_eq!(failed, vec!["m1", "m3"]);
    }

    #[tokio::test]
    async fn passes_receives_and_keeps_to_its_concurrency() {
        let e = event(&["a", "b", "c", "d", "e"]);
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (running, most) = (&running, &most);
        let seen = std::sync::Mutex::new(Vec::new());
        let seen = &seen;
        let response = run(e, 2, |r| async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            seen.lock().unwrap().push((r.body.clone(), r.receives));
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            Step::Done
        })
        .await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(most.load(Ordering::SeqCst), 2, "two at a time, never more");
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen[0], ("a".to_string(), 1));
        assert_eq!(seen[4], ("e".to_string(), 5));
    }

    #[tokio::test]
    async fn each_record_runs_in_the_trace_it_was_sent_in() {
        use aws_lambda_events::event::sqs::SqsMessageAttribute;
        let sent = crate::trace::Trace::notification(uuid::Uuid::from_u128(5), Some("r-5"));
        let mut e = event(&["traced", "untraced", "garbled"]);
        let attribute = |value: &str| {
            let mut a = SqsMessageAttribute::default();
            a.string_value = Some(value.into());
            a.data_type = Some("String".into());
            a
        };
        e.records[0].message_attributes.insert(crate::trace::ATTRIBUTE.into(), attribute(&sent.encode()));
        e.records[2].message_attributes.insert(crate::trace::ATTRIBUTE.into(), attribute("{not a trace"));
        let seen = std::sync::Mutex::new(Vec::new());
        let seen = &seen;
        run(e, 3, |r| async move {
            seen.lock().unwrap().push((r.body, crate::trace::current()));
            Step::Done
        })
        .await;
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(seen[0], ("garbled".into(), Default::default()), "an unreadable trace is none");
        assert_eq!(seen[1], ("traced".into(), sent));
        assert_eq!(seen[2], ("untraced".into(), Default::default()));
    }

    #[tokio::test]
    async fn each_receive_is_its_own_attempt() {
        // Two copies of one message handed out at once: one id, two receipt handles.
        let mut e = event(&["a", "a"]);
        e.records[1].message_id = Some("m0".into());
        e.records[0].receipt_handle = Some("receipt-1".into());
        e.records[1].receipt_handle = Some("receipt-2".into());
        let mut without = event(&["b"]);
        e.records.append(&mut without.records);
        let seen = std::sync::Mutex::new(Vec::new());
        let seen = &seen;
        run(e, 1, |r| async move {
            seen.lock().unwrap().push((r.message_id, r.attempt));
            Step::Done
        })
        .await;
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["m0", "m0", "m0"]);
        let (a, b) = (&seen[0].1, &seen[1].1);
        assert_ne!(a, b, "two receives of one message, two attempts");
        assert!(a.len() <= 32 && b.len() <= 32, "short enough for every lease item: {a} {b}");
        assert_eq!(seen[2].1, "m0#1", "no receipt handle: the message and its receive count");
    }
}
