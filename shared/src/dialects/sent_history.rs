//! `GET /rest/notification/sent` (sent-history.txt): query parameters and the record shape.

use serde::Serialize;
use uuid::Uuid;

use crate::error::{ApiError, ErrorKind};
use crate::model::{BroadcastType, CompanyId, EmailParam, Notification};

pub const MAX_LIMIT: usize = 500;
const MESSAGE_CHARS: usize = 255;
const DESCRIPTION_CHARS: usize = 2000;
const USER_ID_CHARS: usize = 15;

pub use crate::model::HistoryQuery;

fn number<T: std::str::FromStr>(name: &str, value: Option<String>) -> Result<Option<T>, ApiError> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| ApiError::invalid(name, format!("{name} must be a number (got {v:?})")))
        })
        .transpose()
}

/// Reads and checks the query string (`param` looks a parameter up by name).
pub fn parse(param: impl Fn(&str) -> Option<String>) -> Result<HistoryQuery, ApiError> {
    match number::<i64>("version", param("version"))? {
        None => return Err(ApiError::invalid("version", "version is required (1)")),
        Some(1) => {}
        Some(v) => {
            return Err(ApiError::new(
                ErrorKind::UnsupportedVersion,
                format!("version {v} is not supported; use 1"),
            )
            .with_parameter("version"));
        }
    }
    let schedule_id = number::<u64>("notificationScheduleId", param("notificationScheduleId"))?;
    let broadcast_type = match param("broadcastType").filter(|v| !v.trim().is_empty()) {
        // The spec's own example uses ET for events.
        Some(t) if t.trim() == "ET" => Some(BroadcastType::GE),
        Some(t) => Some(BroadcastType::parse(t.trim()).ok_or_else(|| {
            ApiError::invalid(
                "broadcastType",
                format!("broadcastType {t:?} is not one of GT, GE (or ET), JN, SN, GA, UN"),
            )
        })?),
        // A single record is found by its id alone (the spec's third example).
        None if schedule_id.is_some() => None,
        None => return Err(ApiError::invalid("broadcastType", "broadcastType is required")),
    };
    let company_id = number::<u64>("companyId", param("companyId"))?;
    let event_id = match param("eventUUID").filter(|v| !v.trim().is_empty()) {
        None => None,
        Some(v) => Some(
            v.trim()
                .parse::<Uuid>()
                .map_err(|_| ApiError::invalid("eventUUID", format!("eventUUID {v:?} is not a UUID")))?,
        ),
    };
    let brochure_id = number::<u64>("brochureId", param("brochureId"))?;
    if schedule_id.is_none() {
        match broadcast_type {
            Some(BroadcastType::GT) if company_id.is_none() => {
                return Err(ApiError::invalid("companyId", "companyId is required when broadcastType is GT"));
            }
            _ => {}
        }
    }
    let limit = match number::<usize>("limit", param("limit"))? {
        None => None,
        Some(l @ 1..=MAX_LIMIT) => Some(l),
        Some(_) => return Err(ApiError::invalid("limit", format!("limit must be 1 to {MAX_LIMIT}"))),
    };
    let next_token = param("nextToken").filter(|t| !t.is_empty());
    if next_token.as_ref().is_some_and(|t| t.len() > 2048) {
        return Err(ApiError::invalid("nextToken", "nextToken is not a token this service issued"));
    }
    Ok(HistoryQuery { broadcast_type, company_id, event_id, schedule_id, brochure_id, limit, next_token })
}

/// One record of the answer, with the spec's names and types.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SentRecord {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub company_id: CompanyId,
    #[serde(rename = "eventUUID", skip_serializing_if = "Option::is_none")]
    pub event_uuid: Option<Uuid>,
    pub notification_schedule_id: u64,
    pub message: String,
    pub description: String,
    pub successful: bool,
    pub total_notifications_sent: u64,
    pub notification_created: i64,
    pub notification_created_by: String,
    pub notification_modified: i64,
    pub notification_modified_by: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub team_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brochure_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_params: Option<Vec<EmailParam>>,
    /// Beyond the spec: pending, sending, delivered, failed or cancelled.
    pub status: &'static str,
    /// Beyond the spec: when a cancelled notification was cancelled (milliseconds) and by whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<String>,
    /// Beyond the spec: when it was retracted (milliseconds; removed from every center) and by
    /// whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retracted: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retracted_by: Option<String>,
    /// Beyond the spec: when it was last corrected after it went out (milliseconds), by whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrected: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrected_by: Option<String>,
    /// Beyond the spec: people the fan-out planned to reach (0 until it ran).
    pub total_recipients: u64,
    /// Beyond the spec: why a notification failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Beyond the spec: per-recipient email outcomes (when an email was asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails_opted_out: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails_no_address: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails_failed: Option<u64>,
    /// Queued and not settled yet: paced to the account's SES rate, or waiting out throttling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails_pending: Option<u64>,
    /// Not mailed: the address bounced for good or complained before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails_suppressed: Option<u64>,
    /// Not mailed: the notification was retracted before the email went out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails_withdrawn: Option<u64>,
    /// SES's bounce and complaint events about this notification's emails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails_bounced: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails_complained: Option<u64>,
    /// Beyond the spec: push publishes per device.
    pub pushes_sent: u64,
    pub pushes_removed: u64,
    pub pushes_failed: u64,
    /// Beyond the spec: devices not published to because the notification was retracted first.
    pub pushes_withdrawn: u64,
}

fn truncate(s: &str, chars: usize) -> String {
    s.chars().take(chars).collect()
}

impl From<&Notification> for SentRecord {
    fn from(n: &Notification) -> Self {
        let event_uuid = match &n.audience {
            crate::model::Audience::EventTeams { event_id, .. } => Some(*event_id),
            _ => None,
        };
        SentRecord {
            kind: n.broadcast_type.as_str(),
            company_id: n.company_id,
            event_uuid,
            notification_schedule_id: n.schedule_id,
            message: truncate(&n.content.body, MESSAGE_CHARS),
            description: truncate(&n.description, DESCRIPTION_CHARS),
            successful: n.successful(),
            total_notifications_sent: n.delivered,
            notification_created: n.created_at.timestamp_millis(),
            notification_created_by: truncate(&n.created_by, USER_ID_CHARS),
            notification_modified: n.modified_at.timestamp_millis(),
            notification_modified_by: truncate(&n.modified_by, USER_ID_CHARS),
            team_ids: if n.schedule.is_some() { n.team_ids.clone() } else { Vec::new() },
            brochure_id: n.brochure_id,
            email_template: n.email.as_ref().map(|e| e.template.clone()),
            email_subject: n.email.as_ref().map(|e| e.subject.clone()),
            email_params: n.email.as_ref().map(|e| e.params.clone()),
            status: n.status.word(),
            cancelled: n.cancelled.as_ref().map(|c| c.at.timestamp_millis()),
            cancelled_by: n.cancelled.as_ref().map(|c| truncate(&c.by, USER_ID_CHARS)),
            retracted: n.retracted.as_ref().map(|c| c.at.timestamp_millis()),
            retracted_by: n.retracted.as_ref().map(|c| truncate(&c.by, USER_ID_CHARS)),
            corrected: n.corrected.as_ref().map(|c| c.at.timestamp_millis()),
            corrected_by: n.corrected.as_ref().map(|c| truncate(&c.by, USER_ID_CHARS)),
            total_recipients: n.recipients,
            failure_reason: n.failure.clone(),
            emails_sent: n.email.as_ref().map(|_| n.emails_sent),
            emails_opted_out: n.email.as_ref().map(|_| n.emails_opted_out),
            emails_no_address: n.email.as_ref().map(|_| n.emails_no_address),
            emails_failed: n.email.as_ref().map(|_| n.emails_failed),
            emails_pending: n.email.as_ref().map(|_| n.emails_pending),
            emails_suppressed: n.email.as_ref().map(|_| n.emails_suppressed),
            emails_withdrawn: n.email.as_ref().map(|_| n.emails_withdrawn),
            emails_bounced: n.email.as_ref().map(|_| n.emails_bounced),
            emails_complained: n.email.as_ref().map(|_| n.emails_complained),
            pushes_sent: n.pushes_sent,
            pushes_removed: n.pushes_removed,
            pushes_failed: n.pushes_failed,
            pushes_withdrawn: n.pushes_withdrawn,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A send's delivery log: `GET /rest/notification/sent/{notificationScheduleId}/log` (beyond the
// spec)

/// Log entries per page without `limit`, and at most.
pub const LOG_PAGE: usize = 100;

/// The log's query: `limit` (1 to `MAX_LIMIT`, `LOG_PAGE` without it) and `nextToken`.
pub fn parse_log(param: impl Fn(&str) -> Option<String>) -> Result<crate::model::PageRequest, ApiError> {
    let limit = match number::<usize>("limit", param("limit"))? {
        None => LOG_PAGE,
        Some(l @ 1..=MAX_LIMIT) => l,
        Some(_) => return Err(ApiError::invalid("limit", format!("limit must be 1 to {MAX_LIMIT}"))),
    };
    let next_token = param("nextToken").filter(|t| !t.is_empty());
    if next_token.as_ref().is_some_and(|t| t.len() > 2048) {
        return Err(ApiError::invalid("nextToken", "nextToken is not a token this service issued"));
    }
    Ok(crate::model::PageRequest::after(limit, next_token))
}

/// One entry of the log as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// When it was recorded, in milliseconds since the epoch (absent: by a version that kept
    /// none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    /// `chunkDelivered`, `emailsSettled`, `bounce`, `complaint` or `chunkRetracted` (a
    /// retraction removed the chunk's `people` entries).
    pub event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub people: Option<u64>,
    /// SES's id of the email a bounce or complaint was about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

impl From<&crate::model::LogEntry> for LogLine {
    fn from(e: &crate::model::LogEntry) -> Self {
        use crate::model::LogEvent;
        let mut line = LogLine {
            at: e.at.map(|t| t.timestamp_millis()),
            event: "",
            chunk: None,
            part: None,
            people: None,
            message_id: None,
        };
        match &e.event {
            LogEvent::ChunkDelivered { chunk, people } => {
                (line.event, line.chunk, line.people) = ("chunkDelivered", Some(*chunk), Some(*people));
            }
            LogEvent::EmailsSettled { chunk, part, people } => {
                (line.event, line.chunk, line.part, line.people) =
                    ("emailsSettled", Some(*chunk), Some(*part), Some(*people));
            }
            LogEvent::Feedback { kind, message_id } => {
                (line.event, line.message_id) = (kind.as_str(), Some(message_id.clone()));
            }
            LogEvent::ChunkRetracted { chunk, people } => {
                (line.event, line.chunk, line.people) = ("chunkRetracted", Some(*chunk), Some(*people));
            }
        }
        line
    }
}

/// A notification's delivery log as the dialects that name it by id answer it (a department
/// message, an in-app notification): `id_field` its id under the dialect's name, then `status`,
/// `delivered` (people whose entry is recorded), `chunks` (absent until the fan-out finished),
/// `chunksDelivered`, `cancelled`/`retracted` (epoch ms) when it was, the `entries` and the
/// `nextToken`.
pub fn notification_log(
    id_field: &str,
    n: &Notification,
    page: &crate::model::Page<crate::model::LogEntry>,
) -> serde_json::Value {
    let mut out = serde_json::json!({
        id_field: n.id,
        "status": if n.retracted.is_some() { "retracted" } else { n.status.word() },
        "delivered": n.delivered,
        "chunksDelivered": n.chunks_done,
        "entries": page.items.iter().map(LogLine::from).collect::<Vec<_>>(),
        "nextToken": page.next,
    });
    if let Some(total) = n.chunks_total {
        out["chunks"] = serde_json::json!(total);
    }
    if let Some(c) = &n.cancelled {
        out["cancelled"] = serde_json::json!(c.at.timestamp_millis());
    }
    if let Some(r) = &n.retracted {
        out["retracted"] = serde_json::json!(r.at.timestamp_millis());
    }
    out
}

/// The log's answer: the send's record (the history's fields, its totals per channel) and a page
/// of what its delivery recorded, chunk by chunk and job by job.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogAnswer {
    pub notification: SentRecord,
    /// Chunks the fan-out cut (absent until it finished) and those recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<u32>,
    pub chunks_delivered: u32,
    pub entries: Vec<LogLine>,
    /// More entries: pass it as `nextToken` (also in `X-Next-Token`).
    pub next_token: Option<String>,
}

impl LogAnswer {
    pub fn new(n: &Notification, page: &crate::model::Page<crate::model::LogEntry>) -> Self {
        LogAnswer {
            notification: SentRecord::from(n),
            chunks: n.chunks_total,
            chunks_delivered: n.chunks_done,
            entries: page.items.iter().map(LogLine::from).collect(),
            next_token: page.next.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn q(s: &str) -> Result<HistoryQuery, ApiError> {
        let map: HashMap<String, String> = s
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        parse(|k| map.get(k).cloned())
    }

    fn param_of(r: Result<HistoryQuery, ApiError>) -> (ErrorKind, Option<String>) {
        let e = r.unwrap_err();
        (e.kind, e.parameter)
    }

    #[test]
    fn spec_examples() {
        let gt = q("version=1&broadcastType=GT&companyId=3").unwrap();
        assert_eq!((gt.broadcast_type, gt.company_id, gt.limit), (Some(BroadcastType::GT), Some(3), None));
        let et = q("version=1&broadcastType=ET&eventUUID=ed90fcd2-cbb4-49b8-9be4-a14ccbc2d1e8").unwrap();
        assert_eq!(et.broadcast_type, Some(BroadcastType::GE));
        let one = q("version=1&notificationScheduleId=123").unwrap();
        assert_eq!((one.schedule_id, one.broadcast_type), (Some(123), None));
    }

    #[test]
    fn errors_name_the_parameter() {
        use ErrorKind::*;
        let p = |s: &str| Some(s.to_string());
        assert_eq!(param_of(q("version=2&broadcastType=GT&companyId=3")), (UnsupportedVersion, p("version")));
        assert_eq!(param_of(q("broadcastType=GT&companyId=3")), (InvalidParameter, p("version")));
        assert_eq!(param_of(q("version=x&broadcastType=GT")), (InvalidParameter, p("version")));
        assert_eq!(param_of(q("version=1")), (InvalidParameter, p("broadcastType")));
        assert_eq!(param_of(q("version=1&broadcastType=XX")), (InvalidParameter, p("broadcastType")));
        assert_eq!(param_of(q("version=1&broadcastType=GT")), (InvalidParameter, p("companyId")));
        assert_eq!(
            param_of(q("version=1&broadcastType=GT&companyId=three")),
            (InvalidParameter, p("companyId"))
        );
        // The spec's own first example: a company's GE history, no event named.
        assert_eq!(q("version=1&broadcastType=GE&companyId=3").unwrap().event_id, None);
        assert_eq!(
            param_of(q("version=1&broadcastType=GE&eventUUID=nope")),
            (InvalidParameter, p("eventUUID"))
        );
        assert_eq!(
            param_of(q("version=1&notificationScheduleId=-1")),
            (InvalidParameter, p("notificationScheduleId"))
        );
        assert_eq!(
            param_of(q("version=1&broadcastType=GA&brochureId=x")),
            (InvalidParameter, p("brochureId"))
        );
        assert_eq!(param_of(q("version=1&broadcastType=JN&limit=0")), (InvalidParameter, p("limit")));
        assert_eq!(param_of(q("version=1&broadcastType=JN&limit=501")), (InvalidParameter, p("limit")));
        assert_eq!(q("version=1&broadcastType=JN&limit=500").unwrap().limit, Some(500));
        assert_eq!(q("version=1&broadcastType=JN").unwrap().limit, None, "no limit: every record");
    }
}
