//! Cancelling a notification, and the gate every chunk passes to start: `N#{id}#K#{shard}`/`G`,
//! one item in each of the counters' partitions (`counters.rs`; a chunk's gate is its counters'
//! shard, so starts of a broadcast's chunks spread over `COUNTER_SHARDS` items and seldom meet
//! in a transaction), holding `reached` (the people of the chunks that started there) and, once
//! cancelled, `cancelledAt`. Like the counters, kept as long as the notification (no TTL): a
//! repeated cancel, any time later, answers the same count.
//!
//! A chunk's first start puts its lease and adds its people to its gate in one transaction,
//! conditional on the gate not being closed; a cancel moves the notification to `Cancelled` and
//! closes every gate in one transaction, conditional on the notification being unfinished. Each
//! is all or nothing, and DynamoDB serialises transactions on an item: a chunk either started
//! before the cancel (and is counted) or never starts. The gates' sum, read after the cancel,
//! is final.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::counters::COUNTER_SHARDS;
use super::*;

const GATE_SK: &str = "G";

impl DynamoNotificationStore {
    pub(super) fn gate_key(id: NotificationId, shard: u32) -> Item {
        key(Self::counters_pk(id, shard), GATE_SK)
    }

    /// The people reached: the sum of the gates (strongly consistent).
    async fn reached(&self, id: NotificationId) -> StoreResult<u64> {
        let keys = (0..COUNTER_SHARDS).map(|shard| Self::gate_key(id, shard)).collect();
        let items = batch_get(&self.client, &self.table, keys, None, true, Backoff::default()).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                item.get("reached").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u64>().ok())
            })
            .sum())
    }

    /// The writes that close the notification's eight gates (a transaction's items): the time
    /// of the first close stays.
    fn closing_gates(&self, id: NotificationId, now: DateTime<Utc>) -> StoreResult<Vec<TransactWriteItem>> {
        (0..COUNTER_SHARDS)
            .map(|shard| {
                let gate = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(Self::gate_key(id, shard)))
                    .update_expression("SET cancelledAt = if_not_exists(cancelledAt, :now)")
                    .expression_attribute_values(":now", to_attr(&now)?)
                    .build()
                    .map_err(|e| StoreError::Other(e.to_string()))?;
                Ok(TransactWriteItem::builder().update(gate).build())
            })
            .collect()
    }

    /// Whether a chunk's lease was closed by a retraction (strongly consistent).
    async fn chunk_closed(&self, lease: &Item) -> StoreResult<bool> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(lease.clone()))
            .projection_expression("closedAt")
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item.is_some_and(|item| item.contains_key("closedAt")))
    }

    async fn lease_exists(&self, lease: &Item) -> StoreResult<bool> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(lease.clone()))
            .projection_expression("pk")
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item.is_some())
    }

    /// A chunk's first start: its lease put and its people added to its gate, in one transaction
    /// (`None`: the gate is closed, nothing written); a lease that exists goes the way of
    /// `ledger_start` (its first start counted it).
    pub(super) async fn ledger_start_chunk(
        &self,
        id: NotificationId,
        chunk: u32,
        recipients: u64,
        holder: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ChunkStart>> {
        let lease = Self::lease_key(id, Work::Chunk(chunk));
        let start = Self::first_lease(&lease, holder, now, lease_until)?;
        let gate = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::gate_key(id, Self::counter_shard(chunk))))
            .update_expression("ADD reached :n")
            .condition_expression("attribute_not_exists(cancelledAt)")
            .expression_attribute_values(":n", n(recipients))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().put(self.put_if_absent(start)?).build(),
            TransactWriteItem::builder().update(gate).build(),
        ];
        match self.transact(items).await {
            (Ok(()), _) => Ok(Some(ChunkStart::First)),
            (Err(e), _) if cancelled_by_condition(&e) => {
                // Started before (counted then): a retry, or held by another attempt. Asked of
                // the lease itself when only the gate was named as refusing: a started chunk is
                // never refused.
                let started =
                    failed_conditions(&e).first() == Some(&true) || self.lease_exists(&lease).await?;
                match started {
                    // Held, or closed for good by a retraction (then, as a cancel, `None`).
                    true => match self.ledger_start(lease.clone(), holder, now, lease_until).await? {
                        ChunkStart::Held if self.chunk_closed(&lease).await? => Ok(None),
                        start => Ok(Some(start)),
                    },
                    false => Ok(None),
                }
            }
            (Err(e), attempt) if cancelled_for_contention(&e) => Err(StoreError::Transient(format!(
                "starting chunk {chunk} of {id}: transaction cancelled for contention {attempt} times"
            ))),
            (Err(e), _) => Err(classify(e)),
        }
    }
}

#[async_trait]
impl SendControl for DynamoNotificationStore {
    async fn change(&self, changed: &Notification, read: u64) -> StoreResult<ChangeOutcome> {
        let id = changed.id;
        let mut set = String::from(
            "SET content = :c, description = :d, dueAt = :due, dueMs = :dueMs, modifiedAt = :now, modifiedBy = :by, revision = :next",
        );
        let schedule = match &changed.schedule {
            Some(s) => {
                set.push_str(", schedule = :s");
                Some(to_attr(s)?)
            }
            None => {
                set.push_str(" REMOVE schedule");
                None
            }
        };
        // Still pending (the pending index keeps its place: its shard, the new due time), and
        // at the revision it was read (items of earlier versions have none: revision 0).
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .update_expression(set)
            .condition_expression(
                "#st = :pending AND (revision = :read OR (attribute_not_exists(revision) AND :read = :zero))",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", to_attr(&Status::Pending)?)
            .expression_attribute_values(":c", to_attr(&changed.content)?)
            .expression_attribute_values(":d", s(&changed.description))
            .expression_attribute_values(":due", to_attr(&changed.due_at)?)
            .expression_attribute_values(":dueMs", n(changed.due_at.timestamp_millis()))
            .expression_attribute_values(":now", to_attr(&changed.modified_at)?)
            .expression_attribute_values(":by", s(&changed.modified_by))
            .expression_attribute_values(":next", n(changed.revision))
            .expression_attribute_values(":read", n(read))
            .expression_attribute_values(":zero", n(0));
        if let Some(schedule) = schedule {
            req = req.expression_attribute_values(":s", schedule);
        }
        if applied(req.send().await.map_err(classify))? {
            return Ok(ChangeOutcome::Changed);
        }
        Ok(match self.get_meta(id).await? {
            None => ChangeOutcome::Missing,
            Some(n) if n.status != Status::Pending => ChangeOutcome::NotPending(n.status),
            Some(_) => ChangeOutcome::Stale,
        })
    }

    async fn retract(&self, id: NotificationId, by: &str, now: DateTime<Utc>) -> StoreResult<RetractOutcome> {
        let retraction = Cancellation { at: now, by: by.to_string() };
        let meta = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .update_expression("SET retracted = :r, modifiedAt = :now, modifiedBy = :by")
            // Out (its chunks fixed), not retracted yet, and stored by a version whose chunks keep
            // their people.
            .condition_expression(
                "#st IN (:delivered, :failed, :cancelled) AND attribute_not_exists(retracted) AND keepsRecipients = :true",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":r", to_attr(&retraction)?)
            .expression_attribute_values(":now", to_attr(&now)?)
            .expression_attribute_values(":by", s(by))
            .expression_attribute_values(":delivered", to_attr(&Status::Delivered)?)
            .expression_attribute_values(":failed", to_attr(&Status::Failed)?)
            .expression_attribute_values(":cancelled", to_attr(&Status::Cancelled)?)
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().update(meta).build()];
        // Closed, as a cancel closes them: a chunk that never started (a failed notification's
        // last ones, say) never starts after it.
        items.extend(self.closing_gates(id, now)?);
        // Unfinished until a plan finds every chunk done: the scheduler's tick looks again.
        let mut unfinished = key(super::recall::UNFINISHED_PK, id.to_string());
        // Its first look after its steps have had time to run (the request queues its plan).
        let first_look = now + chrono::Duration::seconds(RETRACTION_RECHECK_SECONDS);
        unfinished.insert("dueMs".into(), n(first_look.timestamp_millis()));
        let register = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(unfinished))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        items.push(TransactWriteItem::builder().put(register).build());
        match self.transact(items).await {
            (Ok(()), _) => {
                let reached = self.reached(id).await?;
                Ok(RetractOutcome::Retracted { retraction, reached, now: true })
            }
            (Err(e), _) if cancelled_by_condition(&e) => match self.get_meta(id).await? {
                None => Ok(RetractOutcome::Missing),
                Some(n) => match n.retracted {
                    Some(retraction) => {
                        let reached = self.reached(id).await?;
                        Ok(RetractOutcome::Retracted { retraction, reached, now: false })
                    }
                    None if matches!(n.status, Status::Pending | Status::FanningOut | Status::Delivering) => {
                        Ok(RetractOutcome::NotOut(n.status))
                    }
                    None if !n.keeps_recipients => Ok(RetractOutcome::Unrecorded(n.status)),
                    None => Err(StoreError::Transient(format!(
                        "notification {id} changed while it was being retracted"
                    ))),
                },
            },
            (Err(e), attempt) if cancelled_for_contention(&e) => Err(StoreError::Transient(format!(
                "retracting {id}: transaction cancelled for contention {attempt} times"
            ))),
            (Err(e), _) => Err(classify(e)),
        }
    }

    async fn correct(&self, changed: &Notification, read: u64) -> StoreResult<CorrectOutcome> {
        let id = changed.id;
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .update_expression(
                "SET content = :c, corrected = :k, modifiedAt = :now, modifiedBy = :by, revision = :next",
            )
            .condition_expression(
                "#st IN (:delivering, :delivered, :failed, :cancelled) AND attribute_not_exists(retracted) \
                 AND (revision = :read OR (attribute_not_exists(revision) AND :read = :zero))",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":c", to_attr(&changed.content)?)
            .expression_attribute_values(":k", to_attr(&changed.corrected)?)
            .expression_attribute_values(":now", to_attr(&changed.modified_at)?)
            .expression_attribute_values(":by", s(&changed.modified_by))
            .expression_attribute_values(":next", n(changed.revision))
            .expression_attribute_values(":read", n(read))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":delivering", to_attr(&Status::Delivering)?)
            .expression_attribute_values(":delivered", to_attr(&Status::Delivered)?)
            .expression_attribute_values(":failed", to_attr(&Status::Failed)?)
            .expression_attribute_values(":cancelled", to_attr(&Status::Cancelled)?);
        if applied(req.send().await.map_err(classify))? {
            return Ok(CorrectOutcome::Corrected);
        }
        Ok(match self.get_meta(id).await? {
            None => CorrectOutcome::Missing,
            Some(n) if n.retracted.is_some() => CorrectOutcome::Retracted,
            Some(n) if matches!(n.status, Status::Pending | Status::FanningOut) => {
                CorrectOutcome::NotOut(n.status)
            }
            Some(_) => CorrectOutcome::Stale,
        })
    }

    async fn cancel(&self, id: NotificationId, by: &str, now: DateTime<Utc>) -> StoreResult<CancelOutcome> {
        let cancellation = Cancellation { at: now, by: by.to_string() };
        let meta = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(Self::pk(id), META)))
            .update_expression(
                "SET #st = :cancelled, cancelled = :c, modifiedAt = :now, modifiedBy = :by REMOVE pendingShard, dueMs, leaseUntil",
            )
            // Going out, only if every chunk of it passes the gate (earlier versions' did not).
            .condition_expression("#st = :pending OR (#st IN (:fanning, :delivering) AND gated = :gated)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":cancelled", to_attr(&Status::Cancelled)?)
            .expression_attribute_values(":c", to_attr(&cancellation)?)
            .expression_attribute_values(":now", to_attr(&now)?)
            .expression_attribute_values(":by", s(by))
            .expression_attribute_values(":pending", to_attr(&Status::Pending)?)
            .expression_attribute_values(":fanning", to_attr(&Status::FanningOut)?)
            .expression_attribute_values(":delivering", to_attr(&Status::Delivering)?)
            .expression_attribute_values(":gated", AttributeValue::Bool(true))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().update(meta).build()];
        items.extend(self.closing_gates(id, now)?);
        match self.transact(items).await {
            (Ok(()), _) => {
                let reached = self.reached(id).await?;
                Ok(CancelOutcome::Cancelled { cancellation, reached, now: true })
            }
            (Err(e), _) if cancelled_by_condition(&e) => match self.get_meta(id).await? {
                None => Ok(CancelOutcome::Missing),
                Some(n) if n.status == Status::Cancelled => {
                    let cancellation =
                        n.cancelled.unwrap_or(Cancellation { at: n.modified_at, by: n.modified_by.clone() });
                    let reached = self.reached(id).await?;
                    Ok(CancelOutcome::Cancelled { cancellation, reached, now: false })
                }
                Some(n) if n.status.cancellable() && !n.gated => Ok(CancelOutcome::Ungated(n.status)),
                // Its condition failed on a state that is no longer there: asked again, it decides.
                Some(n) if n.status.cancellable() => Err(StoreError::Transient(format!(
                    "notification {id} changed while it was being cancelled"
                ))),
                Some(n) => Ok(CancelOutcome::Finished(n.status)),
            },
            (Err(e), attempt) if cancelled_for_contention(&e) => Err(StoreError::Transient(format!(
                "cancelling {id}: transaction cancelled for contention {attempt} times"
            ))),
            (Err(e), _) => Err(classify(e)),
        }
    }
}
