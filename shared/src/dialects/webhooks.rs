//! The tenant's status webhooks (beyond the specs): the endpoint, its secret's rotation, an
//! event and its replay, under `/rest/notification/webhook`. Group send's credentials and error
//! envelope (`{"exception", "message", "parameter"}`): the tenant's administrators use that API.
//!
//! Limits: `url` an https URL of at most 2,048 characters (events carry recipients' addresses:
//! plain http only to a loopback host, for development; where it may point is checked at each
//! try: no private, loopback or metadata address in a deployment); `events` a list of known
//! types (empty or absent: every one); `enabled` a boolean (absent: true). Unknown fields are
//! refused.

use serde::Serialize;
use serde_json::Value;

use super::fields::{is_valid_link, object};
use crate::error::ApiError;
use crate::model::{HookAttempt, HookEvent, HookEventType, HookState, WebhookEndpoint};
use crate::service::webhooks::{EndpointRequest, EndpointView};

pub const MAX_URL_CHARS: usize = 2048;
const FIELDS: &[&str] = &["url", "events", "enabled"];

/// An endpoint's body.
pub fn parse_endpoint(body: &[u8]) -> Result<EndpointRequest, ApiError> {
    let map = object(body)?;
    if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            unknown.as_str(),
            format!("{unknown} is not a field of a webhook endpoint (only {})", FIELDS.join(", ")),
        ));
    }
    let url = match map.get("url") {
        Some(Value::String(u)) => u.trim().to_string(),
        Some(_) => return Err(ApiError::invalid("url", "must be a string")),
        None => return Err(ApiError::invalid("url", "is required: where the events are POSTed")),
    };
    let lower = url.to_ascii_lowercase();
    if url.chars().count() > MAX_URL_CHARS {
        return Err(ApiError::invalid("url", format!("must be at most {MAX_URL_CHARS} characters")));
    }
    if !(lower.starts_with("https://") || lower.starts_with("http://")) || !is_valid_link(&url) {
        return Err(ApiError::invalid("url", "must be an https URL"));
    }
    if lower.starts_with("http://") && !loopback_host(&lower["http://".len()..]) {
        return Err(ApiError::invalid(
            "url",
            "must be an https URL (events carry recipients' addresses; plain http only to a loopback host)",
        ));
    }
    let events = match map.get("events") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let mut events = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let t = item.as_str().and_then(HookEventType::parse).ok_or_else(|| {
                    let known: Vec<&str> = HookEventType::ALL.iter().map(|t| t.name()).collect();
                    ApiError::invalid(format!("events[{i}]"), format!("must be one of {}", known.join(", ")))
                })?;
                if !events.contains(&t) {
                    events.push(t);
                }
            }
            events.sort();
            events
        }
        Some(_) => return Err(ApiError::invalid("events", "must be a list of event types")),
    };
    let enabled = match map.get("enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("enabled", "must be true or false")),
    };
    Ok(EndpointRequest { url, events, enabled })
}

/// Whether the authority starting `rest` is a loopback host (`localhost`, `127.x.x.x`, `[::1]`).
fn loopback_host(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host == "::1"
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// A body a route takes none of: nothing, or an empty object.
pub fn parse_no_body(body: &[u8], what: &str) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match object(body)?.keys().next() {
        None => Ok(()),
        Some(field) => {
            Err(ApiError::invalid(field.as_str(), format!("{what} takes no body ({field} given)")))
        }
    }
}

/// An event's id from the path: `msg_` and 26 lowercase hex digits.
pub fn event_id(text: Option<&str>) -> Result<String, ApiError> {
    let text = text.unwrap_or_default();
    let ok = text
        .strip_prefix("msg_")
        .is_some_and(|h| h.len() == 26 && h.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    match ok {
        true => Ok(text.to_string()),
        false => Err(ApiError::invalid("eventId", "must be an event id (msg_ and 26 hex digits)")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretAnswer {
    pub created_at: i64,
    /// Milliseconds since the epoch; absent for the current secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// An endpoint: its secrets' dates only; the secret itself when it was just made (never again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointAnswer {
    pub url: String,
    /// Empty: every event.
    pub events: Vec<&'static str>,
    pub enabled: bool,
    pub secrets: Vec<SecretAnswer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created: i64,
    pub modified: i64,
    pub modified_by: String,
}

impl From<&EndpointView> for EndpointAnswer {
    fn from(v: &EndpointView) -> Self {
        let e: &WebhookEndpoint = &v.endpoint;
        EndpointAnswer {
            url: e.url.clone(),
            events: e.events.iter().map(|t| t.name()).collect(),
            enabled: e.enabled,
            secrets: e
                .secrets
                .iter()
                .map(|s| SecretAnswer {
                    created_at: s.created_at.timestamp_millis(),
                    expires_at: s.expires_at.map(|t| t.timestamp_millis()),
                })
                .collect(),
            secret: v.new_secret.clone(),
            created: e.created_at.timestamp_millis(),
            modified: e.modified_at.timestamp_millis(),
            modified_by: e.modified_by.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventAnswer {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub timestamp: String,
    pub data: Value,
    pub state: HookState,
    /// Every try so far (the list keeps the first 24).
    pub tries: u32,
    pub attempts: Vec<HookAttempt>,
}

impl From<&HookEvent> for EventAnswer {
    fn from(e: &HookEvent) -> Self {
        EventAnswer {
            id: e.id.clone(),
            event_type: e.event_type.name(),
            timestamp: e.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            data: e.data.clone(),
            state: e.state,
            tries: e.tries,
            attempts: e.attempts.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_names_what_is_wrong() {
        let ok = parse_endpoint(br#"{"url":"https://hooks.example.com/n","events":["notification.delivered","email.bounced","notification.delivered"]}"#).unwrap();
        assert_eq!(ok.events, vec![HookEventType::Delivered, HookEventType::EmailBounced]);
        assert!(ok.enabled);
        for (body, field) in [
            (&br#"{}"#[..], "url"),
            (br#"{"url":"ftp://x.example.com"}"#, "url"),
            (br#"{"url":"http://hooks.example.com/n"}"#, "url"),
            (br#"{"url":"http://127.0.0.1.example.com/n"}"#, "url"),
            (br#"{"url":"http://user@hooks.example.com:80/127.0.0.1"}"#, "url"),
            (br#"{"url":"https://x.example.com","events":["notification.sent"]}"#, "events[0]"),
            (br#"{"url":"https://x.example.com","events":"all"}"#, "events"),
            (br#"{"url":"https://x.example.com","events":null}"#, "events"),
            (br#"{"url":"https://x.example.com","enabled":"yes"}"#, "enabled"),
            (br#"{"url":"https://x.example.com","secret":"mine"}"#, "secret"),
            (b"[]", "body"),
        ] {
            let e = parse_endpoint(body).unwrap_err();
            assert_eq!(e.parameter.as_deref(), Some(field), "{}", String::from_utf8_lossy(body));
        }
        let long = format!(r#"{{"url":"https://x.example.com/{}"}}"#, "a".repeat(MAX_URL_CHARS));
        assert_eq!(parse_endpoint(long.as_bytes()).unwrap_err().parameter.as_deref(), Some("url"));
        for local in ["http://127.0.0.1:8080/hooks", "http://localhost/h", "http://[::1]:9/h"] {
            assert!(parse_endpoint(format!(r#"{{"url":"{local}"}}"#).as_bytes()).is_ok(), "{local}");
        }
        assert!(event_id(Some("msg_0123456789abcdef0123456789")).is_ok());
        assert!(event_id(Some("msg_0123")).is_err() && event_id(None).is_err());
    }
}
