//! Inbox table: `U#{userId}`/`N#{notificationId}`, one item per recipient per notification (a
//! redelivered chunk overwrites, never duplicates). Local indexes: `byOrder` (priority, then
//! newest first) and `byCreated` (polling with `since`). `ttl` is the DynamoDB TTL attribute;
//! reads filter on `expiresMs` because TTL deletion runs late.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::*;
use crate::model::*;
use crate::ports::*;

const BY_ORDER: &str = "byOrder";
const BY_CREATED: &str = "byCreated";
const VISIBLE: &str = "attribute_not_exists(dismissedAt) AND expiresMs > :now";

pub struct DynamoInboxStore {
    client: Client,
    table: String,
    backoff: Backoff,
}

impl DynamoInboxStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoInboxStore { client, table: table.into(), backoff: Backoff::default() }
    }

    fn key_of(user: UserId, notification: NotificationId) -> Item {
        key(format!("U#{user}"), format!("N#{notification}"))
    }

    fn item(i: &InboxItem) -> StoreResult<Item> {
        let mut item = to_item(i)?;
        item.extend(Self::key_of(i.user_id, i.notification_id));
        item.insert("orderKey".into(), s(i.order_key()));
        item.insert("createdMs".into(), n(i.created_at.timestamp_millis()));
        item.insert("expiresMs".into(), n(i.expires_at.timestamp_millis()));
        item.insert("ttl".into(), n(i.expires_at.timestamp()));
        Ok(item)
    }
}

#[async_trait]
impl InboxStore for DynamoInboxStore {
    async fn put_all(&self, items: &[InboxItem]) -> StoreResult<()> {
        // batch_put keeps the last write of each (user, notification).
        let items = items.iter().map(Self::item).collect::<StoreResult<Vec<_>>>()?;
        batch_put(&self.client, &self.table, items, self.backoff).await
    }

    async fn get(&self, user: UserId, notification: NotificationId) -> StoreResult<Option<InboxItem>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_of(user, notification)))
            .send()
            .await
            .map_err(classify)?;
        out.item.map(from_item).transpose()
    }

    async fn list(
        &self,
        user: UserId,
        query: &InboxQuery,
        now: DateTime<Utc>,
        page: &PageRequest,
    ) -> StoreResult<Page<InboxItem>> {
        let pk = format!("U#{user}");
        let now_ms = n(now.timestamp_millis());
        let (items, next) = match query {
            InboxQuery::Ordered => {
                let build = || {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .index_name(BY_ORDER)
                        .key_condition_expression("pk = :pk")
                        .filter_expression(VISIBLE)
                        .expression_attribute_values(":pk", s(pk.clone()))
                        .expression_attribute_values(":now", now_ms.clone())
                };
                query_page(build, &["pk", "sk", "orderKey"], page.limit, page.after.as_deref()).await?
            }
            InboxQuery::Since(since) => {
                let build = || {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .index_name(BY_CREATED)
                        .key_condition_expression("pk = :pk AND createdMs > :since")
                        .filter_expression(VISIBLE)
                        .expression_attribute_values(":pk", s(pk.clone()))
                        .expression_attribute_values(":since", n(since.timestamp_millis()))
                        .expression_attribute_values(":now", now_ms.clone())
                        .scan_index_forward(false)
                };
                query_page(build, &["pk", "sk", "createdMs"], page.limit, page.after.as_deref()).await?
            }
        };
        let items = items.into_iter().map(from_item).collect::<StoreResult<Vec<InboxItem>>>()?;
        Ok(Page { items, next })
    }

    async fn dismiss(
        &self,
        user: UserId,
        notification: NotificationId,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_of(user, notification)))
            .update_expression("SET dismissedAt = if_not_exists(dismissedAt, :at)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":at", to_attr(&at)?)
            .send()
            .await
            .map_err(classify);
        applied(result)
    }
}
