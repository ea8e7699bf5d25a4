//! The recipient's side: one inbox item per person per notification.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Action, IconType, NotificationId, Origin, OverrideContent, Priority, ToastType, UserId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxItem {
    pub user_id: UserId,
    /// The item id is the notification id: one item per user per notification, so a redelivered
    /// chunk overwrites instead of duplicating.
    pub notification_id: NotificationId,
    pub origin: Origin,
    pub title: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_content: Option<OverrideContent>,
    pub icon: IconType,
    pub toast: ToastType,
    pub priority: Priority,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dismissed_at: Option<DateTime<Utc>>,
}

impl InboxItem {
    /// Shown in the notification center at `now`: neither dismissed nor expired.
    pub fn is_visible(&self, now: DateTime<Utc>) -> bool {
        self.dismissed_at.is_none() && self.expires_at > now
    }

    /// Sort key of the notification center: High before Normal, then newest first, then id
    /// (so that the order is total and pagination is stable). Lexicographic order of this string
    /// is the display order.
    pub fn order_key(&self) -> String {
        let (rank, inverted, id) = self.order_parts();
        format!("{rank}#{inverted:013}#{id}")
    }

    /// The parts of [`Self::order_key`]: as a tuple they sort exactly as the string does (one
    /// digit, a fixed-width number, a UUID whose lowercase text sorts as its bytes).
    pub fn order_parts(&self) -> (u8, u64, NotificationId) {
        let rank = match self.priority {
            Priority::High => 0,
            Priority::Normal => 1,
        };
        // Inverted millisecond timestamp, fixed width: newer sorts first in ascending order
        // (13 digits hold every millisecond until the year 2286).
        let millis = (self.created_at.timestamp_millis().max(0) as u64).min(LATEST_MILLIS);
        (rank, LATEST_MILLIS - millis, self.notification_id)
    }

    /// The order key's parts back from its text (a cursor).
    pub fn parse_order_key(key: &str) -> Option<(u8, u64, NotificationId)> {
        let mut parts = key.splitn(3, '#');
        let rank = parts.next()?.parse().ok()?;
        let inverted = parts.next()?.parse().ok()?;
        let id = parts.next()?.parse().ok()?;
        Some((rank, inverted, id))
    }

    /// Whether two items show the same thing (all but the owner and the dismissal).
    pub fn same_content(&self, other: &InboxItem) -> bool {
        let InboxItem {
            user_id: _,
            notification_id,
            origin,
            title,
            body,
            url,
            override_content,
            icon,
            toast,
            priority,
            actions,
            data,
            source,
            created_at,
            expires_at,
            dismissed_at: _,
        } = self;
        *notification_id == other.notification_id
            && *origin == other.origin
            && *title == other.title
            && *body == other.body
            && *url == other.url
            && *override_content == other.override_content
            && *icon == other.icon
            && *toast == other.toast
            && *priority == other.priority
            && *actions == other.actions
            && *data == other.data
            && *source == other.source
            && *created_at == other.created_at
            && *expires_at == other.expires_at
    }
}

/// The largest inverted timestamp of an order key: 13 digits.
const LATEST_MILLIS: u64 = 9_999_999_999_999;

/// How the notification center is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxQuery {
    /// Display order (priority, then newest first).
    Ordered,
    /// Only items created after this instant, newest first: cheap polling.
    Since(DateTime<Utc>),
}
