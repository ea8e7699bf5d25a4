//! Platform endpoints and publishes in memory, with SNS's rules.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::ports::*;

/// A platform endpoint of the memory push gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryEndpoint {
    pub platform: Platform,
    pub token: String,
    pub user: UserId,
    pub enabled: bool,
    /// Messages published to it (the SNS JSON message structure).
    pub messages: Vec<String>,
}

/// Platform endpoints and publishes in memory, with SNS's rules: one endpoint per token,
/// publishing to a disabled or deleted endpoint fails.
pub struct MemoryPush {
    platforms: Vec<Platform>,
    endpoints: Mutex<HashMap<String, MemoryEndpoint>>,
}

impl MemoryPush {
    /// A gateway with applications for `platforms`.
    pub fn new(platforms: &[Platform]) -> Self {
        MemoryPush { platforms: platforms.to_vec(), endpoints: Mutex::new(HashMap::new()) }
    }
    pub fn endpoints(&self) -> HashMap<String, MemoryEndpoint> {
        lock(&self.endpoints).clone()
    }
    /// What the push service does when an app is uninstalled: the endpoint is disabled.
    pub fn disable(&self, endpoint: &str) {
        if let Some(e) = lock(&self.endpoints).get_mut(endpoint) {
            e.enabled = false;
        }
    }
    /// Every publish: (endpoint, message).
    pub fn published(&self) -> Vec<(String, String)> {
        let mut all: Vec<_> = lock(&self.endpoints)
            .iter()
            .flat_map(|(arn, e)| e.messages.iter().map(move |m| (arn.clone(), m.clone())))
            .collect();
        all.sort();
        all
    }
}

#[async_trait]
impl PushGateway for MemoryPush {
    fn supports(&self, platform: Platform) -> bool {
        self.platforms.contains(&platform)
    }

    async fn create_endpoint(
        &self,
        platform: Platform,
        token: &str,
        user: UserId,
    ) -> Result<String, SendError> {
        if !self.supports(platform) {
            return Err(SendError::Rejected(format!("no {} application", platform.as_str())));
        }
        let arn =
            format!("arn:memory:sns:endpoint/{}/{}", platform.as_str(), Device::id_for(platform, token));
        let mut endpoints = lock(&self.endpoints);
        let e = endpoints.entry(arn.clone()).or_insert_with(|| MemoryEndpoint {
            platform,
            token: token.to_string(),
            user,
            enabled: true,
            messages: Vec::new(),
        });
        e.user = user;
        e.enabled = true;
        Ok(arn)
    }

    async fn delete_endpoint(&self, endpoint: &str) -> Result<(), SendError> {
        lock(&self.endpoints).remove(endpoint);
        Ok(())
    }

    async fn publish(
        &self,
        endpoint: &str,
        platform: Platform,
        message: &PushMessage,
    ) -> Result<String, SendError> {
        // The message as SNS would carry it, so that tests read the same payloads on both.
        let message = crate::adapters::sns::platform_message(message, platform);
        let mut endpoints = lock(&self.endpoints);
        match endpoints.get_mut(endpoint) {
            None => Err(SendError::Gone(format!("endpoint {endpoint} does not exist"))),
            Some(e) if !e.enabled => Err(SendError::Gone(format!("endpoint {endpoint} is disabled"))),
            Some(e) => {
                e.messages.push(message);
                Ok(format!("memory-{}", e.messages.len()))
            }
        }
    }
}
