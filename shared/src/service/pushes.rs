//! A chunk's pushes, apart from its in-app delivery. A chunk publishes its pushes while it
//! delivers (round 0); what it cannot finish — SNS throttled or failed transiently, a mark could
//! not be written, or the invocation's deadline came near — continues as the chunk's push job: a
//! message of its own on the delivery queue (the chunk's message with `pushRound`), in later
//! rounds after a backoff, one copy at a time (a lease per chunk's pushes).
//!
//! Invariants:
//! - A push never fails, repeats or gives up an in-app delivery: the chunk's entries are
//!   recorded whatever SNS answers, and no push outcome marks a notification Failed.
//! - A chunk's push outcomes are counted once (`record_pushes`, once per chunk), from the sent
//!   marks and what the round settled: by the chunk when its round settled every device, else by
//!   its push job when one does. A round that settles nothing (and was not stopped by the
//!   deadline) uses up one of `Settings::push_retry`'s rounds; once they are used up, what is
//!   still unsent counts as failed.
//! - A device is published to once, except a crash between a publish and its batch's mark
//!   (at most `MARK_BATCH` - 1), as for the chunk itself.

use super::channels::{self, PushRound};
use super::deadline::Deadline;
use crate::backoff::Backoff;
use crate::error::{DeliverError, StoreError};
use crate::model::*;
use crate::ports::{ChunkRecord, ChunkStart, Clock, DeliveryLedger, Queue, Work};

/// What a chunk's pushes use: the ledger (lease, marks, record), the delivery queue their job
/// continues on, the clock, and the devices and push gateway.
pub struct PushJobDeps<'a> {
    pub(crate) ledger: &'a dyn DeliveryLedger,
    pub(crate) queue: &'a dyn Queue,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) pushes: &'a channels::PushDeps<'a>,
    /// Waits between rounds, and the rounds (`settings::PUSH_RETRY` as deployed).
    pub(crate) retry: Backoff,
}

/// What handling a push job came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Every device settled and counted (`gave_up`: the unsent counted failed after the last
    /// round).
    Recorded { sent: u64, gave_up: bool },
    /// The chunk's pushes were already counted.
    AlreadyDone,
    /// Not finished: continues as round `round` after `delay`.
    Continued { round: u32, delay: std::time::Duration },
    /// Another copy of the job holds the chunk's pushes now: this one comes back after its
    /// visibility timeout.
    Busy,
}

/// Puts the chunk's push job, round `round`, on the delivery queue, visible after `delay`.
pub async fn queue_job(
    queue: &dyn Queue,
    chunk: &DeliveryChunk,
    round: u32,
    delay: std::time::Duration,
) -> Result<(), StoreError> {
    let job = DeliveryChunk { push_round: Some(round), ..chunk.clone() };
    queue.send_later(&serde_json::to_string(&job).expect("a chunk serialises"), delay).await
}

/// After a chunk is recorded: counts the pushes its round settled, or hands what it left to
/// the chunk's push job. An error only when the job could not be queued (the chunk's message
/// then comes back, finds the chunk recorded and queues it again).
pub async fn settle_round(
    ports: &PushJobDeps<'_>,
    chunk: &DeliveryChunk,
    round: Result<PushRound, StoreError>,
) -> Result<(), DeliverError> {
    let id = chunk.notification_id;
    let (delay, why) = match round {
        // Nobody of the chunk has a device: nothing to count.
        Ok(PushRound { counts, unfinished: None, .. }) if counts == PushCounts::default() => return Ok(()),
        Ok(PushRound { counts, unfinished: None, .. }) => {
            match super::channels::record_pushes(ports.ledger, id, chunk.chunk, &counts, ports.clock.now())
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => (std::time::Duration::ZERO, format!("pushes not counted: {e}")),
            }
        }
        Ok(PushRound { unfinished: Some(why), .. }) => (next_delay(ports.retry, &why, 1), why),
        Err(e) => (ports.retry.delay(1), format!("pushes interrupted: {e}")),
    };
    tracing::info!(notification = %id, chunk = chunk.chunk, reason = %why, ?delay, "pushes continue as the chunk's push job");
    queue_job(ports.queue, chunk, 1, delay).await?;
    Ok(())
}

/// How long the next round waits: at once after a round the deadline stopped, else the backoff.
fn next_delay(retry: Backoff, why: &str, round: u32) -> std::time::Duration {
    if why == channels::DEADLINE_NEAR { std::time::Duration::ZERO } else { retry.delay(round) }
}

/// One round of a chunk's push job (`job.push_round` is `Some`), as the attempt `holder`.
pub async fn send_job(
    ports: &PushJobDeps<'_>,
    job: &DeliveryChunk,
    holder: &str,
    deadline: Deadline,
) -> Result<PushOutcome, DeliverError> {
    let id = job.notification_id;
    let context = ports.ledger.push_context(id, job.chunk).await?;
    if context.recorded {
        return Ok(PushOutcome::AlreadyDone);
    }
    let now = ports.clock.now();
    let lease_until = super::deadline::lease_until(now);
    let work = Work::PushJob(job.chunk);
    let start = ports.ledger.start(id, work, holder, now, lease_until).await?;
    if start == ChunkStart::Held {
        return Ok(PushOutcome::Busy);
    }
    // Another copy may have published, marked or recorded between this one's read and its
    // claim: a retry reads again, holding it.
    let context = match start {
        ChunkStart::Retry => ports.ledger.push_context(id, job.chunk).await,
        _ => Ok(context),
    };
    let step = match context {
        Ok(context) if context.recorded => Ok(Step::Done(PushOutcome::AlreadyDone)),
        Ok(context) => match context.notification {
            Some(n) => send_claimed(ports, &n, job, &context.marks, deadline).await,
            None => Err(DeliverError::Permanent(format!("notification {id} does not exist"))),
        },
        Err(e) => Err(e.into()),
    };
    // Handed back before the next round is queued, so that round never finds it held; a job
    // done keeps it (its marker turns every later copy away before it asks).
    let done = matches!(step, Ok(Step::Done(_)));
    if !done && let Err(e) = ports.ledger.release(id, work, holder, lease_until).await {
        tracing::warn!(notification = %id, chunk = job.chunk, error = %e, "push job not handed back");
    }
    match step? {
        Step::Done(outcome) => Ok(outcome),
        Step::Next { round, delay, why } => {
            queue_job(ports.queue, job, round, delay).await?;
            tracing::info!(notification = %id, chunk = job.chunk, round, ?delay, reason = %why, "pushes continue later");
            Ok(PushOutcome::Continued { round, delay })
        }
    }
}

/// A chunk's push job its queue gave up on (dead-lettered: every receive failed, or the last was
/// killed), settled without publishing: the devices its marks do not show as settled count
/// failed, once (`record_pushes`), holding the job's lease as `holder` so that no copy still
/// publishing is counted over. `Busy` while another attempt holds it.
pub async fn give_up(
    ports: &PushJobDeps<'_>,
    job: &DeliveryChunk,
    holder: &str,
) -> Result<PushOutcome, DeliverError> {
    let id = job.notification_id;
    let context = ports.ledger.push_context(id, job.chunk).await?;
    if context.recorded {
        return Ok(PushOutcome::AlreadyDone);
    }
    let now = ports.clock.now();
    let work = Work::PushJob(job.chunk);
    let start = ports.ledger.start(id, work, holder, now, super::deadline::lease_until(now)).await?;
    let context = match start {
        ChunkStart::Held => return Ok(PushOutcome::Busy),
        // Taken over: a copy may have published, marked or recorded meanwhile; read again.
        ChunkStart::Retry => ports.ledger.push_context(id, job.chunk).await?,
        ChunkStart::First => context,
    };
    let Some(n) = context.notification.filter(|_| !context.recorded) else {
        return Ok(PushOutcome::AlreadyDone);
    };
    let (mut counts, unsent) = channels::unsettled_pushes(ports.pushes, &n, job, &context.marks).await?;
    counts.failed += unsent.len() as u64;
    tracing::error!(notification = %id, chunk = job.chunk, unsent = unsent.len(), "push job dead-lettered: its unsent pushes counted failed");
    match super::channels::record_pushes(ports.ledger, id, job.chunk, &counts, ports.clock.now()).await? {
        ChunkRecord::Recorded => Ok(PushOutcome::Recorded { sent: counts.sent, gave_up: true }),
        ChunkRecord::AlreadyRecorded => Ok(PushOutcome::AlreadyDone),
    }
}

/// What a claimed round came to: done (recorded, or found recorded), or a next round to queue.
enum Step {
    Done(PushOutcome),
    Next { round: u32, delay: std::time::Duration, why: String },
}

/// A claimed push job's round, then its next round or its record. A round counts against the
/// job's rounds only when it settled nothing and was not stopped by the deadline: a job that
/// makes progress under throttling goes on until every device is settled.
async fn send_claimed(
    ports: &PushJobDeps<'_>,
    n: &Notification,
    job: &DeliveryChunk,
    marks: &SentMarks,
    deadline: Deadline,
) -> Result<Step, DeliverError> {
    let id = n.id;
    if n.retracted.is_some() {
        // Retracted before these went out: none is published now; what the marks show stays.
        let (mut counts, unsent) = channels::unsettled_pushes(ports.pushes, n, job, marks).await?;
        counts.withdrawn += unsent.len() as u64;
        tracing::info!(notification = %id, chunk = job.chunk, withdrawn = counts.withdrawn, "retracted: pushes not sent");
        return match super::channels::record_pushes(ports.ledger, id, job.chunk, &counts, ports.clock.now())
            .await?
        {
            ChunkRecord::Recorded => {
                Ok(Step::Done(PushOutcome::Recorded { sent: counts.sent, gave_up: false }))
            }
            ChunkRecord::AlreadyRecorded => Ok(Step::Done(PushOutcome::AlreadyDone)),
        };
    }
    let round = job.push_round.unwrap_or(1);
    let PushRound { mut counts, unsent, settled_now, unfinished } =
        channels::send_pushes(ports.pushes, n, job, marks, deadline).await?;
    let mut gave_up = false;
    if let Some(why) = unfinished {
        let idle = settled_now == 0 && why != channels::DEADLINE_NEAR;
        let next = if idle { round + 1 } else { round };
        if next < ports.retry.max_attempts {
            let delay = next_delay(ports.retry, &why, next.max(1));
            return Ok(Step::Next { round: next, delay, why });
        }
        tracing::error!(notification = %id, chunk = job.chunk, unsent, rounds = next, reason = %why, "pushes not sent: counted failed");
        counts.failed += unsent;
        gave_up = true;
    }
    match super::channels::record_pushes(ports.ledger, id, job.chunk, &counts, ports.clock.now()).await? {
        ChunkRecord::Recorded => Ok(Step::Done(PushOutcome::Recorded { sent: counts.sent, gave_up })),
        ChunkRecord::AlreadyRecorded => Ok(Step::Done(PushOutcome::AlreadyDone)),
    }
}
