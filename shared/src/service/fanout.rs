//! Fan-out: claim a due notification (a lease, so exactly one run works on it and a crashed
//! run is taken over), resolve its audience, cut it into chunks and put them on the delivery
//! queue, saving progress after every batch so that a resumed run skips what was sent.

use chrono::{DateTime, Duration, Utc};

use super::audience::{self, ResolveError};
use super::deadline::Deadline;
use super::{callback, deliver};
use crate::error::StoreError;
use crate::model::*;
use crate::ports::{Audiences, Clock, DeviceStore, FanoutLedger, InboxDelivery, NotificationLookup, Queue};

/// What fanning out uses: the ledger's lease and progress, the audience, the content's one
/// write, the delivery queue (or, inline, delivery itself), and the callback a finished
/// notification may owe.
pub struct FanOutDeps<'a> {
    pub(crate) ledger: &'a dyn FanoutLedger,
    pub(crate) lookup: &'a dyn NotificationLookup,
    pub(crate) audiences: &'a dyn Audiences,
    pub(crate) inbox: &'a dyn InboxDelivery,
    pub(crate) devices: &'a dyn DeviceStore,
    pub(crate) delivery_queue: &'a dyn Queue,
    /// Where a synchronous request leaves the callback it cannot wait for.
    pub(crate) fanout_queue: &'a dyn Queue,
    pub(crate) clock: &'a dyn Clock,
    /// Recipients per delivery chunk.
    pub(crate) chunk_size: usize,
    pub(crate) deliver: deliver::DeliverDeps<'a>,
}

/// How long a claim lasts without progress. Longer than the fan-out function's timeout, so a
/// live run never loses its claim; a crashed one is taken over by the first tick after it.
pub const LEASE_SECONDS: i64 = 180;
/// Chunks sent per SendMessageBatch (the SQS maximum) and per progress save.
const CHUNKS_PER_BATCH: usize = 10;
/// Notifications a tick looks at; the rest wait for the next tick.
pub const TICK_LIMIT: usize = 100;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub due: usize,
    pub fanned_out: usize,
}

/// The scheduler tick: fans out every due notification this run can claim.
pub async fn tick(ports: &FanOutDeps<'_>) -> Result<TickReport, StoreError> {
    tick_within(ports, Deadline::NONE).await
}

/// A fan-out this function still starts must be able to finish, or at least save its progress,
/// before the invocation's deadline (the template gives fan-out 60 s).
pub const MARGIN: std::time::Duration = std::time::Duration::from_secs(20);

/// The tick as Lambda invokes it: no fan-out starts `MARGIN` before `deadline`; the rest stay
/// due for the next tick.
pub async fn tick_within(ports: &FanOutDeps<'_>, deadline: Deadline) -> Result<TickReport, StoreError> {
    let due = ports.ledger.due(ports.clock.now(), TICK_LIMIT).await?;
    let mut report = TickReport { due: due.len(), fanned_out: 0 };
    for id in due {
        if !deadline.allows(ports.clock.now(), MARGIN) {
            tracing::warn!(
                left = report.due - report.fanned_out,
                "too close to the deadline: the next tick takes the rest"
            );
            break;
        }
        // Due means not finished: no callback to catch up on when another run holds the claim.
        if claim_and_fan_out(ports, id, Sink::Queue).await? {
            report.fanned_out += 1;
        }
    }
    Ok(report)
}

/// Where chunks go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// The delivery queue (the normal path).
    Queue,
    /// Delivered in this process, before returning (synchronous notify).
    Inline,
}

/// Claims and fans out one notification. `false` when it is not ours to do: another run holds
/// it, it is done, or it is not due yet (a scheduled one: the tick takes it at its time).
/// A finished notification that still owes its callback (left by a synchronous request, or by a
/// run that stopped before sending it) gets it sent here.
pub async fn fan_out_if_claimed(ports: &FanOutDeps<'_>, id: NotificationId) -> Result<bool, StoreError> {
    if claim_and_fan_out(ports, id, Sink::Queue).await? {
        return Ok(true);
    }
    // `send_if_due` sends only what is owed (a finished notification, a callback not sent yet).
    if let Some(mut n) = ports.lookup.get(id).await? {
        crate::trace::about(id, n.origin_request.as_deref());
        // A run that finished the fan-out but not its completion (every chunk was in: a
        // synchronous request's, or the queue's) left it Delivering: the job retried completes it.
        // Only its status changes: the callback reads the rest as it is.
        if n.status == Status::Delivering && n.chunks_total.is_some_and(|total| n.chunks_done >= total) {
            n.status = ports.deliver.ledger.complete_if_done(id, ports.clock.now()).await?;
        }
        if !callback::send_if_due(&ports.deliver.callbacks, &n).await {
            return Err(StoreError::Transient(format!("{id}: its status events are not settled yet")));
        }
    }
    Ok(false)
}

pub async fn claim_and_fan_out(
    ports: &FanOutDeps<'_>,
    id: NotificationId,
    sink: Sink,
) -> Result<bool, StoreError> {
    // In its notification's trace (the tick's has none: its record names its request).
    let trace = crate::trace::Trace::notification(id, None);
    crate::trace::within(trace, Box::pin(claim_and_fan_out_now(ports, id, sink))).await
}

async fn claim_and_fan_out_now(
    ports: &FanOutDeps<'_>,
    id: NotificationId,
    sink: Sink,
) -> Result<bool, StoreError> {
    let now = ports.clock.now();
    let lease = now + Duration::seconds(LEASE_SECONDS);
    if !ports.ledger.claim(id, now, lease).await? {
        return Ok(false);
    }
    match fan_out(ports, id, sink, lease).await {
        Ok(()) => Ok(true),
        // Progress or finish refused: this run stalled past its lease and another took over
        // (it resumes from the saved progress). Not an error: stop here.
        Err(StoreError::Conflict(why)) => {
            tracing::warn!(notification = %id, reason = %why, "fan-out lost its claim to another run");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// `held` is the lease of this run's claim: every write of the run requires it (a fencing
/// token), so a run that stalled past its lease cannot interfere with the one that took over.
async fn fan_out(
    ports: &FanOutDeps<'_>,
    id: NotificationId,
    sink: Sink,
    mut held: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(n) = ports.lookup.get(id).await? else { return Ok(()) };
    crate::trace::about(id, n.origin_request.as_deref());
    // Its acceptance's event, in case the request that stored it could not queue it.
    if n.fanout.chunks_enqueued == 0 {
        super::webhooks::settle(&ports.deliver.callbacks.hooks, &n).await;
    }
    let people = match audience::recipients(
        ports.audiences,
        &n.audience,
        n.brochure_id,
        audience::GroupCheck::Recheck,
    )
    .await
    {
        Ok(p) => p,
        Err(ResolveError::Gone(why)) => {
            tracing::warn!(notification = %id, reason = %why, "audience is gone; notification failed");
            callback::give_up(&ports.deliver.callbacks, id, &why.to_string()).await?;
            return Ok(());
        }
        Err(ResolveError::Store(e)) => return Err(e),
    };
    // A chunk's emails go out apart, as email jobs paced to SES's rate: they do not bound it.
    let chunk_size = ports.chunk_size.max(1);
    let chunks: Vec<&[UserId]> = people.chunks(chunk_size).collect();
    let mut progress = n.fanout.clone();
    let resume_at = progress.chunks_enqueued as usize;
    if resume_at > 0 {
        tracing::info!(notification = %id, resume_at, "resuming an interrupted fan-out");
    }
    // Every recipient's entry refers to the content: stored before the first chunk goes out
    // (a resumed run stored it already).
    if resume_at == 0 {
        ports.inbox.put_content(&deliver::inbox_content(&n)).await?;
    }
    let devices = match n.pushes() {
        true => Some(ports.devices.company_has_devices(n.company_id).await?),
        false => None,
    };
    let mut next = resume_at;
    while next < chunks.len() {
        let end = (next + CHUNKS_PER_BATCH).min(chunks.len());
        let batch: Vec<DeliveryChunk> = (next..end)
            .map(|i| DeliveryChunk {
                notification_id: id,
                chunk: i as u32,
                recipients: chunks[i].to_vec(),
                devices,
                push_round: None,
                hand_overs: None,
                revived: None,
            })
            .collect();
        match sink {
            Sink::Queue => {
                let bodies = batch
                    .iter()
                    .map(|c| serde_json::to_string(c).map_err(|e| StoreError::Other(e.to_string())))
                    .collect::<Result<Vec<_>, _>>()?;
                ports.delivery_queue.send_all(&bodies).await?;
            }
            Sink::Inline => {
                for chunk in &batch {
                    // The fan-out's lease keeps its runs apart: each is the chunk's one holder.
                    let holder = format!("fanout:{}:{}", chunk.notification_id, chunk.chunk);
                    deliver::deliver_chunk_only(&ports.deliver, chunk, &holder).await.map_err(
                        |e| match e {
                            deliver::DeliverError::Transient(s) => s,
                            deliver::DeliverError::Permanent(why) => StoreError::Other(why),
                        },
                    )?;
                }
            }
        }
        progress.chunks_enqueued = end as u32;
        progress.recipients_enqueued += chunks[next..end].iter().map(|c| c.len() as u64).sum::<u64>();
        next = end;
        // After the last batch, finishing records the end (a crash before it re-sends that
        // batch, which delivery absorbs): no progress write.
        if next < chunks.len() {
            let now = ports.clock.now();
            let extended = now + Duration::seconds(LEASE_SECONDS);
            ports.ledger.save_progress(id, &progress, held, extended).await?;
            held = extended;
        }
    }
    let status = ports
        .ledger
        .finish_fanout(id, chunks.len() as u32, people.len() as u64, held, ports.clock.now())
        .await?;
    tracing::info!(notification = %id, recipients = people.len(), chunks = chunks.len(), ?status, "fan-out finished");
    if status == Status::Delivered && (n.callback.is_some() || n.hooks) {
        // Every chunk reported before fan-out finished: the callback is ours to send. Not in a
        // synchronous request, though: its tries (up to five, 5 s each) would outlast the API's
        // 10 seconds; a fan-out job sends it right after the answer.
        if sink == Sink::Inline && callback_later(ports, id).await {
            return Ok(());
        }
        if let Some(done) = ports.lookup.get(id).await?
            && !callback::send_if_due(&ports.deliver.callbacks, &done).await
        {
            // Its status events could not be settled: a fan-out job settles them (and its
            // retries), whether this run is a job's or the tick's, which nothing retries.
            if callback_later(ports, id).await {
                return Ok(());
            }
            return Err(StoreError::Transient(format!("{id}: its status events are not settled yet")));
        }
    }
    Ok(())
}

/// Leaves a finished notification's callback to a fan-out job (`fan_out_if_claimed` sends it);
/// `false` when the job could not be queued.
async fn callback_later(ports: &FanOutDeps<'_>, id: NotificationId) -> bool {
    match queue_job(ports.fanout_queue, id).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(notification = %id, error = %e, "callback job not queued; sending it now");
            false
        }
    }
}

/// Puts a fan-out job for `id` on the fan-out queue.
pub async fn queue_job(fanout_queue: &dyn Queue, id: NotificationId) -> crate::error::StoreResult<()> {
    let job = serde_json::to_string(&FanoutJob { notification_id: id, recall: None }).unwrap_or_default();
    crate::trace::within(crate::trace::Trace::notification(id, None), fanout_queue.send_all(&[job])).await
}
