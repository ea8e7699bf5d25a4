//! Webhook endpoints and event records, on the Notifications table:
//! - `HOOKS#{companyId}`/`ENDPOINT`: the tenant's endpoint (its secrets inside, encrypted at rest
//!   with the table), written conditionally on its `revision`;
//! - `HOOK#{eventId}`/`EVENT`: an event, its state and its tries; `ttl` 30 days after it
//!   happened (the replay window). A partition each: events of a busy tenant spread.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use super::*;
use crate::model::*;
use crate::ports::*;

pub struct DynamoWebhookStore {
    client: Client,
    table: String,
}

impl DynamoWebhookStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoWebhookStore { client, table: table.into() }
    }
}

impl DynamoWebhookStore {
    /// One item, read strongly consistent (an endpoint's revision, an event's claims).
    async fn get<T: serde::de::DeserializeOwned>(&self, key: Item) -> StoreResult<Option<T>> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        got.item.map(from_item).transpose()
    }
}

fn endpoint_key(company: CompanyId) -> Item {
    key(format!("HOOKS#{company}"), "ENDPOINT")
}

fn event_key(id: &str) -> Item {
    key(format!("HOOK#{id}"), "EVENT")
}

#[async_trait]
impl WebhookEndpoints for DynamoWebhookStore {
    async fn endpoint(&self, company: CompanyId) -> StoreResult<Option<WebhookEndpoint>> {
        self.get(endpoint_key(company)).await
    }

    async fn save_endpoint(&self, endpoint: &WebhookEndpoint, read: Option<u64>) -> StoreResult<bool> {
        let mut item = to_item(endpoint)?;
        item.extend(endpoint_key(endpoint.company_id));
        let put = self.client.put_item().table_name(&self.table).set_item(Some(item));
        let put = match read {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(revision) => {
                put.condition_expression("revision = :read").expression_attribute_values(":read", n(revision))
            }
        };
        applied(put.send().await.map_err(classify))
    }

    async fn delete_endpoint(&self, company: CompanyId) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(endpoint_key(company)))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

#[async_trait]
impl HookEvents for DynamoWebhookStore {
    async fn record_event(&self, event: &HookEvent) -> StoreResult<HookEvent> {
        let mut item = to_item(event)?;
        item.extend(event_key(&event.id));
        item.insert(
            "ttl".into(),
            n((event.timestamp + chrono::Duration::days(HookEvent::KEPT_DAYS)).timestamp()),
        );
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(classify);
        match applied(put)? {
            true => Ok(event.clone()),
            false => self
                .event(&event.id)
                .await?
                .ok_or_else(|| StoreError::Conflict(format!("event {} is recorded and gone", event.id))),
        }
    }

    async fn event(&self, id: &str) -> StoreResult<Option<HookEvent>> {
        self.get(event_key(id)).await
    }

    async fn mark_queued(&self, id: &str) -> StoreResult<()> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(id)))
            .update_expression("SET queued = :true")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(classify);
        applied(update).map(|_| ())
    }

    async fn claim_try(
        &self,
        id: &str,
        series: u32,
        attempt: u32,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<bool> {
        let claim = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(id)))
            .update_expression("SET #attempt = :a, #lease = :lease")
            .condition_expression(
                "attribute_exists(pk) AND #series = :s AND #state = :pending AND #settled < :a \
                 AND (#attempt < :a OR #lease < :now)",
            )
            .expression_attribute_names("#attempt", "attempt")
            .expression_attribute_names("#lease", "leaseUntil")
            .expression_attribute_names("#series", "series")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#settled", "settled")
            .expression_attribute_values(":a", n(attempt))
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":s", n(series))
            .expression_attribute_values(":pending", to_attr(&HookState::Pending)?)
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(classify);
        applied(claim)
    }

    async fn start_series(&self, id: &str) -> StoreResult<Option<u32>> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(id)))
            .update_expression(
                "SET #state = :pending, #attempt = :zero, #settled = :zero, #lease = :zero ADD #series :one",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#attempt", "attempt")
            .expression_attribute_names("#lease", "leaseUntil")
            .expression_attribute_names("#series", "series")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#settled", "settled")
            .expression_attribute_values(":pending", to_attr(&HookState::Pending)?)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(classify);
        match update {
            Ok(out) => {
                let series =
                    out.attributes.as_ref().and_then(|a| a.get("series")).and_then(|v| v.as_n().ok());
                let series = series.and_then(|v| v.parse().ok());
                series
                    .map(Some)
                    .ok_or_else(|| StoreError::InvalidData(format!("event {id}: no series after a replay")))
            }
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn record_attempt(
        &self,
        id: &str,
        series: u32,
        attempt: &HookAttempt,
        state: HookState,
    ) -> StoreResult<()> {
        let values = |u: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder| {
            u.table_name(&self.table)
                .set_key(Some(event_key(id)))
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#series", "series")
                .expression_attribute_names("#settled", "settled")
                .expression_attribute_names("#lease", "leaseUntil")
                .expression_attribute_values(":state", to_attr(&state).unwrap_or_else(|_| s("pending")))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":s", n(series))
                .expression_attribute_values(":a", n(attempt.attempt))
                .expression_attribute_values(":zero", n(0))
        };
        // Kept in the list while it is short; counted either way.
        let kept = values(self.client.update_item())
            .update_expression(
                "SET #state = :state, #settled = :a, #lease = :zero, attempts = list_append(attempts, :try) ADD tries :one",
            )
            .condition_expression("attribute_exists(pk) AND #series = :s AND size(attempts) < :kept")
            .expression_attribute_values(":try", AttributeValue::L(vec![to_attr(attempt)?]))
            .expression_attribute_values(":kept", n(HookEvent::KEPT_ATTEMPTS))
            .send()
            .await
            .map_err(classify);
        if applied(kept)? {
            return Ok(());
        }
        let counted = values(self.client.update_item())
            .update_expression("SET #state = :state, #settled = :a, #lease = :zero ADD tries :one")
            .condition_expression("attribute_exists(pk) AND #series = :s")
            .send()
            .await
            .map_err(classify);
        applied(counted).map(|_| ())
    }
}
