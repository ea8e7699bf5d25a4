//! Status webhooks: a tenant's endpoint, the events it is told of, and each event's record.
//!
//! Invariants: an event's id is derived from what it is about (`HookEvent::id_for`), so every
//! emission of the same fact carries the same `webhook-id` and a receiver dedupes retries,
//! redeliveries and replays on it; an endpoint signs with every secret still valid (the current
//! one and, for a day after a rotation, the one it replaced), newest first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::CompanyId;

/// What a tenant is told of. The wire names are the Standard Webhooks `type`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HookEventType {
    #[serde(rename = "notification.accepted")]
    Accepted,
    #[serde(rename = "notification.delivered")]
    Delivered,
    #[serde(rename = "notification.failed")]
    Failed,
    #[serde(rename = "notification.cancelled")]
    Cancelled,
    #[serde(rename = "notification.retracted")]
    Retracted,
    #[serde(rename = "email.bounced")]
    EmailBounced,
    #[serde(rename = "email.complained")]
    EmailComplained,
}

impl HookEventType {
    pub const ALL: [HookEventType; 7] = [
        HookEventType::Accepted,
        HookEventType::Delivered,
        HookEventType::Failed,
        HookEventType::Cancelled,
        HookEventType::Retracted,
        HookEventType::EmailBounced,
        HookEventType::EmailComplained,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HookEventType::Accepted => "notification.accepted",
            HookEventType::Delivered => "notification.delivered",
            HookEventType::Failed => "notification.failed",
            HookEventType::Cancelled => "notification.cancelled",
            HookEventType::Retracted => "notification.retracted",
            HookEventType::EmailBounced => "email.bounced",
            HookEventType::EmailComplained => "email.complained",
        }
    }

    pub fn parse(name: &str) -> Option<HookEventType> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// A signing secret: `whsec_` and the base64 of its key (the Standard Webhooks form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningSecret {
    pub secret: String,
    pub created_at: DateTime<Utc>,
    /// When a rotation replaced it: it signs beside the new one until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A tenant's webhook endpoint (one per tenant). Any non-2xx answer, a redirect or a timeout is
/// tried again; only a destination no try may reach fails at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    pub company_id: CompanyId,
    pub url: String,
    /// The events it is sent; empty: every one.
    #[serde(default)]
    pub events: Vec<HookEventType>,
    pub enabled: bool,
    /// Newest first: the current secret, then any a rotation replaced that has not expired.
    pub secrets: Vec<SigningSecret>,
    /// Each write is conditional on the revision it read (two admins at once lose nothing).
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub modified_by: String,
}

impl WebhookEndpoint {
    /// Whether events of type `t` go to it now.
    pub fn wants(&self, t: HookEventType) -> bool {
        self.enabled && (self.events.is_empty() || self.events.contains(&t))
    }

    /// The secrets a delivery at `now` is signed with, newest first.
    pub fn live_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|at| at > now))
            .map(|s| s.secret.as_str())
            .collect()
    }
}

/// Where an event's deliveries stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HookState {
    /// Queued, or waiting for its next try.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every try failed, or its destination is one no try may reach (a private or metadata
    /// address).
    Failed,
    /// Not sent: the endpoint was removed, disabled or no longer wants this type.
    Dropped,
}

/// One try of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookAttempt {
    pub at: DateTime<Utc>,
    /// 1 for the first try of a series (a replay starts a new series).
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An event, as recorded (for its deliveries, their log and a replay) and as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookEvent {
    /// `msg_` and 26 lowercase hex digits, derived from what it is about.
    pub id: String,
    pub company_id: CompanyId,
    #[serde(rename = "type")]
    pub event_type: HookEventType,
    pub timestamp: DateTime<Utc>,
    pub data: serde_json::Value,
    /// Whether its delivery is on the queue: an event recorded by an emission that could not
    /// queue it is queued by the next one.
    #[serde(default)]
    pub queued: bool,
    pub state: HookState,
    /// The tries so far, oldest first (the first `HookEvent::KEPT_ATTEMPTS`; `tries` counts all).
    #[serde(default)]
    pub attempts: Vec<HookAttempt>,
    #[serde(default)]
    pub tries: u32,
    /// Its series of tries: 0 from its emission, one more for each replay. A message of another
    /// series is stale and dropped, so a replay never runs beside the chain it replaces.
    #[serde(default)]
    pub series: u32,
    /// The last try of the series claimed (`HookEvents::claim_try`), and the last whose outcome
    /// is recorded: a copy of a try (SQS delivering a message twice, a settle queueing the first
    /// try twice) finds it claimed or settled and is dropped, so one chain of tries runs.
    #[serde(default)]
    pub attempt: u32,
    #[serde(default)]
    pub settled: u32,
    /// Until when (ms since the epoch) the claimed try holds the event; a try whose invocation
    /// died is claimed again by its message's next receive, after it.
    #[serde(default)]
    pub lease_until: i64,
}

impl HookEvent {
    /// Tries kept in the record's list (the count goes on).
    pub const KEPT_ATTEMPTS: usize = 24;
    /// How long an event is kept (to be looked at and replayed).
    pub const KEPT_DAYS: i64 = 30;

    /// The id of the event of type `t` about `subject` (a notification's id; an email's
    /// provider id and address): the same fact, the same id.
    pub fn id_for(t: HookEventType, subject: &str) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{}\n{subject}", t.name()).as_bytes());
        format!("msg_{}", &hex::encode(digest)[..26])
    }

    /// The body a receiver gets: `type`, `timestamp`, `data` (the Standard Webhooks shape).
    pub fn payload(&self) -> serde_json::Value {
        serde_json::json!({
            "type": self.event_type.name(),
            "timestamp": self.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": self.data,
        })
    }
}

/// A message of the webhook queue: one try of an event's delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookDelivery {
    pub event: String,
    /// The event's series of tries it belongs to (`HookEvent::series`).
    #[serde(default)]
    pub series: u32,
    /// 1-based, within its series.
    pub attempt: u32,
    /// Not tried before this (waits longer than a queue's delay are hops of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
}
