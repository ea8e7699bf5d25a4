//! Idempotency records on the notifications table: `I#{scope}`/`IDEM`, claimed with a
//! conditional write, completed with the answer, released on failure; TTL.

use super::*;

impl DynamoNotificationStore {
    pub(super) async fn store_claim_idempotency(
        &self,
        scope: &str,
        digest: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyClaim> {
        let mut item = key(format!("I#{scope}"), "IDEM");
        item.insert("digest".into(), s(digest));
        item.insert("ttl".into(), n(expires_at.timestamp()));
        // A record past its expiry may still exist (TTL deletes late): it counts as absent.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await
            .map_err(classify);
        match result {
            Ok(_) => Ok(IdempotencyClaim::Claimed),
            Err(StoreError::Conflict(_)) => {
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key(format!("I#{scope}"), "IDEM")))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(classify)?;
                let item = out.item.unwrap_or_default();
                let request_digest = get_s(&item, "digest").unwrap_or_default().to_string();
                let status = item.get("status").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
                let body = item.get("body").and_then(|v| v.as_s().ok()).cloned();
                let answer = status.zip(body);
                Ok(IdempotencyClaim::Existing { request_digest, answer })
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn store_complete_idempotency(&self, r: &IdempotencyRecord) -> StoreResult<()> {
        let mut item = key(format!("I#{}", r.scope), "IDEM");
        item.insert("digest".into(), s(&r.request_digest));
        item.insert("status".into(), n(r.status));
        item.insert("body".into(), s(&r.body));
        item.insert("ttl".into(), n(r.expires_at.timestamp()));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(classify)?;
        Ok(())
    }

    pub(super) async fn store_release_idempotency(&self, scope: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("I#{scope}"), "IDEM")))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}
