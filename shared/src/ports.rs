//! The ports: what the services need from the outside world, and the bag (`Ports`) that carries
//! them to the services. Each has an in-memory adapter (local runner, unit tests) and an AWS
//! adapter (DynamoDB, SQS, SES, SNS); one conformance suite runs against both.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

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

/// See [`NotificationStore::chunk_context`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChunkContext {
    pub notification: Option<Notification>,
    pub recorded: bool,
    pub marks: SentMarks,
}

/// A stored answer to an idempotent request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Who asked, and the key they sent: the scope of the key.
    pub scope: String,
    /// SHA-256 of the request (method, path, body): a reused key with another body is a conflict.
    pub request_digest: String,
    pub status: u16,
    pub body: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// Nobody used this key yet: it is now ours; the caller completes it when it has an answer.
    Claimed,
    /// The key was used: here is what we know (an answer, or `None` while still in progress).
    Existing { request_digest: String, answer: Option<(u16, String)> },
}

#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// The next group-send `notificationScheduleId`: atomic, positive, increasing.
    async fn next_schedule_id(&self) -> StoreResult<u64>;
    /// Stores a new notification; `Conflict` if its id or schedule id is taken.
    async fn insert(&self, notification: &Notification) -> StoreResult<()>;
    async fn get(&self, id: NotificationId) -> StoreResult<Option<Notification>>;
    async fn get_by_schedule_id(&self, schedule_id: u64) -> StoreResult<Option<Notification>>;
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
    /// What delivering a chunk needs to know, in one read: the notification, whether the chunk
    /// is already recorded, and the sends it already made.
    async fn chunk_context(&self, id: NotificationId, chunk: u32) -> StoreResult<ChunkContext>;
    /// What sending an email job needs, in one read: the notification, whether this part's
    /// emails are already recorded (`recorded`), and the chunk's sent marks.
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
    /// Adds keys to a chunk's sent marks (a set: adding a key twice keeps one).
    async fn add_sent_marks(
        &self,
        id: NotificationId,
        chunk: u32,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Gives up on a notification, keeping the reason for history.
    async fn mark_failed(&self, id: NotificationId, reason: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// Adds `recipients` to a company's count for `day` (UTC, `YYYY-MM-DD`) if the total stays
    /// within `cap`: atomic, so concurrent sends cannot overshoot. `false` when over the cap.
    async fn consume_quota(
        &self,
        company: CompanyId,
        day: &str,
        recipients: u64,
        cap: u64,
    ) -> StoreResult<bool>;
    /// Records the outcome of a notification's callback.
    async fn record_callback(&self, id: NotificationId, result: &CallbackResult) -> StoreResult<()>;
    /// Sent history, newest first (by schedule id), through an index: the group-send API's record,
    /// so notifications sent through the other dialects are not in it.
    async fn history(&self, scope: &HistoryScope, page: &PageRequest) -> StoreResult<Page<Notification>>;

    /// Claims an idempotency key with a conditional write (two concurrent requests: one wins).
    async fn claim_idempotency(
        &self,
        scope: &str,
        request_digest: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyClaim>;
    /// Stores the answer for a claimed key.
    async fn complete_idempotency(&self, record: &IdempotencyRecord) -> StoreResult<()>;
    /// Releases a claimed key whose request failed, so that it can be retried.
    async fn release_idempotency(&self, scope: &str) -> StoreResult<()>;
}

#[async_trait]
pub trait InboxStore: Send + Sync {
    /// Stores a notification's content, once for all its recipients (writing it again writes
    /// the same). Written before any entry refers to it.
    async fn put_content(&self, content: &InboxContent) -> StoreResult<()>;
    /// Writes recipients' entries (any number; batched by the adapter). Keys are (user,
    /// notification): writing an entry again leaves one entry, the last written.
    async fn put_entries(&self, entries: &[InboxEntry]) -> StoreResult<()>;
    /// One notification of a person, with its content and state, whatever its state.
    async fn get(&self, user: UserId, notification: NotificationId) -> StoreResult<Option<InboxItem>>;
    /// The notifications `query` admits at `now` (never dismissed or expired ones), in display
    /// order, with their content joined: one query and one batch read per page.
    async fn list(
        &self,
        user: UserId,
        query: &InboxQuery,
        now: DateTime<Utc>,
        page: &PageRequest,
    ) -> StoreResult<Page<InboxItem>>;
    /// Unread and unseen counts of the default view, over at most `window` entries.
    async fn count(&self, user: UserId, now: DateTime<Utc>, window: usize) -> StoreResult<InboxCounts>;
    /// Marks one notification: one conditional write. `false` when the person has no such
    /// notification, or it expired, or (for every mark but dismissal) it was dismissed.
    async fn mark(
        &self,
        user: UserId,
        notification: NotificationId,
        mark: Mark,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Marks a person's whole inbox: one write, whatever its size.
    async fn mark_all(&self, user: UserId, mark: MarkAll, at: DateTime<Utc>) -> StoreResult<()>;
}

/// A person's open realtime connections: told what changed in their center. Best effort by
/// design: a client that missed an event catches up from its last cursor, so a failure here
/// never fails a delivery or a mark.
#[async_trait]
pub trait Realtime: Send + Sync {
    /// One event, at `cursor`, for each of `users`, people of `company` (a delivered chunk tells
    /// all its recipients the same thing: nothing is built per recipient before anyone listens).
    async fn publish(&self, company: CompanyId, users: &[UserId], cursor: i64, event: &InboxEvent);
}

/// A person's open WebSocket connections (API Gateway's connection ids).
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Records an open connection of `user`, kept until `expires_at` at most (API Gateway closes
    /// a WebSocket connection after two hours).
    async fn add(
        &self,
        user: UserId,
        company: CompanyId,
        connection: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Whether anyone of `company` may have an open connection at `now` (one small read: a
    /// delivery to a company where nobody is connected looks up no one).
    async fn online(&self, company: CompanyId, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Forgets a connection (closed, or gone); its person, if it was known.
    async fn remove(&self, connection: &str) -> StoreResult<Option<UserId>>;
    /// The open connections of these people (batched by the adapter), unexpired at `now`.
    async fn of(&self, users: &[UserId], now: DateTime<Utc>) -> StoreResult<Vec<(UserId, String)>>;
}

/// No realtime connections (a deployment without a realtime channel: clients poll).
pub struct NoRealtime;

#[async_trait]
impl Realtime for NoRealtime {
    async fn publish(&self, _: CompanyId, _: &[UserId], _: i64, _: &InboxEvent) {}
}

/// The people and groups notifications are addressed to, and the credentials of callers.
#[async_trait]
pub trait Directory: Send + Sync {
    /// Looks up a credential by the SHA-256 digest of what was presented.
    async fn credential(&self, digest: &str) -> StoreResult<Option<Credential>>;
    /// Several credentials at once, in the order asked (a caller presenting a session token and
    /// an API key): one read where the adapter can batch. A digest asked twice is answered twice.
    async fn credentials(&self, digests: &[&str]) -> StoreResult<Vec<Option<Credential>>>;
    async fn company(&self, id: CompanyId) -> StoreResult<Option<Company>>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    /// A user and a company at once (the two principals of a call made with a session token and
    /// an API key): one read where the adapter can batch.
    async fn user_and_company(
        &self,
        user: UserId,
        company: CompanyId,
    ) -> StoreResult<(Option<User>, Option<Company>)>;
    /// Several users at once (batched by the adapter); unknown ids are left out.
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>>;
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// All members of a company, paged.
    async fn company_members(&self, company: CompanyId, page: &PageRequest) -> StoreResult<Page<UserId>>;
    async fn team(&self, company: CompanyId, team_id: &str) -> StoreResult<Option<Team>>;
    /// Several teams of a company at once (batched by the adapter); unknown ids are left out.
    async fn teams(&self, company: CompanyId, team_ids: &[String]) -> StoreResult<Vec<Team>>;
    async fn team_members(
        &self,
        company: CompanyId,
        team_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<UserId>>;
    async fn event(&self, id: Uuid) -> StoreResult<Option<Event>>;
    async fn event_attendees(
        &self,
        event: Uuid,
        team_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<Attendee>>;
    async fn smart_library(&self, id: u64) -> StoreResult<Option<SmartLibrary>>;
    async fn smart_library_subscribers(&self, id: u64, page: &PageRequest) -> StoreResult<Page<UserId>>;
    async fn asset(&self, id: u64) -> StoreResult<Option<Asset>>;
    async fn asset_members(&self, id: u64, page: &PageRequest) -> StoreResult<Page<UserId>>;
    /// Every ALP preference recorded for an asset (few; read once per fan-out).
    async fn asset_unsubscribes(&self, id: u64) -> StoreResult<Vec<Unsubscribe>>;
    /// Records ALP-EUN: the user wants no more emails about the asset (notifications unchanged).
    async fn unsubscribe_emails(&self, asset: u64, user: UserId) -> StoreResult<()>;
    /// Stops mailing an address (kept apart from the person's record, so that a directory
    /// reload does not lift it); the first reason recorded stays.
    async fn suppress_email(&self, suppression: &EmailSuppression) -> StoreResult<()>;
    /// The suppressions among `addresses` (at most 100, one batch read).
    async fn email_suppressions(&self, addresses: &[String]) -> StoreResult<Vec<EmailSuppression>>;
    async fn department(&self, id: Uuid) -> StoreResult<Option<Department>>;
    async fn department_has_member(&self, department: Uuid, user: UserId) -> StoreResult<bool>;
    /// `updateEntityLastModified`: touches an asset's last-modified time.
    async fn touch_asset(&self, id: u64, at: DateTime<Utc>) -> StoreResult<()>;
    /// `updateEntityLastModified` for smart entries: touches the library's last-modified time.
    async fn touch_smart_library(&self, id: u64, at: DateTime<Utc>) -> StoreResult<()>;
    /// Loads a whole directory (demo data, test fixtures, migrations).
    async fn load(&self, snapshot: &crate::directory::DirectorySnapshot) -> StoreResult<()>;
}

/// The devices people registered for push. A device belongs to one person at a time: registering
/// a token another person had moves it.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    async fn devices(&self, user: UserId) -> StoreResult<Vec<Device>>;
    /// The devices of many people at once (batched by the adapter); people without any are left out.
    async fn devices_of(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, Vec<Device>)>>;
    /// Adds or replaces (same device id) a device, keeping the newest `max` of the person's
    /// devices. Returns the devices this displaced: older ones beyond `max`, and the same device
    /// under its previous owner.
    async fn put_device(&self, user: UserId, device: &Device, max: usize) -> StoreResult<Vec<Device>>;
    /// Removes a device; the removed one, or `None` if the person had no such device.
    async fn remove_device(&self, user: UserId, device_id: &str) -> StoreResult<Option<Device>>;
    /// Records that someone of `company` registered a device (never cleared: a stale mark only
    /// costs the lookups it would have saved).
    async fn mark_company_devices(&self, company: CompanyId) -> StoreResult<()>;
    /// Whether anyone of `company` ever registered a device: delivery skips device lookups for
    /// companies whose people use no phones.
    async fn company_has_devices(&self, company: CompanyId) -> StoreResult<bool>;
}

/// One email, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Extra headers (List-Unsubscribe).
    pub headers: Vec<(String, String)>,
    /// The notification it is about: SES publishes it with the email's bounce and complaint
    /// events (a message tag), so that they are counted on it.
    pub notification: Option<NotificationId>,
}

/// Why an email or a push was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Refused for good (a rejected address, a malformed payload): do not try again.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The push endpoint is disabled or deleted: the device should be forgotten.
    #[error("endpoint gone: {0}")]
    Gone(String),
    /// Throttling, timeouts, a paused account: try again later.
    #[error("{0}")]
    Transient(String),
}

/// Sends email (Amazon SES v2).
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one email; the provider's message id.
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError>;
}

/// Mobile push (Amazon SNS platform endpoints).
#[async_trait]
pub trait PushGateway: Send + Sync {
    /// Whether a platform application is configured for `platform`.
    fn supports(&self, platform: Platform) -> bool;
    /// Creates (or finds, and enables) the platform endpoint of a token, owned by `user`.
    async fn create_endpoint(
        &self,
        platform: Platform,
        token: &str,
        user: UserId,
    ) -> Result<String, SendError>;
    /// Deletes an endpoint; deleting one that is gone succeeds.
    async fn delete_endpoint(&self, endpoint: &str) -> Result<(), SendError>;
    /// Publishes an SNS message with per-platform JSON (`MessageStructure=json`).
    async fn publish(
        &self,
        endpoint: &str,
        platform: Platform,
        message: &PushMessage,
    ) -> Result<String, SendError>;
}

/// A message queue with at-least-once delivery.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends all bodies (batched by the adapter: at most 10 per request on SQS).
    async fn send_all(&self, bodies: &[String]) -> StoreResult<()>;
    /// Sends one body that becomes visible `delay` from now, in whole seconds rounded up (SQS's
    /// DelaySeconds: at most 15 minutes, longer is capped).
    async fn send_later(&self, body: &str, delay: std::time::Duration) -> StoreResult<()>;
    /// Receives up to `max` messages, hiding them for the visibility timeout.
    async fn receive(&self, max: usize) -> StoreResult<Vec<ReceivedMessage>>;
    /// Deletes a processed message.
    async fn ack(&self, receipt: &str) -> StoreResult<()>;
    /// Makes a message visible again at once (a failed attempt).
    async fn nack(&self, receipt: &str) -> StoreResult<()>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
}

/// Why a POST got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The destination is not allowed (scheme, private address): retrying will not help.
    #[error("refused: {0}")]
    Refused(String),
    /// Network trouble or a timeout: worth another try.
    #[error("{0}")]
    Failed(String),
}

/// Outbound HTTP for callbacks: one POST, no redirects followed, bounded time.
#[async_trait]
pub trait Webhook: Send + Sync {
    /// POSTs `body` with `headers`; the response status, or why there was none.
    async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> Result<u16, PostError>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub trait IdGenerator: Send + Sync {
    fn new_id(&self) -> Uuid;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Random (v4) ids.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn new_id(&self) -> Uuid {
        Uuid::new_v4()
    }
}

/// A clock tests move by hand.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(std::sync::Mutex::new(start))
    }
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }
    pub fn advance(&self, d: chrono::Duration) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *g += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Predictable ids for tests: 00000000-0000-4000-8000-{counter}.
#[derive(Debug, Default)]
pub struct SequentialIds(std::sync::atomic::AtomicU64);

impl IdGenerator for SequentialIds {
    fn new_id(&self) -> Uuid {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0000u128 | n as u128)
    }
}

// ---------------------------------------------------------------------------------------------
// The bag

/// Everything the services use from the outside world.
#[derive(Clone)]
pub struct Ports {
    pub notifications: Arc<dyn NotificationStore>,
    pub inbox: Arc<dyn InboxStore>,
    pub directory: Arc<dyn Directory>,
    pub fanout_queue: Arc<dyn Queue>,
    pub delivery_queue: Arc<dyn Queue>,
    /// Email jobs, consumed at the account's SES rate (`service::emails`).
    pub email_queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub webhook: Arc<dyn Webhook>,
    pub devices: Arc<dyn DeviceStore>,
    pub mailer: Arc<dyn Mailer>,
    pub push: Arc<dyn PushGateway>,
    /// Realtime connections, told what changed after each write.
    pub realtime: Arc<dyn Realtime>,
    /// Who holds which WebSocket connection (the realtime function writes it; realtime reads it).
    pub connections: Arc<dyn ConnectionStore>,
    /// Links in emails; `None` in functions that send no email and serve no link.
    pub channels: Option<crate::email::ChannelSettings>,
    /// The services' tunables.
    pub settings: crate::settings::Settings,
}
