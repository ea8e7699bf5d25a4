//! Idempotency claims: a caller's key is claimed with a conditional write before its request
//! does anything, completed with the answer, or released when the request failed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreResult;

/// A stored answer to an idempotent request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Who asked, and the key they sent: the scope of the key.
    pub scope: String,
    /// SHA-256 of the request (method, path, body): a reused key with another body is a conflict.
    pub request_digest: String,
    pub status: u16,
    pub body: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// Nobody used this key yet: it is now ours; the caller completes it when it has an answer.
    Claimed,
    /// The key was used: here is what we know (an answer, or `None` while still in progress).
    Existing { request_digest: String, answer: Option<(u16, String)> },
}

/// Claims on idempotency keys.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims an idempotency key with a conditional write (two concurrent requests: one wins).
    async fn claim_idempotency(
        &self,
        scope: &str,
        request_digest: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyClaim>;
    /// Stores the answer for a claimed key.
    async fn complete_idempotency(&self, record: &IdempotencyRecord) -> StoreResult<()>;
    /// Releases a claimed key whose request failed, so that it can be retried.
    async fn release_idempotency(&self, scope: &str) -> StoreResult<()>;
}
