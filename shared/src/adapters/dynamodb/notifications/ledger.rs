//! The delivery ledger on the notifications table: chunk markers (`C#`), email-job markers
//! (`E#`), bounce and complaint markers (`F#`), each recorded with its counts (on a counter
//! item of its own, `counters.rs`) in one transaction exactly once, and the sent marks (`N#{id}#M#{chunk}`/`{digest}`, a partition per chunk); a
//! chunk's start (`L#`: the lease of
//! the attempt writing its entries). Transactions cancelled for contention
//! are retried here.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use sha2::Digest;

use super::*;

impl DynamoNotificationStore {
    pub(super) async fn ledger_record_chunk(
        &self,
        id: NotificationId,
        chunk: u32,
        tally: &ChunkTally,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        let mut marker = key(Self::pk(id), Self::chunk_sk(chunk));
        marker.insert("delivered".into(), n(tally.delivered));
        // Its pushes are counted apart (`P#`): a marker without this is an earlier version's,
        // which counted them with the chunk.
        marker.insert("pushesApart".into(), AttributeValue::Bool(true));
        marker.insert("emailJobSize".into(), n(tally.email_job_size));
        marker.insert("recordedAt".into(), to_attr(&now)?);
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::counters_key(id, Self::counter_shard(chunk))))
            .update_expression(
                "ADD delivered :d, chunksDone :one, emailsPending :eq, pushesSent :ps, \
                 pushesRemoved :pr, pushesFailed :pf SET modifiedAt = :now",
            )
            .expression_attribute_values(":d", n(tally.delivered))
            .expression_attribute_values(":eq", n(tally.emails_queued))
            .expression_attribute_values(":ps", n(tally.pushes.sent))
            .expression_attribute_values(":pr", n(tally.pushes.removed))
            .expression_attribute_values(":pf", n(tally.pushes.failed))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", to_attr(&now)?)
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        // Recorded now, or by an earlier try whose completion may not have run: whether every
        // chunk is in is the completion's business (it reads the counts).
        let record = self.count_once(id, marker, count, &format!("chunk {chunk}")).await?;
        applied(self.mark_delivered_if_done(id, now).await)?;
        Ok(record)
    }

    pub(super) async fn ledger_record_pushes(
        &self,
        id: NotificationId,
        chunk: u32,
        counts: &PushCounts,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        let mut marker = Self::pushes_key(id, chunk);
        marker.insert("sent".into(), n(counts.sent));
        marker.insert("recordedAt".into(), to_attr(&now)?);
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::counters_key(id, Self::counter_shard(chunk))))
            .update_expression(
                "ADD pushesSent :ps, pushesRemoved :pr, pushesFailed :pf, pushesWithdrawn :pw SET modifiedAt = :now",
            )
            .expression_attribute_values(":pw", n(counts.withdrawn))
            .expression_attribute_values(":ps", n(counts.sent))
            .expression_attribute_values(":pr", n(counts.removed))
            .expression_attribute_values(":pf", n(counts.failed))
            .expression_attribute_values(":now", to_attr(&now)?)
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        self.count_once(id, marker, count, &format!("pushes {chunk}")).await
    }

    /// A chunk's push context: its pushes are recorded when their marker exists, or when an
    /// earlier version recorded the chunk (and counted its pushes with it: a chunk marker without
    /// `pushesApart`).
    pub(super) async fn ledger_push_context(
        &self,
        id: NotificationId,
        chunk: u32,
    ) -> StoreResult<ChunkContext> {
        let (context, marker) = futures::future::join(
            self.context(id, chunk, Self::pushes_key(id, chunk), false),
            self.client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key(Self::pk(id), Self::chunk_sk(chunk))))
                .consistent_read(true)
                .projection_expression("pk, pushesApart")
                .send(),
        )
        .await;
        let mut context = context?;
        let marker = marker.map_err(classify)?.item;
        if marker.is_some_and(|m| !m.contains_key("pushesApart")) {
            context.recorded = true;
        }
        Ok(context)
    }

    pub(super) async fn ledger_email_context(
        &self,
        id: NotificationId,
        chunk: u32,
        part: u32,
    ) -> StoreResult<ChunkContext> {
        self.context(id, chunk, key(Self::pk(id), Self::emails_sk(chunk, part)), true).await
    }

    pub(super) async fn ledger_record_emails(
        &self,
        id: NotificationId,
        chunk: u32,
        part: u32,
        counts: &EmailCounts,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        let mut marker = key(Self::pk(id), Self::emails_sk(chunk, part));
        marker.insert("settled".into(), n(counts.settled()));
        marker.insert("recordedAt".into(), to_attr(&now)?);
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::counters_key(id, Self::counter_shard(chunk))))
            .update_expression(
                "ADD emailsSent :es, emailsOptedOut :eo, emailsNoAddress :en, emailsFailed :ef, \
                 emailsSuppressed :esu, emailsWithdrawn :ew, emailsPending :settled SET modifiedAt = :now",
            )
            .expression_attribute_values(":es", n(counts.sent))
            .expression_attribute_values(":eo", n(counts.opted_out))
            .expression_attribute_values(":en", n(counts.no_address))
            .expression_attribute_values(":ef", n(counts.failed))
            .expression_attribute_values(":esu", n(counts.suppressed))
            .expression_attribute_values(":ew", n(counts.withdrawn))
            .expression_attribute_values(":settled", AttributeValue::N(format!("-{}", counts.settled())))
            .expression_attribute_values(":now", to_attr(&now)?)
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        self.count_once(id, marker, count, &format!("emails {chunk}.{part}")).await
    }

    pub(super) async fn ledger_chunk_recorded(&self, id: NotificationId, chunk: u32) -> StoreResult<bool> {
        self.get_item_key(key(Self::pk(id), Self::chunk_sk(chunk))).await
    }

    /// A piece of work's lease item (`lease` its key) as its first start puts it.
    pub(super) fn first_lease(
        lease: &Item,
        holder: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Item> {
        let mut start = lease.clone();
        start.insert("leaseUntil".into(), n(lease_until.timestamp_millis()));
        start.insert("holder".into(), s(holder));
        start.insert("startedAt".into(), to_attr(&now)?);
        start.insert("ttl".into(), n((now + chrono::Duration::days(MARKS_DAYS)).timestamp()));
        Ok(start)
    }

    /// Claims the piece of work whose lease item is `lease`: see `WorkLeases::start`.
    pub(super) async fn ledger_start(
        &self,
        lease: Item,
        holder: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<ChunkStart> {
        let start = Self::first_lease(&lease, holder, now, lease_until)?;
        let first = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(start))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(classify);
        if applied(first)? {
            return Ok(ChunkStart::First);
        }
        let retry = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(lease))
            .update_expression("SET leaseUntil = :lease, holder = :holder, retriedAt = :at ADD attempts :one")
            // Its lease ran out, or it is this attempt's own (its first write's answer was lost
            // and the SDK tried again: then entries are written as on a retry).
            // Never one a retraction closed (`recall.rs`).
            .condition_expression(
                "(leaseUntil < :now OR holder = :holder) AND attribute_not_exists(closedAt)",
            )
            .expression_attribute_values(":lease", n(lease_until.timestamp_millis()))
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .expression_attribute_values(":at", to_attr(&now)?)
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(classify);
        Ok(if applied(retry)? { ChunkStart::Retry } else { ChunkStart::Held })
    }

    /// Hands the piece of work whose lease item is `lease` back, if its lease is still the one
    /// `holder` took until `held`.
    pub(super) async fn ledger_release(
        &self,
        lease: Item,
        holder: &str,
        held: DateTime<Utc>,
    ) -> StoreResult<()> {
        let release = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(lease))
            .update_expression("SET leaseUntil = :none")
            .condition_expression("leaseUntil = :held AND holder = :holder")
            .expression_attribute_values(":none", n(0))
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":held", n(held.timestamp_millis()))
            .send()
            .await
            .map_err(classify);
        // Taken over meanwhile: nothing of ours to hand back.
        applied(release).map(|_| ())
    }

    pub(super) async fn ledger_chunk_context(
        &self,
        id: NotificationId,
        chunk: u32,
    ) -> StoreResult<ChunkContext> {
        self.context(id, chunk, key(Self::pk(id), Self::chunk_sk(chunk)), false).await
    }

    pub(super) async fn ledger_record_feedback(
        &self,
        id: NotificationId,
        message_id: &str,
        kind: FeedbackKind,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        let mut marker = key(Self::pk(id), format!("F#{}#{message_id}", kind.as_str()));
        marker.insert("recordedAt".into(), to_attr(&now)?);
        marker.insert("ttl".into(), n((now + chrono::Duration::days(MARKS_DAYS)).timestamp()));
        let counter = match kind {
            FeedbackKind::Bounce => "emailsBounced",
            FeedbackKind::Complaint => "emailsComplained",
        };
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::counters_key(id, 0)))
            .update_expression(format!("ADD {counter} :one SET modifiedAt = :now"))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", to_attr(&now)?)
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        self.count_once(id, marker, count, &format!("{} {message_id}", kind.as_str())).await
    }

    pub(super) async fn ledger_add_sent_marks(
        &self,
        id: NotificationId,
        chunk: u32,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        // Each call writes new small items under the chunk's own partition key, never rewriting
        // an item that grows: a write costs what it adds (one write unit per flush of up to 69
        // marks), and a broadcast's marks land on as many keys as it has chunks. An item is
        // named by a digest of the marks it holds, so a retried write writes the same item and
        // adding marks again never replaces an item holding others. The marks outlive any
        // redelivery (the DLQ keeps messages 14 days) and then expire.
        let mut marks: Vec<&String> = keys.iter().collect();
        marks.sort();
        marks.dedup();
        let expires = n((now + chrono::Duration::days(MARKS_DAYS)).timestamp());
        let pk = Self::marks_pk(id, chunk);
        let mut items = Vec::new();
        let mut slice: Vec<String> = Vec::new();
        let mut bytes = 0;
        for mark in marks {
            if !slice.is_empty() && bytes + mark.len() > MARK_ITEM_BYTES {
                items.push(Self::marks_item(&pk, std::mem::take(&mut slice), &expires));
                bytes = 0;
            }
            bytes += mark.len();
            slice.push(mark.clone());
        }
        if !slice.is_empty() {
            items.push(Self::marks_item(&pk, slice, &expires));
        }
        // Usually one item (a flush of `MARK_BATCH`, 64 marks); PutItem each, a few in flight.
        use futures::StreamExt;
        let puts = items
            .into_iter()
            .map(|item| self.client.put_item().table_name(&self.table).set_item(Some(item)).send());
        let results: Vec<_> =
            futures::stream::iter(puts).buffer_unordered(MARK_PUTS_IN_FLIGHT).collect().await;
        for result in results {
            result.map_err(classify)?;
        }
        Ok(())
    }

    /// An item of marks: `sk` a digest of them, so that the same marks make the same item.
    fn marks_item(pk: &str, marks: Vec<String>, expires: &AttributeValue) -> Item {
        let mut digest = sha2::Sha256::new();
        for mark in &marks {
            digest.update(mark.as_bytes());
            digest.update([0]);
        }
        let mut item = key(pk.to_string(), hex::encode(&digest.finalize()[..12]));
        item.insert("sent".into(), AttributeValue::Ss(marks));
        item.insert("ttl".into(), expires.clone());
        item
    }

    /// `Conflict` unless the notification exists (a strongly consistent read of its key): a count
    /// is never added for a notification there is not.
    pub(super) async fn must_exist(&self, id: NotificationId) -> StoreResult<()> {
        match self.get_item_key(key(Self::pk(id), META)).await? {
            true => Ok(()),
            false => Err(StoreError::Conflict(format!("notification {id} does not exist"))),
        }
    }

    /// Whether an item exists (a strongly consistent read of its key only).
    pub(super) async fn get_item_key(&self, item_key: Item) -> StoreResult<bool> {
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

    /// The notification, whether the `marker` exists, and the chunk's sent marks: one
    /// BatchGetItem and one Query (of the chunk's marks partition), side by side. With `content`
    /// (an email job's), the notification's email content is read in the same BatchGetItem;
    /// without, an item of an earlier version is left without it too (as the port says).
    pub(super) async fn context(
        &self,
        id: NotificationId,
        chunk: u32,
        marker: Item,
        content: bool,
    ) -> StoreResult<ChunkContext> {
        let marker_key = key_of(&marker);
        let marker_key = (marker_key.0.map(str::to_string), marker_key.1.map(str::to_string));
        let mut keys = vec![key(Self::pk(id), META), marker];
        // Marks written by earlier versions, under the notification's own key (one item per
        // chunk, then eight parts): read until they have expired (MARKS_DAYS after an upgrade).
        keys.push(key(Self::pk(id), format!("M#{chunk:08}")));
        keys.extend((0..LEGACY_MARK_PARTS).map(|part| key(Self::pk(id), format!("M#{chunk:08}#{part}"))));
        if content {
            // Every part's key: which ones the notification has is known once its item is read.
            keys.extend(Self::content_keys(id, &Self::every_part(), super::Parts::All));
        }
        let (found, marks) = futures::future::join(
            batch_get(&self.client, &self.table, keys, None, true, Backoff::default()),
            self.marks_of(id, chunk),
        )
        .await;
        let mut context = ChunkContext::default();
        context.marks.0.extend(marks?);
        let mut contents = std::collections::HashMap::new();
        let mut named = Vec::new();
        for item in found? {
            if let Some((_, part)) = Self::content_of(&item)? {
                contents.insert(part, item);
                continue;
            }
            let (pk, sk) = key_of(&item);
            if (pk.map(str::to_string), sk.map(str::to_string)) == marker_key {
                context.recorded = true;
                context.email_job_size =
                    item.get("emailJobSize").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
                continue;
            }
            match get_s(&item, "sk")? {
                META => {
                    named = Self::parts_apart(&item);
                    let n: Notification = from_item(item)?;
                    context.notification = Some(if content { n } else { n.without_email_content() });
                }
                _ => {
                    if let Some(AttributeValue::Ss(keys)) = item.get("sent") {
                        context.marks.0.extend(keys.iter().cloned());
                    }
                }
            }
        }
        if let Some(n) = context.notification.as_mut().filter(|_| content) {
            context.email_content_missing = Self::fill(n, &named, super::Parts::All, &contents)?;
        }
        Ok(context)
    }

    /// Runs a transaction, retrying it when DynamoDB cancelled it for a conflict with another
    /// transaction on one of its items (TransactionConflict) or for throttling: every deliverer
    /// finishing work on a notification updates its one META item, so they meet. Retried here
    /// with jitter, which spreads the contenders, instead of failing the work back to SQS.
    /// The last result and the tries made.
    pub(super) async fn transact(
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

    /// Puts `marker` (if absent) and applies `count` to a counter item in one transaction:
    /// `Recorded` once, `AlreadyRecorded` when the marker exists; `Conflict` for a notification
    /// there is not (`must_exist`: a counter item is created by its first count, so its own
    /// write cannot tell).
    pub(super) async fn count_once(
        &self,
        id: NotificationId,
        marker: Item,
        count: Update,
        what: &str,
    ) -> StoreResult<ChunkRecord> {
        self.must_exist(id).await?;
        let marker = self.put_if_absent(marker)?;
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

    /// The partition key of a chunk's sent marks: its own, apart from the notification's.
    pub(super) fn marks_pk(id: NotificationId, chunk: u32) -> String {
        format!("{}#M#{chunk:08}", Self::pk(id))
    }

    /// Every mark of a chunk (a strongly consistent Query of its marks partition, every page).
    async fn marks_of(&self, id: NotificationId, chunk: u32) -> StoreResult<Vec<String>> {
        let items = self.query_prefix(Self::marks_pk(id, chunk), "", Some("sent")).await?;
        let mut marks = Vec::new();
        for item in items {
            if let Some(AttributeValue::Ss(sent)) = item.get("sent") {
                marks.extend(sent.iter().cloned());
            }
        }
        Ok(marks)
    }

    pub(super) fn chunk_sk(chunk: u32) -> String {
        format!("C#{chunk:08}")
    }

    /// The lease item of a piece of work: `N#{id}`/`L#{chunk}` a chunk, `N#{id}`/`L#{chunk}#{part}`
    /// an email job, and a chunk's push job beside its pushes' marker, in the partition of the
    /// chunk's counters (`N#{id}#K#{shard}`/`L#{chunk}`: off the notification's key).
    pub(super) fn lease_key(id: NotificationId, work: Work) -> Item {
        match work {
            Work::Chunk(chunk) => key(Self::pk(id), format!("L#{chunk:08}")),
            Work::PushJob(chunk) => {
                key(Self::counters_pk(id, Self::counter_shard(chunk)), format!("L#{chunk:08}"))
            }
            Work::EmailJob { chunk, part } => key(Self::pk(id), format!("L#{chunk:08}#{part}")),
        }
    }

    /// The marker of a chunk's recorded pushes, in the partition of the chunk's counters.
    pub(super) fn pushes_key(id: NotificationId, chunk: u32) -> Item {
        key(Self::counters_pk(id, Self::counter_shard(chunk)), format!("P#{chunk:08}"))
    }

    pub(super) fn emails_sk(chunk: u32, part: u32) -> String {
        format!("E#{chunk:08}#{part}")
    }
}

/// Earlier versions kept a chunk's marks in this many growing items under the notification's key
/// (`M#{chunk}#{part}`, each write rewriting its part whole); they are still read.
const LEGACY_MARK_PARTS: u32 = 8;
/// The bytes of marks one marks item holds at most: with its keys and expiry (about 90 bytes) an
/// item stays under 1 KB, one write unit (69 marks of 13 bytes, the longest: a flush of
/// `MARK_BATCH` is one item; 23 of the 38-byte marks earlier versions wrote).
const MARK_ITEM_BYTES: usize = 900;
/// Marks items written at once (a chunk's largest flush is one or two).
const MARK_PUTS_IN_FLIGHT: usize = 16;

/// Tries of a transaction DynamoDB cancelled for a conflict with another transaction on one of
/// its items, or for throttling: up to 6, waiting up to 20, 40, 80, 160, 320 ms (full jitter).
const CONTENTION_RETRY: crate::backoff::Backoff = crate::backoff::Backoff {
    base: std::time::Duration::from_millis(20),
    cap: std::time::Duration::from_millis(500),
    max_attempts: 6,
};

/// A transaction cancelled because another one held an item, or for throttling (and no
/// condition failed): worth trying again at once.
pub(super) fn cancelled_for_contention(e: &SdkError<TransactWriteItemsError, HttpResponse>) -> bool {
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
pub(super) fn cancelled_by_condition(e: &SdkError<TransactWriteItemsError, HttpResponse>) -> bool {
    failed_conditions(e).contains(&true)
}

/// Which of a cancelled transaction's items failed their condition, in order (none: it was not
/// cancelled for a condition).
pub(super) fn failed_conditions(e: &SdkError<TransactWriteItemsError, HttpResponse>) -> Vec<bool> {
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
            t.cancellation_reasons().iter().map(|r| r.code() == Some("ConditionalCheckFailed")).collect()
        }
        _ => Vec::new(),
    }
}
