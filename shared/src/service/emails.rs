//! Emails, apart from the in-app notification: a delivered chunk hands its recipients' emails
//! to the email queue as jobs of at most `EMAIL_JOB_SIZE` people, and the email queue's
//! consumers send them at the account's SES rate.
//!
//! Invariants:
//! - SES's limits never cost the notification center: a chunk's inbox items and pushes are
//!   recorded whatever SES answers, and no email outcome marks a notification Failed.
//! - Every recipient of an email notification is counted once as pending when its chunk is
//!   recorded, and moves once to exactly one outcome (sent, opted out, no address, failed)
//!   when its job is recorded (`record_emails`, once per chunk and part).
//! - A job that cannot finish (SES throttled it, or the invocation's deadline is near)
//!   continues as the same job in a later round, after a backoff; sent marks make the later
//!   round skip what went out. After `max_rounds` rounds what is still unsent counts as failed.
//! - The pace, `EmailSending::per_consumer` emails per second per consumer, times the email
//!   queue's consumer concurrency (`EMAIL_CONSUMERS`) stays within the account's sending rate.

use super::channels::{self, EmailRound};
use super::deadline::Deadline;
use super::receive::Attempt;
use crate::error::DeliverError;
use crate::model::*;
use crate::ports::{
    ChunkContext, ChunkRecord, ChunkStart, Clock, EmailLedger, EmailPreferences, Queue, Work,
};
use crate::settings::EmailSending;

/// What a round of an email job uses.
pub struct EmailJobDeps<'a> {
    pub(crate) ledger: &'a dyn EmailLedger,
    pub(crate) email_queue: &'a dyn Queue,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) emails: channels::EmailDeps<'a>,
    pub(crate) sending: EmailSending,
    /// New messages a job not started for time may be handed to (`settings::HAND_OVERS`).
    pub(crate) hand_overs: u32,
}

/// What recording SES's bounces and complaints uses.
pub struct FeedbackDeps<'a> {
    pub(crate) email_prefs: &'a dyn EmailPreferences,
    pub(crate) ledger: &'a dyn EmailLedger,
    pub(crate) clock: &'a dyn Clock,
    /// The notification's tenant, told (`email.bounced`, `email.complained`).
    pub(crate) lookup: &'a dyn crate::ports::NotificationLookup,
    pub(crate) hooks: super::webhooks::EmitDeps<'a>,
}

/// Recipients per email job of chunks earlier versions recorded (their records keep no size).
pub const LEGACY_EMAIL_JOB_SIZE: u32 = 100;

/// Recipients per email job: at one consumer's pace (6.3/s of the default 14/s account) a job
/// takes about 41 s, within deliver's 60 s timeout less `EMAIL_MARGIN` (a slower account's job
/// continues in rounds). Four flushes of `MARK_BATCH` marks; a job's bookkeeping (its lease,
/// its marker and counter) is about 5 write units, 0.02 a person.
pub const EMAIL_JOB_SIZE: u32 = 256;

/// What handling an email job came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailOutcome {
    /// Every recipient settled and counted (`gave_up`: the unsent counted failed after the
    /// last round).
    Recorded { sent: u64, gave_up: bool },
    /// An earlier delivery of this job already counted it.
    AlreadyDone,
    /// Not finished: continues as round `round` after `delay`.
    Continued { round: u32, delay: std::time::Duration },
    /// Another copy of the job is sending now (another message's attempt holds its lease): this
    /// one comes back after its visibility timeout, and finds it recorded or taken over.
    Busy,
}

/// The email jobs of a chunk of a notification that asks for email (none otherwise), `size`
/// recipients each: `EMAIL_JOB_SIZE`, or what the chunk's record kept (a chunk an earlier version
/// recorded, handed out again after an upgrade, queues the jobs that version queued, so that
/// each job's record stays the one of its people: none counted or mailed twice).
pub fn jobs_of(n: &Notification, chunk: &DeliveryChunk, size: u32) -> Vec<EmailJob> {
    if n.email.is_none() {
        return Vec::new();
    }
    chunk
        .recipients
        .chunks(size.max(1) as usize)
        .enumerate()
        .map(|(part, recipients)| EmailJob {
            notification_id: n.id,
            chunk: chunk.chunk,
            email_part: part as u32,
            recipients: recipients.to_vec(),
            round: 0,
            hand_overs: None,
        })
        .collect()
}

/// Hands a chunk's emails to the email queue. Called after the chunk is recorded (so that the
/// pending count never runs behind the outcomes), and again by a redelivered recorded chunk:
/// a crash may have come between the two, and a job queued twice is counted once.
pub async fn queue_jobs(
    email_queue: &dyn Queue,
    n: &Notification,
    chunk: &DeliveryChunk,
    size: u32,
) -> Result<(), DeliverError> {
    let bodies: Vec<String> = jobs_of(n, chunk, size)
        .iter()
        .map(|job| serde_json::to_string(job).expect("an email job serialises"))
        .collect();
    if !bodies.is_empty() {
        email_queue.send_all(&bodies).await?;
    }
    Ok(())
}

pub fn parse_job(body: &str) -> Result<EmailJob, DeliverError> {
    serde_json::from_str(body).map_err(|e| DeliverError::Permanent(format!("malformed email job: {e}")))
}

/// An email job that cannot start before its invocation's deadline, handed to a new message of
/// the email queue (`deadline::hand_over`), counted in it; `false` once its hand-overs are used
/// up, or when the hand-over failed.
async fn hand_over(ports: &EmailJobDeps<'_>, job: &EmailJob) -> bool {
    let done = job.hand_overs.unwrap_or(0);
    if done >= ports.hand_overs {
        return false;
    }
    let next = EmailJob { hand_overs: Some(done + 1), ..job.clone() };
    let body = serde_json::to_string(&next).expect("an email job serialises");
    super::deadline::hand_over(ports.email_queue, &body).await
}

/// One receive (`receives`) of the email-queue message `body`, `attempt` naming this receive and
/// no other (its receipt handle: the job's lease is held by it), with the invocation's
/// `deadline`. A job that cannot start `channels::EMAIL_MARGIN` before the deadline is handed to
/// a new message (visible at once, to another invocation) and this receive ends, so waiting for
/// time never uses up a receive; once its hand-overs are used up (`settings::HAND_OVERS`), or
/// when the hand-over fails, the receive counts. A job that fails, or finds a copy of itself
/// sending, comes back after the visibility timeout; after its last receive the dead-letter
/// queue's consumer settles it (`give_up`).
pub async fn attempt(
    ports: &EmailJobDeps<'_>,
    (message_id, attempt): (&str, &str),
    body: &str,
    receives: u32,
    deadline: Deadline,
) -> Attempt {
    let job = match parse_job(body) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(message_id, receives, error = %e, "email job failed");
            return Attempt::Again;
        }
    };
    let notification = job.notification_id;
    crate::trace::about(notification, None);
    if !deadline.allows(ports.clock.now(), channels::EMAIL_MARGIN) {
        if hand_over(ports, &job).await {
            tracing::info!(message_id, %notification, receives, "too close to the deadline: email job handed to a new message");
            return Attempt::Done;
        }
        tracing::warn!(message_id, %notification, receives, "too close to the deadline: email job not started");
        return Attempt::Again;
    }
    let (chunk, part) = (job.chunk, job.email_part);
    match send_job(ports, &job, attempt, deadline).await {
        Ok(EmailOutcome::Recorded { sent, gave_up }) => {
            tracing::info!(message_id, %notification, chunk, part, sent, gave_up, "email job recorded");
            Attempt::Done
        }
        Ok(EmailOutcome::Busy) => {
            tracing::info!(message_id, %notification, chunk, part, "another copy of the email job is sending; later");
            Attempt::Again
        }
        Ok(outcome) => {
            tracing::info!(message_id, %notification, chunk, part, ?outcome, "email job");
            Attempt::Done
        }
        Err(e) => {
            tracing::error!(message_id, %notification, receives, error = %e, "email job failed");
            Attempt::Again
        }
    }
}

/// One round of an email job: sends what is unsent, then counts the job once, or continues it
/// in a later round.
pub async fn send_job(
    ports: &EmailJobDeps<'_>,
    job: &EmailJob,
    holder: &str,
    deadline: Deadline,
) -> Result<EmailOutcome, DeliverError> {
    let id = job.notification_id;
    let context = ports.ledger.email_context(id, job.chunk, job.email_part).await?;
    if context.recorded {
        return Ok(EmailOutcome::AlreadyDone);
    }
    // One copy of a job sends at a time (a recorded chunk redelivered queues its jobs again):
    // each would read the marks before the other wrote them.
    let now = ports.clock.now();
    let lease_until = super::deadline::lease_until(now);
    let work = Work::EmailJob { chunk: job.chunk, part: job.email_part };
    let start = ports.ledger.start(id, work, holder, now, lease_until).await?;
    if start == ChunkStart::Held {
        return Ok(EmailOutcome::Busy);
    }
    // Another copy may have sent and marked, or recorded the job, between this one's read and
    // its claim (it held the job then, and handed it back): a retry reads again, holding it.
    let context = match start {
        ChunkStart::Retry => ports.ledger.email_context(id, job.chunk, job.email_part).await,
        _ => Ok(context),
    };
    let outcome = match context {
        Ok(context) if context.recorded => Ok(EmailOutcome::AlreadyDone),
        Ok(context) => send_claimed(ports, job, context, deadline).await,
        Err(e) => Err(e.into()),
    };
    // Continued or failed: the marks say what went out, so the next round or copy need not wait
    // for the lease (a killed attempt cannot hand it back; its lease runs out first). A recorded
    // job keeps it: its marker turns every later copy away before it asks (a write saved).
    let recorded = matches!(outcome, Ok(EmailOutcome::Recorded { .. } | EmailOutcome::AlreadyDone));
    if !recorded && let Err(e) = ports.ledger.release(id, work, holder, lease_until).await {
        tracing::warn!(notification = %id, chunk = job.chunk, part = job.email_part, error = %e, "email job not handed back");
    }
    outcome
}

/// A claimed email job: its round of sends, then its next round or its record.
async fn send_claimed(
    ports: &EmailJobDeps<'_>,
    job: &EmailJob,
    context: ChunkContext,
    deadline: Deadline,
) -> Result<EmailOutcome, DeliverError> {
    let id = job.notification_id;
    if !context.email_content_missing.is_empty() {
        // Never an email without its body: tried again, and at worst counted failed from the
        // dead-letter queue (`give_up` needs none of it).
        return Err(DeliverError::Transient(crate::error::StoreError::Transient(format!(
            "the email's {} of notification {id} was not found",
            context.email_content_missing.join(" and ")
        ))));
    }
    let n = context
        .notification
        .ok_or_else(|| DeliverError::Permanent(format!("notification {id} does not exist")))?;
    let spec = n
        .email
        .as_ref()
        .ok_or_else(|| DeliverError::Permanent(format!("notification {id} asks for no email")))?;
    if n.retracted.is_some() {
        // Retracted before these went out: none is sent now; what the marks show sent stays.
        let (mut counts, unsent) =
            channels::unsettled_emails(&ports.emails, &n, spec, job, &context.marks).await?;
        counts.withdrawn += unsent.len() as u64;
        tracing::info!(notification = %id, chunk = job.chunk, part = job.email_part, withdrawn = counts.withdrawn, "retracted: emails not sent");
        return recorded(ports.ledger, ports.clock, job, &counts, false).await;
    }
    let EmailRound { mut counts, unfinished } =
        channels::send_emails(&ports.emails, &n, spec, job, &context.marks, deadline).await?;
    let settings = ports.sending;
    let mut gave_up = false;
    if let Some(why) = unfinished {
        let round = job.round + 1;
        if round < settings.max_rounds {
            let delay = if why == channels::DEADLINE_NEAR {
                std::time::Duration::ZERO
            } else {
                settings.retry.delay(round)
            };
            let next = EmailJob { round, ..job.clone() };
            let body = serde_json::to_string(&next).expect("an email job serialises");
            ports.email_queue.send_later(&body, delay).await?;
            tracing::info!(notification = %id, chunk = job.chunk, part = job.email_part, round, ?delay, reason = %why, "emails continue later");
            return Ok(EmailOutcome::Continued { round, delay });
        }
        let unsent = (job.recipients.len() as u64).saturating_sub(counts.settled());
        tracing::error!(notification = %id, chunk = job.chunk, part = job.email_part, unsent, rounds = round, reason = %why, "emails not sent: counted failed");
        counts.failed += unsent;
        gave_up = true;
    }
    recorded(ports.ledger, ports.clock, job, &counts, gave_up).await
}

/// An email job its queue gave up on (dead-lettered: every receive failed, or the last was
/// killed), settled without sending: the recipients it would still have mailed count failed,
/// the rest as a round would count them (sent by the marks, opted out, no address,
/// suppressed), once (`record_emails`: nobody stays pending), holding the job's lease as
/// `holder` so that no copy still sending is counted over. `Busy` while another attempt holds it.
pub async fn give_up(
    ports: &EmailJobDeps<'_>,
    job: &EmailJob,
    holder: &str,
) -> Result<EmailOutcome, DeliverError> {
    let id = job.notification_id;
    crate::trace::about(id, None);
    let context = ports.ledger.email_context(id, job.chunk, job.email_part).await?;
    if context.recorded {
        return Ok(EmailOutcome::AlreadyDone);
    }
    let now = ports.clock.now();
    let work = Work::EmailJob { chunk: job.chunk, part: job.email_part };
    let start = ports.ledger.start(id, work, holder, now, super::deadline::lease_until(now)).await?;
    let context = match start {
        ChunkStart::Held => return Ok(EmailOutcome::Busy),
        // Taken over: a copy may have sent, marked or recorded meanwhile; read again.
        ChunkStart::Retry => ports.ledger.email_context(id, job.chunk, job.email_part).await?,
        ChunkStart::First => context,
    };
    let Some(n) = context.notification.filter(|_| !context.recorded) else {
        return Ok(EmailOutcome::AlreadyDone);
    };
    let Some(spec) = n.email.as_ref() else {
        return Err(DeliverError::Permanent(format!("notification {id} asks for no email")));
    };
    let (mut counts, unsent) =
        channels::unsettled_emails(&ports.emails, &n, spec, job, &context.marks).await?;
    counts.failed += unsent.len() as u64;
    tracing::error!(notification = %id, chunk = job.chunk, part = job.email_part, unsent = unsent.len(), "email job dead-lettered: its unsent emails counted failed");
    recorded(ports.ledger, ports.clock, job, &counts, true).await
}

/// Records a bounce or complaint SES reported: its addresses are not mailed again (the first
/// reason stays), and it is counted once on the notification the email was about. Whether it
/// was counted now (`false`: counted before, or about no notification we still have).
pub async fn record_feedback(
    ports: &FeedbackDeps<'_>,
    feedback: &EmailFeedback,
) -> Result<bool, DeliverError> {
    for address in &feedback.addresses {
        let suppression = EmailSuppression {
            address: address.to_ascii_lowercase(),
            reason: feedback.kind,
            since: feedback.at,
            notification_id: feedback.notification,
        };
        ports.email_prefs.suppress_email(&suppression).await?;
    }
    let Some(id) = feedback.notification else {
        return Ok(false);
    };
    let counted =
        ports.ledger.record_feedback(id, &feedback.message_id, feedback.kind, ports.clock.now()).await;
    // Counted in the metrics the once it is recorded, whatever follows (a retry finds it
    // recorded).
    if matches!(counted, Ok(ChunkRecord::Recorded)) {
        let metric = match feedback.kind {
            FeedbackKind::Bounce => crate::metrics::Metric::EmailsBounced,
            FeedbackKind::Complaint => crate::metrics::Metric::EmailsComplained,
        };
        crate::metrics::count(metric, 1, &[]);
    }
    // Its tenant is told on every handling (the event's id is the email's and the address's:
    // told once), so that a crash after counting loses no event.
    let n = match counted {
        Ok(_) => ports.lookup.get(id).await?,
        Err(_) => None,
    };
    if let Some(n) = &n {
        // An email sent before its request was tagged: the record names it.
        crate::trace::about(id, n.origin_request.as_deref());
    }
    if let Some(n) = n
        && !super::webhooks::email_feedback(&ports.hooks, &n, feedback).await
    {
        // Counted once whatever happens; the record comes back and tells its tenant then.
        return Err(crate::error::StoreError::Transient(format!(
            "{id}: the email's status events are not settled yet"
        ))
        .into());
    }
    match counted {
        Ok(record) => Ok(record == ChunkRecord::Recorded),
        // The notification is gone (its history expired): the suppression is what matters.
        Err(crate::error::StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A person's email address and whether it is still mailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailStatus {
    pub address: String,
    pub suppression: Option<EmailSuppression>,
}

/// What the service knows of a person's email: only they may ask.
pub async fn email_status(
    email_prefs: &dyn EmailPreferences,
    viewer: &User,
    owner: UserId,
) -> Result<EmailStatus, crate::error::ApiError> {
    if viewer.id != owner {
        return Err(crate::error::ApiError::new(
            crate::error::ErrorKind::InsufficientPermissions,
            "you may only see your own email status",
        ));
    }
    let address = viewer.email.to_ascii_lowercase();
    let suppression = match address.is_empty() {
        true => None,
        false => email_prefs.email_suppressions(std::slice::from_ref(&address)).await?.into_iter().next(),
    };
    Ok(EmailStatus { address, suppression })
}

/// Records an email job's outcomes once (`channels::record_emails`): what the job came to.
async fn recorded(
    ledger: &dyn EmailLedger,
    clock: &dyn Clock,
    job: &EmailJob,
    counts: &EmailCounts,
    gave_up: bool,
) -> Result<EmailOutcome, DeliverError> {
    let id = job.notification_id;
    match super::channels::record_emails(ledger, id, (job.chunk, job.email_part), counts, clock.now()).await?
    {
        ChunkRecord::Recorded => Ok(EmailOutcome::Recorded { sent: counts.sent, gave_up }),
        ChunkRecord::AlreadyRecorded => Ok(EmailOutcome::AlreadyDone),
    }
}
