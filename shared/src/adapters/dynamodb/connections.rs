//! Connections table: who holds which WebSocket connection.
//! - `U#{userId}`/`CONN`: `conns`, a string set of `{connectionId}|{expiresMs}`: a person's open
//!   connections, read for many people at once with BatchGetItem (a delivered chunk's recipients);
//! - `C#{connectionId}`/`C`: `user` and `entry` (its set member), to forget it on disconnect;
//! - `CO#{companyId}`/`ONLINE`: `until`, the latest expiry of a connection of the company's people:
//!   a delivery to a company where nobody is connected reads this one item, not its recipients'.
//!
//! `ttl` (seconds) on both: API Gateway closes a connection after two hours, so nothing outlives
//! that; reads also drop members past their expiry (TTL deletes late).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Utc};

use super::*;
use crate::model::{CompanyId, UserId};
use crate::ports::*;

pub struct DynamoConnectionStore {
    client: Client,
    table: String,
    backoff: Backoff,
}

impl DynamoConnectionStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoConnectionStore { client, table: table.into(), backoff: Backoff::default() }
    }
}

fn user_key(user: UserId) -> Item {
    key(format!("U#{user}"), "CONN")
}

fn connection_key(connection: &str) -> Item {
    key(format!("C#{connection}"), "C")
}

#[async_trait]
impl ConnectionStore for DynamoConnectionStore {
    async fn add(
        &self,
        user: UserId,
        company: CompanyId,
        connection: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        // The company is online until its latest connection's expiry (an earlier one leaves it).
        let raised = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("CO#{company}"), "ONLINE")))
            .update_expression("SET #until = :until, #ttl = :ttl")
            .condition_expression("attribute_not_exists(#until) OR #until < :until")
            .expression_attribute_names("#until", "until")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":until", n(expires_at.timestamp_millis()))
            .expression_attribute_values(":ttl", n(expires_at.timestamp()))
            .send()
            .await
            .map_err(classify);
        applied(raised)?;
        let entry = format!("{connection}|{}", expires_at.timestamp_millis());
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(user_key(user)))
            .update_expression("ADD conns :c SET #ttl = :ttl")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":c", AttributeValue::Ss(vec![entry.clone()]))
            .expression_attribute_values(":ttl", n(expires_at.timestamp()))
            .send()
            .await
            .map_err(classify)?;
        let mut item = connection_key(connection);
        item.insert("user".into(), s(user.to_string()));
        item.insert("entry".into(), s(entry));
        item.insert("ttl".into(), n(expires_at.timestamp()));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(classify)?;
        Ok(())
    }

    async fn remove(&self, connection: &str) -> StoreResult<Option<UserId>> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(connection_key(connection)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(classify)?;
        let Some(old) = out.attributes else { return Ok(None) };
        let user: UserId = get_s(&old, "user")?
            .parse()
            .map_err(|_| StoreError::InvalidData(format!("connection {connection} names no user")))?;
        let entry = get_s(&old, "entry")?.to_string();
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(user_key(user)))
            .update_expression("DELETE conns :c")
            .expression_attribute_values(":c", AttributeValue::Ss(vec![entry]))
            .send()
            .await
            .map_err(classify)?;
        Ok(Some(user))
    }

    async fn online(&self, company: CompanyId, now: DateTime<Utc>) -> StoreResult<bool> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("CO#{company}"), "ONLINE")))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let until = out.item.as_ref().and_then(|i| i.get("until")).and_then(|v| v.as_n().ok());
        Ok(until.and_then(|u| u.parse::<i64>().ok()).is_some_and(|u| u > now.timestamp_millis()))
    }

    async fn of(&self, users: &[UserId], now: DateTime<Utc>) -> StoreResult<Vec<(UserId, String)>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let keys = users.iter().map(|u| user_key(*u)).collect();
        let items =
            batch_get(&self.client, &self.table, keys, Some("pk, conns"), false, self.backoff).await?;
        let now = now.timestamp_millis();
        let mut out = Vec::new();
        for item in items {
            let Some(user) = get_s(&item, "pk")?.strip_prefix("U#").and_then(|u| u.parse::<UserId>().ok())
            else {
                continue;
            };
            let members = item.get("conns").and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default();
            for member in members {
                let Some((connection, expires)) = member.rsplit_once('|') else { continue };
                if expires.parse::<i64>().is_ok_and(|e| e > now) {
                    out.push((user, connection.to_string()));
                }
            }
        }
        Ok(out)
    }
}
