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
        let rank = match self.priority {
            Priority::High => 0,
            Priority::Normal => 1,
        };
        // Inverted millisecond timestamp, fixed width: newer sorts first in ascending order
        // (13 digits hold every millisecond until the year 2286).
        const LATEST: u64 = 9_999_999_999_999;
        let millis = (self.created_at.timestamp_millis().max(0) as u64).min(LATEST);
        format!("{rank}#{:013}#{}", LATEST - millis, self.notification_id)
    }
}

/// How the notification center is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxQuery {
    /// Display order (priority, then newest first).
    Ordered,
    /// Only items created after this instant, newest first: cheap polling.
    Since(DateTime<Utc>),
}
