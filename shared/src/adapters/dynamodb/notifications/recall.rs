//! A recall's part of the ledger (`RecallLedger`), and the lists of people a chunk keeps
//! (`DeliveryLedger::keep_recipients`):
//! - `N#{id}#K#{chunk % 8}`/`R#{chunk}#{digest}`: the people an attempt at a chunk wrote entries
//!   for, as one binary attribute `people` of 16 bytes a person (a 2,000-person chunk: 32 KB,
//!   32 write units, 0.016 a person), put before its first entry, beside the chunk's counters
//!   (a broadcast's lists spread over eight partitions). Named by the first 16 hex digits of
//!   SHA-256 of the list: the same list kept again writes the same item, another attempt's list
//!   (a copy of the chunk from a resumed fan-out) a second item. `ttl`: when the entries expire,
//!   and a day.
//! - `closedAt` on a chunk's lease `N#{id}`/`L#{chunk}`: closed for good by a retraction, only
//!   when no attempt holds it (its lease ran out or was handed back); a start of a closed chunk
//!   is refused (`ledger.rs`, `control.rs`). A chunk that never started is closed by a lease item
//!   holding only `closedAt`: its first start's put finds it there.
//! - `N#{id}`/`D#{chunk}`: a chunk's retraction recorded (`people`, `recordedAt`), in the
//!   delivery log's key range.
//! - `RECALL`/`{id}`: a retraction not known to be finished (`dueMs`: its next look), put by the
//!   retraction's transaction (`control.rs`), moved on by each plan, deleted by the plan that
//!   finds every chunk done. One small partition: retractions are few, and the scheduler's tick
//!   reads the due ones each minute.

use sha2::{Digest, Sha256};

use super::*;

const KEPT: &str = "R#";
/// The partition of unfinished retractions.
pub(super) const UNFINISHED_PK: &str = super::super::RETRACTIONS_PARTITION;
const RETRACTED: &str = "D#";
const LEASE: &str = "L#";

impl DynamoNotificationStore {
    fn kept_prefix(chunk: u32) -> String {
        format!("{KEPT}{chunk:08}#")
    }

    /// Every item of partition `pk` whose sort key begins with `prefix`, strongly consistent,
    /// page after page, only `projection` read back (all of it when `None`). A chunk's sent
    /// marks are read with it too (`ledger.rs`).
    pub(super) async fn query_prefix(
        &self,
        pk: String,
        prefix: &str,
        projection: Option<&str>,
    ) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query =
                self.client.query().table_name(&self.table).expression_attribute_values(":pk", s(&pk));
            // The whole partition for an empty prefix (DynamoDB refuses an empty begins_with).
            query = match prefix {
                "" => query.key_condition_expression("pk = :pk"),
                _ => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix)),
            };
            let out = query
                .set_projection_expression(projection.map(str::to_string))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(items),
            }
        }
    }

    /// The chunk numbers of the sort keys `{prefix}{chunk:08}` (exactly: a longer key, an email
    /// job's lease `L#{chunk}#{part}`, is not a chunk's).
    fn chunks_of(items: &[Item], prefix: &str) -> Vec<u32> {
        let mut chunks: Vec<u32> = items
            .iter()
            .filter_map(|item| item.get("sk").and_then(|v| v.as_s().ok()))
            .filter_map(|sk| sk.strip_prefix(prefix))
            .filter(|rest| rest.len() == 8)
            .filter_map(|rest| rest.parse().ok())
            .collect();
        chunks.sort_unstable();
        chunks.dedup();
        chunks
    }

    pub(super) async fn ledger_keep_recipients(
        &self,
        id: NotificationId,
        chunk: u32,
        people: &[UserId],
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let packed: Vec<u8> = people.iter().flat_map(|u| *u.as_bytes()).collect();
        let digest = hex::encode(&Sha256::digest(&packed)[..8]);
        let mut item = key(
            Self::counters_pk(id, Self::counter_shard(chunk)),
            format!("{}{digest}", Self::kept_prefix(chunk)),
        );
        item.insert("people".into(), AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(packed)));
        item.insert("ttl".into(), n((until + chrono::Duration::days(1)).timestamp()));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(classify)?;
        Ok(())
    }
}

#[async_trait]
impl RecallLedger for DynamoNotificationStore {
    async fn started_chunks(&self, id: NotificationId) -> StoreResult<Vec<u32>> {
        let items = self.query_prefix(Self::pk(id), LEASE, Some("sk")).await?;
        Ok(Self::chunks_of(&items, LEASE))
    }

    async fn kept_chunks(&self, id: NotificationId) -> StoreResult<Vec<u32>> {
        let mut chunks = Vec::new();
        for shard in 0..super::counters::COUNTER_SHARDS {
            let items = self.query_prefix(Self::counters_pk(id, shard), KEPT, Some("sk")).await?;
            // `R#{chunk:08}#{digest}`: the chunk is the part before the digest.
            chunks.extend(
                items
                    .iter()
                    .filter_map(|item| item.get("sk").and_then(|v| v.as_s().ok()))
                    .filter_map(|sk| sk.strip_prefix(KEPT)?.split('#').next()?.parse::<u32>().ok()),
            );
        }
        chunks.sort_unstable();
        chunks.dedup();
        Ok(chunks)
    }

    async fn chunk_retracted(&self, id: NotificationId, chunk: u32) -> StoreResult<bool> {
        self.get_item_key(key(Self::pk(id), format!("{RETRACTED}{chunk:08}"))).await
    }

    async fn unfinished(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<NotificationId>> {
        let items = self.query_prefix(UNFINISHED_PK.to_string(), "", None).await?;
        let mut due: Vec<(i64, NotificationId)> = items
            .iter()
            .filter_map(|item| {
                let at = item.get("dueMs")?.as_n().ok()?.parse::<i64>().ok()?;
                let id = item.get("sk")?.as_s().ok()?.parse::<NotificationId>().ok()?;
                (at <= now.timestamp_millis()).then_some((at, id))
            })
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    async fn recheck(&self, id: NotificationId, at: Option<DateTime<Utc>>) -> StoreResult<()> {
        let item = key(UNFINISHED_PK, id.to_string());
        match at {
            Some(at) => {
                let moved = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(item))
                    .update_expression("SET dueMs = :at")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":at", n(at.timestamp_millis()))
                    .send()
                    .await
                    .map_err(classify);
                // Finished meanwhile (another plan found it so): it stays finished.
                applied(moved).map(|_| ())
            }
            None => {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(item))
                    .send()
                    .await
                    .map_err(classify)?;
                Ok(())
            }
        }
    }

    async fn retracted_chunks(&self, id: NotificationId) -> StoreResult<Vec<u32>> {
        let items = self.query_prefix(Self::pk(id), RETRACTED, Some("sk")).await?;
        Ok(Self::chunks_of(&items, RETRACTED))
    }

    async fn recipients(&self, id: NotificationId, chunk: u32) -> StoreResult<Vec<UserId>> {
        let pk = Self::counters_pk(id, Self::counter_shard(chunk));
        let items = self.query_prefix(pk, &Self::kept_prefix(chunk), Some("people")).await?;
        let mut seen = std::collections::HashSet::new();
        let mut people = Vec::new();
        for item in &items {
            let bytes = match item.get("people") {
                Some(AttributeValue::B(b)) => b.as_ref(),
                _ => {
                    return Err(StoreError::InvalidData(format!(
                        "chunk {chunk}'s people of {id} are not a list"
                    )));
                }
            };
            if bytes.len() % 16 != 0 {
                return Err(StoreError::InvalidData(format!("chunk {chunk}'s people of {id} are cut short")));
            }
            for person in bytes.chunks_exact(16) {
                let user = UserId::from_slice(person).expect("16 bytes");
                if seen.insert(user) {
                    people.push(user);
                }
            }
        }
        Ok(people)
    }

    async fn close_chunk(&self, id: NotificationId, chunk: u32, now: DateTime<Utc>) -> StoreResult<bool> {
        let close = |held_or_not: bool| {
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::lease_key(id, Work::Chunk(chunk))))
                // A chunk never started gets an item of its own: it expires as a lease does.
                .update_expression(
                    "SET closedAt = if_not_exists(closedAt, :at), #ttl = if_not_exists(#ttl, :ttl)",
                )
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":at", to_attr(&now).unwrap_or(AttributeValue::Null(true)))
                .expression_attribute_values(
                    ":ttl",
                    n((now + chrono::Duration::days(MARKS_DAYS)).timestamp()),
                );
            if !held_or_not {
                // Nobody holds it: never started, its lease ran out or was handed back, or closed.
                update = update
                    .condition_expression(
                        "attribute_not_exists(pk) OR attribute_exists(closedAt) OR attribute_not_exists(leaseUntil) OR leaseUntil < :now",
                    )
                    .expression_attribute_values(":now", n(now.timestamp_millis()));
            }
            update
        };
        if applied(close(false).send().await.map_err(classify))? {
            return Ok(true);
        }
        // Held: closed all the same once recorded (its attempt wrote every entry before).
        if !self.ledger_chunk_recorded(id, chunk).await? {
            return Ok(false);
        }
        close(true).send().await.map_err(classify)?;
        Ok(true)
    }

    async fn record_retracted(
        &self,
        id: NotificationId,
        chunk: u32,
        people: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut item = key(Self::pk(id), format!("{RETRACTED}{chunk:08}"));
        item.insert("people".into(), n(people));
        item.insert("recordedAt".into(), to_attr(&now)?);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(classify);
        // Recorded before (a step done again): the first record stays.
        applied(put).map(|_| ())
    }
}
