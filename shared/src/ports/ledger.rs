//! The ledger of a notification on its way: claimed for fan-out under a lease, its chunks and
//! email jobs recorded exactly once each, its sends marked so that a redelivery sends nothing
//! twice, its callback's outcome kept, and given up with a reason. Three traits, one per stage
//! that writes it: fan-out, delivery (chunks, sent marks, give-up, callback), email jobs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreResult;
use crate::model::*;

/// Outcome of recording a delivered chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkRecord {
    /// First time this chunk was recorded: counts were incremented.
    Recorded,
    /// Already recorded by an earlier delivery: nothing changed.
    AlreadyRecorded,
}

/// A piece of a notification's work one attempt at a time does: a chunk (writing its entries),
/// a chunk's push job (its pushes, continued after its entries were recorded), an email job
/// (sending its emails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Work {
    Chunk(u32),
    PushJob(u32),
    EmailJob { chunk: u32, part: u32 },
}

/// Who does a piece of work now (see [`WorkLeases::start`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkStart {
    /// No attempt started this chunk before: nobody has its entries yet.
    First,
    /// An earlier attempt started it, and its lease ran out or was handed back (it failed, or
    /// was killed), or it is this attempt's own (its first write's answer was lost): some people
    /// may have their entries, and may have acted on them. This attempt holds it now.
    Retry,
    /// Another attempt holds it (a copy of the chunk in another message, or another receive of
    /// the same message, running now): left to that one.
    Held,
}

/// See [`DeliveryLedger::chunk_context`]. The notification's counts are not part of it (a store
/// may keep them apart): read them with `NotificationLookup::get`, or let `complete_if_done`
/// decide.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChunkContext {
    pub notification: Option<Notification>,
    pub recorded: bool,
    pub marks: SentMarks,
    /// Of a recorded chunk (`chunk_context`): the recipients per email job its record kept
    /// (`ChunkTally::email_job_size`); `None` when the version that recorded it kept none (it cut
    /// jobs of `emails::LEGACY_EMAIL_JOB_SIZE`).
    pub email_job_size: Option<u32>,
    /// Of an email job's context: the parts of the email's content (its body, its parameters)
    /// the notification has and the read did not find (an item lost, a restore). The job sends
    /// nothing without them (it tries again); counting what it left does not need them.
    pub email_content_missing: Vec<String>,
}

/// Fan-out's part: what is due, the lease, progress, the end of fan-out.
#[async_trait]
pub trait FanoutLedger: Send + Sync {
    /// Ids of notifications due for fan-out at `now`, earliest first, at most `limit`: pending
    /// ones whose time has come, and fan-outs whose lease expired (their runner crashed).
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<NotificationId>>;
    /// Claims a due notification for fan-out until `lease_until`: a Pending one, or a FanningOut
    /// one whose lease has expired. `true` if this caller won the claim (a conditional write:
    /// of concurrent callers, one wins).
    async fn claim(
        &self,
        id: NotificationId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Records fan-out progress and extends the lease, if the caller still holds the lease
    /// `held` (the fencing token of its claim): a run that stalled past its lease and was taken
    /// over gets `Conflict` and stops.
    async fn save_progress(
        &self,
        id: NotificationId,
        progress: &FanoutProgress,
        held: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Fan-out finished: all `chunks` are enqueued for `recipients` people. Moves to Delivering
    /// (or straight to Delivered when every chunk already reported, or there were none).
    /// Only the holder of the lease `held` may finish.
    async fn finish_fanout(
        &self,
        id: NotificationId,
        chunks: u32,
        recipients: u64,
        held: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Status>;
}

/// One attempt at a time per piece of work: a lease held by the attempt's queue message. A
/// chunk's first attempt alone writes its entries without a condition; no two copies of an email
/// job send at once.
#[async_trait]
pub trait WorkLeases: Send + Sync {
    /// Claims `work` of notification `id` for the attempt `holder` (one receive of its queue
    /// message: its receipt handle) until `lease_until` (one conditional write; a second when an
    /// earlier attempt started it, conditional on its lease having run out or its being this
    /// attempt's own, whose first write's answer was lost). Two receives of one message are two
    /// attempts: a copy SQS hands out while another runs finds the work held.
    async fn start(
        &self,
        id: NotificationId,
        work: Work,
        holder: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<ChunkStart>;
    /// Hands `work` back before its lease runs out (its attempt ended and is alive), if the lease
    /// is still the one `holder` took until `held`: the next attempt need not wait for it.
    async fn release(
        &self,
        id: NotificationId,
        work: Work,
        holder: &str,
        held: DateTime<Utc>,
    ) -> StoreResult<()>;
}

/// Delivery's part: a chunk's context and record, sent marks, completion, give-up, callbacks.
#[async_trait]
pub trait DeliveryLedger: WorkLeases {
    /// `WorkLeases::start` of a chunk (`Work::Chunk`), which its `recipients` people pass
    /// through the notification's gate: its first start adds them to the people reached, in
    /// one write with its lease, unless the notification was cancelled (`None`, nothing
    /// written: `SendControl::cancel` closed the gate first; the chunk never starts, nobody in
    /// it gets the notification). A later start (`Retry`, `Held`) was counted by the first.
    /// A chunk a retraction closed (`RecallLedger::close_chunk`) never starts again (`None`).
    async fn start_chunk(
        &self,
        id: NotificationId,
        chunk: u32,
        recipients: u64,
        holder: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ChunkStart>>;
    /// Keeps the people of chunk `chunk`, by the attempt that holds it, before it writes any of
    /// their entries: what a retraction removes. Every attempt keeps its own list (a copy of a
    /// chunk from a resumed fan-out may name other people); `RecallLedger::recipients` reads
    /// them all. Keeping the same list again writes the same. Kept until `until` (when their
    /// entries expire) at least.
    async fn keep_recipients(
        &self,
        id: NotificationId,
        chunk: u32,
        people: &[UserId],
        until: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Records that chunk `chunk` delivered `delivered` items, exactly once per chunk; moves the
    /// notification to Delivered when it was the last one.
    async fn record_chunk(
        &self,
        id: NotificationId,
        chunk: u32,
        tally: &ChunkTally,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord>;
    /// Moves the notification to Delivered if it is Delivering and every chunk is recorded;
    /// its status either way. (A crash between recording the last chunk and completing the
    /// notification leaves it Delivering: a redelivered chunk finishes the job.)
    async fn complete_if_done(&self, id: NotificationId, now: DateTime<Utc>) -> StoreResult<Status>;
    /// Whether a chunk was already recorded (lets redelivery skip its writes entirely).
    async fn chunk_recorded(&self, id: NotificationId, chunk: u32) -> StoreResult<bool>;
    /// What delivering a chunk needs to know, in one read: the notification (without its
    /// email's body and parameters: `Notification::without_email_content`; a chunk renders no
    /// email), whether the chunk is already recorded, and the sends it already made.
    async fn chunk_context(&self, id: NotificationId, chunk: u32) -> StoreResult<ChunkContext>;
    /// What a chunk's push job needs, in one read: the notification (without its email's
    /// content, as `chunk_context`), whether the chunk's pushes are already recorded
    /// (`recorded`), and the chunk's sent marks.
    async fn push_context(&self, id: NotificationId, chunk: u32) -> StoreResult<ChunkContext>;
    /// Adds a chunk's push outcomes to the notification exactly once per chunk (a chunk whose
    /// pushes all settled while it delivered records them right after itself; one that could not
    /// finish them, when its push job has).
    async fn record_pushes(
        &self,
        id: NotificationId,
        chunk: u32,
        counts: &PushCounts,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord>;
    /// Adds keys to a chunk's sent marks (a set: adding a key twice keeps one).
    async fn add_sent_marks(
        &self,
        id: NotificationId,
        chunk: u32,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Gives up on a notification, keeping the reason for history; a Delivered one stays
    /// Delivered (everyone has it: nothing to give up).
    async fn mark_failed(&self, id: NotificationId, reason: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// Records the outcome of a notification's callback.
    async fn record_callback(&self, id: NotificationId, result: &CallbackResult) -> StoreResult<()>;
}

/// Email jobs' part: their context, their outcomes and the feedback SES reports, once each.
#[async_trait]
pub trait EmailLedger: WorkLeases {
    /// What sending an email job needs, in one read: the notification with all of its email
    /// (body and parameters included), whether this part's emails are already recorded
    /// (`recorded`), and the chunk's sent marks.
    async fn email_context(&self, id: NotificationId, chunk: u32, part: u32) -> StoreResult<ChunkContext>;
    /// Adds an email job's outcomes to the notification exactly once per (chunk, part): its
    /// recipients move from pending to their outcome.
    async fn record_emails(
        &self,
        id: NotificationId,
        chunk: u32,
        part: u32,
        counts: &EmailCounts,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord>;
    /// Counts a bounce or complaint on the notification its email was about, once per email
    /// (`message_id`) and kind; `AlreadyRecorded` for a repeated event.
    async fn record_feedback(
        &self,
        id: NotificationId,
        message_id: &str,
        kind: FeedbackKind,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord>;
}
