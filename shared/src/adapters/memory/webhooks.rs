//! Webhook endpoints and event records in memory (`DynamoWebhookStore`'s contract).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::error::StoreResult;
use crate::model::*;
use crate::ports::*;

#[derive(Default)]
pub struct MemoryWebhookStore {
    endpoints: Mutex<HashMap<CompanyId, WebhookEndpoint>>,
    events: Mutex<HashMap<String, HookEvent>>,
}

impl MemoryWebhookStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl WebhookEndpoints for MemoryWebhookStore {
    async fn endpoint(&self, company: CompanyId) -> StoreResult<Option<WebhookEndpoint>> {
        Ok(lock(&self.endpoints).get(&company).cloned())
    }

    async fn save_endpoint(&self, endpoint: &WebhookEndpoint, read: Option<u64>) -> StoreResult<bool> {
        let mut endpoints = lock(&self.endpoints);
        if endpoints.get(&endpoint.company_id).map(|e| e.revision) != read {
            return Ok(false);
        }
        endpoints.insert(endpoint.company_id, endpoint.clone());
        Ok(true)
    }

    async fn delete_endpoint(&self, company: CompanyId) -> StoreResult<()> {
        lock(&self.endpoints).remove(&company);
        Ok(())
    }
}

#[async_trait]
impl HookEvents for MemoryWebhookStore {
    async fn record_event(&self, event: &HookEvent) -> StoreResult<HookEvent> {
        Ok(lock(&self.events).entry(event.id.clone()).or_insert_with(|| event.clone()).clone())
    }

    async fn event(&self, id: &str) -> StoreResult<Option<HookEvent>> {
        Ok(lock(&self.events).get(id).cloned())
    }

    async fn mark_queued(&self, id: &str) -> StoreResult<()> {
        if let Some(e) = lock(&self.events).get_mut(id) {
            e.queued = true;
        }
        Ok(())
    }

    async fn claim_try(
        &self,
        id: &str,
        series: u32,
        attempt: u32,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<bool> {
        let mut events = lock(&self.events);
        let Some(e) = events.get_mut(id) else { return Ok(false) };
        let free = e.attempt < attempt || e.lease_until < now;
        if e.series != series || e.state != HookState::Pending || e.settled >= attempt || !free {
            return Ok(false);
        }
        e.attempt = attempt;
        e.lease_until = lease_until;
        Ok(true)
    }

    async fn record_attempt(
        &self,
        id: &str,
        series: u32,
        attempt: &HookAttempt,
        state: HookState,
    ) -> StoreResult<()> {
        if let Some(e) = lock(&self.events).get_mut(id)
            && e.series == series
        {
            if e.attempts.len() < HookEvent::KEPT_ATTEMPTS {
                e.attempts.push(attempt.clone());
            }
            e.tries += 1;
            e.state = state;
            e.settled = attempt.attempt;
            e.lease_until = 0;
        }
        Ok(())
    }

    async fn start_series(&self, id: &str) -> StoreResult<Option<u32>> {
        Ok(lock(&self.events).get_mut(id).map(|e| {
            e.series += 1;
            e.state = HookState::Pending;
            e.attempt = 0;
            e.settled = 0;
            e.lease_until = 0;
            e.series
        }))
    }
}
