use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use shared::StoreError;
use shared::error::StoreResult;
use shared::model::*;
use shared::ports::{Center, InboxDelivery, ManualClock, SequentialIds};
use shared::runtime::MemoryPorts;
use uuid::Uuid;

use super::*;

/// An inbox whose every write fails with this transient error: `DownInbox(UNAVAILABLE)` a store
/// that is down (5xx, timeouts), `DownInbox(THROTTLED)` DynamoDB refusing for throughput, as the
/// SDK reports it once its own retries are spent.
struct DownInbox(&'static str);

const UNAVAILABLE: &str = "service error: InternalServerError: internal server error";
const THROTTLED: &str = "service error: ProvisionedThroughputExceededException: Throughput exceeds the \
                         current capacity for one or more partitions of your table or index";

#[async_trait]
impl InboxDelivery for DownInbox {
    async fn put_content(&self, _: &InboxContent) -> StoreResult<()> {
        Err(StoreError::Transient(self.0.into()))
    }
    async fn put_entries(&self, _: &[InboxEntry], _: &dyn Clock) -> StoreResult<()> {
        Err(StoreError::Transient(self.0.into()))
    }
    async fn put_new_entries(&self, _: &[InboxEntry], _: &dyn Clock) -> StoreResult<Vec<UserId>> {
        Err(StoreError::Transient(self.0.into()))
    }
    async fn remove_entries(&self, _: &[InboxEntry]) -> StoreResult<()> {
        Err(StoreError::Transient(self.0.into()))
    }
    async fn correct_content(&self, _: &InboxContent, _: u64) -> StoreResult<()> {
        Err(StoreError::Transient(self.0.into()))
    }
}

#[async_trait]
impl Center for DownInbox {
    async fn get(&self, _: UserId, _: NotificationId) -> StoreResult<Option<InboxItem>> {
        Ok(None)
    }
    async fn list(
        &self,
        _: UserId,
        _: &InboxQuery,
        _: DateTime<Utc>,
        _: &PageRequest,
    ) -> StoreResult<Page<InboxItem>> {
        Ok(Page::empty())
    }
    async fn count(&self, _: UserId, _: DateTime<Utc>, _: usize) -> StoreResult<InboxCounts> {
        Ok(InboxCounts::default())
    }
    async fn mark(&self, _: UserId, _: NotificationId, _: Mark, _: DateTime<Utc>) -> StoreResult<bool> {
        Ok(false)
    }
    async fn mark_all(&self, _: UserId, _: MarkAll, _: DateTime<Utc>) -> StoreResult<()> {
        Err(StoreError::Transient("throttled".into()))
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-22T09:00:00Z".parse().unwrap()
}

fn notification(id: Uuid) -> Notification {
    let mut n = Notification::new(
        id,
        1,
        3,
        Origin::GroupSend,
        BroadcastType::UN,
        Audience::Users { user_ids: vec![] },
        Content { title: "t".into(), body: "b".into(), ..Content::default() },
        "654".into(),
        now(),
    );
    n.status = Status::Delivering;
    n.recipients = 1;
    n.chunks_total = Some(1);
    n
}

fn record(id: &str, body: &str, receives: u32) -> SqsMessage {
    let mut r = SqsMessage::default();
    r.message_id = Some(id.into());
    r.body = Some(body.into());
    r.attributes.insert("ApproximateReceiveCount".into(), receives.to_string());
    r.event_source_arn = Some(local_queues::CHUNKS.into());
    r
}

fn chunk_body(id: Uuid) -> String {
    serde_json::to_string(&DeliveryChunk {
        notification_id: id,
        chunk: 0,
        recipients: vec![Uuid::new_v4()],
        devices: None,
        push_round: None,
        hand_overs: None,
        revived: None,
    })
    .unwrap()
}

#[tokio::test]
async fn failures_are_reported_per_record_and_the_last_one_marks_the_notification() {
    let memory = MemoryPorts::new(Arc::new(ManualClock::new(now())), Arc::new(SequentialIds::default()));
    let mut ports = memory.ports.clone();
    ports.inbox = Arc::new(DownInbox(UNAVAILABLE));
    let id = Uuid::new_v4();
    ports.notifications.insert(&notification(id)).await.unwrap();

    // Early attempts: reported as failures, notification untouched.
    let mut event = SqsEvent::default();
    event.records = vec![record("a", &chunk_body(id), 1), record("b", "{bad", 1)];
    let resp = handle(&ports, 5, event).await;
    let mut failed: Vec<_> = resp.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    failed.sort();
    assert_eq!(failed, vec!["a", "b"]);
    assert_eq!(ports.notifications.get(id).await.unwrap().unwrap().status, Status::Delivering);

    // The last allowed receive fails too: the notification records why.
    let mut event = SqsEvent::default();
    event.records = vec![record("a", &chunk_body(id), 5)];
    let resp = handle(&ports, 5, event).await;
    assert_eq!(resp.batch_item_failures.len(), 1);
    let n = ports.notifications.get(id).await.unwrap().unwrap();
    assert_eq!(n.status, Status::Failed);
    assert!(n.failure.unwrap().contains("after 5 attempts"));
}

#[tokio::test]
async fn a_good_record_beside_a_bad_one_is_delivered() {
    let memory = MemoryPorts::new(Arc::new(ManualClock::new(now())), Arc::new(SequentialIds::default()));
    let id = Uuid::new_v4();
    memory.ports.notifications.insert(&notification(id)).await.unwrap();
    let mut event = SqsEvent::default();
    event.records = vec![record("bad", "[]", 1), record("good", &chunk_body(id), 1)];
    let resp = handle(&memory.ports, 5, event).await;
    assert_eq!(
        resp.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect::<Vec<_>>(),
        vec!["bad"]
    );
    let n = memory.ports.notifications.get(id).await.unwrap().unwrap();
    assert_eq!((n.status, n.delivered), (Status::Delivered, 1));
    assert_eq!(memory.inbox.item_count(), 1);
}

/// A queue SQS will not take messages into.
struct RefusingQueue;

#[async_trait]
impl shared::ports::Queue for RefusingQueue {
    async fn send_all(&self, _: &[String]) -> StoreResult<()> {
        Err(StoreError::Transient("SQS refused".into()))
    }
    async fn send_later(&self, _: &str, _: std::time::Duration) -> StoreResult<()> {
        Err(StoreError::Transient("SQS refused".into()))
    }
    async fn receive(&self, _: usize) -> StoreResult<Vec<shared::ports::ReceivedMessage>> {
        Ok(Vec::new())
    }
    async fn ack(&self, _: &str) -> StoreResult<()> {
        Ok(())
    }
    async fn nack(&self, _: &str) -> StoreResult<()> {
        Ok(())
    }
}

/// Near the invocation's deadline nothing new starts: each chunk is handed to a new message and
/// its receive ends, so waiting for time never uses up a receive (nor gives up at the last);
/// only when the hand-over fails does the record come back failed, and at its last allowed
/// receive its notification is given up now.
#[tokio::test]
async fn near_the_deadline_chunks_are_handed_to_new_messages_and_never_given_up() {
    use shared::service::deadline::Deadline;
    let memory = MemoryPorts::new(Arc::new(ManualClock::new(now())), Arc::new(SequentialIds::default()));
    let (early, last) = (Uuid::new_v4(), Uuid::new_v4());
    for (schedule_id, id) in [(1, early), (2, last)] {
        let mut n = notification(id);
        n.schedule_id = schedule_id;
        memory.ports.notifications.insert(&n).await.unwrap();
    }
    let mut event = SqsEvent::default();
    event.records = vec![record("early", &chunk_body(early), 1), record("last", &chunk_body(last), 5)];
    // The figure docs/reliability.md promises, not the constant: 19 s before the deadline is too close.
    let too_close = Deadline::at(now() + chrono::Duration::seconds(19));
    let resp = handle_within(&memory.ports, 5, event.clone(), too_close).await;
    assert!(resp.batch_item_failures.is_empty(), "these receives end: {:?}", resp.batch_item_failures);
    assert_eq!(memory.inbox.item_count(), 0, "nothing delivered");
    for id in [early, last] {
        let n = memory.ports.notifications.get(id).await.unwrap().unwrap();
        assert_eq!(n.status, Status::Delivering, "not given up, even at the last receive");
    }
    // Each chunk waits in a new message, its receives all ahead of it, the hand-over counted.
    let handed = memory.ports.delivery_queue.receive(10).await.unwrap();
    let mut bodies: Vec<_> = handed
        .iter()
        .map(|m| {
            let chunk: DeliveryChunk = serde_json::from_str(&m.body).unwrap();
            (chunk.notification_id, chunk.hand_overs, m.receive_count)
        })
        .collect();
    bodies.sort();
    let mut expected = vec![(early, Some(1), 1), (last, Some(1), 1)];
    expected.sort();
    assert_eq!(bodies, expected);

    // When the hand-over fails, the receive counts: the chunk is reported failed, and at its
    // last receive its notification is given up while there is time.
    let mut refusing = memory.ports.clone();
    refusing.delivery_queue = Arc::new(RefusingQueue);
    let resp = handle_within(&refusing, 5, event.clone(), too_close).await;
    let mut failed: Vec<_> = resp.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    failed.sort();
    assert_eq!(failed, vec!["early", "last"]);
    assert_eq!(memory.ports.notifications.get(early).await.unwrap().unwrap().status, Status::Delivering);
    let given_up = memory.ports.notifications.get(last).await.unwrap().unwrap();
    assert_eq!(given_up.status, Status::Failed);
    assert!(given_up.failure.unwrap().contains("not started in time"));

    // With time to spare, the same records are delivered.
    let in_time = Deadline::at(now() + chrono::Duration::seconds(50));
    event.records.truncate(1);
    assert!(handle_within(&memory.ports, 5, event, in_time).await.batch_item_failures.is_empty());
    assert_eq!(memory.ports.notifications.get(early).await.unwrap().unwrap().status, Status::Delivered);
}

/// DynamoDB's refusals for throughput are waited out in new messages, never spending receives:
/// a chunk throttled at its last allowed receive is handed to a new message (visible after a
/// backoff, its hand-over counted in it) and its notification is not given up. Only once the
/// chunk has been handed over 20 times (docs/reliability.md) does a throttled receive count, and
/// at the last one its notification is given up.
#[tokio::test]
async fn a_throttled_chunk_waits_in_a_new_message_and_is_not_given_up() {
    let memory = MemoryPorts::new(Arc::new(ManualClock::new(now())), Arc::new(SequentialIds::default()));
    let mut ports = memory.ports.clone();
    ports.inbox = Arc::new(DownInbox(THROTTLED));
    let id = Uuid::new_v4();
    ports.notifications.insert(&notification(id)).await.unwrap();
    let mut event = SqsEvent::default();
    event.records = vec![record("last", &chunk_body(id), 5)];
    let resp = handle(&ports, 5, event).await;
    assert!(resp.batch_item_failures.is_empty(), "this receive ends: {:?}", resp.batch_item_failures);
    assert_eq!(ports.notifications.get(id).await.unwrap().unwrap().status, Status::Delivering);
    // The new message waits out the first backoff (at most a second), then carries the count.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let handed = memory.ports.delivery_queue.receive(10).await.unwrap();
    assert_eq!(handed.len(), 1);
    let chunk: DeliveryChunk = serde_json::from_str(&handed[0].body).unwrap();
    assert_eq!((chunk.notification_id, chunk.hand_overs, handed[0].receive_count), (id, Some(1), 1));

    // Handed over 20 times: the receive counts; at the last one the notification is given up.
    let used = DeliveryChunk { hand_overs: Some(20), ..chunk };
    let mut event = SqsEvent::default();
    event.records = vec![record("used", &serde_json::to_string(&used).unwrap(), 5)];
    let resp = handle(&ports, 5, event).await;
    assert_eq!(resp.batch_item_failures.len(), 1);
    let n = ports.notifications.get(id).await.unwrap().unwrap();
    assert_eq!(n.status, Status::Failed);
    assert!(n.failure.unwrap().contains("ProvisionedThroughputExceeded"));
    assert!(memory.ports.delivery_queue.receive(10).await.unwrap().is_empty(), "not handed over again");
}

/// A chunk recorded before it failed (its email jobs could not be queued) delivered everyone:
/// failing at its last allowed receive, it does not give its notification up.
#[tokio::test]
async fn a_chunk_recorded_before_it_failed_never_gives_its_notification_up() {
    let memory = MemoryPorts::new(Arc::new(ManualClock::new(now())), Arc::new(SequentialIds::default()));
    let mut ports = memory.ports.clone();
    ports.email_queue = Arc::new(RefusingQueue);
    let id = Uuid::new_v4();
    let mut n = notification(id);
    n.email = Some(EmailSpec {
        template: "Client.Generic.Notification.html".into(),
        subject: "s".into(),
        params: Vec::new(),
        body: None,
    });
    n.chunks_total = Some(2);
    ports.notifications.insert(&n).await.unwrap();
    let mut event = SqsEvent::default();
    event.records = vec![record("last", &chunk_body(id), 5)];
    let resp = handle(&ports, 5, event).await;
    assert_eq!(resp.batch_item_failures.len(), 1, "its email jobs were not queued");
    assert!(ports.notifications.chunk_recorded(id, 0).await.unwrap());
    let n = ports.notifications.get(id).await.unwrap().unwrap();
    assert_eq!((n.status, n.failure), (Status::Delivering, None), "not given up");
}

#[test]
fn records_are_told_apart_by_the_queue_they_came_from() {
    let config = shared::Config::from_lookup(|k| {
        Some(
            match k {
                "DELIVERY_QUEUE_URL" => {
                    "https://sqs.eu-west-1.amazonaws.com/123456789012/notifications-prod-delivery"
                }
                "EMAIL_QUEUE_URL" => {
                    "https://sqs.eu-west-1.amazonaws.com/123456789012/notifications-prod-email"
                }
                "EMAIL_EVENTS_QUEUE_ARN" => {
                    "arn:aws:sqs:eu-west-1:123456789012:notifications-prod-email-events"
                }
                "DELIVERY_DEAD_LETTER_QUEUE_ARN" => {
                    "arn:aws:sqs:eu-west-1:123456789012:notifications-prod-delivery-dlq"
                }
                "EMAIL_DEAD_LETTER_QUEUE_ARN" => {
                    "arn:aws:sqs:eu-west-1:123456789012:notifications-prod-email-dlq"
                }
                "WEBHOOK_QUEUE_URL" => {
                    "https://sqs.eu-west-1.amazonaws.com/123456789012/notifications-prod-webhooks"
                }
                "NOTIFICATIONS_TABLE" | "INBOX_TABLE" | "DIRECTORY_TABLE" | "FANOUT_QUEUE_URL" => "x",
                _ => return None,
            }
            .to_string(),
        )
    })
    .unwrap();
    let sources = Sources::from_config(&config).unwrap();
    let arn = |name: &str| format!("arn:aws:sqs:eu-west-1:123456789012:{name}");
    assert_eq!(sources.kind_of(&arn("notifications-prod-delivery")), Some(Kind::Chunk));
    assert_eq!(sources.kind_of(&arn("notifications-prod-email")), Some(Kind::EmailJob));
    assert_eq!(sources.kind_of(&arn("notifications-prod-email-events")), Some(Kind::SesEvent));
    assert_eq!(sources.kind_of(&arn("notifications-prod-webhooks")), Some(Kind::Hook));
    assert_eq!(sources.kind_of(&arn("notifications-prod-delivery-dlq")), Some(Kind::DeadChunk));
    assert_eq!(sources.kind_of(&arn("notifications-prod-email-dlq")), Some(Kind::DeadEmailJob));
    for other in [
        arn("notifications-prod-fanout-dlq"),
        arn("notifications-prod-fanout"),
        String::new(),
        "notifications-prod-delivery".into(),
    ] {
        assert_eq!(sources.kind_of(&other), None, "{other:?}");
    }
    // Deliver cannot start without the events queue's ARN: the init names the variable.
    let mut without = config.clone();
    without.email_events_queue_arn = None;
    assert_eq!(
        Sources::from_config(&without).unwrap_err().to_string(),
        "missing environment variable EMAIL_EVENTS_QUEUE_ARN"
    );
    let mut without = config.clone();
    without.delivery_dead_letter_queue_arn = None;
    assert_eq!(
        Sources::from_config(&without).unwrap_err().to_string(),
        "missing environment variable DELIVERY_DEAD_LETTER_QUEUE_ARN"
    );
    let mut without = config.clone();
    without.email_dead_letter_queue_arn = None;
    assert_eq!(
        Sources::from_config(&without).unwrap_err().to_string(),
        "missing environment variable EMAIL_DEAD_LETTER_QUEUE_ARN"
    );
    let mut slash = config.clone();
    slash.delivery_queue_url.push('/');
    assert!(
        Sources::from_config(&slash).unwrap_err().to_string().contains("DELIVERY_QUEUE_URL"),
        "a URL that names no queue stops the init"
    );
}

/// A record is what its queue says, whatever its body looks like: an SES event's body on the
/// delivery queue is a chunk's to refuse, a chunk's body on the events queue is an unreadable
/// event (dropped, never delivered), and a record from a queue deliver does not consume is
/// reported failed untouched (left to that queue's redrive policy).
#[tokio::test]
async fn a_body_never_decides_which_path_a_record_takes() {
    let memory = MemoryPorts::new(Arc::new(ManualClock::new(now())), Arc::new(SequentialIds::default()));
    let id = Uuid::new_v4();
    memory.ports.notifications.insert(&notification(id)).await.unwrap();
    let bounce = serde_json::json!({"eventType": "Bounce", "mail": {"messageId": "m", "destination": ["a@example.com"],
        "tags": {"notification": [id.to_string()]}}, "bounce": {"bounceType": "Permanent",
        "bouncedRecipients": [{"emailAddress": "a@example.com"}]}});
    let from = |message: &str, body: &str, arn: &str| {
        let mut r = record(message, body, 1);
        r.event_source_arn = Some(arn.into());
        r
    };
    let mut event = SqsEvent::default();
    event.records = vec![
        from("bounce-on-chunks", &bounce.to_string(), local_queues::CHUNKS),
        from("chunk-on-events", &chunk_body(id), local_queues::EMAIL_EVENTS),
        from("stranger", &chunk_body(id), "arn:aws:sqs:local:000000000000:someone-elses-queue"),
    ];
    let resp = handle(&memory.ports, 5, event).await;
    let mut failed: Vec<_> = resp.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    failed.sort();
    assert_eq!(failed, vec!["bounce-on-chunks", "stranger"]);
    assert_eq!(memory.inbox.item_count(), 0, "nothing delivered from any");
    let n = memory.ports.notifications.get(id).await.unwrap().unwrap();
    assert_eq!((n.status, n.emails_bounced), (Status::Delivering, 0), "nor counted");
    // The same chunk from the delivery queue is delivered.
    let mut event = SqsEvent::default();
    event.records = vec![record("chunk", &chunk_body(id), 1)];
    assert!(handle(&memory.ports, 5, event).await.batch_item_failures.is_empty());
    assert_eq!(memory.inbox.item_count(), 1);
}

/// API Gateway holding a chunk's realtime posts (throttled, or a connection that never answers)
/// cannot hold the chunk up past its deadline: the posts end 10 s before it at the latest
/// (docs/reliability.md, "Lambda deadlines"), the chunk is recorded and its receive ends.
#[tokio::test]
async fn realtime_posts_that_never_end_are_cut_before_the_deadline() {
    struct Hanging;
    #[async_trait]
    impl shared::ports::Realtime for Hanging {
        async fn publish(&self, _: CompanyId, _: &[UserId], _: i64, _: &InboxEvent) {
            std::future::pending::<()>().await
        }
        async fn listening(&self, _: CompanyId, _: UserId, _: DateTime<Utc>) -> bool {
            true
        }
    }
    let memory = MemoryPorts::new(Arc::new(ManualClock::new(now())), Arc::new(SequentialIds::default()));
    let id = Uuid::new_v4();
    let mut n = notification(id);
    n.chunks_total = Some(1);
    memory.ports.notifications.insert(&n).await.unwrap();
    let mut ports = memory.ports.clone();
    ports.realtime = Arc::new(Hanging);
    let mut event = SqsEvent::default();
    event.records = vec![record("posts", &chunk_body(id), 1)];
    // 21 s left: the chunk starts (20 s is the margin), its posts may take 11 s.
    let deadline = shared::service::deadline::Deadline::at(now() + chrono::Duration::seconds(21));
    let answer =
        tokio::time::timeout(std::time::Duration::from_secs(40), handle_within(&ports, 5, event, deadline))
            .await
            .expect("the chunk is not held up by its realtime posts");
    assert!(answer.batch_item_failures.is_empty(), "{:?}", answer.batch_item_failures);
    assert_eq!(memory.inbox.item_count(), 1, "its entry written");
    let n = memory.ports.notifications.get(id).await.unwrap().unwrap();
    assert_eq!((n.status, n.delivered), (Status::Delivered, 1), "recorded");
}

/// DynamoDB holding a chunk's entries' writes (throttled, the SDK backing off) cannot hold the
/// chunk up past its deadline: the writes end 15 s before it at the latest (docs/reliability.md,
/// "Lambda deadlines"), nothing is recorded, the chunk is handed back and goes on in a new message
/// (its receive not spent, even the last one). The new message's attempt writes only the entries
/// people do not have: one who read theirs meanwhile keeps it read.
#[tokio::test]
async fn entries_held_up_by_the_store_are_cut_before_the_deadline() {
    /// Writes the first entry, then never answers (as a write the SDK keeps retrying).
    struct Stalling(Arc<shared::adapters::memory::MemoryInboxStore>);
    #[async_trait]
    impl InboxDelivery for Stalling {
        async fn put_content(&self, c: &InboxContent) -> StoreResult<()> {
            self.0.put_content(c).await
        }
        async fn put_entries(&self, entries: &[InboxEntry], stamp: &dyn Clock) -> StoreResult<()> {
            self.0.put_entries(&entries[..1], stamp).await?;
            std::future::pending().await
        }
        async fn put_new_entries(
            &self,
            entries: &[InboxEntry],
            stamp: &dyn Clock,
        ) -> StoreResult<Vec<UserId>> {
            self.0.put_new_entries(entries, stamp).await
        }
        async fn remove_entries(&self, entries: &[InboxEntry]) -> StoreResult<()> {
            self.0.remove_entries(entries).await
        }
        async fn correct_content(&self, c: &InboxContent, revision: u64) -> StoreResult<()> {
            self.0.correct_content(c, revision).await
        }
    }
    #[async_trait]
    impl Center for Stalling {
        async fn get(&self, u: UserId, n: NotificationId) -> StoreResult<Option<InboxItem>> {
            self.0.get(u, n).await
        }
        async fn list(
            &self,
            u: UserId,
            q: &InboxQuery,
            now: DateTime<Utc>,
            p: &PageRequest,
        ) -> StoreResult<Page<InboxItem>> {
            self.0.list(u, q, now, p).await
        }
        async fn count(&self, u: UserId, now: DateTime<Utc>, cap: usize) -> StoreResult<InboxCounts> {
            self.0.count(u, now, cap).await
        }
        async fn mark(&self, u: UserId, n: NotificationId, m: Mark, now: DateTime<Utc>) -> StoreResult<bool> {
            self.0.mark(u, n, m, now).await
        }
        async fn mark_all(&self, u: UserId, m: MarkAll, now: DateTime<Utc>) -> StoreResult<()> {
            self.0.mark_all(u, m, now).await
        }
    }
    let mut memory = MemoryPorts::new(Arc::new(ManualClock::new(now())), Arc::new(SequentialIds::default()));
    memory.ports.settings.hand_overs.base = std::time::Duration::ZERO;
    memory.ports.settings.hand_overs.cap = std::time::Duration::ZERO;
    let id = Uuid::new_v4();
    let mut n = notification(id);
    n.recipients = 2;
    memory.ports.notifications.insert(&n).await.unwrap();
    memory.ports.inbox.put_content(&shared::service::deliver::inbox_content(&n)).await.unwrap();
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let chunk = DeliveryChunk {
        notification_id: id,
        chunk: 0,
        recipients: vec![first, second],
        devices: None,
        push_round: None,
        hand_overs: None,
        revived: None,
    };
    let mut stalling = memory.ports.clone();
    stalling.inbox = Arc::new(Stalling(memory.inbox.clone()));
    let mut event = SqsEvent::default();
    event.records = vec![record("stalled", &serde_json::to_string(&chunk).unwrap(), 5)];
    // 21 s left: the chunk starts (20 s is the margin), its entries may take 6 s.
    let deadline = shared::service::deadline::Deadline::at(now() + chrono::Duration::seconds(21));
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(40),
        handle_within(&stalling, 5, event, deadline),
    )
    .await
    .expect("the chunk is not held up by its entries' writes");
    assert!(answer.batch_item_failures.is_empty(), "its last receive ends: {:?}", answer.batch_item_failures);
    let waiting = memory.ports.notifications.get(id).await.unwrap().unwrap();
    assert_eq!(
        (waiting.status, waiting.delivered),
        (Status::Delivering, 0),
        "nothing recorded, not given up"
    );
    assert_eq!(memory.inbox.item_count(), 1, "the entry written before the cut");
    assert!(memory.ports.inbox.mark(first, id, Mark::Read, now()).await.unwrap(), "its person reads it");
    let acted = memory.ports.inbox.get(first, id).await.unwrap().expect("the first entry");

    let handed = memory.ports.delivery_queue.receive(10).await.unwrap();
    assert_eq!(handed.len(), 1, "the chunk goes on in a new message");
    let next: DeliveryChunk = serde_json::from_str(&handed[0].body).unwrap();
    assert_eq!((next.recipients.clone(), next.hand_overs), (chunk.recipients.clone(), Some(1)));
    let mut event = SqsEvent::default();
    event.records = vec![record("next", &handed[0].body, 1)];
    let mut heard = memory.realtime.subscribe();
    assert!(handle(&memory.ports, 5, event).await.batch_item_failures.is_empty());
    let done = memory.ports.notifications.get(id).await.unwrap().unwrap();
    assert_eq!((done.status, done.delivered), (Status::Delivered, 2), "delivered, counted once");
    let kept = memory.ports.inbox.get(first, id).await.unwrap().expect("the first entry");
    assert_eq!(kept, acted, "the person's entry as they left it (read, delivered when it was)");
    assert!(memory.ports.inbox.get(second, id).await.unwrap().is_some(), "the other one written");
    // The retry shows the notification to the person it wrote for; the one who had it (and read
    // it) is told its id only: their page never shows it again as new.
    let mut told = std::collections::BTreeMap::new();
    while let Ok(p) = heard.try_recv() {
        if let InboxEvent::New { ids, content } = p.event {
            assert_eq!(ids, vec![id]);
            told.insert(p.user, content.is_some());
        }
    }
    assert_eq!(told, std::collections::BTreeMap::from([(first, false), (second, true)]));
}

/// An email job that cannot start 5 s before the invocation's deadline (docs/reliability.md,
/// "Lambda deadlines") is handed to a new message and its receive ends, even the last one:
/// nothing sent, nothing counted. Its hand-overs are counted in it and bounded (20, as a
/// chunk's): once used up, the receive counts. With time, the new message sends it once.
#[tokio::test]
async fn an_email_job_too_close_to_the_deadline_goes_on_in_a_new_message() {
    let memory = MemoryPorts::new(Arc::new(ManualClock::new(now())), Arc::new(SequentialIds::default()));
    memory.load_demo_directory().await.unwrap();
    let id = Uuid::new_v4();
    let mut n = notification(id);
    n.email = Some(EmailSpec {
        template: "Client.Generic.HTMLBody.Mandrill.html".into(),
        subject: "s".into(),
        params: vec![],
        body: Some("<p>b</p>".into()),
    });
    n.emails_pending = 1;
    memory.ports.notifications.insert(&n).await.unwrap();
    let aaron: Uuid = "11111111-1111-4111-8111-111111111111".parse().unwrap();
    let job = EmailJob {
        notification_id: id,
        chunk: 0,
        email_part: 0,
        recipients: vec![aaron],
        round: 0,
        hand_overs: None,
    };
    let email_record = |name: &str, job: &EmailJob, receives: u32| {
        let mut r = record(name, &serde_json::to_string(job).unwrap(), receives);
        r.event_source_arn = Some(local_queues::EMAIL_JOBS.into());
        let mut event = SqsEvent::default();
        event.records = vec![r];
        event
    };
    // The figure the docs promise, not the constant: 4 s before the deadline is too close.
    let too_close = shared::service::deadline::Deadline::at(now() + chrono::Duration::seconds(4));
    let answer = handle_within(&memory.ports, 5, email_record("late", &job, 5), too_close).await;
    assert!(answer.batch_item_failures.is_empty(), "its last receive ends: {:?}", answer.batch_item_failures);
    assert!(memory.mailer.sent().is_empty(), "nothing sent");
    let handed = memory.ports.email_queue.receive(10).await.unwrap();
    assert_eq!(handed.len(), 1, "the job goes on in a new message");
    let next: EmailJob = serde_json::from_str(&handed[0].body).unwrap();
    assert_eq!(next, EmailJob { hand_overs: Some(1), ..job.clone() }, "its hand-over counted in it");

    // Handed over 20 times: this receive counts (the queue's redrive settles it at the last).
    let used = EmailJob { hand_overs: Some(20), ..job.clone() };
    let answer = handle_within(&memory.ports, 5, email_record("used", &used, 5), too_close).await;
    assert_eq!(answer.batch_item_failures.len(), 1, "the receive counts");
    assert!(memory.ports.email_queue.receive(10).await.unwrap().is_empty(), "not handed over again");

    // With time, the new message's job sends its email once and counts it.
    let in_time = shared::service::deadline::Deadline::at(now() + chrono::Duration::seconds(50));
    let answer = handle_within(&memory.ports, 5, email_record("next", &next, 1), in_time).await;
    assert!(answer.batch_item_failures.is_empty(), "{:?}", answer.batch_item_failures);
    assert_eq!(memory.mailer.sent().len(), 1, "sent once");
    let counted = memory.ports.notifications.get(id).await.unwrap().unwrap();
    assert_eq!((counted.emails_sent, counted.emails_pending), (1, 0), "counted once");
}

/// A callback whose tries would run past the invocation's deadline (each try here takes 6 s and
/// is answered 503) stops a margin before it, records nothing, and is handed to a new message
/// with the chunk, which sends it: the chunk's receive is not spent, and the callback is neither
/// lost nor cut off by Lambda's timeout half-way.
#[tokio::test]
async fn a_callback_that_would_outrun_the_deadline_goes_on_in_a_new_message() {
    struct Slow {
        clock: Arc<ManualClock>,
        posts: std::sync::Mutex<u32>,
    }
    #[async_trait]
    impl shared::ports::Webhook for Slow {
        async fn post(
            &self,
            _: &str,
            _: &[(String, String)],
            _: &str,
        ) -> Result<u16, shared::ports::PostError> {
            self.clock.advance(chrono::Duration::seconds(6));
            *self.posts.lock().unwrap() += 1;
            Ok(503)
        }
    }
    let clock = Arc::new(ManualClock::new(now()));
    let mut memory = MemoryPorts::new(clock.clone(), Arc::new(SequentialIds::default()));
    memory.load_demo_directory().await.unwrap();
    let slow = Arc::new(Slow { clock: clock.clone(), posts: std::sync::Mutex::new(0) });
    memory.ports.webhook = slow.clone();
    let zero = std::time::Duration::ZERO;
    memory.ports.settings.callback_retry =
        shared::backoff::Backoff { base: zero, cap: zero, max_attempts: 5 };
    memory.ports.settings.hand_overs.base = zero;
    memory.ports.settings.hand_overs.cap = zero;
    let id = Uuid::new_v4();
    let mut n = notification(id);
    n.chunks_total = Some(1);
    n.callback = Some(Callback {
        url: "https://callbacks.example.com/notify".into(),
        metadata: None,
        department_id: "d0000000-0000-4000-8000-000000000001".parse().unwrap(),
        user_id: Uuid::new_v4(),
        request_id: Uuid::new_v4(),
    });
    memory.ports.notifications.insert(&n).await.unwrap();
    let mut event = SqsEvent::default();
    event.records = vec![record("owed", &chunk_body(id), 1)];
    // 26 s left: tries at 0, 6 and 12 s start (13 s is the margin), the one at 18 s does not.
    let deadline = shared::service::deadline::Deadline::at(now() + chrono::Duration::seconds(26));
    let answer = handle_within(&memory.ports, 5, event, deadline).await;
    assert!(answer.batch_item_failures.is_empty(), "the receive ends: {:?}", answer.batch_item_failures);
    assert_eq!(*slow.posts.lock().unwrap(), 3, "three tries fit");
    let n = memory.ports.notifications.get(id).await.unwrap().unwrap();
    assert_eq!(
        (n.status, n.callback_result.is_some()),
        (Status::Delivered, false),
        "delivered, callback owed"
    );
    let handed = memory.ports.delivery_queue.receive(10).await.unwrap();
    assert_eq!(handed.len(), 1, "handed to a new message");
    let mut event = SqsEvent::default();
    event.records = vec![record("owed-2", &handed[0].body, 1)];
    let answer = handle_within(&memory.ports, 5, event, shared::service::deadline::Deadline::NONE).await;
    assert!(answer.batch_item_failures.is_empty());
    let n = memory.ports.notifications.get(id).await.unwrap().unwrap();
    let result = n.callback_result.expect("the callback's outcome recorded");
    assert_eq!((result.delivered, result.attempts), (false, 5), "its own five tries");
    assert_eq!(*slow.posts.lock().unwrap(), 8);
}
