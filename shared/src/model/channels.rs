//! Channels beyond the notification center: the devices people register for mobile push, and
//! what one delivered chunk did on every channel.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::UserId;

/// A mobile push service, by its Amazon SNS platform name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Platform {
    #[serde(rename = "APNS")]
    Apns,
    #[serde(rename = "APNS_SANDBOX")]
    ApnsSandbox,
    #[serde(rename = "GCM")]
    Gcm,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::Apns, Platform::ApnsSandbox, Platform::Gcm];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Apns => "APNS",
            Platform::ApnsSandbox => "APNS_SANDBOX",
            Platform::Gcm => "GCM",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Platform::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Largest payload the platform accepts, in bytes of the platform's own JSON (APNs: 4 KiB;
    /// FCM: 4 KiB of data; SNS adds its envelope within its own 256 KiB).
    pub fn payload_limit(self) -> usize {
        4096
    }
}

/// A registered device: one platform endpoint of one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Derived from platform and token, so registering the same token twice is one device.
    pub device_id: String,
    pub platform: Platform,
    pub token: String,
    /// The SNS platform endpoint publishes go to.
    pub endpoint_arn: String,
    pub registered_at: DateTime<Utc>,
}

impl Device {
    /// The stable id of a (platform, token) pair: 32 hex digits of its SHA-256.
    pub fn id_for(platform: Platform, token: &str) -> String {
        let digest = Sha256::digest(format!("{}:{token}", platform.as_str()).as_bytes());
        hex::encode(&digest[..16])
    }
}

/// What delivering one chunk did, counted on the notification exactly once per chunk. Its
/// emails go out apart, paced by their own queue (`EmailJob`): the chunk counts them as queued,
/// and each email job, once settled, moves its recipients from queued to their outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkTally {
    /// Inbox items written.
    pub delivered: u64,
    /// Recipients whose email was handed to the email queue.
    pub emails_queued: u64,
    pub pushes: PushCounts,
    /// Recipients per email job the chunk's emails were cut into (kept with its record, so that
    /// a redelivery queues the same jobs whatever version handles it).
    pub email_job_size: u32,
}

/// Per-recipient email outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailCounts {
    pub sent: u64,
    /// The recipient opted out of this asset's emails (ALP-EUN).
    pub opted_out: u64,
    /// The recipient has no usable email address.
    pub no_address: u64,
    /// SES refused the message for good (a rejected address, say), or it could not be sent
    /// within the email retries (SES throttling or its daily quota for hours).
    pub failed: u64,
    /// The address bounced for good or complained earlier: it is not mailed again.
    #[serde(default)]
    pub suppressed: u64,
    /// Not mailed: its sender retracted the notification before the email went out.
    #[serde(default)]
    pub withdrawn: u64,
}

impl EmailCounts {
    /// Recipients with an outcome: each recipient of an email job ends in exactly one count.
    pub fn settled(&self) -> u64 {
        self.sent + self.opted_out + self.no_address + self.failed + self.suppressed + self.withdrawn
    }
}

/// Per-device push outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushCounts {
    /// Publishes SNS accepted (one per device).
    pub sent: u64,
    /// Devices whose endpoint was disabled or gone: removed from the person's devices.
    pub removed: u64,
    pub failed: u64,
    /// Devices not published to: the notification was retracted before their push went out.
    #[serde(default)]
    pub withdrawn: u64,
}

/// Idempotency keys of the sends one chunk already made, so that a redelivered chunk skips them.
///
/// A mark is a letter and a 64-bit digest of what it is about (`e` an email to a person, `p` a
/// push to a device, `x` before either one that failed for good, `r` a device removed), 12 or 13
/// bytes whatever the ids weigh: 64 of them fit one write unit. Marks of a chunk are compared
/// only with marks of the same chunk and kind (a few thousand): two of 64 bits colliding there
/// is about 10⁻¹² a chunk. Earlier versions wrote `e:{user}` / `p:{device}` / `r:{device}` in
/// full; those are still honoured while they last (`MARKS_DAYS`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SentMarks(pub std::collections::HashSet<String>);

impl SentMarks {
    /// The mark of an email sent to `user`.
    pub fn email(user: UserId) -> String {
        mark('e', &format!("e:{user}"))
    }
    /// The mark of a push published to `device_id`.
    pub fn push(device_id: &str) -> String {
        mark('p', &format!("p:{device_id}"))
    }
    /// The mark of a device removed because its endpoint was gone.
    pub fn removed(device_id: &str) -> String {
        mark('r', &format!("r:{device_id}"))
    }
    /// The mark of a send (`sent`: an `email` or `push` mark) refused for good: redelivery
    /// neither retries nor miscounts it.
    pub fn failed(sent: &str) -> String {
        format!("x{sent}")
    }
    /// Whether an email to `user` went out.
    pub fn emailed(&self, user: UserId) -> bool {
        self.contains(&Self::email(user)) || self.contains(&format!("e:{user}"))
    }
    /// Whether an email to `user` was refused for good.
    pub fn email_failed(&self, user: UserId) -> bool {
        self.contains(&Self::failed(&Self::email(user))) || self.contains(&format!("xe:{user}"))
    }
    /// Whether a push to `device_id` went out.
    pub fn pushed(&self, device_id: &str) -> bool {
        self.contains(&Self::push(device_id)) || self.contains(&format!("p:{device_id}"))
    }
    /// Whether a push to `device_id` was refused for good.
    pub fn push_failed(&self, device_id: &str) -> bool {
        self.contains(&Self::failed(&Self::push(device_id))) || self.contains(&format!("xp:{device_id}"))
    }
    /// Devices removed (their endpoints gone) by any attempt at the chunk.
    pub fn removed_devices(&self) -> u64 {
        self.0.iter().filter(|k| k.starts_with('r')).count() as u64
    }
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains(key)
    }
}

/// The longest mark (`x`, a kind's letter, 11 characters of digest).
pub const MARK_MAX_BYTES: usize = 13;

/// `kind` and the first 64 bits of SHA-256 of `what`, in unpadded base64url.
fn mark(kind: char, what: &str) -> String {
    use base64::Engine;
    let digest = Sha256::digest(what.as_bytes());
    format!("{kind}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..8]))
}

/// What a mailbox told SES about an email we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FeedbackKind {
    /// A permanent (hard) bounce: the address does not take mail.
    Bounce,
    /// The recipient marked the email as spam.
    Complaint,
}

impl FeedbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::Bounce => "bounce",
            FeedbackKind::Complaint => "complaint",
        }
    }
}

/// One entry of a notification's delivery log: what its delivery recorded, once each and at
/// the time it was recorded: a chunk of people given it, an email job settled, a bounce or a
/// complaint. Per chunk or job, never per person (`DeliveryLog`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// When it was recorded (`None`: by a version that kept no time).
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    pub event: LogEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// A chunk's people have it in their centers.
    ChunkDelivered { chunk: u32, people: u64 },
    /// An email job's recipients settled (sent, skipped or failed: the counts are the
    /// notification's).
    EmailsSettled { chunk: u32, part: u32, people: u64 },
    /// SES reported a bounce or a complaint about one of its emails.
    Feedback { kind: FeedbackKind, message_id: String },
    /// A retraction removed a chunk's entries from its people's centers.
    ChunkRetracted { chunk: u32, people: u64 },
}

/// One bounce or complaint SES reported (an SES event, already read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailFeedback {
    pub kind: FeedbackKind,
    /// SES's id of the email: one recipient per email here, so one feedback per email and kind.
    pub message_id: String,
    pub addresses: Vec<String>,
    /// The notification the email was about (its `notification` tag).
    pub notification: Option<super::NotificationId>,
    /// The request that notification came from (its `request` tag: `crate::trace`).
    pub request: Option<String>,
    pub at: DateTime<Utc>,
}

/// An address that is not mailed again, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailSuppression {
    /// Lower case.
    pub address: String,
    pub reason: FeedbackKind,
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_id: Option<super::NotificationId>,
}

/// What a push says, whatever the platform: the push gateway renders it in each platform's
/// payload (APNs, FCM) within its size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMessage {
    pub notification_id: super::NotificationId,
    pub title: String,
    pub body: String,
    pub url: Option<String>,
    /// Delivered at once where the platform distinguishes (Android's high priority).
    pub high_priority: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marks are 12-13 bytes whatever the ids weigh, and marks earlier versions wrote in full
    /// (`e:{user}`, `xe:{user}`, `p:{device}`, `xp:{device}`, `r:{device}`) still count.
    #[test]
    fn marks_are_short_and_earlier_versions_marks_still_count() {
        let (user, device) = (uuid::Uuid::from_u128(7), "d".repeat(200));
        for mark in [SentMarks::email(user), SentMarks::push(&device), SentMarks::removed(&device)] {
            assert_eq!(mark.len(), 12, "{mark}");
            assert_eq!(SentMarks::failed(&mark).len(), MARK_MAX_BYTES);
        }
        let new = SentMarks(
            [
                SentMarks::email(user),
                SentMarks::failed(&SentMarks::push(&device)),
                SentMarks::removed("gone"),
            ]
            .into_iter()
            .collect(),
        );
        assert!(new.emailed(user) && !new.email_failed(user));
        assert!(new.push_failed(&device) && !new.pushed(&device));
        assert_eq!(new.removed_devices(), 1);
        let old = SentMarks(
            [format!("e:{user}"), format!("xp:{device}"), "r:gone".to_string(), "r:other".to_string()]
                .into_iter()
                .collect(),
        );
        assert!(old.emailed(user) && old.push_failed(&device) && !old.pushed(&device));
        assert_eq!(old.removed_devices(), 2);
        let old_failed = SentMarks([format!("xe:{user}"), format!("p:{device}")].into_iter().collect());
        assert!(old_failed.email_failed(user) && old_failed.pushed(&device) && !old_failed.emailed(user));
        assert!(!SentMarks::default().emailed(user), "nothing marked");
    }
}
