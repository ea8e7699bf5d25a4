//! Notifications in memory: conditional state changes, chunk and email-job markers counted once,
//! sent marks, quotas, idempotency records, history by scope.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::error::{StoreError, StoreResult};
use crate::ports::*;

/// Request digest, answer once known, expiry.
type IdempotencyEntry = (String, Option<(u16, String)>, DateTime<Utc>);

#[derive(Default)]
struct NotificationState {
    by_id: HashMap<NotificationId, Notification>,
    by_schedule_id: HashMap<u64, NotificationId>,
    chunks: HashSet<(NotificationId, u32)>,
    /// Chunks and email jobs started, with the lease and the message of the attempt that holds
    /// each.
    started: HashMap<(NotificationId, Work), (DateTime<Utc>, String)>,
    /// Chunks whose pushes are recorded.
    push_chunks: HashSet<(NotificationId, u32)>,
    /// Email jobs recorded: (notification, chunk, part).
    email_parts: HashSet<(NotificationId, u32, u32)>,
    /// Bounces and complaints counted: (notification, SES message id, kind).
    feedback: HashSet<(NotificationId, String, FeedbackKind)>,
    counter: u64,
    idempotency: HashMap<String, IdempotencyEntry>,
    quotas: HashMap<(CompanyId, String), u64>,
    marks: HashMap<(NotificationId, u32), HashSet<String>>,
    /// Recorded chunks' email job sizes.
    email_job_sizes: HashMap<(NotificationId, u32), u32>,
    /// Each notification's gate: the people of the chunks that started, and whether a cancel
    /// closed it (`DynamoNotificationStore`'s gate item).
    gates: HashMap<NotificationId, (u64, bool)>,
    /// Each notification's delivery log, by the key DynamoDB sorts its markers by.
    log: HashMap<NotificationId, std::collections::BTreeMap<String, LogEntry>>,
    /// The lists of people each chunk's attempts kept (each distinct list once).
    kept: HashMap<(NotificationId, u32), Vec<Vec<UserId>>>,
    /// Chunks a retraction closed for good.
    closed: HashSet<(NotificationId, u32)>,
    /// Chunks whose retraction is recorded.
    retracted: HashSet<(NotificationId, u32)>,
    /// Retractions not known to be finished, with their next look.
    unfinished: HashMap<NotificationId, DateTime<Utc>>,
}

impl NotificationState {
    /// `WorkLeases::start`.
    fn start(
        &mut self,
        id: NotificationId,
        work: Work,
        holder: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> ChunkStart {
        match self.started.get_mut(&(id, work)) {
            None => {
                self.started.insert((id, work), (lease_until, holder.to_string()));
                ChunkStart::First
            }
            Some((lease, by)) if *lease < now || by == holder => {
                (*lease, *by) = (lease_until, holder.to_string());
                ChunkStart::Retry
            }
            Some(_) => ChunkStart::Held,
        }
    }

    /// A piece of work's context: the notification, whether the piece is `recorded`, and its
    /// chunk's sent marks.
    /// `content`: with its email's body and parameters (an email job's), or without them (a
    /// chunk's, a push job's), as the ports say.
    fn context(&self, id: NotificationId, chunk: u32, recorded: bool, content: bool) -> ChunkContext {
        let notification = self.by_id.get(&id).cloned();
        ChunkContext {
            notification: if content {
                notification
            } else {
                notification.map(Notification::without_email_content)
            },
            recorded,
            marks: SentMarks(self.marks.get(&(id, chunk)).cloned().unwrap_or_default()),
            email_job_size: self.email_job_sizes.get(&(id, chunk)).copied(),
            email_content_missing: Vec::new(),
        }
    }
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
impl NotificationLookup for MemoryNotificationStore {
    async fn get(&self, id: NotificationId) -> StoreResult<Option<Notification>> {
        Ok(lock(&self.state).by_id.get(&id).cloned().map(Notification::without_email_content))
    }

    async fn get_by_schedule_id(&self, schedule_id: u64) -> StoreResult<Option<Notification>> {
        let s = lock(&self.state);
        let found = s.by_schedule_id.get(&schedule_id).and_then(|id| s.by_id.get(id)).cloned();
        Ok(found.map(Notification::without_email_content))
    }
}

#[async_trait]
impl NotificationIntake for MemoryNotificationStore {
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
}

#[async_trait]
impl FanoutLedger for MemoryNotificationStore {
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
}

#[async_trait]
impl WorkLeases for MemoryNotificationStore {
    async fn start(
        &self,
        id: NotificationId,
        work: Work,
        holder: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<ChunkStart> {
        Ok(lock(&self.state).start(id, work, holder, now, lease_until))
    }

    async fn release(
        &self,
        id: NotificationId,
        work: Work,
        holder: &str,
        held: DateTime<Utc>,
    ) -> StoreResult<()> {
        if let Some((lease, by)) = lock(&self.state).started.get_mut(&(id, work))
            && *lease == held
            && by == holder
        {
            *lease = DateTime::<Utc>::MIN_UTC;
        }
        Ok(())
    }
}

#[async_trait]
impl DeliveryLedger for MemoryNotificationStore {
    async fn start_chunk(
        &self,
        id: NotificationId,
        chunk: u32,
        recipients: u64,
        holder: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ChunkStart>> {
        let mut s = lock(&self.state);
        if s.closed.contains(&(id, chunk)) {
            return Ok(None);
        }
        let work = Work::Chunk(chunk);
        let first = !s.started.contains_key(&(id, work));
        let (reached, closed) = s.gates.entry(id).or_default();
        if first {
            if *closed {
                return Ok(None);
            }
            *reached += recipients;
        }
        Ok(Some(s.start(id, work, holder, now, lease_until)))
    }

    async fn keep_recipients(
        &self,
        id: NotificationId,
        chunk: u32,
        people: &[UserId],
        _until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut s = lock(&self.state);
        let lists = s.kept.entry((id, chunk)).or_default();
        if !lists.iter().any(|l| l.as_slice() == people) {
            lists.push(people.to_vec());
        }
        Ok(())
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
        s.email_job_sizes.insert((id, chunk), tally.email_job_size);
        let event = LogEvent::ChunkDelivered { chunk, people: tally.delivered };
        s.log.entry(id).or_default().insert(format!("C#{chunk:08}"), LogEntry { at: Some(now), event });
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
        Ok(s.context(id, chunk, s.chunks.contains(&(id, chunk)), false))
    }

    async fn push_context(&self, id: NotificationId, chunk: u32) -> StoreResult<ChunkContext> {
        let s = lock(&self.state);
        Ok(s.context(id, chunk, s.push_chunks.contains(&(id, chunk)), false))
    }

    async fn record_pushes(
        &self,
        id: NotificationId,
        chunk: u32,
        counts: &PushCounts,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        let mut s = lock(&self.state);
        if !s.by_id.contains_key(&id) {
            return Err(StoreError::Conflict(format!("notification {id} does not exist")));
        }
        if !s.push_chunks.insert((id, chunk)) {
            return Ok(ChunkRecord::AlreadyRecorded);
        }
        let n = s.by_id.get_mut(&id).expect("checked above");
        n.add(&ChunkTally { pushes: *counts, ..ChunkTally::default() });
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
        let Some(n) = s.by_id.get_mut(&id) else { return Ok(()) };
        match n.status {
            // Delivered stays delivered: its people have it.
            Status::Delivered => {}
            // Cancelled stays cancelled (its sender was told whom it reached), keeping the first
            // reason a chunk it counted was given up.
            Status::Cancelled if n.failure.is_none() => {
                n.failure = Some(reason.to_string());
                n.modified_at = now;
            }
            Status::Cancelled => {}
            _ => {
                n.status = Status::Failed;
                n.lease_until = None;
                n.failure = Some(reason.to_string());
                n.modified_at = now;
            }
        }
        Ok(())
    }

    async fn record_callback(&self, id: NotificationId, result: &CallbackResult) -> StoreResult<()> {
        if let Some(n) = lock(&self.state).by_id.get_mut(&id) {
            n.callback_result = Some(result.clone());
        }
        Ok(())
    }
}

#[async_trait]
impl EmailLedger for MemoryNotificationStore {
    async fn email_context(&self, id: NotificationId, chunk: u32, part: u32) -> StoreResult<ChunkContext> {
        let s = lock(&self.state);
        Ok(s.context(id, chunk, s.email_parts.contains(&(id, chunk, part)), true))
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
        let event = LogEvent::EmailsSettled { chunk, part, people: counts.settled() };
        s.log
            .entry(id)
            .or_default()
            .insert(format!("E#{chunk:08}#{part}"), LogEntry { at: Some(now), event });
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
        let event = LogEvent::Feedback { kind, message_id: message_id.to_string() };
        s.log
            .entry(id)
            .or_default()
            .insert(format!("F#{}#{message_id}", kind.as_str()), LogEntry { at: Some(now), event });
        let n = s.by_id.get_mut(&id).expect("checked above");
        match kind {
            FeedbackKind::Bounce => n.emails_bounced += 1,
            FeedbackKind::Complaint => n.emails_complained += 1,
        }
        n.modified_at = now;
        Ok(ChunkRecord::Recorded)
    }
}

#[async_trait]
impl DeliveryLog for MemoryNotificationStore {
    async fn log(&self, id: NotificationId, page: &PageRequest) -> StoreResult<Page<LogEntry>> {
        let s = lock(&self.state);
        let Some(log) = s.log.get(&id) else { return Ok(Page::empty()) };
        let after = page.after.as_deref().map(super::decode_cursor).transpose()?.unwrap_or_default();
        let mut rest = log.range::<String, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded));
        let items: Vec<(&String, &LogEntry)> = rest.by_ref().take(page.limit.max(1)).collect();
        let next = match rest.next() {
            Some(_) => items.last().map(|(k, _)| super::encode_cursor(k)),
            None => None,
        };
        Ok(Page { items: items.into_iter().map(|(_, e)| e.clone()).collect(), next })
    }
}

#[async_trait]
impl SendControl for MemoryNotificationStore {
    async fn change(&self, changed: &Notification, read: u64) -> StoreResult<ChangeOutcome> {
        let mut s = lock(&self.state);
        let Some(n) = s.by_id.get_mut(&changed.id) else { return Ok(ChangeOutcome::Missing) };
        if n.status != Status::Pending {
            return Ok(ChangeOutcome::NotPending(n.status));
        }
        if n.revision != read {
            return Ok(ChangeOutcome::Stale);
        }
        n.content = changed.content.clone();
        n.schedule = changed.schedule.clone();
        n.description = changed.description.clone();
        n.due_at = changed.due_at;
        n.modified_at = changed.modified_at;
        n.modified_by = changed.modified_by.clone();
        n.revision = changed.revision;
        Ok(ChangeOutcome::Changed)
    }

    async fn retract(&self, id: NotificationId, by: &str, now: DateTime<Utc>) -> StoreResult<RetractOutcome> {
        let mut s = lock(&self.state);
        let Some(n) = s.by_id.get_mut(&id) else { return Ok(RetractOutcome::Missing) };
        let now_retracted = match (&n.retracted, n.status) {
            (Some(_), _) => false,
            (None, Status::Pending | Status::FanningOut | Status::Delivering) => {
                return Ok(RetractOutcome::NotOut(n.status));
            }
            (None, status) if !n.keeps_recipients => return Ok(RetractOutcome::Unrecorded(status)),
            (None, _) => {
                n.retracted = Some(Cancellation { at: now, by: by.to_string() });
                n.modified_at = now;
                n.modified_by = by.to_string();
                true
            }
        };
        if now_retracted {
            s.unfinished.insert(id, now + chrono::Duration::seconds(RETRACTION_RECHECK_SECONDS));
        }
        let n = s.by_id.get(&id).expect("read above");
        let retraction = n.retracted.clone().expect("set above");
        let (reached, closed) = s.gates.entry(id).or_default();
        *closed = true;
        Ok(RetractOutcome::Retracted { retraction, reached: *reached, now: now_retracted })
    }

    async fn correct(&self, changed: &Notification, read: u64) -> StoreResult<CorrectOutcome> {
        let mut s = lock(&self.state);
        let Some(n) = s.by_id.get_mut(&changed.id) else { return Ok(CorrectOutcome::Missing) };
        if n.retracted.is_some() {
            return Ok(CorrectOutcome::Retracted);
        }
        if matches!(n.status, Status::Pending | Status::FanningOut) {
            return Ok(CorrectOutcome::NotOut(n.status));
        }
        if n.revision != read {
            return Ok(CorrectOutcome::Stale);
        }
        n.content = changed.content.clone();
        n.corrected = changed.corrected.clone();
        n.modified_at = changed.modified_at;
        n.modified_by = changed.modified_by.clone();
        n.revision = changed.revision;
        Ok(CorrectOutcome::Corrected)
    }

    async fn cancel(&self, id: NotificationId, by: &str, now: DateTime<Utc>) -> StoreResult<CancelOutcome> {
        let mut s = lock(&self.state);
        let Some(n) = s.by_id.get_mut(&id) else { return Ok(CancelOutcome::Missing) };
        let now_cancelled = match n.status {
            Status::Cancelled => false,
            status if !status.cancellable() => return Ok(CancelOutcome::Finished(status)),
            status if status != Status::Pending && !n.gated => return Ok(CancelOutcome::Ungated(status)),
            _ => {
                n.status = Status::Cancelled;
                n.cancelled = Some(Cancellation { at: now, by: by.to_string() });
                n.lease_until = None;
                n.modified_at = now;
                n.modified_by = by.to_string();
                true
            }
        };
        let cancellation =
            n.cancelled.clone().unwrap_or(Cancellation { at: n.modified_at, by: n.modified_by.clone() });
        let (reached, closed) = s.gates.entry(id).or_default();
        *closed = true;
        Ok(CancelOutcome::Cancelled { cancellation, reached: *reached, now: now_cancelled })
    }
}

#[async_trait]
impl RecallLedger for MemoryNotificationStore {
    async fn started_chunks(&self, id: NotificationId) -> StoreResult<Vec<u32>> {
        let s = lock(&self.state);
        let mut chunks: Vec<u32> = s
            .started
            .keys()
            .filter_map(|(n, work)| match work {
                Work::Chunk(c) if *n == id => Some(*c),
                _ => None,
            })
            .collect();
        chunks.sort_unstable();
        Ok(chunks)
    }

    async fn kept_chunks(&self, id: NotificationId) -> StoreResult<Vec<u32>> {
        let s = lock(&self.state);
        let mut chunks: Vec<u32> = s.kept.keys().filter(|(n, _)| *n == id).map(|(_, c)| *c).collect();
        chunks.sort_unstable();
        Ok(chunks)
    }

    async fn chunk_retracted(&self, id: NotificationId, chunk: u32) -> StoreResult<bool> {
        Ok(lock(&self.state).retracted.contains(&(id, chunk)))
    }

    async fn unfinished(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<NotificationId>> {
        let s = lock(&self.state);
        let mut due: Vec<(DateTime<Utc>, NotificationId)> =
            s.unfinished.iter().filter(|(_, at)| **at <= now).map(|(id, at)| (*at, *id)).collect();
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    async fn recheck(&self, id: NotificationId, at: Option<DateTime<Utc>>) -> StoreResult<()> {
        let mut s = lock(&self.state);
        match at {
            Some(at) => {
                if let Some(next) = s.unfinished.get_mut(&id) {
                    *next = at;
                }
            }
            None => {
                s.unfinished.remove(&id);
            }
        }
        Ok(())
    }

    async fn retracted_chunks(&self, id: NotificationId) -> StoreResult<Vec<u32>> {
        let s = lock(&self.state);
        let mut chunks: Vec<u32> = s.retracted.iter().filter(|(n, _)| *n == id).map(|(_, c)| *c).collect();
        chunks.sort_unstable();
        Ok(chunks)
    }

    async fn recipients(&self, id: NotificationId, chunk: u32) -> StoreResult<Vec<UserId>> {
        let s = lock(&self.state);
        let mut seen = HashSet::new();
        Ok(s.kept
            .get(&(id, chunk))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|u| seen.insert(**u))
            .copied()
            .collect())
    }

    async fn close_chunk(&self, id: NotificationId, chunk: u32, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut s = lock(&self.state);
        if let Some((lease, _)) = s.started.get(&(id, Work::Chunk(chunk)))
            && *lease >= now
            && !s.closed.contains(&(id, chunk))
            && !s.chunks.contains(&(id, chunk))
        {
            return Ok(false);
        }
        s.closed.insert((id, chunk));
        Ok(true)
    }

    async fn record_retracted(
        &self,
        id: NotificationId,
        chunk: u32,
        people: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut s = lock(&self.state);
        if s.retracted.insert((id, chunk)) {
            let event = LogEvent::ChunkRetracted { chunk, people };
            s.log.entry(id).or_default().insert(format!("D#{chunk:08}"), LogEntry { at: Some(now), event });
        }
        Ok(())
    }
}

#[async_trait]
impl SentHistory for MemoryNotificationStore {
    async fn history(&self, scope: &HistoryScope, page: &PageRequest) -> StoreResult<Page<Notification>> {
        let mut items: Vec<Notification> = lock(&self.state)
            .by_id
            .values()
            .filter(|n| in_scope(n, scope))
            .map(|n| n.clone().without_email_body())
            .collect();
        // Newest first; a fixed-width key keeps the order of the cursor strings numeric.
        items.sort_by_key(|n| std::cmp::Reverse(n.schedule_id));
        let key = |n: &Notification| format!("{:020}", u64::MAX - n.schedule_id);
        page_by_key(items, key, page)
    }

    async fn record(&self, schedule_id: u64) -> StoreResult<Option<Notification>> {
        let s = lock(&self.state);
        let found = s.by_schedule_id.get(&schedule_id).and_then(|id| s.by_id.get(id)).cloned();
        Ok(found.map(Notification::without_email_body))
    }
}

#[async_trait]
impl IdempotencyStore for MemoryNotificationStore {
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
