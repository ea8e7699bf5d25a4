//! Delivery of one chunk: one inbox entry per recipient (deterministic keys; only the chunk's
//! first attempt writes them without a condition, a later attempt writes only the entries people
//! do not have, so a retry never undoes what a person did; the content is stored once, by the
//! fan-out), a round of the chunk's pushes (marked as they go, so a redelivered chunk
//! sends nothing twice), then the chunk's outcomes are counted on the notification exactly
//! once; its pushes are counted apart, or continue as the chunk's push job (`pushes`) when SNS,
//! a mark or the deadline stopped them, and its emails are handed to the email queue
//! (`emails`): neither SNS nor SES can hold up, fail or give up the in-app delivery.

use chrono::Duration;

use super::deadline::Deadline;
use super::{callback, channels, emails, pushes};
pub use crate::error::DeliverError;
use crate::error::StoreError;
use crate::model::*;
use crate::ports::{
    ChunkRecord, ChunkStart, Clock, DeliveryLedger, InboxDelivery, NotificationLookup, Queue, Realtime, Work,
};

/// What delivering a chunk uses: the ledger, the inbox, realtime, the chunk's pushes, the
/// email queue its jobs go to, the delivery queue a chunk without time is handed back to, and
/// (after the last chunk) the callback.
pub struct DeliverDeps<'a> {
    pub(crate) chunks: &'a dyn Queue,
    pub(crate) lookup: &'a dyn NotificationLookup,
    pub(crate) ledger: &'a dyn DeliveryLedger,
    pub(crate) inbox: &'a dyn InboxDelivery,
    pub(crate) realtime: &'a dyn Realtime,
    pub(crate) email_queue: &'a dyn Queue,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) pushes: channels::PushDeps<'a>,
    pub(crate) push_retry: crate::backoff::Backoff,
    /// Waits of a message handed over when DynamoDB refused for throughput, and how many
    /// hand-overs it may take (`settings::HAND_OVERS` as deployed).
    pub(crate) hand_overs: crate::backoff::Backoff,
    pub(crate) callbacks: callback::CallbackDeps<'a>,
}

impl<'a> DeliverDeps<'a> {
    /// What the chunk's pushes use (its round while it delivers, and its push job).
    fn push_job(&'a self) -> pushes::PushJobDeps<'a> {
        pushes::PushJobDeps {
            ledger: self.ledger,
            queue: self.chunks,
            clock: self.clock,
            pushes: &self.pushes,
            retry: self.push_retry,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Items written and counted.
    Written(u64),
    /// An earlier delivery of this chunk already did everything.
    AlreadyDone,
    /// The notification failed meanwhile: nothing to do.
    Skipped,
    /// Another attempt at this chunk is under way (a copy of the message, running now): this
    /// one leaves it alone, and its message comes back after the visibility timeout, when that
    /// attempt has finished or its lease has run out.
    Busy,
    /// Delivered (now or before), and the notification's callback is owed: the invocation's
    /// deadline came before its tries ended. The chunk's next handling sends it.
    CallbackOwed,
    /// Its entries' writes did not end `ENTRIES_MARGIN` before the invocation's deadline
    /// (DynamoDB throttling them, say): they were cut off there, nothing recorded, the chunk
    /// handed back. Its next attempt writes the entries people do not have yet.
    OutOfTime,
}

/// What every recipient of a notification sees, stored once. Times come from the notification,
/// not the clock, so that writing it again writes the same.
pub fn inbox_content(n: &Notification) -> InboxContent {
    InboxContent::new(n.id, n.origin, n.content.clone(), (n.due_at, expires_at(n)))
}

/// When a notification leaves its recipients' centers.
fn expires_at(n: &Notification) -> chrono::DateTime<chrono::Utc> {
    let ttl = Duration::try_seconds(n.ttl_seconds.min(i64::MAX as u64) as i64).unwrap_or(Duration::MAX);
    n.due_at.checked_add_signed(ttl).unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// A recipient's entry, delivered at `at` (the content's own `entry_for`, without building the
/// content).
pub fn inbox_entry(n: &Notification, user: UserId, at: chrono::DateTime<chrono::Utc>) -> InboxEntry {
    InboxEntry::delivered(n.id, n.content.priority, (n.due_at, expires_at(n)), user, at)
}

/// A chunk's realtime posts end this long before the invocation's deadline at the latest (API
/// Gateway throttling them cannot hold up the chunk): room for its pushes' round (which stops
/// `channels::PUSH_MARGIN` before the deadline), its record and its jobs.
pub const REALTIME_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// A chunk's entries' writes end this long before the invocation's deadline at the latest
/// (the SDK's backoff under throttling cannot hold them up past it): room for its realtime posts
/// (ended `REALTIME_MARGIN` before it), its pushes' round, its record and its jobs.
pub const ENTRIES_MARGIN: std::time::Duration = std::time::Duration::from_secs(15);

/// A chunk starts only this long before the invocation's deadline (the template gives deliver
/// 60 s): one chunk's pushes take well under it (its emails go out apart, as jobs).
pub const MARGIN: std::time::Duration = std::time::Duration::from_secs(20);

pub use super::receive::Attempt;

/// One receive (`receives` of `max_receives` allowed) of the delivery-queue message `body`,
/// `attempt` naming this receive and no other (its receipt handle: the lease on the chunk is
/// held by it, so two copies of one message handed out at once never run the chunk together),
/// with the invocation's `deadline`. The rule of giving up lives here: a chunk that fails at its
/// last allowed receive gives its notification up (Failed, its FAILURE callback) now, while
/// there is time, rather than leaving it to the dead-letter queue. A chunk that cannot start
/// `MARGIN` before the deadline was not attempted: it is handed to a new message of the
/// delivery queue (visible at once, to another invocation) and this receive ends, so that
/// waiting for time never uses up a receive; so is an attempt DynamoDB refused for throughput
/// (visible after a backoff: waiting is the answer to throttling, and a receive spent on it
/// would give a notification up for a table that was only busy). Hand-overs are counted in the
/// message and bounded (`settings::HAND_OVERS`): once used up, or when the hand-over fails, the receive
/// counts, and at the last one the notification is given up.
pub async fn attempt(
    ports: &DeliverDeps<'_>,
    (message_id, attempt): (&str, &str),
    body: &str,
    receives: u32,
    max_receives: u32,
    deadline: Deadline,
) -> Attempt {
    let last = receives >= max_receives;
    let chunk = match parse_chunk(body) {
        Ok(chunk) => chunk,
        Err(e) => {
            tracing::error!(message_id, receives, last_attempt = last, error = %e, "delivery failed");
            return Attempt::Again;
        }
    };
    let notification = chunk.notification_id;
    crate::trace::about(notification, None);
    if !deadline.allows(ports.clock.now(), MARGIN) {
        if hand_over(ports, &chunk, std::time::Duration::ZERO).await {
            tracing::info!(message_id, %notification, receives, "too close to the deadline: chunk handed to a new message");
            return Attempt::Done;
        }
        tracing::warn!(message_id, %notification, receives, "too close to the deadline, and not handed over: chunk not started");
        // A push job never gives its notification up, nor does a chunk recorded before (its
        // callback owed, say).
        if last
            && chunk.push_round.is_none()
            && !matches!(ports.ledger.chunk_recorded(notification, chunk.chunk).await, Ok(true))
        {
            let reason = format!("delivery not started in time at its last allowed receive ({receives})");
            give_up(ports, notification, &reason).await;
        }
        return Attempt::Again;
    }
    if chunk.push_round.is_some() {
        return push_job(ports, (message_id, attempt), &chunk, receives, last, deadline).await;
    }
    match deliver_within(ports, &chunk, attempt, deadline).await {
        Ok(Delivered::Written(n)) => {
            tracing::info!(message_id, %notification, items = n, "chunk delivered");
            Attempt::Done
        }
        Ok(Delivered::CallbackOwed) => {
            // Everyone has it; what is left is the callback: in a new message, at once, with a
            // whole invocation's time (its receive not spent on the deadline).
            if hand_over(ports, &chunk, std::time::Duration::ZERO).await {
                tracing::info!(message_id, %notification, receives, "callback owed at the deadline: handed to a new message");
                return Attempt::Done;
            }
            tracing::warn!(message_id, %notification, receives, "callback owed at the deadline; later");
            Attempt::Again
        }
        Ok(Delivered::OutOfTime) => {
            // Cut off for time, not failed: the rest in a new message with a whole invocation's
            // time (this receive not spent on the deadline), after the backoff a throttled chunk
            // waits (what held the writes up was most likely throttling).
            if hand_over_later(ports, &chunk).await {
                tracing::info!(message_id, %notification, receives, "entries cut off at the deadline: chunk handed to a new message");
                return Attempt::Done;
            }
            tracing::warn!(message_id, %notification, receives, "entries cut off at the deadline, and not handed over; later");
            if last && !matches!(ports.ledger.chunk_recorded(notification, chunk.chunk).await, Ok(true)) {
                let reason =
                    format!("delivery not finished in time at its last allowed receive ({receives})");
                give_up(ports, notification, &reason).await;
            }
            Attempt::Again
        }
        Ok(Delivered::Busy) => {
            // Never a reason to give up, nor to spend a receive: the attempt that holds the
            // chunk finishes it, or its lease runs out while this copy waits (in backoff, as
            // for throttling, within the same bounded hand-overs).
            if hand_over_later(ports, &chunk).await {
                tracing::info!(message_id, %notification, receives, "another attempt holds the chunk: handed to a new message, later");
                return Attempt::Done;
            }
            tracing::info!(message_id, %notification, receives, "another attempt holds the chunk; later");
            Attempt::Again
        }
        Ok(outcome) => {
            tracing::info!(message_id, %notification, ?outcome, "nothing to deliver");
            Attempt::Done
        }
        Err(e) => {
            if e.is_throttling() && hand_over_later(ports, &chunk).await {
                tracing::warn!(message_id, %notification, receives, error = %e, "throttled: chunk handed to a new message, later");
                return Attempt::Done;
            }
            tracing::error!(message_id, %notification, receives, last_attempt = last, error = %e, "delivery failed");
            // A chunk that was recorded before its failure (queueing its jobs, say) delivered
            // everyone: that is no reason to give its notification up.
            if last && !matches!(ports.ledger.chunk_recorded(notification, chunk.chunk).await, Ok(true)) {
                give_up(ports, notification, &format!("delivery failed after {receives} attempts: {e}"))
                    .await;
            }
            Attempt::Again
        }
    }
}

/// A message the delivery queue gave up on, as deliver consumes its dead-letter queue (`holder`
/// names this receive): settled once, in place, doing none of the chunk's work (a message that
/// killed its function at every receive would kill it again).
/// - A chunk recorded (everyone has it) finishes as a redelivered recorded chunk does: its jobs
///   queued, its notification completed when every chunk is in, its callback sent.
/// - A chunk never recorded is tried once more (`REVIVALS`: killed at every receive is not
///   poison, timeouts under load do it), as a new message; dead-lettered again, it gives its
///   notification up (Failed with the reason, its FAILURE callback), as its last receive does
///   when it can. A notification given up already keeps its reason. While another attempt holds
///   the chunk (a copy of it is delivering) it waits for that one instead (`Again`).
/// - A push job counts the pushes it left failed (`pushes::give_up`).
///
/// One that cannot be read is logged and dropped: nothing in it names what it was for; so is one
/// whose settling fails for good (`DeliverError::Permanent`), or still fails after
/// `DEAD_LETTER_TRIES` receives of its dead letter (it is logged with its body's notification
/// and chunk, at ERROR: what an operator looks at).
pub async fn settle_dead_letter(
    ports: &DeliverDeps<'_>,
    (message_id, holder): (&str, &str),
    body: &str,
    receives: u32,
    max_receives: u32,
) -> Attempt {
    let chunk = match parse_chunk(body) {
        Ok(chunk) => chunk,
        Err(e) => {
            tracing::error!(message_id, error = %e, "unreadable dead letter dropped");
            return Attempt::Done;
        }
    };
    let notification = chunk.notification_id;
    crate::trace::about(notification, None);
    if chunk.push_round.is_some() {
        return match pushes::give_up(&ports.push_job(), &chunk, holder).await {
            Ok(pushes::PushOutcome::Busy) => Attempt::Again,
            Ok(outcome) => {
                tracing::info!(message_id, %notification, chunk = chunk.chunk, ?outcome, "dead-lettered push job settled");
                Attempt::Done
            }
            Err(e) => {
                tracing::error!(message_id, %notification, chunk = chunk.chunk, error = %e, "dead-lettered push job not settled");
                dead_letter_again(&e, receives, max_receives)
            }
        };
    }
    let settled = match ports.ledger.chunk_recorded(notification, chunk.chunk).await {
        // Recorded: `deliver` writes nothing for it, and does what its crash may have left.
        Ok(true) => deliver(ports, &chunk, holder).await.map(|_| "recorded: its jobs queued"),
        Ok(false) => give_up_dead_chunk(ports, &chunk, holder).await,
        Err(e) => Err(e.into()),
    };
    match settled {
        Ok(how) => {
            tracing::warn!(message_id, %notification, chunk = chunk.chunk, how, "dead-lettered chunk settled");
            Attempt::Done
        }
        Err(e) => {
            tracing::error!(message_id, %notification, chunk = chunk.chunk, error = %e, "dead-lettered chunk not settled");
            dead_letter_again(&e, receives, max_receives)
        }
    }
}

/// Times a chunk never recorded comes back from the dead-letter queue (after the longest wait
/// of a hand-over, `settings::HAND_OVERS`' cap) before its notification is given up.
pub const REVIVALS: u32 = 1;

/// Receives of a dead letter (beyond those its queue allowed before it moved it, which SQS may
/// count on) whose settling fails before it is dropped, logged: its dead-letter queue has no
/// dead-letter queue of its own, and a message failing for ever would come back every visibility
/// timeout (6 minutes) for its 14 days.
pub const DEAD_LETTER_TRIES: u32 = 5;

/// Whether a dead letter whose settling failed with `e` at its `receives`-th receive comes back.
pub fn dead_letter_again(e: &DeliverError, receives: u32, max_receives: u32) -> Attempt {
    match e {
        DeliverError::Permanent(_) => Attempt::Done,
        _ if receives >= max_receives + DEAD_LETTER_TRIES => {
            tracing::error!(receives, "dead letter not settled after its tries: dropped");
            Attempt::Done
        }
        _ => Attempt::Again,
    }
}

/// Gives the notification of a chunk that was never recorded up, unless another attempt holds
/// the chunk now (then an error: the dead letter comes back after that attempt).
async fn give_up_dead_chunk(
    ports: &DeliverDeps<'_>,
    chunk: &DeliveryChunk,
    holder: &str,
) -> Result<&'static str, DeliverError> {
    let id = chunk.notification_id;
    // Usually its last receive gave it up already, with the failure that did it: that reason
    // stays. Given up, or complete, is for good; its callback may still be owed (the give-up's
    // tries were killed): sent now, unless its outcome is recorded.
    let n = ports.lookup.get(id).await?;
    if let Some(n) = &n {
        crate::trace::about(id, n.origin_request.as_deref());
    }
    match n {
        None => return Ok("its notification is gone"),
        // Cancelled is not finished for a chunk that started before it (its people were counted
        // as reached): the gate below tells.
        Some(n) if matches!(n.status, Status::Failed | Status::Delivered) => {
            if !callback::send_if_due(&ports.callbacks, &n).await {
                let why = format!("{id}: its status events are not settled yet");
                return Err(DeliverError::Transient(crate::StoreError::Transient(why)));
            }
            return Ok("its notification was finished already");
        }
        Some(_) => {}
    }
    let now = ports.clock.now();
    let lease = super::deadline::lease_until(now);
    // Through the gate, as any start of a chunk: one never started is counted as it starts here
    // (its revival delivers it), or not at all when the notification was cancelled.
    let people = chunk.recipients.len() as u64;
    let Some(start) = ports.ledger.start_chunk(id, chunk.chunk, people, holder, now, lease).await? else {
        return Ok("its notification was cancelled before it started");
    };
    if start == ChunkStart::Held {
        return Err(DeliverError::Transient(StoreError::Transient(format!(
            "chunk {} is being delivered by another attempt",
            chunk.chunk
        ))));
    }
    // Held now: recorded meanwhile by the attempt that held it before?
    if ports.ledger.chunk_recorded(id, chunk.chunk).await? {
        ports.ledger.release(id, Work::Chunk(chunk.chunk), holder, lease).await?;
        return Ok("recorded by another attempt meanwhile");
    }
    // Killed at every receive is not poison (timeouts under load): tried again once, as a new
    // message with its receives ahead of it, after a pause.
    if chunk.revived.unwrap_or(0) < REVIVALS {
        let again = DeliveryChunk {
            revived: Some(chunk.revived.unwrap_or(0) + 1),
            hand_overs: None,
            ..chunk.clone()
        };
        let body = serde_json::to_string(&again).expect("a chunk serialises");
        ports.chunks.send_later(&body, ports.hand_overs.cap).await?;
        // Not handed back: its lease runs out before the new message is tried for long.
        if let Err(e) = ports.ledger.release(id, Work::Chunk(chunk.chunk), holder, lease).await {
            tracing::warn!(notification = %id, chunk = chunk.chunk, error = %e, "dead chunk not handed back");
        }
        return Ok("never recorded: tried again once");
    }
    let reason = format!("chunk {} was dead-lettered twice without being delivered", chunk.chunk);
    callback::give_up(&ports.callbacks, id, &reason).await?;
    Ok("never recorded: its notification given up")
}

/// One receive of a chunk's push job. A push job never gives its notification up: one that
/// fails every receive moves to the dead-letter queue, where `settle_dead_letter` counts what it left
/// failed.
async fn push_job(
    ports: &DeliverDeps<'_>,
    (message_id, attempt): (&str, &str),
    job: &DeliveryChunk,
    receives: u32,
    last: bool,
    deadline: Deadline,
) -> Attempt {
    let notification = job.notification_id;
    match pushes::send_job(&ports.push_job(), job, attempt, deadline).await {
        Ok(pushes::PushOutcome::Busy) => {
            if hand_over_later(ports, job).await {
                tracing::info!(message_id, %notification, chunk = job.chunk, "another attempt holds the chunk's pushes: handed to a new message, later");
                return Attempt::Done;
            }
            tracing::info!(message_id, %notification, chunk = job.chunk, "another attempt holds the chunk's pushes; later");
            Attempt::Again
        }
        Ok(outcome) => {
            tracing::info!(message_id, %notification, chunk = job.chunk, ?outcome, "push job");
            Attempt::Done
        }
        Err(e) => {
            if e.is_throttling() && hand_over_later(ports, job).await {
                tracing::warn!(message_id, %notification, chunk = job.chunk, receives, error = %e, "throttled: push job handed to a new message, later");
                return Attempt::Done;
            }
            tracing::error!(message_id, %notification, chunk = job.chunk, receives, last_attempt = last, error = %e, "push job failed");
            Attempt::Again
        }
    }
}

/// `hand_over` after the wait of a chunk DynamoDB throttled or another attempt holds: the
/// backoff of its next hand-over.
async fn hand_over_later(ports: &DeliverDeps<'_>, chunk: &DeliveryChunk) -> bool {
    let wait = ports.hand_overs.delay(chunk.hand_overs.unwrap_or(0) + 1);
    hand_over(ports, chunk, wait).await
}

/// Hands a chunk (or push job) to a new message of the delivery queue, visible after `delay`,
/// counting the hand-over in it; `false` when its hand-overs are used up or the queue refused
/// (the receive then counts, as any failed one does).
async fn hand_over(ports: &DeliverDeps<'_>, chunk: &DeliveryChunk, delay: std::time::Duration) -> bool {
    let done = chunk.hand_overs.unwrap_or(0);
    if done >= ports.hand_overs.max_attempts {
        return false;
    }
    let next = DeliveryChunk { hand_overs: Some(done + 1), ..chunk.clone() };
    let body = serde_json::to_string(&next).expect("a chunk serialises");
    match ports.chunks.send_later(&body, delay).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(notification = %chunk.notification_id, error = %e, "chunk not handed over to a new message");
            false
        }
    }
}

/// Gives the notification up (Failed, its FAILURE callback); a failure to record it is logged.
async fn give_up(ports: &DeliverDeps<'_>, id: NotificationId, reason: &str) {
    if let Err(mark) = callback::give_up(&ports.callbacks, id, reason).await {
        tracing::error!(notification = %id, error = %mark, "could not record the failure");
    }
}

/// Parses a delivery-queue message.
pub fn parse_chunk(body: &str) -> Result<DeliveryChunk, DeliverError> {
    serde_json::from_str(body)
        .map_err(|e| DeliverError::Permanent(format!("malformed delivery message: {e}")))
}

/// Delivers a chunk, as the attempt `message` (the receive holding its lease: a receipt handle,
/// or the fan-out's own name for an inline delivery), and, when that finished the
/// notification, sends its callback.
pub async fn deliver(
    ports: &DeliverDeps<'_>,
    chunk: &DeliveryChunk,
    message: &str,
) -> Result<Delivered, DeliverError> {
    deliver_within(ports, chunk, message, Deadline::NONE).await
}

/// `deliver`, with the invocation's deadline: no push starts `PUSH_MARGIN` before it (what is
/// left continues as the chunk's push job).
async fn deliver_within(
    ports: &DeliverDeps<'_>,
    chunk: &DeliveryChunk,
    message: &str,
    deadline: Deadline,
) -> Result<Delivered, DeliverError> {
    let (outcome, has_callback) = deliver_chunk(ports, chunk, message, deadline).await?;
    // Only notifications with a callback or status events owed need another look; a redelivered chunk was not read,
    // and may still owe the callback a crash interrupted. One cut off for time is not done.
    if outcome != Delivered::OutOfTime
        && has_callback != Some(false)
        && let Some(n) = ports.lookup.get(chunk.notification_id).await?
        && (n.callback.is_some() || n.hooks)
        && !callback::send_if_due_within(&ports.callbacks, &n, deadline).await
    {
        return Ok(Delivered::CallbackOwed);
    }
    Ok(outcome)
}

/// Writes a chunk's inbox items and records the chunk, exactly once.
pub async fn deliver_chunk_only(
    ports: &DeliverDeps<'_>,
    chunk: &DeliveryChunk,
    message: &str,
) -> Result<Delivered, DeliverError> {
    deliver_chunk(ports, chunk, message, Deadline::NONE).await.map(|(outcome, _)| outcome)
}

/// The delivery, and whether the notification has a callback or owes status events (`None`
/// when it was not read).
async fn deliver_chunk(
    ports: &DeliverDeps<'_>,
    chunk: &DeliveryChunk,
    message: &str,
    deadline: Deadline,
) -> Result<(Delivered, Option<bool>), DeliverError> {
    let id = chunk.notification_id;
    let context = ports.ledger.chunk_context(id, chunk.chunk).await?;
    if let Some(n) = &context.notification {
        crate::trace::about(id, n.origin_request.as_deref());
    }
    if context.recorded {
        // Recorded, but the notification may still be Delivering with every chunk done (the
        // run that recorded the last chunk stopped before completing it): complete it now; the
        // callback it owes follows in `deliver`.
        let Some(n) = &context.notification else {
            return Ok((Delivered::AlreadyDone, None));
        };
        // Whether every chunk is in is the ledger's to tell (the context carries no counts);
        // first, so that a queue's trouble below never holds the notification's completion.
        let completed = n.status == Status::Delivering
            && n.chunks_total.is_some()
            && ports.ledger.complete_if_done(id, ports.clock.now()).await? == Status::Delivered;
        // Its email jobs and push job may not have been queued either (a job queued twice counts
        // once; a push job finds the chunk's pushes counted if they were).
        let size = context.email_job_size.unwrap_or(emails::LEGACY_EMAIL_JOB_SIZE);
        emails::queue_jobs(ports.email_queue, n, chunk, size).await?;
        if n.pushes() && chunk.devices != Some(false) {
            pushes::queue_job(ports.chunks, chunk, 1, std::time::Duration::ZERO).await?;
        }
        if completed {
            return Ok((Delivered::AlreadyDone, Some(n.callback.is_some() || n.hooks)));
        }
        return Ok((Delivered::AlreadyDone, None));
    }
    let n = context
        .notification
        .ok_or_else(|| DeliverError::Permanent(format!("notification {id} does not exist")))?;
    let has_callback = Some(n.callback.is_some() || n.hooks);
    // A cancelled one is not skipped here: a chunk that started before the cancel is among the
    // people its answer counted, and goes on; the gate below refuses one that did not.
    // Retracted: its people are being removed, not given it (its gate is closed, and each
    // chunk is closed for good as its removal starts).
    if n.status == Status::Failed || n.retracted.is_some() {
        return Ok((Delivered::Skipped, has_callback));
    }
    // The content was stored by the fan-out, before this chunk was queued. Only a chunk's first
    // attempt writes its entries blind (one write unit each, batched); a later one writes only
    // the entries people do not have, so what a person did with theirs stays as it is.
    let now = ports.clock.now();
    let lease_until = super::deadline::lease_until(now);
    // Its people pass the notification's gate as it starts: after a cancel, it never starts.
    let people = chunk.recipients.len() as u64;
    let Some(start) = ports.ledger.start_chunk(id, chunk.chunk, people, message, now, lease_until).await?
    else {
        tracing::info!(notification = %id, chunk = chunk.chunk, "cancelled before this chunk started");
        return Ok((Delivered::Skipped, has_callback));
    };
    if start == ChunkStart::Held {
        return Ok((Delivered::Busy, None));
    }
    // Another attempt may have sent and marked, or recorded the chunk, between this one's read
    // and its claim (it held the chunk then, and handed it back): a retry reads again, holding it.
    let marks = match start {
        ChunkStart::Retry => match ports.ledger.chunk_context(id, chunk.chunk).await {
            Ok(fresh) if fresh.recorded => {
                release_chunk(ports, id, chunk.chunk, message, lease_until).await;
                return Ok((Delivered::AlreadyDone, None));
            }
            Ok(fresh) => fresh.marks,
            Err(e) => {
                release_chunk(ports, id, chunk.chunk, message, lease_until).await;
                return Err(e.into());
            }
        },
        _ => context.marks,
    };
    // Whom it writes entries for is kept first: a retraction removes exactly them.
    let kept = match n.keeps_list(chunk.chunk) {
        true => ports.ledger.keep_recipients(id, chunk.chunk, &chunk.recipients, expires_at(&n)).await,
        false => Ok(()),
    };
    let outcome = match kept {
        Ok(()) => write_and_record(ports, &n, chunk, &marks, start, now, deadline).await,
        Err(e) => Err(e.into()),
    };
    if matches!(outcome, Err(_) | Ok(Delivered::OutOfTime)) {
        // Failed or cut off, and alive: the chunk is handed back now rather than when the lease
        // runs out (a killed attempt cannot, and its lease runs out before its message comes
        // back).
        release_chunk(ports, id, chunk.chunk, message, lease_until).await;
    }
    Ok((outcome?, has_callback))
}

/// Hands a chunk this attempt holds back; a failure to is logged (the lease runs out instead).
async fn release_chunk(
    ports: &DeliverDeps<'_>,
    id: NotificationId,
    chunk: u32,
    holder: &str,
    held: chrono::DateTime<chrono::Utc>,
) {
    if let Err(e) = ports.ledger.release(id, Work::Chunk(chunk), holder, held).await {
        tracing::warn!(notification = %id, chunk, error = %e, "chunk not handed back");
    }
}

/// A started chunk: its entries (blind on its first attempt, only the missing ones on a later
/// one), its realtime event, its round of pushes, its record, then its pushes' record (or push
/// job) and its email jobs. Nothing a push meets fails the chunk.
async fn write_and_record(
    ports: &DeliverDeps<'_>,
    n: &Notification,
    chunk: &DeliveryChunk,
    marks: &SentMarks,
    start: ChunkStart,
    now: chrono::DateTime<chrono::Utc>,
    deadline: Deadline,
) -> Result<Delivered, DeliverError> {
    let id = n.id;
    let entries: Vec<InboxEntry> = chunk.recipients.iter().map(|u| inbox_entry(n, *u, now)).collect();
    // Bounded by the deadline: writes cut off there may have landed or not, and either way the
    // next attempt (a retry: it reads which entries exist) writes only the missing ones.
    // Whose entries this attempt wrote (`None`: everyone's, a first attempt).
    let write = async {
        if start == ChunkStart::First {
            ports.inbox.put_entries(&entries, ports.clock).await.map(|()| None)
        } else {
            let written = ports.inbox.put_new_entries(&entries, ports.clock).await?;
            tracing::info!(notification = %id, chunk = chunk.chunk, written = written.len(), of = entries.len(), "chunk retried");
            Ok(Some(written))
        }
    };
    let written = match deadline.bound(ports.clock.now(), ENTRIES_MARGIN, write).await {
        Some(written) => written?,
        None => {
            tracing::warn!(notification = %id, chunk = chunk.chunk, "entries' writes cut off by the deadline");
            return Ok(Delivered::OutOfTime);
        }
    };
    let mut tally = ChunkTally {
        delivered: entries.len() as u64,
        email_job_size: emails::EMAIL_JOB_SIZE,
        ..ChunkTally::default()
    };
    drop(entries);
    // Open centers hear of it now, with what they show of it. A retry tells the people it wrote
    // for the same; the others only the id (their earlier attempt may have died before telling
    // them): a page that knows it changes nothing, one that does not reads its center, never
    // showing again what its person dismissed or archived meanwhile.
    let cursor = now.timestamp_millis();
    let delivered = InboxEvent::delivered(&inbox_content(n));
    let posts = async {
        match &written {
            None => ports.realtime.publish(n.company_id, &chunk.recipients, cursor, &delivered).await,
            Some(new) => {
                let new: std::collections::HashSet<&UserId> = new.iter().collect();
                let (fresh, had): (Vec<UserId>, Vec<UserId>) =
                    chunk.recipients.iter().partition(|u| new.contains(u));
                let named = InboxEvent::New { ids: vec![id], content: None };
                ports.realtime.publish(n.company_id, &fresh, cursor, &delivered).await;
                ports.realtime.publish(n.company_id, &had, cursor, &named).await;
            }
        }
    };
    if deadline.bound(ports.clock.now(), REALTIME_MARGIN, posts).await.is_none() {
        // Best effort: an open page catches up when it renews its connection or is shown again.
        tracing::warn!(notification = %id, chunk = chunk.chunk, "realtime posts cut short by the deadline");
    }
    if n.email.is_some() {
        tally.emails_queued = chunk.recipients.len() as u64;
    }
    // Counted apart from the chunk (`record_pushes`), by the chunk or by its push job.
    let pushed = match n.pushes() {
        true => Some(channels::send_pushes(&ports.pushes, n, chunk, marks, deadline).await),
        false => None,
    };
    let (outcome, size) = match ports.ledger.record_chunk(id, chunk.chunk, &tally, ports.clock.now()).await? {
        ChunkRecord::Recorded => {
            // Once per chunk: recorded here and nowhere else (an attempt that finds it recorded
            // counts nothing).
            use crate::metrics::{Metric, count, record};
            count(Metric::PeopleReached, tally.delivered, &[n.origin.name()]);
            let waited = (ports.clock.now() - n.due_at).num_milliseconds().max(0);
            record(Metric::ChunkLatency, waited as f64, &[n.origin.name()]);
            (Delivered::Written(tally.delivered), emails::EMAIL_JOB_SIZE)
        }
        // Recorded meanwhile by another attempt, maybe an earlier version's: its jobs.
        ChunkRecord::AlreadyRecorded => {
            let recorded = ports.ledger.chunk_context(id, chunk.chunk).await?.email_job_size;
            (Delivered::AlreadyDone, recorded.unwrap_or(emails::LEGACY_EMAIL_JOB_SIZE))
        }
    };
    if let Some(round) = pushed {
        pushes::settle_round(&ports.push_job(), chunk, round).await?;
    }
    emails::queue_jobs(ports.email_queue, n, chunk, size).await?;
    Ok(outcome)
}
