//! Sent history: what a caller may see, found through the history indexes (never a scan).

use crate::error::{ApiError, ErrorKind};
use crate::model::*;
use crate::ports::{Audiences, DeliveryLog, NotificationLookup, SentHistory};

/// What reading sent history uses (and a notification's delivery log).
pub struct HistoryDeps<'a> {
    pub(crate) history: &'a dyn SentHistory,
    pub(crate) audiences: &'a dyn Audiences,
    pub(crate) log: &'a dyn DeliveryLog,
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::InsufficientPrivileges, message)
}

/// Who may read a company's history: its admins; the event push role for event history;
/// SUPER_USER everywhere.
fn may_read(user: &User, company: CompanyId, kind: Option<BroadcastType>) -> bool {
    user.has(Role::SuperUser)
        || (user.company_id == company
            && (user.has(Role::CompanyAdmin)
                || (user.has(Role::EventPushNotification) && kind == Some(BroadcastType::GE))))
}

/// A group send's delivery log, for whoever may read its record (as `list` by its schedule id:
/// another company's, or another dialect's notification, is one that does not exist): the
/// notification with its counts, and a page of its log.
pub async fn log(
    ports: &HistoryDeps<'_>,
    user: &User,
    schedule_id: u64,
    page: &PageRequest,
) -> Result<(Notification, Page<LogEntry>), ApiError> {
    if !(user.has(Role::SuperUser) || user.has(Role::CompanyAdmin) || user.has(Role::EventPushNotification)) {
        return Err(forbidden(
            "reading a delivery log needs SUPER_USER, COMPANY_ADMIN or EVENT_PUSH_NOTIFICATION_ROLE",
        ));
    }
    let n = ports
        .history
        .record(schedule_id)
        .await?
        .filter(|n| n.origin == Origin::GroupSend && may_read(user, n.company_id, Some(n.broadcast_type)))
        .ok_or_else(|| {
            ApiError::new(ErrorKind::NotFound, format!("notificationScheduleId {schedule_id} does not exist"))
                .with_parameter("notificationScheduleId")
        })?;
    let found = log_page(ports.log, &n, page).await?;
    Ok((n, found))
}

/// What the delivery log of a department message or an in-app notification uses: the lookup
/// (who may read it: whoever may cancel it) and the log.
pub struct NotificationLogDeps<'a> {
    pub(crate) lookup: &'a dyn NotificationLookup,
    pub(crate) log: &'a dyn DeliveryLog,
}

/// The delivery log of department message `id`, for the department that sent it to `user`.
pub async fn department_log(
    ports: &NotificationLogDeps<'_>,
    department: &Department,
    user: UserId,
    id: NotificationId,
    page: &PageRequest,
) -> Result<(Notification, Page<LogEntry>), ApiError> {
    let n = super::cancel::department_message(ports.lookup, department, user, id).await?;
    let found = log_page(ports.log, &n, page).await?;
    Ok((n, found))
}

/// The delivery log of in-app notification `id`, for its sender or anyone of its tenant who may
/// notify others.
pub async fn app_log(
    ports: &NotificationLogDeps<'_>,
    reader: &User,
    id: NotificationId,
    page: &PageRequest,
) -> Result<(Notification, Page<LogEntry>), ApiError> {
    let n = super::cancel::app_notification(ports.lookup, reader, id, "reading the log of").await?;
    let found = log_page(ports.log, &n, page).await?;
    Ok((n, found))
}

/// A page of `n`'s log, its token sealed to it (a token of another's log is refused).
async fn log_page(
    log: &dyn DeliveryLog,
    n: &Notification,
    page: &PageRequest,
) -> Result<Page<LogEntry>, ApiError> {
    let bound = format!("log:{}", n.id);
    let found = log.log(n.id, &super::cursor::open(&bound, page)?).await?;
    Ok(super::cursor::seal(&bound, found))
}

/// Records answered at most for a query without `limit` (a client written from the spec never
/// pages): past it, or past `UNPAGED_BYTES` of answer, the answer carries a token for the rest.
pub const UNPAGED_MAX: usize = 2_000;
/// The answer's size a query without `limit` stops after (Lambda answers at most 6 MB).
pub const UNPAGED_BYTES: usize = 4 * 1024 * 1024;
/// Records read per store request when answering without `limit`.
const UNPAGED_PAGE: usize = 50;

/// The records the caller asked for and may see, newest first, and the token for more. Without
/// a limit, every matching record up to `UNPAGED_MAX` records or `UNPAGED_BYTES` as `weigh`
/// measures a record's answer, whichever comes first.
pub async fn list(
    ports: &HistoryDeps<'_>,
    user: &User,
    q: &HistoryQuery,
    weigh: impl Fn(&Notification) -> usize,
) -> Result<Page<Notification>, ApiError> {
    if !(user.has(Role::SuperUser) || user.has(Role::CompanyAdmin) || user.has(Role::EventPushNotification)) {
        return Err(forbidden(
            "reading sent history needs SUPER_USER, COMPANY_ADMIN or EVENT_PUSH_NOTIFICATION_ROLE",
        ));
    }
    if let Some(sid) = q.schedule_id {
        // One record; another company's is invisible, as is one of another type than asked.
        let found = ports.history.record(sid).await?.filter(|n| {
            // Sent history is the group-send API's record.
            n.origin == Origin::GroupSend
                && may_read(user, n.company_id, Some(n.broadcast_type))
                && q.broadcast_type.is_none_or(|t| t == n.broadcast_type)
        });
        return Ok(Page { items: found.into_iter().collect(), next: None });
    }
    let kind =
        q.broadcast_type.ok_or_else(|| ApiError::invalid("broadcastType", "broadcastType is required"))?;
    let scope = match kind {
        BroadcastType::GE if q.event_id.is_some() => {
            let event_id = q.event_id.unwrap_or_default();
            // Cancelled events still list their history; unknown ones are an error.
            let event = ports.audiences.event(event_id).await?.ok_or_else(|| {
                ApiError::new(ErrorKind::EventNotFound, format!("event {event_id} was not found"))
                    .with_parameter("eventUUID")
            })?;
            if !may_read(user, event.company_id, Some(kind)) {
                return Err(forbidden("that event belongs to another company").with_parameter("eventUUID"));
            }
            HistoryScope::Event { event_id }
        }
        BroadcastType::GA if q.brochure_id.is_some() => {
            let brochure_id = q.brochure_id.unwrap_or_default();
            let company = match ports.audiences.asset(brochure_id).await? {
                Some(asset) => asset.company_id,
                None => {
                    return Err(ApiError::invalid(
                        "brochureId",
                        format!("asset {brochure_id} does not exist"),
                    ));
                }
            };
            if !may_read(user, company, Some(kind)) {
                return Err(forbidden("that asset belongs to another company").with_parameter("brochureId"));
            }
            HistoryScope::Asset { brochure_id }
        }
        _ => {
            let company_id = q.company_id.unwrap_or(user.company_id);
            if !may_read(user, company_id, Some(kind)) {
                let err = if user.company_id != company_id {
                    forbidden(format!("you may not read company {company_id}'s notifications"))
                        .with_parameter("companyId")
                } else {
                    forbidden("your roles do not allow reading this history")
                };
                return Err(err);
            }
            HistoryScope::CompanyType { company_id, broadcast_type: kind }
        }
    };
    let bound = format!("history:{scope:?}");
    if let Some(limit) = q.limit {
        let page = super::cursor::open(&bound, &PageRequest::after(limit, q.next_token.clone()))?;
        return Ok(super::cursor::seal(&bound, ports.history.history(&scope, &page).await?));
    }
    // Page by page, stopping at a page's end so that the token continues exactly there.
    let mut page = super::cursor::open(&bound, &PageRequest::after(UNPAGED_PAGE, q.next_token.clone()))?;
    let (mut items, mut bytes) = (Vec::new(), 0);
    loop {
        let found = ports.history.history(&scope, &page).await?;
        bytes += found.items.iter().map(&weigh).sum::<usize>();
        items.extend(found.items);
        match found.next {
            Some(next) if items.len() < UNPAGED_MAX && bytes < UNPAGED_BYTES => {
                page = PageRequest::after(UNPAGED_PAGE.min(UNPAGED_MAX - items.len()), Some(next));
            }
            next => return Ok(super::cursor::seal(&bound, Page { items, next })),
        }
    }
}
