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
//!   only for entries written more than [`LATE_AFTER`] after their notification's creation;
//! - a marker of each mark a person made one by one that a view lists apart
//!   ([`Candidates::Marked`]: read, unread, archived, unarchived), `U#{userId}`/
//!   `M#{R|U|A|N}#{order}` (`ttl`), written before the mark and kept until the entry expires: the
//!   archived view is the markers of the archived ones (and what an archive watermark covers), not
//!   a walk of the whole inbox.
//!
//! Which entries a view reads is the model's [`InboxQuery::candidates`]: every entry for the
//! default view (dense: the page is its first query), else the sets where what the view admits
//! can be (delivered after a watermark, created before one, marked so). Each set is walked in
//! display order from the page's position, at most [`WALK_BUDGET`] items each: a page whose sets
//! end their budget before it is full holds what was found and a position to go on from, so every
//! answer is bounded whatever the size of the inbox.
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

mod earlier;
pub use earlier::EarlierCopy;

const ENTRY: &str = "O#";
/// A late entry's pointer: `L#{delivered ms:013}#{notification}`, holding its `order`.
const LATE: &str = "L#";
const WATERMARKS: &str = "W";
const CONTENT_SK: &str = "C";
/// Entries a query asks for at least: about 4 KB of entries, one read unit.
const MIN_QUERY: usize = 20;
/// A marker of a mark made one by one: `M#{code}#{order}`.
const MARKED: &str = "M#";
/// Items (entries, markers) a read of the center walks at most in each of a view's candidate
/// sets: about 50 KB of entries, 13 read units strongly consistent; a view has at most two sets.
/// More than a page of the largest size (100) and one, so a dense view always fills its page.
pub const WALK_BUDGET: usize = 250;
/// Entries a set reads by key (those a marker or a pointer names: a read unit each, strongly
/// consistent) beyond the page's limit and one, at most; the set is cut after them.
const FETCH_SLACK: usize = 10;

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
    walk_budget: usize,
    fetch_slack: usize,
    pointers_read: usize,
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

/// A notification's content item: the content, its display key and its expiry.
fn content_item(content: &InboxContent) -> StoreResult<Item> {
    let mut item = to_item(content)?;
    item.extend(content_key(content.notification_id));
    item.insert("order".into(), s(content.order().text()));
    item.insert("ttl".into(), n(content.expires_at.timestamp()));
    Ok(item)
}

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

/// The sort-key prefix of the markers of `mark` (for the marks kept apart).
fn marker_prefix(mark: Mark) -> Option<String> {
    let code = match mark {
        Mark::Read => "R",
        Mark::Unread => "U",
        Mark::Archived => "A",
        Mark::Unarchived => "N",
        Mark::Seen | Mark::Dismissed => return None,
    };
    Some(format!("{MARKED}{code}#"))
}

fn marker_key(user_pk: &str, mark: Mark, order: &OrderKey) -> Option<Item> {
    marker_prefix(mark).map(|prefix| key(user_pk, format!("{prefix}{}", order.text())))
}

/// The markers of the marks an entry's item carries (an entry written with marks: a test's, a
/// restore's; a delivery's carry none).
fn markers_of(entry: &Item) -> Vec<Item> {
    let (Some(order), Ok(pk)) = (order_of_item(entry), get_s(entry, "pk")) else { return Vec::new() };
    Mark::ALL
        .iter()
        .zip(MARKS)
        .filter(|(mark, name)| mark.is_marked_apart() && entry.contains_key(*name))
        .filter_map(|(mark, _)| {
            let mut item = marker_key(pk, *mark, &order)?;
            if let Some(ttl) = entry.get("ttl") {
                item.insert("ttl".into(), ttl.clone());
            }
            Some(item)
        })
        .collect()
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
        DynamoInboxStore {
            client,
            table: table.into(),
            backoff: Backoff::default(),
            walk_budget: WALK_BUDGET,
            fetch_slack: FETCH_SLACK,
            pointers_read: POINTERS_READ,
        }
    }

    /// The same store walking at most `items` per candidate set (a test's small budget cuts every
    /// set, to check that pages cut anywhere still make the view).
    pub fn with_walk_budget(mut self, items: usize) -> Self {
        self.walk_budget = items.max(1);
        self.fetch_slack = self.fetch_slack.min(items);
        self
    }

    /// The same store reading at most `pointers` late entries' pointers before it walks every
    /// entry instead (a test's small number takes that way).
    pub fn with_pointers_read(mut self, pointers: usize) -> Self {
        self.pointers_read = pointers.max(1);
        self
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

    /// The contents of these notifications, by id. Eventually consistent first (a content is
    /// written once, and again only by a correction: a read within about a second of one may
    /// show the content before it); a content written a moment ago is read again strongly
    /// consistent.
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
        let item = content_item(content)?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // Never over a correction (it carries a revision): a fan-out writing the content
            // again is writing what the correction replaced.
            .condition_expression("attribute_not_exists(revision)")
            .send()
            .await
            .map_err(classify);
        applied(put).map(|_| ())
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

    /// The content item again, with its `revision`, on the condition that no later one is
    /// there (the fan-out's, without one, is the first).
    async fn correct_content(&self, content: &InboxContent, revision: u64) -> StoreResult<()> {
        let mut item = content_item(content)?;
        item.insert("revision".into(), n(revision));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(revision) OR revision < :r")
            .expression_attribute_values(":r", n(revision))
            .send()
            .await
            .map_err(classify);
        // A later correction is there: it stays.
        applied(put).map(|_| ())
    }

    /// Deletes by key (one write unit an entry, as its write): the entry's markers and late
    /// pointer, if it had any, name an entry no longer there, which every read skips, and
    /// expire with it.
    async fn remove_entries(&self, entries: &[InboxEntry]) -> StoreResult<()> {
        let keys =
            entries.iter().map(|e| key(user_pk(e.user_id), format!("{ENTRY}{}", e.order().text()))).collect();
        batch_delete(&self.client, &self.table, keys, self.backoff).await
    }
}

/// The display key of an entry's item (`None` for any other item).
fn order_of_item(item: &Item) -> Option<OrderKey> {
    item.get("sk").and_then(|v| v.as_s().ok()).and_then(|sk| order_after(sk, ENTRY))
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
    /// and the markers of the marks they carry, written blind (neither holds anything of the
    /// person's).
    async fn put_pointers(&self, items: &[Item], at: DateTime<Utc>) -> StoreResult<()> {
        let pointers: Vec<Item> = items
            .iter()
            .flat_map(markers_of)
            .chain(items.iter().filter_map(|entry| {
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
            }))
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
        let after = page.after.as_deref().map(decode_position).transpose()?;
        let after_sk = after.map(|o| format!("{ENTRY}{}", o.text()));
        let limit = page.limit.max(1);
        let ask = Ask { user, after, after_sk, limit, query, now };
        let every = every_entry();
        // Unbounded by delivery, the first query of every entry goes with the watermarks' read:
        // the default view's page is in it (the candidates are known only with the watermarks).
        let (w, first) = match query.delivered_from() {
            Some(_) => (self.watermarks(user).await?, None),
            None => {
                let want = (limit + 1).max(MIN_QUERY);
                let (w, first) = futures::try_join!(
                    self.watermarks(user),
                    self.entries(user, (&every[0].0, &every[0].1), ask.after_sk.as_deref(), want)
                )?;
                (w, Some(first))
            }
        };
        let sets = query.candidates(&w);
        let found = match first {
            Some((items, last)) => {
                let mut seed = Found::default();
                ask.admit(&w, &items, &mut seed.entries)?;
                let settled = seed.entries.len() > limit || last.is_none();
                match (settled, sets.as_slice()) {
                    (true, _) => vec![seed],
                    // Every entry is a candidate: the walk goes on from the first query.
                    (false, [Candidates::Every]) => {
                        vec![self.walk(&ask, &w, &every, last.as_deref(), (seed, items.len())).await?]
                    }
                    (false, _) => self.candidates(&ask, &w, &sets).await?,
                }
            }
            None => self.candidates(&ask, &w, &sets).await?,
        };
        let (entries, next) = merged(found, limit);
        Ok(Page { items: self.join(entries, &w).await?, next })
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
        let Some((order, ttl)) = self.order_of(notification).await? else { return Ok(false) };
        let pk = user_pk(user);
        // The marker first: a view that lists this mark finds the entry the moment it carries
        // it (a marker of a mark that then did not apply finds an entry the view does not admit).
        let marker = marker_key(&pk, mark, &order).map(|mut item| {
            item.extend(ttl.map(|ttl| ("ttl".to_string(), ttl)));
            item
        });
        if let Some(item) = marker {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(classify)?;
        }
        let (update, when_dismissed) = mark_update(mark);
        let condition = match when_dismissed {
            true => "attribute_exists(pk) AND expiresMs > :at",
            false => "attribute_exists(pk) AND expiresMs > :at AND attribute_not_exists(dismissedMs)",
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), format!("{ENTRY}{}", order.text()))))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_values(":at", ms(at))
            .send()
            .await
            .map_err(classify);
        let marked = applied(result)?;
        // A dismissal is final: the entry is in no view, and every marker it may have goes,
        // those of undone marks too.
        // A marker outlives its mark's undo (deleting it then would race a mark made again at
        // the same moment, and lose the entry from its view): a view walks it and finds the entry
        // not admitted, one item. If this mark did not apply (the entry is dismissed, expired or
        // not there, in no view), its marker goes.
        let ended: Vec<Mark> = match (marked, mark) {
            (true, Mark::Dismissed) => Mark::ALL.to_vec(),
            (true, _) => Vec::new(),
            (false, _) => vec![mark],
        };
        let deletes =
            ended.into_iter().filter_map(|m| marker_key(&pk, m, &order)).map(|key| self.delete_marker(key));
        futures::future::join_all(deletes).await;
        Ok(marked)
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

/// A read of the center: whose, from which position (and its entry's sort key), how many,
/// which, when.
struct Ask<'a> {
    user: UserId,
    after: Option<OrderKey>,
    after_sk: Option<String>,
    limit: usize,
    query: &'a InboxQuery,
    now: DateTime<Utc>,
}

impl Ask<'_> {
    /// The entries of `items` this read admits, added to `found`.
    fn admit(&self, w: &Watermarks, items: &[Item], found: &mut Vec<InboxEntry>) -> StoreResult<()> {
        for item in items {
            let entry = entry_of(self.user, item)?;
            if self.query.admits(&entry, w, self.now) {
                found.push(entry);
            }
        }
        Ok(())
    }
}

/// What one candidate set gave: the entries the read admits after its position, in display
/// order (the first `limit + 1` at least, when there are that many), and the key where its walk
/// stopped for its budget with more of the set after it.
#[derive(Default)]
struct Found {
    entries: Vec<InboxEntry>,
    cut: Option<OrderKey>,
}

/// Every entry's sort keys: one range.
fn every_entry() -> [(String, String); 1] {
    [(ENTRY.to_string(), format!("{ENTRY}~"))]
}

/// The entries' sort-key ranges of each rank, in display order, from the display-key bounds of
/// each.
fn rank_ranges(bounds: impl Fn(u8) -> (String, String)) -> Vec<(String, String)> {
    OrderKey::RANKS
        .iter()
        .map(|rank| {
            let (lo, hi) = bounds(*rank);
            (format!("{ENTRY}{lo}"), format!("{ENTRY}{hi}"))
        })
        .collect()
}

/// The page of what the candidate sets found: their entries up to the first cut (past it a set
/// was not read), the first `limit`; the position after it when there is more (one more entry,
/// or a set cut short).
fn merged(found: Vec<Found>, limit: usize) -> (Vec<InboxEntry>, Option<String>) {
    let bound = found.iter().filter_map(|f| f.cut).min();
    let all: std::collections::BTreeMap<OrderKey, InboxEntry> = found
        .into_iter()
        .flat_map(|f| f.entries)
        .filter(|e| bound.is_none_or(|b| e.order() <= b))
        .map(|e| (e.order(), e))
        .collect();
    let mut entries: Vec<InboxEntry> = all.into_values().take(limit + 1).collect();
    match entries.len() > limit {
        true => {
            entries.truncate(limit);
            let next = entries.last().map(|e| encode_position(&e.order()));
            (entries, next)
        }
        false => (entries, bound.map(|b| encode_position(&b))),
    }
}

/// The display key of a sort key after its prefix (an entry's `O#`, a marker's `M#{code}#`).
fn order_after(sk: &str, prefix: &str) -> Option<OrderKey> {
    sk.strip_prefix(prefix).and_then(OrderKey::parse)
}

impl DynamoInboxStore {
    /// What each candidate set holds for this read, the sets read at once.
    async fn candidates(
        &self,
        ask: &Ask<'_>,
        w: &Watermarks,
        sets: &[Candidates],
    ) -> StoreResult<Vec<Found>> {
        let reads = sets.iter().map(|set| async move {
            let after = ask.after_sk.as_deref();
            match *set {
                Candidates::Every => self.walk(ask, w, &every_entry(), after, Default::default()).await,
                Candidates::CreatedBy(at) => {
                    let ranges = rank_ranges(|rank| OrderKey::created_by(rank, at));
                    self.walk(ask, w, &ranges, after, Default::default()).await
                }
                Candidates::DeliveredFrom(from) => self.delivered_from(ask, w, from).await,
                Candidates::Marked(mark) => self.walk_marked(ask, w, mark).await,
            }
        });
        futures::future::try_join_all(reads).await
    }

    /// The entries the read admits over `ranges` of sort keys (each `(lo, hi)`, in display order)
    /// after the sort key `after`, added to `seed` (found, and items walked, so far): until
    /// `limit + 1` are, or [`WALK_BUDGET`] items were walked (the walk is then cut at the last).
    /// Queries start at a page and double, up to the budget: a view the entries rarely pass
    /// walks its budget in a few queries, not one a page.
    async fn walk(
        &self,
        ask: &Ask<'_>,
        w: &Watermarks,
        ranges: &[(String, String)],
        after: Option<&str>,
        (mut found, mut walked): (Found, usize),
    ) -> StoreResult<Found> {
        let mut ask_for = MIN_QUERY;
        for (lo, hi) in ranges {
            // The range the position is in continues after it; ranges before it are done.
            let mut start = match after {
                Some(a) if a >= hi.as_str() => continue,
                Some(a) if a >= lo.as_str() => Some(a.to_string()),
                _ => None,
            };
            loop {
                if found.entries.len() > ask.limit {
                    return Ok(found);
                }
                // Cut at the last key walked (at a range's start, whose bound is no key, one
                // more item is read to cut at).
                if walked >= self.walk_budget
                    && let Some(cut) = start.as_deref().and_then(|sk| order_after(sk, ENTRY))
                {
                    found.cut = Some(cut);
                    return Ok(found);
                }
                let room = self.walk_budget.saturating_sub(walked).max(1);
                let want = (ask.limit + 1 - found.entries.len()).max(ask_for).min(room);
                ask_for = (want * 2).min(self.walk_budget);
                let (items, last) = self.entries(ask.user, (lo, hi), start.as_deref(), want).await?;
                walked += items.len();
                ask.admit(w, &items, &mut found.entries)?;
                match last {
                    Some(sk) => start = Some(sk),
                    None => break,
                }
            }
        }
        Ok(found)
    }

    /// The entries marked `mark` one by one that the read admits: their markers walked in display
    /// order from the position, the entries they name read strongly consistent (a mark made a
    /// moment ago is in its view), until `limit + 1` are, or `limit + 1` and [`FETCH_SLACK`]
    /// entries were read (a marker outlives an undo, and an entry marked so may be one the view
    /// does not show), or the budget is walked.
    async fn walk_marked(&self, ask: &Ask<'_>, w: &Watermarks, mark: Mark) -> StoreResult<Found> {
        let Some(prefix) = marker_prefix(mark) else { return Ok(Found::default()) };
        let hi = format!("{prefix}~");
        let mut start = ask.after.map(|o| format!("{prefix}{}", o.text()));
        let mut found = Found::default();
        let budget = self.walk_budget.min(ask.limit + 1 + self.fetch_slack);
        let (mut walked, mut ask_for) = (0, MIN_QUERY);
        while found.entries.len() <= ask.limit {
            if walked >= budget {
                found.cut = start.as_deref().and_then(|sk| order_after(sk, &prefix));
                break;
            }
            let want = (ask.limit + 1 - found.entries.len()).max(ask_for).min(budget - walked);
            ask_for = (want * 2).min(budget);
            let (markers, last) = self.entries(ask.user, (&prefix, &hi), start.as_deref(), want).await?;
            walked += markers.len();
            let named = markers.iter().filter_map(|m| order_after(get_s(m, "sk").ok()?, &prefix));
            found.entries.extend(self.read_admitted(ask, w, named).await?);
            match last {
                Some(sk) => start = Some(sk),
                None => break,
            }
        }
        Ok(found)
    }

    /// What was delivered at or after `from` (`since`, `deliveredSince`, what a watermark does
    /// not cover): created at most [`LATE_AFTER`] before it (one key range per rank from then on,
    /// walked in display order from the position), or late, with a pointer dated at most
    /// [`POINTER_SLACK`] before it (one query of the pointers: late entries are few; more than a
    /// query's worth, and every entry is walked instead, within the budget; the pointed entries
    /// read are the first [`FETCH_SLACK`] more than a page, the set cut after them). Every entry found is
    /// kept by the read's own rule, so a pointer to an older entry finds nothing new.
    async fn delivered_from(&self, ask: &Ask<'_>, w: &Watermarks, from: DateTime<Utc>) -> StoreResult<Found> {
        let after_sk = ask.after_sk.as_deref();
        let late =
            (format!("{LATE}{:013}", (from - POINTER_SLACK).timestamp_millis().max(0)), format!("{LATE}~"));
        let (pointers, more) = self.entries(ask.user, (&late.0, &late.1), None, self.pointers_read).await?;
        if more.is_some() {
            return self.walk(ask, w, &every_entry(), after_sk, Default::default()).await;
        }
        let mut pointed: std::collections::BTreeSet<OrderKey> = pointers
            .iter()
            .filter_map(|p| OrderKey::parse(get_s(p, "order").ok()?))
            .filter(|o| ask.after.is_none_or(|a| *o > a))
            .collect();
        // The first in display order, each read by its key: a page's worth and a few; the set is
        // cut after them.
        let fetch = ask.limit + 1 + self.fetch_slack;
        let pointed_cut = match pointed.len() > fetch {
            true => {
                let last = *pointed.iter().nth(fetch - 1).expect("more than fetch");
                pointed.retain(|o| *o <= last);
                Some(last)
            }
            false => None,
        };
        // The pointed entries and the on-time ones read at once.
        let read_pointed = self.read_admitted(ask, w, pointed);
        let window = from - LATE_AFTER - chrono::Duration::milliseconds(1);
        let ranges = rank_ranges(|rank| OrderKey::created_after(rank, window));
        let walk = self.walk(ask, w, &ranges, after_sk, Default::default());
        let (pointed, mut walked) = futures::try_join!(read_pointed, walk)?;
        walked.cut = walked.cut.into_iter().chain(pointed_cut).min();
        walked.entries.extend(pointed);
        walked.entries.sort_by_key(InboxEntry::order);
        walked.entries.dedup_by_key(|e| e.order());
        Ok(walked)
    }

    /// The entries named by their display keys that the read admits, in display order: read by
    /// key, strongly consistent (a mark made a moment ago, a late entry just written, is there).
    async fn read_admitted(
        &self,
        ask: &Ask<'_>,
        w: &Watermarks,
        named: impl IntoIterator<Item = OrderKey>,
    ) -> StoreResult<Vec<InboxEntry>> {
        let keys: Vec<Item> =
            named.into_iter().map(|o| key(user_pk(ask.user), format!("{ENTRY}{}", o.text()))).collect();
        let mut admitted = Vec::new();
        if !keys.is_empty() {
            let items = batch_get(&self.client, &self.table, keys, None, true, self.backoff).await?;
            ask.admit(w, &items, &mut admitted)?;
        }
        admitted.sort_by_key(InboxEntry::order);
        Ok(admitted)
    }
}

impl DynamoInboxStore {
    /// Deletes a marker, best effort: one left behind costs a view an item walked, never a wrong
    /// answer.
    async fn delete_marker(&self, marker: Item) {
        let deleted = self.client.delete_item().table_name(&self.table).set_key(Some(marker)).send().await;
        if let Err(e) = deleted {
            let e = classify(e);
            tracing::info!(error = %e, "a marker was left behind (harmless: filtered when read)");
        }
    }

    /// The upgrade to markers: writes the marker of every mark kept apart that an entry carries
    /// (marks made by a version that wrote none), so the archived and read views list them.
    /// One Scan of the whole table (billed by what it reads, contents included: half a read unit
    /// per 4 KB), markers written blind (a marker holds nothing of the person's: writing one
    /// twice writes the same).
    /// Run once after the deploy that brings markers (docs/deploy.md); the entries it found with
    /// such marks, and the markers it wrote.
    pub async fn backfill_markers(&self) -> StoreResult<(u64, u64)> {
        let (mut found, mut written) = (0u64, 0u64);
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "begins_with(sk, :entry) AND attribute_not_exists(dismissedMs) AND (attribute_exists(readMs) \
                     OR attribute_exists(unreadMs) OR attribute_exists(archivedMs) OR attribute_exists(unarchivedMs))",
                )
                .expression_attribute_values(":entry", s(ENTRY))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            let items = out.items.unwrap_or_default();
            found += items.len() as u64;
            let markers: Vec<Item> = items.iter().flat_map(markers_of).collect();
            written += markers.len() as u64;
            if !markers.is_empty() {
                batch_put(&self.client, &self.table, markers, self.backoff).await?;
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok((found, written)),
            }
        }
    }
}

/// Pointers a read by delivery time reads in one query at most (about 160 bytes each: 10 read
/// units); more, and it walks every entry instead, within the budget.
const POINTERS_READ: usize = 250;

impl DynamoInboxStore {
    /// A notification's display key and `ttl`, from its content (`None` if there is none).
    async fn order_of(&self, id: NotificationId) -> StoreResult<Option<(OrderKey, Option<AttributeValue>)>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(content_key(id)))
            .projection_expression("#o, #t")
            .expression_attribute_names("#o", "order")
            .expression_attribute_names("#t", "ttl")
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        match out.item {
            None => Ok(None),
            Some(item) => {
                let text = get_s(&item, "order")?;
                let order = OrderKey::parse(text)
                    .ok_or_else(|| invalid(format!("content of {id} has order {text:?}")))?;
                Ok(Some((order, item.get("ttl").cloned())))
            }
        }
    }
}
