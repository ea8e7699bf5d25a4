//! In-memory adapters: the local runner's embedded storage and the unit tests' fast path.
//! They keep the same contracts as the DynamoDB/SQS adapters (the conformance suite runs against
//! both): conditional writes conflict, pages continue with opaque tokens, queues redeliver.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::directory::DirectorySnapshot;
use crate::error::{StoreError, StoreResult};
use crate::model::*;
use crate::ports::*;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another test thread must not cascade into poisoned-lock panics here.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opaque cursors of the memory adapters: the key of the last item returned.
fn encode_cursor(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("m:{key}"))
}

fn decode_cursor(token: &str) -> StoreResult<String> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("m:").map(str::to_string))
        .ok_or_else(|| StoreError::InvalidData("nextToken is not a token this service issued".into()))
}

/// Pages a list sorted ascending by `key`. The token is the (encoded) key of the last item
/// returned, so a page continues correctly even when that item has since gone (dismissed,
/// expired); a token we did not issue is refused, as the DynamoDB adapter refuses it.
fn page_by_key<T: Clone>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    page: &PageRequest,
) -> StoreResult<Page<T>> {
    let start = match &page.after {
        None => 0,
        Some(token) => {
            let after = decode_cursor(token)?;
            items.partition_point(|i| key(i) <= after)
        }
    };
    let limit = page.limit.max(1);
    let slice: Vec<T> = items[start..].iter().take(limit).cloned().collect();
    let next = if start + slice.len() < items.len() {
        slice.last().map(|last| encode_cursor(&key(last)))
    } else {
        None
    };
    Ok(Page { items: slice, next })
}

// ---------------------------------------------------------------------------------------------
// Notifications

/// Request digest, answer once known, expiry.
type IdempotencyEntry = (String, Option<(u16, String)>, DateTime<Utc>);

#[derive(Default)]
struct NotificationState {
    by_id: HashMap<NotificationId, Notification>,
    by_schedule_id: HashMap<u64, NotificationId>,
    chunks: HashSet<(NotificationId, u32)>,
    /// Email jobs recorded: (notification, chunk, part).
    email_parts: HashSet<(NotificationId, u32, u32)>,
    /// Bounces and complaints counted: (notification, SES message id, kind).
    feedback: HashSet<(NotificationId, String, FeedbackKind)>,
    counter: u64,
    idempotency: HashMap<String, IdempotencyEntry>,
    quotas: HashMap<(CompanyId, String), u64>,
    marks: HashMap<(NotificationId, u32), HashSet<String>>,
}

#[derive(Default)]
pub struct MemoryNotificationStore {
    state: Mutex<NotificationState>,
}

impl MemoryNotificationStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every stored notification (tests and benchmarks inspect with it).
    pub fn all(&self) -> Vec<Notification> {
        lock(&self.state).by_id.values().cloned().collect()
    }

    fn complete_if_done(n: &mut Notification, now: DateTime<Utc>) {
        if n.status == Status::Delivering && n.chunks_total == Some(n.chunks_done) {
            n.status = Status::Delivered;
            n.modified_at = now;
        }
    }
}

fn in_scope(n: &Notification, scope: &HistoryScope) -> bool {
    n.origin == Origin::GroupSend
        && match scope {
            HistoryScope::CompanyType { company_id, broadcast_type } => {
                n.company_id == *company_id && n.broadcast_type == *broadcast_type
            }
            HistoryScope::Event { event_id } => {
                matches!(&n.audience, Audience::EventTeams { event_id: e, .. } if e == event_id)
            }
            HistoryScope::Asset { brochure_id } => {
                n.broadcast_type == BroadcastType::GA && n.brochure_id == Some(*brochure_id)
            }
        }
}

#[async_trait]
impl NotificationStore for MemoryNotificationStore {
    async fn next_schedule_id(&self) -> StoreResult<u64> {
        let mut s = lock(&self.state);
        s.counter += 1;
        Ok(s.counter)
    }

    async fn insert(&self, n: &Notification) -> StoreResult<()> {
        let mut s = lock(&self.state);
        if s.by_id.contains_key(&n.id) || s.by_schedule_id.contains_key(&n.schedule_id) {
            return Err(StoreError::Conflict(format!("notification {} exists", n.id)));
        }
        s.by_schedule_id.insert(n.schedule_id, n.id);
        s.by_id.insert(n.id, n.clone());
        Ok(())
    }

    async fn get(&self, id: NotificationId) -> StoreResult<Option<Notification>> {
        Ok(lock(&self.state).by_id.get(&id).cloned())
    }

    async fn get_by_schedule_id(&self, schedule_id: u64) -> StoreResult<Option<Notification>> {
        let s = lock(&self.state);
        Ok(s.by_schedule_id.get(&schedule_id).and_then(|id| s.by_id.get(id)).cloned())
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<NotificationId>> {
        let s = lock(&self.state);
        let mut due: Vec<_> = s
            .by_id
            .values()
            .filter_map(|n| match n.status {
                Status::Pending if n.due_at <= now => Some((n.due_at, n.id)),
                Status::FanningOut => n.lease_until.filter(|l| *l <= now).map(|l| (l, n.id)),
                _ => None,
            })
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    async fn claim(
        &self,
        id: NotificationId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut s = lock(&self.state);
        match s.by_id.get_mut(&id) {
            Some(n)
                if (n.status == Status::Pending && n.due_at <= now)
                    || (n.status == Status::FanningOut && n.lease_until.is_some_and(|l| l <= now)) =>
            {
                n.status = Status::FanningOut;
                n.lease_until = Some(lease_until);
                n.modified_at = now;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn save_progress(
        &self,
        id: NotificationId,
        progress: &FanoutProgress,
        held: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut s = lock(&self.state);
        match s.by_id.get_mut(&id) {
            Some(n) if n.status == Status::FanningOut && n.lease_until == Some(held) => {
                n.fanout = progress.clone();
                n.lease_until = Some(lease_until);
                Ok(())
            }
            _ => Err(StoreError::Conflict(format!("notification {id} is not fanning out"))),
        }
    }

    async fn finish_fanout(
        &self,
        id: NotificationId,
        chunks: u32,
        recipients: u64,
        held: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Status> {
        let mut s = lock(&self.state);
        match s.by_id.get_mut(&id) {
            Some(n) if n.status == Status::FanningOut && n.lease_until == Some(held) => {
                n.status = Status::Delivering;
                n.lease_until = None;
                n.chunks_total = Some(chunks);
                n.recipients = recipients;
                n.modified_at = now;
                Self::complete_if_done(n, now);
                Ok(n.status)
            }
            _ => Err(StoreError::Conflict(format!("notification {id} is not fanning out"))),
        }
    }

    async fn record_chunk(
        &self,
        id: NotificationId,
        chunk: u32,
        tally: &ChunkTally,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        let mut s = lock(&self.state);
        if !s.by_id.contains_key(&id) {
            return Err(StoreError::Conflict(format!("notification {id} does not exist")));
        }
        if !s.chunks.insert((id, chunk)) {
            return Ok(ChunkRecord::AlreadyRecorded);
        }
        let n = s.by_id.get_mut(&id).expect("checked above");
        n.add(tally);
        n.chunks_done += 1;
        n.modified_at = now;
        Self::complete_if_done(n, now);
        Ok(ChunkRecord::Recorded)
    }

    async fn complete_if_done(&self, id: NotificationId, now: DateTime<Utc>) -> StoreResult<Status> {
        let mut s = lock(&self.state);
        let n = s
            .by_id
            .get_mut(&id)
            .ok_or_else(|| StoreError::Conflict(format!("notification {id} does not exist")))?;
        Self::complete_if_done(n, now);
        Ok(n.status)
    }

    async fn chunk_recorded(&self, id: NotificationId, chunk: u32) -> StoreResult<bool> {
        Ok(lock(&self.state).chunks.contains(&(id, chunk)))
    }

    async fn chunk_context(&self, id: NotificationId, chunk: u32) -> StoreResult<ChunkContext> {
        let s = lock(&self.state);
        Ok(ChunkContext {
            notification: s.by_id.get(&id).cloned(),
            recorded: s.chunks.contains(&(id, chunk)),
            marks: SentMarks(s.marks.get(&(id, chunk)).cloned().unwrap_or_default()),
        })
    }

    async fn email_context(&self, id: NotificationId, chunk: u32, part: u32) -> StoreResult<ChunkContext> {
        let s = lock(&self.state);
        Ok(ChunkContext {
            notification: s.by_id.get(&id).cloned(),
            recorded: s.email_parts.contains(&(id, chunk, part)),
            marks: SentMarks(s.marks.get(&(id, chunk)).cloned().unwrap_or_default()),
        })
    }

    async fn record_emails(
        &self,
        id: NotificationId,
        chunk: u32,
        part: u32,
        counts: &EmailCounts,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        let mut s = lock(&self.state);
        if !s.by_id.contains_key(&id) {
            return Err(StoreError::Conflict(format!("notification {id} does not exist")));
        }
        if !s.email_parts.insert((id, chunk, part)) {
            return Ok(ChunkRecord::AlreadyRecorded);
        }
        let n = s.by_id.get_mut(&id).expect("checked above");
        n.add_emails(counts);
        n.modified_at = now;
        Ok(ChunkRecord::Recorded)
    }

    async fn record_feedback(
        &self,
        id: NotificationId,
        message_id: &str,
        kind: FeedbackKind,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        let mut s = lock(&self.state);
        if !s.by_id.contains_key(&id) {
            return Err(StoreError::Conflict(format!("notification {id} does not exist")));
        }
        if !s.feedback.insert((id, message_id.to_string(), kind)) {
            return Ok(ChunkRecord::AlreadyRecorded);
        }
        let n = s.by_id.get_mut(&id).expect("checked above");
        match kind {
            FeedbackKind::Bounce => n.emails_bounced += 1,
            FeedbackKind::Complaint => n.emails_complained += 1,
        }
        n.modified_at = now;
        Ok(ChunkRecord::Recorded)
    }

    async fn add_sent_marks(
        &self,
        id: NotificationId,
        chunk: u32,
        keys: &[String],
        _now: DateTime<Utc>,
    ) -> StoreResult<()> {
        lock(&self.state).marks.entry((id, chunk)).or_default().extend(keys.iter().cloned());
        Ok(())
    }

    async fn mark_failed(&self, id: NotificationId, reason: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let mut s = lock(&self.state);
        if let Some(n) = s.by_id.get_mut(&id) {
            n.status = Status::Failed;
            n.lease_until = None;
            n.failure = Some(reason.to_string());
            n.modified_at = now;
        }
        Ok(())
    }

    async fn consume_quota(
        &self,
        company: CompanyId,
        day: &str,
        recipients: u64,
        cap: u64,
    ) -> StoreResult<bool> {
        let mut s = lock(&self.state);
        let used = s.quotas.entry((company, day.to_string())).or_default();
        if used.saturating_add(recipients) > cap {
            return Ok(false);
        }
        *used += recipients;
        Ok(true)
    }

    async fn record_callback(&self, id: NotificationId, result: &CallbackResult) -> StoreResult<()> {
        if let Some(n) = lock(&self.state).by_id.get_mut(&id) {
            n.callback_result = Some(result.clone());
        }
        Ok(())
    }

    async fn history(&self, scope: &HistoryScope, page: &PageRequest) -> StoreResult<Page<Notification>> {
        let mut items: Vec<Notification> =
            lock(&self.state).by_id.values().filter(|n| in_scope(n, scope)).cloned().collect();
        // Newest first; a fixed-width key keeps the order of the cursor strings numeric.
        items.sort_by_key(|n| std::cmp::Reverse(n.schedule_id));
        let key = |n: &Notification| format!("{:020}", u64::MAX - n.schedule_id);
        page_by_key(items, key, page)
    }

    async fn claim_idempotency(
        &self,
        scope: &str,
        digest: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyClaim> {
        let mut s = lock(&self.state);
        match s.idempotency.get(scope) {
            Some((d, answer, exp)) if *exp > now => {
                Ok(IdempotencyClaim::Existing { request_digest: d.clone(), answer: answer.clone() })
            }
            _ => {
                s.idempotency.insert(scope.to_string(), (digest.to_string(), None, expires_at));
                Ok(IdempotencyClaim::Claimed)
            }
        }
    }

    async fn complete_idempotency(&self, r: &IdempotencyRecord) -> StoreResult<()> {
        lock(&self.state).idempotency.insert(
            r.scope.clone(),
            (r.request_digest.clone(), Some((r.status, r.body.clone())), r.expires_at),
        );
        Ok(())
    }

    async fn release_idempotency(&self, scope: &str) -> StoreResult<()> {
        lock(&self.state).idempotency.remove(scope);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Inbox

/// Display order of an item: see [`InboxItem::order_parts`].
type OrderKey = (u8, u64, NotificationId);

/// One stored item: its place, the content it shares with every recipient of the notification,
/// and what is the recipient's own (dismissal). A million recipients of one broadcast hold one
/// copy of its text, not a million.
struct Entry {
    order: OrderKey,
    content: Arc<InboxItem>,
    dismissed_at: Option<DateTime<Utc>>,
}

impl Entry {
    fn item(&self, user: UserId) -> InboxItem {
        let mut item = (*self.content).clone();
        item.user_id = user;
        item.dismissed_at = self.dismissed_at;
        item
    }

    fn is_visible(&self, now: DateTime<Utc>) -> bool {
        self.dismissed_at.is_none() && self.content.expires_at > now
    }
}

/// One user's center, kept sorted by display key: a read walks it from its cursor instead of
/// sorting everything. A plain sorted vector: centers are small, and a map per user would
/// allocate whole nodes for users with a single item (a million recipients, a million maps).
#[derive(Default)]
struct UserInbox {
    sorted: Vec<Entry>,
}

impl UserInbox {
    fn position(&self, id: NotificationId) -> Option<usize> {
        self.sorted.iter().position(|e| e.order.2 == id)
    }
}

#[derive(Default)]
struct InboxState {
    users: HashMap<UserId, UserInbox>,
    /// The shared content of each notification's items.
    contents: HashMap<NotificationId, Arc<InboxItem>>,
}

#[derive(Default)]
pub struct MemoryInboxStore {
    state: Mutex<InboxState>,
}

fn order_text((rank, inverted, id): &OrderKey) -> String {
    format!("{rank}#{inverted:013}#{id}")
}

impl MemoryInboxStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many items are stored, visible or not.
    pub fn item_count(&self) -> usize {
        lock(&self.state).users.values().map(|u| u.sorted.len()).sum()
    }

    /// Every stored item of every user, visible or not (tests and benchmarks count with it).
    pub fn all_items(&self) -> Vec<InboxItem> {
        lock(&self.state)
            .users
            .iter()
            .flat_map(|(u, inbox)| inbox.sorted.iter().map(|e| e.item(*u)))
            .collect()
    }
}

#[async_trait]
impl InboxStore for MemoryInboxStore {
    async fn put_all(&self, items: &[InboxItem]) -> StoreResult<()> {
        let mut state = lock(&self.state);
        let InboxState { users, contents } = &mut *state;
        for item in items {
            let content = match contents.get(&item.notification_id) {
                Some(shared) if shared.same_content(item) => shared.clone(),
                _ => {
                    let mut shared = item.clone();
                    shared.user_id = UserId::nil();
                    shared.dismissed_at = None;
                    let shared = Arc::new(shared);
                    contents.insert(item.notification_id, shared.clone());
                    shared
                }
            };
            let user = users.entry(item.user_id).or_default();
            if let Some(at) = user.position(item.notification_id) {
                user.sorted.remove(at);
            }
            let order = item.order_parts();
            let at = user.sorted.partition_point(|e| e.order < order);
            user.sorted.insert(at, Entry { order, content, dismissed_at: item.dismissed_at });
        }
        Ok(())
    }

    async fn get(&self, user: UserId, notification: NotificationId) -> StoreResult<Option<InboxItem>> {
        let state = lock(&self.state);
        Ok(state.users.get(&user).and_then(|u| u.position(notification).map(|at| u.sorted[at].item(user))))
    }

    async fn list(
        &self,
        user: UserId,
        query: &InboxQuery,
        now: DateTime<Utc>,
        page: &PageRequest,
    ) -> StoreResult<Page<InboxItem>> {
        let state = lock(&self.state);
        let Some(inbox) = state.users.get(&user) else { return Ok(Page::empty()) };
        match query {
            InboxQuery::Ordered => {
                let after = match page.after.as_deref() {
                    None => None,
                    Some(token) => {
                        Some(InboxItem::parse_order_key(&decode_cursor(token)?).ok_or_else(|| {
                            StoreError::InvalidData("nextToken is not a token this service issued".into())
                        })?)
                    }
                };
                let start = after.map_or(0, |a| inbox.sorted.partition_point(|e| e.order <= a));
                let limit = page.limit.max(1);
                let mut items = Vec::with_capacity(limit);
                let mut last_key = None;
                let mut more = false;
                for entry in &inbox.sorted[start..] {
                    if !entry.is_visible(now) {
                        continue;
                    }
                    if items.len() == limit {
                        more = true;
                        break;
                    }
                    items.push(entry.item(user));
                    last_key = Some(&entry.order);
                }
                let next = if more { last_key.map(|k| encode_cursor(&order_text(k))) } else { None };
                Ok(Page { items, next })
            }
            InboxQuery::Since(since) => {
                let mut items: Vec<InboxItem> = inbox
                    .sorted
                    .iter()
                    .filter(|e| e.is_visible(now) && e.content.created_at > *since)
                    .map(|e| e.item(user))
                    .collect();
                let key = |i: &InboxItem| {
                    format!("{:020}#{}", i64::MAX - i.created_at.timestamp_millis(), i.notification_id)
                };
                items.sort_by_key(key);
                page_by_key(items, key, page)
            }
        }
    }

    async fn dismiss(
        &self,
        user: UserId,
        notification: NotificationId,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut state = lock(&self.state);
        let found =
            state.users.get_mut(&user).and_then(|u| u.position(notification).map(|i| &mut u.sorted[i]));
        match found {
            Some(entry) => {
                entry.dismissed_at.get_or_insert(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Directory

#[derive(Default)]
struct DirectoryState {
    credentials: HashMap<String, Credential>,
    companies: HashMap<CompanyId, Company>,
    users: HashMap<UserId, User>,
    users_by_email: HashMap<String, UserId>,
    company_members: HashMap<CompanyId, Vec<UserId>>,
    teams: HashMap<(CompanyId, String), Vec<UserId>>,
    events: HashMap<Uuid, Event>,
    attendees: HashMap<(Uuid, String), Vec<Attendee>>,
    smart_libraries: HashMap<u64, (SmartLibrary, Vec<UserId>)>,
    assets: HashMap<u64, (Asset, Vec<UserId>, Vec<Unsubscribe>)>,
    departments: HashMap<Uuid, (Department, HashSet<UserId>)>,
    suppressions: HashMap<String, EmailSuppression>,
}

#[derive(Default)]
pub struct MemoryDirectory {
    state: Mutex<DirectoryState>,
}

impl MemoryDirectory {
    pub fn new() -> Self {
        Self::default()
    }
}

fn page_ids(mut ids: Vec<UserId>, page: &PageRequest) -> StoreResult<Page<UserId>> {
    ids.sort();
    ids.dedup();
    page_by_key(ids, |u| u.to_string(), page)
}

#[async_trait]
impl Directory for MemoryDirectory {
    async fn credential(&self, digest: &str) -> StoreResult<Option<Credential>> {
        Ok(lock(&self.state).credentials.get(digest).cloned())
    }
    async fn company(&self, id: CompanyId) -> StoreResult<Option<Company>> {
        Ok(lock(&self.state).companies.get(&id).cloned())
    }
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(lock(&self.state).users.get(&id).cloned())
    }
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        let s = lock(&self.state);
        Ok(ids.iter().filter_map(|id| s.users.get(id).cloned()).collect())
    }
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let s = lock(&self.state);
        Ok(s.users_by_email.get(&email.to_lowercase()).and_then(|id| s.users.get(id)).cloned())
    }
    async fn company_members(&self, company: CompanyId, page: &PageRequest) -> StoreResult<Page<UserId>> {
        let ids = lock(&self.state).company_members.get(&company).cloned().unwrap_or_default();
        page_ids(ids, page)
    }
    async fn teams(&self, company: CompanyId, team_ids: &[String]) -> StoreResult<Vec<Team>> {
        let s = lock(&self.state);
        let mut unique = team_ids.to_vec();
        unique.sort();
        unique.dedup();
        Ok(unique
            .into_iter()
            .filter(|t| s.teams.contains_key(&(company, t.clone())))
            .map(|id| Team { company_id: company, id })
            .collect())
    }
    async fn team(&self, company: CompanyId, team_id: &str) -> StoreResult<Option<Team>> {
        let s = lock(&self.state);
        Ok(s.teams
            .contains_key(&(company, team_id.to_string()))
            .then(|| Team { company_id: company, id: team_id.to_string() }))
    }
    async fn team_members(
        &self,
        company: CompanyId,
        team_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<UserId>> {
        let ids = lock(&self.state).teams.get(&(company, team_id.to_string())).cloned().unwrap_or_default();
        page_ids(ids, page)
    }
    async fn event(&self, id: Uuid) -> StoreResult<Option<Event>> {
        Ok(lock(&self.state).events.get(&id).cloned())
    }
    async fn event_attendees(
        &self,
        event: Uuid,
        team_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<Attendee>> {
        let mut list =
            lock(&self.state).attendees.get(&(event, team_id.to_string())).cloned().unwrap_or_default();
        list.sort_by_key(|a| a.user_id);
        page_by_key(list, |a| a.user_id.to_string(), page)
    }
    async fn smart_library(&self, id: u64) -> StoreResult<Option<SmartLibrary>> {
        Ok(lock(&self.state).smart_libraries.get(&id).map(|(l, _)| l.clone()))
    }
    async fn smart_library_subscribers(&self, id: u64, page: &PageRequest) -> StoreResult<Page<UserId>> {
        let ids = lock(&self.state).smart_libraries.get(&id).map(|(_, s)| s.clone()).unwrap_or_default();
        page_ids(ids, page)
    }
    async fn asset(&self, id: u64) -> StoreResult<Option<Asset>> {
        Ok(lock(&self.state).assets.get(&id).map(|(a, _, _)| a.clone()))
    }
    async fn asset_members(&self, id: u64, page: &PageRequest) -> StoreResult<Page<UserId>> {
        let ids = lock(&self.state).assets.get(&id).map(|(_, m, _)| m.clone()).unwrap_or_default();
        page_ids(ids, page)
    }
    async fn asset_unsubscribes(&self, id: u64) -> StoreResult<Vec<Unsubscribe>> {
        Ok(lock(&self.state).assets.get(&id).map(|(_, _, u)| u.clone()).unwrap_or_default())
    }
    async fn unsubscribe_emails(&self, asset: u64, user: UserId) -> StoreResult<()> {
        let mut s = lock(&self.state);
        let Some((_, _, prefs)) = s.assets.get_mut(&asset) else {
            return Err(StoreError::Conflict(format!("asset {asset} does not exist")));
        };
        match prefs.iter_mut().find(|p| p.user_id == user) {
            Some(p) => p.emails = true,
            None => prefs.push(Unsubscribe { user_id: user, notifications: false, emails: true }),
        }
        Ok(())
    }
    async fn suppress_email(&self, suppression: &EmailSuppression) -> StoreResult<()> {
        lock(&self.state)
            .suppressions
            .entry(suppression.address.to_ascii_lowercase())
            .or_insert_with(|| suppression.clone());
        Ok(())
    }
    async fn email_suppressions(&self, addresses: &[String]) -> StoreResult<Vec<EmailSuppression>> {
        let s = lock(&self.state);
        let wanted: HashSet<String> = addresses.iter().map(|a| a.to_ascii_lowercase()).collect();
        Ok(wanted.iter().filter_map(|a| s.suppressions.get(a).cloned()).collect())
    }
    async fn department(&self, id: Uuid) -> StoreResult<Option<Department>> {
        Ok(lock(&self.state).departments.get(&id).map(|(d, _)| d.clone()))
    }
    async fn department_has_member(&self, department: Uuid, user: UserId) -> StoreResult<bool> {
        Ok(lock(&self.state).departments.get(&department).is_some_and(|(_, m)| m.contains(&user)))
    }
    async fn touch_asset(&self, id: u64, at: DateTime<Utc>) -> StoreResult<()> {
        if let Some((a, _, _)) = lock(&self.state).assets.get_mut(&id) {
            a.last_modified = Some(at);
        }
        Ok(())
    }
    async fn touch_smart_library(&self, id: u64, at: DateTime<Utc>) -> StoreResult<()> {
        if let Some((l, _)) = lock(&self.state).smart_libraries.get_mut(&id) {
            l.last_modified = Some(at);
        }
        Ok(())
    }

    async fn load(&self, d: &DirectorySnapshot) -> StoreResult<()> {
        let mut s = lock(&self.state);
        for c in &d.companies {
            s.credentials.insert(c.api_key_sha256.clone(), Credential::CompanyApiKey { company_id: c.id });
            s.companies.insert(c.id, Company::from(c));
        }
        for u in &d.users {
            s.credentials.insert(
                u.token_sha256.clone(),
                Credential::UserToken { user_id: u.id, expires_at: u.token_expires_at },
            );
            s.users_by_email.insert(u.email.to_lowercase(), u.id);
            s.company_members.entry(u.company_id).or_default().push(u.id);
            s.users.insert(
                u.id,
                User {
                    id: u.id,
                    number: u.number,
                    company_id: u.company_id,
                    email: u.email.clone(),
                    first_name: u.first_name.clone(),
                    roles: u.roles.clone(),
                },
            );
        }
        for t in &d.teams {
            s.teams.insert((t.company_id, t.id.clone()), t.members.clone());
        }
        for e in &d.events {
            let team_ids = e.teams.iter().map(|t| t.id.clone()).collect();
            s.events
                .insert(e.id, Event { id: e.id, company_id: e.company_id, cancelled: e.cancelled, team_ids });
            for t in &e.teams {
                let list =
                    t.attendees.iter().map(|a| Attendee { user_id: a.user_id, status: a.status }).collect();
                s.attendees.insert((e.id, t.id.clone()), list);
            }
        }
        for l in &d.smart_libraries {
            let lib = SmartLibrary {
                id: l.id,
                company_id: l.company_id,
                entry_ids: l.entries.clone(),
                last_modified: None,
            };
            s.smart_libraries.insert(l.id, (lib, l.subscribers.clone()));
        }
        for a in &d.assets {
            let asset = Asset { id: a.id, company_id: a.company_id, last_modified: None };
            s.assets.insert(a.id, (asset, a.members.clone(), a.unsubscribes.clone()));
        }
        for dep in &d.departments {
            let department = Department {
                id: dep.id,
                company_id: dep.company_id,
                name: dep.name.clone(),
                client_id: dep.client_id.clone(),
                secret_sha256: dep.secret_sha256.clone(),
            };
            s.departments.insert(dep.id, (department, dep.members.iter().copied().collect()));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Queue

struct Message {
    id: String,
    body: String,
    receive_count: u32,
    visible_at: Instant,
}

/// SQS's longest message delay (DelaySeconds), 15 minutes.
pub const MAX_DELAY_SECONDS: u64 = 900;

/// A queue with SQS's at-least-once semantics: a received message is hidden for the visibility
/// timeout and comes back unless acknowledged; after `max_receives` receives it moves to the DLQ.
pub struct MemoryQueue {
    messages: Mutex<VecDeque<Message>>,
    visibility: Duration,
    max_receives: u32,
    dead_letters: Option<Arc<MemoryQueue>>,
    sequence: std::sync::atomic::AtomicU64,
}

impl MemoryQueue {
    /// A queue without a DLQ (messages are retried forever).
    pub fn new(visibility: Duration) -> Self {
        MemoryQueue {
            messages: Mutex::new(VecDeque::new()),
            visibility,
            max_receives: u32::MAX,
            dead_letters: None,
            sequence: Default::default(),
        }
    }

    /// A queue whose messages go to `dlq` after `max_receives` receives (SQS redrive policy).
    pub fn with_dead_letters(visibility: Duration, max_receives: u32, dlq: Arc<MemoryQueue>) -> Self {
        MemoryQueue { max_receives, dead_letters: Some(dlq), ..Self::new(visibility) }
    }

    /// Messages in the queue, visible or in flight.
    pub fn len(&self) -> usize {
        lock(&self.messages).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dead_letters(&self) -> Option<&Arc<MemoryQueue>> {
        self.dead_letters.as_ref()
    }

    fn receipt(m: &Message) -> String {
        format!("{}#{}", m.id, m.receive_count)
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send_all(&self, bodies: &[String]) -> StoreResult<()> {
        let now = Instant::now();
        let mut q = lock(&self.messages);
        for body in bodies {
            let n = self.sequence.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            q.push_back(Message {
                id: format!("m-{n}"),
                body: body.clone(),
                receive_count: 0,
                visible_at: now,
            });
        }
        Ok(())
    }

    async fn send_later(&self, body: &str, delay: Duration) -> StoreResult<()> {
        let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        let n = self.sequence.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.messages).push_back(Message {
            id: format!("m-{n}"),
            body: body.to_string(),
            receive_count: 0,
            visible_at: Instant::now() + Duration::from_secs(seconds.min(MAX_DELAY_SECONDS)),
        });
        Ok(())
    }

    async fn receive(&self, max: usize) -> StoreResult<Vec<ReceivedMessage>> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut dead = Vec::new();
        {
            let mut q = lock(&self.messages);
            let mut i = 0;
            while i < q.len() && out.len() < max {
                if q[i].visible_at > now {
                    i += 1;
                    continue;
                }
                if q[i].receive_count >= self.max_receives && self.dead_letters.is_some() {
                    dead.push(q.remove(i).expect("index checked").body);
                    continue;
                }
                let m = &mut q[i];
                m.receive_count += 1;
                m.visible_at = now + self.visibility;
                out.push(ReceivedMessage {
                    message_id: m.id.clone(),
                    receipt: Self::receipt(m),
                    body: m.body.clone(),
                    receive_count: m.receive_count,
                });
                i += 1;
            }
        }
        if let (Some(dlq), false) = (&self.dead_letters, dead.is_empty()) {
            dlq.send_all(&dead).await?;
        }
        Ok(out)
    }

    async fn ack(&self, receipt: &str) -> StoreResult<()> {
        lock(&self.messages).retain(|m| Self::receipt(m) != receipt);
        Ok(())
    }

    async fn nack(&self, receipt: &str) -> StoreResult<()> {
        let now = Instant::now();
        for m in lock(&self.messages).iter_mut() {
            if Self::receipt(m) == receipt {
                m.visible_at = now;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Devices, email and push

#[derive(Default)]
pub struct MemoryDeviceStore {
    state: Mutex<HashMap<UserId, Vec<Device>>>,
    companies: Mutex<HashSet<CompanyId>>,
}

impl MemoryDeviceStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl DeviceStore for MemoryDeviceStore {
    async fn devices(&self, user: UserId) -> StoreResult<Vec<Device>> {
        Ok(lock(&self.state).get(&user).cloned().unwrap_or_default())
    }

    async fn devices_of(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, Vec<Device>)>> {
        let s = lock(&self.state);
        Ok(users.iter().filter_map(|u| s.get(u).filter(|d| !d.is_empty()).map(|d| (*u, d.clone()))).collect())
    }

    async fn put_device(&self, user: UserId, device: &Device, max: usize) -> StoreResult<Vec<Device>> {
        let mut s = lock(&self.state);
        let mut displaced = Vec::new();
        for (owner, devices) in s.iter_mut().filter(|(owner, _)| **owner != user) {
            if let Some(i) = devices.iter().position(|d| d.device_id == device.device_id) {
                tracing::info!(device = %device.device_id, from = %owner, to = %user, "device changed hands");
                displaced.push(devices.remove(i));
            }
        }
        let mine = s.entry(user).or_default();
        mine.retain(|d| d.device_id != device.device_id);
        mine.push(device.clone());
        mine.sort_by_key(|d| std::cmp::Reverse(d.registered_at));
        if mine.len() > max.max(1) {
            displaced.extend(mine.split_off(max.max(1)));
        }
        Ok(displaced)
    }

    async fn remove_device(&self, user: UserId, device_id: &str) -> StoreResult<Option<Device>> {
        let mut s = lock(&self.state);
        let Some(devices) = s.get_mut(&user) else { return Ok(None) };
        Ok(devices.iter().position(|d| d.device_id == device_id).map(|i| devices.remove(i)))
    }

    async fn mark_company_devices(&self, company: CompanyId) -> StoreResult<()> {
        lock(&self.companies).insert(company);
        Ok(())
    }

    async fn company_has_devices(&self, company: CompanyId) -> StoreResult<bool> {
        Ok(lock(&self.companies).contains(&company))
    }
}

/// Records emails instead of sending them; addresses can be set to be rejected, and the whole
/// mailer to fail transiently, for tests.
#[derive(Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<OutgoingEmail>>,
    rejected: Mutex<HashSet<String>>,
    failing: std::sync::atomic::AtomicBool,
    /// SES's account limits, when set: (per second, per 24 hours, when each accepted email went).
    limits: Mutex<Option<(u32, u32, Vec<Instant>)>>,
}

impl MemoryMailer {
    pub fn new() -> Self {
        Self::default()
    }
    /// Every email sent so far.
    pub fn sent(&self) -> Vec<OutgoingEmail> {
        lock(&self.sent).clone()
    }
    /// Makes sends to `address` fail for good.
    pub fn reject(&self, address: &str) {
        lock(&self.rejected).insert(address.to_ascii_lowercase());
    }
    /// Limits sending as an SES account is limited: `rate` emails per second and `daily` per 24
    /// hours; beyond them a send fails as SES answers (TooManyRequestsException,
    /// LimitExceededException), transiently.
    pub fn limit(&self, rate: u32, daily: u32) {
        *lock(&self.limits) = Some((rate, daily, Vec::new()));
    }
    /// Makes every send fail as if SES throttled (or stops doing so).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SendError::Transient("mailer unavailable (test)".into()));
        }
        if lock(&self.rejected).contains(&email.to.to_ascii_lowercase()) {
            return Err(SendError::Rejected(format!("address {} rejected", email.to)));
        }
        if let Some((rate, daily, accepted)) = lock(&self.limits).as_mut() {
            let now = Instant::now();
            if accepted.len() >= *daily as usize {
                return Err(SendError::Transient(
                    "LimitExceededException: Daily message quota exceeded.".into(),
                ));
            }
            if accepted.iter().filter(|t| now.duration_since(**t) < Duration::from_secs(1)).count()
                >= *rate as usize
            {
                return Err(SendError::Transient(
                    "TooManyRequestsException: Maximum sending rate exceeded.".into(),
                ));
            }
            accepted.push(now);
        }
        // Addresses and subjects are personal data: not logged.
        tracing::info!(bytes = email.html.len(), "email recorded (memory mailer)");
        let mut sent = lock(&self.sent);
        sent.push(email.clone());
        Ok(format!("memory-{}", sent.len()))
    }
}

/// A platform endpoint of the memory push gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryEndpoint {
    pub platform: Platform,
    pub token: String,
    pub user: UserId,
    pub enabled: bool,
    /// Messages published to it (the SNS JSON message structure).
    pub messages: Vec<String>,
}

/// Platform endpoints and publishes in memory, with SNS's rules: one endpoint per token,
/// publishing to a disabled or deleted endpoint fails.
pub struct MemoryPush {
    platforms: Vec<Platform>,
    endpoints: Mutex<HashMap<String, MemoryEndpoint>>,
}

impl MemoryPush {
    /// A gateway with applications for `platforms`.
    pub fn new(platforms: &[Platform]) -> Self {
        MemoryPush { platforms: platforms.to_vec(), endpoints: Mutex::new(HashMap::new()) }
    }
    pub fn endpoints(&self) -> HashMap<String, MemoryEndpoint> {
        lock(&self.endpoints).clone()
    }
    /// What the push service does when an app is uninstalled: the endpoint is disabled.
    pub fn disable(&self, endpoint: &str) {
        if let Some(e) = lock(&self.endpoints).get_mut(endpoint) {
            e.enabled = false;
        }
    }
    /// Every publish: (endpoint, message).
    pub fn published(&self) -> Vec<(String, String)> {
        let mut all: Vec<_> = lock(&self.endpoints)
            .iter()
            .flat_map(|(arn, e)| e.messages.iter().map(move |m| (arn.clone(), m.clone())))
            .collect();
        all.sort();
        all
    }
}

#[async_trait]
impl PushGateway for MemoryPush {
    fn supports(&self, platform: Platform) -> bool {
        self.platforms.contains(&platform)
    }

    async fn create_endpoint(
        &self,
        platform: Platform,
        token: &str,
        user: UserId,
    ) -> Result<String, SendError> {
        if !self.supports(platform) {
            return Err(SendError::Rejected(format!("no {} application", platform.as_str())));
        }
        let arn =
            format!("arn:memory:sns:endpoint/{}/{}", platform.as_str(), Device::id_for(platform, token));
        let mut endpoints = lock(&self.endpoints);
        let e = endpoints.entry(arn.clone()).or_insert_with(|| MemoryEndpoint {
            platform,
            token: token.to_string(),
            user,
            enabled: true,
            messages: Vec::new(),
        });
        e.user = user;
        e.enabled = true;
        Ok(arn)
    }

    async fn delete_endpoint(&self, endpoint: &str) -> Result<(), SendError> {
        lock(&self.endpoints).remove(endpoint);
        Ok(())
    }

    async fn publish(&self, endpoint: &str, message: &str) -> Result<String, SendError> {
        let mut endpoints = lock(&self.endpoints);
        match endpoints.get_mut(endpoint) {
            None => Err(SendError::Gone(format!("endpoint {endpoint} does not exist"))),
            Some(e) if !e.enabled => Err(SendError::Gone(format!("endpoint {endpoint} is disabled"))),
            Some(e) => {
                e.messages.push(message.to_string());
                Ok(format!("memory-{}", e.messages.len()))
            }
        }
    }
}
