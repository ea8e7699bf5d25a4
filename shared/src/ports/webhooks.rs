//! Status webhooks: a tenant's endpoint, and the record of each event sent to it.

use async_trait::async_trait;

use crate::error::StoreResult;
use crate::model::*;

/// A tenant's webhook endpoint (one per tenant).
#[async_trait]
pub trait WebhookEndpoints: Send + Sync {
    async fn endpoint(&self, company: CompanyId) -> StoreResult<Option<WebhookEndpoint>>;
    /// Writes `endpoint` if the stored one's revision is `read` (`None`: none is stored);
    /// `false` when another write came first (nothing written).
    async fn save_endpoint(&self, endpoint: &WebhookEndpoint, read: Option<u64>) -> StoreResult<bool>;
    /// Removes the tenant's endpoint; removing none succeeds.
    async fn delete_endpoint(&self, company: CompanyId) -> StoreResult<()>;
}

/// The record of each event: what its deliveries send, their tries, a replay's source.
#[async_trait]
pub trait HookEvents: Send + Sync {
    /// Records `event` unless one of its id is recorded; the recorded one either way.
    async fn record_event(&self, event: &HookEvent) -> StoreResult<HookEvent>;
    async fn event(&self, id: &str) -> StoreResult<Option<HookEvent>>;
    /// Notes that its delivery is on the queue.
    async fn mark_queued(&self, id: &str) -> StoreResult<()>;
    /// Claims try `attempt` of series `series` until `lease_until` (ms): only while the event
    /// is pending in that series, the try is not settled, and no live claim holds it (an
    /// earlier try's, or this one's by an invocation that died and whose lease ran out).
    /// `false`: another copy has it, or had it.
    async fn claim_try(
        &self,
        id: &str,
        series: u32,
        attempt: u32,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<bool>;
    /// Records try `attempt.attempt` of series `series` and the state it leaves the event in (the
    /// try kept in the list while it holds fewer than `HookEvent::KEPT_ATTEMPTS`; `tries` counts
    /// every one); nothing when a replay started another series meanwhile.
    async fn record_attempt(
        &self,
        id: &str,
        series: u32,
        attempt: &HookAttempt,
        state: HookState,
    ) -> StoreResult<()>;
    /// Starts a new series of tries (a replay): pending, nothing claimed. Its number; `None` for
    /// an event that does not exist.
    async fn start_series(&self, id: &str) -> StoreResult<Option<u32>>;
}

/// Both, as the composition roots hold them.
pub trait WebhookStore: WebhookEndpoints + HookEvents {}
impl<T> WebhookStore for T where T: WebhookEndpoints + HookEvents + ?Sized {}
