//! `POST /rest/notification/send` (group-send.txt): versions 2, 3 and 4; types GE, GT, SN, JN,
//! GA, UN; scheduling in a named time zone; email fields. This module checks everything that can
//! be checked without the directory; the send service checks the rest (teams, events, users).

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use jiff::tz::{AmbiguousOffset, TimeZone};

use super::fields::{Fields, is_plausible_email, is_valid_link, object};
use crate::error::{ApiError, ErrorKind};
use crate::model::{BroadcastType, EmailParam, EmailSpec, Schedule};

pub const MAX_KEY: usize = 100;
pub const MAX_MESSAGE: usize = 2048;
pub const MAX_URL: usize = 1024;
pub const MAX_TIMEZONE: usize = 40;
pub const MAX_JOB_NAME: usize = 100;
pub const MAX_EMAIL_TEMPLATE: usize = 100;
pub const MAX_EMAIL_SUBJECT: usize = 256;
/// The spec's limit for `emailBody` (characters). No request that large reaches the service:
/// Lambda takes at most 6 MB of invocation payload, the API Gateway envelope included.
pub const MAX_EMAIL_BODY: usize = 10_000_000;
/// What `emailBody` and `emailParams` together may weigh here (UTF-8 bytes of the body and of
/// every parameter's key and value): each is stored once, in a DynamoDB item of its own of at most
/// 400 KB, beside the notification. More is refused naming `emailBody` (when the body alone is
/// over) or `emailParams`, before anything is stored or counted against the daily cap.
pub const MAX_EMAIL_BODY_BYTES: usize = 300 * 1024;
/// What one `emailParams` entry weighs in the item beyond its key and value: a map in a list
/// (3 bytes, and 1 per element), its attribute names `key` and `value` (8): DynamoDB's item size
/// rules, rounded up. Counted against `MAX_EMAIL_BODY_BYTES`, so that many small parameters
/// cannot pass 400 KB either.
pub const PARAM_OVERHEAD_BYTES: usize = 16;
pub const MAX_PARAM_KEY: usize = 100;
pub const MAX_PARAM_VALUE: usize = 2000;
pub const MAX_UN_RECIPIENTS: usize = 10;
/// Longest team / entry id accepted in `values` (ids are short; this only bounds abuse).
pub const MAX_VALUE: usize = 100;

pub use crate::model::{GroupSend, ScheduleRequest, SendChange, user_notification_status_name};

fn needs_v3(field: &str) -> ApiError {
    ApiError::invalid(field, format!("{field} requires version 3 or later"))
}

/// Converts a local date-time in a zone to an instant: a time skipped by a spring-forward gap is
/// an error; a time repeated by a fall-back takes the earlier instant. The zone rules are the
/// IANA database bundled by jiff as one compact blob (no per-zone static tables to relocate at
/// every cold start, as chrono-tz's were).
pub fn resolve_local(
    zone_id: &str,
    zone: &TimeZone,
    local: NaiveDateTime,
) -> Result<DateTime<Utc>, ApiError> {
    let invalid = || ApiError::invalid("scheduleLocalDateTime", format!("{local} is out of range"));
    let civil = jiff::civil::DateTime::new(
        i16::try_from(local.year()).map_err(|_| invalid())?,
        local.month() as i8,
        local.day() as i8,
        local.hour() as i8,
        local.minute() as i8,
        local.second() as i8,
        local.nanosecond().min(999_999_999) as i32,
    )
    .map_err(|_| invalid())?;
    let ambiguous = zone.to_ambiguous_zoned(civil);
    let zoned = match ambiguous.offset() {
        AmbiguousOffset::Gap { .. } => {
            return Err(ApiError::invalid(
                "scheduleLocalDateTime",
                format!("scheduleLocalDateTime {local} does not exist in {zone_id} (the clocks skip it)"),
            ));
        }
        AmbiguousOffset::Fold { .. } => ambiguous.earlier(),
        AmbiguousOffset::Unambiguous { .. } => ambiguous.compatible(),
    }
    .map_err(|_| invalid())?;
    let ts = zoned.timestamp();
    DateTime::from_timestamp(ts.as_second(), ts.subsec_nanosecond().max(0) as u32).ok_or_else(invalid)
}

fn parse_local(text: &str) -> Option<NaiveDateTime> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
}

/// `scheduleTimezoneId`, `scheduleLocalDateTime` and `scheduleJobName`: both of the first two or
/// neither (the job name only with them), version 3 or later, an IANA zone, an ISO local time
/// that exists there (a DST gap is refused, a repeated time takes the earlier instant).
fn schedule_of(f: &Fields, version: u8) -> Result<Option<ScheduleRequest>, ApiError> {
    let timezone = f.opt_str("scheduleTimezoneId", MAX_TIMEZONE)?;
    let local = f.opt_str("scheduleLocalDateTime", 64)?;
    let job_name = f.opt_str("scheduleJobName", MAX_JOB_NAME)?;
    let schedule = match (timezone, local) {
        (None, None) => {
            if job_name.is_some() {
                return Err(ApiError::invalid(
                    "scheduleJobName",
                    "scheduleJobName is only used with scheduling",
                ));
            }
            None
        }
        (Some(_), None) => {
            return Err(ApiError::invalid(
                "scheduleLocalDateTime",
                "scheduleLocalDateTime is required with scheduleTimezoneId",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "scheduleTimezoneId",
                "scheduleTimezoneId is required with scheduleLocalDateTime",
            ));
        }
        (Some(tz), Some(local)) => {
            if version < 3 {
                return Err(needs_v3("scheduleTimezoneId"));
            }
            // A name of the bundled IANA database (never a file path or a POSIX TZ string).
            let zone = TimeZone::get(&tz).map_err(|_| {
                ApiError::invalid("scheduleTimezoneId", format!("{tz:?} is not an IANA time zone id"))
            })?;
            let naive = parse_local(&local).ok_or_else(|| {
                ApiError::invalid(
                    "scheduleLocalDateTime",
                    format!("{local:?} is not an ISO local date-time (e.g. 2026-11-22T10:30:00)"),
                )
            })?;
            let at = resolve_local(&tz, &zone, naive)?;
            Some(ScheduleRequest {
                schedule: Schedule { timezone_id: tz, local_date_time: local, job_name },
                at,
            })
        }
    };
    Ok(schedule)
}

/// Parses and checks a request body.
pub fn parse(body: &[u8]) -> Result<GroupSend, ApiError> {
    let map = object(body)?;
    let f = Fields::new(&map);

    let version = match f.get("version") {
        None => return Err(ApiError::invalid("version", "version is required")),
        Some(v) => match v.as_u64() {
            Some(v @ 2..=4) => v as u8,
            Some(v) => {
                return Err(ApiError::new(
                    ErrorKind::UnsupportedVersion,
                    format!("version {v} is not supported; use 2, 3 or 4"),
                )
                .with_parameter("version"));
            }
            None => return Err(ApiError::invalid("version", "version must be an integer (2, 3 or 4)")),
        },
    };

    let kind_text = f.req_str("type", 2)?;
    let kind = BroadcastType::parse(&kind_text).ok_or_else(|| {
        ApiError::invalid("type", format!("type {kind_text:?} is not one of GE, GT, SN, JN, GA, UN"))
    })?;
    if version < 3 && matches!(kind, BroadcastType::GA | BroadcastType::UN) {
        return Err(ApiError::invalid("type", format!("type {kind_text} requires version 3 or later")));
    }

    let key = f.req_str("key", MAX_KEY)?;
    let mut values = f.opt_str_array("values", MAX_VALUE)?.unwrap_or_default();
    if values.iter().any(|v| v.trim().is_empty()) {
        return Err(ApiError::invalid("values", "values must not contain blank ids"));
    }
    // Duplicates would not add recipients; keep the first of each, in order.
    let mut seen = std::collections::HashSet::new();
    values.retain(|v| seen.insert(v.clone()));

    let message = f.req_str("message", MAX_MESSAGE)?;
    let url = f.opt_str("url", MAX_URL)?;
    if let Some(u) = &url {
        if version < 3 {
            return Err(needs_v3("url"));
        }
        if !is_valid_link(u) {
            return Err(ApiError::invalid(
                "url",
                "url must be an http(s) URL or an app deep link (scheme://...)",
            ));
        }
    }
    let total = message.chars().count() + url.as_deref().map_or(0, |u| u.chars().count());
    if total > MAX_MESSAGE {
        return Err(ApiError::invalid(
            "message",
            format!("message and url together must be at most {MAX_MESSAGE} characters (got {total})"),
        ));
    }

    let schedule = schedule_of(&f, version)?;

    let brochure_id = f.opt_u64("brochureId")?;
    if kind == BroadcastType::GA && brochure_id.is_none() {
        return Err(ApiError::invalid("brochureId", "brochureId is required for type GA"));
    }

    let template = f.opt_str("emailTemplate", MAX_EMAIL_TEMPLATE)?;
    let subject = f.opt_str("emailSubject", MAX_EMAIL_SUBJECT)?;
    let email_body = f.opt_str("emailBody", MAX_EMAIL_BODY)?;
    if let Some(body) = &email_body
        && body.len() > MAX_EMAIL_BODY_BYTES
    {
        return Err(f.error(
            "emailBody",
            format!(
                "must be at most {MAX_EMAIL_BODY_BYTES} bytes (UTF-8) to be stored with its notification (got {})",
                body.len()
            ),
        ));
    }
    let params = match f.opt_array("emailParams")? {
        None => Vec::new(),
        Some(items) => items
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let name = format!("emailParams[{i}]");
                let obj = p
                    .as_object()
                    .ok_or_else(|| ApiError::invalid(&name, format!("{name} must be an object")))?;
                let pf = Fields::nested(obj, &name);
                Ok(EmailParam {
                    key: pf.req_str("key", MAX_PARAM_KEY)?,
                    value: pf.req_str("value", MAX_PARAM_VALUE)?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?,
    };
    let body_bytes = email_body.as_ref().map_or(0, String::len);
    let params_bytes: usize = params.iter().map(|p| p.key.len() + p.value.len() + PARAM_OVERHEAD_BYTES).sum();
    if body_bytes <= MAX_EMAIL_BODY_BYTES && body_bytes + params_bytes > MAX_EMAIL_BODY_BYTES {
        return Err(f.error(
            "emailParams",
            format!(
                "with emailBody must be at most {MAX_EMAIL_BODY_BYTES} bytes (UTF-8) together to be stored \
                 with their notification (got {params_bytes} beside a body of {body_bytes})"
            ),
        ));
    }
    if version < 3 {
        for field in ["emailTemplate", "emailSubject", "emailBody"] {
            if f.has(field) {
                return Err(needs_v3(field));
            }
        }
        if !params.is_empty() {
            return Err(needs_v3("emailParams"));
        }
    }
    let email = match template {
        Some(template) => {
            let subject = subject.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                ApiError::invalid("emailSubject", "emailSubject is required when emailTemplate is present")
            })?;
            Some(EmailSpec { template, subject, params, body: email_body })
        }
        None => {
            for field in ["emailSubject", "emailBody"] {
                if f.has(field) {
                    return Err(ApiError::invalid(field, format!("{field} is only used with emailTemplate")));
                }
            }
            if !params.is_empty() {
                return Err(ApiError::invalid("emailParams", "emailParams is only used with emailTemplate"));
            }
            None
        }
    };

    let campaign_tag_id = f.opt_u64("campaignTagId")?;
    let update_entity_last_modified = f.opt_bool("updateEntityLastModified")?.unwrap_or(false);

    let type_id = f.opt_u64("userNotificationTypeId")?;
    let status_id = f.opt_u64("userNotificationTypeStatusId")?;
    if kind != BroadcastType::UN {
        for (field, v) in [("userNotificationTypeId", type_id), ("userNotificationTypeStatusId", status_id)] {
            if v.is_some() {
                return Err(ApiError::invalid(field, format!("{field} is only used with type UN")));
            }
        }
    }
    if let Some(s) = status_id
        && user_notification_status_name(s).is_none()
    {
        return Err(ApiError::invalid(
            "userNotificationTypeStatusId",
            "userNotificationTypeStatusId must be 1 (Available), 2 (Shortage), 3 (Depleted) or 4 (Short Dated)",
        ));
    }

    if kind == BroadcastType::UN {
        if values.is_empty() || values.len() > MAX_UN_RECIPIENTS {
            return Err(ApiError::invalid(
                "values",
                format!(
                    "type UN takes 1 to {MAX_UN_RECIPIENTS} user emails in values (got {})",
                    values.len()
                ),
            ));
        }
        if let Some(bad) = values.iter().find(|v| !is_plausible_email(v)) {
            return Err(ApiError::invalid("values", format!("{bad:?} is not an email address")));
        }
    }

    Ok(GroupSend {
        version,
        kind,
        key,
        values,
        message,
        url,
        schedule,
        brochure_id,
        email,
        campaign_tag_id,
        update_entity_last_modified,
        user_notification_type_id: type_id,
        user_notification_type_status_id: status_id,
    })
}

// ---------------------------------------------------------------------------------------------
// Cancel: `DELETE /rest/notification/send/{notificationScheduleId}` (beyond the spec)

/// The largest schedule id (ids are JSON numbers a client reads as doubles: 2^53).
pub const MAX_SCHEDULE_ID: u64 = 1 << 53;

/// The path's `notificationScheduleId`: a positive whole number, at most 2^53.
pub fn schedule_id(text: Option<&str>) -> Result<u64, ApiError> {
    const NAME: &str = "notificationScheduleId";
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    let Some(text) = text else {
        return Err(ApiError::invalid(NAME, "notificationScheduleId is required"));
    };
    match text.parse::<u64>() {
        Ok(id @ 1..=MAX_SCHEDULE_ID) => Ok(id),
        _ => Err(ApiError::invalid(
            NAME,
            format!(
                "notificationScheduleId must be a whole number from 1 to {MAX_SCHEDULE_ID} (got {text:?})"
            ),
        )),
    }
}

/// A cancel's answer: the notification, `cancelled`, the people it reached (who have it or are
/// being given it: their chunk had started; nobody else ever gets it), when and by whom.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelAnswer {
    pub notification_schedule_id: u64,
    pub status: &'static str,
    pub people_reached: u64,
    /// Milliseconds since the epoch, as sent history's times.
    pub cancelled: i64,
    pub cancelled_by: String,
    /// An earlier cancel did it; this one answers the same.
    pub already_cancelled: bool,
}

impl From<&crate::service::cancel::Cancelled> for CancelAnswer {
    fn from(c: &crate::service::cancel::Cancelled) -> Self {
        CancelAnswer {
            notification_schedule_id: c.schedule_id,
            status: crate::model::Status::Cancelled.word(),
            people_reached: c.reached,
            cancelled: c.cancellation.at.timestamp_millis(),
            cancelled_by: c.cancellation.by.clone(),
            already_cancelled: c.repeated,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Change: `PATCH /rest/notification/send/{notificationScheduleId}` (beyond the spec)

/// The fields a change may give.
const CHANGE_FIELDS: &[&str] =
    &["message", "url", "scheduleTimezoneId", "scheduleLocalDateTime", "scheduleJobName"];

/// Parses a change of a pending send: any of `message`, `url` (`null` removes it) and the
/// schedule (`scheduleTimezoneId` with `scheduleLocalDateTime`, and `scheduleJobName`), each
/// with the send's own limits and rules; at least one; nothing else.
pub fn parse_change(body: &[u8]) -> Result<SendChange, ApiError> {
    let map = object(body)?;
    if let Some(unknown) = map.keys().find(|k| !CHANGE_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            unknown.as_str(),
            format!("{unknown} cannot be changed (only {})", CHANGE_FIELDS.join(", ")),
        ));
    }
    if map.is_empty() {
        return Err(ApiError::invalid(
            "message",
            format!("nothing to change: give any of {}", CHANGE_FIELDS.join(", ")),
        ));
    }
    let f = Fields::new(&map);
    let message = match map.get("message") {
        None => None,
        Some(serde_json::Value::Null) => {
            return Err(ApiError::invalid("message", "message cannot be removed: give the new one"));
        }
        Some(_) => Some(f.req_str("message", MAX_MESSAGE)?),
    };
    let url = match map.get("url") {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(_) => Some(f.opt_str("url", MAX_URL)?),
    };
    let schedule = schedule_of(&f, 3)?;
    if message.is_none() && url.is_none() && schedule.is_none() {
        return Err(ApiError::invalid(
            "message",
            format!("nothing to change: give any of {}", CHANGE_FIELDS.join(", ")),
        ));
    }
    Ok(SendChange { message, url, schedule })
}

/// A send's message and url (as its caller wrote it), checked as a send's body is: a message, a
/// url that is an http(s) URL or an app deep link of at most 1024 characters, both together at
/// most 2048.
pub fn check_content(message: &str, url: Option<&str>) -> Result<(), ApiError> {
    if message.trim().is_empty() {
        return Err(ApiError::invalid("message", "message must not be empty"));
    }
    if let Some(u) = url {
        if u.chars().count() > MAX_URL {
            return Err(ApiError::invalid("url", format!("url must be at most {MAX_URL} characters")));
        }
        if !is_valid_link(u) {
            return Err(ApiError::invalid(
                "url",
                "url must be an http(s) URL or an app deep link (scheme://...)",
            ));
        }
    }
    let total = message.chars().count() + url.map_or(0, |u| u.chars().count());
    if total > MAX_MESSAGE {
        return Err(ApiError::invalid(
            "message",
            format!("message and url together must be at most {MAX_MESSAGE} characters (got {total})"),
        ));
    }
    Ok(())
}

/// A change's answer: the send as it is now, still pending.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeAnswer {
    pub notification_schedule_id: u64,
    pub status: &'static str,
    pub message: String,
    pub url: Option<String>,
    /// When it goes out, in milliseconds since the epoch.
    pub scheduled: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_timezone_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_local_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_job_name: Option<String>,
    pub notification_modified: i64,
    pub notification_modified_by: String,
}

impl From<&crate::model::Notification> for ChangeAnswer {
    fn from(n: &crate::model::Notification) -> Self {
        let schedule = n.schedule.as_ref();
        ChangeAnswer {
            notification_schedule_id: n.schedule_id,
            status: n.status.word(),
            message: n.content.body.clone(),
            url: n.content.url.clone(),
            scheduled: n.due_at.timestamp_millis(),
            schedule_timezone_id: schedule.map(|s| s.timezone_id.clone()),
            schedule_local_date_time: schedule.map(|s| s.local_date_time.clone()),
            schedule_job_name: schedule.and_then(|s| s.job_name.clone()),
            notification_modified: n.modified_at.timestamp_millis(),
            notification_modified_by: n.modified_by.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Retract: `POST /rest/notification/send/{notificationScheduleId}/retract`, and correct:
// `POST /rest/notification/send/{notificationScheduleId}/correct` (beyond the spec)

/// What the answers say of what went out by email and push.
use crate::service::recall::NOT_RECALLED;

/// A retraction's answer: the notification, `retracted`, when and by whom, the people whose
/// centers it is being removed from, and what cannot be recalled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetractAnswer {
    pub notification_schedule_id: u64,
    pub status: &'static str,
    /// People in the chunks that started: removed from their centers in the background.
    pub people_reached: u64,
    /// Milliseconds since the epoch.
    pub retracted: i64,
    pub retracted_by: String,
    pub already_retracted: bool,
    pub emails_sent: u64,
    pub pushes_sent: u64,
    pub note: &'static str,
}

impl From<&crate::service::recall::Retracted> for RetractAnswer {
    fn from(r: &crate::service::recall::Retracted) -> Self {
        RetractAnswer {
            notification_schedule_id: r.schedule_id,
            status: "retracted",
            people_reached: r.reached,
            retracted: r.retraction.at.timestamp_millis(),
            retracted_by: r.retraction.by.clone(),
            already_retracted: r.repeated,
            emails_sent: r.emails_sent,
            pushes_sent: r.pushes_sent,
            note: NOT_RECALLED,
        }
    }
}

/// A retraction's body: none (or an empty object); anything else is refused rather than
/// ignored (a reason or a filter a caller meant is not applied).
pub fn parse_retraction(body: &[u8]) -> Result<(), ApiError> {
    super::fields::no_body(body, "a retraction")
}

/// The fields a correction may give.
const CORRECT_FIELDS: &[&str] = &["message", "url"];

/// Parses a correction of a send that went out: its `message`, its `url` (`null` removes it),
/// with the send's limits; at least one; nothing else (its schedule is past).
pub fn parse_correction(body: &[u8]) -> Result<SendChange, ApiError> {
    let map = object(body)?;
    if let Some(unknown) = map.keys().find(|k| !CORRECT_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            unknown.as_str(),
            format!(
                "{unknown} cannot be corrected after the send went out (only {})",
                CORRECT_FIELDS.join(", ")
            ),
        ));
    }
    let change = parse_change(body)?;
    Ok(change)
}

/// A correction's answer: the send as every center shows it now, and what cannot be recalled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CorrectAnswer {
    pub notification_schedule_id: u64,
    pub status: &'static str,
    pub message: String,
    pub url: Option<String>,
    /// Milliseconds since the epoch.
    pub corrected: i64,
    pub corrected_by: String,
    pub emails_sent: u64,
    pub pushes_sent: u64,
    pub note: &'static str,
}

impl From<&crate::model::Notification> for CorrectAnswer {
    fn from(n: &crate::model::Notification) -> Self {
        let corrected = n
            .corrected
            .clone()
            .unwrap_or(crate::model::Cancellation { at: n.modified_at, by: n.modified_by.clone() });
        CorrectAnswer {
            notification_schedule_id: n.schedule_id,
            status: n.status.word(),
            message: n.content.body.clone(),
            url: n.content.url.clone(),
            corrected: corrected.at.timestamp_millis(),
            corrected_by: corrected.by,
            emails_sent: n.emails_sent,
            pushes_sent: n.pushes_sent,
            note: NOT_RECALLED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(body: serde_json::Value) -> ApiError {
        parse(body.to_string().as_bytes()).unwrap_err()
    }

    fn base(version: u64) -> serde_json::Value {
        json!({"version": version, "type": "GT", "key": "3", "values": ["23", "27"], "message": "hello"})
    }

    fn with(mut v: serde_json::Value, k: &str, x: serde_json::Value) -> serde_json::Value {
        v[k] = x;
        v
    }

    fn assert_invalid(body: serde_json::Value, parameter: &str) {
        let e = err(body);
        assert_eq!(e.kind, ErrorKind::InvalidParameter, "{e:?}");
        assert_eq!(e.parameter.as_deref(), Some(parameter), "{e:?}");
    }

    #[test]
    fn spec_examples_parse() {
        let ge = json!({ "version": 2, "type": "GE", "key": "ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8", "values": ["456", "459"], "message": "This is test message for event team ids 456 and 459" });
        assert_eq!(parse(ge.to_string().as_bytes()).unwrap().kind, BroadcastType::GE);
        let un = json!({"version": 4, "type": "UN", "key": "3", "values": ["aaron.mcmullen@hypermedia.com.au"],
            "message": "PFIZER ORDER UPDATE - Order 123456 hs SHIPPED", "emailParams": [], "brochureId": 4,
            "updateEntityLastModified": false, "userNotificationTypeId": 7, "userNotificationTypeStatusId": 1});
        let un = parse(un.to_string().as_bytes()).unwrap();
        assert_eq!(
            (un.kind, un.brochure_id, un.user_notification_type_status_id),
            (BroadcastType::UN, Some(4), Some(1))
        );
    }

    #[test]
    fn versions() {
        for v in [0, 1, 5, 99] {
            let e = err(base(v));
            assert_eq!((e.kind, e.parameter.as_deref()), (ErrorKind::UnsupportedVersion, Some("version")));
            assert_eq!(super::super::ws::exception(e.kind), "WSUnsupportedVersionException");
        }
        assert_invalid(with(base(2), "version", json!("3")), "version");
        assert_invalid(json!({"type": "GT", "key": "3", "message": "m"}), "version");
        assert_invalid(with(base(2), "type", json!("GA")), "type");
        assert_invalid(with(base(2), "type", json!("UN")), "type");
        assert_invalid(with(base(2), "url", json!("https://x.com")), "url");
        assert_invalid(
            with(with(base(2), "emailTemplate", json!("t")), "emailSubject", json!("s")),
            "emailTemplate",
        );
        assert_invalid(
            with(
                with(base(2), "scheduleTimezoneId", json!("UTC")),
                "scheduleLocalDateTime",
                json!("2030-01-01T00:00:00"),
            ),
            "scheduleTimezoneId",
        );
    }

    #[test]
    fn limits_name_their_parameter() {
        assert_invalid(with(base(3), "key", json!("k".repeat(101))), "key");
        assert_invalid(with(base(3), "message", json!("")), "message");
        assert_invalid(with(base(3), "message", json!("m".repeat(2049))), "message");
        assert!(parse(with(base(3), "message", json!("m".repeat(2048))).to_string().as_bytes()).is_ok());
        // The url counts towards the message limit.
        let near =
            with(with(base(3), "message", json!("m".repeat(2040))), "url", json!("https://example.com"));
        assert_invalid(near, "message");
        assert_invalid(with(base(3), "url", json!(format!("https://x.com/{}", "a".repeat(1020)))), "url");
        assert_invalid(with(base(3), "url", json!("not a url")), "url");
        assert_invalid(with(base(3), "type", json!("XX")), "type");
        assert_invalid(with(base(3), "values", json!("23")), "values");
        assert_invalid(with(base(3), "values", json!([23])), "values");
        assert_invalid(with(base(3), "values", json!([""])), "values");
        let tz = |t: &str, l: &str| {
            with(with(base(3), "scheduleTimezoneId", json!(t)), "scheduleLocalDateTime", json!(l))
        };
        assert_invalid(tz("Mars/Olympus", "2030-01-01T00:00:00"), "scheduleTimezoneId");
        assert_invalid(tz(&"A".repeat(41), "2030-01-01T00:00:00"), "scheduleTimezoneId");
        assert_invalid(tz("UTC", "tomorrow"), "scheduleLocalDateTime");
        assert_invalid(with(base(3), "scheduleTimezoneId", json!("UTC")), "scheduleLocalDateTime");
        assert_invalid(
            with(base(3), "scheduleLocalDateTime", json!("2030-01-01T00:00")),
            "scheduleTimezoneId",
        );
        assert_invalid(
            with(tz("UTC", "2030-01-01T00:00"), "scheduleJobName", json!("j".repeat(101))),
            "scheduleJobName",
        );
        assert_invalid(with(base(3), "scheduleJobName", json!("nightly")), "scheduleJobName");
        assert_invalid(with(base(3), "emailTemplate", json!("t")), "emailSubject");
        assert_invalid(with(base(3), "emailTemplate", json!("t".repeat(101))), "emailTemplate");
        let email = |k: &str, v: serde_json::Value| {
            with(with(with(base(3), "emailTemplate", json!("t")), "emailSubject", json!("s")), k, v)
        };
        assert_invalid(email("emailSubject", json!("s".repeat(257))), "emailSubject");
        assert_invalid(
            email("emailParams", json!([{"key": "k".repeat(101), "value": "v"}])),
            "emailParams[0].key",
        );
        assert_invalid(
            email("emailParams", json!([{"key": "k", "value": "v".repeat(2001)}])),
            "emailParams[0].value",
        );
        assert_invalid(email("emailParams", json!([{"key": "k"}])), "emailParams[0].value");
        assert_invalid(email("emailParams", json!(["k"])), "emailParams[0]");
        assert_invalid(email("emailBody", json!(12)), "emailBody");
        // The body and the parameters share the item's room: over it, the parameters are named.
        let params: Vec<serde_json::Value> =
            (0..160).map(|i| json!({"key": format!("k{i:03}"), "value": "v".repeat(2000)})).collect();
        assert_invalid(email("emailParams", json!(params)), "emailParams");
        let body = json!("b".repeat(MAX_EMAIL_BODY_BYTES - 150 * (2004 + PARAM_OVERHEAD_BYTES)));
        let fits = with(email("emailParams", json!(params[..150])), "emailBody", body.clone());
        assert!(parse(fits.to_string().as_bytes()).is_ok(), "150 parameters and the rest of the body fit");
        let over = with(email("emailParams", json!(params[..151])), "emailBody", body);
        assert_invalid(over, "emailParams");
        // Many small parameters weigh their overhead too: 10,000 of 30 bytes are over 400 KB stored.
        let small: Vec<serde_json::Value> =
            (0..10_000).map(|i| json!({"key": format!("k{i:09}"), "value": "v".repeat(20)})).collect();
        assert_invalid(email("emailParams", json!(small)), "emailParams");
        assert_invalid(with(base(3), "emailSubject", json!("s")), "emailSubject");
        assert_invalid(with(base(3), "brochureId", json!("4")), "brochureId");
        assert_invalid(with(base(3), "brochureId", json!(-4)), "brochureId");
        assert_invalid(with(base(3), "type", json!("GA")), "brochureId");
        assert_invalid(with(base(3), "updateEntityLastModified", json!("yes")), "updateEntityLastModified");
        assert_invalid(with(base(3), "userNotificationTypeId", json!(7)), "userNotificationTypeId");
        assert_invalid(
            with(base(3), "userNotificationTypeStatusId", json!(1)),
            "userNotificationTypeStatusId",
        );
    }

    #[test]
    fn un_recipients() {
        let un = |values: serde_json::Value| json!({"version": 4, "type": "UN", "key": "3", "values": values, "message": "m"});
        let ten: Vec<String> = (0..10).map(|i| format!("u{i}@x.com")).collect();
        assert!(parse(un(json!(ten)).to_string().as_bytes()).is_ok());
        let eleven: Vec<String> = (0..11).map(|i| format!("u{i}@x.com")).collect();
        assert_invalid(un(json!(eleven)), "values");
        assert_invalid(un(json!([])), "values");
        assert_invalid(un(json!(["not-an-email"])), "values");
        let mut bad_status = un(json!(["a@b.co"]));
        bad_status["userNotificationTypeStatusId"] = json!(5);
        assert_invalid(bad_status, "userNotificationTypeStatusId");
    }

    #[test]
    fn bad_bodies_are_400_naming_body() {
        for body in [&b"{"[..], b"", b"[]", b"\"x\"", b"\xff\xfe"] {
            let e = parse(body).unwrap_err();
            assert_eq!((e.status(), e.parameter.as_deref()), (400, Some("body")), "{body:?}");
        }
    }

    #[test]
    fn schedule_converts_in_zone_with_gaps_and_overlaps() {
        let sydney = TimeZone::get("Australia/Sydney").unwrap();
        let sydney = &sydney;
        let at =
            resolve_local("Australia/Sydney", sydney, parse_local("2026-11-22T10:00:00").unwrap()).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-21T23:00:00+00:00", "AEDT is UTC+11");
        // Sydney springs forward at 02:00 on 2026-10-04: 02:30 does not exist.
        let gap = resolve_local("Australia/Sydney", sydney, parse_local("2026-10-04T02:30:00").unwrap())
            .unwrap_err();
        assert_eq!(gap.parameter.as_deref(), Some("scheduleLocalDateTime"));
        // ... and falls back at 03:00 on 2026-04-05: 02:30 happens twice; the earlier is taken.
        let twice =
            resolve_local("Australia/Sydney", sydney, parse_local("2026-04-05T02:30:00").unwrap()).unwrap();
        assert_eq!(twice.to_rfc3339(), "2026-04-04T15:30:00+00:00", "02:30 AEDT (UTC+11)");
        let parsed = parse(
            json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "m",
                   "scheduleTimezoneId": "Australia/Sydney", "scheduleLocalDateTime": "2026-11-22T10:00", "scheduleJobName": "j"})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let s = parsed.schedule.unwrap();
        assert_eq!((s.at, s.schedule.job_name.as_deref()), (at, Some("j")));
    }

    #[test]
    fn a_cancel_names_a_schedule_id_in_range() {
        assert_eq!(schedule_id(Some("123")).unwrap(), 123);
        assert_eq!(schedule_id(Some(" 9007199254740992 ")).unwrap(), 1 << 53);
        for bad in [None, Some(""), Some("0"), Some("-1"), Some("1.5"), Some("abc"), Some("9007199254740993")]
        {
            let e = schedule_id(bad).unwrap_err();
            assert_eq!(
                (e.kind, e.parameter.as_deref()),
                (ErrorKind::InvalidParameter, Some("notificationScheduleId")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_change_takes_the_sends_own_rules() {
        let c = |body: serde_json::Value| parse_change(body.to_string().as_bytes());
        let change = c(json!({"message": "moved", "url": null})).unwrap();
        assert_eq!((change.message.as_deref(), change.url), (Some("moved"), Some(None)));
        let change = c(
            json!({"scheduleTimezoneId": "Australia/Sydney", "scheduleLocalDateTime": "2030-01-15T09:00:00"}),
        )
        .unwrap();
        assert_eq!(change.schedule.unwrap().at.to_rfc3339(), "2030-01-14T22:00:00+00:00");
        let field = |body: serde_json::Value| c(body).unwrap_err().parameter;
        let p = |s: &str| Some(s.to_string());
        assert_eq!(field(json!({})), p("message"), "nothing to change");
        assert_eq!(field(json!({"type": "GE"})), p("type"), "not a field a change takes");
        assert_eq!(field(json!({"message": ""})), p("message"));
        assert_eq!(field(json!({"message": "x".repeat(MAX_MESSAGE + 1)})), p("message"));
        assert_eq!(field(json!({"scheduleTimezoneId": "UTC"})), p("scheduleLocalDateTime"));
        assert_eq!(
            field(
                json!({"scheduleTimezoneId": "Mars/Olympus", "scheduleLocalDateTime": "2030-01-15T09:00:00"})
            ),
            p("scheduleTimezoneId")
        );
        // Spring forward in Sydney: 2:30 on 2030-10-06 does not exist.
        assert_eq!(
            field(
                json!({"scheduleTimezoneId": "Australia/Sydney", "scheduleLocalDateTime": "2030-10-06T02:30:00"})
            ),
            p("scheduleLocalDateTime")
        );
        assert_eq!(field(json!({"scheduleJobName": "x"})), p("scheduleJobName"));
        assert_eq!(field(json!({"message": null})), p("message"), "a message cannot be removed");
        assert_eq!(field(json!({"scheduleTimezoneId": null})), p("message"), "nothing to change");
        assert!(check_content("m", Some("https://example.com")).is_ok());
        assert_eq!(check_content("m", Some("not a link")).unwrap_err().parameter, p("url"));
        let long = "x".repeat(MAX_MESSAGE - 5);
        assert_eq!(check_content(&long, Some("https://example.com")).unwrap_err().parameter, p("message"));
    }
}
