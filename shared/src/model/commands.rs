//! Requests as the services take them: what a dialect's request means, already checked for
//! shape and limits, in the domain's terms. The dialects build them; the services act on them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{BroadcastType, CompanyId, Content, EmailSpec, OverrideContent, Schedule};

/// A group send (`POST /rest/notification/send`), checked for shape, limits and version rules.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSend {
    pub version: u8,
    pub kind: BroadcastType,
    pub key: String,
    pub values: Vec<String>,
    pub message: String,
    pub url: Option<String>,
    pub schedule: Option<ScheduleRequest>,
    pub brochure_id: Option<u64>,
    pub email: Option<EmailSpec>,
    pub campaign_tag_id: Option<u64>,
    pub update_entity_last_modified: bool,
    pub user_notification_type_id: Option<u64>,
    pub user_notification_type_status_id: Option<u64>,
}

/// A change of a pending group send (`PATCH /rest/notification/send/{id}`): what it gives
/// replaces what the send had; `url: Some(None)` removes the url.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SendChange {
    pub message: Option<String>,
    pub url: Option<Option<String>>,
    pub schedule: Option<ScheduleRequest>,
}

/// A correction of what a notification that went out says (department notify, in-app
/// notifications): each field it gives replaces the stored one; the rest stays. `override_title`
/// and `override_body` are the markdown overrides (`Some(None)` removes one); a custom icon stays
/// as it was sent (its rule, a Custom icon has a url, holds). A center shows an override instead
/// of the plain text it overrides, so a corrected `title` (or `body`) whose override the
/// correction does not name removes that override: what the sender corrected is what shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentCorrection {
    pub title: Option<String>,
    pub body: Option<String>,
    pub override_title: Option<Option<String>>,
    pub override_body: Option<Option<String>>,
}

impl ContentCorrection {
    /// Whether it changes nothing (a dialect refuses an empty correction).
    pub fn is_empty(&self) -> bool {
        *self == ContentCorrection::default()
    }

    /// `content` as the correction leaves it.
    pub fn applied_to(&self, content: &Content) -> Content {
        let mut changed = content.clone();
        if let Some(title) = &self.title {
            changed.title = title.clone();
        }
        if let Some(body) = &self.body {
            changed.body = body.clone();
        }
        let override_title = self.override_title.clone().or(self.title.as_ref().map(|_| None));
        let override_body = self.override_body.clone().or(self.body.as_ref().map(|_| None));
        if let Some(mut o) = changed.override_content.take() {
            if let Some(title) = override_title {
                o.title = title;
            }
            if let Some(body) = override_body {
                o.body = body;
            }
            changed.override_content = (o != OverrideContent::default()).then_some(o);
        } else if override_title.is_some() || override_body.is_some() {
            let o = OverrideContent {
                title: override_title.flatten(),
                body: override_body.flatten(),
                icon_url: None,
            };
            changed.override_content = (o != OverrideContent::default()).then_some(o);
        }
        changed
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRequest {
    pub schedule: Schedule,
    /// The instant the local time names in its zone.
    pub at: DateTime<Utc>,
}

/// The status names of `userNotificationTypeStatusId`.
pub fn user_notification_status_name(id: u64) -> Option<&'static str> {
    match id {
        1 => Some("Available"),
        2 => Some("Shortage"),
        3 => Some("Depleted"),
        4 => Some("Short Dated"),
        _ => None,
    }
}

/// A sent-history query (`GET /rest/notification/sent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    pub broadcast_type: Option<BroadcastType>,
    pub company_id: Option<CompanyId>,
    pub event_id: Option<Uuid>,
    pub schedule_id: Option<u64>,
    pub brochure_id: Option<u64>,
    /// `None`: every matching record (up to the service's cap for unpaged answers).
    pub limit: Option<usize>,
    pub next_token: Option<String>,
}

/// An in-app notification (`SendAppNotification`) to one person.
#[derive(Debug, Clone, PartialEq)]
pub struct AppNotify {
    pub recipient: Uuid,
    pub content: Content,
    pub ttl_seconds: u64,
}

/// What a department sends one of its users (`…/notify`), as the notify service takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct DepartmentMessage {
    pub subject: Option<String>,
    pub body: String,
    /// What the recipient's client may use (metaData, attachments, tags, buttons), as JSON.
    pub data: Option<String>,
    pub scheduled_on: Option<DateTime<Utc>>,
    pub delay_seconds: u64,
    pub send_synchronously: bool,
    pub callback_url: Option<String>,
    pub callback_metadata: Option<serde_json::Value>,
}

/// A desktop-assistant notification (`POST /desktop-assistant/notifications`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopNotify {
    pub title: Option<String>,
    pub message: String,
    /// Recipient sys_ids: trimmed, de-duplicated, in order.
    pub recipients: Vec<String>,
    pub referrer_table: Option<String>,
    pub referrer_id: Option<String>,
    /// `mim` (Major Incident Management) or `pe` (Proactive Engagement).
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent() -> Content {
        Content {
            title: "Build failed".into(),
            body: "main is red".into(),
            override_content: Some(OverrideContent {
                title: Some("**Build failed**".into()),
                body: Some("main is *red*".into()),
                icon_url: Some("/WebResources/alert".into()),
            }),
            ..Content::default()
        }
    }

    #[test]
    fn a_corrected_title_is_what_shows_its_override_gone_the_rest_kept() {
        let c = ContentCorrection { title: Some("Build fixed".into()), ..Default::default() };
        let got = c.applied_to(&sent());
        let o = got.override_content.expect("the body's override and the icon stay");
        assert_eq!(
            (got.title.as_str(), o.title, o.body.as_deref(), o.icon_url.as_deref()),
            ("Build fixed", None, Some("main is *red*"), Some("/WebResources/alert"))
        );
    }

    #[test]
    fn an_override_named_by_the_correction_is_set_or_removed_as_it_says() {
        let c = ContentCorrection {
            body: Some("main is green".into()),
            override_body: Some(Some("main is **green**".into())),
            override_title: Some(None),
            ..Default::default()
        };
        let o = c.applied_to(&sent()).override_content.unwrap();
        assert_eq!((o.title, o.body.as_deref()), (None, Some("main is **green**")));
        // Without an icon, nothing left of the override is no override.
        let mut plain = sent();
        plain.override_content.as_mut().unwrap().icon_url = None;
        let both =
            ContentCorrection { override_title: Some(None), override_body: Some(None), ..Default::default() };
        assert_eq!(both.applied_to(&plain).override_content, None);
        // An override given to a notification sent without one.
        let fresh = Content { title: "t".into(), ..Content::default() };
        let c = ContentCorrection { override_title: Some(Some("**t**".into())), ..Default::default() };
        assert_eq!(c.applied_to(&fresh).override_content.unwrap().title.as_deref(), Some("**t**"));
    }
}
