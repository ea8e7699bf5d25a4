//! In-memory adapters: the local runner's embedded storage and the unit tests' fast path.
//! They keep the same contracts as the DynamoDB/SQS adapters (the conformance suite runs against
//! both): conditional writes conflict, pages continue with opaque tokens, queues redeliver.

//!
//! One adapter a file, as `adapters/dynamodb/`.

use std::sync::{Mutex, MutexGuard};

use crate::error::{StoreError, StoreResult};
use crate::model::*;

mod connections;
mod devices;
mod directory;
mod inbox;
mod mailer;
mod notifications;
mod push;
mod queue;
mod realtime;
mod webhooks;

pub use connections::MemoryConnectionStore;
pub use devices::MemoryDeviceStore;
pub use directory::MemoryDirectory;
pub use inbox::MemoryInboxStore;
pub use mailer::MemoryMailer;
pub use notifications::MemoryNotificationStore;
pub use push::{MemoryEndpoint, MemoryPush};
pub use queue::{MAX_DELAY_SECONDS, MemoryQueue};
pub use realtime::MemoryRealtime;
pub use webhooks::MemoryWebhookStore;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another test thread must not cascade into poisoned-lock panics here.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opaque cursors of the memory adapters: the key of the last item returned.
pub(super) fn encode_cursor(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("m:{key}"))
}

pub(super) fn decode_cursor(token: &str) -> StoreResult<String> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("m:").map(str::to_string))
        .ok_or_else(|| StoreError::BadToken("nextToken is not a token this service issued".into()))
}

/// Pages a list sorted ascending by `key`. The token is the (encoded) key of the last item
/// returned, so a page continues correctly even when that item has since gone (dismissed,
/// expired); a token we did not issue is refused, as the DynamoDB adapter refuses it.
pub(super) fn page_by_key<T: Clone>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    page: &PageRequest,
) -> StoreResult<Page<T>> {
    let start = match &page.after {
        None => 0,
        Some(token) => {
            let after = decode_cursor(token)?;
            items.partition_point(|i| key(i) <= after)
        }
    };
    let limit = page.limit.max(1);
    let slice: Vec<T> = items[start..].iter().take(limit).cloned().collect();
    let next = if start + slice.len() < items.len() {
        slice.last().map(|last| encode_cursor(&key(last)))
    } else {
        None
    };
    Ok(Page { items: slice, next })
}
