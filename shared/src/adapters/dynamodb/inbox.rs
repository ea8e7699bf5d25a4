//! Inbox table, no secondary index (an index would write every entry again):
//! - content, once per notification: `C#{notificationId}`/`C`, the whole content and `order`
//!   (its display key), `ttl`;
//! - one entry per recipient: `U#{userId}`/`O#{order}`, where `order` is the display key
//!   (`{rank}#{inverted ms}#{id}`, High first then newest), so the center is read in order
//!   straight from the table and `since` is one key range per rank. It holds only `expiresMs`,
//!   `deliveredMs`, `ttl` and the person's marks (`seenMs`, `readMs`, `unreadMs`,
//!   `archivedMs`, `unarchivedMs`, `dismissedMs`): about 200 bytes, one write unit;
//! - the person's watermarks: `U#{userId}`/`W` (`seenMs`, `readMs`, `archivedMs`);
//! - a late entry's pointer, `U#{userId}`/`L#{delivered ms}#{notificationId}` (`order`, `ttl`):
//!   only for entries written more than [`LATE_AFTER`] after their notification's creation.
//!
//! A read of the center is the watermarks and a query of the entries (in parallel), then one
//! BatchGetItem of the page's contents. Which entries a view shows is decided by the model's rule
//! after the query (a filter expression would be billed the same: DynamoDB charges for the items
//! it reads, not those it returns). `ttl` is the DynamoDB TTL attribute; reads check `expiresMs`
//! because TTL deletion runs late.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use super::*;
use crate::model::*;
use crate::ports::*;

const ENTRY: &str = "O#";
/// A late entry's pointer: `L#{delivered ms:013}#{notification}`, holding its `order`.
const LATE: &str = "L#";
const WATERMARKS: &str = "W";
const CONTENT_SK: &str = "C";
/// Entries a query asks for at least: about 4 KB of entries, one read unit.
const MIN_QUERY: usize = 20;

/// An entry written more than this after its notification's creation is **late**: a pointer
/// to it (`L#…`) is written first, dated before the entry, so that a read by delivery time
/// (`since`, `deliveredSince`) finds it without walking the person's older entries. Every other
/// entry was created at most this long before it was delivered, so what was delivered after an
/// instant lies in one key range per rank, from this long before it. An hour: longer than a
/// broadcast's fan-out takes (a million people at a new table's 4,000 write units a second:
/// about 4 minutes; throttled retries a few more), so only a chunk retried for long (or
/// redriven from its dead-letter queue) pays its pointers, one write unit a person more.
const LATE_AFTER: chrono::Duration = chrono::Duration::hours(1);
/// How long after its pointer an entry's write may go out: an invocation's longest life
/// (Lambda's 15 minutes). A pointer is written for an entry that may be late by then, and a read
/// by delivery time reads the pointers from this long before its instant.
const POINTER_SLACK: chrono::Duration = chrono::Duration::minutes(15);

pub struct DynamoInboxStore {
    client: Client,
    table: String,
    backoff: Backoff,
}

fn user_pk(user: UserId) -> String {
    format!("U#{user}")
}

fn content_key(id: NotificationId) -> Item {
    key(format!("C#{id}"), CONTENT_SK)
}

fn ms(at: DateTime<Utc>) -> AttributeValue {
    n(at.timestamp_millis())
}

fn time_of(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .and_then(DateTime::from_timestamp_millis)
}

fn invalid(why: impl Into<String>) -> StoreError {
    StoreError::InvalidData(why.into())
}

/// The attribute of each mark, and of each watermark.
const MARKS: [&str; 6] = ["seenMs", "readMs", "unreadMs", "archivedMs", "unarchivedMs", "dismissedMs"];

fn entry_item(e: &InboxEntry) -> Item {
    let mut item = key(user_pk(e.user_id), format!("{ENTRY}{}", e.order().text()));
    item.insert("expiresMs".into(), ms(e.expires_at));
    item.insert("deliveredMs".into(), ms(e.delivered_at));
    item.insert("ttl".into(), n(e.expires_at.timestamp()));
    let m = &e.marks;
    let marks = [m.seen_at, m.read_at, m.unread_at, m.archived_at, m.unarchived_at, m.dismissed_at];
    for (name, at) in MARKS.iter().zip(marks) {
        if let Some(at) = at {
            item.insert((*name).into(), ms(at));
        }
    }
    item
}

fn entry_of(user: UserId, item: &Item) -> StoreResult<InboxEntry> {
    let sk = get_s(item, "sk")?;
    let order =
        order_of_item(item).ok_or_else(|| invalid(format!("inbox entry key {sk:?} is not a display key")))?;
    let time = |name: &str| time_of(item, name);
    Ok(InboxEntry {
        user_id: user,
        notification_id: order.id,
        priority: order.priority(),
        created_at: order.created_at(),
        expires_at: time("expiresMs").ok_or_else(|| invalid(format!("inbox entry {sk} has no expiresMs")))?,
        delivered_at: time("deliveredMs").unwrap_or_default(),
        marks: Marks {
            seen_at: time("seenMs"),
            read_at: time("readMs"),
            unread_at: time("unreadMs"),
            archived_at: time("archivedMs"),
            unarchived_at: time("unarchivedMs"),
            dismissed_at: time("dismissedMs"),
        },
    })
}

fn watermarks_of(item: Option<&Item>) -> Watermarks {
    let time = |name: &str| item.and_then(|i| time_of(i, name));
    Watermarks { seen_at: time("seenMs"), read_at: time("readMs"), archived_at: time("archivedMs") }
}

/// The watermarks a mark-all sets, by their attribute names.
fn watermark_names(mark: MarkAll) -> &'static [&'static str] {
    match mark {
        MarkAll::Seen => &["seenMs"],
        MarkAll::Read { archive: false } => &["seenMs", "readMs"],
        MarkAll::Read { archive: true } => &["seenMs", "readMs", "archivedMs"],
    }
}

/// The one write of each mark, and whether it applies to a dismissed entry.
fn mark_update(mark: Mark) -> (&'static str, bool) {
    match mark {
        Mark::Seen => ("SET seenMs = if_not_exists(seenMs, :at)", false),
        Mark::Read => (
            "SET seenMs = if_not_exists(seenMs, :at), readMs = if_not_exists(readMs, :at) REMOVE unreadMs",
            false,
        ),
        Mark::Unread => ("SET unreadMs = :at REMOVE readMs", false),
        Mark::Archived => ("SET archivedMs = if_not_exists(archivedMs, :at) REMOVE unarchivedMs", false),
        Mark::Unarchived => ("SET unarchivedMs = :at REMOVE archivedMs", false),
        Mark::Dismissed => ("SET dismissedMs = if_not_exists(dismissedMs, :at)", true),
    }
}

/// A page's position: the display key of its last entry.
fn encode_position(order: &OrderKey) -> String {
    URL_SAFE_NO_PAD.encode(format!("i:{}", order.text()))
}

fn decode_position(token: &str) -> StoreResult<OrderKey> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("i:").and_then(OrderKey::parse))
        .ok_or_else(|| StoreError::BadToken("nextToken is not a token this service issued".into()))
}

impl DynamoInboxStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoInboxStore { client, table: table.into(), backoff: Backoff::default() }
    }

    async fn watermarks(&self, user: UserId) -> StoreResult<Watermarks> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), WATERMARKS)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(watermarks_of(out.item.as_ref()))
    }

    /// One query of entries with sort keys in `lo..=hi`, after `start` (exclusive): the items
    /// and whether the range goes on past them.
    async fn entries(
        &self,
        user: UserId,
        (lo, hi): (&str, &str),
        start: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<Item>, Option<String>)> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(user_pk(user)))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi))
            .set_exclusive_start_key(start.map(|sk| key(user_pk(user), sk)))
            .consistent_read(true)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(classify)?;
        let last = match out.last_evaluated_key {
            Some(k) => Some(get_s(&k, "sk")?.to_string()),
            None => None,
        };
        Ok((out.items.unwrap_or_default(), last))
    }

    /// The contents of these notifications, by id. Eventually consistent first (contents never
    /// change); a content written a moment ago is read again strongly consistent.
    async fn contents(&self, ids: &[NotificationId]) -> StoreResult<HashMap<NotificationId, InboxContent>> {
        let mut found = HashMap::new();
        for consistent in [false, true] {
            let missing: Vec<Item> =
                ids.iter().filter(|id| !found.contains_key(*id)).map(|id| content_key(*id)).collect();
            if missing.is_empty() {
                break;
            }
            for item in batch_get(&self.client, &self.table, missing, None, consistent, self.backoff).await? {
                let content: InboxContent = from_item(item)?;
                found.insert(content.notification_id, content);
            }
        }
        Ok(found)
    }

    /// Entries joined with their contents, in their order; an entry whose content is missing is
    /// left out (contents are written before any entry, so this is a lost content).
    async fn join(&self, entries: Vec<InboxEntry>, w: &Watermarks) -> StoreResult<Vec<InboxItem>> {
        let ids: Vec<NotificationId> = entries.iter().map(|e| e.notification_id).collect();
        let mut contents = self.contents(&ids).await?;
        let mut items = Vec::with_capacity(entries.len());
        for mut entry in entries {
            // A person has one entry per notification: each content joins once.
            let content = match contents.remove(&entry.notification_id) {
                Some(c) => c,
                None => {
                    tracing::warn!(notification = %entry.notification_id, "inbox entry without content");
                    continue;
                }
            };
            entry.created_at = content.created_at;
            let state = entry.state(w);
            items.push(InboxItem { entry, content, state });
        }
        Ok(items)
    }
}

#[async_trait]
impl InboxDelivery for DynamoInboxStore {
    async fn put_content(&self, content: &InboxContent) -> StoreResult<()> {
        let mut item = to_item(content)?;
        item.extend(content_key(content.notification_id));
        item.insert("order".into(), s(content.order().text()));
        item.insert("ttl".into(), n(content.expires_at.timestamp()));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(classify)?;
        Ok(())
    }

    async fn put_entries(&self, entries: &[InboxEntry], stamp: &dyn Clock) -> StoreResult<()> {
        use futures::StreamExt;
        // The last write of each (user, notification); 25 a request, several in flight.
        let items = last_of_each_key(entries.iter().map(entry_item).collect());
        // Pointers first: an entry that lands is found by its pointer the moment it is there (a
        // pointer to an entry that is not, or is older than what a read asks for, finds nothing).
        self.put_pointers(&items, stamp.now()).await?;
        let batches: Vec<Vec<Item>> = items.chunks(25).map(<[Item]>::to_vec).collect();
        let writes = batches.into_iter().map(|batch| self.write_entries_once(batch, stamp));
        let results: Vec<StoreResult<()>> =
            futures::stream::iter(writes).buffer_unordered(BATCH_WRITES_IN_FLIGHT).collect().await;
        results.into_iter().collect()
    }

    async fn put_new_entries(&self, entries: &[InboxEntry], stamp: &dyn Clock) -> StoreResult<Vec<UserId>> {
        self.put_missing(entries.iter().map(entry_item).collect(), stamp).await
    }
}

/// The display key of an entry's item (`None` for any other item).
fn order_of_item(item: &Item) -> Option<OrderKey> {
    item.get("sk").and_then(|v| v.as_s().ok()).and_then(|sk| sk.strip_prefix(ENTRY)).and_then(OrderKey::parse)
}

/// Dates an entry's item as its write goes out: the later of its own time and `at`.
fn stamped(mut item: Item, at: DateTime<Utc>) -> Item {
    let now = at.timestamp_millis();
    let own = item.get("deliveredMs").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
    item.insert("deliveredMs".into(), n(own.map_or(now, |own| own.max(now))));
    item
}

/// Whether an entry whose pointer would be dated `at` may be late when its write goes out (at
/// most [`POINTER_SLACK`] later): written more than [`LATE_AFTER`] after its creation.
fn may_be_late(order: &OrderKey, at: DateTime<Utc>) -> bool {
    at + POINTER_SLACK - order.created_at() > LATE_AFTER
}

impl DynamoInboxStore {
    /// The pointers, dated `at`, of the entries of `items` that may be late (see [`LATE_AFTER`]),
    /// written blind (a pointer holds nothing of the person's).
    async fn put_pointers(&self, items: &[Item], at: DateTime<Utc>) -> StoreResult<()> {
        let pointers: Vec<Item> = items
            .iter()
            .filter_map(|entry| {
                let (order, pk) = (order_of_item(entry)?, get_s(entry, "pk").ok()?);
                may_be_late(&order, at).then(|| {
                    let mut item =
                        key(pk, format!("{LATE}{:013}#{}", at.timestamp_millis().max(0), order.id));
                    item.insert("order".into(), s(order.text()));
                    if let Some(ttl) = entry.get("ttl") {
                        item.insert("ttl".into(), ttl.clone());
                    }
                    item
                })
            })
            .collect();
        match pointers.is_empty() {
            true => Ok(()),
            false => batch_put(&self.client, &self.table, pointers, self.backoff).await,
        }
    }
}

impl DynamoInboxStore {
    /// One BatchWriteItem of a chunk's first attempt, written blind (one write unit an entry),
    /// and never blind twice where the first may have landed: it is tried again as it was only
    /// when none of it was written (its UnprocessedItems; DynamoDB refusing it for throughput),
    /// with backoff; after any other failure (a 5xx, a timeout, an answer lost: its entries may
    /// exist, and their people may have acted on them since) what it held is written as a retry
    /// writes it, only the entries that do not exist, conditionally. So the SDK does not retry it
    /// itself (it would send it again blind). Each attempt dates its entries as it goes out.
    async fn write_entries_once(&self, batch: Vec<Item>, stamp: &dyn Clock) -> StoreResult<()> {
        let no_retries = aws_sdk_dynamodb::config::Builder::default()
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled());
        let mut pending = batch;
        let mut attempt = 0;
        loop {
            let at = stamp.now();
            let mut requests = Vec::with_capacity(pending.len());
            for item in std::mem::take(&mut pending) {
                let put = aws_sdk_dynamodb::types::PutRequest::builder()
                    .set_item(Some(stamped(item, at)))
                    .build()
                    .map_err(|e| StoreError::Other(e.to_string()))?;
                requests.push(aws_sdk_dynamodb::types::WriteRequest::builder().put_request(put).build());
            }
            let sent = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests.clone())
                .customize()
                .config_override(no_retries.clone())
                .send()
                .await;
            let items_of = |requests: Vec<aws_sdk_dynamodb::types::WriteRequest>| -> Vec<Item> {
                requests.into_iter().filter_map(|r| r.put_request.map(|p| p.item)).collect()
            };
            let refused = match sent {
                Ok(out) => {
                    pending = items_of(
                        out.unprocessed_items.and_then(|mut m| m.remove(&self.table)).unwrap_or_default(),
                    );
                    if pending.is_empty() {
                        return Ok(());
                    }
                    None
                }
                Err(e) if refused_for_throughput(&e) => {
                    pending = items_of(requests);
                    Some(e)
                }
                // Refused as a client error (validation, access, a missing table): nothing was
                // written, and writing it piecemeal would only hide why.
                Err(e) if refused_as_client_error(&e) => return Err(classify(e)),
                Err(e) => {
                    tracing::info!(error = %e, entries = requests.len(), "an entries' batch may have landed: written again only where absent");
                    return self.put_missing(items_of(requests), stamp).await.map(|_| ());
                }
            };
            attempt += 1;
            if attempt >= self.backoff.max_attempts {
                return Err(match refused {
                    Some(e) => classify(e),
                    None => StoreError::Transient(format!(
                        "{} entries still unprocessed after {attempt} attempts",
                        pending.len()
                    )),
                });
            }
            tokio::time::sleep(self.backoff.delay(attempt)).await;
        }
    }

    /// Writes the entries of `items` that do not exist, conditionally (after the pointers of
    /// those that may be late): whose it wrote. An entry a person has gets no new pointer: a
    /// read by delivery time does not find it again as new.
    async fn put_missing(&self, items: Vec<Item>, stamp: &dyn Clock) -> StoreResult<Vec<UserId>> {
        use futures::StreamExt;
        // Which entries exist first, by their keys alone (read units: half a unit per entry, an
        // eventually consistent read being enough, as the put below is still conditional):
        // a conditional write whose condition fails is billed a write unit all the same, so
        // trying every entry again would spend a chunk's whole write budget on the people who
        // have theirs, and under throttling leave the others unwritten attempt after attempt.
        let keys: Vec<Item> = items
            .iter()
            .map(|i| match key_of(i) {
                (Some(pk), Some(sk)) => Ok(key(pk, sk)),
                _ => Err(StoreError::InvalidData("an entry without its key".into())),
            })
            .collect::<StoreResult<_>>()?;
        let found = batch_get(&self.client, &self.table, keys, Some("pk, sk"), false, self.backoff).await?;
        let have: std::collections::HashSet<_> = found.iter().map(key_of).collect();
        let missing: Vec<Item> = items.iter().filter(|i| !have.contains(&key_of(i))).cloned().collect();
        self.put_pointers(&missing, stamp.now()).await?;
        // Still conditional: an entry nobody had a moment ago is written only if it is still absent.
        let puts = missing.into_iter().map(|item| async move {
            let user = get_s(&item, "pk")?
                .strip_prefix("U#")
                .and_then(|u| u.parse::<UserId>().ok())
                .ok_or_else(|| invalid("an entry's key names no person"))?;
            let written = put_if_absent(&self.client, &self.table, stamped(item, stamp.now())).await?;
            Ok::<_, StoreError>(written.then_some(user))
        });
        let results: Vec<StoreResult<Option<UserId>>> =
            futures::stream::iter(puts).buffer_unordered(CONDITIONAL_PUTS_IN_FLIGHT).collect().await;
        let mut written = Vec::new();
        for result in results {
            written.extend(result?);
        }
        Ok(written)
    }
}

/// Whether DynamoDB answered with a client error other than throughput (4xx: nothing was done).
fn refused_as_client_error<E>(e: &aws_sdk_dynamodb::error::SdkError<E, HttpResponse>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    match e {
        aws_sdk_dynamodb::error::SdkError::ServiceError(service) => {
            service.raw().status().is_client_error() && !refused_for_throughput(e)
        }
        _ => false,
    }
}

/// Whether DynamoDB refused the whole request for throughput (nothing of it was done).
fn refused_for_throughput<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    let code = match e {
        aws_sdk_dynamodb::error::SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    };
    matches!(
        code,
        Some("ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded")
    )
}

/// Writes `item` unless its key exists: whether it was written.
async fn put_if_absent(client: &Client, table: &str, item: Item) -> StoreResult<bool> {
    let put = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .map_err(classify);
    applied(put)
}

/// Conditional entry writes of one `put_new_entries` in flight at once: a chunk's 2,000 take
/// about 2,000 / 16 round trips.
const CONDITIONAL_PUTS_IN_FLIGHT: usize = 16;

#[async_trait]
impl Center for DynamoInboxStore {
    async fn get(&self, user: UserId, notification: NotificationId) -> StoreResult<Option<InboxItem>> {
        // The content first, whole: it gives the entry's key, and is what the item shows.
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(content_key(notification)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let Some(content) = out.item.map(from_item::<InboxContent>).transpose()? else { return Ok(None) };
        let keys = vec![
            key(user_pk(user), format!("{ENTRY}{}", content.order().text())),
            key(user_pk(user), WATERMARKS),
        ];
        let found = batch_get(&self.client, &self.table, keys, None, true, self.backoff).await?;
        let (marks, entries): (Vec<Item>, Vec<Item>) =
            found.into_iter().partition(|i| get_s(i, "sk").is_ok_and(|sk| sk == WATERMARKS));
        let Some(entry) = entries.first() else { return Ok(None) };
        let mut entry = entry_of(user, entry)?;
        entry.created_at = content.created_at;
        let state = entry.state(&watermarks_of(marks.first()));
        Ok(Some(InboxItem { entry, content, state }))
    }

    async fn list(
        &self,
        user: UserId,
        query: &InboxQuery,
        now: DateTime<Utc>,
        page: &PageRequest,
    ) -> StoreResult<Page<InboxItem>> {
        if let Some(from) = query.delivered_from() {
            return self.list_delivered(user, query, now, page, from).await;
        }
        let after =
            page.after.as_deref().map(decode_position).transpose()?.map(|o| format!("{ENTRY}{}", o.text()));
        let ranges = [(ENTRY.to_string(), format!("{ENTRY}~"))];
        let limit = page.limit.max(1);
        let (w, admitted) = self.walk(user, &ranges, after.as_deref(), limit, (query, now), None).await?;
        let (admitted, next) = page_of(admitted, limit);
        Ok(Page { items: self.join(admitted, &w).await?, next })
    }

    async fn count(&self, user: UserId, now: DateTime<Utc>, window: usize) -> StoreResult<InboxCounts> {
        let range = (ENTRY, &*format!("{ENTRY}~"));
        // One more than the window: whether there are more is then known without another read.
        let (w, (items, _)) =
            futures::try_join!(self.watermarks(user), self.entries(user, range, None, window + 1))?;
        let mut counts = InboxCounts { exact: items.len() <= window, ..InboxCounts::default() };
        for item in items.iter().take(window) {
            let entry = entry_of(user, item)?;
            if !entry.is_expired(now) {
                counts.add(&entry.state(&w));
            }
        }
        Ok(counts)
    }

    async fn mark(
        &self,
        user: UserId,
        notification: NotificationId,
        mark: Mark,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let Some(order) = self.order_of(notification).await? else { return Ok(false) };
        let (update, when_dismissed) = mark_update(mark);
        let condition = match when_dismissed {
            true => "attribute_exists(pk) AND expiresMs > :at",
            false => "attribute_exists(pk) AND expiresMs > :at AND attribute_not_exists(dismissedMs)",
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), format!("{ENTRY}{}", order.text()))))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_values(":at", ms(at))
            .send()
            .await
            .map_err(classify);
        applied(result)
    }

    async fn mark_all(&self, user: UserId, mark: MarkAll, at: DateTime<Utc>) -> StoreResult<()> {
        // Each watermark only moves forward: all of them at once when none is later (the usual
        // case, one write), else each on its own, conditionally.
        let names = watermark_names(mark);
        let forward = |name: &str| format!("(attribute_not_exists({name}) OR {name} < :at)");
        let update = |names: &[&str]| {
            let set: Vec<String> = names.iter().map(|n| format!("{n} = :at")).collect();
            let condition: Vec<String> = names.iter().map(|n| forward(n)).collect();
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(user), WATERMARKS)))
                .update_expression(format!("SET {}", set.join(", ")))
                .condition_expression(condition.join(" AND "))
                .expression_attribute_values(":at", ms(at))
                .send()
        };
        if applied(update(names).await.map_err(classify))? || names.len() == 1 {
            return Ok(());
        }
        for name in names {
            applied(update(&[name]).await.map_err(classify))?;
        }
        Ok(())
    }
}

/// A page of `limit` out of up to `limit + 1` entries in display order, and the position after
/// it when there was one more.
fn page_of(mut entries: Vec<InboxEntry>, limit: usize) -> (Vec<InboxEntry>, Option<String>) {
    match entries.len() > limit {
        true => {
            entries.truncate(limit);
            let next = entries.last().map(|e| encode_position(&e.order()));
            (entries, next)
        }
        false => (entries, None),
    }
}

impl DynamoInboxStore {
    /// The entries of `user`'s that `query` admits at `now`, in display order over `ranges` (each
    /// `(lo, hi)` of sort keys, in order) after the sort key `after`, until `limit + 1` are: with
    /// the watermarks, read with the first query unless given. A view the entries rarely pass
    /// (archived ones, read ones) reads on in queries that double, up to 1,000 entries (about
    /// 200 KB) each: N entries walked take at most about log2(N / 50) + N / 1,000 queries, not
    /// N / 50 (a large inbox, once walked in hundreds of sequential queries, could reach the
    /// function's timeout).
    async fn walk(
        &self,
        user: UserId,
        ranges: &[(String, String)],
        after: Option<&str>,
        limit: usize,
        (query, now): (&InboxQuery, DateTime<Utc>),
        mut w: Option<Watermarks>,
    ) -> StoreResult<(Watermarks, Vec<InboxEntry>)> {
        let mut admitted: Vec<InboxEntry> = Vec::new();
        'ranges: for (lo, hi) in ranges {
            // The range the cursor is in continues after it; ranges before it are done.
            let mut start = match after {
                Some(a) if a >= hi.as_str() => continue,
                Some(a) if a >= lo.as_str() => Some(a.to_string()),
                _ => None,
            };
            let mut ask = MIN_QUERY;
            loop {
                let want = (limit + 1 - admitted.len()).max(ask);
                ask = (want * 2).min(1000);
                let (items, last) = match w {
                    Some(_) => self.entries(user, (lo, hi), start.as_deref(), want).await?,
                    // The first query goes with the watermarks' read.
                    None => {
                        let (marks, first) = futures::try_join!(
                            self.watermarks(user),
                            self.entries(user, (lo, hi), start.as_deref(), want)
                        )?;
                        w = Some(marks);
                        first
                    }
                };
                let marks = w.as_ref().expect("read with the first query");
                for item in &items {
                    let entry = entry_of(user, item)?;
                    if query.admits(&entry, marks, now) {
                        admitted.push(entry);
                        if admitted.len() > limit {
                            break 'ranges;
                        }
                    }
                }
                match last {
                    Some(sk) => start = Some(sk),
                    None => break,
                }
            }
        }
        Ok((w.unwrap_or_default(), admitted))
    }

    /// Every item of `user`'s with a sort key in `lo..=hi` (queries of up to 1 MB each).
    async fn range(&self, user: UserId, (lo, hi): (&str, &str)) -> StoreResult<Vec<Item>> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let (items, last) = self.entries(user, (lo, hi), start.as_deref(), 1000).await?;
            all.extend(items);
            match last {
                Some(sk) => start = Some(sk),
                None => return Ok(all),
            }
        }
    }

    /// A read by delivery time (`since`, `deliveredSince`): what was delivered at or after
    /// `from` was created at most [`LATE_AFTER`] before it (one key range per rank from then on,
    /// walked in display order from the page's position until the page is full), or is late and
    /// has a pointer dated at most [`POINTER_SLACK`] before it (one key range, read whole:
    /// pointers are few). Every entry found is kept by the query's own rule (its delivery time
    /// included), so a pointer to an older entry finds nothing new. Never the person's older
    /// entries.
    async fn list_delivered(
        &self,
        user: UserId,
        query: &InboxQuery,
        now: DateTime<Utc>,
        page: &PageRequest,
        from: DateTime<Utc>,
    ) -> StoreResult<Page<InboxItem>> {
        let after = page.after.as_deref().map(decode_position).transpose()?;
        let limit = page.limit.max(1);
        let late =
            (format!("{LATE}{:013}", (from - POINTER_SLACK).timestamp_millis().max(0)), format!("{LATE}~"));
        let (w, pointers) = futures::try_join!(self.watermarks(user), self.range(user, (&late.0, &late.1)))?;
        let pointed: std::collections::BTreeSet<OrderKey> = pointers
            .iter()
            .filter_map(|p| OrderKey::parse(get_s(p, "order").ok()?))
            .filter(|o| after.is_none_or(|a| *o > a))
            .collect();
        // The pointed entries and the on-time ones read at once: the page is the first limit + 1
        // of the two together (those of the walk beyond its first limit + 1 come after them).
        let read_pointed = async {
            let mut got = Vec::new();
            if !pointed.is_empty() {
                let keys: Vec<Item> =
                    pointed.iter().map(|o| key(user_pk(user), format!("{ENTRY}{}", o.text()))).collect();
                for item in batch_get(&self.client, &self.table, keys, None, true, self.backoff).await? {
                    let entry = entry_of(user, &item)?;
                    if query.admits(&entry, &w, now) {
                        got.push(entry);
                    }
                }
            }
            Ok::<_, StoreError>(got)
        };
        // The on-time entries, rank by rank in display order, until limit + 1 are admitted.
        let window = from - LATE_AFTER - chrono::Duration::milliseconds(1);
        let ranges: Vec<(String, String)> = OrderKey::RANKS
            .iter()
            .map(|rank| {
                let (lo, hi) = OrderKey::created_after(*rank, window);
                (format!("{ENTRY}{lo}"), format!("{ENTRY}{hi}"))
            })
            .collect();
        let after_sk = after.map(|o| format!("{ENTRY}{}", o.text()));
        let walk = async {
            let (_, walked) =
                self.walk(user, &ranges, after_sk.as_deref(), limit, (query, now), Some(w)).await?;
            Ok::<_, StoreError>(walked)
        };
        let (pointed, walked) = futures::try_join!(read_pointed, walk)?;
        let found: std::collections::BTreeMap<OrderKey, InboxEntry> =
            pointed.into_iter().chain(walked).map(|e| (e.order(), e)).collect();
        let (page, next) = page_of(found.into_values().take(limit + 1).collect(), limit);
        Ok(Page { items: self.join(page, &w).await?, next })
    }
}

impl DynamoInboxStore {
    /// A notification's display key, from its content (`None` if there is none).
    async fn order_of(&self, id: NotificationId) -> StoreResult<Option<OrderKey>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(content_key(id)))
            .projection_expression("#o")
            .expression_attribute_names("#o", "order")
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        match out.item {
            None => Ok(None),
            Some(item) => {
                let text = get_s(&item, "order")?;
                OrderKey::parse(text)
                    .map(Some)
                    .ok_or_else(|| invalid(format!("content of {id} has order {text:?}")))
            }
        }
    }
}
