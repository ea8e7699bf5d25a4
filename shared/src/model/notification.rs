//! A notification: who it is for, what it says, when it goes out, and how delivery went.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CompanyId, UserId};

pub type NotificationId = Uuid;

/// Default life of an inbox item: 14 days, as the in-app notification spec says.
pub const DEFAULT_TTL_SECONDS: u64 = 14 * 24 * 3600;

/// The group-send broadcast types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BroadcastType {
    GE,
    GT,
    SN,
    JN,
    GA,
    UN,
}

impl BroadcastType {
    pub fn as_str(self) -> &'static str {
        match self {
            BroadcastType::GE => "GE",
            BroadcastType::GT => "GT",
            BroadcastType::SN => "SN",
            BroadcastType::JN => "JN",
            BroadcastType::GA => "GA",
            BroadcastType::UN => "UN",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "GE" => BroadcastType::GE,
            "GT" => BroadcastType::GT,
            "SN" => BroadcastType::SN,
            "JN" => BroadcastType::JN,
            "GA" => BroadcastType::GA,
            "UN" => BroadcastType::UN,
            _ => return None,
        })
    }
}

/// Which API the notification came in through: decides defaults (titles) and history type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    GroupSend,
    DepartmentNotify,
    DesktopAssistant,
    AppNotification,
}

impl Origin {
    /// Every origin.
    pub const ALL: [Origin; 4] =
        [Origin::GroupSend, Origin::DepartmentNotify, Origin::DesktopAssistant, Origin::AppNotification];

    /// Its name as stored and shown (`groupSend`, …): the metrics' `Dialect`.
    pub fn name(self) -> &'static str {
        match self {
            Origin::GroupSend => "groupSend",
            Origin::DepartmentNotify => "departmentNotify",
            Origin::DesktopAssistant => "desktopAssistant",
            Origin::AppNotification => "appNotification",
        }
    }
}

/// Who a notification is for, before it is resolved to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Audience {
    /// Accepted attendees of the given teams of an event (GE).
    #[serde(rename_all = "camelCase")]
    EventTeams { event_id: Uuid, team_ids: Vec<String> },
    /// Members of company teams (GT).
    #[serde(rename_all = "camelCase")]
    Teams { company_id: CompanyId, team_ids: Vec<String> },
    /// Subscribers of a smart library, for the given entries (SN).
    #[serde(rename_all = "camelCase")]
    SmartLibrary { library_id: u64, entry_ids: Vec<String> },
    /// Job notification: the given teams, or the whole company when none are given (JN).
    #[serde(rename_all = "camelCase")]
    Company { company_id: CompanyId, team_ids: Vec<String> },
    /// Users of an asset (GA).
    #[serde(rename_all = "camelCase")]
    Asset { brochure_id: u64 },
    /// Named people (UN, department notify, desktop assistant, app notification).
    #[serde(rename_all = "camelCase")]
    Users { user_ids: Vec<UserId> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub enum Priority {
    #[default]
    Normal,
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum IconType {
    #[default]
    Info,
    Success,
    Failure,
    Warning,
    Mention,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ToastType {
    #[default]
    Timed,
    Hidden,
}

/// Markdown-subset overrides of title and body, and a custom icon.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OverrideContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NavigationTarget {
    Dialog,
    Inline,
    NewWindow,
}

/// A button on a notification card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub title: String,
    pub data: ActionData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ActionData {
    #[serde(rename_all = "camelCase")]
    Url {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        navigation_target: Option<NavigationTarget>,
    },
    #[serde(rename_all = "camelCase")]
    Sidepane {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pane_options: Option<serde_json::Value>,
        navigation_target: serde_json::Value,
    },
    #[serde(rename_all = "camelCase")]
    TeamsChat {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chat_id: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        member_ids: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entity_context: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chat_title: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        initial_message: Option<String>,
    },
}

/// Declares what a recipient sees once, for two items: [`Content`], a notification's, and
/// [`InboxContent`], the same fields stored once per notification for its recipients beside its
/// id, origin and times. Flat in both, with no `#[serde(flatten)]`: a flattened `Content` made
/// decoding a center page's contents 1.7 times slower (docs/decisions/0013-one-content.md).
macro_rules! what_a_recipient_sees {
    ($($(#[$meta:meta])* $field:ident: $ty:ty,)*) => {
        /// What the recipient sees.
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct Content {
            $($(#[$meta])* pub $field: $ty,)*
        }

        /// What a notification shows, the same for all its recipients: stored once per
        /// notification (`model::inbox` says how a person's entry joins it).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct InboxContent {
            pub notification_id: NotificationId,
            pub origin: Origin,
            $($(#[$meta])* pub $field: $ty,)*
            pub created_at: DateTime<Utc>,
            pub expires_at: DateTime<Utc>,
        }

        impl InboxContent {
            /// A notification's content as its recipients' centers store it.
            pub fn new(
                notification_id: NotificationId,
                origin: Origin,
                content: Content,
                (created_at, expires_at): (DateTime<Utc>, DateTime<Utc>),
            ) -> Self {
                InboxContent { notification_id, origin, $($field: content.$field,)* created_at, expires_at }
            }
        }
    };
}

what_a_recipient_sees! {
    title: String,
    body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    override_content: Option<OverrideContent>,
    #[serde(default)]
    icon: IconType,
    #[serde(default)]
    toast: ToastType,
    #[serde(default)]
    priority: Priority,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    actions: Vec<Action>,
    /// Caller-supplied JSON text for extensibility (app notification `Data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    /// Where it came from, shown to the recipient (`mim`, `pe`, a department name, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailParam {
    pub key: String,
    pub value: String,
}

/// An email to send with the notification (group-send v3+).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailSpec {
    pub template: String,
    pub subject: String,
    #[serde(default)]
    pub params: Vec<EmailParam>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl EmailSpec {
    /// Whether it has content beyond its template and subject (a body or parameters): what a
    /// store keeps apart from the notification (see `Notification::without_email_content`).
    pub fn has_content(&self) -> bool {
        self.body.is_some() || !self.params.is_empty()
    }
}

/// A caller's schedule, kept as given (for history) beside the instant it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub timezone_id: String,
    pub local_date_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
}

/// Where to report the outcome (department notify).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Callback {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    pub department_id: Uuid,
    pub user_id: Uuid,
    /// The `requestUUID` the notify call answered with, echoed in the callback.
    pub request_id: Uuid,
}

/// What happened to a callback: recorded once its tries are over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackResult {
    pub delivered: bool,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Stored, waiting for its due time.
    Pending,
    /// Claimed by one fan-out run, which is resolving the audience and enqueueing chunks.
    FanningOut,
    /// All chunks enqueued; waiting for the deliveries to report.
    Delivering,
    /// Every chunk delivered.
    Delivered,
    /// Gave up: the reason is in `failure`.
    Failed,
    /// Stopped by its sender (`cancelled` says when and by whom): it fans out no further, and no
    /// chunk starts after it. Chunks that had started finish (their people are what the cancel
    /// answered as reached), and their counts are added as they are recorded.
    Cancelled,
}

impl Status {
    /// The word answers and history show.
    pub fn word(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::FanningOut | Status::Delivering => "sending",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    /// Whether a sender may still stop it: not delivered, failed or cancelled yet.
    pub fn cancellable(self) -> bool {
        matches!(self, Status::Pending | Status::FanningOut | Status::Delivering)
    }
}

/// When and by whom a notification was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancellation {
    pub at: DateTime<Utc>,
    /// The sender's id as the dialect names it (a user number, a department's client id).
    pub by: String,
}

/// Where a fan-out run got to, so that a crashed run resumes without re-sending chunks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutProgress {
    /// Chunks enqueued so far (chunk numbers 0..chunks_enqueued are on the delivery queue).
    pub chunks_enqueued: u32,
    /// Recipients in those chunks.
    pub recipients_enqueued: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: NotificationId,
    /// The public numeric id of the group-send dialect (positive, increasing, ≤ 2^53).
    pub schedule_id: u64,
    pub company_id: CompanyId,
    pub origin: Origin,
    /// The history type (GT, GE, ...). Single-person dialects record UN.
    pub broadcast_type: BroadcastType,
    pub audience: Audience,
    pub content: Content,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brochure_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<Callback>,
    /// Free text shown in history (for ad hoc group sends: the team ids).
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub team_ids: Vec<String>,
    /// Life of the inbox items this notification creates, from delivery.
    pub ttl_seconds: u64,
    pub due_at: DateTime<Utc>,
    /// While FanningOut: until when the claiming run owns the fan-out. After it, the run is
    /// presumed crashed and the notification is due again (it resumes from `fanout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<DateTime<Utc>>,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// The id of the request that made it (`crate::trace`): every log line about it carries it,
    /// in every function it passes through. Absent from an earlier version's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_request: Option<String>,
    pub modified_at: DateTime<Utc>,
    pub modified_by: String,
    /// Recipients the fan-out planned (after dedupe and unsubscribes).
    #[serde(default)]
    pub recipients: u64,
    /// Inbox items written so far: the honest "sent" count.
    #[serde(default)]
    pub delivered: u64,
    /// Chunks whose delivery is recorded.
    #[serde(default)]
    pub chunks_done: u32,
    /// Total chunks, known once fan-out finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_total: Option<u32>,
    #[serde(default)]
    pub fanout: FanoutProgress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Set with `Status::Cancelled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<Cancellation>,
    /// The group send's `campaignTagId`, which its url carries (`?campaignTagId=`): a change of
    /// the url carries it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_tag_id: Option<u64>,
    /// Changes made to it while pending (`SendControl::change`): each one conditional on the
    /// revision it read, so two changes at once never lose one of them.
    #[serde(default)]
    pub revision: u64,
    /// Whether every chunk of it starts through its gate (`DeliveryLedger::start_chunk`): true of
    /// every notification this version stores; an earlier version's started chunks uncounted,
    /// so a cancel can stop it exactly only while it is pending.
    #[serde(default)]
    pub gated: bool,
    /// The department a department notify came from (its cancel checks it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department_id: Option<Uuid>,
    /// Whether each of its chunks keeps the list of its people before it writes their entries
    /// (`RecallLedger::recipients`): true of every notification this version stores; an
    /// earlier version's chunks kept none, so it cannot be retracted (nobody could say whose
    /// centers hold it).
    #[serde(default)]
    pub keeps_recipients: bool,
    /// Retracted by its sender (when, by whom): removed from every recipient's center, chunk by
    /// chunk, in the background (`service::recall`). Final: it is not corrected after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retracted: Option<Cancellation>,
    /// Its last correction after it went out (when, by whom): its content is the corrected one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected: Option<Cancellation>,
    /// Whether its tenant had a webhook endpoint when it was accepted: its status events
    /// (`service::webhooks::settle`) are owed only then, so that a notification of a tenant
    /// without one costs no look at the endpoint as it goes along.
    #[serde(default)]
    pub hooks: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_result: Option<CallbackResult>,
    /// Email outcomes, per recipient (top-level counters so that stores can add to them).
    #[serde(default)]
    pub emails_sent: u64,
    #[serde(default)]
    pub emails_opted_out: u64,
    #[serde(default)]
    pub emails_no_address: u64,
    #[serde(default)]
    pub emails_failed: u64,
    /// Recipients whose email is queued and not settled yet (paced, or waiting out throttling).
    #[serde(default)]
    pub emails_pending: u64,
    /// Recipients not mailed because their address bounced or complained before.
    #[serde(default)]
    pub emails_suppressed: u64,
    /// Recipients not mailed because the notification was retracted before their email went
    /// out.
    #[serde(default)]
    pub emails_withdrawn: u64,
    /// Emails of this notification that bounced for good, or that their recipient reported as
    /// spam (SES's events, counted once per email).
    #[serde(default)]
    pub emails_bounced: u64,
    #[serde(default)]
    pub emails_complained: u64,
    /// Push outcomes, per device.
    #[serde(default)]
    pub pushes_sent: u64,
    #[serde(default)]
    pub pushes_removed: u64,
    #[serde(default)]
    pub pushes_failed: u64,
    /// Devices not published to because the notification was retracted first.
    #[serde(default)]
    pub pushes_withdrawn: u64,
}

impl Notification {
    /// Whether a chunk keeps the list of its people before its entries are written (what a
    /// retraction removes): every chunk but the first of a notification to named people, whose
    /// people are the ones it names.
    pub fn keeps_list(&self, chunk: u32) -> bool {
        !(chunk == 0 && matches!(self.audience, Audience::Users { .. }))
    }

    /// A new pending notification with everything else empty: the dialects fill in the rest.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: NotificationId,
        schedule_id: u64,
        company_id: CompanyId,
        origin: Origin,
        broadcast_type: BroadcastType,
        audience: Audience,
        content: Content,
        created_by: String,
        now: DateTime<Utc>,
    ) -> Self {
        Notification {
            id,
            schedule_id,
            company_id,
            origin,
            broadcast_type,
            audience,
            content,
            email: None,
            brochure_id: None,
            schedule: None,
            callback: None,
            description: String::new(),
            team_ids: Vec::new(),
            ttl_seconds: DEFAULT_TTL_SECONDS,
            due_at: now,
            lease_until: None,
            status: Status::Pending,
            created_at: now,
            modified_at: now,
            modified_by: created_by.clone(),
            created_by,
            origin_request: None,
            recipients: 0,
            delivered: 0,
            chunks_done: 0,
            chunks_total: None,
            fanout: FanoutProgress::default(),
            failure: None,
            cancelled: None,
            campaign_tag_id: None,
            revision: 0,
            gated: true,
            department_id: None,
            keeps_recipients: true,
            retracted: None,
            corrected: None,
            hooks: false,
            callback_result: None,
            emails_sent: 0,
            emails_opted_out: 0,
            emails_no_address: 0,
            emails_failed: 0,
            emails_pending: 0,
            emails_suppressed: 0,
            emails_withdrawn: 0,
            emails_bounced: 0,
            emails_complained: 0,
            pushes_sent: 0,
            pushes_removed: 0,
            pushes_failed: 0,
            pushes_withdrawn: 0,
        }
    }

    /// Adds one chunk's outcomes.
    pub fn add(&mut self, t: &super::ChunkTally) {
        self.delivered += t.delivered;
        self.emails_pending += t.emails_queued;
        self.pushes_sent += t.pushes.sent;
        self.pushes_removed += t.pushes.removed;
        self.pushes_failed += t.pushes.failed;
        self.pushes_withdrawn += t.pushes.withdrawn;
    }

    /// Adds one email job's outcomes: its recipients leave the pending count.
    pub fn add_emails(&mut self, c: &super::EmailCounts) {
        self.emails_sent += c.sent;
        self.emails_opted_out += c.opted_out;
        self.emails_no_address += c.no_address;
        self.emails_failed += c.failed;
        self.emails_suppressed += c.suppressed;
        self.emails_withdrawn += c.withdrawn;
        self.emails_pending = self.emails_pending.saturating_sub(c.settled());
    }

    /// The notification as delivering a chunk reads it: its email's template and subject, not
    /// its body and parameters (hundreds of KB at most: a store keeps them in items of
    /// their own, written once, read by the email jobs that render them and by sent history).
    pub fn without_email_content(mut self) -> Self {
        if let Some(email) = self.email.as_mut() {
            email.body = None;
            email.params.clear();
        }
        self
    }

    /// The notification as sent history reads it: its email's parameters (history shows them),
    /// not its body.
    pub fn without_email_body(mut self) -> Self {
        if let Some(email) = self.email.as_mut() {
            email.body = None;
        }
        self
    }

    /// Whether the notification goes to people's phones as well as their notification center:
    /// group sends are push notifications (their spec's own words); the other dialects address
    /// the desktop and in-app centers.
    pub fn pushes(&self) -> bool {
        self.origin == Origin::GroupSend
    }

    pub fn successful(&self) -> bool {
        self.status == Status::Delivered
    }
}

/// One unit of delivery work: up to a few hundred recipients of one notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryChunk {
    pub notification_id: NotificationId,
    pub chunk: u32,
    pub recipients: Vec<UserId>,
    /// Whether anyone of the company has a device, as fan-out found (read once per fan-out
    /// instead of once per chunk); `None`: not known, delivery looks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<bool>,
    /// `Some(round)`: the message carries the chunk's pushes only, continuing them after its
    /// entries were recorded (SNS throttled or failed, a mark could not be written, or the
    /// invocation's deadline came near): a push job of its own, so that a push never fails,
    /// repeats or gives up an in-app delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_round: Option<u32>,
    /// Times the message was handed to a new one instead of using up a receive (its invocation's
    /// deadline was near, or DynamoDB refused for throughput): bounded, so that a chunk that can
    /// never go through still reaches its last receive and is given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand_overs: Option<u32>,
    /// Times the chunk came back from the delivery queue's dead-letter queue to be tried again
    /// (every receive of it had been killed: a timeout under load is not poison). Once: the
    /// second time it reaches the dead-letter queue, its notification is given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revived: Option<u32>,
}

/// The emails of part of a chunk (at most `EMAIL_JOB_SIZE` recipients), sent apart from its
/// inbox items at the account's SES rate. Its outcome is counted once per (chunk, part); a job
/// that could not finish (throttled, or its invocation's deadline near) continues as the same
/// job one `round` later, skipping what the chunk's sent marks show as done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailJob {
    pub notification_id: NotificationId,
    pub chunk: u32,
    /// Which part of the chunk's recipients (the field that tells an email job from a chunk).
    pub email_part: u32,
    pub recipients: Vec<UserId>,
    /// Continuations so far.
    #[serde(default)]
    pub round: u32,
    /// New messages it was handed to, not started for time (bounded: `settings::HAND_OVERS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand_overs: Option<u32>,
}

/// A request to fan a notification out now (ad hoc sends skip waiting for the next tick).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutJob {
    pub notification_id: NotificationId,
    /// A job recalling what went out (a retraction's or a correction's plan), not a fan-out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recall: Option<Recall>,
}

/// What a sender does to a notification that went out, in every center that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Recall {
    /// Its entries are removed.
    Retract,
    /// Its content was replaced (once, for every center): open pages are told.
    Correct,
}

/// One chunk's part of a recall, on the delivery queue (the field `recall` tells it from a
/// chunk): the people the chunk kept, their entries removed (a retraction) or their open pages
/// told (both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecallStep {
    pub notification_id: NotificationId,
    pub chunk: u32,
    pub recall: Recall,
    /// New messages it was handed to while an attempt held the chunk (bounded as a chunk's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand_overs: Option<u32>,
}

/// What to look up in sent history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryScope {
    /// A company's notifications of one broadcast type (GT, JN, SN, UN, ...).
    CompanyType { company_id: CompanyId, broadcast_type: BroadcastType },
    /// An event's notifications (GE).
    Event { event_id: Uuid },
    /// An asset's notifications (GA).
    Asset { brochure_id: u64 },
}
