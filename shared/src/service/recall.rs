//! A sender takes back or corrects a notification that went out.
//!
//! - **Retract**: one conditional write records who and when (`SendControl::retract`: only once
//!   it is out, delivered, failed or cancelled, so the chunks that started are fixed; and it
//!   closes the gate, so none starts after); then, in the background, each chunk that started
//!   is closed for good (no attempt writes an entry of it again: `RecallLedger::close_chunk`,
//!   waited for while an attempt holds it), the entries of the people it kept removed by key (no
//!   read per entry, a write unit each, as their delivery), their open pages told
//!   (`retracted`), and the chunk's removal recorded in the delivery log. A step done again finds
//!   its chunk recorded and does nothing; a repeated retract plans nothing (the tick plans what is
//!   left, below). A notification cut into one chunk is finished by its step. A
//!   retraction stays registered unfinished until a plan finds every chunk done: the scheduler's
//!   tick plans it again (`sweep`) should its first plan not have been queued or a step be lost.
//! - **Correct**: one conditional write replaces the content (message and url) on the
//!   notification, on the revision it read; the content every center joins, stored once, is
//!   written again from it before the answer (so every center shows it at once and each person's
//!   state of it stays theirs; of two corrections written out of order the later revision stays:
//!   `InboxDelivery::correct_content`), then each chunk's people with open pages are told
//!   (`corrected`).
//!
//! Emails and pushes already sent cannot be recalled: the answers say so. What a retraction
//! stops is what had not gone out: no chunk starts after it, and the email and push jobs still
//! queued send nothing (`Notification::retracted`).
//!
//! Where: the request (the send function) decides and queues the plan on the fan-out queue;
//! the plan (the fan-out function, `plan`) puts one step per chunk on the delivery queue; each
//! step (the deliver function, `attempt`) does one chunk, as a chunk's delivery does.

use super::deadline::Deadline;
use super::deliver::{DeliverError, dead_letter_again, inbox_content, inbox_entry};
use super::receive::Attempt;
use crate::error::{ApiError, ErrorKind, StoreError};
use crate::model::*;
use crate::ports::{
    Clock, CorrectOutcome, InboxDelivery, NotificationLookup, Queue, Realtime, RecallLedger, RetractOutcome,
    SendControl,
};

/// What a sender's retraction or correction uses: the lookup (who may), the store's
/// conditional writes, the content a correction writes again, the fan-out queue the plan goes
/// to, the clock.
pub struct RecallDeps<'a> {
    pub(crate) lookup: &'a dyn NotificationLookup,
    pub(crate) control: &'a dyn SendControl,
    /// The content every center joins, written again by a correction.
    pub(crate) inbox: &'a dyn InboxDelivery,
    pub(crate) fanout_queue: &'a dyn Queue,
    pub(crate) clock: &'a dyn Clock,
    /// Its `notification.retracted` event.
    pub(crate) hooks: super::webhooks::EmitDeps<'a>,
}

/// What planning a recall uses (the fan-out function): the notification, its started chunks,
/// the content it writes again (a correction), the delivery queue its steps go to, the clock (a
/// retraction's next look).
pub struct PlanDeps<'a> {
    pub(crate) lookup: &'a dyn NotificationLookup,
    pub(crate) recall: &'a dyn RecallLedger,
    pub(crate) inbox: &'a dyn InboxDelivery,
    pub(crate) delivery_queue: &'a dyn Queue,
    pub(crate) clock: &'a dyn Clock,
    /// The retraction's event, settled again by each plan (one the request could not queue).
    pub(crate) hooks: super::webhooks::EmitDeps<'a>,
}

/// What a recall's step uses (the deliver function): the notification, the chunk's lease and
/// lists, the entries it removes, the open pages it tells, the clock, and the delivery queue a
/// step waiting for a busy chunk is handed to, after the waits of a chunk's hand-overs.
pub struct StepDeps<'a> {
    pub(crate) lookup: &'a dyn NotificationLookup,
    pub(crate) recall: &'a dyn RecallLedger,
    pub(crate) inbox: &'a dyn InboxDelivery,
    pub(crate) realtime: &'a dyn Realtime,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) chunks: &'a dyn Queue,
    pub(crate) hand_overs: crate::backoff::Backoff,
}

/// Puts the plan of a recall of `id` on the fan-out queue.
async fn queue_plan(fanout_queue: &dyn Queue, id: NotificationId, recall: Recall) -> Result<(), StoreError> {
    let job = FanoutJob { notification_id: id, recall: Some(recall) };
    let body = serde_json::to_string(&job).map_err(|e| StoreError::Other(e.to_string()))?;
    crate::trace::within(crate::trace::Trace::notification(id, None), fanout_queue.send_all(&[body])).await
}

/// What every dialect's retraction and correction answers say of what went out by email and push.
pub const NOT_RECALLED: &str = "emails and pushes already sent cannot be recalled";

/// What a retraction answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retracted {
    pub notification_id: NotificationId,
    pub schedule_id: u64,
    pub retraction: Cancellation,
    /// People in the chunks that started: their entries are being removed.
    pub reached: u64,
    /// Emails and pushes that went out: not recalled.
    pub emails_sent: u64,
    pub pushes_sent: u64,
    /// An earlier retraction did it; this one answers the same.
    pub repeated: bool,
}

/// A notification a sender names to retract or correct, as its dialect names it: who may act on
/// it is who may cancel it (`cancel`'s rules), and a refusal names the dialect's parameter.
#[derive(Debug, Clone, Copy)]
pub enum Recalled<'a> {
    /// A group send by its schedule id, for a caller who may send it.
    GroupSend { user: &'a User, schedule_id: u64 },
    /// A department message by its UUID, for the department that sent it, to the path's user.
    Department { department: &'a Department, user: UserId, id: NotificationId },
    /// An in-app notification by its `NotificationId`, for its sender or whoever of its tenant
    /// may notify others.
    App { sender: &'a User, id: NotificationId },
}

impl Recalled<'_> {
    /// The notification, if the caller may act on it (`what`: "retracting", "correcting").
    async fn find(&self, lookup: &dyn NotificationLookup, what: &str) -> Result<Notification, ApiError> {
        match *self {
            Recalled::GroupSend { user, schedule_id } => {
                super::cancel::group_send_of(lookup, user, schedule_id).await
            }
            Recalled::Department { department, user, id } => {
                super::cancel::department_message(lookup, department, user, id).await
            }
            Recalled::App { sender, id } => super::cancel::app_notification(lookup, sender, id, what).await,
        }
    }

    /// Who is recorded as doing it (as its cancel records).
    fn by(&self) -> String {
        match *self {
            Recalled::GroupSend { user, .. } | Recalled::App { sender: user, .. } => user.number.to_string(),
            Recalled::Department { department, .. } => super::cancel::department_by(department),
        }
    }

    /// The parameter naming it.
    fn parameter(&self) -> &'static str {
        match self {
            Recalled::GroupSend { .. } => super::cancel::SCHEDULE_ID,
            Recalled::Department { .. } => super::cancel::DEPARTMENT_MESSAGE,
            Recalled::App { .. } => super::cancel::APP_NOTIFICATION,
        }
    }

    /// A 404 naming what the caller gave.
    fn not_found(&self) -> ApiError {
        match *self {
            Recalled::GroupSend { schedule_id, .. } => {
                super::cancel::not_found(self.parameter(), schedule_id)
            }
            Recalled::Department { id, .. } | Recalled::App { id, .. } => {
                super::cancel::not_found(self.parameter(), id)
            }
        }
    }
}

/// Retracts group send `schedule_id` for a caller who may send it (as its cancel).
pub async fn retract_group_send(
    deps: &RecallDeps<'_>,
    user: &User,
    schedule_id: u64,
) -> Result<Retracted, ApiError> {
    retract(deps, &Recalled::GroupSend { user, schedule_id }).await
}

/// Retracts `target` from every center it reached: recorded at once, removed in the background.
pub async fn retract(deps: &RecallDeps<'_>, target: &Recalled<'_>) -> Result<Retracted, ApiError> {
    let n = target.find(deps.lookup, "retracting").await?;
    let (by, parameter) = (target.by(), target.parameter());
    match deps.control.retract(n.id, &by, deps.clock.now()).await? {
        RetractOutcome::Retracted { retraction, reached, now } => {
            // Planned by the retraction that recorded it only: a repeat (a client's retry) while
            // its steps run would queue each chunk's step again, and two copies of a step both
            // delete. A plan not queued is no failure: the retraction is registered unfinished,
            // and the scheduler's tick plans what is left (`sweep`).
            if now {
                if let Err(e) = queue_plan(deps.fanout_queue, n.id, Recall::Retract).await {
                    tracing::warn!(notification = %n.id, error = %e, "retraction's plan not queued: the tick plans it");
                }
                tracing::info!(notification = %n.id, reached, by, "retracted");
            }
            if n.hooks
                && let Some(retracted) = deps.lookup.get(n.id).await?
            {
                super::webhooks::settle(&deps.hooks, &retracted).await;
            }
            Ok(Retracted {
                notification_id: n.id,
                schedule_id: n.schedule_id,
                retraction,
                reached,
                emails_sent: n.emails_sent,
                pushes_sent: n.pushes_sent,
                repeated: !now,
            })
        }
        RetractOutcome::NotOut(Status::Pending) => Err(ApiError::new(
            ErrorKind::Conflict,
            "the notification has not gone out: cancel it instead (nobody has it yet)",
        )
        .with_parameter(parameter)
        .with_state(Status::Pending.word())),
        RetractOutcome::NotOut(status) => Err(ApiError::new(
            ErrorKind::Conflict,
            "the notification is going out: cancel it first (no more chunks start), then retract it",
        )
        .with_parameter(parameter)
        .with_state(status.word())),
        RetractOutcome::Unrecorded(status) => Err(ApiError::new(
            ErrorKind::Conflict,
            "the notification was delivered before this service kept whom each chunk reached: it cannot be retracted \
             (it leaves the centers when it expires)",
        )
        .with_parameter(parameter)
        .with_state(status.word())),
        RetractOutcome::Missing => Err(target.not_found()),
    }
}

/// Reads of a notification changed by other requests meanwhile before a correction gives up
/// (409).
const TRIES: usize = 3;

/// Corrects group send `schedule_id` for `user`: its message and url (`correction`'s; its
/// schedule is refused by the dialect), checked by `check` as a send's (the url as the caller
/// wrote it; stored with the send's campaign tag again); the corrected notification.
pub async fn correct_group_send(
    deps: &RecallDeps<'_>,
    user: &User,
    schedule_id: u64,
    correction: &SendChange,
    check: impl Fn(&str, Option<&str>) -> Result<(), ApiError>,
) -> Result<Notification, ApiError> {
    correct_with(deps, &Recalled::GroupSend { user, schedule_id }, |n| {
        let message = correction.message.as_deref().unwrap_or(&n.content.body);
        let url = match &correction.url {
            Some(url) => url.clone(),
            None => n.content.url.as_deref().map(|u| super::change::untagged(u, n.campaign_tag_id)),
        };
        check(message, url.as_deref())?;
        let by = n.modified_by.clone();
        Ok(super::change::applied(n, correction, &by, n.modified_at).content)
    })
    .await
}

/// Corrects `target` (a department message, an in-app notification): the fields `correction`
/// gives (checked by its dialect) replace what every center shows; the corrected notification.
pub async fn correct(
    deps: &RecallDeps<'_>,
    target: &Recalled<'_>,
    correction: &ContentCorrection,
) -> Result<Notification, ApiError> {
    correct_with(deps, target, |n| Ok(correction.applied_to(&n.content))).await
}

/// The correction of `target` whose content `content` makes of the notification as read: one
/// conditional write on the revision read (read again when another request changed it), the
/// plan queued, the content every center joins written before the answer.
async fn correct_with(
    deps: &RecallDeps<'_>,
    target: &Recalled<'_>,
    content: impl Fn(&Notification) -> Result<Content, ApiError>,
) -> Result<Notification, ApiError> {
    for _ in 0..TRIES {
        let n = target.find(deps.lookup, "correcting").await?;
        if let Some(refused) = not_correctable(&n, target) {
            return Err(refused);
        }
        let now = deps.clock.now();
        let by = target.by();
        let mut changed = n.clone();
        changed.content = content(&n)?;
        changed.modified_at = now;
        changed.modified_by = by.clone();
        changed.revision = n.revision + 1;
        changed.corrected = Some(Cancellation { at: now, by });
        match deps.control.correct(&changed, n.revision).await? {
            CorrectOutcome::Corrected => {
                // The plan first (it writes the content again from the notification, conditional
                // on its revision): a request that fails after its conditional write still
                // reaches the centers through it.
                let queued = queue_plan(deps.fanout_queue, n.id, Recall::Correct).await;
                if let Err(e) = &queued {
                    tracing::warn!(notification = %n.id, error = %e, "correction's plan not queued");
                }
                // Every center shows it once this is written; a failure here is the answer's when
                // no plan will write it either (the caller corrects again: the same text lands).
                match deps.inbox.correct_content(&inbox_content(&changed), changed.revision).await {
                    Ok(()) => {}
                    Err(e) if queued.is_err() => return Err(e.into()),
                    Err(e) => {
                        tracing::warn!(notification = %n.id, error = %e, "corrected content not written: its plan writes it")
                    }
                }
                tracing::info!(notification = %n.id, revision = changed.revision, "corrected");
                return Ok(changed);
            }
            CorrectOutcome::Stale => continue,
            CorrectOutcome::Missing => return Err(target.not_found()),
            // Read again: the refusal names what it is now.
            CorrectOutcome::NotOut(_) | CorrectOutcome::Retracted => {}
        }
    }
    Err(ApiError::new(
        ErrorKind::Conflict,
        "the notification was changed by other requests meanwhile; try again",
    )
    .with_parameter(target.parameter()))
}

/// Why `n` cannot be corrected now, if it cannot.
fn not_correctable(n: &Notification, target: &Recalled<'_>) -> Option<ApiError> {
    let pending = match target {
        Recalled::GroupSend { .. } => "the send has not gone out: change it instead (PATCH)",
        _ => "the notification has not gone out: cancel it and send it again",
    };
    let (why, state) = match n.status {
        _ if n.retracted.is_some() => {
            ("the notification was retracted: there is nothing left to correct", "retracted")
        }
        Status::Pending => (pending, n.status.word()),
        Status::FanningOut => {
            ("the notification is being cut into chunks: correct it in a moment", n.status.word())
        }
        _ => return None,
    };
    Some(ApiError::new(ErrorKind::Conflict, why).with_parameter(target.parameter()).with_state(state))
}

/// Steps queued per SendMessageBatch (the SQS maximum).
const STEPS_PER_BATCH: usize = 10;

/// The plan of a recall of `id`: one step per chunk that may hold entries (those that started,
/// and every chunk the fan-out cut: a lease expires before a long-lived notification does), on
/// the delivery queue; a retraction's chunks recorded done are left out. A correction writes the
/// content every center joins again first, from the notification as it is now (so that a
/// request cut short after its write still reaches the centers). The number of steps queued.
pub async fn plan(deps: &PlanDeps<'_>, id: NotificationId, recall: Recall) -> Result<usize, StoreError> {
    // In its notification's trace (the sweep's has none: its record names its request).
    crate::trace::within(crate::trace::Trace::notification(id, None), Box::pin(plan_now(deps, id, recall)))
        .await
}

async fn plan_now(deps: &PlanDeps<'_>, id: NotificationId, recall: Recall) -> Result<usize, StoreError> {
    let Some(n) = deps.lookup.get(id).await? else {
        if recall == Recall::Retract {
            deps.recall.recheck(id, None).await?;
        }
        return Ok(0);
    };
    crate::trace::about(id, n.origin_request.as_deref());
    if recall == Recall::Retract && !super::webhooks::settle(&deps.hooks, &n).await {
        // The plan's job comes back (its steps are not queued yet), and settles them then.
        return Err(StoreError::Transient(format!("{id}: the retraction's status event is not settled yet")));
    }
    match recall {
        Recall::Retract if n.retracted.is_none() => return Ok(0),
        Recall::Correct if n.retracted.is_some() => return Ok(0),
        Recall::Correct => deps.inbox.correct_content(&inbox_content(&n), n.revision).await?,
        Recall::Retract => {}
    }
    let cut = n.chunks_total.unwrap_or(0).max(n.fanout.chunks_enqueued);
    let mut chunks: Vec<u32> = deps.recall.started_chunks(id).await?;
    chunks.extend(0..cut);
    // The one chunk that keeps no list (named people's first): its people are the ones named.
    if !n.keeps_list(0) {
        chunks.push(0);
    }
    // A fan-out that never finished (cancelled, given up) may have queued a last batch it never
    // counted, whose leases expire before long-lived entries do: their lists say which.
    if n.chunks_total.is_none() {
        chunks.extend(deps.recall.kept_chunks(id).await?);
    }
    chunks.sort_unstable();
    chunks.dedup();
    if recall == Recall::Retract {
        let done: std::collections::HashSet<u32> =
            deps.recall.retracted_chunks(id).await?.into_iter().collect();
        chunks.retain(|c| !done.contains(c));
        // Finished when every chunk is done; else looked at again later, in case a step is lost.
        let next =
            (!chunks.is_empty()).then(|| deps.clock.now() + chrono::Duration::seconds(RECHECK_SECONDS));
        deps.recall.recheck(id, next).await?;
    }
    let bodies: Vec<String> = chunks
        .iter()
        .map(|&chunk| RecallStep { notification_id: id, chunk, recall, hand_overs: None })
        .map(|step| serde_json::to_string(&step).map_err(|e| StoreError::Other(e.to_string())))
        .collect::<Result<_, _>>()?;
    for batch in bodies.chunks(STEPS_PER_BATCH) {
        deps.delivery_queue.send_all(batch).await?;
    }
    tracing::info!(notification = %id, ?recall, steps = bodies.len(), "recall planned");
    Ok(bodies.len())
}

/// How long after a retraction (and after each of its plans) it is looked at again while a chunk
/// is not done (`ports::RETRACTION_RECHECK_SECONDS`).
pub const RECHECK_SECONDS: i64 = crate::ports::RETRACTION_RECHECK_SECONDS;

/// Retractions a tick reads at once (a page: it reads the next when these are planned).
const SWEEP_LIMIT: usize = 20;

/// The scheduler's tick: plans again every retraction not known to be finished whose look is
/// due (its first plan was never queued, or a step was lost); each plan queues only the chunks
/// not done, and finishes the retraction when none is left. The retractions planned.
pub async fn sweep(deps: &PlanDeps<'_>, deadline: Deadline) -> Result<usize, StoreError> {
    let mut planned = 0;
    let mut seen = std::collections::HashSet::new();
    // Page after page of the due ones (each plan moves its retraction's next look on, or
    // finishes it), until none is due or the deadline nears: a backlog is worked off at the pace
    // a tick allows, not a fixed number a minute.
    'pages: while deadline.allows(deps.clock.now(), super::fanout::MARGIN) {
        let due = deps.recall.unfinished(deps.clock.now(), SWEEP_LIMIT).await?;
        // One whose next look could not be moved comes back: looked at once a tick.
        let fresh: Vec<NotificationId> = due.into_iter().filter(|id| seen.insert(*id)).collect();
        if fresh.is_empty() {
            break;
        }
        for id in &fresh {
            // A plan reads and queues much for a broadcast: none starts near the deadline (the
            // next tick takes the rest).
            if !deadline.allows(deps.clock.now(), super::fanout::MARGIN) {
                break 'pages;
            }
            match plan(deps, *id, Recall::Retract).await {
                Ok(_) => planned += 1,
                // One that fails is looked at again later; the others go on.
                Err(e) => {
                    tracing::warn!(notification = %id, error = %e, "retraction not planned; looked at again later");
                    let later = deps.clock.now() + chrono::Duration::seconds(RECHECK_SECONDS);
                    if let Err(e) = deps.recall.recheck(*id, Some(later)).await {
                        tracing::warn!(notification = %id, error = %e, "retraction's next look not moved");
                    }
                }
            }
        }
    }
    Ok(planned)
}

/// A delivery-queue message that is a recall's step (`None`: a chunk or push job).
pub fn parse_step(body: &str) -> Option<RecallStep> {
    // Only a body naming `recall` is one: any other shape is a chunk's to parse (and refuse).
    if !body.contains("\"recall\"") {
        return None;
    }
    serde_json::from_str(body).ok()
}

/// What a step came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Done: `people` of the chunk were handled (their entries removed, or their pages told).
    Done { people: usize },
    /// Nothing to do (the notification is gone, or the recall no longer applies).
    Nothing,
    /// An attempt holds the chunk (it may be writing entries): try again after it.
    Busy,
    /// The invocation's deadline came before its deletes ended: go on in a new message.
    OutOfTime,
}

/// One chunk's part of a recall, as `attempt` runs it.
pub async fn step(
    ports: &StepDeps<'_>,
    step: &RecallStep,
    deadline: Deadline,
) -> Result<StepOutcome, StoreError> {
    let id = step.notification_id;
    let Some(n) = ports.lookup.get(id).await? else { return Ok(StepOutcome::Nothing) };
    crate::trace::about(id, n.origin_request.as_deref());
    let now = ports.clock.now();
    match step.recall {
        Recall::Retract if n.retracted.is_none() => return Ok(StepOutcome::Nothing),
        Recall::Correct if n.retracted.is_some() => return Ok(StepOutcome::Nothing),
        // Done before (a copy of this step, or a plan that ran again): nothing more to do.
        Recall::Retract if ports.recall.chunk_retracted(id, step.chunk).await? => {
            return Ok(StepOutcome::Nothing);
        }
        // Closed before anything is read: no attempt writes an entry of it after this, so the
        // people kept now are all who can have one.
        Recall::Retract if !ports.recall.close_chunk(id, step.chunk, now).await? => {
            return Ok(StepOutcome::Busy);
        }
        _ => {}
    }
    let people = people_of(ports.recall, &n, step.chunk).await?;
    let cursor = now.timestamp_millis();
    let event = match step.recall {
        Recall::Retract => {
            let entries: Vec<InboxEntry> = people.iter().map(|u| inbox_entry(&n, *u, now)).collect();
            // Bounded as a chunk's writes: cut off, the step goes on in a new message (deleting
            // again what was deleted is no harm).
            let removal = ports.inbox.remove_entries(&entries);
            match deadline.bound(ports.clock.now(), super::deliver::ENTRIES_MARGIN, removal).await {
                Some(removed) => removed?,
                None => return Ok(StepOutcome::OutOfTime),
            }
            InboxEvent::Retracted { id }
        }
        Recall::Correct => InboxEvent::Corrected { content: Box::new(inbox_content(&n)) },
    };
    // Best effort, bounded as a chunk's posts: a page that missed it catches up when it reads.
    let posts = ports.realtime.publish(n.company_id, &people, cursor, &event);
    if deadline.bound(ports.clock.now(), super::deliver::REALTIME_MARGIN, posts).await.is_none() {
        tracing::warn!(notification = %id, chunk = step.chunk, "recall's realtime posts cut short by the deadline");
    }
    if step.recall == Recall::Retract {
        ports.recall.record_retracted(id, step.chunk, people.len() as u64, ports.clock.now()).await?;
        // A notification cut into one chunk (a department message, an in-app notification) is
        // done with it: finished here, not left for the tick's next look (which takes a bounded
        // number a minute). A larger one is finished by a plan that finds every chunk done.
        if n.chunks_total == Some(1) {
            ports.recall.recheck(id, None).await?;
        }
    }
    Ok(StepOutcome::Done { people: people.len() })
}

/// The people of a chunk: those its attempts kept; for a chunk that keeps no list
/// (`Notification::keeps_list`: the first of a notification to named people), the people named.
async fn people_of(
    recall: &dyn RecallLedger,
    n: &Notification,
    chunk: u32,
) -> Result<Vec<UserId>, StoreError> {
    let mut people = recall.recipients(n.id, chunk).await?;
    if !n.keeps_list(chunk)
        && let Audience::Users { user_ids } = &n.audience
    {
        let kept: std::collections::HashSet<UserId> = people.iter().copied().collect();
        people.extend(user_ids.iter().filter(|u| !kept.contains(u)));
    }
    Ok(people)
}

/// One receive of a recall step. Not started `deliver::MARGIN` before the deadline, cut off by
/// it, held by an attempt at the chunk, or refused by DynamoDB for throughput: handed to a new
/// message (at once for time, after a chunk's hand-over backoff otherwise), so that no receive is
/// spent waiting; hand-overs are bounded as a chunk's, then the receive counts (and a step lost
/// anyway is planned again by the sweep).
pub async fn attempt(
    ports: &StepDeps<'_>,
    message_id: &str,
    job: &RecallStep,
    deadline: Deadline,
) -> Attempt {
    let id = job.notification_id;
    crate::trace::about(id, None);
    if !deadline.allows(ports.clock.now(), super::deliver::MARGIN) {
        return hand_over(ports, message_id, job, std::time::Duration::ZERO, "too close to the deadline")
            .await;
    }
    match step(ports, job, deadline).await {
        Ok(StepOutcome::Busy) => {
            let wait = ports.hand_overs.delay(job.hand_overs.unwrap_or(0) + 1);
            hand_over(ports, message_id, job, wait, "an attempt holds the chunk").await
        }
        Ok(StepOutcome::OutOfTime) => {
            hand_over(ports, message_id, job, std::time::Duration::ZERO, "deletes cut off at the deadline")
                .await
        }
        Ok(outcome) => {
            tracing::info!(message_id, notification = %id, chunk = job.chunk, recall = ?job.recall, ?outcome, "recall step");
            Attempt::Done
        }
        Err(e) if e.is_throttling() => {
            let wait = ports.hand_overs.delay(job.hand_overs.unwrap_or(0) + 1);
            hand_over(ports, message_id, job, wait, "throttled").await
        }
        Err(e) => {
            tracing::warn!(message_id, notification = %id, chunk = job.chunk, error = %e, "recall step failed; again");
            Attempt::Again
        }
    }
}

/// `job` in a new message visible after `wait` (`Done`), unless its hand-overs are used up or
/// the queue refused (`Again`: the receive counts).
async fn hand_over(
    ports: &StepDeps<'_>,
    message_id: &str,
    job: &RecallStep,
    wait: std::time::Duration,
    why: &str,
) -> Attempt {
    let handed = job.hand_overs.unwrap_or(0) + 1;
    let again = RecallStep { hand_overs: Some(handed), ..job.clone() };
    if handed <= ports.hand_overs.max_attempts
        && let Ok(body) = serde_json::to_string(&again)
        && ports.chunks.send_later(&body, wait).await.is_ok()
    {
        tracing::info!(message_id, notification = %job.notification_id, chunk = job.chunk, reason = why, "recall step handed to a new message");
        return Attempt::Done;
    }
    tracing::warn!(message_id, notification = %job.notification_id, chunk = job.chunk, reason = why, "recall step not handed over; again");
    Attempt::Again
}

/// A recall step the delivery queue gave up on: done again in place (it is idempotent), while
/// its dead letter's tries last (`deliver::dead_letter_again`); a chunk still held waits.
pub async fn settle_dead_letter(
    ports: &StepDeps<'_>,
    message_id: &str,
    job: &RecallStep,
    receives: u32,
    max_receives: u32,
) -> Attempt {
    let (id, chunk) = (job.notification_id, job.chunk);
    crate::trace::about(id, None);
    match step(ports, job, Deadline::NONE).await {
        Ok(StepOutcome::Busy | StepOutcome::OutOfTime) => {
            let held = DeliverError::Transient(StoreError::Transient(format!("chunk {chunk} is held")));
            dead_letter_again(&held, receives, max_receives)
        }
        Ok(outcome) => {
            tracing::warn!(message_id, notification = %id, chunk, ?outcome, "dead-lettered recall step done");
            Attempt::Done
        }
        Err(e) => {
            tracing::error!(message_id, notification = %id, chunk, error = %e, "dead-lettered recall step failed");
            dead_letter_again(&DeliverError::Transient(e), receives, max_receives)
        }
    }
}
