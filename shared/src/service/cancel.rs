//! A sender stops what it sent: who may cancel which notification in each dialect, and what a
//! cancel answers. The store decides (`SendControl::cancel`: one conditional write against
//! every chunk's start): an unfinished notification is cancelled, and the answer says exactly
//! how many people it reached (the people of the chunks that started before it, who have it or
//! are being given it; nobody else ever gets it); a finished one is a conflict naming its state
//! (`delivered`, `failed`); a repeated cancel answers what the first did. Emails and pushes of
//! the chunks that started go out with them: they are part of reaching those people.
//!
//! A notification a caller may not see is answered as one that does not exist (another tenant's,
//! another dialect's, another department's): nobody learns which ids exist.

use crate::error::{ApiError, ErrorKind};
use crate::model::*;
use crate::ports::{CancelOutcome, Clock, NotificationLookup, SendControl};

/// What cancelling uses: the notification's lookup (to check who may), the store's cancel, the
/// clock.
pub struct CancelDeps<'a> {
    pub(crate) lookup: &'a dyn NotificationLookup,
    pub(crate) control: &'a dyn SendControl,
    pub(crate) clock: &'a dyn Clock,
    /// Its `notification.cancelled` event.
    pub(crate) hooks: super::webhooks::EmitDeps<'a>,
}

/// What a cancel answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    pub notification_id: NotificationId,
    pub schedule_id: u64,
    pub cancellation: Cancellation,
    /// People who have it or are being given it (their chunk started before the cancel); nobody
    /// else ever gets it.
    pub reached: u64,
    /// An earlier cancel did it; this one answers the same.
    pub repeated: bool,
}

/// A 404 naming the id the caller gave: what it may not see is answered the same.
pub(crate) fn not_found(parameter: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("{parameter} {what} does not exist")).with_parameter(parameter)
}

/// Cancels a group send by its schedule id, for a caller who may send it (`send::authorize`:
/// the spec's roles for its company and type).
pub async fn group_send(deps: &CancelDeps<'_>, user: &User, schedule_id: u64) -> Result<Cancelled, ApiError> {
    let n = group_send_of(deps.lookup, user, schedule_id).await?;
    cancel(deps, &n, &user.number.to_string(), SCHEDULE_ID).await
}

pub(crate) const SCHEDULE_ID: &str = "notificationScheduleId";

/// The group send `schedule_id` names, if `user` may send it (its cancel and its change): another
/// company's, or another dialect's notification, is one that does not exist.
pub(crate) async fn group_send_of(
    lookup: &dyn NotificationLookup,
    user: &User,
    schedule_id: u64,
) -> Result<Notification, ApiError> {
    let n = lookup
        .get_by_schedule_id(schedule_id)
        .await?
        .filter(|n| n.origin == Origin::GroupSend)
        // Another company's is invisible, unless the caller may send anywhere.
        .filter(|n| n.company_id == user.company_id || user.has(Role::SuperUser))
        .ok_or_else(|| not_found(SCHEDULE_ID, schedule_id))?;
    super::send::authorize(user, n.company_id, n.broadcast_type)?;
    crate::trace::about(n.id, n.origin_request.as_deref());
    Ok(n)
}

/// Cancels a department notify by its message UUID, for the department that sent it, to the
/// user of the path.
pub async fn department(
    deps: &CancelDeps<'_>,
    department: &Department,
    user: UserId,
    id: NotificationId,
) -> Result<Cancelled, ApiError> {
    let n = department_message(deps.lookup, department, user, id).await?;
    cancel(deps, &n, &department_by(department), DEPARTMENT_MESSAGE).await
}

pub(crate) const DEPARTMENT_MESSAGE: &str = "notificationMessageUUID";
pub(crate) const APP_NOTIFICATION: &str = "NotificationId";

/// Who a department's cancel (or retraction, or correction) is recorded as: its client id, as
/// long as a user number may be.
pub(crate) fn department_by(department: &Department) -> String {
    department.client_id.chars().take(15).collect()
}

/// The department message `id`, if `department` sent it to `user` (its cancel, its log): any
/// other notification is one that does not exist.
pub(crate) async fn department_message(
    lookup: &dyn NotificationLookup,
    department: &Department,
    user: UserId,
    id: NotificationId,
) -> Result<Notification, ApiError> {
    let sent_by = |n: &Notification| {
        n.department_id.or(n.callback.as_ref().map(|c| c.department_id)) == Some(department.id)
    };
    let n = lookup
        .get(id)
        .await?
        .filter(|n| n.origin == Origin::DepartmentNotify && n.company_id == department.company_id)
        .filter(|n| sent_by(n))
        .filter(|n| matches!(&n.audience, Audience::Users { user_ids } if user_ids == &[user]))
        .ok_or_else(|| not_found(DEPARTMENT_MESSAGE, id))?;
    crate::trace::about(n.id, n.origin_request.as_deref());
    Ok(n)
}

/// Cancels an in-app notification by its `NotificationId`: its sender may, with the privilege
/// to send (`notify::app_sender`); anyone of its tenant who may notify others (the Create
/// privilege at Global level) may too.
pub async fn app(deps: &CancelDeps<'_>, sender: &User, id: NotificationId) -> Result<Cancelled, ApiError> {
    let n = app_notification(deps.lookup, sender, id, "cancelling").await?;
    cancel(deps, &n, &sender.number.to_string(), APP_NOTIFICATION).await
}

/// The in-app notification `id`, if `sender` may act on it (`what`: its cancel, its log): its
/// sender, with the privilege to send, or anyone of its tenant who may notify others; another
/// tenant's, or another dialect's, is one that does not exist.
pub(crate) async fn app_notification(
    lookup: &dyn NotificationLookup,
    sender: &User,
    id: NotificationId,
    what: &str,
) -> Result<Notification, ApiError> {
    super::notify::app_sender(sender)?;
    let n = lookup
        .get(id)
        .await?
        .filter(|n| n.origin == Origin::AppNotification && n.company_id == sender.company_id)
        .ok_or_else(|| not_found(APP_NOTIFICATION, id))?;
    let own = n.created_by == sender.number.to_string();
    if !own && !sender.has(Role::CreateAppNotificationGlobal) {
        return Err(ApiError::new(
            ErrorKind::InsufficientPrivileges,
            format!("{what} another user's notification needs the Create privilege on app notifications at Global level"),
        )
        .with_parameter(APP_NOTIFICATION));
    }
    crate::trace::about(n.id, n.origin_request.as_deref());
    Ok(n)
}

async fn cancel(
    deps: &CancelDeps<'_>,
    n: &Notification,
    by: &str,
    parameter: &str,
) -> Result<Cancelled, ApiError> {
    match deps.control.cancel(n.id, by, deps.clock.now()).await? {
        CancelOutcome::Cancelled { cancellation, reached, now } => {
            if now {
                tracing::info!(notification = %n.id, reached, by, "cancelled");
            }
            // Its event, on a repeat too (one whose settle failed is settled by the repeat).
            if n.hooks
                && let Some(cancelled) = deps.lookup.get(n.id).await?
            {
                super::webhooks::settle(&deps.hooks, &cancelled).await;
            }
            Ok(Cancelled {
                notification_id: n.id,
                schedule_id: n.schedule_id,
                cancellation,
                reached,
                repeated: !now,
            })
        }
        CancelOutcome::Finished(status) => Err(ApiError::new(
            ErrorKind::Conflict,
            format!("the notification is {} already: there is nothing left to cancel", status.word()),
        )
        .with_parameter(parameter)
        .with_state(status.word())),
        CancelOutcome::Ungated(status) => Err(ApiError::new(
            ErrorKind::Conflict,
            "the notification is going out, sent before this service could count whom a cancel stops it short of: \
             it goes on; a notification sent since can be cancelled while it goes out",
        )
        .with_parameter(parameter)
        .with_state(status.word())),
        CancelOutcome::Missing => Err(not_found(parameter, n.id)),
    }
}
