//! The upgrade from the earlier Inbox table (`notifications-<stage>-inbox`, before issue #17):
//! one item per recipient and notification, `U#{userId}`/`N#{notificationId}`, holding the whole
//! content beside its person, `dismissedAt` and the two local indexes' keys. An operator copies
//! it into this table once, after the deploy that made this one (docs/deploy.md).
//!
//! Invariants:
//! - it only reads the earlier table (a Scan, page by page), and writes into this one only
//!   what is missing: a notification's content unless it is there (a chunk delivered again
//!   since, or a correction, stays as it is), a person's entry unless they have it (what they
//!   did with it since the upgrade stays); running it again, or stopping it and running it
//!   again, writes nothing twice and loses nothing;
//! - a copied entry is delivered when its notification was created, as the earlier version
//!   delivered it: a mark-all made since covers it, a `since` poll does not see it as new, and
//!   it needs no late pointer;
//! - a dismissed item is copied dismissed (no view shows it, and a chunk of its notification
//!   delivered again later finds it there and leaves it dismissed); an expired one is not copied;
//! - the Scan runs in `segments` parallel segments (DynamoDB's parallel scan), each page written
//!   before the segment reads the next; every page is logged with what was done so far.

use std::collections::HashSet;

use serde::Deserialize;

use super::*;

/// An earlier table's item, as that version serialized it (its other attributes, the keys and
/// the indexes' `orderKey`, `createdMs`, `expiresMs`, `ttl`, are not read).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EarlierItem {
    user_id: UserId,
    notification_id: NotificationId,
    origin: Origin,
    title: String,
    body: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    override_content: Option<OverrideContent>,
    #[serde(default)]
    icon: IconType,
    #[serde(default)]
    toast: ToastType,
    #[serde(default)]
    priority: Priority,
    #[serde(default)]
    actions: Vec<Action>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    source: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    #[serde(default)]
    dismissed_at: Option<DateTime<Utc>>,
}

impl EarlierItem {
    fn content(&self) -> InboxContent {
        let content = Content {
            title: self.title.clone(),
            body: self.body.clone(),
            url: self.url.clone(),
            override_content: self.override_content.clone(),
            icon: self.icon,
            toast: self.toast,
            priority: self.priority,
            actions: self.actions.clone(),
            data: self.data.clone(),
            source: self.source.clone(),
        };
        InboxContent::new(self.notification_id, self.origin, content, (self.created_at, self.expires_at))
    }
}

/// What a copy found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EarlierCopy {
    /// Items of the earlier table (its people's entries).
    pub found: u64,
    /// Entries written into this table.
    pub copied: u64,
    /// Entries their people had in this table already, left as they are.
    pub had: u64,
    /// Of those copied or there already: dismissed by their person (copied dismissed).
    pub dismissed: u64,
    /// Not copied: expired at `now`.
    pub expired: u64,
    /// Contents written (one per notification this table did not have).
    pub contents: u64,
}

impl EarlierCopy {
    fn add(&mut self, other: EarlierCopy) {
        self.found += other.found;
        self.copied += other.copied;
        self.had += other.had;
        self.dismissed += other.dismissed;
        self.expired += other.expired;
        self.contents += other.contents;
    }
}

/// A clock at the epoch: an entry's write is dated by its own delivery time, which is later.
struct Epoch;

impl Clock for Epoch {
    fn now(&self) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH
    }
}

impl DynamoInboxStore {
    /// Copies the earlier Inbox table `earlier` into this one (the module's invariants), judging
    /// expiry at `now`, its Scan in `segments` parallel segments (at least 1).
    pub async fn copy_from_earlier_table(
        &self,
        earlier: &str,
        now: DateTime<Utc>,
        segments: u32,
    ) -> StoreResult<EarlierCopy> {
        let segments = segments.max(1);
        let runs = (0..segments).map(|segment| self.copy_segment(earlier, now, segment, segments));
        let mut report = EarlierCopy::default();
        for run in futures::future::join_all(runs).await {
            report.add(run?);
        }
        Ok(report)
    }

    async fn copy_segment(
        &self,
        earlier: &str,
        now: DateTime<Utc>,
        segment: u32,
        segments: u32,
    ) -> StoreResult<EarlierCopy> {
        let mut report = EarlierCopy::default();
        // The contents this segment wrote or found: each is written once, however many pages
        // name it (another segment finding it written costs a refused conditional put).
        let mut contents: HashSet<NotificationId> = HashSet::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(earlier)
                .segment(segment as i32)
                .total_segments(segments as i32)
                .filter_expression("begins_with(sk, :entry)")
                .expression_attribute_values(":entry", s("N#"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            let mut entries = Vec::new();
            for item in out.items.unwrap_or_default() {
                let earlier: EarlierItem = from_item(item)?;
                report.found += 1;
                if earlier.expires_at <= now {
                    report.expired += 1;
                    continue;
                }
                let content = earlier.content();
                // Its content before any entry refers to it.
                if contents.insert(earlier.notification_id)
                    && put_if_absent(&self.client, &self.table, content_item(&content)?).await?
                {
                    report.contents += 1;
                }
                let mut entry = content.entry_for(earlier.user_id, earlier.created_at);
                if let Some(at) = earlier.dismissed_at {
                    entry.marks.dismissed_at = Some(at);
                    report.dismissed += 1;
                }
                entries.push(entry_item(&entry));
            }
            for batch in entries.chunks(100) {
                let written = self.put_missing(batch.to_vec(), &Epoch).await?;
                report.copied += written.len() as u64;
                report.had += (batch.len() - written.len()) as u64;
            }
            tracing::info!(
                segment,
                read = report.found,
                copied = report.copied,
                had = report.had,
                expired = report.expired,
                more = out.last_evaluated_key.is_some(),
                "earlier inbox table: a page copied"
            );
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(report),
            }
        }
    }
}
