//! `POST /communications/department/{departmentUUID}/user/{userUUID}/notify`
//! (department-user-notify.txt). The answer always has the spec's shape; every field error is an
//! entry of `errors[]` naming the field, and every field we accept without acting on it is an
//! entry of `warnings[]`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

mod parse;

pub use parse::{parse, parse_correction, parse_retraction};

pub const MAX_SUBJECT: usize = 255;
pub const MAX_BODY: usize = 10_000;
pub const MAX_DELAY_SECONDS: u64 = 30 * 24 * 3600;
pub const MAX_CALLBACK_URL: usize = 2048;
pub const MAX_EXTRAS_JSON: usize = 16 * 1024;
pub const MAX_BUTTONS: usize = 10;

/// Our reading of the enums the spec shows one example value of (documented in docs/api/department-notify.md).
pub const MESSAGE_TYPES: &[&str] = &["MESSAGE", "NOTE", "DRAFT"];
pub const PROTOCOLS: &[&str] = &["TEXT", "HTML", "MARKDOWN"];
pub const DRAFT_STATUSES: &[&str] = &["DRAFT", "SCHEDULED", "SENT", "FAILED"];
pub const BUTTON_THEMES: &[&str] = &["PRIMARY", "SECONDARY", "TERTIARY", "DANGER", "LINK"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEntry {
    pub error_code: String,
    pub error_description: String,
    #[serde(rename = "errorUID")]
    pub error_uid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarningEntry {
    pub warning_code: String,
    pub warning_description: String,
}

/// The response of the dialect, for success and failure alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyResponse {
    #[serde(rename = "notificationMessageUUID")]
    pub notification_message_uuid: Option<String>,
    pub status: &'static str,
    #[serde(rename = "requestUUID")]
    pub request_uuid: String,
    pub errors: Vec<ErrorEntry>,
    pub warnings: Vec<WarningEntry>,
    /// A cancel's outcome (beyond the spec: `DELETE …/notify/{notificationMessageUUID}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<CancelState>,
    /// A retraction's outcome (beyond the spec: `POST …/notify/{notificationMessageUUID}/retract`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retraction: Option<RetractState>,
    /// A correction's outcome (beyond the spec: `POST …/notify/{notificationMessageUUID}/correct`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correction: Option<CorrectState>,
}

impl NotifyResponse {
    /// The answer to `request`: `SUCCESS` without errors, `FAILURE` with; no outcome of a cancel,
    /// retraction or correction (`with_*` add one).
    pub fn new(
        request: uuid::Uuid,
        id: Option<uuid::Uuid>,
        errors: Vec<ErrorEntry>,
        warnings: Vec<WarningEntry>,
    ) -> Self {
        NotifyResponse {
            notification_message_uuid: id.map(|i| i.to_string()),
            status: if errors.is_empty() { "SUCCESS" } else { "FAILURE" },
            request_uuid: request.to_string(),
            errors,
            warnings,
            cancellation: None,
            retraction: None,
            correction: None,
        }
    }
}

/// What a retraction did: the message is `retracted` (removed from the recipient's center in the
/// background; the open pages told); the people it reached; when, by whom; the emails and pushes
/// that went out, which cannot be recalled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetractState {
    pub state: &'static str,
    pub people_reached: u64,
    /// RFC 3339, as `scheduledOn`.
    pub retracted_on: String,
    pub retracted_by: String,
    pub already_retracted: bool,
    pub emails_sent: u64,
    pub pushes_sent: u64,
    pub note: &'static str,
}

impl From<&crate::service::recall::Retracted> for RetractState {
    fn from(r: &crate::service::recall::Retracted) -> Self {
        RetractState {
            state: "retracted",
            people_reached: r.reached,
            retracted_on: r.retraction.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            retracted_by: r.retraction.by.clone(),
            already_retracted: r.repeated,
            emails_sent: r.emails_sent,
            pushes_sent: r.pushes_sent,
            note: crate::service::recall::NOT_RECALLED,
        }
    }
}

/// What a correction did: the subject and body every center shows now (each person's read and
/// archived state kept), when and by whom; emails and pushes that went out say what they said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CorrectState {
    pub state: &'static str,
    pub subject: String,
    pub body: String,
    pub corrected_on: String,
    pub corrected_by: String,
    pub emails_sent: u64,
    pub pushes_sent: u64,
    pub note: &'static str,
}

impl From<&crate::model::Notification> for CorrectState {
    fn from(n: &crate::model::Notification) -> Self {
        let corrected = n
            .corrected
            .clone()
            .unwrap_or(crate::model::Cancellation { at: n.modified_at, by: n.modified_by.clone() });
        CorrectState {
            state: n.status.word(),
            subject: n.content.title.clone(),
            body: n.content.body.clone(),
            corrected_on: corrected.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            corrected_by: corrected.by,
            emails_sent: n.emails_sent,
            pushes_sent: n.pushes_sent,
            note: crate::service::recall::NOT_RECALLED,
        }
    }
}

/// What a cancel did: the message is `cancelled`; the people it reached (who have it or are
/// being given it: their delivery had started; nobody else ever gets it); when, by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelState {
    pub state: &'static str,
    pub people_reached: u64,
    /// RFC 3339, as `scheduledOn`.
    pub cancelled_on: String,
    pub cancelled_by: String,
    /// An earlier cancel did it; this one answers the same.
    pub already_cancelled: bool,
}

impl From<&crate::service::cancel::Cancelled> for CancelState {
    fn from(c: &crate::service::cancel::Cancelled) -> Self {
        CancelState {
            state: crate::model::Status::Cancelled.word(),
            people_reached: c.reached,
            cancelled_on: c.cancellation.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            cancelled_by: c.cancellation.by.clone(),
            already_cancelled: c.repeated,
        }
    }
}

pub fn error(code: &str, description: impl Into<String>) -> ErrorEntry {
    ErrorEntry {
        error_code: code.into(),
        error_description: description.into(),
        error_uid: uuid::Uuid::new_v4().to_string(),
    }
}

/// The dialect's error code of a domain error kind (its own names, like its other codes).
pub fn error_code(kind: crate::error::ErrorKind) -> &'static str {
    use crate::error::ErrorKind::*;
    match kind {
        InvalidParameter => "INVALID_PARAMETER",
        InvalidAuthToken => "UNAUTHORIZED",
        InsufficientPermissions | InsufficientPrivileges => "FORBIDDEN",
        UnsupportedVersion => "UNSUPPORTED_VERSION",
        EventNotFound | SmartLibNotFound | NotFound => "NOT_FOUND",
        EventCancelled => "EVENT_CANCELLED",
        MethodNotAllowed => "METHOD_NOT_ALLOWED",
        Conflict => "CONFLICT",
        PayloadTooLarge => "PAYLOAD_TOO_LARGE",
        TooManyRequests => "TOO_MANY_REQUESTS",
        FeatureDisabled => "FEATURE_DISABLED",
        Unavailable => "SERVICE_UNAVAILABLE",
        Internal => "INTERNAL_ERROR",
    }
}

/// A domain error as one entry of `errors[]`: the dialect's code; the field, when there is
/// one, leads the description as the dialect's field errors do.
pub fn error_of(e: &crate::error::ApiError) -> ErrorEntry {
    let description = match &e.parameter {
        Some(p) if !e.message.starts_with(p.as_str()) => format!("{p}: {}", e.message),
        _ => e.message.clone(),
    };
    match e.state {
        // A conflict names the state it met: ALREADY_DELIVERED, ALREADY_FAILED.
        Some(state) => error(&format!("ALREADY_{}", state.to_ascii_uppercase()), description),
        None => error(error_code(e.kind), description),
    }
}

pub fn warning(code: &str, description: impl Into<String>) -> WarningEntry {
    WarningEntry { warning_code: code.into(), warning_description: description.into() }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DepartmentNotify {
    pub subject: Option<String>,
    pub body: String,
    pub protocol: String,
    pub scheduled_on: Option<DateTime<Utc>>,
    pub delay_seconds: u64,
    pub send_synchronously: bool,
    pub callback_url: Option<String>,
    pub callback_metadata: Option<Value>,
    /// What the recipient's client may use: metaData, attachments, messageTags, buttons.
    pub data: Option<String>,
    pub warnings: Vec<WarningEntry>,
}

impl DepartmentNotify {
    /// The message, as the notify service takes it.
    pub fn message(&self) -> crate::model::DepartmentMessage {
        crate::model::DepartmentMessage {
            subject: self.subject.clone(),
            body: self.body.clone(),
            data: self.data.clone(),
            scheduled_on: self.scheduled_on,
            delay_seconds: self.delay_seconds,
            send_synchronously: self.send_synchronously,
            callback_url: self.callback_url.clone(),
            callback_metadata: self.callback_metadata.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
