//! `POST /desktop-assistant/notifications` (desktop-assistant-send.txt): the fields of
//! `sendDANotification()`, exactly. Answers `{"responseCode", "message", "metadata"}`.

use serde::Serialize;

use super::fields::{Fields, object};
use crate::error::ApiError;

pub const MAX_TITLE: usize = 255;
pub const MAX_MESSAGE: usize = 4000;
pub const MAX_RECIPIENTS: usize = 100;
pub const MAX_REFERRER_TABLE: usize = 80;
pub const MAX_REFERRER_ID: usize = 32;
const FIELDS: &[&str] = &[
    "notification_title",
    "notification_message",
    "recipient_list",
    "referrer_table",
    "referrer_id",
    "source",
];

pub use crate::model::DesktopNotify;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesktopResponse {
    #[serde(rename = "responseCode")]
    pub response_code: u16,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// The dialect's answer to a domain error: its status as `responseCode`, the field leading the
/// message.
pub fn error_response(e: &ApiError) -> DesktopResponse {
    let message = match &e.parameter {
        Some(p) if !e.message.contains(p.as_str()) => format!("{p}: {}", e.message),
        _ => e.message.clone(),
    };
    DesktopResponse { response_code: e.status(), message, metadata: None }
}

pub fn parse(body: &[u8]) -> Result<DesktopNotify, ApiError> {
    let map = object(body)?;
    if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            unknown.as_str(),
            format!("{unknown} is not a parameter of sendDANotification (expected {})", FIELDS.join(", ")),
        ));
    }
    let f = Fields::new(&map);
    let message = f.req_str("notification_message", MAX_MESSAGE)?;
    let list = f.req_str("recipient_list", MAX_RECIPIENTS * 40)?;
    let mut recipients: Vec<String> = Vec::new();
    for raw in list.split(',') {
        let id = raw.trim();
        if id.is_empty() {
            continue;
        }
        if id.len() != 32 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ApiError::invalid(
                "recipient_list",
                format!("{id:?} is not a sys_id (32 hexadecimal characters)"),
            ));
        }
        let id = id.to_ascii_lowercase();
        if !recipients.contains(&id) {
            recipients.push(id);
        }
    }
    if recipients.is_empty() {
        return Err(ApiError::invalid("recipient_list", "recipient_list names no sys_id"));
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(ApiError::invalid(
            "recipient_list",
            format!("at most {MAX_RECIPIENTS} recipients per call"),
        ));
    }
    let source = f.req_str("source", 8)?;
    if source != "mim" && source != "pe" {
        return Err(ApiError::invalid("source", format!("source {source:?} must be mim or pe")));
    }
    Ok(DesktopNotify {
        title: f.opt_str("notification_title", MAX_TITLE)?.filter(|t| !t.trim().is_empty()),
        message,
        recipients,
        referrer_table: f.opt_str("referrer_table", MAX_REFERRER_TABLE)?,
        referrer_id: f.opt_str("referrer_id", MAX_REFERRER_ID)?,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err_param(v: serde_json::Value) -> Option<String> {
        parse(v.to_string().as_bytes()).unwrap_err().parameter
    }

    #[test]
    fn parses_and_normalises_the_recipient_list() {
        let n = parse(
            json!({"notification_title": "Incident Assigned to You", "notification_message": "INC0001234 has been assigned",
                   "recipient_list": " 11111111111141118111111111111111 ,55555555555545558555555555555555,11111111111141118111111111111111,",
                   "referrer_table": "incident", "referrer_id": "abc", "source": "mim"})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            n.recipients,
            vec!["11111111111141118111111111111111", "55555555555545558555555555555555"]
        );
        assert_eq!(n.source, "mim");
    }

    #[test]
    fn names_the_field_at_fault() {
        let ok = json!({"notification_message": "m", "recipient_list": "11111111111141118111111111111111", "source": "pe"});
        let with = |k: &str, v: serde_json::Value| {
            let mut b = ok.clone();
            b[k] = v;
            b
        };
        assert!(parse(ok.to_string().as_bytes()).is_ok());
        assert_eq!(err_param(with("source", json!("xx"))).as_deref(), Some("source"));
        assert_eq!(
            err_param(with("notification_message", json!(""))).as_deref(),
            Some("notification_message")
        );
        assert_eq!(err_param(with("recipient_list", json!(" , "))).as_deref(), Some("recipient_list"));
        assert_eq!(err_param(with("recipient_list", json!("abc"))).as_deref(), Some("recipient_list"));
        assert_eq!(
            err_param(with("notification_title", json!("t".repeat(256)))).as_deref(),
            Some("notification_title")
        );
        assert_eq!(err_param(with("recipients", json!("x"))).as_deref(), Some("recipients"));
        let mut missing = ok.clone();
        missing.as_object_mut().unwrap().remove("source");
        assert_eq!(err_param(missing).as_deref(), Some("source"));
    }
}
