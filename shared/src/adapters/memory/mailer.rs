//! A mailer in memory: records emails; tests make addresses refused, the mailer fail, or apply
//! SES's sending limits.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::*;
use crate::ports::*;

/// Records emails instead of sending them; addresses can be set to be rejected, and the whole
/// mailer to fail transiently, for tests.
#[derive(Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<OutgoingEmail>>,
    rejected: Mutex<HashSet<String>>,
    failing: std::sync::atomic::AtomicBool,
    /// SES's account limits, when set: (per second, per 24 hours, when each accepted email went).
    limits: Mutex<Option<(u32, u32, Vec<Instant>)>>,
}

impl MemoryMailer {
    pub fn new() -> Self {
        Self::default()
    }
    /// Every email sent so far.
    pub fn sent(&self) -> Vec<OutgoingEmail> {
        lock(&self.sent).clone()
    }
    /// Makes sends to `address` fail for good.
    pub fn reject(&self, address: &str) {
        lock(&self.rejected).insert(address.to_ascii_lowercase());
    }
    /// Limits sending as an SES account is limited: `rate` emails per second and `daily` per 24
    /// hours; beyond them a send fails as SES answers (TooManyRequestsException,
    /// LimitExceededException), transiently.
    pub fn limit(&self, rate: u32, daily: u32) {
        *lock(&self.limits) = Some((rate, daily, Vec::new()));
    }
    /// Makes every send fail as if SES throttled (or stops doing so).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SendError::Transient("mailer unavailable (test)".into()));
        }
        if lock(&self.rejected).contains(&email.to.to_ascii_lowercase()) {
            return Err(SendError::Rejected(crate::redact::redact(&format!(
                "MessageRejected: address {} rejected",
                email.to
            ))));
        }
        if let Some((rate, daily, accepted)) = lock(&self.limits).as_mut() {
            let now = Instant::now();
            if accepted.len() >= *daily as usize {
                return Err(SendError::Transient(
                    "LimitExceededException: Daily message quota exceeded.".into(),
                ));
            }
            if accepted.iter().filter(|t| now.duration_since(**t) < Duration::from_secs(1)).count()
                >= *rate as usize
            {
                return Err(SendError::Transient(
                    "TooManyRequestsException: Maximum sending rate exceeded.".into(),
                ));
            }
            accepted.push(now);
        }
        // Addresses and subjects are personal data: not logged.
        tracing::info!(bytes = email.html.len(), "email recorded (memory mailer)");
        let mut sent = lock(&self.sent);
        sent.push(email.clone());
        Ok(format!("memory-{}", sent.len()))
    }
}
