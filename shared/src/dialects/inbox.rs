//! The recipient's own routes (`/users/{userId}/…`): the notification center as every client
//! sees it whatever dialect sent the notification, the devices, the email status. Wire views and
//! the center's paging limits.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::ApiError;
use crate::model::*;

/// Notifications per page of the center, unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;

/// One notification as every client sees it, whatever dialect sent it, with its recipient's
/// state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxView {
    pub id: NotificationId,
    pub title: String,
    pub body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_content: Option<OverrideContent>,
    pub icon: IconType,
    pub toast: ToastType,
    pub priority: Priority,
    pub actions: Vec<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub origin: Origin,
    pub created_on: DateTime<Utc>,
    pub expires_on: DateTime<Utc>,
    /// When it reached this person (a watermark covers what was delivered at or before it).
    pub delivered_on: DateTime<Utc>,
    pub seen: bool,
    pub read: bool,
    pub archived: bool,
}

impl From<InboxItem> for InboxView {
    fn from(i: InboxItem) -> Self {
        InboxView::of(i.content, i.state, i.entry.delivered_at)
    }
}

impl InboxView {
    /// A notification's content as its recipient sees it in `state`, delivered at `delivered`.
    pub fn of(c: InboxContent, state: ItemState, delivered: DateTime<Utc>) -> Self {
        InboxView {
            id: c.notification_id,
            title: c.title,
            body: c.body,
            override_content: c.override_content,
            icon: c.icon,
            toast: c.toast,
            priority: c.priority,
            actions: c.actions,
            data: c.data,
            url: c.url,
            source: c.source,
            origin: c.origin,
            created_on: c.created_at,
            expires_on: c.expires_at,
            delivered_on: delivered,
            seen: state.seen,
            read: state.read,
            archived: state.archived,
        }
    }
}

/// The largest realtime message: one WebSocket frame of API Gateway (32 KB; a larger message
/// would be split into frames, and a client receiving a larger frame is disconnected with
/// 1009). A delivery whose notification does not fit is told by id: the page reads it.
pub const REALTIME_MESSAGE_BYTES: usize = 32 * 1024;

/// An event as a page applies it (the `data` of an SSE event, the `event` of a WebSocket
/// message): `{"type": "new", "ids": [..], "notification": {..}}` (the notification as the
/// center lists it: unseen, unread, delivered at the cursor); `{"type": "marked", "id", "mark",
/// "counts"}`; `{"type": "markedAll", "mark", "through", "counts"}` (`through`: epoch ms, what
/// was delivered at or before it took the mark); `{"type": "retracted", "id"}` (its sender took
/// it back: no longer in the center); `{"type": "corrected", "id", "content": {..}}` (its sender
/// corrected it: the title, body, url and the rest of what it shows, to replace; the person's
/// seen, read and archived stay). `notification` and `counts` are left out when the event does
/// not carry them.
pub fn event_json(cursor: i64, event: &InboxEvent, with_content: bool) -> serde_json::Value {
    let mut out = serde_json::json!({ "type": event.kind() });
    match event {
        InboxEvent::New { ids, content } => {
            out["ids"] = serde_json::json!(ids);
            let delivered = DateTime::from_timestamp_millis(cursor).unwrap_or_default();
            if let (true, Some(c)) = (with_content, content) {
                let view = InboxView::of((**c).clone(), ItemState::default(), delivered);
                out["notification"] = serde_json::to_value(view).unwrap_or_default();
            }
        }
        InboxEvent::Marked { id, mark, counts } => {
            out["id"] = serde_json::json!(id);
            out["mark"] = serde_json::json!(mark);
            if let Some(c) = counts {
                out["counts"] = serde_json::json!(c);
            }
        }
        InboxEvent::MarkedAll { mark, through, counts } => {
            out["mark"] = serde_json::json!(mark);
            out["through"] = serde_json::json!(through);
            if let Some(c) = counts {
                out["counts"] = serde_json::json!(c);
            }
        }
        InboxEvent::Retracted { id } => {
            out["id"] = serde_json::json!(id);
        }
        InboxEvent::Corrected { content } => {
            // What a page replaces of the item it shows; the person's state of it stays.
            let c = &**content;
            out["id"] = serde_json::json!(c.notification_id);
            let mut fields = serde_json::json!({
                "title": c.title, "body": c.body, "icon": c.icon, "toast": c.toast,
                "priority": c.priority, "actions": c.actions,
            });
            for (name, value) in [("url", &c.url), ("data", &c.data), ("source", &c.source)] {
                if let Some(v) = value {
                    fields[name] = serde_json::json!(v);
                }
            }
            if let Some(o) = &c.override_content {
                fields["overrideContent"] = serde_json::json!(o);
            }
            out["content"] = fields;
        }
        InboxEvent::Resync => {}
    }
    out
}

/// An event as a page receives it, within [`REALTIME_MESSAGE_BYTES`]: `{"id": "<cursor>",
/// "event": {..}}` on a WebSocket (`wrap`), the event alone as an SSE event's data.
pub fn realtime_data(cursor: i64, event: &InboxEvent, wrap: bool) -> String {
    let render = |with_content: bool| {
        let event = event_json(cursor, event, with_content);
        match wrap {
            true => serde_json::json!({ "id": cursor.to_string(), "event": event }).to_string(),
            false => event.to_string(),
        }
    };
    let whole = render(true);
    match whole.len() <= REALTIME_MESSAGE_BYTES {
        true => whole,
        false => render(false),
    }
}

/// A WebSocket message of API Gateway's realtime channel.
pub fn websocket_message(cursor: i64, event: &InboxEvent) -> String {
    realtime_data(cursor, event, true)
}

/// `status` of a center read: `inbox` (the default: not archived), `unread`, `unseen`, `read`,
/// `archived`, `all`.
pub fn parse_status(text: Option<&str>) -> Result<StatusFilter, ApiError> {
    Ok(match text {
        None | Some("inbox") => StatusFilter::Inbox,
        Some("unread") => StatusFilter::Unread,
        Some("unseen") => StatusFilter::Unseen,
        Some("read") => StatusFilter::Read,
        Some("archived") => StatusFilter::Archived,
        Some("all") => StatusFilter::All,
        Some(other) => {
            return Err(ApiError::invalid(
                "status",
                format!("status {other:?} is not one of inbox, unread, unseen, read, archived, all"),
            ));
        }
    })
}

/// A realtime event's cursor: epoch milliseconds, as the event's `id` carries it.
pub fn parse_cursor(text: &str) -> Option<DateTime<Utc>> {
    if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    DateTime::from_timestamp_millis(text.parse().ok()?)
}

/// The last segment of `/users/{userId}/notifications/{id}/{mark}`.
pub fn mark_of(segment: &str) -> Option<Mark> {
    Mark::ALL.into_iter().find(|m| m.name() == segment)
}

/// `/users/{userId}/notifications/mark-all-seen` and `/mark-all-read`, whose optional body is
/// `{"archive": true|false}` (read only: also archive everything read).
pub fn parse_mark_all(segment: &str, body: &[u8]) -> Result<Option<MarkAll>, ApiError> {
    let archive = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::invalid("body", format!("the body is not JSON: {e}")))?;
        let object =
            value.as_object().ok_or_else(|| ApiError::invalid("body", "the body must be a JSON object"))?;
        if let Some(unknown) = object.keys().find(|k| k.as_str() != "archive") {
            return Err(ApiError::invalid(
                unknown.clone(),
                format!("{unknown} is not a field of this request"),
            ));
        }
        match object.get("archive") {
            None => None,
            Some(serde_json::Value::Bool(b)) => Some(*b),
            Some(_) => return Err(ApiError::invalid("archive", "archive must be true or false")),
        }
    };
    Ok(match segment {
        "mark-all-seen" if archive.is_some() => {
            return Err(ApiError::invalid("archive", "archive goes with mark-all-read only"));
        }
        "mark-all-seen" => Some(MarkAll::Seen),
        "mark-all-read" => Some(MarkAll::Read { archive: archive.unwrap_or(false) }),
        _ => None,
    })
}

/// A registration as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    pub device_id: String,
    pub platform: Platform,
    /// The last characters of the token: enough to recognise it, no more.
    pub token_suffix: String,
    pub registered_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Device> for DeviceView {
    fn from(d: &Device) -> Self {
        let start = d.token.len().saturating_sub(8);
        DeviceView {
            device_id: d.device_id.clone(),
            platform: d.platform,
            token_suffix: d.token.get(start..).unwrap_or_default().to_string(),
            registered_at: d.registered_at,
        }
    }
}

/// A person's email address and whether it is still mailed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailStatusView {
    pub address: String,
    /// `active`, or `suppressed`.
    pub status: &'static str,
    /// Why it is suppressed: `bounce` or `complaint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

impl EmailStatusView {
    pub fn new(address: String, suppression: Option<&EmailSuppression>) -> Self {
        EmailStatusView {
            address,
            status: if suppression.is_some() { "suppressed" } else { "active" },
            reason: suppression.map(|s| s.reason.as_str()),
            since: suppression.map(|s| s.since),
        }
    }
}

/// Parses `{"platform": "APNS" | "APNS_SANDBOX" | "GCM", "token": "..."}`.
pub fn parse_registration(body: &[u8]) -> Result<(Platform, String), ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("the body is not JSON: {e}")))?;
    let object =
        value.as_object().ok_or_else(|| ApiError::invalid("body", "the body must be a JSON object"))?;
    if let Some(unknown) = object.keys().find(|k| !["platform", "token"].contains(&k.as_str())) {
        return Err(ApiError::invalid(unknown.clone(), format!("{unknown} is not a field of a device")));
    }
    let platform =
        object.get("platform").and_then(|p| p.as_str()).and_then(Platform::parse).ok_or_else(|| {
            ApiError::invalid("platform", "platform must be one of APNS, APNS_SANDBOX, GCM")
        })?;
    let token = object
        .get("token")
        .and_then(|t| t.as_str())
        .ok_or_else(|| ApiError::invalid("token", "token is required (a string)"))?;
    Ok((platform, check_token(platform, token)?))
}

/// APNs device tokens are hex (64 digits today; Apple may lengthen them); FCM registration
/// tokens are up to a few hundred URL-safe characters.
fn check_token(platform: Platform, token: &str) -> Result<String, ApiError> {
    let ok = match platform {
        Platform::Apns | Platform::ApnsSandbox => {
            (64..=200).contains(&token.len()) && token.chars().all(|c| c.is_ascii_hexdigit())
        }
        Platform::Gcm => {
            (1..=4096).contains(&token.len())
                && token.chars().all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c))
        }
    };
    if !ok {
        let rule = match platform {
            Platform::Gcm => "1 to 4096 characters of letters, digits, '-', '_', ':' and '.'",
            _ => "64 to 200 hexadecimal digits",
        };
        return Err(ApiError::invalid("token", format!("a {} token is {rule}", platform.as_str())));
    }
    // APNs tokens are case-insensitive: one spelling, one device.
    Ok(match platform {
        Platform::Gcm => token.to_string(),
        _ => token.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_are_checked_field_by_field() {
        let param = |body: &str| parse_registration(body.as_bytes()).unwrap_err().parameter.unwrap();
        let apns = "a".repeat(64);
        let (p, t) = parse_registration(
            format!(r#"{{"platform":"APNS","token":"{}"}}"#, apns.to_uppercase()).as_bytes(),
        )
        .unwrap();
        assert_eq!((p, t), (Platform::Apns, apns.clone()));
        assert!(parse_registration(br#"{"platform":"GCM","token":"fcm:abc-_.123"}"#).is_ok());
        assert_eq!(param("nope"), "body");
        assert_eq!(param("[]"), "body");
        assert_eq!(param(r#"{"platform":"WNS","token":"x"}"#), "platform");
        assert_eq!(param(r#"{"token":"x"}"#), "platform");
        assert_eq!(param(r#"{"platform":"GCM"}"#), "token");
        assert_eq!(param(r#"{"platform":"GCM","token":""}"#), "token");
        assert_eq!(param(r#"{"platform":"GCM","token":"has space"}"#), "token");
        assert_eq!(param(r#"{"platform":"APNS","token":"xyz"}"#), "token");
        assert_eq!(param(&format!(r#"{{"platform":"APNS","token":"{apns}","extra":1}}"#)), "extra");
    }

    #[test]
    fn views_show_only_the_end_of_the_token() {
        let d = Device {
            device_id: "id".into(),
            platform: Platform::Gcm,
            token: "0123456789abcdef".into(),
            endpoint_arn: "arn".into(),
            registered_at: chrono::Utc::now(),
        };
        assert_eq!(DeviceView::from(&d).token_suffix, "89abcdef");
    }

    #[test]
    fn marks_and_statuses_are_named_field_by_field() {
        for mark in Mark::ALL {
            assert_eq!(mark_of(mark.name()), Some(mark));
        }
        assert_eq!(mark_of("delete"), None);
        assert_eq!(parse_status(None).unwrap(), StatusFilter::Inbox);
        assert_eq!(parse_status(Some("unseen")).unwrap(), StatusFilter::Unseen);
        assert_eq!(parse_status(Some("UNREAD")).unwrap_err().parameter.as_deref(), Some("status"));
        let all = |segment: &str, body: &str| parse_mark_all(segment, body.as_bytes());
        assert_eq!(all("mark-all-read", "").unwrap(), Some(MarkAll::Read { archive: false }));
        assert_eq!(
            all("mark-all-read", r#"{"archive":true}"#).unwrap(),
            Some(MarkAll::Read { archive: true })
        );
        assert_eq!(all("mark-all-seen", " ").unwrap(), Some(MarkAll::Seen));
        assert_eq!(all("mark-all-else", "").unwrap(), None);
        let param = |segment: &str, body: &str| all(segment, body).unwrap_err().parameter.unwrap();
        assert_eq!(param("mark-all-read", "nope"), "body");
        assert_eq!(param("mark-all-read", "[]"), "body");
        assert_eq!(param("mark-all-read", r#"{"archive":"yes"}"#), "archive");
        assert_eq!(param("mark-all-read", r#"{"archive":true,"x":1}"#), "x");
        assert_eq!(param("mark-all-seen", r#"{"archive":true}"#), "archive");
    }
}
