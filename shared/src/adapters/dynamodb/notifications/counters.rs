//! A notification's counters, apart from it: `N#{id}#K#{shard}`/`K`, small items in partitions
//! of their own. A chunk's outcomes and its email jobs' are added to shard `chunk %
//! COUNTER_SHARDS`, bounces and complaints to shard 0, each in the transaction that puts its
//! marker (so exactly once). The notification's item is never rewritten for a count: a count
//! costs what the counter item weighs (one write unit, two in the transaction) and not the
//! notification's size times its indexes, and a broadcast's counts spread over
//! `COUNTER_SHARDS` partition keys instead of one (decision 0016).
//!
//! Readers add the shards to what the notification's item holds: the counts earlier versions
//! kept there (forward only: a rollback would not see the shards' counts). A pending
//! notification has no shard; a delivering one as many as it has chunks, at most
//! `COUNTER_SHARDS`; one still fanning out (or given up before its total was known) may have
//! any of them.

use std::collections::HashMap;

use super::*;

/// Counter items per notification: a broadcast's counts take up to 8,000 write units a second.
pub(super) const COUNTER_SHARDS: u32 = 8;
const COUNTER_SK: &str = "K";
/// BatchGetItem requests of counter items in flight at once (a history page of 2,000
/// notifications with one chunk each is 20 requests).
const COUNT_READS_IN_FLIGHT: usize = 8;

impl DynamoNotificationStore {
    pub(super) fn counters_pk(id: NotificationId, shard: u32) -> String {
        format!("{}#K#{shard}", Self::pk(id))
    }

    /// The counter item a chunk's (and its email jobs') outcomes are added to.
    pub(super) fn counters_key(id: NotificationId, shard: u32) -> Item {
        key(Self::counters_pk(id, shard), COUNTER_SK)
    }

    pub(super) fn counter_shard(chunk: u32) -> u32 {
        chunk % COUNTER_SHARDS
    }

    /// Shards that may hold counts of `n`: as many as it has chunks, at most `COUNTER_SHARDS`
    /// (its total, or the chunks a fan-out it resumed had enqueued, if more: an audience can
    /// shrink between two runs); all of them while the total is unknown.
    fn shards_of(n: &Notification) -> u32 {
        match (n.status, n.chunks_total) {
            (Status::Pending, _) => 0,
            (_, Some(total)) => total.max(n.fanout.chunks_enqueued).min(COUNTER_SHARDS),
            (_, None) => COUNTER_SHARDS,
        }
    }

    /// The notifications with their counters added (one BatchGetItem per 100 counter items, up
    /// to `COUNT_READS_IN_FLIGHT` at once; none when none can have counts).
    pub(super) async fn with_counts(
        &self,
        mut notifications: Vec<Notification>,
        consistent: bool,
    ) -> StoreResult<Vec<Notification>> {
        let keys: Vec<Item> = notifications
            .iter()
            .flat_map(|n| (0..Self::shards_of(n)).map(|shard| Self::counters_key(n.id, shard)))
            .collect();
        if keys.is_empty() {
            return Ok(notifications);
        }
        use futures::StreamExt;
        let batches: Vec<Vec<Item>> = keys.chunks(100).map(<[Item]>::to_vec).collect();
        let (client, table) = (&self.client, self.table.as_str());
        let reads = batches
            .into_iter()
            .map(move |batch| batch_get(client, table, batch, None, consistent, Backoff::default()));
        let found: Vec<Vec<Item>> = futures::stream::iter(reads)
            .buffer_unordered(COUNT_READS_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<StoreResult<_>>()?;
        let found = found.into_iter().flatten();
        let mut shards: HashMap<NotificationId, Vec<Item>> = HashMap::new();
        for item in found {
            let pk = get_s(&item, "pk")?;
            let id = pk.split_once("#K#").map(|(id, _)| id).unwrap_or(pk);
            shards.entry(id_from_pk(id)?).or_default().push(item);
        }
        for n in &mut notifications {
            if let Some(items) = shards.get(&n.id) {
                fold(n, items);
            }
        }
        Ok(notifications)
    }
}

/// Adds the counter items' counts to the notification's own (signed: an email job recorded on a
/// shard may settle what an earlier version counted pending on the notification).
fn fold(n: &mut Notification, shards: &[Item]) {
    let number = |item: &Item, name: &str| -> i64 {
        item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let total = |name: &str, own: u64| -> u64 {
        let sum = own as i64 + shards.iter().map(|item| number(item, name)).sum::<i64>();
        sum.max(0) as u64
    };
    n.delivered = total("delivered", n.delivered);
    n.chunks_done = total("chunksDone", n.chunks_done as u64).min(u32::MAX as u64) as u32;
    n.emails_pending = total("emailsPending", n.emails_pending);
    n.pushes_sent = total("pushesSent", n.pushes_sent);
    n.pushes_removed = total("pushesRemoved", n.pushes_removed);
    n.pushes_failed = total("pushesFailed", n.pushes_failed);
    n.pushes_withdrawn = total("pushesWithdrawn", n.pushes_withdrawn);
    n.emails_sent = total("emailsSent", n.emails_sent);
    n.emails_opted_out = total("emailsOptedOut", n.emails_opted_out);
    n.emails_no_address = total("emailsNoAddress", n.emails_no_address);
    n.emails_failed = total("emailsFailed", n.emails_failed);
    n.emails_suppressed = total("emailsSuppressed", n.emails_suppressed);
    n.emails_withdrawn = total("emailsWithdrawn", n.emails_withdrawn);
    n.emails_bounced = total("emailsBounced", n.emails_bounced);
    n.emails_complained = total("emailsComplained", n.emails_complained);
}
