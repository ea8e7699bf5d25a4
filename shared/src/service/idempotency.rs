//! `Idempotency-Key`: the same key from the same caller within 24 hours returns the first answer
//! and does nothing again; the same key with another request is a conflict (409).

use chrono::{DateTime, Duration, Utc};

use crate::credentials::digest;
use crate::error::{ApiError, ErrorKind};
use crate::ports::{IdempotencyClaim, IdempotencyRecord, IdempotencyStore};

pub const HEADER: &str = "idempotency-key";

/// Who a key belongs to: the caller and the route (method and path), so that one key reused on
/// another route is another key and can never replay another route's answer.
pub fn scope(caller: &str, method: &str, path: &str) -> String {
    format!("{caller} {method} {path}")
}
pub const WINDOW_HOURS: i64 = 24;
/// How long a claim whose request has not answered yet holds its key: longer than any API
/// function's timeout (10 s) and API Gateway's (30 s), so a live request keeps it, while a
/// request killed at its timeout frees its key for the caller's retry a minute later instead
/// of pinning it for the whole window.
pub const IN_PROGRESS_SECONDS: i64 = 60;
const MAX_KEY_LEN: usize = 255;

/// The id of the notification an idempotent request creates: derived from who asked, their key
/// and the request, so that a retry whose first attempt committed the write but lost the answer
/// finds the same notification instead of creating a second one. Without a key: a fresh id.
pub fn notification_id(
    caller: &str,
    key: Option<&str>,
    request: &[u8],
    fresh: impl FnOnce() -> uuid::Uuid,
) -> uuid::Uuid {
    use sha2::{Digest, Sha256};
    match key {
        None => fresh(),
        Some(k) => {
            let mut h = Sha256::new();
            for part in [caller.as_bytes(), b"\0", k.as_bytes(), b"\0", request] {
                h.update(part);
            }
            let digest = h.finalize();
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            uuid::Builder::from_custom_bytes(bytes).into_uuid()
        }
    }
}

/// An answer: status and body text.
pub type Answer = (u16, String);

/// Whether an answer came from the store (a replay) or was just computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub answer: Answer,
    pub replayed: bool,
}

/// Runs `work` at most once per (caller, key) within the window. Without a key it just runs.
/// Only successful answers are kept: a failed request releases its key so it can be retried.
pub async fn once<F, Fut>(
    store: &dyn IdempotencyStore,
    caller: &str,
    key: Option<&str>,
    request: &[u8],
    now: DateTime<Utc>,
    work: F,
) -> Result<Outcome, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Answer, ApiError>>,
{
    let Some(key) = key else {
        return work().await.map(|answer| Outcome { answer, replayed: false });
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.chars().any(|c| !c.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        ));
    }
    let scope = format!("{caller}:{key}");
    let request_digest = digest(&String::from_utf8_lossy(request));
    let expires_at = now + Duration::hours(WINDOW_HOURS);
    let lease = now + Duration::seconds(IN_PROGRESS_SECONDS);
    match store.claim_idempotency(&scope, &request_digest, lease, now).await? {
        IdempotencyClaim::Existing { request_digest: d, .. } if d != request_digest => Err(ApiError::new(
            ErrorKind::Conflict,
            "this Idempotency-Key was already used with a different request",
        )
        .with_parameter("Idempotency-Key")),
        IdempotencyClaim::Existing { answer: Some(answer), .. } => Ok(Outcome { answer, replayed: true }),
        IdempotencyClaim::Existing { answer: None, .. } => {
            let mut e = ApiError::new(
                ErrorKind::Conflict,
                "a request with this Idempotency-Key is still in progress",
            )
            .with_parameter("Idempotency-Key");
            e.retry_after = Some(1);
            Err(e)
        }
        IdempotencyClaim::Claimed => match work().await {
            Ok(answer) => {
                let record = IdempotencyRecord {
                    scope,
                    request_digest,
                    status: answer.0,
                    body: answer.1.clone(),
                    expires_at,
                };
                store.complete_idempotency(&record).await?;
                Ok(Outcome { answer, replayed: false })
            }
            Err(e) => {
                if let Err(release) = store.release_idempotency(&scope).await {
                    tracing::warn!(error = %release, "could not release an idempotency key");
                }
                Err(e)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryNotificationStore;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T09:00:00Z").unwrap().with_timezone(&Utc)
            + Duration::seconds(seconds)
    }

    async fn ask(store: &MemoryNotificationStore, at: DateTime<Utc>) -> Result<Outcome, ApiError> {
        once(store, "caller", Some("key-1"), b"{}", at, || async { Ok((200, "done".to_string())) }).await
    }

    /// A request killed mid-way (its claim written, no answer) holds its key for a minute, not
    /// for the 24-hour window; an answered one is replayed for the whole window.
    #[tokio::test]
    async fn an_unanswered_claim_frees_its_key_after_its_lease() {
        let store = MemoryNotificationStore::new();
        // The first request claims its key, then is killed at its timeout while working.
        let killed = once(&store, "caller", Some("key-1"), b"{}", t(0), std::future::pending);
        assert!(tokio::time::timeout(std::time::Duration::from_millis(20), killed).await.is_err());
        let e = ask(&store, t(5)).await.unwrap_err();
        assert_eq!((e.status(), e.retry_after), (409, Some(1)), "in progress: retry shortly");
        let first = ask(&store, t(IN_PROGRESS_SECONDS + 1)).await.unwrap();
        assert_eq!((first.answer.0, first.replayed), (200, false), "the retry after the lease runs");
        let replay = ask(&store, t(WINDOW_HOURS * 3600 - 10)).await.unwrap();
        assert!(replay.replayed, "answered: replayed for the whole window");
    }
}
