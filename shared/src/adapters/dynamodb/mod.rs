//! DynamoDB adapters. Table layouts are documented in docs/data-model.md and declared in
//! `template.yaml`, from which the tests provision their tables.

mod connections;
mod devices;
mod directory;
mod inbox;
mod notifications;
mod webhooks;

/// The Notifications table's partition of retractions not known to be finished (`RECALL`/{id}):
/// the one partition deliver's policy lets it delete from (template.yaml, a `dynamodb:LeadingKeys`
/// condition).
pub const RETRACTIONS_PARTITION: &str = "RECALL";

pub use connections::DynamoConnectionStore;
pub use devices::DynamoDeviceStore;
pub use directory::DynamoDirectory;
pub use inbox::{DynamoInboxStore, EarlierCopy};
pub use notifications::DynamoNotificationStore;
pub use webhooks::DynamoWebhookStore;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::backoff::Backoff;
use crate::error::{StoreError, StoreResult};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Maps an SDK failure to the store's error kinds: conditional-check failures are conflicts,
/// throttling / 5xx / timeouts are transient, the rest are plain failures. Serves the SQS adapter
/// too (both SDKs share smithy's error and response types).
pub(crate) fn classify<E>(e: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = crate::redact::redact(&DisplayErrorContext(&e).to_string());
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Transient(text)
        }
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default();
            if code == "ConditionalCheckFailedException" {
                StoreError::Conflict(text)
            } else if code == "ValidationException"
                && se.err().message().is_some_and(|m| m.contains("starting key"))
            {
                // A start key DynamoDB refuses came from a caller's token (the services seal
                // tokens to their query, so only a forged one gets here).
                StoreError::BadToken("nextToken is not valid for this query".into())
            } else if is_transient_code(code) || se.raw().status().is_server_error() {
                StoreError::Transient(text)
            } else {
                StoreError::Other(text)
            }
        }
        _ => StoreError::Other(text),
    }
}

/// The outcome of a conditional write: `true` if it was applied, `false` if its condition did
/// not hold (an answer, not a failure); other errors pass through.
pub(crate) fn applied<T>(result: StoreResult<T>) -> StoreResult<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

fn is_transient_code(code: &str) -> bool {
    code.contains("Throttl")
        || code.contains("ThroughputExceeded")
        || code.contains("RequestLimitExceeded")
        || code.contains("InternalServer")
        || code.contains("InternalError")
        || code.contains("InternalFailure")
        || code.contains("ServiceUnavailable")
        || code == "TransactionConflictException"
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> StoreResult<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::InvalidData(format!("item has no string attribute {name}")))
}

pub(crate) fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> StoreResult<T> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::InvalidData(e.to_string()))
}

pub(crate) fn to_item<T: serde::Serialize>(value: &T) -> StoreResult<Item> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::InvalidData(e.to_string()))
}

pub(crate) fn to_attr<T: serde::Serialize>(value: &T) -> StoreResult<AttributeValue> {
    serde_dynamo::to_attribute_value(value).map_err(|e| StoreError::InvalidData(e.to_string()))
}

/// Encodes the key attributes of the last returned item as an opaque continuation token.
pub(crate) fn encode_token(item: &Item, key_attrs: &[&str]) -> StoreResult<String> {
    let mut map = serde_json::Map::new();
    for name in key_attrs {
        let value = match item.get(*name) {
            Some(AttributeValue::S(v)) => serde_json::json!({ "S": v }),
            Some(AttributeValue::N(v)) => serde_json::json!({ "N": v }),
            _ => {
                return Err(StoreError::InvalidData(format!("key attribute {name} missing")));
            }
        };
        map.insert(name.to_string(), value);
    }
    Ok(URL_SAFE_NO_PAD.encode(serde_json::Value::Object(map).to_string()))
}

/// Decodes a continuation token; anything we did not issue is rejected, naming `nextToken`.
pub(crate) fn decode_token(token: &str, key_attrs: &[&str]) -> StoreResult<Item> {
    let invalid = || StoreError::BadToken("nextToken is not a token this service issued".into());
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let obj = value.as_object().ok_or_else(invalid)?;
    if obj.len() != key_attrs.len() {
        return Err(invalid());
    }
    let mut item = Item::new();
    for name in key_attrs {
        let attr = obj.get(*name).and_then(|v| v.as_object()).ok_or_else(invalid)?;
        let v = match (attr.get("S").and_then(|v| v.as_str()), attr.get("N").and_then(|v| v.as_str())) {
            (Some(sv), None) => s(sv),
            (None, Some(nv)) if nv.parse::<f64>().is_ok() => n(nv),
            _ => return Err(invalid()),
        };
        item.insert(name.to_string(), v);
    }
    Ok(item)
}

/// Runs a query page by page until `limit` items (after any filter) are collected. Asks for one
/// more than needed so that the token is only returned when another item really exists.
pub(crate) async fn query_page(
    build: impl Fn() -> QueryFluentBuilder,
    key_attrs: &[&str],
    limit: usize,
    after: Option<&str>,
) -> StoreResult<(Vec<Item>, Option<String>)> {
    let limit = limit.max(1);
    let mut start = after.map(|t| decode_token(t, key_attrs)).transpose()?;
    let mut items: Vec<Item> = Vec::new();
    loop {
        let want = (limit + 1 - items.len()) as i32;
        let out = build().set_exclusive_start_key(start.take()).limit(want).send().await.map_err(classify)?;
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(k) if items.len() <= limit => start = Some(k),
            _ => break,
        }
    }
    if items.len() > limit {
        items.truncate(limit);
        let token = encode_token(items.last().expect("limit ≥ 1"), key_attrs)?;
        Ok((items, Some(token)))
    } else {
        Ok((items, None))
    }
}

/// Writes items with BatchWriteItem, 25 per request, retrying UnprocessedItems with capped
/// exponential backoff and jitter. Keys must be unique within the call.
pub(crate) async fn batch_put(
    client: &Client,
    table: &str,
    items: Vec<Item>,
    backoff: Backoff,
) -> StoreResult<()> {
    // BatchWriteItem refuses two writes of one key in a request: the last write of a key wins,
    // as it would have written one after the other.
    let items = last_of_each_key(items);
    let mut requests = Vec::with_capacity(items.len());
    for item in items {
        let put = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        requests.push(WriteRequest::builder().put_request(put).build());
    }
    // Requests in flight at once: a chunk's writes take one round trip per this many batches
    // instead of one per batch, and a Lambda is billed for the time it waits.
    use futures::StreamExt;
    let batches: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[WriteRequest]>::to_vec).collect();
    let batches = batches.into_iter().map(|batch| write_batch(client, table, batch, backoff));
    let results: Vec<StoreResult<()>> =
        futures::stream::iter(batches).buffer_unordered(BATCH_WRITES_IN_FLIGHT).collect().await;
    results.into_iter().collect()
}

/// Deletes items by key with BatchWriteItem, 25 per request (a key given twice deleted once),
/// retrying UnprocessedItems as `batch_put` does. A key with no item is no error.
pub(crate) async fn batch_delete(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    backoff: Backoff,
) -> StoreResult<()> {
    use aws_sdk_dynamodb::types::DeleteRequest;
    let keys = last_of_each_key(keys);
    let mut requests = Vec::with_capacity(keys.len());
    for key in keys {
        let delete = DeleteRequest::builder()
            .set_key(Some(key))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        requests.push(WriteRequest::builder().delete_request(delete).build());
    }
    use futures::StreamExt;
    let batches: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[WriteRequest]>::to_vec).collect();
    let batches = batches.into_iter().map(|batch| write_batch(client, table, batch, backoff));
    let results: Vec<StoreResult<()>> =
        futures::stream::iter(batches).buffer_unordered(BATCH_WRITES_IN_FLIGHT).collect().await;
    results.into_iter().collect()
}

/// BatchWriteItem requests of one `batch_put` in flight at once.
pub(crate) const BATCH_WRITES_IN_FLIGHT: usize = 8;

async fn write_batch(
    client: &Client,
    table: &str,
    batch: Vec<WriteRequest>,
    backoff: Backoff,
) -> StoreResult<()> {
    let mut pending = batch;
    let mut attempt = 0;
    while !pending.is_empty() {
        let out =
            client.batch_write_item().request_items(table, pending.clone()).send().await.map_err(classify)?;
        pending = out.unprocessed_items.and_then(|mut m| m.remove(table)).unwrap_or_default();
        if pending.is_empty() {
            break;
        }
        attempt += 1;
        if attempt >= backoff.max_attempts {
            return Err(StoreError::Transient(format!(
                "{} items still unprocessed after {attempt} attempts",
                pending.len()
            )));
        }
        tokio::time::sleep(backoff.delay(attempt)).await;
    }
    Ok(())
}

/// An item's key: every table of the service is keyed by string `pk` and `sk`.
pub(crate) fn key_of(item: &Item) -> (Option<&str>, Option<&str>) {
    let s = |name| match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    };
    (s("pk"), s("sk"))
}

/// The items with one per key, the last of each kept, in their order.
pub(crate) fn last_of_each_key(items: Vec<Item>) -> Vec<Item> {
    let mut keep = vec![false; items.len()];
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate().rev() {
        keep[i] = seen.insert(key_of(item));
    }
    items.into_iter().zip(keep).filter_map(|(item, keep)| keep.then_some(item)).collect()
}

/// Reads items by key with BatchGetItem (100 keys per request), retrying unprocessed keys with
/// backoff. Items that do not exist are left out, a key given twice is read once; the order is
/// not the keys' order.
pub(crate) async fn batch_get(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    projection: Option<&str>,
    consistent: bool,
    backoff: Backoff,
) -> StoreResult<Vec<Item>> {
    // BatchGetItem refuses a key asked for twice; asking once answers both.
    let keys = last_of_each_key(keys);
    let mut found = Vec::with_capacity(keys.len());
    for batch in keys.chunks(100) {
        let mut pending = batch.to_vec();
        let mut attempt = 0;
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending.clone()))
                .set_projection_expression(projection.map(str::to_string))
                .consistent_read(consistent)
                .build()
                .map_err(|e| StoreError::Other(e.to_string()))?;
            let out = client.batch_get_item().request_items(table, request).send().await.map_err(classify)?;
            found.extend(out.responses.and_then(|mut r| r.remove(table)).unwrap_or_default());
            pending =
                out.unprocessed_keys.and_then(|mut m| m.remove(table)).map(|k| k.keys).unwrap_or_default();
            if pending.is_empty() {
                break;
            }
            attempt += 1;
            if attempt >= backoff.max_attempts {
                return Err(StoreError::Transient(format!(
                    "{} keys still unprocessed after {attempt} attempts",
                    pending.len()
                )));
            }
            tokio::time::sleep(backoff.delay(attempt)).await;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DynamoDB service error with `code` (and `message`), answered with `status`.
    fn service_error(
        code: &str,
        message: &str,
        status: u16,
    ) -> SdkError<aws_sdk_dynamodb::operation::get_item::GetItemError, HttpResponse> {
        let meta = aws_sdk_dynamodb::error::ErrorMetadata::builder().code(code).message(message).build();
        let err = aws_sdk_dynamodb::operation::get_item::GetItemError::generic(meta);
        let raw = HttpResponse::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
            aws_smithy_types::body::SdkBody::empty(),
        );
        SdkError::service_error(err, raw)
    }

    /// Every kind of SDK failure lands where the services expect it: a condition that did not
    /// hold is a conflict (an answer), throttling, 5xx, timeouts and dispatch failures are
    /// transient (retried, 503), a start key DynamoDB refuses is the caller's token, the rest
    /// (access denied, validation) plain failures (500, logged with their cause).
    #[test]
    fn classify_sorts_every_kind_of_failure() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let kind = |e: StoreError| match e {
            StoreError::Conflict(_) => "conflict",
            StoreError::Transient(_) => "transient",
            StoreError::BadToken(_) => "token",
            StoreError::InvalidData(_) => "data",
            StoreError::Other(_) => "other",
        };
        for (code, message, status, expected) in [
            ("ConditionalCheckFailedException", "The conditional request failed", 400, "conflict"),
            ("ProvisionedThroughputExceededException", "rate", 400, "transient"),
            ("ThrottlingException", "rate", 400, "transient"),
            ("RequestLimitExceeded", "account", 400, "transient"),
            ("TransactionConflictException", "conflict", 400, "transient"),
            ("InternalServerError", "oops", 500, "transient"),
            ("ServiceUnavailable", "down", 503, "transient"),
            ("SomethingNew", "a 5xx we do not know", 502, "transient"),
            ("ValidationException", "The provided starting key is invalid", 400, "token"),
            ("ValidationException", "Item size has exceeded the maximum allowed size", 400, "other"),
            ("AccessDeniedException", "not authorized", 400, "other"),
            ("ResourceNotFoundException", "no table", 400, "other"),
        ] {
            assert_eq!(kind(classify(service_error(code, message, status))), expected, "{code}: {message}");
        }
        let timeout: SdkError<aws_sdk_dynamodb::operation::get_item::GetItemError, HttpResponse> =
            SdkError::timeout_error("no answer");
        assert_eq!(kind(classify(timeout)), "transient");
        let dispatch: SdkError<aws_sdk_dynamodb::operation::get_item::GetItemError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection reset".into()));
        assert_eq!(kind(classify(dispatch)), "transient");
    }

    #[test]
    fn one_item_per_key_the_last_one_kept_in_order() {
        let item = |pk: &str, sk: &str, v: i64| {
            let mut i = key(pk, sk);
            i.insert("v".into(), n(v));
            i
        };
        let kept = last_of_each_key(vec![
            item("a", "1", 1),
            item("b", "1", 2),
            item("a", "1", 3),
            item("a", "2", 4),
        ]);
        let values: Vec<_> = kept.iter().map(|i| i["v"].clone()).collect();
        assert_eq!(values, vec![n(2), n(3), n(4)]);
    }

    #[test]
    fn tokens_round_trip_and_reject_forgeries() {
        let mut item = key("U#1", "N#2");
        item.insert("createdMs".into(), n(17));
        let token = encode_token(&item, &["pk", "sk", "createdMs"]).unwrap();
        let back = decode_token(&token, &["pk", "sk", "createdMs"]).unwrap();
        assert_eq!(back, item);
        for bad in ["", "not-base64!", &URL_SAFE_NO_PAD.encode("{}"), &URL_SAFE_NO_PAD.encode("[1]")] {
            assert!(matches!(decode_token(bad, &["pk", "sk"]), Err(StoreError::BadToken(_))), "{bad}");
        }
        assert!(decode_token(&token, &["pk", "sk"]).is_err(), "token of another index");
    }
}
