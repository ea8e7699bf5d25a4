//! A sender changes a group send that has not gone out yet: its message, its url, its schedule
//! (time and zone, with the send's rules: a time already past sends it now). Who may: as for its
//! cancel (`cancel::group_send_of`). The rules: only while it is pending (its fan-out not
//! started: after that, 409 naming its state); one conditional write on the revision it read,
//! so that two changes at once both land or one is read again (never one lost); a changed message
//! or url passes the dialect's own check (`check`: the message and the url as the caller wrote
//! it, without the campaign tag the send adds) before anything is written, and a url changed
//! carries the send's campaign tag again. Only a scheduled send's schedule changes (one sent ad
//! hoc is going out). A send moved to now is queued for fan-out at once, not left for the next
//! tick.

use super::intake::{self, StoreDeps};
use crate::error::{ApiError, ErrorKind};
use crate::model::*;
use crate::ports::{ChangeOutcome, Clock, NotificationLookup, SendControl};

/// What changing uses: the lookup, the store's conditional change, the clock, and intake's
/// queueing of a fan-out (a send moved to now).
pub struct ChangeDeps<'a> {
    pub(crate) lookup: &'a dyn NotificationLookup,
    pub(crate) control: &'a dyn SendControl,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) store: StoreDeps<'a>,
}

/// Reads of a send changed by other requests meanwhile before this one gives up (409).
const TRIES: usize = 3;

/// Changes group send `schedule_id` for `user`: the changed notification.
pub async fn group_send(
    deps: &ChangeDeps<'_>,
    user: &User,
    schedule_id: u64,
    change: &SendChange,
    check: impl Fn(&str, Option<&str>) -> Result<(), ApiError>,
) -> Result<Notification, ApiError> {
    const PARAMETER: &str = "notificationScheduleId";
    for _ in 0..TRIES {
        let n = super::cancel::group_send_of(deps.lookup, user, schedule_id).await?;
        if n.status != Status::Pending {
            return Err(too_late(n.status, PARAMETER));
        }
        if change.schedule.is_some() && n.schedule.is_none() {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                "the send was not scheduled: it is going out now, and only a scheduled send's time changes",
            )
            .with_parameter("scheduleTimezoneId")
            .with_state(n.status.word()));
        }
        if change.message.is_some() || change.url.is_some() {
            let message = change.message.as_deref().unwrap_or(&n.content.body);
            let url = match &change.url {
                Some(url) => url.clone(),
                None => n.content.url.as_deref().map(|u| untagged(u, n.campaign_tag_id)),
            };
            check(message, url.as_deref())?;
        }
        let now = deps.clock.now();
        let changed = applied(&n, change, &user.number.to_string(), now);
        match deps.control.change(&changed, n.revision).await? {
            ChangeOutcome::Changed => {
                // Moved to now from later: its fan-out goes at once (a send that was due
                // already has its job, or the tick's).
                if changed.due_at <= now && n.due_at > now {
                    intake::enqueue_fanout(&deps.store, n.id).await;
                }
                tracing::info!(notification = %n.id, schedule_id, revision = changed.revision, "pending send changed");
                return Ok(changed);
            }
            ChangeOutcome::NotPending(status) => return Err(too_late(status, PARAMETER)),
            ChangeOutcome::Missing => return Err(super::cancel::not_found(PARAMETER, schedule_id)),
            ChangeOutcome::Stale => continue,
        }
    }
    Err(ApiError::new(ErrorKind::Conflict, "the send was changed by other requests meanwhile; try again")
        .with_parameter(PARAMETER))
}

/// A stored url without the campaign tag its send added (`send::tagged`).
pub(crate) fn untagged(url: &str, tag: Option<u64>) -> String {
    let Some(tag) = tag else { return url.to_string() };
    ['?', '&']
        .iter()
        .find_map(|sep| url.strip_suffix(&format!("{sep}campaignTagId={tag}")))
        .unwrap_or(url)
        .to_string()
}

fn too_late(status: Status, parameter: &str) -> ApiError {
    ApiError::new(
        ErrorKind::Conflict,
        format!("the send is {} already: it can be changed only before it starts going out", status.word()),
    )
    .with_parameter(parameter)
    .with_state(status.word())
}

/// `n` with `change` made to it at `now` by `by`: the message, the url, the schedule (a time
/// already past is due now; the job name, when the change gives none, stays).
pub(crate) fn applied(
    n: &Notification,
    change: &SendChange,
    by: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Notification {
    let mut changed = n.clone();
    if let Some(message) = &change.message {
        changed.content.body = message.clone();
    }
    if let Some(url) = &change.url {
        changed.content.url = match (url, n.campaign_tag_id) {
            (Some(u), Some(tag)) => Some(super::send::tagged(u, tag)),
            (u, _) => u.clone(),
        };
    }
    if let Some(request) = &change.schedule {
        let job_name = request
            .schedule
            .job_name
            .clone()
            .or_else(|| n.schedule.as_ref().and_then(|s| s.job_name.clone()));
        // A scheduled send's description is its job name (the spec's ad hoc sends: their teams).
        if n.schedule.is_some() && job_name.is_some() {
            changed.description = job_name.clone().unwrap_or_default();
        }
        changed.schedule = Some(Schedule { job_name, ..request.schedule.clone() });
        changed.due_at = request.at.max(now);
    }
    changed.modified_at = now;
    changed.modified_by = by.to_string();
    changed.revision = n.revision + 1;
    changed
}
