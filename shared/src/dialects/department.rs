//! `POST /communications/department/{departmentUUID}/user/{userUUID}/notify`
//! (department-user-notify.txt). The answer always has the spec's shape; every field error is an
//! entry of `errors[]` naming the field, and every field we accept without acting on it is an
//! entry of `warnings[]`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::fields::is_valid_link;

pub const MAX_SUBJECT: usize = 255;
pub const MAX_BODY: usize = 10_000;
pub const MAX_DELAY_SECONDS: u64 = 30 * 24 * 3600;
pub const MAX_CALLBACK_URL: usize = 2048;
pub const MAX_EXTRAS_JSON: usize = 16 * 1024;
pub const MAX_BUTTONS: usize = 10;

/// Our reading of the enums the spec shows one example value of (documented in the README).
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
    error(error_code(e.kind), description)
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

struct Reader {
    errors: Vec<ErrorEntry>,
    warnings: Vec<WarningEntry>,
}

impl Reader {
    fn invalid(&mut self, field: &str, why: impl std::fmt::Display) {
        self.errors.push(error("INVALID_FIELD", format!("{field}: {why}")));
    }

    fn ignored(&mut self, field: &str) {
        self.warnings
            .push(warning("FIELD_NOT_SUPPORTED", format!("{field} is accepted but has no effect here")));
    }

    fn string(&mut self, obj: &Map<String, Value>, key: &str, path: &str, max: usize) -> Option<String> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() <= max => Some(s.clone()),
            Some(Value::String(_)) => {
                self.invalid(path, format!("must be at most {max} characters"));
                None
            }
            Some(_) => {
                self.invalid(path, "must be a string");
                None
            }
        }
    }

    fn one_of(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
        allowed: &[&str],
    ) -> Option<String> {
        let v = self.string(obj, key, path, 64)?;
        if allowed.contains(&v.as_str()) {
            Some(v)
        } else {
            self.invalid(path, format!("{v:?} is not one of {}", allowed.join(", ")));
            None
        }
    }

    fn object<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Option<&'a Map<String, Value>> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(o),
            Some(_) => {
                self.invalid(path, "must be an object");
                None
            }
        }
    }

    fn array<'a>(&mut self, obj: &'a Map<String, Value>, key: &str, path: &str) -> Option<&'a Vec<Value>> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(a),
            Some(_) => {
                self.invalid(path, "must be an array");
                None
            }
        }
    }

    fn boolean(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> Option<bool> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.invalid(path, "must be true or false");
                None
            }
        }
    }

    /// Known fields we accept without acting on: type-checked, then a warning.
    fn accept_ignored(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
        check: fn(&Value) -> bool,
        what: &str,
    ) {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(v) if check(v) => self.ignored(path),
            Some(_) => self.invalid(path, format!("must be {what}")),
        }
    }

    fn unknown_fields(&mut self, obj: &Map<String, Value>, known: &[&str], prefix: &str) {
        for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
            self.warnings.push(warning(
                "UNKNOWN_FIELD",
                format!("{prefix}{key} is not a field of this API and was ignored"),
            ));
        }
    }
}

/// `scheduledOn`: an RFC 3339 instant, or epoch milliseconds.
fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| text.parse::<i64>().ok().and_then(DateTime::from_timestamp_millis))
}

/// Parses a body; on failure, the error entries (each naming its field).
pub fn parse(bytes: &[u8]) -> Result<DepartmentNotify, Vec<ErrorEntry>> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| vec![error("INVALID_BODY", format!("request body is not valid JSON: {e}"))])?;
    let Value::Object(root) = value else {
        return Err(vec![error("INVALID_BODY", "request body must be a JSON object")]);
    };
    let mut r = Reader { errors: Vec::new(), warnings: Vec::new() };
    r.unknown_fields(
        &root,
        &["messageAttributes", "notificationAttributes", "messageSendingAttributesLite"],
        "",
    );

    let empty = Map::new();
    let msg = match r.object(&root, "messageAttributes", "messageAttributes") {
        Some(m) => m,
        None => {
            if r.errors.is_empty() {
                r.invalid("messageAttributes", "is required");
            }
            &empty
        }
    };
    let has_message = !std::ptr::eq(msg, &empty);
    r.unknown_fields(
        msg,
        &[
            "body",
            "type",
            "protocol",
            "purpose",
            "isManual",
            "subject",
            "metaData",
            "tags",
            "draftAttributes",
            "attachments",
            "defaultReplyAction",
            "updateThreadTimestamp",
            "updateTotalMessageCount",
            "showInCustomerConversation",
            "messageTags",
        ],
        "messageAttributes.",
    );
    let body = r.string(msg, "body", "messageAttributes.body", MAX_BODY);
    if has_message
        && (body.as_deref().is_some_and(|b| b.trim().is_empty())
            || (body.is_none() && !msg.contains_key("body")))
    {
        r.invalid("messageAttributes.body", "is required");
    }
    let subject = r.string(msg, "subject", "messageAttributes.subject", MAX_SUBJECT);
    let message_type = r.one_of(msg, "type", "messageAttributes.type", MESSAGE_TYPES);
    let protocol =
        r.one_of(msg, "protocol", "messageAttributes.protocol", PROTOCOLS).unwrap_or_else(|| "TEXT".into());
    if r.string(msg, "purpose", "messageAttributes.purpose", 32).is_some() {
        r.ignored("messageAttributes.purpose");
    }
    r.accept_ignored(msg, "isManual", "messageAttributes.isManual", Value::is_boolean, "true or false");
    if let Some(tags) = r.array(msg, "tags", "messageAttributes.tags") {
        if tags.iter().all(Value::is_string) {
            r.ignored("messageAttributes.tags");
        } else {
            r.invalid("messageAttributes.tags", "must be an array of strings");
        }
    }
    r.accept_ignored(
        msg,
        "defaultReplyAction",
        "messageAttributes.defaultReplyAction",
        Value::is_string,
        "a string",
    );
    for flag in ["updateThreadTimestamp", "updateTotalMessageCount", "showInCustomerConversation"] {
        r.accept_ignored(msg, flag, &format!("messageAttributes.{flag}"), Value::is_boolean, "true or false");
    }
    let meta = r.object(msg, "metaData", "messageAttributes.metaData").cloned();
    let attachments = r.array(msg, "attachments", "messageAttributes.attachments").cloned();
    if let Some(list) = &attachments {
        for (i, a) in list.iter().enumerate() {
            match a.as_object() {
                Some(o) if o.values().all(|v| v.is_string() || v.is_null()) => {}
                _ => {
                    r.invalid(&format!("messageAttributes.attachments[{i}]"), "must be an object of strings")
                }
            }
        }
    }
    let message_tags = r.array(msg, "messageTags", "messageAttributes.messageTags").cloned();

    let mut scheduled_on = None;
    if let Some(draft) = r.object(msg, "draftAttributes", "messageAttributes.draftAttributes") {
        let status =
            r.one_of(draft, "draftStatus", "messageAttributes.draftAttributes.draftStatus", DRAFT_STATUSES);
        let when = r.string(draft, "scheduledOn", "messageAttributes.draftAttributes.scheduledOn", 64);
        if r.string(draft, "draftFailureReason", "messageAttributes.draftAttributes.draftFailureReason", 128)
            .is_some()
        {
            r.ignored("messageAttributes.draftAttributes.draftFailureReason");
        }
        match (status.as_deref(), when) {
            (Some("SCHEDULED"), Some(text)) => match parse_instant(&text) {
                Some(t) => scheduled_on = Some(t),
                None => r.invalid(
                    "messageAttributes.draftAttributes.scheduledOn",
                    format!("{text:?} is not an ISO-8601 instant (e.g. 2026-11-22T10:00:00Z) or epoch milliseconds"),
                ),
            },
            (Some("SCHEDULED"), None) => {
                r.invalid("messageAttributes.draftAttributes.scheduledOn", "is required when draftStatus is SCHEDULED")
            }
            (_, Some(_)) => r.ignored("messageAttributes.draftAttributes.scheduledOn (only used with draftStatus SCHEDULED)"),
            _ => {}
        }
    }
    if message_type.as_deref() == Some("DRAFT") && scheduled_on.is_none() && r.errors.is_empty() {
        r.warnings
            .push(warning("DRAFT_SENT_NOW", "a DRAFT without a SCHEDULED draftStatus is delivered now"));
    }

    let mut buttons = None;
    if let Some(attrs) = r.object(&root, "notificationAttributes", "notificationAttributes") {
        r.unknown_fields(
            attrs,
            &[
                "internalSubscribersNotifierPop",
                "externalSubscribersNotifierPop",
                "threadOwnerNotifierPop",
                "sendPhoneNotification",
                "additionalNotifierNotificationDAUUIDs",
                "notificationButtons",
                "bodyTagsForSpecialRendering",
            ],
            "notificationAttributes.",
        );
        for flag in [
            "internalSubscribersNotifierPop",
            "externalSubscribersNotifierPop",
            "threadOwnerNotifierPop",
            "sendPhoneNotification",
        ] {
            r.accept_ignored(
                attrs,
                flag,
                &format!("notificationAttributes.{flag}"),
                Value::is_boolean,
                "true or false",
            );
        }
        r.accept_ignored(
            attrs,
            "additionalNotifierNotificationDAUUIDs",
            "notificationAttributes.additionalNotifierNotificationDAUUIDs",
            |v| v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            "an array of strings",
        );
        r.accept_ignored(
            attrs,
            "bodyTagsForSpecialRendering",
            "notificationAttributes.bodyTagsForSpecialRendering",
            Value::is_object,
            "an object",
        );
        if let Some(list) =
            r.array(attrs, "notificationButtons", "notificationAttributes.notificationButtons")
        {
            if list.len() > MAX_BUTTONS {
                r.invalid(
                    "notificationAttributes.notificationButtons",
                    format!("at most {MAX_BUTTONS} buttons"),
                );
            }
            for (i, b) in list.iter().enumerate() {
                let path = format!("notificationAttributes.notificationButtons[{i}]");
                let Some(o) = b.as_object() else {
                    r.invalid(&path, "must be an object");
                    continue;
                };
                for key in ["buttonTextTranslationWidgetKey", "buttonTextTranslationKey", "buttonDefaultText"]
                {
                    r.string(o, key, &format!("{path}.{key}"), 255);
                }
                r.one_of(o, "buttonTheme", &format!("{path}.buttonTheme"), BUTTON_THEMES);
                r.object(o, "buttonActionEventData", &format!("{path}.buttonActionEventData"));
                r.boolean(o, "isPrimaryButton", &format!("{path}.isPrimaryButton"));
            }
            buttons = Some(list.clone());
        }
    }

    let mut delay_seconds = 0;
    let mut send_synchronously = false;
    let mut callback_url = None;
    let mut callback_metadata = None;
    if let Some(s) = r.object(&root, "messageSendingAttributesLite", "messageSendingAttributesLite") {
        r.unknown_fields(
            s,
            &["delay", "sendSynchronously", "callBackUrl", "callBackMetadata"],
            "messageSendingAttributesLite.",
        );
        match s.get("delay") {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_u64() {
                Some(d) if d <= MAX_DELAY_SECONDS => delay_seconds = d,
                _ => r.invalid(
                    "messageSendingAttributesLite.delay",
                    format!("must be whole seconds from 0 to {MAX_DELAY_SECONDS}"),
                ),
            },
        }
        send_synchronously = r
            .boolean(s, "sendSynchronously", "messageSendingAttributesLite.sendSynchronously")
            .unwrap_or(false);
        callback_url = r
            .string(s, "callBackUrl", "messageSendingAttributesLite.callBackUrl", MAX_CALLBACK_URL)
            .filter(|u| !u.is_empty());
        if let Some(u) = &callback_url {
            let lower = u.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) || !is_valid_link(u) {
                r.invalid("messageSendingAttributesLite.callBackUrl", "must be an http or https URL");
            }
        }
        callback_metadata = s.get("callBackMetadata").filter(|v| !v.is_null()).cloned();
        if callback_metadata.as_ref().is_some_and(|m| m.to_string().len() > MAX_EXTRAS_JSON) {
            r.invalid(
                "messageSendingAttributesLite.callBackMetadata",
                format!("must be at most {MAX_EXTRAS_JSON} bytes of JSON"),
            );
        }
    }
    if delay_seconds > 0 && scheduled_on.is_some() {
        r.invalid(
            "messageSendingAttributesLite.delay",
            "use either delay or draftAttributes.scheduledOn, not both",
        );
    }

    let mut extras = Map::new();
    for (k, v) in [
        ("metaData", meta.map(Value::Object)),
        ("attachments", attachments.map(Value::Array)),
        ("messageTags", message_tags.map(Value::Array)),
        ("notificationButtons", buttons.map(Value::Array)),
    ] {
        if let Some(v) = v {
            extras.insert(k.into(), v);
        }
    }
    if !extras.is_empty() {
        extras.insert("protocol".into(), Value::String(protocol.clone()));
    }
    let data = (!extras.is_empty()).then(|| Value::Object(extras).to_string());
    if data.as_ref().is_some_and(|d| d.len() > MAX_EXTRAS_JSON) {
        r.invalid("messageAttributes", format!("metaData, attachments, messageTags and notificationButtons together must be at most {MAX_EXTRAS_JSON} bytes"));
    }

    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    Ok(DepartmentNotify {
        subject,
        body: body.unwrap_or_default(),
        protocol,
        scheduled_on,
        delay_seconds,
        send_synchronously,
        callback_url,
        callback_metadata,
        data,
        warnings: r.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The spec's example body, with `"string"` placeholders made meaningful.
    pub fn spec_example() -> Value {
        json!({
            "messageAttributes": {
                "body": "Your case has been updated", "type": "DRAFT", "protocol": "TEXT", "purpose": "F", "isManual": true,
                "subject": "Case update", "metaData": {}, "tags": ["TRASH"],
                "draftAttributes": {"draftStatus": "SCHEDULED", "scheduledOn": "2026-11-22T10:00:00Z", "draftFailureReason": "MDL_EVENT_UNDER_TIME_LIMIT_REASON"},
                "attachments": [{"fileURL": "https://files.example.com/a.pdf", "attachmentExtension": "pdf", "mimeType": "application/pdf", "originalFileName": "a.pdf", "docSize": "1024", "thumbnailURL": "https://files.example.com/a.png", "mediaPreviewURL": "https://files.example.com/a"}],
                "defaultReplyAction": "REPLY", "updateThreadTimestamp": true, "updateTotalMessageCount": true, "showInCustomerConversation": true,
                "messageTags": [{"tagTypeUuid": "t", "referenceIdentifier": "r", "value": {}, "primaryAttribute": {"value": "p"}, "secondaryAttributes": [{"value": "s"}], "parentTags": [{"tagTypeUuid": "t", "referenceIdentifier": "r"}]}]
            },
            "notificationAttributes": {
                "internalSubscribersNotifierPop": true, "externalSubscribersNotifierPop": true, "threadOwnerNotifierPop": true, "sendPhoneNotification": true,
                "additionalNotifierNotificationDAUUIDs": ["x"],
                "notificationButtons": [{"buttonTextTranslationWidgetKey": "k", "buttonTextTranslationKey": "k", "buttonDefaultText": "Open", "buttonTheme": "PRIMARY", "buttonActionEventData": {}, "isPrimaryButton": true}],
                "bodyTagsForSpecialRendering": {}
            },
            "messageSendingAttributesLite": {"delay": 0, "sendSynchronously": true, "callBackUrl": "https://hooks.example.com/cb", "callBackMetadata": {"ticket": 42}}
        })
    }

    fn fields_of(errors: &[ErrorEntry]) -> Vec<String> {
        errors.iter().map(|e| e.error_description.split(':').next().unwrap_or_default().to_string()).collect()
    }

    #[test]
    fn the_spec_example_parses_with_warnings_for_what_has_no_effect() {
        let n = parse(spec_example().to_string().as_bytes()).unwrap();
        assert_eq!(n.body, "Your case has been updated");
        assert_eq!(n.scheduled_on, Some("2026-11-22T10:00:00Z".parse().unwrap()));
        assert_eq!(n.callback_metadata, Some(json!({"ticket": 42})));
        let warned: Vec<&str> = n.warnings.iter().map(|w| w.warning_description.as_str()).collect();
        for field in [
            "messageAttributes.purpose",
            "messageAttributes.isManual",
            "messageAttributes.tags",
            "notificationAttributes.sendPhoneNotification",
            "messageAttributes.draftAttributes.draftFailureReason",
        ] {
            assert!(warned.iter().any(|w| w.starts_with(field)), "no warning for {field}: {warned:?}");
        }
        let data: Value = serde_json::from_str(n.data.as_deref().unwrap()).unwrap();
        assert_eq!(data["notificationButtons"][0]["buttonDefaultText"], "Open");
    }

    #[test]
    fn every_bad_field_is_an_error_entry_naming_it() {
        let mut body = spec_example();
        body["messageAttributes"]["type"] = json!("SHOUT");
        body["messageAttributes"]["protocol"] = json!(7);
        body["messageAttributes"]["draftAttributes"]["draftStatus"] = json!("LATER");
        body["notificationAttributes"]["notificationButtons"][0]["buttonTheme"] = json!("NEON");
        body["messageSendingAttributesLite"]["delay"] = json!(-5);
        body["messageSendingAttributesLite"]["callBackUrl"] = json!("ftp://x.example.com");
        body["messageSendingAttributesLite"]["sendSynchronously"] = json!("yes");
        let errors = parse(body.to_string().as_bytes()).unwrap_err();
        let fields = fields_of(&errors);
        for f in [
            "messageAttributes.type",
            "messageAttributes.protocol",
            "messageAttributes.draftAttributes.draftStatus",
            "notificationAttributes.notificationButtons[0].buttonTheme",
            "messageSendingAttributesLite.delay",
            "messageSendingAttributesLite.callBackUrl",
            "messageSendingAttributesLite.sendSynchronously",
        ] {
            assert!(fields.contains(&f.to_string()), "{f} missing from {fields:?}");
        }
        assert!(errors.iter().all(|e| e.error_code == "INVALID_FIELD" && !e.error_uid.is_empty()));
    }

    #[test]
    fn required_and_shape_errors() {
        assert_eq!(fields_of(&parse(b"{}").unwrap_err()), vec!["messageAttributes"]);
        assert_eq!(
            fields_of(&parse(br#"{"messageAttributes": {}}"#).unwrap_err()),
            vec!["messageAttributes.body"]
        );
        assert_eq!(
            fields_of(&parse(br#"{"messageAttributes": {"body": "  "}}"#).unwrap_err()),
            vec!["messageAttributes.body"]
        );
        assert_eq!(parse(b"[").unwrap_err()[0].error_code, "INVALID_BODY");
        let both = json!({"messageAttributes": {"body": "b", "draftAttributes": {"draftStatus": "SCHEDULED", "scheduledOn": "2030-01-01T00:00:00Z"}}, "messageSendingAttributesLite": {"delay": 5}});
        assert_eq!(
            fields_of(&parse(both.to_string().as_bytes()).unwrap_err()),
            vec!["messageSendingAttributesLite.delay"]
        );
        let no_time =
            json!({"messageAttributes": {"body": "b", "draftAttributes": {"draftStatus": "SCHEDULED"}}});
        assert_eq!(
            fields_of(&parse(no_time.to_string().as_bytes()).unwrap_err()),
            vec!["messageAttributes.draftAttributes.scheduledOn"]
        );
        let minimal = parse(br#"{"messageAttributes": {"body": "hi"}, "extra": 1}"#).unwrap();
        assert_eq!(
            (minimal.delay_seconds, minimal.send_synchronously, minimal.protocol.as_str()),
            (0, false, "TEXT")
        );
        assert_eq!(minimal.warnings[0].warning_code, "UNKNOWN_FIELD");
        let epoch = json!({"messageAttributes": {"body": "b", "draftAttributes": {"draftStatus": "SCHEDULED", "scheduledOn": "1795338000000"}}});
        assert!(parse(epoch.to_string().as_bytes()).unwrap().scheduled_on.is_some());
    }

    #[test]
    fn domain_errors_take_the_dialect_s_own_codes() {
        use crate::error::{ApiError, ErrorKind};
        let e = error_of(&ApiError::invalid("messageAttributes.body", "is required"));
        assert_eq!(
            (e.error_code.as_str(), e.error_description.as_str()),
            ("INVALID_PARAMETER", "messageAttributes.body: is required")
        );
        assert_eq!(error_of(&ApiError::new(ErrorKind::Conflict, "key reused")).error_code, "CONFLICT");
        assert_eq!(
            error_of(&ApiError::new(ErrorKind::Unavailable, "retry")).error_code,
            "SERVICE_UNAVAILABLE"
        );
        assert_eq!(
            error_of(&ApiError::new(ErrorKind::Internal, "internal error")).error_code,
            "INTERNAL_ERROR"
        );
        assert!(!error_of(&ApiError::new(ErrorKind::PayloadTooLarge, "big")).error_code.starts_with("WS"));
    }
}
