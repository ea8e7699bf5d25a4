//! Reading a department notify body, one section at a time (`messageAttributes`,
//! `notificationAttributes`, `messageSendingAttributesLite`), every error and warning collected.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::*;
use crate::dialects::fields::is_valid_link;

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

/// The `messageAttributes` section: what the message says, and when it is sent.
struct Message {
    body: Option<String>,
    subject: Option<String>,
    protocol: String,
    scheduled_on: Option<DateTime<Utc>>,
    meta: Option<Map<String, Value>>,
    attachments: Option<Vec<Value>>,
    message_tags: Option<Vec<Value>>,
}

/// The `messageSendingAttributesLite` section: how and when it is delivered, and who hears back.
#[derive(Default)]
struct Sending {
    delay_seconds: u64,
    send_synchronously: bool,
    callback_url: Option<String>,
    callback_metadata: Option<Value>,
}

/// Parses a body one section at a time; on failure, the error entries (each naming its field).
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
    let message = message_attributes(&mut r, &root);
    let buttons = notification_attributes(&mut r, &root);
    let sending = sending_attributes(&mut r, &root);
    if sending.delay_seconds > 0 && message.scheduled_on.is_some() {
        r.invalid(
            "messageSendingAttributesLite.delay",
            "use either delay or draftAttributes.scheduledOn, not both",
        );
    }
    let data = client_data(&mut r, &message, buttons);
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    Ok(DepartmentNotify {
        subject: message.subject,
        body: message.body.unwrap_or_default(),
        protocol: message.protocol,
        scheduled_on: message.scheduled_on,
        delay_seconds: sending.delay_seconds,
        send_synchronously: sending.send_synchronously,
        callback_url: sending.callback_url,
        callback_metadata: sending.callback_metadata,
        data,
        warnings: r.warnings,
    })
}

fn message_attributes(r: &mut Reader, root: &Map<String, Value>) -> Message {
    let empty = Map::new();
    let msg = match r.object(root, "messageAttributes", "messageAttributes") {
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

    let scheduled_on = draft_attributes(r, msg);
    if message_type.as_deref() == Some("DRAFT") && scheduled_on.is_none() && r.errors.is_empty() {
        r.warnings
            .push(warning("DRAFT_SENT_NOW", "a DRAFT without a SCHEDULED draftStatus is delivered now"));
    }

    Message { body, subject, protocol, scheduled_on, meta, attachments, message_tags }
}

/// `messageAttributes.draftAttributes`: a SCHEDULED draft's time.
fn draft_attributes(r: &mut Reader, msg: &Map<String, Value>) -> Option<DateTime<Utc>> {
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
    scheduled_on
}

/// The `notificationAttributes` section: checked, and its buttons kept for the client.
fn notification_attributes(r: &mut Reader, root: &Map<String, Value>) -> Option<Vec<Value>> {
    let mut buttons = None;
    if let Some(attrs) = r.object(root, "notificationAttributes", "notificationAttributes") {
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

    buttons
}

fn sending_attributes(r: &mut Reader, root: &Map<String, Value>) -> Sending {
    let mut out = Sending::default();
    if let Some(s) = r.object(root, "messageSendingAttributesLite", "messageSendingAttributesLite") {
        r.unknown_fields(
            s,
            &["delay", "sendSynchronously", "callBackUrl", "callBackMetadata"],
            "messageSendingAttributesLite.",
        );
        match s.get("delay") {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_u64() {
                Some(d) if d <= MAX_DELAY_SECONDS => out.delay_seconds = d,
                _ => r.invalid(
                    "messageSendingAttributesLite.delay",
                    format!("must be whole seconds from 0 to {MAX_DELAY_SECONDS}"),
                ),
            },
        }
        out.send_synchronously = r
            .boolean(s, "sendSynchronously", "messageSendingAttributesLite.sendSynchronously")
            .unwrap_or(false);
        out.callback_url = r
            .string(s, "callBackUrl", "messageSendingAttributesLite.callBackUrl", MAX_CALLBACK_URL)
            .filter(|u| !u.is_empty());
        if let Some(u) = &out.callback_url {
            let lower = u.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) || !is_valid_link(u) {
                r.invalid("messageSendingAttributesLite.callBackUrl", "must be an http or https URL");
            }
        }
        out.callback_metadata = s.get("callBackMetadata").filter(|v| !v.is_null()).cloned();
        if out.callback_metadata.as_ref().is_some_and(|m| m.to_string().len() > MAX_EXTRAS_JSON) {
            r.invalid(
                "messageSendingAttributesLite.callBackMetadata",
                format!("must be at most {MAX_EXTRAS_JSON} bytes of JSON"),
            );
        }
    }
    out
}

/// What reaches the recipient's client in the item's `data`: metaData, attachments, messageTags
/// and the buttons, with the protocol they are written in; within `MAX_EXTRAS_JSON`.
fn client_data(r: &mut Reader, message: &Message, buttons: Option<Vec<Value>>) -> Option<String> {
    let mut extras = Map::new();
    for (k, v) in [
        ("metaData", message.meta.clone().map(Value::Object)),
        ("attachments", message.attachments.clone().map(Value::Array)),
        ("messageTags", message.message_tags.clone().map(Value::Array)),
        ("notificationButtons", buttons.map(Value::Array)),
    ] {
        if let Some(v) = v {
            extras.insert(k.into(), v);
        }
    }
    if !extras.is_empty() {
        extras.insert("protocol".into(), Value::String(message.protocol.clone()));
    }
    let data = (!extras.is_empty()).then(|| Value::Object(extras).to_string());
    if data.as_ref().is_some_and(|d| d.len() > MAX_EXTRAS_JSON) {
        r.invalid("messageAttributes", format!("metaData, attachments, messageTags and notificationButtons together must be at most {MAX_EXTRAS_JSON} bytes"));
    }

    data
}

/// A correction's body (`POST …/notify/{notificationMessageUUID}/correct`, beyond the spec): the
/// notify body's own `messageAttributes.subject` and `.body`, with its limits; at least one;
/// anything else is refused (what was sent is past changing: its schedule, buttons, callback).
pub fn parse_correction(bytes: &[u8]) -> Result<crate::model::ContentCorrection, Vec<ErrorEntry>> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| vec![error("INVALID_BODY", format!("request body is not valid JSON: {e}"))])?;
    let Value::Object(root) = value else {
        return Err(vec![error("INVALID_BODY", "request body must be a JSON object")]);
    };
    let mut r = Reader { errors: Vec::new(), warnings: Vec::new() };
    let fixed = |r: &mut Reader, path: String| {
        r.invalid(
            &path,
            "cannot be corrected after the message went out (only messageAttributes.subject and .body)",
        )
    };
    for key in root.keys().filter(|k| *k != "messageAttributes") {
        fixed(&mut r, key.clone());
    }
    let empty = Map::new();
    let msg = match r.object(&root, "messageAttributes", "messageAttributes") {
        Some(m) => m,
        None => &empty,
    };
    for key in msg.keys().filter(|k| !["subject", "body"].contains(&k.as_str())) {
        fixed(&mut r, format!("messageAttributes.{key}"));
    }
    let subject = r.string(msg, "subject", "messageAttributes.subject", MAX_SUBJECT);
    let body = r.string(msg, "body", "messageAttributes.body", MAX_BODY);
    if body.as_deref().is_some_and(|b| b.trim().is_empty()) {
        r.invalid("messageAttributes.body", "must not be empty");
    }
    if subject.as_deref().is_some_and(|s| s.trim().is_empty()) {
        r.invalid("messageAttributes.subject", "must not be empty");
    }
    if r.errors.is_empty() && subject.is_none() && body.is_none() {
        r.invalid(
            "messageAttributes",
            "a correction gives messageAttributes.subject, messageAttributes.body or both",
        );
    }
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    Ok(crate::model::ContentCorrection { title: subject, body, ..Default::default() })
}

/// A retraction's body: none (or an empty object); anything else is refused rather than ignored
/// (a reason or a filter a caller meant is not applied).
pub fn parse_retraction(bytes: &[u8]) -> Result<(), Vec<ErrorEntry>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(root)) => match root.keys().next() {
            None => Ok(()),
            Some(key) => Err(vec![error("INVALID_FIELD", format!("{key}: a retraction takes no body"))]),
        },
        _ => Err(vec![error("INVALID_BODY", "a retraction takes no body (or an empty JSON object)")]),
    }
}
