//! Notifications table: `N#{id}`/`META` (the notification), its email's body and parameters
//! apart from it (`content.rs`: `N#{id}#C`/`BODY` and `PARAMS`, written once), its counts apart from it
//! (`counters.rs`: `N#{id}#K#{shard}`/`K`, added to the item's own by every read; beside each,
//! `P#{chunk}` a chunk's counted pushes and `L#{chunk}` its push job's lease), the delivery
//! ledger beside it
//! (`ledger.rs`: `C#{chunk}` chunk markers, `E#{chunk}#{part}` email-job markers,
//! `F#{kind}#{message}` bounce and complaint markers, the sent marks in a partition of each
//! chunk's own (`N#{id}#M#{chunk}`/`{digest}`, one small item per flush; the `M#{chunk}` and
//! `M#{chunk}#{part}` items of earlier versions still read), `L#{chunk}` and `L#{chunk}#{part}` the leases of the attempts writing a chunk's entries and
//! sending an email job, TTL), `S#{scheduleId}`/`META` (schedule-id pointer), `COUNTER`/`scheduleId`, and
//! `I#{scope}`/`IDEM` (idempotency records, TTL, `idempotency.rs`). Indexes: `pending` (sparse,
//! write-sharded by due time), `history` (company + type) and `scope` (event or asset), both
//! sparse: group sends only.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem};
use chrono::{DateTime, Utc};

use super::*;
use crate::model::*;
use crate::ports::*;

mod content;
mod control;
mod counters;
mod idempotency;
mod ledger;
mod log;
mod recall;

use content::Parts;

use ledger::*;

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
    /// Whether an email's body and parameters are written apart (`content.rs`); read either way.
    content_apart: bool,
}

impl DynamoNotificationStore {
    pub fn new(client: Client, table: impl Into<String>, pending_shards: u32) -> Self {
        DynamoNotificationStore {
            client,
            table: table.into(),
            pending_shards: pending_shards.max(1),
            content_apart: true,
        }
    }

    /// Writes emails' content apart (`EMAIL_CONTENT_APART=true`, and this store's own default) or
    /// inside the notification's item, as earlier versions did (the deployed default until a
    /// stage's every function reads both: docs/deploy.md). Either way both shapes are read.
    pub fn content_apart(mut self, apart: bool) -> Self {
        self.content_apart = apart;
        self
    }

    fn pk(id: NotificationId) -> String {
        format!("N#{id}")
    }

    /// The shard of the pending index a notification lives in: stable, spread by id.
    fn shard(&self, id: NotificationId) -> u32 {
        (id.as_u128() % self.pending_shards as u128) as u32
    }

    /// A transaction's Put of `item`, refused (cancelling the transaction) if its key exists.
    fn put_if_absent(&self, item: Item) -> StoreResult<Put> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))
    }

    /// The notification's item, and its email's content items (`content.rs`).
    fn items(&self, notification: &Notification) -> StoreResult<(Item, Vec<Item>)> {
        let (item, content) = Self::split_content(notification, self.content_apart)?;
        Ok((self.item(notification, item), content))
    }

    fn item(&self, notification: &Notification, mut item: Item) -> Item {
        item.extend(key(Self::pk(notification.id), META));
        if notification.status == Status::Pending {
            item.insert("pendingShard".into(), s(format!("P#{}", self.shard(notification.id))));
            item.insert("dueMs".into(), n(notification.due_at.timestamp_millis()));
        }
        // The history indexes hold the group-send API's record only (sparse: other origins have
        // no key there, so they cost no index writes either).
        if notification.origin != Origin::GroupSend {
            return item;
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
        item
    }

    /// The notification with its counts, without its email's content (its item, then its
    /// counter items: both strongly consistent).
    async fn get_meta(&self, id: NotificationId) -> StoreResult<Option<Notification>> {
        let Some((n, _)) = self.get_meta_item(id).await? else { return Ok(None) };
        Ok(self.with_counts(vec![n.without_email_content()], true).await?.pop())
    }

    /// The notification's item (strongly consistent), and the parts of its email's content it
    /// keeps apart.
    async fn get_meta_item(&self, id: NotificationId) -> StoreResult<Option<(Notification, Vec<String>)>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let Some(item) = out.item else { return Ok(None) };
        let apart = Self::parts_apart(&item);
        Ok(Some((from_item(item)?, apart)))
    }

    /// The notification a schedule id points to, if any.
    async fn id_of_schedule(&self, schedule_id: u64) -> StoreResult<Option<NotificationId>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("S#{schedule_id}"), META)))
            // Strongly consistent: a cancel right after its send finds it.
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        match out.item {
            None => Ok(None),
            Some(item) => get_s(&item, "notificationId")?
                .parse()
                .map(Some)
                .map_err(|_| StoreError::InvalidData("bad schedule pointer".into())),
        }
    }

    /// Moves a Delivering notification whose every chunk is recorded to Delivered (`Conflict`
    /// when it is not done, or not Delivering): its counts read, then one conditional update.
    async fn mark_delivered_if_done(&self, id: NotificationId, now: DateTime<Utc>) -> StoreResult<()> {
        let done = self.get_meta(id).await?.is_some_and(|n| {
            n.status == Status::Delivering && n.chunks_total.is_some_and(|total| n.chunks_done >= total)
        });
        if !done {
            return Err(StoreError::Conflict(format!("notification {id} is not done")));
        }
        let moved = self
            .update_if(
                id,
                Status::Delivering,
                None,
                "SET #st = :delivered, modifiedAt = :now",
                vec![(":delivered", to_attr(&Status::Delivered)?), (":now", to_attr(&now)?)],
            )
            .await?;
        match moved {
            true => Ok(()),
            false => Err(StoreError::Conflict(format!("notification {id} is not delivering"))),
        }
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
impl NotificationLookup for DynamoNotificationStore {
    async fn get(&self, id: NotificationId) -> StoreResult<Option<Notification>> {
        self.get_meta(id).await
    }

    async fn get_by_schedule_id(&self, schedule_id: u64) -> StoreResult<Option<Notification>> {
        match self.id_of_schedule(schedule_id).await? {
            Some(id) => self.get_meta(id).await,
            None => Ok(None),
        }
    }
}

#[async_trait]
impl NotificationIntake for DynamoNotificationStore {
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
        // The notification, its schedule-id pointer and its email's content: all or none.
        let (meta, content) = self.items(notification)?;
        let mut pointer = key(format!("S#{}", notification.schedule_id), META);
        pointer.insert("notificationId".into(), s(notification.id.to_string()));
        let items = [meta, pointer]
            .into_iter()
            .chain(content)
            .map(|item| Ok(TransactWriteItem::builder().put(self.put_if_absent(item)?).build()))
            .collect::<StoreResult<Vec<_>>>()?;
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
}

#[async_trait]
impl FanoutLedger for DynamoNotificationStore {
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
}

#[async_trait]
impl WorkLeases for DynamoNotificationStore {
    async fn start(
        &self,
        id: NotificationId,
        work: Work,
        holder: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<ChunkStart> {
        self.ledger_start(Self::lease_key(id, work), holder, now, lease_until).await
    }

    async fn release(
        &self,
        id: NotificationId,
        work: Work,
        holder: &str,
        held: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.ledger_release(Self::lease_key(id, work), holder, held).await
    }
}

#[async_trait]
impl DeliveryLedger for DynamoNotificationStore {
    async fn start_chunk(
        &self,
        id: NotificationId,
        chunk: u32,
        recipients: u64,
        holder: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ChunkStart>> {
        self.ledger_start_chunk(id, chunk, recipients, holder, now, lease_until).await
    }

    async fn keep_recipients(
        &self,
        id: NotificationId,
        chunk: u32,
        people: &[UserId],
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.ledger_keep_recipients(id, chunk, people, until).await
    }

    async fn record_chunk(
        &self,
        id: NotificationId,
        chunk: u32,
        tally: &ChunkTally,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        self.ledger_record_chunk(id, chunk, tally, now).await
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
        self.ledger_chunk_recorded(id, chunk).await
    }

    async fn chunk_context(&self, id: NotificationId, chunk: u32) -> StoreResult<ChunkContext> {
        self.ledger_chunk_context(id, chunk).await
    }

    async fn push_context(&self, id: NotificationId, chunk: u32) -> StoreResult<ChunkContext> {
        self.ledger_push_context(id, chunk).await
    }

    async fn record_pushes(
        &self,
        id: NotificationId,
        chunk: u32,
        counts: &PushCounts,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        self.ledger_record_pushes(id, chunk, counts, now).await
    }

    async fn add_sent_marks(
        &self,
        id: NotificationId,
        chunk: u32,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.ledger_add_sent_marks(id, chunk, keys, now).await
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
            // A delivered notification stays delivered: its people have it; a cancelled one
            // stays cancelled: its sender was told whom it reached.
            .condition_expression("attribute_exists(pk) AND #st <> :delivered AND #st <> :cancelled")
            .expression_attribute_values(":delivered", to_attr(&Status::Delivered)?)
            .expression_attribute_values(":cancelled", to_attr(&Status::Cancelled)?)
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":failed", to_attr(&Status::Failed)?)
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":now", to_attr(&now)?)
            .send()
            .await
            .map_err(classify);
        if applied(result)? {
            return Ok(());
        }
        // Cancelled: the first reason a chunk it counted was given up is kept beside its status.
        let kept = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .update_expression("SET failure = :why, modifiedAt = :now")
            .condition_expression("#st = :cancelled AND attribute_not_exists(failure)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":cancelled", to_attr(&Status::Cancelled)?)
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":now", to_attr(&now)?)
            .send()
            .await
            .map_err(classify);
        // A failed condition (the item is gone, delivered, or its reason kept) is nothing to do.
        applied(kept).map(|_| ())
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
}

#[async_trait]
impl EmailLedger for DynamoNotificationStore {
    async fn email_context(&self, id: NotificationId, chunk: u32, part: u32) -> StoreResult<ChunkContext> {
        self.ledger_email_context(id, chunk, part).await
    }

    async fn record_emails(
        &self,
        id: NotificationId,
        chunk: u32,
        part: u32,
        counts: &EmailCounts,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        self.ledger_record_emails(id, chunk, part, counts, now).await
    }

    async fn record_feedback(
        &self,
        id: NotificationId,
        message_id: &str,
        kind: FeedbackKind,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        self.ledger_record_feedback(id, message_id, kind, now).await
    }
}

#[async_trait]
impl SentHistory for DynamoNotificationStore {
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
        let mut apart = std::collections::HashMap::new();
        for item in &items {
            apart.insert(id_from_pk(get_s(item, "pk")?)?, Self::parts_apart(item));
        }
        let items = items
            .into_iter()
            .map(|item| from_item(item).map(Notification::without_email_body))
            .collect::<StoreResult<Vec<Notification>>>()?;
        // History may lag a moment behind: its counts are read eventually consistent. (The
        // parameters, written with the notification, are there once the index shows it.)
        let mut items = self.with_counts(items, false).await?;
        self.fill_content(&mut items, &apart, Parts::Params).await?;
        Ok(Page { items, next })
    }

    async fn record(&self, schedule_id: u64) -> StoreResult<Option<Notification>> {
        let Some(id) = self.id_of_schedule(schedule_id).await? else { return Ok(None) };
        let Some((n, named)) = self.get_meta_item(id).await? else { return Ok(None) };
        let mut found = self.with_counts(vec![n.without_email_body()], true).await?;
        self.fill_content(&mut found, &std::collections::HashMap::from([(id, named)]), Parts::Params).await?;
        Ok(found.pop())
    }
}

#[async_trait]
impl IdempotencyStore for DynamoNotificationStore {
    async fn claim_idempotency(
        &self,
        scope: &str,
        digest: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyClaim> {
        self.store_claim_idempotency(scope, digest, expires_at, now).await
    }

    async fn complete_idempotency(&self, r: &IdempotencyRecord) -> StoreResult<()> {
        self.store_complete_idempotency(r).await
    }

    async fn release_idempotency(&self, scope: &str) -> StoreResult<()> {
        self.store_release_idempotency(scope).await
    }
}
