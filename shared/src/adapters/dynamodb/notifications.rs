//! Notifications table: `N#{id}`/`META` (the notification), `N#{id}`/`C#{chunk}` (delivered-chunk
//! markers), `N#{id}`/`E#{chunk}#{part}` (recorded email jobs), `N#{id}`/`M#{chunk}#{part}` (emails and pushes a chunk already sent, string sets over 8 parts, TTL), `S#{scheduleId}`/`META` (schedule-id pointer), `COUNTER`/`scheduleId`, and
//! `I#{scope}`/`IDEM` (idempotency records, TTL). Indexes: `pending` (sparse, write-sharded by
//! due time), `history` (company + type), `scope` (event or asset).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use sha2::Digest;

use super::*;
use crate::model::*;
use crate::ports::*;

const META: &str = "META";
const PENDING_INDEX: &str = "pending";
const HISTORY_INDEX: &str = "history";
const SCOPE_INDEX: &str = "scope";
/// Days the per-chunk sent marks are kept.
const MARKS_DAYS: i64 = 30;

pub struct DynamoNotificationStore {
    client: Client,
    table: String,
    pending_shards: u32,
}

impl DynamoNotificationStore {
    pub fn new(client: Client, table: impl Into<String>, pending_shards: u32) -> Self {
        DynamoNotificationStore { client, table: table.into(), pending_shards: pending_shards.max(1) }
    }

    fn pk(id: NotificationId) -> String {
        format!("N#{id}")
    }

    fn chunk_sk(chunk: u32) -> String {
        format!("C#{chunk:08}")
    }

    fn emails_sk(chunk: u32, part: u32) -> String {
        format!("E#{chunk:08}#{part}")
    }

    /// After a transaction `count_once` found a condition false: `AlreadyRecorded` if the marker
    /// `sk` exists, else the notification does not.
    async fn recorded_or_missing(&self, id: NotificationId, sk: String) -> StoreResult<ChunkRecord> {
        if self.get_item_key(key(Self::pk(id), sk)).await? {
            Ok(ChunkRecord::AlreadyRecorded)
        } else {
            Err(StoreError::Conflict(format!("notification {id} does not exist")))
        }
    }

    /// Whether an item exists (a strongly consistent read of its key only).
    async fn get_item_key(&self, item_key: Item) -> StoreResult<bool> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item_key))
            .consistent_read(true)
            .projection_expression("pk")
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item.is_some())
    }

    /// The notification, whether the marker `marker_sk` exists, and the chunk's sent marks, in
    /// one BatchGetItem.
    async fn context(&self, id: NotificationId, chunk: u32, marker_sk: String) -> StoreResult<ChunkContext> {
        let mut keys = vec![key(Self::pk(id), META), key(Self::pk(id), marker_sk.clone())];
        // The marks of chunks sent before they were split over parts, and every part.
        keys.push(key(Self::pk(id), format!("M#{chunk:08}")));
        keys.extend((0..MARK_PARTS).map(|part| key(Self::pk(id), Self::marks_sk(chunk, part))));
        let mut context = ChunkContext::default();
        for item in batch_get(&self.client, &self.table, keys, None, true, Backoff::default()).await? {
            match get_s(&item, "sk")? {
                META => context.notification = Some(from_item(item)?),
                sk if sk == marker_sk => context.recorded = true,
                _ => {
                    if let Some(AttributeValue::Ss(keys)) = item.get("sent") {
                        context.marks.0.extend(keys.iter().cloned());
                    }
                }
            }
        }
        Ok(context)
    }

    /// Runs a transaction, retrying it when DynamoDB cancelled it for a conflict with another
    /// transaction on one of its items (TransactionConflict) or for throttling: every deliverer
    /// finishing work on a notification updates its one META item, so they meet. Retried here
    /// with jitter, which spreads the contenders, instead of failing the work back to SQS.
    /// The last result and the tries made.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> (Result<(), SdkError<TransactWriteItemsError, HttpResponse>>, u32) {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result =
                self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
            match result {
                Err(e) if cancelled_for_contention(&e) && attempt < CONTENTION_RETRY.max_attempts => {
                    tokio::time::sleep(CONTENTION_RETRY.delay(attempt)).await;
                }
                other => return (other.map(|_| ()), attempt),
            }
        }
    }

    /// Puts `marker` (if absent) and applies `count` to the notification in one transaction:
    /// `Recorded` once, `AlreadyRecorded` when a condition failed (the marker exists, or the
    /// notification does not: the caller tells which).
    async fn count_once(
        &self,
        id: NotificationId,
        marker: Item,
        count: Update,
        what: &str,
    ) -> StoreResult<ChunkRecord> {
        let marker = Put::builder()
            .table_name(&self.table)
            .set_item(Some(marker))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().put(marker).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        let (result, attempt) = self.transact(items).await;
        match result {
            Ok(_) => Ok(ChunkRecord::Recorded),
            Err(e) if cancelled_by_condition(&e) => Ok(ChunkRecord::AlreadyRecorded),
            Err(e) if cancelled_for_contention(&e) => Err(StoreError::Transient(format!(
                "{what} of {id}: transaction cancelled for contention {attempt} times"
            ))),
            Err(e) => Err(classify(e)),
        }
    }

    fn marks_sk(chunk: u32, part: u32) -> String {
        format!("M#{chunk:08}#{part}")
    }

    /// The part a mark is kept in: spread evenly by its hash (a chunk's context reads them all).
    fn mark_part(mark: &str) -> u32 {
        let digest = sha2::Sha256::digest(mark.as_bytes());
        u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]) % MARK_PARTS
    }

    /// The shard of the pending index a notification lives in: stable, spread by id.
    fn shard(&self, id: NotificationId) -> u32 {
        (id.as_u128() % self.pending_shards as u128) as u32
    }

    fn item(&self, notification: &Notification) -> StoreResult<Item> {
        let mut item = to_item(notification)?;
        item.extend(key(Self::pk(notification.id), META));
        if notification.status == Status::Pending {
            item.insert("pendingShard".into(), s(format!("P#{}", self.shard(notification.id))));
            item.insert("dueMs".into(), n(notification.due_at.timestamp_millis()));
        }
        // The history indexes hold the group-send API's record only (sparse: other origins have
        // no key there, so they cost no index writes either).
        if notification.origin != Origin::GroupSend {
            return Ok(item);
        }
        item.insert(
            "histPk".into(),
            s(format!("C#{}#{}", notification.company_id, notification.broadcast_type.as_str())),
        );
        let scope = match (&notification.audience, notification.broadcast_type, notification.brochure_id) {
            (Audience::EventTeams { event_id, .. }, _, _) => Some(format!("E#{event_id}")),
            (_, BroadcastType::GA, Some(b)) => Some(format!("A#{b}")),
            _ => None,
        };
        if let Some(scope) = scope {
            item.insert("scopePk".into(), s(scope));
        }
        Ok(item)
    }

    async fn get_meta(&self, id: NotificationId) -> StoreResult<Option<Notification>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item.map(from_item).transpose()
    }

    /// Moves a Delivering notification whose every chunk reported to Delivered.
    /// Moves to Delivered if every chunk reported (`Conflict` when not).
    async fn mark_delivered_if_done(&self, id: NotificationId, now: DateTime<Utc>) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .update_expression("SET #st = :delivered, modifiedAt = :now")
            .condition_expression("#st = :delivering AND chunksDone = chunksTotal")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":delivered", to_attr(&Status::Delivered)?)
            .expression_attribute_values(":delivering", to_attr(&Status::Delivering)?)
            .expression_attribute_values(":now", to_attr(&now)?)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// A conditional status update; with `held`, the caller must also hold that lease.
    async fn update_if(
        &self,
        id: NotificationId,
        expected: Status,
        held: Option<DateTime<Utc>>,
        set: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<bool> {
        let condition =
            if held.is_some() { "#st = :expected AND leaseUntil = :held" } else { "#st = :expected" };
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .update_expression(set)
            .condition_expression(condition)
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":expected", to_attr(&expected)?);
        if let Some(held) = held {
            req = req.expression_attribute_values(":held", to_attr(&held)?);
        }
        for (name, value) in values {
            req = req.expression_attribute_values(name, value);
        }
        applied(req.send().await.map_err(classify))
    }
}

fn id_from_pk(pk: &str) -> StoreResult<NotificationId> {
    pk.strip_prefix("N#")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StoreError::InvalidData(format!("unexpected notification key {pk}")))
}

#[async_trait]
impl NotificationStore for DynamoNotificationStore {
    async fn next_schedule_id(&self) -> StoreResult<u64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key("COUNTER", "scheduleId")))
            .update_expression("ADD #v :one")
            .expression_attribute_names("#v", "value")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(classify)?;
        out.attributes
            .as_ref()
            .and_then(|a| a.get("value"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::InvalidData("counter returned no value".into()))
    }

    async fn insert(&self, notification: &Notification) -> StoreResult<()> {
        let meta = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.item(notification)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let mut pointer = key(format!("S#{}", notification.schedule_id), META);
        pointer.insert("notificationId".into(), s(notification.id.to_string()));
        let pointer = Put::builder()
            .table_name(&self.table)
            .set_item(Some(pointer))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().put(meta).build(),
            TransactWriteItem::builder().put(pointer).build(),
        ];
        match self.transact(items).await {
            (Ok(_), _) => Ok(()),
            (Err(e), _) if cancelled_by_condition(&e) => Err(StoreError::Conflict(format!(
                "notification {} or its schedule id exists",
                notification.id
            ))),
            (Err(e), attempt) if cancelled_for_contention(&e) => Err(StoreError::Transient(format!(
                "inserting {}: transaction cancelled for contention {attempt} times",
                notification.id
            ))),
            (Err(e), _) => Err(classify(e)),
        }
    }

    async fn get(&self, id: NotificationId) -> StoreResult<Option<Notification>> {
        self.get_meta(id).await
    }

    async fn get_by_schedule_id(&self, schedule_id: u64) -> StoreResult<Option<Notification>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("S#{schedule_id}"), META)))
            .send()
            .await
            .map_err(classify)?;
        match out.item {
            None => Ok(None),
            Some(item) => {
                let id = get_s(&item, "notificationId")?
                    .parse()
                    .map_err(|_| StoreError::InvalidData("bad schedule pointer".into()))?;
                self.get_meta(id).await
            }
        }
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<NotificationId>> {
        let mut due: Vec<(i64, NotificationId)> = Vec::new();
        for shard in 0..self.pending_shards {
            let build = || {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(PENDING_INDEX)
                    .key_condition_expression("pendingShard = :shard AND dueMs <= :now")
                    .expression_attribute_values(":shard", s(format!("P#{shard}")))
                    .expression_attribute_values(":now", n(now.timestamp_millis()))
            };
            let (items, _) = query_page(build, &["pk", "sk", "pendingShard", "dueMs"], limit, None).await?;
            for item in items {
                let due_ms =
                    item.get("dueMs").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
                due.push((due_ms, id_from_pk(get_s(&item, "pk")?)?));
            }
        }
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    async fn claim(
        &self,
        id: NotificationId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // The claim keeps the item in the pending index with dueMs moved to the lease expiry: if
        // the claimant crashes, the notification becomes due again when its lease runs out.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .update_expression("SET #st = :fanning, modifiedAt = :now, leaseUntil = :lease, dueMs = :leaseMs")
            .condition_expression("(#st = :pending OR #st = :fanning) AND dueMs <= :nowMs")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":fanning", to_attr(&Status::FanningOut)?)
            .expression_attribute_values(":pending", to_attr(&Status::Pending)?)
            .expression_attribute_values(":now", to_attr(&now)?)
            .expression_attribute_values(":nowMs", n(now.timestamp_millis()))
            .expression_attribute_values(":lease", to_attr(&lease_until)?)
            .expression_attribute_values(":leaseMs", n(lease_until.timestamp_millis()))
            .send()
            .await
            .map_err(classify);
        applied(result)
    }

    async fn save_progress(
        &self,
        id: NotificationId,
        progress: &FanoutProgress,
        held: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let saved = self
            .update_if(
                id,
                Status::FanningOut,
                Some(held),
                "SET fanout = :p, leaseUntil = :lease, dueMs = :leaseMs",
                vec![
                    (":p", to_attr(progress)?),
                    (":lease", to_attr(&lease_until)?),
                    (":leaseMs", n(lease_until.timestamp_millis())),
                ],
            )
            .await?;
        if saved {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!("notification {id} is not fanning out")))
        }
    }

    async fn finish_fanout(
        &self,
        id: NotificationId,
        chunks: u32,
        recipients: u64,
        held: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Status> {
        let moved = self
            .update_if(
                id,
                Status::FanningOut,
                Some(held),
                "SET #st = :delivering, chunksTotal = :c, recipients = :r, modifiedAt = :now REMOVE pendingShard, dueMs, leaseUntil",
                vec![
                    (":delivering", to_attr(&Status::Delivering)?),
                    (":c", n(chunks)),
                    (":r", n(recipients)),
                    (":now", to_attr(&now)?),
                ],
            )
            .await?;
        if !moved {
            return Err(StoreError::Conflict(format!("notification {id} is not fanning out")));
        }
        self.complete_if_done(id, now).await
    }

    async fn record_chunk(
        &self,
        id: NotificationId,
        chunk: u32,
        tally: &ChunkTally,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        let mut marker = key(Self::pk(id), Self::chunk_sk(chunk));
        marker.insert("delivered".into(), n(tally.delivered));
        marker.insert("recordedAt".into(), to_attr(&now)?);
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .update_expression(
                "ADD delivered :d, chunksDone :one, emailsPending :eq, pushesSent :ps, \
                 pushesRemoved :pr, pushesFailed :pf SET modifiedAt = :now",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":d", n(tally.delivered))
            .expression_attribute_values(":eq", n(tally.emails_queued))
            .expression_attribute_values(":ps", n(tally.pushes.sent))
            .expression_attribute_values(":pr", n(tally.pushes.removed))
            .expression_attribute_values(":pf", n(tally.pushes.failed))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", to_attr(&now)?)
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        match self.count_once(id, marker, count, &format!("chunk {chunk}")).await? {
            ChunkRecord::Recorded => {
                // Whether this was the last chunk is the condition's business: no read back.
                applied(self.mark_delivered_if_done(id, now).await)?;
                Ok(ChunkRecord::Recorded)
            }
            ChunkRecord::AlreadyRecorded => {
                if self.chunk_recorded(id, chunk).await? {
                    // Recorded by an earlier try whose completion may not have run.
                    applied(self.mark_delivered_if_done(id, now).await)?;
                    Ok(ChunkRecord::AlreadyRecorded)
                } else {
                    Err(StoreError::Conflict(format!("notification {id} does not exist")))
                }
            }
        }
    }

    async fn email_context(&self, id: NotificationId, chunk: u32, part: u32) -> StoreResult<ChunkContext> {
        self.context(id, chunk, Self::emails_sk(chunk, part)).await
    }

    async fn record_emails(
        &self,
        id: NotificationId,
        chunk: u32,
        part: u32,
        counts: &EmailCounts,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        let sk = Self::emails_sk(chunk, part);
        let mut marker = key(Self::pk(id), sk.clone());
        marker.insert("settled".into(), n(counts.settled()));
        marker.insert("recordedAt".into(), to_attr(&now)?);
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .update_expression(
                "ADD emailsSent :es, emailsOptedOut :eo, emailsNoAddress :en, emailsFailed :ef, \
                 emailsSuppressed :esu, emailsPending :settled SET modifiedAt = :now",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":es", n(counts.sent))
            .expression_attribute_values(":eo", n(counts.opted_out))
            .expression_attribute_values(":en", n(counts.no_address))
            .expression_attribute_values(":ef", n(counts.failed))
            .expression_attribute_values(":esu", n(counts.suppressed))
            .expression_attribute_values(":settled", AttributeValue::N(format!("-{}", counts.settled())))
            .expression_attribute_values(":now", to_attr(&now)?)
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        match self.count_once(id, marker, count, &format!("emails {chunk}.{part}")).await? {
            ChunkRecord::Recorded => Ok(ChunkRecord::Recorded),
            ChunkRecord::AlreadyRecorded => self.recorded_or_missing(id, sk).await,
        }
    }

    async fn complete_if_done(&self, id: NotificationId, now: DateTime<Utc>) -> StoreResult<Status> {
        match self.mark_delivered_if_done(id, now).await {
            Ok(_) => Ok(Status::Delivered),
            Err(StoreError::Conflict(_)) => {
                Ok(self.get_meta(id).await?.map(|n| n.status).unwrap_or(Status::Failed))
            }
            Err(e) => Err(e),
        }
    }

    async fn chunk_recorded(&self, id: NotificationId, chunk: u32) -> StoreResult<bool> {
        self.get_item_key(key(Self::pk(id), Self::chunk_sk(chunk))).await
    }

    async fn chunk_context(&self, id: NotificationId, chunk: u32) -> StoreResult<ChunkContext> {
        self.context(id, chunk, Self::chunk_sk(chunk)).await
    }

    async fn record_feedback(
        &self,
        id: NotificationId,
        message_id: &str,
        kind: FeedbackKind,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        let sk = format!("F#{}#{message_id}", kind.as_str());
        let mut marker = key(Self::pk(id), sk.clone());
        marker.insert("recordedAt".into(), to_attr(&now)?);
        marker.insert("ttl".into(), n((now + chrono::Duration::days(MARKS_DAYS)).timestamp()));
        let counter = match kind {
            FeedbackKind::Bounce => "emailsBounced",
            FeedbackKind::Complaint => "emailsComplained",
        };
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .update_expression(format!("ADD {counter} :one SET modifiedAt = :now"))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", to_attr(&now)?)
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        match self.count_once(id, marker, count, &format!("{} {message_id}", kind.as_str())).await? {
            ChunkRecord::Recorded => Ok(ChunkRecord::Recorded),
            ChunkRecord::AlreadyRecorded => self.recorded_or_missing(id, sk).await,
        }
    }

    async fn add_sent_marks(
        &self,
        id: NotificationId,
        chunk: u32,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        // A string set: adding a key again is a no-op, so a retried write is harmless, but one
        // request may not name a member twice. The marks outlive any redelivery (the DLQ keeps
        // messages 14 days) and then expire.
        let mut parts: std::collections::BTreeMap<u32, std::collections::BTreeSet<&String>> =
            std::collections::BTreeMap::new();
        for mark in keys {
            parts.entry(Self::mark_part(mark)).or_default().insert(mark);
        }
        let expires = (now + chrono::Duration::days(MARKS_DAYS)).timestamp();
        // One write per part touched, side by side: a write costs what its part weighs, so the
        // write units are those of one item holding every mark, the latency that of one write.
        let writes = parts.into_iter().flat_map(|(part, marks)| {
            let marks: Vec<String> = marks.into_iter().cloned().collect();
            marks
                .chunks(MARKS_PER_WRITE)
                .map(|slice| {
                    self.client
                        .update_item()
                        .table_name(&self.table)
                        .set_key(Some(key(Self::pk(id), Self::marks_sk(chunk, part))))
                        .update_expression("ADD sent :keys SET #ttl = :ttl")
                        .expression_attribute_names("#ttl", "ttl")
                        .expression_attribute_values(":keys", AttributeValue::Ss(slice.to_vec()))
                        .expression_attribute_values(":ttl", n(expires))
                        .send()
                })
                .collect::<Vec<_>>()
        });
        for result in futures::future::join_all(writes).await {
            result.map_err(classify)?;
        }
        Ok(())
    }

    async fn mark_failed(&self, id: NotificationId, reason: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .update_expression(
                "SET #st = :failed, failure = :why, modifiedAt = :now REMOVE pendingShard, dueMs, leaseUntil",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":failed", to_attr(&Status::Failed)?)
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":now", to_attr(&now)?)
            .send()
            .await
            .map_err(classify);
        // A failed condition (the item is gone) is nothing to do.
        applied(result).map(|_| ())
    }

    async fn consume_quota(
        &self,
        company: CompanyId,
        day: &str,
        recipients: u64,
        cap: u64,
    ) -> StoreResult<bool> {
        if recipients > cap {
            return Ok(false);
        }
        // One counter item per company and day, expiring two days later.
        let expires = chrono::Utc::now().timestamp() + 2 * 24 * 3600;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("Q#{company}"), format!("D#{day}"))))
            .update_expression("ADD used :n SET #ttl = if_not_exists(#ttl, :ttl)")
            .condition_expression("attribute_not_exists(used) OR used <= :room")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":n", n(recipients))
            .expression_attribute_values(":room", n(cap - recipients))
            .expression_attribute_values(":ttl", n(expires))
            .send()
            .await
            .map_err(classify);
        applied(result)
    }

    async fn record_callback(&self, id: NotificationId, result: &CallbackResult) -> StoreResult<()> {
        let outcome = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .update_expression("SET callbackResult = :r")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":r", to_attr(result)?)
            .send()
            .await
            .map_err(classify);
        // A failed condition (the item is gone) is nothing to do.
        applied(outcome).map(|_| ())
    }

    async fn history(&self, scope: &HistoryScope, page: &PageRequest) -> StoreResult<Page<Notification>> {
        let (index, pk_name, pk_value) = match scope {
            HistoryScope::CompanyType { company_id, broadcast_type } => {
                (HISTORY_INDEX, "histPk", format!("C#{company_id}#{}", broadcast_type.as_str()))
            }
            HistoryScope::Event { event_id } => (SCOPE_INDEX, "scopePk", format!("E#{event_id}")),
            HistoryScope::Asset { brochure_id } => (SCOPE_INDEX, "scopePk", format!("A#{brochure_id}")),
        };
        let build = || {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#p = :p")
                .expression_attribute_names("#p", pk_name)
                .expression_attribute_values(":p", s(pk_value.clone()))
                .scan_index_forward(false)
        };
        let (items, next) =
            query_page(build, &["pk", "sk", pk_name, "scheduleId"], page.limit, page.after.as_deref())
                .await?;
        let items = items.into_iter().map(from_item).collect::<StoreResult<Vec<Notification>>>()?;
        Ok(Page { items, next })
    }

    async fn claim_idempotency(
        &self,
        scope: &str,
        digest: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyClaim> {
        let mut item = key(format!("I#{scope}"), "IDEM");
        item.insert("digest".into(), s(digest));
        item.insert("ttl".into(), n(expires_at.timestamp()));
        // A record past its expiry may still exist (TTL deletes late): it counts as absent.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await
            .map_err(classify);
        match result {
            Ok(_) => Ok(IdempotencyClaim::Claimed),
            Err(StoreError::Conflict(_)) => {
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key(format!("I#{scope}"), "IDEM")))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(classify)?;
                let item = out.item.unwrap_or_default();
                let request_digest = get_s(&item, "digest").unwrap_or_default().to_string();
                let status = item.get("status").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
                let body = item.get("body").and_then(|v| v.as_s().ok()).cloned();
                let answer = status.zip(body);
                Ok(IdempotencyClaim::Existing { request_digest, answer })
            }
            Err(e) => Err(e),
        }
    }

    async fn complete_idempotency(&self, r: &IdempotencyRecord) -> StoreResult<()> {
        let mut item = key(format!("I#{}", r.scope), "IDEM");
        item.insert("digest".into(), s(&r.request_digest));
        item.insert("status".into(), n(r.status));
        item.insert("body".into(), s(&r.body));
        item.insert("ttl".into(), n(r.expires_at.timestamp()));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(classify)?;
        Ok(())
    }

    async fn release_idempotency(&self, scope: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("I#{scope}"), "IDEM")))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

/// A chunk's sent marks are spread over this many items (`M#{chunk}#{part}`): the largest
/// chunk (5,000 people) with the most devices each (10, 34-byte marks) is 1.7 MB of marks, four
/// times what one item may hold (400 KB); spread over 8 parts by hash, each stays near 210 KB.
const MARK_PARTS: u32 = 8;
/// Marks added by one UpdateItem at most (a part's share of a chunk comes in many writes).
const MARKS_PER_WRITE: usize = 1000;

/// Tries of a transaction DynamoDB cancelled for a conflict with another transaction on one of
/// its items, or for throttling: up to 6, waiting up to 20, 40, 80, 160, 320 ms (full jitter).
const CONTENTION_RETRY: crate::backoff::Backoff = crate::backoff::Backoff {
    base: std::time::Duration::from_millis(20),
    cap: std::time::Duration::from_millis(500),
    max_attempts: 6,
};

/// A transaction cancelled because another one held an item, or for throttling (and no
/// condition failed): worth trying again at once.
fn cancelled_for_contention(e: &SdkError<TransactWriteItemsError, HttpResponse>) -> bool {
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
            let codes: Vec<&str> = t.cancellation_reasons().iter().filter_map(|r| r.code()).collect();
            !codes.contains(&"ConditionalCheckFailed")
                && codes.iter().any(|c| matches!(*c, "TransactionConflict" | "ThrottlingError"))
        }
        _ => false,
    }
}

/// Whether a cancelled transaction failed on one of its conditions (rather than on throttling or
/// a conflicting transaction, which are transient).
fn cancelled_by_condition(e: &SdkError<TransactWriteItemsError, HttpResponse>) -> bool {
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
            t.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed"))
        }
        _ => false,
    }
}
